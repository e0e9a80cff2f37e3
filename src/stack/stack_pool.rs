//! [`StackPool`]: guarded stacks recycled by size class.
//!
//! Each size class (a power of two pages) keeps its stacks in a
//! [`BlockPool`] with a guard page below every block, so stacks are carved
//! several to a mapping and a returned stack keeps its guard. In front of
//! that:
//!
//! - a per-thread cache of up to [`THREAD_CACHE`] returned stacks per pool:
//!   `get` and the drop of a [`PooledStack`] touch only thread-local data
//!   there, with no lock and no atomic read-modify-write (the thread's
//!   counters for the pool are atomics only it writes, with plain loads and
//!   stores, which [`StackPool::stats`] sums);
//! - a shared list per class of warm stacks (returned and still resident),
//!   bounded by [`StackPoolOptions::max_cached_bytes`]: a stack that would
//!   go past it has its pages released (`MADV_DONTNEED`) and goes back to
//!   the block pool's free list, cold.
//!
//! A [`PooledStack`] holds the pool's shared state (an `Arc`), so it goes
//! back to the pool when dropped even if every `StackPool` handle is gone.
//! A thread cache holds the pool's state too, so a dropped pool's memory is
//! freed once its stacks leave the thread caches: when the thread exits,
//! or at its next `get` or return of a stack of any pool.
//!
//! The file stays whole (about 800 lines, 40 of them tests): the thread
//! cache and the shared lists hand stacks to each other through each other's
//! private state, and the return path reads best in one place.

use super::FiberStack;
use crate::pool::{BlockPool, BlockPoolOptions};
use crate::sync::plain::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::sync::Mutex;
use crate::sys;
use std::cell::{Cell, RefCell};
use std::io;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::sync::{Arc, OnceLock};

/// Returned stacks a thread keeps for itself, per pool.
pub const THREAD_CACHE: usize = 16;
/// Size classes: usable sizes of `page << k` for `k < CLASSES`.
const CLASSES: usize = 32;

/// What happens to a stack's memory when it goes back to its pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnReturn {
    /// Nothing: the pages stay resident and hold what the fiber left
    /// (the fastest; the default).
    #[default]
    Keep,
    /// The pages are given back to the OS (`MADV_DONTNEED`); the next user
    /// faults fresh zero pages in. Costs a system call per return.
    Release,
    /// The stack is filled with zeros (its whole usable size), so no fiber
    /// sees what an earlier one left.
    Zero,
}

/// How a [`StackPool`] behaves.
#[derive(Clone, Copy, Debug)]
pub struct StackPoolOptions {
    /// What to do with a returned stack's memory. Default: [`OnReturn::Keep`].
    pub on_return: OnReturn,
    /// Resident bytes of returned stacks the shared lists keep, per pool;
    /// stacks past it are released and kept cold. Default: 64 MiB.
    pub max_cached_bytes: usize,
    /// Stacks of the pool's own size to map when it is made. Default: 0.
    pub prealloc: usize,
}

impl Default for StackPoolOptions {
    fn default() -> Self {
        StackPoolOptions { on_return: OnReturn::Keep, max_cached_bytes: 64 << 20, prealloc: 0 }
    }
}

/// A snapshot of a pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackPoolStats {
    /// `get`s served by a stack already made (thread cache or warm list).
    pub hits: u64,
    /// `get`s served by the block pool: a new stack, or a cold one whose
    /// pages were released.
    pub misses: u64,
    /// Stacks the pool holds and has not handed out (thread caches, warm
    /// lists and cold blocks).
    pub cached: usize,
    /// Usable bytes of the cached stacks that were not released: an upper
    /// bound of what they keep resident.
    pub resident_bytes: usize,
    /// Bytes mapped for stacks, guards included.
    pub mapped_bytes: usize,
}

