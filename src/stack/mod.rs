//! Fiber stacks: [`FiberStack`] (a guarded mapping of its own),
//! [`StackPool`] and [`PooledStack`] (stacks recycled by size class), and
//! the opt-in overflow reporter ([`install_overflow_reporter`]).
//!
//! Every stack has a guard page at its low end, so a fiber that runs past
//! its stack faults instead of overwriting the memory below. The guard is a
//! `MADV_GUARD_INSTALL` marker where the kernel has them (Linux 6.13+: no
//! extra VMA per stack), and a no-access page otherwise.
//!
//! [`FiberStack`], [`PooledStack`] and
//! [`ArenaStack`] implement `corosensei::stack::Stack`:
//!
//! ```
//! use corosensei::{Coroutine, CoroutineResult};
//! use fiberalloc::stack::StackPool;
//!
//! let pool = StackPool::new(64 << 10);
//! let mut co = Coroutine::with_stack(pool.get().unwrap(), |y, n: u32| {
//!     let doubled = y.suspend(n * 2);
//!     doubled + 1
//! });
//! assert!(matches!(co.resume(20), CoroutineResult::Yield(40)));
//! assert!(matches!(co.resume(41), CoroutineResult::Return(42)));
//! // Dropping the coroutine drops the stack, which goes back to the pool.
//! ```

mod arena_stack;
pub(crate) mod overflow;
mod stack_pool;

pub use crate::guards::registered_guards;
pub use arena_stack::ArenaStack;
pub use overflow::{ensure_signal_stack, install_overflow_reporter};
pub use stack_pool::{OnReturn, PooledStack, StackPool, StackPoolOptions, StackPoolStats};

use crate::region::Region;
use crate::sys;
use std::io;
use std::ptr::NonNull;

/// The smallest usable stack: smaller requests (zero included) get this.
pub const MIN_STACK_SIZE: usize = 4096;

/// A fiber stack: usable memory with a guard page below it (and optionally
/// one above it).
///
/// ```text
/// limit()                                            base()
/// | guard page | usable_size() bytes, growing down <- |  (high guard)
/// ```
///
/// [`FiberStack::new`] maps a stack of its own (unmapped on drop); the
/// stacks of a [`StackPool`] and of `Arena::alloc_stack` are views of
/// memory their owner keeps.
pub struct FiberStack {
    /// One past the highest usable byte.
    top: NonNull<u8>,
    /// The lowest byte, guard included.
    bottom: NonNull<u8>,
    /// Bytes of the mapping starting at `bottom`, for a stack of its own
    /// (unmapped on drop); 0 for a view.
    mapped: usize,
}

// SAFETY: a `FiberStack` is the unique owner of its mapping (or a view
// whose owner outlives it); its methods read addresses and page residency
// only, so sharing references between threads is harmless too.
unsafe impl Send for FiberStack {}
// SAFETY: as above.
unsafe impl Sync for FiberStack {}

impl FiberStack {
    /// Maps a stack of at least `usable_size` bytes (rounded up to pages,
    /// at least [`MIN_STACK_SIZE`]) with a guard page below it.
    ///
    /// The owner of the mapping is built as soon as the mapping exists, so
    /// a failure to install the guard unmaps it. Errors: `InvalidInput` for
    /// a size that cannot be mapped (near `isize::MAX`), else the OS reason
    /// (`ENOMEM` when the address space or the map count runs out).
    pub fn new(usable_size: usize) -> io::Result<FiberStack> {
        Self::with_guards(usable_size, false)
    }

