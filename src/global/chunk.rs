//! Chunks: the 2 MiB pieces threads bump through, their header, how a
//! block finds its chunk, and the free list chunks go back to.
//!
//! A chunk is [`CHUNK_SIZE`] bytes mapped at a multiple of that size, so
//! the chunk of a small block is its address with the low bits cleared
//! ([`chunk_of`]; under Miri, a table lookup that keeps provenance). Its
//! first [`HEADER_SIZE`] bytes are a [`GlobalChunk`]: the zero mark, the
//! free-list link, the live count shared with other threads (`count.rs`),
//! the owner hint and the list of blocks other threads freed in it
//! (`remote.rs`).
//!
//! [`acquire_chunk`] takes a chunk from the free list (committed ones
//! first) or maps a fresh one; [`recycle`] gives back a chunk whose every
//! block is freed, keeping [`CACHED_CHUNKS`] committed and decommitting
//! the rest (`MADV_DONTNEED`: the pages go back to the OS, the address
//! range stays, so chunks are never unmapped).

use super::class::{LARGE_THRESHOLD, MAX_CHUNK_ALIGN};
use super::count::RemoteCount;
use super::huge::{advise_huge_timed, CHUNKS_HUGE, HUGE_LIVE_MIN, HUGE_RETRY_AT, HUGE_SLOW};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering, SpinLock};
use crate::sys;
use core::cell::Cell;
use core::ptr::{self, NonNull};

/// Size and alignment of a `GlobalArena` chunk, header included: one
/// transparent huge page (see [`HUGE_LIVE_MIN`]).
pub(crate) const CHUNK_SIZE: usize = 2 << 20;

/// Free chunks kept committed for reuse (8 MiB); further free chunks are
/// decommitted (their pages go back to the OS, the address range stays).
pub(crate) const CACHED_CHUNKS: usize = 4;

/// Bytes at the start of each chunk taken by its header.
pub(super) const HEADER_SIZE: usize = 128;

///
/// The first cache line is written by the owner (and by the free list, under
/// its lock, while nobody owns the chunk); the second holds the atomic half
/// of the live count, written by every thread that frees a block remotely,
/// and the owner hint those threads read just before, so a remote free
/// touches one line of the header.
/// The owner hint (`GlobalChunk::owner`) of a chunk no live owner
/// remembers: one whose owner exited, or that its owner retired and has
/// forgotten (`abandon.rs`). Whoever frees a block of it caches the block,
/// as the chunk's owner would: nobody else will take it back into use
/// except by adoption, one batch per slow path.
pub(super) const NO_OWNER: usize = 0;

#[repr(C, align(64))]
pub(super) struct GlobalChunk {
    /// Bytes at and above this address (and below the chunk end) have not
    /// been written since the chunk was mapped or decommitted. Written by
    /// the owner when it retires the chunk.
    pub(super) dirty_end: Cell<usize>,
    /// The next chunk of the free list (under [`FREE`]'s lock).
    pub(super) next: Cell<*mut GlobalChunk>,
    pub(super) _pad: [u8; 48],
    pub(super) count: RemoteCount,
    /// The address of the owner that took the chunk last (it keeps the
    /// value after retiring), or [`NO_OWNER`] once no live owner
    /// remembers the chunk: a thread caches freed blocks only of chunks
    /// it owned, which it is likely to reuse, or of chunks nobody will
    /// reuse from otherwise. A hint, not an invariant: any thread may cache
    /// any block.
    pub(super) owner: AtomicUsize,
    /// Blocks of this chunk freed by threads that did not own it, for a
    /// thread to take back into use while the chunk is retired and kept by
    /// other live blocks ([`Local::adopt_pinned`](super::thread::Local::adopt_pinned)): a list linked through
    /// the blocks' first words (see [`RemoteList`](super::remote::RemoteList)), pushed whole runs at
    /// a time. Advice, not a count: the frees are counted in `count` as
    /// well, and a block may stay here, free, until the chunk is recycled,
    /// which empties the list (as does starting the chunk over).
    pub(super) xfree: AtomicPtr<u8>,
}

const _: () = assert!(core::mem::size_of::<GlobalChunk>() <= HEADER_SIZE);
const _: () = assert!(LARGE_THRESHOLD + MAX_CHUNK_ALIGN + HEADER_SIZE <= CHUNK_SIZE);

/// The chunk a small block lies in.
#[cfg(not(miri))]
#[inline(always)]
pub(super) fn chunk_of(ptr: *mut u8) -> *mut GlobalChunk {
    ptr.map_addr(|a| crate::align::round_down(a, CHUNK_SIZE)).cast()
}

