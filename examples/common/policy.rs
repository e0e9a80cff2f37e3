//! The workload of `policy_fast.rs` and `policy_safe.rs`: allocation,
//! in-place growth, deallocation, scopes, reset and drop of an arena.
use fiberalloc::{policy::Policy, Arena};

pub fn exercise<P: Policy>() {
    let mut arena = Arena::<P>::default();
    let mut v = allocator_api2::vec::Vec::new_in(&arena);
    for i in 0..1000u64 {
        v.push(i);
    }
    let s = arena.alloc_str("policy");
    let total: u64 = v.iter().sum();
    drop(v);
    println!("{total} {s} {:?}", arena.validate());
    let n = arena.scope(|a| a.alloc_slice_copy(&[1u8; 100]).len());
    arena.reset();
    println!("{n} {}", arena.stats().allocated_bytes);
}