    /// As [`new`](Self::new), with a second guard page above the stack when
    /// `high_guard` (catches a fiber that writes above its initial frame).
    pub fn with_guards(usable_size: usize, high_guard: bool) -> io::Result<FiberStack> {
        let page = sys::page_size();
        let size = crate::align::align_up(usable_size.max(MIN_STACK_SIZE), page)
            .filter(|&s| s <= isize::MAX as usize - 2 * page)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "fiber stack size out of range"))?;
        // The region unmaps the mapping if installing a guard fails; once
        // it is built, the stack takes the mapping over.
        let region = Region::new(size, true, high_guard)?;
        let top = region.usable_end();
        let (bottom, mapped) = region.into_mapping();
        crate::guards::register(bottom.as_ptr() as usize, top.as_ptr() as usize);
        Ok(FiberStack { top, bottom, mapped })
    }

    /// A view of a stack whose memory someone else owns.
    ///
    /// # Safety
    /// `bottom..bottom + page` is a guard page (registered with the
    /// overflow reporter by the owner, if at all) and `bottom + page..top`
    /// is readable and writable memory that stays so, unused by anyone
    /// else, for as long as the view lives.
    #[inline(always)]
    pub(crate) unsafe fn view(bottom: NonNull<u8>, top: NonNull<u8>) -> FiberStack {
        FiberStack { top, bottom, mapped: 0 }
    }

    /// The highest address of the stack (stacks grow down from here);
    /// page-aligned.
    #[inline]
    pub fn base(&self) -> NonNull<u8> {
        self.top
    }

    /// The lowest address of the stack, its guard page included.
    #[inline]
    pub fn limit(&self) -> NonNull<u8> {
        self.bottom
    }

    /// Usable bytes between the guard page and [`base`](Self::base).
    #[inline]
    pub fn usable_size(&self) -> usize {
        self.top.as_ptr() as usize - self.bottom.as_ptr() as usize - self.guard_size()
    }

    /// Bytes of guard below the usable part: one page.
    #[inline]
    pub fn guard_size(&self) -> usize {
        sys::page_size()
    }

    /// How deep the stack has ever been used: the bytes from
    /// [`base`](Self::base) down to the lowest page that is resident. Read
    /// from the page tables (`mincore`), without painting the stack first;
    /// a page counts once touched and stays counted until its memory is
    /// released (a pool set to [`OnReturn::Release`] does that on return).
    /// Page-granular; 0 for an untouched stack. Under Miri (no page
    /// tables), a page counts once it holds a non-zero byte.
    pub fn high_water_mark(&self) -> usize {
        let page = sys::page_size();
        let pages = self.usable_size() / page;
        let mut buf = [false; 256];
        let mut done = 0;
        while done < pages {
            let n = (pages - done).min(buf.len());
            let at = self.bottom.as_ptr().wrapping_add(page + done * page);
            // SAFETY: `at..at + n pages` lies in the usable part of the
            // stack, which is mapped while `self` lives (so `at` is not null).
            let ok = unsafe { sys::resident(NonNull::new_unchecked(at), &mut buf[..n]) };
            if ok.is_err() {
                return self.usable_size();
            }
            if let Some(i) = buf[..n].iter().position(|&r| r) {
                return self.top.as_ptr() as usize - (at as usize + i * page);
            }
            done += n;
        }
        0
    }
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        if self.mapped != 0 {
            crate::guards::unregister(self.bottom.as_ptr() as usize);
            // munmap cannot fail on a whole mapping of ours; if it did, the
            // range would leak, which is safe.
            // SAFETY: `bottom..bottom + mapped` is the mapping this stack
            // took over from its region, and nothing refers to it now.
            let _ = unsafe { sys::release(self.bottom, self.mapped) };
        }
    }
}

impl core::fmt::Debug for FiberStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FiberStack")
            .field("limit", &self.bottom)
            .field("base", &self.top)
            .field("usable_size", &self.usable_size())
            .finish()
    }
}

// The contract of corosensei's `Stack`: `base` and `limit` are aligned to
// its STACK_ALIGNMENT (16 at most on every target it supports; ours are
// page-aligned), `limit` includes the guard page, the usable part is at
// least MIN_STACK_SIZE (4096) bytes, and a guard page sits below it, so a
// coroutine that overflows faults instead of writing past the stack. The
// memory stays mapped and unused by anything else for as long as the
// `Stack` value lives (a `FiberStack` owns or borrows it for its whole
// life; a `PooledStack` gives it back only when dropped).
// SAFETY: as argued just above.
unsafe impl corosensei::stack::Stack for FiberStack {
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        // SAFETY: a mapping's address is never 0.
        unsafe { core::num::NonZeroUsize::new_unchecked(self.top.as_ptr() as usize) }
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        // SAFETY: as above.
        unsafe { core::num::NonZeroUsize::new_unchecked(self.bottom.as_ptr() as usize) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_to_pages_with_a_minimum() {
        let page = sys::page_size();
        let zero = FiberStack::new(0).unwrap();
        assert_eq!(zero.usable_size(), MIN_STACK_SIZE.max(page));
        let odd = FiberStack::new(3 * page + 1).unwrap();
        assert_eq!(odd.usable_size(), 4 * page);
        assert_eq!(odd.base().as_ptr() as usize - odd.limit().as_ptr() as usize, 5 * page);
        assert_eq!(odd.base().as_ptr() as usize % page, 0);
        let e = FiberStack::new(usize::MAX).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = FiberStack::new(isize::MAX as usize).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn high_water_mark_follows_writes() {
        let page = sys::page_size();
        let s = FiberStack::new(16 * page).unwrap();
        assert_eq!(s.high_water_mark(), 0);
        // SAFETY: the byte 3 pages and 8 bytes below the base is usable.
        unsafe { s.base().as_ptr().sub(3 * page + 8).write(1) };
        assert_eq!(s.high_water_mark(), 4 * page);
        // SAFETY: the lowest usable byte.
        unsafe { s.limit().as_ptr().add(page).write(1) };
        assert_eq!(s.high_water_mark(), 16 * page);
    }
}
