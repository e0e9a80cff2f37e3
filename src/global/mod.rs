#![doc = include_str!("../../docs/global-arena.md")]
mod abandon;
mod alloc;
#[cfg(feature = "c-abi")]
pub mod cabi;
mod cache;
mod chunk;
mod class;
pub(crate) mod count;
mod fork;
mod huge;
mod large;
mod owner;
mod remote;
mod stats;
mod thread;
mod track;

pub(crate) use huge::turn_huge_pages_off;
pub use stats::GlobalStats;

use chunk::{CACHED_CHUNKS, CHUNK_SIZE};
use class::{LARGE_THRESHOLD, MAX_CHUNK_ALIGN};

// ---------------------------------------------------------------------------
// The allocator.

/// A bump global allocator that gives memory back: per-thread chunks with
/// live counts, recycled when their last block is freed.
///
/// ```
/// use fiberalloc::GlobalArena;
///
/// #[global_allocator]
/// static GLOBAL: GlobalArena = GlobalArena::new();
///
/// fn main() {
///     let v: Vec<u64> = (0..1000).collect();
///     assert_eq!(v.iter().sum::<u64>(), 499_500);
///     assert!(GLOBAL.stats().allocation_count > 0);
/// }
/// ```
///
/// Each thread bumps through its own 2 MiB chunks ([`Self::CHUNK_SIZE`]); a chunk
/// counts its live blocks (without atomics for its owner, atomically for
/// frees from other threads) and goes back to a free list when the last one
/// is freed after its owner moved on; free chunks past [`Self::CACHED_CHUNKS`]
/// are decommitted. A thread reuses the blocks it frees through a cache of
/// per-size-class lists before whole chunks are recycled. Freeing or
/// resizing the thread's most recent block is done in place. Requests
/// above [`Self::LARGE_THRESHOLD`] bytes or aligned to more than
/// [`Self::MAX_CHUNK_ALIGN`] get a mapping of their own (`realloc` by
/// `mremap`). A child made by `fork` while other threads allocate can
/// allocate too (the allocator's locks are taken around the `fork`). `docs/global-arena.md`
/// (the module's essay) has the details.
///
/// All `GlobalArena` values share one state (the chunks, the free list and
/// the counters are process-wide), so a handle holds only whether it
/// records live blocks ([`GlobalArena::tracking`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalArena {
    track: bool,
}

impl GlobalArena {
    /// Size and alignment of a chunk, header included (2 MiB).
    pub const CHUNK_SIZE: usize = CHUNK_SIZE;
    /// Requests larger than this (256 KiB) get a mapping of their own.
    pub const LARGE_THRESHOLD: usize = LARGE_THRESHOLD;
    /// Requests aligned to more than this (4 KiB) get a mapping of their own.
    pub const MAX_CHUNK_ALIGN: usize = MAX_CHUNK_ALIGN;
    /// Free chunks kept committed for reuse (4); further free chunks are
    /// decommitted.
    pub const CACHED_CHUNKS: usize = CACHED_CHUNKS;

    /// The allocator handle. `const`, so it can initialise the
    /// `#[global_allocator]` static.
    pub const fn new() -> Self {
        GlobalArena { track: false }
    }

    /// An allocator that also records every live block (its address and
    /// size) for [`leaks`](Self::leaks): leak tracking for debug builds.
    ///
    /// ```
    /// use fiberalloc::GlobalArena;
    /// #[global_allocator]
    /// static GLOBAL: GlobalArena =
    ///     if cfg!(debug_assertions) { GlobalArena::tracking() } else { GlobalArena::new() };
    /// # fn main() {}
    /// ```
    ///
    /// The records live in a hash table of their own mapping (nothing is
    /// allocated through an allocator), behind one spin lock: every
    /// allocation and free takes it, so this is for finding leaks, not for
    /// speed. With [`new`](Self::new) the record calls are compiled out (the
    /// flag is a constant of the `static`). If the table cannot grow (the
    /// OS refuses memory), further blocks go unrecorded and
    /// [`untracked_blocks`](Self::untracked_blocks) counts them.
    pub const fn tracking() -> Self {
        GlobalArena { track: true }
    }

    /// Whether this handle records live blocks.
    pub const fn is_tracking(&self) -> bool {
        self.track
    }

    /// The blocks allocated through a tracking handle and not freed yet,
    /// in no particular order (the returned `Vec`'s own buffer left out);
    /// empty for a handle made by [`new`](Self::new).
    pub fn leaks(&self) -> Vec<crate::debug::Leak> {
        if self.track {
            track::live_blocks()
        } else {
            Vec::new()
        }
    }

    /// Blocks a tracking handle could not record because its table could
    /// not grow.
    pub fn untracked_blocks(&self) -> usize {
        track::untracked()
    }

    /// A snapshot of the process-wide counters. Takes two short spin locks
    /// and walks the registered threads; allocates nothing, so it may be
    /// called from a monitoring thread at any rate.
    pub fn stats(&self) -> GlobalStats {
        stats::snapshot()
    }

    /// A picture of the chunks for [`report::svg`](crate::report::svg), as
    /// far as one thread can see them without stopping the others: the
    /// calling thread's two current chunks (small blocks and larger ones;
    /// each one's bytes up to the cursor drawn as
    /// live: `GlobalArena` counts live blocks per chunk, not bytes, so
    /// blocks freed but not yet reclaimed are in there too) and every free
    /// chunk, cached or decommitted. Chunks other threads bump in, retired
    /// chunks pinned by live blocks and large mappings are summed in the
    /// map's note. Allocates the map (so not from inside an allocator).
    pub fn memory_map(&self) -> crate::report::MemoryMap {
        stats::memory_map(self.stats())
    }

    /// Gives the calling thread's cached free blocks back to their chunks,
    /// so that chunks holding nothing else can be recycled, and with them
    /// the caches that exited threads left for new ones to take over. A
    /// thread keeps up to 8 MiB (or half its live bytes) of freed blocks
    /// for reuse; call this when a thread goes idle after freeing a lot. A
    /// thread that exits leaves its cache to the next thread that needs
    /// blocks (two such caches wait at most; the oldest is given back to
    /// its chunks when a third comes).
    pub fn flush_thread_cache(&self) {
        thread::flush_cache();
    }
}
