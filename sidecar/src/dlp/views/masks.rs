//! Long runs of a byte class found 64 bytes at a time, through bit masks.
//!
//! A block's class is read into a mask (bit `k` for byte `k`): each byte
//! judged to a flag in portable code the compiler turns into vector
//! compares on every target, the flags then gathered into bits (one SSE2
//! instruction per 16 on x86-64, a multiplication per 8 elsewhere; a test
//! checks the two agree, so the arm64 way is tested here). A run at least
//! `min` long then starts where `min` consecutive bits are set: a few
//! shifts of two blocks' masks, so a block of short words or of noise is
//! passed over without a branch per byte.

use std::ops::Range;

/// Bytes a mask covers.
pub(super) const BLOCK: usize = 64;

/// Every maximal run of `class` bytes in `data` at least `min` long
/// (`1..=64`), in order. Each block's mask is made once, but for the
/// last two of a run reaching two blocks past its start. Inlined, so
/// `min` is a constant and the shifts finding long stretches unrolled.
#[inline(always)]
pub(super) fn long_runs(data: &[u8], min: usize, class: impl Fn(u8) -> bool) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    long_runs_into(data, min, class, &mut found);
    found
}

/// [`long_runs`], appended to `found` (a buffer reused across many short
/// searches spares an allocation each).
#[inline(always)]
pub(super) fn long_runs_into(
    data: &[u8],
    min: usize,
    class: impl Fn(u8) -> bool,
    found: &mut Vec<Range<usize>>,
) {
    long_runs_by(data.len(), min, |at| mask_at(data, at, &class), found);
}

/// The masks of `class` for every block of `data`, in order (bytes past
/// its end outside it): made once for data whose class is read again,
/// by [`long_runs_in_masks`] and by views copied from it (see
/// `alphabet`).
pub(super) fn class_masks(data: &[u8], class: impl Fn(u8) -> bool) -> Vec<u64> {
    (0..data.len().div_ceil(BLOCK))
        .map(|i| mask_at(data, i * BLOCK, &class))
        .collect()
}

/// [`long_runs_into`] of the `len` bytes whose class `masks` holds
/// ([`class_masks`]).
pub(super) fn long_runs_in_masks(
    masks: &[u64],
    len: usize,
    min: usize,
    found: &mut Vec<Range<usize>>,
) {
    long_runs_by(len, min, |at| block_mask(masks, at), found);
}

/// The mask of the block holding `at` (0 past the last).
#[inline(always)]
pub(super) fn block_mask(masks: &[u64], at: usize) -> u64 {
    masks.get(at / BLOCK).copied().unwrap_or(0)
}

/// [`long_runs_into`] of `len` bytes whose block masks `mask_at` gives
/// (called with where a block starts).
#[inline(always)]
fn long_runs_by(
    len: usize,
    min: usize,
    mask_at: impl Fn(usize) -> u64,
    found: &mut Vec<Range<usize>>,
) {
    debug_assert!((1..=BLOCK).contains(&min));
    let mut blocks = Blocks::new(&mask_at);
    // Bits below `from_bit` of the current block lie in a run found.
    let mut from_bit = 0;
    while blocks.start() < len {
        let window = u128::from(blocks.here) | u128::from(blocks.next) << BLOCK;
        let long = all_set_from(window, min) as u64;
        // The first long bit past the runs found is a run's start: had the
        // byte before it been in the class, that byte's bit would be long.
        // Each run found clears its own long bits.
        let mut starts = long & (u64::MAX << from_bit);
        from_bit = 0;
        let mut moved = false;
        while starts != 0 {
            let k = starts.trailing_zeros() as usize;
            let start = blocks.start() + k;
            let set = (!(window >> k)).trailing_zeros() as usize;
            let end = if k + set < 2 * BLOCK {
                blocks.start() + k + set
            } else {
                blocks.first_outside_past_next()
            }
            .min(len);
            found.push(start..end);
            if end == len {
                return;
            }
            if end < blocks.start() + BLOCK {
                starts &= u64::MAX << (end - blocks.start());
            } else {
                // The run ends in a later block: go on from there.
                blocks.move_to(end);
                (from_bit, moved) = (end - blocks.start(), true);
                break;
            }
        }
        if !moved {
            blocks.advance();
        }
    }
}

