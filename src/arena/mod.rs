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
//! Every allocation counts itself, under every policy: one add to a `Cell`
//! next to the cursor (one instruction on the typed path, 12 -> 13 by
//! callgrind; within noise in the interleaved bench), so
//! `stats().allocation_count` is never a silent 0. The arena keeps no byte
//! counter: live bytes are the data the cursor has passed over minus
//! `padding`, the bytes known to hold no live block. Under policies with
//! `EXACT_STATS` (`Safe`, `Debug`) every allocation also adds its rounding
//! and alignment padding (measured: 1.4x the cost of a runtime-layout
//! allocation), so `Fast` does not: its `allocated_bytes` includes the
//! padding of its blocks, while holes left by freeing a block out of order
//! are still subtracted.
//!
//! [`Arena::validate`] checks these and the tests call it.
//!
//! # The files
//!
//! This file holds the arena, its constructors and the fast paths, which
//! read top to bottom here; `refill.rs` the slow half of allocation (new
//! chunks, oversized blocks, the spare list, the counters); `resize.rs`
//! giving back, growing and shrinking; `reset.rs` marks, scopes, `reset`,
//! stack guard pages and drop; `check.rs` statistics, `validate`, leaks and
//! the memory map (the walks themselves are in `walk`, shared with
//! `SharedArena`).

use crate::align;
use crate::chunk::{self, ChunkHeader};
use crate::debug::{self, Event};
use crate::policy::{Fast, Policy};
use crate::sys::GuardKind;
use crate::AllocError;
use core::alloc::Layout;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

pub use compat::{ChunkIter, ChunkRawIter, RawCheckpoint};

mod check;
mod compat;
mod drops;
mod refill;
mod reset;
mod resize;

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
/// shared(&fiberalloc::Arena::new());
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
    /// The newest value recorded by [`Arena::alloc_dropped`] (a list
    /// through the arena's own memory; null when there is none).
    drops: Cell<*mut drops::DropEntry>,
    _policy: PhantomData<P>,
}

// SAFETY: the arena owns its chunks outright (no other arena or thread
// refers to them), and moving it to another thread needs `self` by value, so
// no block borrowed from it is alive. It is not `Sync`: its `Cell`s see to it.
unsafe impl<P: Policy> Send for Arena<P> {}

impl<P: Policy> Default for Arena<P> {
    fn default() -> Self {
        Self::with_policy(P::default())
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
    drops: *mut drops::DropEntry,
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

impl Arena {
    /// An arena under the default policy ([`Fast`]) that maps nothing until
    /// its first allocation. `let arena = Arena::new();` needs no type
    /// annotation; for another policy, write `Arena::with_policy(Safe)`
    /// (or `Arena::<Safe>::default()`).
    pub const fn new() -> Self {
        Self::with_policy(Fast)
    }

    /// An arena under [`Fast`] whose first chunk holds at least `bytes`
    /// bytes of data. Panics (through `handle_alloc_error`) if it cannot be
    /// mapped.
    pub fn with_capacity(bytes: usize) -> Self {
        Self::with_capacity_and_policy(bytes, Fast)
    }

    /// An arena under [`Fast`] whose first chunk holds at least `bytes`
    /// bytes of data, or `Err(AllocError)` if that cannot be mapped or
    /// represented.
    pub fn try_with_capacity(bytes: usize) -> Result<Self, AllocError> {
        Self::try_with_capacity_and_policy(bytes, Fast)
    }

    /// [`new`](Self::new) as bumpalo spells its fallible constructor: an
    /// arena that maps nothing cannot fail, so this is always `Ok`.
    pub const fn try_new() -> Result<Self, AllocError> {
        Ok(Self::new())
    }
}

impl<P: Policy> Arena<P> {
    /// An arena under policy `P` that maps nothing until its first
    /// allocation: `Arena::with_policy(Safe)`. (The default policy's
    /// constructors are [`Arena::new`] and friends, which infer the type,
    /// as `HashMap::new` does for its default hasher.)
    pub const fn with_policy(_policy: P) -> Self {
        // Policies are `Copy` unit structs: the value only names the type.
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
            drops: Cell::new(core::ptr::null_mut()),
            _policy: PhantomData,
        }
    }

    /// An arena under policy `P` whose first chunk holds at least `bytes`
    /// bytes of data. Panics (through `handle_alloc_error`) if it cannot be
    /// mapped.
    pub fn with_capacity_and_policy(bytes: usize, policy: P) -> Self {
        match Self::try_with_capacity_and_policy(bytes, policy) {
            Ok(a) => a,
            Err(AllocError) => {
                crate::init::oom(Layout::from_size_align(bytes, 1).unwrap_or(Layout::new::<u8>()))
            }
        }
    }

    /// An arena under policy `P` whose first chunk holds at least `bytes`
    /// bytes of data, or `Err(AllocError)` if that cannot be mapped or
    /// represented.
    pub fn try_with_capacity_and_policy(bytes: usize, policy: P) -> Result<Self, AllocError> {
        let arena = Self::with_policy(policy);
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
        let start = align::round_up(addr, layout.align());
        let end = start + align::round_up(layout.size(), P::MIN_ALIGN);
        if end <= self.limit.get().addr().get() {
            // SAFETY: `addr <= start <= end <= limit`: the block and the new
            // cursor stay inside the current chunk's data (or at the
            // sentinel's end for a zero-sized block).
            let (block, next) = unsafe { (cursor.add(start - addr), cursor.add(end - addr)) };
            self.cursor.set(next);
            // Counted under every policy (see "Statistics on the fast path").
            self.count.set(self.count.get() + 1);
            if P::EXACT_STATS {
                self.padding.set(self.padding.get() + (end - addr - layout.size()));
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

    /// [`alloc_simd`](Self::alloc_simd), or `Err(AllocError)`.
    pub fn try_alloc_simd(&self, size: usize) -> Result<NonNull<u8>, AllocError> {
        self.try_alloc_aligned(size, 64)
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
}
