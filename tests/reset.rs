//! `reset`: everything freed, the largest chunk kept, no growth across
//! cycles.
mod common;
use common::*;
use core::alloc::Layout;
use fiberalloc::{policy::Policy, Arena};

fn cycle<P: Policy>(arena: &Arena<P>, n: usize) {
    for i in 0..n {
        let size = 16 + (i * 37) % 200;
        let p = arena.alloc_layout(Layout::from_size_align(size, 8).unwrap());
        // SAFETY: the block holds `size` bytes.
        unsafe { fill(p.as_ptr(), size, i) };
    }
}

fn reset_reuses_without_growth<P: Policy>() {
    let mut arena = Arena::<P>::default();
    let n = scale(20_000);
    cycle(&arena, n);
    let first = arena.stats();
    assert!(first.chunk_count > 1, "the workload should need several chunks");
    arena.reset();
    let after_reset = arena.stats();
    assert_eq!(after_reset.allocated_bytes, 0);
    assert_eq!(after_reset.allocation_count, 0);
    assert_eq!(after_reset.chunk_count, 1, "reset keeps exactly one chunk");
    assert!(after_reset.peak_bytes >= first.allocated_bytes);
    // After one more cycle the arena settles: further cycles map nothing.
    cycle(&arena, n);
    arena.reset();
    let settled = arena.stats().reserved_bytes;
    for _ in 0..5 {
        cycle(&arena, n);
        assert!(arena.stats().reserved_bytes <= 2 * settled + (1 << 20));
        arena.reset();
        assert_eq!(arena.stats().reserved_bytes, settled, "reserved memory grew across resets");
    }
    arena.validate().unwrap();
}

fn reset_keeps_the_largest_chunk<P: Policy>() {
    let mut arena = Arena::<P>::default();
    cycle(&arena, scale(5_000));
    let big = arena.alloc_layout(Layout::from_size_align(3 << 20, 8).unwrap());
    assert!(arena.contains(big.as_ptr()));
    arena.reset();
    let s = arena.stats();
    assert_eq!(s.chunk_count, 1);
    assert!(s.reserved_bytes >= 3 << 20, "the largest (oversized) chunk is the one kept");
    // The kept chunk serves the next big request without mapping.
    let again = arena.alloc_layout(Layout::from_size_align(3 << 20, 8).unwrap());
    assert!(arena.contains(again.as_ptr()));
    assert_eq!(arena.stats().reserved_bytes, s.reserved_bytes);
}

fn stats_add_up<P: Policy>() {
    let arena = Arena::<P>::default();
    assert_eq!(arena.stats().fragmentation(), 0.0);
    arena.alloc(1u8);
    arena.alloc(2u64);
    let s = arena.stats();
    assert_eq!(s.allocation_count, 2, "counted under every policy");
    if P::EXACT_STATS {
        assert_eq!(s.allocated_bytes, 9);
        // The u8 is rounded up to MIN_ALIGN = 8; under canaries each block
        // also has a 16-byte header and an 8-byte canary.
        let checks = if P::CANARIES { 2 * (16 + 8) } else { 0 };
        assert_eq!(s.padding_bytes, 7 + checks);
    } else {
        assert_eq!(s.allocated_bytes, 16, "Fast counts the u8's rounding as allocated");
        assert_eq!(s.padding_bytes, 0);
    }
    assert!(s.reserved_bytes >= P::MIN_CHUNK_SIZE);
    assert_eq!(s.chunk_count, 1);
    let f = s.fragmentation();
    assert!(f > 0.9 && f < 1.0, "a nearly empty chunk is mostly unused: {f}");
}

fn poisoned_after_reset_under_checking_policies<P: Policy>() {
    let mut arena = Arena::<P>::default();
    let first = arena.alloc([0x55u8; 64]) as *mut [u8; 64] as usize;
    arena.reset();
    // The next block lands where the old one was; its bytes are what reset
    // left behind (initialised either way: poison or the old contents).
    let again = arena.alloc_layout(core::alloc::Layout::new::<[u8; 64]>());
    assert_eq!(again.as_ptr() as usize, first, "reset must reuse the kept chunk from its start");
    // SAFETY: a fresh 64-byte block whose bytes were all written before.
    let after = unsafe { core::slice::from_raw_parts(again.as_ptr(), 64) };
    if P::POISON {
        assert!(after.iter().all(|&b| b == P::POISON_BYTE), "reset must poison");
    } else {
        assert!(after.iter().all(|&b| b == 0x55), "Fast must not touch freed memory");
    }
}

per_policy!(
    reset_reuses_without_growth,
    reset_keeps_the_largest_chunk,
    stats_add_up,
    poisoned_after_reset_under_checking_policies,
);

/// The lone chunk of an arena is not always the current one: an oversized
/// first block or a rewound scope leaves it on another list. Reset and drop
/// must still find it (a leak would show as a chunk the next arena of this
/// thread cannot reuse; validate() checks the bookkeeping).
fn lone_chunk_off_the_current_list<P: Policy>() {
    let mut arena = Arena::<P>::default();
    let big = arena.alloc_layout(Layout::from_size_align(1 << 20, 8).unwrap());
    assert!(arena.contains(big.as_ptr()));
    assert_eq!(arena.stats().chunk_count, 1);
    arena.reset();
    arena.validate().unwrap();
    assert_eq!(arena.stats().chunk_count, 1);
    assert_eq!(arena.stats().allocated_bytes, 0);
    let p = arena.alloc(5u64) as *mut u64;
    assert!(arena.contains(p as *const u8));
    assert_eq!(arena.stats().chunk_count, 1, "the kept (oversized) chunk serves the next block");

    let mut scoped_arena = Arena::<P>::default();
    scoped_arena.scope(|a| {
        a.alloc(1u64);
    });
    scoped_arena.validate().unwrap();
    assert_eq!(scoped_arena.stats().chunk_count, 1, "the scope's chunk is kept as a spare");
    scoped_arena.reset();
    scoped_arena.validate().unwrap();
    assert_eq!(scoped_arena.stats().chunk_count, 1);
}

mod lone {
    use super::*;
    #[test]
    fn fast() {
        lone_chunk_off_the_current_list::<fiberalloc::policy::Fast>()
    }
    #[test]
    fn safe() {
        lone_chunk_off_the_current_list::<fiberalloc::policy::Safe>()
    }
    #[test]
    fn debug() {
        lone_chunk_off_the_current_list::<fiberalloc::policy::Debug>()
    }
}