struct Class {
    blocks: OnceLock<BlockPool>,
    /// Returned stacks kept resident.
    warm: Mutex<Vec<NonNull<u8>>>,
}

// SAFETY: the pointers are block addresses inside the class's block pool,
// handed between threads under the mutex.
unsafe impl Send for Class {}
// SAFETY: as above.
unsafe impl Sync for Class {}

struct Shared {
    /// The page size, read once.
    page: usize,
    default_class: usize,
    options: StackPoolOptions,
    classes: [Class; CLASSES],
    /// Counters of the shared lists, and of threads that let go of the
    /// pool (read-modify-writes).
    hits: AtomicU64,
    misses: AtomicU64,
    cached: AtomicUsize,
    resident: AtomicUsize,
    /// The counters of each thread cache holding this pool's stacks.
    threads: Mutex<Vec<Arc<ThreadCounters>>>,
    /// `StackPool` handles alive (stacks not counted).
    handles: AtomicUsize,
    /// Set when the last `StackPool` handle is dropped: thread caches let
    /// go of this pool's stacks when they see it.
    closed: AtomicBool,
}

impl Shared {
    #[inline(always)]
    fn class_size(&self, class: usize) -> usize {
        self.page << class
    }

    fn blocks(&self, class: usize) -> io::Result<&BlockPool> {
        let c = &self.classes[class];
        if let Some(b) = c.blocks.get() {
            return Ok(b);
        }
        let prealloc = if class == self.default_class { self.options.prealloc } else { 0 };
        let options = BlockPoolOptions { guard_pages: true, prealloc, blocks_per_chunk: 0 };
        let made = BlockPool::build(self.class_size(class), options, true)?;
        // A racing thread may have set it first: then ours is dropped.
        Ok(c.blocks.get_or_init(|| made))
    }

    /// Applies the pool's return policy to a stack's usable memory.
    #[inline(always)]
    fn prepare(&self, class: usize, block: NonNull<u8>) {
        let size = self.class_size(class);
        match self.options.on_return {
            OnReturn::Keep => {}
            OnReturn::Zero => {
                // SAFETY: the block's usable bytes are ours (the stack was
                // returned) and writable.
                unsafe { block.as_ptr().write_bytes(0, size) };
            }
            OnReturn::Release => {
                // A failure leaves the pages resident, which is harmless
                // (only the statistics then undercount).
                // SAFETY: as above; nothing relies on the contents any more.
                let _ = unsafe { sys::decommit(block, size) };
            }
        }
    }

    /// Whether returned stacks stay resident (all but [`OnReturn::Release`]).
    #[inline(always)]
    fn keeps_resident(&self) -> bool {
        self.options.on_return != OnReturn::Release
    }

    /// Takes a returned stack into the shared lists: warm while the
    /// resident bytes stay within the cap, else released and cold.
    fn put_shared(&self, class: usize, block: NonNull<u8>) {
        let size = self.class_size(class);
        let resident = self.keeps_resident();
        // Relaxed: a budget and statistics, not a synchronisation point
        // (the lists have their own locks).
        self.cached.fetch_add(1, Ordering::Relaxed);
        if resident {
            if self.resident.fetch_add(size, Ordering::Relaxed) + size <= self.options.max_cached_bytes {
                lock(&self.classes[class].warm).push(block);
                return;
            }
            self.resident.fetch_sub(size, Ordering::Relaxed);
            // SAFETY: the stack was returned: its memory is ours, and
            // nothing relies on its contents.
            let _ = unsafe { sys::decommit(block, size) };
        }
        if let Some(b) = self.classes[class].blocks.get() {
            // SAFETY: the block came from this block pool and is no longer
            // used by anyone.
            unsafe { b.put(block) };
        }
    }

