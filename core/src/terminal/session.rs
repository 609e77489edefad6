//! One terminal session: an interactive exec on a pseudo-terminal, its
//! output kept in a bounded [`Scrollback`], its keyboard, its size, and how
//! it ended.
//!
//! Three threads of its own: one reads the output as fast as the command
//! prints (so a flood never stalls the command, and memory never grows past
//! the scrollback's bound), one writes the keyboard (so a command that stops
//! reading never blocks a caller), one waits for the exit. Viewers follow
//! [`Session::progress`] and read the scrollback at their own pace.

use super::scrollback::{Piece, Scrollback};
use crate::ops::TerminalCommand;
use crate::runner::pty::{self, CellSize, PtyProcess};
use portable_pty::{ChildKiller, MasterPty};
use serde::Serialize;
use std::io::{Read, Write};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Bytes of output a session keeps.
pub const SCROLLBACK_BYTES: usize = 2 * 1024 * 1024;
/// Keyboard writes that may wait for a command that is not reading.
const INPUT_QUEUE: usize = 1024;

/// How far a session has got: its output's end, and whether it is over.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// The offset just past the newest output byte.
    pub end: u64,
    /// Its end, once it has ended.
    pub ended: Option<Ended>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ended {
    /// The command's exit code (`None` when killed by a signal).
    pub code: Option<u32>,
    /// Why, when it was not the command's own doing ("the bottle stopped").
    pub why: Option<String>,
}

/// What a view shows of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// Its id in this app.
    pub id: u64,
    /// Its bottle.
    pub bottle: String,
    /// Shell or agent.
    pub kind: TerminalCommand,
    /// What it runs, for its tab's tooltip.
    pub command: String,
    /// When it started.
    pub started: String,
    /// Its size.
    pub size: CellSize,
    /// Its end, once it has ended.
    pub ended: Option<Ended>,
}

/// A running (or ended) terminal session.
pub struct Session {
    id: u64,
    bottle: String,
    kind: TerminalCommand,
    command: String,
    started: String,
    output: Arc<Mutex<Scrollback>>,
    progress: Arc<watch::Sender<Progress>>,
    input: SyncSender<Vec<u8>>,
    terminal: Mutex<Box<dyn MasterPty + Send>>,
    killer: Mutex<Box<dyn ChildKiller + Send + Sync>>,
    size: Mutex<CellSize>,
    why: Arc<Mutex<Option<String>>>,
}

impl Session {
    /// Starts `argv` (an engine's interactive exec) on a terminal of `size`.
    pub fn start(
        id: u64,
        bottle: &str,
        kind: TerminalCommand,
        argv: &[String],
        size: CellSize,
    ) -> std::io::Result<Arc<Session>> {
        let PtyProcess {
            output,
            input,
            terminal,
            mut child,
            killer,
        } = pty::spawn(argv, size)?;
        let scrollback = Arc::new(Mutex::new(Scrollback::new(SCROLLBACK_BYTES)));
        let progress = Arc::new(watch::Sender::new(Progress::default()));
        let why = Arc::new(Mutex::new(None));
        let (keys, key_queue) = sync_channel::<Vec<u8>>(INPUT_QUEUE);

        let reading = read_output(output, scrollback.clone(), progress.clone());
        write_input(input, key_queue);
        {
            let (progress, why) = (progress.clone(), why.clone());
            std::thread::Builder::new()
                .name(format!("terminal-{id}-wait"))
                .spawn(move || {
                    let status = child.wait().ok();
                    // All the output first, then the end.
                    let _ = reading.join();
                    let code = status.as_ref().filter(|s| s.signal().is_none());
                    progress.send_modify(|p| {
                        p.ended = Some(Ended {
                            code: code.map(|s| s.exit_code()),
                            why: why.lock().unwrap().clone(),
                        })
                    });
                })?;
        }
        Ok(Arc::new(Session {
            id,
            bottle: bottle.to_string(),
            kind,
            command: crate::plan::display_command(argv),
            started: crate::now_rfc3339(),
            output: scrollback,
            progress,
            input: keys,
            terminal: Mutex::new(terminal),
            killer: Mutex::new(killer),
            size: Mutex::new(size.clamped()),
            why,
        }))
    }

    /// Its id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its bottle.
    pub fn bottle(&self) -> &str {
        &self.bottle
    }

    /// What a view shows of it.
    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.id,
            bottle: self.bottle.clone(),
            kind: self.kind,
            command: self.command.clone(),
            started: self.started.clone(),
            size: *self.size.lock().unwrap(),
            ended: self.progress.borrow().ended.clone(),
        }
    }

    /// Follows its progress (new output, its end).
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Where a view starting afresh begins reading.
    pub fn replay_from(&self) -> u64 {
        self.output.lock().unwrap().replay_from()
    }

    /// Up to `max` bytes of output from `from`.
    pub fn read(&self, from: u64, max: usize) -> Piece {
        self.output.lock().unwrap().read(from, max)
    }

    /// Types `data`; an error when the session has ended or its command
    /// has stopped reading for a long while.
    pub fn type_in(&self, data: Vec<u8>) -> Result<(), String> {
        if self.progress.borrow().ended.is_some() {
            return Err("the session has ended".into());
        }
        match self.input.try_send(data) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                Err("the program in this terminal is not reading its input".into())
            }
            Err(TrySendError::Disconnected(_)) => Err("the session has ended".into()),
        }
    }

    /// Changes its size (the command gets `SIGWINCH`).
    pub fn resize(&self, size: CellSize) -> Result<(), String> {
        let size = size.clamped();
        let mut now = self.size.lock().unwrap();
        if *now != size {
            pty::resize(self.terminal.lock().unwrap().as_ref(), size).map_err(|e| e.to_string())?;
            *now = size;
        }
        Ok(())
    }

    /// Says why it ended, when it ended on its own for a reason found
    /// afterwards (the exec died with its bottle).
    pub fn explain_end(&self, why: &str) {
        self.progress.send_if_modified(|p| match &mut p.ended {
            Some(ended) if ended.why.is_none() => {
                ended.why = Some(why.to_string());
                true
            }
            _ => false,
        });
    }

    /// Ends it: the exec is killed, and its end says `why`.
    pub fn end(&self, why: &str) {
        if self.progress.borrow().ended.is_some() {
            return;
        }
        *self.why.lock().unwrap() = Some(why.to_string());
        let _ = self.killer.lock().unwrap().kill();
    }
}

/// Reads the command's output into the scrollback as fast as it comes.
fn read_output(
    mut output: Box<dyn Read + Send>,
    scrollback: Arc<Mutex<Scrollback>>,
    progress: Arc<watch::Sender<Progress>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        // A closed terminal reads as an error (EIO) on Linux: the end too.
        while let Ok(n @ 1..) = output.read(&mut buf) {
            let end = {
                let mut s = scrollback.lock().unwrap();
                s.push(&buf[..n]);
                s.end()
            };
            progress.send_modify(|p| p.end = end);
        }
    })
}

/// Writes typed input to the command, in order, off the caller's thread.
fn write_input(mut input: Box<dyn Write + Send>, keys: std::sync::mpsc::Receiver<Vec<u8>>) {
    std::thread::spawn(move || {
        for data in keys {
            if input.write_all(&data).and_then(|_| input.flush()).is_err() {
                return;
            }
        }
    });
}
