//! What the C `malloc` interface needs beyond `GlobalAlloc`: finding a
//! block's size from its pointer alone (built only with the `c-abi`
//! feature, for the `fiberalloc-malloc` crate in `capi/`).
//!
//! `free` is given no size, so each block carries it, where `free` finds
//! it in O(1):
//!
//! - **Small blocks** (bumped from a chunk) start with a 16-byte prefix:
//!   the pointer handed out is the block's start plus [`PREFIX`] (or plus
//!   the alignment, for `memalign` of more than 16), so it is aligned to
//!   `max_align_t` (`GRAIN` is 16 in this build). The word just before the
//!   pointer is its *header*: the block's size class and its offset from
//!   the block's start, mixed with a key derived from the pointer's own
//!   address ([`key`]). `free` reads the header on the same cache line as
//!   the block it is about to link into a free list: one line, where a
//!   side table of classes cost a second line per `free` and per `malloc`
//!   (larson's frees spent 39% of their time waiting on it).
//! - **Which chunks exist**: a bitmap with one bit per `CHUNK_SIZE` of the
//!   47-bit address space (a zeroed static of 8 MiB, of which only the
//!   pages over the chunks' addresses are touched), set when a chunk is
//!   mapped.
//!   Chunks are never unmapped, so a bit is never cleared. `free` reads a
//!   header only inside a registered chunk, past its first 16 bytes, so
//!   the read never faults.
//! - **Large blocks** (a mapping each) are recorded in a hash table of
//!   their own (address to size and alignment) under a spin lock: they are
//!   at least 256 KiB, so the lock is taken rarely.
//!
//! `free` marks the header freed (it keeps the key: the free lists link
//! blocks through their first word, and a run's descriptor sits in their
//! third, so the header, the second, survives), so that a second `free`
//! of the block is reported as a double free while the block waits to be
//! reused. A pointer that is none of these (not in a chunk, or in a chunk
//! but with no header before it, or not a recorded large block) was not
//! handed out here: [`free`] reports it with one `write(2)` and aborts, as
//! glibc does for an invalid pointer, rather than corrupt a list with it.
//! The key has its top bit set, so no pointer and no small number (what a
//! free list or a zeroed page holds) passes for a header; a pointer inside
//! a live block passes only if its user wrote, 8 bytes before it, the key
//! of that address, which depends on where the library was loaded.
//!
//! The Rust `GlobalAlloc` path does none of this (it is given the layout),
//! and without the feature none of it is compiled.

use super::chunk::{GlobalChunk, CHUNK_SIZE};
use super::class::{class_of, class_size, is_large, GRAIN, LARGE_THRESHOLD};
use super::large::{large_alloc, large_free, large_realloc};
use super::thread::{with_local, Local, ACTIVE};
use super::track::LiveTable;
use super::GlobalArena;
use crate::sync::{plain::AtomicU64, Ordering, SpinLock};
use crate::{align, sys};
use core::alloc::Layout;
use core::ptr;

/// Bytes between a block's start and the pointer handed out (for the
/// alignments up to 16): the header word and one word unused while the
/// block is live (the free lists' link when it is not).
pub(super) const PREFIX: usize = 16;
/// `log2(PREFIX)`: the offset field of an ordinary block's header.
const PREFIX_SHIFT: usize = PREFIX.trailing_zeros() as usize;
/// The header's flag of a freed block.
const FREED: usize = 1 << 14;

const _: () = assert!(GRAIN == PREFIX, "blocks and pointers are aligned to max_align_t");
const _: () = assert!(super::class::CLASSES <= 256, "a class fits in a byte");
const _: () = assert!(super::class::MAX_CHUNK_ALIGN.trailing_zeros() < 64, "a shift fits in 6 bits");

/// Block size by class: `class_size` of each class, 0 for a byte that is
/// no class (0, and bytes past the last class). One load where
/// `class_size` is a branch and a shift.
static BLOCK_OF: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut class = 1;
    while class < super::class::CLASSES {
        t[class] = class_size(class) as u32;
        class += 1;
    }
    t
};

