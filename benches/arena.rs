//! `Arena` side by side with bumpalo, bump-scope, blink-alloc and std on
//! the System allocator. Each group is one row of the table in
//! `benches/README.md`; `scripts/bench-table.py arena` prints it.
//!
//! Run: `cargo bench -p fiberalloc-benches --bench arena`

use allocator_api2::vec::Vec as AVec;
use bump_scope::traits::BumpAllocatorTyped;
use core::alloc::Layout;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fiberalloc::Arena;
use fiberalloc_benches::runtime_sizes;
use std::hint::black_box;

/// Allocations per timed iteration of the per-allocation rows; the arena is
/// reset after each batch (the reset is inside the timing, amortised).
const BATCH: usize = 10_000;
/// Bytes pushed in the `Vec` row.
const PUSHES: usize = 1_000_000;
/// Bytes pushed in the `reserve_exact(1)` row: bumpalo copies the whole
/// vector on every push (quadratic), so 1,000,000 would take ~8 s per
/// iteration there.
const EXACT_PUSHES: usize = 100_000;

fn typed_u64(c: &mut Criterion) {
    let mut g = c.benchmark_group("typed_u64");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("fiberalloc", |b| {
        let mut a: Arena = Arena::new();
        b.iter(|| {
            for i in 0..BATCH {
                black_box(a.alloc(black_box(i as u64)));
            }
            a.reset();
        })
    });
    g.bench_function("bumpalo", |b| {
        let mut a = bumpalo::Bump::new();
        b.iter(|| {
            for i in 0..BATCH {
                black_box(a.alloc(black_box(i as u64)));
            }
            a.reset();
        })
    });
    g.bench_function("bump-scope", |b| {
        let mut a: bump_scope::Bump = bump_scope::Bump::new();
        b.iter(|| {
            for i in 0..BATCH {
                black_box(a.alloc(black_box(i as u64)).into_mut());
            }
            a.reset();
        })
    });
    g.bench_function("blink-alloc", |b| {
        let mut a = blink_alloc::Blink::new();
        b.iter(|| {
            for i in 0..BATCH {
                black_box(a.put(black_box(i as u64)));
            }
            a.reset();
        })
    });
    g.bench_function("std", |b| {
        let mut keep: Vec<Box<u64>> = Vec::with_capacity(BATCH);
        b.iter(|| {
            for i in 0..BATCH {
                keep.push(Box::new(black_box(i as u64)));
            }
            keep.clear();
        })
    });
    g.finish();
}

fn runtime_layout(c: &mut Criterion) {
    let layouts: Vec<Layout> =
        runtime_sizes(BATCH).into_iter().map(|s| Layout::from_size_align(s, 8).unwrap()).collect();
    let layouts = &layouts;
    let mut g = c.benchmark_group("runtime_layout");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("fiberalloc", |b| {
        let mut a: Arena = Arena::new();
        b.iter(|| {
            for &l in layouts {
                black_box(a.alloc_layout(black_box(l)));
            }
            a.reset();
        })
    });
    g.bench_function("bumpalo", |b| {
        let mut a = bumpalo::Bump::new();
        b.iter(|| {
            for &l in layouts {
                black_box(a.alloc_layout(black_box(l)));
            }
            a.reset();
        })
    });
    g.bench_function("bump-scope", |b| {
        let mut a: bump_scope::Bump = bump_scope::Bump::new();
        b.iter(|| {
            for &l in layouts {
                black_box(a.allocate_layout(black_box(l)));
            }
            a.reset();
        })
    });
    g.bench_function("blink-alloc", |b| {
        let mut a = blink_alloc::BlinkAlloc::new();
        b.iter(|| {
            for &l in layouts {
                black_box(a.allocate(black_box(l)).unwrap());
            }
            a.reset();
        })
    });
    g.bench_function("std", |b| {
        let mut keep: Vec<(*mut u8, Layout)> = Vec::with_capacity(BATCH);
        b.iter(|| {
            for &l in layouts {
                // SAFETY: the layouts are non-zero-sized.
                keep.push((unsafe { std::alloc::alloc(black_box(l)) }, l));
            }
            for (p, l) in keep.drain(..) {
                // SAFETY: allocated just above with this layout.
                unsafe { std::alloc::dealloc(p, l) };
            }
        })
    });
    g.finish();
}

/// Pushes `PUSHES` bytes, optionally with `reserve_exact(1)` before each.
macro_rules! push_bytes {
    ($v:expr, $exact:expr) => {{
        let mut v = $v;
        for i in 0..if $exact { EXACT_PUSHES } else { PUSHES } {
            if $exact {
                v.reserve_exact(1);
            }
            v.push(black_box(i as u8));
        }
        black_box(&v);
    }};
}

