//! The `arena` rows again (and the pooled-coroutine row of `stacks`),
//! measured round-robin: every round times one
//! batch of each contender in turn (starting with a different one each
//! round), and each contender's median over the rounds is reported. On a
//! shared VM whose speed drifts over seconds, this compares contenders
//! under the same conditions, which criterion's one-contender-after-another
//! runs do not. criterion's `benches/arena.rs` stays the reference for
//! absolute numbers; this is the cross-check for the ratios.
//!
//! Run: `cargo bench -p fiberalloc-benches --bench interleaved`

use bump_scope::traits::BumpAllocatorTyped as _;
use core::alloc::Layout;
use fiberalloc::Arena;
use fiberalloc_benches::runtime_sizes;
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 41;
const BATCH: usize = 10_000;

/// A contender: a name and a closure timing one batch, returning ns per
/// operation.
type Contender<'a> = (&'a str, Box<dyn FnMut() -> f64 + 'a>);

fn per_op(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

fn run(row: &str, mut contenders: Vec<Contender<'_>>) {
    // Warm every contender up first.
    for (_, f) in contenders.iter_mut() {
        for _ in 0..3 {
            f();
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for round in 0..ROUNDS {
        let n = contenders.len();
        for k in 0..n {
            let i = (round + k) % n;
            samples[i].push((contenders[i].1)());
        }
    }
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|s| {
            s.sort_by(|a, b| a.total_cmp(b));
            s[s.len() / 2]
        })
        .collect();
    let ours = medians[0];
    let (best_i, best) = medians
        .iter()
        .enumerate()
        .skip(1)
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, &m)| (i, m))
        .expect("peers");
    let others: Vec<String> =
        contenders.iter().zip(&medians).skip(1).map(|((name, _), m)| format!("{name} {m:.3}")).collect();
    println!(
        "| {row} | {ours:.3} | {} {best:.3} | {:.2}x | {} |",
        contenders[best_i].0,
        ours / best,
        others.join(", ")
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    println!("| row | fiberalloc | best peer | ratio | all peers (median ns/op over {ROUNDS} interleaved rounds) |");
    println!("|---|---:|---|---:|---|");

    {
        let mut a: Arena = Arena::new();
        let mut b = bumpalo::Bump::new();
        let mut c: bump_scope::Bump = bump_scope::Bump::new();
        let mut d = blink_alloc::Blink::new();
        run(
            "typed_u64",
            vec![
                (
                    "fiberalloc",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..BATCH {
                            black_box(a.alloc(black_box(i as u64)));
                        }
                        a.reset();
                        per_op(t, BATCH)
                    }),
                ),
                (
                    "bumpalo",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..BATCH {
                            black_box(b.alloc(black_box(i as u64)));
                        }
                        b.reset();
                        per_op(t, BATCH)
                    }),
                ),
                (
                    "bump-scope",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..BATCH {
                            black_box(c.alloc(black_box(i as u64)).into_mut());
                        }
                        c.reset();
                        per_op(t, BATCH)
                    }),
                ),
                (
                    "blink-alloc",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..BATCH {
                            black_box(d.put(black_box(i as u64)));
                        }
                        d.reset();
                        per_op(t, BATCH)
                    }),
                ),
            ],
        );
    }

    {
        let layouts: Vec<Layout> =
            runtime_sizes(BATCH).into_iter().map(|s| Layout::from_size_align(s, 8).unwrap()).collect();
        let layouts = &layouts;
        let mut a: Arena = Arena::new();
        let mut b = bumpalo::Bump::new();
        let mut c: bump_scope::Bump = bump_scope::Bump::new();
        let mut d = blink_alloc::BlinkAlloc::new();
        run(
            "runtime_layout",
            vec![
                (
                    "fiberalloc",
                    Box::new(|| {
                        let t = Instant::now();
                        for &l in layouts {
                            black_box(a.alloc_layout(black_box(l)));
                        }
                        a.reset();
                        per_op(t, BATCH)
                    }),
                ),
                (
                    "bumpalo",
                    Box::new(|| {
                        let t = Instant::now();
                        for &l in layouts {
                            black_box(b.alloc_layout(black_box(l)));
                        }
                        b.reset();
                        per_op(t, BATCH)
                    }),
                ),
                (
                    "bump-scope",
                    Box::new(|| {
                        let t = Instant::now();
                        for &l in layouts {
                            black_box(c.allocate_layout(black_box(l)));
                        }
                        c.reset();
                        per_op(t, BATCH)
                    }),
                ),
                (
                    "blink-alloc",
                    Box::new(|| {
                        let t = Instant::now();
                        for &l in layouts {
                            black_box(d.allocate(black_box(l)).unwrap());
                        }
                        d.reset();
                        per_op(t, BATCH)
                    }),
                ),
            ],
        );
    }

    macro_rules! pushes {
        ($v:expr, $n:expr, $exact:expr) => {{
            let t = Instant::now();
            let mut v = $v;
            for i in 0..$n {
                if $exact {
                    v.reserve_exact(1);
                }
                v.push(black_box(i as u8));
            }
            black_box(&v);
            drop(v);
            per_op(t, $n)
        }};
    }
    for (row, n, exact) in [("vec_push", 1_000_000usize, false), ("vec_push_reserve_exact", 100_000, true)] {
        let mut a: Arena = Arena::new();
        let mut c: bump_scope::Bump = bump_scope::Bump::new();
        let mut d = blink_alloc::BlinkAlloc::new();
        let mut contenders: Vec<Contender<'_>> = vec![
            (
                "fiberalloc",
                Box::new(|| {
                    let r = pushes!(fiberalloc::collections::Vec::<u8>::new_in(&a), n, exact);
                    a.reset();
                    r
                }),
            ),
            (
                "bump-scope",
                Box::new(|| {
                    let r = pushes!(bump_scope::BumpVec::<u8, _>::new_in(&c), n, exact);
                    c.reset();
                    r
                }),
            ),
            (
                "blink-alloc",
                Box::new(|| {
                    let r = pushes!(allocator_api2_04::vec::Vec::<u8, _>::new_in(&d), n, exact);
                    d.reset();
                    r
                }),
            ),
            ("std", Box::new(|| pushes!(Vec::<u8>::new(), n, exact))),
        ];
        if !exact {
            // bumpalo's exact growth is quadratic (~6 ms per 100,000): left
            // out of the exact row, which would take minutes.
            let mut b = bumpalo::Bump::new();
            contenders.push((
                "bumpalo",
                Box::new(move || {
                    let r = pushes!(bumpalo::collections::Vec::<u8>::new_in(&b), n, exact);
                    b.reset();
                    r
                }),
            ));
        }
        run(row, contenders);
    }

    {
        const WARM: usize = 100_000;
        run(
            "warm_up",
            vec![
                (
                    "fiberalloc",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..WARM {
                            let a: Arena = Arena::new();
                            black_box(a.alloc(black_box(i as u64)));
                        }
                        per_op(t, WARM)
                    }),
                ),
                (
                    "bumpalo",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..WARM {
                            let a = bumpalo::Bump::new();
                            black_box(a.alloc(black_box(i as u64)));
                        }
                        per_op(t, WARM)
                    }),
                ),
                (
                    "bump-scope",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..WARM {
                            let a: bump_scope::Bump = bump_scope::Bump::new();
                            black_box(a.alloc(black_box(i as u64)).into_mut());
                        }
                        per_op(t, WARM)
                    }),
                ),
                (
                    "blink-alloc",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..WARM {
                            let a = blink_alloc::Blink::new();
                            black_box(a.put(black_box(i as u64)));
                        }
                        per_op(t, WARM)
                    }),
                ),
                (
                    "std",
                    Box::new(|| {
                        let t = Instant::now();
                        for i in 0..WARM {
                            black_box(Box::new(black_box(i as u64)));
                        }
                        per_op(t, WARM)
                    }),
                ),
            ],
        );
    }

    // A corosensei coroutine (create, suspend once, finish) on a pooled
    // stack against one on a `DefaultStack` reused with `into_stack`.
    {
        use corosensei::stack::DefaultStack;
        use corosensei::{Coroutine, Yielder};
        const FIBERS: usize = 10_000;
        fn drive<S: corosensei::stack::Stack + 'static>(stack: S) -> S {
            let mut co = Coroutine::with_stack(stack, |y: &Yielder<u64, u64>, x: u64| y.suspend(x + 1) * 2);
            black_box(co.resume(black_box(1)));
            black_box(co.resume(black_box(5)));
            co.into_stack()
        }
        let pool = fiberalloc::stack::StackPool::new(64 << 10);
        drop(pool.get().unwrap());
        let mut slot = Some(DefaultStack::new(64 << 10).unwrap());
        run(
            "coroutine_reused",
            vec![
                (
                    "fiberalloc",
                    Box::new(|| {
                        let t = Instant::now();
                        for _ in 0..FIBERS {
                            drop(drive(pool.get().unwrap()));
                        }
                        per_op(t, FIBERS)
                    }),
                ),
                (
                    "corosensei",
                    Box::new(|| {
                        let t = Instant::now();
                        for _ in 0..FIBERS {
                            slot = Some(drive(slot.take().unwrap()));
                        }
                        per_op(t, FIBERS)
                    }),
                ),
            ],
        );
    }

    bumpalo_api_rows();
}

