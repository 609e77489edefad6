//! The give-back's system calls (Linux): steps 2 and 3 of the module above.

use super::loader::{load_events, page_size};
use super::mappings::{covers, parse_maps, to_page_out, worth_dropping, Mapping, Pages};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// Steps 2 and 3 of the module's docs. `mapped_for_good` is given the
/// ranges worth dropping and answers the address ranges that stay mapped
/// to their file for the process's life, pinning what it must (see
/// `loader::pin_owners`).
pub fn give_back(mapped_for_good: impl FnOnce(&[Range<usize>]) -> Vec<Range<usize>>) {
    #[cfg(target_env = "gnu")]
    // SAFETY: glibc's `malloc_trim` only returns free memory.
    unsafe {
        libc::malloc_trim(0);
    }
    // Before the mappings are read: the loader's count of loads and
    // unloads (see below).
    let loads_before = load_events();
    let (Ok(maps), Some(mut pagemap)) =
        (std::fs::read_to_string("/proc/self/maps"), PageMap::open())
    else {
        return;
    };
    let counted: Vec<(Mapping, Pages)> = parse_maps(&maps)
        .into_iter()
        .filter(Mapping::private_read_only_file)
        .filter_map(|m| {
            let pages = pagemap.count(&m.range)?;
            Some((m, pages))
        })
        .collect();
    let wanted = worth_dropping(&counted);
    let for_good = mapped_for_good(&wanted);
    // A range counted before its library was pinned may have been another
    // mapping's then, if a library was unloaded or loaded meanwhile: the
    // pinned ones were in the loader's list throughout only if neither
    // count moved. Then the counts stand; otherwise they are taken again
    // (reading `pagemap` again would be a third of the give-back's CPU).
    let loads_moved = loads_before.is_none() || load_events() != loads_before;
    let dropped: Vec<Range<usize>> = wanted
        .into_iter()
        .filter(|r| for_good.iter().any(|g| covers(g, r)))
        .filter(|r| !loads_moved || pagemap.count(r).is_some_and(|p| p.own == 0))
        .collect();
    for range in &dropped {
        // SAFETY: the range is a mapping of a file that stays mapped
        // there for the process's life, not writable and with no page
        // of its own: dropping its pages loses nothing, the next use maps
        // them again from the file.
        unsafe { advise(range.clone(), libc::MADV_DONTNEED) };
    }
    for range in to_page_out(&counted, &dropped) {
        // SAFETY: `MADV_PAGEOUT` is advice that never changes what
        // memory holds, whatever is mapped there by the time it runs.
        // Failure (an old kernel) is fine.
        unsafe { advise(range, libc::MADV_PAGEOUT) };
    }
}

/// `/proc/self/pagemap`, read into one buffer a piece at a time (so a
/// mapping of a large file takes no more memory, and reading hundreds of
/// mappings faults in no new pages).
struct PageMap {
    file: File,
    buffer: Vec<u8>,
}

impl PageMap {
    /// Entries read at once: 128 KiB of them.
    const ENTRIES_A_READ: usize = 16 * 1024;

    fn open() -> Option<PageMap> {
        Some(PageMap {
            file: File::open("/proc/self/pagemap").ok()?,
            buffer: vec![0; Self::ENTRIES_A_READ * 8],
        })
    }

