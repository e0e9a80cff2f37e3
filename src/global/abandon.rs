//! Chunks kept by live blocks that no owner remembers any more, for any
//! thread to take freed blocks from.
//!
//! An owner remembers the chunks it retired while some of their blocks were
//! live (`Owner::pinned`), and adopts the blocks that other threads free in
//! them ([`Local::adopt_pinned`]). Two kinds of such chunks have nobody to
//! remember them: those of a thread that has exited, and those an owner's
//! [`PINNED_SLOTS`](super::owner::PINNED_SLOTS) had no room left for. A
//! program whose threads come and go while their blocks live on (larson:
//! each thread hands its blocks to the next one and exits) would otherwise
//! keep every such chunk whole until its last straggler is freed, and bump
//! fresh memory instead of reusing what was freed around the stragglers.
//!
//! They go to [`ABANDONED`], a small table under a spin lock. A thread
//! whose own pinned chunks give it nothing on its slow path takes a chunk
//! with freed blocks out of the table, adopts them into its cache (under
//! the chunk count's pin, as for its own: `count.rs` lets any thread adopt,
//! and several at once), and puts the chunk back if it is still kept. An
//! entry is a pointer only, like a pinned slot: the chunk may have been
//! recycled since, which the pin detects (the entry is then dropped). When
//! the table is full the oldest entry is dropped: its chunk is no worse off
//! than before this table existed (recycled when its last block is freed).
//!
//! A thread that exits also leaves the unused part of its chunks: a
//! thread that lives for a hundred allocations (larson again) would
//! otherwise fault in and then strand most of a fresh chunk each time.
//! When a chunk kept by live blocks has at least [`ORPHAN_MIN_TAIL`] never
//! handed out, the exiting thread also offers it in [`ORPHANS`], and the
//! next owner that needs a chunk takes it over
//! ([`RemoteCount::take_over`](super::count::RemoteCount::take_over)) and
//! bumps on from where the last one stopped, before it takes a fresh one.
//!
//! Nobody bumps in such a chunk, so its owner hint (`GlobalChunk::owner`)
//! is set to [`NO_OWNER`] when it is abandoned (and when an exiting thread
//! retires its chunks): a thread that frees a block of it keeps the block
//! in its cache as the owner would, if it allocates as it frees
//! (`ThreadCache::admits_ownerless`). larson's threads free the blocks
//! their predecessors made; counted into the chunks, those blocks came back
//! only by adoption, a batch per slow path, and memory grew by about
//! 40 MiB a second, without bound. And an exiting thread leaves its cache
//! whole for the next thread that needs blocks (`cache.rs`, `LEFT`).
//!
//! The locks are never held with another: entries are taken out and put
//! back with nothing else held, and adoption happens outside them.

use super::chunk::{GlobalChunk, NO_OWNER};
use super::class::{LARGE_THRESHOLD, MAX_CHUNK_ALIGN};
pub(super) use super::count::TAKEN_OVER;
use super::thread::Local;
use crate::sync::{AtomicUsize, Ordering, SpinLock};
use core::ptr;

/// Entries of [`ABANDONED`].
pub(super) const ABANDONED_SLOTS: usize = 64;

/// The abandoned chunks (null entries are free), and where the next one
/// goes when every entry is taken.
pub(super) struct Abandoned {
    slots: [*mut GlobalChunk; ABANDONED_SLOTS],
    next: usize,
}

/// How many entries of [`ABANDONED`] are taken, written under its lock and
/// read without it: a look, so that a thread with nothing to adopt from
/// skips the lock (and an owner bumps in bigger steps, `Owner::grow_limit`).
static ABANDONED_LEN: AtomicUsize = AtomicUsize::new(0);

/// Whether any chunk is waiting in [`ABANDONED`] (a hint).
#[inline]
pub(super) fn abandoned_waiting() -> bool {
    // Relaxed: a hint; the lock orders what is taken.
    ABANDONED_LEN.load(Ordering::Relaxed) != 0
}

/// Most blocks a thread adopts from abandoned chunks in one slow path
/// (the rest stay listed for the next adopter), so that a thread that lives
/// for a few hundred allocations reuses what its predecessors freed
/// without taking thousands it will only flush at exit.
pub(super) const ADOPT_BATCH: usize = 256;

// SAFETY: the entries are pointers to chunk headers, which stay mapped for
// the life of the process; they are read and written only under the lock.
unsafe impl Send for Abandoned {}

/// The table of abandoned chunks (see the module docs).
pub(super) static ABANDONED: SpinLock<Abandoned> =
    SpinLock::new(Abandoned { slots: [ptr::null_mut(); ABANDONED_SLOTS], next: 0 });

