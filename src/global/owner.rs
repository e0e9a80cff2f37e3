//! Chunk owners: the bump state of one chunk at a time.
//!
//! An [`Owner`] bumps blocks from its current chunk, counts the blocks it
//! handed out and freed itself in a plain `Cell`, frees and resizes its
//! last block in place, and, when a block does not fit, starts the chunk
//! over (every block in it freed) or retires it and takes another
//! ([`Owner::refill`]). Each thread has two (`thread.rs`); threads whose
//! own state is gone share [`FALLBACK`] behind a spin lock.

use super::abandon::{abandon, abandoned_waiting, offer_orphan, take_orphan, ORPHAN_MIN_TAIL, TAKEN_OVER};
use super::chunk::{acquire_chunk, recycle, GlobalChunk, CHUNKS_PINNED, CHUNK_SIZE, HEADER_SIZE, NO_OWNER};
use super::class::{block_size, LARGE_THRESHOLD, SMALL_MAX};
use super::stats::note_peak;
use crate::sync::{Ordering, SpinLock};
use crate::{align, sys};
use core::cell::Cell;
use core::ptr::{self, NonNull};

/// Once an owner has filled a chunk, the untouched part of its next ones
/// is made resident this many bytes at a time ([`sys::prefault`]): one
/// system call instead of a page fault per page, and at most this much
/// resident ahead of the cursor. Before that (a thread that allocates
/// little: one of many short-lived ones, or of a large pool) pages fault
/// in one by one as they are touched. `MADV_POPULATE_WRITE` holds the
/// process's mmap lock, on which thread stacks being mapped and unmapped
/// wait, while page faults take only the area's lock; with 64 short-lived
/// threads, prefaulting from the first chunk took 38 ms against 23 and
/// 3x the peak RSS.
pub(super) const PREFAULT_STEP: usize = 256 << 10;
const _: () = assert!(CHUNK_SIZE.is_multiple_of(PREFAULT_STEP) && LARGE_THRESHOLD <= PREFAULT_STEP);

/// How far the limit moves at a time, before an owner prefaults, while
/// abandoned chunks wait to be adopted from (see [`Owner::grow_limit`]).
pub(super) const ADOPT_STEP: usize = 64 << 10;
const _: () = assert!(CHUNK_SIZE.is_multiple_of(ADOPT_STEP));

/// Chunks each owner remembers as retired while kept by live blocks.
pub(super) const PINNED_SLOTS: usize = 4;

/// The bumping state of one chunk owner.
///
/// Invariants: when `chunk` is null, `cursor` is null and `limit` 0 (so
/// every request takes the slow path); otherwise
/// `chunk + HEADER_SIZE <= cursor <= limit <= chunk + CHUNK_SIZE`, `live`
/// counts the blocks this owner handed out from `chunk` minus those it freed
/// itself, and every byte in `max(cursor, clean_from)..chunk + CHUNK_SIZE`
/// is zero. Once the owner has filled a chunk (`prefault`), `limit` stops
/// short of the chunk's end while the rest of the chunk has never been
/// touched: the slow path prefaults the next [`PREFAULT_STEP`] and moves it
/// on ([`Owner::grow_limit`]). Before, it moves straight to the end.
///
/// The fields the bump reads come first, and each owner starts a cache
/// line, so that the two owners' hot fields never share or straddle one.
#[repr(C, align(64))]
pub(super) struct Owner {
    pub(super) cursor: Cell<*mut u8>,
    pub(super) limit: Cell<usize>,
    pub(super) chunk: Cell<*mut GlobalChunk>,
    pub(super) live: Cell<usize>,
    pub(super) clean_from: Cell<usize>,
    /// Whether this owner has filled a chunk, so that prefaulting ahead of
    /// the cursor pays (see [`PREFAULT_STEP`]).
    pub(super) prefault: Cell<bool>,
    /// Chunks this owner retired while some of their blocks were live
    /// (kept by stragglers), for [`Local::adopt_pinned`](super::thread::Local::adopt_pinned) to take the blocks
    /// that other threads free in them back into use; with the count of
    /// chunks the owner had retired when it did (`retired`). Pointers only:
    /// a chunk may have been recycled since (adoption checks).
    pub(super) pinned: [Cell<*mut GlobalChunk>; PINNED_SLOTS],
    pub(super) pinned_at: [Cell<u64>; PINNED_SLOTS],
    pub(super) retired: Cell<u64>,
}

