//! The workloads of `scripts/callgrind.sh`, for fiberalloc and its peers:
//! `probe CONTENDER ROW N` runs N operations of ROW (`typed`: an `alloc(u64)`;
//! `warm`: new arena + one allocation + drop; `exact`: `reserve_exact(1)` +
//! push on each allocator's own vector; `push`: a plain push on it; `runtime`:
//! an allocation of a runtime layout from the sizes of the criterion row;
//! `stackpool`: a `StackPool` get and put, fiberalloc only;
//! `fiberalloc-safe` and `fiberalloc-debug` run `typed` and `exact` under
//! those policies).
//! The script runs each twice with
//! different N and divides the difference, so start-up costs cancel out.
use fiberalloc::Arena;
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (who, row) = (args[0].as_str(), args[1].as_str());
    let n: usize = args[2].parse().expect("N");
    match (who, row) {
        ("fiberalloc", "typed") => {
            let a = Arena::with_capacity(n * 8 + 64);
            for i in 0..n {
                black_box(a.alloc(black_box(i as u64)));
            }
        }
        ("bumpalo", "typed") => {
            let a = bumpalo::Bump::with_capacity(n * 8 + 64);
            for i in 0..n {
                black_box(a.alloc(black_box(i as u64)));
            }
        }
        ("bump-scope", "typed") => {
            let a: bump_scope::Bump = bump_scope::Bump::with_size(n * 8 + 4096);
            for i in 0..n {
                black_box(a.alloc(black_box(i as u64)).into_mut());
            }
        }
        ("blink-alloc", "typed") => {
            let a = blink_alloc::Blink::with_chunk_size(n * 8 + 4096);
            for i in 0..n {
                black_box(a.put(black_box(i as u64)));
            }
        }
        ("fiberalloc", "stackpool") => {
            let pool = fiberalloc::stack::StackPool::new(64 << 10);
            drop(pool.get().unwrap());
            for _ in 0..n {
                drop(black_box(pool.get().unwrap()));
            }
        }
        ("fiberalloc", "warm") => {
            for i in 0..n {
                let a: Arena = Arena::new();
                black_box(a.alloc(black_box(i as u64)));
            }
        }
        ("bumpalo", "warm") => {
            for i in 0..n {
                let a = bumpalo::Bump::new();
                black_box(a.alloc(black_box(i as u64)));
            }
        }
        ("bump-scope", "warm") => {
            for i in 0..n {
                let a: bump_scope::Bump = bump_scope::Bump::new();
                black_box(a.alloc(black_box(i as u64)).into_mut());
            }
        }
        ("blink-alloc", "warm") => {
            for i in 0..n {
                let a = blink_alloc::Blink::new();
                black_box(a.put(black_box(i as u64)));
            }
        }
        ("fiberalloc", "exact") => {
            let a = Arena::with_capacity(n + 64);
            let mut v = fiberalloc::collections::Vec::<u8>::new_in(&a);
            for i in 0..n {
                v.reserve_exact(1);
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        ("bump-scope", "exact") => {
            let a: bump_scope::Bump = bump_scope::Bump::with_size(n + 4096);
            let mut v = bump_scope::BumpVec::<u8, _>::new_in(&a);
            for i in 0..n {
                v.reserve_exact(1);
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        ("blink-alloc", "exact") => {
            let a = blink_alloc::BlinkAlloc::with_chunk_size(2 * n + 4096);
            let mut v = allocator_api2_04::vec::Vec::<u8, _>::new_in(&a);
            for i in 0..n {
                v.reserve_exact(1);
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        ("fiberalloc", "push") => {
            let a = Arena::with_capacity(2 * n + 64);
            let mut v = fiberalloc::collections::Vec::<u8>::new_in(&a);
            for i in 0..n {
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        ("bumpalo", "push") => {
            let a = bumpalo::Bump::with_capacity(2 * n + 64);
            let mut v = bumpalo::collections::Vec::<u8>::new_in(&a);
            for i in 0..n {
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        ("bump-scope", "push") => {
            let a: bump_scope::Bump = bump_scope::Bump::with_size(2 * n + 4096);
            let mut v = bump_scope::BumpVec::<u8, _>::new_in(&a);
            for i in 0..n {
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        ("blink-alloc", "push") => {
            let a = blink_alloc::BlinkAlloc::with_chunk_size(2 * n + 4096);
            let mut v = allocator_api2_04::vec::Vec::<u8, _>::new_in(&a);
            for i in 0..n {
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        ("fiberalloc", "runtime") => {
            let layouts = layouts(n);
            let a = Arena::with_capacity(n * 208 + 64);
            for &l in &layouts {
                black_box(a.alloc_layout(black_box(l)));
            }
        }
        ("bumpalo", "runtime") => {
            let layouts = layouts(n);
            let a = bumpalo::Bump::with_capacity(n * 208 + 64);
            for &l in &layouts {
                black_box(a.alloc_layout(black_box(l)));
            }
        }
        ("bump-scope", "runtime") => {
            use bump_scope::traits::BumpAllocatorTyped;
            let layouts = layouts(n);
            let a: bump_scope::Bump = bump_scope::Bump::with_size(n * 208 + 4096);
            for &l in &layouts {
                black_box(a.allocate_layout(black_box(l)));
            }
        }
        ("blink-alloc", "runtime") => {
            let layouts = layouts(n);
            let a = blink_alloc::BlinkAlloc::with_chunk_size(n * 208 + 4096);
            for &l in &layouts {
                black_box(a.allocate(black_box(l)).unwrap());
            }
        }
        (_, "runtime-baseline") => {
            for &l in &layouts(n) {
                black_box(black_box(l));
            }
        }
        ("fiberalloc-safe", "typed") => typed_under::<fiberalloc::policy::Safe>(n),
        ("fiberalloc-debug", "typed") => typed_under::<fiberalloc::policy::Debug>(n),
        ("fiberalloc-safe", "exact") => exact_under::<fiberalloc::policy::Safe>(n),
        ("fiberalloc-debug", "exact") => exact_under::<fiberalloc::policy::Debug>(n),
        _ => eprintln!("unknown: {who} {row} (bumpalo has no in-place exact growth: skipped)"),
    }
}

/// The runtime layouts of the criterion row (sizes 24–200, align 8).
fn layouts(n: usize) -> Vec<core::alloc::Layout> {
    fiberalloc_benches::runtime_sizes(n)
        .into_iter()
        .map(|s| core::alloc::Layout::from_size_align(s, 8).unwrap())
        .collect()
}

/// The `typed` row under another policy (its header and canary included:
/// 24 more bytes a block).
fn typed_under<P: fiberalloc::policy::Policy>(n: usize) {
    let a = Arena::with_capacity_and_policy(n * 32 + 64, P::default());
    for i in 0..n {
        black_box(a.alloc(black_box(i as u64)));
    }
}

/// The `exact` row under another policy: in-place growth moves the canary.
fn exact_under<P: fiberalloc::policy::Policy>(n: usize) {
    let a = Arena::with_capacity_and_policy(n + 4096, P::default());
    let mut v = fiberalloc::collections::Vec::<u8, P>::new_in(&a);
    for i in 0..n {
        v.reserve_exact(1);
        v.push(black_box(i as u8));
    }
    black_box(&v);
}
