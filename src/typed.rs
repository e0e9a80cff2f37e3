//! The typed allocation family: building values in place, filling slices,
//! collecting iterators and formatting, for [`Arena`], [`SharedArena`] and
//! [`Lease`] alike, under bumpalo's names and signatures.
//!
//! Each arena type has one untyped primitive, `try_alloc_layout` (a bump),
//! and one way to give its newest block back (`dealloc_raw`). Everything
//! here is written once over those two ([`Bumper`]), and `typed_family!`
//! stamps the methods onto each type, so the three cannot drift apart.
//!
//! # Building in place
//!
//! `alloc_with(f)` allocates first and then writes `f()` into the block. A
//! value under 16 KiB is written directly (`#[inline(always)]`, so an
//! optimised build usually constructs it in the block). A larger one is
//! built on a side stack (see `side` below): the optimiser cannot be made
//! to build a call's result in an arena block, and a 40 MB value would
//! otherwise pass through the caller's stack (it overflows bumpalo's
//! `alloc_with` on a 1 MiB stack, release build or not).
//!
//! # Panics and errors
//!
//! Every method that panics has a `try_` form that returns `AllocError`
//! instead (or [`AllocOrInitError`] when the value's own constructor can
//! fail too). If a filling closure panics, the elements written so far are
//! leaked (an arena never drops what it holds), never dropped twice; if it
//! returns an error, they are dropped and the block is given back when it
//! is still the newest.
//!
//! # Iterators of unknown length
//!
//! `alloc_iter` collects into a vector in the arena and then freezes it.
//! If the iterator itself allocates in the same arena, the vector's buffer
//! is no longer the newest block, so growing it copies instead of moving
//! the cursor: slower, never unsound (the earlier buffer becomes dead space
//! until the next reset).

// The helpers hand out `&mut` blocks from `&self` arenas, as every bump
// arena does; the lifetimes are spelled out to say so.
#![allow(clippy::mut_from_ref, clippy::needless_lifetimes)]

use crate::arena::Arena;
use crate::collections;
use crate::init::{oom, AllocOrInitError};
use crate::policy::Policy;
use crate::shared::{Lease, SharedArena};
use crate::AllocError;
use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

/// What the typed family needs of an arena type.
pub(crate) trait Bumper {
    /// A fresh, uninitialised block for `layout`.
    fn bump(&self, layout: Layout) -> Result<NonNull<u8>, AllocError>;

    /// Gives back a block that was just handed out and never used (the
    /// memory is reclaimed when it is still the newest block).
    ///
    /// # Safety
    /// `ptr` came from [`bump`](Self::bump) on `self` for `layout`, and
    /// nothing uses it again.
    unsafe fn give_back(&self, ptr: NonNull<u8>, layout: Layout);
}

impl<P: Policy> Bumper for Arena<P> {
    #[inline(always)]
    fn bump(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.try_alloc_layout(layout)
    }

    #[inline]
    unsafe fn give_back(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.dealloc_raw(ptr, layout) }
    }
}

impl<P: Policy> Bumper for SharedArena<P> {
    #[inline(always)]
    fn bump(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.try_alloc_layout(layout)
    }

    #[inline]
    unsafe fn give_back(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.dealloc_raw(ptr, layout) }
    }
}

impl<P: Policy> Bumper for Lease<'_, P> {
    #[inline(always)]
    fn bump(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.try_alloc_layout(layout)
    }

    #[inline]
    unsafe fn give_back(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { self.dealloc_raw(ptr, layout) }
    }
}

/// Writes `f()` into `p` and hands it out: on a side stack for a value of
/// [`SIDE_STACK_MIN`] bytes or more (see the module docs), else directly
/// (`inline(always)`, so the optimiser may build it in the block).
///
/// # Safety
/// `p` is a fresh block for `T`, valid for `'a` and used by nothing else.
#[inline(always)]
unsafe fn write_with<'a, T: 'a>(p: NonNull<T>, f: impl FnOnce() -> T) -> &'a mut T {
    #[cfg(not(miri))]
    if core::mem::size_of::<T>() >= SIDE_STACK_MIN {
        // SAFETY: forwarded from the caller.
        return unsafe { side::write_on_side_stack(p, f) };
    }
    // SAFETY: forwarded from the caller.
    unsafe { write_direct(p, f) }
}

