//! The cost of the `Safe` and `Debug` policies against `Fast` on the arena
//! rows: typed allocations, runtime layouts, pushes through allocator-api2's
//! `Vec` (so growth and deallocation) and a reset after 1 MiB. Under `Safe`
//! every block gets a 16-byte header and a canary, and reset checks and
//! poisons; `Debug` adds leak flags and the log hook (no hook installed
//! here: its cost is one atomic load per allocation).
//!
//! Run: `cargo bench -p fiberalloc-benches --bench policies`

use allocator_api2::vec::Vec as AVec;
use core::alloc::Layout;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fiberalloc::policy::{Debug, Fast, Policy, Safe};
use fiberalloc::Arena;
use fiberalloc_benches::runtime_sizes;
use std::hint::black_box;

const BATCH: usize = 10_000;
const PUSHES: usize = 100_000;

fn typed<P: Policy>(b: &mut criterion::Bencher) {
    let mut a = Arena::<P>::default();
    b.iter(|| {
        for i in 0..BATCH {
            black_box(a.alloc(black_box(i as u64)));
        }
        a.reset();
    })
}

fn runtime<P: Policy>(b: &mut criterion::Bencher, layouts: &[Layout]) {
    let mut a = Arena::<P>::default();
    b.iter(|| {
        for &l in layouts {
            black_box(a.alloc_layout(black_box(l)));
        }
        a.reset();
    })
}

fn push<P: Policy>(b: &mut criterion::Bencher) {
    let mut a = Arena::<P>::default();
    b.iter(|| {
        {
            let mut v = AVec::<u8, _>::new_in(&a);
            for i in 0..PUSHES {
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        a.reset();
    })
}

fn reset<P: Policy>(b: &mut criterion::Bencher) {
    let setup = || {
        let a = Arena::<P>::default();
        for _ in 0..1024 {
            a.alloc([0u8; 1024]);
        }
        a
    };
    b.iter_batched_ref(setup, |a| a.reset(), BatchSize::SmallInput)
}

fn policies(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_typed_u64");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("Fast", typed::<Fast>);
    g.bench_function("Safe", typed::<Safe>);
    g.bench_function("Debug", typed::<Debug>);
    g.finish();

    let layouts: Vec<Layout> =
        runtime_sizes(BATCH).into_iter().map(|s| Layout::from_size_align(s, 8).unwrap()).collect();
    let mut g = c.benchmark_group("policy_runtime_layout");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("Fast", |b| runtime::<Fast>(b, &layouts));
    g.bench_function("Safe", |b| runtime::<Safe>(b, &layouts));
    g.bench_function("Debug", |b| runtime::<Debug>(b, &layouts));
    g.finish();

    let mut g = c.benchmark_group("policy_vec_push_api2");
    g.throughput(Throughput::Elements(PUSHES as u64));
    g.bench_function("Fast", push::<Fast>);
    g.bench_function("Safe", push::<Safe>);
    g.bench_function("Debug", push::<Debug>);
    g.finish();

    let mut g = c.benchmark_group("policy_reset_1mib");
    g.bench_function("Fast", reset::<Fast>);
    g.bench_function("Safe", reset::<Safe>);
    g.bench_function("Debug", reset::<Debug>);
    g.finish();
}

criterion_group! {
    name = benches;
    config = fiberalloc_benches::criterion();
    targets = policies
}
criterion_main!(benches);
