//! The thread cache: each thread's lists of freed small blocks, one per
//! size class.

use super::chunk::{chunk_of, own_provenance};
use super::class::{class_of, class_size, CLASSES};
use super::thread::Local;
use crate::sync::Ordering;
use core::cell::Cell;
use core::ptr::{self, NonNull};

/// The thread cache is emptied into the chunks when it holds more than
/// this, or more than half the thread's live bytes if that is larger.
pub(super) const CACHE_FLUSH_BYTES: usize = 8 << 20;
/// The thread cache takes any freed block while it holds less than this;
/// past it, only as many as the thread has allocated since.
pub(super) const CACHE_BASE_BYTES: usize = 256 << 10;
/// Most blocks of credit the thread cache keeps (see `ThreadCache::admits`).
pub(super) const CACHE_CREDIT: usize = 1 << 16;

/// A thread's cache of freed small blocks, one list per size class.
///
/// When a thread frees a block of a chunk it owns or owned, the block goes
/// here instead of into the chunk's count (the chunk still counts it live,
/// so it cannot be recycled under the list), and the thread's next
/// allocation of the same size class takes it back. Without it, a program
/// whose blocks have random lifetimes keeps a whole chunk alive for each
/// straggler; with it, freed space is reused at once. The cache is emptied
/// into the chunks when it grows past [`CACHE_FLUSH_BYTES`] or half the
/// thread's live bytes, whichever is larger, and when the thread exits.
/// Past [`CACHE_BASE_BYTES`] it admits only as many frees as the thread
/// has made allocations since, so a thread that frees what it built without
/// allocating again (a teardown) frees into the chunks directly, and the
/// chunks go back to the free list.
pub(super) struct ThreadCache {
    pub(super) heads: [Cell<*mut u8>; CLASSES],
    pub(super) bytes: Cell<usize>,
    pub(super) limit: Cell<usize>,
    /// The thread's allocation count (`Counters::allocs`) up to which
    /// allocations have been matched by a free into the cache: the credit
    /// is `min(allocs - spent, CACHE_CREDIT)`. Kept as a mark against the
    /// count the thread keeps anyway, so an allocation adds nothing here.
    pub(super) spent: Cell<u64>,
}

impl ThreadCache {
    pub(super) const fn new() -> Self {
        ThreadCache {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            bytes: Cell::new(0),
            limit: Cell::new(CACHE_FLUSH_BYTES),
            spent: Cell::new(0),
        }
    }

    /// The list of class `class`, a class of a small size (from
    /// [`class_of`]). Unchecked: a bounds check would put a panic on the
    /// allocation path.
    #[inline(always)]
    pub(super) fn list(&self, class: usize) -> &Cell<*mut u8> {
        debug_assert!(class < CLASSES);
        // SAFETY: `class_of` maps every size up to LARGE_THRESHOLD below
        // CLASSES (the test `size_classes_cover_every_small_size` checks
        // each one), and only small sizes reach the cache.
        unsafe { self.heads.get_unchecked(class) }
    }

    /// A cached block for a small `size`, if any.
    #[inline(always)]
    pub(super) fn pop(&self, size: usize) -> Option<NonNull<u8>> {
        let (class, block) = class_of(size);
        self.pop_class(class, block)
    }

    /// [`pop`](Self::pop) with the size's class and block size worked out
    /// by the caller (`class_of`).
    #[inline(always)]
    pub(super) fn pop_class(&self, class: usize, block: usize) -> Option<NonNull<u8>> {
        let list = self.list(class);
        let head = NonNull::new(list.get())?;
        // SAFETY: a cached block is at least GRAIN bytes and GRAIN-aligned,
        // and its first word holds the next block of its list (written by
        // `push`); nothing else refers to it.
        let next = unsafe { head.as_ptr().cast::<*mut u8>().read() };
        list.set(next);
        self.bytes.set(self.bytes.get() - block);
        Some(head)
    }