/// Each contender with its own vector: fiberalloc's, bumpalo's and
/// bump-scope's own, allocator-api2 0.4's for blink-alloc, std's.
fn vec_push(c: &mut Criterion, exact: bool) {
    let name = if exact { "vec_push_reserve_exact" } else { "vec_push" };
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(if exact { EXACT_PUSHES } else { PUSHES } as u64));
    if exact {
        // bumpalo's quadratic growth makes one iteration ~0.1 s.
        g.sample_size(10);
    }
    g.bench_function("fiberalloc", |b| {
        let mut a: Arena = Arena::new();
        b.iter(|| {
            push_bytes!(fiberalloc::collections::Vec::<u8>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("bumpalo", |b| {
        let mut a = bumpalo::Bump::new();
        b.iter(|| {
            push_bytes!(bumpalo::collections::Vec::<u8>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("bump-scope", |b| {
        let mut a: bump_scope::Bump = bump_scope::Bump::new();
        b.iter(|| {
            push_bytes!(bump_scope::BumpVec::<u8, _>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("blink-alloc", |b| {
        let mut a = blink_alloc::BlinkAlloc::new();
        b.iter(|| {
            push_bytes!(allocator_api2_04::vec::Vec::<u8, _>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("std", |b| b.iter(|| push_bytes!(Vec::<u8>::new(), exact)));
    g.finish();
}

/// The `vec_push` row with one collection for every contender: allocator-api2
/// 0.2's `Vec` (0.4's for blink-alloc, which implements only that one), so
/// that the row compares allocators rather than collections. (With any arena
/// under it, allocator-api2's `Vec::push` reloads the length after every
/// element store: its growth path takes `&mut self`, so the vector's address
/// escapes. That costs about 0.3 ns per byte against std's `Vec`.)
fn vec_push_same_collection(c: &mut Criterion) {
    let exact = false;
    let mut g = c.benchmark_group("vec_push_api2");
    g.throughput(Throughput::Elements(PUSHES as u64));
    g.bench_function("fiberalloc", |b| {
        let mut a: Arena = Arena::new();
        b.iter(|| {
            push_bytes!(AVec::<u8, _>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("bumpalo", |b| {
        let mut a = bumpalo::Bump::new();
        b.iter(|| {
            push_bytes!(AVec::<u8, _>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("bump-scope", |b| {
        let mut a: bump_scope::Bump = bump_scope::Bump::new();
        b.iter(|| {
            push_bytes!(AVec::<u8, _>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("blink-alloc", |b| {
        let mut a = blink_alloc::BlinkAlloc::new();
        b.iter(|| {
            push_bytes!(allocator_api2_04::vec::Vec::<u8, _>::new_in(&a), exact);
            a.reset();
        })
    });
    g.bench_function("std", |b| b.iter(|| push_bytes!(AVec::<u8>::new(), exact)));
    g.finish();
}

fn vec_pushes(c: &mut Criterion) {
    vec_push(c, false);
    vec_push(c, true);
    vec_push_same_collection(c);
}

/// Bytes allocated (in 1 KiB blocks) before the timed reset.
const RESET_FILL: usize = 1 << 20;

/// Times `reset` of an arena made by `$new` and filled with 1 MiB through
/// `$fill` (one 1 KiB block per call), in the steady state: filled and
/// reset twice before the timed fill.
macro_rules! bench_reset {
    ($g:expr, $name:expr, $new:expr, |$a:ident| $fill:expr) => {
        $g.bench_function($name, |b| {
            let setup = || {
                let mut $a = $new;
                for round in 0..3 {
                    for _ in 0..RESET_FILL / 1024 {
                        $fill;
                    }
                    if round < 2 {
                        $a.reset();
                    }
                }
                $a
            };
            b.iter_batched_ref(setup, |a| a.reset(), BatchSize::SmallInput)
        })
    };
}

fn reset_after_1mib(c: &mut Criterion) {
    let mut g = c.benchmark_group("reset_1mib");
    bench_reset!(g, "fiberalloc", Arena::new(), |a| a.alloc([0u8; 1024]));
    bench_reset!(g, "bumpalo", bumpalo::Bump::new(), |a| a.alloc([0u8; 1024]));
    bench_reset!(g, "bump-scope", bump_scope::Bump::<bump_scope::alloc::Global>::new(), |a| {
        let _ = a.alloc([0u8; 1024]).into_mut();
    });
    bench_reset!(g, "blink-alloc", blink_alloc::Blink::new(), |a| a.put([0u8; 1024]));
    g.finish();
}

fn warm_up(c: &mut Criterion) {
    let mut g = c.benchmark_group("warm_up");
    g.bench_function("fiberalloc", |b| {
        b.iter(|| {
            let a: Arena = Arena::new();
            black_box(a.alloc(black_box(1u64)));
        })
    });
    g.bench_function("bumpalo", |b| {
        b.iter(|| {
            let a = bumpalo::Bump::new();
            black_box(a.alloc(black_box(1u64)));
        })
    });
    g.bench_function("bump-scope", |b| {
        b.iter(|| {
            let a: bump_scope::Bump = bump_scope::Bump::new();
            black_box(a.alloc(black_box(1u64)).into_mut());
        })
    });
    g.bench_function("blink-alloc", |b| {
        b.iter(|| {
            let a = blink_alloc::Blink::new();
            black_box(a.put(black_box(1u64)));
        })
    });
    g.bench_function("std", |b| b.iter(|| black_box(Box::new(black_box(1u64)))));
    g.finish();
}

/// One criterion group per bumpalo-API method, each contender timing a
/// batch of `$n` calls of `$body` on its own arena, reset after the batch
/// (the same bodies as `benches/interleaved.rs`'s rows).
macro_rules! api_row {
    ($c:expr, $row:expr, $n:expr, {$($name:expr => $new:expr, |$a:ident, $i:ident| $body:expr;)*}) => {{
        let mut g = $c.benchmark_group($row);
        g.throughput(Throughput::Elements($n as u64));
        $(
            g.bench_function($name, |b| {
                let mut $a = $new;
                b.iter(|| {
                    for $i in 0..$n {
                        let $i = black_box($i);
                        black_box($body);
                    }
                    $a.reset();
                })
            });
        )*
        g.finish();
    }};
}

fn bumpalo_api(c: &mut Criterion) {
    use bump_scope::{bump_format, BumpString};
    api_row!(c, "alloc_with_256b", BATCH, {
        "fiberalloc" => Arena::new(), |a, i| a.alloc_with(|| [i as u64; 32]) as *mut _;
        "bumpalo" => bumpalo::Bump::new(), |a, i| a.alloc_with(|| [i as u64; 32]) as *mut _;
        "bump-scope" => bump_scope::Bump::<bump_scope::alloc::Global>::new(), |a, i| a.alloc_with(|| [i as u64; 32]).into_mut() as *mut _;
    });
    api_row!(c, "slice_fill_with_64", BATCH / 10, {
        "fiberalloc" => Arena::new(), |a, i| a.alloc_slice_fill_with(64, |k| (i + k) as u32).as_mut_ptr();
        "bumpalo" => bumpalo::Bump::new(), |a, i| a.alloc_slice_fill_with(64, |k| (i + k) as u32).as_mut_ptr();
        "bump-scope" => bump_scope::Bump::<bump_scope::alloc::Global>::new(), |a, i| {
            let mut k = 0;
            a.alloc_slice_fill_with(64, || { k += 1; (i + k) as u32 }).into_mut().as_mut_ptr()
        };
    });
    api_row!(c, "alloc_iter_filter_64", BATCH / 10, {
        "fiberalloc" => Arena::new(), |a, i| a.alloc_iter((0..64u32).filter(|k| (k ^ i as u32) & 1 == 0)).as_mut_ptr();
        "bumpalo" => bumpalo::Bump::new(), |a, i| {
            let mut v = bumpalo::collections::Vec::new_in(&a);
            v.extend((0..64u32).filter(|k| (k ^ i as u32) & 1 == 0));
            v.into_bump_slice_mut().as_mut_ptr()
        };
        "bump-scope" => bump_scope::Bump::<bump_scope::alloc::Global>::new(), |a, i| a.alloc_iter((0..64u32).filter(|k| (k ^ i as u32) & 1 == 0)).into_mut().as_mut_ptr();
    });
    api_row!(c, "format", BATCH, {
        "fiberalloc" => Arena::new(), |a, i| fiberalloc::format!(in &a, "item {i}: {}", "ok").into_bump_str().as_ptr();
        "bumpalo" => bumpalo::Bump::new(), |a, i| bumpalo::format!(in &a, "item {i}: {}", "ok").into_bump_str().as_ptr();
        "bump-scope" => bump_scope::Bump::<bump_scope::alloc::Global>::new(), |a, i| bump_format!(in &a, "item {i}: {}", "ok").into_str().as_ptr();
    });
    // One string per iteration, 100,000 words pushed: ns per word.
    const WORDS: usize = 100_000;
    let mut g = c.benchmark_group("string_push_str");
    g.throughput(Throughput::Elements(WORDS as u64));
    macro_rules! words {
        ($g:expr, $name:expr, $new:expr, |$a:ident| $s:expr) => {
            $g.bench_function($name, |b| {
                let mut $a = $new;
                b.iter(|| {
                    let mut s = $s;
                    for _ in 0..WORDS {
                        s.push_str(black_box("a word, "));
                    }
                    black_box(s.as_str());
                    drop(s);
                    $a.reset();
                })
            })
        };
    }
    words!(g, "fiberalloc", Arena::new(), |a| fiberalloc::collections::String::new_in(&a));
    words!(g, "bumpalo", bumpalo::Bump::new(), |a| bumpalo::collections::String::new_in(&a));
    words!(g, "bump-scope", bump_scope::Bump::<bump_scope::alloc::Global>::new(), |a| BumpString::new_in(&a));
    g.finish();
}

criterion_group! {
    name = benches;
    config = fiberalloc_benches::criterion();
    targets = typed_u64, runtime_layout, vec_pushes, reset_after_1mib, warm_up, bumpalo_api
}
criterion_main!(benches);
