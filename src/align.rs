//! Integer maths for bumping, with no pointers and no `unsafe`.
//!
//! Every address computation the allocators make (rounding a size or an
//! address, padding, placing a block, sizing a chunk) is done here on plain
//! `usize` values, so that the unsafe code elsewhere only turns integers
//! already proven to lie inside a chunk into pointers. Where a value could
//! overflow the forms are checked ([`align_up`], [`round_up_checked`],
//! [`bump_up`]); the fast paths use the unchecked [`round_up`] and argue
//! the bound at the call.
//! The module imports nothing but `core`; the unit tests below check it on
//! fixed cases and, with proptest, on random ones against a wide-integer
//! model. (A cargo-fuzz target is still to come.)
#![forbid(unsafe_code)]

/// Whether `align` is a power of two (zero is not).
#[inline(always)]
pub const fn is_power_of_two(align: usize) -> bool {
    align != 0 && align & (align - 1) == 0
}

/// Rounds `value` up to a multiple of `align`, or `None` on overflow.
///
/// `align` must be a power of two; other values give `None`.
#[inline(always)]
pub const fn align_up(value: usize, align: usize) -> Option<usize> {
    if !is_power_of_two(align) {
        return None;
    }
    round_up_checked(value, align)
}

/// Rounds `value` up to a multiple of `align`, which the caller knows is a
/// power of two (a `Layout`'s alignment), or `None` on overflow.
#[inline(always)]
pub const fn round_up_checked(value: usize, align: usize) -> Option<usize> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Rounds `value` up to a multiple of `align` (a power of two) where the
/// caller has bounded `value` so that this cannot overflow: a size at most
/// a chunk or a `Layout` size (at most `isize::MAX`), an address inside a
/// mapping. The fast paths' form of [`align_up`]: no check, three
/// instructions (an `align` known at compile time folds to two). Were the
/// bound broken, the result would wrap to a small value, never panic.
#[inline(always)]
pub const fn round_up(value: usize, align: usize) -> usize {
    // Grouped as `value + align - 1` (not `value + (align - 1)`): the two
    // are equal, but LLVM keeps the first in fewer instructions when
    // `align` is not a constant (a size class's step).
    value.wrapping_add(align).wrapping_sub(1) & !(align - 1)
}

/// Rounds `value` down to a multiple of `align` (a power of two).
#[inline(always)]
pub const fn round_down(value: usize, align: usize) -> usize {
    value & !(align - 1)
}

/// Whether `value` is a multiple of `align` (a power of two).
#[inline(always)]
pub const fn is_aligned(value: usize, align: usize) -> bool {
    value & (align - 1) == 0
}

/// Bytes to add to `addr` to reach the next multiple of `align` (a power of
/// two). Always less than `align`; never overflows.
#[inline(always)]
pub const fn padding_for(addr: usize, align: usize) -> usize {
    addr.wrapping_neg() & (align - 1)
}

/// Where a block of `size` bytes aligned to `align` lands when bumping
/// upward from `cursor` in a chunk that ends at `limit`, and where the
/// cursor goes afterwards (the block's end rounded up to `min_align`).
///
/// Returns `None` when the block does not fit or any step overflows. On
/// success `cursor <= start`, `start % align == 0`, `start + size <= end`,
/// `end <= limit` and `end % min_align == 0` whenever `limit % min_align == 0`.
#[inline(always)]
pub const fn bump_up(
    cursor: usize,
    limit: usize,
    size: usize,
    align: usize,
    min_align: usize,
) -> Option<Bump> {
    if !is_power_of_two(align) || !is_power_of_two(min_align) || cursor > limit {
        return None;
    }
    let start = match cursor.checked_add(padding_for(cursor, align)) {
        Some(s) => s,
        None => return None,
    };
    let unrounded = match start.checked_add(size) {
        Some(e) => e,
        None => return None,
    };
    let end = match align_up(unrounded, min_align) {
        Some(e) => e,
        None => return None,
    };
    if end > limit {
        return None;
    }
    Some(Bump { start, end })
}

/// The outcome of [`bump_up`]: the block starts at `start`, and the cursor
/// moves to `end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bump {
    /// First byte of the block.
    pub start: usize,
    /// New cursor: one past the block, rounded up to the minimum alignment.
    pub end: usize,
}

