//! The iterators of [`Vec`](super::Vec): [`Drain`] and [`IntoIter`], on one
//! core ([`Slots`], the values of a buffer not yet taken out).

use crate::arena::Arena;
use crate::policy::{Fast, Policy};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use super::vec::{buffer_layout, Vec};

/// Slots `next..end` of a buffer, holding values not yet taken out: the
/// shared core of [`Drain`] and [`IntoIter`].
///
/// Invariant: `next <= end`, and the slots `next..end` of `base` are
/// initialised and owned here.
pub(super) struct Slots<T> {
    pub(super) base: NonNull<T>,
    pub(super) next: usize,
    pub(super) end: usize,
}

impl<T> Slots<T> {
    #[inline]
    fn front(&mut self) -> Option<T> {
        if self.next == self.end {
            return None;
        }
        // SAFETY: `next < end`: an initialised value not yet taken, read
        // out once (the range no longer covers it).
        let value = unsafe { self.base.as_ptr().add(self.next).read() };
        self.next += 1;
        Some(value)
    }

    #[inline]
    fn back(&mut self) -> Option<T> {
        if self.next == self.end {
            return None;
        }
        self.end -= 1;
        // SAFETY: as in `front`, for the last value not yet taken.
        Some(unsafe { self.base.as_ptr().add(self.end).read() })
    }

    fn len(&self) -> usize {
        self.end - self.next
    }

    fn as_slice(&self) -> &[T] {
        // SAFETY: `next..end` are initialised and owned here.
        unsafe { core::slice::from_raw_parts(self.base.as_ptr().add(self.next), self.len()) }
    }

    /// Drops the values not taken (once: the range is emptied first, so a
    /// panicking destructor leaks the rest instead).
    fn drop_rest(&mut self) {
        let (next, len) = (self.next, self.len());
        self.next = self.end;
        // SAFETY: those values were initialised and owned here, and the
        // range no longer covers them.
        unsafe { ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.base.as_ptr().add(next), len)) };
    }
}

/// The iterator of [`Vec::drain`].
///
/// Invariants: the vector's length is the drained range's start; `slots`
/// hold the drained values not yet yielded; `tail..tail + tail_len` the
/// elements after the range, moved down when the drain drops.
pub struct Drain<'v, 'a, T, P: Policy = Fast> {
    pub(super) vec: &'v mut Vec<'a, T, P>,
    pub(super) slots: Slots<T>,
    pub(super) tail: usize,
    pub(super) tail_len: usize,
}

impl<T, P: Policy> Iterator for Drain<'_, '_, T, P> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.slots.front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.slots.len(), Some(self.slots.len()))
    }
}

impl<T, P: Policy> DoubleEndedIterator for Drain<'_, '_, T, P> {
    fn next_back(&mut self) -> Option<T> {
        self.slots.back()
    }
}

impl<T, P: Policy> ExactSizeIterator for Drain<'_, '_, T, P> {}

impl<T, P: Policy> Drop for Drain<'_, '_, T, P> {
    fn drop(&mut self) {
        // A panic in one of these destructors leaks the tail (the vector
        // still covers only the head).
        self.slots.drop_rest();
        let base = self.vec.ptr.as_ptr();
        let start = self.vec.len;
        // SAFETY: the tail moves down to the range's start, inside the
        // buffer; then the vector covers head and tail, all initialised.
        unsafe {
            ptr::copy(base.add(self.tail), base.add(start), self.tail_len);
        }
        self.vec.len = start + self.tail_len;
    }
}

/// The by-value iterator of a [`Vec`]; the buffer is given back to the
/// arena (reclaimed if it is still the newest block) when it drops.
///
/// Invariants: `slots` hold the elements not yet yielded; `slots.base` and
/// `cap` are the vector's buffer.
pub struct IntoIter<'a, T, P: Policy = Fast> {
    slots: Slots<T>,
    cap: usize,
    arena: &'a Arena<P>,
    _owns: PhantomData<T>,
}

impl<T, P: Policy> IntoIter<'_, T, P> {
    /// The elements not yet yielded.
    pub fn as_slice(&self) -> &[T] {
        self.slots.as_slice()
    }
}

impl<T, P: Policy> Iterator for IntoIter<'_, T, P> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        self.slots.front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.slots.len(), Some(self.slots.len()))
    }
}

impl<T, P: Policy> DoubleEndedIterator for IntoIter<'_, T, P> {
    fn next_back(&mut self) -> Option<T> {
        self.slots.back()
    }
}

impl<T, P: Policy> ExactSizeIterator for IntoIter<'_, T, P> {}

impl<T, P: Policy> Drop for IntoIter<'_, T, P> {
    fn drop(&mut self) {
        self.slots.drop_rest();
        if self.cap != 0 && core::mem::size_of::<T>() != 0 {
            if let Ok(layout) = buffer_layout::<T>(self.cap) {
                // SAFETY: the buffer is the arena's block for that layout,
                // and nothing refers to it any more.
                unsafe { self.arena.dealloc_raw(self.slots.base.cast(), layout) };
            }
        }
    }
}

impl<'a, T, P: Policy> IntoIterator for Vec<'a, T, P> {
    type Item = T;
    type IntoIter = IntoIter<'a, T, P>;

    fn into_iter(self) -> IntoIter<'a, T, P> {
        let me = core::mem::ManuallyDrop::new(self);
        IntoIter {
            slots: Slots { base: me.ptr, next: 0, end: me.len },
            cap: me.cap,
            arena: me.arena,
            _owns: PhantomData,
        }
    }
}
