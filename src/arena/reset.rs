//! Going back: marks and rewinds, scopes, `reset`, guard pages of arena
//! stacks, and giving every chunk back when the arena drops.

use crate::chunk::{self, ChunkHeader};
use crate::debug::{self, Event};
use crate::policy::Policy;
use crate::sys;
use crate::walk;
use core::alloc::Layout;
use core::ptr::NonNull;
use std::io;

use super::{Arena, Mark, StackGuard, When};

impl<P: Policy> Arena<P> {
    pub(super) fn mark(&self) -> Mark {
        Mark {
            current: self.current.get(),
            cursor: self.cursor.get(),
            big: self.big.get(),
            padding: self.padding.get(),
            retired_used: self.retired_used.get(),
            stack_guards: self.stack_guards.get(),
            drops: self.drops.get(),
        }
    }

    /// Goes back to `m`: chunks entered since become spares, big chunks made
    /// since go back to the cache.
    ///
    /// # Safety
    /// `m` was taken from this arena, marks are rewound in LIFO order, and
    /// no block handed out since `m` is used again.
    pub(super) unsafe fn rewind(&self, m: Mark) {
        // SAFETY: the values recorded since `m` were made since it, so by
        // the caller's promise nothing uses them again; `m.drops` is on
        // the list (marks are rewound in LIFO order).
        unsafe { self.run_drops(m.drops) };
        self.unguard_stacks(m.stack_guards);
        self.note_peak();
        let mut c = self.current.get();
        let mut used_end = self.cursor.get().addr().get();
        while c != m.current {
            // SAFETY: chunks on the used list are owned and live.
            let h = unsafe { c.as_ref() };
            let prev = h.prev.get().unwrap_or(chunk::empty());
            self.give_up(c, ChunkHeader::data_start(c), used_end, When::ScopeExit);
            h.prev.set(self.spare.get());
            self.spare.set(Some(c));
            c = prev;
            if !ChunkHeader::is_sentinel(c) {
                // SAFETY: as above.
                used_end = unsafe { c.as_ref() }.used_end.get();
            }
        }
        if !ChunkHeader::is_sentinel(c) {
            // `m.cursor..used_end` lies in chunk `c`'s data and holds only
            // blocks made since the mark.
            self.give_up(c, m.cursor, used_end, When::ScopeExit);
        }
        let mut b = self.big.get();
        while b != m.big {
            let Some(bc) = b else { break };
            // SAFETY: big chunks are owned and live.
            b = unsafe { bc.as_ref() }.prev.get();
            self.disown(bc);
        }
        self.big.set(m.big);
        self.current.set(m.current);
        self.cursor.set(m.cursor);
        let start = ChunkHeader::data_start(m.current);
        // SAFETY: the data area runs from `start` to `data_end`.
        self.limit.set(unsafe { start.add(ChunkHeader::capacity(m.current)) });
        self.padding.set(m.padding);
        self.retired_used.set(m.retired_used);
    }

    /// A block of `layout` (page-aligned, more than one page) whose first
    /// page is a guard page until the arena gives the block up (at
    /// `reset`, at drop, or when the scope it was made in ends), registered
    /// in the guard-page table with the block's end as the top it guards.
    /// The building block of `Arena::alloc_stack` (`stack/arena_stack.rs`).
    ///
    /// Errors: `OutOfMemory` when the arena cannot grow (its allocation
    /// limit, or mmap failing), or the OS reason the guard could not be
    /// installed.
    pub(crate) fn alloc_guarded(&self, layout: Layout) -> io::Result<NonNull<u8>> {
        let page = sys::page_size();
        debug_assert!(layout.align() >= page && layout.size() > page);
        let exhausted = |_| io::Error::new(io::ErrorKind::OutOfMemory, "the arena cannot grow");
        let record = self.try_alloc_layout(Layout::new::<StackGuard>()).map_err(exhausted)?;
        let block = self.try_alloc_layout(layout).map_err(exhausted)?;
        // SAFETY: the first page of a block just handed out, page-aligned
        // and ours; nothing else refers to it.
        let kind = unsafe { sys::guard(block, page)? };
        let record = record.cast::<StackGuard>();
        // SAFETY: a fresh block of the arena, sized and aligned for a
        // `StackGuard`; it lives until the arena gives its memory up, and
        // every path that does walks this list first (`unguard_stacks`).
        unsafe { record.as_ptr().write(StackGuard { prev: self.stack_guards.get(), page: block, kind }) };
        self.stack_guards.set(record.as_ptr());
        let top = block.as_ptr().wrapping_add(layout.size());
        crate::guards::register(block.as_ptr() as usize, top as usize);
        Ok(block)
    }

