//! The guard-page table: every guard page below a fiber stack, with the
//! top of the stack it guards.
//!
//! Every guarded fiber stack (a `FiberStack` of its own, a stack block of
//! a `StackPool`'s `BlockPool`, a stack from `Arena::alloc_stack`)
//! registers its guard page here while it exists: a lock-free
//! open-addressing table of `SLOTS` entries, keyed by the guard page's
//! address, holding the stack's top. Registering costs one
//! compare-exchange; the table takes no lock and allocates nothing, so the
//! overflow reporter's signal handler (`stack/overflow.rs`) can read it.
//! It sits below the arenas and pools that guard pages, and above only
//! `sync`.

use crate::sync::plain::{AtomicUsize, Ordering};

/// Table size: a power of two. 64 Ki guard pages (a table of 1 MiB of
/// address space, zero pages until used); stacks beyond that are not
/// registered and overflow with a plain SIGSEGV.
const SLOTS: usize = 1 << 16;
/// A slot never used: lookups stop here.
const EMPTY: usize = 0;
/// A slot whose stack is gone: lookups go on past it, inserts reuse it.
const TOMB: usize = 1;
/// A slot being filled in.
const BUSY: usize = 2;

static KEYS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(EMPTY) }; SLOTS];
static TOPS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
/// Guard pages registered now (for tests and the tour).
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

fn slot_of(guard: usize) -> usize {
    // Fibonacci hashing of the page number.
    ((guard >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - 16)) & (SLOTS - 1)
}

/// Records that the page at `guard` guards the stack whose highest address
/// is `top`. Returns false when the table is full (the stack is then not
/// recognised by the reporter).
pub(crate) fn register(guard: usize, top: usize) -> bool {
    let start = slot_of(guard);
    for i in 0..SLOTS {
        let s = (start + i) & (SLOTS - 1);
        let key = &KEYS[s];
        let cur = key.load(Ordering::Relaxed);
        if cur != EMPTY && cur != TOMB {
            continue;
        }
        // Acquire on success: nothing to see, but keeps the slot's
        // previous TOPS store before ours. Relaxed on failure: we move on.
        if key.compare_exchange(cur, BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            TOPS[s].store(top, Ordering::Relaxed);
            // Release: a handler that reads the key (Acquire) sees `top`.
            key.store(guard, Ordering::Release);
            REGISTERED.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    }
    false
}

/// Removes the guard page at `guard` from the table (if it is there).
pub(crate) fn unregister(guard: usize) {
    let start = slot_of(guard);
    for i in 0..SLOTS {
        let s = (start + i) & (SLOTS - 1);
        match KEYS[s].load(Ordering::Relaxed) {
            EMPTY => return,
            k if k == guard => {
                // Relaxed: only the owner of this guard page writes the
                // key now; readers treat TOMB as absent either way.
                KEYS[s].store(TOMB, Ordering::Relaxed);
                REGISTERED.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
    }
}

/// The top of the stack whose guard page is `guard`, if registered.
/// Async-signal-safe: loads only.
#[cfg_attr(any(miri, fiberalloc_loom), allow(dead_code))]
pub(crate) fn lookup(guard: usize) -> Option<usize> {
    let start = slot_of(guard);
    for i in 0..SLOTS {
        let s = (start + i) & (SLOTS - 1);
        // Acquire: pairs with the Release store in `register`.
        match KEYS[s].load(Ordering::Acquire) {
            EMPTY => return None,
            k if k == guard => return Some(TOPS[s].load(Ordering::Relaxed)),
            _ => {}
        }
    }
    None
}

/// How many guard pages are registered now.
pub fn registered_guards() -> usize {
    REGISTERED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_lookup_unregister() {
        let base = 0x7000_0000_0000usize;
        let guards: Vec<usize> = (0..100).map(|i| base + i * 0x11000).collect();
        for &g in &guards {
            assert!(register(g, g + 0x11000));
        }
        for &g in &guards {
            assert_eq!(lookup(g), Some(g + 0x11000));
            assert_eq!(lookup(g + 0x1000), None);
        }
        for &g in &guards[..50] {
            unregister(g);
        }
        assert!(guards[..50].iter().all(|&g| lookup(g).is_none()));
        assert!(guards[50..].iter().all(|&g| lookup(g) == Some(g + 0x11000)));
        for &g in &guards[50..] {
            unregister(g);
        }
    }
}
