//! `collections::{Vec, String, Box}` against std's, operation by
//! operation: random sequences (proptest) applied to both must leave equal
//! contents, and every element must be dropped exactly once.
mod common;
use fiberalloc::collections::{Box as ABox, String as AString, Vec as AVec};
use fiberalloc::{policy::Policy, Arena};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

/// An element that records its drop in a shared ledger (by id), so a
/// double drop or a missed drop shows.
#[derive(Debug)]
struct Tracked {
    id: u32,
    ledger: Rc<RefCell<Vec<u32>>>,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        // Clones get fresh ids above 1,000,000 so they are told apart.
        thread_local!(static CLONES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        let n = CLONES.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        Tracked { id: 1_000_000 + n * 1000 + self.id % 1000, ledger: Rc::clone(&self.ledger) }
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.id % 1000 == other.id % 1000
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.borrow_mut().push(self.id);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Push(u32),
    Pop,
    Insert(usize, u32),
    Remove(usize),
    SwapRemove(usize),
    Truncate(usize),
    Retain(u32),
    Dedup,
    Drain(usize, usize, bool),
    Resize(usize, u32),
    SplitOffAppend(usize),
    ExtendFromWithin(usize, usize),
    IntoIterHalf,
    ShrinkToFit,
    ReserveExact(usize),
    AllocElsewhere,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u32..50).prop_map(Op::Push),
        1 => Just(Op::Pop),
        2 => (0usize..64, 0u32..50).prop_map(|(i, v)| Op::Insert(i, v)),
        1 => (0usize..64).prop_map(Op::Remove),
        1 => (0usize..64).prop_map(Op::SwapRemove),
        1 => (0usize..64).prop_map(Op::Truncate),
        1 => (1u32..5).prop_map(Op::Retain),
        1 => Just(Op::Dedup),
        1 => (0usize..64, 0usize..64, any::<bool>()).prop_map(|(a, b, all)| Op::Drain(a, b, all)),
        1 => (0usize..80, 0u32..50).prop_map(|(n, v)| Op::Resize(n, v)),
        1 => (0usize..64).prop_map(Op::SplitOffAppend),
        1 => (0usize..64, 0usize..64).prop_map(|(a, b)| Op::ExtendFromWithin(a, b)),
        1 => Just(Op::IntoIterHalf),
        1 => Just(Op::ShrinkToFit),
        1 => (0usize..16).prop_map(Op::ReserveExact),
        1 => Just(Op::AllocElsewhere),
    ]
}

/// Clamps `i` into `0..=len` (or `0..len` when `strict`), `None` if empty.
fn at(i: usize, len: usize, strict: bool) -> Option<usize> {
    let n = if strict { len } else { len + 1 };
    (n > 0).then(|| i % n)
}

