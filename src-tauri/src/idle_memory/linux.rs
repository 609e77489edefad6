//! The give-back's system calls (Linux): steps 2 and 3 of the module above.

use super::mappings::{droppable_mappings, parse_smaps, read_only_file_mappings};
use std::ffi::{CStr, CString};
use std::ops::Range;

/// Steps 2 and 3 of the module's docs; `pinned` says whether a range is
/// mapped for good (see [`pinned_segments`]).
pub fn give_back(pinned: impl Fn(&Range<usize>) -> bool) {
    #[cfg(target_env = "gnu")]
    // SAFETY: glibc's `malloc_trim` only returns free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mappings = parse_smaps(&smaps);
    let dropped = droppable_mappings(&mappings, pinned);
    for range in &dropped {
        // SAFETY: the range is a mapping of a file that stays mapped
        // there for the process's life, not writable and with no page
        // of its own (`droppable_mappings`): dropping its pages loses
        // nothing, the next use maps them again from the file.
        unsafe { advise(range.clone(), libc::MADV_DONTNEED) };
    }
    for range in read_only_file_mappings(&mappings) {
        if dropped.contains(&range) {
            continue;
        }
        // SAFETY: `MADV_PAGEOUT` is advice that never changes what
        // memory holds, whatever is mapped there by the time it runs.
        // Failure (an old kernel) is fine.
        unsafe { advise(range, libc::MADV_PAGEOUT) };
    }
}

/// # Safety
/// `advice` must not lose what `range` holds (see the callers).
unsafe fn advise(range: Range<usize>, advice: libc::c_int) {
    libc::madvise(
        range.start as *mut libc::c_void,
        range.end - range.start,
        advice,
    );
}

/// The address ranges mapped for the rest of the process's life: the
/// segments of the executable and of every loaded library, each library
/// made `RTLD_NODELETE` first (never unloaded, even by a later
/// `dlclose`). Anything else mapped from a file (a font, a cache) may be
/// unmapped at any time.
pub fn pinned_segments() -> Vec<Range<usize>> {
    // Pinned first, then located: a library pinned cannot be unloaded (or
    // loaded again elsewhere) between the two.
    let pinned: std::collections::HashSet<CString> = loaded_objects()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !name.is_empty() && pin(name))
        .collect();
    loaded_objects()
        .into_iter()
        .filter(|(name, _)| name.is_empty() || pinned.contains(name))
        .flat_map(|(_, segments)| segments)
        .collect()
}

/// Makes the loaded library `name` (as the loader names it) never
/// unloaded; false if no such library is loaded.
fn pin(name: &CStr) -> bool {
    // SAFETY: `RTLD_NOLOAD` never loads anything (so runs no library's
    // initializers): it finds an already loaded library — by the very name
    // the loader gave it, so without opening a file —, or fails.
    let handle = unsafe {
        libc::dlopen(
            name.as_ptr(),
            libc::RTLD_NOLOAD | libc::RTLD_NODELETE | libc::RTLD_LAZY,
        )
    };
    if handle.is_null() {
        return false;
    }
    // SAFETY: the handle just returned; the library stays (NODELETE).
    unsafe { libc::dlclose(handle) };
    true
}

