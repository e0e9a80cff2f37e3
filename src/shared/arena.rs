//! [`SharedArena`]: two lanes of shared chunks, the refill lock, leases'
//! count and resets. The walks over its chunks, the drop-time sweep and the
//! checks are in `arena/check.rs`.

use crate::align;
use crate::chunk::{self, ChunkHeader, ChunkRequest, HEADER_SIZE};
use crate::debug::{self, Event};
use crate::policy::{Fast, Policy};
use crate::sync::{spin_wait, AtomicPtr, AtomicUsize, Mutex, Ordering};
use crate::AllocError;
use core::alloc::Layout;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::chunk::{CursorLine, SharedChunk, SHARED_HEADER};
use super::lease::sentinel_cursor;
use super::lease::Lease;

mod check;

/// One list of chunks with its current chunk: the arena has a lane for
/// direct allocations and one for leases.
pub(super) struct Lane {
    current: AtomicPtr<SharedChunk>,
}

/// What the refill lock protects.
struct Refill {
    /// Oversized chunks (one block each), newest first, per lane (0:
    /// direct, 1: leases), so that `try_reset` frees the lease lane's.
    big: [*mut SharedChunk; 2],
    /// Bytes mapped, headers included.
    reserved: usize,
    chunks: usize,
    byte_limit: usize,
}

// SAFETY: the raw pointer names chunks owned by the arena; it is only used
// under the lock.
unsafe impl Send for Refill {}

/// The lease count's "a reset is running" mark.
const RESETTING: usize = usize::MAX;

/// A bump arena that any number of threads allocate from at once, with one
/// atomic compare-exchange per allocation. `Send + Sync`.
///
/// ```
/// use fiberalloc::SharedArena;
/// let arena: SharedArena = SharedArena::new();
/// std::thread::scope(|s| {
///     for t in 0..4u64 {
///         let arena = &arena;
///         s.spawn(move || {
///             let x = arena.alloc(t);
///             assert_eq!(*x, t);
///         });
///     }
/// });
/// ```
pub struct SharedArena<P: Policy = Fast> {
    direct: Lane,
    pub(super) leased: Lane,
    pub(super) leases: AtomicUsize,
    refill: Mutex<Refill>,
    _policy: PhantomData<P>,
}

// SAFETY: all shared state is atomic or behind the mutex; chunks are owned
// by the arena and handed out as disjoint blocks.
unsafe impl<P: Policy> Sync for SharedArena<P> {}
// SAFETY: the arena owns its chunks outright.
unsafe impl<P: Policy> Send for SharedArena<P> {}

#[cfg(not(fiberalloc_loom))]
mod sentinel {
    use super::*;
    /// The static empty chunk every lane starts on. It never has room
    /// (`end` is 0); a small request's `fetch_add` may move its cursor,
    /// which starts half-way up the address range so that it can never
    /// wrap round into "room".
    pub(super) struct Empty(pub(super) SharedChunk);
    // SAFETY: its only mutable state is the atomic cursor; `prev` is never
    // written (every writer checks for a backing chunk first).
    unsafe impl Sync for Empty {}
    pub(super) static EMPTY: Empty = Empty(SharedChunk {
        cursor: CursorLine(AtomicUsize::new(usize::MAX / 2)),
        end: 0,
        start: NonNull::dangling(),
        chunk: None,
        prev: Cell::new(core::ptr::null_mut()),
    });
}

impl<P: Policy> Default for SharedArena<P> {
    fn default() -> Self {
        Self::with_policy(P::default())
    }
}

impl SharedArena {
    /// A shared arena under the default policy ([`Fast`]) that maps nothing
    /// until its first allocation; `SharedArena::new()` needs no type
    /// annotation. For another policy: `SharedArena::with_policy(Safe)`.
    #[cfg(not(fiberalloc_loom))]
    pub const fn new() -> Self {
        Self::with_policy(Fast)
    }