/// The direct write of [`write_with`]. Inlined in optimised builds; a frame
/// of its own in debug builds, which keep a temporary of `T`'s size for
/// `f()` and would otherwise size every caller's frame for it, even when
/// the side stack is the path taken.
///
/// # Safety
/// As for [`write_with`].
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
unsafe fn write_direct<'a, T: 'a>(p: NonNull<T>, f: impl FnOnce() -> T) -> &'a mut T {
    // SAFETY: by the caller's promise.
    unsafe {
        p.as_ptr().write(f());
        &mut *p.as_ptr()
    }
}

/// Values at least this large are built on a side stack by `alloc_with`:
/// a fiber's stack may be 64 KiB, and a temporary of this size in its frame
/// already takes a quarter of it.
pub(crate) const SIDE_STACK_MIN: usize = 16 << 10;

/// Building a large value on a stack of its own.
///
/// The closure's result is a temporary of `T`'s size in the frame that
/// calls it, and no stable means makes the optimiser put it in the block
/// instead: LLVM builds a call's result in the final place only when that
/// place is provably writable and dead if the call unwinds, which an arena
/// pointer never is (measured: a 40 MB value overflows a 1 MiB stack with
/// bumpalo's `alloc_with` and with every in-place variant tried). So the
/// call and the copy run on a guarded side stack of at least twice `T`'s
/// size (four times in debug builds) (`corosensei::on_stack`, which carries a panic back across), kept
/// per thread for the next large value; the caller's stack holds nothing
/// of `T`. A nested large `alloc_with` (inside `f`) gets a stack of its own.
#[cfg(not(miri))]
mod side {
    use crate::stack::FiberStack;
    use core::cell::Cell;
    use core::ptr::NonNull;

    std::thread_local! {
        /// The side stack kept for this thread's next large value (taken
        /// while in use, so a nested call makes another).
        static SPARE: Cell<Option<FiberStack>> = const { Cell::new(None) };
    }

    /// Writes `f()` into `p`, running `f` on a side stack.
    ///
    /// # Safety
    /// As for `write_with`.
    #[inline(never)]
    pub(super) unsafe fn write_on_side_stack<'a, T: 'a>(p: NonNull<T>, f: impl FnOnce() -> T) -> &'a mut T {
        // An optimised build keeps at most one temporary of `T` there; a
        // debug build one per function on the way (`f`'s own, its result,
        // the write's). Untouched pages of the mapping cost nothing.
        let copies = if cfg!(debug_assertions) { 4 } else { 2 };
        let need = core::mem::size_of::<T>().saturating_mul(copies).saturating_add(256 << 10);
        let kept = SPARE.try_with(|s| s.take()).ok().flatten();
        let stack = match kept {
            Some(s) if s.usable_size() >= need => Some(s),
            _ => FiberStack::new(need).ok(),
        };
        let Some(mut stack) = stack else {
            // No stack could be mapped: build it here, as the optimiser
            // manages (what `alloc_with` does without a side stack).
            // SAFETY: by the caller's promise.
            return unsafe { write_fallback(p, f) };
        };
        let dst = p.as_ptr();
        // SAFETY: `dst` is a fresh block for `T` (the caller's promise); the
        // closure writes it once, on the side stack. A panic in `f` leaves
        // it unwritten and is carried back by `on_stack`.
        corosensei::on_stack(&mut stack, move || unsafe { dst.write(f()) });
        // Keep the larger of this stack and one a nested call left.
        let _ = SPARE.try_with(|s| match s.take() {
            Some(other) if other.usable_size() > stack.usable_size() => s.set(Some(other)),
            _ => s.set(Some(stack)),
        });
        // SAFETY: written above; valid for `'a` by the caller's promise.
        unsafe { &mut *dst }
    }

    /// The direct write when no side stack could be mapped, in a frame of
    /// its own: its temporary of `T`'s size must not sit in
    /// `write_on_side_stack`'s frame (a frame is sized, and probed, for
    /// all its paths at entry).
    ///
    /// # Safety
    /// As for `write_with`.
    #[cold]
    #[inline(never)]
    unsafe fn write_fallback<'a, T: 'a>(p: NonNull<T>, f: impl FnOnce() -> T) -> &'a mut T {
        // SAFETY: by the caller's promise.
        unsafe {
            p.as_ptr().write(f());
            &mut *p.as_ptr()
        }
    }
}

