//! The process's mappings as `/proc/PID/smaps` lists them, and which of
//! them the idle app may give back (see the module above for why each is
//! safe).

use std::ops::Range;

/// One mapping of `/proc/PID/smaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Its addresses.
    pub range: Range<usize>,
    /// `rwxp`/`rwxs` as listed (`r-xp`: readable, executable, private).
    pub perms: String,
    /// The file mapped, if any (`[heap]` and the like are not files).
    pub path: Option<String>,
    /// Its resident KiB.
    pub rss_kib: u64,
    /// Its KiB of pages of its own (written since mapped: copies, not
    /// the file's pages).
    pub anonymous_kib: u64,
}

impl Mapping {
    /// A private mapping of a file, not writable.
    fn private_read_only_file(&self) -> bool {
        self.path.is_some()
            && self.perms.as_bytes().get(1) == Some(&b'-')
            && self.perms.ends_with('p')
    }
}

/// The mappings listed in `smaps` (the text of `/proc/PID/smaps`); lines it
/// cannot read are skipped.
pub fn parse_smaps(smaps: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        if let Some(mapping) = header(line) {
            mappings.push(mapping);
            continue;
        }
        let Some(last) = mappings.last_mut() else {
            continue;
        };
        let kib = |rest: &str| rest.trim().trim_end_matches("kB").trim().parse().ok();
        if let Some(v) = line.strip_prefix("Rss:").and_then(kib) {
            last.rss_kib = v;
        } else if let Some(v) = line.strip_prefix("Anonymous:").and_then(kib) {
            last.anonymous_kib = v;
        }
    }
    mappings
}

/// A mapping's first line: `start-end perms offset dev inode [path]`.
fn header(line: &str) -> Option<Mapping> {
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
        rss_kib: 0,
        anonymous_kib: 0,
    })
}

/// The private read-only file mappings (code and constant data of the
/// executable and its libraries, fonts, caches) with pages of the file
/// resident: what may be paged out. Writable mappings, shared ones,
/// anonymous ones, the kernel's (`[vdso]`, `[heap]`…) and those whose
/// resident pages are all their own (relocated tables: nothing to page
/// out without swap, and trying costs a look at each page) are left out.
pub fn read_only_file_mappings(mappings: &[Mapping]) -> Vec<Range<usize>> {
    mappings
        .iter()
        .filter(|m| m.private_read_only_file())
        .filter(|m| m.rss_kib > m.anonymous_kib)
        .map(|m| m.range.clone())
        .collect()
}

/// Of the private read-only file mappings, the ones whose pages may be
/// dropped from the process outright (`MADV_DONTNEED`): resident, with no
/// page of their own, at addresses `pinned` says stay mapped to that file
/// for good.
pub fn droppable_mappings(
    mappings: &[Mapping],
    pinned: impl Fn(&Range<usize>) -> bool,
) -> Vec<Range<usize>> {
    mappings
        .iter()
        .filter(|m| m.private_read_only_file())
        .filter(|m| m.anonymous_kib == 0 && m.rss_kib > 0 && pinned(&m.range))
        .map(|m| m.range.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0a00000-55d0c0d15000 r--p 00000000 fe:00 10469411                   /opt/app/bottlebar
Rss:                 100 kB
Anonymous:             0 kB
55d0c0d15000-55d0c1396000 r-xp 00315000 fe:00 10469411                   /opt/app/bottlebar
Rss:                2000 kB
Anonymous:             0 kB
55d0c1396000-55d0c13f0000 r--p 00995000 fe:00 10469411                   /opt/app/bottlebar
Rss:                 360 kB
Anonymous:           360 kB
55d0c13f0000-55d0c13f3000 rw-p 009ee000 fe:00 10469411                   /opt/app/bottlebar
Rss:                  12 kB
Anonymous:            12 kB
55d0c2000000-55d0c2400000 rw-p 00000000 00:00 0                          [heap]
Rss:                4096 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f0a00000000-7f0a00100000 r--p 00000000 fe:00 99                         /usr/share/fonts/a.ttf
Rss:                 512 kB
Anonymous:             0 kB
7f0b00000000-7f0b00100000 r-xp 00000000 fe:00 98                         /usr/lib/libcold.so
Rss:                   0 kB
Anonymous:             0 kB
7f1000000000-7f1000010000 r--s 00000000 00:05 1234                       /memfd:wayland-shm (deleted)
7f2000000000-7f2000001000 ---p 00000000 00:00 0 
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
garbage line
";

    #[test]
    fn smaps_is_read_with_each_mappings_resident_and_own_pages() {
        let m = parse_smaps(SMAPS);
        assert_eq!(m.len(), 11);
        assert_eq!(m[2].range, 0x55d0c1396000..0x55d0c13f0000);
        assert_eq!((m[2].rss_kib, m[2].anonymous_kib), (360, 360));
        assert_eq!(m[2].path.as_deref(), Some("/opt/app/bottlebar"));
        assert_eq!(m[4].path, None, "[heap] is no file");
        assert_eq!(m[5].path, None);
    }

    #[test]
    fn only_resident_pages_of_read_only_file_mappings_are_paged_out() {
        assert_eq!(
            read_only_file_mappings(&parse_smaps(SMAPS)),
            vec![
                0x55d0c0a00000..0x55d0c0d15000,
                0x55d0c0d15000..0x55d0c1396000,
                0x7f0a00000000..0x7f0a00100000,
            ]
        );
    }

    #[test]
    fn only_resident_clean_mappings_at_pinned_addresses_are_droppable() {
        // The executable's segments, and the font's.
        let pinned = |r: &Range<usize>| r.start < 0x55d0c13f3000 || r.start == 0x7f0b00000000;
        // Not the relocated tables (pages of their own), not the font (not
        // pinned), not the library with nothing resident, not the heap.
        assert_eq!(
            droppable_mappings(&parse_smaps(SMAPS), pinned),
            vec![
                0x55d0c0a00000..0x55d0c0d15000,
                0x55d0c0d15000..0x55d0c1396000
            ]
        );
    }
}
