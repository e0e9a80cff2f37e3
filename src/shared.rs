//! `SharedArena`: a bump arena many threads allocate from at once.
//!
//! # How it works
//!
//! Each chunk of a shared arena starts its data area with a [`SharedChunk`]
//! header: an atomic cursor and the (immutable) end of the chunk. The arena
//! holds an atomic pointer to the current chunk. An allocation loads that
//! pointer, then runs a compare-exchange loop on the chunk's cursor: compute
//! the aligned block from the cursor value, and move the cursor past it if
//! no other thread moved it first. That is the whole fast path: one atomic
//! read-modify-write, no lock.
//!
//! When the block does not fit, the allocating thread takes the arena's
//! refill lock, looks again (another thread may have installed a chunk
//! while it waited), and only if there is still no room maps or takes a
//! cached chunk, places its own block in it *before* publishing it with a
//! `Release` store of the current pointer. So exactly one thread installs
//! each chunk, the waiting threads allocate from it, and no chunk is mapped
//! in vain. A thread that still holds the old chunk pointer may go on using
//! what is left in it: old chunks stay mapped until `reset`/drop, which take
//! `&mut self`.
//!
//! Blocks too large for the next chunk get a chunk of their own, linked
//! under the lock. Giving back, growing or shrinking the block that ends at
//! the current cursor is a compare-exchange of the cursor from the block's
//! end; it fails harmlessly if another thread allocated in between.
//!
//! # Leases
//!
//! A [`Lease`] is a per-thread handle whose allocations are bounded by the
//! lease's lifetime. It claims blocks of [`LEASE_BLOCK`] bytes from a
//! second lane of chunks with the same one-CAS path, then bumps inside its
//! block with plain `Cell`s, so allocating through a lease costs about what
//! [`Arena`](crate::Arena) costs and does not contend. The arena counts live
//! leases; [`SharedArena::try_reset`] moves that count from 0 to a
//! "resetting" mark (so no lease can start meanwhile), rewinds the lease
//! lane, and puts the count back to 0. Direct allocations (through
//! `&SharedArena`) live in the other lane, which `try_reset` never touches:
//! their references are bounded by the arena borrow, not by a lease.
//!
//! # Orderings
//!
//! - `current` is stored with `Release` after the new chunk's header (and
//!   the installer's own block placement) is written, and loaded with
//!   `Acquire`, so a thread that sees the chunk sees its header.
//! - Disjointness needs only the atomicity of the cursor's
//!   read-modify-writes (successful ones form one chain in its modification
//!   order). But bytes can change hands without a reset: giving back the
//!   last block moves the cursor down, and the next allocation takes the
//!   same bytes, possibly on another thread. So the give-back exchange is
//!   `Release` and every claim (`fetch_add`, exchange) is `Acquire`: the
//!   previous owner's accesses happen before the new owner's (each
//!   read-modify-write continues the release sequence, so claims in between
//!   do not break the chain). Miri's data-race detector caught the earlier
//!   all-`Relaxed` version; on x86 both compile to the same instructions.
//! - Other reuse comes after `reset(&mut self)` (exclusive) or `try_reset`,
//!   which synchronises with every lease through the lease count.
//! - A lease's drop decrements the count with `Release`; `try_reset`'s
//!   exchange from 0 is `Acquire`, so every access a lease made to its
//!   blocks happens before the reset rewinds them. The reset stores 0 with
//!   `Release`, and `lease()` increments with `Acquire`, so a new lease sees
//!   the rewound cursors.

use crate::align;
use crate::chunk::{self, ChunkHeader, ChunkRequest, HEADER_SIZE};
use crate::policy::{Fast, Policy};
use crate::stats::Stats;
use crate::sync::{spin_wait, AtomicPtr, AtomicUsize, Mutex, Ordering};
use crate::AllocError;
use core::alloc::Layout;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// Bytes a lease claims from the shared lane at a time.
pub const LEASE_BLOCK: usize = 4096;

