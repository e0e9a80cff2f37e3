//! [`Vec`]: a growable array in an [`Arena`] (see the module essay in
//! `collections/mod.rs` for why it exists beside allocator-api2's).
//!
//! ```
//! use fiberalloc::{collections::Vec, Arena};
//! let arena = Arena::new();
//! let mut v = Vec::new_in(&arena);
//! for i in 0..1000u32 {
//!     v.push(i);
//! }
//! assert_eq!(v.iter().sum::<u32>(), 499_500);
//! let frozen: &mut [u32] = v.into_bump_slice_mut(); // lives as long as the arena borrow
//! assert_eq!(frozen.len(), 1000);
//! ```

use crate::arena::Arena;
use crate::policy::{Fast, Policy};
use crate::AllocError;
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut, RangeBounds};
use core::ptr::{self, NonNull};

use super::vec_iter::{Drain, Slots};
use super::{Box, FromIteratorIn};

/// A growable array whose buffer lives in an [`Arena`].
///
/// Invariants: `ptr` is dangling (aligned) when `cap == 0` or `T` is
/// zero-sized, else the start of a block of the arena laid out as
/// `[T; cap]`; `len <= cap`; the first `len` elements are initialised.
pub struct Vec<'a, T, P: Policy = Fast> {
    pub(super) ptr: NonNull<T>,
    pub(super) len: usize,
    pub(super) cap: usize,
    pub(super) arena: &'a Arena<P>,
    _owns: PhantomData<T>,
}

impl<'a, T, P: Policy> Vec<'a, T, P> {
    /// An empty vector; allocates nothing.
    pub fn new_in(arena: &'a Arena<P>) -> Self {
        let cap = if core::mem::size_of::<T>() == 0 { usize::MAX } else { 0 };
        Vec { ptr: NonNull::dangling(), len: 0, cap, arena, _owns: PhantomData }
    }

    /// An empty vector with room for `capacity` elements. Panics (through
    /// `handle_alloc_error`) if that cannot be allocated.
    pub fn with_capacity_in(capacity: usize, arena: &'a Arena<P>) -> Self {
        let mut v = Self::new_in(arena);
        v.reserve_exact(capacity);
        v
    }

    /// Elements held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the vector holds no element.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements the buffer can hold without growing.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Appends `value`, growing the buffer (geometrically) if it is full.
    #[inline]
    pub fn push(&mut self, value: T) {
        if self.len == self.cap {
            let (ptr, cap) = grow_or_oom(self.arena, self.ptr, self.cap, self.len, 1, true);
            self.ptr = ptr;
            self.cap = cap;
        }
        // SAFETY: `len < cap`, so the slot is inside the buffer and
        // uninitialised.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
    }