impl Owner {
    pub(super) const fn new() -> Self {
        Owner {
            cursor: Cell::new(ptr::null_mut()),
            limit: Cell::new(0),
            chunk: Cell::new(ptr::null_mut()),
            live: Cell::new(0),
            clean_from: Cell::new(0),
            prefault: Cell::new(false),
            pinned: [const { Cell::new(ptr::null_mut()) }; PINNED_SLOTS],
            pinned_at: [const { Cell::new(0) }; PINNED_SLOTS],
            retired: Cell::new(0),
        }
    }

    /// Bumps `size` bytes aligned to `align` from the current chunk, if
    /// they fit. `size <= LARGE_THRESHOLD`, `align <= MAX_CHUNK_ALIGN`.
    #[inline(always)]
    pub(super) fn bump(&self, size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        self.bump_block(block_size(size), align, zero)
    }

    /// [`bump`](Self::bump) of a block of `block` bytes (`block_size` of the
    /// size asked for, computed by the caller).
    #[inline(always)]
    pub(super) fn bump_block(&self, block: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        let cursor = self.cursor.get();
        // Rounded up without a branch: three instructions, fewer than
        // choosing (the cursor is a multiple of GRAIN, so blocks aligned
        // to at most GRAIN do not move).
        let start = align::round_up(cursor.addr(), align);
        let end = start + block;
        if end > self.limit.get() {
            return None;
        }
        self.cursor.set(cursor.with_addr(end));
        self.live.set(self.live.get() + 1);
        let p = cursor.with_addr(start);
        if zero {
            let clean = self.clean_from.get();
            if start < clean {
                let dirty = end.min(clean) - start;
                // SAFETY: `start..start + dirty` lies in the block just
                // handed out, inside the owner's chunk.
                unsafe { p.write_bytes(0, dirty) };
            }
        }
        // SAFETY: `start` lies in the chunk (at least HEADER_SIZE past its
        // start), so it is not null.
        Some(unsafe { NonNull::new_unchecked(p) })
    }

    /// Makes the chunk usable up to at least `need` (an address past the
    /// limit): to its end, or, once the owner has filled a chunk, to the
    /// next [`PREFAULT_STEP`] boundary, prefaulting the untouched pages on
    /// the way. Returns false when `need` is past the chunk.
    #[cold]
    #[inline(never)]
    pub(super) fn grow_limit(&self, need: usize) -> bool {
        let chunk = self.chunk.get();
        let end = chunk.addr() + CHUNK_SIZE;
        let limit = self.limit.get();
        if chunk.is_null() || need > end || limit >= end {
            return false;
        }
        if !self.prefault.get() {
            // Pages fault in as they are touched. While other threads'
            // chunks wait with freed blocks to adopt (`abandon.rs`), the
            // limit moves in steps of ADOPT_STEP, so that the slow path
            // looks at them that often instead of once per chunk.
            let to = if abandoned_waiting() {
                align::round_up(need.max(limit + 1), ADOPT_STEP).min(end)
            } else {
                end
            };
            self.limit.set(to);
            return true;
        }
        // Chunks are CHUNK_SIZE-aligned, so step boundaries are absolute.
        let to = align::round_up(need.max(limit + 1), PREFAULT_STEP).min(end);
        let page = sys::page_size();
        // Everything past the limit is untouched (the limit starts at the
        // chunk's `dirty_end` and moves only here); the page holding the
        // limit may be resident already.
        let from = align::round_up(limit, page);
        if from < to {
            // SAFETY: `from..to` lies inside the owner's chunk, past every
            // byte ever handed out from it, so nothing refers to it; `from`
            // is page-aligned, `to` a step boundary (so page-aligned).
            unsafe { sys::prefault(NonNull::new_unchecked(chunk.cast::<u8>().with_addr(from)), to - from) };
        }
        self.limit.set(to);
        true
    }

    /// The end of a block of `size` bytes aligned to `align` bumped now.
    #[inline(always)]
    pub(super) fn end_of(&self, size: usize, align: usize) -> usize {
        align::round_up(self.cursor.get().addr(), align) + block_size(size)
    }

    /// Moves the cursor back to `to` (below it), keeping the zero mark true.
    #[inline(always)]
    pub(super) fn rewind(&self, to: *mut u8) {
        let cursor = self.cursor.get();
        if cursor.addr() > self.clean_from.get() {
            self.clean_from.set(cursor.addr());
        }
        self.cursor.set(to);
    }

