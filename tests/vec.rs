//! `fiberalloc::collections::Vec`: growth in place, drops, zero-sized
//! elements, errors.
mod common;
use common::*;
use fiberalloc::{collections::Vec as AVec, policy::Policy, Arena};
use std::cell::Cell;

fn push_pop_and_grow<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut v = AVec::new_in(&arena);
    assert!(v.is_empty());
    let n = scale(100_000) as u64;
    for i in 0..n {
        v.push(i);
    }
    assert_eq!(v.len(), n as usize);
    assert!(v.capacity() >= v.len());
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64));
    assert_eq!(v.pop(), Some(n - 1));
    v.truncate(10);
    assert_eq!(v.as_slice(), &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    v.extend_from_slice(&[100, 101]);
    v.extend(200..203u64);
    assert_eq!(&v[10..], &[100, 101, 200, 201, 202]);
    v.clear();
    assert_eq!(v.pop(), None);
    arena.validate().unwrap();
}

fn reserve_exact_grows_in_place<P: Policy>() {
    let arena = Arena::<P>::default();
    let _before = arena.alloc(1u64);
    let mut v = AVec::<u8, P>::new_in(&arena);
    let n = scale(50_000);
    let mut moves = 0;
    let mut last = core::ptr::null();
    for i in 0..n {
        v.reserve_exact(1);
        assert_eq!(v.capacity(), i + 1, "reserve_exact must not over-allocate");
        if v.as_ptr() != last {
            moves += 1;
            last = v.as_ptr();
        }
        v.push(i as u8);
    }
    // Only a move per new chunk (chunks double), never one per push.
    assert!(moves < 20, "{moves} moves for {n} exact pushes");
    assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
    let s = arena.stats();
    assert!(s.allocated_bytes + s.padding_bytes < 4 * n + 64, "quadratic growth: {s:?}");
}

fn drops_each_element_once<P: Policy>() {
    struct Counted<'c>(&'c Cell<usize>);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Cell::new(0);
    let arena = Arena::<P>::default();
    {
        let mut v = AVec::new_in(&arena);
        for _ in 0..100 {
            v.push(Counted(&drops));
        }
        v.truncate(60);
        assert_eq!(drops.get(), 40);
        drop(v.pop());
        assert_eq!(drops.get(), 41);
    }
    assert_eq!(drops.get(), 100, "every element dropped exactly once");
    assert_eq!(arena.stats().allocated_bytes % 8, 0);
}

fn zero_sized_elements<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut v = AVec::new_in(&arena);
    for _ in 0..1000 {
        v.push(());
    }
    assert_eq!(v.len(), 1000);
    assert_eq!(v.capacity(), usize::MAX);
    assert_eq!(arena.stats().reserved_bytes, 0, "zero-sized elements need no memory");
}

fn errors_are_values<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut v = AVec::<u64, P>::new_in(&arena);
    v.push(1);
    assert!(v.try_reserve(usize::MAX).is_err());
    assert!(v.try_reserve(isize::MAX as usize / 8).is_err());
    assert_eq!(v.as_slice(), &[1], "a failed reserve loses nothing");
    let r = std::panic::catch_unwind(|| {
        let a = Arena::<P>::default();
        let mut v = AVec::<u8, P>::new_in(&a);
        v.push(1);
        v.push(2);
        v.truncate(1);
        v.into_slice().to_vec()
    });
    assert_eq!(r.unwrap(), vec![1]);
}

fn into_slice_outlives_the_vec<P: Policy>() {
    let arena = Arena::<P>::default();
    let frozen = {
        let mut v = AVec::new_in(&arena);
        v.extend(0..100u16);
        v.into_slice()
    };
    let other = arena.alloc_slice_copy(&[7u16; 100]);
    assert!(frozen.iter().enumerate().all(|(i, &x)| x == i as u16), "freed too early");
    assert!(other.iter().all(|&x| x == 7));
}

per_policy!(
    push_pop_and_grow,
    reserve_exact_grows_in_place,
    drops_each_element_once,
    zero_sized_elements,
    errors_are_values,
    into_slice_outlives_the_vec,
);