/// The header at the start of a shared chunk's data area.
///
/// Invariants: `start <= cursor`, and every block handed out lies in
/// `start..end`; the cursor may pass `end` (a small `fetch_add` that did not
/// fit leaves it there, and the chunk counts as full); `start`, `end` and
/// `chunk` never change while the chunk is in an arena; `start` is 64-byte
/// aligned, so the cursor stays a multiple of `MIN_ALIGN`.
#[repr(C, align(64))]
pub(crate) struct SharedChunk {
    /// One past the last data byte.
    end: usize,
    /// First data byte (for rewinding; blocks take their provenance from
    /// it).
    start: NonNull<u8>,
    /// The backing chunk; `None` for the empty sentinel.
    chunk: Option<NonNull<ChunkHeader>>,
    /// The next older chunk of the same lane (written under the lock or
    /// with `&mut` only).
    prev: Cell<*mut SharedChunk>,
    /// Address of the next free byte, on a cache line of its own: threads
    /// contend for it, while the fields above are only read.
    cursor: CursorLine,
}

/// The cursor, alone on its cache line.
#[repr(C, align(64))]
struct CursorLine(AtomicUsize);

impl core::ops::Deref for CursorLine {
    type Target = AtomicUsize;
    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

/// Bytes the shared header takes at the start of a chunk's data area.
const SHARED_HEADER: usize = core::mem::size_of::<SharedChunk>();

/// Requests up to this size with an alignment up to `MIN_ALIGN` take the
/// single-`fetch_add` path; a miss wastes at most this much of a chunk's
/// tail per racing thread.
const FETCH_ADD_MAX: usize = 256;

impl SharedChunk {
    /// Claims `size` bytes at `align`: one `fetch_add` for small requests
    /// at most `MIN_ALIGN`-aligned, else a compare-exchange loop. `None` if
    /// the chunk has no room.
    #[inline(always)]
    fn bump<P: Policy>(&self, size: usize, align: usize) -> Option<NonNull<u8>> {
        let round = (size + (P::MIN_ALIGN - 1)) & !(P::MIN_ALIGN - 1);
        if align <= P::MIN_ALIGN && round <= FETCH_ADD_MAX {
            // Acquire: the bytes may have been given back by another
            // thread's rollback (a Release exchange); see the module docs.
            // The cursor is a multiple of MIN_ALIGN: no padding needed.
            let at = self.cursor.fetch_add(round, Ordering::Acquire);
            if at + round <= self.end {
                return Some(self.block_at(at));
            }
            // Did not fit: the cursor now lies past the end (by at most
            // FETCH_ADD_MAX per racing thread) and the chunk is full.
            return None;
        }
        // Relaxed: only the first guess; the exchange below decides.
        let mut cur = self.cursor.load(Ordering::Relaxed);
        let mask = align - 1;
        loop {
            // Checked: the sentinel's cursor sits half-way up the address
            // range, where a huge request could overflow.
            let end = cur.checked_add(mask).and_then(|s| (s & !mask).checked_add(round))?;
            if end > self.end {
                return None;
            }
            let start = end - round;
            // Acquire on success, as for the `fetch_add` above. Relaxed on
            // failure: another thread moved the cursor; retry from its new
            // value (nothing is read through it).
            match self.cursor.compare_exchange_weak(cur, end, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(self.block_at(start)),
                Err(now) => cur = now,
            }
        }
    }

    /// The block at address `at` (inside `start..end`), with the chunk's
    /// provenance.
    #[inline(always)]
    fn block_at(&self, at: usize) -> NonNull<u8> {
        // SAFETY: callers pass an address in `start..=end`, inside this
        // chunk's data (or one past it), so it is in bounds and not null.
        unsafe { self.start.add(at - self.start.addr().get()) }
    }