    /// Frees a block of the owner's current chunk.
    ///
    /// # Safety
    /// `ptr` is a live block of `size` bytes handed out from `self.chunk`.
    #[inline(always)]
    pub(super) unsafe fn free_local(&self, ptr: *mut u8, size: usize) {
        let live = self.live.get().wrapping_sub(1);
        self.live.set(live);
        let cursor = self.cursor.get();
        if ptr.addr() + block_size(size) == cursor.addr() {
            // The cursor keeps the chunk's provenance, not the caller's
            // (which may cover only the block).
            self.rewind(cursor.with_addr(ptr.addr()));
        }
        // SAFETY: `chunk` is the owner's live chunk (caller).
        let header = unsafe { &*self.chunk.get() };
        if header.count.all_freed(live) {
            self.start_over(header);
        }
    }

    /// Every block of the current chunk is freed: bump from its start again.
    pub(super) fn start_over(&self, header: &GlobalChunk) {
        header.count.restart();
        // Every block is free, so the list's blocks are part of what is
        // handed out again. Relaxed: the splices came before frees that
        // `all_freed` acquired; no thread splices until a block is live.
        header.xfree.store(ptr::null_mut(), Ordering::Relaxed);
        self.live.set(0);
        let start = self.cursor.get().with_addr(self.chunk.get().addr() + HEADER_SIZE);
        self.rewind(start);
    }

    /// Lets go of the current chunk at thread exit: as [`retire`](Self::retire),
    /// and a chunk kept by live blocks with at least [`ORPHAN_MIN_TAIL`]
    /// never handed out is offered for the next owner of `side` to take
    /// over (`abandon.rs`).
    pub(super) fn retire_at_exit(&self, side: usize) {
        let chunk = self.chunk.get();
        if chunk.is_null() {
            return;
        }
        let used = self.cursor.get().addr().max(self.clean_from.get());
        let tail = chunk.addr() + CHUNK_SIZE - used;
        // Its owner is going: whoever frees its blocks now caches them.
        // Before the retirement, while the chunk is still ours.
        // SAFETY: the owner's chunk is a live header.
        // Relaxed: a hint.
        unsafe { &*chunk }.owner.store(NO_OWNER, Ordering::Relaxed);
        if self.retire() && tail >= ORPHAN_MIN_TAIL {
            offer_orphan(side, chunk);
        }
    }

    /// Lets go of the current chunk (if any): recycles it at once when no
    /// block in it is live, else whoever frees its last block will.
    /// Returns whether the chunk is kept by live blocks.
    pub(super) fn retire(&self) -> bool {
        let chunk = self.chunk.get();
        if chunk.is_null() {
            return false;
        }
        // SAFETY: the owner's chunk is a live header.
        let header = unsafe { &*chunk };
        header.dirty_end.set(self.cursor.get().addr().max(self.clean_from.get()));
        // Relaxed: a statistic, decremented by whoever recycles.
        CHUNKS_PINNED.fetch_add(1, Ordering::Relaxed);
        self.chunk.set(ptr::null_mut());
        self.cursor.set(ptr::null_mut());
        self.limit.set(0);
        let retired = self.retired.get() + 1;
        self.retired.set(retired);
        if header.count.retire(self.live.replace(0)) {
            CHUNKS_PINNED.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: no block is live and the owner has let go: the chunk
            // is ours to give back, once.
            unsafe { recycle(chunk) };
            false
        } else {
            // Kept by live blocks: remember it in place of the oldest entry.
            // The entry it replaces goes to the abandoned chunks.
            let slot = (0..PINNED_SLOTS).min_by_key(|&i| self.pinned_at[i].get()).unwrap_or(0);
            abandon(self.pinned[slot].replace(chunk));
            self.pinned_at[slot].set(retired);
            true
        }
    }

