//! Looking at a shared arena: the walks over its lanes' chunks (for
//! `walk`), the drop-time sweep, `validate`, leaks, the memory map and
//! statistics.

use super::{Refill, SharedArena};
use crate::chunk::ChunkHeader;
use crate::debug::{self, Corruption, Leak};
use crate::policy::Policy;
use crate::shared::chunk::SharedChunk;
use crate::stats::Stats;
use crate::sync::Ordering;
use crate::walk;
use core::ptr::NonNull;

impl<P: Policy> SharedArena<P> {
    /// Calls `f` on every chunk of the chosen lanes (`[direct, leased]`),
    /// their oversized chunks included. Called with the lock held.
    fn for_each_chunk(&self, r: &Refill, lanes: [bool; 2], mut f: impl FnMut(&SharedChunk)) {
        for (id, lane) in [&self.direct, &self.leased].into_iter().enumerate() {
            if !lanes[id] {
                continue;
            }
            for mut p in [lane.current.load(Ordering::Acquire), r.big[id]] {
                while !p.is_null() {
                    // SAFETY: chunks of the arena are live while it is, and
                    // `prev` links change only under the lock we hold.
                    let c = unsafe { &*p };
                    if c.chunk.is_some() {
                        f(c);
                    }
                    p = c.prev.get();
                }
            }
        }
    }

    /// Before the chosen lanes are rewound: checks their blocks (aborting
    /// with a report on corruption, listing leaks at drop under
    /// `TRACK_LEAKS`) and poisons their used bytes. Called with the lock
    /// held, with no lease live in those lanes.
    pub(super) fn give_up(&self, r: &Refill, lanes: [bool; 2], when: &str, at_drop: bool) {
        if !(P::CANARIES || P::POISON || cfg!(fiberalloc_asan)) {
            return;
        }
        let leaks = P::TRACK_LEAKS && at_drop;
        let arena = (self as *const Self).addr();
        self.for_each_chunk(r, lanes, |c| {
            let Some(backing) = c.chunk else { return };
            if P::CANARIES {
                // SAFETY: the claimed part of a chunk of the arena, laid out
                // by the canary paths; the lanes are quiet (caller).
                unsafe { walk::sweep(backing, c.start, c.start.addr().get() + c.used(), leaks, arena, when) };
            }
            // SAFETY: the chunk's used bytes are given up (caller).
            unsafe { debug::poison_freed(c.start, c.used(), P::POISON, P::POISON_BYTE) };
        });
    }

    /// The chunks of the chosen lanes (`[direct, leased]`), for the walks
    /// of `walk`, with the lock `r` held.
    fn chunks<'a>(&'a self, r: &'a Refill, lanes: [bool; 2]) -> Lanes<'a, P> {
        Lanes { arena: self, r, lanes }
    }

    /// Checks every chunk header and every block's header and canary
    /// (under `Safe` and `Debug`); `Err` names the first problem. Takes
    /// `&mut self`: other threads must not be writing blocks while it reads
    /// them.
    pub fn validate(&mut self) -> Result<(), Corruption> {
        let r = self.lock();
        // SAFETY: `&mut self`: no other thread allocates or writes a block.
        unsafe { walk::validate(&self.chunks(&r, [true, true])) }
    }

    /// Blocks allocated through the `Allocator` impl and not freed (only
    /// `Debug` records them; empty under other policies).
    pub fn leaks(&mut self) -> Vec<Leak> {
        if !P::TRACK_LEAKS {
            return Vec::new();
        }
        let r = self.lock();
        // SAFETY: as in `validate`.
        unsafe { walk::leaks(&self.chunks(&r, [true, false])) }
    }