    /// Moves the cursor from `from` to `to` if nobody moved it since.
    #[inline]
    fn move_cursor(&self, from: usize, to: usize) -> bool {
        if to > self.end {
            return false;
        }
        // AcqRel on success: Release so that this thread's accesses to the
        // bytes it gives back (moving the cursor down) happen before the
        // next thread's Acquire that claims them; Acquire so that bytes it
        // takes (moving the cursor up) were released by whoever gave them
        // back. Relaxed on failure: another thread allocated after the
        // block (or the cursor is elsewhere); nothing changes.
        self.cursor.compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    fn used(&self) -> usize {
        self.cursor.load(Ordering::Relaxed).min(self.end) - self.start.addr().get()
    }
}

// SAFETY: the header's shared state is atomic; `prev` is only written under
// the arena's lock or with `&mut SharedArena`.
unsafe impl Sync for SharedChunk {}
// SAFETY: as above; the pointers it holds name chunks owned by the arena.
unsafe impl Send for SharedChunk {}

/// One list of chunks with its current chunk: the arena has a lane for
/// direct allocations and one for leases.
struct Lane {
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
    leased: Lane,
    leases: AtomicUsize,
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
        Self::new()
    }
}

impl<P: Policy> SharedArena<P> {
    /// An arena that maps nothing until its first allocation.
    #[cfg(not(fiberalloc_loom))]
    pub const fn new() -> Self {
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

    /// An arena that maps nothing until its first allocation (loom build:
    /// not `const`).
    #[cfg(fiberalloc_loom)]
    pub fn new() -> Self {
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

    /// An arena whose first direct chunk holds at least `bytes` bytes.
    /// Panics (through `handle_alloc_error`) if it cannot be mapped.
    pub fn with_capacity(bytes: usize) -> Self {
        let arena = Self::new();
        if bytes > 0 {
            let layout = Layout::from_size_align(bytes, 1).unwrap_or(Layout::new::<u8>());
            let mut r = arena.lock();
            match arena.install(&mut r, &arena.direct, bytes, 1, false) {
                Ok(c) => {
                    // Nothing was placed: rewind the block `install` made.
                    // SAFETY: `c` was just installed and no other thread
                    // can see the arena yet.
                    let c = unsafe { &*c };
                    c.cursor.store(c.start.addr().get(), Ordering::Relaxed);
                }
                Err(AllocError) => {
                    drop(r);
                    crate::oom(layout)
                }
            }
        }
        arena
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
        unsafe { crate::place(self.try_alloc_layout(Layout::new::<T>()), value) }
    }

    /// The `Allocator` impls' allocation: the same as `try_alloc_layout`
    /// (a shared arena keeps no per-block records; see the `debug` module).
    #[inline(always)]
    pub(crate) fn alloc_tracked(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.try_alloc_layout(layout)
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
            if let Some(p) = c.bump::<P>(layout.size(), layout.align()) {
                return Ok(p);
            }
        }
        self.alloc_slow(&self.direct, layout)
    }

    /// Copies `src` into the arena.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        // SAFETY: a fresh block for `src`'s layout, valid while `&self` lives.
        unsafe { crate::place_slice_copy(self.try_alloc_layout(Layout::for_value(src)), src) }
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
    fn alloc_slow(&self, lane: &Lane, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align().max(P::MIN_ALIGN));
        if size == 0 {
            // SAFETY: `align` is a non-zero power of two.
            return Ok(unsafe { NonNull::new_unchecked(core::ptr::without_provenance_mut(align)) });
        }
        let mut r = self.lock();
        // Another thread may have installed a chunk while we waited.
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*lane.current.load(Ordering::Acquire) };
        if let Some(p) = c.bump::<P>(size, align) {
            return Ok(p);
        }
        let c = self.install(&mut r, lane, size, align, true)?;
        // SAFETY: `install` placed the block at the chunk's start (rounded
        // up to `align`); it is this thread's.
        let c = unsafe { &*c };
        let start = c.start.addr().get();
        let at = (start + align - 1) & !(align - 1);
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
    ) -> Result<*mut SharedChunk, AllocError> {
        let header = HEADER_SIZE + SHARED_HEADER;
        let page = crate::sys::page_size();
        let need = align::chunk_size_for(size, align, header, page, P::MIN_CHUNK_SIZE).ok_or(AllocError)?;
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
        let first = align::bump_up(start.addr().get(), end, size, align, P::MIN_ALIGN);
        let Some(first) = first else {
            chunk::release(backing);
            return Err(AllocError);
        };
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
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
        let round = (layout.size() + (P::MIN_ALIGN - 1)) & !(P::MIN_ALIGN - 1);
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
        let addr = ptr.addr().get();
        if addr & (new.align() - 1) == 0 {
            // SAFETY: as in `try_alloc_layout`.
            let c = unsafe { &*self.direct.current.load(Ordering::Acquire) };
            let round = |s: usize| (s + (P::MIN_ALIGN - 1)) & !(P::MIN_ALIGN - 1);
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
        {
            let mut r = self.lock();
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
        unsafe { Self::release_list(r, big) };
        let current = lane.current.load(Ordering::Acquire);
        // SAFETY: live or the sentinel.
        let c = unsafe { &*current };
        if c.chunk.is_none() {
            return;
        }
        let older = c.prev.replace(core::ptr::null_mut());
        // SAFETY: the lane's older chunks are unreachable (caller).
        unsafe { Self::release_list(r, older) };
        c.cursor.store(c.start.addr().get(), Ordering::Relaxed);
    }

    /// Gives back every chunk of a list linked through `prev`.
    ///
    /// # Safety
    /// Nothing refers to the list's chunks any more, and they are no
    /// longer linked from the arena.
    unsafe fn release_list(r: &mut Refill, mut p: *mut SharedChunk) {
        while !p.is_null() {
            // SAFETY: the chunks are live until released here.
            let o = unsafe { &*p };
            let next = o.prev.get();
            if let Some(backing) = o.chunk {
                r.reserved -= ChunkHeader::size(backing);
                r.chunks -= 1;
                chunk::release(backing);
            }
            p = next;
        }
    }

    /// 0 for the direct lane, 1 for the lease lane.
    fn lane_id(&self, lane: &Lane) -> usize {
        usize::from(core::ptr::eq(lane, &self.leased))
    }

    /// Frees every block (both lanes and the oversized chunks), keeping
    /// each lane's newest chunk for reuse.
    pub fn reset(&mut self) {
        let mut r = self.lock();
        // SAFETY: `&mut self`: no block is borrowed and no lease is live
        // (leases borrow the arena).
        unsafe {
            self.rewind_lane(&mut r, &self.direct);
            self.rewind_lane(&mut r, &self.leased);
        }
    }

    /// Whether `ptr` lies in the data area of one of this arena's chunks
    /// (either lane, or an oversized chunk).
    pub fn contains(&self, ptr: *const u8) -> bool {
        let r = self.lock();
        let addr = ptr.addr();
        let inside = |mut p: *mut SharedChunk| {
            while !p.is_null() {
                // SAFETY: chunks of the arena are live while it is.
                let c = unsafe { &*p };
                if c.chunk.is_some() && c.start.addr().get() <= addr && addr < c.end {
                    return true;
                }
                p = c.prev.get();
            }
            false
        };
        inside(self.direct.current.load(Ordering::Acquire))
            || inside(self.leased.current.load(Ordering::Acquire))
            || inside(r.big[0])
            || inside(r.big[1])
    }

    /// A snapshot of the arena's counters. Shared arenas keep no counters on
    /// the fast path: `allocated_bytes` is the data the cursors have passed
    /// (padding included, `padding_bytes` is 0) and `allocation_count` is 0.
    pub fn stats(&self) -> Stats {
        let r = self.lock();
        let mut used = 0;
        for lane in [&self.direct, &self.leased] {
            let mut p = lane.current.load(Ordering::Acquire);
            while !p.is_null() {
                // SAFETY: chunks of a lane are live while the arena is.
                let c = unsafe { &*p };
                if c.chunk.is_some() {
                    used += c.used();
                }
                p = c.prev.get();
            }
        }
        for mut b in r.big {
            while !b.is_null() {
                // SAFETY: as above.
                let c = unsafe { &*b };
                used += c.used();
                b = c.prev.get();
            }
        }
        Stats {
            allocated_bytes: used,
            peak_bytes: used,
            reserved_bytes: r.reserved,
            chunk_count: r.chunks,
            ..Stats::default()
        }
    }
}

impl<P: Policy> Drop for SharedArena<P> {
    fn drop(&mut self) {
        self.reset();
        for lane in [&self.direct, &self.leased] {
            let p = lane.current.load(Ordering::Relaxed);
            // SAFETY: live or the sentinel; `&mut self` in drop.
            if let Some(backing) = unsafe { &*p }.chunk {
                chunk::release(backing);
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

/// A cursor with no room: `limit` 0 makes every lease bump miss.
fn sentinel_cursor() -> NonNull<u8> {
    NonNull::dangling()
}

/// A per-thread handle on a [`SharedArena`]: allocations bump in blocks it
/// claims with one compare-exchange, without atomics in between, and live
/// as long as the lease. Not `Sync` (its cursor is a `Cell`).
///
/// ```
/// use fiberalloc::SharedArena;
/// let arena: SharedArena = SharedArena::new();
/// std::thread::scope(|s| {
///     for t in 0..2u32 {
///         let arena = &arena;
///         s.spawn(move || {
///             let lease = arena.lease();
///             let v = lease.alloc_slice_copy(&[t; 16]);
///             assert!(v.iter().all(|&x| x == t));
///         });
///     }
/// });
/// assert!(arena.try_reset(), "no lease is live any more");
/// ```
///
/// A lease's allocations cannot outlive it:
///
/// ```compile_fail,E0597
/// let arena: fiberalloc::SharedArena = fiberalloc::SharedArena::new();
/// let escaped = {
///     let lease = arena.lease();
///     lease.alloc(1u32)
/// };
/// ```
pub struct Lease<'a, P: Policy = Fast> {
    arena: &'a SharedArena<P>,
    cursor: Cell<NonNull<u8>>,
    limit: Cell<usize>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<P: Policy> Lease<'_, P> {
    /// Moves `value` into the lease's memory. Panics (through
    /// `handle_alloc_error`) when memory runs out.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc<T>(&self, value: T) -> &mut T {
        // SAFETY: a fresh block for `T`, valid while the lease lives
        // (`try_reset` succeeds only once every lease has ended).
        unsafe { crate::place(self.try_alloc_layout(Layout::new::<T>()), value) }
    }

    /// A block for `layout`: a bump in the lease's block, no atomics.
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let cursor = self.cursor.get();
        let addr = cursor.addr().get();
        let mask = layout.align() - 1;
        // No overflow: as in `SharedChunk::bump`.
        let start = (addr + mask) & !mask;
        let end = start + ((layout.size() + (P::MIN_ALIGN - 1)) & !(P::MIN_ALIGN - 1));
        if end <= self.limit.get() && layout.size() != 0 {
            // SAFETY: `addr <= start <= end <= limit`, inside the lease's
            // claimed block.
            let (block, next) = unsafe { (cursor.add(start - addr), cursor.add(end - addr)) };
            self.cursor.set(next);
            return Ok(block);
        }
        self.refill(layout)
    }

    /// Copies `src` into the lease's memory.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        // SAFETY: a fresh block for `src`'s layout, valid while the lease
        // lives.
        unsafe { crate::place_slice_copy(self.try_alloc_layout(Layout::for_value(src)), src) }
    }

    /// Claims a new block (one compare-exchange) and allocates in it;
    /// requests above a quarter block get a block of their own.
    #[cold]
    #[inline(never)]
    fn refill(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align().max(P::MIN_ALIGN));
        if size == 0 {
            // SAFETY: `align` is a non-zero power of two.
            return Ok(unsafe { NonNull::new_unchecked(core::ptr::without_provenance_mut(align)) });
        }
        let a = self.arena;
        if size + align > LEASE_BLOCK / 4 {
            let one = Layout::from_size_align(size, align).map_err(|_| AllocError)?;
            return a.alloc_lane(&a.leased, one);
        }
        let block =
            a.alloc_lane(&a.leased, Layout::from_size_align(LEASE_BLOCK, 64).map_err(|_| AllocError)?)?;
        let start = block.addr().get();
        let at = (start + align - 1) & !(align - 1);
        let end = at + ((size + (P::MIN_ALIGN - 1)) & !(P::MIN_ALIGN - 1));
        // SAFETY: `size + align <= LEASE_BLOCK / 4`, so the block and the
        // new cursor lie inside the claimed block.
        let (p, next) = unsafe { (block.add(at - start), block.add(end - start)) };
        self.cursor.set(next);
        self.limit.set(start + LEASE_BLOCK);
        Ok(p)
    }
}

impl<P: Policy> SharedArena<P> {
    /// A block from `lane`: the one-CAS path, then the refill.
    #[inline]
    fn alloc_lane(&self, lane: &Lane, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: as in `try_alloc_layout`.
        let c = unsafe { &*lane.current.load(Ordering::Acquire) };
        if let Some(p) = c.bump::<P>(layout.size(), layout.align().max(P::MIN_ALIGN)) {
            return Ok(p);
        }
        self.alloc_slow(lane, layout)
    }
}

impl<P: Policy> Drop for Lease<'_, P> {
    fn drop(&mut self) {
        // Release: this lease's accesses to its blocks happen before a
        // `try_reset` that sees the count reach 0.
        self.arena.leases.fetch_sub(1, Ordering::Release);
    }
}

impl<P: Policy> core::fmt::Debug for SharedArena<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedArena")
            .field("stats", &self.stats())
            .field("leases", &self.lease_count())
            .finish()
    }
}
