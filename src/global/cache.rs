//! The thread cache: each thread's lists of freed small blocks, one per
//! size class.

use super::chunk::{chunk_of, own_provenance};
use super::class::{class_of, class_size, CLASSES};
use super::thread::Local;
use crate::sync::{AtomicUsize, Ordering, SpinLock};
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
/// When a thread frees a block of a chunk it owns or owned (or one no
/// owner remembers, while it allocates as it frees: `admits_ownerless`),
/// the block goes here instead of into the chunk's count (the chunk still counts it live,
/// so it cannot be recycled under the list), and the thread's next
/// allocation of the same size class takes it back. Without it, a program
/// whose blocks have random lifetimes keeps a whole chunk alive for each
/// straggler; with it, freed space is reused at once. The cache is emptied
/// into the chunks when it grows past [`CACHE_FLUSH_BYTES`] or half the
/// thread's live bytes, whichever is larger; when the thread exits it is
/// left whole for the next thread that needs blocks ([`LEFT`]).
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
    /// The thread's allocation count when it last cached a block of a chunk
    /// no owner remembers past [`CACHE_BASE_BYTES`] (see
    /// [`admits_ownerless`](Self::admits_ownerless)).
    pub(super) ownerless: Cell<u64>,
}

impl ThreadCache {
    pub(super) const fn new() -> Self {
        ThreadCache {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            bytes: Cell::new(0),
            // Set when the thread activates (`Local::activate`): a fresh
            // thread's state is all zeros (see `thread.rs`).
            limit: Cell::new(0),
            spent: Cell::new(0),
            ownerless: Cell::new(0),
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

    /// Keeps the `len` blocks of class `class` from `head` to `tail`, which
    /// another thread freed, taken back into use by [`Local::adopt_pinned`]
    /// (no credit is spent: the cache's limit bounds it).
    ///
    /// # Safety
    /// The blocks are freed blocks of `class_size(class)` bytes, aligned to
    /// GRAIN, counted live in their chunk again, that nothing refers to,
    /// linked from `head` to `tail` through their first words (untagged);
    /// `class` is a small class below `CLASSES`.
    pub(super) unsafe fn push_adopted_run(&self, head: *mut u8, tail: *mut u8, class: usize, len: usize) {
        let list = self.list(class);
        // SAFETY: the tail is ours (caller) and holds a pointer.
        unsafe { tail.cast::<*mut u8>().write(list.get()) };
        list.set(head);
        self.bytes.set(self.bytes.get() + len * class_size(class));
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

    /// Whether a freed block of a chunk no owner remembers (`NO_OWNER`)
    /// should be cached rather than counted into its chunk: while the cache
    /// is small, or when the thread has allocated since the last such block
    /// it cached. A thread that carries on the work of exited ones (larson:
    /// each thread frees what the one before made, and allocates as often)
    /// then reuses their blocks at once, and one that tears down what an
    /// exited thread built lets the chunks go back. `allocs` is the
    /// thread's allocation count.
    #[inline(always)]
    pub(super) fn admits_ownerless(&self, allocs: u64) -> bool {
        if self.bytes.get() < CACHE_BASE_BYTES {
            return true;
        }
        if allocs > self.ownerless.get() {
            self.ownerless.set(allocs);
            return true;
        }
        false
    }

    /// Keeps a freed block of class `class` (`block` bytes, as `class_of`
    /// gives them), spending one allocation of credit once the cache holds
    /// more than [`CACHE_BASE_BYTES`] (`allocs` is the thread's allocation
    /// count). Returns `false` when the cache is over
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
        // Credit is spent only past CACHE_BASE_BYTES, where `admits` asks
        // for it (a small cache, the common case, skips this). Credit
        // older than the last CACHE_CREDIT allocations has lapsed.
        // (Unguarded: a push admitted while the cache was just under the
        // base may move `spent` one past `allocs`, which only delays the
        // next admission past the base by one allocation.)
        if bytes > CACHE_BASE_BYTES {
            let floor = allocs.saturating_sub(CACHE_CREDIT as u64);
            self.spent.set(self.spent.get().max(floor) + 1);
        }
        bytes <= self.limit.get()
    }
}

/// Caches of exited threads that [`LEFT`] holds for the threads to come.
pub(super) const LEFT_CACHES: usize = 2;

/// Caches left by exited threads: each one's lists and byte count, the
/// newest last. A cache's blocks count as live in their chunks wherever
/// the cache is, so a cache changes hands whole, with no count touched.
pub(super) struct LeftCaches {
    heads: [[*mut u8; CLASSES]; LEFT_CACHES],
    bytes: [usize; LEFT_CACHES],
    len: usize,
}

// SAFETY: the lists are of freed blocks nothing else refers to, read and
// written only under the lock (or by the one thread that took them out).
unsafe impl Send for LeftCaches {}

/// The caches exited threads left (see [`Local::leave_cache`]).
pub(super) static LEFT: SpinLock<LeftCaches> = SpinLock::new(LeftCaches {
    heads: [[ptr::null_mut(); CLASSES]; LEFT_CACHES],
    bytes: [0; LEFT_CACHES],
    len: 0,
});

/// How many caches [`LEFT`] holds, written under its lock and read without
/// it, so that a slow path with none to take skips the lock.
static LEFT_LEN: AtomicUsize = AtomicUsize::new(0);

impl Local {
    /// Leaves the thread cache, at thread exit, for the next thread that
    /// needs blocks to take whole ([`take_left_cache`](Self::take_left_cache)):
    /// a program whose threads hand their work on to new ones (larson; a
    /// pool that replaces its workers) then reuses the freed blocks at
    /// once, by size class, where emptying the cache onto the chunks'
    /// lists costs a count per block and leaves them for adoption, a batch
    /// per slow path and of every class at once. When [`LEFT`] is full, its
    /// oldest cache makes room: it is emptied onto its chunks' lists.
    pub(super) fn leave_cache(&self) {
        let bytes = self.cache.bytes.get();
        if bytes == 0 {
            return;
        }
        let mut oldest = [ptr::null_mut::<u8>(); CLASSES];
        LEFT.with(|left| {
            if left.len == LEFT_CACHES {
                for (mine, slot) in oldest.iter_mut().zip(&left.heads[0]) {
                    *mine = *slot;
                }
                left.heads.copy_within(1.., 0);
                left.bytes.copy_within(1.., 0);
                left.len -= 1;
            }
            let i = left.len;
            for (slot, head) in left.heads[i].iter_mut().zip(&self.cache.heads) {
                *slot = head.replace(ptr::null_mut());
            }
            left.bytes[i] = bytes;
            left.len = i + 1;
            // Relaxed: see LEFT_LEN.
            LEFT_LEN.store(i + 1, Ordering::Relaxed);
        });
        self.cache.bytes.set(0);
        // SAFETY: the oldest cache's lists, taken out of the table: ours.
        unsafe { self.free_lists_at_exit(&oldest) };
    }

    /// Empties the left caches ([`LEFT`]) onto their chunks' lists, so that
    /// chunks holding nothing else can be recycled
    /// (`GlobalArena::flush_thread_cache`).
    pub(super) fn flush_left_caches(&self) {
        let mut heads = [ptr::null_mut::<u8>(); CLASSES];
        while Self::take_left(&mut heads) != 0 {
            // SAFETY: a left cache's lists, taken out of the table: ours.
            unsafe { self.free_lists_at_exit(&heads) };
        }
    }

    /// Takes the newest left cache out of [`LEFT`] into `heads`, returning
    /// its bytes (0, with `heads` untouched, when there is none).
    fn take_left(heads: &mut [*mut u8; CLASSES]) -> usize {
        // Relaxed: a look; the lock orders what is taken.
        if LEFT_LEN.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        LEFT.with(|left| {
            if left.len == 0 {
                return 0;
            }
            left.len -= 1;
            // Relaxed: see LEFT_LEN.
            LEFT_LEN.store(left.len, Ordering::Relaxed);
            for (mine, slot) in heads.iter_mut().zip(&mut left.heads[left.len]) {
                *mine = core::mem::replace(slot, ptr::null_mut());
            }
            left.bytes[left.len]
        })
    }

    /// Counts every block of the cache lists `heads` (one per class) into
    /// its chunk as a remote free, linked for adoption.
    ///
    /// # Safety
    /// The lists are a cache's (blocks linked by [`ThreadCache::push`] or
    /// `push_adopted_run`, each counted live in its chunk), taken from it, and
    /// nothing else refers to them.
    unsafe fn free_lists_at_exit(&self, heads: &[*mut u8; CLASSES]) {
        for (class, &head) in heads.iter().enumerate() {
            let size = class_size(class);
            let mut block = head;
            while !block.is_null() {
                // SAFETY: a cached block's first word links the next
                // (caller); it is read before `count_remote` rewrites it.
                let next = unsafe { block.cast::<*mut u8>().read() };
                // SAFETY: a cached block is, for its chunk, a live block of
                // its class's size, and of a cacheable layout.
                unsafe { self.count_remote(block, size, chunk_of(block), true) };
                block = next;
            }
        }
        self.flush_pending();
    }

    /// Takes the newest cache an exited thread left ([`leave_cache`](Self::leave_cache))
    /// into this thread's, if there is one and this thread's cache holds
    /// less than [`CACHE_BASE_BYTES`] (a thread with blocks of its own to
    /// reuse would only keep the left ones from their chunks longer). A
    /// class this thread holds blocks of gets its own list in front of the
    /// left one (its list is the short one to walk). Returns whether it
    /// took one.
    #[cold]
    #[inline(never)]
    pub(super) fn take_left_cache(&self) -> bool {
        if self.cache.bytes.get() >= CACHE_BASE_BYTES {
            return false;
        }
        let mut heads = [ptr::null_mut::<u8>(); CLASSES];
        let bytes = Self::take_left(&mut heads);
        if bytes == 0 {
            return false;
        }
        for (class, head) in heads.into_iter().enumerate() {
            if head.is_null() {
                continue;
            }
            let list = self.cache.list(class);
            let mine = list.get();
            if mine.is_null() {
                list.set(head);
                continue;
            }
            let mut tail = mine;
            loop {
                // SAFETY: a cached block's first word links the next block
                // of its list (`push`); the list is this thread's.
                let next = unsafe { tail.cast::<*mut u8>().read() };
                if next.is_null() {
                    break;
                }
                tail = next;
            }
            // SAFETY: as above; `tail` is this thread's list's last block,
            // and the left list is ours now.
            unsafe { tail.cast::<*mut u8>().write(head) };
        }
        self.cache.bytes.set(self.cache.bytes.get() + bytes);
        true
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