/// Whether `data` holds a run of `class` bytes at least `min` long
/// (`1..=64`): [`long_runs`] asked only whether it would find one.
#[inline(always)]
pub(super) fn has_long_run(data: &[u8], min: usize, class: impl Fn(u8) -> bool) -> bool {
    debug_assert!((1..=BLOCK).contains(&min));
    any_window(data, &class, |window| all_set_from(window, min) as u64 != 0)
}

/// Whether the first `len` (`..=64`) bytes of `data` hold a run of
/// `class` bytes at least `min` long (`1..=64`), read in place from `data`,
/// which holds a whole block: [`has_long_run`] of `data[..len]` without
/// copying its bytes into a padded block. Each alignment of a run's
/// decodings is judged so, several per run, and the copies cost more than
/// the judging.
#[inline(always)]
pub(super) fn has_long_run_in_block(
    data: &[u8],
    len: usize,
    min: usize,
    class: impl Fn(u8) -> bool,
) -> bool {
    debug_assert!((1..=BLOCK).contains(&min));
    let block = data[..BLOCK].try_into().expect("a block is 64 bytes");
    all_set_from(u128::from(mask_of_first(block, len, &class)), min) != 0
}

/// Whether `data` holds `count` (`1..=32`) NULs each two bytes after the
/// one before: the spine of a run of UTF-16 text. One pass of masks rules
/// out many short decodings at once, where probing each cost more.
/// Inlined: called on its own, its masks were made several times slower.
#[inline(always)]
pub(super) fn has_nul_chain(data: &[u8], count: usize) -> bool {
    debug_assert!((1..=32).contains(&count));
    any_window(data, &|b: u8| b == 0, |window| {
        // Bit `k` stays set where bytes `k`, `k + 2`, … are all NULs.
        let chain = (1..count).fold(window, |chain, k| chain & window >> (2 * k));
        chain as u64 != 0
    })
}

/// Whether `found` says yes of any block's window: the block's mask of
/// `class` in the low 64 bits, the next block's above it, so that what
/// starts in a block may reach into the next.
#[inline(always)]
fn any_window(data: &[u8], class: &impl Fn(u8) -> bool, found: impl Fn(u128) -> bool) -> bool {
    let mask_of_block = |at| mask_at(data, at, class);
    let mut blocks = Blocks::new(&mask_of_block);
    while blocks.start() < data.len() {
        if found(u128::from(blocks.here) | u128::from(blocks.next) << BLOCK) {
            return true;
        }
        blocks.advance();
    }
    false
}

/// The masks of the current block and the one after it, each made once.
struct Blocks<'a, M> {
    /// The mask of the block starting at a byte.
    mask_at: &'a M,
    /// Index of the current block.
    index: usize,
    here: u64,
    next: u64,
}

impl<'a, M: Fn(usize) -> u64> Blocks<'a, M> {
    fn new(mask_at: &'a M) -> Self {
        let (here, next) = (mask_at(0), mask_at(BLOCK));
        Blocks {
            mask_at,
            index: 0,
            here,
            next,
        }
    }

    /// Where the current block starts.
    fn start(&self) -> usize {
        self.index * BLOCK
    }

    fn advance(&mut self) {
        self.index += 1;
        self.here = self.next;
        self.next = self.mask(self.start() + BLOCK);
    }

    /// The mask of the block starting at `at` (0 past the end: both
    /// sources, bytes and masks made once, say so themselves).
    fn mask(&self, at: usize) -> u64 {
        (self.mask_at)(at)
    }

