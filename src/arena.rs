//! `Arena`: a single-threaded bump arena over mmap'd chunks.
//!
//! # How it works
//!
//! The arena keeps a cursor into its current chunk and the address where
//! that chunk's data ends. An allocation rounds the request up to the
//! policy's `MIN_ALIGN`, pads the cursor up to the request's alignment (a
//! step the compiler removes when the type's alignment is at most
//! `MIN_ALIGN`), checks that the block fits below the limit and moves the
//! cursor past it: a handful of instructions, one branch, no atomics. That
//! is [`Arena::try_alloc_layout`]'s `#[inline(always)]` half; everything
//! else (a new chunk, a block too large for any regular chunk, a zero-sized
//! block that needs padding) is in the `#[cold]` [`Arena::alloc_slow`].
//!
//! Chunks grow geometrically: each new regular chunk is twice the size of
//! the current one. A request larger than the next chunk would be gets a
//! chunk of its own, kept on a separate list, and the current chunk stays
//! current, so its free space is not lost. A new arena points at the static
//! empty chunk and maps nothing until its first allocation.
//!
//! The last block handed out can grow, shrink and be freed in place: its end
//! is the cursor. That check is all the arena needs to know that the block
//! belongs to the current scope: [`Arena::scope`] takes `&mut self`, so no
//! block or collection from outside the scope can be reached while it runs,
//! and `scoped` gives each nesting level an arena of its own.
//!
//! # Invariants
//!
//! - `data_start(current) <= cursor <= limit == data_end(current)`, and the
//!   cursor is a multiple of `P::MIN_ALIGN` (chunk data starts on a 64-byte
//!   boundary and every step is rounded to `MIN_ALIGN`).
//! - Every chunk the arena owns is on exactly one of the lists `current →
//!   prev → ...` (used, newest first), `spare` (rewound by a scope, reused
//!   before mapping) or `big` (one oversized block each).
//! - `reserved` and `chunks` are the sums over those lists;
//!   `retired_used` is the data consumed in used chunks other than the
//!   current one, plus that of the big chunks;
//!   `consumed = retired_used + (cursor - data_start(current))` is the data
//!   the cursor has passed over, and `consumed >= padding`; the live bytes
//!   (`allocated_bytes`) are `consumed - padding`.
//!
//! # Statistics on the fast path
//!
//! The arena keeps no byte counter: live bytes are the data the cursor has
//! passed over minus `padding`, the bytes known to hold no live block.
//! Under policies with `EXACT_STATS` (`Safe`, `Debug`) every allocation
//! adds its rounding and alignment padding and counts itself. Each of those
//! is a memory update on a loop-carried chain (measured: 2.5x the cost of a
//! typed allocation for the count, 1.4x for the padding of a runtime
//! layout), so `Fast` does neither: its `allocation_count` stays 0 and its
//! `allocated_bytes` includes the padding of its blocks, while holes left by
//! freeing a block out of order are still subtracted.
//!
//! [`Arena::validate`] checks these and the tests call it.

use crate::align;
use crate::chunk::{self, ChunkHeader, ChunkRequest, HEADER_SIZE};
use crate::debug::{self, Corruption, Event, Leak};
use crate::policy::{Fast, Policy};
use crate::stats::Stats;
use crate::sys::{self, GuardKind};
use crate::walk;
use crate::AllocError;
use core::alloc::Layout;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;
use std::io;

/// A single-threaded bump arena: `Send`, not `Sync`.
///
/// ```
/// use fiberalloc::Arena;
/// let arena: Arena = Arena::new();
/// let x = arena.alloc(41u64);
/// *x += 1;
/// let s = arena.alloc_str("hello");
/// assert_eq!((*x, &*s), (42, "hello"));
/// ```
///
/// An allocation cannot outlive a [`reset`](Arena::reset):
///
/// ```compile_fail,E0502
/// let mut arena: fiberalloc::Arena = fiberalloc::Arena::new();
/// let x = arena.alloc(1u32);
/// arena.reset();
/// *x += 1;
/// ```
///
/// nor a [`scope`](Arena::scope):
///
/// ```compile_fail
/// let mut arena: fiberalloc::Arena = fiberalloc::Arena::new();
/// let escaped = arena.scope(|a| a.alloc(1u32));
/// ```
///
/// and an arena cannot be shared between threads:
///
/// ```compile_fail,E0277
/// fn shared<T: Sync>(_: &T) {}
/// shared(&fiberalloc::Arena::<fiberalloc::policy::Fast>::new());
/// ```
pub struct Arena<P: Policy = Fast> {
    /// Next free byte of the current chunk.
    cursor: Cell<NonNull<u8>>,
    /// One past the current chunk's data.
    limit: Cell<NonNull<u8>>,
    current: Cell<NonNull<ChunkHeader>>,
    spare: Cell<Option<NonNull<ChunkHeader>>>,
    big: Cell<Option<NonNull<ChunkHeader>>>,
    /// Bytes passed over that hold no live block (see the module docs).
    padding: Cell<usize>,
    count: Cell<u64>,
    peak: Cell<usize>,
    retired_used: Cell<usize>,
    reserved: Cell<usize>,
    chunks: Cell<usize>,
    byte_limit: Cell<usize>,
    /// The newest guard page installed by [`Arena::alloc_stack`] (a list
    /// through the arena's own memory; null when there is none).
    stack_guards: Cell<*mut StackGuard>,
    _policy: PhantomData<P>,
}

// SAFETY: the arena owns its chunks outright (no other arena or thread
// refers to them), and moving it to another thread needs `self` by value, so
// no block borrowed from it is alive. It is not `Sync`: its `Cell`s see to it.
unsafe impl<P: Policy> Send for Arena<P> {}

impl<P: Policy> Default for Arena<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// Where an arena stood, to go back to (see [`Arena::scope`]).
#[derive(Clone, Copy)]
struct Mark {
    current: NonNull<ChunkHeader>,
    cursor: NonNull<u8>,
    big: Option<NonNull<ChunkHeader>>,
    padding: usize,
    retired_used: usize,
    stack_guards: *mut StackGuard,
}

/// Which operation gives memory up (named in corruption reports).
#[derive(Clone, Copy)]
enum When {
    ScopeExit,
    Reset,
    Drop,
}

impl When {
    fn name(self) -> &'static str {
        match self {
            When::ScopeExit => "the check at scope exit",
            When::Reset => "the check at reset",
            When::Drop => "the check at arena drop",
        }
    }
}

/// A guard page of an arena block (a fiber stack's), recorded in a block of the arena just
/// below the stack's own.
struct StackGuard {
    prev: *mut StackGuard,
    page: NonNull<u8>,
    kind: GuardKind,
}

impl<P: Policy> Arena<P> {
    /// An arena that maps nothing until its first allocation.
    pub const fn new() -> Self {
        // A `const fn` cannot call `chunk::empty_cursor`; the cursor and the
        // limit are set from the sentinel here by the same arithmetic.
        Arena {
            cursor: Cell::new(chunk::EMPTY_CURSOR),
            limit: Cell::new(chunk::EMPTY_CURSOR),
            current: Cell::new(chunk::EMPTY_HEADER),
            spare: Cell::new(None),
            big: Cell::new(None),
            padding: Cell::new(0),
            count: Cell::new(0),
            peak: Cell::new(0),
            retired_used: Cell::new(0),
            reserved: Cell::new(0),
            chunks: Cell::new(0),
            byte_limit: Cell::new(usize::MAX),
            stack_guards: Cell::new(core::ptr::null_mut()),
            _policy: PhantomData,
        }
    }

