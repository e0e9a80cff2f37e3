//! Fiber stacks side by side with corosensei's `DefaultStack`, in one
//! process. Each group is one row of the stacks table in
//! `benches/README.md`; `scripts/bench-table.py stack_ coroutine_` prints
//! it.
//!
//! - `stack_new_drop`: map a 64 KiB guarded stack and unmap it
//!   (`DefaultStack::new` vs `FiberStack::new`; neither touches the pages).
//! - `stack_pool_get_put`: take a stack from a warm `StackPool` and give it
//!   back (against the cheapest alternative, keeping one `DefaultStack` in
//!   an `Option` and taking it out and back).
//! - `coroutine_*`: a corosensei coroutine created, resumed once (it
//!   suspends), resumed again (it returns): on a fresh `DefaultStack`
//!   (`coroutine_fresh/corosensei`) against a fresh `FiberStack`
//!   (`coroutine_fresh/fiberalloc`); on a `DefaultStack` reused with
//!   `into_stack` (`coroutine_reused/corosensei`) against a `PooledStack`
//!   taken from and given back to a `StackPool` each time
//!   (`coroutine_reused/fiberalloc`), and a `FiberStack` reused with
//!   `into_stack` (`coroutine_reused/fiberalloc-into_stack`).
//!
//! Run: `cargo bench -p fiberalloc-benches --bench stacks`

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use criterion::{criterion_group, criterion_main, Criterion};
use fiberalloc::stack::{FiberStack, StackPool};
use std::hint::black_box;

const SIZE: usize = 64 << 10;

fn body(y: &Yielder<u64, u64>, x: u64) -> u64 {
    let back = y.suspend(x + 1);
    back * 2
}

fn drive<S: corosensei::stack::Stack + 'static>(stack: S) -> S {
    let mut co = Coroutine::with_stack(stack, body);
    match co.resume(black_box(1)) {
        CoroutineResult::Yield(v) => assert_eq!(v, 2),
        CoroutineResult::Return(_) => unreachable!(),
    }
    match co.resume(black_box(5)) {
        CoroutineResult::Return(v) => assert_eq!(v, 10),
        CoroutineResult::Yield(_) => unreachable!(),
    }
    co.into_stack()
}

fn new_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack_new_drop");
    g.bench_function("corosensei", |b| b.iter(|| drop(black_box(DefaultStack::new(SIZE).unwrap()))));
    g.bench_function("fiberalloc", |b| b.iter(|| drop(black_box(FiberStack::new(SIZE).unwrap()))));
    g.finish();
}

fn pool_get_put(c: &mut Criterion) {
    let mut g = c.benchmark_group("stack_pool_get_put");
    g.bench_function("corosensei", |b| {
        // corosensei has no pool: the cheapest reuse is keeping a stack.
        let mut slot = Some(DefaultStack::new(SIZE).unwrap());
        b.iter(|| {
            let s = slot.take().unwrap();
            slot = Some(black_box(s));
        })
    });
    g.bench_function("fiberalloc", |b| {
        let pool = StackPool::new(SIZE);
        drop(pool.get().unwrap());
        b.iter(|| drop(black_box(pool.get().unwrap())))
    });
    g.finish();
}

fn coroutine(c: &mut Criterion) {
    let mut g = c.benchmark_group("coroutine_fresh");
    g.bench_function("corosensei", |b| b.iter(|| drop(drive(DefaultStack::new(SIZE).unwrap()))));
    g.bench_function("fiberalloc", |b| b.iter(|| drop(drive(FiberStack::new(SIZE).unwrap()))));
    g.finish();

    let mut g = c.benchmark_group("coroutine_reused");
    g.bench_function("corosensei", |b| {
        let mut slot = Some(DefaultStack::new(SIZE).unwrap());
        b.iter(|| slot = Some(drive(slot.take().unwrap())))
    });
    g.bench_function("fiberalloc", |b| {
        let pool = StackPool::new(SIZE);
        drop(drive(pool.get().unwrap()));
        b.iter(|| drop(drive(pool.get().unwrap())))
    });
    g.bench_function("fiberalloc-into_stack", |b| {
        let mut slot = Some(FiberStack::new(SIZE).unwrap());
        b.iter(|| slot = Some(drive(slot.take().unwrap())))
    });
    g.finish();
}

criterion_group!(benches, new_drop, pool_get_put, coroutine);
criterion_main!(benches);
