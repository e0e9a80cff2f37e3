//! The live count of a `GlobalArena` chunk, split between its owner and
//! everyone else, and the rule that recycles the chunk exactly once.
//!
//! The owning thread counts the blocks it hands out and the ones it frees
//! itself in a plain `Cell` (`owner_live`, kept outside this type). Frees by
//! any other thread go through [`RemoteCount::free_remote`], an atomic
//! decrement of `debt`, which therefore sits at zero or below while the
//! owner holds the chunk (minus the number of remote frees so far).
//!
//! When the owner lets go of the chunk ([`RemoteCount::retire`]) it adds
//! `owner_live` to `debt` in one read-modify-write. From then on `debt` is
//! exactly the number of live blocks, and only decreases; it reaches zero
//! once. Whoever takes it to zero, the retiring owner (nothing left live)
//! or the remote thread whose decrement read 1, recycles the chunk. Before
//! the retirement `debt <= 0`, so no remote decrement can read 1: a chunk is
//! never recycled while its owner may still hand out blocks from it, and
//! never while a block is live.
//!
//! A thread that frees several blocks of one chunk in a row may count them
//! with one decrement ([`RemoteCount::free_remote_n`]); until it does, they
//! count as live, so the chunk is recycled later, never earlier.
//!
//! Blocks freed remotely may be taken back into use (adopted) by any
//! thread while the chunk is retired and some of its blocks are live
//! ([`RemoteCount::pin`], [`RemoteCount::adopt`], [`RemoteCount::unpin`]):
//! the adopter first adds a phantom live block, which only succeeds while
//! `debt` is above zero, so the chunk cannot reach zero (and be recycled)
//! while it counts the adopted blocks live again; then it drops the
//! phantom, and recycles the chunk if that was the last live block.
//!
//! A retired chunk with live blocks may also be taken over by a new owner
//! ([`RemoteCount::take_over`]: a thread that exits leaves the unused part
//! of its chunk to the next thread that needs one): the count moves down by
//! a bias that the new owner's live count starts at, so that the sum stays
//! exact and `debt` stays below zero while the chunk is owned.
//!
//! Orderings: every decrement and the retiring add are `AcqRel`. The
//! release half publishes the thread's last use of its block (or the
//! owner's header writes); the read-modify-writes form one release
//! sequence, so the acquire half of the final one sees all of them, and the
//! recycler may hand the memory to a new owner.

use crate::sync::{AtomicIsize, Ordering};

/// What an owner that took a chunk over ([`RemoteCount::take_over`])
/// starts its live count at, and what the take-over subtracts from `debt`:
/// more than a chunk could ever hold blocks or adopters.
pub const TAKEN_OVER: usize = 1 << 40;

/// The atomic half of a chunk's live count (see the module docs).
pub struct RemoteCount {
    debt: AtomicIsize,
}

impl Default for RemoteCount {
    fn default() -> Self {
        Self::new()
    }
}

impl RemoteCount {
    /// A count for a fresh chunk: no block freed remotely yet.
    #[cfg(not(fiberalloc_loom))]
    pub const fn new() -> Self {
        RemoteCount { debt: AtomicIsize::new(0) }
    }

    /// A count for a fresh chunk (loom's atomics are not `const`).
    #[cfg(fiberalloc_loom)]
    pub fn new() -> Self {
        RemoteCount { debt: AtomicIsize::new(0) }
    }

    /// A block of the chunk is freed by a thread that does not own it.
    /// Returns `true` when that was the last live block of a retired
    /// chunk: the caller must recycle the chunk.
    #[inline]
    pub fn free_remote(&self) -> bool {
        self.free_remote_n(1)
    }

    /// `n` blocks of the chunk, freed by one thread that does not own it,
    /// counted in one decrement (each block's last use by that thread comes
    /// before it in program order, so the release covers them all).
    /// Returns `true` when they were the last live blocks of a retired
    /// chunk: the caller must recycle the chunk.
    #[inline]
    pub fn free_remote_n(&self, n: usize) -> bool {
        let n = n as isize;
        // AcqRel: see the module docs.
        self.debt.fetch_sub(n, Ordering::AcqRel) == n
    }