    /// An arena whose first chunk holds at least `bytes` bytes of data.
    /// Panics (through `handle_alloc_error`) if it cannot be mapped.
    pub fn with_capacity(bytes: usize) -> Self {
        match Self::try_with_capacity(bytes) {
            Ok(a) => a,
            Err(AllocError) => {
                crate::init::oom(Layout::from_size_align(bytes, 1).unwrap_or(Layout::new::<u8>()))
            }
        }
    }

    /// An arena whose first chunk holds at least `bytes` bytes of data, or
    /// `Err(AllocError)` if that cannot be mapped or represented.
    pub fn try_with_capacity(bytes: usize) -> Result<Self, AllocError> {
        let arena = Self::new();
        if bytes > 0 {
            let span = if P::CANARIES {
                bytes.checked_add(debug::worst_span(0, P::MIN_ALIGN)).ok_or(AllocError)?
            } else {
                bytes
            };
            let size = Self::chunk_size_for(span, P::MIN_ALIGN).ok_or(AllocError)?;
            let size = size.max(P::MIN_CHUNK_SIZE);
            let c = chunk::map(size, P::GUARD_PAGES).map_err(|_| AllocError)?;
            arena.count_chunk(c);
            arena.enter(c);
        }
        Ok(arena)
    }

    /// Caps the bytes this arena may map (chunk headers included, guards
    /// excluded); `None` removes the cap. Allocations that would need more
    /// fail with `AllocError`. Chunks already held are kept.
    pub fn set_allocation_limit(&self, limit: Option<usize>) {
        self.byte_limit.set(limit.unwrap_or(usize::MAX));
    }

    /// The cap set by [`set_allocation_limit`](Self::set_allocation_limit).
    pub fn allocation_limit(&self) -> Option<usize> {
        Some(self.byte_limit.get()).filter(|&l| l != usize::MAX)
    }

    // ---------------------------------------------------------------
    // Allocation
    // ---------------------------------------------------------------

