//! The one place atomics and locks come from.
//!
//! Every atomic in the crate is imported through this module, so that the
//! loom model checker can swap its own types in when the crate is built with
//! `RUSTFLAGS="--cfg fiberalloc_loom"` (see `loom-tests/`). Under loom,
//! atomics cannot be created in a `const` context, so the parts of the crate
//! that need `static` atomics are left out of loom builds (see `lib.rs`).
//! Statics that loom must not replace take their atomics from [`plain`].
//! The locks are std's `Mutex` (loom's under loom) and [`SpinLock`], the
//! allocator-safe lock of `GlobalArena`'s slow paths.

#[cfg(not(fiberalloc_loom))]
use core::cell::UnsafeCell;
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

/// Atomics that loom never replaces: those of process-wide `static`s
/// outside the modelled protocols (the guard-page table, the stack pools'
/// counters and hot-cache statistics, the debug hooks, the signal
/// handler's state), which loom could not create in a `const`. Still
/// imported from here, so that every atomic of the crate is found in one
/// place, and which are modelled is a visible choice.
pub(crate) mod plain {
    #[allow(unused_imports)]
    pub(crate) use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
}

/// Tells the scheduler (or loom) that this thread is waiting on another.
#[allow(dead_code)]
#[inline]
pub(crate) fn spin_wait() {
    #[cfg(fiberalloc_loom)]
    loom::thread::yield_now();
    #[cfg(not(fiberalloc_loom))]
    core::hint::spin_loop();
}

/// A spin lock for allocator slow paths: no allocation, no poisoning, no
/// panic, and a `const` constructor, so it can sit in a `static` that the
/// global allocator reaches. (Not under loom, whose atomics cannot be
/// made in a `const`; `GlobalArena`, its only user, is left out there.)
#[cfg(not(fiberalloc_loom))]
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through `with`, which holds the lock,
// so one thread at a time has it; `T: Send` lets it move between threads.
#[cfg(not(fiberalloc_loom))]
unsafe impl<T: Send> Sync for SpinLock<T> {}

#[cfg(not(fiberalloc_loom))]
impl<T> SpinLock<T> {
    /// An unlocked lock holding `value`.
    pub(crate) const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Runs `f` on the value with the lock held.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.lock();
        // SAFETY: the lock is held, so no other reference to the value
        // exists until it is released below.
        let r = f(unsafe { &mut *self.value.get() });
        // SAFETY: taken just above, by this thread.
        unsafe { self.unlock() };
        r
    }

    /// Takes the lock, spinning (then yielding) while another thread has
    /// it. Outside [`with`](Self::with), only the fork handlers call it.
    pub(crate) fn lock(&self) {
        let mut spins = 0u32;
        // Acquire: the previous holder's writes happen before ours.
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
            } else {
                spins = 0;
                std::thread::yield_now();
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    /// The calling thread holds it (through [`lock`](Self::lock)), and no
    /// reference to the value made under it is used afterwards. In a child
    /// process just forked, the lock taken by the parent's forking thread
    /// counts as the child's (the child is that thread's copy).
    pub(crate) unsafe fn unlock(&self) {
        // Release: our writes happen before the next holder's.
        self.locked.store(false, Ordering::Release);
    }
}