    /// The owner lets go of the chunk, having counted `owner_live` blocks
    /// live (handed out minus freed by itself). Returns `true` when none is
    /// live: the caller must recycle the chunk.
    pub fn retire(&self, owner_live: usize) -> bool {
        let n = owner_live as isize;
        // AcqRel: publishes the owner's writes to the header to whoever
        // recycles; acquires the remote frees so far.
        self.debt.fetch_add(n, Ordering::AcqRel).wrapping_add(n) == 0
    }

    /// Whether every block the owner handed out has been freed (by anyone),
    /// so that the owner may start the chunk over. Owner only.
    #[inline]
    pub fn all_freed(&self, owner_live: usize) -> bool {
        // Acquire: synchronises with every remote free so far (they form a
        // release sequence), so their last uses happen before the reuse.
        (owner_live as isize).wrapping_add(self.debt.load(Ordering::Acquire)) == 0
    }

    /// Adds a phantom live block to a retired chunk that still has live
    /// blocks, so that it stays unrecycled until [`unpin`](Self::unpin).
    /// Returns `false`, changing nothing, when the chunk is not retired
    /// with live blocks (owned, or at zero: recycled or being recycled).
    pub fn pin(&self) -> bool {
        // Relaxed: the loop only reads the value to build the next one;
        // what the pin protects is ordered by the pinner's own later
        // accesses, which the chunk's recycler acquires through `unpin`.
        let mut d = self.debt.load(Ordering::Relaxed);
        while d > 0 {
            // Acquire on success: the retirement and the frees counted so
            // far (released into the count) happen before the adopter's
            // use of the chunk; the freed blocks' links themselves are
            // acquired by the adopter's swap of the list.
            match self.debt.compare_exchange_weak(d, d + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => d = now,
            }
        }
        false
    }

    /// A thread takes a retired chunk that still has live blocks as its
    /// own again (to bump through the space its last owner left unused).
    /// Returns `false`, changing nothing, when the chunk is not retired
    /// with live blocks (owned, or at zero: recycled or being recycled).
    ///
    /// On success the count is moved down by [`TAKEN_OVER`] and the new
    /// owner's live count starts at [`TAKEN_OVER`]: their sum is still the
    /// number of live blocks, and `debt` is far below zero, as it must be
    /// while the chunk is owned, however many of the blocks other threads
    /// free or adopt meanwhile (an adopter that pinned the chunk before
    /// this adds what it adopts and drops its pin against a count that can
    /// no longer read 1).
    pub fn take_over(&self) -> bool {
        // Relaxed: the loop only reads the value to build the next one.
        let mut d = self.debt.load(Ordering::Relaxed);
        while d > 0 {
            // Acquire on success: the retirement (the last owner's writes
            // to the header, its `dirty_end` first) happens before the new
            // owner's use of the chunk.
            match self.debt.compare_exchange_weak(
                d,
                d - TAKEN_OVER as isize,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => d = now,
            }
        }
        false
    }

    /// Counts `n` freed blocks of a pinned chunk live again (their adopter
    /// uses them). Only between [`pin`](Self::pin) and
    /// [`unpin`](Self::unpin).
    pub fn adopt(&self, n: usize) {
        // Relaxed: the pin keeps the count above zero meanwhile, and the
        // modification order puts this add before the `unpin` that
        // follows it in this thread.
        self.debt.fetch_add(n as isize, Ordering::Relaxed);
    }

    /// Drops the phantom block of [`pin`](Self::pin). Returns `true` when it
    /// was the last live block: the caller must recycle the chunk.
    pub fn unpin(&self) -> bool {
        // AcqRel: as a remote free.
        self.debt.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Starts counting afresh after [`all_freed`](Self::all_freed) returned
    /// `true`. Owner only.
    pub fn restart(&self) {
        // Relaxed: with no block live no other thread can touch the count;
        // a later remote free is of a block handed out after this store,
        // through some synchronisation with the owner, so it sees it.
        self.debt.store(0, Ordering::Relaxed);
    }
}