    /// Moves `value` into the arena. Panics (through `handle_alloc_error`)
    /// when memory runs out.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc<T>(&self, value: T) -> &mut T {
        match self.try_alloc(value) {
            Ok(r) => r,
            Err(_) => crate::init::oom(Layout::new::<T>()),
        }
    }

    /// Moves `value` into the arena, or gives `Err(AllocError)`.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, AllocError> {
        let p = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: `p` is a fresh block sized and aligned for `T`, handed out
        // once; it lives as long as `&self` (reset and drop need `&mut`).
        unsafe {
            p.as_ptr().write(value);
            Ok(&mut *p.as_ptr())
        }
    }

    /// A block for `layout`. Panics (through `handle_alloc_error`) when
    /// memory runs out.
    #[inline(always)]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match self.try_alloc_layout(layout) {
            Ok(p) => p,
            Err(_) => crate::init::oom(layout),
        }
    }

    /// A block for `layout`, or `Err(AllocError)` when memory runs out or
    /// the size cannot be represented. The block is uninitialised.
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if P::CANARIES {
            return self.alloc_checked::<false>(layout);
        }
        let cursor = self.cursor.get();
        let addr = cursor.addr().get();
        // SAFETY: the cursor is always a multiple of MIN_ALIGN (see the
        // invariants); telling the compiler lets it drop the rounding below
        // for alignments up to MIN_ALIGN.
        unsafe { core::hint::assert_unchecked(align::is_aligned(addr, P::MIN_ALIGN)) };
        // Round the cursor up to the alignment and the size up to
        // MIN_ALIGN. No overflow: user-space addresses are far below
        // 2^63, and a Layout's size plus its alignment is at most
        // isize::MAX + 1.
        let mask = layout.align() - 1;
        let start = (addr + mask) & !mask;
        let end = start + align::round_up(layout.size(), P::MIN_ALIGN);
        if end <= self.limit.get().addr().get() {
            // SAFETY: `addr <= start <= end <= limit`: the block and the new
            // cursor stay inside the current chunk's data (or at the
            // sentinel's end for a zero-sized block).
            let (block, next) = unsafe { (cursor.add(start - addr), cursor.add(end - addr)) };
            self.cursor.set(next);
            if P::EXACT_STATS {
                self.padding.set(self.padding.get() + (end - addr - layout.size()));
                self.count.set(self.count.get() + 1);
            }
            debug::unpoison(block, layout.size());
            return Ok(block);
        }
        self.alloc_slow::<false>(layout)
    }

    /// A block for a `dealloc`-capable path (the `Allocator` impls and
    /// `collections::Vec`): under `TRACK_LEAKS` it is recorded for
    /// [`leaks`](Self::leaks).
    #[inline(always)]
    pub(crate) fn alloc_tracked(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if P::CANARIES {
            if P::TRACK_LEAKS {
                self.alloc_checked::<true>(layout)
            } else {
                self.alloc_checked::<false>(layout)
            }
        } else {
            self.try_alloc_layout(layout)
        }
    }

    /// [`try_alloc_layout`](Self::try_alloc_layout) under canaries: a
    /// header below the block and a canary above it (see [`debug`]).
    #[inline(always)]
    fn alloc_checked<const TRACK: bool>(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            // No header for a block with no bytes: the slow path's dangling
            // pointer, which no chunk contains, so `deallocate` ignores it.
            return self.alloc_slow::<TRACK>(layout);
        }
        match self.bump_checked(layout, Self::flags::<TRACK>()) {
            Some(p) => Ok(p),
            None => self.alloc_slow::<TRACK>(layout),
        }
    }

    /// The header flags of a block allocated with `TRACK` (a const, so the
    /// slow path of untracked allocations carries no flags argument).
    #[inline(always)]
    const fn flags<const TRACK: bool>() -> u64 {
        if TRACK {
            debug::TRACKED
        } else {
            0
        }
    }

    /// Places a block with its header and canary in the current chunk, or
    /// `None` when it has no room.
    #[inline(always)]
    fn bump_checked(&self, layout: Layout, flags: u64) -> Option<NonNull<u8>> {
        let cursor = self.cursor.get();
        let addr = cursor.addr().get();
        // SAFETY: the cursor is always a multiple of MIN_ALIGN (see the
        // invariants); knowing it, the compiler sees that a block aligned
        // to at most 16 needs no pad words.
        unsafe { core::hint::assert_unchecked(align::is_aligned(addr, P::MIN_ALIGN)) };
        let (start, next) = debug::place_with_header(addr, layout.size(), layout.align().max(P::MIN_ALIGN));
        if next > self.limit_addr() {
            return None;
        }
        // SAFETY: `addr <= start <= next <= limit`: the pad words, header,
        // block and canary lie inside the current chunk's data, which is
        // ours and unused past the cursor; `place` keeps them 8-aligned.
        let block = unsafe {
            debug::write_block(cursor, start - debug::HEADER - addr, layout.size(), flags);
            self.cursor.set(cursor.add(next - addr));
            cursor.add(start - addr)
        };
        if P::EXACT_STATS {
            self.padding.set(self.padding.get() + (next - addr - layout.size()));
            self.count.set(self.count.get() + 1);
        }
        self.log_alloc(block, layout);
        Some(block)
    }

    #[inline(always)]
    fn log_alloc(&self, block: NonNull<u8>, layout: Layout) {
        if P::LOG_EVENTS {
            debug::log(Event::Alloc {
                arena: self.id(),
                addr: block.addr().get(),
                size: layout.size(),
                align: layout.align(),
            });
        }
    }

    /// The arena's address, as the log names it.
    fn id(&self) -> usize {
        (self as *const Self).addr()
    }

    /// Copies `src` into the arena.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        // SAFETY: a fresh block for `src`'s layout, valid while `&self`
        // lives (reset and drop need `&mut`).
        unsafe { crate::init::copy_slice(self.try_alloc_layout(Layout::for_value(src)), src) }
    }

    /// Copies `s` into the arena.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: the bytes were copied from a `str`.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }

    /// `size` uninitialised bytes aligned to 64 (a cache line, and the
    /// widest SIMD register). Panics when memory runs out.
    pub fn alloc_simd(&self, size: usize) -> NonNull<u8> {
        self.alloc_aligned(size, 64)
    }

    /// `size` uninitialised bytes aligned to `align`. Panics if `align` is
    /// not a power of two or `size` cannot be represented at that alignment,
    /// and (through `handle_alloc_error`) when memory runs out.
    pub fn alloc_aligned(&self, size: usize, align: usize) -> NonNull<u8> {
        let layout = Layout::from_size_align(size, align)
            .expect("alloc_aligned: align must be a power of two and size fit in isize");
        self.alloc_layout(layout)
    }

    /// Like [`alloc_aligned`](Self::alloc_aligned), with every failure
    /// reported as `Err(AllocError)`.
    pub fn try_alloc_aligned(&self, size: usize, align: usize) -> Result<NonNull<u8>, AllocError> {
        let layout = Layout::from_size_align(size, align).map_err(|_| AllocError)?;
        self.try_alloc_layout(layout)
    }

    /// The slow half of [`try_alloc_layout`](Self::try_alloc_layout): the
    /// current chunk has no room.
    #[cold]
    #[inline(never)]
    fn alloc_slow<const TRACK: bool>(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align().max(P::MIN_ALIGN));
        if size == 0 {
            // A zero-sized block needs no memory: a well-aligned dangling
            // pointer will do, and deallocating it is a no-op.
            self.count_one();
            // SAFETY: `align` is a non-zero power of two.
            return Ok(unsafe { NonNull::new_unchecked(core::ptr::without_provenance_mut(align)) });
        }
        // A new arena's first small block: take the thread's cached chunk
        // and bump in it, with none of the general path's list handling.
        if !P::CANARIES
            && ChunkHeader::is_sentinel(self.current.get())
            && size + align <= P::MIN_CHUNK_SIZE - HEADER_SIZE
            && self.spare.get().is_none()
            && self.byte_limit.get() == usize::MAX
        {
            // The SAFETY argument below needs 8 <= MIN_ALIGN <= 64.
            const { assert!(P::MIN_ALIGN >= 8 && P::MIN_ALIGN <= 64) };
            let req = ChunkRequest {
                min_size: P::MIN_CHUNK_SIZE,
                map_size: P::MIN_CHUNK_SIZE,
                guards: P::GUARD_PAGES,
            };
            if let Some(c) = chunk::acquire_local(req) {
                self.count_chunk(c);
                self.current.set(c);
                let start = ChunkHeader::data_start(c);
                let pad = align::padding_for(start.addr().get(), align);
                let step = pad + Self::round(size);
                // The data area holds at least MIN_CHUNK_SIZE - HEADER_SIZE >=
                // size + align bytes; `start` is 64-aligned and `align >= 8`,
                // so `pad` and `round(size)` are multiples of 8 and
                // `step <= (align - 8) + (size + 7) < size + align`.
                let limit = ChunkHeader::capacity(c);
                // SAFETY: by the bound above, the block, the new cursor
                // (`step`) and the limit lie inside the chunk's data area.
                let (block, end, limit) = unsafe { (start.add(pad), start.add(step), start.add(limit)) };
                self.cursor.set(end);
                self.limit.set(limit);
                self.add_padding(step - size);
                self.count_one();
                // (No ASan unpoisoning: a chunk in the thread's slot was
                // unpoisoned when it was released.)
                return Ok(block);
            }
        }
        // Small requests (the common case) fit any chunk; skip the maths.
        // No overflow: a Layout's size plus its alignment is at most
        // isize::MAX + 1.
        // Under canaries a block needs room for its header, pad words and
        // canary too (no overflow: a Layout's size plus its alignment is at
        // most isize::MAX + 1).
        let span = if P::CANARIES { debug::worst_span(size, align) } else { size };
        let need = if span + align <= P::MIN_CHUNK_SIZE - HEADER_SIZE {
            P::MIN_CHUNK_SIZE
        } else {
            Self::chunk_size_for(span, align).ok_or(AllocError)?
        };
        let next = self.next_chunk_size();
        let c = if let Some(c) = self.take_spare(span, align) {
            c
        } else if need > next {
            return if P::CANARIES {
                self.alloc_oversized_checked(layout, need, Self::flags::<TRACK>())
            } else {
                self.alloc_oversized(size, align, need)
            };
        } else {
            self.new_chunk(need, next)?
        };
        self.enter(c);
        if P::CANARIES {
            // The chunk was chosen with room for the worst-case span.
            return self.bump_checked(layout, Self::flags::<TRACK>()).ok_or(AllocError);
        }
        // The fresh chunk has room by construction; the fast path now
        // succeeds (a failure would mean a bug in the sizing, reported as
        // an allocation error rather than a loop).
        let cursor = self.cursor.get();
        let b = align::bump_up(cursor.addr().get(), self.limit_addr(), size, align, P::MIN_ALIGN)
            .ok_or(AllocError)?;
        let (at, to) = (b.start - cursor.addr().get(), b.end - cursor.addr().get());
        // SAFETY: `bump_up` placed the block and the new cursor inside the
        // current chunk's data.
        let (start, end) = unsafe { (cursor.add(at), cursor.add(to)) };
        self.cursor.set(end);
        self.add_padding(b.end - cursor.addr().get() - size);
        self.count_one();
        debug::unpoison(start, size);
        Ok(start)
    }

    /// A block too large for the next regular chunk: a chunk of its own, on
    /// the `big` list; the current chunk stays current.
    #[inline(never)]
    fn alloc_oversized(&self, size: usize, align: usize, need: usize) -> Result<NonNull<u8>, AllocError> {
        let c = self.new_chunk(need, need)?;
        let start = ChunkHeader::data_start(c);
        let Some(b) = align::bump_up(start.addr().get(), ChunkHeader::data_end(c), size, align, P::MIN_ALIGN)
        else {
            // Cannot happen (the chunk was sized for the block); give the
            // chunk back rather than leak it.
            self.disown(c);
            return Err(AllocError);
        };
        // SAFETY: the header is ours and not the sentinel.
        let h = unsafe { c.as_ref() };
        h.prev.set(self.big.get());
        h.used_end.set(b.end);
        self.big.set(Some(c));
        self.retired_used.set(self.retired_used.get() + (b.end - start.addr().get()));
        self.add_padding(b.end - start.addr().get() - size);
        self.count_one();
        // SAFETY: `bump_up` placed the block inside the chunk's data.
        let block = unsafe { start.add(b.start - start.addr().get()) };
        debug::unpoison(block, size);
        Ok(block)
    }

    /// [`alloc_oversized`](Self::alloc_oversized) under canaries: the
    /// block's header at the chunk's data start, its canary after it.
    #[inline(never)]
    fn alloc_oversized_checked(
        &self,
        layout: Layout,
        need: usize,
        flags: u64,
    ) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align().max(P::MIN_ALIGN));
        let c = self.new_chunk(need, need)?;
        let start = ChunkHeader::data_start(c);
        let (at, next) = debug::place_with_header(start.addr().get(), size, align);
        if next > ChunkHeader::data_end(c) {
            self.disown(c);
            return Err(AllocError);
        }
        let used = next - start.addr().get();
        // SAFETY: the span `start..next` lies in the fresh chunk's data
        // (checked above), 8-aligned by `place`.
        let block = unsafe {
            debug::write_block(start, at - debug::HEADER - start.addr().get(), size, flags);
            start.add(at - start.addr().get())
        };
        // SAFETY: the header is ours and not the sentinel.
        let h = unsafe { c.as_ref() };
        h.prev.set(self.big.get());
        h.used_end.set(next);
        self.big.set(Some(c));
        self.retired_used.set(self.retired_used.get() + used);
        self.add_padding(used - size);
        self.count_one();
        self.log_alloc(block, layout);
        Ok(block)
    }

    /// Usable chunk size (header included) that holds `size` bytes at
    /// `align`, or `None` if unrepresentable.
    fn chunk_size_for(size: usize, align: usize) -> Option<usize> {
        align::chunk_size_for(size, align, HEADER_SIZE, crate::sys::page_size(), 0)
    }

    /// The size of the next regular chunk: twice the current one.
    fn next_chunk_size(&self) -> usize {
        let current = ChunkHeader::size(self.current.get());
        current.saturating_mul(2).clamp(P::MIN_CHUNK_SIZE, isize::MAX as usize / 2 + 1)
    }

    /// A chunk from the cache or the OS, counted as this arena's.
    fn new_chunk(&self, min_size: usize, map_size: usize) -> Result<NonNull<ChunkHeader>, AllocError> {
        let c = if self.byte_limit.get() == usize::MAX {
            // Ask the cache for the geometric size too, not just what this
            // request needs: a smaller cached chunk would stall the growth
            // and make every reset cycle refill.
            chunk::acquire(ChunkRequest {
                min_size: map_size.max(min_size),
                map_size,
                guards: P::GUARD_PAGES,
            })
        } else {
            let room = self.byte_limit.get().saturating_sub(self.reserved.get());
            if min_size > room {
                return Err(AllocError);
            }
            // Under a cap, map exactly what fits rather than take a cached
            // chunk of unknown size.
            chunk::map(map_size.min(room).max(min_size), P::GUARD_PAGES).ok()
        };
        let c = c.ok_or(AllocError)?;
        self.count_chunk(c);
        Ok(c)
    }

    /// Counts a chunk as this arena's.
    fn count_chunk(&self, c: NonNull<ChunkHeader>) {
        self.reserved.set(self.reserved.get() + ChunkHeader::size(c));
        self.chunks.set(self.chunks.get() + 1);
        if P::LOG_EVENTS {
            let (chunk, size) = (c.addr().get(), ChunkHeader::size(c));
            debug::log(Event::ChunkMap { arena: self.id(), chunk, size });
        }
    }

    /// Gives chunk `c` back to the cache or the OS (the log sees it).
    fn release_chunk(&self, c: NonNull<ChunkHeader>) {
        if P::LOG_EVENTS {
            let (chunk, size) = (c.addr().get(), ChunkHeader::size(c));
            debug::log(Event::ChunkUnmap { arena: self.id(), chunk, size });
        }
        chunk::give_back(c);
    }

    /// Takes the first spare chunk in which `size` bytes at `align` fit.
    fn take_spare(&self, size: usize, align: usize) -> Option<NonNull<ChunkHeader>> {
        let mut link: Option<NonNull<ChunkHeader>> = None;
        let mut cur = self.spare.get();
        while let Some(c) = cur {
            // SAFETY: spare chunks are owned by this arena and live.
            let next = unsafe { c.as_ref() }.prev.get();
            let start = ChunkHeader::data_start(c).addr().get();
            if align::bump_up(start, ChunkHeader::data_end(c), size, align, P::MIN_ALIGN).is_some() {
                match link {
                    // SAFETY: as above.
                    Some(l) => unsafe { l.as_ref() }.prev.set(next),
                    None => self.spare.set(next),
                }
                return Some(c);
            }
            link = Some(c);
            cur = next;
        }
        None
    }

    /// Makes `c` (owned, unlinked) the current chunk.
    fn enter(&self, c: NonNull<ChunkHeader>) {
        let old = self.current.get();
        // SAFETY: `c` is owned by this arena and not the sentinel.
        let h = unsafe { c.as_ref() };
        if ChunkHeader::is_sentinel(old) {
            h.prev.set(None);
        } else {
            let used = self.cursor.get().addr().get();
            // SAFETY: the current chunk is live and not the sentinel.
            unsafe { old.as_ref() }.used_end.set(used);
            self.retired_used
                .set(self.retired_used.get() + (used - ChunkHeader::data_start(old).addr().get()));
            h.prev.set(Some(old));
        }
        self.current.set(c);
        let start = ChunkHeader::data_start(c);
        self.cursor.set(start);
        // SAFETY: the data area runs from `start` to `data_end`.
        self.limit.set(unsafe { start.add(ChunkHeader::capacity(c)) });
    }

    #[inline(always)]
    fn limit_addr(&self) -> usize {
        self.limit.get().addr().get()
    }

    // ---------------------------------------------------------------
    // In-place operations on the last block (the Allocator impls)
    // ---------------------------------------------------------------

    #[inline(always)]
    fn round(size: usize) -> usize {
        align::round_up(size, P::MIN_ALIGN)
    }

    /// The bytes a block of `size` counts for in `allocated_bytes`: its
    /// size with exact statistics, else its size rounded to MIN_ALIGN (the
    /// fast path does not record the rounding).
    #[inline(always)]
    fn counted(size: usize) -> usize {
        if P::EXACT_STATS {
            size
        } else {
            Self::round(size)
        }
    }

    /// Whether the block at `ptr` of `size` bytes is the last one handed
    /// out (its rounded end is the cursor).
    #[inline(always)]
    fn is_last(&self, ptr: NonNull<u8>, size: usize) -> bool {
        let tail = if P::CANARIES { debug::TAIL } else { 0 };
        ptr.addr().get().wrapping_add(Self::round(size) + tail) == self.cursor.get().addr().get()
    }

    /// `ptr` with the provenance of the chunk it lies in (found by walking
    /// the arena's lists), for writing a header below a block that is not
    /// in the current chunk. `None` if no chunk holds it.
    fn in_chunk(&self, ptr: NonNull<u8>) -> Option<NonNull<u8>> {
        let addr = ptr.addr().get();
        let mut found = None;
        self.for_each_chunk(|c, _| {
            let start = ChunkHeader::data_start(c);
            if found.is_none() && start.addr().get() <= addr && addr < ChunkHeader::data_end(c) {
                // SAFETY: `addr` lies inside the chunk's data.
                found = Some(unsafe { start.add(addr - start.addr().get()) });
            }
        });
        found
    }

    /// Calls `f(chunk, used_end)` for every chunk that may hold blocks: the
    /// used list (the current chunk up to the cursor) and the big list.
    fn for_each_chunk(&self, mut f: impl FnMut(NonNull<ChunkHeader>, usize)) {
        let current = self.current.get();
        let mut end = self.cursor.get().addr().get();
        let mut cur = (!ChunkHeader::is_sentinel(current)).then_some(current);
        while let Some(c) = cur {
            f(c, end);
            // SAFETY: chunks on the arena's lists are owned and live.
            cur = unsafe { c.as_ref() }.prev.get();
            if let Some(p) = cur {
                // SAFETY: as above.
                end = unsafe { p.as_ref() }.used_end.get();
            }
        }
        let mut cur = self.big.get();
        while let Some(c) = cur {
            // SAFETY: as above.
            let h = unsafe { c.as_ref() };
            f(c, h.used_end.get());
            cur = h.prev.get();
        }
    }

    #[inline(always)]
    fn count_one(&self) {
        if P::EXACT_STATS {
            self.count.set(self.count.get() + 1);
        }
    }

    /// Records the rounding and alignment padding of a new block (only
    /// with exact statistics; see `Policy::EXACT_STATS`).
    #[inline(always)]
    fn add_padding(&self, bytes: usize) {
        if P::EXACT_STATS {
            self.padding.set(self.padding.get() + bytes);
        }
    }

    /// Data the cursor has passed over in all chunks.
    #[inline]
    fn consumed(&self) -> usize {
        let start = ChunkHeader::data_start(self.current.get()).addr().get();
        self.retired_used.get() + (self.cursor.get().addr().get() - start)
    }

    /// Live bytes: consumed minus padding.
    #[inline]
    fn allocated(&self) -> usize {
        self.consumed().saturating_sub(self.padding.get())
    }

    #[inline]
    fn note_peak(&self) {
        self.peak.set(self.peak.get().max(self.allocated()));
    }

    /// Gives a block back; reclaims it if it is the last one.
    ///
    /// # Safety
    /// `ptr` was handed out by this arena for `layout` (or a layout it was
    /// since grown or shrunk to) and is not used again.
    #[inline]
    pub(crate) unsafe fn dealloc_raw(&self, ptr: NonNull<u8>, layout: Layout) {
        self.note_peak();
        if P::LOG_EVENTS {
            debug::log(Event::Dealloc { arena: self.id(), addr: ptr.addr().get(), size: layout.size() });
        }
        if P::CANARIES {
            // SAFETY: forwarded from the caller.
            return unsafe { self.dealloc_checked(ptr, layout) };
        }
        if self.is_last(ptr, layout.size()) {
            // The block's rounding was padding; the cursor gives it back.
            let round = Self::round(layout.size());
            if P::EXACT_STATS {
                self.padding.set(self.padding.get() - (round - layout.size()));
            }
            // SAFETY: the block lies right below the cursor in the current
            // chunk, so moving the cursor back stays inside the chunk.
            self.cursor.set(unsafe { self.cursor.get().sub(round) });
            // SAFETY: the block is ours again and writable.
            unsafe { debug::poison_freed(ptr, layout.size(), P::POISON, P::POISON_BYTE) };
        } else {
            // A hole the cursor cannot take back. Without exact stats the
            // block's rounding was counted as allocated, so it goes too.
            self.padding.set(self.padding.get() + Self::counted(layout.size()));
            // SAFETY: the block is ours again and writable.
            unsafe { debug::poison_freed(ptr, layout.size(), P::POISON, P::POISON_BYTE) };
        }
    }

    /// [`dealloc_raw`](Self::dealloc_raw) under canaries: the last block
    /// gives back its header and canary too; any other is marked freed in
    /// its header, so walks and leak reports skip it.
    ///
    /// # Safety
    /// As for `dealloc_raw`.
    #[inline(never)]
    unsafe fn dealloc_checked(&self, ptr: NonNull<u8>, layout: Layout) {
        let size = layout.size();
        if self.is_last(ptr, size) {
            let cursor = self.cursor.get();
            // SAFETY: the last block's header is 16 bytes below it, in the
            // current chunk.
            let pad = unsafe { debug::pad_of(cursor.with_addr(ptr.addr())) };
            let from = ptr.addr().get() - debug::HEADER - pad;
            let span = cursor.addr().get() - from;
            if P::EXACT_STATS {
                self.padding.set(self.padding.get() - (span - size));
            }
            // SAFETY: `from` is where the cursor stood before the block was
            // made, in the current chunk below the cursor.
            let from = unsafe { cursor.sub(span) };
            self.cursor.set(from);
            // SAFETY: the span is ours again and writable.
            unsafe { debug::poison_freed(from, span, P::POISON, P::POISON_BYTE) };
        } else if let Some(p) = self.in_chunk(ptr) {
            self.padding.set(self.padding.get() + size);
            // SAFETY: `p` is the block, with its chunk's provenance; it is
            // ours again.
            unsafe {
                debug::set_flag(p, debug::FREED);
                debug::poison_freed(p, size, P::POISON, P::POISON_BYTE);
            }
        }
    }

    /// Moves the end of the last block, at `ptr` with `old_size` bytes, so
    /// that it holds `new_size` bytes; `false` (and nothing changed) when
    /// the block is not the last one or the chunk has no room.
    #[inline(always)]
    pub(crate) fn resize_last_in_place(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        if !self.is_last(ptr, old_size) {
            return false;
        }
        let new_round = Self::round(new_size);
        let tail = if P::CANARIES { debug::TAIL } else { 0 };
        if new_round + tail > self.limit_addr() - ptr.addr().get() {
            return false;
        }
        let old_round = Self::round(old_size);
        // The new cursor is `ptr + new_round`, with the provenance of the
        // arena's own cursor rather than the caller's pointer. Computing
        // the address from `ptr` (not from the cursor's value) keeps the
        // cursor load off the critical path of a grow-per-push loop.
        let moved = self.cursor.get().as_ptr().with_addr(ptr.addr().get() + new_round + tail);
        if new_round < old_round {
            self.note_peak();
        }
        if P::CANARIES {
            // SAFETY: the last block lies in the current chunk, below the
            // cursor; its new span fits below the limit (checked above).
            unsafe {
                debug::resize_block(self.cursor.get().with_addr(ptr.addr()), old_size, new_size, false)
            };
        } else {
            debug::unpoison(ptr, new_size);
        }
        // SAFETY: `moved` is `ptr + new_round`, inside the current chunk's
        // data (`new_round <= limit - ptr`), so in bounds and not null.
        self.cursor.set(unsafe { NonNull::new_unchecked(moved) });
        if P::EXACT_STATS {
            // The old block's rounding is given back, the new one's taken.
            let padding = self.padding.get().wrapping_sub(old_round - old_size);
            self.padding.set(padding.wrapping_add(new_round - new_size));
        }
        true
    }

    /// Grows or shrinks a block; in place when it is the last one, it is
    /// aligned for `new` and the chunk has room.
    ///
    /// # Safety
    /// `ptr` was handed out by this arena for `old` and is not used through
    /// its old address after a move. For growth `new.size() >= old.size()`.
    #[inline(always)]
    pub(crate) unsafe fn realloc_raw(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let addr = ptr.addr().get();
        // A mask, not `%`: the alignment is a power of two, and a division
        // would cost more than the rest of the in-place path.
        let aligned = addr & (new.align() - 1) == 0;
        if aligned {
            if self.resize_last_in_place(ptr, old.size(), new.size()) {
                return Ok(ptr);
            }
            if new.size() <= old.size() {
                // Shrinking a block that is not the last (the last one
                // always shrinks in place above): keep it where it is.
                self.note_peak();
                let freed = Self::counted(old.size()) - Self::counted(new.size());
                self.padding.set(self.padding.get() + freed);
                if P::CANARIES {
                    if let Some(p) = self.in_chunk(ptr) {
                        // SAFETY: a live block of this arena, with its
                        // chunk's provenance; it keeps its span.
                        unsafe { debug::resize_block(p, old.size(), new.size(), true) };
                    }
                }
                return Ok(ptr);
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc_move(ptr, old, new) }
    }

    /// The slow half of [`realloc_raw`](Self::realloc_raw): copy into a
    /// fresh block.
    ///
    /// # Safety
    /// As for `realloc_raw`.
    #[cold]
    #[inline(never)]
    unsafe fn realloc_move(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let fresh = self.alloc_tracked(new)?;
        // SAFETY: `fresh` is a new block, disjoint from the old one, and
        // both hold at least min(old, new) bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr(), old.size().min(new.size()));
            self.dealloc_raw(ptr, old);
        }
        Ok(fresh)
    }

    // ---------------------------------------------------------------
    // Scopes, reset, statistics
    // ---------------------------------------------------------------

    fn mark(&self) -> Mark {
        Mark {
            current: self.current.get(),
            cursor: self.cursor.get(),
            big: self.big.get(),
            padding: self.padding.get(),
            retired_used: self.retired_used.get(),
            stack_guards: self.stack_guards.get(),
        }
    }

    /// Goes back to `m`: chunks entered since become spares, big chunks made
    /// since go back to the cache.
    ///
    /// # Safety
    /// `m` was taken from this arena, marks are rewound in LIFO order, and
    /// no block handed out since `m` is used again.
    unsafe fn rewind(&self, m: Mark) {
        self.unguard_stacks(m.stack_guards);
        self.note_peak();
        let mut c = self.current.get();
        let mut used_end = self.cursor.get().addr().get();
        while c != m.current {
            // SAFETY: chunks on the used list are owned and live.
            let h = unsafe { c.as_ref() };
            let prev = h.prev.get().unwrap_or(chunk::empty());
            self.give_up(c, ChunkHeader::data_start(c), used_end, When::ScopeExit);
            h.prev.set(self.spare.get());
            self.spare.set(Some(c));
            c = prev;
            if !ChunkHeader::is_sentinel(c) {
                // SAFETY: as above.
                used_end = unsafe { c.as_ref() }.used_end.get();
            }
        }
        if !ChunkHeader::is_sentinel(c) {
            // `m.cursor..used_end` lies in chunk `c`'s data and holds only
            // blocks made since the mark.
            self.give_up(c, m.cursor, used_end, When::ScopeExit);
        }
        let mut b = self.big.get();
        while b != m.big {
            let Some(bc) = b else { break };
            // SAFETY: big chunks are owned and live.
            b = unsafe { bc.as_ref() }.prev.get();
            self.disown(bc);
        }
        self.big.set(m.big);
        self.current.set(m.current);
        self.cursor.set(m.cursor);
        let start = ChunkHeader::data_start(m.current);
        // SAFETY: the data area runs from `start` to `data_end`.
        self.limit.set(unsafe { start.add(ChunkHeader::capacity(m.current)) });
        self.padding.set(m.padding);
        self.retired_used.set(m.retired_used);
    }

    /// A block of `layout` (page-aligned, more than one page) whose first
    /// page is a guard page until the arena gives the block up (at
    /// `reset`, at drop, or when the scope it was made in ends), registered
    /// in the guard-page table with the block's end as the top it guards.
    /// The building block of `Arena::alloc_stack` (`stack/arena_stack.rs`).
    ///
    /// Errors: `OutOfMemory` when the arena cannot grow (its allocation
    /// limit, or mmap failing), or the OS reason the guard could not be
    /// installed.
    pub(crate) fn alloc_guarded(&self, layout: Layout) -> io::Result<NonNull<u8>> {
        let page = sys::page_size();
        debug_assert!(layout.align() >= page && layout.size() > page);
        let exhausted = |_| io::Error::new(io::ErrorKind::OutOfMemory, "the arena cannot grow");
        let record = self.try_alloc_layout(Layout::new::<StackGuard>()).map_err(exhausted)?;
        let block = self.try_alloc_layout(layout).map_err(exhausted)?;
        // SAFETY: the first page of a block just handed out, page-aligned
        // and ours; nothing else refers to it.
        let kind = unsafe { sys::guard(block, page)? };
        let record = record.cast::<StackGuard>();
        // SAFETY: a fresh block of the arena, sized and aligned for a
        // `StackGuard`; it lives until the arena gives its memory up, and
        // every path that does walks this list first (`unguard_stacks`).
        unsafe { record.as_ptr().write(StackGuard { prev: self.stack_guards.get(), page: block, kind }) };
        self.stack_guards.set(record.as_ptr());
        let top = block.as_ptr().wrapping_add(layout.size());
        crate::guards::register(block.as_ptr() as usize, top as usize);
        Ok(block)
    }

    /// Takes off the guard pages of stacks made after `keep` (the list
    /// head a mark saw; null for all of them).
    #[inline]
    fn unguard_stacks(&self, keep: *mut StackGuard) {
        if self.stack_guards.get() != keep {
            self.unguard_stacks_slow(keep);
        }
    }

    #[cold]
    #[inline(never)]
    fn unguard_stacks_slow(&self, keep: *mut StackGuard) {
        let page = sys::page_size();
        let mut cur = self.stack_guards.get();
        while cur != keep && !cur.is_null() {
            // SAFETY: records on the list are live blocks of this arena
            // (the arena has not given their memory up: this walk comes
            // first).
            let StackGuard { prev, page: at, kind } = unsafe { cur.read() };
            cur = prev;
            crate::guards::unregister(at.as_ptr() as usize);
            // A failure would leave the page guarded: the arena would then
            // fault on it rather than hand out memory it cannot use; that is
            // fatal but not unsound. munmap of the chunk still works.
            // SAFETY: `at` is a page this arena guarded with `kind`, inside
            // one of its chunks; no stack on it is alive (the caller is
            // giving up every block made since).
            if unsafe { sys::unguard(at, page, kind) }.is_err() {
                sys::fatal(b"fiberalloc: could not remove an arena stack's guard page\n");
            }
        }
        self.stack_guards.set(keep);
    }

    /// Gives up the blocks of chunk `c` from `from` (a position the cursor
    /// once had in it) to `to`: under canaries checks them (and the chunk
    /// header) and aborts with a report on corruption; at drop under
    /// `TRACK_LEAKS` reports the tracked blocks still live; then poisons
    /// the range.
    #[inline(always)]
    fn give_up(&self, c: NonNull<ChunkHeader>, from: NonNull<u8>, to: usize, when: When) {
        if !(P::CANARIES || P::POISON || cfg!(fiberalloc_asan)) {
            return;
        }
        if ChunkHeader::is_sentinel(c) || to <= from.addr().get() {
            return;
        }
        if P::CANARIES {
            let leaks = P::TRACK_LEAKS && matches!(when, When::Drop);
            // SAFETY: `from..to` is used data of the chunk, laid out by the
            // canary paths since the cursor stood at `from`; the arena is
            // not `Sync`, so no other thread writes it.
            unsafe { walk::sweep(c, from, to, leaks, self.id(), when.name()) };
        }
        // SAFETY: `from..to` is used data of chunk `c` that the caller is
        // giving up; nothing refers to it any more.
        unsafe { debug::poison_freed(from, to - from.addr().get(), P::POISON, P::POISON_BYTE) };
    }

    /// Stops counting `c` as this arena's and gives it back.
    fn disown(&self, c: NonNull<ChunkHeader>) {
        self.reserved.set(self.reserved.get() - ChunkHeader::size(c));
        self.chunks.set(self.chunks.get() - 1);
        self.release_chunk(c);
    }

    /// Runs `f` and then frees everything it allocated, also when `f`
    /// panics. Memory the scope mapped is kept for later allocations.
    ///
    /// ```
    /// let mut arena: fiberalloc::Arena = fiberalloc::Arena::new();
    /// let sum = arena.scope(|a| {
    ///     let v = a.alloc_slice_copy(&[1u32, 2, 3]);
    ///     v.iter().sum::<u32>()
    /// });
    /// assert_eq!((sum, arena.stats().allocated_bytes), (6, 0));
    /// ```
    pub fn scope<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        struct Rewind<'a, P: Policy>(&'a Arena<P>, Mark);
        impl<P: Policy> Drop for Rewind<'_, P> {
            fn drop(&mut self) {
                // The arena is borrowed mutably for the whole scope, so no
                // other mark is rewound in between, and nothing allocated
                // inside outlives `f` (its lifetime is bounded by the borrow).
                // SAFETY: the mark was taken by `scope` on this arena; see above.
                unsafe { self.0.rewind(self.1) }
                if P::LOG_EVENTS {
                    debug::log(Event::ScopeExit { arena: self.0.id() });
                }
            }
        }
        if P::LOG_EVENTS {
            debug::log(Event::ScopeEnter { arena: self.id() });
        }
        let guard = Rewind(self, self.mark());
        f(guard.0)
    }

    /// Frees everything: keeps the largest chunk (an oversized one
    /// included) for reuse and gives the others back.
    pub fn reset(&mut self) {
        // SAFETY: `&mut self` proves no block is borrowed any more.
        unsafe { self.reset_shared() }
    }

    /// [`reset`](Self::reset) through a shared reference.
    ///
    /// # Safety
    /// No block handed out by this arena is used again, and no scope of it
    /// is open.
    pub(crate) unsafe fn reset_shared(&self) {
        if P::LOG_EVENTS {
            debug::log(Event::Reset { arena: self.id() });
        }
        self.unguard_stacks(core::ptr::null_mut());
        self.note_peak();
        let current = self.current.get();
        // No chunk, or one that is current (so no spare or big one): rewind
        // in place. The count answers without touching the chunk header,
        // which is cold after a large fill.
        if self.chunks.get() == 0 || (self.chunks.get() == 1 && !ChunkHeader::is_sentinel(current)) {
            // One chunk (or none): rewind it in place.
            self.give_up(
                current,
                ChunkHeader::data_start(current),
                self.cursor.get().addr().get(),
                When::Reset,
            );
            self.cursor.set(ChunkHeader::data_start(current));
            self.padding.set(0);
            self.count.set(0);
            self.retired_used.set(0);
            return;
        }
        // Pick the largest chunk (used, spare or big) to keep.
        let mut keep: Option<NonNull<ChunkHeader>> = None;
        let mut release_list = |list: Option<NonNull<ChunkHeader>>, first_used_end: Option<usize>| {
            let mut cur = list;
            let mut used_end = first_used_end;
            while let Some(c) = cur {
                // SAFETY: chunks on the arena's lists are owned and live.
                let h = unsafe { c.as_ref() };
                cur = h.prev.get();
                if let Some(end) = used_end {
                    self.give_up(c, ChunkHeader::data_start(c), end, When::Reset);
                    used_end = cur.map(|p| {
                        // SAFETY: as above.
                        unsafe { p.as_ref() }.used_end.get()
                    });
                }
                match keep {
                    Some(k) if ChunkHeader::size(k) >= ChunkHeader::size(c) => self.disown(c),
                    Some(k) => {
                        self.disown(k);
                        keep = Some(c);
                    }
                    None => keep = Some(c),
                }
            }
        };
        let current = self.current.get();
        if !ChunkHeader::is_sentinel(current) {
            release_list(Some(current), Some(self.cursor.get().addr().get()));
        }
        release_list(self.spare.take(), None);
        let big = self.big.take();
        // SAFETY: big chunks are owned and live; their `used_end` is set
        // when they are made.
        release_list(big, big.map(|c| unsafe { c.as_ref() }.used_end.get()));
        self.current.set(chunk::empty());
        self.cursor.set(chunk::empty_cursor());
        self.limit.set(chunk::empty_cursor());
        self.padding.set(0);
        self.count.set(0);
        self.retired_used.set(0);
        if let Some(k) = keep {
            // `enter` links from the sentinel: `k` becomes a lone chunk.
            self.enter(k);
        }
    }

    /// A snapshot of the arena's counters.
    pub fn stats(&self) -> Stats {
        let allocated = self.allocated();
        Stats {
            allocated_bytes: allocated,
            peak_bytes: self.peak.get().max(allocated),
            allocation_count: self.count.get(),
            padding_bytes: self.padding.get(),
            reserved_bytes: self.reserved.get(),
            chunk_count: self.chunks.get(),
        }
    }

    /// Checks the arena's invariants (see the module docs) and, under
    /// policies with canaries (`Safe`, `Debug`), every chunk header and
    /// every block's header and canary; `Err` names the first problem (for
    /// a block: its address, size and chunk). Walks all the arena's
    /// memory: cheap enough for tests and debug builds, not for hot loops.
    ///
    /// ```
    /// use fiberalloc::{policy::Safe, Arena};
    /// let arena = Arena::<Safe>::new();
    /// let b = arena.alloc_slice_copy(&[0u8; 13]);
    /// assert_eq!(arena.validate(), Ok(()));
    /// // One byte past the block (what a buggy unsafe copy might do):
    /// // SAFETY: none for real code; here the byte is the block's canary,
    /// // still memory of the arena's chunk, and it is put back below.
    /// unsafe { b.as_mut_ptr().add(13).write(0) };
    /// let err = arena.validate().unwrap_err();
    /// assert!(err.to_string().contains("13 bytes"));
    /// # // SAFETY: the canary byte put back (dropping would abort otherwise).
    /// # unsafe { b.as_mut_ptr().add(13).write(0xCA) };
    /// ```
    pub fn validate(&self) -> Result<(), Corruption> {
        let e = Corruption::Bookkeeping;
        let current = self.current.get();
        let cursor = self.cursor.get().addr().get();
        if ChunkHeader::data_start(current).addr().get() > cursor || cursor > self.limit_addr() {
            return Err(e("cursor outside the current chunk"));
        }
        if self.limit_addr() != ChunkHeader::data_end(current) {
            return Err(e("limit is not the current chunk's end"));
        }
        if !ChunkHeader::is_sentinel(current) && !cursor.is_multiple_of(P::MIN_ALIGN) {
            return Err(e("cursor not aligned to MIN_ALIGN"));
        }
        // Walks one list; returns (bytes, chunks, data used in retired
        // chunks) for it.
        let walk = |list: Option<NonNull<ChunkHeader>>, is_used: bool| {
            let (mut bytes, mut count, mut used) = (0usize, 0usize, 0usize);
            let mut cur = list;
            while let Some(c) = cur {
                if ChunkHeader::is_sentinel(c) {
                    return Err(e("sentinel linked into a list"));
                }
                bytes += ChunkHeader::size(c);
                count += 1;
                if count > 1 << 40 {
                    return Err(e("cycle in a chunk list"));
                }
                // SAFETY: chunks on the arena's lists are owned and live.
                let h = unsafe { c.as_ref() };
                if is_used && count > 1 {
                    let end = h.used_end.get();
                    let start = ChunkHeader::data_start(c).addr().get();
                    if end < start || end > ChunkHeader::data_end(c) {
                        return Err(e("used_end outside its chunk"));
                    }
                    used += end - start;
                }
                cur = h.prev.get();
            }
            Ok((bytes, count, used))
        };
        let used_list = if ChunkHeader::is_sentinel(current) { None } else { Some(current) };
        let (b1, c1, used_regular) = walk(used_list, true)?;
        let (b2, c2, _) = walk(self.spare.get(), false)?;
        let (b3, c3, _) = walk(self.big.get(), false)?;
        if b1 + b2 + b3 != self.reserved.get() || c1 + c2 + c3 != self.chunks.get() {
            return Err(e("reserved bytes or chunk count out of step with the lists"));
        }
        if used_regular > self.retired_used.get() {
            return Err(e("retired_used below the retired chunks' use"));
        }
        if self.consumed() < self.padding.get() {
            return Err(e("more padding than consumed bytes"));
        }
        // SAFETY: the arena is not `Sync`: no other thread writes its
        // blocks while the walk reads them.
        unsafe { walk::validate(self) }
    }

    /// The blocks still live that were allocated through a
    /// `dealloc`-capable path (the `Allocator` impls, so allocator-api2's
    /// and hashbrown's collections, and [`collections::Vec`](crate::collections::Vec)),
    /// oldest chunk last. Only `Debug` records them; under other policies
    /// the list is empty. Blocks from `alloc`, `alloc_str` and the like are
    /// never freed one by one and are not listed. A walk stops at the first
    /// corrupted block ([`validate`](Self::validate) names it).
    ///
    /// ```
    /// use fiberalloc::{policy::Debug, Arena};
    /// let arena = Arena::<Debug>::new();
    /// let mut kept = allocator_api2::vec::Vec::new_in(&arena);
    /// kept.extend([1u64, 2, 3]);
    /// kept.shrink_to_fit();
    /// let freed = allocator_api2::boxed::Box::new_in([0u8; 100], &arena);
    /// drop(freed);
    /// let leaks = arena.leaks();
    /// assert_eq!(leaks.len(), 1);
    /// assert_eq!((leaks[0].addr, leaks[0].size), (kept.as_ptr() as usize, 24));
    /// ```
    pub fn leaks(&self) -> Vec<Leak> {
        if !P::TRACK_LEAKS {
            return Vec::new();
        }
        // SAFETY: as in `validate`.
        unsafe { walk::leaks(self) }
    }

    /// A picture of the arena's chunks for [`report::svg`](crate::report::svg):
    /// per chunk its live bytes, padding (headers, canaries, alignment and
    /// freed blocks), free space and guard pages. Under `Fast`, which keeps
    /// no per-block records, a chunk's used bytes all count as live; the
    /// arena-wide padding is in [`stats`](Self::stats).
    pub fn memory_map(&self) -> crate::report::MemoryMap {
        let title = format!("Arena<{}>", walk::policy_name::<P>());
        // SAFETY: as in `validate`.
        unsafe { walk::memory_map(self, title) }
    }

    /// Whether `ptr` lies in one of this arena's chunks (data areas).
    pub fn contains(&self, ptr: *const u8) -> bool {
        walk::contains(self, ptr.addr())
    }
}