fn run_ops<P: Policy>(ops: &[Op]) {
    let ledger = Rc::new(RefCell::new(Vec::new()));
    let made = std::cell::Cell::new(0u32);
    // Originals get ids `seq * 1000 + value` (below 1,000,000; value < 1000).
    let mk = |v: u32| {
        made.set(made.get() + 1);
        Tracked { id: made.get() * 1000 + v, ledger: Rc::clone(&ledger) }
    };
    let arena = Arena::<P>::default();
    {
        let mut a: AVec<'_, Tracked, P> = AVec::new_in(&arena);
        let mut s: Vec<u32> = Vec::new();
        for op in ops {
            match *op {
                Op::Push(v) => {
                    a.push(mk(v));
                    s.push(v);
                }
                Op::Pop => assert_eq!(a.pop().map(|t| t.id % 1000), s.pop()),
                Op::Insert(i, v) => {
                    let i = at(i, s.len(), false).unwrap();
                    a.insert(i, mk(v));
                    s.insert(i, v);
                }
                Op::Remove(i) => {
                    if let Some(i) = at(i, s.len(), true) {
                        assert_eq!(a.remove(i).id % 1000, s.remove(i));
                    }
                }
                Op::SwapRemove(i) => {
                    if let Some(i) = at(i, s.len(), true) {
                        assert_eq!(a.swap_remove(i).id % 1000, s.swap_remove(i));
                    }
                }
                Op::Truncate(n) => {
                    a.truncate(n);
                    s.truncate(n);
                }
                Op::Retain(m) => {
                    a.retain(|t| (t.id % 1000) % m == 0);
                    s.retain(|x| x % m == 0);
                }
                Op::Dedup => {
                    a.dedup();
                    s.dedup();
                }
                Op::Drain(x, y, all) => {
                    let (lo, hi) = (x.min(y).min(s.len()), x.max(y).min(s.len()));
                    let got: Vec<u32> = if all {
                        a.drain(lo..hi).map(|t| t.id % 1000).collect()
                    } else {
                        // Take one and drop the drain: the rest are dropped.
                        a.drain(lo..hi).next().map(|t| t.id % 1000).into_iter().collect()
                    };
                    let want: Vec<u32> = s.drain(lo..hi).collect();
                    if all {
                        assert_eq!(got, want);
                    } else {
                        assert_eq!(got.first(), want.first());
                    }
                }
                Op::Resize(n, v) => {
                    a.resize(n, mk(v));
                    s.resize(n, v);
                }
                Op::SplitOffAppend(i) => {
                    let i = at(i, s.len(), false).unwrap();
                    let mut tail = a.split_off(i);
                    let st = s.split_off(i);
                    assert_eq!(tail.len(), st.len());
                    a.append(&mut tail);
                    assert!(tail.is_empty());
                    s.extend(st);
                }
                Op::ExtendFromWithin(x, y) => {
                    let (lo, hi) = (x.min(y).min(s.len()), x.max(y).min(s.len()));
                    a.extend_from_within(lo..hi);
                    s.extend_from_within(lo..hi);
                }
                Op::IntoIterHalf => {
                    let n = s.len();
                    let old = std::mem::replace(&mut a, AVec::new_in(&arena));
                    let mut it = old.into_iter();
                    for _ in 0..n / 2 {
                        a.push(it.next().unwrap());
                    }
                    assert_eq!(it.len(), n - n / 2);
                    drop(it); // drops the other half
                    s.truncate(n / 2);
                }
                Op::ShrinkToFit => {
                    a.shrink_to_fit();
                    assert!(a.capacity() >= a.len());
                }
                Op::ReserveExact(n) => {
                    a.reserve_exact(n);
                    assert!(a.capacity() >= a.len() + n);
                }
                Op::AllocElsewhere => {
                    arena.alloc_str("in the way");
                }
            }
            let got: Vec<u32> = a.iter().map(|t| t.id % 1000).collect();
            assert_eq!(got, s, "after {op:?}");
        }
        // Clone, comparisons and hashing agree with the contents.
        let b = a.clone();
        assert!(a == b);
        let h = |v: &dyn Fn(&mut DefaultHasher)| {
            let mut d = DefaultHasher::new();
            v(&mut d);
            d.finish()
        };
        let ids: AVec<'_, u32, P> = AVec::from_iter_in(a.iter().map(|t| t.id % 1000), &arena);
        assert_eq!(h(&|d| ids.hash(d)), h(&|d| s.hash(d)));
        assert_eq!(ids.as_slice(), s.as_slice());
        drop(b);
    }
    // Every element made (by `mk` or by a clone) was dropped exactly once.
    let l = ledger.borrow();
    let mut seen = l.clone();
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), before, "an element was dropped twice");
    let originals = l.iter().filter(|&&id| id < 1_000_000).count();
    assert_eq!(originals as u32, made.get(), "an element was never dropped (or dropped twice)");
    arena.validate().unwrap();
}

#[derive(Clone, Debug)]
enum SOp {
    Push(char),
    PushStr(String),
    Pop,
    Insert(usize, char),
    Remove(usize),
    Truncate(usize),
    Retain,
    Clear,
    Format(u32),
}

fn sop() -> impl Strategy<Value = SOp> {
    prop_oneof![
        4 => any::<char>().prop_map(SOp::Push),
        3 => ".{0,12}".prop_map(SOp::PushStr),
        1 => Just(SOp::Pop),
        1 => (0usize..64, any::<char>()).prop_map(|(i, c)| SOp::Insert(i, c)),
        1 => (0usize..64).prop_map(SOp::Remove),
        1 => (0usize..64).prop_map(SOp::Truncate),
        1 => Just(SOp::Retain),
        1 => Just(SOp::Clear),
        1 => any::<u32>().prop_map(SOp::Format),
    ]
}

/// The char boundary at or below byte `i`, or `None` for an empty string.
fn boundary(s: &str, i: usize, strict: bool) -> Option<usize> {
    let mut i = if strict {
        if s.is_empty() {
            return None;
        }
        i % s.len()
    } else {
        i % (s.len() + 1)
    };
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    Some(i)
}

fn run_string_ops<P: Policy>(ops: &[SOp]) {
    use std::fmt::Write;
    let arena = Arena::<P>::default();
    let mut a = AString::new_in(&arena);
    let mut s = String::new();
    for op in ops {
        match op {
            SOp::Push(c) => {
                a.push(*c);
                s.push(*c);
            }
            SOp::PushStr(t) => {
                a.push_str(t);
                s.push_str(t);
            }
            SOp::Pop => assert_eq!(a.pop(), s.pop()),
            SOp::Insert(i, c) => {
                let i = boundary(&s, *i, false).unwrap();
                a.insert(i, *c);
                s.insert(i, *c);
            }
            SOp::Remove(i) => {
                if let Some(i) = boundary(&s, *i, true) {
                    assert_eq!(a.remove(i), s.remove(i));
                }
            }
            SOp::Truncate(i) => {
                let i = boundary(&s, *i, false).unwrap();
                a.truncate(i);
                s.truncate(i);
            }
            SOp::Retain => {
                a.retain(|c| !c.is_ascii_digit());
                s.retain(|c| !c.is_ascii_digit());
            }
            SOp::Clear => {
                a.clear();
                s.clear();
            }
            SOp::Format(n) => {
                write!(a, "<{n:x}>").unwrap();
                write!(s, "<{n:x}>").unwrap();
                arena.alloc(*n); // something else in between
            }
        }
        assert_eq!(a.as_str(), s.as_str(), "after {op:?}");
        assert_eq!(a.to_string(), s, "Display");
        assert_eq!(a.len(), s.len());
    }
    let frozen: &mut str = a.into_bump_str_mut();
    assert_eq!(frozen, s.as_str());
}