    /// A shared arena under the default policy (loom build: not `const`).
    #[cfg(fiberalloc_loom)]
    pub fn new() -> Self {
        Self::with_policy(Fast)
    }

    /// A shared arena under [`Fast`] whose first direct chunk holds at
    /// least `bytes` bytes. Panics (through `handle_alloc_error`) if it
    /// cannot be mapped.
    pub fn with_capacity(bytes: usize) -> Self {
        Self::with_capacity_and_policy(bytes, Fast)
    }

    /// [`with_capacity`](Self::with_capacity), or `Err(AllocError)`.
    pub fn try_with_capacity(bytes: usize) -> Result<Self, AllocError> {
        Self::try_with_capacity_and_policy(bytes, Fast)
    }
}

impl<P: Policy> SharedArena<P> {
    /// A shared arena under policy `P` that maps nothing until its first
    /// allocation.
    #[cfg(not(fiberalloc_loom))]
    pub const fn with_policy(_policy: P) -> Self {
        let empty = &sentinel::EMPTY.0 as *const SharedChunk as *mut SharedChunk;
        SharedArena {
            direct: Lane { current: AtomicPtr::new(empty) },
            leased: Lane { current: AtomicPtr::new(empty) },
            leases: AtomicUsize::new(0),
            refill: Mutex::new(Refill {
                big: [core::ptr::null_mut(); 2],
                reserved: 0,
                chunks: 0,
                byte_limit: usize::MAX,
            }),
            _policy: PhantomData,
        }
    }

    /// A shared arena under policy `P` (loom build: not `const`).
    #[cfg(fiberalloc_loom)]
    pub fn with_policy(_policy: P) -> Self {
        // One sentinel per lane: each lane's drop frees its own.
        let empty = || {
            Box::into_raw(Box::new(SharedChunk {
                cursor: CursorLine(AtomicUsize::new(usize::MAX / 2)),
                end: 0,
                start: NonNull::dangling(),
                chunk: None,
                prev: Cell::new(core::ptr::null_mut()),
            }))
        };
        SharedArena {
            direct: Lane { current: AtomicPtr::new(empty()) },
            leased: Lane { current: AtomicPtr::new(empty()) },
            leases: AtomicUsize::new(0),
            refill: Mutex::new(Refill {
                big: [core::ptr::null_mut(); 2],
                reserved: 0,
                chunks: 0,
                byte_limit: usize::MAX,
            }),
            _policy: PhantomData,
        }
    }

    /// A shared arena under policy `P` whose first direct chunk holds at
    /// least `bytes` bytes. Panics (through `handle_alloc_error`) if it
    /// cannot be mapped.
    pub fn with_capacity_and_policy(bytes: usize, policy: P) -> Self {
        match Self::try_with_capacity_and_policy(bytes, policy) {
            Ok(a) => a,
            Err(AllocError) => {
                crate::init::oom(Layout::from_size_align(bytes, 1).unwrap_or(Layout::new::<u8>()))
            }
        }
    }

