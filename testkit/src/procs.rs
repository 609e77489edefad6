//! Processes as the measurements see them: a process and everything under
//! it, their memory (PSS) and their CPU time, read from `/proc`.

/// `pid` and every process under it (empty when `pid` is gone).
pub fn tree(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let ppid = stat_fields(p)?.get(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    if !parents.iter().any(|(p, _)| *p == pid) {
        return vec![];
    }
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    all
}

/// How many WebKit web processes run under `pid` (a window's webview has
/// one; a released one, none).
pub fn web_processes(pid: u32) -> usize {
    tree(pid)
        .into_iter()
        .filter(|p| {
            // `comm` is cut to 15 bytes: "WebKitWebProcess" reads "WebKitWebProces".
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.starts_with("WebKitWebProces"))
        })
        .count()
}

/// The first process under `pid` (or `pid` itself) whose command name is
/// `comm` (as `/proc/PID/comm` has it: cut to 15 bytes).
pub fn named(pid: u32, comm: &str) -> Option<u32> {
    tree(pid).into_iter().find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim_end() == comm)
    })
}

/// The proportional set size of `pid`, in KiB (0 when unreadable).
pub fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// User and system CPU ticks of `pids`, their reaped children's included.
pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| stat_fields(*p))
        .map(|f| {
            f.iter()
                .skip(11)
                .take(4)
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// How many of [`cpu_ticks`]' ticks make a second.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system and touches no memory.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// User and system CPU seconds `pid` has used so far (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    cpu_ticks(&[pid]) as f64 / ticks_per_second()
}

/// The fields of `/proc/PID/stat` after the command name (state first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        stat.rsplit(") ")
            .next()?
            .split(' ')
            .map(str::to_string)
            .collect(),
    )
}

/// The threads of `pid` now: each one's id and its `/proc/PID/task/TID`
/// directory (none when the process is gone).
pub fn threads(pid: u32) -> impl Iterator<Item = (u32, std::path::PathBuf)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| Some((task.file_name().to_str()?.parse().ok()?, task.path())))
}

/// How many times each thread of `pids` has gone to sleep and been woken
/// so far (its voluntary context switches), by thread id: an idle process
/// that nothing wakes does not add to it.
pub fn thread_wakeups(pids: &[u32]) -> std::collections::HashMap<u32, u64> {
    pids.iter()
        .flat_map(|p| threads(*p))
        .filter_map(|(tid, task)| {
            let status = std::fs::read_to_string(task.join("status")).ok()?;
            let switches = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
                .trim()
                .parse()
                .ok()?;
            Some((tid, switches))
        })
        .collect()
}

/// The wakeups between two [`thread_wakeups`] readings: each thread's since
/// `before`, or all of a thread's that started since. A thread that ended
/// in between takes its wakeups with it (the kernel keeps no count of
/// them), so this is a lower bound while threads come and go.
pub fn wakeups_between(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A thread that ends between two readings takes its count with it,
    /// and hides none of the others' (summed over the process, its count
    /// leaving made the others' look like none).
    #[test]
    fn wakeups_are_counted_by_thread_so_one_that_ends_hides_none_of_the_others() {
        let me = std::process::id();
        let (slept, ended) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let (slept_tx, slept_rx) = slept;
        let (end_tx, end_rx) = ended;
        let sleeper = std::thread::spawn(move || {
            for _ in 0..200 {
                std::thread::sleep(Duration::from_micros(100));
            }
            slept_tx.send(()).unwrap();
            let _ = end_rx.recv();
        });
        slept_rx.recv().unwrap();
        let before = thread_wakeups(&[me]);
        drop(end_tx);
        sleeper.join().unwrap();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let after = thread_wakeups(&[me]);
        assert!(
            wakeups_between(&before, &after) >= 20,
            "this thread's 20 sleeps: {}",
            wakeups_between(&before, &after)
        );
    }
}