// SAFETY: the chunks named are on the arena's lists, owned and live while
// it is borrowed; a used chunk's blocks end at the cursor (the current
// chunk) or at its recorded `used_end`, and under `CANARIES` every
// allocation path writes block headers and canaries.
unsafe impl<P: Policy> walk::Chunks for Arena<P> {
    const CANARIES: bool = P::CANARIES;

    fn used(&self, mut f: impl FnMut(walk::Used)) {
        let current = self.current.get();
        self.for_each_chunk(|c, end| {
            f(walk::Used {
                chunk: c,
                start: ChunkHeader::data_start(c),
                end,
                limit: ChunkHeader::data_end(c),
                current: c == current,
            })
        });
    }

    fn spare(&self, mut f: impl FnMut(NonNull<ChunkHeader>)) {
        let mut cur = self.spare.get();
        while let Some(c) = cur {
            f(c);
            // SAFETY: spare chunks are owned and live.
            cur = unsafe { c.as_ref() }.prev.get();
        }
    }
}

impl<P: Policy> Drop for Arena<P> {
    #[inline]
    fn drop(&mut self) {
        self.unguard_stacks(core::ptr::null_mut());
        // Every chunk goes back to the cache; nothing is kept.
        let current = self.current.get();
        if self.chunks.get() == 0 || (self.chunks.get() == 1 && !ChunkHeader::is_sentinel(current)) {
            // The common case: no chunk, or one that is current.
            if !ChunkHeader::is_sentinel(current) {
                self.give_up(
                    current,
                    ChunkHeader::data_start(current),
                    self.cursor.get().addr().get(),
                    When::Drop,
                );
                self.release_chunk(current);
            }
            return;
        }
        self.release_all();
    }
}