/// The key mixed into the header before the pointer `p`: `p` itself, mixed
/// with the address of a static (so different in every run under ASLR)
/// and a constant with the top bit set. An address is below 2^47, so the
/// key's top bit is always set: a header read back as `h ^ key(p)` is
/// small only if the header was written for this very address.
#[inline(always)]
fn key(p: usize) -> usize {
    static ANCHOR: u8 = 0;
    p ^ ptr::from_ref(&ANCHOR).addr() ^ 0x9e37_79b9_7f4a_7c15
}

/// Writes the header of a live small block of `class` that starts at
/// `start` and is handed out at `start + (1 << shift)`; returns that
/// pointer.
///
/// # Safety
/// `start` is a live small block's start, of at least `(1 << shift) + 1`
/// bytes, `shift >= 4`.
#[inline(always)]
unsafe fn put_header(start: *mut u8, class: usize, shift: usize) -> *mut u8 {
    // SAFETY: the block has more than `1 << shift` bytes (caller).
    let p = unsafe { start.add(1 << shift) };
    // SAFETY: the word before `p` lies in the block (`1 << shift >= 16`),
    // aligned to 8 (`p` is aligned to 16).
    unsafe { p.cast::<usize>().sub(1).write(key(p.addr()) ^ (class | shift << 8)) };
    p
}

/// Address bits covered by the chunk bitmap.
const ADDRESS_BITS: u32 = 47;
/// Words of the chunk bitmap.
const MAP_WORDS: usize = (1 << ADDRESS_BITS) / CHUNK_SIZE / 64;

/// The chunk bitmap: zeroed memory (`.bss`) of which only the pages over
/// the chunks' addresses are ever touched. A static, so reading it needs
/// no test that it exists.
static CHUNK_MAP: [AtomicU64; MAP_WORDS] = [const { AtomicU64::new(0) }; MAP_WORDS];

/// Large blocks: address to `size | log2(align) << 56`.
pub(super) static LARGE: SpinLock<LiveTable> =
    SpinLock::new(LiveTable { slots: ptr::null_mut(), cap: 0, len: 0, tombs: 0 });

/// Notes a freshly mapped chunk in the bitmap. `false` when the chunk lies
/// above the address range the bitmap covers (the chunk is then not used).
pub(super) fn register_chunk(chunk: *mut GlobalChunk) -> bool {
    let index = chunk.addr() / CHUNK_SIZE;
    let Some(word) = CHUNK_MAP.get(index / 64) else { return false };
    // Release: a thread that sees the bit (Acquire in `is_chunk`) sees
    // the chunk's header written before.
    word.fetch_or(1 << (index % 64), Ordering::Release);
    true
}

/// Whether `addr` lies in a chunk of this allocator.
#[inline(always)]
fn is_chunk(addr: usize) -> bool {
    let index = addr / CHUNK_SIZE;
    match CHUNK_MAP.get(index / 64) {
        // Acquire: pairs with `register_chunk`.
        Some(word) => word.load(Ordering::Acquire) & (1 << (index % 64)) != 0,
        None => false,
    }
}

/// `malloc`: a block of `size` bytes aligned to 16 (`max_align_t`); null
/// when memory runs out or the size overflows. The common case (a small
/// block) inline, with no stack frame of its own: every other case is a
/// tail call.
#[inline(always)]
pub fn malloc16(size: usize) -> *mut u8 {
    if size <= LARGE_THRESHOLD - PREFIX {
        // `malloc(0)` is a unique block: its prefix and a byte
        // (`GlobalAlloc` is never asked for 0 bytes). Every block starts
        // on a GRAIN of 16, so alignment 1 is as good as 16.
        let start = GlobalArena::alloc_small_noting(size.max(1) + PREFIX, 1, false, |start, class| {
            // SAFETY: a live block just handed out, of more than PREFIX
            // bytes.
            unsafe { put_header(start, class, PREFIX_SHIFT) };
        });
        if start.is_null() {
            return start;
        }
        // The header is written (by the note); the pointer is PREFIX on.
        // SAFETY: the block has more than PREFIX bytes.
        return unsafe { start.add(PREFIX) };
    }
    malloc(size, GRAIN, false)
}

