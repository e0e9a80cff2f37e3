//! The allocation and free paths, top to bottom: `GlobalAlloc`, then each
//! path's fast half, then the slow halves they call.

use super::chunk::{chunk_of, NO_OWNER};
use super::class::{block_size, cacheable, class_of, is_large, GRAIN, SMALL_MAX};
use super::large::{large_alloc, large_free, large_realloc};
use super::owner::FALLBACK;
use super::remote::free_remote;
use super::stats::{FALLBACK_ALLOCS, SHARED_COUNTS};
use super::thread::{with_local, Local, ACTIVE, EXITED, FRESH};
use super::track::{forget, record};
use super::GlobalArena;
use crate::sync::Ordering;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr;

// The contract of `GlobalAlloc`, argued: blocks are disjoint (a small
// block is bumped from a chunk owned by one thread, or by the fallback
// under its lock, or handed out again from the thread cache, where a block
// sits only after its user freed it; fresh space is reused only after the
// live count says every block of the chunk was freed, and cached blocks
// count as live; a large block is its own mapping). Every block is aligned
// as asked (chunk data is 128-aligned and the cursor is aligned up; cached
// blocks serve only requests aligned to at most GRAIN; mappings are
// aligned by `map_aligned`), and `realloc` keeps the contents up to the
// smaller size. Failures return null; nothing panics (arithmetic cannot
// overflow for layouts, whose sizes are at most `isize::MAX`) and nothing
// allocates through another allocator.
// SAFETY: as argued just above.
unsafe impl GlobalAlloc for GlobalArena {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = Self::alloc_layout(layout, false);
        if self.track {
            record(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = Self::alloc_layout(layout, true);
        if self.track {
            record(p, layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.track {
            forget(ptr);
        }
        // SAFETY: forwarded from the caller.
        unsafe { Self::dealloc_raw(ptr, layout) }
    }

    // Inlined into `__rust_realloc`, where `self` is the `static` and the
    // tracking flag a constant.
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        let p = unsafe { Self::realloc_raw(ptr, layout, new_size) };
        if self.track && !p.is_null() {
            forget(ptr);
            record(p, new_size);
        }
        p
    }
}

impl GlobalArena {
    /// `alloc` and `alloc_zeroed`: a large layout gets a fresh mapping
    /// (which reads as zeros), a small one a block from the thread.
    #[inline(always)]
    pub(super) fn alloc_layout(layout: Layout, zero: bool) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if size <= SMALL_MAX && align <= GRAIN {
            // The common case, in a copy of its own: no test for a large
            // layout, one size-class formula, one owner, and no rounding
            // (every block starts at a multiple of GRAIN, so alignment 1
            // is as good as the alignment asked for).
            return Self::alloc_small(size, 1, zero);
        }
        if is_large(size, align) {
            return large_alloc(size, align, zero);
        }
        Self::alloc_small(size, align, zero)
    }

    #[inline(always)]
    pub(super) fn alloc_small(size: usize, align: usize, zero: bool) -> *mut u8 {
        Self::alloc_small_noting(size, align, zero, |_, _| {})
    }

    /// [`alloc_small`](Self::alloc_small), calling `note(block, class)` on
    /// the block handed out (not null) with its size class, worked out once
    /// for the cache, the bump and the note (the C library records the
    /// class in its table; the Rust path notes nothing).
    #[inline(always)]
    pub(super) fn alloc_small_noting(
        size: usize,
        align: usize,
        zero: bool,
        note: impl Fn(*mut u8, usize),
    ) -> *mut u8 {
        let fast = with_local(
            #[inline(always)]
            |l| Self::alloc_in(l, size, align, zero, &note),
        );
        match fast {
            Ok(p) => p,
            Err(_) => {
                let p = Self::alloc_fallback(size, align, zero);
                if !p.is_null() {
                    note(p, class_of(size).0);
                }
                p
            }
        }
    }

    /// A small block for this thread: from its cache of freed blocks (when
    /// it holds any), else bumped from its chunk; `note` as for
    /// [`alloc_small_noting`](Self::alloc_small_noting).
    #[inline(always)]
    pub(super) fn alloc_in(
        l: &Local,
        size: usize,
        align: usize,
        zero: bool,
        note: &impl Fn(*mut u8, usize),
    ) -> *mut u8 {
        // The class is worked out once, for the cache and for the bump.
        let (class, block) = class_of(size);
        if align <= GRAIN {
            if let Some(p) = l.cache.pop_class(class, block) {
                l.counters.on_alloc(size);
                if zero {
                    // SAFETY: the cached block has at least `size` bytes.
                    unsafe { p.as_ptr().write_bytes(0, size) };
                }
                note(p.as_ptr(), class);
                return p.as_ptr();
            }
        }
        // Two copies of the bump, each with its owner's fixed offset and
        // (on the small side) no size-class arithmetic.
        let bumped = if size <= SMALL_MAX {
            l.owners[0].bump_block(block, align, zero)
        } else {
            l.owners[1].bump_block(block, align, zero)
        };
        if let Some(p) = bumped {
            l.counters.on_alloc(size);
            note(p.as_ptr(), class);
            return p.as_ptr();
        }
        let p = Self::alloc_small_slow(l, size, align, zero);
        if !p.is_null() {
            note(p, class);
        }
        p
    }

    /// `dealloc` without the live-block record.
    ///
    /// # Safety
    /// As for [`GlobalAlloc::dealloc`].
    #[inline(always)]
    pub(super) unsafe fn dealloc_raw(ptr: *mut u8, layout: Layout) {
        let (size, align) = (layout.size(), layout.align());
        if size <= SMALL_MAX && align <= GRAIN {
            // As in `alloc_layout`: the common case in a copy of its own
            // (the alignment is used only to tell whether the block may be
            // cached, which it may).
            // SAFETY: forwarded from the caller.
            unsafe { Self::free_small(ptr, size, 1) };
        } else if is_large(size, align) {
            // SAFETY: a large layout was served by `large_alloc` (caller
            // passes the layout it allocated with).
            unsafe { large_free(ptr, size, align) };
        } else {
            // SAFETY: as above, for a small block.
            unsafe { Self::free_small(ptr, size, align) };
        }
    }

    /// `realloc` without the live-block record.
    ///
    /// # Safety
    /// As for [`GlobalAlloc::realloc`].
    #[inline(always)]
    pub(super) unsafe fn realloc_raw(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_size, align) = (layout.size(), layout.align());
        if !is_large(old_size, align) && !is_large(new_size, align) {
            // A block keeps its place when the new size has the same block
            // size (a string grown from 2 to 8 bytes), moves the cursor
            // when it is the thread's last block, and else keeps its place
            // when it shrinks.
            let same = block_size(new_size) == block_size(old_size);
            if !same && Self::resize_in_place(ptr, old_size, new_size, false) {
                return ptr;
            }
            if same || block_size(new_size) < block_size(old_size) {
                // A shrink, or a growth within the block's size class,
                // keeps its place (a shrunk block's tail is lost until the
                // block is freed).
                let _ = with_local(|l| l.counters.on_resize(old_size, new_size));
                return ptr;
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { Self::realloc_slow(ptr, layout, new_size) }
    }

    /// Frees a small block: in place if it is the thread's last one; into
    /// the thread cache if it is cacheable and of a chunk this thread owns
    /// or owned (or of one no owner remembers); else into its chunk's count.
    ///
    /// # Safety
    /// `ptr` is a live small block of `size` bytes aligned to `align`.
    #[inline(always)]
    pub(super) unsafe fn free_small(ptr: *mut u8, size: usize, align: usize) {
        // SAFETY: forwarded from the caller; `class_of` gives the class.
        unsafe { Self::free_small_class(ptr, size, align, || class_of(size)) }
    }

    /// [`free_small`](Self::free_small) with the size's class and block
    /// size given by `class` (see [`free_in_class`](Self::free_in_class)).
    ///
    /// # Safety
    /// As for [`free_small`](Self::free_small), and `class()` returns
    /// `class_of(size)`.
    #[inline(always)]
    pub(super) unsafe fn free_small_class(
        ptr: *mut u8,
        size: usize,
        align: usize,
        class: impl Fn() -> (usize, usize),
    ) {
        let active = with_local(
            #[inline(always)]
            |l| {
                if l.state.get() != ACTIVE {
                    return false;
                }
                // SAFETY: forwarded from the caller.
                unsafe { Self::free_in_class(l, ptr, size, align, class) };
                true
            },
        );
        if active != Ok(true) {
            // SAFETY: forwarded from the caller.
            unsafe { Self::free_small_cold(ptr, size, align) };
        }
    }

    /// A small block freed by a thread whose state is active. Every call
    /// it makes is its last act, so the common paths need no stack frame.
    ///
    /// # Safety
    /// As for [`free_small`](Self::free_small).
    #[inline(always)]
    pub(super) unsafe fn free_in(l: &Local, ptr: *mut u8, size: usize, align: usize) {
        // SAFETY: forwarded from the caller; `class_of` gives the class.
        unsafe { Self::free_in_class(l, ptr, size, align, || class_of(size)) }
    }

    /// [`free_in`](Self::free_in) with the size's class and block size
    /// given by `class` (`class_of(size)`, worked out only on the paths
    /// that need it): the C `free` reads them from its table, and works out
    /// nothing from the size.
    ///
    /// # Safety
    /// As for [`free_small`](Self::free_small), and `class()` returns
    /// `class_of(size)`.
    #[inline(always)]
    pub(super) unsafe fn free_in_class(
        l: &Local,
        ptr: *mut u8,
        size: usize,
        align: usize,
        class: impl Fn() -> (usize, usize),
    ) {
        let chunk = chunk_of(ptr);
        l.counters.on_free(size);
        let owner = l.owner_for(size);
        let mine = if owner.chunk.get() == chunk {
            ptr.addr() + class().1 != owner.cursor.get().addr()
        } else {
            // Relaxed: a hint (see `GlobalChunk::owner`).
            // SAFETY: the block is live, so its chunk is.
            let hint = unsafe { &*chunk }.owner.load(Ordering::Relaxed);
            if !l.owns_hint(hint)
                && (hint != NO_OWNER || !l.cache.admits_ownerless(l.counters.allocs.load(Ordering::Relaxed)))
            {
                // Another thread's chunk (a thread bumping in a chunk is
                // the last to have set its hint), or one no owner remembers
                // freed into by a thread that is not allocating as it
                // frees: neither is ours to cache.
                // SAFETY: the block is live (caller) and lies in `chunk`.
                unsafe { l.count_remote(ptr, size, chunk, cacheable(size, align)) };
                return;
            }
            // Ours, or no owner's (cached as ours would be, by a thread
            // that allocates as it frees: `admits_ownerless`).
            true
        };
        let allocs = l.counters.allocs.load(Ordering::Relaxed);
        if mine && cacheable(size, align) && l.cache.admits(allocs) {
            let (class, block) = class();
            // SAFETY: a live cacheable block is `block` bytes (its class's)
            // and GRAIN-aligned; its user has freed it.
            if !unsafe { l.cache.push(ptr, class, block, allocs) } {
                l.flush_cache();
            }
        } else {
            // SAFETY: the block is live (caller) and lies in `chunk`.
            unsafe { l.free_to_chunk(ptr, size, chunk) };
        }
    }

    /// Resizes the current thread's last block in place (`grow`: see
    /// [`Owner::resize_last`](super::owner::Owner::resize_last)).
    #[inline(always)]
    pub(super) fn resize_in_place(ptr: *mut u8, old: usize, new: usize, grow: bool) -> bool {
        with_local(|l| {
            // As in `alloc_in`: a copy per owner.
            let done = if old <= SMALL_MAX {
                l.owners[0].resize_last(ptr, old, new, grow)
            } else {
                l.owners[1].resize_last(ptr, old, new, grow)
            };
            if done {
                l.counters.on_resize(old, new);
            }
            done
        })
        .unwrap_or(false)
    }

    // -----------------------------------------------------------------
    // The slow halves.

    #[cold]
    #[inline(never)]
    pub(super) fn alloc_small_slow(l: &Local, size: usize, align: usize, zero: bool) -> *mut u8 {
        if l.state.get() == EXITED || (l.state.get() == FRESH && !l.activate()) {
            return Self::alloc_fallback(size, align, zero);
        }
        let owner = l.owner_for(size);
        if align <= GRAIN && (l.take_left_cache() || l.adopt_pinned(owner) || l.adopt_abandoned()) {
            if let Some(p) = l.cache.pop(size) {
                l.counters.on_alloc(size);
                if zero {
                    // SAFETY: the cached block has at least `size` bytes.
                    unsafe { p.as_ptr().write_bytes(0, size) };
                }
                return p.as_ptr();
            }
        }
        match owner.refill(size, align, zero) {
            Some(p) => {
                l.counters.on_alloc(size);
                p.as_ptr()
            }
            None => ptr::null_mut(),
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn alloc_fallback(size: usize, align: usize, zero: bool) -> *mut u8 {
        let p = FALLBACK.with(|o| o.alloc(size, align, zero));
        match p {
            Some(p) => {
                // Relaxed: a statistic.
                FALLBACK_ALLOCS.fetch_add(1, Ordering::Relaxed);
                SHARED_COUNTS.on_alloc_shared(size);
                p.as_ptr()
            }
            None => ptr::null_mut(),
        }
    }

    /// A small block freed by a thread that has not allocated yet (a
    /// consumer: it registers counters of its own, rather than counting
    /// every free with read-modify-writes on the shared ones), or whose
    /// state is gone or unusable (the block is counted into its chunk
    /// atomically).
    ///
    /// # Safety
    /// As for [`free_small`](Self::free_small).
    #[cold]
    #[inline(never)]
    pub(super) unsafe fn free_small_cold(ptr: *mut u8, size: usize, align: usize) {
        let done = with_local(|l| {
            let ready = l.state.get() == ACTIVE || (l.state.get() == FRESH && l.activate());
            if ready {
                // SAFETY: forwarded from the caller.
                unsafe { Self::free_in(l, ptr, size, align) };
            }
            ready
        });
        if done != Ok(true) {
            SHARED_COUNTS.on_free_shared(size);
            // SAFETY: the block is live (caller), so its chunk is.
            unsafe { free_remote(chunk_of(ptr)) };
        }
    }

    /// The rest of `realloc`: large blocks (`mremap`), and moves by copy.
    /// Out of line, so the in-place path above needs no stack frame.
    ///
    /// # Safety
    /// As for [`GlobalAlloc::realloc`].
    #[inline(never)]
    pub(super) unsafe fn realloc_slow(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_size, align) = (layout.size(), layout.align());
        let old_large = is_large(old_size, align);
        let new_large = is_large(new_size, align);
        // The last block growing past the prefaulted part of its chunk.
        if !old_large && !new_large && Self::resize_in_place(ptr, old_size, new_size, true) {
            return ptr;
        }
        if old_large && new_large {
            // SAFETY: forwarded from the caller.
            if let Some(p) = unsafe { large_realloc(ptr, old_size, align, new_size) } {
                return p;
            }
        }
        // SAFETY: the caller guarantees that `new_size`, rounded up to
        // `align`, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        let fresh = Self::alloc_layout(new_layout, false);
        if !fresh.is_null() {
            // SAFETY: both blocks are live and distinct; the old one is
            // freed with the layout it was allocated with.
            unsafe {
                ptr::copy_nonoverlapping(ptr, fresh, old_size.min(new_size));
                Self::dealloc_raw(ptr, layout);
            }
        }
        fresh
    }
}
