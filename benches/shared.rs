//! `SharedArena` side by side with blink-alloc's `SyncBlinkAlloc`, a
//! `Mutex<bumpalo::Bump>` and a minimal `fetch_add` bump over one mapping
//! (the single-cursor reference), with 1 and 2 threads each making
//! 1,000,000 16-byte allocations; plus `Arena` single-threaded. Reported
//! per allocation, all threads together.
//!
//! Run: `cargo bench -p fiberalloc-benches --bench shared`

use core::alloc::Layout;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fiberalloc::{Arena, SharedArena};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

const PER_THREAD: usize = 1_000_000;
const LAYOUT: Layout = match Layout::from_size_align(16, 8) {
    Ok(l) => l,
    Err(_) => panic!("layout"),
};

/// Runs `work` on `threads` threads started together; returns the time
/// from the start signal until the last one is done.
fn timed<F: Fn(usize) + Sync>(threads: usize, work: F) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (barrier, work) = (&barrier, &work);
            s.spawn(move || {
                barrier.wait();
                work(t);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Scope end joins every thread.
        start
    })
    .elapsed()
}

/// The reference: one `fetch_add` per allocation over a single mapping
/// large enough for the whole run (no refill, no alignment step), with the
/// counter on a cache line of its own so that reading the bounds does not
/// contend with it (as fiberalloc's chunk header does).
struct FetchAddBump {
    base: Box<[u8]>,
    offset: Padded,
}

#[repr(align(128))]
struct Padded(AtomicUsize);

impl FetchAddBump {
    fn new(bytes: usize) -> Self {
        FetchAddBump { base: vec![0u8; bytes].into_boxed_slice(), offset: Padded(AtomicUsize::new(0)) }
    }
    #[inline(always)]
    fn alloc(&self, size: usize) -> *const u8 {
        let at = self.offset.0.fetch_add(size, Ordering::Relaxed);
        assert!(at + size <= self.base.len());
        self.base.as_ptr().wrapping_add(at)
    }
}

fn shared(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("shared_{threads}t"));
        g.throughput(Throughput::Elements((threads * PER_THREAD) as u64));
        g.sample_size(10);
        g.bench_function("fiberalloc", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut arena: SharedArena = SharedArena::new();
                for _ in 0..iters {
                    total += timed(threads, |_| {
                        for _ in 0..PER_THREAD {
                            black_box(arena.try_alloc_layout(LAYOUT).unwrap());
                        }
                    });
                    arena.reset();
                }
                total
            })
        });
        g.bench_function("fiberalloc-lease", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let arena: SharedArena = SharedArena::new();
                for _ in 0..iters {
                    total += timed(threads, |_| {
                        let lease = arena.lease();
                        for _ in 0..PER_THREAD {
                            black_box(lease.try_alloc_layout(LAYOUT).unwrap());
                        }
                    });
                    assert!(arena.try_reset());
                }
                total
            })
        });
        g.bench_function("blink-alloc-sync", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut arena = blink_alloc::SyncBlinkAlloc::new();
                for _ in 0..iters {
                    total += timed(threads, |_| {
                        for _ in 0..PER_THREAD {
                            black_box(arena.allocate(LAYOUT).unwrap());
                        }
                    });
                    arena.reset();
                }
                total
            })
        });
        g.bench_function("mutex-bumpalo", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut arena = Mutex::new(bumpalo::Bump::new());
                for _ in 0..iters {
                    total += timed(threads, |_| {
                        for _ in 0..PER_THREAD {
                            black_box(arena.lock().unwrap().alloc_layout(LAYOUT));
                        }
                    });
                    arena.get_mut().unwrap().reset();
                }
                total
            })
        });
        g.bench_function("reference-fetch-add", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut arena = FetchAddBump::new(2 * PER_THREAD * 16);
                for _ in 0..iters {
                    total += timed(threads, |_| {
                        for _ in 0..PER_THREAD {
                            black_box(arena.alloc(16));
                        }
                    });
                    *arena.offset.0.get_mut() = 0;
                }
                total
            })
        });
        if threads == 1 {
            g.bench_function("fiberalloc-arena-1t", |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut arena: Arena = Arena::new();
                    for _ in 0..iters {
                        let start = Instant::now();
                        for _ in 0..PER_THREAD {
                            black_box(arena.try_alloc_layout(LAYOUT).unwrap());
                        }
                        total += start.elapsed();
                        arena.reset();
                    }
                    total
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = fiberalloc_benches::criterion();
    targets = shared
}
criterion_main!(benches);