    /// [`with_capacity_and_policy`](Self::with_capacity_and_policy), or
    /// `Err(AllocError)` if the chunk cannot be mapped or represented.
    pub fn try_with_capacity_and_policy(bytes: usize, policy: P) -> Result<Self, AllocError> {
        let arena = Self::with_policy(policy);
        if bytes > 0 {
            let mut r = arena.lock();
            let c = arena.install(&mut r, &arena.direct, bytes, 1, false, 0)?;
            // Nothing was placed: rewind the block `install` made.
            // SAFETY: `c` was just installed and no other thread can see
            // the arena yet.
            let c = unsafe { &*c };
            c.cursor.store(c.start.addr().get(), Ordering::Relaxed);
        }
        Ok(arena)
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Refill> {
        // A panic cannot happen while the lock is held (no allocation, no
        // user code), so poisoning is impossible; take the data regardless.
        self.refill.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caps the bytes this arena may map; `None` removes the cap.
    pub fn set_allocation_limit(&self, limit: Option<usize>) {
        self.lock().byte_limit = limit.unwrap_or(usize::MAX);
    }

    /// Moves `value` into the arena. Panics (through `handle_alloc_error`)
    /// when memory runs out.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc<T>(&self, value: T) -> &mut T {
        // SAFETY: a fresh block for `T`, handed out once, valid while
        // `&self` lives (reset needs `&mut`).
        unsafe { crate::init::write_value(self.try_alloc_layout(Layout::new::<T>()), value) }
    }

    /// The `Allocator` impls' allocation: under `TRACK_LEAKS` the block is
    /// recorded for [`leaks`](Self::leaks).
    #[inline(always)]
    pub(crate) fn alloc_tracked(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if P::TRACK_LEAKS {
            let p = self.alloc_lane(&self.direct, layout, debug::TRACKED);
            if let Ok(p) = p {
                self.log_alloc(p, layout);
            }
            p
        } else {
            self.try_alloc_layout(layout)
        }
    }

    /// A block for `layout`, or `Err(AllocError)`. One atomic
    /// read-modify-write on the fast path (`fetch_add` for small requests,
    /// else a compare-exchange loop).
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // Acquire: pairs with the Release store that installed the chunk.
        // SAFETY: `current` always points at a live chunk header (or the
        // static sentinel); chunks live until `&mut self` frees them.
        let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
        if layout.size() != 0 {
            if let Some(p) = c.bump::<P>(layout.size(), layout.align(), 0) {
                self.log_alloc(p, layout);
                return Ok(p);
            }
        }
        let p = self.alloc_slow(&self.direct, layout, 0);
        if let Ok(p) = p {
            self.log_alloc(p, layout);
        }
        p
    }

    /// The arena's address, as the log names it.
    fn id(&self) -> usize {
        (self as *const Self).addr()
    }

    /// Tells the log hook of a block handed out (policies with `LOG_EVENTS`).
    #[inline(always)]
    pub(super) fn log_alloc(&self, block: NonNull<u8>, layout: Layout) {
        if P::LOG_EVENTS {
            let (addr, size, align) = (block.addr().get(), layout.size(), layout.align());
            debug::log(Event::Alloc { arena: self.id(), addr, size, align });
        }
    }

    /// Tells the log hook of a chunk taken (`mapped`) or given back.
    fn log_chunk(&self, backing: NonNull<ChunkHeader>, mapped: bool) {
        if P::LOG_EVENTS {
            let (arena, chunk, size) = (self.id(), backing.addr().get(), ChunkHeader::size(backing));
            debug::log(if mapped {
                Event::ChunkMap { arena, chunk, size }
            } else {
                Event::ChunkUnmap { arena, chunk, size }
            });
        }
    }

