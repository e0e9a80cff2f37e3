//! bumpalo's names for looking into an arena and for going back to a
//! point: `allocated_bytes`, `chunk_capacity`, `iter_allocated_chunks`,
//! `min_align`, `raw_checkpoint` / `reset_to_raw_checkpoint`.
//!
//! Byte counts follow bumpalo's meaning, not [`Stats`](crate::Stats)':
//! `allocated_bytes()` is the data capacity of the chunks the arena holds
//! (what bumpalo sums over its chunks), where `stats().allocated_bytes` is
//! the bytes of live blocks.

use crate::chunk::ChunkHeader;
use crate::policy::Policy;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use super::{Arena, Mark};

/// A point an arena can go back to ([`Arena::raw_checkpoint`]): not a
/// closure, so a backtracking parser can keep one per alternative.
#[derive(Clone, Copy)]
pub struct RawCheckpoint {
    mark: Mark,
    arena: usize,
}

impl core::fmt::Debug for RawCheckpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawCheckpoint").field("cursor", &self.mark.cursor).finish()
    }
}

/// The used part of each chunk, newest chunk first: see
/// [`Arena::iter_allocated_chunks`].
pub struct ChunkIter<'a> {
    chunks: std::vec::IntoIter<(NonNull<u8>, usize)>,
    _arena: PhantomData<&'a mut ()>,
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = &'a [MaybeUninit<u8>];
    fn next(&mut self) -> Option<Self::Item> {
        let (p, len) = self.chunks.next()?;
        // SAFETY: `p..p + len` is the used part of a chunk the arena holds;
        // the arena is borrowed mutably for `'a`, so nothing writes it.
        Some(unsafe { core::slice::from_raw_parts(p.as_ptr().cast(), len) })
    }
}

/// The used part of each chunk as raw pointers: see
/// [`Arena::iter_allocated_chunks_raw`].
pub struct ChunkRawIter<'a> {
    chunks: std::vec::IntoIter<(NonNull<u8>, usize)>,
    _arena: PhantomData<&'a ()>,
}

impl Iterator for ChunkRawIter<'_> {
    type Item = (*mut u8, usize);
    fn next(&mut self) -> Option<Self::Item> {
        self.chunks.next().map(|(p, len)| (p.as_ptr(), len))
    }
}

impl<P: Policy> Arena<P> {
    /// Data capacity of the chunks the arena holds (bumpalo's meaning: the
    /// chunks' sizes without their headers, whether used or not).
    pub fn allocated_bytes(&self) -> usize {
        let mut total = 0;
        self.for_each_held(|c| total += ChunkHeader::capacity(c));
        total
    }

    /// Bytes mapped for the chunks the arena holds, headers included
    /// (guard pages excluded): `stats().reserved_bytes`.
    pub fn allocated_bytes_including_metadata(&self) -> usize {
        self.reserved.get()
    }

    /// Bytes left in the current chunk: what can be allocated (at the
    /// arena's minimum alignment) before a new chunk is needed.
    pub fn chunk_capacity(&self) -> usize {
        self.limit_addr() - self.cursor.get().addr().get()
    }

    /// Every block starts and ends on a multiple of this (8 under every
    /// policy; bumpalo's default is 1).
    pub const fn min_align(&self) -> usize {
        P::MIN_ALIGN
    }

    /// The used part of each chunk (the current chunk up to the cursor,
    /// then older ones, then the chunks of oversized blocks), as bytes that
    /// may be uninitialised (padding). Under `Safe` and `Debug` the bytes
    /// include each block's header and canary.
    pub fn iter_allocated_chunks(&mut self) -> ChunkIter<'_> {
        ChunkIter { chunks: self.used_parts().into_iter(), _arena: PhantomData }
    }

    /// [`iter_allocated_chunks`](Self::iter_allocated_chunks) through a
    /// shared borrow, as `(start, len)` pairs.
    ///
    /// # Safety
    /// The pointers may be read only while no block of the arena is written
    /// (blocks handed out are live `&mut` references elsewhere), and not
    /// after the arena allocates, resets or drops.
    pub unsafe fn iter_allocated_chunks_raw(&self) -> ChunkRawIter<'_> {
        ChunkRawIter { chunks: self.used_parts().into_iter(), _arena: PhantomData }
    }

    /// `(start, used bytes)` of every chunk that may hold blocks.
    fn used_parts(&self) -> std::vec::Vec<(NonNull<u8>, usize)> {
        let mut parts = std::vec::Vec::new();
        self.for_each_chunk(|c, end| {
            let start = ChunkHeader::data_start(c);
            parts.push((start, end - start.addr().get()));
        });
        parts
    }

    /// Calls `f` for every chunk the arena holds (used, spare and big).
    fn for_each_held(&self, mut f: impl FnMut(NonNull<ChunkHeader>)) {
        self.for_each_chunk(|c, _| f(c));
        let mut cur = self.spare.get();
        while let Some(c) = cur {
            f(c);
            // SAFETY: spare chunks are owned and live.
            cur = unsafe { c.as_ref() }.prev.get();
        }
    }

    /// Where the arena stands now, to go back to with
    /// [`reset_to_raw_checkpoint`](Self::reset_to_raw_checkpoint).
    ///
    /// ```
    /// let arena = fiberalloc::Arena::new();
    /// let kept = arena.alloc(1u32);
    /// let cp = arena.raw_checkpoint();
    /// let _tried = arena.alloc_str("an alternative that failed");
    /// // SAFETY: `_tried` (made after the checkpoint) is not used again.
    /// unsafe { arena.reset_to_raw_checkpoint(cp) };
    /// assert_eq!(*kept, 1);
    /// ```
    pub fn raw_checkpoint(&self) -> RawCheckpoint {
        RawCheckpoint { mark: self.mark(), arena: self.id() }
    }

    /// Goes back to `checkpoint`: every block made since is freed (its
    /// memory reused by the next allocations), destructors recorded since
    /// by [`alloc_dropped`](Self::alloc_dropped) run, and chunks entered
    /// since are kept as spares.
    ///
    /// # Safety
    /// - `checkpoint` was taken from this arena, after its last `reset` and
    ///   within the scope now open;
    /// - checkpoints are gone back to newest first: after going back to
    ///   one, no checkpoint taken after it is used;
    /// - no block handed out since the checkpoint is used again (no
    ///   reference, collection or pointer into it survives).
    pub unsafe fn reset_to_raw_checkpoint(&self, checkpoint: RawCheckpoint) {
        debug_assert_eq!(checkpoint.arena, self.id(), "a checkpoint of another arena");
        // SAFETY: by the caller's promise (the same as `rewind`'s).
        unsafe { self.rewind(checkpoint.mark) }
    }
}