    /// The first byte outside the class after the next block, which is all
    /// in it; the blocks read on the way are read again only once, when
    /// moved to.
    fn first_outside_past_next(&self) -> usize {
        let mut at = self.start() + 2 * BLOCK;
        loop {
            let outside = !self.mask(at);
            if outside != 0 {
                return at + outside.trailing_zeros() as usize;
            }
            at += BLOCK;
        }
    }

    /// Makes the block holding `at` current.
    fn move_to(&mut self, at: usize) {
        let index = at / BLOCK;
        if index == self.index + 1 {
            self.advance();
        } else {
            self.index = index;
            self.here = self.mask(self.start());
            self.next = self.mask(self.start() + BLOCK);
        }
    }
}

/// Bit `k` set where `min` bits from `k` on are all set in `m`.
#[inline(always)]
fn all_set_from(m: u128, min: usize) -> u128 {
    // `starts` has bit `k` set where the `have` bits from `k` on are set;
    // shifting by at most `have` doubles what it covers.
    let (mut starts, mut have) = (m, 1);
    while have < min {
        let step = have.min(min - have);
        starts &= starts >> step;
        have += step;
    }
    starts
}

/// The class of the (up to) 64 bytes from `at` as a mask; bytes past the
/// end of `data` are outside it.
#[inline]
fn mask_at(data: &[u8], at: usize, class: &impl Fn(u8) -> bool) -> u64 {
    match data.get(at..at + BLOCK) {
        Some(block) => mask(block.try_into().expect("a block is 64 bytes"), class),
        None if at >= data.len() => 0,
        None => {
            // The last, short block: judged padded, the padding masked off.
            let tail = data.get(at..).unwrap_or_default();
            let mut block = [0u8; BLOCK];
            block[..tail.len()].copy_from_slice(tail);
            mask_of_first(&block, tail.len(), class)
        }
    }
}

/// The class of the first `len` (`..=64`) bytes of a block as a mask; the
/// bytes after them (padding, or data read in place) are outside it.
#[inline(always)]
fn mask_of_first(block: &[u8; BLOCK], len: usize, class: &impl Fn(u8) -> bool) -> u64 {
    debug_assert!(len <= BLOCK);
    mask(block, class) & !u64::MAX.checked_shl(len as u32).unwrap_or(0)
}

/// The class of a block as a mask: each byte judged to all ones or zero
/// (vector compares on every target), then the flags gathered into bits.
/// (Judging sixteen at a time into a register does not vectorise.)
#[inline(always)]
fn mask(block: &[u8; BLOCK], class: &impl Fn(u8) -> bool) -> u64 {
    let mut flags = [0u8; BLOCK];
    for (f, &b) in flags.iter_mut().zip(block) {
        *f = 0u8.wrapping_sub(u8::from(class(b)));
    }
    let mut m = 0;
    for (k, sixteen) in flags.chunks_exact(16).enumerate() {
        let sixteen: &[u8; 16] = sixteen.try_into().expect("sixteen flags");
        m |= u64::from(gather(sixteen)) << (16 * k);
    }
    m
}

/// Bit `k` from flag `k` (each `0xff` or 0), by the instruction made for it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn gather(flags: &[u8; 16]) -> u16 {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_movemask_epi8};
    // SAFETY: `flags` is 16 readable bytes; an unaligned load needs no
    // more. SSE2 is part of every x86-64.
    let bits = unsafe { _mm_movemask_epi8(_mm_loadu_si128(flags.as_ptr().cast::<__m128i>())) };
    bits as u16
}

/// Bit `k` from flag `k` (each `0xff` or 0).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn gather(flags: &[u8; 16]) -> u16 {
    gather_by_multiplying(flags)
}

