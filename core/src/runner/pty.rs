//! An engine command on a pseudo-terminal of its own: the interactive
//! `exec` the app's terminal view shows (through `portable-pty`, the crate
//! behind WezTerm). Like the rest of [`crate::runner`], this is the only
//! place such a process is started.

use portable_pty::{native_pty_system, Child, ChildKiller, CommandBuilder, MasterPty, PtySize};
use std::io::{self, Read, Write};

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CellSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl CellSize {
    /// The size a session starts at before its view measures itself.
    pub const DEFAULT: CellSize = CellSize { cols: 80, rows: 24 };

    /// Clamped to what a terminal can be (1×1 to 1000×500), so a bad
    /// number from a view never reaches the kernel.
    pub fn clamped(self) -> CellSize {
        CellSize {
            cols: self.cols.clamp(1, 1000),
            rows: self.rows.clamp(1, 500),
        }
    }

    fn pty(self) -> PtySize {
        PtySize {
            rows: self.rows,
            cols: self.cols,
            pixel_width: 0,
            pixel_height: 0,
        }
    }
}

/// A command running on a pseudo-terminal: its output to read, its input
/// to write, and the terminal's size to change.
pub struct PtyProcess {
    /// What the command prints (ends when the command and everything it
    /// started have closed the terminal).
    pub output: Box<dyn Read + Send>,
    /// The command's keyboard.
    pub input: Box<dyn Write + Send>,
    /// The terminal, for resizing.
    pub terminal: Box<dyn MasterPty + Send>,
    /// The process, to wait for.
    pub child: Box<dyn Child + Send + Sync>,
    /// Ends the process from another thread.
    pub killer: Box<dyn ChildKiller + Send + Sync>,
}

/// Starts `argv` on a new pseudo-terminal of `size`.
pub fn spawn(argv: &[String], size: CellSize) -> io::Result<PtyProcess> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::other("empty command"))?;
    let pair = native_pty_system()
        .openpty(size.clamped().pty())
        .map_err(|e| io::Error::other(format!("opening a pseudo-terminal: {e}")))?;
    let mut command = CommandBuilder::new(program);
    command.args(args);
    let child = pair
        .slave
        .spawn_command(command)
        .map_err(|e| io::Error::other(format!("starting {program}: {e}")))?;
    // Only the child holds the terminal's other end, so its output ends
    // when the child's side closes.
    drop(pair.slave);
    let output = pair.master.try_clone_reader().map_err(other)?;
    let input = pair.master.take_writer().map_err(other)?;
    let killer = child.clone_killer();
    Ok(PtyProcess {
        output,
        input,
        terminal: pair.master,
        child,
        killer,
    })
}

/// Changes the terminal's size (the command gets `SIGWINCH`).
pub fn resize(terminal: &dyn MasterPty, size: CellSize) -> io::Result<()> {
    terminal
        .resize(size.clamped().pty())
        .map_err(|e| io::Error::other(format!("resizing the terminal: {e}")))
}

/// `portable-pty`'s errors as I/O errors.
fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_until(p: &mut PtyProcess, needle: &str) -> String {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = p.output.read(&mut buf).unwrap_or(0);
            assert!(
                n > 0,
                "ended before `{needle}`: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    }

    #[test]
    fn a_command_gets_a_terminal_of_the_size_asked_and_follows_resizes() {
        let argv: Vec<String> = ["sh", "-c", "stty size; read x; stty size; echo done-$x"]
            .map(String::from)
            .to_vec();
        let mut p = spawn(&argv, CellSize { cols: 91, rows: 17 }).unwrap();
        read_until(&mut p, "17 91");
        resize(
            p.terminal.as_ref(),
            CellSize {
                cols: 120,
                rows: 40,
            },
        )
        .unwrap();
        p.input.write_all(b"ok\r").unwrap();
        let out = read_until(&mut p, "done-ok");
        assert!(out.contains("40 120"), "{out}");
        assert!(p.child.wait().unwrap().success());
    }

    #[test]
    fn an_empty_command_is_an_error() {
        assert!(spawn(&[], CellSize::DEFAULT).is_err());
    }
}