/// A block of `size` bytes aligned to `align` (a power of two), zeroed
/// when `zero`; null when memory runs out or the size overflows.
#[inline(never)]
pub fn malloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    let align = align.max(GRAIN);
    // As in `malloc16`.
    let size = size.max(1);
    // A small block is preceded by its header, in the `align` bytes (at
    // least PREFIX) before the pointer.
    let total = size.checked_add(align);
    match total {
        Some(total) if !is_large(total, align) => {
            let Ok(layout) = Layout::from_size_align(total, align) else { return ptr::null_mut() };
            let start = GlobalArena::alloc_layout(layout, zero);
            if start.is_null() {
                return start;
            }
            // SAFETY: a live small block of `total` bytes, more than
            // `align`, just handed out; `align >= 16`.
            unsafe { put_header(start, class_of(total).0, align.trailing_zeros() as usize) }
        }
        _ => {
            let Ok(_) = Layout::from_size_align(size, align) else { return ptr::null_mut() };
            let p = large_alloc(size, align, zero);
            if !p.is_null()
                && !LARGE.with(|t| t.insert(p.addr(), size | (align.trailing_zeros() as usize) << 56))
            {
                // Unrecorded, `free` could not find it: give it back.
                // SAFETY: the block just mapped, unused.
                unsafe { large_free(p, size, align) };
                return ptr::null_mut();
            }
            p
        }
    }
}

/// The allocator's statistics (`GlobalArena::stats`), for the C library's
/// report at exit.
pub fn stats() -> super::GlobalStats {
    GlobalArena::new().stats()
}

/// `malloc_trim`: does the calling thread's deferred frees and gives its
/// cached free blocks back to their chunks (chunks left with no live
/// block are recycled, beyond the few kept committed, decommitted).
pub fn trim() {
    super::thread::flush_cache();
}

/// The page size, which `valloc` aligns to.
pub fn page_size() -> usize {
    sys::page_size()
}

/// `pvalloc`: whole pages (at least one), page-aligned; null on overflow
/// or when memory runs out.
pub fn malloc_pages(size: usize) -> *mut u8 {
    let page = sys::page_size();
    match align::align_up(size.max(1), page) {
        Some(bytes) => malloc(bytes, page, false),
        None => ptr::null_mut(),
    }
}

/// A small block, as its header describes it.
#[derive(Clone, Copy)]
struct Small {
    /// Where the block starts.
    start: *mut u8,
    /// Its size class.
    class: usize,
    /// Its size (its class's).
    block: usize,
    /// `log2` of the pointer's offset from `start`.
    shift: usize,
}

impl Small {
    /// Bytes usable from the pointer on.
    fn usable(self) -> usize {
        self.block - (1 << self.shift)
    }
}

/// What a pointer handed to `free` is.
enum Block {
    Small(Small),
    /// A large block of this size and alignment.
    Large(usize, usize),
}

/// What the header before `p` says.
enum Header {
    /// A live small block.
    Live(Small),
    /// A small block freed already.
    Freed,
    /// No header: `p` is no small block's pointer.
    None,
}

/// Reads the header before `p`: a bitmap word, and the word before `p`
/// (on the line `free` links the block through).
#[inline(always)]
fn header(p: *mut u8) -> Header {
    if is_chunk(p.addr()) {
        // SAFETY: `p` lies in a registered chunk.
        unsafe { chunk_header(p) }
    } else {
        Header::None
    }
}

