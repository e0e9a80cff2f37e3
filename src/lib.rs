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

#[cfg(not(feature = "std"))]
compile_error!("fiberalloc needs the `std` feature for now (mmap, thread-locals and io::Error)");

#[cfg(not(fiberalloc_loom))]
mod align;
#[cfg(not(fiberalloc_loom))]
mod api;
#[cfg(not(fiberalloc_loom))]
mod arena;
#[cfg(not(fiberalloc_loom))]
mod chunk;
#[cfg(not(fiberalloc_loom))]
pub mod collections;
#[cfg(not(fiberalloc_loom))]
mod local;
#[cfg(not(fiberalloc_loom))]
pub mod policy;
#[cfg(not(fiberalloc_loom))]
mod region;
#[cfg(not(fiberalloc_loom))]
mod shared;
#[cfg(not(fiberalloc_loom))]
mod stats;
mod sync;
#[cfg(not(fiberalloc_loom))]
mod sys;

/// The pieces the loom models check, built alone under
/// `--cfg fiberalloc_loom` (the rest of the crate needs `static` atomics,
/// which loom cannot build).
#[cfg(fiberalloc_loom)]
#[doc(hidden)]
pub mod loom_api {
    pub use super::loom_cache::SlotCache;
}
#[cfg(fiberalloc_loom)]
#[path = "chunk/cache.rs"]
mod loom_cache;

pub use allocator_api2::alloc::AllocError;
#[cfg(not(fiberalloc_loom))]
pub use arena::Arena;
#[cfg(not(fiberalloc_loom))]
pub use local::scoped;
#[cfg(not(fiberalloc_loom))]
pub use shared::{Lease, SharedArena, LEASE_BLOCK};
#[cfg(not(fiberalloc_loom))]
pub use stats::Stats;

/// Reports an allocation failure of a panicking call.
#[cfg(not(fiberalloc_loom))]
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