/// The bumpalo-API rows (issue 17): each method against bumpalo's and
/// bump-scope's equivalent, and allocator-api2's `Vec` over each arena.
fn bumpalo_api_rows() {
    use bump_scope::{bump_format, BumpString};

    /// A contender timing `$n` operations of `$body` on arena `$a`, reset
    /// after each batch.
    macro_rules! batch {
        ($name:expr, $a:ident, $n:expr, $body:expr) => {
            (
                $name,
                Box::new(|| {
                    let t = Instant::now();
                    for i in 0..$n {
                        let i = black_box(i);
                        black_box($body(&$a, i));
                    }
                    $a.reset();
                    per_op(t, $n)
                }) as Box<dyn FnMut() -> f64 + '_>,
            )
        };
    }

    let mut a: Arena = Arena::new();
    let mut b = bumpalo::Bump::new();
    let mut c: bump_scope::Bump = bump_scope::Bump::new();

    // A 256-byte value built in place.
    run(
        "alloc_with_256b",
        vec![
            batch!("fiberalloc", a, BATCH, |a: &Arena, i: usize| a.alloc_with(|| [i as u64; 32]) as *mut _),
            batch!("bumpalo", b, BATCH, |b: &bumpalo::Bump, i: usize| b.alloc_with(|| [i as u64; 32])
                as *mut _),
            batch!("bump-scope", c, BATCH, |c: &bump_scope::Bump, i: usize| c
                .alloc_with(|| [i as u64; 32])
                .into_mut()
                as *mut _),
        ],
    );

    // A slice of 64 `u32` filled from a closure: ns per slice.
    run(
        "slice_fill_with_64",
        vec![
            batch!("fiberalloc", a, BATCH / 10, |a: &Arena, i: usize| a
                .alloc_slice_fill_with(64, |k| (i + k) as u32)
                .as_mut_ptr()),
            batch!("bumpalo", b, BATCH / 10, |b: &bumpalo::Bump, i: usize| b
                .alloc_slice_fill_with(64, |k| (i + k) as u32)
                .as_mut_ptr()),
            batch!("bump-scope", c, BATCH / 10, |c: &bump_scope::Bump, i: usize| {
                let mut k = 0;
                c.alloc_slice_fill_with(64, || {
                    k += 1;
                    (i + k) as u32
                })
                .into_mut()
                .as_mut_ptr()
            }),
        ],
    );

    // An iterator of unknown length (a filter over 64): ns per slice.
    // bumpalo has no such method: its users collect into its `Vec`.
    run(
        "alloc_iter_filter_64",
        vec![
            batch!("fiberalloc", a, BATCH / 10, |a: &Arena, i: usize| a
                .alloc_iter((0..64u32).filter(|k| (k ^ i as u32) & 1 == 0))
                .as_mut_ptr()),
            batch!("bumpalo", b, BATCH / 10, |b: &bumpalo::Bump, i: usize| {
                let mut v = bumpalo::collections::Vec::new_in(b);
                v.extend((0..64u32).filter(|k| (k ^ i as u32) & 1 == 0));
                v.into_bump_slice_mut().as_mut_ptr()
            }),
            batch!("bump-scope", c, BATCH / 10, |c: &bump_scope::Bump, i: usize| c
                .alloc_iter((0..64u32).filter(|k| (k ^ i as u32) & 1 == 0))
                .into_mut()
                .as_mut_ptr()),
        ],
    );

    // `String::push_str` of 8-byte words into one string: ns per word.
    const WORDS: usize = 100_000;
    macro_rules! words {
        ($s:expr) => {{
            let t = Instant::now();
            let mut s = $s;
            for _ in 0..WORDS {
                s.push_str(black_box("a word, "));
            }
            black_box(s.as_str());
            drop(s);
            per_op(t, WORDS)
        }};
    }
    run(
        "string_push_str",
        vec![
            (
                "fiberalloc",
                Box::new(|| {
                    let r = words!(fiberalloc::collections::String::new_in(&a));
                    a.reset();
                    r
                }),
            ),
            (
                "bumpalo",
                Box::new(|| {
                    let r = words!(bumpalo::collections::String::new_in(&b));
                    b.reset();
                    r
                }),
            ),
            (
                "bump-scope",
                Box::new(|| {
                    let r = words!(BumpString::new_in(&c));
                    c.reset();
                    r
                }),
            ),
        ],
    );

    // `String::push` of one char at a time: ns per char.
    macro_rules! chars {
        ($s:expr) => {{
            let t = Instant::now();
            let mut s = $s;
            for i in 0..WORDS {
                s.push(black_box(if i % 7 == 0 { 'é' } else { 'x' }));
            }
            black_box(s.as_str());
            drop(s);
            per_op(t, WORDS)
        }};
    }
    run(
        "string_push_char",
        vec![
            (
                "fiberalloc",
                Box::new(|| {
                    let r = chars!(fiberalloc::collections::String::new_in(&a));
                    a.reset();
                    r
                }),
            ),
            (
                "bumpalo",
                Box::new(|| {
                    let r = chars!(bumpalo::collections::String::new_in(&b));
                    b.reset();
                    r
                }),
            ),
            (
                "bump-scope",
                Box::new(|| {
                    let r = chars!(BumpString::new_in(&c));
                    c.reset();
                    r
                }),
            ),
        ],
    );

    // `format!(in &arena, ..)` of a short line: ns per string.
    run(
        "format",
        vec![
            batch!("fiberalloc", a, BATCH, |a: &Arena, i: usize| {
                fiberalloc::format!(in a, "item {i}: {}", "ok").into_bump_str().as_ptr()
            }),
            batch!("bumpalo", b, BATCH, |b: &bumpalo::Bump, i: usize| {
                bumpalo::format!(in b, "item {i}: {}", "ok").into_bump_str().as_ptr()
            }),
            batch!("bump-scope", c, BATCH, |c: &bump_scope::Bump, i: usize| {
                bump_format!(in c, "item {i}: {}", "ok").into_str().as_ptr()
            }),
        ],
    );

    // allocator-api2's `Vec` over each arena (0.4's over blink-alloc, the
    // only one it implements), std's `Vec` as the floor: ns per byte.
    const PUSHES: usize = 1_000_000;
    macro_rules! api2 {
        ($v:expr) => {{
            let t = Instant::now();
            let mut v = $v;
            for i in 0..PUSHES {
                v.push(black_box(i as u8));
            }
            black_box(&v);
            drop(v);
            per_op(t, PUSHES)
        }};
    }
    let mut d = blink_alloc::BlinkAlloc::new();
    run(
        "vec_push_api2",
        vec![
            (
                "fiberalloc",
                Box::new(|| {
                    let r = api2!(allocator_api2::vec::Vec::<u8, _>::new_in(&a));
                    a.reset();
                    r
                }),
            ),
            (
                "bumpalo",
                Box::new(|| {
                    let r = api2!(allocator_api2::vec::Vec::<u8, _>::new_in(&b));
                    b.reset();
                    r
                }),
            ),
            (
                "bump-scope",
                Box::new(|| {
                    let r = api2!(allocator_api2::vec::Vec::<u8, _>::new_in(&c));
                    c.reset();
                    r
                }),
            ),
            (
                "blink-alloc",
                Box::new(|| {
                    let r = api2!(allocator_api2_04::vec::Vec::<u8, _>::new_in(&d));
                    d.reset();
                    r
                }),
            ),
            ("std", Box::new(|| api2!(Vec::<u8>::new()))),
        ],
    );

    // `reserve_exact(1)` + push through allocator-api2's `Vec`: growth in
    // place of the newest block, by the allocator's `grow` (bumpalo left
    // out: it bumps down and copies on every grow, quadratic). ns per byte.
    const EXACT: usize = 100_000;
    macro_rules! api2_exact {
        ($v:expr) => {{
            let t = Instant::now();
            let mut v = $v;
            for i in 0..EXACT {
                v.reserve_exact(1);
                v.push(black_box(i as u8));
            }
            black_box(&v);
            drop(v);
            per_op(t, EXACT)
        }};
    }
    run(
        "vec_reserve_exact_api2",
        vec![
            (
                "fiberalloc",
                Box::new(|| {
                    let r = api2_exact!(allocator_api2::vec::Vec::<u8, _>::new_in(&a));
                    a.reset();
                    r
                }),
            ),
            (
                "bump-scope",
                Box::new(|| {
                    let r = api2_exact!(allocator_api2::vec::Vec::<u8, _>::new_in(&c));
                    c.reset();
                    r
                }),
            ),
            (
                "blink-alloc",
                Box::new(|| {
                    let r = api2_exact!(allocator_api2_04::vec::Vec::<u8, _>::new_in(&d));
                    d.reset();
                    r
                }),
            ),
            ("std", Box::new(|| api2_exact!(Vec::<u8>::new()))),
        ],
    );
}
