//! [`Box`]: an owned value in an arena, dropped when the box is.
//!
//! The memory belongs to the arena and comes back with it (at reset, scope
//! exit or drop); the box owns the *value*, so its destructor runs when the
//! box goes. [`Box::leak`] gives the value up as a plain `&'a mut T` (it is
//! then never dropped, like any arena value).
//!
//! There is deliberately no `Box::pin` and no `From<Box<T>> for Pin<..>`: a
//! pinned box could be forgotten (`mem::forget` is safe) and the arena then
//! reset, reusing the memory of a pinned value that was never dropped,
//! which `Pin`'s drop guarantee forbids (bumpalo's issue #186). Pin a value
//! on the stack (`core::pin::pin!`) or in a std `Box` instead.
//!
//! ```
//! use fiberalloc::{collections::Box, Arena};
//! use std::rc::Rc;
//!
//! let arena = Arena::new();
//! let shared = Rc::new(());
//! let b = Box::new_in(Rc::clone(&shared), &arena);
//! assert_eq!(Rc::strong_count(&shared), 2);
//! drop(b); // the box drops the Rc it holds
//! assert_eq!(Rc::strong_count(&shared), 1);
//! ```

use crate::arena::Arena;
use crate::policy::Policy;
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

/// An owned value in an arena: the box drops the value when it goes, the
/// arena keeps the memory until it resets. [`Box::leak`] gives the value up
/// as a plain `&'a mut T`. There is no `Box::pin`: a pinned arena box could
/// be forgotten and its memory reused by a reset without a drop, which
/// `Pin` forbids (bumpalo's issue #186).
///
/// Invariant: `ptr` points at a live, initialised `T` in an arena borrowed
/// for `'a`, owned by this box alone.
pub struct Box<'a, T: ?Sized> {
    ptr: NonNull<T>,
    _life: PhantomData<&'a mut T>,
}

impl<'a, T> Box<'a, T> {
    /// Moves `value` into `arena`, owned by the box. Panics (through
    /// `handle_alloc_error`) when memory runs out.
    #[inline]
    pub fn new_in<P: Policy>(value: T, arena: &'a Arena<P>) -> Self {
        // SAFETY: a fresh block holding `value`, owned by nobody else and
        // valid while the arena is borrowed for `'a`.
        unsafe { Box::from_raw(arena.alloc(value)) }
    }

    /// [`new_in`](Self::new_in), or `Err(AllocError)` (`value` is dropped).
    #[inline]
    pub fn try_new_in<P: Policy>(value: T, arena: &'a Arena<P>) -> Result<Self, crate::AllocError> {
        let r = arena.try_alloc(value)?;
        // SAFETY: as in `new_in`.
        Ok(unsafe { Box::from_raw(r) })
    }

    /// The value, moved out of the arena.
    pub fn into_inner(b: Self) -> T {
        let b = core::mem::ManuallyDrop::new(b);
        // SAFETY: the box owns an initialised value; it is read once and
        // the box is forgotten, so it is not dropped again.
        unsafe { b.ptr.as_ptr().read() }
    }
}

impl<'a, T: ?Sized> Box<'a, T> {
    /// A box owning the value behind `raw`.
    ///
    /// # Safety
    /// `raw` points at an initialised value in an arena that lives for
    /// `'a`, and nothing else owns it (no other box, no reader after the
    /// box drops it).
    #[inline]
    pub unsafe fn from_raw(raw: *mut T) -> Self {
        // SAFETY: by the caller's promise `raw` points at a value, so it is
        // not null.
        Box { ptr: unsafe { NonNull::new_unchecked(raw) }, _life: PhantomData }
    }

    /// The raw pointer; the value is no longer dropped by the box.
    #[inline]
    pub fn into_raw(b: Self) -> *mut T {
        core::mem::ManuallyDrop::new(b).ptr.as_ptr()
    }

    /// Gives the value up as a plain reference: it lives as long as the
    /// arena's borrow and is never dropped.
    #[inline]
    pub fn leak(b: Self) -> &'a mut T {
        // SAFETY: the box owned the value for `'a`; forgetting the box hands
        // that ownership to the reference.
        unsafe { &mut *Box::into_raw(b) }
    }
}

impl<T: ?Sized> Drop for Box<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the box owns an initialised value, dropped once here; the
        // memory stays with the arena.
        unsafe { core::ptr::drop_in_place(self.ptr.as_ptr()) }
    }
}

impl<T: ?Sized> Deref for Box<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the box's invariant; shared access through `&self`.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: ?Sized> DerefMut for Box<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the box's invariant; unique access through `&mut self`.
        unsafe { self.ptr.as_mut() }
    }
}

// SAFETY: the box owns its `T` outright (as std's `Box` does); the arena
// memory it sits in is not touched through the box otherwise.
unsafe impl<T: ?Sized + Send> Send for Box<'_, T> {}
// SAFETY: as above; `&Box<T>` gives only `&T`.
unsafe impl<T: ?Sized + Sync> Sync for Box<'_, T> {}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Box<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Box<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + PartialEq> PartialEq for Box<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for Box<'_, T> {}

impl<T: ?Sized + PartialOrd> PartialOrd for Box<'_, T> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ?Sized + Ord> Ord for Box<'_, T> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: ?Sized + core::hash::Hash> core::hash::Hash for Box<'_, T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl<T: ?Sized> AsRef<T> for Box<'_, T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> AsMut<T> for Box<'_, T> {
    fn as_mut(&mut self) -> &mut T {
        self
    }
}

impl<I: Iterator + ?Sized> Iterator for Box<'_, I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        (**self).next()
    }
}
