//! The API a bumpalo user reaches for: constructors that infer, the
//! `alloc_with` family, slice fills, iterators of unknown length,
//! formatting, `try_` forms under an allocation limit, bumpalo's
//! introspection names, checkpoints, destructors run at reset, and
//! `Lease` as an allocator-api2 `Allocator`. Every policy.
mod common;
use common::*;
use fiberalloc::collections::{CollectIn, String as AString, Vec as AVec};
use fiberalloc::{policy::Policy, AllocOrInitError, Arena, SharedArena};
use std::cell::Cell;
use std::rc::Rc;

#[test]
fn constructors_infer_the_default_policy() {
    // No annotations: the default policy's constructors name the type.
    let a = Arena::new();
    let b = Arena::with_capacity(1 << 16);
    let c = Arena::try_with_capacity(4096).unwrap();
    let s = SharedArena::new();
    let t = SharedArena::with_capacity(4096);
    assert!(SharedArena::try_with_capacity(usize::MAX).is_err());
    assert!(SharedArena::try_with_capacity(1 << 16).is_ok());
    assert_eq!(*a.alloc(1u8) + *b.alloc(2u8) + *c.alloc(3u8) + *s.alloc(4u8) + *t.alloc(5u8), 15);
    assert!(b.chunk_capacity() >= (1 << 16) - 64 && c.chunk_capacity() >= 4096 - 64);
    // Another policy is named by a value or by the type.
    let safe = Arena::with_policy(fiberalloc::policy::Safe);
    let debug: Arena<fiberalloc::policy::Debug> = Arena::default();
    assert_eq!(*safe.alloc(7u32) + *debug.alloc(8u32), 15);
}

fn alloc_with_family<P: Policy>() {
    let arena = Arena::<P>::default();
    let x = arena.alloc_with(|| [7u64; 64]);
    assert!(x.iter().all(|&v| v == 7));
    assert_eq!(*arena.try_alloc_with(|| 5u16).unwrap(), 5);
    let ok: Result<&mut Label, ()> = arena.alloc_try_with(|| Ok(Label("built")));
    assert_eq!(ok.unwrap().0, "built");
    // A failing constructor gives its error back, and the block too.
    let before = arena.stats().allocated_bytes;
    let err: Result<&mut [u8; 256], &str> = arena.alloc_try_with(|| Err("no"));
    assert_eq!(err.unwrap_err(), "no");
    assert_eq!(arena.stats().allocated_bytes, before, "the Err's block was given back");
    match arena.try_alloc_try_with(|| Err::<u32, i32>(-1)) {
        Err(AllocOrInitError::Init(-1)) => {}
        other => panic!("expected Init(-1), got {other:?}"),
    }
    assert_eq!(*arena.try_alloc_try_with(|| Ok::<u32, ()>(9)).unwrap(), 9);
    arena.validate().unwrap();
}

fn try_forms_fail_cleanly_under_a_limit<P: Policy>() {
    let arena = Arena::<P>::default();
    arena.alloc(0u8); // the first chunk
    arena.set_allocation_limit(Some(arena.stats().reserved_bytes));
    let called = Cell::new(false);
    let big = 1 << 20;
    assert!(arena
        .try_alloc_with(|| {
            called.set(true);
            [0u8; 1 << 20]
        })
        .is_err());
    assert!(!called.get(), "the constructor runs only once there is room");
    match arena.try_alloc_try_with(|| Ok::<[u8; 1 << 20], ()>([0; 1 << 20])) {
        Err(AllocOrInitError::Alloc(_)) => {}
        _ => panic!("expected Alloc"),
    }
    let v = vec![1u8; big];
    assert!(arena.try_alloc_slice_copy(&v).is_err());
    assert!(arena.try_alloc_slice_clone(&v).is_err());
    assert!(arena.try_alloc_str(std::str::from_utf8(&v).unwrap()).is_err());
    assert!(arena.try_alloc_slice_fill_copy(big, 1u8).is_err());
    assert!(arena.try_alloc_slice_fill_clone(big, &1u8).is_err());
    assert!(arena.try_alloc_slice_fill_default::<u8>(big).is_err());
    assert!(arena.try_alloc_slice_fill_with(big, |i| i as u8).is_err());
    assert!(arena.try_alloc_slice_fill_iter(v.iter().copied()).is_err());
    assert!(arena.try_alloc_uninit_slice::<u8>(big).is_err());
    assert!(arena.try_alloc_simd(big).is_err());
    assert!(matches!(
        arena.try_alloc_slice_try_fill_with(big, |_| Ok::<u8, ()>(0)),
        Err(AllocOrInitError::Alloc(_))
    ));
    assert!(arena.try_alloc_iter((0..big).map(|i| i as u8)).is_err());
    assert!(arena.try_alloc_fmt(format_args!("{}", "x".repeat(big))).is_err());
    assert!(arena.try_alloc_dropped(vec![0u8; 4]).is_ok(), "small things still fit");
    // Nothing was lost: the arena still allocates within its chunk.
    assert_eq!(arena.stats().reserved_bytes, arena.allocation_limit().unwrap());
    assert_eq!(&*arena.alloc_str("still usable"), "still usable");
    arena.validate().unwrap();
}

