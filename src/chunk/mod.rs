//! Chunks: the pieces of memory an arena bumps through.
//!
//! A chunk is one [`Region`] whose first [`HEADER_SIZE`] bytes hold a
//! [`ChunkHeader`]; the data area runs from just after the header to the end
//! of the region's usable bytes:
//!
//! ```text
//! [guard?] | header (64 B) | data ........................ | [guard?]
//!          ^ header         ^ data_start()                  ^ data_end()
//! ```
//!
//! An arena links the chunks it has used through `prev` (newest first).
//! An arena that has no chunk yet points at [`EMPTY`], a static header whose
//! data area is empty, so the allocation fast path never tests for null: it
//! simply finds no room and takes the slow path.
//!
//! Free chunks are not unmapped at once. [`give_back`] puts a chunk into this
//! thread's one-chunk slot, else into the process-wide [`SlotCache`], else
//! unmaps it; [`acquire`] looks in the same places before mapping. The slot
//! makes `Arena::new()` + first allocation + drop free of atomics and
//! syscalls in the steady state; the cache lets chunks move between threads.
//! The cache is bounded in count ([`CACHE_SLOTS`]) and in bytes
//! ([`CACHE_MAX_BYTES`]); chunks larger than [`CACHE_MAX_CHUNK`] are always
//! unmapped.

pub(crate) mod cache;

use crate::region::{RawRegion, Region};
#[cfg(not(fiberalloc_loom))]
use crate::sync::{AtomicUsize, Ordering};
#[cfg(not(fiberalloc_loom))]
use cache::SlotCache;
use core::cell::Cell;
use core::ptr::NonNull;

/// Bytes at the start of each chunk taken by its header; data starts here.
pub(crate) const HEADER_SIZE: usize = 64;
/// How many free chunks the process-wide cache holds at most.
pub(crate) const CACHE_SLOTS: usize = 16;
/// Largest chunk (usable bytes) that is cached rather than unmapped.
pub(crate) const CACHE_MAX_CHUNK: usize = 4 << 20;
/// Most bytes the process-wide cache keeps mapped.
pub(crate) const CACHE_MAX_BYTES: usize = 32 << 20;

/// The header at the start of every chunk.
///
/// Invariants: `data_start() <= data_end()`; both lie inside the region
/// (`data_end` is its usable end); the header of a real chunk is at the
/// region's first usable byte, so it is page-aligned. `used_end` is only
/// meaningful while the chunk is in an arena's list but not current: then
/// `data_start() <= used_end <= data_end()`.
#[repr(C, align(64))]
pub(crate) struct ChunkHeader {
    /// The mapping this header lives in; `None` only for [`EMPTY`].
    region: Option<RawRegion>,
    /// Usable bytes of the region, header included ([`HEADER_SIZE`] for
    /// the sentinel, whose data area is therefore empty).
    size: usize,
    /// Whether the region has guard pages on both sides.
    guarded: bool,
    /// The next older chunk of the same arena list.
    pub(crate) prev: Cell<Option<NonNull<ChunkHeader>>>,
    /// Where the cursor stood when the arena left this chunk.
    pub(crate) used_end: Cell<usize>,
    /// [`CHUNK_MAGIC`](crate::debug::CHUNK_MAGIC) xor the header's
    /// address, written when the chunk is mapped; checked by policies with
    /// canaries ([`ChunkHeader::intact`]).
    canary: u64,
}

// The sentinel's data area starts one past it: exactly HEADER_SIZE bytes in.
const _: () = assert!(core::mem::size_of::<ChunkHeader>() == HEADER_SIZE);

/// The static empty chunk every new arena starts on. Never written.
struct Sentinel(ChunkHeader);
// SAFETY: the sentinel is never written (its `Cell`s are only read, and
// every write path checks `is_sentinel` first), so sharing it is sound.
unsafe impl Sync for Sentinel {}

static EMPTY: Sentinel = Sentinel(ChunkHeader {
    region: None,
    size: HEADER_SIZE,
    guarded: false,
    prev: Cell::new(None),
    used_end: Cell::new(0),
    canary: 0,
});

/// The static empty chunk, as a constant for `const fn`s.
// SAFETY: the address of a static is never null.
pub(crate) const EMPTY_HEADER: NonNull<ChunkHeader> =
    unsafe { NonNull::new_unchecked(&EMPTY.0 as *const ChunkHeader as *mut ChunkHeader) };