    /// A picture of the arena's chunks for [`report::svg`](crate::report::svg):
    /// per chunk (both lanes, oversized chunks included) its live bytes,
    /// padding (block headers, canaries, alignment, freed blocks, the unused
    /// part of ended leases), free space and guard pages. Under `Fast`,
    /// which keeps no per-block records, a chunk's used bytes all count as
    /// live, as in [`stats`](Self::stats). The lanes' current chunks are
    /// `Current`, the others `Full`; a shared arena keeps no spare chunks
    /// (they go back to the process-wide cache). Takes `&mut self`, like
    /// [`validate`](Self::validate): under `Safe` and `Debug` it reads the
    /// blocks' headers, which no other thread may be writing meanwhile.
    ///
    /// ```
    /// use fiberalloc::{policy::Debug, report, SharedArena};
    /// let mut arena = SharedArena::with_policy(Debug);
    /// std::thread::scope(|s| {
    ///     for t in 0..2u64 {
    ///         let arena = &arena;
    ///         s.spawn(move || arena.alloc([t; 8]));
    ///     }
    /// });
    /// let map = arena.memory_map();
    /// let live: usize = map.chunks.iter().map(|c| c.live).sum();
    /// assert_eq!(live, 2 * 64);
    /// assert!(report::svg(&map).starts_with("<svg"));
    /// ```
    pub fn memory_map(&mut self) -> crate::report::MemoryMap {
        let title = format!("SharedArena<{}>", walk::policy_name::<P>());
        let r = self.lock();
        // SAFETY: as in `validate`.
        unsafe { walk::memory_map(&self.chunks(&r, [true, true]), title) }
    }

    /// Whether `ptr` lies in the data area of one of this arena's chunks
    /// (either lane, or an oversized chunk).
    pub fn contains(&self, ptr: *const u8) -> bool {
        let r = self.lock();
        walk::contains(&self.chunks(&r, [true, true]), ptr.addr())
    }

    /// A snapshot of the arena's counters. Shared arenas keep no counters on
    /// the fast path: `allocated_bytes` is the data the cursors have passed
    /// (padding included, `padding_bytes` is 0), and allocations are not
    /// counted (`allocations_counted` is false, `allocation_count` 0): a
    /// count on the cursor's cache line made the one-thread path 2.2x
    /// slower and the two-thread path 3.8x (measured; docs/decisions.md).
    pub fn stats(&self) -> Stats {
        let r = self.lock();
        let mut used = 0;
        for lane in [&self.direct, &self.leased] {
            let mut p = lane.current.load(Ordering::Acquire);
            while !p.is_null() {
                // SAFETY: chunks of a lane are live while the arena is.
                let c = unsafe { &*p };
                if c.chunk.is_some() {
                    used += c.used();
                }
                p = c.prev.get();
            }
        }
        for mut b in r.big {
            while !b.is_null() {
                // SAFETY: as above.
                let c = unsafe { &*b };
                used += c.used();
                b = c.prev.get();
            }
        }
        Stats {
            allocated_bytes: used,
            peak_bytes: used,
            reserved_bytes: r.reserved,
            chunk_count: r.chunks,
            ..Stats::default()
        }
    }
}

impl<P: Policy> core::fmt::Debug for SharedArena<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedArena")
            .field("stats", &self.stats())
            .field("leases", &self.lease_count())
            .finish()
    }
}

/// The chunks of some of a shared arena's lanes, for the walks of `walk`,
/// with the refill lock held.
struct Lanes<'a, P: Policy> {
    arena: &'a SharedArena<P>,
    r: &'a Refill,
    /// `[direct, leased]`: which lanes are walked.
    lanes: [bool; 2],
}

// SAFETY: `for_each_chunk` names the chunks of the arena's lanes, live
// while the arena is (borrowed here) and linked under the lock `r` holds;
// a chunk's blocks lie in its claimed part `start..start + used()`, and
// under `CANARIES` every allocation path, the lease's included, writes
// block headers and canaries there.
unsafe impl<P: Policy> walk::Chunks for Lanes<'_, P> {
    const CANARIES: bool = P::CANARIES;

    fn used(&self, mut f: impl FnMut(walk::Used)) {
        // Acquire, as everywhere the lanes are read: pairs with the
        // Release store that installed the chunk.
        let current = [
            self.arena.direct.current.load(Ordering::Acquire),
            self.arena.leased.current.load(Ordering::Acquire),
        ];
        self.arena.for_each_chunk(self.r, self.lanes, |c| {
            let Some(backing) = c.chunk else { return };
            f(walk::Used {
                chunk: backing,
                start: c.start,
                end: c.start.addr().get() + c.used(),
                limit: c.end,
                current: current.contains(&core::ptr::from_ref(c).cast_mut()),
            })
        });
    }

    /// A shared arena keeps no spare chunks: they go back to the
    /// process-wide cache.
    fn spare(&self, _: impl FnMut(NonNull<ChunkHeader>)) {}
}
