//! Fiber stacks carved from an [`Arena`]: [`Arena::alloc_stack`] and
//! [`ArenaStack`].
//!
//! The arena hands out a page-aligned block whose first page it guards
//! and registers (`Arena::alloc_guarded`), and takes the guard off again
//! when it gives the block up; this module sizes the block and views it as
//! a [`FiberStack`]. So the arena knows guard pages, not stacks.

use super::{FiberStack, MIN_STACK_SIZE};
use crate::arena::Arena;
use crate::policy::{Fast, Policy};
use crate::sys;
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;
use std::io;

impl<P: Policy> Arena<P> {
    /// A fiber stack of at least `usable_size` bytes (rounded up to pages,
    /// at least [`MIN_STACK_SIZE`]) carved
    /// from the arena, with a guard page of its own below it. The guard is
    /// taken off when the arena is reset or dropped, or when the scope the
    /// stack was made in ends, so the memory serves ordinary blocks again.
    ///
    /// Errors: `OutOfMemory` when the arena cannot grow (its allocation
    /// limit, or mmap failing), `InvalidInput` for a size that cannot be
    /// represented, or the OS reason the guard could not be installed.
    ///
    /// ```
    /// let mut arena: fiberalloc::Arena = fiberalloc::Arena::new();
    /// let stack = arena.alloc_stack(32 << 10).unwrap();
    /// assert!(stack.usable_size() >= 32 << 10);
    /// drop(stack);
    /// arena.reset(); // the guard page is ordinary memory again
    /// ```
    pub fn alloc_stack(&self, usable_size: usize) -> io::Result<ArenaStack<'_, P>> {
        let page = sys::page_size();
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "fiber stack size out of range");
        let usable = crate::align::align_up(usable_size.max(MIN_STACK_SIZE), page).ok_or_else(invalid)?;
        let layout = Layout::from_size_align(usable.checked_add(page).ok_or_else(invalid)?, page)
            .map_err(|_| invalid())?;
        let block = self.alloc_guarded(layout)?;
        let top = block.as_ptr().wrapping_add(page + usable);
        // The arena stays borrowed (reset needs `&mut`, a scope ends after
        // its closure) while the `ArenaStack` lives.
        // SAFETY: `block` is the guard page just installed; the `usable`
        // bytes above it are ours and stay mapped while the view lives.
        let stack = unsafe { FiberStack::view(block, NonNull::new_unchecked(top)) };
        Ok(ArenaStack { stack, _arena: PhantomData })
    }
}

/// A fiber stack carved from an [`Arena`] by [`Arena::alloc_stack`]; derefs
/// to [`FiberStack`]. It borrows the arena, so the arena cannot be reset
/// while the stack lives.
pub struct ArenaStack<'a, P: Policy = Fast> {
    stack: FiberStack,
    _arena: PhantomData<&'a Arena<P>>,
}

impl<P: Policy> core::ops::Deref for ArenaStack<'_, P> {
    type Target = FiberStack;
    fn deref(&self) -> &FiberStack {
        &self.stack
    }
}

impl<P: Policy> core::fmt::Debug for ArenaStack<'_, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.stack.fmt(f)
    }
}

// SAFETY: as for `FiberStack`: page-aligned bounds, a guard page below at
// least MIN_STACK_SIZE bytes, memory mapped and ours while the value lives.
unsafe impl<P: Policy> corosensei::stack::Stack for ArenaStack<'_, P> {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::Stack::base(&self.stack)
    }

    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::Stack::limit(&self.stack)
    }
}