/// One past the sentinel, with its provenance: the cursor and limit of an
/// arena that owns no chunk. Zero-sized blocks may be placed here; nothing
/// is ever read or written through it.
// SAFETY: one past the end of a static is in bounds of it (and not null).
pub(crate) const EMPTY_CURSOR: NonNull<u8> = unsafe { EMPTY_HEADER.add(1).cast() };

/// The static empty chunk.
#[inline]
pub(crate) fn empty() -> NonNull<ChunkHeader> {
    EMPTY_HEADER
}

/// See [`EMPTY_CURSOR`].
#[inline]
pub(crate) fn empty_cursor() -> NonNull<u8> {
    EMPTY_CURSOR
}

impl ChunkHeader {
    /// Whether this is the static sentinel.
    #[inline]
    pub(crate) fn is_sentinel(this: NonNull<ChunkHeader>) -> bool {
        this == empty()
    }

    /// First data byte, [`HEADER_SIZE`] bytes in (for the sentinel: one
    /// past it).
    #[inline]
    pub(crate) fn data_start(this: NonNull<ChunkHeader>) -> NonNull<u8> {
        // SAFETY: a real chunk's region holds at least a page, more than
        // HEADER_SIZE bytes, starting at the header; for the sentinel,
        // HEADER_SIZE is its size, so this is one past its end.
        unsafe { this.cast::<u8>().add(HEADER_SIZE) }
    }

    /// Address one past the last data byte.
    #[inline]
    pub(crate) fn data_end(this: NonNull<ChunkHeader>) -> usize {
        this.addr().get() + Self::size(this)
    }

    /// Bytes of data the chunk can hold.
    #[inline]
    pub(crate) fn capacity(this: NonNull<ChunkHeader>) -> usize {
        Self::size(this) - HEADER_SIZE
    }

    /// Usable bytes of the chunk's region (header included, guards not);
    /// [`HEADER_SIZE`] for the sentinel.
    #[inline]
    pub(crate) fn size(this: NonNull<ChunkHeader>) -> usize {
        // SAFETY: headers in arena lists are live for as long as the arena
        // holds them, and the sentinel is a static.
        unsafe { this.as_ref() }.size
    }

    /// Whether the chunk's header still holds its canary (the sentinel,
    /// never written, always does).
    pub(crate) fn intact(this: NonNull<ChunkHeader>) -> bool {
        // SAFETY: as in `size`.
        let canary = unsafe { this.as_ref() }.canary;
        Self::is_sentinel(this) || canary == crate::debug::CHUNK_MAGIC ^ this.addr().get() as u64
    }

    /// Whether the chunk has guard pages.
    pub(crate) fn guarded(this: NonNull<ChunkHeader>) -> bool {
        // SAFETY: as in `size`.
        unsafe { this.as_ref() }.guarded
    }
}

/// What kind of chunk an arena needs: data capacity and guard pages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkRequest {
    /// Smallest acceptable usable size (header included), in bytes.
    pub(crate) min_size: usize,
    /// Size to map when no cached chunk fits (at least `min_size`). A
    /// cached chunk is taken only if it is at most [`REUSE_SLACK`] times
    /// this, so that a small arena does not walk off with a huge chunk.
    pub(crate) map_size: usize,
    /// Guard pages below and above the chunk.
    pub(crate) guards: bool,
}

/// The key kept in a cached pointer's low bits: bit 0 says guarded, bits
/// 1.. hold floor(log2(size / page)), so that `size >= page << key` .
fn key_of(size: usize, guards: bool) -> usize {
    let pages = size / crate::sys::page_size();
    let log = usize::BITS - 1 - pages.max(1).leading_zeros();
    ((log as usize) << 1) | guards as usize
}

fn key_accepts(key: usize, req: &ChunkRequest) -> bool {
    let guards = key & 1 == 1;
    let lower_bound = crate::sys::page_size() << (key >> 1);
    // The key holds floor(log2): the real size is below twice the bound.
    guards == req.guards && lower_bound >= req.min_size && lower_bound <= req.max_reuse() / 2
}

/// A cached chunk may be up to this many times the size asked for.
pub(crate) const REUSE_SLACK: usize = 4;

