//! Values whose destructors the arena runs: [`Arena::alloc_dropped`].
//!
//! An arena never drops what it holds, so a value that owns something
//! outside the arena (a file, a std `Vec`, an `Rc`) leaks when the arena
//! resets. `alloc_dropped` records such a value in a list threaded through
//! the arena's own memory (an entry per value: the value's address and a
//! function that drops it, newest first). The list is run, newest value
//! first, when the memory goes: at [`reset`](Arena::reset), when the scope
//! the value was made in ends, and when the arena drops.
//!
//! Why it is sound:
//! - each of those needs `&mut Arena` (or ends a scope that holds it), so
//!   no reference to the value is alive when its destructor runs;
//! - the value must be `'static`: it holds no reference into the arena, so
//!   a destructor cannot read another arena value that was dropped (or
//!   reused) before it, whatever the order;
//! - the entry is taken off the list before the destructor runs, so a
//!   destructor that panics is never run again; the panic leaves `reset`
//!   (or the scope's end) before any memory is given up, so the values not
//!   yet dropped stay valid and recorded, and the next reset or drop runs
//!   their destructors (once each);
//! - `mem::forget` of the arena skips the destructors, which leaking
//!   allows (nothing here is pinned).

use crate::policy::Policy;
use core::alloc::Layout;
use core::ptr::NonNull;

use super::Arena;

/// One recorded value, in the arena just below the value.
pub(super) struct DropEntry {
    /// The entry recorded before this one (null at the end).
    pub(super) prev: *mut DropEntry,
    value: NonNull<u8>,
    drop_value: unsafe fn(NonNull<u8>),
}

/// Drops the `T` at `p`.
///
/// # Safety
/// `p` points at an initialised `T` that nothing uses again.
unsafe fn drop_as<T>(p: NonNull<u8>) {
    // SAFETY: by the caller's promise.
    unsafe { core::ptr::drop_in_place(p.cast::<T>().as_ptr()) }
}

impl<P: Policy> Arena<P> {
    /// Moves `value` into the arena and has its destructor run when the
    /// arena resets, drops, or leaves the [`scope`](Arena::scope) it was
    /// made in (newest first). `T: 'static`, so the value cannot refer to
    /// other arena memory that may be gone by then. A type with no
    /// destructor costs what [`alloc`](Arena::alloc) costs.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let mut arena = fiberalloc::Arena::new();
    /// let counter = Rc::new(());
    /// arena.alloc_dropped(Rc::clone(&counter));
    /// assert_eq!(Rc::strong_count(&counter), 2);
    /// arena.reset();
    /// assert_eq!(Rc::strong_count(&counter), 1);
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_dropped<T: 'static>(&self, value: T) -> &mut T {
        match self.try_alloc_dropped(value) {
            Ok(r) => r,
            Err(_) => crate::init::oom(Layout::new::<(DropEntry, T)>()),
        }
    }

    /// [`alloc_dropped`](Self::alloc_dropped), or `Err(AllocError)` (and
    /// `value` dropped at once).
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_dropped<T: 'static>(&self, value: T) -> Result<&mut T, crate::AllocError> {
        if !core::mem::needs_drop::<T>() {
            return self.try_alloc(value);
        }
        let entry = self.try_alloc_layout(Layout::new::<DropEntry>())?.cast::<DropEntry>();
        let slot = match self.try_alloc_layout(Layout::new::<T>()) {
            Ok(p) => p.cast::<T>(),
            Err(e) => {
                // SAFETY: the entry was just handed out and never used.
                unsafe { self.dealloc_raw(entry.cast(), Layout::new::<DropEntry>()) };
                return Err(e);
            }
        };
        // SAFETY: two fresh blocks of this arena, valid while `&self`
        // lives; the entry is linked only once both are written.
        unsafe {
            slot.as_ptr().write(value);
            entry.as_ptr().write(DropEntry {
                prev: self.drops.get(),
                value: slot.cast(),
                drop_value: drop_as::<T>,
            });
            self.drops.set(entry.as_ptr());
            Ok(&mut *slot.as_ptr())
        }
    }

    /// Runs the destructors of the values recorded after `until` (an entry
    /// of the list, or null for all), newest first.
    ///
    /// # Safety
    /// No reference to those values is used again, and `until` is null or
    /// an entry on the list.
    #[inline]
    pub(super) unsafe fn run_drops(&self, until: *mut DropEntry) {
        if self.drops.get() != until {
            // SAFETY: forwarded.
            unsafe { self.run_drops_slow(until) }
        }
    }

    /// # Safety
    /// As for [`run_drops`](Self::run_drops).
    #[cold]
    #[inline(never)]
    unsafe fn run_drops_slow(&self, until: *mut DropEntry) {
        let mut e = self.drops.get();
        while e != until && !e.is_null() {
            // SAFETY: entries on the list are live blocks of this arena,
            // written by `try_alloc_dropped`.
            let entry = unsafe { e.read() };
            // Off the list before the destructor runs (see the module docs).
            self.drops.set(entry.prev);
            // SAFETY: the value is initialised and, by the caller's
            // promise, not used again; it is dropped once.
            unsafe { (entry.drop_value)(entry.value) };
            e = entry.prev;
        }
    }
}
