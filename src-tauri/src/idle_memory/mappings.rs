//! The process's mappings as `/proc/PID/maps` lists them, what their pages
//! are as `/proc/PID/pagemap` says, and which of them the idle app may give
//! back (see the module above for why each is safe).
//!
//! `maps` and `pagemap` rather than `smaps`: `smaps` has every line of
//! `maps` and the page counts, but the kernel works out each page's share
//! of every mapping for it (the heap's and the stacks' too) and formats
//! ~25 lines a mapping — 780 KB of text for a WebKit app, two-thirds of the
//! give-back's CPU (`docs/performance.md`). `pagemap` is a word a page,
//! read only for the mappings that may be given back.

use std::ops::Range;

/// One mapping of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Its addresses.
    pub range: Range<usize>,
    /// `rwxp`/`rwxs` as listed (`r-xp`: readable, executable, private).
    pub perms: String,
    /// The file mapped, if any (`[heap]` and the like are not files).
    pub path: Option<String>,
}

impl Mapping {
    /// A private mapping of a file, not writable: the code and constant
    /// data of the executable and its libraries, fonts, caches.
    pub fn private_read_only_file(&self) -> bool {
        self.path.is_some()
            && self.perms.as_bytes().get(1) == Some(&b'-')
            && self.perms.ends_with('p')
    }
}

/// The mappings listed in `maps` (the text of `/proc/PID/maps`); lines it
/// cannot read are skipped.
pub fn parse_maps(maps: &str) -> Vec<Mapping> {
    maps.lines().filter_map(parse_line).collect()
}

/// A line of `maps`: `start-end perms offset dev inode [path]`.
fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    if perms.len() != 4 || start >= end {
        return None;
    }
    let path = fields.nth(3).filter(|p| p.starts_with('/'));
    Some(Mapping {
        range: start..end,
        perms: perms.to_string(),
        path: path.map(str::to_string),
    })
}

/// Whether `outer` holds all of `inner`.
pub fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// What a mapping's pages are, counted from its `pagemap` entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pages {
    /// Resident pages of the file (the page cache's, as mapped).
    pub file: u64,
    /// Of those, the ones no other process maps.
    pub exclusive_file: u64,
    /// Pages of its own: written since mapped (copies, resident or
    /// swapped out), or anything `pagemap` cannot say is the file's.
    pub own: u64,
}

/// `pagemap`'s bits (the kernel's `Documentation/admin-guide/mm/pagemap.rst`).
const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;
const FILE_OR_SHARED_ANON: u64 = 1 << 61;
const EXCLUSIVE: u64 = 1 << 56;

impl Pages {
    /// Counts the entries of a mapping's pages. In a private mapping, a
    /// page present but not the file's is a copy the process wrote, and a
    /// swapped one can only be such a copy (the file's pages are read
    /// again, never swapped): dropping either would lose what it holds.
    pub fn count(entries: impl IntoIterator<Item = u64>) -> Pages {
        let mut pages = Pages::default();
        for entry in entries {
            if entry & SWAPPED != 0 {
                pages.own += 1;
            } else if entry & PRESENT != 0 {
                if entry & FILE_OR_SHARED_ANON == 0 {
                    pages.own += 1;
                } else {
                    pages.file += 1;
                    if entry & EXCLUSIVE != 0 {
                        pages.exclusive_file += 1;
                    }
                }
            }
        }
        pages
    }

    /// At most how many pages letting go of them takes off the process's
    /// proportional set size: a page only it maps counts whole, one it
    /// shares half at most.
    fn worth(&self) -> u64 {
        self.exclusive_file + (self.file - self.exclusive_file) / 2
    }

    /// Resident pages of the file and none of its own.
    fn clean(&self) -> bool {
        self.own == 0 && self.file > 0
    }
}

impl std::ops::Add for Pages {
    type Output = Pages;

    /// The counts of two mappings together.
    fn add(self, other: Pages) -> Pages {
        Pages {
            file: self.file + other.file,
            exclusive_file: self.exclusive_file + other.exclusive_file,
            own: self.own + other.own,
        }
    }
}

/// Pages a file's clean mappings must be worth (see [`Pages::worth`])
/// for it to be pinned and dropped: 64 KiB with 4 KiB pages. Pinning a
/// library the first time costs the loader a look at every library it
/// depends on; the libraries under this hold ~5 % of what a WebKit app
/// can give back, and are half of its libraries.
pub const WORTH_PAGES: u64 = 16;

/// The private read-only file mappings worth dropping from the process
/// outright (`MADV_DONTNEED`), if they are mapped for good: clean, and of
/// a file whose clean mappings are worth [`WORTH_PAGES`] all together (a
/// library's code and constants are several mappings of one file).
pub fn worth_dropping(mappings: &[(Mapping, Pages)]) -> Vec<Range<usize>> {
    let clean = || {
        mappings
            .iter()
            .filter(|(m, p)| m.private_read_only_file() && p.clean())
    };
    let mut by_file: std::collections::HashMap<&str, Pages> = Default::default();
    for (m, p) in clean() {
        let total = by_file
            .entry(m.path.as_deref().unwrap_or_default())
            .or_default();
        *total = *total + *p;
    }
    clean()
        .filter(|(m, _)| by_file[m.path.as_deref().unwrap_or_default()].worth() >= WORTH_PAGES)
        .map(|(m, _)| m.range.clone())
        .collect()
}

