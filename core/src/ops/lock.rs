//! One bottle's lock: held while a launch or teardown of it runs, so two
//! never interleave (the CLI, the app, a second terminal).

use super::OpError;
use crate::events::{Event, Events};
use crate::home::Home;
use crate::name::BottleName;
use std::fs::File;
use std::time::Duration;

/// Held while a launch or teardown of one bottle runs; released on drop
/// (and by the kernel if the process dies).
pub struct BottleLock {
    file: File,
}

impl Drop for BottleLock {
    fn drop(&mut self) {
        crate::runner::lock_released(&self.file);
    }
}

/// How long `up`, `down` and `cleanup` wait for a bottle's lock before
/// saying it is busy. A launch killed with SIGKILL releases it only when
/// the engine commands it started have finished (they inherit it).
pub const LOCK_WAIT: Duration = Duration::from_secs(30);
/// `cleanup` waits less per bottle: a launch in progress is not its to sweep.
pub(super) const CLEANUP_LOCK_WAIT: Duration = Duration::from_secs(10);

/// [`lock`], waiting up to `wait` for another holder to let go.
pub async fn lock_waiting(
    home: &Home,
    name: &BottleName,
    wait: Duration,
    events: &Events,
) -> Result<BottleLock, OpError> {
    let deadline = std::time::Instant::now() + wait;
    let mut told = false;
    loop {
        match lock(home, name) {
            Err(OpError::Busy(_)) if std::time::Instant::now() < deadline => {
                if !told {
                    events.emit(Event::Note {
                        bottle: name.to_string(),
                        message: format!("waiting for another launch or removal of `{name}` (or the engine commands of one that was killed) to finish"),
                    });
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Takes bottle `name`'s lock, or says it is busy.
pub fn lock(home: &Home, name: &BottleName) -> Result<BottleLock, OpError> {
    let path = home.lock_file(name);
    let lock_err = |source| OpError::Lock {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(lock_err)?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    match file.try_lock() {
        Ok(()) => {
            crate::runner::lock_taken(&file);
            Ok(BottleLock { file })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(OpError::Busy(name.to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_bottle_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let x = BottleName::parse("x").unwrap();
        let held = lock(&home, &x).unwrap();
        assert!(matches!(lock(&home, &x), Err(OpError::Busy(_))));
        drop(held);
        assert!(lock(&home, &x).is_ok());
    }
}