/// A `Clone` (not `Copy`) value that owns no heap memory: an arena never
/// drops what it holds, and Miri would report a `String` left in it.
#[derive(Clone, Debug, PartialEq)]
struct Label(&'static str);

/// Counts its drops.
struct Noisy<'c>(&'c Cell<usize>);
impl Drop for Noisy<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn slice_fills<P: Policy>() {
    let arena = Arena::<P>::default();
    assert_eq!(arena.alloc_slice_fill_copy(3, 9u8), &[9, 9, 9]);
    assert_eq!(arena.alloc_slice_fill_clone(2, &Label("a")), &[Label("a"), Label("a")]);
    assert_eq!(arena.alloc_slice_fill_default::<u16>(4), &[0; 4]);
    assert_eq!(arena.alloc_slice_fill_with(5, |i| i * i), &[0, 1, 4, 9, 16]);
    assert_eq!(arena.alloc_slice_fill_iter([3, 2, 1]), &[3, 2, 1]);
    assert_eq!(arena.alloc_slice_clone(&[Label("x"), Label("y")]), &[Label("x"), Label("y")]);
    let ok: Result<&mut [u32], ()> = arena.alloc_slice_try_fill_iter([Ok(1), Ok(2)]);
    assert_eq!(ok.unwrap(), &[1, 2]);
    // An error part-way drops what was made, once, and gives the block back.
    let drops = Cell::new(0);
    let before = arena.stats().allocated_bytes;
    let r = arena.alloc_slice_try_fill_with(10, |i| if i < 4 { Ok(Noisy(&drops)) } else { Err(i) });
    assert_eq!(r.err(), Some(4));
    assert_eq!(drops.get(), 4, "the four values made were dropped");
    assert_eq!(arena.stats().allocated_bytes, before);
    let uninit = arena.alloc_uninit_slice::<u64>(3);
    assert_eq!(uninit.len(), 3);
    arena.validate().unwrap();
}

fn iterators_of_unknown_length<P: Policy>() {
    let arena = Arena::<P>::default();
    let evens = arena.alloc_iter((0..1000u32).filter(|x| x % 2 == 0));
    assert_eq!(evens.len(), 500);
    assert!(evens.iter().enumerate().all(|(i, &x)| x == 2 * i as u32));
    // The iterator allocates in the same arena as it goes: every value
    // still lands, and the side allocations stay intact.
    let mut side = Vec::new();
    let mixed = arena.alloc_iter((0..3000u64).inspect(|&i| {
        side.push(arena.alloc(i * 3) as *const u64);
    }));
    assert!(mixed.iter().enumerate().all(|(i, &x)| x == i as u64));
    for (i, p) in side.iter().enumerate() {
        // SAFETY: each points at a live arena value made above.
        assert_eq!(unsafe { **p }, i as u64 * 3);
    }
    let shared = SharedArena::<P>::default();
    let lease = shared.lease();
    let a = shared.alloc_iter((0..100u16).inspect(|&i| {
        shared.alloc(i);
    }));
    let b = lease.alloc_iter((0..100u16).map(|i| {
        lease.alloc(i);
        i + 1
    }));
    assert!(a.iter().zip(b.iter()).all(|(x, y)| x + 1 == *y));
    arena.validate().unwrap();
}