    /// A stack of `class` from the warm list or the block pool, with the
    /// counters updated.
    fn get_shared(&self, class: usize) -> io::Result<NonNull<u8>> {
        // Relaxed: statistics.
        if let Some(b) = lock(&self.classes[class].warm).pop() {
            self.resident.fetch_sub(self.class_size(class), Ordering::Relaxed);
            self.cached.fetch_sub(1, Ordering::Relaxed);
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(b);
        }
        let (b, new) = self.blocks(class)?.get_counted()?;
        if !new {
            self.cached.fetch_sub(1, Ordering::Relaxed);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Ok(b)
    }
}

fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    // The lists stay consistent across a panic (push and pop only).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One thread's counters for one pool. Only that thread writes them, with
/// a relaxed load and store (no read-modify-write); `stats` reads them
/// from any thread.
#[derive(Default)]
struct ThreadCounters {
    hits: AtomicU64,
    /// Stacks in the thread's per-pool cache, and their resident bytes.
    cached: AtomicUsize,
    resident: AtomicUsize,
    /// Stacks in the thread's hot cache while it holds this pool's, and
    /// their class (published with plain stores as the cache changes).
    hot_len: AtomicUsize,
    hot_class: AtomicUsize,
    /// Hits served by the hot cache since it took this pool.
    hot_hits: AtomicU64,
}

/// Adds `delta` (wrapping) to a counter only the calling thread writes.
#[inline(always)]
fn bump(counter: &AtomicUsize, delta: usize) {
    // Relaxed: statistics; no other thread writes this counter.
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed);
}

/// A thread's hot cache: up to [`THREAD_CACHE`] returned stacks of one
/// pool and class (the last one whose stack this thread returned when the
/// hot cache was empty), in plain cells of a const thread-local, so that
/// the common "take a stack, run a fiber, give it back" loop costs a few
/// loads and stores. Its statistics (length and hits) are published to the
/// thread's counters for the pool with plain stores as they change.
///
/// Invariants: when `pool` is not null, this thread's [`ThreadStacks`]
/// holds a [`PoolCache`] for that pool (which keeps the pool's `Shared`
/// and `counters` alive, so neither pointer dangles and the address is
/// not reused); the cache owns `len` strong counts of `pool` (one per
/// stack, taken from the returned `PooledStack`s), and `blocks[..len]`
/// are stacks of class `class` that nobody uses.
struct Hot {
    pool: Cell<*const Shared>,
    class: Cell<usize>,
    counters: Cell<*const ThreadCounters>,
    len: Cell<usize>,
    /// Hits served since the cache took its pool.
    hits: Cell<u64>,
    blocks: [Cell<*mut u8>; THREAD_CACHE],
}

thread_local! {
    static HOT: Hot = const {
        Hot {
            pool: Cell::new(ptr::null()),
            class: Cell::new(0),
            counters: Cell::new(ptr::null()),
            len: Cell::new(0),
            hits: Cell::new(0),
            blocks: [const { Cell::new(ptr::null_mut()) }; THREAD_CACHE],
        }
    };
}

impl Hot {
    /// Moves the hot cache's hits into `counters.hits` (this thread's
    /// counters for the hot cache's pool), as it lets go of the pool.
    fn publish_hits(&self, counters: &ThreadCounters) {
        let h = self.hits.replace(0);
        // Relaxed: only this thread writes its counters. A `stats` call
        // between the two stores may miss these hits, never count them
        // twice.
        counters.hot_hits.store(0, Ordering::Relaxed);
        counters.hits.store(counters.hits.load(Ordering::Relaxed) + h, Ordering::Relaxed);
    }

