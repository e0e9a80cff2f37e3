//! allocator-api2 collections in an arena: `Vec`, `Box`,
//! `hashbrown::HashMap`.
mod common;
use allocator_api2::boxed::Box as ABox;
use allocator_api2::vec::Vec as AVec;
use common::*;
use fiberalloc::{policy::Policy, Arena};

fn vec_and_box<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut v: AVec<u32, _> = AVec::new_in(&arena);
    let n = scale(100_000) as u32;
    for i in 0..n {
        v.push(i);
    }
    assert_eq!(v.len(), n as usize);
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32));
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v.capacity(), 10);
    let b = ABox::new_in([1u64, 2, 3, 4], &arena);
    assert_eq!(b.iter().sum::<u64>(), 10);
    let s = ABox::new_in(String::from("owned by the arena box"), &arena);
    assert_eq!(s.len(), 22);
    drop((v, b, s));
    assert_eq!(arena.stats().allocated_bytes, 0, "every collection gave its memory back");
}

fn hashmap<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut m = hashbrown::HashMap::new_in(&arena);
    let n = scale(50_000) as u64;
    for i in 0..n {
        m.insert(i, i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    }
    for i in (0..n).step_by(3) {
        m.remove(&i);
    }
    for i in 0..n {
        let expect = (i % 3 != 0).then(|| i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        assert_eq!(m.get(&i).copied(), expect);
    }
    arena.validate().unwrap();
}

fn many_collections_interleaved<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut vs: Vec<AVec<u16, &Arena<P>>> = (0..8).map(|_| AVec::new_in(&arena)).collect();
    for i in 0..scale(20_000) {
        let k = (i * 7) % vs.len();
        vs[k].push(i as u16);
    }
    for (k, v) in vs.iter().enumerate() {
        assert!(v.iter().all(|&x| (x as usize * 7) % 8 == k));
    }
}

per_policy!(vec_and_box, hashmap, many_collections_interleaved);
