//! The workload of `scripts/callgrind.sh`: `typed N` makes N `u64`
//! allocations, `warm N` makes N arenas with one allocation each, `exact N`
//! pushes N bytes with `reserve_exact(1)` before each. The
//! script runs it twice with different N and divides the difference, so
//! start-up costs cancel out.
use fiberalloc::Arena;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    match what.as_str() {
        "typed" => {
            // Map enough up front that the loop never takes the slow path.
            let a = Arena::<fiberalloc::policy::Fast>::with_capacity(n * 8 + 64);
            for i in 0..n {
                black_box(a.alloc(black_box(i as u64)));
            }
        }
        "warm" => {
            for i in 0..n {
                let a: Arena = Arena::new();
                black_box(a.alloc(black_box(i as u64)));
            }
        }
        "exact" => {
            // Vec<u8> grown with reserve_exact(1) before each push: one
            // in-place grow per push (the arena has room for all of them).
            let a = Arena::<fiberalloc::policy::Fast>::with_capacity(n + 64);
            let mut v = fiberalloc::collections::Vec::<u8>::new_in(&a);
            for i in 0..n {
                v.reserve_exact(1);
                v.push(black_box(i as u8));
            }
            black_box(&v);
        }
        _ => eprintln!("usage: callgrind_probe typed|warm|exact N"),
    }
}
