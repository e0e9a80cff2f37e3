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

pub(crate) mod count;

#[cfg(not(fiberalloc_loom))]
mod imp;
#[cfg(not(fiberalloc_loom))]
pub(crate) use imp::turn_huge_pages_off;
#[cfg(not(fiberalloc_loom))]
pub use imp::{GlobalArena, GlobalStats};
