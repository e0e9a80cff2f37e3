//! loom models of `SharedArena`'s protocols. Run from `loom-tests/` with
//! `RUSTFLAGS="--cfg fiberalloc_loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release`.
//!
//! Each model was checked against a weakened protocol when it was written
//! (see the README's loom section for what loom reported).
#![cfg(fiberalloc_loom)]

use core::alloc::Layout;
use fiberalloc::SharedArena;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

fn l(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn assert_disjoint(mut blocks: Vec<(usize, usize)>) {
    blocks.sort();
    for w in blocks.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "blocks overlap: {:x?}", w);
    }
}

/// (1) Threads allocating at once get disjoint, aligned blocks inside the
/// arena: one on the `fetch_add` path and one on the compare-exchange path
/// each.
#[test]
fn concurrent_allocations_are_disjoint() {
    loom::model(|| {
        let arena: Arc<SharedArena> = Arc::new(SharedArena::with_capacity(4096));
        let spawn = |a: Arc<SharedArena>| {
            thread::spawn(move || {
                let small = a.try_alloc_layout(l(24, 8)).unwrap().as_ptr() as usize;
                let wide = a.try_alloc_layout(l(40, 64)).unwrap().as_ptr() as usize;
                assert_eq!(wide % 64, 0, "misaligned");
                vec![(small, 24), (wide, 40)]
            })
        };
        let t1 = spawn(arena.clone());
        let t2 = spawn(arena.clone());
        let mut blocks = t1.join().unwrap();
        blocks.extend(t2.join().unwrap());
        for &(p, s) in &blocks {
            assert!(
                arena.contains(p as *const u8) && arena.contains((p + s - 1) as *const u8),
                "out of bounds"
            );
        }
        assert_disjoint(blocks);
        assert_eq!(arena.stats().chunk_count, 1, "no refill was needed");
    });
}

/// (2) Two threads exhausting a chunk at once: exactly one new chunk is
/// installed, both blocks land, nothing overlaps.
#[test]
fn refill_race_installs_one_chunk() {
    loom::model(|| {
        let arena: Arc<SharedArena> = Arc::new(SharedArena::with_capacity(4096));
        // Leave less room than either request in the first chunk.
        let cap = 16 << 10;
        let mut filler = Vec::new();
        while let Ok(p) = arena.try_alloc_layout(l(256, 8)) {
            filler.push((p.as_ptr() as usize, 256));
            if filler.len() * 256 >= cap - 1024 {
                break;
            }
        }
        let first_chunks = arena.stats().chunk_count;
        let spawn = |a: Arc<SharedArena>| {
            thread::spawn(move || (a.try_alloc_layout(l(2000, 8)).unwrap().as_ptr() as usize, 2000))
        };
        let t1 = spawn(arena.clone());
        let t2 = spawn(arena.clone());
        let mut blocks = vec![t1.join().unwrap(), t2.join().unwrap()];
        assert_eq!(arena.stats().chunk_count, first_chunks + 1, "exactly one chunk is installed");
        blocks.extend(filler);
        assert_disjoint(blocks);
    });
}

/// (3) A reset never succeeds while a lease is live, and memory reached
/// through a lease is never reused before the lease ends. The lease lane's
/// bytes are modelled by a loom cell: the lease writes it while it holds
/// the lease, and a successful reset writes it while it holds the lane (as
/// reuse would); loom reports the two writes if they are not ordered.
#[test]
fn lease_and_try_reset() {
    loom::model(|| {
        let arena: Arc<SharedArena> = Arc::new(SharedArena::new());
        let bytes = Arc::new(UnsafeCell::new(0u64));
        let (a, b) = (arena.clone(), bytes.clone());
        let holder = thread::spawn(move || {
            let lease = a.lease();
            let v = lease.alloc(7u64);
            // SAFETY: the model's stand-in for the lease's bytes.
            b.with_mut(|p| unsafe { *p = *v });
            drop(lease);
        });
        // While the reset holds the lane, it may reuse it: a write.
        // SAFETY: the model's stand-in for the lease's bytes.
        let _ = arena.try_reset_with(|| bytes.with_mut(|p| unsafe { *p = 0 }));
        holder.join().unwrap();
        assert!(arena.try_reset(), "no lease is live after the join");
    });
}

/// (4) Giving back the last block (a compare-exchange of the cursor back
/// to the block's start) racing with another thread's allocation: no block
/// handed out afterwards overlaps a live one, and when the other thread's
/// block reuses the bytes given back, the first owner's writes happen
/// before the new owner's (the bytes are modelled by a loom cell).
#[test]
fn dealloc_last_races_an_allocation() {
    loom::model(|| {
        use allocator_api2::alloc::Allocator as _;
        let arena: Arc<SharedArena> = Arc::new(SharedArena::with_capacity(4096));
        // The chunk's first address: allocate and give back a probe.
        let probe = (&*arena).allocate(l(8, 8)).unwrap().cast::<u8>();
        // SAFETY: `probe` came from this allocator with this layout.
        unsafe { (&*arena).deallocate(probe, l(8, 8)) };
        let start = probe.as_ptr() as usize;
        let bytes = Arc::new(UnsafeCell::new(0u64));
        let (a, b) = (arena.clone(), bytes.clone());
        let freer = thread::spawn(move || {
            let p = (&*a).allocate(l(64, 8)).unwrap().cast::<u8>();
            if p.as_ptr() as usize == start {
                // SAFETY: the model's stand-in for the block's bytes.
                b.with_mut(|v| unsafe { *v = 1 });
            }
            // SAFETY: `p` came from this allocator with this layout.
            unsafe { (&*a).deallocate(p, l(64, 8)) };
        });
        let mine = arena.try_alloc_layout(l(32, 8)).unwrap().as_ptr() as usize;
        if (start..start + 64).contains(&mine) {
            // SAFETY: the model's stand-in for the block's bytes.
            bytes.with_mut(|v| unsafe { *v = 2 });
        }
        freer.join().unwrap();
        // Whatever the rollback did, a new block covering the freed 64
        // bytes and more must not overlap `mine`.
        let next = arena.try_alloc_layout(l(128, 8)).unwrap().as_ptr() as usize;
        assert_disjoint(vec![(mine, 32), (next, 128)]);
    });
}
