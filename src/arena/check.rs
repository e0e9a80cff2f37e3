//! Looking at an arena: statistics, the canary and invariant checks, leaks,
//! the memory map, and the walk over its chunks they share.

use crate::chunk::ChunkHeader;
use crate::debug::{Corruption, Leak};
use crate::policy::Policy;
use crate::stats::Stats;
use crate::walk;
use core::ptr::NonNull;

use super::Arena;

impl<P: Policy> Arena<P> {
    /// A snapshot of the arena's counters.
    pub fn stats(&self) -> Stats {
        let allocated = self.allocated();
        Stats {
            allocated_bytes: allocated,
            peak_bytes: self.peak.get().max(allocated),
            allocation_count: self.count.get(),
            allocations_counted: true,
            padding_bytes: self.padding.get(),
            reserved_bytes: self.reserved.get(),
            chunk_count: self.chunks.get(),
        }
    }

    /// Checks the arena's invariants (see the module docs) and, under
    /// policies with canaries (`Safe`, `Debug`), every chunk header and
    /// every block's header and canary; `Err` names the first problem (for
    /// a block: its address, size and chunk). Walks all the arena's
    /// memory: cheap enough for tests and debug builds, not for hot loops.
    ///
    /// ```
    /// use fiberalloc::{policy::Safe, Arena};
    /// let arena = Arena::with_policy(Safe);
    /// let b = arena.alloc_slice_copy(&[0u8; 13]);
    /// assert_eq!(arena.validate(), Ok(()));
    /// // One byte past the block (what a buggy unsafe copy might do):
    /// // SAFETY: none for real code; here the byte is the block's canary,
    /// // still memory of the arena's chunk, and it is put back below.
    /// unsafe { b.as_mut_ptr().add(13).write(0) };
    /// let err = arena.validate().unwrap_err();
    /// assert!(err.to_string().contains("13 bytes"));
    /// # // SAFETY: the canary byte put back (dropping would abort otherwise).
    /// # unsafe { b.as_mut_ptr().add(13).write(0xCA) };
    /// ```
    pub fn validate(&self) -> Result<(), Corruption> {
        let e = Corruption::Bookkeeping;
        let current = self.current.get();
        let cursor = self.cursor.get().addr().get();
        if ChunkHeader::data_start(current).addr().get() > cursor || cursor > self.limit_addr() {
            return Err(e("cursor outside the current chunk"));
        }
        if self.limit_addr() != ChunkHeader::data_end(current) {
            return Err(e("limit is not the current chunk's end"));
        }
        if !ChunkHeader::is_sentinel(current) && !crate::align::is_aligned(cursor, P::MIN_ALIGN) {
            return Err(e("cursor not aligned to MIN_ALIGN"));
        }
        // Walks one list; returns (bytes, chunks, data used in retired
        // chunks) for it.
        let walk = |list: Option<NonNull<ChunkHeader>>, is_used: bool| {
            let (mut bytes, mut count, mut used) = (0usize, 0usize, 0usize);
            let mut cur = list;
            while let Some(c) = cur {
                if ChunkHeader::is_sentinel(c) {
                    return Err(e("sentinel linked into a list"));
                }
                bytes += ChunkHeader::size(c);
                count += 1;
                if count > 1 << 40 {
                    return Err(e("cycle in a chunk list"));
                }
                // SAFETY: chunks on the arena's lists are owned and live.
                let h = unsafe { c.as_ref() };
                if is_used && count > 1 {
                    let end = h.used_end.get();
                    let start = ChunkHeader::data_start(c).addr().get();
                    if end < start || end > ChunkHeader::data_end(c) {
                        return Err(e("used_end outside its chunk"));
                    }
                    used += end - start;
                }
                cur = h.prev.get();
            }
            Ok((bytes, count, used))
        };
        let used_list = if ChunkHeader::is_sentinel(current) { None } else { Some(current) };
        let (b1, c1, used_regular) = walk(used_list, true)?;
        let (b2, c2, _) = walk(self.spare.get(), false)?;
        let (b3, c3, _) = walk(self.big.get(), false)?;
        if b1 + b2 + b3 != self.reserved.get() || c1 + c2 + c3 != self.chunks.get() {
            return Err(e("reserved bytes or chunk count out of step with the lists"));
        }
        if used_regular > self.retired_used.get() {
            return Err(e("retired_used below the retired chunks' use"));
        }
        if self.consumed() < self.padding.get() {
            return Err(e("more padding than consumed bytes"));
        }
        // SAFETY: the arena is not `Sync`: no other thread writes its
        // blocks while the walk reads them.
        unsafe { walk::validate(self) }
    }

