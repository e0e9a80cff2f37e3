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

use super::chunk::{own_provenance, recycle_retired, GlobalChunk, CHUNK_SIZE, HEADER_SIZE};
use super::class::{class_of, class_size, CLASSES, GRAIN, SMALL_MAX};
use super::owner::Owner;
use super::thread::Local;
use crate::sync::Ordering;
use core::ptr;

/// A pinned chunk's freed blocks are taken back into use only once its
/// owner has retired this many chunks since it (a chunk still kept after
/// that holds stragglers; one retired just now usually holds messages in
/// flight, which come back soon and let the whole chunk be recycled).
pub(super) const ADOPT_AFTER: u64 = 2;

/// Blocks one slow path takes back from pinned chunks before it stops
/// (whole sub-runs: the last one may pass it).
pub(super) const ADOPT_PINNED_BATCH: usize = 1024;

/// How blocks freed by another thread are kept on a chunk's `xfree` list:
/// as *sub-runs*, blocks of one size class freed one after another by one
/// thread, which the owner takes back whole, without visiting their blocks
/// (each is spliced onto a cache list with one write: `adopt_from`).
///
/// Every block's first word links to the next block, with bit 0 set for a
/// block of [`GRAIN`] bytes (class 1, with no room for more; such a block
/// is a sub-run of its own). The first block of a sub-run of larger blocks
/// (its *head*, the block freed last) holds in word [`CLASS_WORD`] a
/// descriptor: the class, the number of blocks, and the offset in the chunk
/// of the sub-run's last block (its *tail*, freed first), whose first word
/// links to the next sub-run. The other blocks' descriptor words are stale.
/// Within a sub-run the links are plain pointers, as the thread cache's
/// lists are, so a sub-run is a cache list already.
///
/// Only the C build groups blocks ([`SUB_RUNS`]): keeping the descriptor
/// costs a remote free about a dozen instructions, which the Rust path's
/// budget does not allow (`scripts/callgrind.sh`). There every block is a
/// sub-run of its own and its descriptor word holds only its class.
pub(super) struct RemoteList;

/// Whether remote frees are grouped into sub-runs of more than one block.
pub(super) const SUB_RUNS: bool = cfg!(feature = "c-abi");

/// The word of a remotely freed block that holds its sub-run's descriptor:
/// the second, or in the C build the third (its blocks of more than GRAIN
/// bytes have at least four words; the second holds the block's header,
/// with `free`'s freed mark, which the list must not overwrite: `cabi.rs`).
const CLASS_WORD: usize = if cfg!(feature = "c-abi") { 2 } else { 1 };
const _: () = assert!((CLASS_WORD + 1) * core::mem::size_of::<usize>() <= 2 * GRAIN);

/// The descriptor's fields: the class in its low byte, the count from bit
/// [`LEN_SHIFT`], the tail's offset in the chunk from bit [`TAIL_SHIFT`].
const LEN_SHIFT: u32 = 8;
const TAIL_SHIFT: u32 = 32;
const _: () = assert!(CLASSES <= 1 << LEN_SHIFT);
const _: () = assert!(CHUNK_SIZE / GRAIN < 1 << (TAIL_SHIFT - LEN_SHIFT));
const _: () = assert!(usize::BITS - TAIL_SHIFT >= CHUNK_SIZE.trailing_zeros());

/// A sub-run read back from its head by [`RemoteList::sub_run`].
pub(super) struct SubRun {
    pub(super) class: usize,
    pub(super) len: usize,
    pub(super) tail: *mut u8,
    /// The head of the next sub-run, or null.
    pub(super) next: *mut u8,
}

impl RemoteList {
    /// Writes the links of `ptr`, a block of `size` bytes being freed, in
    /// front of `next`, the head of a list whose first sub-run has the
    /// descriptor `desc` (0 for none, or one of class 1). Returns the
    /// descriptor of the list's first sub-run now.
    ///
    /// # Safety
    /// `ptr` is a small block of `block_size(size)` bytes, aligned to GRAIN,
    /// that its user has freed.
    #[inline(always)]
    pub(super) unsafe fn link(ptr: *mut u8, size: usize, next: *mut u8, desc: usize) -> usize {
        let (class, block) = class_of(size);
        if block <= GRAIN {
            // SAFETY: the block is at least GRAIN bytes, aligned to GRAIN,
            // and ours again (caller).
            unsafe { ptr.cast::<*mut u8>().write(next.map_addr(|a| a | 1)) };
            return 0;
        }
        if !SUB_RUNS {
            // SAFETY: the block is at least 2 * GRAIN bytes, so past
            // CLASS_WORD, aligned to GRAIN, and ours again (caller).
            unsafe {
                ptr.cast::<*mut u8>().write(next);
                ptr.cast::<usize>().add(CLASS_WORD).write(class);
            }
            return 0;
        }
        let desc = if desc & 0xff == class {
            // One more block of the sub-run `next` heads: the new head.
            desc + (1 << LEN_SHIFT)
        } else {
            // A new sub-run, of this block alone.
            class | (1 << LEN_SHIFT) | ((ptr.addr() & (CHUNK_SIZE - 1)) << TAIL_SHIFT)
        };
        // SAFETY: the block is at least 2 * GRAIN bytes, so past
        // CLASS_WORD, aligned to GRAIN, and ours again (caller).
        unsafe {
            ptr.cast::<*mut u8>().write(next);
            ptr.cast::<usize>().add(CLASS_WORD).write(desc);
        }
        desc
    }

