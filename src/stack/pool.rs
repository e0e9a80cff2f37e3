//! [`StackPool`]: guarded stacks recycled by size class.
//!
//! Each size class (a power of two pages) keeps its stacks in a
//! [`BlockPool`] with a guard page below every block, so stacks are carved
//! several to a mapping and a returned stack keeps its guard. In front of
//! that:
//!
//! - a per-thread cache of up to [`THREAD_CACHE`] returned stacks (across
//!   pools and classes): `get` and the drop of a [`PooledStack`] touch only
//!   thread-local data there, with no lock and no atomic read-modify-write
//!   except the statistics counters;
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

use super::FiberStack;
use crate::pool::{BlockPool, BlockPoolOptions};
use crate::sync::Mutex;
use crate::sys;
use std::cell::RefCell;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Returned stacks a thread keeps for itself, across all pools.
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
    default_class: usize,
    options: StackPoolOptions,
    classes: [Class; CLASSES],
    hits: AtomicU64,
    misses: AtomicU64,
    cached: AtomicUsize,
    resident: AtomicUsize,
    /// `StackPool` handles alive (stacks not counted).
    handles: AtomicUsize,
    /// Set when the last `StackPool` handle is dropped: thread caches let
    /// go of this pool's stacks when they see it.
    closed: AtomicBool,
}

impl Shared {
    fn class_size(class: usize) -> usize {
        sys::page_size() << class
    }

    fn blocks(&self, class: usize) -> io::Result<&BlockPool> {
        let c = &self.classes[class];
        if let Some(b) = c.blocks.get() {
            return Ok(b);
        }
        let prealloc = if class == self.default_class { self.options.prealloc } else { 0 };
        let options = BlockPoolOptions { guard_pages: true, prealloc, blocks_per_chunk: 0 };
        let made = BlockPool::build(Self::class_size(class), options, true)?;
        // A racing thread may have set it first: then ours is dropped.
        Ok(c.blocks.get_or_init(|| made))
    }

    /// Applies the pool's return policy to a stack's usable memory.
    fn prepare(&self, class: usize, block: NonNull<u8>) -> bool {
        let size = Self::class_size(class);
        match self.options.on_return {
            OnReturn::Keep => true,
            OnReturn::Zero => {
                // SAFETY: the block's usable bytes are ours (the stack was
                // returned) and writable.
                unsafe { block.as_ptr().write_bytes(0, size) };
                true
            }
            // SAFETY: as above; nothing relies on the contents any more.
            OnReturn::Release => unsafe { sys::decommit(block, size) }.is_err(),
        }
    }

