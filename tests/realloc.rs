//! Growing, shrinking and freeing through the `Allocator` trait: in place
//! for the last block, by copy otherwise, also when the alignment changes.
mod common;
use allocator_api2::alloc::Allocator;
use common::*;
use core::alloc::Layout;
use fiberalloc::{policy::Policy, Arena};

fn l(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn last_block_grows_and_shrinks_in_place<P: Policy>() {
    let arena = Arena::<P>::default();
    let a = &arena;
    let p = a.allocate(l(24, 8)).unwrap().cast::<u8>();
    // SAFETY: the block holds 24 bytes.
    unsafe { fill(p.as_ptr(), 24, 1) };
    // SAFETY: `p` came from this allocator with that layout.
    let g = unsafe { a.grow(p, l(24, 8), l(4000, 8)) }.unwrap().cast::<u8>();
    assert_eq!(g, p, "the last block must grow in place");
    // SAFETY: contents up to the old size are kept.
    unsafe { check(g.as_ptr(), 24, 1) };
    // SAFETY: as above.
    let s = unsafe { a.shrink(g, l(4000, 8), l(16, 8)) }.unwrap().cast::<u8>();
    assert_eq!(s, p, "the last block must shrink in place");
    assert_eq!(arena.stats().allocated_bytes, 16);
    // The next block starts right after the shrunk one (and, under
    // canaries, its 8-byte canary and the next block's 16-byte header).
    let q = a.allocate(l(8, 8)).unwrap().cast::<u8>();
    let gap = if P::CANARIES { 16 + 8 + 16 } else { 16 };
    assert_eq!(q.as_ptr() as usize, p.as_ptr() as usize + gap);
    // Freeing the last block moves the cursor back: the same address again.
    // SAFETY: `q` came from this allocator.
    unsafe { a.deallocate(q, l(8, 8)) };
    let r = a.allocate(l(8, 8)).unwrap().cast::<u8>();
    assert_eq!(r, q, "freeing the last block must reclaim it");
    arena.validate().unwrap();
}

fn other_blocks_move<P: Policy>() {
    let arena = Arena::<P>::default();
    let a = &arena;
    let first = a.allocate(l(100, 8)).unwrap().cast::<u8>();
    // SAFETY: 100 bytes.
    unsafe { fill(first.as_ptr(), 100, 2) };
    let _second = a.allocate(l(8, 8)).unwrap();
    // SAFETY: `first` came from this allocator.
    let moved = unsafe { a.grow(first, l(100, 8), l(300, 8)) }.unwrap().cast::<u8>();
    assert_ne!(moved, first, "a block that is not the last must move to grow");
    // SAFETY: the first 100 bytes were copied.
    unsafe { check(moved.as_ptr(), 100, 2) };
    // Shrinking a block that is not last keeps it in place.
    let _third = a.allocate(l(8, 8)).unwrap();
    // SAFETY: `moved` came from this allocator.
    let shrunk = unsafe { a.shrink(moved, l(300, 8), l(50, 8)) }.unwrap().cast::<u8>();
    assert_eq!(shrunk, moved);
    // SAFETY: 50 bytes kept.
    unsafe { check(shrunk.as_ptr(), 50, 2) };
    // Freeing a block that is not the last leaves the cursor alone.
    let before = a.allocate(l(0, 1)).unwrap().cast::<u8>();
    // SAFETY: `shrunk` came from this allocator.
    unsafe { a.deallocate(shrunk, l(50, 8)) };
    let after = a.allocate(l(0, 1)).unwrap().cast::<u8>();
    assert_eq!(before, after);
    arena.validate().unwrap();
}

fn alignment_changes<P: Policy>() {
    let arena = Arena::<P>::default();
    let a = &arena;
    for (from, to) in [(8usize, 4096usize), (1, 64), (64, 1), (4096, 8), (16, 1 << 16)] {
        let _pad = a.allocate(l(8, 1)).unwrap();
        let p = a.allocate(l(40, from)).unwrap().cast::<u8>();
        // SAFETY: 40 bytes.
        unsafe { fill(p.as_ptr(), 40, from) };
        // SAFETY: `p` came from this allocator with that layout.
        let g = unsafe { a.grow(p, l(40, from), l(120, to)) }.unwrap().cast::<u8>();
        assert_eq!(g.as_ptr() as usize % to, 0, "grow {from}->{to} misaligned");
        // SAFETY: 40 bytes kept.
        unsafe { check(g.as_ptr(), 40, from) };
        // SAFETY: `g` came from this allocator with that layout.
        let s = unsafe { a.shrink(g, l(120, to), l(20, to * 2)) }.unwrap().cast::<u8>();
        assert_eq!(s.as_ptr() as usize % (to * 2), 0, "shrink {to}->{} misaligned", to * 2);
        // SAFETY: 20 bytes kept.
        unsafe { check(s.as_ptr(), 20, from) };
    }
    arena.validate().unwrap();
}

fn grow_zeroed_zeroes_the_tail<P: Policy>() {
    let arena = Arena::<P>::default();
    let a = &arena;
    let p = a.allocate(l(16, 8)).unwrap().cast::<u8>();
    // SAFETY: 16 bytes.
    unsafe { p.as_ptr().write_bytes(0xFF, 16) };
    let _other = a.allocate(l(8, 8)).unwrap();
    // Dirty the memory the in-place path would reuse next.
    let dirty = a.allocate(l(256, 8)).unwrap().cast::<u8>();
    // SAFETY: 256 bytes.
    unsafe { dirty.as_ptr().write_bytes(0xAA, 256) };
    // SAFETY: `dirty` came from this allocator.
    unsafe { a.deallocate(dirty, l(256, 8)) };
    // SAFETY: `p` came from this allocator with that layout.
    let g = unsafe { a.grow_zeroed(p, l(16, 8), l(200, 8)) }.unwrap().cast::<u8>();
    // SAFETY: 200 bytes.
    let bytes = unsafe { core::slice::from_raw_parts(g.as_ptr(), 200) };
    assert!(bytes[..16].iter().all(|&b| b == 0xFF));
    assert!(bytes[16..].iter().all(|&b| b == 0), "tail not zeroed");
    // In place too: the last block, over dirty bytes.
    let q = a.allocate(l(8, 8)).unwrap().cast::<u8>();
    // SAFETY: 8 bytes.
    unsafe { q.as_ptr().write_bytes(0x11, 8) };
    // SAFETY: `q` is the last block.
    let g = unsafe { a.grow_zeroed(q, l(8, 8), l(64, 8)) }.unwrap().cast::<u8>();
    assert_eq!(g, q);
    // SAFETY: 64 bytes.
    let bytes = unsafe { core::slice::from_raw_parts(g.as_ptr(), 64) };
    assert!(bytes[8..].iter().all(|&b| b == 0), "in-place tail not zeroed");
}

fn vec_push_with_reserve_exact_stays_in_place<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut v = allocator_api2::vec::Vec::<u8, _>::new_in(&arena);
    let n = scale(20_000);
    for i in 0..n {
        v.reserve_exact(1);
        v.push(i as u8);
    }
    assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
    // Growing one byte at a time in place consumes about n bytes, not
    // n^2 / 2: at most one copy per chunk, and chunks double.
    let s = arena.stats();
    let consumed = s.allocated_bytes + s.padding_bytes;
    assert!(consumed < 4 * n + 64, "consumed {consumed} bytes for {n} pushes");
}

per_policy!(
    last_block_grows_and_shrinks_in_place,
    other_blocks_move,
    alignment_changes,
    grow_zeroed_zeroes_the_tail,
    vec_push_with_reserve_exact_stays_in_place,
);
