//! `GlobalArena`'s chunk live count (`RemoteCount`): the owner counts its
//! own allocations and frees in a plain variable, other threads free
//! atomically. These models check that a chunk is recycled exactly once,
//! and never while one of its blocks is still in use: "recycling" here
//! writes every block's cell, so loom reports a data race if a block's last
//! use is not ordered before it.
//!
//! Weakenings checked when the models were written: with `free_remote`'s
//! `fetch_sub` made `Relaxed` instead of `AcqRel`, loom reports a data race
//! between a block's last use and the recycling write (both models); with
//! `retire` returning `true` whenever the owner's own count is zero
//! (ignoring remote frees), both models fail their "recycled once"
//! assertion (the chunk is recycled twice).
#![cfg(fiberalloc_loom)]

use fiberalloc::loom_api::{RemoteCount, TAKEN_OVER};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A chunk: its count, three blocks, and how often it was recycled.
struct Chunk {
    count: RemoteCount,
    blocks: [UnsafeCell<u64>; 3],
    recycled: AtomicUsize,
}

impl Chunk {
    fn new() -> Self {
        Chunk {
            count: RemoteCount::new(),
            blocks: [UnsafeCell::new(0), UnsafeCell::new(0), UnsafeCell::new(0)],
            recycled: AtomicUsize::new(0),
        }
    }

    /// A thread uses block `i` for the last time.
    fn last_use(&self, i: usize) {
        self.blocks[i].with_mut(|p| {
            // SAFETY: loom checks this access against the recycler's.
            unsafe { *p += 1 }
        });
    }

    /// An adopter takes block 1 back into use if it is on the list (the
    /// flag `listed`): `pin`, take the list, `adopt`, use the block, free
    /// it again, `unpin`.
    fn adopt_block_1(&self, listed: &AtomicBool) {
        if self.count.pin() {
            if listed.swap(false, Ordering::Acquire) {
                self.count.adopt(1);
                self.last_use(1);
                if self.count.free_remote() {
                    self.recycle();
                }
            }
            if self.count.unpin() {
                self.recycle();
            }
        }
    }

    /// The chunk is recycled: its memory is handed to a new owner, who
    /// writes every block.
    fn recycle(&self) {
        self.recycled.fetch_add(1, Ordering::Relaxed);
        for b in &self.blocks {
            // SAFETY: loom checks this access against the blocks' last uses.
            b.with_mut(|p| unsafe { *p = 0xDEAD });
        }
    }
}

/// The owner hands out three blocks, sends two to other threads (which
/// free them remotely), frees the third itself and retires the chunk while
/// the remote frees may be in flight.
#[test]
fn recycled_exactly_once() {
    loom::model(|| {
        let chunk = Arc::new(Chunk::new());
        let mut owner_live = 3usize;
        let remote: Vec<_> = [1usize, 2]
            .into_iter()
            .map(|i| {
                let c = chunk.clone();
                thread::spawn(move || {
                    c.last_use(i);
                    if c.count.free_remote() {
                        c.recycle();
                    }
                })
            })
            .collect();
        chunk.last_use(0);
        owner_live -= 1;
        if chunk.count.retire(owner_live) {
            chunk.recycle();
        }
        for t in remote {
            t.join().unwrap();
        }
        assert_eq!(chunk.recycled.load(Ordering::Relaxed), 1, "recycled once");
    });
}

/// The owner asks whether every block is freed (to start the chunk over)
/// while another thread frees one remotely; if it starts over it reuses the
/// blocks at once, and afterwards retiring recycles the chunk exactly once.
#[test]
fn start_over_only_when_all_freed() {
    loom::model(|| {
        let chunk = Arc::new(Chunk::new());
        let mut owner_live = 2usize;
        let c = chunk.clone();
        let t = thread::spawn(move || {
            c.last_use(1);
            if c.count.free_remote() {
                c.recycle();
            }
        });
        chunk.last_use(0);
        owner_live -= 1;
        if chunk.count.all_freed(owner_live) {
            // Starting over reuses every block: the remote block's last use
            // must be ordered before this.
            chunk.count.restart();
            owner_live = 0;
            for b in &chunk.blocks {
                // SAFETY: loom checks this access.
                b.with_mut(|p| unsafe { *p = 7 });
            }
        }
        if chunk.count.retire(owner_live) {
            chunk.recycle();
        }
        t.join().unwrap();
        assert_eq!(chunk.recycled.load(Ordering::Relaxed), 1, "recycled once");
    });
}