impl ChunkRequest {
    fn max_reuse(&self) -> usize {
        self.map_size.max(self.min_size).saturating_mul(REUSE_SLACK)
    }
}

/// Bits of a page-aligned pointer free for the key.
const KEY_MASK: usize = 0xfff;

// Under loom, whose atomics cannot live in statics, there is no
// process-wide cache: chunks past the thread's slot are mapped and unmapped
// every time. The models check the protocols above this layer; the cache
// has a model of its own (`loom-tests/tests/chunk_cache.rs`).
#[cfg(not(fiberalloc_loom))]
static CACHE: SlotCache<CACHE_SLOTS> = SlotCache::new();
#[cfg(not(fiberalloc_loom))]
static CACHED_BYTES: AtomicUsize = AtomicUsize::new(0);

// This thread's one free chunk. The slot has no destructor of its own, so
// reaching it is a plain thread-local access with no "is it alive" check;
// a separate guard, registered the first time a chunk is parked here, moves
// the chunk to the process-wide cache at thread exit and marks the thread
// as exiting, after which releases go straight to the shared cache.
std::thread_local! {
    static SLOT: Cell<Option<NonNull<ChunkHeader>>> = const { Cell::new(None) };
    /// 0: exit guard not registered; 1: registered; 2: the thread is exiting.
    static SLOT_STATE: Cell<u8> = const { Cell::new(0) };
    static SLOT_EXIT: SlotExit = const { SlotExit };
}

struct SlotExit;

impl Drop for SlotExit {
    fn drop(&mut self) {
        SLOT_STATE.with(|s| s.set(2));
        if let Some(c) = SLOT.with(Cell::take) {
            give_back_shared(c);
        }
    }
}

fn fits(c: NonNull<ChunkHeader>, req: &ChunkRequest) -> bool {
    let size = ChunkHeader::size(c);
    size >= req.min_size && size <= req.max_reuse() && ChunkHeader::guarded(c) == req.guards
}

/// Turns a free chunk back into a fresh, unlinked one.
fn renew(c: NonNull<ChunkHeader>) -> NonNull<ChunkHeader> {
    // SAFETY: the chunk is owned by the caller (just taken from a cache).
    let h = unsafe { c.as_ref() };
    h.prev.set(None);
    h.used_end.set(ChunkHeader::data_start(c).addr().get());
    c
}

/// A chunk for `req`: from this thread's slot, the process-wide cache, or a
/// new mapping. `None` if the mapping fails.
#[inline]
pub(crate) fn acquire(req: ChunkRequest) -> Option<NonNull<ChunkHeader>> {
    // This thread's slot: no atomics.
    let local = SLOT.with(|slot| match slot.get() {
        Some(c) if fits(c, &req) => slot.take(),
        _ => None,
    });
    match local {
        Some(c) => Some(renew(c)),
        None => acquire_shared(req),
    }
}

/// The chunk in this thread's slot if it fits `req`, with no fallback.
#[inline(always)]
pub(crate) fn acquire_local(req: ChunkRequest) -> Option<NonNull<ChunkHeader>> {
    SLOT.with(|slot| match slot.get() {
        Some(c) if fits(c, &req) => slot.take().map(renew),
        _ => None,
    })
}

/// [`acquire`] past this thread's slot: the process-wide cache or the OS.
#[cfg(fiberalloc_loom)]
fn acquire_shared(req: ChunkRequest) -> Option<NonNull<ChunkHeader>> {
    map(req.map_size.max(req.min_size), req.guards).ok()
}

/// [`acquire`] past this thread's slot: the process-wide cache or the OS.
#[cold]
#[inline(never)]
#[cfg(not(fiberalloc_loom))]
fn acquire_shared(req: ChunkRequest) -> Option<NonNull<ChunkHeader>> {
    if req.min_size <= CACHE_MAX_CHUNK {
        if let Some(p) = CACHE.pop(|p| key_accepts(p.addr() & KEY_MASK, &req)) {
            let c = p.map_addr(|a| a & !KEY_MASK).cast::<ChunkHeader>();
            // SAFETY: only non-null chunk pointers are pushed.
            let c = unsafe { NonNull::new_unchecked(c) };
            // Relaxed: a statistic and budget, not a synchronisation point.
            CACHED_BYTES.fetch_sub(ChunkHeader::size(c), Ordering::Relaxed);
            return Some(renew(c));
        }
    }
    map(req.map_size.max(req.min_size), req.guards).ok()
}