    /// Removes and returns the last element.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: the element at the old `len - 1` is initialised, and the
        // length no longer covers it, so it is read out exactly once.
        Some(unsafe { self.ptr.as_ptr().add(self.len).read() })
    }

    /// Makes room for at least `additional` more elements (geometric
    /// growth).
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        if self.cap - self.len < additional {
            let (ptr, cap) = grow_or_oom(self.arena, self.ptr, self.cap, self.len, additional, true);
            self.ptr = ptr;
            self.cap = cap;
        }
    }

    /// Makes room for exactly `additional` more elements. Growing the
    /// arena's last block is done in place, so calling this before every
    /// push costs O(1) each.
    #[inline]
    pub fn reserve_exact(&mut self, additional: usize) {
        if self.cap - self.len < additional {
            if let Some(cap) = self.grow_in_place(additional) {
                self.cap = cap;
                return;
            }
            let (ptr, cap) = grow_or_oom(self.arena, self.ptr, self.cap, self.len, additional, false);
            self.ptr = ptr;
            self.cap = cap;
        }
    }

    /// The inline half of growth: when the buffer is the arena's last
    /// block and the chunk has room, move its end. Returns the new capacity.
    #[inline(always)]
    fn grow_in_place(&self, additional: usize) -> Option<usize> {
        let size = core::mem::size_of::<T>();
        if size == 0 || self.cap == 0 {
            return None;
        }
        let cap = self.len.checked_add(additional)?;
        let bytes = cap.checked_mul(size).filter(|&b| b <= isize::MAX as usize)?;
        // `cap * size` fitted when the buffer was allocated.
        let old_bytes = self.cap * size;
        self.arena.resize_last_in_place(self.ptr.cast(), old_bytes, bytes).then_some(cap)
    }

    /// Like [`reserve`](Self::reserve), with `Err(AllocError)` instead of a
    /// panic when the arena runs out or the size overflows.
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), AllocError> {
        if self.cap - self.len < additional {
            let (ptr, cap) = grow(self.arena, self.ptr, self.cap, self.len, additional, true)?;
            self.ptr = ptr;
            self.cap = cap;
        }
        Ok(())
    }

    /// Drops the elements past `len`.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let tail = core::ptr::slice_from_raw_parts_mut(
            // SAFETY: `len < self.len <= cap`: inside the buffer.
            unsafe { self.ptr.as_ptr().add(len) },
            self.len - len,
        );
        // Shorten first, so a panicking destructor cannot cause a double
        // drop.
        self.len = len;
        // SAFETY: those elements were initialised and are no longer covered
        // by the length.
        unsafe { core::ptr::drop_in_place(tail) };
    }

    /// Drops every element, keeping the buffer.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// The elements as a slice.
    #[inline]
    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` elements are initialised; `ptr` is aligned
        // and non-null even when empty.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The elements as a mutable slice.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, and `&mut self` makes it unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Appends clones of `items`.
    pub fn extend_from_slice(&mut self, items: &[T])
    where
        T: Clone,
    {
        self.reserve(items.len());
        for item in items {
            // Capacity is reserved: this push never grows.
            self.push(item.clone());
        }
    }

    /// Gives up ownership of the elements: they stay in the arena for as
    /// long as it is borrowed, and are never dropped (like
    /// `bumpalo::collections::Vec::into_bump_slice_mut`).
    pub fn into_slice(self) -> &'a mut [T] {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: the buffer belongs to the arena for `'a` (reset needs
        // `&mut Arena`), the first `len` elements are initialised, and the
        // vector is forgotten so nothing else refers to them.
        unsafe { core::slice::from_raw_parts_mut(me.ptr.as_ptr(), me.len) }
    }

    /// The arena the buffer lives in.
    pub fn arena(&self) -> &'a Arena<P> {
        self.arena
    }

    /// The arena the buffer lives in (bumpalo's name).
    pub fn bump(&self) -> &'a Arena<P> {
        self.arena
    }

    /// A vector of `n` clones of `elem` (what `vec![in &arena; elem; n]`
    /// makes).
    pub fn from_elem_in(elem: T, n: usize, arena: &'a Arena<P>) -> Self
    where
        T: Clone,
    {
        let mut v = Self::with_capacity_in(n, arena);
        v.resize(n, elem);
        v
    }

    /// A vector of the values of `iter`.
    pub fn from_iter_in<I: IntoIterator<Item = T>>(iter: I, arena: &'a Arena<P>) -> Self {
        let mut v = Self::new_in(arena);
        v.extend(iter);
        v
    }

    /// Appends `value`, or gives `Err(AllocError)` (and drops `value`) when
    /// the buffer cannot grow.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), AllocError> {
        if self.len == self.cap {
            self.try_reserve(1)?;
        }
        // SAFETY: `len < cap`, so the slot is inside the buffer and
        // uninitialised.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Like [`reserve_exact`](Self::reserve_exact), with `Err(AllocError)`
    /// instead of a panic.
    pub fn try_reserve_exact(&mut self, additional: usize) -> Result<(), AllocError> {
        if self.cap - self.len < additional {
            if let Some(cap) = self.grow_in_place(additional) {
                self.cap = cap;
                return Ok(());
            }
            let (ptr, cap) = grow(self.arena, self.ptr, self.cap, self.len, additional, false)?;
            self.ptr = ptr;
            self.cap = cap;
        }
        Ok(())
    }

    /// Gives the unused capacity back when the buffer is the arena's newest
    /// block (elsewhere a bump arena cannot reuse it, so nothing happens).
    pub fn shrink_to_fit(&mut self) {
        let size = core::mem::size_of::<T>();
        if size == 0 || self.cap == self.len || self.cap == 0 {
            return;
        }
        if self.arena.resize_last_in_place(self.ptr.cast(), self.cap * size, self.len * size) {
            self.cap = self.len;
        }
    }

    /// A pointer to the buffer (dangling but aligned when nothing is
    /// allocated).
    #[inline]
    pub fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }

    /// A mutable pointer to the buffer.
    #[inline]
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.as_ptr()
    }

    /// Sets the length without touching the elements.
    ///
    /// # Safety
    /// `new_len <= capacity()`, and the first `new_len` elements are
    /// initialised.
    #[inline]
    pub unsafe fn set_len(&mut self, new_len: usize) {
        debug_assert!(new_len <= self.cap);
        self.len = new_len;
    }

    /// The elements, frozen as a shared slice that lives as long as the
    /// arena's borrow; they are never dropped.
    pub fn into_bump_slice(self) -> &'a [T] {
        self.into_slice()
    }

    /// The elements, frozen as a mutable slice that lives as long as the
    /// arena's borrow; they are never dropped (bumpalo's name for
    /// [`into_slice`](Self::into_slice)).
    pub fn into_bump_slice_mut(self) -> &'a mut [T] {
        self.into_slice()
    }

    /// The elements as a [`Box`]ed slice, which drops them when it goes.
    pub fn into_boxed_slice(self) -> Box<'a, [T]> {
        // SAFETY: the slice is the vector's, handed over whole: the box now
        // owns the elements and drops them once.
        unsafe { Box::from_raw(self.into_slice()) }
    }

    /// Removes the element at `index`, moving the last one into its place.
    /// Panics if `index >= len`.
    pub fn swap_remove(&mut self, index: usize) -> T {
        let len = self.len;
        assert!(index < len, "swap_remove index (is {index}) should be < len (is {len})");
        // SAFETY: `index < len`: both slots are initialised; the removed
        // value is read once and the hole is filled by the last element
        // (or is the last slot), which the shorter length no longer covers.
        unsafe {
            let base = self.ptr.as_ptr();
            let value = base.add(index).read();
            ptr::copy(base.add(len - 1), base.add(index), 1);
            self.len = len - 1;
            value
        }
    }

    /// Inserts `value` at `index`, shifting the rest up. Panics if
    /// `index > len`.
    pub fn insert(&mut self, index: usize, value: T) {
        let len = self.len;
        assert!(index <= len, "insertion index (is {index}) should be <= len (is {len})");
        self.reserve(1);
        // SAFETY: `index <= len < cap`: the shift stays in the buffer, and
        // the slot at `index` is then free to write.
        unsafe {
            let at = self.ptr.as_ptr().add(index);
            ptr::copy(at, at.add(1), len - index);
            at.write(value);
        }
        self.len = len + 1;
    }

    /// Removes the element at `index`, shifting the rest down. Panics if
    /// `index >= len`.
    pub fn remove(&mut self, index: usize) -> T {
        let len = self.len;
        assert!(index < len, "removal index (is {index}) should be < len (is {len})");
        // SAFETY: `index < len`: the value is read once, and the tail moves
        // down over it inside the initialised part.
        unsafe {
            let at = self.ptr.as_ptr().add(index);
            let value = at.read();
            ptr::copy(at.add(1), at, len - index - 1);
            self.len = len - 1;
            value
        }
    }

    /// Keeps the elements for which `f` is true, in order.
    pub fn retain(&mut self, mut f: impl FnMut(&T) -> bool) {
        self.retain_mut(|x| f(x));
    }

    /// Keeps the elements for which `f` is true, in order; `f` may change
    /// them.
    pub fn retain_mut(&mut self, mut f: impl FnMut(&mut T) -> bool) {
        let len = self.len;
        // While the loop runs the vector covers nothing, so a panic in `f`
        // or in a destructor leaks the elements instead of dropping one
        // twice.
        self.len = 0;
        let base = self.ptr.as_ptr();
        let mut kept = 0;
        for i in 0..len {
            // SAFETY: `i < len`: an initialised element not yet moved or
            // dropped; `kept <= i`, so the move goes down inside the buffer.
            unsafe {
                let cur = base.add(i);
                if f(&mut *cur) {
                    if kept != i {
                        ptr::copy_nonoverlapping(cur, base.add(kept), 1);
                    }
                    kept += 1;
                } else {
                    ptr::drop_in_place(cur);
                }
            }
        }
        self.len = kept;
    }

    /// Removes consecutive elements that `same` says are equal to the one
    /// kept before them (`same(later, kept)`).
    pub fn dedup_by(&mut self, mut same: impl FnMut(&mut T, &mut T) -> bool) {
        let len = self.len;
        if len <= 1 {
            return;
        }
        // As in `retain_mut`: a panic leaks rather than double-drops.
        self.len = 0;
        let base = self.ptr.as_ptr();
        let mut kept = 1;
        for i in 1..len {
            // SAFETY: `kept <= i < len`: `base[kept - 1]` is the last kept
            // element and `base[i]` an initialised one not yet looked at;
            // they are distinct slots.
            unsafe {
                let cur = base.add(i);
                if same(&mut *cur, &mut *base.add(kept - 1)) {
                    ptr::drop_in_place(cur);
                } else {
                    if kept != i {
                        ptr::copy_nonoverlapping(cur, base.add(kept), 1);
                    }
                    kept += 1;
                }
            }
        }
        self.len = kept;
    }

    /// Removes consecutive elements with the same key.
    pub fn dedup_by_key<K: PartialEq>(&mut self, mut key: impl FnMut(&mut T) -> K) {
        self.dedup_by(|a, b| key(a) == key(b));
    }

    /// Removes consecutive equal elements.
    pub fn dedup(&mut self)
    where
        T: PartialEq,
    {
        self.dedup_by(|a, b| a == b);
    }

    /// Removes the elements in `range` and yields them; the tail moves down
    /// when the `Drain` is dropped (elements not taken are dropped). Panics
    /// if the range is out of bounds.
    pub fn drain<R: RangeBounds<usize>>(&mut self, range: R) -> Drain<'_, 'a, T, P> {
        let (start, end) = bounds(range, self.len);
        let len = self.len;
        // The vector covers only the head while the drain lives, so a
        // leaked `Drain` leaks the rest rather than exposing moved-out
        // slots.
        self.len = start;
        let base = self.ptr;
        Drain { vec: self, slots: Slots { base, next: start, end }, tail: end, tail_len: len - end }
    }

    /// Moves every element of `other` to the end of `self`.
    pub fn append(&mut self, other: &mut Self) {
        let n = other.len;
        self.reserve(n);
        // SAFETY: room for `n` more was reserved; `other`'s elements are
        // moved bitwise and its length set to 0, so each is owned once.
        unsafe {
            ptr::copy_nonoverlapping(other.ptr.as_ptr(), self.ptr.as_ptr().add(self.len), n);
            other.len = 0;
        }
        self.len += n;
    }

    /// Splits off the elements from `at` on into a new vector in the same
    /// arena. Panics if `at > len`.
    pub fn split_off(&mut self, at: usize) -> Self {
        let len = self.len;
        assert!(at <= len, "`at` split index (is {at}) should be <= len (is {len})");
        let mut other = Self::with_capacity_in(len - at, self.arena);
        // SAFETY: the tail's `len - at` elements move to `other`'s fresh
        // buffer (room reserved); `self` no longer covers them.
        unsafe {
            ptr::copy_nonoverlapping(self.ptr.as_ptr().add(at), other.ptr.as_ptr(), len - at);
            self.len = at;
            other.len = len - at;
        }
        other
    }

    /// Grows or shrinks to `new_len`, filling with clones of `value`.
    pub fn resize(&mut self, new_len: usize, value: T)
    where
        T: Clone,
    {
        if new_len <= self.len {
            self.truncate(new_len);
            return;
        }
        self.reserve(new_len - self.len);
        for _ in self.len + 1..new_len {
            self.push(value.clone());
        }
        self.push(value);
    }

    /// Grows or shrinks to `new_len`, filling with the values of `f`.
    pub fn resize_with(&mut self, new_len: usize, mut f: impl FnMut() -> T) {
        if new_len <= self.len {
            self.truncate(new_len);
            return;
        }
        self.reserve(new_len - self.len);
        while self.len < new_len {
            self.push(f());
        }
    }

    /// Appends copies of `items` with one `memcpy`.
    #[inline]
    pub fn extend_from_slice_copy(&mut self, items: &[T])
    where
        T: Copy,
    {
        self.reserve(items.len());
        // SAFETY: room for `items.len()` more was reserved, and a slice
        // of `self` cannot be borrowed here (`&mut self`), so the source is
        // disjoint from the free part of the buffer.
        unsafe {
            copy_bytes(
                items.as_ptr().cast(),
                self.ptr.as_ptr().add(self.len).cast(),
                core::mem::size_of_val(items),
            );
        }
        self.len += items.len();
    }

    /// Appends copies of each slice of `slices`, reserving once.
    pub fn extend_from_slices_copy(&mut self, slices: &[&[T]])
    where
        T: Copy,
    {
        let total = slices.iter().map(|s| s.len()).fold(0usize, usize::saturating_add);
        self.reserve(total);
        for s in slices {
            self.extend_from_slice_copy(s);
        }
    }

    /// Appends clones of the elements in `range` of the vector itself.
    /// Panics if the range is out of bounds.
    pub fn extend_from_within<R: RangeBounds<usize>>(&mut self, range: R)
    where
        T: Clone,
    {
        let (start, end) = bounds(range, self.len);
        self.reserve(end - start);
        for i in start..end {
            // Capacity is reserved: the buffer does not move, and `i` is
            // below the (growing) length.
            let item = self[i].clone();
            self.push(item);
        }
    }
}

