//! `SharedArena` and its leases, with real threads.
mod common;
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec as AVec;
use common::*;
use core::alloc::Layout;
use fiberalloc::{policy::Policy, report::ChunkState, AllocError, SharedArena};
use std::sync::Barrier;

fn assert_send_sync<T: Send + Sync>() {}

/// A block pointer carried back from a worker thread (keeps its
/// provenance, unlike an address).
#[derive(Clone, Copy)]
struct Ptr(*mut u8);
// SAFETY: the blocks are plain bytes, read only after the writer joined.
unsafe impl Send for Ptr {}

/// `threads` threads each making `n` allocations of mixed sizes and
/// alignments from one arena at once; every block is filled, then checked
/// after all threads are done, and no two overlap.
fn hammer<P: Policy>(arena: &SharedArena<P>, threads: usize, n: usize) {
    let barrier = Barrier::new(threads);
    let blocks: Vec<Vec<(Ptr, usize, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let mut mine = Vec::with_capacity(n);
                    for i in 0..n {
                        let size = 1 + (i * 7 + t * 13) % 300;
                        let align = 1 << ((i + t) % 8);
                        let p =
                            arena.try_alloc_layout(Layout::from_size_align(size, align).unwrap()).unwrap();
                        assert_eq!(p.as_ptr() as usize % align, 0, "misaligned");
                        let id = t * n + i;
                        // SAFETY: a fresh block of `size` bytes, this thread's.
                        unsafe { fill(p.as_ptr(), size, id) };
                        mine.push((Ptr(p.as_ptr()), size, id));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<_> = blocks.into_iter().flatten().collect();
    for &(p, size, id) in &all {
        // SAFETY: blocks stay valid until the arena is reset.
        unsafe { check(p.0, size, id) };
    }
    assert_disjoint(all.iter().map(|&(p, s, _)| p.0 as usize..p.0 as usize + s).collect());
}

fn threads_get_disjoint_blocks<P: Policy>() {
    assert_send_sync::<SharedArena<P>>();
    let mut arena = SharedArena::<P>::default();
    hammer(&arena, 4, scale(50_000));
    // Under canaries: every header and canary written by racing threads
    // reads back.
    assert_eq!(arena.validate(), Ok(()));
    let s = arena.stats();
    assert!(s.chunk_count >= 1 && s.reserved_bytes > 0);
}

fn reset_after_join_reuses_memory<P: Policy>() {
    let mut arena = SharedArena::<P>::default();
    let n = scale(20_000);
    hammer(&arena, 2, n);
    arena.reset();
    hammer(&arena, 2, n);
    assert_eq!(arena.validate(), Ok(()));
    arena.reset();
    let settled = arena.stats().reserved_bytes;
    for _ in 0..3 {
        hammer(&arena, 2, n);
        arena.reset();
        assert!(arena.stats().reserved_bytes <= settled, "reserved memory grew across resets");
    }
    assert_eq!(arena.stats().allocated_bytes, 0);
}

fn vecs_in_several_threads<P: Policy>() {
    let arena = SharedArena::<P>::default();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let arena = &arena;
            s.spawn(move || {
                let mut v = AVec::new_in(arena);
                for i in 0..scale(20_000) as u64 {
                    v.push(i * 4 + t);
                }
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 4 + t));
                let mut m = hashbrown::HashMap::new_in(arena);
                for i in 0..scale(2_000) as u64 {
                    m.insert(i, t);
                }
                assert_eq!(m.len(), scale(2_000));
            });
        }
    });
}

