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
    /// rewind it). Counted only under policies with `EXACT_STATS`
    /// (`Safe`, `Debug`); always 0 under `Fast`.
    pub allocation_count: u64,
    /// Bytes the cursor passed over that hold no live block: alignment
    /// padding and rounding to the policy's `MIN_ALIGN` (under `Safe` and
    /// `Debug`), and blocks freed or moved that were not the last one (a
    /// bump arena cannot reuse them).
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