/// A consumer thread frees two blocks of the chunk and counts them with one
/// decrement of two (`free_remote_n`, as `GlobalArena` batches a run of
/// frees to one chunk), racing the owner's own free and retirement. Both
/// blocks' last uses must come before the recycling, which happens once.
/// Weakening checked: with `free_remote_n` `Relaxed`, loom reports the data
/// race on the first block (its last use is not ordered before the
/// recycler's write).
#[test]
fn batched_remote_frees() {
    loom::model(|| {
        let chunk = Arc::new(Chunk::new());
        let mut owner_live = 3usize;
        let c = chunk.clone();
        let t = thread::spawn(move || {
            c.last_use(1);
            c.last_use(2);
            if c.count.free_remote_n(2) {
                c.recycle();
            }
        });
        chunk.last_use(0);
        owner_live -= 1;
        if chunk.count.retire(owner_live) {
            chunk.recycle();
        }
        t.join().unwrap();
        assert_eq!(chunk.recycled.load(Ordering::Relaxed), 1, "recycled once");
    });
}

/// A retired chunk with two live blocks. One thread frees block 1 and puts
/// it on the chunk's list of freed blocks (here a flag, set with the
/// release of the real list's splice) before counting it; another adopts it
/// (`pin`, take the list, `adopt`, reuse the block, free it again,
/// `unpin`) while a third frees block 0. The chunk must be recycled once,
/// after every use of both blocks, including the adopter's.
/// Weakenings checked: with `pin` replaced by an unconditional increment
/// (adopting from a chunk already at zero, so already recycled), and with
/// `unpin` `Relaxed`, loom reports a data race between the adopter's use
/// of block 1 and a recycling write.
#[test]
fn adopted_block_keeps_the_chunk() {
    loom::model(|| {
        let chunk = Arc::new(Chunk::new());
        let listed = Arc::new(AtomicBool::new(false));
        // The owner handed out blocks 0 and 1, and retired the chunk.
        assert!(!chunk.count.retire(2));
        let (c, l) = (chunk.clone(), listed.clone());
        let freer = thread::spawn(move || {
            c.last_use(1);
            l.store(true, Ordering::Release);
            if c.count.free_remote() {
                c.recycle();
            }
        });
        let (c, l) = (chunk.clone(), listed.clone());
        let adopter = thread::spawn(move || {
            c.adopt_block_1(&l);
        });
        chunk.last_use(0);
        if chunk.count.free_remote() {
            chunk.recycle();
        }
        freer.join().unwrap();
        adopter.join().unwrap();
        assert_eq!(chunk.recycled.load(Ordering::Relaxed), 1, "recycled once");
    });
}

/// A retired chunk with two live blocks, of which block 1 has been freed
/// remotely and listed. A new owner takes the chunk over (`take_over`, as a
/// thread that needs a chunk takes an exited thread's half-used one), bumps
/// block 2, uses and frees it itself and retires the chunk, while another
/// thread frees block 0 and an adopter takes block 1 back into use (`pin`,
/// `adopt`, use, free, `unpin`). Whoever wins, the chunk is recycled
/// exactly once, after every use of every block, the new owner's included;
/// and a take-over never succeeds on a chunk already recycled.
/// Weakenings checked: with `take_over` subtracting nothing (the new owner
/// starting at its bias all the same) the model fails "recycled once";
/// with its compare-exchange succeeding at zero (`d >= 0`), loom reports a
/// data race between a recycling write and the new owner's use of block 2.
#[test]
fn take_over_with_remote_frees_and_an_adopter() {
    loom::model(|| {
        let chunk = Arc::new(Chunk::new());
        let listed = Arc::new(AtomicBool::new(true));
        // Blocks 0 and 1 were handed out and the chunk retired; block 1 was
        // freed by another thread and put on the list.
        assert!(!chunk.count.retire(2));
        assert!(!chunk.count.free_remote());
        let c = chunk.clone();
        let freer = thread::spawn(move || {
            c.last_use(0);
            if c.count.free_remote() {
                c.recycle();
            }
        });
        let (c, l) = (chunk.clone(), listed.clone());
        let adopter = thread::spawn(move || {
            c.adopt_block_1(&l);
        });
        if chunk.count.take_over() {
            assert_eq!(chunk.recycled.load(Ordering::Relaxed), 0, "taken over after recycling");
            let mut owner_live = TAKEN_OVER;
            // Bump block 2, use it, free it in place.
            owner_live += 1;
            chunk.last_use(2);
            owner_live -= 1;
            if chunk.count.retire(owner_live) {
                chunk.recycle();
            }
        }
        freer.join().unwrap();
        adopter.join().unwrap();
        assert_eq!(chunk.recycled.load(Ordering::Relaxed), 1, "recycled once");
    });
}
