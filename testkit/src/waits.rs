//! How a process's threads wait: with a deadline (a timer that will wake
//! them) or without (only an event can). Read from
//! `/proc/PID/task/TID/syscall`, which names the system call a blocked
//! thread is in and its arguments: a poll, an epoll wait, a futex or a
//! sleep carries its timeout there.
//!
//! An idle program whose threads all wait without a deadline wakes for
//! nothing but events; a thread seen in a timed wait every time it is seen
//! blocked, and woken meanwhile more than once, is a timer (one far
//! deadline, such as the end of a wait minutes away, wakes it once; a
//! deadline known to lie beyond the looking, as a poll's, none). The
//! numbers are x86-64's; elsewhere nothing is judged ([`Wait::Unknown`]).

use std::collections::HashMap;
use std::time::Duration;

/// What a thread was doing when looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Blocked until an event (no timeout), or in a call that has none.
    Untimed,
    /// Blocked with a timeout, or sleeping: a deadline will wake it. The
    /// timeout where the call carries it as a number (poll, epoll), `None`
    /// where it lies behind a pointer.
    Timed(Option<Duration>),
    /// Running, gone, or unreadable: nothing to judge.
    Unknown,
}

/// How each thread of `pid` waits now, by thread id.
pub fn thread_waits(pid: u32) -> HashMap<u32, Wait> {
    crate::procs::threads(pid)
        .map(|(tid, task)| {
            let line = std::fs::read_to_string(task.join("syscall")).unwrap_or_default();
            (tid, wait_of(&line))
        })
        .collect()
}

/// Judges one `/proc/…/syscall` line: the call's number, then its six
/// arguments in hex (or `running`, or `-1 …` outside a call).
pub fn wait_of(line: &str) -> Wait {
    let mut fields = line.split_whitespace();
    let Some(Ok(number)) = fields.next().map(str::parse::<i64>) else {
        return Wait::Unknown;
    };
    let args: Vec<u64> = fields
        .take(6)
        .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .collect();
    if number < 0 || args.len() < 6 || !cfg!(target_arch = "x86_64") {
        return Wait::Unknown;
    }
    // A timeout in milliseconds, where -1 (as an int) is none.
    let millis = |i: usize| match args[i] as u32 as i32 {
        -1 => Wait::Untimed,
        ms => Wait::Timed(Some(Duration::from_millis(ms.max(0) as u64))),
    };
    // A pointer to a timeout, where null is none.
    let pointer = |i: usize, waits: bool| match args[i] {
        0 => Wait::Untimed,
        _ if !waits => Wait::Untimed,
        _ => Wait::Timed(None),
    };
    match number {
        7 => millis(2),                          // poll
        232 | 281 => millis(3),                  // epoll_wait, epoll_pwait
        441 => pointer(3, true),                 // epoll_pwait2
        271 => pointer(2, true),                 // ppoll
        23 | 270 => pointer(4, true),            // select, pselect6
        202 => pointer(3, futex_waits(args[1])), // futex
        449 => pointer(3, true),                 // futex_waitv
        35 | 230 => Wait::Timed(None),           // nanosleep, clock_nanosleep
        _ => Wait::Untimed,
    }
}

/// Whether a futex operation waits (its fourth argument then a timeout).
fn futex_waits(op: u64) -> bool {
    const WAIT: u64 = 0;
    const LOCK_PI: u64 = 6;
    const WAIT_BITSET: u64 = 9;
    const WAIT_REQUEUE_PI: u64 = 11;
    const LOCK_PI2: u64 = 13;
    matches!(
        op & 0x7f,
        WAIT | LOCK_PI | WAIT_BITSET | WAIT_REQUEUE_PI | LOCK_PI2
    )
}

/// A thread found waiting on a timer, and how it was seen waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerThread {
    /// Its thread id.
    pub tid: u32,
    /// Its name (`comm`).
    pub name: String,
    /// Its waits, one a look.
    pub waits: Vec<Wait>,
}

