//! Frees by threads that do not own the block's chunk: runs of frees
//! counted with one decrement, lists of the freed blocks linked through
//! them, and the owner's adoption of those blocks back into use.
//!
//! A thread freeing a block of another thread's chunk adds it to its
//! *run* for that side (small or medium): consecutive frees to one chunk
//! (a consumer draining a producer's boxes) are counted into the chunk's
//! live count (`count.rs`) with one atomic decrement when the run ends.
//! Blocks of cacheable layouts are also linked into the run ([`RemoteList`])
//! and the run's list is spliced onto the chunk's `xfree` list just before
//! the decrement. An owner that retired a chunk while blocks in it were
//! live (`Owner::pinned`) takes those lists back into its thread cache
//! ([`Local::adopt_pinned`]) under a pin of the chunk's count, so that the
//! chunk cannot be recycled while it does.

use super::chunk::{own_provenance, recycle_retired, GlobalChunk};
use super::class::{class_of, CLASSES, GRAIN, SMALL_MAX};
use super::owner::Owner;
use super::thread::Local;
use crate::sync::Ordering;
use core::ptr;

/// A pinned chunk's freed blocks are taken back into use only once its
/// owner has retired this many chunks since it (a chunk still kept after
/// that holds stragglers; one retired just now usually holds messages in
/// flight, which come back soon and let the whole chunk be recycled).
pub(super) const ADOPT_AFTER: u64 = 2;

/// Most blocks one slow path takes back from pinned chunks.
pub(super) const ADOPT_PINNED_BATCH: usize = 1024;

/// How a block freed by another thread is kept on a chunk's `xfree` list:
/// its first word links to the next block, with bit 0 set for a block of
/// [`GRAIN`] bytes (class 1, with no room for more); a larger block's
/// word [`CLASS_WORD`] holds its size class.
pub(super) struct RemoteList;

/// The word of a remotely freed block that holds its class: the second,
/// or in the C build the third (its blocks of more than GRAIN bytes have
/// at least four words; the second holds `free`'s double-free mark,
/// which the list must not overwrite).
const CLASS_WORD: usize = if cfg!(feature = "c-abi") { 2 } else { 1 };
const _: () = assert!((CLASS_WORD + 1) * core::mem::size_of::<usize>() <= 2 * GRAIN);

impl RemoteList {
    /// Writes the links of `ptr`, a block of `size` bytes being freed,
    /// in front of `next`.
    ///
    /// # Safety
    /// `ptr` is a small block of `block_size(size)` bytes, aligned to GRAIN,
    /// that its user has freed.
    #[inline(always)]
    pub(super) unsafe fn link(ptr: *mut u8, size: usize, next: *mut u8) {
        let (class, block) = class_of(size);
        // SAFETY: the block is at least GRAIN bytes (at least 2 * GRAIN,
        // so past CLASS_WORD, when it is larger), aligned to GRAIN, and
        // ours again (caller).
        unsafe {
            if block <= GRAIN {
                ptr.cast::<*mut u8>().write(next.map_addr(|a| a | 1));
            } else {
                ptr.cast::<*mut u8>().write(next);
                ptr.cast::<usize>().add(CLASS_WORD).write(class);
            }
        }
    }

    /// The block after `ptr` and `ptr`'s size class.
    ///
    /// # Safety
    /// `ptr` was linked by [`link`](Self::link), and the caller has
    /// acquired that write.
    #[inline(always)]
    pub(super) unsafe fn read(ptr: *mut u8) -> (*mut u8, usize) {
        // SAFETY: as `link` wrote them (caller).
        let next = unsafe { ptr.cast::<*mut u8>().read() };
        if next.addr() & 1 != 0 {
            (next.map_addr(|a| a & !1), 1)
        } else {
            // SAFETY: a block linked without the tag has a word CLASS_WORD.
            (next, unsafe { ptr.cast::<usize>().add(CLASS_WORD).read() })
        }
    }