/// Under Miri a pointer handed to `dealloc` carries the tag of the `Box`
/// (or reference) it came from, which covers only the block: masking it
/// gives the right address but no right to read the header. So Miri builds
/// remember every chunk's own pointer in a table (chunks are never
/// unmapped, so entries are never removed) and look the header up by
/// address. Native builds mask.
#[cfg(miri)]
pub(super) mod miri_chunks {
    use super::{GlobalChunk, CHUNK_SIZE};
    use crate::sync::{AtomicPtr, Ordering};
    use crate::sys;

    const SLOTS: usize = 1024;
    static TABLE: [AtomicPtr<GlobalChunk>; SLOTS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; SLOTS];

    pub(super) fn home(addr: usize) -> usize {
        (addr / CHUNK_SIZE) % SLOTS
    }

    /// Records a freshly mapped chunk.
    pub(super) fn insert(chunk: *mut GlobalChunk) {
        let start = home(chunk.addr());
        for i in 0..SLOTS {
            let slot = &TABLE[(start + i) % SLOTS];
            // AcqRel: publishes the pointer (and the header written
            // before) to lookups.
            let free =
                slot.compare_exchange(core::ptr::null_mut(), chunk, Ordering::AcqRel, Ordering::Acquire);
            if free.is_ok() {
                return;
            }
        }
        sys::fatal(b"fiberalloc: GlobalArena's Miri chunk table is full\n");
    }

    /// The chunk holding the address `addr`.
    pub(super) fn lookup(addr: usize) -> *mut GlobalChunk {
        let base = crate::align::round_down(addr, CHUNK_SIZE);
        let start = home(base);
        for i in 0..SLOTS {
            // Acquire: pairs with `insert`.
            let c = TABLE[(start + i) % SLOTS].load(Ordering::Acquire);
            if c.addr() == base {
                return c;
            }
        }
        sys::fatal(b"fiberalloc: GlobalArena was given a pointer it did not allocate\n")
    }
}

#[cfg(miri)]
#[inline(always)]
pub(super) fn chunk_of(ptr: *mut u8) -> *mut GlobalChunk {
    miri_chunks::lookup(ptr.addr())
}

/// A pointer to the same block with the chunk's own provenance. A freed
/// block that is handed out again must not carry the tag of the reference
/// its last user freed it through (which may cover only part of it): under
/// Miri the chunk's pointer is looked up; native builds keep the pointer.
#[cfg(miri)]
#[inline(always)]
pub(super) fn own_provenance(ptr: *mut u8) -> *mut u8 {
    chunk_of(ptr).cast::<u8>().with_addr(ptr.addr())
}

#[cfg(not(miri))]
#[inline(always)]
pub(super) fn own_provenance(ptr: *mut u8) -> *mut u8 {
    ptr
}

/// Chunks mapped and never unmapped (in use, cached or decommitted).
pub(super) static CHUNKS_MAPPED: AtomicUsize = AtomicUsize::new(0);
/// Retired chunks that still hold a live block.
pub(super) static CHUNKS_PINNED: AtomicUsize = AtomicUsize::new(0);

pub(super) struct FreeList {
    /// Free chunks whose pages are committed (written before).
    pub(super) cached: *mut GlobalChunk,
    pub(super) cached_count: usize,
    /// Free chunks decommitted: zero-filled, no physical pages.
    pub(super) decommitted: *mut GlobalChunk,
    pub(super) decommitted_count: usize,
}
// SAFETY: the list holds chunks nobody owns; they are reached only under
// the lock.
unsafe impl Send for FreeList {}
pub(super) static FREE: SpinLock<FreeList> = SpinLock::new(FreeList {
    cached: ptr::null_mut(),
    cached_count: 0,
    decommitted: ptr::null_mut(),
    decommitted_count: 0,
});

