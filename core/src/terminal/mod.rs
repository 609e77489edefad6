//! Terminal sessions in the app: interactive execs into bottles' agents on
//! pseudo-terminals, kept by the app (not by a window), with bounded
//! scrollback a view can reattach to.
//!
//! The argv comes from [`crate::ops::terminal_argv`] (the backend's own
//! exec); this module only runs it ([`crate::runner::pty`]) and keeps its
//! output. Nothing here knows of windows or Tauri.

pub mod scrollback;
pub mod session;

pub use session::{Ended, Progress, Session, SessionInfo};

use crate::ops::TerminalCommand;
use crate::runner::pty::CellSize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Sessions open at once, ended ones included (each keeps up to
/// [`session::SCROLLBACK_BYTES`]); the user closes tabs to open more.
pub const MAX_SESSIONS: usize = 16;

/// The app's terminal sessions.
#[derive(Default)]
pub struct Sessions {
    next: Mutex<u64>,
    open: Mutex<BTreeMap<u64, Arc<Session>>>,
}

impl Sessions {
    /// Starts `argv` for `bottle` as a new session.
    pub fn open(
        &self,
        bottle: &str,
        kind: TerminalCommand,
        argv: &[String],
        size: CellSize,
    ) -> Result<Arc<Session>, String> {
        let mut open = self.open.lock().unwrap();
        if open.len() >= MAX_SESSIONS {
            return Err(format!(
                "{MAX_SESSIONS} terminals are open; close one to open another"
            ));
        }
        let id = {
            let mut next = self.next.lock().unwrap();
            *next += 1;
            *next
        };
        let session = Session::start(id, bottle, kind, argv, size)
            .map_err(|e| format!("bottle `{bottle}`: starting a terminal: {e}"))?;
        open.insert(id, session.clone());
        Ok(session)
    }

    /// Session `id`.
    pub fn get(&self, id: u64) -> Result<Arc<Session>, String> {
        self.open
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| format!("there is no terminal {id}"))
    }

    /// Every session, oldest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let open: Vec<Arc<Session>> = self.open.lock().unwrap().values().cloned().collect();
        open.iter().map(|s| s.info()).collect()
    }

    /// Ends session `id` (if still running) and forgets it.
    pub fn close(&self, id: u64) -> Result<(), String> {
        let session = self
            .open
            .lock()
            .unwrap()
            .remove(&id)
            .ok_or_else(|| format!("there is no terminal {id}"))?;
        session.end("closed");
        Ok(())
    }

    /// Ends every running session of `bottle`, saying `why`; they stay
    /// listed (with their end) until closed. Returns how many were ended.
    pub fn end_bottle(&self, bottle: &str, why: &str) -> usize {
        let open: Vec<Arc<Session>> = self.open.lock().unwrap().values().cloned().collect();
        open.iter()
            .filter(|s| s.bottle() == bottle && s.info().ended.is_none())
            .map(|s| s.end(why))
            .count()
    }

    /// Ends every session (the app is quitting).
    pub fn end_all(&self, why: &str) {
        let open: Vec<Arc<Session>> = self.open.lock().unwrap().values().cloned().collect();
        for s in open {
            s.end(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn argv(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into()]
    }

    /// Waits (bounded) until the session's output holds `needle`.
    async fn output_until(s: &Session, needle: &str) -> String {
        let mut progress = s.progress();
        let wait = async {
            loop {
                let text = String::from_utf8_lossy(&s.read(0, usize::MAX).bytes).into_owned();
                if text.contains(needle) {
                    return text;
                }
                if progress.changed().await.is_err() {
                    return text;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` in the output"))
    }

    async fn ended(s: &Session) -> Ended {
        let mut progress = s.progress();
        let e = async {
            progress
                .wait_for(|p| p.ended.is_some())
                .await
                .map(|p| p.clone())
        };
        tokio::time::timeout(Duration::from_secs(10), e)
            .await
            .expect("the session ended")
            .unwrap()
            .ended
            .unwrap()
    }

    #[tokio::test]
    async fn a_session_runs_takes_input_and_reports_its_exit() {
        let sessions = Sessions::default();
        let s = sessions
            .open(
                "demo",
                TerminalCommand::Shell,
                &argv("read x; echo \"got $x\"; exit 3"),
                CellSize::DEFAULT,
            )
            .unwrap();
        s.type_in(b"fourty-two\r".to_vec()).unwrap();
        output_until(&s, "got fourty-two").await;
        assert_eq!(
            ended(&s).await,
            Ended {
                code: Some(3),
                why: None
            }
        );
        assert!(s.type_in(b"x".to_vec()).is_err(), "no input after the end");
        assert_eq!(sessions.list()[0].ended.as_ref().unwrap().code, Some(3));
        sessions.close(s.id()).unwrap();
        assert!(sessions.list().is_empty());
    }

    #[tokio::test]
    async fn ending_a_bottles_sessions_says_why() {
        let sessions = Sessions::default();
        let a = sessions
            .open(
                "a",
                TerminalCommand::Shell,
                &argv("echo up; sleep 60"),
                CellSize::DEFAULT,
            )
            .unwrap();
        let b = sessions
            .open(
                "b",
                TerminalCommand::Agent,
                &argv("echo up; sleep 60"),
                CellSize::DEFAULT,
            )
            .unwrap();
        output_until(&a, "up").await;
        assert_eq!(sessions.end_bottle("a", "the bottle stopped"), 1);
        let e = ended(&a).await;
        assert_eq!(e.why.as_deref(), Some("the bottle stopped"));
        assert!(b.info().ended.is_none(), "other bottles' sessions go on");
        sessions.end_all("quit");
        ended(&b).await;
    }

    #[tokio::test]
    async fn a_flood_keeps_memory_bounded_and_the_command_unblocked() {
        let sessions = Sessions::default();
        // ~8 MB of output, four times the scrollback, with nobody reading.
        let s = sessions
            .open(
                "demo",
                TerminalCommand::Shell,
                &argv("yes | head -n 4000000; echo flood-done"),
                CellSize::DEFAULT,
            )
            .unwrap();
        assert_eq!(ended(&s).await.code, Some(0), "never stalled");
        let p = s.progress().borrow().clone();
        assert!(p.end > 8_000_000, "{}", p.end);
        let kept = s.read(0, usize::MAX);
        assert_eq!(kept.bytes.len(), session::SCROLLBACK_BYTES);
        assert!(String::from_utf8_lossy(&kept.bytes).ends_with("flood-done\r\n"));
        assert_eq!(
            s.read(s.replay_from(), 2).bytes,
            b"y\r",
            "replay starts on a line"
        );
    }

    #[tokio::test]
    async fn sessions_are_bounded_in_number() {
        let sessions = Sessions::default();
        for _ in 0..MAX_SESSIONS {
            sessions
                .open(
                    "demo",
                    TerminalCommand::Shell,
                    &argv("sleep 30"),
                    CellSize::DEFAULT,
                )
                .unwrap();
        }
        let e = sessions
            .open(
                "demo",
                TerminalCommand::Shell,
                &argv("true"),
                CellSize::DEFAULT,
            )
            .map(|_| ())
            .unwrap_err();
        assert!(e.contains("close one"), "{e}");
        sessions.end_all("test over");
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_naming_the_bottle() {
        let e = Sessions::default()
            .open(
                "demo",
                TerminalCommand::Shell,
                &["/nonexistent/docker".to_string()],
                CellSize::DEFAULT,
            )
            .err()
            .unwrap();
        assert!(
            e.contains("demo") && e.contains("/nonexistent/docker"),
            "{e}"
        );
    }
}