/// The layout of a buffer of `cap` elements of `T`, or `Err` on overflow.
pub(super) fn buffer_layout<T>(cap: usize) -> Result<Layout, AllocError> {
    Layout::array::<T>(cap).map_err(|_| AllocError)
}

/// [`grow`], reporting failure through `handle_alloc_error`.
#[cold]
#[inline(never)]
fn grow_or_oom<T, P: Policy>(
    arena: &Arena<P>,
    ptr: NonNull<T>,
    cap: usize,
    len: usize,
    additional: usize,
    amortized: bool,
) -> (NonNull<T>, usize) {
    match grow(arena, ptr, cap, len, additional, amortized) {
        Ok(r) => r,
        Err(AllocError) => {
            let want = len.saturating_add(additional);
            crate::init::oom(buffer_layout::<T>(want).unwrap_or(Layout::new::<T>()))
        }
    }
}

/// Grows a buffer of `cap` elements holding `len` to hold `len +
/// additional`, doubling when `amortized`. Takes and returns plain values
/// (never `&mut Vec`), so a vector's address does not escape its push loop.
fn grow<T, P: Policy>(
    arena: &Arena<P>,
    ptr: NonNull<T>,
    cap: usize,
    len: usize,
    additional: usize,
    amortized: bool,
) -> Result<(NonNull<T>, usize), AllocError> {
    if core::mem::size_of::<T>() == 0 {
        // Zero-sized elements: capacity is usize::MAX from the start, so we
        // only get here when the length would overflow.
        return Err(AllocError);
    }
    let needed = len.checked_add(additional).ok_or(AllocError)?;
    let new_cap = if amortized { needed.max(cap.saturating_mul(2)).max(8) } else { needed };
    let new_layout = buffer_layout::<T>(new_cap)?;
    let new = if cap == 0 {
        arena.alloc_tracked(new_layout)?
    } else {
        let old_layout = buffer_layout::<T>(cap)?;
        // SAFETY: `ptr` is this arena's block laid out for `cap` elements
        // (the vector's invariant), and the new layout is no smaller.
        unsafe { arena.realloc_raw(ptr.cast(), old_layout, new_layout)? }
    };
    Ok((new.cast(), new_cap))
}