fn last_block_in_place<P: Policy>() {
    let arena = SharedArena::<P>::default();
    let a = &arena;
    let l = |s| Layout::from_size_align(s, 8).unwrap();
    let p = a.allocate(l(16)).unwrap().cast::<u8>();
    // SAFETY: 16 bytes.
    unsafe { fill(p.as_ptr(), 16, 1) };
    // SAFETY: `p` came from this allocator with that layout.
    let g = unsafe { a.grow(p, l(16), l(4000)) }.unwrap().cast::<u8>();
    assert_eq!(g, p, "the last block grows in place");
    // SAFETY: kept contents.
    unsafe { check(g.as_ptr(), 16, 1) };
    // SAFETY: as above.
    unsafe { a.deallocate(g, l(4000)) };
    let q = a.allocate(l(8)).unwrap().cast::<u8>();
    assert_eq!(q, p, "freeing the last block moves the cursor back");
    let _r = a.allocate(l(8)).unwrap();
    // SAFETY: `q` came from this allocator.
    let moved = unsafe { a.grow(q, l(8), l(64)) }.unwrap().cast::<u8>();
    assert_ne!(moved, q, "a block that is not the last moves");
}

fn errors_are_values<P: Policy>() {
    let arena = SharedArena::<P>::default();
    for (size, align) in [(isize::MAX as usize, 1), (isize::MAX as usize - 4095, 4096), (1 << 62, 8)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        assert_eq!(arena.try_alloc_layout(layout), Err(AllocError));
    }
    let capped = SharedArena::<P>::default();
    capped.set_allocation_limit(Some(256 << 10));
    let mut n = 0;
    while capped.try_alloc_layout(Layout::from_size_align(1000, 8).unwrap()).is_ok() {
        n += 1;
        assert!(n < 10_000, "limit not enforced");
    }
    assert!(capped.stats().reserved_bytes <= 256 << 10);
    assert_eq!(*arena.alloc(7u8), 7, "still usable after errors");
    assert_eq!(arena.alloc_str("ok"), "ok");
}

fn leases_bump_and_reset<P: Policy>() {
    let mut arena = SharedArena::<P>::default();
    let n = scale(20_000);
    let mut settled = None;
    for round in 0..4 {
        std::thread::scope(|s| {
            for t in 0..3usize {
                let arena = &arena;
                s.spawn(move || {
                    let lease = arena.lease();
                    let mut blocks = Vec::new();
                    for i in 0..n {
                        let size = 1 + (i + t) % 100;
                        let p = lease.try_alloc_layout(Layout::from_size_align(size, 8).unwrap()).unwrap();
                        // SAFETY: fresh block of `size` bytes.
                        unsafe { fill(p.as_ptr(), size, t * n + i) };
                        blocks.push((Ptr(p.as_ptr()), size, t * n + i));
                    }
                    // A large block takes its own claim, and a huge one its
                    // own chunk (freed by try_reset too).
                    let big = lease.alloc_slice_copy(&[t as u8; 5000]);
                    assert!(big.iter().all(|&b| b == t as u8));
                    let huge = lease.try_alloc_layout(Layout::from_size_align(2 << 20, 8).unwrap()).unwrap();
                    // SAFETY: a fresh 2 MiB block.
                    unsafe { huge.as_ptr().write_bytes(t as u8, 2 << 20) };
                    for &(p, size, id) in &blocks {
                        // SAFETY: the lease is alive, so are its blocks.
                        unsafe { check(p.0, size, id) };
                    }
                    blocks.len()
                });
            }
        });
        assert_eq!(arena.lease_count(), 0);
        assert_eq!(arena.validate(), Ok(()), "round {round}: lease blocks and the blocks in them");
        let before = arena.stats().reserved_bytes;
        assert!(arena.try_reset(), "round {round}: no lease is live");
        let after = arena.stats().reserved_bytes;
        assert!(after <= before);
        // The lane keeps its newest chunk, which grows until one round
        // fits in it; from then on what try_reset keeps stops growing.
        if round >= 2 {
            let kept = *settled.get_or_insert(after);
            assert!(after <= kept, "round {round}: try_reset kept {after} bytes, {kept} before");
        }
    }
    let held = arena.lease();
    held.alloc(1u64);
    assert!(!arena.try_reset(), "a live lease blocks the reset");
    drop(held);
    assert!(arena.try_reset());
}