fn formatting<P: Policy>() {
    let arena = Arena::<P>::default();
    let s = arena.alloc_fmt(format_args!("{}-{:04}", "id", 42));
    assert_eq!(s, "id-0042");
    let mut f = fiberalloc::format!(in &arena, "{} + {} = {}", 1, 2, 1 + 2);
    f.push('!');
    assert_eq!(f.as_str(), "1 + 2 = 3!");
    let frozen: &mut str = f.into_bump_str_mut();
    frozen.make_ascii_uppercase();
    assert_eq!(frozen, "1 + 2 = 3!");
    let shared = SharedArena::<P>::default();
    assert_eq!(shared.alloc_fmt(format_args!("{:?}", [1, 2])), "[1, 2]");
    assert_eq!(shared.lease().alloc_fmt(format_args!("{}", 'x')).len(), 1);
}

fn bumpalo_introspection<P: Policy>() {
    let mut arena = Arena::<P>::default();
    assert_eq!((arena.allocated_bytes(), arena.chunk_capacity(), arena.min_align()), (0, 0, 8));
    arena.alloc(1u64);
    let cap = arena.chunk_capacity();
    assert!(cap > 0);
    arena.alloc([0u8; 64]);
    assert!(arena.chunk_capacity() < cap);
    for i in 0..10_000u64 {
        arena.alloc(i);
    }
    let s = arena.stats();
    assert!(arena.allocated_bytes() >= s.allocated_bytes);
    assert!(arena.allocated_bytes_including_metadata() > arena.allocated_bytes());
    assert_eq!(arena.allocated_bytes_including_metadata(), s.reserved_bytes);
    let used: usize = arena.iter_allocated_chunks().map(|c| c.len()).sum();
    assert!(s.chunk_count > 1, "the loop spans chunks");
    assert!(used >= 10_002 * 8 && used <= s.allocated_bytes + s.padding_bytes + 64 * s.chunk_count);
    assert_eq!(arena.iter_allocated_chunks().count(), s.chunk_count);
    // SAFETY: nothing writes the arena while the pairs are read.
    let raw: usize = unsafe { arena.iter_allocated_chunks_raw() }.map(|(_, n)| n).sum();
    assert_eq!(raw, used);
}

fn allocation_count_is_counted<P: Policy>() {
    let arena = Arena::<P>::default();
    let mut sum = 0u64;
    // A real loop: each value is used, so nothing is folded away.
    for i in 0..1000u64 {
        let v = arena.alloc(i);
        *v += 1;
        sum += *v;
    }
    assert_eq!(sum, 500_500);
    assert_eq!(arena.stats().allocation_count, 1000);
    assert!(arena.stats().allocations_counted);
    assert!(arena.stats().to_string().contains("1000 allocations"));
    // A shared arena does not count, and says so rather than reading 0.
    let shared = SharedArena::<P>::default();
    shared.alloc(1u8);
    let s = shared.stats();
    assert!(!s.allocations_counted && s.to_string().contains("allocations not counted"));
}

fn raw_checkpoints<P: Policy>() {
    let arena = Arena::<P>::default();
    let kept = arena.alloc_str("kept");
    let before = arena.stats().allocated_bytes;
    let cp = arena.raw_checkpoint();
    let first_after = arena.alloc(0u64) as *mut u64 as usize;
    for i in 0..20_000u64 {
        arena.alloc(i); // spans several chunks
    }
    // SAFETY: nothing made after the checkpoint is used again.
    unsafe { arena.reset_to_raw_checkpoint(cp) };
    assert_eq!(arena.stats().allocated_bytes, before);
    assert_eq!(arena.alloc(1u64) as *mut u64 as usize, first_after, "the memory is reused");
    assert_eq!(kept, "kept");
    // Nested checkpoints, newest first (a backtracking parser's use).
    let outer = arena.raw_checkpoint();
    arena.alloc_str("alternative 1");
    let inner = arena.raw_checkpoint();
    arena.alloc_str("alternative 1.1");
    // SAFETY: as above, newest first.
    unsafe {
        arena.reset_to_raw_checkpoint(inner);
        arena.reset_to_raw_checkpoint(outer);
    }
    assert_eq!(arena.stats().allocated_bytes, before + 8);
    arena.validate().unwrap();
}

