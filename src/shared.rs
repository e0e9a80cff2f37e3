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
use crate::debug::{self, Corruption, Event, Leak};
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
    fn bump<P: Policy>(&self, size: usize, align: usize, flags: u64) -> Option<NonNull<u8>> {
        if P::CANARIES {
            return self.bump_checked::<P>(size, align, flags);
        }
        let round = align::round_up(size, P::MIN_ALIGN);
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

    /// [`bump`](Self::bump) under canaries: the claim covers the block's
    /// header and canary too (see [`debug`]), written by the claimant.
    #[inline(always)]
    fn bump_checked<P: Policy>(&self, size: usize, align: usize, flags: u64) -> Option<NonNull<u8>> {
        let round = align::round_up(size, P::MIN_ALIGN);
        if align <= P::MIN_ALIGN && round <= FETCH_ADD_MAX {
            // The cursor is 8-aligned and `align <= 8`: the block follows
            // its header with no pad words.
            let span = debug::HEADER + round + debug::TAIL;
            // Acquire: as in `bump`.
            let at = self.cursor.fetch_add(span, Ordering::Acquire);
            if at + span <= self.end {
                let from = self.block_at(at);
                // SAFETY: the claim `at..at + span` is this thread's alone
                // and lies inside the chunk's data.
                unsafe { debug::write_block(from, 0, size, flags) };
                return Some(self.block_at(at + debug::HEADER));
            }
            if at < self.end {
                // The first claim past the end: the chunk's blocks stop
                // here. Nobody else can claim `at..end` (the cursor stays
                // past the end), and both are multiples of 8.
                // SAFETY: 8 bytes inside the data no block uses.
                unsafe { debug::write_end(self.block_at(at)) };
            }
            return None;
        }
        // Relaxed: only the first guess; the exchange decides.
        let mut cur = self.cursor.load(Ordering::Relaxed);
        loop {
            if cur >= self.end {
                return None;
            }
            // No overflow: `cur < end`, a user-space address, and a
            // Layout's size and alignment.
            let (start, next) = debug::place_with_header(cur, size, align);
            if next > self.end {
                return None;
            }
            // Acquire on success, Relaxed on failure: as in `bump`.
            match self.cursor.compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    // SAFETY: the claim `cur..next` is this thread's.
                    unsafe {
                        debug::write_block(self.block_at(cur), start - debug::HEADER - cur, size, flags)
                    };
                    return Some(self.block_at(start));
                }
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
            match arena.install(&mut r, &arena.direct, bytes, 1, false, 0) {
                Ok(c) => {
                    // Nothing was placed: rewind the block `install` made.
                    // SAFETY: `c` was just installed and no other thread
                    // can see the arena yet.
                    let c = unsafe { &*c };
                    c.cursor.store(c.start.addr().get(), Ordering::Relaxed);
                }
                Err(AllocError) => {
                    drop(r);
                    crate::init::oom(layout)
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
    fn log_alloc(&self, block: NonNull<u8>, layout: Layout) {
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
        if addr & (new.align() - 1) == 0 {
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
        if addr & (new.align() - 1) == 0 {
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

    /// Calls `f` on every chunk of the chosen lanes (`[direct, leased]`),
    /// their oversized chunks included. Called with the lock held.
    fn for_each_chunk(&self, r: &Refill, lanes: [bool; 2], mut f: impl FnMut(&SharedChunk)) {
        for (id, lane) in [&self.direct, &self.leased].into_iter().enumerate() {
            if !lanes[id] {
                continue;
            }
            for mut p in [lane.current.load(Ordering::Acquire), r.big[id]] {
                while !p.is_null() {
                    // SAFETY: chunks of the arena are live while it is, and
                    // `prev` links change only under the lock we hold.
                    let c = unsafe { &*p };
                    if c.chunk.is_some() {
                        f(c);
                    }
                    p = c.prev.get();
                }
            }
        }
    }

    /// Checks one chunk's header and walks its blocks (and the blocks
    /// inside lease blocks), calling `f` on each.
    ///
    /// # Safety
    /// No other thread writes the chunk's blocks meanwhile (`&mut self`, or
    /// the lease lane held by `try_reset`).
    unsafe fn check_chunk(
        c: &SharedChunk,
        f: &mut impl FnMut(debug::Block) -> Result<(), Corruption>,
    ) -> Result<(), Corruption> {
        let Some(backing) = c.chunk else { return Ok(()) };
        let chunk = backing.addr().get();
        if !ChunkHeader::intact(backing) {
            return Err(Corruption::ChunkHeader { chunk });
        }
        let to = c.start.addr().get() + c.used();
        // SAFETY: the claimed part of the chunk, laid out by the canary
        // paths, and quiet (caller); a lease block's inside likewise.
        unsafe {
            debug::walk(chunk, c.start, to, |b| {
                if b.flags & debug::LEASE != 0 {
                    debug::walk(chunk, c.block_at(b.addr), b.addr + b.size, &mut *f)?;
                }
                f(b)
            })
        }
    }

    /// Before the chosen lanes are rewound: checks their blocks (aborting
    /// with a report on corruption, listing leaks at drop under
    /// `TRACK_LEAKS`) and poisons their used bytes. Called with the lock
    /// held, with no lease live in those lanes.
    fn give_up(&self, r: &Refill, lanes: [bool; 2], when: &str, at_drop: bool) {
        if !(P::CANARIES || P::POISON || cfg!(fiberalloc_asan)) {
            return;
        }
        let leaks = P::TRACK_LEAKS && at_drop;
        let arena = (self as *const Self).addr();
        self.for_each_chunk(r, lanes, |c| {
            if P::CANARIES {
                let mut each = |b: debug::Block| {
                    if leaks && b.flags & (debug::TRACKED | debug::FREED) == debug::TRACKED {
                        debug::report_leak(arena, Leak { addr: b.addr, size: b.size });
                    }
                    Ok(())
                };
                // SAFETY: the lanes are quiet (caller).
                debug::or_abort(unsafe { Self::check_chunk(c, &mut each) }, when);
            }
            // SAFETY: the chunk's used bytes are given up (caller).
            unsafe { debug::poison_freed(c.start, c.used(), P::POISON, P::POISON_BYTE) };
        });
    }

    /// Checks every chunk header and every block's header and canary
    /// (under `Safe` and `Debug`); `Err` names the first problem. Takes
    /// `&mut self`: other threads must not be writing blocks while it reads
    /// them.
    pub fn validate(&mut self) -> Result<(), Corruption> {
        let mut result = Ok(());
        if P::CANARIES {
            let r = self.lock();
            self.for_each_chunk(&r, [true, true], |c| {
                if result.is_ok() {
                    // SAFETY: `&mut self`: no other thread allocates.
                    result = unsafe { Self::check_chunk(c, &mut |_| Ok(())) };
                }
            });
        }
        result
    }

    /// Blocks allocated through the `Allocator` impl and not freed (only
    /// `Debug` records them; empty under other policies).
    pub fn leaks(&mut self) -> Vec<Leak> {
        let mut out = Vec::new();
        if P::TRACK_LEAKS {
            let r = self.lock();
            self.for_each_chunk(&r, [true, false], |c| {
                let mut each = |b: debug::Block| {
                    if b.flags & (debug::TRACKED | debug::FREED) == debug::TRACKED {
                        out.push(Leak { addr: b.addr, size: b.size });
                    }
                    Ok(())
                };
                // SAFETY: `&mut self`: no other thread allocates.
                let _ = unsafe { Self::check_chunk(c, &mut each) };
            });
        }
        out
    }

    /// A picture of the arena's chunks for [`report::svg`](crate::report::svg):
    /// per chunk (both lanes, oversized chunks included) its live bytes,
    /// padding (block headers, canaries, alignment, freed blocks, the unused
    /// part of ended leases), free space and guard pages. Under `Fast`,
    /// which keeps no per-block records, a chunk's used bytes all count as
    /// live, as in [`stats`](Self::stats). The lanes' current chunks are
    /// `Current`, the others `Full`; a shared arena keeps no spare chunks
    /// (they go back to the process-wide cache). Takes `&mut self`, like
    /// [`validate`](Self::validate): under `Safe` and `Debug` it reads the
    /// blocks' headers, which no other thread may be writing meanwhile.
    ///
    /// ```
    /// use fiberalloc::{policy::Debug, report, SharedArena};
    /// let mut arena = SharedArena::<Debug>::new();
    /// std::thread::scope(|s| {
    ///     for t in 0..2u64 {
    ///         let arena = &arena;
    ///         s.spawn(move || arena.alloc([t; 8]));
    ///     }
    /// });
    /// let map = arena.memory_map();
    /// let live: usize = map.chunks.iter().map(|c| c.live).sum();
    /// assert_eq!(live, 2 * 64);
    /// assert!(report::svg(&map).starts_with("<svg"));
    /// ```
    pub fn memory_map(&mut self) -> crate::report::MemoryMap {
        use crate::report::{ChunkState, ChunkUsage};
        // Acquire, as everywhere the lanes are read: pairs with the Release
        // store that installed the chunk (with `&mut self` no store can be
        // racing; the ordering costs nothing here).
        let current =
            [self.direct.current.load(Ordering::Acquire), self.leased.current.load(Ordering::Acquire)];
        let page = crate::sys::page_size();
        let mut chunks = Vec::new();
        let r = self.lock();
        self.for_each_chunk(&r, [true, true], |c| {
            let Some(backing) = c.chunk else { return };
            let used = c.used();
            let mut live = used;
            if P::CANARIES {
                live = 0;
                let mut each = |b: debug::Block| {
                    // A lease block's bytes are counted through the blocks
                    // inside it (walked before it).
                    if b.flags & (debug::FREED | debug::LEASE) == 0 {
                        live += b.size;
                    }
                    Ok(())
                };
                // SAFETY: `&mut self`: no other thread allocates or writes
                // a block header meanwhile. A corrupt chunk stops the walk
                // early (`validate` reports it); its live bytes are then
                // those walked so far.
                let _ = unsafe { Self::check_chunk(c, &mut each) };
            }
            let state = if current.contains(&core::ptr::from_ref(c).cast_mut()) {
                ChunkState::Current
            } else {
                ChunkState::Full
            };
            let start = c.start.addr().get();
            chunks.push(ChunkUsage {
                addr: backing.addr().get(),
                state,
                header: start - backing.addr().get(),
                live,
                padding: used - live,
                free: c.end - start - used,
                guard: if ChunkHeader::guarded(backing) { 2 * page } else { 0 },
            });
        });
        drop(r);
        let policy = core::any::type_name::<P>().rsplit("::").next().unwrap_or("?");
        crate::report::MemoryMap { title: format!("SharedArena<{policy}>"), chunks, note: None }
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
        unsafe { crate::init::write_value(self.try_alloc_layout(Layout::new::<T>()), value) }
    }

    /// A block for `layout`: a bump in the lease's block, no atomics.
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let cursor = self.cursor.get();
        let addr = cursor.addr().get();
        if P::CANARIES {
            let (start, next) =
                debug::place_with_header(addr, layout.size(), layout.align().max(P::MIN_ALIGN));
            if next <= self.limit.get() && layout.size() != 0 {
                // SAFETY: `addr <= start <= next <= limit`, inside the
                // lease's claimed block, which only this lease uses.
                let block = unsafe {
                    debug::write_block(cursor, start - debug::HEADER - addr, layout.size(), 0);
                    self.cursor.set(cursor.add(next - addr));
                    cursor.add(start - addr)
                };
                self.arena.log_alloc(block, layout);
                return Ok(block);
            }
            let p = self.refill(layout);
            if let Ok(p) = p {
                self.arena.log_alloc(p, layout);
            }
            return p;
        }
        let mask = layout.align() - 1;
        // No overflow: as in `SharedChunk::bump`.
        let start = (addr + mask) & !mask;
        let end = start + align::round_up(layout.size(), P::MIN_ALIGN);
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
        unsafe { crate::init::copy_slice(self.try_alloc_layout(Layout::for_value(src)), src) }
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
            return a.alloc_lane(&a.leased, one, 0);
        }
        let whole = Layout::from_size_align(LEASE_BLOCK, 64).map_err(|_| AllocError)?;
        self.mark_end();
        let block = a.alloc_lane(&a.leased, whole, debug::LEASE)?;
        let start = block.addr().get();
        if P::CANARIES {
            let (at, next) = debug::place_with_header(start, size, align);
            // SAFETY: the block is this lease's, and `size + align` is far
            // below its size, so the first block with its header and
            // canary fits.
            unsafe {
                debug::write_block(block, at - debug::HEADER - start, size, 0);
                self.cursor.set(block.add(next - start));
            }
            self.limit.set(start + LEASE_BLOCK);
            // SAFETY: as above.
            return Ok(unsafe { block.add(at - start) });
        }
        let at = align::round_up(start, align);
        let end = at + align::round_up(size, P::MIN_ALIGN);
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
    fn alloc_lane(&self, lane: &Lane, layout: Layout, flags: u64) -> Result<NonNull<u8>, AllocError> {
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

impl<P: Policy> Lease<'_, P> {
    /// Under canaries, marks where this lease's blocks end in its current
    /// block (if it has room left), so a walk of the block stops there.
    #[inline]
    fn mark_end(&self) {
        if P::CANARIES && self.cursor.get().addr().get() < self.limit.get() {
            // SAFETY: the rest of the lease's block is unused and its own;
            // cursor and limit are multiples of 8.
            unsafe { debug::write_end(self.cursor.get()) };
        }
    }
}

impl<P: Policy> Drop for Lease<'_, P> {
    fn drop(&mut self) {
        self.mark_end();
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