impl<P: Policy> Arena<P> {
    /// `drop` for an arena with several chunks: every one goes back.
    #[cold]
    #[inline(never)]
    fn release_all(&mut self) {
        let current = self.current.get();
        let mut used_end = self.cursor.get().addr().get();
        let mut cur = (!ChunkHeader::is_sentinel(current)).then_some(current);
        while let Some(c) = cur {
            // SAFETY: chunks on the used list are owned and live.
            cur = unsafe { c.as_ref() }.prev.get();
            self.give_up(c, ChunkHeader::data_start(c), used_end, When::Drop);
            if let Some(p) = cur {
                // SAFETY: as above.
                used_end = unsafe { p.as_ref() }.used_end.get();
            }
            self.release_chunk(c);
        }
        for (list, used) in [(self.spare.get(), false), (self.big.get(), true)] {
            let mut cur = list;
            while let Some(c) = cur {
                // SAFETY: chunks on the spare and big lists are owned and live.
                let h = unsafe { c.as_ref() };
                cur = h.prev.get();
                // Spare chunks were given up (checked and poisoned) when
                // their scope ended; big chunks hold one block each.
                if used {
                    self.give_up(c, ChunkHeader::data_start(c), h.used_end.get(), When::Drop);
                }
                self.release_chunk(c);
            }
        }
    }
}

impl<P: Policy> core::fmt::Debug for Arena<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena").field("stats", &self.stats()).finish()
    }
}