#[inline(always)]
fn try_alloc_with<'a, B: Bumper + ?Sized, T>(
    b: &'a B,
    f: impl FnOnce() -> T,
) -> Result<&'a mut T, AllocError> {
    let p = b.bump(Layout::new::<T>())?.cast::<T>();
    // SAFETY: a fresh block for `T`, valid while `b` is borrowed (every
    // arena type needs `&mut` or the end of its lease to free it).
    Ok(unsafe { write_with(p, f) })
}

#[inline(always)]
fn try_alloc_try_with<'a, B: Bumper + ?Sized, T, E>(
    b: &'a B,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<&'a mut T, AllocOrInitError<E>> {
    let layout = Layout::new::<Result<T, E>>();
    let p = b.bump(layout).map_err(AllocOrInitError::Alloc)?.cast::<Result<T, E>>();
    // SAFETY: a fresh block for `Result<T, E>`, as in `try_alloc_with`;
    // the short-lived reference only finds the payload.
    let (value, error): (Option<*mut T>, Option<*const E>) = match unsafe { write_with(p, f) } {
        Ok(value) => (Some(value), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(value) = value {
        // The value lives inside the `Result` in the arena (the
        // discriminant's bytes are the price of building it in place).
        // SAFETY: an initialised `T` in a block valid for `'a`, handed out
        // once.
        return Ok(unsafe { &mut *value });
    }
    // Only the error is read out (not the whole `Result`, which may be
    // large); the block then goes back unused.
    // SAFETY: `write_with` returned `Err`, so `error` is set and points at
    // the initialised error, read once and not touched again.
    let e = unsafe { error.unwrap_unchecked().read() };
    // SAFETY: `p` came from `bump` for `layout`; its contents were moved out.
    unsafe { b.give_back(p.cast(), layout) };
    Err(AllocOrInitError::Init(e))
}

/// A block for `len` values of `T`.
#[inline(always)]
fn slice_block<B: Bumper + ?Sized, T>(b: &B, len: usize) -> Result<(NonNull<T>, Layout), AllocError> {
    let layout = Layout::array::<T>(len).map_err(|_| AllocError)?;
    Ok((b.bump(layout)?.cast::<T>(), layout))
}

#[inline]
fn try_alloc_slice_fill_with<'a, B: Bumper + ?Sized, T>(
    b: &'a B,
    len: usize,
    mut f: impl FnMut(usize) -> T,
) -> Result<&'a mut [T], AllocError> {
    let (p, _) = slice_block::<B, T>(b, len)?;
    for i in 0..len {
        // SAFETY: `i < len`: inside the fresh block, written once. A panic
        // in `f` leaks the elements written so far (never read again).
        unsafe { p.as_ptr().add(i).write(f(i)) };
    }
    // SAFETY: all `len` elements are initialised; the block is valid for
    // `'a` and handed out once.
    Ok(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) })
}

#[inline]
fn try_alloc_slice_try_fill_with<'a, B: Bumper + ?Sized, T, E>(
    b: &'a B,
    len: usize,
    mut f: impl FnMut(usize) -> Result<T, E>,
) -> Result<&'a mut [T], AllocOrInitError<E>> {
    let (p, layout) = slice_block::<B, T>(b, len).map_err(AllocOrInitError::Alloc)?;
    for i in 0..len {
        match f(i) {
            // SAFETY: as in `try_alloc_slice_fill_with`.
            Ok(value) => unsafe { p.as_ptr().add(i).write(value) },
            Err(e) => {
                // SAFETY: the first `i` elements are initialised and owned
                // here (never handed out); dropped once, then the block goes
                // back unused.
                unsafe {
                    core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(p.as_ptr(), i));
                    b.give_back(p.cast(), layout);
                }
                return Err(AllocOrInitError::Init(e));
            }
        }
    }
    // SAFETY: as in `try_alloc_slice_fill_with`.
    Ok(unsafe { core::slice::from_raw_parts_mut(p.as_ptr(), len) })
}

/// The `i`-th value of an iterator that said its length: the filling
/// closure of the `_fill_iter` methods. Panics (naming `method`) if the
/// iterator yields fewer values than its `len()`.
#[inline]
fn each_of<I: Iterator>(mut iter: I, method: &'static str) -> impl FnMut(usize) -> I::Item {
    move |_| match iter.next() {
        Some(v) => v,
        None => panic!("{method}: the iterator yielded fewer values than its len()"),
    }
}