/// Every object the loader has loaded: its name (empty for the
/// executable) and the page-aligned ranges of its loaded segments.
fn loaded_objects() -> Vec<(CString, Vec<Range<usize>>)> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid `info` for the call's length,
        // and `data` is the vector `loaded_objects` passed.
        let (info, out) = unsafe {
            (
                &*info,
                &mut *(data as *mut Vec<(CString, Vec<Range<usize>>)>),
            )
        };
        let name = if info.dlpi_name.is_null() {
            CString::default()
        } else {
            // SAFETY: a NUL-terminated name owned by the loader.
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_owned()
        };
        let headers = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: `dlpi_phnum` program headers at `dlpi_phdr`.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) }
        };
        let page = 4096usize;
        let segments = headers
            .iter()
            .filter(|h| h.p_type == libc::PT_LOAD && h.p_memsz > 0)
            .map(|h| {
                let start = info.dlpi_addr as usize + h.p_vaddr as usize;
                let end = start + h.p_memsz as usize;
                (start & !(page - 1))..end.next_multiple_of(page)
            })
            .collect();
        out.push((name, segments));
        0
    }
    let mut out: Vec<(CString, Vec<Range<usize>>)> = Vec::new();
    // SAFETY: `each` only reads what the loader hands it and pushes to
    // `out`, which outlives the call; it calls nothing of the loader's.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut out as *mut _ as *mut libc::c_void) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `len` bytes on disk beside the test binary (a tmpfs
    /// page cannot be paged out without swap), clean in the page cache
    /// as a library's pages are, and what it holds.
    fn disk_file(len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir_in(std::env::current_exe().unwrap().parent().unwrap()).unwrap();
        let path = dir.path().join("pages");
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut written = std::fs::File::create(&path).unwrap();
        written.write_all(&content).unwrap();
        written.sync_all().unwrap();
        (dir, path, content)
    }

    /// `path` mapped read-only and private, `len` bytes: its address.
    fn map(path: &std::path::Path, len: usize) -> usize {
        let file = std::fs::File::open(path).unwrap();
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
        at as usize
    }

    /// The mapping at `at`, `len` bytes, as a slice.
    fn bytes<'a>(at: usize, len: usize) -> &'a [u8] {
        // SAFETY: `at` is a live mapping of `len` bytes until the test's munmap.
        unsafe { std::slice::from_raw_parts(at as *const u8, len) }
    }

    /// `Rss` of the mapping starting at `start`, from `/proc/self/smaps`.
    fn resident_kib(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        parse_smaps(&smaps)
            .into_iter()
            .find(|m| m.range.start == start)
            .expect("the mapping is listed")
            .rss_kib
    }

    /// A file mapped read-only and read through is resident; given
    /// back, it is not, and it still reads the same.
    #[test]
    fn pages_of_a_read_only_file_mapping_are_given_back_and_read_again() {
        let len = 4 << 20;
        let (_dir, path, content) = disk_file(len);
        let at = map(&path, len);
        assert_eq!(bytes(at, len), &content[..]);
        assert!(
            resident_kib(at) >= 4096 - 64,
            "read through: {} KiB",
            resident_kib(at)
        );
        give_back(|_| false);
        assert!(
            resident_kib(at) < 1024,
            "given back: {} KiB still resident",
            resident_kib(at)
        );
        assert_eq!(
            bytes(at, len),
            &content[..],
            "read again after being given back"
        );
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(at as *mut libc::c_void, len) };
    }

    /// Pages another process maps too (as an X server shares Mesa's
    /// LLVM) are not paged out; when the file is mapped for good, the
    /// app lets go of them anyway, and they read the same.
    #[test]
    fn shared_pages_of_a_file_mapped_for_good_are_let_go_and_read_again() {
        let len = 2 << 20;
        let (_dir, path, content) = disk_file(len);
        let at = map(&path, len);
        assert_eq!(bytes(at, len), &content[..]);
        let sharer = Sharer::fork_reading(at, len);
        // Not mapped for good: paging out leaves shared pages alone.
        give_back(|_| false);
        assert!(
            resident_kib(at) >= 2048 - 64,
            "kept: {} KiB",
            resident_kib(at)
        );
        give_back(|r| *r == (at..at + len));
        assert!(
            resident_kib(at) < 256,
            "let go: {} KiB resident",
            resident_kib(at)
        );
        assert_eq!(
            bytes(at, len),
            &content[..],
            "read again after being let go"
        );
        drop(sharer);
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(at as *mut libc::c_void, len) };
    }

    /// A forked child that has read a mapping through (so its pages
    /// are mapped by two processes), killed when dropped.
    struct Sharer(libc::pid_t);

    impl Sharer {
        fn fork_reading(at: usize, len: usize) -> Sharer {
            let (mut fds, page) = ([0; 2], 4096);
            // SAFETY: a pipe into a local array.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            // SAFETY: the child only reads memory and calls
            // async-signal-safe functions (write, pause) before it dies.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                let mut sum = 0u8;
                for offset in (0..len).step_by(page) {
                    // SAFETY: inside the mapping, inherited from the parent.
                    sum ^= unsafe { std::ptr::read_volatile((at + offset) as *const u8) };
                }
                // SAFETY: async-signal-safe calls only.
                unsafe {
                    libc::write(fds[1], [sum].as_ptr().cast(), 1);
                    loop {
                        libc::pause();
                    }
                }
            }
            let mut read = [0u8];
            // SAFETY: reading one byte into a local array: the child is done reading.
            assert_eq!(
                unsafe { libc::read(fds[0], read.as_mut_ptr().cast(), 1) },
                1
            );
            // SAFETY: closing the pipe made above.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            Sharer(pid)
        }
    }

    impl Drop for Sharer {
        fn drop(&mut self) {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(self.0, libc::SIGKILL);
                libc::waitpid(self.0, std::ptr::null_mut(), 0);
            }
        }
    }

    /// The executable's and a loaded library's code are mapped for good;
    /// a file mapped by hand is not.
    #[test]
    fn only_the_executable_and_loaded_libraries_are_pinned() {
        let pinned = pinned_segments();
        let holds = |at: usize| pinned.iter().any(|r| r.contains(&at));
        let exe_code = only_the_executable_and_loaded_libraries_are_pinned as *const () as usize;
        let libc_code = libc::getpid as *const () as usize;
        assert!(holds(exe_code), "the executable's code");
        assert!(holds(libc_code), "libc's code");
        let (_dir, path, _) = disk_file(4096);
        let at = map(&path, 4096);
        assert!(!holds(at), "a file mapped by hand");
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(at as *mut libc::c_void, 4096) };
    }
}
