//! A session's output, kept up to a bound: the newest bytes, the oldest
//! dropped first. Every byte has an offset counted from the session's
//! start, so a viewer says where it is and learns what it missed.

use std::collections::VecDeque;

/// The newest output of a session, at most `cap` bytes.
#[derive(Debug)]
pub struct Scrollback {
    bytes: VecDeque<u8>,
    /// The offset of `bytes[0]`.
    start: u64,
    cap: usize,
}

/// A piece of output read from a [`Scrollback`].
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    /// The offset of its first byte; later than asked when the bytes
    /// asked for were dropped.
    pub from: u64,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Scrollback {
    /// An empty scrollback keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Scrollback {
        Scrollback {
            bytes: VecDeque::new(),
            start: 0,
            cap: cap.max(1),
        }
    }

    /// Appends output, dropping the oldest beyond the bound.
    pub fn push(&mut self, data: &[u8]) {
        let data = if data.len() > self.cap {
            let skip = data.len() - self.cap;
            self.start += (self.bytes.len() + skip) as u64;
            self.bytes.clear();
            &data[skip..]
        } else {
            data
        };
        let over = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..over);
        self.start += over as u64;
        self.bytes.extend(data);
    }

    /// The offset just past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// The offset of the oldest byte kept.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Up to `max` bytes from offset `from` (or from the oldest kept, when
    /// `from` was dropped).
    pub fn read(&self, from: u64, max: usize) -> Piece {
        let from = from.clamp(self.start, self.end());
        let skip = (from - self.start) as usize;
        let take = max.min(self.bytes.len() - skip);
        let (a, b) = self.bytes.as_slices();
        let mut bytes = Vec::with_capacity(take);
        if skip < a.len() {
            let a_take = take.min(a.len() - skip);
            bytes.extend_from_slice(&a[skip..skip + a_take]);
            bytes.extend_from_slice(&b[..take - a_take]);
        } else {
            let skip = skip - a.len();
            bytes.extend_from_slice(&b[skip..skip + take]);
        }
        Piece { from, bytes }
    }

    /// Where a viewer starting afresh begins: the oldest kept byte, or,
    /// once the front has been dropped, the first line after it (so the
    /// replay never starts inside an escape sequence or a character).
    pub fn replay_from(&self) -> u64 {
        if self.start == 0 {
            return 0;
        }
        // A line within the first 64 KiB; otherwise the cut stands.
        match self.bytes.iter().take(64 * 1024).position(|&b| b == b'\n') {
            Some(i) => self.start + i as u64 + 1,
            None => self.start,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_with_their_offsets() {
        let mut s = Scrollback::new(8);
        s.push(b"hello ");
        s.push(b"world");
        assert_eq!((s.start(), s.end(), s.len()), (3, 11, 8));
        assert_eq!(
            s.read(0, 100),
            Piece {
                from: 3,
                bytes: b"lo world".to_vec()
            }
        );
        assert_eq!(
            s.read(6, 3),
            Piece {
                from: 6,
                bytes: b"wor".to_vec()
            }
        );
        assert_eq!(s.read(11, 3).bytes, b"");
        assert_eq!(s.read(99, 3).from, 11, "past the end reads nothing");
    }

    #[test]
    fn a_push_larger_than_the_bound_keeps_its_end() {
        let mut s = Scrollback::new(4);
        s.push(b"ab");
        s.push(b"0123456789");
        assert_eq!(
            s.read(0, 100),
            Piece {
                from: 8,
                bytes: b"6789".to_vec()
            }
        );
        assert_eq!(s.end(), 12);
    }

    #[test]
    fn reads_across_the_ring_seam() {
        let mut s = Scrollback::new(6);
        for chunk in [&b"abcd"[..], b"ef", b"gh", b"ij"] {
            s.push(chunk);
        }
        assert_eq!(s.read(4, 6).bytes, b"efghij");
        assert_eq!(s.read(5, 3).bytes, b"fgh");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood() {
        let mut s = Scrollback::new(1 << 16);
        let line = b"y\n".repeat(4096);
        for _ in 0..1000 {
            s.push(&line);
        }
        assert_eq!(s.len(), 1 << 16);
        assert_eq!(s.end(), 1000 * 8192);
    }

    #[test]
    fn a_replay_starts_at_a_line_once_the_front_is_gone() {
        let mut s = Scrollback::new(10);
        s.push(b"first\n");
        assert_eq!(s.replay_from(), 0, "nothing dropped: from the start");
        s.push(b"\x1b[31mred\nok");
        // Dropped "first\n\x1b" → the kept front is "[31mred\nok".
        assert_eq!(s.read(s.replay_from(), 100).bytes, b"ok");
    }
}
