//! Giving blocks back, growing and shrinking them: in place when the block
//! is the last one, by copying otherwise.

use crate::debug::{self, Event};
use crate::policy::Policy;
use crate::AllocError;
use core::alloc::Layout;
use core::ptr::NonNull;

use super::Arena;

impl<P: Policy> Arena<P> {
    /// Gives a block back; reclaims it if it is the last one.
    ///
    /// # Safety
    /// `ptr` was handed out by this arena for `layout` (or a layout it was
    /// since grown or shrunk to) and is not used again.
    #[inline]
    pub(crate) unsafe fn dealloc_raw(&self, ptr: NonNull<u8>, layout: Layout) {
        self.note_peak();
        if P::LOG_EVENTS {
            debug::log(Event::Dealloc { arena: self.id(), addr: ptr.addr().get(), size: layout.size() });
        }
        if P::CANARIES {
            // SAFETY: forwarded from the caller.
            return unsafe { self.dealloc_checked(ptr, layout) };
        }
        if self.is_last(ptr, layout.size()) {
            // The block's rounding was padding; the cursor gives it back.
            let round = Self::round(layout.size());
            if P::EXACT_STATS {
                self.padding.set(self.padding.get() - (round - layout.size()));
            }
            // SAFETY: the block lies right below the cursor in the current
            // chunk, so moving the cursor back stays inside the chunk.
            self.cursor.set(unsafe { self.cursor.get().sub(round) });
            // SAFETY: the block is ours again and writable.
            unsafe { debug::poison_freed(ptr, layout.size(), P::POISON, P::POISON_BYTE) };
        } else {
            // A hole the cursor cannot take back. Without exact stats the
            // block's rounding was counted as allocated, so it goes too.
            self.padding.set(self.padding.get() + Self::counted(layout.size()));
            // SAFETY: the block is ours again and writable.
            unsafe { debug::poison_freed(ptr, layout.size(), P::POISON, P::POISON_BYTE) };
        }
    }

    /// [`dealloc_raw`](Self::dealloc_raw) under canaries: the last block
    /// gives back its header and canary too; any other is marked freed in
    /// its header, so walks and leak reports skip it.
    ///
    /// # Safety
    /// As for `dealloc_raw`.
    #[inline(never)]
    pub(super) unsafe fn dealloc_checked(&self, ptr: NonNull<u8>, layout: Layout) {
        let size = layout.size();
        if self.is_last(ptr, size) {
            let cursor = self.cursor.get();
            // SAFETY: the last block's header is 16 bytes below it, in the
            // current chunk.
            let pad = unsafe { debug::pad_of(cursor.with_addr(ptr.addr())) };
            let from = ptr.addr().get() - debug::HEADER - pad;
            let span = cursor.addr().get() - from;
            if P::EXACT_STATS {
                self.padding.set(self.padding.get() - (span - size));
            }
            // SAFETY: `from` is where the cursor stood before the block was
            // made, in the current chunk below the cursor.
            let from = unsafe { cursor.sub(span) };
            self.cursor.set(from);
            // SAFETY: the span is ours again and writable.
            unsafe { debug::poison_freed(from, span, P::POISON, P::POISON_BYTE) };
        } else if let Some(p) = self.in_chunk(ptr) {
            self.padding.set(self.padding.get() + size);
            // SAFETY: `p` is the block, with its chunk's provenance; it is
            // ours again.
            unsafe {
                debug::set_flag(p, debug::FREED);
                debug::poison_freed(p, size, P::POISON, P::POISON_BYTE);
            }
        }
    }

