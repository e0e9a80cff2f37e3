//! `Arena::scope` and `fiberalloc::scoped`: rewinding on exit and on panic,
//! nesting, and memory reuse.
mod common;
use allocator_api2::vec::Vec as AVec;
use common::*;
use fiberalloc::{policy::Policy, scoped, Arena};
use std::panic::{catch_unwind, AssertUnwindSafe};

fn scope_rewinds_on_exit<P: Policy>() {
    let mut arena = Arena::<P>::default();
    let outer = arena.alloc(7u64) as *mut u64;
    let before = arena.stats();
    let cursor_probe = arena.alloc(0u64) as *mut u64 as usize;
    let n = scale(10_000);
    let r = arena.scope(|a| {
        for i in 0..n {
            a.alloc([i as u64; 8]);
        }
        a.stats().allocated_bytes
    });
    assert_eq!(r, before.allocated_bytes + 8 + n * 64);
    let after = arena.stats();
    assert_eq!(after.allocated_bytes, before.allocated_bytes + 8);
    assert!(after.peak_bytes >= r, "peak must remember the scope's high point");
    // The cursor is back where it was: the next block lands just after the
    // probe again.
    let next = arena.alloc(0u64) as *mut u64 as usize;
    // (Under canaries past the probe's 8-byte canary and the new header.)
    let step = if P::CANARIES { 8 + 8 + 16 } else { 8 };
    assert_eq!(next, cursor_probe + step);
    // The scope's chunks are kept and reused: a second identical scope maps
    // nothing new.
    let reserved = arena.stats().reserved_bytes;
    arena.scope(|a| {
        for i in 0..n {
            a.alloc([i as u64; 8]);
        }
    });
    assert_eq!(arena.stats().reserved_bytes, reserved);
    // SAFETY: `outer` was allocated before both scopes and is still live.
    assert_eq!(unsafe { *outer }, 7);
    arena.validate().unwrap();
}

fn scope_rewinds_on_panic<P: Policy>() {
    let mut arena = Arena::<P>::default();
    arena.alloc(1u32);
    let before = arena.stats().allocated_bytes;
    let r = catch_unwind(AssertUnwindSafe(|| {
        arena.scope(|a| {
            for i in 0..1000u32 {
                a.alloc(i);
            }
            a.alloc_layout(core::alloc::Layout::from_size_align(1 << 20, 8).unwrap());
            panic!("inside the scope");
        })
    }));
    assert!(r.is_err());
    assert_eq!(arena.stats().allocated_bytes, before, "panic must rewind the scope");
    arena.validate().unwrap();
    // The big chunk made inside the scope was given back.
    assert!(arena.stats().reserved_bytes < 1 << 20);
}

fn scope_with_collections<P: Policy>() {
    let mut arena = Arena::<P>::default();
    let total = arena.scope(|a| {
        let mut v = AVec::new_in(a);
        for i in 0..scale(5_000) as u64 {
            v.push(i);
        }
        let mut m = hashbrown::HashMap::new_in(a);
        for i in 0..scale(1_000) as u64 {
            m.insert(i, i * 2);
        }
        v.iter().sum::<u64>() + m.values().sum::<u64>()
    });
    let n = scale(5_000) as u64;
    let k = scale(1_000) as u64;
    assert_eq!(total, n * (n - 1) / 2 + k * (k - 1));
    assert_eq!(arena.stats().allocated_bytes, 0);
}

per_policy!(scope_rewinds_on_exit, scope_rewinds_on_panic, scope_with_collections);

#[test]
fn scoped_nests_and_rewinds_lifo() {
    scoped(|outer| {
        let a = outer.alloc(1u64) as *mut u64;
        let outer_before = outer.stats().allocated_bytes;
        let inner_addr = scoped(|inner| {
            assert!(!core::ptr::eq(inner, outer), "a nested scope gets its own arena");
            let b = inner.alloc(2u64);
            let deeper = scoped(|d| *d.alloc(3u64));
            *b + deeper
        });
        assert_eq!(inner_addr, 5);
        assert_eq!(outer.stats().allocated_bytes, outer_before);
        // SAFETY: allocated in this scope, still live.
        assert_eq!(unsafe { *a }, 1);
    });
    // The outer level was reset: the next scope starts empty.
    scoped(|a| assert_eq!(a.stats().allocated_bytes, 0));
}

#[test]
fn outer_collection_grows_safely_inside_inner_scope() {
    // An outer Vec that grows while a nested scope runs must not be freed
    // when the inner scope ends.
    scoped(|outer| {
        let mut v = AVec::new_in(outer);
        v.push(0u64);
        scoped(|inner| {
            let _x = inner.alloc([9u8; 100]);
            for i in 1..scale(10_000) as u64 {
                v.push(i);
            }
        });
        // Fill the inner level's memory again to overwrite anything freed.
        scoped(|inner| {
            for _ in 0..scale(10_000) {
                inner.alloc(u64::MAX);
            }
        });
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
    });
}

#[test]
fn scoped_rewinds_on_panic_and_reuses_memory() {
    let r = catch_unwind(|| {
        scoped(|a| {
            a.alloc([0u8; 512]);
            panic!("boom");
        })
    });
    assert!(r.is_err());
    scoped(|a| {
        assert_eq!(a.stats().allocated_bytes, 0, "the panicking scope was rewound");
        let reserved = a.stats().reserved_bytes;
        a.alloc([0u8; 512]);
        assert_eq!(a.stats().reserved_bytes, reserved.max(a.stats().reserved_bytes));
    });
}

#[test]
fn scoped_deeper_than_levels_still_works() {
    fn nest(depth: usize) -> u64 {
        scoped(|a| {
            let x = a.alloc(depth as u64);
            if depth == 0 {
                *x
            } else {
                *x + nest(depth - 1)
            }
        })
    }
    assert_eq!(nest(20), (0..=20).sum());
}

#[test]
fn scoped_in_many_threads() {
    let handles: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut sum = 0;
                for i in 0..scale(200) as u64 {
                    sum += scoped(|a| {
                        let v = a.alloc_slice_copy(&[t, i, 1]);
                        v.iter().sum::<u64>()
                    });
                }
                sum
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let n = scale(200) as u64;
        assert_eq!(h.join().unwrap(), n * (t as u64 + 1) + n * (n - 1) / 2);
    }
}
