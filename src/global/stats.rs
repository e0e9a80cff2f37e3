//! Counters: each thread's own, the registry that sums them, and the
//! public snapshot [`GlobalStats`].

use super::chunk::{CHUNKS_MAPPED, CHUNKS_PINNED, CHUNK_SIZE, FREE, HEADER_SIZE};
use super::huge::{CHUNKS_HUGE, HUGE_SLOW};
use super::large::LARGE_MAPPED;
use super::thread::with_local;
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Ordering, SpinLock};
use core::ptr;

/// One thread's counters: written only by that thread (plain loads and
/// stores, no read-modify-write), read by [`GlobalArena::stats`](super::GlobalArena::stats) from any
/// thread while the thread is registered.
pub(super) struct Counters {
    pub(super) allocs: AtomicU64,
    pub(super) frees: AtomicU64,
    pub(super) bytes_in: AtomicUsize,
    pub(super) bytes_out: AtomicUsize,
    /// The next registered thread's counters (under [`REGISTRY`]'s lock).
    pub(super) next: AtomicPtr<Counters>,
}

impl Counters {
    pub(super) const fn new() -> Self {
        Counters {
            allocs: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            bytes_in: AtomicUsize::new(0),
            bytes_out: AtomicUsize::new(0),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    // Relaxed loads and stores: one writer; readers want a recent value,
    // not an ordering.
    #[inline(always)]
    pub(super) fn on_alloc(&self, size: usize) {
        self.allocs.store(self.allocs.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.bytes_in.store(self.bytes_in.load(Ordering::Relaxed).wrapping_add(size), Ordering::Relaxed);
    }

    #[inline(always)]
    pub(super) fn on_free(&self, size: usize) {
        self.frees.store(self.frees.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.bytes_out.store(self.bytes_out.load(Ordering::Relaxed).wrapping_add(size), Ordering::Relaxed);
    }

    /// One counter moves: the difference (wrapping, as every sum of these
    /// counters is) goes into `bytes_in`.
    #[inline(always)]
    pub(super) fn on_resize(&self, old: usize, new: usize) {
        let moved = new.wrapping_sub(old);
        self.bytes_in.store(self.bytes_in.load(Ordering::Relaxed).wrapping_add(moved), Ordering::Relaxed);
    }

    /// Adds these counters to `into` atomically (many writers).
    pub(super) fn fold_into(&self, into: &Counters) {
        // Relaxed: statistics.
        into.allocs.fetch_add(self.allocs.load(Ordering::Relaxed), Ordering::Relaxed);
        into.frees.fetch_add(self.frees.load(Ordering::Relaxed), Ordering::Relaxed);
        into.bytes_in.fetch_add(self.bytes_in.load(Ordering::Relaxed), Ordering::Relaxed);
        into.bytes_out.fetch_add(self.bytes_out.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Counts from threads without counters of their own (exited, or in
    /// teardown): read-modify-writes, since many threads write.
    pub(super) fn on_alloc_shared(&self, size: usize) {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(size, Ordering::Relaxed);
    }

    pub(super) fn on_free_shared(&self, size: usize) {
        self.frees.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(size, Ordering::Relaxed);
    }
}

/// Counts of exited threads, the fallback and large mappings.
pub(super) static SHARED_COUNTS: Counters = Counters::new();

/// The counters of every thread that has a chunk, linked through `next`.
pub(super) struct Registry(pub(super) *const Counters);
// SAFETY: the pointers are only followed under the registry's lock, and a
// thread unlinks its counters (under the lock) before they go away.
unsafe impl Send for Registry {}
pub(super) static REGISTRY: SpinLock<Registry> = SpinLock::new(Registry(ptr::null()));

pub(super) static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Allocations served by the shared fallback owner.
pub(super) static FALLBACK_ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Live bytes over every counter (requested sizes).
pub(super) fn live_bytes() -> (usize, u64, u64) {
    let mut bytes_in = SHARED_COUNTS.bytes_in.load(Ordering::Relaxed);
    let mut bytes_out = SHARED_COUNTS.bytes_out.load(Ordering::Relaxed);
    let mut allocs = SHARED_COUNTS.allocs.load(Ordering::Relaxed);
    let mut frees = SHARED_COUNTS.frees.load(Ordering::Relaxed);
    REGISTRY.with(|r| {
        let mut c = r.0;
        while !c.is_null() {
            // SAFETY: registered counters stay valid until their thread
            // unlinks them, which needs the lock we hold.
            let counters = unsafe { &*c };
            bytes_in = bytes_in.wrapping_add(counters.bytes_in.load(Ordering::Relaxed));
            bytes_out = bytes_out.wrapping_add(counters.bytes_out.load(Ordering::Relaxed));
            allocs += counters.allocs.load(Ordering::Relaxed);
            frees += counters.frees.load(Ordering::Relaxed);
            c = counters.next.load(Ordering::Relaxed);
        }
    });
    // Counts are read one after another, so a block freed on one thread
    // while another's counters are read can make the sum dip below zero.
    let live = bytes_in.saturating_sub(bytes_out);
    (live, allocs, frees)
}

/// Records the current live bytes as the peak if they are higher.
pub(super) fn note_peak() -> (usize, u64, u64) {
    let sums = live_bytes();
    // Relaxed: a statistic.
    PEAK.fetch_max(sums.0, Ordering::Relaxed);
    sums
}

// ---------------------------------------------------------------------------
// The free list of chunks.

/// A snapshot of [`GlobalArena`](super::GlobalArena)'s counters.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalStats {
    /// Bytes allocated and not yet freed (requested sizes).
    pub live_bytes: usize,
    /// The highest `live_bytes` seen. Sampled when a thread takes a new
    /// chunk, when a large block is mapped and when `stats` is called, so
    /// it can miss a short peak inside one chunk.
    pub peak_bytes: usize,
    /// Allocations so far (a `realloc` that moves counts as one
    /// allocation and one free).
    pub allocation_count: u64,
    /// Frees so far.
    pub free_count: u64,
    /// Chunks owned by a thread or holding a live block.
    pub chunks_in_use: usize,
    /// Free chunks kept committed for reuse.
    pub chunks_cached: usize,
    /// Free chunks whose memory went back to the OS (address space kept).
    pub chunks_decommitted: usize,
    /// Bytes of chunks that their owner has retired but that still hold a
    /// live block, a block in some thread's cache of freed blocks, or a
    /// freed block in a thread's runs of frees not counted yet (at most two
    /// chunks per thread; counted when the thread frees into another chunk,
    /// flushes its cache or exits).
    pub pinned_bytes: usize,
    /// Bytes mapped for large blocks (each its own mapping), including
    /// freed ones kept for reuse (at most 8 MiB of mappings of at most
    /// 2 MiB each).
    pub large_bytes: usize,
    /// Bytes resident or ready to be: chunks in use or cached, plus large
    /// mappings.
    pub committed_bytes: usize,
    /// Allocations served by the shared fallback: made by a thread after
    /// its exit hook retired its chunk (from later thread-exit code).
    pub fallback_allocations: u64,
    /// Chunks mapped with the advice for transparent huge pages (chunks
    /// mapped while at least 16 MiB were live, as long as huge pages come
    /// quickly; whether the kernel grants them shows in `AnonHugePages` of
    /// `/proc/self/smaps`).
    pub huge_chunks: usize,
    /// Whether the advice is off at the moment because a huge page took
    /// more than a millisecond to fault in. Fresh chunks try again once the
    /// count of chunks mapped has doubled (and grown by at least 32), and
    /// turn it back on if huge pages have become quick.
    pub huge_pages_slow: bool,
}

/// A small table:
///
/// ```text
/// live          1.5 KiB  (peak 64.0 MiB)
/// allocations   3000029  (frees 3000025, fallback 0)
/// chunks        3 in use, 5 cached, 0 decommitted  (pinned 2.0 MiB)
/// large         0 B
/// committed     8.0 MiB
/// ```
impl core::fmt::Display for GlobalStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        struct B(usize);
        impl core::fmt::Display for B {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                crate::stats::fmt_bytes(f, self.0)
            }
        }
        writeln!(f, "live          {}  (peak {})", B(self.live_bytes), B(self.peak_bytes))?;
        writeln!(
            f,
            "allocations   {}  (frees {}, fallback {})",
            self.allocation_count, self.free_count, self.fallback_allocations
        )?;
        writeln!(
            f,
            "chunks        {} in use, {} cached, {} decommitted  (pinned {})",
            self.chunks_in_use,
            self.chunks_cached,
            self.chunks_decommitted,
            B(self.pinned_bytes)
        )?;
        let slow = if self.huge_pages_slow { ", then off: slow" } else { "" };
        writeln!(f, "huge pages    asked for {} chunks{slow}", self.huge_chunks)?;
        writeln!(f, "large         {}", B(self.large_bytes))?;
        write!(f, "committed     {}", B(self.committed_bytes))
    }
}

/// The process-wide counters ([`GlobalArena::stats`](super::GlobalArena::stats)(super::GlobalArena::stats)).
pub(super) fn snapshot() -> GlobalStats {
    let (live, allocs, frees) = note_peak();
    let (cached, decommitted) = FREE.with(|f| (f.cached_count, f.decommitted_count));
    // Relaxed: statistics.
    let mapped = CHUNKS_MAPPED.load(Ordering::Relaxed);
    let in_use = mapped.saturating_sub(cached + decommitted);
    let large = LARGE_MAPPED.load(Ordering::Relaxed);
    GlobalStats {
        live_bytes: live,
        peak_bytes: PEAK.load(Ordering::Relaxed).max(live),
        allocation_count: allocs,
        free_count: frees,
        chunks_in_use: in_use,
        chunks_cached: cached,
        chunks_decommitted: decommitted,
        pinned_bytes: CHUNKS_PINNED.load(Ordering::Relaxed) * CHUNK_SIZE,
        large_bytes: large,
        committed_bytes: (in_use + cached) * CHUNK_SIZE + large,
        fallback_allocations: FALLBACK_ALLOCS.load(Ordering::Relaxed),
        huge_chunks: CHUNKS_HUGE.load(Ordering::Relaxed),
        huge_pages_slow: HUGE_SLOW.load(Ordering::Relaxed),
    }
}

/// [`GlobalArena::memory_map`](super::GlobalArena::memory_map): a picture of the chunks for [`report::svg`](crate::report::svg), as
/// far as one thread can see them without stopping the others: the
/// calling thread's two current chunks (small blocks and larger ones;
/// each one's bytes up to the cursor drawn as
/// live: `GlobalArena` counts live blocks per chunk, not bytes, so
/// blocks freed but not yet reclaimed are in there too) and every free
/// chunk, cached or decommitted. Chunks other threads bump in, retired
/// chunks pinned by live blocks and large mappings are summed in the
/// map's note. Allocates the map (so not from inside an allocator).
pub(super) fn memory_map(s: GlobalStats) -> crate::report::MemoryMap {
    use crate::report::{ChunkState, ChunkUsage, MemoryMap};
    let data = CHUNK_SIZE - HEADER_SIZE;
    let mut chunks = Vec::new();
    let own = with_local(|l| l.owners.each_ref().map(|o| (o.chunk.get(), o.cursor.get())))
        .unwrap_or([(ptr::null_mut(), ptr::null_mut()); 2]);
    for &(chunk, cursor) in &own {
        if chunk.is_null() {
            continue;
        }
        let used = cursor.addr() - (chunk.addr() + HEADER_SIZE);
        chunks.push(ChunkUsage {
            addr: chunk.addr(),
            state: ChunkState::Current,
            header: HEADER_SIZE,
            live: used,
            padding: 0,
            free: data - used,
            guard: 0,
        });
    }
    // Copied out under the lock into a fixed array: allocating while
    // holding it could need a chunk, and so the lock.
    const SHOWN: usize = 64;
    let mut free = [(0usize, false); SHOWN];
    let (mut shown, mut more) = (0, 0);
    FREE.with(|f| {
        for (mut c, decommitted) in [(f.cached, false), (f.decommitted, true)] {
            while !c.is_null() {
                if shown < SHOWN {
                    free[shown] = (c.addr(), decommitted);
                    shown += 1;
                } else {
                    more += 1;
                }
                // SAFETY: chunks on the free list are valid headers,
                // reached under its lock.
                c = unsafe { (*c).next.get() };
            }
        }
    });
    for &(addr, decommitted) in &free[..shown] {
        let state = if decommitted { ChunkState::Decommitted } else { ChunkState::Spare };
        chunks.push(ChunkUsage {
            addr,
            state,
            header: HEADER_SIZE,
            live: 0,
            padding: 0,
            free: data,
            guard: 0,
        });
    }

    let current = own.iter().filter(|o| !o.0.is_null()).count();
    let others = s.chunks_in_use.saturating_sub(current);
    let mut note = format!(
        "not drawn: {others} chunks of other threads or retired (pinned: {} KiB), {} KiB in large mappings; live in all: {} KiB",
        s.pinned_bytes >> 10,
        s.large_bytes >> 10,
        s.live_bytes >> 10
    );
    if more > 0 {
        note.push_str(&format!("; {more} more free chunks"));
    }
    MemoryMap { title: "GlobalArena (this thread's view)".into(), chunks, note: Some(note) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_display_is_a_small_table() {
        let s = GlobalStats {
            live_bytes: 1572,
            peak_bytes: 64 << 20,
            allocation_count: 3_000_029,
            free_count: 3_000_025,
            chunks_in_use: 3,
            chunks_cached: 5,
            chunks_decommitted: 0,
            pinned_bytes: 2 << 20,
            large_bytes: 0,
            committed_bytes: 8 << 20,
            fallback_allocations: 0,
            huge_chunks: 7,
            huge_pages_slow: true,
        };
        assert_eq!(
            s.to_string(),
            "live          1.5 KiB  (peak 64.0 MiB)\n\
             allocations   3000029  (frees 3000025, fallback 0)\n\
             chunks        3 in use, 5 cached, 0 decommitted  (pinned 2.0 MiB)\n\
             huge pages    asked for 7 chunks, then off: slow\n\
             large         0 B\n\
             committed     8.0 MiB"
        );
    }
}
