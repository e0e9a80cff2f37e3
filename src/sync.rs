//! The one place atomics come from.
//!
//! Every atomic in the crate is imported through this module, so that the
//! loom model checker can swap its own types in when the crate is built with
//! `RUSTFLAGS="--cfg fiberalloc_loom"` (see `loom-tests/`). Under loom,
//! atomics cannot be created in a `const` context, so the parts of the crate
//! that need `static` atomics are left out of loom builds (see `lib.rs`).

#[cfg(not(fiberalloc_loom))]
pub(crate) use core::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(fiberalloc_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(fiberalloc_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(fiberalloc_loom)]
#[allow(unused_imports)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

/// Tells the scheduler (or loom) that this thread is waiting on another.
#[allow(dead_code)]
#[inline]
pub(crate) fn spin_wait() {
    #[cfg(fiberalloc_loom)]
    loom::thread::yield_now();
    #[cfg(not(fiberalloc_loom))]
    core::hint::spin_loop();
}