/// Puts `chunk`, retired while blocks in it were live, in the table (nothing
/// for null).
pub(super) fn abandon(chunk: *mut GlobalChunk) {
    if chunk.is_null() {
        return;
    }
    // Nobody remembers it: whoever frees its blocks caches them. (If the
    // chunk was recycled and taken by a new owner since, this clears that
    // owner's hint: its blocks freed by others are then cached by them, as
    // any block may be.)
    // SAFETY: chunk headers stay mapped for the life of the process.
    // Relaxed: a hint.
    unsafe { &*chunk }.owner.store(NO_OWNER, Ordering::Relaxed);
    ABANDONED.with(|a| {
        let slot = match a.slots.iter().position(|c| c.is_null()) {
            Some(free) => {
                // Relaxed: see ABANDONED_LEN.
                ABANDONED_LEN.fetch_add(1, Ordering::Relaxed);
                free
            }
            None => {
                let oldest = a.next;
                a.next = (oldest + 1) % ABANDONED_SLOTS;
                oldest
            }
        };
        a.slots[slot] = chunk;
    });
}

/// Takes out of the table a chunk that has freed blocks listed (its `xfree`
/// is not empty), if there is one.
fn take_with_freed() -> Option<*mut GlobalChunk> {
    ABANDONED.with(|a| {
        a.slots.iter_mut().find_map(|slot| {
            let chunk = *slot;
            // SAFETY: chunk headers stay mapped for the life of the
            // process, recycled or not.
            // Relaxed: a look; the adopter's swap acquires what it takes.
            if chunk.is_null() || unsafe { &*chunk }.xfree.load(Ordering::Relaxed).is_null() {
                return None;
            }
            *slot = ptr::null_mut();
            // Relaxed: see ABANDONED_LEN.
            ABANDONED_LEN.fetch_sub(1, Ordering::Relaxed);
            Some(chunk)
        })
    })
}

impl Local {
    /// Adopts into the thread cache the freed blocks of one abandoned chunk
    /// (see the module docs). Returns whether it took any.
    #[cold]
    #[inline(never)]
    pub(super) fn adopt_abandoned(&self) -> bool {
        let mut taken = 0;
        while taken < ADOPT_BATCH && abandoned_waiting() && self.cache.bytes.get() < self.cache.limit.get() {
            let Some(chunk) = take_with_freed() else { break };
            let (n, kept) = self.adopt_from(chunk, ADOPT_BATCH - taken);
            taken += n;
            if n != 0 {
                // The blocks are this thread's now: when it frees them
                // again they go to its cache, not back through the chunk's
                // count and list (the hint is advice: see
                // `GlobalChunk::owner`).
                // SAFETY: chunk headers stay mapped for the life of the
                // process.
                // Relaxed: a hint.
                unsafe { &*chunk }.owner.store(ptr::from_ref(&self.owners[0]).addr(), Ordering::Relaxed);
            }
            if kept {
                abandon(chunk);
            }
        }
        taken != 0
    }
}

/// Unused bytes a chunk needs at its end to be offered in [`ORPHANS`]: room
/// for any small block at any alignment a chunk serves.
pub(super) const ORPHAN_MIN_TAIL: usize = 512 << 10;
const _: () = assert!(ORPHAN_MIN_TAIL >= LARGE_THRESHOLD + MAX_CHUNK_ALIGN);

/// Entries of [`ORPHANS`] per side (small and medium owners).
pub(super) const ORPHAN_SLOTS: usize = 16;

/// Chunks left by exited threads with unused space, per side: a stack
/// each, newest last (its pages are the likeliest to be resident).
pub(super) struct Orphans {
    slots: [[*mut GlobalChunk; ORPHAN_SLOTS]; 2],
    len: [usize; 2],
}

// SAFETY: as for `Abandoned`.
unsafe impl Send for Orphans {}

/// The chunks offered for taking over (see the module docs).
pub(super) static ORPHANS: SpinLock<Orphans> =
    SpinLock::new(Orphans { slots: [[ptr::null_mut(); ORPHAN_SLOTS]; 2], len: [0; 2] });

/// Offers `chunk`, retired by an exiting thread's owner of `side` with
/// live blocks and at least [`ORPHAN_MIN_TAIL`] unused, for taking over.
/// When the side's stack is full the oldest entry is dropped.
pub(super) fn offer_orphan(side: usize, chunk: *mut GlobalChunk) {
    ORPHANS.with(|o| {
        let (slots, len) = (&mut o.slots[side], &mut o.len[side]);
        if *len == ORPHAN_SLOTS {
            slots.copy_within(1.., 0);
            *len -= 1;
        }
        slots[*len] = chunk;
        *len += 1;
    });
}

/// Takes over the newest offered chunk of `side` that is still retired with
/// live blocks (dropping the entries of those that are not). The caller
/// becomes its owner, with a live count of [`TAKEN_OVER`].
pub(super) fn take_orphan(side: usize) -> Option<*mut GlobalChunk> {
    loop {
        let chunk = ORPHANS.with(|o| {
            if o.len[side] == 0 {
                return None;
            }
            o.len[side] -= 1;
            Some(o.slots[side][o.len[side]])
        })?;
        // SAFETY: chunk headers stay mapped for the life of the process.
        if unsafe { &*chunk }.count.take_over() {
            return Some(chunk);
        }
    }
}