    /// Takes off the guard pages of stacks made after `keep` (the list
    /// head a mark saw; null for all of them).
    #[inline]
    pub(super) fn unguard_stacks(&self, keep: *mut StackGuard) {
        if self.stack_guards.get() != keep {
            self.unguard_stacks_slow(keep);
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn unguard_stacks_slow(&self, keep: *mut StackGuard) {
        let page = sys::page_size();
        let mut cur = self.stack_guards.get();
        while cur != keep && !cur.is_null() {
            // SAFETY: records on the list are live blocks of this arena
            // (the arena has not given their memory up: this walk comes
            // first).
            let StackGuard { prev, page: at, kind } = unsafe { cur.read() };
            cur = prev;
            crate::guards::unregister(at.as_ptr() as usize);
            // A failure would leave the page guarded: the arena would then
            // fault on it rather than hand out memory it cannot use; that is
            // fatal but not unsound. munmap of the chunk still works.
            // SAFETY: `at` is a page this arena guarded with `kind`, inside
            // one of its chunks; no stack on it is alive (the caller is
            // giving up every block made since).
            if unsafe { sys::unguard(at, page, kind) }.is_err() {
                sys::fatal(b"fiberalloc: could not remove an arena stack's guard page\n");
            }
        }
        self.stack_guards.set(keep);
    }

    /// Gives up the blocks of chunk `c` from `from` (a position the cursor
    /// once had in it) to `to`: under canaries checks them (and the chunk
    /// header) and aborts with a report on corruption; at drop under
    /// `TRACK_LEAKS` reports the tracked blocks still live; then poisons
    /// the range.
    #[inline(always)]
    pub(super) fn give_up(&self, c: NonNull<ChunkHeader>, from: NonNull<u8>, to: usize, when: When) {
        if !(P::CANARIES || P::POISON || cfg!(fiberalloc_asan)) {
            return;
        }
        if ChunkHeader::is_sentinel(c) || to <= from.addr().get() {
            return;
        }
        if P::CANARIES {
            let leaks = P::TRACK_LEAKS && matches!(when, When::Drop);
            // SAFETY: `from..to` is used data of the chunk, laid out by the
            // canary paths since the cursor stood at `from`; the arena is
            // not `Sync`, so no other thread writes it.
            unsafe { walk::sweep(c, from, to, leaks, self.id(), when.name()) };
        }
        // SAFETY: `from..to` is used data of chunk `c` that the caller is
        // giving up; nothing refers to it any more.
        unsafe { debug::poison_freed(from, to - from.addr().get(), P::POISON, P::POISON_BYTE) };
    }

    /// Stops counting `c` as this arena's and gives it back.
    pub(super) fn disown(&self, c: NonNull<ChunkHeader>) {
        self.reserved.set(self.reserved.get() - ChunkHeader::size(c));
        self.chunks.set(self.chunks.get() - 1);
        self.release_chunk(c);
    }

    /// Runs `f` and then frees everything it allocated, also when `f`
    /// panics. Memory the scope mapped is kept for later allocations.
    ///
    /// ```
    /// let mut arena: fiberalloc::Arena = fiberalloc::Arena::new();
    /// let sum = arena.scope(|a| {
    ///     let v = a.alloc_slice_copy(&[1u32, 2, 3]);
    ///     v.iter().sum::<u32>()
    /// });
    /// assert_eq!((sum, arena.stats().allocated_bytes), (6, 0));
    /// ```
    pub fn scope<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        struct Rewind<'a, P: Policy>(&'a Arena<P>, Mark);
        impl<P: Policy> Drop for Rewind<'_, P> {
            fn drop(&mut self) {
                // The arena is borrowed mutably for the whole scope, so no
                // other mark is rewound in between, and nothing allocated
                // inside outlives `f` (its lifetime is bounded by the borrow).
                // SAFETY: the mark was taken by `scope` on this arena; see above.
                unsafe { self.0.rewind(self.1) }
                if P::LOG_EVENTS {
                    debug::log(Event::ScopeExit { arena: self.0.id() });
                }
            }
        }
        if P::LOG_EVENTS {
            debug::log(Event::ScopeEnter { arena: self.id() });
        }
        let guard = Rewind(self, self.mark());
        f(guard.0)
    }

    /// Frees everything: keeps the largest chunk (an oversized one
    /// included) for reuse and gives the others back.
    pub fn reset(&mut self) {
        // SAFETY: `&mut self` proves no block is borrowed any more.
        unsafe { self.reset_shared() }
    }

    /// [`reset`](Self::reset) through a shared reference.
    ///
    /// # Safety
    /// No block handed out by this arena is used again, and no scope of it
    /// is open.
    pub(crate) unsafe fn reset_shared(&self) {
        if P::LOG_EVENTS {
            debug::log(Event::Reset { arena: self.id() });
        }
        // SAFETY: by the caller's promise no block (so no recorded value)
        // is used again.
        unsafe { self.run_drops(core::ptr::null_mut()) };
        self.unguard_stacks(core::ptr::null_mut());
        self.note_peak();
        let current = self.current.get();
        // No chunk, or one that is current (so no spare or big one): rewind
        // in place. The count answers without touching the chunk header,
        // which is cold after a large fill.
        if self.chunks.get() == 0 || (self.chunks.get() == 1 && !ChunkHeader::is_sentinel(current)) {
            // One chunk (or none): rewind it in place.
            self.give_up(
                current,
                ChunkHeader::data_start(current),
                self.cursor.get().addr().get(),
                When::Reset,
            );
            self.cursor.set(ChunkHeader::data_start(current));
            self.padding.set(0);
            self.count.set(0);
            self.retired_used.set(0);
            return;
        }
        // Pick the largest chunk (used, spare or big) to keep.
        let mut keep: Option<NonNull<ChunkHeader>> = None;
        let mut release_list = |list: Option<NonNull<ChunkHeader>>, first_used_end: Option<usize>| {
            let mut cur = list;
            let mut used_end = first_used_end;
            while let Some(c) = cur {
                // SAFETY: chunks on the arena's lists are owned and live.
                let h = unsafe { c.as_ref() };
                cur = h.prev.get();
                if let Some(end) = used_end {
                    self.give_up(c, ChunkHeader::data_start(c), end, When::Reset);
                    used_end = cur.map(|p| {
                        // SAFETY: as above.
                        unsafe { p.as_ref() }.used_end.get()
                    });
                }
                match keep {
                    Some(k) if ChunkHeader::size(k) >= ChunkHeader::size(c) => self.disown(c),
                    Some(k) => {
                        self.disown(k);
                        keep = Some(c);
                    }
                    None => keep = Some(c),
                }
            }
        };
        let current = self.current.get();
        if !ChunkHeader::is_sentinel(current) {
            release_list(Some(current), Some(self.cursor.get().addr().get()));
        }
        release_list(self.spare.take(), None);
        let big = self.big.take();
        // SAFETY: big chunks are owned and live; their `used_end` is set
        // when they are made.
        release_list(big, big.map(|c| unsafe { c.as_ref() }.used_end.get()));
        self.current.set(chunk::empty());
        self.cursor.set(chunk::empty_cursor());
        self.limit.set(chunk::empty_cursor());
        self.padding.set(0);
        self.count.set(0);
        self.retired_used.set(0);
        if let Some(k) = keep {
            // `enter` links from the sentinel: `k` becomes a lone chunk.
            self.enter(k);
        }
    }
}