    /// Copies `src` into the arena.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        // SAFETY: a fresh block for `src`'s layout, valid while `&self` lives.
        unsafe { crate::init::copy_slice(self.try_alloc_layout(Layout::for_value(src)), src) }
    }

    /// Copies `s` into the arena.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: copied from a `str`.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }

    /// The slow path: zero-sized requests, and refills under the lock.
    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, lane: &Lane, layout: Layout, flags: u64) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align().max(P::MIN_ALIGN));
        if size == 0 {
            // SAFETY: `align` is a non-zero power of two.
            return Ok(unsafe { NonNull::new_unchecked(core::ptr::without_provenance_mut(align)) });
        }
        let mut r = self.lock();
        // Another thread may have installed a chunk while we waited.
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*lane.current.load(Ordering::Acquire) };
        if let Some(p) = c.bump::<P>(size, align, flags) {
            return Ok(p);
        }
        let c = self.install(&mut r, lane, size, align, true, flags)?;
        // SAFETY: `install` placed the block at the chunk's start (rounded
        // up to `align`, past its header under canaries); it is this
        // thread's.
        let c = unsafe { &*c };
        let start = c.start.addr().get();
        let at = if P::CANARIES {
            debug::place_with_header(start, size, align).0
        } else {
            align::round_up(start, align)
        };
        // SAFETY: inside the chunk's data, below its cursor.
        Ok(unsafe { c.start.add(at - start) })
    }

    /// Maps (or takes from the cache) a chunk holding `size` bytes at
    /// `align`, places that block at its start, and either publishes it as
    /// the lane's current chunk or, if it is oversized, links it on the
    /// big list. Called with the lock held.
    fn install(
        &self,
        r: &mut Refill,
        lane: &Lane,
        size: usize,
        align: usize,
        allow_oversized: bool,
        flags: u64,
    ) -> Result<*mut SharedChunk, AllocError> {
        let header = HEADER_SIZE + SHARED_HEADER;
        let page = crate::sys::page_size();
        // Under canaries the block needs room for its header and canary
        // (no overflow: a Layout's size and alignment, or a capacity that
        // `chunk_size_for` then refuses).
        let span = if P::CANARIES { size.saturating_add(debug::worst_span(0, align)) } else { size };
        let need = align::chunk_size_for(span, align, header, page, P::MIN_CHUNK_SIZE).ok_or(AllocError)?;
        let old = lane.current.load(Ordering::Relaxed);
        // SAFETY: as in `try_alloc_layout`.
        let old_size = unsafe { &*old }.chunk.map_or(0, ChunkHeader::size);
        let next = old_size.saturating_mul(2).clamp(P::MIN_CHUNK_SIZE, isize::MAX as usize / 2 + 1);
        let oversized = allow_oversized && need > next;
        let map_size = need.max(if oversized { need } else { next });
        let backing = if r.byte_limit == usize::MAX {
            chunk::acquire(ChunkRequest { min_size: map_size, map_size, guards: P::GUARD_PAGES })
        } else {
            // Under a cap, map exactly what this request needs (a cached
            // chunk could be larger).
            if r.reserved.saturating_add(need) > r.byte_limit {
                return Err(AllocError);
            }
            chunk::map(need, P::GUARD_PAGES).ok()
        };
        let backing = backing.ok_or(AllocError)?;
        let data = ChunkHeader::data_start(backing);
        // SAFETY: the shared header fits at the start of the data area (the
        // chunk holds at least a page), which is 64-byte aligned.
        let start = unsafe { data.add(SHARED_HEADER) };
        let end = ChunkHeader::data_end(backing);
        let first = if P::CANARIES {
            let (at, next) = debug::place_with_header(start.addr().get(), size, align);
            (next <= end).then_some(align::Bump { start: at, end: next })
        } else {
            align::bump_up(start.addr().get(), end, size, align, P::MIN_ALIGN)
        };
        let Some(first) = first else {
            chunk::give_back(backing);
            return Err(AllocError);
        };
        if P::CANARIES {
            let pad = first.start - debug::HEADER - start.addr().get();
            // SAFETY: the first block's span lies in the fresh chunk's data
            // (checked above), which no other thread can see yet.
            unsafe { debug::write_block(start, pad, size, flags) };
        }
        let sc = data.cast::<SharedChunk>().as_ptr();
        // SAFETY: the data area is ours, writable and aligned for the header.
        unsafe {
            sc.write(SharedChunk {
                cursor: CursorLine(AtomicUsize::new(first.end)),
                end,
                start,
                chunk: Some(backing),
                prev: Cell::new(core::ptr::null_mut()),
            })
        };
        r.reserved += ChunkHeader::size(backing);
        self.log_chunk(backing, true);
        r.chunks += 1;
        // SAFETY: just written.
        let new = unsafe { &*sc };
        if oversized {
            let id = self.lane_id(lane);
            new.prev.set(r.big[id]);
            r.big[id] = sc;
        } else {
            // SAFETY: `old` is live or the sentinel.
            let is_sentinel = unsafe { &*old }.chunk.is_none();
            new.prev.set(if is_sentinel { core::ptr::null_mut() } else { old });
            // Release: publishes the header (and the block placed in it).
            lane.current.store(sc, Ordering::Release);
        }
        Ok(sc)
    }

    /// Gives a block back; reclaims it if it ends at the current cursor
    /// and no other thread allocated since.
    ///
    /// # Safety
    /// `ptr` was handed out by this arena (directly) for `layout` and is
    /// not used again.
    pub(crate) unsafe fn dealloc_raw(&self, ptr: NonNull<u8>, layout: Layout) {
        if P::LOG_EVENTS {
            let (addr, size) = (ptr.addr().get(), layout.size());
            debug::log(Event::Dealloc { arena: self.id(), addr, size });
        }
        if P::CANARIES {
            // SAFETY: forwarded from the caller.
            return unsafe { self.dealloc_checked(ptr, layout) };
        }
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
        let round = align::round_up(layout.size(), P::MIN_ALIGN);
        let addr = ptr.addr().get();
        c.move_cursor(addr.wrapping_add(round), addr);
    }

    /// Grows or shrinks a block: in place when it ends at the current
    /// cursor and the chunk has room, else by copy.
    ///
    /// # Safety
    /// As for [`dealloc_raw`](Self::dealloc_raw), for `old`.
    pub(crate) unsafe fn realloc_raw(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        if P::CANARIES {
            // SAFETY: forwarded from the caller.
            return unsafe { self.realloc_checked(ptr, old, new) };
        }
        let addr = ptr.addr().get();
        if align::is_aligned(addr, new.align()) {
            // SAFETY: as in `try_alloc_layout`.
            let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
            let round = |s: usize| align::round_up(s, P::MIN_ALIGN);
            if c.move_cursor(addr.wrapping_add(round(old.size())), addr + round(new.size())) {
                return Ok(ptr);
            }
            if new.size() <= old.size() {
                return Ok(ptr);
            }
        }
        let fresh = self.try_alloc_layout(new)?;
        // SAFETY: `fresh` is a new block, disjoint from the old one.
        unsafe { core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr(), old.size().min(new.size())) };
        Ok(fresh)
    }

    /// `ptr`, a live direct block, with the provenance of its chunk: the
    /// current one, else found under the lock.
    fn in_chunk(&self, ptr: NonNull<u8>) -> Option<NonNull<u8>> {
        let addr = ptr.addr().get();
        let inside = |p: *mut SharedChunk| {
            let mut p = p;
            while !p.is_null() {
                // SAFETY: chunks of the arena are live while it is.
                let c = unsafe { &*p };
                if c.chunk.is_some() && c.start.addr().get() <= addr && addr < c.end {
                    return Some(c.block_at(addr));
                }
                p = c.prev.get();
            }
            None
        };
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
        if c.chunk.is_some() && c.start.addr().get() <= addr && addr < c.end {
            return Some(c.block_at(addr));
        }
        // The lock keeps `prev` links from changing under the walk.
        let r = self.lock();
        inside(self.direct.current.load(Ordering::Acquire)).or_else(|| inside(r.big[0]))
    }

    /// [`dealloc_raw`](Self::dealloc_raw) under canaries: the last block
    /// gives its header and canary back too; any other is marked freed.
    ///
    /// # Safety
    /// As for `dealloc_raw`.
    #[inline(never)]
    unsafe fn dealloc_checked(&self, ptr: NonNull<u8>, layout: Layout) {
        let Some(p) = self.in_chunk(ptr) else { return };
        let size = layout.size();
        let round = align::round_up(size, P::MIN_ALIGN);
        // SAFETY: a live block of this arena (caller): its header is below
        // it, in its chunk, and ours until the block is given up.
        let from = ptr.addr().get() - debug::HEADER - unsafe { debug::pad_of(p) };
        // Poisoned (and marked freed) first: once the cursor moves back,
        // another thread may claim the bytes.
        // SAFETY: the block and its header are ours (caller).
        unsafe {
            debug::set_flag(p, debug::FREED);
            debug::poison_freed(p, size, P::POISON, P::POISON_BYTE);
        }
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
        c.move_cursor(ptr.addr().get() + round + debug::TAIL, from);
    }

    /// [`realloc_raw`](Self::realloc_raw) under canaries.
    ///
    /// # Safety
    /// As for `realloc_raw`.
    #[inline(never)]
    unsafe fn realloc_checked(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let addr = ptr.addr().get();
        let Some(p) = self.in_chunk(ptr) else {
            // Only a zero-sized block (a dangling pointer, no header) lies
            // in no chunk: nothing to keep or give back.
            return if old.size() == 0 { self.alloc_tracked(new) } else { Err(AllocError) };
        };
        if align::is_aligned(addr, new.align()) {
            let round = |s: usize| align::round_up(s, P::MIN_ALIGN);
            // SAFETY: as in `try_alloc_layout`.
            let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
            let (old_end, new_end) =
                (addr + round(old.size()) + debug::TAIL, addr + round(new.size()) + debug::TAIL);
            if c.move_cursor(old_end, new_end) {
                // SAFETY: the block now spans `addr..new_end`, ours.
                unsafe { debug::resize_block(p, old.size(), new.size(), false) };
                return Ok(ptr);
            }
            if new.size() <= old.size() {
                // SAFETY: the block keeps its span; the new canary and pad
                // words lie inside it.
                unsafe { debug::resize_block(p, old.size(), new.size(), true) };
                return Ok(ptr);
            }
        }
        let fresh = self.alloc_tracked(new)?;
        // SAFETY: `fresh` is a new block, disjoint from the old one; the old
        // one is given up (marked freed, poisoned).
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr(), old.size().min(new.size()));
            self.dealloc_raw(ptr, old);
        }
        Ok(fresh)
    }

    /// A lease: a per-thread handle whose allocations bump without atomics
    /// inside blocks claimed from the arena, and are bounded by the lease's
    /// lifetime. Waits (briefly) while a [`try_reset`](Self::try_reset)
    /// runs.
    pub fn lease(&self) -> Lease<'_, P> {
        loop {
            // Relaxed: only a guess for the exchange below.
            let n = self.leases.load(Ordering::Relaxed);
            if n == RESETTING {
                spin_wait();
                continue;
            }
            // Acquire: pairs with `try_reset`'s Release store of 0, so this
            // lease sees the rewound lane. Relaxed on failure: retry.
            if self.leases.compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                break;
            }
        }
        Lease {
            arena: self,
            cursor: Cell::new(sentinel_cursor()),
            limit: Cell::new(0),
            _not_sync: PhantomData,
        }
    }

    /// Live leases.
    pub fn lease_count(&self) -> usize {
        match self.leases.load(Ordering::Relaxed) {
            RESETTING => 0,
            n => n,
        }
    }

    /// Rewinds the lease lane if no lease is live, and says whether it did.
    /// Never blocks a lease holder, never frees memory a live lease can
    /// reach; direct allocations are not touched (they are freed by
    /// [`reset`](Self::reset)).
    pub fn try_reset(&self) -> bool {
        self.try_reset_with(|| ())
    }

    /// [`try_reset`](Self::try_reset), running `during` while the lease
    /// lane is held exclusively (after the rewind, before any new lease can
    /// start): the loom model stands for the lane's reuse with it.
    #[doc(hidden)]
    pub fn try_reset_with(&self, during: impl FnOnce()) -> bool {
        // Acquire: every lease's drop (Release) happens before the rewind.
        // Relaxed on failure: a lease is live (or another reset runs).
        if self.leases.compare_exchange(0, RESETTING, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        if P::LOG_EVENTS {
            debug::log(Event::Reset { arena: self.id() });
        }
        {
            let mut r = self.lock();
            self.give_up(&r, [false, true], "the check at try_reset", false);
            // SAFETY: no lease is live and none can start, so nothing refers
            // to the lease lane's blocks.
            unsafe { self.rewind_lane(&mut r, &self.leased) };
        }
        during();
        // Release: the rewind happens before any later lease's accesses.
        self.leases.store(0, Ordering::Release);
        true
    }

    /// Keeps the lane's newest chunk, rewound, and gives the others back.
    ///
    /// # Safety
    /// Nothing refers to the lane's blocks any more.
    unsafe fn rewind_lane(&self, r: &mut Refill, lane: &Lane) {
        let id = self.lane_id(lane);
        let big = core::mem::replace(&mut r.big[id], core::ptr::null_mut());
        // SAFETY: the lane's oversized chunks are unreachable (caller).
        unsafe { self.release_list(r, big) };
        let current = lane.current.load(Ordering::Acquire);
        // SAFETY: live or the sentinel.
        let c = unsafe { &*current };
        if c.chunk.is_none() {
            return;
        }
        let older = c.prev.replace(core::ptr::null_mut());
        // SAFETY: the lane's older chunks are unreachable (caller).
        unsafe { self.release_list(r, older) };
        c.cursor.store(c.start.addr().get(), Ordering::Relaxed);
    }

    /// Gives back every chunk of a list linked through `prev`.
    ///
    /// # Safety
    /// Nothing refers to the list's chunks any more, and they are no
    /// longer linked from the arena.
    unsafe fn release_list(&self, r: &mut Refill, mut p: *mut SharedChunk) {
        while !p.is_null() {
            // SAFETY: the chunks are live until released here.
            let o = unsafe { &*p };
            let next = o.prev.get();
            if let Some(backing) = o.chunk {
                r.reserved -= ChunkHeader::size(backing);
                r.chunks -= 1;
                self.log_chunk(backing, false);
                chunk::give_back(backing);
            }
            p = next;
        }
    }

    /// 0 for the direct lane, 1 for the lease lane.
    fn lane_id(&self, lane: &Lane) -> usize {
        usize::from(core::ptr::eq(lane, &self.leased))
    }

    /// Frees every block (both lanes and the oversized chunks), keeping
    /// each lane's newest chunk for reuse. Under canaries the blocks are
    /// checked first (a broken canary aborts with a report).
    pub fn reset(&mut self) {
        if P::LOG_EVENTS {
            debug::log(Event::Reset { arena: self.id() });
        }
        self.reset_as("the check at reset", false);
    }

    /// `reset`, naming `when` in a corruption report; `at_drop` reports
    /// leaks too.
    fn reset_as(&mut self, when: &str, at_drop: bool) {
        let mut r = self.lock();
        self.give_up(&r, [true, true], when, at_drop);
        // SAFETY: `&mut self`: no block is borrowed and no lease is live
        // (leases borrow the arena).
        unsafe {
            self.rewind_lane(&mut r, &self.direct);
            self.rewind_lane(&mut r, &self.leased);
        }
    }
}

impl<P: Policy> Drop for SharedArena<P> {
    fn drop(&mut self) {
        self.reset_as("the check at arena drop", true);
        for lane in [&self.direct, &self.leased] {
            let p = lane.current.load(Ordering::Relaxed);
            // SAFETY: live or the sentinel; `&mut self` in drop.
            if let Some(backing) = unsafe { &*p }.chunk {
                self.log_chunk(backing, false);
                chunk::give_back(backing);
            }
            #[cfg(fiberalloc_loom)]
            // SAFETY: live or the sentinel, as above.
            if unsafe { &*p }.chunk.is_none() {
                // SAFETY: the loom build's sentinel was boxed in `new`.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

impl<P: Policy> SharedArena<P> {
    /// A block from `lane`: the one-CAS path, then the refill.
    #[inline]
    pub(super) fn alloc_lane(
        &self,
        lane: &Lane,
        layout: Layout,
        flags: u64,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*lane.current.load(Ordering::Acquire) };
        if layout.size() != 0 {
            if let Some(p) = c.bump::<P>(layout.size(), layout.align().max(P::MIN_ALIGN), flags) {
                return Ok(p);
            }
        }
        self.alloc_slow(lane, layout, flags)
    }
}