    /// Takes a returned stack (already counted in `cached`, and in
    /// `resident` when `resident`) into the shared lists: warm while the
    /// resident bytes are within the cap, else released and cold.
    fn put_shared(&self, class: usize, block: NonNull<u8>, resident: bool) {
        let size = Self::class_size(class);
        // Relaxed: a budget and statistics, not a synchronisation point
        // (the lists have their own locks).
        if resident {
            if self.resident.load(Ordering::Relaxed) <= self.options.max_cached_bytes {
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
            self.resident.fetch_sub(Self::class_size(class), Ordering::Relaxed);
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

/// One stack in a thread cache.
struct Entry {
    pool: Arc<Shared>,
    class: usize,
    block: NonNull<u8>,
    resident: bool,
}

/// A thread's cache of returned stacks; gives them back to their pools
/// when the thread exits.
struct ThreadStacks(Vec<Entry>);

impl ThreadStacks {
    /// Drops the entries of closed pools.
    fn sweep(&mut self) {
        // Relaxed: a late sighting only delays the sweep.
        if self.0.iter().any(|e| e.pool.closed.load(Ordering::Relaxed)) {
            let mut i = 0;
            while i < self.0.len() {
                if self.0[i].pool.closed.load(Ordering::Relaxed) {
                    let e = self.0.swap_remove(i);
                    e.pool.put_shared(e.class, e.block, e.resident);
                } else {
                    i += 1;
                }
            }
        }
    }
}

impl Drop for ThreadStacks {
    fn drop(&mut self) {
        for e in self.0.drain(..) {
            e.pool.put_shared(e.class, e.block, e.resident);
        }
    }
}

thread_local! {
    static THREAD_STACKS: RefCell<ThreadStacks> = const { RefCell::new(ThreadStacks(Vec::new())) };
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
            default_class,
            options,
            classes: std::array::from_fn(|_| Class { blocks: OnceLock::new(), warm: Mutex::new(Vec::new()) }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            cached: AtomicUsize::new(0),
            resident: AtomicUsize::new(0),
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
        Shared::class_size(self.shared.default_class.min(CLASSES - 1))
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
        if class >= CLASSES {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "fiber stack size out of range"));
        }
        let cached = THREAD_STACKS.try_with(|t| {
            let mut t = t.try_borrow_mut().ok()?;
            let i = t.0.iter().rposition(|e| e.class == class && Arc::ptr_eq(&e.pool, &self.shared))?;
            Some(t.0.swap_remove(i))
        });
        let (pool, block) = match cached {
            Ok(Some(e)) => {
                // Relaxed: statistics.
                if e.resident {
                    self.shared.resident.fetch_sub(Shared::class_size(class), Ordering::Relaxed);
                }
                self.shared.cached.fetch_sub(1, Ordering::Relaxed);
                self.shared.hits.fetch_add(1, Ordering::Relaxed);
                (e.pool, e.block)
            }
            _ => (Arc::clone(&self.shared), self.shared.get_shared(class)?),
        };
        Ok(PooledStack::new(pool, class, block))
    }

    /// A snapshot of the pool's counters.
    pub fn stats(&self) -> StackPoolStats {
        let s = &self.shared;
        StackPoolStats {
            hits: s.hits.load(Ordering::Relaxed),
            misses: s.misses.load(Ordering::Relaxed),
            cached: s.cached.load(Ordering::Relaxed),
            resident_bytes: s.resident.load(Ordering::Relaxed),
            mapped_bytes: s.classes.iter().filter_map(|c| c.blocks.get()).map(BlockPool::mapped_bytes).sum(),
        }
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        // AcqRel: the last handle's drop sees the others' uses finished.
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Relaxed: a hint for thread caches; a late sighting only
            // delays a sweep.
            self.shared.closed.store(true, Ordering::Relaxed);
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
    let pages = size.checked_add(page - 1)? / page;
    let k = pages.checked_next_power_of_two()?.trailing_zeros() as usize;
    (k < CLASSES).then_some(k)
}

/// A stack from a [`StackPool`]; goes back to its pool when dropped (even
/// if the pool handle is gone). Derefs to [`FiberStack`].
pub struct PooledStack {
    stack: FiberStack,
    pool: Option<Arc<Shared>>,
    class: usize,
}

impl PooledStack {
    fn new(pool: Arc<Shared>, class: usize, block: NonNull<u8>) -> PooledStack {
        let page = sys::page_size();
        let size = Shared::class_size(class);
        // SAFETY: a block of the class's block pool: a guard page below it
        // (registered with the reporter by the block pool) and `size`
        // writable bytes above, ours until this value gives them back.
        let stack = unsafe {
            FiberStack::view(
                NonNull::new_unchecked(block.as_ptr().wrapping_sub(page)),
                page,
                NonNull::new_unchecked(block.as_ptr().wrapping_add(size)),
            )
        };
        PooledStack { stack, pool: Some(pool), class }
    }
}

impl core::ops::Deref for PooledStack {
    type Target = FiberStack;
    #[inline]
    fn deref(&self) -> &FiberStack {
        &self.stack
    }
}

impl Drop for PooledStack {
    fn drop(&mut self) {
        let Some(pool) = self.pool.take() else { return };
        let page = self.stack.guard_size();
        // SAFETY: the usable start of the stack, inside its block: not null.
        let block = unsafe { NonNull::new_unchecked(self.stack.limit().as_ptr().wrapping_add(page)) };
        let resident = pool.prepare(self.class, block);
        // Relaxed: statistics.
        pool.cached.fetch_add(1, Ordering::Relaxed);
        if resident {
            pool.resident.fetch_add(Shared::class_size(self.class), Ordering::Relaxed);
        }
        let mut entry = Some(Entry { pool, class: self.class, block, resident });
        let _ = THREAD_STACKS.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                t.sweep();
                let e = entry.take().expect("taken once");
                if t.0.len() < THREAD_CACHE && !e.pool.closed.load(Ordering::Relaxed) {
                    t.0.push(e);
                } else {
                    entry = Some(e);
                }
            }
        });
        if let Some(e) = entry {
            e.pool.put_shared(e.class, e.block, e.resident);
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
#[cfg(feature = "corosensei")]
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