/// [`header`] of a pointer known to lie in a registered chunk (or null).
///
/// # Safety
/// `p` is null or lies in a registered chunk.
#[inline(always)]
unsafe fn chunk_header(p: *mut u8) -> Header {
    let addr = p.addr();
    // Aligned to 16 and at least 16 bytes into a registered chunk: the
    // word before `p` is in the chunk, readable. (Null is a multiple of
    // CHUNK_SIZE.)
    if align::is_aligned(addr, PREFIX) && !align::is_aligned(addr, CHUNK_SIZE) {
        // SAFETY: a word of a registered chunk (caller), which stays
        // mapped.
        let d = unsafe { p.cast::<usize>().sub(1).read() } ^ key(addr);
        if d < FREED {
            // (`d < FREED`, so `shift < 64`.)
            let (class, shift) = (d & 0xff, d >> 8);
            return Header::Live(Small {
                // The offset is at most MAX_CHUNK_ALIGN, inside the chunk.
                // (A class past the last, block size 0, would take a header
                // forged with the key: only the library writes one.)
                start: p.wrapping_sub(1 << shift),
                class,
                block: BLOCK_OF[class] as usize,
                shift,
            });
        }
        if d < 2 * FREED {
            return Header::Freed;
        }
    }
    Header::None
}

/// Flips the freed mark in the header before `p` (marks a live block
/// freed, or undoes that).
///
/// # Safety
/// `p` is the pointer of a small block whose header [`header`] read, not
/// freed since.
#[inline(always)]
unsafe fn mark_freed(p: *mut u8) {
    // SAFETY: the header word of a live block (caller).
    unsafe {
        let h = p.cast::<usize>().sub(1);
        h.write(h.read() ^ FREED);
    }
}

/// Finds the block `p` points to, or reports the pointer and aborts. The
/// small-block half is inline: a bitmap word and the header.
#[inline(always)]
fn lookup(p: *mut u8, what: &[u8]) -> Block {
    match header(p) {
        Header::Live(b) => Block::Small(b),
        Header::Freed => double_free(what),
        Header::None => lookup_large(p, what),
    }
}

/// [`lookup`] of a pointer that is no small block's.
#[cold]
#[inline(never)]
fn lookup_large(p: *mut u8, what: &[u8]) -> Block {
    let addr = p.addr();
    if !is_chunk(addr) {
        if let Some(v) = LARGE.with(|t| t.find(addr).map(|i| t.entries()[i][1])) {
            return Block::Large(v & ((1 << 56) - 1), 1 << (v >> 56));
        }
    }
    invalid(what)
}

#[cold]
#[inline(never)]
fn double_free(what: &[u8]) -> ! {
    sys::write_stderr(b"fiberalloc: ");
    sys::write_stderr(what);
    sys::fatal(b": a double free (the block is free already)\n")
}

#[cold]
#[inline(never)]
fn invalid(what: &[u8]) -> ! {
    sys::write_stderr(b"fiberalloc: ");
    sys::write_stderr(what);
    sys::fatal(b": a pointer fiberalloc did not hand out (or not a block's start)\n")
}

/// How many frees each thread defers. A `free` is given a block that
/// is often cold (larson frees a random one of 10,000 blocks): reading its
/// header at once stalls on the miss (two thirds of larson's `free`). So
/// `free` only prefetches the header's line and puts the pointer in a
/// small ring; the free it does is the one deferred `DEFERRED` frees ago,
/// whose line has arrived by then.
pub(super) const DEFERRED: usize = 8;
const _: () = assert!(DEFERRED.is_power_of_two());