/// Turns an `AllocOrInitError` of a panicking method into its panic.
#[inline]
fn init_or_oom<T, E>(r: Result<T, AllocOrInitError<E>>, layout: impl FnOnce() -> Layout) -> Result<T, E> {
    match r {
        Ok(v) => Ok(v),
        Err(AllocOrInitError::Init(e)) => Err(e),
        Err(AllocOrInitError::Alloc(_)) => oom(layout()),
    }
}

/// A slice layout for an error report (`Layout::new::<T>()` when `len` is
/// too large to have one).
fn array_or_one<T>(len: usize) -> Layout {
    Layout::array::<T>(len).unwrap_or(Layout::new::<T>())
}

/// Stamps the typed family onto an arena type; `$ty` is the type, with its
/// generic parameters in brackets: `typed_family!([P: Policy] Arena<P>)`.
macro_rules! typed_family {
    ([$($gen:tt)*] $ty:ty) => {
        #[allow(clippy::mut_from_ref)]
        impl<$($gen)*> $ty {
            /// Builds `f()` in place in the arena (no copy through the
            /// stack in an optimised build). Panics (through
            /// `handle_alloc_error`) when memory runs out.
            #[inline(always)]
            pub fn alloc_with<T>(&self, f: impl FnOnce() -> T) -> &mut T {
                match try_alloc_with(self, f) {
                    Ok(r) => r,
                    Err(_) => oom(Layout::new::<T>()),
                }
            }

            /// [`alloc_with`](Self::alloc_with), or `Err(AllocError)` when
            /// memory runs out (`f` is then not called).
            #[inline(always)]
            pub fn try_alloc_with<T>(&self, f: impl FnOnce() -> T) -> Result<&mut T, AllocError> {
                try_alloc_with(self, f)
            }

            /// Builds the `Ok` value of `f()` in place; `f`'s error is
            /// passed on (and the block given back). Panics when memory
            /// runs out.
            #[inline(always)]
            pub fn alloc_try_with<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<&mut T, E> {
                init_or_oom(try_alloc_try_with(self, f), Layout::new::<Result<T, E>>)
            }

            /// [`alloc_try_with`](Self::alloc_try_with) with running out of
            /// memory reported as [`AllocOrInitError::Alloc`].
            #[inline(always)]
            pub fn try_alloc_try_with<T, E>(
                &self,
                f: impl FnOnce() -> Result<T, E>,
            ) -> Result<&mut T, AllocOrInitError<E>> {
                try_alloc_try_with(self, f)
            }

            /// Copies `src` into the arena, or gives `Err(AllocError)`.
            #[inline]
            pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
                let p = self.bump(Layout::for_value(src))?.cast::<T>();
                // SAFETY: a fresh block (so disjoint from `src`) holding
                // `src.len()` values; `T: Copy` needs no drop.
                unsafe {
                    core::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
                    Ok(core::slice::from_raw_parts_mut(p.as_ptr(), src.len()))
                }
            }

            /// Copies `s` into the arena, or gives `Err(AllocError)`.
            #[inline]
            pub fn try_alloc_str(&self, s: &str) -> Result<&mut str, AllocError> {
                let bytes = self.try_alloc_slice_copy(s.as_bytes())?;
                // SAFETY: the bytes were copied from a `str`.
                Ok(unsafe { core::str::from_utf8_unchecked_mut(bytes) })
            }

            /// Clones each element of `src` into the arena. Panics when
            /// memory runs out.
            #[inline]
            pub fn alloc_slice_clone<T: Clone>(&self, src: &[T]) -> &mut [T] {
                self.alloc_slice_fill_with(src.len(), |i| src[i].clone())
            }

            /// [`alloc_slice_clone`](Self::alloc_slice_clone), or
            /// `Err(AllocError)`.
            #[inline]
            pub fn try_alloc_slice_clone<T: Clone>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
                self.try_alloc_slice_fill_with(src.len(), |i| src[i].clone())
            }

            /// A slice of `len` values, the `i`-th being `f(i)`. Panics when
            /// memory runs out.
            #[inline]
            pub fn alloc_slice_fill_with<T>(&self, len: usize, f: impl FnMut(usize) -> T) -> &mut [T] {
                match try_alloc_slice_fill_with(self, len, f) {
                    Ok(s) => s,
                    Err(_) => oom(array_or_one::<T>(len)),
                }
            }

            /// [`alloc_slice_fill_with`](Self::alloc_slice_fill_with), or
            /// `Err(AllocError)` (and `f` not called).
            #[inline]
            pub fn try_alloc_slice_fill_with<T>(
                &self,
                len: usize,
                f: impl FnMut(usize) -> T,
            ) -> Result<&mut [T], AllocError> {
                try_alloc_slice_fill_with(self, len, f)
            }

            /// A slice of `len` values from `f(i)`, stopping at `f`'s first
            /// error (the values made so far are dropped and the block
            /// given back). Panics when memory runs out.
            #[inline]
            pub fn alloc_slice_try_fill_with<T, E>(
                &self,
                len: usize,
                f: impl FnMut(usize) -> Result<T, E>,
            ) -> Result<&mut [T], E> {
                init_or_oom(try_alloc_slice_try_fill_with(self, len, f), || array_or_one::<T>(len))
            }

            /// [`alloc_slice_try_fill_with`](Self::alloc_slice_try_fill_with)
            /// with running out of memory reported as
            /// [`AllocOrInitError::Alloc`].
            #[inline]
            pub fn try_alloc_slice_try_fill_with<T, E>(
                &self,
                len: usize,
                f: impl FnMut(usize) -> Result<T, E>,
            ) -> Result<&mut [T], AllocOrInitError<E>> {
                try_alloc_slice_try_fill_with(self, len, f)
            }

            /// `len` copies of `value`. Panics when memory runs out.
            #[inline]
            pub fn alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> &mut [T] {
                self.alloc_slice_fill_with(len, |_| value)
            }

            /// [`alloc_slice_fill_copy`](Self::alloc_slice_fill_copy), or
            /// `Err(AllocError)`.
            #[inline]
            pub fn try_alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> Result<&mut [T], AllocError> {
                self.try_alloc_slice_fill_with(len, |_| value)
            }

            /// `len` clones of `value`. Panics when memory runs out.
            #[inline]
            pub fn alloc_slice_fill_clone<T: Clone>(&self, len: usize, value: &T) -> &mut [T] {
                self.alloc_slice_fill_with(len, |_| value.clone())
            }

            /// [`alloc_slice_fill_clone`](Self::alloc_slice_fill_clone), or
            /// `Err(AllocError)`.
            #[inline]
            pub fn try_alloc_slice_fill_clone<T: Clone>(&self, len: usize, value: &T) -> Result<&mut [T], AllocError> {
                self.try_alloc_slice_fill_with(len, |_| value.clone())
            }

            /// `len` values of `T::default()`. Panics when memory runs out.
            #[inline]
            pub fn alloc_slice_fill_default<T: Default>(&self, len: usize) -> &mut [T] {
                self.alloc_slice_fill_with(len, |_| T::default())
            }

            /// [`alloc_slice_fill_default`](Self::alloc_slice_fill_default),
            /// or `Err(AllocError)`.
            #[inline]
            pub fn try_alloc_slice_fill_default<T: Default>(&self, len: usize) -> Result<&mut [T], AllocError> {
                self.try_alloc_slice_fill_with(len, |_| T::default())
            }

            /// The values of an iterator whose length is known
            /// (`ExactSizeIterator`). Panics when memory runs out, or if the
            /// iterator yields fewer values than its `len()` said. For an
            /// iterator of unknown length, use `alloc_iter`.
            #[inline]
            pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> &mut [T]
            where
                I: IntoIterator<Item = T>,
                I::IntoIter: ExactSizeIterator,
            {
                let iter = iter.into_iter();
                self.alloc_slice_fill_with(iter.len(), each_of(iter, "alloc_slice_fill_iter"))
            }

            /// [`alloc_slice_fill_iter`](Self::alloc_slice_fill_iter), or
            /// `Err(AllocError)` when memory runs out.
            #[inline]
            pub fn try_alloc_slice_fill_iter<T, I>(&self, iter: I) -> Result<&mut [T], AllocError>
            where
                I: IntoIterator<Item = T>,
                I::IntoIter: ExactSizeIterator,
            {
                let iter = iter.into_iter();
                self.try_alloc_slice_fill_with(iter.len(), each_of(iter, "try_alloc_slice_fill_iter"))
            }

            /// The values of an iterator of `Result`s of known length,
            /// stopping at the first error. Panics when memory runs out.
            #[inline]
            pub fn alloc_slice_try_fill_iter<T, E, I>(&self, iter: I) -> Result<&mut [T], E>
            where
                I: IntoIterator<Item = Result<T, E>>,
                I::IntoIter: ExactSizeIterator,
            {
                let iter = iter.into_iter();
                self.alloc_slice_try_fill_with(iter.len(), each_of(iter, "alloc_slice_try_fill_iter"))
            }

            /// [`alloc_slice_try_fill_iter`](Self::alloc_slice_try_fill_iter)
            /// with running out of memory reported as
            /// [`AllocOrInitError::Alloc`].
            #[inline]
            pub fn try_alloc_slice_try_fill_iter<T, E, I>(&self, iter: I) -> Result<&mut [T], AllocOrInitError<E>>
            where
                I: IntoIterator<Item = Result<T, E>>,
                I::IntoIter: ExactSizeIterator,
            {
                let iter = iter.into_iter();
                self.try_alloc_slice_try_fill_with(iter.len(), each_of(iter, "try_alloc_slice_try_fill_iter"))
            }

            /// `len` uninitialised slots for `T`: bumpalo's
            /// `alloc_slice_fill_with` without the filling, for callers that
            /// write the slots themselves. Panics when memory runs out.
            #[inline]
            pub fn alloc_uninit_slice<T>(&self, len: usize) -> &mut [MaybeUninit<T>] {
                match self.try_alloc_uninit_slice(len) {
                    Ok(s) => s,
                    Err(_) => oom(array_or_one::<T>(len)),
                }
            }

            /// [`alloc_uninit_slice`](Self::alloc_uninit_slice), or
            /// `Err(AllocError)`.
            #[inline]
            pub fn try_alloc_uninit_slice<T>(&self, len: usize) -> Result<&mut [MaybeUninit<T>], AllocError> {
                let (p, _) = slice_block::<Self, T>(self, len)?;
                // SAFETY: a fresh block for `len` values; `MaybeUninit`
                // needs no initialisation.
                Ok(unsafe { core::slice::from_raw_parts_mut(p.as_ptr().cast(), len) })
            }
        }
    };
}

