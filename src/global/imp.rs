//! The allocator itself; see the parent module for the design.

use super::count::RemoteCount;
use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crate::sys;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};
use core::ffi::c_void;
use core::ptr::{self, NonNull};

/// Size and alignment of a `GlobalArena` chunk, header included: one
/// transparent huge page (see [`HUGE_LIVE_MIN`]).
pub(crate) const CHUNK_SIZE: usize = 2 << 20;
/// Chunks mapped while the program has at least this many bytes live ask
/// for transparent huge pages (`MADV_HUGEPAGE`): a heap that large gets
/// one TLB entry per chunk instead of 512 (a search through a B-tree of
/// 80 MiB misses the TLB on most nodes otherwise). A smaller heap stays on
/// 4 KiB pages, resident only as far as it has bumped: a huge page is
/// resident whole, and a chunk kept by one live block keeps all of it. A
/// program that churns through many chunks with a small live set (whose
/// chunks come back and are reused) therefore never asks.
const HUGE_LIVE_MIN: usize = 16 << 20;
/// The advice is given only while huge pages come quickly: the first
/// fault of each advised chunk is timed, and one slower than this turns
/// the advice off (see [`huge_retry_after`] for when it is tried again).
/// (On a VM whose host takes back the guest's free memory, zeroing a fresh
/// huge page can take milliseconds; parsing 50 MB of JSON then took 1.4 s
/// instead of 0.5.)
const HUGE_FAULT_BUDGET_NS: u64 = 1_000_000;
/// After a slow huge page turned the advice off, fresh chunks ask again
/// (and the first is timed again) once at least this many more chunks
/// have been mapped (see [`huge_retry_after`]).
const HUGE_RETRY_CHUNKS: usize = 32;
/// Requests larger than this get a mapping of their own.
pub(crate) const LARGE_THRESHOLD: usize = 256 << 10;
/// Large mappings of at least this size ask for transparent huge pages:
/// a vector grown to tens of MiB then faults 2 MiB at a time.
const HUGE_MIN: usize = 4 << 20;
/// Requests aligned to more than this get a mapping of their own.
pub(crate) const MAX_CHUNK_ALIGN: usize = 4096;
/// Free chunks kept committed for reuse (8 MiB); further free chunks are
/// decommitted (their pages go back to the OS, the address range stays).
pub(crate) const CACHED_CHUNKS: usize = 4;

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
const PREFAULT_STEP: usize = 256 << 10;
const _: () = assert!(CHUNK_SIZE.is_multiple_of(PREFAULT_STEP) && LARGE_THRESHOLD <= PREFAULT_STEP);

/// Bytes at the start of each chunk taken by its header.
const HEADER_SIZE: usize = 128;
/// Every block is a multiple of this, so the cursor stays aligned to it.
const GRAIN: usize = 8;
/// Blocks up to this size come in classes GRAIN bytes apart.
const LINEAR_MAX: usize = 1024;
/// Above [`LINEAR_MAX`], each doubling of size is split into this many
/// classes (a block is at most 12.5% larger than asked).
const STEPS: usize = 8;
/// Size classes: 1..=128 linear, then 8 per doubling up to
/// [`LARGE_THRESHOLD`] (index 0 unused).
const CLASSES: usize = LINEAR_MAX / GRAIN + 8 * STEPS + 1;
/// The thread cache is emptied into the chunks when it holds more than
/// this, or more than half the thread's live bytes if that is larger.
const CACHE_FLUSH_BYTES: usize = 8 << 20;
/// The thread cache takes any freed block while it holds less than this;
/// past it, only as many as the thread has allocated since.
const CACHE_BASE_BYTES: usize = 256 << 10;
/// Most blocks of credit the thread cache keeps (see `ThreadCache::admits`).
const CACHE_CREDIT: usize = 1 << 16;

/// Blocks of at most this many bytes are bumped from a thread's *small*
/// chunk, larger ones from its *medium* chunk (see [`Local::owners`]).
const SMALL_MAX: usize = 64;

/// Chunks each owner remembers as retired while kept by live blocks.
const PINNED_SLOTS: usize = 4;
/// A pinned chunk's freed blocks are taken back into use only once its
/// owner has retired this many chunks since it (a chunk still kept after
/// that holds stragglers; one retired just now usually holds messages in
/// flight, which come back soon and let the whole chunk be recycled).
const ADOPT_AFTER: u64 = 2;

/// Whether blocks of this layout may go through the thread cache.
#[inline(always)]
fn cacheable(size: usize, align: usize) -> bool {
    size <= LARGE_THRESHOLD && align <= GRAIN
}

/// The header at the start of every chunk.
///
/// The first cache line is written by the owner (and by the free list, under
/// its lock, while nobody owns the chunk); the second holds the atomic half
/// of the live count, written by every thread that frees a block remotely,
/// and the owner hint those threads read just before, so a remote free
/// touches one line of the header.
#[repr(C, align(64))]
struct ChunkHeader {
    /// Bytes at and above this address (and below the chunk end) have not
    /// been written since the chunk was mapped or decommitted. Written by
    /// the owner when it retires the chunk.
    dirty_end: Cell<usize>,
    /// The next chunk of the free list (under [`FREE`]'s lock).
    next: Cell<*mut ChunkHeader>,
    _pad: [u8; 48],
    count: RemoteCount,
    /// The address of the owner that took the chunk last (it keeps the
    /// value after retiring): a thread caches freed blocks only of chunks
    /// it owned, which it is likely to reuse. A hint, not an invariant:
    /// any thread may cache any block.
    owner: AtomicUsize,
    /// Blocks of this chunk freed by threads that did not own it, for a
    /// thread to take back into use while the chunk is retired and kept by
    /// other live blocks ([`Local::adopt_pinned`]): a list linked through
    /// the blocks' first words (see [`RemoteList`]), pushed whole runs at
    /// a time. Advice, not a count: the frees are counted in `count` as
    /// well, and a block may stay here, free, until the chunk is recycled,
    /// which empties the list (as does starting the chunk over).
    xfree: AtomicPtr<u8>,
}

const _: () = assert!(core::mem::size_of::<ChunkHeader>() <= HEADER_SIZE);
const _: () = assert!(LARGE_THRESHOLD + MAX_CHUNK_ALIGN + HEADER_SIZE <= CHUNK_SIZE);

/// How a block freed by another thread is kept on a chunk's `xfree` list:
/// its first word links to the next block, with bit 0 set for a block of
/// [`GRAIN`] bytes (class 1, with no room for more); a larger block's second
/// word holds its size class.
struct RemoteList;

impl RemoteList {
    /// Writes the links of `ptr`, a block of `size` bytes being freed,
    /// in front of `next`.
    ///
    /// # Safety
    /// `ptr` is a small block of `grain(size)` bytes, aligned to GRAIN,
    /// that its user has freed.
    #[inline(always)]
    unsafe fn link(ptr: *mut u8, size: usize, next: *mut u8) {
        let (class, block) = class_of(size);
        // SAFETY: the block is at least GRAIN bytes (two words when it is
        // larger), aligned to GRAIN, and ours again (caller).
        unsafe {
            if block <= GRAIN {
                ptr.cast::<*mut u8>().write(next.map_addr(|a| a | 1));
            } else {
                ptr.cast::<*mut u8>().write(next);
                ptr.cast::<usize>().add(1).write(class);
            }
        }
    }

    /// The block after `ptr` and `ptr`'s size class.
    ///
    /// # Safety
    /// `ptr` was linked by [`link`](Self::link), and the caller has
    /// acquired that write.
    #[inline(always)]
    unsafe fn read(ptr: *mut u8) -> (*mut u8, usize) {
        // SAFETY: as `link` wrote them (caller).
        let next = unsafe { ptr.cast::<*mut u8>().read() };
        if next.addr() & 1 != 0 {
            (next.map_addr(|a| a & !1), 1)
        } else {
            // SAFETY: a block linked without the tag has a second word.
            (next, unsafe { ptr.cast::<usize>().add(1).read() })
        }
    }

    /// Points the last block of a list, `tail`, at `next` (keeping its tag).
    ///
    /// # Safety
    /// As for [`read`](Self::read), and nothing else reads `tail` now.
    #[inline(always)]
    unsafe fn set_next(tail: *mut u8, next: *mut u8) {
        // SAFETY: the caller's.
        unsafe {
            let tag = tail.cast::<*mut u8>().read().addr() & 1;
            tail.cast::<*mut u8>().write(next.map_addr(|a| a | tag));
        }
    }
}

