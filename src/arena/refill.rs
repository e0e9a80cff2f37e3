//! The slow half of allocation: new chunks, oversized blocks, the spare
//! list, and the counters the slow paths and checks share.

use crate::align;
use crate::chunk::{self, ChunkHeader, ChunkRequest, HEADER_SIZE};
use crate::debug::{self, Event};
use crate::policy::Policy;
use crate::AllocError;
use core::alloc::Layout;
use core::ptr::NonNull;

use super::Arena;

impl<P: Policy> Arena<P> {
    /// The slow half of [`try_alloc_layout`](Self::try_alloc_layout): the
    /// current chunk has no room.
    #[cold]
    #[inline(never)]
    pub(super) fn alloc_slow<const TRACK: bool>(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align().max(P::MIN_ALIGN));
        if size == 0 {
            // A zero-sized block needs no memory: a well-aligned dangling
            // pointer will do, and deallocating it is a no-op.
            self.count_one();
            // SAFETY: `align` is a non-zero power of two.
            return Ok(unsafe { NonNull::new_unchecked(core::ptr::without_provenance_mut(align)) });
        }
        // A new arena's first small block: take the thread's cached chunk
        // and bump in it, with none of the general path's list handling.
        if !P::CANARIES
            && ChunkHeader::is_sentinel(self.current.get())
            && size + align <= P::MIN_CHUNK_SIZE - HEADER_SIZE
            && self.spare.get().is_none()
            && self.byte_limit.get() == usize::MAX
        {
            // The SAFETY argument below needs 8 <= MIN_ALIGN <= 64.
            const { assert!(P::MIN_ALIGN >= 8 && P::MIN_ALIGN <= 64) };
            let req = ChunkRequest {
                min_size: P::MIN_CHUNK_SIZE,
                map_size: P::MIN_CHUNK_SIZE,
                guards: P::GUARD_PAGES,
            };
            if let Some(c) = chunk::acquire_local(req) {
                self.count_chunk(c);
                self.current.set(c);
                let start = ChunkHeader::data_start(c);
                let pad = align::padding_for(start.addr().get(), align);
                let step = pad + Self::round(size);
                // The data area holds at least MIN_CHUNK_SIZE - HEADER_SIZE >=
                // size + align bytes; `start` is 64-aligned and `align >= 8`,
                // so `pad` and `round(size)` are multiples of 8 and
                // `step <= (align - 8) + (size + 7) < size + align`.
                let limit = ChunkHeader::capacity(c);
                // SAFETY: by the bound above, the block, the new cursor
                // (`step`) and the limit lie inside the chunk's data area.
                let (block, end, limit) = unsafe { (start.add(pad), start.add(step), start.add(limit)) };
                self.cursor.set(end);
                self.limit.set(limit);
                self.add_padding(step - size);
                self.count_one();
                // (No ASan unpoisoning: a chunk in the thread's slot was
                // unpoisoned when it was released.)
                return Ok(block);
            }
        }
        // Small requests (the common case) fit any chunk; skip the maths.
        // No overflow: a Layout's size plus its alignment is at most
        // isize::MAX + 1.
        // Under canaries a block needs room for its header, pad words and
        // canary too (no overflow: a Layout's size plus its alignment is at
        // most isize::MAX + 1).
        let span = if P::CANARIES { debug::worst_span(size, align) } else { size };
        let need = if span + align <= P::MIN_CHUNK_SIZE - HEADER_SIZE {
            P::MIN_CHUNK_SIZE
        } else {
            Self::chunk_size_for(span, align).ok_or(AllocError)?
        };
        let next = self.next_chunk_size();
        let c = if let Some(c) = self.take_spare(span, align) {
            c
        } else if need > next {
            return if P::CANARIES {
                self.alloc_oversized_checked(layout, need, Self::flags::<TRACK>())
            } else {
                self.alloc_oversized(size, align, need)
            };
        } else {
            self.new_chunk(need, next)?
        };
        self.enter(c);
        if P::CANARIES {
            // The chunk was chosen with room for the worst-case span.
            return self.bump_checked(layout, Self::flags::<TRACK>()).ok_or(AllocError);
        }
        // The fresh chunk has room by construction; the fast path now
        // succeeds (a failure would mean a bug in the sizing, reported as
        // an allocation error rather than a loop).
        let cursor = self.cursor.get();
        let b = align::bump_up(cursor.addr().get(), self.limit_addr(), size, align, P::MIN_ALIGN)
            .ok_or(AllocError)?;
        let (at, to) = (b.start - cursor.addr().get(), b.end - cursor.addr().get());
        // SAFETY: `bump_up` placed the block and the new cursor inside the
        // current chunk's data.
        let (start, end) = unsafe { (cursor.add(at), cursor.add(to)) };
        self.cursor.set(end);
        self.add_padding(b.end - cursor.addr().get() - size);
        self.count_one();
        debug::unpoison(start, size);
        Ok(start)
    }

    /// A block too large for the next regular chunk: a chunk of its own, on
    /// the `big` list; the current chunk stays current.
    #[inline(never)]
    pub(super) fn alloc_oversized(
        &self,
        size: usize,
        align: usize,
        need: usize,
    ) -> Result<NonNull<u8>, AllocError> {
        let c = self.new_chunk(need, need)?;
        let start = ChunkHeader::data_start(c);
        let Some(b) = align::bump_up(start.addr().get(), ChunkHeader::data_end(c), size, align, P::MIN_ALIGN)
        else {
            // Cannot happen (the chunk was sized for the block); give the
            // chunk back rather than leak it.
            self.disown(c);
            return Err(AllocError);
        };
        // SAFETY: the header is ours and not the sentinel.
        let h = unsafe { c.as_ref() };
        h.prev.set(self.big.get());
        h.used_end.set(b.end);
        self.big.set(Some(c));
        self.retired_used.set(self.retired_used.get() + (b.end - start.addr().get()));
        self.add_padding(b.end - start.addr().get() - size);
        self.count_one();
        // SAFETY: `bump_up` placed the block inside the chunk's data.
        let block = unsafe { start.add(b.start - start.addr().get()) };
        debug::unpoison(block, size);
        Ok(block)
    }

    /// [`alloc_oversized`](Self::alloc_oversized) under canaries: the
    /// block's header at the chunk's data start, its canary after it.
    #[inline(never)]
    pub(super) fn alloc_oversized_checked(
        &self,
        layout: Layout,
        need: usize,
        flags: u64,
    ) -> Result<NonNull<u8>, AllocError> {
        let (size, align) = (layout.size(), layout.align().max(P::MIN_ALIGN));
        let c = self.new_chunk(need, need)?;
        let start = ChunkHeader::data_start(c);
        let (at, next) = debug::place_with_header(start.addr().get(), size, align);
        if next > ChunkHeader::data_end(c) {
            self.disown(c);
            return Err(AllocError);
        }
        let used = next - start.addr().get();
        // SAFETY: the span `start..next` lies in the fresh chunk's data
        // (checked above), 8-aligned by `place`.
        let block = unsafe {
            debug::write_block(start, at - debug::HEADER - start.addr().get(), size, flags);
            start.add(at - start.addr().get())
        };
        // SAFETY: the header is ours and not the sentinel.
        let h = unsafe { c.as_ref() };
        h.prev.set(self.big.get());
        h.used_end.set(next);
        self.big.set(Some(c));
        self.retired_used.set(self.retired_used.get() + used);
        self.add_padding(used - size);
        self.count_one();
        self.log_alloc(block, layout);
        Ok(block)
    }

    /// Usable chunk size (header included) that holds `size` bytes at
    /// `align`, or `None` if unrepresentable.
    pub(super) fn chunk_size_for(size: usize, align: usize) -> Option<usize> {
        align::chunk_size_for(size, align, HEADER_SIZE, crate::sys::page_size(), 0)
    }

    /// The size of the next regular chunk: twice the current one.
    pub(super) fn next_chunk_size(&self) -> usize {
        let current = ChunkHeader::size(self.current.get());
        current.saturating_mul(2).clamp(P::MIN_CHUNK_SIZE, isize::MAX as usize / 2 + 1)
    }

    /// A chunk from the cache or the OS, counted as this arena's.
    pub(super) fn new_chunk(
        &self,
        min_size: usize,
        map_size: usize,
    ) -> Result<NonNull<ChunkHeader>, AllocError> {
        let c = if self.byte_limit.get() == usize::MAX {
            // Ask the cache for the geometric size too, not just what this
            // request needs: a smaller cached chunk would stall the growth
            // and make every reset cycle refill.
            chunk::acquire(ChunkRequest {
                min_size: map_size.max(min_size),
                map_size,
                guards: P::GUARD_PAGES,
            })
        } else {
            let room = self.byte_limit.get().saturating_sub(self.reserved.get());
            if min_size > room {
                return Err(AllocError);
            }
            // Under a cap, map exactly what fits rather than take a cached
            // chunk of unknown size.
            chunk::map(map_size.min(room).max(min_size), P::GUARD_PAGES).ok()
        };
        let c = c.ok_or(AllocError)?;
        self.count_chunk(c);
        Ok(c)
    }

    /// Counts a chunk as this arena's.
    pub(super) fn count_chunk(&self, c: NonNull<ChunkHeader>) {
        self.reserved.set(self.reserved.get() + ChunkHeader::size(c));
        self.chunks.set(self.chunks.get() + 1);
        if P::LOG_EVENTS {
            let (chunk, size) = (c.addr().get(), ChunkHeader::size(c));
            debug::log(Event::ChunkMap { arena: self.id(), chunk, size });
        }
    }

    /// Gives chunk `c` back to the cache or the OS (the log sees it).
    pub(super) fn release_chunk(&self, c: NonNull<ChunkHeader>) {
        if P::LOG_EVENTS {
            let (chunk, size) = (c.addr().get(), ChunkHeader::size(c));
            debug::log(Event::ChunkUnmap { arena: self.id(), chunk, size });
        }
        chunk::give_back(c);
    }

    /// Takes the first spare chunk in which `size` bytes at `align` fit.
    pub(super) fn take_spare(&self, size: usize, align: usize) -> Option<NonNull<ChunkHeader>> {
        let mut link: Option<NonNull<ChunkHeader>> = None;
        let mut cur = self.spare.get();
        while let Some(c) = cur {
            // SAFETY: spare chunks are owned by this arena and live.
            let next = unsafe { c.as_ref() }.prev.get();
            let start = ChunkHeader::data_start(c).addr().get();
            if align::bump_up(start, ChunkHeader::data_end(c), size, align, P::MIN_ALIGN).is_some() {
                match link {
                    // SAFETY: as above.
                    Some(l) => unsafe { l.as_ref() }.prev.set(next),
                    None => self.spare.set(next),
                }
                return Some(c);
            }
            link = Some(c);
            cur = next;
        }
        None
    }

    /// Makes `c` (owned, unlinked) the current chunk.
    pub(super) fn enter(&self, c: NonNull<ChunkHeader>) {
        let old = self.current.get();
        // SAFETY: `c` is owned by this arena and not the sentinel.
        let h = unsafe { c.as_ref() };
        if ChunkHeader::is_sentinel(old) {
            h.prev.set(None);
        } else {
            let used = self.cursor.get().addr().get();
            // SAFETY: the current chunk is live and not the sentinel.
            unsafe { old.as_ref() }.used_end.set(used);
            self.retired_used
                .set(self.retired_used.get() + (used - ChunkHeader::data_start(old).addr().get()));
            h.prev.set(Some(old));
        }
        self.current.set(c);
        let start = ChunkHeader::data_start(c);
        self.cursor.set(start);
        // SAFETY: the data area runs from `start` to `data_end`.
        self.limit.set(unsafe { start.add(ChunkHeader::capacity(c)) });
    }

    #[inline(always)]
    pub(super) fn limit_addr(&self) -> usize {
        self.limit.get().addr().get()
    }

    // ---------------------------------------------------------------
    // In-place operations on the last block (the Allocator impls)
    // ---------------------------------------------------------------

    #[inline(always)]
    pub(super) fn round(size: usize) -> usize {
        align::round_up(size, P::MIN_ALIGN)
    }

    /// The bytes a block of `size` counts for in `allocated_bytes`: its
    /// size with exact statistics, else its size rounded to MIN_ALIGN (the
    /// fast path does not record the rounding).
    #[inline(always)]
    pub(super) fn counted(size: usize) -> usize {
        if P::EXACT_STATS {
            size
        } else {
            Self::round(size)
        }
    }

    /// Whether the block at `ptr` of `size` bytes is the last one handed
    /// out (its rounded end is the cursor).
    #[inline(always)]
    pub(super) fn is_last(&self, ptr: NonNull<u8>, size: usize) -> bool {
        let tail = if P::CANARIES { debug::TAIL } else { 0 };
        ptr.addr().get().wrapping_add(Self::round(size) + tail) == self.cursor.get().addr().get()
    }

    /// `ptr` with the provenance of the chunk it lies in (found by walking
    /// the arena's lists), for writing a header below a block that is not
    /// in the current chunk. `None` if no chunk holds it.
    pub(super) fn in_chunk(&self, ptr: NonNull<u8>) -> Option<NonNull<u8>> {
        let addr = ptr.addr().get();
        let mut found = None;
        self.for_each_chunk(|c, _| {
            let start = ChunkHeader::data_start(c);
            if found.is_none() && start.addr().get() <= addr && addr < ChunkHeader::data_end(c) {
                // SAFETY: `addr` lies inside the chunk's data.
                found = Some(unsafe { start.add(addr - start.addr().get()) });
            }
        });
        found
    }

    /// Calls `f(chunk, used_end)` for every chunk that may hold blocks: the
    /// used list (the current chunk up to the cursor) and the big list.
    pub(super) fn for_each_chunk(&self, mut f: impl FnMut(NonNull<ChunkHeader>, usize)) {
        let current = self.current.get();
        let mut end = self.cursor.get().addr().get();
        let mut cur = (!ChunkHeader::is_sentinel(current)).then_some(current);
        while let Some(c) = cur {
            f(c, end);
            // SAFETY: chunks on the arena's lists are owned and live.
            cur = unsafe { c.as_ref() }.prev.get();
            if let Some(p) = cur {
                // SAFETY: as above.
                end = unsafe { p.as_ref() }.used_end.get();
            }
        }
        let mut cur = self.big.get();
        while let Some(c) = cur {
            // SAFETY: as above.
            let h = unsafe { c.as_ref() };
            f(c, h.used_end.get());
            cur = h.prev.get();
        }
    }

    #[inline(always)]
    pub(super) fn count_one(&self) {
        self.count.set(self.count.get() + 1);
    }

    /// Records the rounding and alignment padding of a new block (only
    /// with exact statistics; see `Policy::EXACT_STATS`).
    #[inline(always)]
    pub(super) fn add_padding(&self, bytes: usize) {
        if P::EXACT_STATS {
            self.padding.set(self.padding.get() + bytes);
        }
    }

    /// Data the cursor has passed over in all chunks.
    #[inline]
    pub(super) fn consumed(&self) -> usize {
        let start = ChunkHeader::data_start(self.current.get()).addr().get();
        self.retired_used.get() + (self.cursor.get().addr().get() - start)
    }

    /// Live bytes: consumed minus padding.
    #[inline]
    pub(super) fn allocated(&self) -> usize {
        self.consumed().saturating_sub(self.padding.get())
    }

    #[inline]
    pub(super) fn note_peak(&self) {
        self.peak.set(self.peak.get().max(self.allocated()));
    }
}