    /// The slow path of a small allocation: start the chunk over if all its
    /// blocks are freed, else retire it and take another.
    #[cold]
    #[inline(never)]
    pub(super) fn refill(&self, size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        let chunk = self.chunk.get();
        if !chunk.is_null() {
            if self.grow_limit(self.end_of(size, align)) {
                return self.bump(size, align, zero);
            }
            // The chunk is full.
            self.prefault.set(true);
            // SAFETY: the owner's chunk is a live header.
            let header = unsafe { &*chunk };
            if header.count.all_freed(self.live.get()) {
                self.start_over(header);
                // From the chunk's start, a small block always fits.
                let need = self.end_of(size, align);
                if need <= self.limit.get() || self.grow_limit(need) {
                    return self.bump(size, align, zero);
                }
            }
            self.retire();
        }
        while let Some(orphan) = take_orphan(usize::from(size > SMALL_MAX)) {
            if let Some(p) = self.bump_orphan(orphan, size, align, zero) {
                return Some(p);
            }
        }
        let (live, _, _) = note_peak();
        let fresh = acquire_chunk(live)?.as_ptr();
        // SAFETY: a chunk just taken from the free list or mapped: ours.
        let header = unsafe { &*fresh };
        let base = fresh.cast::<u8>();
        self.chunk.set(fresh);
        // Relaxed: a hint (see `GlobalChunk::owner`).
        header.owner.store(ptr::from_ref(self).addr(), Ordering::Relaxed);
        self.live.set(0);
        // SAFETY: HEADER_SIZE is inside the chunk.
        self.cursor.set(unsafe { base.add(HEADER_SIZE) });
        let dirty_end = header.dirty_end.get();
        self.limit.set(dirty_end);
        self.clean_from.set(dirty_end);
        if dirty_end < base.addr() + CHUNK_SIZE && !self.grow_limit(self.end_of(size, align)) {
            return None;
        }
        self.bump(size, align, zero)
    }

    /// Owns `chunk`, just taken over ([`take_orphan`]), and bumps on from
    /// where its last owner stopped: everything from its `dirty_end` on is
    /// untouched, and there is room for any small block
    /// ([`ORPHAN_MIN_TAIL`]) unless the chunk was recycled and filled since
    /// it was offered (it is then retired again, and the result is `None`).
    #[cold]
    fn bump_orphan(
        &self,
        chunk: *mut GlobalChunk,
        size: usize,
        align: usize,
        zero: bool,
    ) -> Option<NonNull<u8>> {
        // SAFETY: chunk headers stay mapped; the take-over made it ours.
        let header = unsafe { &*chunk };
        // Relaxed: a statistic; the chunk is in use again, not pinned.
        CHUNKS_PINNED.fetch_sub(1, Ordering::Relaxed);
        self.chunk.set(chunk);
        // Relaxed: a hint (see `GlobalChunk::owner`).
        header.owner.store(ptr::from_ref(self).addr(), Ordering::Relaxed);
        self.live.set(TAKEN_OVER);
        // The take-over acquired the last owner's write of `dirty_end`.
        let dirty_end = header.dirty_end.get();
        self.cursor.set(chunk.cast::<u8>().with_addr(dirty_end));
        self.limit.set(dirty_end);
        self.clean_from.set(dirty_end);
        if !self.grow_limit(self.end_of(size, align)) {
            // Not the chunk that was offered: it was recycled since, and
            // filled and retired by another owner. Let it go again.
            self.retire();
            return None;
        }
        self.bump(size, align, zero)
    }

    #[inline(always)]
    pub(super) fn alloc(&self, size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        match self.bump(size, align, zero) {
            Some(p) => Some(p),
            None => self.refill(size, align, zero),
        }
    }

    /// Resizes the last block in place if it is `ptr` and the chunk has
    /// room. Returns whether it did. With `grow` false, only within the
    /// prefaulted part (no call out, so the caller needs no stack frame).
    #[inline(always)]
    pub(super) fn resize_last(&self, ptr: *mut u8, old: usize, new: usize, grow: bool) -> bool {
        let cursor = self.cursor.get();
        if ptr.addr() + block_size(old) != cursor.addr() || self.chunk.get().is_null() {
            return false;
        }
        let end = ptr.addr() + block_size(new);
        if end > self.limit.get() && !(grow && self.grow_limit(end)) {
            return false;
        }
        let moved = cursor.with_addr(end);
        if end < cursor.addr() {
            self.rewind(moved);
        } else {
            self.cursor.set(moved);
        }
        true
    }
}

// SAFETY: an `Owner` holds raw pointers into chunks it owns; moving the
// fallback owner between threads (under its lock) is sound because only
// the lock holder touches it.
unsafe impl Send for Owner {}

/// The owner used by threads whose own state is gone (exited) or unusable.
pub(super) static FALLBACK: SpinLock<Owner> = SpinLock::new(Owner::new());