    /// Gives the hot stacks back to their pool's shared lists and empties
    /// the cache, if it is for `pool` (any pool when `pool` is null).
    /// Called while the pool's [`PoolCache`] still exists.
    fn drain(&self, pool: *const Shared) {
        let p = self.pool.get();
        if p.is_null() || (!pool.is_null() && p != pool) {
            return;
        }
        // SAFETY: per the invariants, `p` is alive (its PoolCache holds it).
        let shared = unsafe { &*p };
        // SAFETY: as above, for the counters.
        let counters = unsafe { &*self.counters.get() };
        self.publish_hits(counters);
        let class = self.class.get();
        for i in 0..self.len.get() {
            // SAFETY: `blocks[..len]` are unused stacks of `class`.
            shared.put_shared(class, unsafe { NonNull::new_unchecked(self.blocks[i].get()) });
            // SAFETY: the cache owned one strong count per stack.
            drop(unsafe { Arc::from_raw(p) });
        }
        // Relaxed: statistics, written by this thread only.
        counters.hot_len.store(0, Ordering::Relaxed);
        self.len.set(0);
        self.pool.set(ptr::null());
        self.counters.set(ptr::null());
    }
}

/// One stack in a thread cache.
struct Entry {
    pool: Arc<Shared>,
    class: usize,
    block: NonNull<u8>,
}

/// A thread's cache for one pool.
struct PoolCache {
    pool: Arc<Shared>,
    counters: Arc<ThreadCounters>,
    stacks: Vec<Entry>,
}

