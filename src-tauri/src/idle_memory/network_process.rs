//! WebKitGTK's network process, once no webview needs it.
//!
//! WebKitGTK starts one network process for the app's webviews and never
//! ends it, even with no webview left (Tauri keeps the web context for the
//! app's life on Linux so that each window does not leave one more behind:
//! tauri-apps/tauri#14626). An app idling in the menu bar then keeps ~35
//! MiB for a window it does not have. WebKit starts a network process
//! whenever a webview needs one and none runs (as for the first window),
//! so the idle app ends it: the next window starts a new one.

/// The executable's name, as `/proc/PID/exe` ends.
const NETWORK_PROCESS: &str = "/WebKitNetworkProcess";

/// Ends this process's idle WebKit network processes (its children running
/// WebKit's network process executable). Call it only with no webview.
pub fn end_idle() {
    for pid in children(std::process::id()) {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
        if exe.is_ok_and(|e| e.to_string_lossy().ends_with(NETWORK_PROCESS)) {
            // SAFETY: a signal to our own child, named by a pid that cannot
            // be reused before WebKit (its parent: us) reaps it.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }
}

/// The processes whose parent is `parent`: the kernel's list of each of
/// its threads' children, or, on a kernel built without that list, every
/// process's parent (which reads a file per process on the machine).
fn children(parent: u32) -> Vec<u32> {
    listed_children(parent).unwrap_or_else(|| scanned_children(parent))
}

/// The children of `parent`'s threads, from `/proc/PID/task/TID/children`;
/// `None` if the kernel does not list them (no `CONFIG_PROC_CHILDREN`).
fn listed_children(parent: u32) -> Option<Vec<u32>> {
    let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).ok()?;
    let lists: Vec<String> = tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .collect();
    if lists.is_empty() {
        return None;
    }
    Some(
        lists
            .iter()
            .flat_map(|list| list.split_whitespace())
            .filter_map(|pid| pid.parse().ok())
            .collect(),
    )
}

/// The processes whose parent is `parent`, from every `/proc/*/stat`.
fn scanned_children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| parent_in_stat(&stat) == Some(parent))
        })
        .collect()
}

/// The parent pid in a `/proc/PID/stat` line: `pid (comm) state ppid …`,
/// where `comm` may hold spaces and parentheses.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_a_command_name_with_parentheses() {
        assert_eq!(parent_in_stat("123 (a) b) (c) S 45 123 123 0"), Some(45));
        assert_eq!(parent_in_stat("123 (WebKitNetworkPr) S 7 1 1"), Some(7));
        assert_eq!(parent_in_stat("garbage"), None);
    }

    /// A child running WebKit's network process by name is ended; any
    /// other child is not.
    #[test]
    fn only_a_child_running_the_network_process_is_ended() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("WebKitNetworkProcess");
        std::fs::copy("/bin/sleep", &fake).unwrap();
        let mut network = std::process::Command::new(&fake).arg("30").spawn().unwrap();
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // Started (exec done) before it is looked for.
        let started = std::time::Instant::now();
        while !std::fs::read_link(format!("/proc/{}/exe", network.id()))
            .is_ok_and(|e| e.ends_with("WebKitNetworkProcess"))
        {
            assert!(started.elapsed().as_secs() < 10, "the fake never started");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Both ways of finding a child find it.
        let me = std::process::id();
        assert!(children(me).contains(&network.id()));
        assert!(listed_children(me).is_some_and(|c| c.contains(&network.id())));
        assert!(scanned_children(me).contains(&network.id()));
        end_idle();
        let ended = network.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(ended.signal(), Some(libc::SIGTERM));
        assert!(
            other.try_wait().unwrap().is_none(),
            "another child was ended"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }
}
