//! Filling a fresh block: moving a value or copying a slice into the block
//! an arena just handed out, or reporting the failure of a panicking call.
//!
//! Shared by the arenas' `alloc`, `alloc_slice_copy` and `alloc_str`, so
//! that the arena layers above hold only their own bumping; this module
//! knows nothing of any arena.

use crate::AllocError;
use core::alloc::Layout;
use core::ptr::NonNull;

/// Moves `value` into `block` (a fresh allocation for `T`), or reports the
/// failure through `handle_alloc_error`.
///
/// # Safety
/// If `block` is `Ok`, it is a fresh block sized and aligned for `T`, used
/// by nothing else, and valid for `'a`.
#[inline(always)]
pub(crate) unsafe fn write_value<'a, T>(block: Result<NonNull<u8>, AllocError>, value: T) -> &'a mut T {
    match block {
        Ok(p) => {
            let p = p.cast::<T>();
            // SAFETY: by the caller's promise.
            unsafe {
                p.as_ptr().write(value);
                &mut *p.as_ptr()
            }
        }
        Err(_) => oom(Layout::new::<T>()),
    }
}

/// Copies `src` into `block` (a fresh allocation for `Layout::for_value(src)`),
/// or reports the failure through `handle_alloc_error`.
///
/// # Safety
/// As for [`write_value`], for a block holding `src.len()` values of `T`.
#[inline]
pub(crate) unsafe fn copy_slice<'a, T: Copy>(
    block: Result<NonNull<u8>, AllocError>,
    src: &[T],
) -> &'a mut [T] {
    let p = match block {
        Ok(p) => p.cast::<T>(),
        Err(_) => oom(Layout::for_value(src)),
    };
    // SAFETY: by the caller's promise the block is fresh (so disjoint from
    // `src`) and holds `src.len()` values; `T: Copy` needs no drop.
    unsafe {
        core::ptr::copy_nonoverlapping(src.as_ptr(), p.as_ptr(), src.len());
        core::slice::from_raw_parts_mut(p.as_ptr(), src.len())
    }
}

/// Reports an allocation failure of a panicking call.
#[cold]
#[inline(never)]
pub(crate) fn oom(layout: Layout) -> ! {
    std::alloc::handle_alloc_error(layout)
}

/// The error of a call that allocates and then builds a value that may fail
/// to build (`try_alloc_try_with`, `try_alloc_slice_try_fill_with`):
/// bumpalo's type of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocOrInitError<E> {
    /// The arena had no memory for the value.
    Alloc(AllocError),
    /// The value's constructor failed with this error.
    Init(E),
}

impl<E> From<AllocError> for AllocOrInitError<E> {
    fn from(e: AllocError) -> Self {
        AllocOrInitError::Alloc(e)
    }
}

impl<E: core::fmt::Display> core::fmt::Display for AllocOrInitError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AllocOrInitError::Alloc(_) => f.write_str("memory allocation failed"),
            AllocOrInitError::Init(e) => write!(f, "initialization failed: {e}"),
        }
    }
}

impl<E: core::fmt::Debug + core::fmt::Display> std::error::Error for AllocOrInitError<E> {}