impl PoolCache {
    /// Gives every stack to the pool's shared lists and folds this thread's
    /// counters into the pool's.
    fn give_back(self) {
        for e in self.stacks {
            e.pool.put_shared(e.class, e.block);
        }
        lock(&self.pool.threads).retain(|c| !Arc::ptr_eq(c, &self.counters));
        // Relaxed: statistics. A `stats` call may miss these hits between
        // the removal above and this add; it never counts them twice.
        self.pool.hits.fetch_add(self.counters.hits.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Counts pools closed so far in the process: a thread cache sweeps only
/// when it changed since its last look.
static CLOSED_POOLS: AtomicUsize = AtomicUsize::new(0);

/// A thread's caches of returned stacks, and the `CLOSED_POOLS` it last
/// swept at; gives the stacks back to their pools when the thread exits.
struct ThreadStacks(Vec<PoolCache>, usize);

impl ThreadStacks {
    /// Gives back the caches of closed pools, if any pool closed since the
    /// last sweep.
    #[inline(always)]
    fn sweep(&mut self) {
        // Relaxed: a late sighting only delays the sweep (and the pool's
        // memory, not its correctness).
        let closed = CLOSED_POOLS.load(Ordering::Relaxed);
        if closed != self.1 {
            self.1 = closed;
            self.sweep_now();
        }
    }

    #[cold]
    fn sweep_now(&mut self) {
        // Relaxed: a late sighting only delays the sweep.
        let mut i = 0;
        while i < self.0.len() {
            if self.0[i].pool.closed.load(Ordering::Relaxed) {
                let _ = HOT.try_with(|h| h.drain(Arc::as_ptr(&self.0[i].pool)));
                self.0.swap_remove(i).give_back();
            } else {
                i += 1;
            }
        }
    }

    /// This thread's cache for `pool`, made (and registered) if needed.
    #[inline(always)]
    fn cache_for(&mut self, pool: &Arc<Shared>) -> &mut PoolCache {
        let i = match self.0.iter().position(|c| Arc::ptr_eq(&c.pool, pool)) {
            Some(i) => i,
            None => self.add_cache(pool),
        };
        &mut self.0[i]
    }

    #[cold]
    fn add_cache(&mut self, pool: &Arc<Shared>) -> usize {
        {
            {
                let counters = Arc::new(ThreadCounters::default());
                lock(&pool.threads).push(Arc::clone(&counters));
                self.0.push(PoolCache {
                    pool: Arc::clone(pool),
                    counters,
                    stacks: Vec::with_capacity(THREAD_CACHE),
                });
                self.0.len() - 1
            }
        }
    }
}

impl Drop for ThreadStacks {
    fn drop(&mut self) {
        // The hot cache first, while its pool's PoolCache is still here.
        let _ = HOT.try_with(|h| h.drain(ptr::null()));
        for c in self.0.drain(..) {
            c.give_back();
        }
    }
}

thread_local! {
    static THREAD_STACKS: RefCell<ThreadStacks> = const { RefCell::new(ThreadStacks(Vec::new(), 0)) };
}

/// A pool of guarded fiber stacks (see the module docs). `Send + Sync`:
/// share it by reference or clone the handle.
///
/// ```
/// use fiberalloc::stack::StackPool;
///
/// let pool = StackPool::new(64 << 10);
/// let s = pool.get().unwrap();
/// let base = s.base();
/// assert!(s.usable_size() >= 64 << 10);
/// drop(s);
/// assert_eq!(pool.get().unwrap().base(), base); // the same stack again
/// assert_eq!(pool.stats().hits, 1);
/// ```
pub struct StackPool {
    shared: Arc<Shared>,
}

impl Clone for StackPool {
    fn clone(&self) -> StackPool {
        // Relaxed: as for `Arc`'s own count, an increment needs no order.
        self.shared.handles.fetch_add(1, Ordering::Relaxed);
        StackPool { shared: Arc::clone(&self.shared) }
    }
}

impl StackPool {
    /// A pool of stacks of at least `usable_size` bytes each (rounded up to
    /// a power of two pages, at least [`MIN_STACK_SIZE`](super::MIN_STACK_SIZE)),
    /// with default options. Maps nothing until the first `get`. A size that
    /// cannot be mapped makes every `get` fail with `InvalidInput`.
    pub fn new(usable_size: usize) -> StackPool {
        Self::with_options(usable_size, StackPoolOptions::default())
    }

    /// A pool with the given options; see [`StackPoolOptions`].
    pub fn with_options(usable_size: usize, options: StackPoolOptions) -> StackPool {
        let default_class = class_of(usable_size).unwrap_or(CLASSES);
        let shared = Shared {
            page: sys::page_size(),
            default_class,
            options,
            classes: std::array::from_fn(|_| Class { blocks: OnceLock::new(), warm: Mutex::new(Vec::new()) }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            cached: AtomicUsize::new(0),
            resident: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
            handles: AtomicUsize::new(1),
            closed: AtomicBool::new(false),
        };
        let pool = StackPool { shared: Arc::new(shared) };
        if options.prealloc != 0 && default_class < CLASSES {
            // Maps the preallocation now; an error shows again at `get`.
            if pool.shared.blocks(default_class).is_ok() {
                pool.shared.cached.fetch_add(options.prealloc, Ordering::Relaxed);
            }
        }
        pool
    }

    /// The usable size of the pool's stacks (the class its size rounds to).
    pub fn stack_size(&self) -> usize {
        self.shared.class_size(self.shared.default_class.min(CLASSES - 1))
    }

    /// A stack of the pool's size: from this thread's cache, else from the
    /// pool's warm list, else a new or cold one from its block pool.
    #[inline]
    pub fn get(&self) -> io::Result<PooledStack> {
        self.get_class(self.shared.default_class)
    }

    /// A stack of at least `usable_size` bytes, from that size's class.
    pub fn get_sized(&self, usable_size: usize) -> io::Result<PooledStack> {
        self.get_class(class_of(usable_size).unwrap_or(CLASSES))
    }

    #[inline]
    fn get_class(&self, class: usize) -> io::Result<PooledStack> {
        let hot = HOT.try_with(|h| {
            let n = h.len.get();
            if n == 0 || h.pool.get() != Arc::as_ptr(&self.shared) || h.class.get() != class {
                return None;
            }
            h.len.set(n - 1);
            // SAFETY: per the invariants of `Hot`: the cache owns a strong
            // count for each of its stacks, and its counters are alive.
            let (pool, counters) = unsafe { (Arc::from_raw(h.pool.get()), &*h.counters.get()) };
            // Relaxed: statistics, written by this thread only.
            counters.hot_len.store(n - 1, Ordering::Relaxed);
            let hits = h.hits.get() + 1;
            h.hits.set(hits);
            counters.hot_hits.store(hits, Ordering::Relaxed);
            // SAFETY: `blocks[n - 1]` is an unused stack of `class`: not null.
            Some(PooledStack::new(pool, class, unsafe { NonNull::new_unchecked(h.blocks[n - 1].get()) }))
        });
        match hot {
            Ok(Some(s)) => Ok(s),
            _ => self.get_slow(class),
        }
    }

    #[inline(never)]
    fn get_slow(&self, class: usize) -> io::Result<PooledStack> {
        if class >= CLASSES {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "fiber stack size out of range"));
        }
        let cached = THREAD_STACKS.try_with(|t| {
            let mut t = t.try_borrow_mut().ok()?;
            let c = t.0.iter_mut().find(|c| Arc::ptr_eq(&c.pool, &self.shared))?;
            let i = c.stacks.iter().rposition(|e| e.class == class)?;
            let e = c.stacks.swap_remove(i);
            // Relaxed: only this thread writes its counters.
            c.counters.hits.store(c.counters.hits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            bump(&c.counters.cached, usize::MAX);
            if self.shared.keeps_resident() {
                bump(&c.counters.resident, self.shared.class_size(class).wrapping_neg());
            }
            Some(e)
        });
        let (pool, block) = match cached {
            Ok(Some(e)) => (e.pool, e.block),
            _ => (Arc::clone(&self.shared), self.shared.get_shared(class)?),
        };
        Ok(PooledStack::new(pool, class, block))
    }

    /// A snapshot of the pool's counters. Cheap enough to sample now and
    /// then: it takes the pool's list of thread counters under its lock
    /// and sums them.
    pub fn stats(&self) -> StackPoolStats {
        let s = &self.shared;
        // Relaxed: statistics.
        let mut stats = StackPoolStats {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            cached: s.cached.load(Ordering::Relaxed),
            resident_bytes: s.resident.load(Ordering::Relaxed),
            mapped_bytes: s.classes.iter().filter_map(|c| c.blocks.get()).map(BlockPool::mapped_bytes).sum(),
        };
        for t in lock(&s.threads).iter() {
            let hot = t.hot_len.load(Ordering::Relaxed);
            let hot_bytes =
                if s.keeps_resident() { hot * s.class_size(t.hot_class.load(Ordering::Relaxed)) } else { 0 };
            stats.hits += t.hits.load(Ordering::Relaxed) + t.hot_hits.load(Ordering::Relaxed);
            stats.cached = stats.cached.wrapping_add(t.cached.load(Ordering::Relaxed)) + hot;
            stats.resident_bytes =
                stats.resident_bytes.wrapping_add(t.resident.load(Ordering::Relaxed)) + hot_bytes;
        }
        stats
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        // AcqRel: the last handle's drop sees the others' uses finished.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Relaxed: a hint for thread caches; a late sighting only
            // delays a sweep.
            self.shared.closed.store(true, Ordering::Relaxed);
            CLOSED_POOLS.fetch_add(1, Ordering::Relaxed);
            let _ = THREAD_STACKS.try_with(|t| {
                if let Ok(mut t) = t.try_borrow_mut() {
                    t.sweep();
                }
            });
        }
    }
}

impl core::fmt::Debug for StackPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StackPool")
            .field("stack_size", &self.stack_size())
            .field("stats", &self.stats())
            .finish()
    }
}

