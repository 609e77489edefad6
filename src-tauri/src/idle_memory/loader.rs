//! What the dynamic loader has loaded (Linux): the ranges that stay mapped
//! to their file for the process's life, made so by pinning the libraries
//! that hold them, and the loader's count of loads and unloads.

use super::mappings::covers;
use std::ffi::{CStr, CString};
use std::ops::Range;

/// The address ranges that stay mapped to their file for the rest of the
/// process's life, of those that hold any of `wanted`: the segments of the
/// executable and of the loaded libraries holding them, each library made
/// `RTLD_NODELETE` first (never unloaded, even by a later `dlclose`).
/// Anything else mapped from a file (a font, a cache) may be unmapped at
/// any time. Only the libraries holding `wanted` are pinned: the first
/// pin of a library costs the loader a look at all it depends on.
pub fn pin_owners(wanted: &[Range<usize>]) -> Vec<Range<usize>> {
    let holds =
        |segments: &[Range<usize>]| segments.iter().any(|s| wanted.iter().any(|w| covers(s, w)));
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
pub fn load_events() -> Option<(u64, u64)> {
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

/// The system's page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system and touches no memory.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A file mapped by hand: no library's.
        let file = tempfile::tempfile().unwrap();
        file.set_len(4096).unwrap();
        // SAFETY: a fresh read-only private mapping of a file only this test has.
        let by_hand = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        } as usize;
        assert_ne!(by_hand, libc::MAP_FAILED as usize);
        let for_good = pin_owners(&[exe_code.clone(), libc_code.clone(), by_hand..by_hand + 4096]);
        let holds = |r: &Range<usize>| for_good.iter().any(|g| covers(g, r));
        assert!(holds(&exe_code), "the executable's code");
        assert!(holds(&libc_code), "libc's code");
        assert!(!holds(&(by_hand..by_hand + 4096)), "a file mapped by hand");
        let exe_only = pin_owners(std::slice::from_ref(&exe_code));
        assert!(
            exe_only.iter().all(|g| !covers(g, &libc_code)),
            "libc, not wanted"
        );
        // SAFETY: unmapping the mapping made above, no longer used.
        unsafe { libc::munmap(by_hand as *mut libc::c_void, 4096) };
    }
}