fn try_reset_frees_oversized_lease_chunks<P: Policy>() {
    let arena = SharedArena::<P>::default();
    {
        let lease = arena.lease();
        lease.alloc(1u8);
        let huge = lease.try_alloc_layout(Layout::from_size_align(4 << 20, 8).unwrap()).unwrap();
        // SAFETY: a fresh 4 MiB block.
        unsafe { huge.as_ptr().write_bytes(1, 4 << 20) };
    }
    let before = arena.stats().reserved_bytes;
    assert!(before > 4 << 20);
    assert!(arena.try_reset());
    let after = arena.stats().reserved_bytes;
    assert!(after + (4 << 20) <= before, "the oversized chunk survived try_reset: {before} -> {after}");
}

fn try_reset_leaves_direct_blocks_alone<P: Policy>() {
    let arena = SharedArena::<P>::default();
    let direct = arena.alloc_slice_copy(&[42u32; 256]);
    {
        let lease = arena.lease();
        lease.alloc_slice_copy(&[7u32; 256]);
    }
    assert!(arena.try_reset());
    let lease = arena.lease();
    let again = lease.alloc_slice_copy(&[9u32; 256]);
    assert!(again.iter().all(|&x| x == 9));
    assert!(direct.iter().all(|&x| x == 42), "try_reset must not free direct allocations");
}

/// The memory map's strips add up to the arena's counters; under the
/// canary policies the live bytes are exactly the blocks not freed.
fn memory_map_adds_up<P: Policy>() {
    let mut arena = SharedArena::<P>::default();
    let (n, m) = (scale(1000), scale(500));
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let arena = &arena;
            s.spawn(move || {
                for i in 0..n as u64 {
                    arena.alloc([t, i, 0, 0]);
                }
            });
        }
    });
    {
        let lease = arena.lease();
        for i in 0..m as u32 {
            lease.alloc(i);
        }
    }
    // An oversized block (a chunk of its own), and a block freed before
    // the one after it (so it stays where it is).
    arena.try_alloc_layout(Layout::from_size_align(3 << 20, 64).unwrap()).unwrap();
    let freed = allocator_api2::boxed::Box::new_in([1u8; 100], &arena);
    let kept = allocator_api2::boxed::Box::new_in([2u8; 100], &arena);
    drop(freed);
    core::mem::forget(kept);

    let s = arena.stats();
    let map = arena.memory_map();
    assert_eq!(map.chunks.len(), s.chunk_count);
    let size: usize = map.chunks.iter().map(|c| c.size()).sum();
    assert_eq!(size, s.reserved_bytes, "the strips cover the mapped bytes");
    let current = map.chunks.iter().filter(|c| c.state == ChunkState::Current).count();
    assert_eq!(current, 2, "one current chunk per lane (direct, leases)");
    assert!(
        map.chunks.iter().any(|c| c.state == ChunkState::Full && c.live >= 3 << 20),
        "the oversized chunk"
    );
    let live: usize = map.chunks.iter().map(|c| c.live).sum();
    let padding: usize = map.chunks.iter().map(|c| c.padding).sum();
    assert_eq!(live + padding, s.allocated_bytes, "used bytes per chunk add up to the arena's");
    if P::CANARIES {
        assert_eq!(live, 3 * n * 32 + m * 4 + (3 << 20) + 100, "live blocks, the freed one left out");
        assert!(padding >= 100 + (3 * n + m) * 16, "headers, canaries and the freed block: {padding}");
    } else {
        assert_eq!(padding, 0, "Fast keeps no block records: used counts as live");
    }
    assert!(map.chunks.iter().all(|c| (c.guard > 0) == P::GUARD_PAGES));
    let picture = fiberalloc::report::svg(&map);
    assert_eq!(picture.matches("class=\"chunk\"").count(), map.chunks.len());
    assert!(map.title.starts_with("SharedArena<") && picture.contains("SharedArena&lt;"), "{}", map.title);
}

per_policy!(
    threads_get_disjoint_blocks,
    reset_after_join_reuses_memory,
    vecs_in_several_threads,
    last_block_in_place,
    errors_are_values,
    leases_bump_and_reset,
    try_reset_frees_oversized_lease_chunks,
    try_reset_leaves_direct_blocks_alone,
    memory_map_adds_up,
);