/// The class of a usable size: the smallest `k` with `page << k >= size`.
fn class_of(usable_size: usize) -> Option<usize> {
    let page = sys::page_size();
    let size = usable_size.max(super::MIN_STACK_SIZE);
    let pages = crate::align::round_up_checked(size, page)? / page;
    let k = pages.checked_next_power_of_two()?.trailing_zeros() as usize;
    (k < CLASSES).then_some(k)
}

/// A stack from a [`StackPool`]; goes back to its pool when dropped (even
/// if the pool handle is gone). Derefs to [`FiberStack`].
///
/// It is kept small (four words: corosensei moves the stack value into
/// and out of each coroutine, and a larger one measurably slows that): the
/// block and the size class are worked out from the stack's bounds.
pub struct PooledStack {
    stack: FiberStack,
    /// Taken (once) by `drop`.
    pool: ManuallyDrop<Arc<Shared>>,
}

impl PooledStack {
    #[inline(always)]
    fn new(pool: Arc<Shared>, class: usize, block: NonNull<u8>) -> PooledStack {
        let page = pool.page;
        let size = pool.class_size(class);
        // SAFETY: a block of the class's block pool: a guard page below it
        // (registered with the reporter by the block pool) and `size`
        // writable bytes above, ours until this value gives them back.
        let stack = unsafe {
            FiberStack::view(
                NonNull::new_unchecked(block.as_ptr().wrapping_sub(page)),
                NonNull::new_unchecked(block.as_ptr().wrapping_add(size)),
            )
        };
        PooledStack { stack, pool: ManuallyDrop::new(pool) }
    }
}