    /// Keeps `block`, a block of class `class` that another thread freed,
    /// taken back into use by [`Local::adopt_pinned`] (no credit is spent:
    /// the cache's limit bounds it).
    ///
    /// # Safety
    /// `block` is a freed block of `class_size(class)` bytes, aligned to
    /// GRAIN, counted live in its chunk again, that nothing refers to;
    /// `class` is a small class below `CLASSES`.
    pub(super) unsafe fn push_adopted(&self, block: *mut u8, class: usize) {
        let list = self.list(class);
        // SAFETY: the block is ours (caller) and holds a pointer.
        unsafe { block.cast::<*mut u8>().write(list.get()) };
        list.set(block);
        self.bytes.set(self.bytes.get() + class_size(class));
    }

    /// Whether a freed block should be kept: while the cache is small, or
    /// while the thread keeps allocating as well as freeing.
    /// A thread that only frees (tearing down what it built) sends its
    /// blocks straight to their chunks instead of piling them up here.
    /// `allocs` is the thread's allocation count.
    #[inline(always)]
    pub(super) fn admits(&self, allocs: u64) -> bool {
        self.bytes.get() < CACHE_BASE_BYTES || allocs > self.spent.get()
    }

    /// Keeps a freed block of class `class` (`block` bytes, as `class_of`
    /// gives them), spending one allocation of credit (`allocs` is the
    /// thread's allocation count). Returns `false` when the cache is over
    /// its limit (the caller then flushes it).
    ///
    /// # Safety
    /// `ptr` is a block of this allocator of `block` bytes, aligned to
    /// GRAIN, that its user has freed; `class` is a small class below
    /// `CLASSES`.
    #[inline(always)]
    pub(super) unsafe fn push(&self, ptr: *mut u8, class: usize, block: usize, allocs: u64) -> bool {
        // The link is written through the caller's pointer (under Miri its
        // tag may still be protected by the `Box` being dropped); the list
        // keeps a pointer with the chunk's own provenance.
        let list = self.list(class);
        // SAFETY: the block is ours again (caller) and holds a pointer.
        unsafe { ptr.cast::<*mut u8>().write(list.get()) };
        list.set(own_provenance(ptr));
        let bytes = self.bytes.get() + block;
        self.bytes.set(bytes);
        // Credit older than the last CACHE_CREDIT allocations has lapsed.
        let spent = self.spent.get().max(allocs.saturating_sub(CACHE_CREDIT as u64));
        if spent < allocs {
            self.spent.set(spent + 1);
        }
        bytes <= self.limit.get()
    }
}

impl Local {
    /// Empties the thread cache at thread exit: every block is counted
    /// into its chunk as a remote free would be, and linked on the chunk's
    /// `xfree` list, so that the threads that come after can adopt it
    /// (`abandon.rs`) rather than leave it unused until the chunk is
    /// recycled. The thread's owners are about to retire their chunks, so
    /// counting frees of them through the atomic count is as exact as
    /// counting them in the owner's (the sum is what is live).
    pub(super) fn flush_cache_at_exit(&self) {
        for class in 1..CLASSES {
            let size = class_size(class);
            while let Some(block) = self.cache.pop(size) {
                let ptr = block.as_ptr();
                // SAFETY: a cached block is, for its chunk, a live block of
                // its class's size, and of a cacheable layout.
                unsafe { self.count_remote(ptr, size, chunk_of(ptr), true) };
            }
        }
        self.flush_pending();
    }

    /// Empties the thread cache into the chunks, and sets its next limit.
    #[cold]
    #[inline(never)]
    pub(super) fn flush_cache(&self) {
        for class in 1..CLASSES {
            let size = class_size(class);
            while let Some(block) = self.cache.pop(size) {
                let ptr = block.as_ptr();
                // SAFETY: a cached block is, for its chunk, a live block
                // of its class's size.
                unsafe { self.free_to_chunk(ptr, size, chunk_of(ptr)) };
            }
        }
        self.flush_pending();
        // Relaxed: our own counters.
        let live = self
            .counters
            .bytes_in
            .load(Ordering::Relaxed)
            .saturating_sub(self.counters.bytes_out.load(Ordering::Relaxed));
        self.cache.limit.set(CACHE_FLUSH_BYTES.max(live / 2));
    }
}