typed_family!([P: Policy] Arena<P>);
typed_family!([P: Policy] SharedArena<P>);
typed_family!(['l, P: Policy] Lease<'l, P>);

/// Collects an iterator into an allocator-api2 vector over `alloc` and
/// freezes it.
fn try_collect_api2<'a, T, A>(alloc: A, iter: impl IntoIterator<Item = T>) -> Result<&'a mut [T], AllocError>
where
    A: allocator_api2::alloc::Allocator + 'a,
{
    let iter = iter.into_iter();
    let mut v = allocator_api2::vec::Vec::new_in(alloc);
    v.try_reserve(iter.size_hint().0).map_err(|_| AllocError)?;
    for item in iter {
        if v.len() == v.capacity() {
            v.try_reserve(1).map_err(|_| AllocError)?;
        }
        v.push(item);
    }
    Ok(v.leak())
}

/// Formats into an allocator-api2 byte vector over `alloc` and freezes it.
fn try_fmt_api2<'a, A>(alloc: A, args: core::fmt::Arguments<'_>) -> Result<&'a mut str, AllocError>
where
    A: allocator_api2::alloc::Allocator + 'a,
{
    struct Out<A: allocator_api2::alloc::Allocator>(allocator_api2::vec::Vec<u8, A>, bool);
    impl<A: allocator_api2::alloc::Allocator> core::fmt::Write for Out<A> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            if self.0.try_reserve(s.len()).is_err() {
                self.1 = true;
                return Err(core::fmt::Error);
            }
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    let mut out = Out(allocator_api2::vec::Vec::new_in(alloc), false);
    if core::fmt::write(&mut out, args).is_err() && out.1 {
        return Err(AllocError);
    }
    // A `Display` impl that fails on its own is a bug in it; as with
    // `format!`, what it wrote is kept.
    // SAFETY: only whole `str`s were appended.
    Ok(unsafe { core::str::from_utf8_unchecked_mut(out.0.leak()) })
}