/// Gives a chunk whose blocks are all freed back to the free list,
/// decommitting it when the cache is full.
///
/// # Safety
/// `chunk` is a chunk header no thread owns and in which no block is live,
/// given to this function once.
pub(super) unsafe fn recycle(chunk: *mut GlobalChunk) {
    // SAFETY: the chunk is ours alone (caller), so its header may be written.
    let header = unsafe { &*chunk };
    // Every block is free: what the list holds is part of the chunk given
    // back. Relaxed: every splice came before a free that we acquired, and
    // the free list's lock publishes the store to the next owner.
    header.xfree.store(ptr::null_mut(), Ordering::Relaxed);
    let cached = FREE.with(|f| {
        if f.cached_count < CACHED_CHUNKS {
            header.next.set(f.cached);
            f.cached = chunk;
            f.cached_count += 1;
            true
        } else {
            false
        }
    });
    if cached {
        return;
    }
    let page = sys::page_size();
    // The header's page stays; the rest goes back to the OS.
    // SAFETY: the chunk is a mapping of CHUNK_SIZE bytes we own, no block
    // in it is live, and `page` divides CHUNK_SIZE.
    let data = unsafe { NonNull::new_unchecked(chunk.cast::<u8>().add(page)) };
    // SAFETY: as above: nothing relies on the contents past the header.
    let zeroed = unsafe { sys::decommit(data, CHUNK_SIZE - page) }.is_ok();
    // The header's page was not decommitted: bytes up to its end may be
    // dirty, everything after it reads as zero.
    header.dirty_end.set(if zeroed { chunk.addr() + page } else { chunk.addr() + CHUNK_SIZE });
    FREE.with(|f| {
        if zeroed {
            header.next.set(f.decommitted);
            f.decommitted = chunk;
            f.decommitted_count += 1;
        } else {
            header.next.set(f.cached);
            f.cached = chunk;
            f.cached_count += 1;
        }
    });
}

/// A chunk for a new owner: from the free list, else freshly mapped (and
/// advised for huge pages when `live`, the program's live bytes, is at
/// least [`HUGE_LIVE_MIN`]).
pub(super) fn acquire_chunk(live: usize) -> Option<NonNull<GlobalChunk>> {
    let reused = FREE.with(|f| {
        let c = if !f.cached.is_null() {
            f.cached_count -= 1;
            f.cached
        } else if !f.decommitted.is_null() {
            f.decommitted_count -= 1;
            f.decommitted
        } else {
            return ptr::null_mut();
        };
        // SAFETY: chunks on the list are valid headers owned by the list.
        let next = unsafe { (*c).next.get() };
        if c == f.cached {
            f.cached = next;
        } else {
            f.decommitted = next;
        }
        c
    });
    if let Some(c) = NonNull::new(reused) {
        return Some(c);
    }
    let mapped = sys::map_aligned(CHUNK_SIZE, CHUNK_SIZE).ok()?.cast::<GlobalChunk>();
    // Relaxed: a statistic, and a hint for the advice.
    let count = CHUNKS_MAPPED.fetch_add(1, Ordering::Relaxed) + 1;
    // Relaxed: hints (see `turn_huge_pages_off`).
    let retry = HUGE_SLOW.load(Ordering::Relaxed) && count >= HUGE_RETRY_AT.load(Ordering::Relaxed);
    if live >= HUGE_LIVE_MIN
        // SAFETY: the fresh mapping of CHUNK_SIZE bytes is ours.
        && unsafe { advise_huge_timed(mapped.cast(), CHUNK_SIZE, mapped.addr().get(), retry) }
    {
        CHUNKS_HUGE.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: a fresh mapping of CHUNK_SIZE writable bytes, aligned to
    // CHUNK_SIZE (so to the header's alignment), owned here.
    unsafe {
        mapped.as_ptr().write(GlobalChunk {
            dirty_end: Cell::new(mapped.as_ptr().addr() + HEADER_SIZE),
            next: Cell::new(ptr::null_mut()),
            _pad: [0; 48],
            count: RemoteCount::new(),
            owner: AtomicUsize::new(NO_OWNER),
            xfree: AtomicPtr::new(ptr::null_mut()),
        })
    };
    #[cfg(miri)]
    miri_chunks::insert(mapped.as_ptr());
    #[cfg(feature = "c-abi")]
    if !super::cabi::register_chunk(mapped.as_ptr()) {
        // `free` could not find the chunk's blocks: do not use it.
        CHUNKS_MAPPED.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the fresh mapping, never handed out.
        let _ = unsafe { sys::release_aligned(mapped.cast(), CHUNK_SIZE, CHUNK_SIZE) };
        return None;
    }
    Some(mapped)
}

/// Gives back a retired chunk whose last live block was just freed.
///
/// # Safety
/// The caller's decrement took the retired `chunk`'s count to zero.
pub(super) unsafe fn recycle_retired(chunk: *mut GlobalChunk) {
    // Relaxed: a statistic.
    CHUNKS_PINNED.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: the chunk is ours to recycle, once (see `count`).
    unsafe { recycle(chunk) };
}
