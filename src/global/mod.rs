//! `GlobalArena`: a bump allocator that can be the program's global
//! allocator and gives memory back.
//!
//! # How it works
//!
//! Each thread bumps through its own *chunk*: `GlobalArena::CHUNK_SIZE` (2 MiB) bytes mapped at
//! a multiple of that size, so that `dealloc` finds a block's chunk by
//! masking the pointer. The thread's cursor, limit and current chunk live in
//! a `const`-initialised thread-local without a destructor, so reaching them
//! never allocates and never registers anything.
//!
//! A thread has two such chunks at a time: blocks of at most 64 bytes
//! (`SMALL_MAX`: strings, boxes, small vectors) are bumped from one, larger
//! ones (tree nodes, hash tables, buffers) from the other. A structure of
//! large nodes is then packed densely instead of interleaved with the small
//! values it points to (a 1,000,000-entry `BTreeMap<u64, Vec<u8>>` builds
//! about 7% faster). Which chunk counts a free is decided by the block's
//! address, not its size, so a block grown in place across the line is
//! still counted right.
//!
//! Every chunk has a live count (`count`): blocks handed out by its owner
//! and freed by its owner are counted in a plain `Cell`, frees by other
//! threads atomically in the chunk header. When a block does not fit, the
//! owner either starts its chunk over (every block in it has been freed) or
//! *retires* it and takes another. A retired chunk goes back to the global
//! free list when its last block is freed, by whichever thread frees it, and
//! exactly once. Free chunks past `GlobalArena::CACHED_CHUNKS` are decommitted
//! (`MADV_DONTNEED`), so their memory goes back to the OS.
//!
//! Before whole chunks are reused, freed blocks are: a thread keeps blocks
//! it frees from chunks it owns or owned in a cache of per-size-class lists
//! (every small block is allocated at its class size), and its next
//! allocation of the class takes one back. A cached block still counts as
//! live in its chunk, so the cache is bounded and flushed into the chunks
//! (past 8 MiB or half the thread's live bytes, at thread exit, and on
//! request), and past 256 KiB it admits frees only while the thread also
//! allocates, so a teardown frees straight into the chunks.
//!
//! Chunks mapped while the program has 16 MiB or more live ask for
//! transparent huge pages (`MADV_HUGEPAGE`; a chunk is one huge page), so a
//! large heap costs the TLB one entry per chunk; so do large blocks of
//! 4 MiB or more. A program with a small live set never asks, however many
//! chunks it has gone through. The first huge page of each advised
//! mapping is faulted at once and timed; one slower than a millisecond (a
//! VM whose host takes free memory back makes fresh huge pages slow) turns
//! the advice off until the count of chunks mapped has doubled; the next
//! fresh chunk then tries again. A small program never gets them: a huge
//! page is resident whole.
//!
//! Freeing, shrinking or growing the most recent block of the current
//! thread's chunk moves the cursor. `alloc_zeroed` knows which part of the
//! chunk has never been written since it was mapped or decommitted, and
//! writes zeros only below that mark.
//!
//! Requests larger than `LARGE_THRESHOLD` or aligned to more than
//! `MAX_CHUNK_ALIGN` get a mapping of their own, unmapped on free and
//! resized with `mremap`. Which path a block takes is a function of its
//! layout alone, so `dealloc` (which is given the layout) knows it.
//!
//! A POSIX thread key retires the thread's chunk when the thread exits.
//! Allocations after that (from other thread-exit code) go through a shared
//! fallback: one more chunk owner, behind a spin lock.
//!
//! `fork` handlers (`pthread_atfork`) take the allocator's spin locks in
//! the forking thread just before `fork` and release them in both
//! processes after it, so a child never starts with a lock that a thread
//! it does not have was holding.
//!
//! Nothing here panics, unwinds or allocates through another allocator; the
//! only fatal error (the OS refusing to unmap a block, which means `dealloc`
//! was handed a bad pointer or layout) writes a message with `write(2)` and
//! aborts.

mod alloc;
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
/// allocate too (the allocator's locks are taken around the `fork`). The
/// README's "GlobalArena" section has the details.
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
    /// so that chunks holding nothing else can be recycled. A thread keeps
    /// up to 8 MiB (or half its live bytes) of freed blocks for reuse; call
    /// this when a thread goes idle after freeing a lot. Threads do it by
    /// themselves when they exit.
    pub fn flush_thread_cache(&self) {
        thread::flush_cache();
    }
}
