//! The `Allocator` impls: allocator-api2's always, `core::alloc`'s under the
//! `nightly` feature, both from one body (`arena_allocator!`).
//!
//! They are implemented for `&Arena`, `&SharedArena` and `&Lease`, not
//! the types themselves: a collection holds a
//! shared borrow of the arena, so `reset(&mut self)` cannot run while any
//! collection lives. An impl for `Arena` itself would let a collection own a
//! clone-free handle and outlive a reset through `&mut` access, which would
//! be unsound.

use crate::arena::Arena;
use crate::policy::Policy;
use crate::shared::{Lease, SharedArena};
use core::alloc::Layout;
use core::ptr::NonNull;

/// Implements an `Allocator` trait for `&$arena` (`Arena`, `SharedArena`
/// or `Lease`, which have the same `alloc_tracked`, `dealloc_raw` and
/// `realloc_raw`), its generic parameters in brackets; `$trait` and
/// `$error` name the trait and its error type.
macro_rules! arena_allocator {
    ([$($gen:tt)*] $arena:ty, $trait:path, $error:path) => {
        // SAFETY: blocks come from `try_alloc_layout`, are disjoint, sized
        // and aligned for their layout, and stay valid while the `&Arena`
        // borrow lives (freeing them all needs `&mut Arena`). `deallocate`,
        // `grow` and `shrink` only move the cursor for the block that ends
        // at it, and otherwise copy into a fresh block. Copies of the
        // reference are the same allocator, as the trait requires.
        unsafe impl<$($gen)*> $trait for &$arena {
            #[inline(always)]
            fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, $error> {
                match (**self).alloc_tracked(layout) {
                    Ok(p) => Ok(NonNull::slice_from_raw_parts(p, layout.size())),
                    Err(_) => Err($error),
                }
            }

            #[inline]
            unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
                // SAFETY: the trait's caller promises `ptr` is a block of
                // this allocator with this layout, not used again.
                unsafe { (**self).dealloc_raw(ptr, layout) }
            }

            #[inline]
            unsafe fn grow(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, $error> {
                debug_assert!(new.size() >= old.size());
                // SAFETY: the trait's caller promises `ptr` is a block of
                // this allocator for `old`, and `new.size() >= old.size()`.
                match unsafe { (**self).realloc_raw(ptr, old, new) } {
                    Ok(p) => Ok(NonNull::slice_from_raw_parts(p, new.size())),
                    Err(_) => Err($error),
                }
            }

            #[inline]
            unsafe fn grow_zeroed(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, $error> {
                // SAFETY: as for `grow`.
                let p = unsafe { (**self).realloc_raw(ptr, old, new) }.map_err(|_| $error)?;
                // SAFETY: the block holds `new.size()` bytes; the first
                // `old.size()` are kept, the rest zeroed.
                unsafe { p.as_ptr().add(old.size()).write_bytes(0, new.size() - old.size()) };
                Ok(NonNull::slice_from_raw_parts(p, new.size()))
            }

            #[inline]
            unsafe fn shrink(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, $error> {
                debug_assert!(new.size() <= old.size());
                // SAFETY: the trait's caller promises `ptr` is a block of
                // this allocator for `old`, and `new.size() <= old.size()`.
                match unsafe { (**self).realloc_raw(ptr, old, new) } {
                    Ok(p) => Ok(NonNull::slice_from_raw_parts(p, new.size())),
                    Err(_) => Err($error),
                }
            }
        }
    };
}

arena_allocator!([P: Policy] Arena<P>, allocator_api2::alloc::Allocator, allocator_api2::alloc::AllocError);
arena_allocator!([P: Policy] SharedArena<P>, allocator_api2::alloc::Allocator, allocator_api2::alloc::AllocError);
arena_allocator!(['l, P: Policy] Lease<'l, P>, allocator_api2::alloc::Allocator, allocator_api2::alloc::AllocError);

#[cfg(feature = "nightly")]
arena_allocator!([P: Policy] Arena<P>, core::alloc::Allocator, core::alloc::AllocError);
#[cfg(feature = "nightly")]
arena_allocator!([P: Policy] SharedArena<P>, core::alloc::Allocator, core::alloc::AllocError);
#[cfg(feature = "nightly")]
arena_allocator!(['l, P: Policy] Lease<'l, P>, core::alloc::Allocator, core::alloc::AllocError);