/// Looks at `pid`'s threads `samples` times, `every` apart, and returns the
/// threads that were seen blocked at least three times, in a timed wait
/// every time (a timeout known to be as long as the looking does not
/// count: it cannot wake the thread twice meanwhile), and woke at least
/// twice since `woken_before` (a [`crate::procs::thread_wakeups`]
/// reading): timers. Threads gone by the last look are left out (a
/// deadline that ends a thread is not a timer).
pub fn timer_threads(
    pid: u32,
    samples: usize,
    every: Duration,
    woken_before: &HashMap<u32, u64>,
) -> Vec<TimerThread> {
    let span = every * samples as u32;
    let mut seen: HashMap<u32, Vec<Wait>> = HashMap::new();
    let mut last = HashMap::new();
    for i in 0..samples {
        if i > 0 {
            std::thread::sleep(every);
        }
        last = thread_waits(pid);
        for (tid, wait) in &last {
            seen.entry(*tid).or_default().push(*wait);
        }
    }
    let on_a_timer = |waits: &[Wait]| {
        let blocked = waits.iter().filter(|w| **w != Wait::Unknown).count();
        let near = |w: &&Wait| {
            matches!(w, Wait::Timed(None)) || matches!(w, Wait::Timed(Some(t)) if *t < span)
        };
        blocked >= 3 && waits.iter().filter(near).count() == blocked
    };
    let woken_after = crate::procs::thread_wakeups(&[pid]);
    let woke_again = |tid: &u32| {
        let before = woken_before.get(tid).copied().unwrap_or(0);
        woken_after
            .get(tid)
            .is_some_and(|after| after - before >= 2)
    };
    let mut timers: Vec<TimerThread> = seen
        .into_iter()
        .filter(|(tid, waits)| last.contains_key(tid) && on_a_timer(waits) && woke_again(tid))
        .map(|(tid, waits)| {
            let name =
                std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
            TimerThread {
                tid,
                name: name.trim_end().to_string(),
                waits,
            }
        })
        .collect();
    timers.sort_by_key(|t| t.tid);
    timers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn lines_are_judged_by_their_call_and_its_timeout() {
        let poll_forever = "7 0x55b9025565e0 0x3 0xffffffff 0x0 0x0 0x0 0x7ffd0b0ccd80 0x7f20";
        assert_eq!(wait_of(poll_forever), Wait::Untimed);
        let poll_5s = "7 0x55b9025565e0 0x3 0x1388 0x0 0x0 0x0 0x7ffd0b0ccd80 0x7f20";
        assert_eq!(wait_of(poll_5s), Wait::Timed(Some(Duration::from_secs(5))));
        let futex_forever = "202 0x55b90253e908 0x89 0x2 0x0 0x0 0x30303030ffffffff 0x7f 0x7f";
        assert_eq!(wait_of(futex_forever), Wait::Untimed);
        let futex_timed = "202 0x55b9025688e8 0x89 0x0 0x7f1ff67f8f80 0x0 0xffffffff 0x7f 0x7f";
        assert_eq!(wait_of(futex_timed), Wait::Timed(None));
        let futex_wake = "202 0x55b9025688e8 0x81 0x1 0x7f1ff67f8f80 0x0 0x0 0x7f 0x7f";
        assert_eq!(wait_of(futex_wake), Wait::Untimed);
        let epoll = "281 0x14 0x7f1fe4001020 0x400 0xffffffffffffffff 0x0 0x0 0x7f 0x55";
        assert_eq!(wait_of(epoll), Wait::Untimed);
        let epoll_400ms = "232 0xd 0x55b902545170 0x400 0x190 0x0 0x55b902538b10 0x7f 0x7f";
        assert_eq!(
            wait_of(epoll_400ms),
            Wait::Timed(Some(Duration::from_millis(400)))
        );
        assert_eq!(wait_of("running"), Wait::Unknown);
        assert_eq!(wait_of("-1 0x7ffd0b0ccd80 0x7f20"), Wait::Unknown);
        assert_eq!(wait_of(""), Wait::Unknown);
    }

    /// Real threads of this process, in real waits: one sleeping in a loop,
    /// one waiting on a channel with a timeout in a loop, one waiting once
    /// with a far deadline, one without, one polling with a far deadline
    /// and woken by events three times; only the first two are timers.
    #[test]
    fn a_thread_on_a_timer_is_told_from_one_waiting_for_an_event() {
        let me = std::process::id();
        let (_keep, forever) = mpsc::channel::<()>();
        let (_keep_too, timed) = mpsc::channel::<()>();
        let (tids_to, tids) = mpsc::channel();
        let spawn = |name: &'static str, wait: Box<dyn FnOnce() + Send>| {
            let tids_to = tids_to.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    let tid = unsafe { libc::gettid() } as u32;
                    tids_to.send((name, tid)).unwrap();
                    wait();
                })
                .unwrap();
        };
        spawn(
            "sleeper",
            Box::new(|| loop {
                std::thread::sleep(Duration::from_millis(20))
            }),
        );
        spawn(
            "timed-recv",
            Box::new(move || while timed.recv_timeout(Duration::from_millis(20)).is_err() {}),
        );
        spawn(
            "far-deadline",
            Box::new(|| std::thread::sleep(Duration::from_secs(600))),
        );
        spawn(
            "event-recv",
            Box::new(move || {
                let _ = forever.recv();
            }),
        );
        // A main loop's way: a poll with a deadline far off, woken by events.
        let mut pipe = [0; 2];
        // SAFETY: `pipe` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        let [events, wake] = pipe;
        spawn(
            "far-poll",
            Box::new(move || loop {
                let mut fd = libc::pollfd {
                    fd: events,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd; the byte read is into a local.
                unsafe {
                    libc::poll(&mut fd, 1, 600_000);
                    libc::read(events, [0u8; 1].as_mut_ptr().cast(), 1);
                }
            }),
        );
        let ids: HashMap<&str, u32> = (0..5).map(|_| tids.recv().unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        let before = crate::procs::thread_wakeups(&[me]);
        let waker = std::thread::spawn(move || {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(60));
                // SAFETY: one byte from a local into the pipe's write end.
                unsafe { libc::write(wake, [1u8].as_ptr().cast(), 1) };
            }
        });
        let timers = timer_threads(me, 6, Duration::from_millis(50), &before);
        waker.join().unwrap();
        let timer = |name: &str| timers.iter().any(|t| t.tid == ids[name]);
        assert!(
            timer("sleeper") && timer("timed-recv"),
            "{timers:?} {ids:?}"
        );
        assert!(
            !timer("event-recv") && !timer("far-deadline") && !timer("far-poll"),
            "{timers:?} {ids:?}"
        );
    }
}