impl<T, P: Policy> Drop for Vec<'_, T, P> {
    fn drop(&mut self) {
        // SAFETY: the first `len` elements are initialised and dropped once.
        unsafe { core::ptr::drop_in_place(self.as_mut_slice()) };
        if self.cap != 0 && core::mem::size_of::<T>() != 0 {
            if let Ok(layout) = buffer_layout::<T>(self.cap) {
                // SAFETY: the buffer is this arena's block for that layout,
                // and the vector is going away.
                unsafe { self.arena.dealloc_raw(self.ptr.cast(), layout) };
            }
        }
    }
}

impl<T, P: Policy> Deref for Vec<'_, T, P> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T, P: Policy> DerefMut for Vec<'_, T, P> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T, P: Policy> Extend<T> for Vec<'_, T, P> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        for item in iter {
            self.push(item);
        }
    }
}

impl<'v, T, P: Policy> IntoIterator for &'v Vec<'_, T, P> {
    type Item = &'v T;
    type IntoIter = core::slice::Iter<'v, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl<T: core::fmt::Debug, P: Policy> core::fmt::Debug for Vec<'_, T, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: PartialEq<U>, U, P: Policy> PartialEq<[U]> for Vec<'_, T, P> {
    fn eq(&self, other: &[U]) -> bool {
        self.as_slice() == other
    }
}