/// Bit `k` from flag `k` (each `0xff` or 0), eight at a time by one
/// multiplication: flag `k` of a word, reduced to bit `8k`, lands at bit
/// `56 + k`; no two partial products overlap, so nothing carries.
#[inline(always)]
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn gather_by_multiplying(flags: &[u8; 16]) -> u16 {
    let word = |half: &[u8]| {
        let word = u64::from_le_bytes(half.try_into().expect("eight flags"));
        (word & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080) >> 56
    };
    (word(&flags[..8]) | word(&flags[8..]) << 8) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_set_from_marks_starts_of_long_enough_stretches() {
        let m = 0b0111_1110_1110u128;
        assert_eq!(all_set_from(m, 1), m);
        assert_eq!(all_set_from(m, 3), 0b0001_1110_0010);
        assert_eq!(all_set_from(m, 6), 0b0000_0010_0000);
        assert_eq!(all_set_from(m, 7), 0);
        assert_eq!(all_set_from(u128::MAX, 64), u128::MAX >> 63);
    }

    #[test]
    fn a_long_run_is_found_wherever_it_lies() {
        // What a byte-by-byte count says: `min` class bytes in a row.
        let naive = |data: &[u8], min: usize| {
            let mut streak = 0;
            data.iter().any(|&b| {
                streak = if b < 0x80 { streak + 1 } else { 0 };
                streak >= min
            })
        };
        let mut next = crate::dlp::pseudo_random(0x3c6e_f372);
        for _ in 0..3000usize {
            let len = next() % 200;
            // Short stretches of the class, now and then a longer one,
            // across block bounds and at either end.
            let stretch = 1 + next() % 12;
            let data: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (next() % 256) as u8;
                    if (i / stretch).is_multiple_of(2) {
                        b & 0x7f
                    } else {
                        b
                    }
                })
                .collect();
            // Up to a block, the same bytes read in place from a whole
            // block, the rest of it in the class or not: nothing past
            // them may count.
            let tail = if next().is_multiple_of(2) { 0 } else { 0xff };
            let block: Vec<u8> = data.iter().copied().chain([tail; BLOCK]).collect();
            for min in [1usize, 7, 8, 9, 64] {
                let want = naive(&data, min);
                assert_eq!(
                    has_long_run(&data, min, |b| b < 0x80),
                    want,
                    "{min} in {data:?}"
                );
                if len <= BLOCK {
                    assert_eq!(
                        has_long_run_in_block(&block, len, min, |b| b < 0x80),
                        want,
                        "{min} in the {len} first bytes of {block:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn nul_chains_are_found_wherever_they_lie() {
        // What a byte-by-byte look finds: `count` NULs two apart.
        let naive = |data: &[u8], count: usize| {
            (0..data.len()).any(|k| (0..count).all(|i| data.get(k + 2 * i) == Some(&0)))
        };
        let mut next = crate::dlp::pseudo_random(0x0c4a_17b5);
        for round in 0..3000usize {
            let len = next() % 300;
            // Few NULs at random, then now and then a chain planted.
            let mut data: Vec<u8> = (0..len)
                .map(|_| {
                    if next().is_multiple_of(5) {
                        0
                    } else {
                        1 + (next() % 255) as u8
                    }
                })
                .collect();
            if round.is_multiple_of(3) && len > 20 {
                let (at, n) = (next() % (len - 14), 5 + next() % 4);
                for i in 0..n {
                    if let Some(b) = data.get_mut(at + 2 * i) {
                        *b = 0;
                    }
                }
            }
            for count in [2usize, 7, 8] {
                assert_eq!(
                    has_nul_chain(&data, count),
                    naive(&data, count),
                    "{count} in {data:?}"
                );
            }
        }
        assert!(!has_nul_chain(b"", 7));
        assert!(has_nul_chain(&[0u8; 13], 7) && !has_nul_chain(&[0u8; 12], 7));
    }

    #[test]
    fn both_ways_of_gathering_flags_agree() {
        let mut next = crate::dlp::pseudo_random(0x51ed_270b);
        for _ in 0..2000 {
            let mut flags = [0u8; 16];
            let mut want = 0u16;
            for (k, f) in flags.iter_mut().enumerate() {
                if next().is_multiple_of(3) {
                    *f = 0xff;
                    want |= 1 << k;
                }
            }
            assert_eq!(gather(&flags), want);
            assert_eq!(gather_by_multiplying(&flags), want);
        }
    }
}