/// Size of a chunk able to hold `request` bytes at alignment `align` after a
/// header of `header` bytes, rounded up to `page` and at least `min`.
/// `None` if that exceeds `isize::MAX` or overflows.
#[inline]
pub const fn chunk_size_for(
    request: usize,
    align: usize,
    header: usize,
    page: usize,
    min: usize,
) -> Option<usize> {
    // The chunk starts on a page boundary. Up to page alignment, the data
    // starts at the header rounded up to `align`; past it, the worst case
    // pads by almost a whole `align` after the header.
    let pad = if align <= page {
        match align_up(header, align) {
            Some(p) => p,
            None => return None,
        }
    } else {
        match header.checked_add(align) {
            Some(p) => p,
            None => return None,
        }
    };
    let need = match request.checked_add(pad) {
        Some(n) => n,
        None => return None,
    };
    let need = if need < min { min } else { need };
    match align_up(need, page) {
        Some(n) if n <= isize::MAX as usize => Some(n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_rounds_and_detects_overflow() {
        assert_eq!(align_up(0, 8), Some(0));
        assert_eq!(align_up(1, 8), Some(8));
        assert_eq!(align_up(8, 8), Some(8));
        assert_eq!(align_up(9, 4096), Some(4096));
        assert_eq!(align_up(usize::MAX, 2), None);
        assert_eq!(align_up(usize::MAX - 6, 8), None);
        assert_eq!(align_up(5, 3), None);
        assert_eq!(align_up(5, 0), None);
    }

    #[test]
    fn padding_is_below_align() {
        for addr in [0usize, 1, 7, 8, 4095, 4096, usize::MAX] {
            for shift in 0..20 {
                let a = 1usize << shift;
                let p = padding_for(addr, a);
                assert!(p < a);
                assert_eq!(addr.wrapping_add(p) % a, 0);
            }
        }
    }

    #[test]
    fn bump_up_fits_or_refuses() {
        let b = bump_up(1000, 2000, 10, 16, 8).unwrap();
        assert_eq!(b.start, 1008);
        assert_eq!(b.end, 1024);
        assert_eq!(bump_up(1000, 1010, 10, 16, 8), None);
        assert_eq!(bump_up(8, usize::MAX, usize::MAX - 4, 1, 8), None);
        assert_eq!(bump_up(10, 5, 0, 1, 1), None);
        assert_eq!(bump_up(0, 64, 64, 64, 8), Some(Bump { start: 0, end: 64 }));
        assert_eq!(
            bump_up(usize::MAX - 3, usize::MAX, 0, 1 << 40, 1),
            None,
            "padding past the top of the address space"
        );
    }

    proptest::proptest! {
        // No failure file: Miri (which runs these too) forbids the file
        // system, and a failing case is printed anyway.
        #![proptest_config(proptest::test_runner::Config {
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// `bump_up` agrees with the same placement done in u128, where
        /// nothing overflows.
        #[test]
        fn bump_up_matches_a_wide_model(
            cursor in proptest::prelude::any::<usize>(),
            room in proptest::prelude::any::<usize>(),
            size in proptest::prelude::any::<usize>(),
            align_shift in 0u32..64,
            min_shift in 0u32..7,
        ) {
            let limit = cursor.saturating_add(room);
            let (align, min_align) = (1usize << align_shift, 1usize << min_shift);
            let wide_start = (cursor as u128).div_ceil(align as u128) * align as u128;
            let wide_end = (wide_start + size as u128).div_ceil(min_align as u128) * min_align as u128;
            let expect = (wide_end <= limit as u128)
                .then_some(Bump { start: wide_start as usize, end: wide_end as usize });
            proptest::prop_assert_eq!(bump_up(cursor, limit, size, align, min_align), expect);
        }

        /// `round_up`, `round_down` and `is_aligned` agree with `align_up`
        /// and plain division wherever `round_up` is allowed (no overflow).
        #[test]
        fn rounding_matches_align_up(value in proptest::prelude::any::<usize>(), shift in 0u32..64) {
            let align = 1usize << shift;
            let down = value / align * align;
            proptest::prop_assert_eq!(round_down(value, align), down);
            proptest::prop_assert_eq!(is_aligned(value, align), value % align == 0);
            if let Some(up) = align_up(value, align) {
                proptest::prop_assert_eq!(round_up(value, align), up);
            }
        }

        /// `align_up` agrees with u128 arithmetic.
        #[test]
        fn align_up_matches_a_wide_model(value in proptest::prelude::any::<usize>(), shift in 0u32..64) {
            let align = 1usize << shift;
            let wide = (value as u128).div_ceil(align as u128) * align as u128;
            let expect = (wide <= usize::MAX as u128).then_some(wide as usize);
            proptest::prop_assert_eq!(align_up(value, align), expect);
        }
    }

    #[test]
    fn chunk_size_rounds_to_pages() {
        assert_eq!(chunk_size_for(1, 8, 64, 4096, 4096), Some(4096));
        assert_eq!(chunk_size_for(4096, 8, 64, 4096, 4096), Some(8192));
        assert_eq!(chunk_size_for(10, 1 << 16, 64, 4096, 0), Some((1 << 16) + 4096));
        assert_eq!(chunk_size_for(usize::MAX - 10, 8, 64, 4096, 0), None);
        assert_eq!(chunk_size_for(isize::MAX as usize, 8, 64, 4096, 0), None);
    }
}
