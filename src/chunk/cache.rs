//! A bounded, lock-free set of pointers: the process-wide cache of free
//! chunks is one of these.
//!
//! Each slot is an `AtomicPtr` that is either null (empty) or holds one
//! pointer. `push` claims an empty slot with a compare-exchange from null;
//! `pop` takes a pointer out with a compare-exchange to null. Whoever wins
//! the exchange owns the pointer, so a pointer is handed out at most once per
//! push, and the slots are never linked to each other, so there is no ABA
//! problem: a slot that held `p`, was emptied and refilled with `p` again
//! between a `pop`'s load and its exchange still holds a cached `p`, and
//! taking it is correct.
//!
//! Callers keep a small key in the pointer's low bits (chunks are
//! page-aligned) so that `pop` can choose a pointer without reading the
//! memory it points to, which another thread may own by then.
//!
//! This file depends on nothing but `crate::sync`, so that the loom tests
//! can check it on its own (`loom-tests/tests/chunk_cache.rs`).

use crate::sync::{AtomicPtr, Ordering};

/// Up to `N` pointers, pushed and popped from any thread without a lock.
pub struct SlotCache<const N: usize> {
    slots: [AtomicPtr<u8>; N],
}

impl<const N: usize> SlotCache<N> {
    /// An empty cache.
    #[cfg(not(fiberalloc_loom))]
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());
        SlotCache { slots: [EMPTY; N] }
    }

    /// An empty cache (loom's atomics cannot be built in a `const fn`).
    #[cfg(fiberalloc_loom)]
    pub fn new() -> Self {
        SlotCache { slots: core::array::from_fn(|_| AtomicPtr::new(core::ptr::null_mut())) }
    }

    /// Stores `p` (not null) in a free slot. Gives `p` back when all slots
    /// are full.
    pub fn push(&self, p: *mut u8) -> Result<(), *mut u8> {
        debug_assert!(!p.is_null());
        for slot in &self.slots {
            // Relaxed: only a hint to skip full slots; the exchange decides.
            if !slot.load(Ordering::Relaxed).is_null() {
                continue;
            }
            // Release on success: everything the pusher wrote to the memory
            // behind `p` happens before the Acquire exchange of whoever pops
            // it. Relaxed on failure: another pusher took the slot first;
            // nothing was published, try the next slot.
            if slot.compare_exchange(core::ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed).is_ok() {
                return Ok(());
            }
        }
        Err(p)
    }

    /// Takes out a pointer for which `accept` returns true. `accept` sees
    /// only the pointer value (with its key bits); it must not read through
    /// it, since the pointer is not owned until the exchange succeeds.
    pub fn pop(&self, mut accept: impl FnMut(*mut u8) -> bool) -> Option<*mut u8> {
        for slot in &self.slots {
            // Relaxed: the value is only inspected, not read through; the
            // exchange below is what acquires the memory.
            let p = slot.load(Ordering::Relaxed);
            if p.is_null() || !accept(p) {
                continue;
            }
            // Acquire on success: pairs with the Release exchange of the push
            // that stored `p`, so the pusher's writes are visible to us.
            // Relaxed on failure: another thread took `p` (or the slot
            // changed); move on to the next slot.
            if slot.compare_exchange(p, core::ptr::null_mut(), Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return Some(p);
            }
        }
        None
    }

    /// Pointers currently held (a racy snapshot, for statistics).
    #[allow(dead_code)]
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| !s.load(Ordering::Relaxed).is_null()).count()
    }
}