/// Frees a block from [`malloc`] (nothing for null). A block of a chunk
/// is freed `DEFERRED` frees later (see [`DEFERRED`]): the free done now is
/// the ring's oldest. A large block, and a pointer that is no block, are
/// done at once, out of line.
///
/// # Safety
/// `p` is null or a live block from [`malloc`] or [`realloc`], not used
/// again.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    if !is_chunk(p.addr()) {
        if !p.is_null() {
            // SAFETY: the caller's.
            unsafe { free_other(p) };
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints; it never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            p.wrapping_sub(8).cast::<i8>(),
        )
    };
    let done = with_local(
        #[inline(always)]
        |l| {
            if l.state.get() != ACTIVE {
                // No exit hook to finish what is deferred: done now.
                return false;
            }
            let at = l.deferred_at.get();
            l.deferred_at.set((at + 1) % DEFERRED);
            // (Masked, so that no bounds check is compiled: `at` is below
            // DEFERRED, a power of two.)
            let due = l.deferred[at & (DEFERRED - 1)].replace(p);
            // SAFETY: `due` is null or a pointer given to this thread's
            // `free`, not used since, that passed the bitmap test; `l` is
            // active.
            unsafe { free_in(l, due) };
            true
        },
    );
    if done != Ok(true) {
        // SAFETY: the caller's; `p` passed the bitmap test.
        unsafe { free_now(p) }
    }
}

/// [`free_now`] by the thread whose state is `l`, active.
///
/// # Safety
/// As for [`free_now`], and `l` is the calling thread's state, active.
#[inline(always)]
unsafe fn free_in(l: &Local, p: *mut u8) {
    // SAFETY: forwarded from the caller; the closure gets a live small
    // block of its class's size, as `free_in_class` requires.
    unsafe { free_with(p, |b| GlobalArena::free_in_class(l, b.start, b.block, 1, || (b.class, b.block))) }
}

/// Does the frees the calling thread deferred (at its exit, and when it
/// flushes its cache).
pub(super) fn drain_deferred(l: &Local) {
    for slot in &l.deferred {
        let p = slot.replace(ptr::null_mut());
        // SAFETY: null or a pointer given to this thread's `free`, not
        // used since, that passed its bitmap test.
        unsafe { free_now(p) };
    }
}

/// The free [`free`] does: a small block's inline, with no stack frame of
/// its own (nothing for null). No bitmap test: every pointer deferred
/// passed it.
///
/// # Safety
/// As for [`free`], and `p` is null or lies in a registered chunk.
#[inline(always)]
unsafe fn free_now(p: *mut u8) {
    // SAFETY: forwarded from the caller; the closure gets a live small
    // block of its class's size (at most LARGE_THRESHOLD, so small, and
    // GRAIN-aligned), as `free_small_class` requires.
    unsafe { free_with(p, |b| GlobalArena::free_small_class(b.start, b.block, 1, || (b.class, b.block))) }
}

/// Reads the header before `p` and, for a live small block, marks it
/// freed and hands it to `free_small` (unsafe to call: it frees the
/// block); anything else but null goes to [`free_other`].
///
/// # Safety
/// As for [`free_now`]; `free_small` frees a live small block given its
/// header.
#[inline(always)]
unsafe fn free_with(p: *mut u8, free_small: impl FnOnce(Small)) {
    // SAFETY: null or in a registered chunk (caller).
    if let Header::Live(b) = unsafe { chunk_header(p) } {
        // SAFETY: the header `chunk_header` just read.
        unsafe { mark_freed(p) };
        free_small(b);
        return;
    }
    if !p.is_null() {
        // SAFETY: the caller's.
        unsafe { free_other(p) };
    }
}

/// [`free`] of a pointer that is no live small block's: a large block, or
/// one this library never handed out or freed already (reported, and the
/// process aborts).
///
/// # Safety
/// As for [`free`], with `p` not null.
#[cold]
#[inline(never)]
unsafe fn free_other(p: *mut u8) {
    match lookup(p, b"free") {
        // (A small block reaches here only if its header changed between
        // the two reads: a double free racing with a reuse.)
        Block::Small(_) => invalid(b"free"),
        Block::Large(size, align) => {
            LARGE.with(|t| t.remove(p.addr()));
            // SAFETY: a live large block of this size and alignment.
            unsafe { large_free(p, size, align) }
        }
    }
}