/// Iterators of unknown length and formatting, shared by `SharedArena`
/// and `Lease` (through allocator-api2's `Vec`; `Arena` has its own, on
/// `collections::Vec`).
macro_rules! collect_family {
    ([$($gen:tt)*] $ty:ty) => {
        #[allow(clippy::mut_from_ref)]
        impl<$($gen)*> $ty {
            /// Moves `value` into the arena, or gives `Err(AllocError)`.
            #[inline(always)]
            pub fn try_alloc<T>(&self, value: T) -> Result<&mut T, AllocError> {
                try_alloc_with(self, || value)
            }

            /// The values of any iterator, its length unknown in advance.
            /// Safe even when the iterator allocates in this arena too.
            /// Panics when memory runs out.
            pub fn alloc_iter<T>(&self, iter: impl IntoIterator<Item = T>) -> &mut [T] {
                match try_collect_api2(self, iter) {
                    Ok(s) => s,
                    Err(_) => oom(Layout::new::<T>()),
                }
            }

            /// [`alloc_iter`](Self::alloc_iter), or `Err(AllocError)` (the
            /// values taken so far are dropped).
            pub fn try_alloc_iter<T>(&self, iter: impl IntoIterator<Item = T>) -> Result<&mut [T], AllocError> {
                try_collect_api2(self, iter)
            }

            /// Formats `args` into the arena: `alloc_fmt(format_args!(..))`.
            /// Panics when memory runs out.
            pub fn alloc_fmt(&self, args: core::fmt::Arguments<'_>) -> &mut str {
                match try_fmt_api2(self, args) {
                    Ok(s) => s,
                    Err(_) => oom(Layout::new::<u8>()),
                }
            }

            /// [`alloc_fmt`](Self::alloc_fmt), or `Err(AllocError)`.
            pub fn try_alloc_fmt(&self, args: core::fmt::Arguments<'_>) -> Result<&mut str, AllocError> {
                try_fmt_api2(self, args)
            }
        }
    };
}