// Its drop works from any thread (through that thread's caches).
// SAFETY: a `PooledStack` owns its stack until dropped, like a `FiberStack`,
// and a strong count of its pool's `Send + Sync` shared state.
unsafe impl Send for PooledStack {}
// SAFETY: `&PooledStack` gives only `&FiberStack`, which is `Sync`.
unsafe impl Sync for PooledStack {}

impl core::ops::Deref for PooledStack {
    type Target = FiberStack;
    #[inline]
    fn deref(&self) -> &FiberStack {
        &self.stack
    }
}

impl Drop for PooledStack {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: taken once, here; `self.pool` is not used afterwards.
        let pool = unsafe { ManuallyDrop::take(&mut self.pool) };
        let (bottom, top) = (self.stack.limit().as_ptr() as usize, self.stack.base().as_ptr() as usize);
        // The usable size is `page << class`.
        let class = (((top - bottom) >> pool.page.trailing_zeros()) - 1).trailing_zeros() as usize;
        // SAFETY: the usable start, inside the stack's block: not null.
        let block = unsafe { NonNull::new_unchecked(self.stack.limit().as_ptr().wrapping_add(pool.page)) };
        pool.prepare(class, block);
        // The hot cache, if it is for this pool and class and has room: it
        // takes over the strong count.
        // Relaxed: a hint; a stack cached for a pool closed meanwhile goes
        // back at the next sweep.
        let closed = pool.closed.load(Ordering::Relaxed);
        let raw = Arc::into_raw(pool);
        let taken = HOT.try_with(|h| {
            let n = h.len.get();
            if h.pool.get() != raw || h.class.get() != class || n == THREAD_CACHE || closed {
                return false;
            }
            h.blocks[n].set(block.as_ptr());
            h.len.set(n + 1);
            // SAFETY: `pool` is not null, so its counters are alive.
            let counters = unsafe { &*h.counters.get() };
            // Relaxed: statistics, written by this thread only.
            counters.hot_len.store(n + 1, Ordering::Relaxed);
            true
        });
        if taken != Ok(true) {
            // SAFETY: `raw` came from `into_raw` just above and the hot
            // cache did not take it.
            Self::put_slow(unsafe { Arc::from_raw(raw) }, class, block);
        }
    }
}

