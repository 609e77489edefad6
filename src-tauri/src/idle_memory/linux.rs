//! The give-back's system calls (Linux): steps 2 and 3 of the module above.

use super::mappings::{parse_maps, to_page_out, worth_dropping, Mapping, Pages};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// Steps 2 and 3 of the module's docs. `mapped_for_good` is given the
/// ranges worth dropping and answers the address ranges that stay mapped
/// to their file for the process's life, pinning what it must (see
/// [`pin_owners`]).
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
        .filter(|r| {
            for_good
                .iter()
                .any(|g| g.start <= r.start && r.end <= g.end)
        })
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

/// The system's page size.
fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system and touches no memory.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
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

/// The address ranges that stay mapped to their file for the rest of the
/// process's life, of those that hold any of `wanted`: the segments of the
/// executable and of the loaded libraries holding them, each library made
/// `RTLD_NODELETE` first (never unloaded, even by a later `dlclose`).
/// Anything else mapped from a file (a font, a cache) may be unmapped at
/// any time. Only the libraries holding `wanted` are pinned: the first
/// pin of a library costs the loader a look at all it depends on.
pub fn pin_owners(wanted: &[Range<usize>]) -> Vec<Range<usize>> {
    let holds = |segments: &[Range<usize>]| {
        segments
            .iter()
            .any(|s| wanted.iter().any(|w| s.start <= w.start && w.end <= s.end))
    };
    // Pinned first, then located: a library pinned cannot be unloaded (or
    // loaded again elsewhere) between the two.
    let pinned: std::collections::HashSet<CString> = loaded_objects()
        .into_iter()
        .filter(|(_, segments)| holds(segments))
        .map(|(name, _)| name)
        .filter(|name| name.is_empty() || pin(name))
        .collect();
    loaded_objects()
        .into_iter()
        .filter(|(name, _)| pinned.contains(name))
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

/// How many objects the loader has loaded and unloaded since the process
/// started (`dl_iterate_phdr`'s `dlpi_adds` and `dlpi_subs`, which it
/// counts as it adds an object to its list or removes one); `None` if the
/// loader does not say.
fn load_events() -> Option<(u64, u64)> {
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        let counted = std::mem::offset_of!(libc::dl_phdr_info, dlpi_subs)
            + std::mem::size_of::<libc::c_ulonglong>();
        if size >= counted {
            // SAFETY: the loader passes a valid `info` of `size` bytes, and
            // `data` is the option `load_events` passed.
            unsafe {
                *(data as *mut Option<(u64, u64)>) = Some(((*info).dlpi_adds, (*info).dlpi_subs));
            }
        }
        1
    }
    let mut events: Option<(u64, u64)> = None;
    // SAFETY: `first` only reads what the loader hands it and writes
    // `events`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), &mut events as *mut _ as *mut libc::c_void) };
    events
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
        let page = page_size();
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
        let (_dir, path, content) = disk_file(len);
        let at = map(&path, len);
        assert_eq!(bytes(at, len), &content[..]);
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
        let (_dir, path, content) = disk_file(len);
        let at = map(&path, len);
        assert_eq!(bytes(at, len), &content[..]);
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
        let (_dir, path, content) = disk_file(len);
        let at = map(&path, len);
        assert_eq!(bytes(at, len), &content[..]);
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

    /// The executable's and a loaded library's code are mapped for good
    /// when something in them is wanted; a file mapped by hand is not,
    /// and a library holding nothing wanted is not pinned.
    #[test]
    fn only_the_executable_and_the_libraries_holding_what_is_wanted_are_pinned() {
        let page = |at: usize| (at & !(page_size() - 1))..(at & !(page_size() - 1)) + page_size();
        let exe_code = page(
            only_the_executable_and_the_libraries_holding_what_is_wanted_are_pinned as *const ()
                as usize,
        );
        let libc_code = page(libc::getpid as *const () as usize);
        let (_dir, path, _) = disk_file(4096);
        let by_hand = map(&path, 4096);
        let for_good = pin_owners(&[exe_code.clone(), libc_code.clone(), by_hand..by_hand + 4096]);
        let holds = |r: &Range<usize>| {
            for_good
                .iter()
                .any(|g| g.start <= r.start && r.end <= g.end)
        };
        assert!(holds(&exe_code), "the executable's code");
        assert!(holds(&libc_code), "libc's code");
        assert!(!holds(&(by_hand..by_hand + 4096)), "a file mapped by hand");
        let exe_only = pin_owners(std::slice::from_ref(&exe_code));
        assert!(
            exe_only
                .iter()
                .all(|g| !(g.start <= libc_code.start && libc_code.end <= g.end)),
            "libc, not wanted"
        );
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(by_hand as *mut libc::c_void, 4096) };
    }
}