    /// Moves the end of the last block, at `ptr` with `old_size` bytes, so
    /// that it holds `new_size` bytes; `false` (and nothing changed) when
    /// the block is not the last one or the chunk has no room.
    ///
    /// Growth within the block's rounding to `MIN_ALIGN` needs no arena
    /// at all (a block of `old_size` already spans `round(old_size)` bytes,
    /// last or not), and is `true` for any block, when no canary sits right
    /// after the block and no exact padding count must learn of it: a
    /// `Vec<u8>` grown by `reserve_exact(1)` touches the arena once in
    /// eight grows.
    #[inline(always)]
    pub(crate) fn resize_last_in_place(&self, ptr: NonNull<u8>, old_size: usize, new_size: usize) -> bool {
        // (Not under `--cfg fiberalloc_asan`, where the rounding stays
        // poisoned until a resize unpoisons it.)
        let slack_ok = !P::CANARIES && !P::EXACT_STATS && !cfg!(fiberalloc_asan);
        if slack_ok && new_size >= old_size && new_size <= Self::round(old_size) {
            return true;
        }
        if !self.is_last(ptr, old_size) {
            return false;
        }
        let new_round = Self::round(new_size);
        let tail = if P::CANARIES { debug::TAIL } else { 0 };
        if new_round + tail > self.limit_addr() - ptr.addr().get() {
            return false;
        }
        let old_round = Self::round(old_size);
        // The new cursor is `ptr + new_round`, with the provenance of the
        // arena's own cursor rather than the caller's pointer. Computing
        // the address from `ptr` (not from the cursor's value) keeps the
        // cursor load off the critical path of a grow-per-push loop.
        let moved = self.cursor.get().as_ptr().with_addr(ptr.addr().get() + new_round + tail);
        if new_round < old_round {
            self.note_peak();
        }
        if P::CANARIES {
            // SAFETY: the last block lies in the current chunk, below the
            // cursor; its new span fits below the limit (checked above).
            unsafe {
                debug::resize_block(self.cursor.get().with_addr(ptr.addr()), old_size, new_size, false)
            };
        } else {
            debug::unpoison(ptr, new_size);
        }
        // SAFETY: `moved` is `ptr + new_round`, inside the current chunk's
        // data (`new_round <= limit - ptr`), so in bounds and not null.
        self.cursor.set(unsafe { NonNull::new_unchecked(moved) });
        if P::EXACT_STATS {
            // The old block's rounding is given back, the new one's taken.
            let padding = self.padding.get().wrapping_sub(old_round - old_size);
            self.padding.set(padding.wrapping_add(new_round - new_size));
        }
        true
    }

    /// Grows or shrinks a block; in place when it is the last one, it is
    /// aligned for `new` and the chunk has room.
    ///
    /// # Safety
    /// `ptr` was handed out by this arena for `old` and is not used through
    /// its old address after a move. For growth `new.size() >= old.size()`.
    #[inline(always)]
    pub(crate) unsafe fn realloc_raw(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let addr = ptr.addr().get();
        // A mask, not `%` (`is_aligned`): the alignment is a power of two,
        // and a division would cost more than the rest of the in-place path.
        let aligned = crate::align::is_aligned(addr, new.align());
        if aligned {
            if self.resize_last_in_place(ptr, old.size(), new.size()) {
                return Ok(ptr);
            }
            if new.size() <= old.size() {
                // Shrinking a block that is not the last (the last one
                // always shrinks in place above): keep it where it is.
                self.note_peak();
                let freed = Self::counted(old.size()) - Self::counted(new.size());
                self.padding.set(self.padding.get() + freed);
                if P::CANARIES {
                    if let Some(p) = self.in_chunk(ptr) {
                        // SAFETY: a live block of this arena, with its
                        // chunk's provenance; it keeps its span.
                        unsafe { debug::resize_block(p, old.size(), new.size(), true) };
                    }
                }
                return Ok(ptr);
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.realloc_move(ptr, old, new) }
    }

    /// The slow half of [`realloc_raw`](Self::realloc_raw): copy into a
    /// fresh block.
    ///
    /// # Safety
    /// As for `realloc_raw`.
    #[cold]
    #[inline(never)]
    pub(super) unsafe fn realloc_move(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let fresh = self.alloc_tracked(new)?;
        // SAFETY: `fresh` is a new block, disjoint from the old one, and
        // both hold at least min(old, new) bytes.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr.as_ptr(), fresh.as_ptr(), old.size().min(new.size()));
            self.dealloc_raw(ptr, old);
        }
        Ok(fresh)
    }
}
