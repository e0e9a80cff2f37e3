//! A property test: random sequences of alloc / grow / shrink / dealloc /
//! scope / reset, checked after every step against a model of the live
//! blocks: each aligned, inside the arena, disjoint from the others, with
//! its contents intact.
//!
//! Cases per policy: `PROPTEST_CASES` (default 256; 4 under Miri).
//! `scripts/proptest-long.sh` runs 100,000.
mod common;
use allocator_api2::alloc::Allocator;
use common::*;
use core::alloc::Layout;
use core::ptr::NonNull;
use fiberalloc::{policy::Policy, Arena};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        size: usize,
        align_shift: u32,
    },
    Grow {
        pick: usize,
        extra: usize,
        align_shift: u32,
    },
    Shrink {
        pick: usize,
        keep_percent: usize,
        align_shift: u32,
    },
    Dealloc {
        pick: usize,
    },
    /// Run the next `len` ops inside `Arena::scope` (top level only).
    Scope {
        len: usize,
    },
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3000, 0u32..13).prop_map(|(size, align_shift)| Op::Alloc { size, align_shift }),
        3 => (any::<usize>(), 0usize..5000, 0u32..13)
            .prop_map(|(pick, extra, align_shift)| Op::Grow { pick, extra, align_shift }),
        2 => (any::<usize>(), 0usize..=100, 0u32..13)
            .prop_map(|(pick, keep_percent, align_shift)| Op::Shrink { pick, keep_percent, align_shift }),
        3 => any::<usize>().prop_map(|pick| Op::Dealloc { pick }),
        1 => (1usize..20).prop_map(|len| Op::Scope { len }),
        1 => Just(Op::Reset),
    ]
}

struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
    id: usize,
}

struct Model<'a, P: Policy> {
    arena: &'a Arena<P>,
    live: Vec<Block>,
    next_id: usize,
    /// Bytes live outside the model (the outer blocks, inside a scope).
    base: usize,
}

impl<P: Policy> Model<'_, P> {
    fn check(&self) {
        self.arena.validate().unwrap();
        for b in &self.live {
            assert_eq!(b.ptr.as_ptr() as usize % b.layout.align(), 0, "misaligned block");
            if b.layout.size() > 0 {
                assert!(self.arena.contains(b.ptr.as_ptr()), "block outside the arena");
                let last = b.ptr.as_ptr().wrapping_add(b.layout.size() - 1);
                assert!(self.arena.contains(last), "block end outside the arena");
            }
            // SAFETY: live blocks are readable for their size.
            unsafe { check(b.ptr.as_ptr(), b.layout.size(), b.id) };
        }
        assert_disjoint(
            self.live
                .iter()
                .map(|b| b.ptr.as_ptr() as usize..b.ptr.as_ptr() as usize + b.layout.size())
                .collect(),
        );
        let live: usize = self.live.iter().map(|b| b.layout.size()).sum();
        let s = self.arena.stats();
        if P::EXACT_STATS {
            assert_eq!(s.allocated_bytes, self.base + live, "allocated_bytes off the model");
        } else {
            // Fast includes its blocks' padding: at least the live bytes,
            // and never more than the bytes the cursor passed.
            assert!(s.allocated_bytes >= live, "allocated_bytes below the live bytes");
        }
    }

    fn fresh_id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id
    }

    fn apply(&mut self, op: &Op) {
        let a = self.arena;
        match *op {
            Op::Alloc { size, align_shift } => {
                let layout = Layout::from_size_align(size, 1 << align_shift).unwrap();
                let ptr = a.allocate(layout).unwrap().cast::<u8>();
                let id = self.fresh_id();
                // SAFETY: fresh block of `size` bytes.
                unsafe { fill(ptr.as_ptr(), size, id) };
                self.live.push(Block { ptr, layout, id });
            }
            Op::Grow { pick, extra, align_shift } if !self.live.is_empty() => {
                let i = pick % self.live.len();
                let b = &mut self.live[i];
                let new = Layout::from_size_align(b.layout.size() + extra, 1 << align_shift).unwrap();
                // SAFETY: `b` is a live block of this allocator.
                let p = unsafe { (&a).grow(b.ptr, b.layout, new) }.unwrap().cast::<u8>();
                // SAFETY: the old contents moved along; refill with a new id.
                unsafe { check(p.as_ptr(), b.layout.size(), b.id) };
                let id = self.next_id + 1;
                self.next_id = id;
                // SAFETY: the block holds `new.size()` bytes.
                unsafe { fill(p.as_ptr(), new.size(), id) };
                *b = Block { ptr: p, layout: new, id };
            }
            Op::Shrink { pick, keep_percent, align_shift } if !self.live.is_empty() => {
                let i = pick % self.live.len();
                let b = &mut self.live[i];
                let size = b.layout.size() * keep_percent / 100;
                let new = Layout::from_size_align(size, 1 << align_shift).unwrap();
                // SAFETY: `b` is a live block of this allocator.
                let p = unsafe { (&a).shrink(b.ptr, b.layout, new) }.unwrap().cast::<u8>();
                // SAFETY: the first `size` bytes are kept.
                unsafe { check(p.as_ptr(), size, b.id) };
                *b = Block { ptr: p, layout: new, id: b.id };
            }
            Op::Dealloc { pick } if !self.live.is_empty() => {
                let b = self.live.swap_remove(pick % self.live.len());
                // SAFETY: `b` is a live block of this allocator, not used again.
                unsafe { (&a).deallocate(b.ptr, b.layout) };
            }
            _ => {}
        }
    }
}

fn run<P: Policy>(ops: &[Op]) {
    let mut arena = Arena::<P>::default();
    let mut outer: Vec<(NonNull<u8>, Layout, usize)> = Vec::new();
    let mut next_id = 0;
    let mut i = 0;
    while i < ops.len() {
        match ops[i] {
            Op::Reset => {
                arena.reset();
                outer.clear();
                assert_eq!(arena.stats().allocated_bytes, 0);
                i += 1;
            }
            Op::Scope { len } => {
                let inner = &ops[i + 1..(i + 1 + len).min(ops.len())];
                let before = arena.stats().allocated_bytes;
                let saved = outer.clone();
                let base = if P::EXACT_STATS { before } else { 0 };
                next_id = arena.scope(|a| {
                    // Inside the scope only blocks made in it are touched:
                    // outer blocks are checked but not grown or freed.
                    let mut m = Model { arena: a, live: Vec::new(), next_id, base };
                    for op in inner {
                        m.apply(op);
                        m.check();
                    }
                    for (p, l, id) in &saved {
                        // SAFETY: outer blocks stay live inside the scope.
                        unsafe { check(p.as_ptr(), l.size(), *id) };
                    }
                    m.next_id
                });
                assert_eq!(arena.stats().allocated_bytes, before, "scope did not rewind");
                i += 1 + inner.len();
            }
            _ => {
                let live = outer.drain(..).map(|(ptr, layout, id)| Block { ptr, layout, id }).collect();
                let mut m = Model { arena: &arena, live, next_id, base: 0 };
                m.apply(&ops[i]);
                m.check();
                next_id = m.next_id;
                outer = m.live.into_iter().map(|b| (b.ptr, b.layout, b.id)).collect();
                i += 1;
            }
        }
    }
    arena.validate().unwrap();
}

fn random_sequences_match_the_model<P: Policy>() {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(if cfg!(miri) {
        4
    } else {
        256
    });
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner
        .run(&proptest::collection::vec(op(), 1..120), |ops| {
            run::<P>(&ops);
            Ok(())
        })
        .unwrap();
}

per_policy!(random_sequences_match_the_model);