/// Bytes usable in the block at `p` (0 for null).
///
/// # Safety
/// `p` is null or a live block from [`malloc`] or [`realloc`].
pub unsafe fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    match lookup(p, b"malloc_usable_size") {
        Block::Small(b) => b.usable(),
        Block::Large(size, _) => align::round_up(size, sys::page_size()),
    }
}

/// Resizes the block at `p` to `size` bytes, keeping its contents up to the
/// smaller size; null (and `p` untouched) when memory runs out. `p` null
/// is `malloc`; `size` 0 is a block of 0 bytes.
///
/// # Safety
/// As for [`free`].
pub unsafe fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return malloc(size, GRAIN, false);
    }
    if size > isize::MAX as usize - LARGE_THRESHOLD {
        return ptr::null_mut();
    }
    match lookup(p, b"realloc") {
        Block::Small(b) if b.shift == PREFIX_SHIFT && !is_large(size.max(1) + PREFIX, GRAIN) => {
            let total = size.max(1) + PREFIX;
            // Freed first: a block that moves is freed inside
            // `realloc_raw`, after which it is not ours to write (its
            // chunk may be recycled). The copy takes the mark along, and
            // the new header replaces it.
            // SAFETY: the header `lookup` read.
            unsafe { mark_freed(p) };
            // SAFETY: a live small block of `b.block` bytes (its class).
            let q = unsafe {
                GlobalArena::realloc_raw(b.start, Layout::from_size_align_unchecked(b.block, GRAIN), total)
            };
            if q.is_null() {
                // Not moved, and still live: its mark undone.
                // SAFETY: the header marked above, still the block's.
                unsafe { mark_freed(p) };
                return q;
            }
            // SAFETY: a live small block of `total` bytes (resized in
            // place or moved, contents copied).
            unsafe { put_header(q, class_of(total).0, PREFIX_SHIFT) }
        }
        Block::Large(old, align) if is_large(size, align) => {
            // SAFETY: a live large block of `old` bytes aligned to `align`.
            if let Some(q) = unsafe { large_realloc(p, old, align, size) } {
                LARGE.with(|t| {
                    t.remove(p.addr());
                    t.insert(q.addr(), size | (align.trailing_zeros() as usize) << 56)
                });
                return q;
            }
            // SAFETY: as above.
            unsafe { move_block(p, old, size, align) }
        }
        // Crossing between small and large, or a block aligned to more
        // than 16: a new block and a copy.
        Block::Small(b) => {
            // SAFETY: a live small block with `b.usable()` bytes from `p`.
            unsafe { move_block(p, b.usable(), size, GRAIN) }
        }
        Block::Large(old, align) => {
            // SAFETY: a live large block of `old` bytes.
            unsafe { move_block(p, old, size, align) }
        }
    }
}

/// Moves the block at `p` (`old` usable bytes) into a new block of `size`
/// bytes aligned to `align`; null, with `p` kept, when that fails.
///
/// # Safety
/// `p` is a live block of at least `old` bytes, from [`malloc`].
unsafe fn move_block(p: *mut u8, old: usize, size: usize, align: usize) -> *mut u8 {
    let q = malloc(size, align, false);
    if !q.is_null() {
        // SAFETY: two live, distinct blocks, each at least as large as
        // the bytes copied.
        unsafe {
            ptr::copy_nonoverlapping(p, q, old.min(size));
            free(p);
        }
    }
    q
}

/// Takes the large-block table's lock around `fork` (see `fork.rs`).
pub(super) fn lock_for_fork() {
    LARGE.lock();
}

/// Releases what [`lock_for_fork`] took.
///
/// # Safety
/// [`lock_for_fork`] took the lock in this thread.
pub(super) unsafe fn unlock_after_fork() {
    // SAFETY: the caller's.
    unsafe { LARGE.unlock() };
}