/// Copies `n` bytes from `src` to `dst`, which do not overlap. Up to 16
/// bytes without a call: two possibly overlapping word moves cover any
/// length in a power-of-two band (the common `push_str` of a short word
/// would otherwise be a `memcpy` call each).
///
/// # Safety
/// `src` is readable and `dst` writable for `n` bytes, and they are
/// disjoint.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, n: usize) {
    if n > 16 {
        // SAFETY: the caller's ranges, disjoint.
        unsafe { ptr::copy_nonoverlapping(src, dst, n) };
    } else if n >= 8 {
        // SAFETY: `8 <= n`: both words lie in `src..src + n` and
        // `dst..dst + n` (the caller's ranges); unaligned moves.
        unsafe {
            let (a, b) = (src.cast::<u64>().read_unaligned(), src.add(n - 8).cast::<u64>().read_unaligned());
            dst.cast::<u64>().write_unaligned(a);
            dst.add(n - 8).cast::<u64>().write_unaligned(b);
        }
    } else if n >= 4 {
        // SAFETY: as above, with 4-byte words and `4 <= n`.
        unsafe {
            let (a, b) = (src.cast::<u32>().read_unaligned(), src.add(n - 4).cast::<u32>().read_unaligned());
            dst.cast::<u32>().write_unaligned(a);
            dst.add(n - 4).cast::<u32>().write_unaligned(b);
        }
    } else if n > 0 {
        // SAFETY: 1 to 3 bytes: first, middle and last (some the same
        // byte), all below `n`.
        unsafe {
            let (a, m, z) = (src.read(), src.add(n / 2).read(), src.add(n - 1).read());
            dst.write(a);
            dst.add(n / 2).write(m);
            dst.add(n - 1).write(z);
        }
    }
}

