//! File notifications for what waits on files the sidecar writes (the
//! app's watchers, `bottle logs --follow`), so that none of them polls: a
//! task waits on [`DirWatch::changed`] (inotify on Linux, FSEvents on
//! macOS, through the `notify` crate) and says which directories it cares
//! about now with [`DirWatch::watch_only`].
//!
//! Where the system refuses a watcher (inotify's limits spent), `changed`
//! falls back to a slow tick rather than leave the task deaf.

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often a task without a working watcher looks anyway.
const FALLBACK_TICK: Duration = Duration::from_secs(1);

/// Watches a set of directories (each without its subdirectories) and
/// wakes one task when anything in them changes.
pub struct DirWatch {
    watcher: Option<RecommendedWatcher>,
    /// Each directory watched, with the identity it had when the watch was
    /// set: one removed and made again needs a new watch.
    watched: BTreeMap<PathBuf, Option<u64>>,
    /// Paths removed since the last [`DirWatch::watch_only`] (a directory
    /// made again may reuse its inode, so its identity alone cannot tell).
    removed: Arc<Mutex<BTreeSet<PathBuf>>>,
    changed: Arc<Notify>,
}

impl DirWatch {
    /// A watcher with nothing watched yet.
    pub fn new() -> Self {
        let changed = Arc::new(Notify::new());
        let removed = Arc::new(Mutex::new(BTreeSet::new()));
        let (signal, gone) = (changed.clone(), removed.clone());
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match event {
                // Reads wake nobody: only what can change what is read.
                Ok(e) if matches!(e.kind, EventKind::Access(_)) => return,
                Ok(e) if matches!(e.kind, EventKind::Remove(_)) => {
                    gone.lock().unwrap().extend(e.paths);
                }
                _ => {}
            }
            signal.notify_one();
        });
        if let Err(e) = &watcher {
            eprintln!("bottlebar: no file notifications ({e}); looking once a second instead");
        }
        Self {
            watcher: watcher.ok(),
            watched: BTreeMap::new(),
            removed,
            changed,
        }
    }

    /// Watches exactly `dirs` from now on. One that does not exist yet is
    /// stood in for by its nearest existing ancestor, so that its making
    /// wakes the task, which calls again.
    pub fn watch_only(&mut self, dirs: &BTreeSet<PathBuf>) {
        self.watch_only_with(dirs, || {});
    }

    /// [`DirWatch::watch_only`], calling `between` after each look for what
    /// exists and before the watches are set (a test makes a directory there).
    ///
    /// A stand-in is watched only after its missing child was looked for, so
    /// a child made in between raised no event anywhere (the launch makes a
    /// bottle's directories one after the other while the window follows
    /// it: the audit follower then slept through every entry). So after the
    /// watches are set, what exists is looked at again, until it stands
    /// still; each round finds a deeper directory, so few rounds are needed.
    fn watch_only_with(&mut self, dirs: &BTreeSet<PathBuf>, mut between: impl FnMut()) {
        const ROUNDS: usize = 16;
        for _ in 0..ROUNDS {
            let stand_ins = stand_ins(dirs);
            between();
            self.set_watches(&stand_ins);
            if stand_ins == self::stand_ins(dirs) {
                return;
            }
        }
    }

    /// Watches exactly `stand_ins` (existing directories).
    fn set_watches(&mut self, stand_ins: &BTreeSet<PathBuf>) {
        let Some(watcher) = &mut self.watcher else {
            return;
        };
        let removed = std::mem::take(&mut *self.removed.lock().unwrap());
        self.watched.retain(|dir, identity| {
            let keep =
                stand_ins.contains(dir) && !removed.contains(dir) && *identity == identity_of(dir);
            if !keep {
                let _ = watcher.unwatch(dir);
            }
            keep
        });
        for dir in stand_ins {
            if self.watched.contains_key(dir) {
                continue;
            }
            let identity = identity_of(dir);
            if identity.is_some() && watcher.watch(dir, RecursiveMode::NonRecursive).is_ok() {
                self.watched.insert(dir.clone(), identity);
            }
        }
    }

    /// The directories watched now.
    #[cfg(test)]
    fn watched(&self) -> impl Iterator<Item = &PathBuf> {
        self.watched.keys()
    }

    /// Waits until something changed in a watched directory since the last
    /// call returned (changes in between are not lost: one wake stands for
    /// all of them).
    pub async fn changed(&self) {
        if self.watcher.is_some() {
            self.changed.notified().await;
        } else {
            tokio::time::sleep(FALLBACK_TICK).await;
        }
    }
}

impl Default for DirWatch {
    fn default() -> Self {
        Self::new()
    }
}