/// The private read-only file mappings whose resident pages may be paged
/// out (`MADV_PAGEOUT`): those holding pages of the file that no other
/// process maps (the kernel leaves shared ones alone), except those in
/// `dropped`. Writable mappings, shared ones, anonymous ones and the
/// kernel's (`[vdso]`, `[heap]`…) are left out.
pub fn to_page_out(mappings: &[(Mapping, Pages)], dropped: &[Range<usize>]) -> Vec<Range<usize>> {
    mappings
        .iter()
        .filter(|(m, p)| m.private_read_only_file() && p.exclusive_file > 0)
        .filter(|(m, _)| !dropped.contains(&m.range))
        .map(|(m, _)| m.range.clone())
        .collect()
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
7f0a00000000-7f0a00100000 r--p 00000000 fe:00 99                         /usr/share/fonts/a.ttf
7f0b00000000-7f0b00100000 r-xp 00000000 fe:00 98                         /usr/lib/libcold.so
7f0c00000000-7f0c00004000 r-xp 00000000 fe:00 97                         /usr/lib/libsmall.so
7f1000000000-7f1000010000 r--s 00000000 00:05 1234                       /memfd:wayland-shm (deleted)
7f2000000000-7f2000001000 ---p 00000000 00:00 0 
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
garbage line
7fff00000000-7ffe00000000 r-xp 00000000 00:00 0                          /backwards
";

    /// `file` resident pages of the file (`exclusive` of them only this
    /// process's) and `own` of its own.
    fn pages(file: u64, exclusive: u64, own: u64) -> Pages {
        Pages {
            file,
            exclusive_file: exclusive,
            own,
        }
    }

    /// `MAPS` with each mapping's pages, as `/proc/self/pagemap` would
    /// count them.
    fn counted() -> Vec<(Mapping, Pages)> {
        let counts = [
            pages(25, 25, 0),   // the executable's constants
            pages(500, 400, 0), // its code
            pages(0, 0, 90),    // its relocated tables: copies
            pages(0, 0, 3),     // its data
            pages(0, 0, 1024),  // the heap
            pages(0, 0, 33),
            pages(128, 128, 0), // a font
            pages(0, 0, 0),     // a library with nothing resident
            pages(4, 4, 0),     // a library with little resident
            pages(16, 0, 0),    // shared memory
            pages(0, 0, 0),
            pages(2, 0, 0), // the vDSO
        ];
        parse_maps(MAPS).into_iter().zip(counts).collect()
    }

    #[test]
    fn maps_is_read_with_each_mappings_addresses_permissions_and_file() {
        let m = parse_maps(MAPS);
        assert_eq!(
            m.len(),
            12,
            "the garbage and the backwards range are skipped"
        );
        assert_eq!(m[2].range, 0x55d0c1396000..0x55d0c13f0000);
        assert_eq!(m[2].perms, "r--p");
        assert_eq!(m[2].path.as_deref(), Some("/opt/app/bottlebar"));
        assert_eq!(m[4].path, None, "[heap] is no file");
        assert_eq!(m[5].path, None);
        assert!(m[1].private_read_only_file());
        assert!(!m[3].private_read_only_file(), "writable");
        assert!(!m[9].private_read_only_file(), "shared");
        assert!(!m[11].private_read_only_file(), "[vdso] is no file");
    }

    #[test]
    fn pagemap_entries_are_counted_as_the_files_pages_or_the_processs_own() {
        let file = PRESENT | FILE_OR_SHARED_ANON;
        let entries = [
            file | EXCLUSIVE | 0x1234, // the file's, only here
            file,                      // the file's, shared
            PRESENT | EXCLUSIVE,       // a copy written here
            SWAPPED | 7,               // a copy swapped out
            SWAPPED | FILE_OR_SHARED_ANON,
            0, // not resident
            FILE_OR_SHARED_ANON,
        ];
        assert_eq!(Pages::count(entries), pages(2, 1, 3));
        assert_eq!(Pages::count([]), Pages::default());
    }

    #[test]
    fn only_clean_mappings_of_files_worth_it_are_dropped() {
        // Not the relocated tables (pages of their own), not the library
        // with nothing resident, not the one with too little, not the
        // heap, the shared memory or the vDSO.
        assert_eq!(
            worth_dropping(&counted()),
            vec![
                0x55d0c0a00000..0x55d0c0d15000,
                0x55d0c0d15000..0x55d0c1396000,
                0x7f0a00000000..0x7f0a00100000,
            ]
        );
    }

    #[test]
    fn a_files_clean_mappings_are_worth_it_together() {
        let small = |range: Range<usize>, p: Pages| {
            let mut m = parse_maps(MAPS).remove(1);
            m.range = range;
            (m, p)
        };
        // Ten pages only this process maps and twelve it shares with
        // another: worth 16, in two mappings of one file.
        let two = [
            small(0..0x1000, pages(10, 10, 0)),
            small(0x1000..0x2000, pages(12, 0, 0)),
        ];
        assert_eq!(worth_dropping(&two).len(), 2);
        // Twenty shared pages: at most 10 off the process's share.
        let shared = [small(0..0x1000, pages(20, 0, 0))];
        assert!(worth_dropping(&shared).is_empty());
        // One page of its own in one of a file's mappings: that one is
        // kept, and the rest is not worth it alone.
        let one_written = [
            small(0..0x1000, pages(10, 10, 1)),
            small(0x1000..0x2000, pages(12, 12, 0)),
        ];
        assert!(worth_dropping(&one_written).is_empty());
    }

    #[test]
    fn only_pages_no_other_process_maps_are_paged_out_where_not_dropped() {
        let code = 0x55d0c0d15000..0x55d0c1396000;
        assert_eq!(
            to_page_out(&counted(), std::slice::from_ref(&code)),
            vec![
                0x55d0c0a00000..0x55d0c0d15000,
                0x7f0a00000000..0x7f0a00100000,
                0x7f0c00000000..0x7f0c00004000,
            ]
        );
    }
}