impl<P: Policy> Drop for Arena<P> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the arena is going away: nothing borrows its blocks.
        unsafe { self.run_drops(core::ptr::null_mut()) };
        self.unguard_stacks(core::ptr::null_mut());
        // Every chunk goes back to the cache; nothing is kept.
        let current = self.current.get();
        if self.chunks.get() == 0 || (self.chunks.get() == 1 && !ChunkHeader::is_sentinel(current)) {
            // The common case: no chunk, or one that is current.
            if !ChunkHeader::is_sentinel(current) {
                self.give_up(
                    current,
                    ChunkHeader::data_start(current),
                    self.cursor.get().addr().get(),
                    When::Drop,
                );
                self.release_chunk(current);
            }
            return;
        }
        self.release_all();
    }
}

impl<P: Policy> Arena<P> {
    /// `drop` for an arena with several chunks: every one goes back.
    #[cold]
    #[inline(never)]
    fn release_all(&mut self) {
        let current = self.current.get();
        let mut used_end = self.cursor.get().addr().get();
        let mut cur = (!ChunkHeader::is_sentinel(current)).then_some(current);
        while let Some(c) = cur {
            // SAFETY: chunks on the used list are owned and live.
            cur = unsafe { c.as_ref() }.prev.get();
            self.give_up(c, ChunkHeader::data_start(c), used_end, When::Drop);
            if let Some(p) = cur {
                // SAFETY: as above.
                used_end = unsafe { p.as_ref() }.used_end.get();
            }
            self.release_chunk(c);
        }
        for (list, used) in [(self.spare.get(), false), (self.big.get(), true)] {
            let mut cur = list;
            while let Some(c) = cur {
                // SAFETY: chunks on the spare and big lists are owned and live.
                let h = unsafe { c.as_ref() };
                cur = h.prev.get();
                // Spare chunks were given up (checked and poisoned) when
                // their scope ended; big chunks hold one block each.
                if used {
                    self.give_up(c, ChunkHeader::data_start(c), h.used_end.get(), When::Drop);
                }
                self.release_chunk(c);
            }
        }
    }
}