collect_family!([P: Policy] SharedArena<P>);
collect_family!(['l, P: Policy] Lease<'l, P>);

impl<P: Policy> Lease<'_, P> {
    /// Copies `s` into the lease's memory. Panics when memory runs out.
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: the bytes were copied from a `str`.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }
}

#[allow(clippy::mut_from_ref)]
impl<P: Policy> Arena<P> {
    /// The values of any iterator, its length unknown in advance (bump-scope's
    /// `alloc_iter`). The values are collected in a [`collections::Vec`]
    /// that grows in place while it is the newest block; safe even when the
    /// iterator allocates in this arena too (the vector then grows by
    /// copying). Panics when memory runs out.
    pub fn alloc_iter<T>(&self, iter: impl IntoIterator<Item = T>) -> &mut [T] {
        let mut v = collections::Vec::new_in(self);
        v.extend(iter);
        v.into_slice()
    }

    /// [`alloc_iter`](Self::alloc_iter), or `Err(AllocError)` (the values
    /// taken so far are dropped).
    pub fn try_alloc_iter<T>(&self, iter: impl IntoIterator<Item = T>) -> Result<&mut [T], AllocError> {
        let iter = iter.into_iter();
        let mut v = collections::Vec::new_in(self);
        v.try_reserve(iter.size_hint().0)?;
        for item in iter {
            v.try_push(item).map_err(|_| AllocError)?;
        }
        Ok(v.into_slice())
    }

    /// Formats `args` into the arena: `arena.alloc_fmt(format_args!("{x}"))`.
    /// Panics when memory runs out. [`format!`](crate::format) makes a
    /// growable [`collections::String`] instead.
    pub fn alloc_fmt(&self, args: core::fmt::Arguments<'_>) -> &mut str {
        match self.try_alloc_fmt(args) {
            Ok(s) => s,
            Err(_) => oom(Layout::new::<u8>()),
        }
    }

    /// [`alloc_fmt`](Self::alloc_fmt), or `Err(AllocError)`.
    pub fn try_alloc_fmt(&self, args: core::fmt::Arguments<'_>) -> Result<&mut str, AllocError> {
        let mut s = collections::String::new_in(self);
        s.try_write_fmt(args)?;
        Ok(s.into_bump_str_mut())
    }
}
