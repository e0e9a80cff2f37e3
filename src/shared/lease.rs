//! [`Lease`]: one thread's bump inside blocks claimed from the lease lane.

use crate::align;
use crate::debug;
use crate::policy::{Fast, Policy};
use crate::sync::Ordering;
use crate::AllocError;
use core::alloc::Layout;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

use super::SharedArena;
use super::LEASE_BLOCK;

/// A cursor with no room: `limit` 0 makes every lease bump miss.
pub(super) fn sentinel_cursor() -> NonNull<u8> {
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
    pub(super) arena: &'a SharedArena<P>,
    pub(super) cursor: Cell<NonNull<u8>>,
    pub(super) limit: Cell<usize>,
    pub(super) _not_sync: PhantomData<Cell<()>>,
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
        // No overflow: as in `SharedChunk::bump`.
        let start = align::round_up(addr, layout.align());
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

impl<P: Policy> Lease<'_, P> {
    /// A block for the `Allocator` impl (leases track no leaks: as
    /// [`try_alloc_layout`](Self::try_alloc_layout)).
    #[inline(always)]
    pub(crate) fn alloc_tracked(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.try_alloc_layout(layout)
    }

    /// Gives a block back: when it is the last block of the lease's
    /// current block (and no canaries are on), the cursor moves back over
    /// it; any other block stays until `try_reset`.
    ///
    /// # Safety
    /// `ptr` was handed out by this lease for `layout` (or a layout it was
    /// since resized to) and is not used again.
    #[inline]
    pub(crate) unsafe fn dealloc_raw(&self, ptr: NonNull<u8>, layout: Layout) {
        if P::CANARIES || layout.size() == 0 {
            return;
        }
        let cursor = self.cursor.get();
        let addr = ptr.addr().get();
        if self.in_current_block(addr)
            && addr + align::round_up(layout.size(), P::MIN_ALIGN) == cursor.addr().get()
        {
            // The cursor's provenance (the lease's claimed block) at the
            // block's address, which is inside that block.
            self.cursor.set(cursor.with_addr(ptr.addr()));
        }
    }

    /// Whether `addr` lies in the lease's current claimed block (a block of
    /// its own, for a large request, never does: only blocks bumped in the
    /// claimed block may move its cursor).
    #[inline(always)]
    fn in_current_block(&self, addr: usize) -> bool {
        addr >= self.limit.get().wrapping_sub(LEASE_BLOCK)
    }

    /// Grows or shrinks a block: in place when it is the lease's last block
    /// and its block has room (or when it shrinks), else by copy.
    ///
    /// # Safety
    /// `ptr` was handed out by this lease for `old` (or resized to it) and
    /// is not used through its old address after a move.
    #[inline]
    pub(crate) unsafe fn realloc_raw(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let addr = ptr.addr().get();
        if old.size() != 0 && align::is_aligned(addr, new.align()) {
            let cursor = self.cursor.get();
            let old_end = addr + align::round_up(old.size(), P::MIN_ALIGN);
            let new_end = addr + align::round_up(new.size(), P::MIN_ALIGN);
            let last = self.in_current_block(addr) && old_end == cursor.addr().get();
            if !P::CANARIES && last && new_end <= self.limit.get() && new.size() != 0 {
                // SAFETY: `new_end` is above the block's start (not 0) and
                // at most the lease block's limit.
                let end = unsafe { core::num::NonZeroUsize::new_unchecked(new_end) };
                self.cursor.set(cursor.with_addr(end));
                return Ok(ptr);
            }
            if new.size() <= old.size() {
                return Ok(ptr);
            }
        }
        let fresh = self.try_alloc_layout(new)?;
        // SAFETY: `fresh` is a new block, disjoint from the old one, and
        // both hold at least min(old, new) bytes.
        unsafe { core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr(), old.size().min(new.size())) };
        Ok(fresh)
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
