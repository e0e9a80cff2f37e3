//! # fiberalloc
//!
//! mmap-backed bump arenas for programs that run many short tasks: fiber
//! schedulers, servers, compilers.
//!
//! - [`Arena`]: a single-threaded bump arena, usable with allocator-api2
//!   collections (`Vec::new_in(&arena)`, `hashbrown::HashMap::new_in(&arena)`)
//!   and, under the `nightly` feature, with `core::alloc::Allocator`.
//! - [`scoped`]: the calling thread's arena, freed when the closure ends.
//! - [`SharedArena`]: many threads allocating at once, one compare-exchange
//!   per allocation; [`Lease`]s for per-thread bumping without atomics and
//!   [`SharedArena::try_reset`] between frames.
//! - [`collections::Vec`]: a vector for an arena whose `push` runs at the
//!   speed of std's (allocator-api2's `Vec` works too, more slowly).
//! - [`policy`]: compile-time choices of checks ([`policy::Fast`],
//!   [`policy::Safe`], [`policy::Debug`]).
//!
//! ```
//! use allocator_api2::vec::Vec;
//! use fiberalloc::Arena;
//!
//! let mut arena: Arena = Arena::new();
//! let mut v = Vec::new_in(&arena);
//! v.extend_from_slice(&[1, 2, 3]);
//! assert_eq!(v.iter().sum::<i32>(), 6);
//! drop(v);
//! arena.reset();
//! ```
//!
//! The layers, bottom to top, each using only those above it in this list:
//! `align` (integer maths), `sync` (atomics, loom-swappable), `sys` (the
//! OS), `region` (owned mappings), `chunk` (headers, the chunk cache),
//! `arena`, `local`, `api`. See the README's Architecture section.

#![cfg_attr(feature = "nightly", feature(allocator_api))]
#![warn(missing_docs)]
// Loom builds compile the chunk cache's helpers without the cache.
#![cfg_attr(fiberalloc_loom, allow(dead_code))]

#[cfg(not(feature = "std"))]
compile_error!("fiberalloc needs the `std` feature for now (mmap, thread-locals and io::Error)");

mod align;
mod api;
mod arena;
mod chunk;
pub mod collections;
pub mod debug;
mod global;
mod local;
pub mod policy;
pub mod pool;
mod region;
pub mod report;
mod shared;
pub mod stack;
mod stats;
mod sync;
mod sys;

/// Internals the loom models check directly (built only under
/// `--cfg fiberalloc_loom`, where `sys` is the heap stand-in and the chunk
/// cache is off, since loom's atomics cannot live in statics).
#[cfg(fiberalloc_loom)]
#[doc(hidden)]
pub mod loom_api {
    pub use crate::chunk::cache::SlotCache;
    pub use crate::global::count::RemoteCount;
}

pub use allocator_api2::alloc::AllocError;

/// Internals for the crate's own tests; not part of the API.
#[doc(hidden)]
pub mod __internals {
    /// Mappings (`mmap` calls) the calling thread has made through
    /// fiberalloc.
    pub fn mappings_made() -> usize {
        crate::sys::mappings_made()
    }

    /// Prefault calls (`MADV_POPULATE_WRITE`) the calling thread has made
    /// through fiberalloc.
    pub fn prefaults_made() -> usize {
        crate::sys::prefaults_made()
    }

    /// Whether guard pages are `MADV_GUARD_INSTALL` markers (`Some(true)`),
    /// `mprotect` (`Some(false)`), or not known yet (`None`).
    pub fn guard_markers() -> Option<bool> {
        crate::sys::guard_markers()
    }

    /// Does what a slow huge page does to `GlobalArena`: turns the advice
    /// off until the count of chunks mapped reaches the number returned.
    #[cfg(not(fiberalloc_loom))]
    pub fn global_turn_huge_pages_off() -> usize {
        crate::global::turn_huge_pages_off()
    }
}
pub use arena::{Arena, ArenaStack};
#[cfg(not(fiberalloc_loom))]
pub use global::{GlobalArena, GlobalStats};
pub use local::scoped;
pub use shared::{Lease, SharedArena, LEASE_BLOCK};
pub use stats::Stats;

/// Moves `value` into `block` (a fresh allocation for `T`), or reports the
/// failure through `handle_alloc_error`. Shared by the arenas' `alloc`.
///
/// # Safety
/// If `block` is `Ok`, it is a fresh block sized and aligned for `T`, used
/// by nothing else, and valid for `'a`.
#[inline(always)]
unsafe fn place<'a, T>(block: Result<core::ptr::NonNull<u8>, AllocError>, value: T) -> &'a mut T {
    match block {
        Ok(p) => {
            let p = p.cast::<T>();
            // SAFETY: by the caller's promise.
            unsafe {
                p.as_ptr().write(value);
                &mut *p.as_ptr()
            }
        }
        Err(_) => oom(core::alloc::Layout::new::<T>()),
    }
}

/// Copies `src` into `block` (a fresh allocation for `Layout::for_value(src)`),
/// or reports the failure through `handle_alloc_error`.
///
/// # Safety
/// As for [`place`], for a block holding `src.len()` values of `T`.
#[inline]
unsafe fn place_slice_copy<'a, T: Copy>(
    block: Result<core::ptr::NonNull<u8>, AllocError>,
    src: &[T],
) -> &'a mut [T] {
    let p = match block {
        Ok(p) => p.cast::<T>(),
        Err(_) => oom(core::alloc::Layout::for_value(src)),
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
fn oom(layout: core::alloc::Layout) -> ! {
    std::alloc::handle_alloc_error(layout)
}

/// The README's Rust examples, compiled and run as doctests so that it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
