//! Shared helpers for the benches: the criterion configuration every bench
//! uses, and the sizes of the runtime-layout row.

use criterion::Criterion;
use std::time::Duration;

/// Criterion settings for a shared, noisy 2-core machine: short warm-up,
/// enough samples for a stable median, a few seconds per contender.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

/// `n` pseudo-random sizes in 24..=200 (a fixed xorshift sequence, the same
/// for every contender).
pub fn runtime_sizes(n: usize) -> Vec<usize> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            24 + (x % 177) as usize
        })
        .collect()
}
