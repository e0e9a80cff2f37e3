//! Size classes: which path a layout takes, and the block a small request
//! gets.
//!
//! A layout is *large* (a mapping of its own, `large.rs`) when its size is
//! over [`LARGE_THRESHOLD`] or its alignment over [`MAX_CHUNK_ALIGN`];
//! every other one is *small* and bumped from a chunk. A small request is
//! served by a block of its *class size*: its size rounded up to [`GRAIN`]
//! up to [`LINEAR_MAX`], then to one of [`STEPS`] sizes per doubling, so a
//! block is at most 12.5% larger than asked and a freed block can serve any
//! request of its class (the thread cache and the lists of remote frees
//! are kept by class). Blocks of at most [`SMALL_MAX`] bytes are the
//! thread's *small* side, larger ones its *medium* side (`thread.rs`).
//!
//! Plain integer maths over `align`, with no unsafe code.
#![forbid(unsafe_code)]

use crate::align;

/// Requests larger than this get a mapping of their own.
pub(crate) const LARGE_THRESHOLD: usize = 256 << 10;
/// Requests aligned to more than this get a mapping of their own.
pub(crate) const MAX_CHUNK_ALIGN: usize = 4096;

/// Every block is a multiple of this, so the cursor stays aligned to it.
#[cfg(not(feature = "c-abi"))]
pub(super) const GRAIN: usize = 8;
/// Every block is a multiple of this, so the cursor stays aligned to it: in
/// the C build, `max_align_t`'s 16, so that every `malloc` block is aligned
/// as C requires without a padding step.
#[cfg(feature = "c-abi")]
pub(super) const GRAIN: usize = 16;
/// Blocks up to this size come in classes GRAIN bytes apart.
pub(super) const LINEAR_MAX: usize = 1024;
/// Above [`LINEAR_MAX`], each doubling of size is split into this many
/// classes (a block is at most 12.5% larger than asked).
pub(super) const STEPS: usize = 8;
/// Size classes: 1..=128 linear, then 8 per doubling up to
/// [`LARGE_THRESHOLD`] (index 0 unused).
pub(super) const CLASSES: usize = LINEAR_MAX / GRAIN + 8 * STEPS + 1;

/// Blocks of at most this many bytes are bumped from a thread's *small*
/// chunk, larger ones from its *medium* chunk (see [`Local::owner_for`](super::thread::Local::owner_for)).
pub(super) const SMALL_MAX: usize = 64;

/// Whether blocks of this layout may go through the thread cache.
#[inline(always)]
pub(super) fn cacheable(size: usize, align: usize) -> bool {
    size <= LARGE_THRESHOLD && align <= GRAIN
}

#[inline(always)]
pub(super) fn is_large(size: usize, align: usize) -> bool {
    size > LARGE_THRESHOLD || align > MAX_CHUNK_ALIGN
}

/// The size class of a small request and the size of its block: `size`
/// rounded up to GRAIN up to [`LINEAR_MAX`], then to one of [`STEPS`]
/// sizes per doubling. Every small block is allocated at its class size,
/// so a freed block can serve any request of its class. (Never overflows:
/// small sizes are at most [`LARGE_THRESHOLD`].)
#[inline(always)]
pub(super) fn class_of(size: usize) -> (usize, usize) {
    let size = size.max(1);
    if size <= LINEAR_MAX {
        let block = align::round_up(size, GRAIN);
        return (block / GRAIN, block);
    }
    // size lies in (2^k, 2^(k+1)], k >= 10.
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let step = 1 << (k - 3);
    let block = align::round_up(size, step);
    (LINEAR_MAX / GRAIN + (k - 10) * STEPS + (block >> (k - 3)) - STEPS, block)
}

/// The block size of class `class` (the inverse of [`class_of`]).
#[inline]
pub(super) const fn class_size(class: usize) -> usize {
    if class <= LINEAR_MAX / GRAIN {
        return class * GRAIN;
    }
    let j = class - LINEAR_MAX / GRAIN - 1;
    let k = 10 + j / STEPS;
    (j % STEPS + STEPS + 1) << (k - 3)
}

/// The size of the block that serves a small request of `size` bytes.
#[inline(always)]
pub(super) fn block_size(size: usize) -> usize {
    class_of(size).1
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pure arithmetic over 256K sizes: nothing for Miri to check, and
    // minutes of its time.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn size_classes_cover_every_small_size() {
        let mut last = (0, 0);
        for size in 1..=LARGE_THRESHOLD {
            let (class, block) = class_of(size);
            assert!(block >= size && block % GRAIN == 0, "{size} -> {block}");
            assert!(block - size < GRAIN || (block - size) * 8 <= block, "{size} -> {block}: too much waste");
            assert!(class > 0 && class < CLASSES, "{size} -> class {class}");
            assert_eq!(class_size(class), block, "class {class}");
            assert!(class == last.0 || class == last.0 + 1, "classes are contiguous at {size}");
            last = (class, block);
        }
        assert_eq!(last, (CLASSES - 1, LARGE_THRESHOLD));
    }
}