/// What stands in for each of `dirs`: itself or its nearest existing ancestor.
fn stand_ins(dirs: &BTreeSet<PathBuf>) -> BTreeSet<PathBuf> {
    dirs.iter().filter_map(|d| nearest_existing(d)).collect()
}

/// `dir`, or its nearest ancestor that exists.
fn nearest_existing(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| identity_of(d).is_some())
        .map(Path::to_path_buf)
}

/// The directory's inode, `None` when it is not there.
fn identity_of(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir)
            .ok()
            .filter(|m| m.is_dir())
            .map(|m| m.ino())
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(dir)
            .ok()
            .filter(|m| m.is_dir())
            .map(|_| 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits for a wake, at most two seconds: whether one came.
    async fn woken(w: &DirWatch) -> bool {
        tokio::time::timeout(Duration::from_secs(2), w.changed())
            .await
            .is_ok()
    }

    /// No wake arrives within a quarter second.
    async fn quiet(w: &DirWatch) -> bool {
        tokio::time::timeout(Duration::from_millis(250), w.changed())
            .await
            .is_err()
    }

    #[tokio::test]
    async fn a_change_in_a_watched_directory_wakes_and_nothing_else_does() {
        let root = tempfile::tempdir().unwrap();
        let (watched, other) = (root.path().join("watched"), root.path().join("other"));
        std::fs::create_dir(&watched).unwrap();
        std::fs::create_dir(&other).unwrap();
        let mut w = DirWatch::new();
        w.watch_only(&BTreeSet::from([watched.clone()]));
        assert!(quiet(&w).await, "nothing changed yet");

        std::fs::write(other.join("f"), "x").unwrap();
        assert!(quiet(&w).await, "a directory not watched");

        // Written as the sidecar writes: a temporary file renamed over.
        std::fs::write(watched.join(".tmp"), "x").unwrap();
        std::fs::rename(watched.join(".tmp"), watched.join("r.json")).unwrap();
        assert!(woken(&w).await, "a file renamed into a watched directory");
        // The rest of that burst (create, write, rename) is one wake at
        // most, not a queue of them.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tokio::time::timeout(Duration::from_millis(10), w.changed()).await;
        assert!(quiet(&w).await, "the burst is spent");

        w.watch_only(&BTreeSet::new());
        std::fs::write(watched.join("later"), "x").unwrap();
        assert!(quiet(&w).await, "no longer watched");
    }

    #[tokio::test]
    async fn a_directory_not_there_yet_is_watched_through_its_ancestors() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("state/demo/audit");
        let dirs = BTreeSet::from([deep.clone()]);
        let mut w = DirWatch::new();
        w.watch_only(&dirs);
        for made in ["state", "state/demo", "state/demo/audit"] {
            std::fs::create_dir(root.path().join(made)).unwrap();
            assert!(woken(&w).await, "{made} appeared");
            w.watch_only(&dirs);
        }
        assert_eq!(w.watched().collect::<Vec<_>>(), [&deep]);
        std::fs::write(deep.join("audit.jsonl"), "{}").unwrap();
        assert!(
            woken(&w).await,
            "a file written in the directory once it is there"
        );
    }

    #[tokio::test]
    async fn a_directory_that_appears_later_or_is_made_again_is_watched() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("requests");
        let dirs = BTreeSet::from([root.path().to_path_buf(), dir.clone()]);
        let mut w = DirWatch::new();
        w.watch_only(&dirs);
        assert_eq!(w.watched().count(), 1, "only the parent exists");

        std::fs::create_dir(&dir).unwrap();
        assert!(woken(&w).await, "the parent saw it appear");
        w.watch_only(&dirs);
        assert_eq!(w.watched().count(), 2);

        std::fs::remove_dir(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        while tokio::time::timeout(Duration::from_millis(200), w.changed())
            .await
            .is_ok()
        {}
        w.watch_only(&dirs);
        std::fs::write(dir.join("r.json"), "x").unwrap();
        assert!(woken(&w).await, "the directory made again is watched again");
    }

    #[tokio::test]
    async fn a_directory_made_while_its_stand_in_is_being_watched_is_not_missed() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("state/demo/audit");
        std::fs::create_dir_all(root.path().join("state/demo")).unwrap();
        let mut w = DirWatch::new();
        let mut made = false;
        // `audit` appears after `state/demo` was found to stand in for it
        // and before that stand-in is watched: no event tells of it.
        w.watch_only_with(&BTreeSet::from([deep.clone()]), || {
            if !made {
                std::fs::create_dir(&deep).unwrap();
                made = true;
            }
        });
        assert_eq!(w.watched().collect::<Vec<_>>(), [&deep]);
        std::fs::write(deep.join("audit.jsonl"), "{}").unwrap();
        assert!(woken(&w).await, "an entry written in the new directory");
    }
}
