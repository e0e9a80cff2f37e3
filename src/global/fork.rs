//! `fork(2)`: the allocator's locks taken around it.

use super::abandon::{ABANDONED, ORPHANS};
use super::cache::LEFT;
use super::chunk::FREE;
use super::owner::FALLBACK;
use super::stats::REGISTRY;
use super::track::LIVE;
use crate::sync::{AtomicBool, Ordering};
use crate::sys;

// and those chunks are never recycled in the child (their owners do not
// exist in it), as if the threads were still running but idle.

/// Whether the fork handlers are registered (or being registered).
pub(super) static FORK_HANDLERS: AtomicBool = AtomicBool::new(false);

/// Registers the fork handlers, once per process: called on each thread's
/// first slow path, before the thread takes any of the locks.
/// Registration failure (out of memory in `pthread_atfork`) is not fatal:
/// it leaves `fork` as unsafe as with most allocators, and the next thread
/// to start tries again.
pub(super) fn arm_fork_handlers() {
    // Relaxed: registration is idempotent in effect (the swap lets one
    // thread try at a time) and publishes nothing.
    if FORK_HANDLERS.load(Ordering::Relaxed) || FORK_HANDLERS.swap(true, Ordering::Relaxed) {
        return;
    }
    if sys::at_fork(before_fork, after_fork, after_fork).is_err() {
        FORK_HANDLERS.store(false, Ordering::Relaxed);
    }
}

/// Runs in the forking thread just before `fork`: takes every lock, in the
/// one order in which they nest (a fallback refill takes `FREE` while it
/// holds `FALLBACK`, and a fallback retirement `ABANDONED` and `ORPHANS`;
/// those two, `REGISTRY` and `LIVE` are never held with another).
pub(super) extern "C" fn before_fork() {
    FALLBACK.lock();
    FREE.lock();
    ABANDONED.lock();
    ORPHANS.lock();
    LEFT.lock();
    REGISTRY.lock();
    LIVE.lock();
    super::large::lock_for_fork();
    #[cfg(feature = "c-abi")]
    super::cabi::lock_for_fork();
}

/// Runs just after `fork`, in the parent and in the child: releases what
/// [`before_fork`] took, in reverse order.
pub(super) extern "C" fn after_fork() {
    // SAFETY: `before_fork` took them all in this thread (in the child, in
    // the thread it is a copy of), and nothing made under them is in use.
    unsafe {
        #[cfg(feature = "c-abi")]
        super::cabi::unlock_after_fork();
        super::large::unlock_after_fork();
        LIVE.unlock();
        REGISTRY.unlock();
        LEFT.unlock();
        ORPHANS.unlock();
        ABANDONED.unlock();
        FREE.unlock();
        FALLBACK.unlock();
    }
}

// ---------------------------------------------------------------------------
