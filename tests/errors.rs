//! Bad input gets `Err(AllocError)` (or the documented panic), never a wrap
//! or a crash, and the arena stays usable afterwards.
mod common;
use core::alloc::Layout;
use fiberalloc::{policy::Policy, AllocError, Arena};

fn huge_sizes_fail_cleanly<P: Policy>() {
    let arena = Arena::<P>::default();
    let keep = arena.alloc(0xABCDu32);
    for (size, align) in [
        (isize::MAX as usize, 1),
        (isize::MAX as usize - 7, 8),
        (isize::MAX as usize - 4095, 4096),
        (isize::MAX as usize / 2, 1),
        (1 << 62, 1 << 12),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        assert_eq!(arena.try_alloc_layout(layout), Err(AllocError), "size {size:#x} align {align}");
    }
    // Layouts that cannot even be built are refused by the helpers.
    assert_eq!(arena.try_alloc_aligned(usize::MAX, 8), Err(AllocError));
    assert_eq!(arena.try_alloc_aligned(isize::MAX as usize, 1 << 20), Err(AllocError));
    // Nothing was lost: the earlier block is intact and allocation goes on.
    assert_eq!(*keep, 0xABCD);
    assert_eq!(*arena.alloc(5u64), 5);
    arena.validate().unwrap();
    let s = arena.stats();
    // Fast counts the u32's rounding up to 8 as allocated.
    assert_eq!(s.allocated_bytes, if P::EXACT_STATS { 4 + 8 } else { 8 + 8 });
}

fn capacity_errors<P: Policy>() {
    assert!(Arena::try_with_capacity_and_policy(usize::MAX, P::default()).is_err());
    assert!(Arena::try_with_capacity_and_policy(isize::MAX as usize, P::default()).is_err());
    let a = Arena::try_with_capacity_and_policy(100_000, P::default()).unwrap();
    assert!(a.stats().reserved_bytes >= 100_000);
    let before = a.stats().reserved_bytes;
    let p = a.alloc_layout(Layout::from_size_align(90_000, 8).unwrap());
    assert!(a.contains(p.as_ptr()));
    assert_eq!(a.stats().reserved_bytes, before, "with_capacity must make room up front");
    let empty = Arena::with_capacity_and_policy(0, P::default());
    assert_eq!(empty.stats().reserved_bytes, 0);
}

fn allocation_limit<P: Policy>() {
    let arena = Arena::<P>::default();
    arena.set_allocation_limit(Some(64 << 10));
    assert_eq!(arena.allocation_limit(), Some(64 << 10));
    let mut got = 0usize;
    while arena.try_alloc_layout(Layout::from_size_align(1000, 8).unwrap()).is_ok() {
        got += 1000;
        assert!(got < 1 << 20, "limit not enforced");
    }
    let s = arena.stats();
    assert!(s.reserved_bytes <= 64 << 10, "reserved {} past the limit", s.reserved_bytes);
    assert!(got >= 16_000, "only {got} bytes before the limit");
    // Raising the limit lets allocation continue.
    arena.set_allocation_limit(None);
    assert!(arena.try_alloc_layout(Layout::from_size_align(1000, 8).unwrap()).is_ok());
    arena.validate().unwrap();
}

fn panicking_calls_report_through_handle_alloc_error<P: Policy>() {
    // `alloc_layout` on an impossible size must not return: it reaches
    // `handle_alloc_error`, which aborts by default. Check that the
    // fallible twin reports it, and that `Vec::try_reserve` does too.
    let arena = Arena::<P>::default();
    let mut v = allocator_api2::vec::Vec::<u8, _>::new_in(&arena);
    assert!(v.try_reserve(isize::MAX as usize).is_err());
    assert!(v.try_reserve(usize::MAX).is_err());
    v.push(1);
    assert_eq!(v[0], 1);
}

fn zero_sized_requests_map_nothing<P: Policy>() {
    let arena = Arena::<P>::default();
    for align in [1, 8, 64, 4096] {
        let p = arena.try_alloc_layout(Layout::from_size_align(0, align).unwrap()).unwrap();
        assert_eq!(p.as_ptr() as usize % align, 0);
    }
    let unit = arena.alloc(());
    *unit = ();
    let empty: &mut [u64] = arena.alloc_slice_copy(&[]);
    assert!(empty.is_empty());
    assert_eq!(arena.stats().reserved_bytes, 0, "zero-sized blocks must not map a chunk");
    assert_eq!(arena.stats().allocated_bytes, 0);
}

per_policy!(
    huge_sizes_fail_cleanly,
    capacity_errors,
    allocation_limit,
    panicking_calls_report_through_handle_alloc_error,
    zero_sized_requests_map_nothing,
);