proptest! {
    // No failure file: Miri cannot look up the working directory.
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn vec_matches_std_fast(ops in prop::collection::vec(op(), 0..120)) {
        run_ops::<fiberalloc::policy::Fast>(&ops);
    }

    #[test]
    fn vec_matches_std_safe(ops in prop::collection::vec(op(), 0..120)) {
        run_ops::<fiberalloc::policy::Safe>(&ops);
    }

    #[test]
    fn string_matches_std_fast(ops in prop::collection::vec(sop(), 0..80)) {
        run_string_ops::<fiberalloc::policy::Fast>(&ops);
    }

    #[test]
    fn string_matches_std_debug(ops in prop::collection::vec(sop(), 0..80)) {
        run_string_ops::<fiberalloc::policy::Debug>(&ops);
    }
}

#[test]
fn box_drops_its_value_and_leak_keeps_it() {
    let rc = Rc::new(());
    let arena = Arena::new();
    let b = ABox::new_in(Rc::clone(&rc), &arena);
    assert_eq!(Rc::strong_count(&rc), 2);
    drop(b);
    assert_eq!(Rc::strong_count(&rc), 1, "dropping the box drops the value");
    let leaked: &mut Rc<()> = ABox::leak(ABox::new_in(Rc::clone(&rc), &arena));
    assert_eq!(Rc::strong_count(leaked), 2, "a leaked value is never dropped");
    // SAFETY: `leaked` is the value just leaked, in `arena`, owned by
    // nothing else: a box takes it back (and drops it).
    drop(unsafe { ABox::from_raw(leaked as *mut Rc<()>) });
    assert_eq!(Rc::strong_count(&rc), 1);
    let inner = ABox::into_inner(ABox::new_in(String::from("moved out"), &arena));
    assert_eq!(inner, "moved out");
    let slice = fiberalloc::vec![in &arena; Rc::clone(&rc), Rc::clone(&rc)].into_boxed_slice();
    assert_eq!((slice.len(), Rc::strong_count(&rc)), (2, 3));
    drop(slice);
    assert_eq!(Rc::strong_count(&rc), 1, "a boxed slice drops its elements");
    let mut b = fiberalloc::boxed::Box::new_in(41, &arena);
    *b += 1;
    assert_eq!((*b, format!("{b}"), b == ABox::new_in(42, &arena)), (42, "42".to_owned(), true));
}

#[test]
#[allow(clippy::mutable_key_type)] // the arena inside is not part of the hash
fn vec_traits() {
    use std::collections::HashSet;
    let arena = Arena::new();
    let a = fiberalloc::vec![in &arena; 3, 1, 2];
    let b = fiberalloc::vec![in &arena; 3, 1, 2];
    let c = fiberalloc::vec![in &arena; 3, 1, 3];
    assert!(a == b && a != c && a < c && a.cmp(&c).is_lt());
    assert_eq!(a[1], 1);
    assert_eq!(&a[1..], &[1, 2]);
    let mut set = HashSet::new();
    set.insert(a.clone());
    assert!(set.contains(&b) && !set.contains(&c));
    let mut m = a.clone();
    m[0] = 9;
    m.sort();
    assert_eq!(m, [1, 2, 9]);
    let owned: Vec<i32> = m.into_iter().rev().collect();
    assert_eq!(owned, vec![9, 2, 1]);
    let mut w = fiberalloc::collections::Vec::new_in(&arena);
    std::io::Write::write_all(&mut w, b"bytes").unwrap();
    w.extend_from_slice_copy(b"++");
    w.extend_from_slices_copy(&[b"a", b"bc"]);
    assert_eq!(w.as_slice(), b"bytes++abc");
    assert_eq!(w.into_bump_slice(), b"bytes++abc");
}

#[test]
fn extend_from_slice_copy_every_short_length() {
    // The short-copy arms (1-3, 4-7, 8-16 bytes) and the memcpy one, at
    // every offset of the buffer.
    let arena = Arena::new();
    let src: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5A).collect();
    let mut v = AVec::new_in(&arena);
    let mut want = Vec::new();
    for n in 0..=40 {
        v.extend_from_slice_copy(&src[..n]);
        want.extend_from_slice(&src[..n]);
        assert_eq!(v.as_slice(), want.as_slice(), "after a copy of {n} bytes");
    }
    let mut s = AString::new_in(&arena);
    for w in ["", "a", "ab", "abc", "abcd", "héllo", "sixteen bytes!!!", "seventeen bytes!!"] {
        s.push_str(w);
    }
    assert_eq!(s.as_str(), "aababcabcdhéllosixteen bytes!!!seventeen bytes!!");
}