impl ChunkHeader {
    /// Puts the list `head..=tail` of this chunk's blocks, freed by the
    /// calling thread (which does not own the chunk), on `xfree`. Before
    /// the count of those frees, so that the chunk cannot be recycled (and
    /// its list emptied) first.
    ///
    /// # Safety
    /// The blocks are linked by [`RemoteList::link`], lie in this chunk and
    /// are still counted live.
    unsafe fn splice(&self, head: *mut u8, tail: *mut u8) {
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

/// The chunk a small block lies in.
#[cfg(not(miri))]
#[inline(always)]
fn chunk_of(ptr: *mut u8) -> *mut ChunkHeader {
    ptr.map_addr(|a| a & !(CHUNK_SIZE - 1)).cast()
}

/// Under Miri a pointer handed to `dealloc` carries the tag of the `Box`
/// (or reference) it came from, which covers only the block: masking it
/// gives the right address but no right to read the header. So Miri builds
/// remember every chunk's own pointer in a table (chunks are never
/// unmapped, so entries are never removed) and look the header up by
/// address. Native builds mask.
#[cfg(miri)]
mod miri_chunks {
    use super::{fatal, ChunkHeader, CHUNK_SIZE};
    use crate::sync::{AtomicPtr, Ordering};

    const SLOTS: usize = 1024;
    static TABLE: [AtomicPtr<ChunkHeader>; SLOTS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; SLOTS];

    fn home(addr: usize) -> usize {
        (addr / CHUNK_SIZE) % SLOTS
    }

    /// Records a freshly mapped chunk.
    pub(super) fn insert(chunk: *mut ChunkHeader) {
        let start = home(chunk.addr());
        for i in 0..SLOTS {
            let slot = &TABLE[(start + i) % SLOTS];
            // AcqRel: publishes the pointer (and the header written
            // before) to lookups.
            let free =
                slot.compare_exchange(core::ptr::null_mut(), chunk, Ordering::AcqRel, Ordering::Acquire);
            if free.is_ok() {
                return;
            }
        }
        fatal("fiberalloc: GlobalArena's Miri chunk table is full\n");
    }

    /// The chunk holding the address `addr`.
    pub(super) fn lookup(addr: usize) -> *mut ChunkHeader {
        let base = addr & !(CHUNK_SIZE - 1);
        let start = home(base);
        for i in 0..SLOTS {
            // Acquire: pairs with `insert`.
            let c = TABLE[(start + i) % SLOTS].load(Ordering::Acquire);
            if c.addr() == base {
                return c;
            }
        }
        fatal("fiberalloc: GlobalArena was given a pointer it did not allocate\n")
    }
}

#[cfg(miri)]
#[inline(always)]
fn chunk_of(ptr: *mut u8) -> *mut ChunkHeader {
    miri_chunks::lookup(ptr.addr())
}

/// A pointer to the same block with the chunk's own provenance. A freed
/// block that is handed out again must not carry the tag of the reference
/// its last user freed it through (which may cover only part of it): under
/// Miri the chunk's pointer is looked up; native builds keep the pointer.
#[cfg(miri)]
#[inline(always)]
fn own_provenance(ptr: *mut u8) -> *mut u8 {
    chunk_of(ptr).cast::<u8>().with_addr(ptr.addr())
}

#[cfg(not(miri))]
#[inline(always)]
fn own_provenance(ptr: *mut u8) -> *mut u8 {
    ptr
}

/// Whether a layout is served by a mapping of its own.
#[inline(always)]
fn is_large(size: usize, align: usize) -> bool {
    size > LARGE_THRESHOLD || align > MAX_CHUNK_ALIGN
}

/// The size class of a small request and the size of its block: `size`
/// rounded up to GRAIN up to [`LINEAR_MAX`], then to one of [`STEPS`]
/// sizes per doubling. Every small block is allocated at its class size,
/// so a freed block can serve any request of its class. (Never overflows:
/// small sizes are at most [`LARGE_THRESHOLD`].)
#[inline(always)]
fn class_of(size: usize) -> (usize, usize) {
    let size = size.max(1);
    if size <= LINEAR_MAX {
        let block = (size + GRAIN - 1) & !(GRAIN - 1);
        return (block / GRAIN, block);
    }
    // size lies in (2^k, 2^(k+1)], k >= 10.
    let k = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let step = 1 << (k - 3);
    let block = (size + step - 1) & !(step - 1);
    (LINEAR_MAX / GRAIN + (k - 10) * STEPS + (block >> (k - 3)) - STEPS, block)
}

/// The block size of class `class` (the inverse of [`class_of`]).
fn class_size(class: usize) -> usize {
    if class <= LINEAR_MAX / GRAIN {
        return class * GRAIN;
    }
    let j = class - LINEAR_MAX / GRAIN - 1;
    let k = 10 + j / STEPS;
    (j % STEPS + STEPS + 1) << (k - 3)
}

/// The size of the block that serves a small request of `size` bytes.
#[inline(always)]
fn grain(size: usize) -> usize {
    class_of(size).1
}

/// Writes `msg` with one `write(2)` and aborts. For states that mean the
/// allocator was misused in a way it cannot survive.
#[cold]
fn fatal(msg: &str) -> ! {
    sys::write_stderr(msg.as_bytes());
    std::process::abort()
}

// ---------------------------------------------------------------------------
// A spin lock for the slow paths (no allocation, no poisoning, no panic).

struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which holds the lock,
// so one thread at a time has it; `T: Send` lets it move between threads.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.lock();
        // SAFETY: the lock is held, so no other reference to the value
        // exists until it is released below.
        let r = f(unsafe { &mut *self.value.get() });
        // SAFETY: taken just above, by this thread.
        unsafe { self.unlock() };
        r
    }

