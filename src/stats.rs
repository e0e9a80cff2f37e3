//! Counters an arena keeps about itself.

/// A snapshot of an arena's counters.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes handed out since the last reset and not given back (requested
    /// sizes; `deallocate` and in-place shrink subtract, scope exit rewinds).
    /// Exact under `Safe` and `Debug`; under `Fast`, whose fast path keeps no
    /// counters, it also includes each block's rounding up to `MIN_ALIGN`
    /// and its alignment padding.
    pub allocated_bytes: usize,
    /// The highest `allocated_bytes` seen since the arena was made.
    pub peak_bytes: usize,
    /// Allocations made since the last reset (a scope exit does not
    /// rewind it), when [`allocations_counted`](Self::allocations_counted)
    /// says they are. `Arena` counts every block handed out, under every
    /// policy (growth in place is not a new allocation; a move is).
    /// `SharedArena` does not count (see its `stats`): this is 0 there and
    /// `allocations_counted` is false.
    pub allocation_count: u64,
    /// Whether `allocation_count` was counted: true for `Arena`, false for
    /// `SharedArena`, so that "not counted" never reads as "none". The
    /// `Display` table prints "allocations not counted" then.
    pub allocations_counted: bool,
    /// Bytes the cursor passed over that hold no live block: alignment
    /// padding and rounding to the policy's `MIN_ALIGN` (under `Safe` and
    /// `Debug`, with each block's 16-byte header and its canary), and
    /// blocks freed or moved that were not the last one (a bump arena
    /// cannot reuse them).
    pub padding_bytes: usize,
    /// Bytes mapped for this arena, chunk headers included, guards excluded.
    pub reserved_bytes: usize,
    /// Chunks the arena holds (in use or kept for reuse).
    pub chunk_count: usize,
}

impl Stats {
    /// The share of reserved data space that holds no live block:
    /// `1 - allocated / (allocated + padding + unused)`, where `unused` is
    /// the space left in the chunks the arena holds. 0 for an arena that
    /// holds nothing; near 0 means the chunks are well used, near 1 means
    /// most mapped memory is padding, dead blocks or never reached.
    pub fn fragmentation(&self) -> f64 {
        let denominator = self.reserved_bytes.max(self.allocated_bytes + self.padding_bytes);
        if denominator == 0 {
            return 0.0;
        }
        1.0 - self.allocated_bytes as f64 / denominator as f64
    }
}

/// Writes `bytes` with a binary unit (B, KiB, MiB, GiB), one decimal.
pub(crate) fn fmt_bytes(f: &mut core::fmt::Formatter<'_>, bytes: usize) -> core::fmt::Result {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        write!(f, "{bytes} B")
    } else {
        write!(f, "{v:.1} {}", UNITS[u])
    }
}

/// A small table:
///
/// ```text
/// allocated      12.3 KiB  (peak 40.0 KiB, 120 allocations)
/// padding         1.2 KiB
/// reserved       64.0 KiB  in 2 chunks
/// fragmentation  79.0%
/// ```
impl core::fmt::Display for Stats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        struct B(usize);
        impl core::fmt::Display for B {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                fmt_bytes(f, self.0)
            }
        }
        write!(f, "allocated      {}  (peak {}, ", B(self.allocated_bytes), B(self.peak_bytes))?;
        if self.allocations_counted {
            writeln!(f, "{} allocations)", self.allocation_count)?;
        } else {
            writeln!(f, "allocations not counted)")?;
        }
        writeln!(f, "padding        {}", B(self.padding_bytes))?;
        writeln!(f, "reserved       {}  in {} chunks", B(self.reserved_bytes), self.chunk_count)?;
        write!(f, "fragmentation  {:.1}%", self.fragmentation() * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_a_small_table() {
        let s = Stats {
            allocated_bytes: 12_595,
            peak_bytes: 40 << 10,
            allocation_count: 120,
            allocations_counted: true,
            padding_bytes: 1_229,
            reserved_bytes: 64 << 10,
            chunk_count: 2,
        };
        assert_eq!(
            s.to_string(),
            "allocated      12.3 KiB  (peak 40.0 KiB, 120 allocations)\n\
             padding        1.2 KiB\n\
             reserved       64.0 KiB  in 2 chunks\n\
             fragmentation  80.8%"
        );
        assert_eq!(Stats::default().to_string().lines().last(), Some("fragmentation  0.0%"));
        let uncounted = Stats { allocations_counted: false, ..s };
        assert!(uncounted
            .to_string()
            .starts_with("allocated      12.3 KiB  (peak 40.0 KiB, allocations not counted)"));
    }
}