fn destructors_at_reset_scope_and_drop<P: Policy>() {
    let rc = Rc::new(());
    let mut arena = Arena::<P>::default();
    arena.alloc_dropped(Rc::clone(&rc));
    arena.alloc_dropped(7u32); // no destructor: a plain allocation
    assert_eq!(Rc::strong_count(&rc), 2);
    arena.scope(|a| {
        a.alloc_dropped(Rc::clone(&rc));
        a.alloc_dropped(Rc::clone(&rc));
        assert_eq!(Rc::strong_count(&rc), 4);
    });
    assert_eq!(Rc::strong_count(&rc), 2, "the scope's values dropped at its end");
    let cp = arena.raw_checkpoint();
    arena.alloc_dropped(Rc::clone(&rc));
    // SAFETY: the value made after the checkpoint is not used again.
    unsafe { arena.reset_to_raw_checkpoint(cp) };
    assert_eq!(Rc::strong_count(&rc), 2, "going back to a checkpoint drops what came after");
    arena.reset();
    assert_eq!(Rc::strong_count(&rc), 1, "reset drops the rest");
    arena.alloc_dropped(Rc::clone(&rc));
    drop(arena);
    assert_eq!(Rc::strong_count(&rc), 1, "drop drops them too");
}

/// A destructor that panics stops the run: the values not yet dropped stay
/// recorded and are dropped (once) at the next reset; the arena goes on
/// working.
fn a_panicking_destructor_leaks_the_rest<P: Policy>() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }
    let rc = Rc::new(());
    let mut arena = Arena::<P>::default();
    arena.alloc_dropped(Rc::clone(&rc));
    arena.alloc_dropped(Bomb);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| arena.reset()));
    assert!(r.is_err());
    assert_eq!(Rc::strong_count(&rc), 2, "the value below the bomb is not dropped yet");
    arena.reset();
    assert_eq!(Rc::strong_count(&rc), 1, "the next reset drops it, once");
    arena.reset();
    assert_eq!(Rc::strong_count(&rc), 1);
    assert_eq!(*arena.alloc(5u8), 5);
}

fn lease_is_an_allocator<P: Policy>() {
    let mut shared = SharedArena::<P>::default();
    std::thread::scope(|s| {
        for t in 0..2u32 {
            let shared = &shared;
            s.spawn(move || {
                let lease = shared.lease();
                let mut v = allocator_api2::vec::Vec::new_in(&lease);
                for i in 0..scale(20_000) as u32 {
                    v.push(i ^ t);
                }
                let mut m = hashbrown::HashMap::new_in(&lease);
                for (i, x) in v.iter().enumerate().take(1000) {
                    m.insert(*x, i);
                }
                assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 ^ t));
                assert_eq!(m.len(), v.len().min(1000));
                v.truncate(10);
                v.shrink_to_fit();
                assert_eq!(v.capacity(), 10);
            });
        }
    });
    assert!(shared.try_reset(), "no lease is live");
    shared.reset();
}

fn collect_in_and_vec_macro<P: Policy>() {
    let arena = Arena::<P>::default();
    let v: AVec<'_, u32, P> = (1..=4u32).collect_in(&arena);
    assert_eq!(v, [1, 2, 3, 4]);
    let s: AString<'_, P> = ['a', 'b'].into_iter().collect_in(&arena);
    assert_eq!(s, "ab");
    let w = fiberalloc::vec![in &arena; 1u8, 2, 3];
    let z = fiberalloc::vec![in &arena; String::from("z"); 3];
    let e: AVec<'_, u8, P> = fiberalloc::vec![in &arena];
    assert_eq!((w.as_slice(), z.len(), z[2].as_str(), e.len()), (&[1u8, 2, 3][..], 3, "z", 0));
}

per_policy!(
    alloc_with_family,
    try_forms_fail_cleanly_under_a_limit,
    slice_fills,
    iterators_of_unknown_length,
    formatting,
    bumpalo_introspection,
    allocation_count_is_counted,
    raw_checkpoints,
    destructors_at_reset_scope_and_drop,
    a_panicking_destructor_leaks_the_rest,
    lease_is_an_allocator,
    collect_in_and_vec_macro,
);
