//! `Arena::new()` + first allocation + drop makes no syscall in the steady
//! state: the chunk comes from the thread's chunk slot and goes back to it.
//! Alone in its binary, so that no other test maps meanwhile.
#![cfg(not(miri))]

use fiberalloc::{__internals::mappings_made, Arena};

/// This binary runs on `GlobalArena` too (see `tests/common/mod.rs`).
#[global_allocator]
static GLOBAL: fiberalloc::GlobalArena = fiberalloc::GlobalArena::new();

#[test]
fn warm_up_maps_nothing_in_the_steady_state() {
    // The first arena maps its chunk.
    let before_first = mappings_made();
    {
        let a: Arena = Arena::new();
        a.alloc(1u64);
    }
    assert!(mappings_made() > before_first, "the counter must see the first mapping");
    let steady = mappings_made();
    for i in 0..10_000u64 {
        let a: Arena = Arena::new();
        assert_eq!(*a.alloc(i), i);
    }
    assert_eq!(mappings_made(), steady, "a warm arena mapped memory");
    // A scoped() call in the steady state maps nothing either.
    for i in 0..1_000u64 {
        assert_eq!(fiberalloc::scoped(|a| *a.alloc(i)), i);
    }
    assert_eq!(mappings_made(), steady);
}
