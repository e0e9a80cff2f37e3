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
//! - [`GlobalArena`]: a `#[global_allocator]` that bumps per thread and
//!   gives memory back.
//! - [`stack`]: guarded fiber stacks, pooled, for corosensei.
//! - [`collections`]: `Vec`, `String` and `Box` for an arena under bumpalo's
//!   names, with the [`vec!`] and [`format!`] macros; with the `alloc_with`
//!   family, slice fills, `alloc_iter` and `alloc_fmt` on every arena type,
//!   code written for bumpalo compiles after `use fiberalloc::Arena as
//!   Bump;` (`docs/from-bumpalo.md`).
//! - [`policy`]: compile-time choices of checks ([`policy::Fast`],
//!   [`policy::Safe`], [`policy::Debug`]).
//!
//! ```
//! use allocator_api2::vec::Vec;
//! use fiberalloc::Arena;
//!
//! let mut arena = Arena::new();
//! let mut v = Vec::new_in(&arena);
//! v.extend_from_slice(&[1, 2, 3]);
//! assert_eq!(v.iter().sum::<i32>(), 6);
//! drop(v);
//! arena.reset();
//! ```
//!
//! How the modules are layered, and the rule that keeps them so, is in
//! `docs/architecture.md` (checked by `scripts/check-layers.py`).

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
#[cfg(not(fiberalloc_loom))]
mod global;
// Loom builds check the live count of `GlobalArena`'s chunks alone
// (`global/count.rs`): the rest of `global` needs `static` atomics.
#[cfg(fiberalloc_loom)]
mod global {
    pub(crate) mod count;
}
mod guards;
mod init;
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
mod typed;
mod walk;

/// Internals the loom models check directly (built only under
/// `--cfg fiberalloc_loom`, where `sys` is the heap stand-in and the chunk
/// cache is off, since loom's atomics cannot live in statics).
#[cfg(fiberalloc_loom)]
#[doc(hidden)]
pub mod loom_api {
    pub use crate::chunk::cache::SlotCache;
    pub use crate::global::count::{RemoteCount, TAKEN_OVER};
}

#[doc(hidden)]
#[path = "internals.rs"]
pub mod __internals;

/// The C `malloc` interface's half inside the crate (the `c-abi` feature;
/// `capi/` exports it as `malloc`, `free`, ...).
#[cfg(all(feature = "c-abi", not(fiberalloc_loom)))]
#[doc(hidden)]
pub use global::cabi as __capi;

pub use allocator_api2::alloc::AllocError;
pub use arena::{Arena, ChunkIter, ChunkRawIter, RawCheckpoint};
#[cfg(not(fiberalloc_loom))]
pub use global::{GlobalArena, GlobalStats};
pub use init::AllocOrInitError;
pub use local::scoped;
pub use shared::{Lease, SharedArena, LEASE_BLOCK};
pub use stack::ArenaStack;
pub use stats::Stats;

/// bumpalo's `boxed` module: [`Box`](boxed::Box), an owned value in an
/// arena (the same type as [`collections::Box`]).
pub mod boxed {
    pub use crate::collections::Box;
}

/// The README's Rust examples, compiled and run as doctests so that it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// `docs/stacks.md`'s examples, run as doctests. (`docs/global-arena.md`
/// is the `global` module's essay and is tested there.)
#[cfg(doctest)]
#[doc = include_str!("../docs/stacks.md")]
pub struct StacksDoctests;

/// `docs/debugging.md`'s examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/debugging.md")]
pub struct DebuggingDoctests;