    /// The sub-run that `head` starts, or `None` when its links are not
    /// ones this allocator wrote (a use after free overwrote them).
    ///
    /// # Safety
    /// `head` heads a sub-run of a list linked by [`link`](Self::link) in
    /// the chunk `chunk`, and the caller has acquired those writes.
    #[inline(always)]
    pub(super) unsafe fn sub_run(head: *mut u8, chunk: *mut GlobalChunk) -> Option<SubRun> {
        // SAFETY: as `link` wrote it (caller).
        let first = unsafe { head.cast::<*mut u8>().read() };
        if first.addr() & 1 != 0 {
            return Some(SubRun { class: 1, len: 1, tail: head, next: first.map_addr(|a| a & !1) });
        }
        // SAFETY: a block linked without the tag has a word CLASS_WORD.
        let desc = unsafe { head.cast::<usize>().add(CLASS_WORD).read() };
        if !SUB_RUNS {
            // The class alone, of a block alone.
            if desc <= 1 || desc >= CLASSES {
                return None;
            }
            return Some(SubRun { class: desc, len: 1, tail: head, next: first });
        }
        let class = desc & 0xff;
        let len = (desc >> LEN_SHIFT) & ((1 << (TAIL_SHIFT - LEN_SHIFT)) - 1);
        let offset = desc >> TAIL_SHIFT;
        if class <= 1
            || class >= CLASSES
            || len == 0
            || len > CHUNK_SIZE / class_size(class)
            || !(HEADER_SIZE..CHUNK_SIZE).contains(&offset)
            || !offset.is_multiple_of(GRAIN)
        {
            return None;
        }
        let tail = if len == 1 {
            head
        } else {
            // The tail's address, with the provenance of the chunk (the
            // list's pointers carry it: `own_provenance`).
            head.with_addr(chunk.addr() + offset)
        };
        // SAFETY: the tail was linked by `link` (its first word, untagged:
        // a block of the sub-run's class) and acquired with the rest.
        let next = unsafe { tail.cast::<*mut u8>().read() };
        Some(SubRun { class, len, tail, next })
    }

    /// The last block of the list that starts at `head`, or `None` when a
    /// link on the way is not one this allocator wrote.
    ///
    /// # Safety
    /// As for [`sub_run`](Self::sub_run), for every sub-run of the list.
    pub(super) unsafe fn tail(head: *mut u8, chunk: *mut GlobalChunk) -> Option<*mut u8> {
        let mut head = head;
        loop {
            // SAFETY: the caller's.
            let run = unsafe { Self::sub_run(head, chunk) }?;
            if run.next.is_null() {
                return Some(run.tail);
            }
            head = run.next;
        }
    }

    /// Points the last block of a list, `tail`, at `next` (keeping its tag).
    ///
    /// # Safety
    /// As for [`sub_run`](Self::sub_run), and nothing else reads `tail` now.
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
        if SUB_RUNS {
            // SAFETY: the caller's.
            let desc = unsafe { RemoteList::link(ptr, size, head, self.run_desc[side].get()) };
            self.run_desc[side].set(desc);
        } else {
            // SAFETY: `ptr` is a small freed block of a cacheable layout
            // (the caller's), as `link` requires; 0 is its "no sub-run".
            unsafe { RemoteList::link(ptr, size, head, 0) };
        }
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
            // A sub-run is taken whole, so `taken` may pass the budget.
            budget = budget.saturating_sub(taken);
        }
        budget != ADOPT_PINNED_BATCH
    }

    /// Takes the blocks on `chunk`'s `xfree` list into the thread cache,
    /// a sub-run at a time while the cache is under its limit and fewer
    /// than `max` are taken (so past either by at most a sub-run, which
    /// lies in the chunk), under a pin of the chunk's count. Returns
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
            // SAFETY: the list's sub-runs were linked by threads that freed
            // their blocks, and the swap acquired that.
            let Some(run) = (unsafe { RemoteList::sub_run(block, chunk) }) else {
                // Not links this allocator wrote (a use after free
                // overwrote them): leave the rest alone.
                corrupt = true;
                break;
            };
            // SAFETY: the sub-run's blocks are freed blocks of this chunk
            // of `class_size(run.class)` bytes, aligned to GRAIN, linked
            // `block` to `run.tail` with plain pointers; the pin keeps the
            // chunk unrecycled, and `count.adopt` below counts them live
            // again.
            unsafe { self.cache.push_adopted_run(block, run.tail, run.class, run.len) };
            taken += run.len;
            block = run.next;
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
            if let Some(tail) = unsafe { RemoteList::tail(block, chunk) } {
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
        if SUB_RUNS {
            self.run_desc[side].set(0);
        }
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