/// `range` as `start..end` within `0..len`; panics when out of bounds.
fn bounds<R: RangeBounds<usize>>(range: R, len: usize) -> (usize, usize) {
    use core::ops::Bound;
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1).expect("range start overflows"),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1).expect("range end overflows"),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    assert!(start <= end, "range start (is {start}) should be <= range end (is {end})");
    assert!(end <= len, "range end (is {end}) should be <= len (is {len})");
    (start, end)
}

impl<'v, T, P: Policy> IntoIterator for &'v mut Vec<'_, T, P> {
    type Item = &'v mut T;
    type IntoIter = core::slice::IterMut<'v, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_mut_slice().iter_mut()
    }
}

impl<'b, T: Copy + 'b, P: Policy> Extend<&'b T> for Vec<'_, T, P> {
    fn extend<I: IntoIterator<Item = &'b T>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<T: Clone, P: Policy> Clone for Vec<'_, T, P> {
    fn clone(&self) -> Self {
        let mut v = Self::with_capacity_in(self.len, self.arena);
        v.extend_from_slice(self);
        v
    }
}

impl<T: PartialEq<U>, U, P: Policy, Q: Policy> PartialEq<Vec<'_, U, Q>> for Vec<'_, T, P> {
    fn eq(&self, other: &Vec<'_, U, Q>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: PartialEq<U>, U, P: Policy> PartialEq<&[U]> for Vec<'_, T, P> {
    fn eq(&self, other: &&[U]) -> bool {
        self.as_slice() == *other
    }
}

impl<T: PartialEq<U>, U, P: Policy, const N: usize> PartialEq<[U; N]> for Vec<'_, T, P> {
    fn eq(&self, other: &[U; N]) -> bool {
        self.as_slice() == other
    }
}

impl<T: Eq, P: Policy> Eq for Vec<'_, T, P> {}

impl<T: PartialOrd, P: Policy> PartialOrd for Vec<'_, T, P> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        self.as_slice().partial_cmp(other.as_slice())
    }
}