    /// The last block of the list that starts at `head`, or `None` when a
    /// link on the way is not one this allocator wrote (a use after free
    /// overwrote it).
    ///
    /// # Safety
    /// As for [`read`](Self::read), for every block of the list.
    pub(super) unsafe fn tail(head: *mut u8) -> Option<*mut u8> {
        let mut tail = head;
        loop {
            // SAFETY: the caller's.
            let (next, class) = unsafe { Self::read(tail) };
            if class == 0 || class >= CLASSES {
                return None;
            }
            if next.is_null() {
                return Some(tail);
            }
            tail = next;
        }
    }

    /// Points the last block of a list, `tail`, at `next` (keeping its tag).
    ///
    /// # Safety
    /// As for [`read`](Self::read), and nothing else reads `tail` now.
    #[inline(always)]
    pub(super) unsafe fn set_next(tail: *mut u8, next: *mut u8) {
        // SAFETY: the caller's.
        unsafe {
            let tag = tail.cast::<*mut u8>().read().addr() & 1;
            tail.cast::<*mut u8>().write(next.map_addr(|a| a | tag));
        }
    }
}

impl GlobalChunk {
    /// Puts the list `head..=tail` of this chunk's blocks, freed by the
    /// calling thread (which does not own the chunk), on `xfree`. Before
    /// the count of those frees, so that the chunk cannot be recycled (and
    /// its list emptied) first.
    ///
    /// # Safety
    /// The blocks are linked by [`RemoteList::link`], lie in this chunk and
    /// are still counted live.
    pub(super) unsafe fn splice(&self, head: *mut u8, tail: *mut u8) {
        // Relaxed: a guess; the exchange below checks it.
        let mut old = self.xfree.load(Ordering::Relaxed);
        loop {
            // SAFETY: the list is the caller's until the exchange succeeds.
            unsafe { RemoteList::set_next(tail, old) };
            // Release: publishes the links (and the blocks' last uses) to
            // the thread that takes the list.
            match self.xfree.compare_exchange_weak(old, head, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }
}

impl Local {
    /// Counts the free of a block of `chunk`, a chunk none of this
    /// thread's owners bumps in, into the run of frees of its side.
    #[inline(always)]
    pub(super) fn count_run(&self, size: usize, chunk: *mut GlobalChunk) {
        let side = usize::from(size > SMALL_MAX);
        if self.pending[side].get() == chunk {
            self.pending_frees[side].set(self.pending_frees[side].get() + 1);
        } else {
            self.start_run(side, chunk);
        }
    }

    /// The free of a block of another thread's chunk: counted into the run
    /// of frees of its side ([`count_run`](Self::count_run)) and, when
    /// `reusable` (a cacheable layout), linked into the run's list for the
    /// chunk's `xfree`.
    ///
    /// Out of line (a tail call from the free path): inlined, its registers
    /// made every free, local ones too, save five instead of two. A free
    /// that continues the pending run calls nothing, so it saves no
    /// registers either (starting a run is a tail call of its own).
    ///
    /// # Safety
    /// `ptr` is a live small block of `size` bytes in `chunk`, being freed,
    /// of a cacheable layout when `reusable`.
    #[inline(never)]
    pub(super) unsafe fn count_remote(
        &self,
        ptr: *mut u8,
        size: usize,
        chunk: *mut GlobalChunk,
        reusable: bool,
    ) {
        let side = usize::from(size > SMALL_MAX);
        if self.pending[side].get() != chunk {
            // A new run: a tail call, so that this path (the common one)
            // calls nothing and saves no registers.
            // SAFETY: the caller's.
            return unsafe { self.start_remote_run(ptr, size, chunk, reusable) };
        }
        self.pending_frees[side].set(self.pending_frees[side].get() + 1);
        if reusable {
            // SAFETY: the caller's.
            unsafe { self.link_into_run(side, ptr, size) };
        }
    }

    /// [`count_remote`](Self::count_remote) of a block of a chunk other
    /// than the pending run's: the run is counted, and a new one started
    /// with this block.
    ///
    /// # Safety
    /// As for [`count_remote`](Self::count_remote).
    #[inline(never)]
    unsafe fn start_remote_run(&self, ptr: *mut u8, size: usize, chunk: *mut GlobalChunk, reusable: bool) {
        let side = usize::from(size > SMALL_MAX);
        self.start_run(side, chunk);
        if reusable {
            // SAFETY: the caller's.
            unsafe { self.link_into_run(side, ptr, size) };
        }
    }

    /// Links `ptr`, a block of `size` bytes of the pending run's chunk on
    /// `side`, being freed, in front of the run's list.
    ///
    /// # Safety
    /// `ptr` is a small block of the run's chunk, of a cacheable layout,
    /// that its user has freed.
    #[inline(always)]
    unsafe fn link_into_run(&self, side: usize, ptr: *mut u8, size: usize) {
        let head = self.run_head[side].get();
        // SAFETY: the caller's.
        unsafe { RemoteList::link(ptr, size, head) };
        let block = own_provenance(ptr);
        if head.is_null() {
            self.run_tail[side].set(block);
        }
        self.run_head[side].set(block);
    }

    /// Counts the run of pending frees on `side` into its chunk and starts
    /// a new one with one free of a block of `chunk`.
    #[inline(never)]
    pub(super) fn start_run(&self, side: usize, chunk: *mut GlobalChunk) {
        self.flush_run(side);
        self.pending[side].set(chunk);
        self.pending_frees[side].set(1);
    }

    /// Takes back into the thread cache the blocks that other threads
    /// freed in chunks `owner` retired at least [`ADOPT_AFTER`] retirements
    /// ago and that live blocks still keep from being recycled (see
    /// `RemoteCount::pin`). Returns whether it took any. Stops at the
    /// cache's limit; the blocks left over go back on the chunk's list. A
    /// chunk whose list is empty costs one load (no
    /// read-modify-write), so chunks kept for good cost the slow path
    /// little.
    #[cold]
    #[inline(never)]
    pub(super) fn adopt_pinned(&self, owner: &Owner) -> bool {
        let now = owner.retired.get();
        let mut budget = ADOPT_PINNED_BATCH;
        for (slot, at) in owner.pinned.iter().zip(&owner.pinned_at) {
            let chunk = slot.get();
            if chunk.is_null()
                || now - at.get() < ADOPT_AFTER
                || self.cache.bytes.get() >= self.cache.limit.get()
                || budget == 0
            {
                continue;
            }
            let (taken, kept) = self.adopt_from(chunk, budget);
            if !kept {
                slot.set(ptr::null_mut());
            }
            budget -= taken;
        }
        budget != ADOPT_PINNED_BATCH
    }

    /// Takes the blocks on `chunk`'s `xfree` list into the thread cache,
    /// up to the cache's limit and at most `max` of them, under a pin of
    /// the chunk's count. Returns
    /// how many it took, and whether the chunk is still retired and kept by
    /// live blocks (else it was recycled, or owned again, and is to be
    /// forgotten; if the pin was the last live block, this recycles it).
    pub(super) fn adopt_from(&self, chunk: *mut GlobalChunk, max: usize) -> (usize, bool) {
        // SAFETY: chunk headers stay mapped for the life of the process,
        // recycled or not.
        let header = unsafe { &*chunk };
        // Relaxed: a look; the swap below acquires what it takes.
        if header.xfree.load(Ordering::Relaxed).is_null() {
            return (0, true);
        }
        if !header.count.pin() {
            // Recycled (or owned again): forget it.
            return (0, false);
        }
        // Acquire: the blocks' links and their last uses, published by the
        // splices.
        let mut block = header.xfree.swap(ptr::null_mut(), Ordering::Acquire);
        let mut taken = 0;
        let mut corrupt = false;
        while !block.is_null() && taken < max && self.cache.bytes.get() < self.cache.limit.get() {
            // SAFETY: a block on the list was linked by a thread that freed
            // it, and the swap acquired that.
            let (next, class) = unsafe { RemoteList::read(block) };
            if class == 0 || class >= CLASSES {
                // Not a link this allocator wrote (a use after free
                // overwrote it): leave the rest alone.
                corrupt = true;
                break;
            }
            // SAFETY: a freed block of this chunk of `class_size(class)`
            // bytes, aligned to GRAIN; the pin keeps the chunk unrecycled,
            // and `count.adopt` below counts it live again.
            unsafe { self.cache.push_adopted(block, class) };
            taken += 1;
            block = next;
        }
        // Release: publishes the links (acquired by the swap) on to the
        // next adopter. Relaxed on failure: nothing was read.
        if !block.is_null()
            && !corrupt
            && header
                .xfree
                .compare_exchange(ptr::null_mut(), block, Ordering::Release, Ordering::Relaxed)
                .is_err()
        {
            // The cache is full, or `max` reached: the rest go back on the
            // list, for whoever adopts from the chunk next (else they would
            // stay unused until the chunk is recycled). The list was empty
            // (the common case) and now holds them; else another thread has
            // spliced onto it since, and they are spliced in front.
            // SAFETY: the rest of the list the swap took, acquired.
            if let Some(tail) = unsafe { RemoteList::tail(block) } {
                // SAFETY: the blocks were linked by `RemoteList::link`, lie
                // in this chunk, and count as freed; the pin keeps the
                // chunk from being recycled meanwhile.
                unsafe { header.splice(block, tail) };
            }
        }
        if taken != 0 {
            header.count.adopt(taken);
        }
        if header.count.unpin() {
            // Nothing taken and nothing else live: we recycle it.
            // SAFETY: ours to recycle, once (see `count`).
            unsafe { recycle_retired(chunk) };
            return (taken, false);
        }
        (taken, true)
    }

    /// Counts the pending frees into their chunk (recycling it if they
    /// were its last live blocks).
    #[inline(never)]
    pub(super) fn flush_pending(&self) {
        self.flush_run(0);
        self.flush_run(1);
    }

    /// Counts one run of pending frees into its chunk, after putting its
    /// reusable blocks on the chunk's `xfree` list.
    #[inline(always)]
    pub(super) fn flush_run(&self, side: usize) {
        let chunk = self.pending[side].replace(ptr::null_mut());
        let n = self.pending_frees[side].replace(0);
        let head = self.run_head[side].replace(ptr::null_mut());
        let tail = self.run_tail[side].replace(ptr::null_mut());
        if !chunk.is_null() {
            if !head.is_null() {
                // SAFETY: the run's blocks were linked by `count_remote`,
                // lie in `chunk`, and count as live until the decrement
                // below.
                unsafe { (*chunk).splice(head, tail) };
            }
            // SAFETY: the pending frees count as live blocks of `chunk`
            // until now, so it has not been recycled.
            unsafe { free_remote_n(chunk, n) };
        }
    }
}

/// # Safety
/// A live block of `chunk` is being freed by a thread that does not own
/// the chunk.
#[inline(always)]
pub(super) unsafe fn free_remote(chunk: *mut GlobalChunk) {
    // SAFETY: the chunk holds a live block, so it is not recycled.
    if unsafe { &*chunk }.count.free_remote() {
        // SAFETY: that was the retired chunk's last live block.
        unsafe { recycle_retired(chunk) };
    }
}

/// # Safety
/// `n` live blocks of `chunk` are being freed by a thread that does not
/// own the chunk.
#[inline(always)]
pub(super) unsafe fn free_remote_n(chunk: *mut GlobalChunk, n: usize) {
    // SAFETY: the chunk holds a live block, so it is not recycled.
    if unsafe { &*chunk }.count.free_remote_n(n) {
        // SAFETY: those were the retired chunk's last live blocks.
        unsafe { recycle_retired(chunk) };
    }
}