/// Maps a new chunk of `size` usable bytes (a multiple of the page size).
pub(crate) fn map(size: usize, guards: bool) -> std::io::Result<NonNull<ChunkHeader>> {
    let region = Region::new(size, guards, guards)?;
    let at = region.start().cast::<ChunkHeader>();
    let header = ChunkHeader {
        size: region.usable_size(),
        guarded: guards,
        region: Some(region.into_raw()),
        prev: Cell::new(None),
        used_end: Cell::new(0),
        canary: crate::debug::CHUNK_MAGIC ^ at.addr().get() as u64,
    };
    // SAFETY: the region's first usable page is ours, writable, page-aligned
    // (so aligned for the header) and larger than the header.
    unsafe { at.as_ptr().write(header) };
    Ok(renew(at))
}

/// Gives a chunk this arena no longer uses back: to this thread's slot, the
/// process-wide cache, or the OS.
pub(crate) fn give_back(c: NonNull<ChunkHeader>) {
    debug_assert!(!ChunkHeader::is_sentinel(c));
    // Under AddressSanitizer the chunk leaves this arena usable by the next
    // owner (or by whatever the OS maps at the same address).
    crate::debug::unpoison(ChunkHeader::data_start(c), ChunkHeader::capacity(c));
    let state = SLOT_STATE.with(Cell::get);
    if state == 2 || ChunkHeader::size(c) > CACHE_MAX_CHUNK {
        give_back_shared(c);
        return;
    }
    // The slot keeps the smaller chunk: short-lived arenas (the case the
    // slot is for) use small chunks, and a large chunk parked here would
    // send every one of them to the shared cache.
    let evicted = SLOT.with(|slot| match slot.get() {
        Some(old) if ChunkHeader::size(old) <= ChunkHeader::size(c) => Some(c),
        old => {
            slot.set(Some(c));
            old
        }
    });
    if state == 0 && evicted != Some(c) {
        // First chunk parked by this thread: register the exit guard.
        // During thread teardown that may be refused; then the chunk goes
        // to the shared cache instead.
        if SLOT_EXIT.try_with(|_| ()).is_ok() {
            SLOT_STATE.with(|s| s.set(1));
        } else if let Some(c) = SLOT.with(Cell::take) {
            give_back_shared(c);
        }
    }
    if let Some(e) = evicted {
        give_back_shared(e);
    }
}

#[cfg(fiberalloc_loom)]
fn give_back_shared(c: NonNull<ChunkHeader>) {
    unmap(c);
}

/// Gives a chunk to the process-wide cache, or unmaps it.
#[cfg(not(fiberalloc_loom))]
fn give_back_shared(c: NonNull<ChunkHeader>) {
    let size = ChunkHeader::size(c);
    if size <= CACHE_MAX_CHUNK {
        // Relaxed: the byte budget is approximate under races; it bounds
        // the cache, it does not guard memory.
        let before = CACHED_BYTES.fetch_add(size, Ordering::Relaxed);
        if before + size <= CACHE_MAX_BYTES {
            let key = key_of(size, ChunkHeader::guarded(c));
            let tagged = c.as_ptr().cast::<u8>().map_addr(|a| a | key);
            if CACHE.push(tagged).is_ok() {
                return;
            }
        }
        CACHED_BYTES.fetch_sub(size, Ordering::Relaxed);
    }
    unmap(c);
}

/// Unmaps a chunk.
pub(crate) fn unmap(c: NonNull<ChunkHeader>) {
    // SAFETY: the caller owns `c`, a live header.
    let Some(raw) = (unsafe { c.as_ref() }).region else {
        debug_assert!(false, "unmap of the sentinel");
        return;
    };
    // SAFETY: `raw` came from `Region::into_raw` in `map` and is taken back
    // exactly once, here, when the chunk leaves the crate's hands.
    drop(unsafe { Region::from_raw(raw) });
}

/// Bytes and chunks held by the process-wide cache (a racy snapshot).
#[allow(dead_code)]
#[cfg(not(fiberalloc_loom))]
pub(crate) fn cache_stats() -> (usize, usize) {
    (CACHE.len(), CACHED_BYTES.load(Ordering::Relaxed))
}