    /// The blocks still live that were allocated through a
    /// `dealloc`-capable path (the `Allocator` impls, so allocator-api2's
    /// and hashbrown's collections, and [`collections::Vec`](crate::collections::Vec)),
    /// oldest chunk last. Only `Debug` records them; under other policies
    /// the list is empty. Blocks from `alloc`, `alloc_str` and the like are
    /// never freed one by one and are not listed. A walk stops at the first
    /// corrupted block ([`validate`](Self::validate) names it).
    ///
    /// ```
    /// use fiberalloc::{policy::Debug, Arena};
    /// let arena = Arena::with_policy(Debug);
    /// let mut kept = allocator_api2::vec::Vec::new_in(&arena);
    /// kept.extend([1u64, 2, 3]);
    /// kept.shrink_to_fit();
    /// let freed = allocator_api2::boxed::Box::new_in([0u8; 100], &arena);
    /// drop(freed);
    /// let leaks = arena.leaks();
    /// assert_eq!(leaks.len(), 1);
    /// assert_eq!((leaks[0].addr, leaks[0].size), (kept.as_ptr() as usize, 24));
    /// ```
    pub fn leaks(&self) -> Vec<Leak> {
        if !P::TRACK_LEAKS {
            return Vec::new();
        }
        // SAFETY: as in `validate`.
        unsafe { walk::leaks(self) }
    }

    /// A picture of the arena's chunks for [`report::svg`](crate::report::svg):
    /// per chunk its live bytes, padding (headers, canaries, alignment and
    /// freed blocks), free space and guard pages. Under `Fast`, which keeps
    /// no per-block records, a chunk's used bytes all count as live; the
    /// arena-wide padding is in [`stats`](Self::stats).
    pub fn memory_map(&self) -> crate::report::MemoryMap {
        let title = format!("Arena<{}>", walk::policy_name::<P>());
        // SAFETY: as in `validate`.
        unsafe { walk::memory_map(self, title) }
    }

    /// Whether `ptr` lies in one of this arena's chunks (data areas).
    pub fn contains(&self, ptr: *const u8) -> bool {
        walk::contains(self, ptr.addr())
    }
}

// SAFETY: the chunks named are on the arena's lists, owned and live while
// it is borrowed; a used chunk's blocks end at the cursor (the current
// chunk) or at its recorded `used_end`, and under `CANARIES` every
// allocation path writes block headers and canaries.
unsafe impl<P: Policy> walk::Chunks for Arena<P> {
    const CANARIES: bool = P::CANARIES;

    fn used(&self, mut f: impl FnMut(walk::Used)) {
        let current = self.current.get();
        self.for_each_chunk(|c, end| {
            f(walk::Used {
                chunk: c,
                start: ChunkHeader::data_start(c),
                end,
                limit: ChunkHeader::data_end(c),
                current: c == current,
            })
        });
    }

    fn spare(&self, mut f: impl FnMut(NonNull<ChunkHeader>)) {
        let mut cur = self.spare.get();
        while let Some(c) = cur {
            f(c);
            // SAFETY: spare chunks are owned and live.
            cur = unsafe { c.as_ref() }.prev.get();
        }
    }
}

impl<P: Policy> core::fmt::Debug for Arena<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena").field("stats", &self.stats()).finish()
    }
}