impl<T: Ord, P: Policy> Ord for Vec<'_, T, P> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl<T: core::hash::Hash, P: Policy> core::hash::Hash for Vec<'_, T, P> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl<T, I: core::slice::SliceIndex<[T]>, P: Policy> core::ops::Index<I> for Vec<'_, T, P> {
    type Output = I::Output;
    #[inline]
    fn index(&self, index: I) -> &I::Output {
        &self.as_slice()[index]
    }
}

impl<T, I: core::slice::SliceIndex<[T]>, P: Policy> core::ops::IndexMut<I> for Vec<'_, T, P> {
    #[inline]
    fn index_mut(&mut self, index: I) -> &mut I::Output {
        &mut self.as_mut_slice()[index]
    }
}

impl<T, P: Policy> AsRef<[T]> for Vec<'_, T, P> {
    fn as_ref(&self) -> &[T] {
        self
    }
}

impl<T, P: Policy> AsMut<[T]> for Vec<'_, T, P> {
    fn as_mut(&mut self) -> &mut [T] {
        self
    }
}

impl<T, P: Policy> core::borrow::Borrow<[T]> for Vec<'_, T, P> {
    fn borrow(&self) -> &[T] {
        self
    }
}

impl<T, P: Policy> core::borrow::BorrowMut<[T]> for Vec<'_, T, P> {
    fn borrow_mut(&mut self) -> &mut [T] {
        self
    }
}

impl<'a, T, P: Policy> FromIteratorIn<T> for Vec<'a, T, P> {
    type Alloc = &'a Arena<P>;
    fn from_iter_in<I: IntoIterator<Item = T>>(iter: I, arena: &'a Arena<P>) -> Self {
        Vec::from_iter_in(iter, arena)
    }
}

impl<P: Policy> std::io::Write for Vec<'_, u8, P> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.try_reserve(buf.len()).map_err(|_| std::io::Error::from(std::io::ErrorKind::OutOfMemory))?;
        self.extend_from_slice_copy(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
