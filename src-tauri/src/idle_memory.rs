//! What the app gives back once it idles in the menu bar with no window.
//!
//! Starting, and making and releasing a window, touch far more than an
//! idle menu-bar app runs again: pages of WebKit, GTK and the app's own
//! code (read from their files: the loader's symbol look-ups, and the
//! kernel maps 64 KiB around each page it faults in), and heap that the
//! released webview freed but the allocator kept. Left alone these stay
//! counted in the app (on Linux, ~40 MiB of its ~60 MiB idle). So, a
//! while after the app settles without a window ([`SETTLE`]), it hands them
//! back: free heap to the system (`malloc_trim`), and the pages of its
//! read-only file mappings to the kernel (`MADV_PAGEOUT`).
//!
//! Paging out never loses data: a clean file page is read again from its
//! file when next used; a page that is not clean (a library's relocated
//! tables, made read-only after relocation) is kept, there being no swap,
//! or swapped, never dropped. Pages another process maps too are left
//! alone by the kernel. The cost is paid when the next window is made,
//! which reads those pages again (~40 ms here, `docs/performance.md`).
//! macOS manages an idle app's pages itself: there this does nothing.

use std::ops::Range;
use std::time::Duration;
use tauri::{AppHandle, Manager, Runtime};

/// How long the app must have had no window before it gives memory back:
/// long enough for the released webview's teardown and the first reads
/// after a start to finish, short against an idle afternoon.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Gives memory back after [`SETTLE`] if no window exists by then (one
/// timer per release or start, never a poll).
pub fn give_back_when_settled<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        if app.webview_windows().is_empty() {
            give_back();
        }
    });
}

/// Returns free heap and read-only file pages to the system (Linux).
pub fn give_back() {
    #[cfg(target_os = "linux")]
    linux::give_back();
}

/// The address ranges of the private read-only file mappings in `maps`
/// (the text of `/proc/PID/maps`): code and constant data of the
/// executable and its libraries. Writable mappings, shared ones, anonymous
/// ones and the kernel's (`[vdso]`, `[heap]`…) are left out.
pub fn read_only_file_mappings(maps: &str) -> Vec<Range<usize>> {
    maps.lines()
        .filter_map(|line| {
            // `start-end perms offset dev inode path`
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next()?.split_once('-')?;
            let perms = fields.next()?;
            let path = fields.nth(3)?;
            let file_backed = path.starts_with('/');
            let read_only_private = perms.as_bytes().get(1) == Some(&b'-') && perms.ends_with('p');
            if !(file_backed && read_only_private) {
                return None;
            }
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (start < end).then_some(start..end)
        })
        .collect()
}

#[cfg(target_os = "linux")]
mod linux {
    use super::read_only_file_mappings;

    pub fn give_back() {
        #[cfg(target_env = "gnu")]
        // SAFETY: glibc's `malloc_trim` only returns free memory.
        unsafe {
            libc::malloc_trim(0);
        }
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return;
        };
        for range in read_only_file_mappings(&maps) {
            // SAFETY: `MADV_PAGEOUT` is advice that never changes what
            // memory holds (see the module's docs), whatever is mapped
            // there by the time it runs. Failure (an old kernel) is fine.
            unsafe {
                libc::madvise(
                    range.start as *mut libc::c_void,
                    range.end - range.start,
                    libc::MADV_PAGEOUT,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
55d0c0a00000-55d0c0d15000 r--p 00000000 fe:00 10469411                   /opt/app/bottlebar
55d0c0d15000-55d0c1396000 r-xp 00315000 fe:00 10469411                   /opt/app/bottlebar
55d0c1396000-55d0c13f0000 r--p 00995000 fe:00 10469411                   /opt/app/bottlebar
55d0c13f0000-55d0c13f3000 rw-p 009ee000 fe:00 10469411                   /opt/app/bottlebar
55d0c2000000-55d0c2400000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f1000000000-7f1000010000 r--s 00000000 00:05 1234                       /memfd:wayland-shm (deleted)
7f2000000000-7f2000001000 ---p 00000000 00:00 0 
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
garbage line
";

    #[test]
    fn only_read_only_file_mappings_are_given_back() {
        assert_eq!(
            read_only_file_mappings(MAPS),
            vec![
                0x55d0c0a00000..0x55d0c0d15000,
                0x55d0c0d15000..0x55d0c1396000,
                0x55d0c1396000..0x55d0c13f0000,
            ]
        );
    }

    /// A file mapped read-only and read through is resident; given back,
    /// it is not, and it still reads the same.
    #[cfg(target_os = "linux")]
    #[test]
    fn pages_of_a_read_only_file_mapping_are_given_back_and_read_again() {
        use std::io::Write;
        // Beside the test binary: on disk (a tmpfs page cannot be paged out without swap).
        let dir = tempfile::tempdir_in(std::env::current_exe().unwrap().parent().unwrap()).unwrap();
        let path = dir.path().join("pages");
        let len = 4 << 20;
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut written = std::fs::File::create(&path).unwrap();
        written.write_all(&content).unwrap();
        // Clean in the page cache, as a library's pages are.
        written.sync_all().unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a fresh read-only private mapping of a file only this test writes.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
        // SAFETY: the mapping is `len` bytes long and lives until munmap below.
        let mapped = unsafe { std::slice::from_raw_parts(at as *const u8, len) };
        assert_eq!(mapped, &content[..]);
        let resident = || resident_kib(at as usize);
        assert!(
            resident() >= 4096 - 64,
            "read through: {} KiB resident",
            resident()
        );
        give_back();
        assert!(
            resident() < 1024,
            "given back: {} KiB still resident",
            resident()
        );
        assert_eq!(mapped, &content[..], "read again after being given back");
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(at, len) };
    }

    /// `Rss` of the mapping starting at `start`, from `/proc/self/smaps`.
    #[cfg(target_os = "linux")]
    fn resident_kib(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{start:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines.next().expect("the mapping is listed");
        lines
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("an Rss line")
    }
}