    /// Takes the lock, spinning (then yielding) while another thread has
    /// it. Outside [`with`](Self::with), only the fork handlers call it.
    fn lock(&self) {
        let mut spins = 0u32;
        // Acquire: the previous holder's writes happen before ours.
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
            } else {
                spins = 0;
                std::thread::yield_now();
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The calling thread holds it (through [`lock`](Self::lock)), and no
    /// reference to the value made under it is used afterwards. In a child
    /// process just forked, the lock taken by the parent's forking thread
    /// counts as the child's (the child is that thread's copy).
    unsafe fn unlock(&self) {
        // Release: our writes happen before the next holder's.
        self.locked.store(false, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------
// fork(2).
//
// A child process starts with one thread, the copy of the one that forked,
// and with memory as it was at that instant: a lock that another thread
// held then stays held in the child forever, and the child's first
// allocation that needs it would spin for good. So the forking thread takes
// every lock of the allocator just before `fork` (waiting for the holders'
// critical sections, which are short and never fork), and releases them in
// both processes just after. Other threads' chunks, caches and counters
// stay as they were in the child: their blocks can still be freed there,
// and those chunks are never recycled in the child (their owners do not
// exist in it), as if the threads were still running but idle.

/// Whether the fork handlers are registered (or being registered).
static FORK_HANDLERS: AtomicBool = AtomicBool::new(false);

/// Registers the fork handlers, once per process: called on each thread's
/// first slow path, before the thread takes any of the locks.
/// Registration failure (out of memory in `pthread_atfork`) is not fatal:
/// it leaves `fork` as unsafe as with most allocators, and the next thread
/// to start tries again.
fn arm_fork_handlers() {
    // Relaxed: registration is idempotent in effect (the swap lets one
    // thread try at a time) and publishes nothing.
    if FORK_HANDLERS.load(Ordering::Relaxed) || FORK_HANDLERS.swap(true, Ordering::Relaxed) {
        return;
    }
    if sys::at_fork(before_fork, after_fork, after_fork).is_err() {
        FORK_HANDLERS.store(false, Ordering::Relaxed);
    }
}

/// Runs in the forking thread just before `fork`: takes every lock, in the
/// one order in which they nest (a fallback refill takes `FREE` while it
/// holds `FALLBACK`; `REGISTRY` and `LIVE` are never held with another).
extern "C" fn before_fork() {
    FALLBACK.lock();
    FREE.lock();
    REGISTRY.lock();
    LIVE.lock();
}

/// Runs just after `fork`, in the parent and in the child: releases what
/// [`before_fork`] took, in reverse order.
extern "C" fn after_fork() {
    // SAFETY: `before_fork` took all four in this thread (in the child, in
    // the thread it is a copy of), and nothing made under them is in use.
    unsafe {
        LIVE.unlock();
        REGISTRY.unlock();
        FREE.unlock();
        FALLBACK.unlock();
    }
}

// ---------------------------------------------------------------------------
// Counters.

/// One thread's counters: written only by that thread (plain loads and
/// stores, no read-modify-write), read by [`GlobalArena::stats`] from any
/// thread while the thread is registered.
struct Counters {
    allocs: AtomicU64,
    frees: AtomicU64,
    bytes_in: AtomicUsize,
    bytes_out: AtomicUsize,
    /// The next registered thread's counters (under [`REGISTRY`]'s lock).
    next: AtomicPtr<Counters>,
}

impl Counters {
    const fn new() -> Self {
        Counters {
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            bytes_in: AtomicUsize::new(0),
            bytes_out: AtomicUsize::new(0),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    // Relaxed loads and stores: one writer; readers want a recent value,
    // not an ordering.
    #[inline(always)]
    fn on_alloc(&self, size: usize) {
        self.allocs.store(self.allocs.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.bytes_in.store(self.bytes_in.load(Ordering::Relaxed).wrapping_add(size), Ordering::Relaxed);
    }

    #[inline(always)]
    fn on_free(&self, size: usize) {
        self.frees.store(self.frees.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.bytes_out.store(self.bytes_out.load(Ordering::Relaxed).wrapping_add(size), Ordering::Relaxed);
    }

    /// One counter moves: the difference (wrapping, as every sum of these
    /// counters is) goes into `bytes_in`.
    #[inline(always)]
    fn on_resize(&self, old: usize, new: usize) {
        let moved = new.wrapping_sub(old);
        self.bytes_in.store(self.bytes_in.load(Ordering::Relaxed).wrapping_add(moved), Ordering::Relaxed);
    }

    /// Adds these counters to `into` atomically (many writers).
    fn fold_into(&self, into: &Counters) {
        // Relaxed: statistics.
        into.allocs.fetch_add(self.allocs.load(Ordering::Relaxed), Ordering::Relaxed);
        into.frees.fetch_add(self.frees.load(Ordering::Relaxed), Ordering::Relaxed);
        into.bytes_in.fetch_add(self.bytes_in.load(Ordering::Relaxed), Ordering::Relaxed);
        into.bytes_out.fetch_add(self.bytes_out.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Counts from threads without counters of their own (exited, or in
    /// teardown): read-modify-writes, since many threads write.
    fn on_alloc_shared(&self, size: usize) {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(size, Ordering::Relaxed);
    }

    fn on_free_shared(&self, size: usize) {
        self.frees.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(size, Ordering::Relaxed);
    }
}

/// Counts of exited threads, the fallback and large mappings.
static SHARED_COUNTS: Counters = Counters::new();

/// The counters of every thread that has a chunk, linked through `next`.
struct Registry(*const Counters);
// SAFETY: the pointers are only followed under the registry's lock, and a
// thread unlinks its counters (under the lock) before they go away.
unsafe impl Send for Registry {}
static REGISTRY: SpinLock<Registry> = SpinLock::new(Registry(ptr::null()));

static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Chunks mapped and never unmapped (in use, cached or decommitted).
static CHUNKS_MAPPED: AtomicUsize = AtomicUsize::new(0);
/// Chunks mapped with the advice for huge pages.
static CHUNKS_HUGE: AtomicUsize = AtomicUsize::new(0);
/// Set when a huge page came slowly: no advice until the chunk count
/// reaches [`HUGE_RETRY_AT`] (see [`HUGE_FAULT_BUDGET_NS`]).
static HUGE_SLOW: AtomicBool = AtomicBool::new(false);
/// The count of chunks mapped at which a fresh chunk asks for huge pages
/// again while [`HUGE_SLOW`] is set.
static HUGE_RETRY_AT: AtomicUsize = AtomicUsize::new(0);
/// Retired chunks that still hold a live block.
static CHUNKS_PINNED: AtomicUsize = AtomicUsize::new(0);
/// Bytes mapped for large blocks.
static LARGE_MAPPED: AtomicUsize = AtomicUsize::new(0);
/// Allocations served by the shared fallback owner.
static FALLBACK_ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Live bytes over every counter (requested sizes).
fn live_bytes() -> (usize, u64, u64) {
    let mut bytes_in = SHARED_COUNTS.bytes_in.load(Ordering::Relaxed);
    let mut bytes_out = SHARED_COUNTS.bytes_out.load(Ordering::Relaxed);
    let mut allocs = SHARED_COUNTS.allocs.load(Ordering::Relaxed);
    let mut frees = SHARED_COUNTS.frees.load(Ordering::Relaxed);
    REGISTRY.with(|r| {
        let mut c = r.0;
        while !c.is_null() {
            // SAFETY: registered counters stay valid until their thread
            // unlinks them, which needs the lock we hold.
            let counters = unsafe { &*c };
            bytes_in = bytes_in.wrapping_add(counters.bytes_in.load(Ordering::Relaxed));
            bytes_out = bytes_out.wrapping_add(counters.bytes_out.load(Ordering::Relaxed));
            allocs += counters.allocs.load(Ordering::Relaxed);
            frees += counters.frees.load(Ordering::Relaxed);
            c = counters.next.load(Ordering::Relaxed);
        }
    });
    // Counts are read one after another, so a block freed on one thread
    // while another's counters are read can make the sum dip below zero.
    let live = bytes_in.saturating_sub(bytes_out);
    (live, allocs, frees)
}

/// Records the current live bytes as the peak if they are higher.
fn note_peak() -> (usize, u64, u64) {
    let sums = live_bytes();
    // Relaxed: a statistic.
    PEAK.fetch_max(sums.0, Ordering::Relaxed);
    sums
}

// ---------------------------------------------------------------------------
// The free list of chunks.

struct FreeList {
    /// Free chunks whose pages are committed (written before).
    cached: *mut ChunkHeader,
    cached_count: usize,
    /// Free chunks decommitted: zero-filled, no physical pages.
    decommitted: *mut ChunkHeader,
    decommitted_count: usize,
}
// SAFETY: the list holds chunks nobody owns; they are reached only under
// the lock.
unsafe impl Send for FreeList {}
static FREE: SpinLock<FreeList> = SpinLock::new(FreeList {
    cached: ptr::null_mut(),
    cached_count: 0,
    decommitted: ptr::null_mut(),
    decommitted_count: 0,
});

/// Gives a chunk whose blocks are all freed back to the free list,
/// decommitting it when the cache is full.
///
/// # Safety
/// `chunk` is a chunk header no thread owns and in which no block is live,
/// given to this function once.
unsafe fn recycle(chunk: *mut ChunkHeader) {
    // SAFETY: the chunk is ours alone (caller), so its header may be written.
    let header = unsafe { &*chunk };
    // Every block is free: what the list holds is part of the chunk given
    // back. Relaxed: every splice came before a free that we acquired, and
    // the free list's lock publishes the store to the next owner.
    header.xfree.store(ptr::null_mut(), Ordering::Relaxed);
    let cached = FREE.with(|f| {
        if f.cached_count < CACHED_CHUNKS {
            header.next.set(f.cached);
            f.cached = chunk;
            f.cached_count += 1;
            true
        } else {
            false
        }
    });
    if cached {
        return;
    }
    let page = sys::page_size();
    // The header's page stays; the rest goes back to the OS.
    // SAFETY: the chunk is a mapping of CHUNK_SIZE bytes we own, no block
    // in it is live, and `page` divides CHUNK_SIZE.
    let data = unsafe { NonNull::new_unchecked(chunk.cast::<u8>().add(page)) };
    // SAFETY: as above: nothing relies on the contents past the header.
    let zeroed = unsafe { sys::decommit(data, CHUNK_SIZE - page) }.is_ok();
    // The header's page was not decommitted: bytes up to its end may be
    // dirty, everything after it reads as zero.
    header.dirty_end.set(if zeroed { chunk.addr() + page } else { chunk.addr() + CHUNK_SIZE });
    FREE.with(|f| {
        if zeroed {
            header.next.set(f.decommitted);
            f.decommitted = chunk;
            f.decommitted_count += 1;
        } else {
            header.next.set(f.cached);
            f.cached = chunk;
            f.cached_count += 1;
        }
    });
}

/// When huge pages are tried again after a slow one turned the advice off
/// with `mapped` chunks mapped: once the count has doubled, and at least
/// [`HUGE_RETRY_CHUNKS`] more. The machine may have become quick again (on
/// this VM the cost of a fresh huge page changes by 50x from one phase to
/// another), and a program that runs for hours should not stay on 4 KiB
/// pages because of one slow fault at its start; while it stays slow, the
/// retries cost one slow fault per doubling of the chunks mapped.
fn huge_retry_after(mapped: usize) -> usize {
    mapped.saturating_add(mapped.max(HUGE_RETRY_CHUNKS))
}

/// Turns the advice off after a slow huge page, until the count of chunks
/// mapped reaches the number returned ([`huge_retry_after`]).
pub(crate) fn turn_huge_pages_off() -> usize {
    let mapped = CHUNKS_MAPPED.load(Ordering::Relaxed);
    let at = huge_retry_after(mapped);
    // Relaxed: hints; a thread that misses the stores advises (and times)
    // once more, or waits for the retry a little longer.
    HUGE_RETRY_AT.store(at, Ordering::Relaxed);
    HUGE_SLOW.store(true, Ordering::Relaxed);
    at
}

/// Asks for transparent huge pages on the mapping `ptr..ptr + len`
/// unless they have been found slow (or `retry`: a fresh chunk past
/// [`HUGE_RETRY_AT`] asks anyway), and times the fault of the first huge
/// page lying wholly at or above `fresh` (the part of the mapping not yet
/// written: a new chunk, or what `mremap` added); one slower than
/// [`HUGE_FAULT_BUDGET_NS`] takes the advice back and turns it off
/// (again), a quick one after a retry turns it back on. The page faulted
/// is one the caller is about to write (a chunk's header), or 2 MiB of a
/// large block that is resident early (a block of 4 MiB or more that is
/// never written costs that much RSS). Returns whether the mapping was
/// advised.
///
/// # Safety
/// `ptr..ptr + len` is a mapping the caller owns.
#[cold]
unsafe fn advise_huge_timed(ptr: NonNull<u8>, len: usize, fresh: usize, retry: bool) -> bool {
    // Relaxed: a hint; a thread that misses the store advises once more.
    if HUGE_SLOW.load(Ordering::Relaxed) && !retry {
        return false;
    }
    // SAFETY: the mapping is ours (caller).
    unsafe { sys::advise_huge(ptr, len, true) };
    const HUGE_PAGE: usize = 2 << 20;
    let probe = (fresh + HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
    if probe + HUGE_PAGE <= ptr.addr().get() + len {
        let start = sys::monotonic_ns();
        // SAFETY: `probe` is a page inside the mapping (above), and
        // faulting a page in keeps its contents.
        unsafe { sys::prefault(NonNull::new_unchecked(ptr.as_ptr().with_addr(probe)), sys::page_size()) };
        if sys::monotonic_ns().wrapping_sub(start) > HUGE_FAULT_BUDGET_NS {
            turn_huge_pages_off();
            // SAFETY: as above.
            unsafe { sys::advise_huge(ptr, len, false) };
        } else if retry {
            // Relaxed: as in `turn_huge_pages_off`.
            HUGE_SLOW.store(false, Ordering::Relaxed);
        }
    }
    true
}

/// A chunk for a new owner: from the free list, else freshly mapped (and
/// advised for huge pages when `live`, the program's live bytes, is at
/// least [`HUGE_LIVE_MIN`]).
fn acquire_chunk(live: usize) -> Option<NonNull<ChunkHeader>> {
    let reused = FREE.with(|f| {
        let c = if !f.cached.is_null() {
            f.cached_count -= 1;
            f.cached
        } else if !f.decommitted.is_null() {
            f.decommitted_count -= 1;
            f.decommitted
        } else {
            return ptr::null_mut();
        };
        // SAFETY: chunks on the list are valid headers owned by the list.
        let next = unsafe { (*c).next.get() };
        if c == f.cached {
            f.cached = next;
        } else {
            f.decommitted = next;
        }
        c
    });
    if let Some(c) = NonNull::new(reused) {
        return Some(c);
    }
    let mapped = sys::map_aligned(CHUNK_SIZE, CHUNK_SIZE).ok()?.cast::<ChunkHeader>();
    // Relaxed: a statistic, and a hint for the advice.
    let count = CHUNKS_MAPPED.fetch_add(1, Ordering::Relaxed) + 1;
    // Relaxed: hints (see `turn_huge_pages_off`).
    let retry = HUGE_SLOW.load(Ordering::Relaxed) && count >= HUGE_RETRY_AT.load(Ordering::Relaxed);
    if live >= HUGE_LIVE_MIN
        // SAFETY: the fresh mapping of CHUNK_SIZE bytes is ours.
        && unsafe { advise_huge_timed(mapped.cast(), CHUNK_SIZE, mapped.addr().get(), retry) }
    {
        CHUNKS_HUGE.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: a fresh mapping of CHUNK_SIZE writable bytes, aligned to
    // CHUNK_SIZE (so to the header's alignment), owned here.
    unsafe {
        mapped.as_ptr().write(ChunkHeader {
            dirty_end: Cell::new(mapped.as_ptr().addr() + HEADER_SIZE),
            next: Cell::new(ptr::null_mut()),
            _pad: [0; 48],
            count: RemoteCount::new(),
            owner: AtomicUsize::new(0),
            xfree: AtomicPtr::new(ptr::null_mut()),
        })
    };
    #[cfg(miri)]
    miri_chunks::insert(mapped.as_ptr());
    Some(mapped)
}

// ---------------------------------------------------------------------------
// Chunk owners: a thread, or the shared fallback.

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
struct Owner {
    cursor: Cell<*mut u8>,
    limit: Cell<usize>,
    chunk: Cell<*mut ChunkHeader>,
    live: Cell<usize>,
    clean_from: Cell<usize>,
    /// Whether this owner has filled a chunk, so that prefaulting ahead of
    /// the cursor pays (see [`PREFAULT_STEP`]).
    prefault: Cell<bool>,
    /// Chunks this owner retired while some of their blocks were live
    /// (kept by stragglers), for [`Local::adopt_pinned`] to take the blocks
    /// that other threads free in them back into use; with the count of
    /// chunks the owner had retired when it did (`retired`). Pointers only:
    /// a chunk may have been recycled since (adoption checks).
    pinned: [Cell<*mut ChunkHeader>; PINNED_SLOTS],
    pinned_at: [Cell<u64>; PINNED_SLOTS],
    retired: Cell<u64>,
}

impl Owner {
    const fn new() -> Self {
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
    fn bump(&self, size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        self.bump_block(grain(size), align, zero)
    }

    /// [`bump`](Self::bump) of a block of `block` bytes (`grain` of the
    /// size asked for, computed by the caller).
    #[inline(always)]
    fn bump_block(&self, block: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        let cursor = self.cursor.get();
        // Rounded up without a branch: three instructions, fewer than
        // choosing (the cursor is a multiple of GRAIN, so blocks aligned
        // to at most GRAIN do not move).
        let start = (cursor.addr() + align - 1) & !(align - 1);
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
    fn grow_limit(&self, need: usize) -> bool {
        let chunk = self.chunk.get();
        let end = chunk.addr() + CHUNK_SIZE;
        let limit = self.limit.get();
        if chunk.is_null() || need > end || limit >= end {
            return false;
        }
        if !self.prefault.get() {
            // Pages fault in as they are touched.
            self.limit.set(end);
            return true;
        }
        // Chunks are CHUNK_SIZE-aligned, so step boundaries are absolute.
        let to = ((need.max(limit + 1) + PREFAULT_STEP - 1) & !(PREFAULT_STEP - 1)).min(end);
        let page = sys::page_size();
        // Everything past the limit is untouched (the limit starts at the
        // chunk's `dirty_end` and moves only here); the page holding the
        // limit may be resident already.
        let from = (limit + page - 1) & !(page - 1);
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
    fn end_of(&self, size: usize, align: usize) -> usize {
        ((self.cursor.get().addr() + align - 1) & !(align - 1)) + grain(size)
    }

    /// Moves the cursor back to `to` (below it), keeping the zero mark true.
    #[inline(always)]
    fn rewind(&self, to: *mut u8) {
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
    unsafe fn free_local(&self, ptr: *mut u8, size: usize) {
        let live = self.live.get().wrapping_sub(1);
        self.live.set(live);
        let cursor = self.cursor.get();
        if ptr.addr() + grain(size) == cursor.addr() {
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
    fn start_over(&self, header: &ChunkHeader) {
        header.count.restart();
        // Every block is free, so the list's blocks are part of what is
        // handed out again. Relaxed: the splices came before frees that
        // `all_freed` acquired; no thread splices until a block is live.
        header.xfree.store(ptr::null_mut(), Ordering::Relaxed);
        self.live.set(0);
        let start = self.cursor.get().with_addr(self.chunk.get().addr() + HEADER_SIZE);
        self.rewind(start);
    }

    /// Lets go of the current chunk (if any): recycles it at once when no
    /// block in it is live, else whoever frees its last block will.
    fn retire(&self) {
        let chunk = self.chunk.get();
        if chunk.is_null() {
            return;
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
        } else {
            // Kept by live blocks: remember it in place of the oldest entry.
            let slot = (0..PINNED_SLOTS).min_by_key(|&i| self.pinned_at[i].get()).unwrap_or(0);
            self.pinned[slot].set(chunk);
            self.pinned_at[slot].set(retired);
        }
    }

    /// The slow path of a small allocation: start the chunk over if all its
    /// blocks are freed, else retire it and take another.
    #[cold]
    #[inline(never)]
    fn refill(&self, size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
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
        let (live, _, _) = note_peak();
        let fresh = acquire_chunk(live)?.as_ptr();
        // SAFETY: a chunk just taken from the free list or mapped: ours.
        let header = unsafe { &*fresh };
        let base = fresh.cast::<u8>();
        self.chunk.set(fresh);
        // Relaxed: a hint (see `ChunkHeader::owner`).
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

    #[inline(always)]
    fn alloc(&self, size: usize, align: usize, zero: bool) -> Option<NonNull<u8>> {
        match self.bump(size, align, zero) {
            Some(p) => Some(p),
            None => self.refill(size, align, zero),
        }
    }

    /// Resizes the last block in place if it is `ptr` and the chunk has
    /// room. Returns whether it did. With `grow` false, only within the
    /// prefaulted part (no call out, so the caller needs no stack frame).
    #[inline(always)]
    fn resize_last(&self, ptr: *mut u8, old: usize, new: usize, grow: bool) -> bool {
        let cursor = self.cursor.get();
        if ptr.addr() + grain(old) != cursor.addr() || self.chunk.get().is_null() {
            return false;
        }
        let end = ptr.addr() + grain(new);
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
static FALLBACK: SpinLock<Owner> = SpinLock::new(Owner::new());

const FRESH: u8 = 0;
const ACTIVE: u8 = 1;
const EXITED: u8 = 2;

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
struct ThreadCache {
    heads: [Cell<*mut u8>; CLASSES],
    bytes: Cell<usize>,
    limit: Cell<usize>,
    /// The thread's allocation count (`Counters::allocs`) up to which
    /// allocations have been matched by a free into the cache: the credit
    /// is `min(allocs - spent, CACHE_CREDIT)`. Kept as a mark against the
    /// count the thread keeps anyway, so an allocation adds nothing here.
    spent: Cell<u64>,
}

impl ThreadCache {
    const fn new() -> Self {
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
    fn list(&self, class: usize) -> &Cell<*mut u8> {
        debug_assert!(class < CLASSES);
        // SAFETY: `class_of` maps every size up to LARGE_THRESHOLD below
        // CLASSES (the test `size_classes_cover_every_small_size` checks
        // each one), and only small sizes reach the cache.
        unsafe { self.heads.get_unchecked(class) }
    }

    /// A cached block for a small `size`, if any.
    #[inline(always)]
    fn pop(&self, size: usize) -> Option<NonNull<u8>> {
        let (class, block) = class_of(size);
        self.pop_class(class, block)
    }

    /// [`pop`](Self::pop) with the size's class and block size worked out
    /// by the caller (`class_of`).
    #[inline(always)]
    fn pop_class(&self, class: usize, block: usize) -> Option<NonNull<u8>> {
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
    unsafe fn adopt(&self, block: *mut u8, class: usize) {
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
    fn admits(&self, allocs: u64) -> bool {
        self.bytes.get() < CACHE_BASE_BYTES || allocs > self.spent.get()
    }

    /// Keeps a freed block of `size` bytes, spending one allocation of
    /// credit (`allocs` is the thread's allocation count). Returns `false`
    /// when the cache is over its limit (the caller then flushes it).
    ///
    /// # Safety
    /// `ptr` is a block of this allocator of `grain(size)` bytes, aligned
    /// to GRAIN, that its user has freed.
    #[inline(always)]
    unsafe fn push(&self, ptr: *mut u8, size: usize, allocs: u64) -> bool {
        let (class, block) = class_of(size);
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

/// A thread's allocator state.
struct Local {
    /// The thread's two bump chunks: blocks of at most [`SMALL_MAX`] bytes
    /// (strings, boxes, small vectors) from the first, larger ones (tree
    /// nodes, hash tables, buffers) from the second. Kept apart, a program's
    /// structures of large nodes are packed densely instead of interleaved
    /// with the small objects they point to: a search through a B-tree of
    /// 1,000,000 entries touches a third fewer pages. A block's chunk, not
    /// its size, decides which owner counts its free (a block grown in
    /// place may cross [`SMALL_MAX`]).
    owners: [Owner; 2],
    cache: ThreadCache,
    counters: Counters,
    state: Cell<u8>,
    /// A chunk this thread does not bump in, and how many of its blocks the
    /// thread has freed since its last decrement of the chunk's count:
    /// consecutive frees to one chunk (a consumer draining what a producer
    /// made) cost one atomic decrement per run instead of one each. One
    /// run for each owner's sizes, so a consumer freeing small messages
    /// and the larger queue blocks that held them keeps both runs going.
    pending: [Cell<*mut ChunkHeader>; 2],
    pending_frees: [Cell<usize>; 2],
    /// The blocks of each pending run that may be reused (of cacheable
    /// layouts), linked first to last ([`RemoteList`]), for the chunk's
    /// `xfree` list when the run is counted.
    run_head: [Cell<*mut u8>; 2],
    run_tail: [Cell<*mut u8>; 2],
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            owners: [Owner::new(), Owner::new()],
            cache: ThreadCache::new(),
            counters: Counters::new(),
            state: Cell::new(FRESH),
            pending: [const { Cell::new(ptr::null_mut()) }; 2],
            pending_frees: [const { Cell::new(0) }; 2],
            run_head: [const { Cell::new(ptr::null_mut()) }; 2],
            run_tail: [const { Cell::new(ptr::null_mut()) }; 2],
        }
    };
}

/// Runs `f` on the calling thread's [`Local`], or returns `Err` when the
/// thread-local cannot be reached. The closure given to `try_with` only
/// takes the address, so it is always inlined (a large closure made
/// `try_with` an out-of-line call on every allocation and free).
#[inline(always)]
fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Result<R, ()> {
    match LOCAL.try_with(ptr::from_ref) {
        // SAFETY: `LOCAL` is const-initialised and has no destructor, so
        // its storage stays in place for the whole life of the thread, and
        // the reference is used only by this thread during this call.
        Ok(l) => Ok(f(unsafe { &*l })),
        Err(_) => Err(()),
    }
}

impl Local {
    /// The owner that bumps blocks of `size` bytes.
    #[inline(always)]
    fn owner_for(&self, size: usize) -> &Owner {
        &self.owners[usize::from(size > SMALL_MAX)]
    }

    /// Whether an owner hint (`ChunkHeader::owner`) names one of this
    /// thread's owners.
    #[inline(always)]
    fn owns_hint(&self, hint: usize) -> bool {
        hint.wrapping_sub(ptr::from_ref(&self.owners).addr()) < core::mem::size_of::<[Owner; 2]>()
    }

    /// Frees a block into its chunk's count: in place when it is in the
    /// thread's current chunk, atomically otherwise.
    ///
    /// # Safety
    /// `ptr` is a live small block of `size` bytes in `chunk`.
    #[inline(always)]
    unsafe fn free_to_chunk(&self, ptr: *mut u8, size: usize, chunk: *mut ChunkHeader) {
        if let Some(owner) = self.owners.iter().find(|o| o.chunk.get() == chunk) {
            // SAFETY: the block is live and in our chunk (caller).
            unsafe { owner.free_local(ptr, size) };
        } else {
            // Not linked for reuse: this thread owned the chunk (the block
            // comes from its cache, or it frees what it built without
            // allocating), and writing into every block of a teardown
            // cost the strings workload 7%.
            self.count_run(size, chunk);
        }
    }

    /// Counts the free of a block of `chunk`, a chunk none of this
    /// thread's owners bumps in, into the run of frees of its side.
    #[inline(always)]
    fn count_run(&self, size: usize, chunk: *mut ChunkHeader) {
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
    /// made every free, local ones too, save five instead of two.
    ///
    /// # Safety
    /// `ptr` is a live small block of `size` bytes in `chunk`, being freed,
    /// of a cacheable layout when `reusable`.
    #[inline(never)]
    unsafe fn count_remote(&self, ptr: *mut u8, size: usize, chunk: *mut ChunkHeader, reusable: bool) {
        self.count_run(size, chunk);
        let side = usize::from(size > SMALL_MAX);
        if reusable {
            let head = self.run_head[side].get();
            // SAFETY: the caller's.
            unsafe { RemoteList::link(ptr, size, head) };
            let block = own_provenance(ptr);
            if head.is_null() {
                self.run_tail[side].set(block);
            }
            self.run_head[side].set(block);
        }
    }

    /// Counts the run of pending frees on `side` into its chunk and starts
    /// a new one with one free of a block of `chunk`.
    #[inline(never)]
    fn start_run(&self, side: usize, chunk: *mut ChunkHeader) {
        self.flush_run(side);
        self.pending[side].set(chunk);
        self.pending_frees[side].set(1);
    }

    /// Takes back into the thread cache the blocks that other threads
    /// freed in chunks `owner` retired at least [`ADOPT_AFTER`] retirements
    /// ago and that live blocks still keep from being recycled (see
    /// `RemoteCount::pin`). Returns whether it took any. Stops at the
    /// cache's limit; the blocks left over stay free in their chunk until
    /// it is recycled. A chunk whose list is empty costs one load (no
    /// read-modify-write), so chunks kept for good cost the slow path
    /// little.
    #[cold]
    #[inline(never)]
    fn adopt_pinned(&self, owner: &Owner) -> bool {
        let now = owner.retired.get();
        let mut any = false;
        for (slot, at) in owner.pinned.iter().zip(&owner.pinned_at) {
            let chunk = slot.get();
            if chunk.is_null()
                || now - at.get() < ADOPT_AFTER
                || self.cache.bytes.get() >= self.cache.limit.get()
            {
                continue;
            }
            // SAFETY: chunk headers stay mapped for the life of the
            // process, recycled or not.
            let header = unsafe { &*chunk };
            // Relaxed: a look; the swap below acquires what it takes.
            if header.xfree.load(Ordering::Relaxed).is_null() {
                continue;
            }
            if !header.count.pin() {
                // Recycled (or owned again): forget it.
                slot.set(ptr::null_mut());
                continue;
            }
            // Acquire: the blocks' links and their last uses, published by
            // the splices.
            let mut block = header.xfree.swap(ptr::null_mut(), Ordering::Acquire);
            let mut taken = 0;
            while !block.is_null() && self.cache.bytes.get() < self.cache.limit.get() {
                // SAFETY: a block on the list was linked by a thread that
                // freed it, and the swap acquired that.
                let (next, class) = unsafe { RemoteList::read(block) };
                if class == 0 || class >= CLASSES {
                    // Not a link this allocator wrote (a use after free
                    // overwrote it): leave the rest alone.
                    break;
                }
                // SAFETY: a freed block of this chunk of `class_size(class)`
                // bytes, aligned to GRAIN; the pin keeps the chunk
                // unrecycled, and `adopt` below counts it live again.
                unsafe { self.cache.adopt(block, class) };
                taken += 1;
                block = next;
            }
            if taken != 0 {
                header.count.adopt(taken);
            }
            if header.count.unpin() {
                // Nothing taken and nothing else live: we recycle it.
                slot.set(ptr::null_mut());
                // SAFETY: ours to recycle, once (see `count`).
                unsafe { GlobalArena::recycle_retired(chunk) };
            }
            any |= taken != 0;
        }
        any
    }

    /// Counts the pending frees into their chunk (recycling it if they
    /// were its last live blocks).
    #[inline(never)]
    fn flush_pending(&self) {
        self.flush_run(0);
        self.flush_run(1);
    }

    /// Counts one run of pending frees into its chunk, after putting its
    /// reusable blocks on the chunk's `xfree` list.
    #[inline(always)]
    fn flush_run(&self, side: usize) {
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
            unsafe { GlobalArena::free_remote_n(chunk, n) };
        }
    }

    /// Empties the thread cache into the chunks, and sets its next limit.
    #[cold]
    #[inline(never)]
    fn flush_cache(&self) {
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

/// Runs at thread exit (a POSIX thread-key destructor): retires the
/// thread's chunk and unregisters its counters.
///
/// # Safety
/// Called by the C library on the exiting thread; the argument is unused.
unsafe extern "C" fn on_thread_exit(_: *mut c_void) {
    let _ = LOCAL.try_with(|l| {
        l.flush_cache();
        for owner in &l.owners {
            owner.retire();
        }
        l.state.set(EXITED);
        let me: *const Counters = &l.counters;
        REGISTRY.with(|r| {
            // Unlink our counters and fold them into the shared ones.
            let mut link: *const Counters = r.0;
            let mut prev: *const Counters = ptr::null();
            while !link.is_null() && link != me {
                prev = link;
                // SAFETY: registered counters are valid under the lock.
                link = unsafe { &*link }.next.load(Ordering::Relaxed);
            }
            if link == me {
                let next = l.counters.next.load(Ordering::Relaxed);
                if prev.is_null() {
                    r.0 = next;
                } else {
                    // SAFETY: as above.
                    unsafe { &*prev }.next.store(next, Ordering::Relaxed);
                }
            }
            l.counters.fold_into(&SHARED_COUNTS);
        });
    });
}

static EXIT_KEY: sys::ThreadExitKey = sys::ThreadExitKey::new(on_thread_exit);

impl Local {
    /// First slow path of a thread: arm the exit hook and register the
    /// counters. A thread whose hook cannot be armed uses the fallback
    /// (else its chunk would never be retired).
    #[cold]
    fn activate(&self) -> bool {
        arm_fork_handlers();
        // SAFETY: any non-null value works; the destructor ignores it.
        let arg = unsafe { NonNull::new_unchecked(ptr::from_ref(self).cast_mut().cast::<c_void>()) };
        if EXIT_KEY.arm(arg).is_err() {
            self.state.set(EXITED);
            return false;
        }
        let me = ptr::from_ref(&self.counters).cast_mut();
        REGISTRY.with(|r| {
            self.counters.next.store(r.0.cast_mut(), Ordering::Relaxed);
            r.0 = me;
        });
        self.state.set(ACTIVE);
        true
    }
}

// ---------------------------------------------------------------------------
// Large blocks: a mapping each.

fn large_len(size: usize) -> Option<usize> {
    let page = sys::page_size();
    size.checked_add(page - 1).map(|s| s & !(page - 1)).filter(|&s| s <= isize::MAX as usize)
}

fn large_alloc(size: usize, align: usize) -> *mut u8 {
    let Some(len) = large_len(size) else { return ptr::null_mut() };
    match sys::map_aligned(len, align) {
        Ok(p) => {
            if len >= HUGE_MIN {
                // SAFETY: the fresh mapping is ours.
                unsafe { advise_huge_timed(p, len, p.addr().get(), false) };
            }
            // Relaxed: statistics.
            LARGE_MAPPED.fetch_add(len, Ordering::Relaxed);
            SHARED_COUNTS.on_alloc_shared(size);
            note_peak();
            p.as_ptr()
        }
        Err(_) => ptr::null_mut(),
    }
}

/// # Safety
/// `ptr` came from [`large_alloc`] with `size` and `align`.
unsafe fn large_free(ptr: *mut u8, size: usize, align: usize) {
    let len = large_len(size).unwrap_or(0);
    // SAFETY: the caller passes a live large block, whose mapping is `len`
    // bytes from `ptr`.
    let ok = unsafe { sys::release_aligned(NonNull::new_unchecked(ptr), len, align) }.is_ok();
    if !ok {
        fatal("fiberalloc: GlobalArena could not unmap a large block (bad pointer or layout given to dealloc)\n");
    }
    LARGE_MAPPED.fetch_sub(len, Ordering::Relaxed);
    SHARED_COUNTS.on_free_shared(size);
}

// ---------------------------------------------------------------------------
// The allocator.

/// A bump global allocator that gives memory back: per-thread chunks with
/// live counts, recycled when their last block is freed.
///
/// ```
/// use fiberalloc::GlobalArena;
///
/// #[global_allocator]
/// static GLOBAL: GlobalArena = GlobalArena::new();
///
/// fn main() {
///     let v: Vec<u64> = (0..1000).collect();
///     assert_eq!(v.iter().sum::<u64>(), 499_500);
///     assert!(GLOBAL.stats().allocation_count > 0);
/// }
/// ```
///
/// Each thread bumps through its own 2 MiB chunks ([`Self::CHUNK_SIZE`]); a chunk
/// counts its live blocks (without atomics for its owner, atomically for
/// frees from other threads) and goes back to a free list when the last one
/// is freed after its owner moved on; free chunks past [`Self::CACHED_CHUNKS`]
/// are decommitted. A thread reuses the blocks it frees through a cache of
/// per-size-class lists before whole chunks are recycled. Freeing or
/// resizing the thread's most recent block is done in place. Requests
/// above [`Self::LARGE_THRESHOLD`] bytes or aligned to more than
/// [`Self::MAX_CHUNK_ALIGN`] get a mapping of their own (`realloc` by
/// `mremap`). A child made by `fork` while other threads allocate can
/// allocate too (the allocator's locks are taken around the `fork`). The
/// README's "GlobalArena" section has the details.
///
/// All `GlobalArena` values share one state (the chunks, the free list and
/// the counters are process-wide), so a handle holds only whether it
/// records live blocks ([`GlobalArena::tracking`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalArena {
    track: bool,
}

/// A snapshot of [`GlobalArena`]'s counters.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalStats {
    /// Bytes allocated and not yet freed (requested sizes).
    pub live_bytes: usize,
    /// The highest `live_bytes` seen. Sampled when a thread takes a new
    /// chunk, when a large block is mapped and when `stats` is called, so
    /// it can miss a short peak inside one chunk.
    pub peak_bytes: usize,
    /// Allocations so far (a `realloc` that moves counts as one
    /// allocation and one free).
    pub allocation_count: u64,
    /// Frees so far.
    pub free_count: u64,
    /// Chunks owned by a thread or holding a live block.
    pub chunks_in_use: usize,
    /// Free chunks kept committed for reuse.
    pub chunks_cached: usize,
    /// Free chunks whose memory went back to the OS (address space kept).
    pub chunks_decommitted: usize,
    /// Bytes of chunks that their owner has retired but that still hold a
    /// live block, a block in some thread's cache of freed blocks, or a
    /// freed block in a thread's runs of frees not counted yet (at most two
    /// chunks per thread; counted when the thread frees into another chunk,
    /// flushes its cache or exits).
    pub pinned_bytes: usize,
    /// Bytes mapped for large blocks (each its own mapping).
    pub large_bytes: usize,
    /// Bytes resident or ready to be: chunks in use or cached, plus large
    /// mappings.
    pub committed_bytes: usize,
    /// Allocations served by the shared fallback: made by a thread after
    /// its exit hook retired its chunk (from later thread-exit code).
    pub fallback_allocations: u64,
    /// Chunks mapped with the advice for transparent huge pages (chunks
    /// mapped while at least 16 MiB were live, as long as huge pages come
    /// quickly; whether the kernel grants them shows in `AnonHugePages` of
    /// `/proc/self/smaps`).
    pub huge_chunks: usize,
    /// Whether the advice is off at the moment because a huge page took
    /// more than a millisecond to fault in. Fresh chunks try again once the
    /// count of chunks mapped has doubled (and grown by at least 32), and
    /// turn it back on if huge pages have become quick.
    pub huge_pages_slow: bool,
}

/// A small table:
///
/// ```text
/// live          1.5 KiB  (peak 64.0 MiB)
/// allocations   3000029  (frees 3000025, fallback 0)
/// chunks        3 in use, 5 cached, 0 decommitted  (pinned 2.0 MiB)
/// large         0 B
/// committed     8.0 MiB
/// ```
impl core::fmt::Display for GlobalStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        struct B(usize);
        impl core::fmt::Display for B {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                crate::stats::fmt_bytes(f, self.0)
            }
        }
        writeln!(f, "live          {}  (peak {})", B(self.live_bytes), B(self.peak_bytes))?;
        writeln!(
            f,
            "allocations   {}  (frees {}, fallback {})",
            self.allocation_count, self.free_count, self.fallback_allocations
        )?;
        writeln!(
            f,
            "chunks        {} in use, {} cached, {} decommitted  (pinned {})",
            self.chunks_in_use,
            self.chunks_cached,
            self.chunks_decommitted,
            B(self.pinned_bytes)
        )?;
        let slow = if self.huge_pages_slow { ", then off: slow" } else { "" };
        writeln!(f, "huge pages    asked for {} chunks{slow}", self.huge_chunks)?;
        writeln!(f, "large         {}", B(self.large_bytes))?;
        write!(f, "committed     {}", B(self.committed_bytes))
    }
}

impl GlobalArena {
    /// Size and alignment of a chunk, header included (2 MiB).
    pub const CHUNK_SIZE: usize = CHUNK_SIZE;
    /// Requests larger than this (256 KiB) get a mapping of their own.
    pub const LARGE_THRESHOLD: usize = LARGE_THRESHOLD;
    /// Requests aligned to more than this (4 KiB) get a mapping of their own.
    pub const MAX_CHUNK_ALIGN: usize = MAX_CHUNK_ALIGN;
    /// Free chunks kept committed for reuse (4); further free chunks are
    /// decommitted.
    pub const CACHED_CHUNKS: usize = CACHED_CHUNKS;

    /// The allocator handle. `const`, so it can initialise the
    /// `#[global_allocator]` static.
    pub const fn new() -> Self {
        GlobalArena { track: false }
    }

    /// An allocator that also records every live block (its address and
    /// size) for [`leaks`](Self::leaks): leak tracking for debug builds.
    ///
    /// ```
    /// use fiberalloc::GlobalArena;
    /// #[global_allocator]
    /// static GLOBAL: GlobalArena =
    ///     if cfg!(debug_assertions) { GlobalArena::tracking() } else { GlobalArena::new() };
    /// # fn main() {}
    /// ```
    ///
    /// The records live in a hash table of their own mapping (nothing is
    /// allocated through an allocator), behind one spin lock: every
    /// allocation and free takes it, so this is for finding leaks, not for
    /// speed. With [`new`](Self::new) the record calls are compiled out (the
    /// flag is a constant of the `static`). If the table cannot grow (the
    /// OS refuses memory), further blocks go unrecorded and
    /// [`untracked_blocks`](Self::untracked_blocks) counts them.
    pub const fn tracking() -> Self {
        GlobalArena { track: true }
    }

    /// Whether this handle records live blocks.
    pub const fn is_tracking(&self) -> bool {
        self.track
    }

    /// The blocks allocated through a tracking handle and not freed yet,
    /// in no particular order (the returned `Vec`'s own buffer left out);
    /// empty for a handle made by [`new`](Self::new).
    pub fn leaks(&self) -> Vec<crate::debug::Leak> {
        if !self.track {
            return Vec::new();
        }
        let n = LIVE.with(|t| t.len);
        // Allocated before the lock is taken (allocating records the block,
        // which takes the lock); blocks made meanwhile by other threads may
        // not fit and are left out.
        let mut out: Vec<crate::debug::Leak> = Vec::with_capacity(n + 64);
        let own = out.as_ptr().addr();
        LIVE.with(|t| {
            for &[addr, size] in t.entries() {
                if addr > TOMB && addr != own && out.len() < out.capacity() {
                    out.push(crate::debug::Leak { addr, size });
                }
            }
        });
        out
    }

    /// Blocks a tracking handle could not record because its table could
    /// not grow.
    pub fn untracked_blocks(&self) -> usize {
        // Relaxed: a statistic.
        UNTRACKED.load(Ordering::Relaxed)
    }

    /// A snapshot of the process-wide counters. Takes two short spin locks
    /// and walks the registered threads; allocates nothing, so it may be
    /// called from a monitoring thread at any rate.
    pub fn stats(&self) -> GlobalStats {
        let (live, allocs, frees) = note_peak();
        let (cached, decommitted) = FREE.with(|f| (f.cached_count, f.decommitted_count));
        // Relaxed: statistics.
        let mapped = CHUNKS_MAPPED.load(Ordering::Relaxed);
        let in_use = mapped.saturating_sub(cached + decommitted);
        let large = LARGE_MAPPED.load(Ordering::Relaxed);
        GlobalStats {
            live_bytes: live,
            peak_bytes: PEAK.load(Ordering::Relaxed).max(live),
            allocation_count: allocs,
            free_count: frees,
            chunks_in_use: in_use,
            chunks_cached: cached,
            chunks_decommitted: decommitted,
            pinned_bytes: CHUNKS_PINNED.load(Ordering::Relaxed) * CHUNK_SIZE,
            large_bytes: large,
            committed_bytes: (in_use + cached) * CHUNK_SIZE + large,
            fallback_allocations: FALLBACK_ALLOCS.load(Ordering::Relaxed),
            huge_chunks: CHUNKS_HUGE.load(Ordering::Relaxed),
            huge_pages_slow: HUGE_SLOW.load(Ordering::Relaxed),
        }
    }

    /// A picture of the chunks for [`report::svg`](crate::report::svg), as
    /// far as one thread can see them without stopping the others: the
    /// calling thread's two current chunks (small blocks and larger ones;
    /// each one's bytes up to the cursor drawn as
    /// live: `GlobalArena` counts live blocks per chunk, not bytes, so
    /// blocks freed but not yet reclaimed are in there too) and every free
    /// chunk, cached or decommitted. Chunks other threads bump in, retired
    /// chunks pinned by live blocks and large mappings are summed in the
    /// map's note. Allocates the map (so not from inside an allocator).
    pub fn memory_map(&self) -> crate::report::MemoryMap {
        use crate::report::{ChunkState, ChunkUsage, MemoryMap};
        let data = CHUNK_SIZE - HEADER_SIZE;
        let mut chunks = Vec::new();
        let own = with_local(|l| l.owners.each_ref().map(|o| (o.chunk.get(), o.cursor.get())))
            .unwrap_or([(ptr::null_mut(), ptr::null_mut()); 2]);
        for &(chunk, cursor) in &own {
            if chunk.is_null() {
                continue;
            }
            let used = cursor.addr() - (chunk.addr() + HEADER_SIZE);
            chunks.push(ChunkUsage {
                addr: chunk.addr(),
                state: ChunkState::Current,
                header: HEADER_SIZE,
                live: used,
                padding: 0,
                free: data - used,
                guard: 0,
            });
        }
        // Copied out under the lock into a fixed array: allocating while
        // holding it could need a chunk, and so the lock.
        const SHOWN: usize = 64;
        let mut free = [(0usize, false); SHOWN];
        let (mut shown, mut more) = (0, 0);
        FREE.with(|f| {
            for (mut c, decommitted) in [(f.cached, false), (f.decommitted, true)] {
                while !c.is_null() {
                    if shown < SHOWN {
                        free[shown] = (c.addr(), decommitted);
                        shown += 1;
                    } else {
                        more += 1;
                    }
                    // SAFETY: chunks on the free list are valid headers,
                    // reached under its lock.
                    c = unsafe { (*c).next.get() };
                }
            }
        });
        for &(addr, decommitted) in &free[..shown] {
            let state = if decommitted { ChunkState::Decommitted } else { ChunkState::Spare };
            chunks.push(ChunkUsage {
                addr,
                state,
                header: HEADER_SIZE,
                live: 0,
                padding: 0,
                free: data,
                guard: 0,
            });
        }
        let s = self.stats();
        let current = own.iter().filter(|o| !o.0.is_null()).count();
        let others = s.chunks_in_use.saturating_sub(current);
        let mut note = format!(
            "not drawn: {others} chunks of other threads or retired (pinned: {} KiB), {} KiB in large mappings; live in all: {} KiB",
            s.pinned_bytes >> 10,
            s.large_bytes >> 10,
            s.live_bytes >> 10
        );
        if more > 0 {
            note.push_str(&format!("; {more} more free chunks"));
        }
        MemoryMap { title: "GlobalArena (this thread's view)".into(), chunks, note: Some(note) }
    }

    /// Gives the calling thread's cached free blocks back to their chunks,
    /// so that chunks holding nothing else can be recycled. A thread keeps
    /// up to 8 MiB (or half its live bytes) of freed blocks for reuse; call
    /// this when a thread goes idle after freeing a lot. Threads do it by
    /// themselves when they exit.
    pub fn flush_thread_cache(&self) {
        let _ = LOCAL.try_with(|l| {
            if l.state.get() == ACTIVE {
                l.flush_cache();
            }
        });
    }

    /// `alloc` and `alloc_zeroed`: a large layout gets a fresh mapping
    /// (which reads as zeros), a small one a block from the thread.
    #[inline(always)]
    fn alloc_layout(layout: Layout, zero: bool) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if size <= SMALL_MAX && align <= GRAIN {
            // The common case, in a copy of its own: no test for a large
            // layout, one size-class formula, one owner, and no rounding
            // (every block starts at a multiple of GRAIN, so alignment 1
            // is as good as the alignment asked for).
            return Self::alloc_small(size, 1, zero);
        }
        if is_large(size, align) {
            return large_alloc(size, align);
        }
        Self::alloc_small(size, align, zero)
    }

    #[inline(always)]
    fn alloc_small(size: usize, align: usize, zero: bool) -> *mut u8 {
        let fast = with_local(
            #[inline(always)]
            |l| Self::alloc_in(l, size, align, zero),
        );
        match fast {
            Ok(p) => p,
            Err(_) => Self::alloc_fallback(size, align, zero),
        }
    }

    /// A small block for this thread: from its cache of freed blocks (when
    /// it holds any), else bumped from its chunk.
    #[inline(always)]
    fn alloc_in(l: &Local, size: usize, align: usize, zero: bool) -> *mut u8 {
        // The class is worked out once, for the cache and for the bump.
        let (class, block) = class_of(size);
        if align <= GRAIN {
            if let Some(p) = l.cache.pop_class(class, block) {
                l.counters.on_alloc(size);
                if zero {
                    // SAFETY: the cached block has at least `size` bytes.
                    unsafe { p.as_ptr().write_bytes(0, size) };
                }
                return p.as_ptr();
            }
        }
        // Two copies of the bump, each with its owner's fixed offset and
        // (on the small side) no size-class arithmetic.
        let bumped = if size <= SMALL_MAX {
            l.owners[0].bump_block(block, align, zero)
        } else {
            l.owners[1].bump_block(block, align, zero)
        };
        if let Some(p) = bumped {
            l.counters.on_alloc(size);
            return p.as_ptr();
        }
        Self::alloc_small_slow(l, size, align, zero)
    }

    #[cold]
    #[inline(never)]
    fn alloc_small_slow(l: &Local, size: usize, align: usize, zero: bool) -> *mut u8 {
        if l.state.get() == EXITED || (l.state.get() == FRESH && !l.activate()) {
            return Self::alloc_fallback(size, align, zero);
        }
        let owner = l.owner_for(size);
        if align <= GRAIN && l.adopt_pinned(owner) {
            if let Some(p) = l.cache.pop(size) {
                l.counters.on_alloc(size);
                if zero {
                    // SAFETY: the cached block has at least `size` bytes.
                    unsafe { p.as_ptr().write_bytes(0, size) };
                }
                return p.as_ptr();
            }
        }
        match owner.refill(size, align, zero) {
            Some(p) => {
                l.counters.on_alloc(size);
                p.as_ptr()
            }
            None => ptr::null_mut(),
        }
    }

    #[cold]
    #[inline(never)]
    fn alloc_fallback(size: usize, align: usize, zero: bool) -> *mut u8 {
        let p = FALLBACK.with(|o| o.alloc(size, align, zero));
        match p {
            Some(p) => {
                // Relaxed: a statistic.
                FALLBACK_ALLOCS.fetch_add(1, Ordering::Relaxed);
                SHARED_COUNTS.on_alloc_shared(size);
                p.as_ptr()
            }
            None => ptr::null_mut(),
        }
    }

    /// Frees a small block: in place if it is the thread's last one; into
    /// the thread cache if it is cacheable and of a chunk this thread owns
    /// or owned; else into its chunk's count.
    ///
    /// # Safety
    /// `ptr` is a live small block of `size` bytes aligned to `align`.
    #[inline(always)]
    unsafe fn free_small(ptr: *mut u8, size: usize, align: usize) {
        let active = with_local(
            #[inline(always)]
            |l| {
                if l.state.get() != ACTIVE {
                    return false;
                }
                // SAFETY: forwarded from the caller.
                unsafe { Self::free_in(l, ptr, size, align) };
                true
            },
        );
        if active != Ok(true) {
            // SAFETY: forwarded from the caller.
            unsafe { Self::free_small_cold(ptr, size, align) };
        }
    }

    /// A small block freed by a thread whose state is active. Every call
    /// it makes is its last act, so the common paths need no stack frame.
    ///
    /// # Safety
    /// As for [`free_small`](Self::free_small).
    #[inline(always)]
    unsafe fn free_in(l: &Local, ptr: *mut u8, size: usize, align: usize) {
        let chunk = chunk_of(ptr);
        l.counters.on_free(size);
        let owner = l.owner_for(size);
        let mine = if owner.chunk.get() == chunk {
            ptr.addr() + grain(size) != owner.cursor.get().addr()
        } else {
            // Relaxed: a hint (see `ChunkHeader::owner`).
            // SAFETY: the block is live, so its chunk is.
            let hint = unsafe { &*chunk }.owner.load(Ordering::Relaxed);
            if !l.owns_hint(hint) {
                // Another thread's chunk (a thread bumping in a chunk is
                // the last to have set its hint): neither of ours.
                // SAFETY: the block is live (caller) and lies in `chunk`.
                unsafe { l.count_remote(ptr, size, chunk, cacheable(size, align)) };
                return;
            }
            true
        };
        let allocs = l.counters.allocs.load(Ordering::Relaxed);
        if mine && cacheable(size, align) && l.cache.admits(allocs) {
            // SAFETY: a live cacheable block is grain(size) bytes and
            // GRAIN-aligned; its user has freed it.
            if !unsafe { l.cache.push(ptr, size, allocs) } {
                l.flush_cache();
            }
        } else {
            // SAFETY: the block is live (caller) and lies in `chunk`.
            unsafe { l.free_to_chunk(ptr, size, chunk) };
        }
    }

    /// A small block freed by a thread that has not allocated yet (a
    /// consumer: it registers counters of its own, rather than counting
    /// every free with read-modify-writes on the shared ones), or whose
    /// state is gone or unusable (the block is counted into its chunk
    /// atomically).
    ///
    /// # Safety
    /// As for [`free_small`](Self::free_small).
    #[cold]
    #[inline(never)]
    unsafe fn free_small_cold(ptr: *mut u8, size: usize, align: usize) {
        let done = with_local(|l| {
            let ready = l.state.get() == ACTIVE || (l.state.get() == FRESH && l.activate());
            if ready {
                // SAFETY: forwarded from the caller.
                unsafe { Self::free_in(l, ptr, size, align) };
            }
            ready
        });
        if done != Ok(true) {
            SHARED_COUNTS.on_free_shared(size);
            // SAFETY: the block is live (caller), so its chunk is.
            unsafe { Self::free_remote(chunk_of(ptr)) };
        }
    }

    /// # Safety
    /// A live block of `chunk` is being freed by a thread that does not own
    /// the chunk.
    #[inline(always)]
    unsafe fn free_remote(chunk: *mut ChunkHeader) {
        // SAFETY: the chunk holds a live block, so it is not recycled.
        if unsafe { &*chunk }.count.free_remote() {
            // SAFETY: that was the retired chunk's last live block.
            unsafe { Self::recycle_retired(chunk) };
        }
    }

    /// # Safety
    /// `n` live blocks of `chunk` are being freed by a thread that does not
    /// own the chunk.
    #[inline(always)]
    unsafe fn free_remote_n(chunk: *mut ChunkHeader, n: usize) {
        // SAFETY: the chunk holds a live block, so it is not recycled.
        if unsafe { &*chunk }.count.free_remote_n(n) {
            // SAFETY: those were the retired chunk's last live blocks.
            unsafe { Self::recycle_retired(chunk) };
        }
    }

    /// # Safety
    /// The caller's decrement took the retired `chunk`'s count to zero.
    unsafe fn recycle_retired(chunk: *mut ChunkHeader) {
        // Relaxed: a statistic.
        CHUNKS_PINNED.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the chunk is ours to recycle, once (see `count`).
        unsafe { recycle(chunk) };
    }

    /// Resizes the current thread's last block in place (`grow`: see
    /// [`Owner::resize_last`]).
    #[inline(always)]
    fn resize_in_place(ptr: *mut u8, old: usize, new: usize, grow: bool) -> bool {
        with_local(|l| {
            // As in `alloc_in`: a copy per owner.
            let done = if old <= SMALL_MAX {
                l.owners[0].resize_last(ptr, old, new, grow)
            } else {
                l.owners[1].resize_last(ptr, old, new, grow)
            };
            if done {
                l.counters.on_resize(old, new);
            }
            done
        })
        .unwrap_or(false)
    }
}

// The contract of `GlobalAlloc`, argued: blocks are disjoint (a small
// block is bumped from a chunk owned by one thread, or by the fallback
// under its lock, or handed out again from the thread cache, where a block
// sits only after its user freed it; fresh space is reused only after the
// live count says every block of the chunk was freed, and cached blocks
// count as live; a large block is its own mapping). Every block is aligned
// as asked (chunk data is 128-aligned and the cursor is aligned up; cached
// blocks serve only requests aligned to at most GRAIN; mappings are
// aligned by `map_aligned`), and `realloc` keeps the contents up to the
// smaller size. Failures return null; nothing panics (arithmetic cannot
// overflow for layouts, whose sizes are at most `isize::MAX`) and nothing
// allocates through another allocator.
// SAFETY: as argued just above.
unsafe impl GlobalAlloc for GlobalArena {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = Self::alloc_layout(layout, false);
        if self.track {
            record(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = Self::alloc_layout(layout, true);
        if self.track {
            record(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.track {
            forget(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { Self::dealloc_raw(ptr, layout) }
    }

    // Inlined into `__rust_realloc`, where `self` is the `static` and the
    // tracking flag a constant.
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let p = unsafe { Self::realloc_raw(ptr, layout, new_size) };
        if self.track && !p.is_null() {
            forget(ptr);
            record(p, new_size);
        }
        p
    }
}

impl GlobalArena {
    /// `dealloc` without the live-block record.
    ///
    /// # Safety
    /// As for [`GlobalAlloc::dealloc`].
    #[inline(always)]
    unsafe fn dealloc_raw(ptr: *mut u8, layout: Layout) {
        let (size, align) = (layout.size(), layout.align());
        if size <= SMALL_MAX && align <= GRAIN {
            // As in `alloc_layout`: the common case in a copy of its own
            // (the alignment is used only to tell whether the block may be
            // cached, which it may).
            // SAFETY: forwarded from the caller.
            unsafe { Self::free_small(ptr, size, 1) };
        } else if is_large(size, align) {
            // SAFETY: a large layout was served by `large_alloc` (caller
            // passes the layout it allocated with).
            unsafe { large_free(ptr, size, align) };
        } else {
            // SAFETY: as above, for a small block.
            unsafe { Self::free_small(ptr, size, align) };
        }
    }

    /// `realloc` without the live-block record.
    ///
    /// # Safety
    /// As for [`GlobalAlloc::realloc`].
    #[inline(always)]
    unsafe fn realloc_raw(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_size, align) = (layout.size(), layout.align());
        if !is_large(old_size, align) && !is_large(new_size, align) {
            // A block keeps its place when the new size has the same block
            // size (a string grown from 2 to 8 bytes), moves the cursor
            // when it is the thread's last block, and else keeps its place
            // when it shrinks.
            let same = grain(new_size) == grain(old_size);
            if !same && Self::resize_in_place(ptr, old_size, new_size, false) {
                return ptr;
            }
            if same || grain(new_size) < grain(old_size) {
                // A shrink, or a growth within the block's size class,
                // keeps its place (a shrunk block's tail is lost until the
                // block is freed).
                let _ = with_local(|l| l.counters.on_resize(old_size, new_size));
                return ptr;
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { Self::realloc_slow(ptr, layout, new_size) }
    }

    /// The rest of `realloc`: large blocks (`mremap`), and moves by copy.
    /// Out of line, so the in-place path above needs no stack frame.
    ///
    /// # Safety
    /// As for [`GlobalAlloc::realloc`].
    #[inline(never)]
    unsafe fn realloc_slow(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_size, align) = (layout.size(), layout.align());
        let old_large = is_large(old_size, align);
        let new_large = is_large(new_size, align);
        // The last block growing past the prefaulted part of its chunk.
        if !old_large && !new_large && Self::resize_in_place(ptr, old_size, new_size, true) {
            return ptr;
        }
        if old_large && new_large {
            if let (Some(old_len), Some(new_len)) = (large_len(old_size), large_len(new_size)) {
                if old_len == new_len {
                    SHARED_COUNTS.bytes_in.fetch_add(new_size, Ordering::Relaxed);
                    SHARED_COUNTS.bytes_out.fetch_add(old_size, Ordering::Relaxed);
                    return ptr;
                }
                // A moved mapping keeps only page alignment.
                let may_move = align <= sys::page_size();
                // SAFETY: `ptr` is a live large block whose mapping is
                // `old_len` bytes (caller); on success only the result is
                // used from here on.
                let moved = unsafe { sys::remap(NonNull::new_unchecked(ptr), old_len, new_len, may_move) };
                if let Ok(p) = moved {
                    if new_len >= HUGE_MIN {
                        // A mapping advised before keeps the advice when it
                        // moves: probed again on its new part, or taken
                        // back once huge pages are slow.
                        // SAFETY: the remapped block is ours.
                        if !unsafe { advise_huge_timed(p, new_len, p.addr().get() + old_len, false) }
                            && old_len >= HUGE_MIN
                        {
                            // SAFETY: as above.
                            unsafe { sys::advise_huge(p, new_len, false) };
                        }
                    }
                    // Relaxed: statistics.
                    LARGE_MAPPED.fetch_add(new_len, Ordering::Relaxed);
                    LARGE_MAPPED.fetch_sub(old_len, Ordering::Relaxed);
                    SHARED_COUNTS.bytes_in.fetch_add(new_size, Ordering::Relaxed);
                    SHARED_COUNTS.bytes_out.fetch_add(old_size, Ordering::Relaxed);
                    note_peak();
                    return p.as_ptr();
                }
            }
        }
        // SAFETY: the caller guarantees that `new_size`, rounded up to
        // `align`, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        let fresh = Self::alloc_layout(new_layout, false);
        if !fresh.is_null() {
            // SAFETY: both blocks are live and distinct; the old one is
            // freed with the layout it was allocated with.
            unsafe {
                ptr::copy_nonoverlapping(ptr, fresh, old_size.min(new_size));
                Self::dealloc_raw(ptr, layout);
            }
        }
        fresh
    }
}

// ---------------------------------------------------------------------------
// Live-block records of a tracking handle.

/// An open-addressing hash table (linear probing) of live blocks, address
/// to size, in a mapping of its own: recording a block never allocates
/// through an allocator. A slot is `[addr, size]`; `addr` 0 is empty, 1 a
/// deleted entry (no block lives at address 0 or 1).
struct LiveTable {
    slots: *mut [usize; 2],
    /// Slots (a power of two, or 0 before the first record).
    cap: usize,
    /// Live entries.
    len: usize,
    /// Deleted entries still taking a slot.
    tombs: usize,
}

// SAFETY: the table's mapping is reached only under `LIVE`'s lock.
unsafe impl Send for LiveTable {}

static LIVE: SpinLock<LiveTable> =
    SpinLock::new(LiveTable { slots: ptr::null_mut(), cap: 0, len: 0, tombs: 0 });
/// Blocks not recorded because the table could not grow.
static UNTRACKED: AtomicUsize = AtomicUsize::new(0);

const EMPTY_SLOT: usize = 0;
const TOMB: usize = 1;

impl LiveTable {
    fn entries(&self) -> &[[usize; 2]] {
        if self.cap == 0 {
            return &[];
        }
        // SAFETY: `slots` is a live mapping of `cap` slots (zero-filled
        // when mapped, so every slot is initialised), owned by the table.
        unsafe { core::slice::from_raw_parts(self.slots, self.cap) }
    }

    fn entries_mut(&mut self) -> &mut [[usize; 2]] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: as in `entries`; `&mut self` is the only access.
        unsafe { core::slice::from_raw_parts_mut(self.slots, self.cap) }
    }

    fn home(&self, addr: usize) -> usize {
        // Fibonacci hashing of the address without its low (alignment) bits.
        ((addr >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - self.cap.trailing_zeros()))
            & (self.cap - 1)
    }

    /// Records `addr` with `size` (replacing an entry for `addr`); `false`
    /// if the table was full and could not grow.
    fn insert(&mut self, addr: usize, size: usize) -> bool {
        if (self.len + self.tombs + 1) * 2 > self.cap && !self.rebuild() {
            return false;
        }
        let mask = self.cap - 1;
        let mut i = self.home(addr);
        let mut tomb = None;
        let slots = self.entries_mut();
        loop {
            match slots[i][0] {
                EMPTY_SLOT => break,
                TOMB => {
                    tomb.get_or_insert(i);
                }
                a if a == addr => {
                    slots[i][1] = size;
                    return true;
                }
                _ => {}
            }
            i = (i + 1) & mask;
        }
        let at = match tomb {
            Some(t) => {
                self.tombs -= 1;
                t
            }
            None => i,
        };
        self.entries_mut()[at] = [addr, size];
        self.len += 1;
        true
    }

    /// Forgets `addr`; whether it was recorded.
    fn remove(&mut self, addr: usize) -> bool {
        if self.cap == 0 {
            return false;
        }
        let mask = self.cap - 1;
        let mut i = self.home(addr);
        let slots = self.entries_mut();
        loop {
            match slots[i][0] {
                EMPTY_SLOT => return false,
                a if a == addr => {
                    slots[i][0] = TOMB;
                    self.len -= 1;
                    self.tombs += 1;
                    return true;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Moves the entries to a new mapping, twice as large when more than a
    /// quarter is live (tombstones dropped); `false` if it cannot be mapped.
    fn rebuild(&mut self) -> bool {
        let cap = if self.cap == 0 {
            4096
        } else if self.len * 4 > self.cap {
            self.cap * 2
        } else {
            self.cap
        };
        let bytes = cap * core::mem::size_of::<[usize; 2]>();
        let Ok(mem) = sys::map(bytes) else { return false };
        let old = core::mem::replace(self, LiveTable { slots: mem.as_ptr().cast(), cap, len: 0, tombs: 0 });
        for &[addr, size] in old.entries() {
            if addr > TOMB {
                self.insert(addr, size);
            }
        }
        if old.cap > 0 {
            let old_bytes = old.cap * core::mem::size_of::<[usize; 2]>();
            // SAFETY: the old table's mapping, no longer referred to.
            let _ = unsafe { sys::release(NonNull::new_unchecked(old.slots.cast()), old_bytes) };
        }
        true
    }
}

/// Records a block handed out by a tracking handle (nothing for null).
#[cold]
#[inline(never)]
fn record(p: *mut u8, size: usize) {
    if !p.is_null() && !LIVE.with(|t| t.insert(p.addr(), size)) {
        // Relaxed: a statistic.
        UNTRACKED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Forgets a block a tracking handle is freeing.
#[cold]
#[inline(never)]
fn forget(p: *mut u8) {
    LIVE.with(|t| t.remove(p.addr()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_table_grows_forgets_and_reuses_tombstones() {
        let mut t = LiveTable { slots: ptr::null_mut(), cap: 0, len: 0, tombs: 0 };
        let n = if cfg!(miri) { 3000 } else { 20_000 };
        for i in 0..n {
            assert!(t.insert(0x1000 + i * 16, i));
        }
        assert_eq!(t.len, n);
        assert!(t.cap >= 2 * n);
        for i in (0..n).step_by(2) {
            assert!(t.remove(0x1000 + i * 16));
            assert!(!t.remove(0x1000 + i * 16), "removed twice");
        }
        assert!(t.insert(0x1000 + 16, 99), "replacing an entry");
        assert_eq!(t.len, n / 2);
        let mut live: Vec<[usize; 2]> = t.entries().iter().copied().filter(|e| e[0] > TOMB).collect();
        live.sort();
        assert_eq!(live.len(), n / 2);
        assert_eq!(live[0], [0x1000 + 16, 99]);
        assert!(live.iter().skip(1).all(|&[a, s]| (a - 0x1000) / 16 == s && s % 2 == 1));
        let bytes = t.cap * core::mem::size_of::<[usize; 2]>();
        // SAFETY: the table's own mapping, given back once.
        let _ = unsafe { sys::release(NonNull::new_unchecked(t.slots.cast()), bytes) };
    }

    #[test]
    fn stats_display_is_a_small_table() {
        let s = GlobalStats {
            live_bytes: 1572,
            peak_bytes: 64 << 20,
            allocation_count: 3_000_029,
            free_count: 3_000_025,
            chunks_in_use: 3,
            chunks_cached: 5,
            chunks_decommitted: 0,
            pinned_bytes: 2 << 20,
            large_bytes: 0,
            committed_bytes: 8 << 20,
            fallback_allocations: 0,
            huge_chunks: 7,
            huge_pages_slow: true,
        };
        assert_eq!(
            s.to_string(),
            "live          1.5 KiB  (peak 64.0 MiB)\n\
             allocations   3000029  (frees 3000025, fallback 0)\n\
             chunks        3 in use, 5 cached, 0 decommitted  (pinned 2.0 MiB)\n\
             huge pages    asked for 7 chunks, then off: slow\n\
             large         0 B\n\
             committed     8.0 MiB"
        );
    }

    // Pure arithmetic over 256K sizes: nothing for Miri to check, and
    // minutes of its time.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn size_classes_cover_every_small_size() {
        let mut last = (0, 0);
        for size in 1..=LARGE_THRESHOLD {
            let (class, block) = class_of(size);
            assert!(block >= size && block % GRAIN == 0, "{size} -> {block}");
            assert!(block - size < GRAIN || (block - size) * 8 <= block, "{size} -> {block}: too much waste");
            assert!(class > 0 && class < CLASSES, "{size} -> class {class}");
            assert_eq!(class_size(class), block, "class {class}");
            assert!(class == last.0 || class == last.0 + 1, "classes are contiguous at {size}");
            last = (class, block);
        }
        assert_eq!(last, (CLASSES - 1, LARGE_THRESHOLD));
    }
}