impl PooledStack {
    /// Returns a stack through this thread's per-pool cache (making the
    /// hot cache this pool's when it is empty), or the shared lists.
    #[inline(never)]
    fn put_slow(pool: Arc<Shared>, class: usize, block: NonNull<u8>) {
        let mut pool = Some(pool);
        let _ = THREAD_STACKS.try_with(|t| {
            let Ok(mut t) = t.try_borrow_mut() else { return };
            t.sweep();
            let Some(p) = pool.take() else { return };
            // Relaxed: as in `drop`.
            if p.closed.load(Ordering::Relaxed) {
                pool = Some(p);
                return;
            }
            let c = t.cache_for(&p);
            let counters = &c.counters;
            let made_hot = HOT.try_with(|h| {
                if h.len.get() != 0 {
                    return false;
                }
                // The hot cache is empty: make it this pool's. The
                // PoolCache just found keeps the pool and counters alive;
                // the one it was for (if any) is alive too (invariant).
                let old = h.counters.get();
                if !old.is_null() {
                    // SAFETY: as just said.
                    h.publish_hits(unsafe { &*old });
                }
                h.pool.set(Arc::as_ptr(&p));
                h.class.set(class);
                h.counters.set(Arc::as_ptr(counters));
                h.blocks[0].set(block.as_ptr());
                h.len.set(1);
                // Relaxed: statistics, written by this thread only.
                counters.hot_class.store(class, Ordering::Relaxed);
                counters.hot_len.store(1, Ordering::Relaxed);
                true
            });
            if made_hot == Ok(true) {
                // The hot cache owns this strong count now.
                let _ = Arc::into_raw(p);
            } else if c.stacks.len() < THREAD_CACHE {
                bump(&c.counters.cached, 1);
                if p.keeps_resident() {
                    bump(&c.counters.resident, p.class_size(class));
                }
                c.stacks.push(Entry { pool: p, class, block });
            } else {
                pool = Some(p);
            }
        });
        if let Some(p) = pool {
            p.put_shared(class, block);
        }
    }
}

impl core::fmt::Debug for PooledStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.stack.fmt(f)
    }
}

// SAFETY: as for `FiberStack`; the memory stays the pool's and unused by
// anyone else until this value is dropped, which is when it goes back.
unsafe impl corosensei::stack::Stack for PooledStack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::Stack::base(&self.stack)
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::Stack::limit(&self.stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path a stack takes: the hot cache, the per-pool thread cache,
    /// the shared warm list, another thread, a pool closed while its stacks
    /// sit in caches. Under Miri this checks the strong counts the caches
    /// keep by hand (a count off by one is a leak or a use after free).
    #[test]
    fn stacks_go_round_every_cache() {
        let pool = StackPool::new(4096);
        let size = pool.stack_size();
        let stacks: Vec<PooledStack> = (0..40).map(|_| pool.get().unwrap()).collect();
        let mut bases: Vec<usize> = stacks.iter().map(|s| s.base().as_ptr() as usize).collect();
        for s in &stacks {
            // SAFETY: the stack's highest usable byte.
            unsafe { s.base().as_ptr().sub(1).write(7) };
        }
        drop(stacks);
        let s = pool.stats();
        assert_eq!((s.cached, s.resident_bytes, s.misses), (40, 40 * size, 40), "{s:?}");
        // 16 hot, 16 in the thread cache, 8 shared: all handed out again.
        let again: Vec<PooledStack> = (0..40).map(|_| pool.get().unwrap()).collect();
        let mut again_bases: Vec<usize> = again.iter().map(|s| s.base().as_ptr() as usize).collect();
        bases.sort_unstable();
        again_bases.sort_unstable();
        assert_eq!(bases, again_bases);
        assert_eq!(pool.stats().hits, 40);
        // Returned on another thread, whose caches give them back at exit.
        std::thread::spawn(move || drop(again)).join().unwrap();
        assert_eq!(pool.stats().cached, 40);
        // A stack that outlives every handle, and a closed pool's stacks
        // in this thread's caches.
        let kept = pool.get().unwrap();
        let clone = pool.clone();
        drop(pool);
        drop(clone.get().unwrap());
        drop(clone);
        assert_eq!(kept.usable_size(), size);
        drop(kept);
    }
}
