//! The `nightly` feature: std's own collections in an arena through
//! `core::alloc::Allocator`. Run with
//! `cargo +nightly test --features nightly --test nightly`.
#![cfg(feature = "nightly")]
#![feature(allocator_api)]

use fiberalloc::Arena;

/// This binary runs on `GlobalArena` too (see `tests/common/mod.rs`).
#[global_allocator]
static GLOBAL: fiberalloc::GlobalArena = fiberalloc::GlobalArena::new();

#[test]
fn std_vec_and_box_in_an_arena() {
    let arena: Arena = Arena::new();
    let mut v: Vec<u64, &Arena> = Vec::new_in(&arena);
    for i in 0..10_000 {
        v.push(i);
    }
    assert_eq!(v.iter().sum::<u64>(), 10_000 * 9_999 / 2);
    let before = v.as_ptr();
    v.reserve_exact(1);
    assert_eq!(v.as_ptr(), before, "the last block grows in place");
    let b = Box::new_in([1u8; 100], &arena);
    assert_eq!(b.iter().map(|&x| x as u32).sum::<u32>(), 100);
    assert!(arena.contains(b.as_ptr()));
    drop((v, b));
    assert!(arena.stats().allocated_bytes < 64);
}

#[test]
fn std_vec_in_a_shared_arena_from_two_threads() {
    let arena: fiberalloc::SharedArena = fiberalloc::SharedArena::new();
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let arena = &arena;
            s.spawn(move || {
                let mut v: Vec<u32, &fiberalloc::SharedArena> = Vec::new_in(arena);
                v.extend((0..1000).map(|i| i * 2 + t));
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 * 2 + t));
            });
        }
    });
}