    /// The pages of `range`; `None` if they cannot be read.
    fn count(&mut self, range: &Range<usize>) -> Option<Pages> {
        let page = page_size();
        let (mut at, last) = (range.start / page, range.end.div_ceil(page));
        let mut pages = Pages::default();
        while at < last {
            let n = Self::ENTRIES_A_READ.min(last - at);
            let bytes = &mut self.buffer[..n * 8];
            self.file.read_exact_at(bytes, at as u64 * 8).ok()?;
            let entries = bytes
                .chunks_exact(8)
                .map(|e| u64::from_ne_bytes(e.try_into().expect("8 bytes")));
            pages = pages + Pages::count(entries);
            at += n;
        }
        Some(pages)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
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

    /// A file of `len` bytes mapped read-only and read through: its
    /// directory (to keep while the test runs), address and content.
    fn read_through(len: usize) -> (tempfile::TempDir, usize, Vec<u8>) {
        let (dir, path, content) = disk_file(len);
        let at = map(&path, len);
        assert_eq!(bytes(at, len), &content[..]);
        (dir, at, content)
    }

    /// The mapping at `at`, `len` bytes, as a slice.
    fn bytes<'a>(at: usize, len: usize) -> &'a [u8] {
        // SAFETY: `at` is a live mapping of `len` bytes until the test's munmap.
        unsafe { std::slice::from_raw_parts(at as *const u8, len) }
    }

    /// KiB of the mapping at `at`, `len` bytes, resident (the file's
    /// pages or its own), from `/proc/self/pagemap`.
    fn resident_kib(at: usize, len: usize) -> u64 {
        let pages = PageMap::open().unwrap().count(&(at..at + len)).unwrap();
        (pages.file + pages.own) * page_size() as u64 / 1024
    }

    /// A file mapped read-only and read through is resident; given
    /// back, it is not, and it still reads the same.
    #[test]
    fn pages_of_a_read_only_file_mapping_are_given_back_and_read_again() {
        let len = 4 << 20;
        let (_dir, at, content) = read_through(len);
        assert!(
            resident_kib(at, len) >= 4096 - 64,
            "read through: {} KiB",
            resident_kib(at, len)
        );
        give_back(|_| vec![]);
        assert!(
            resident_kib(at, len) < 1024,
            "given back: {} KiB still resident",
            resident_kib(at, len)
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
        let (_dir, at, content) = read_through(len);
        let sharer = Sharer::fork_reading(at, len);
        // Not mapped for good: paging out leaves shared pages alone.
        give_back(|_| vec![]);
        assert!(
            resident_kib(at, len) >= 2048 - 64,
            "kept: {} KiB",
            resident_kib(at, len)
        );
        give_back(|wanted| {
            assert!(wanted.contains(&(at..at + len)), "worth dropping");
            let whole = at..at + len;
            vec![whole]
        });
        assert!(
            resident_kib(at, len) < 256,
            "let go: {} KiB resident",
            resident_kib(at, len)
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

    /// A page the process wrote in a private mapping of a file, made
    /// read-only since (as the loader does to relocated tables), is its
    /// own copy: it is not dropped even where the file is mapped for good,
    /// so it keeps what was written.
    #[test]
    fn a_page_written_in_a_read_only_mapping_is_never_dropped() {
        let len = 1 << 20;
        let (_dir, path, content) = disk_file(len);
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a fresh private mapping of a file only this test writes
        // (writing it makes copies; the file is unchanged).
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        } as usize;
        assert_ne!(at, libc::MAP_FAILED as usize);
        assert_eq!(bytes(at, len), &content[..]);
        let written = at + 3 * page_size() + 5;
        // SAFETY: inside the mapping, writable until the mprotect below.
        unsafe {
            std::ptr::write_volatile(written as *mut u8, !content[written - at]);
            assert_eq!(
                libc::mprotect(at as *mut libc::c_void, len, libc::PROT_READ),
                0
            );
        }
        let mut asked = false;
        give_back(|wanted| {
            asked = wanted.contains(&(at..at + len));
            let whole = at..at + len;
            vec![whole]
        });
        // SAFETY: inside the mapping, still mapped.
        let read = unsafe { std::ptr::read_volatile(written as *const u8) };
        assert_eq!(read, !content[written - at], "what was written is kept");
        assert!(!asked, "a mapping with a copy is not worth dropping");
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(at as *mut libc::c_void, len) };
    }

    /// A library loaded (or unloaded) while the give-back pins means
    /// what it counted before may have been another mapping's: it counts
    /// again, and keeps a page that has become a copy meanwhile.
    #[test]
    fn pages_are_counted_again_when_a_library_was_loaded_meanwhile() {
        let len = 1 << 20;
        let (_dir, at, content) = read_through(len);
        let written = at + 7 * page_size();
        give_back(|wanted| {
            assert!(wanted.contains(&(at..at + len)), "clean when counted");
            // SAFETY: the mapping made above; made writable for one write
            // (a copy of the page), then read-only again.
            unsafe {
                libc::mprotect(
                    at as *mut libc::c_void,
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                );
                std::ptr::write_volatile(written as *mut u8, !content[written - at]);
                libc::mprotect(at as *mut libc::c_void, len, libc::PROT_READ);
            }
            load_and_unload_a_library();
            let whole = at..at + len;
            vec![whole]
        });
        // SAFETY: inside the mapping, still mapped.
        let read = unsafe { std::ptr::read_volatile(written as *const u8) };
        assert_eq!(read, !content[written - at], "what was written is kept");
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(at as *mut libc::c_void, len) };
    }

    /// Loads a library of glibc's that no program here uses, and unloads it.
    fn load_and_unload_a_library() {
        let before = load_events();
        let handle = ["libthread_db.so.1", "libanl.so.1", "libBrokenLocale.so.1"]
            .iter()
            .find_map(|name| {
                let name = CString::new(*name).unwrap();
                // SAFETY: glibc's own small libraries, whose initializers
                // do nothing of note.
                let handle =
                    unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
                (!handle.is_null()).then_some(handle)
            })
            .expect("one of glibc's small libraries loads");
        // SAFETY: the handle just returned, unused since.
        unsafe { libc::dlclose(handle) };
        assert_ne!(load_events(), before, "the loader counted a load");
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
}
