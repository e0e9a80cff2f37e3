//! What the C `malloc` interface needs beyond `GlobalAlloc`: finding a
//! block's size from its pointer alone (built only with the `c-abi`
//! feature, for the `fiberalloc-malloc` crate in `capi/`).
//!
//! `free` is given no size, so each block's size class is written down
//! when the block is handed out, where `free` finds it in O(1):
//!
//! - **Small blocks** (bumped from a chunk): every chunk of the C build
//!   carries a *class table* right after its header, one byte per
//!   `GRANULE` (16 bytes) of the chunk (`CHUNK_SIZE / 16` bytes, 128 KiB, taken from
//!   the chunk's data: `HEADER_SIZE` is larger in this build). The byte at
//!   a block's first granule holds its size class (never 0). In this build
//!   `GRAIN` is 16, so every block starts on a granule and is aligned to
//!   `max_align_t`. The table costs one byte store per allocation, resident
//!   at one page per 64 KiB of blocks.
//! - **Which chunks exist**: a bitmap with one bit per `CHUNK_SIZE` of the
//!   47-bit address space (a zeroed static of 8 MiB, of which only the
//!   pages over the chunks' addresses are touched), set when a chunk is
//!   mapped.
//!   Chunks are never unmapped, so a bit is never cleared.
//! - **Large blocks** (a mapping each) are recorded in a hash table of
//!   their own (address to size and alignment) under a spin lock: they are
//!   at least 256 KiB, so the lock is taken rarely.
//!
//! A pointer that is none of these (not in a chunk, or in a chunk but at no
//! block's start, or not a recorded large block) was not handed out here:
//! [`free`] reports it with one `write(2)` and aborts, as glibc does for an
//! invalid pointer, rather than corrupt a list with it.
//!
//! The Rust `GlobalAlloc` path does none of this (it is given the layout),
//! and without the feature none of it is compiled.

use super::chunk::{GlobalChunk, CHUNK_SIZE, HEADER_SIZE};
use super::class::{class_of, class_size, is_large, GRAIN, LARGE_THRESHOLD};
use super::large::{large_alloc, large_free, large_realloc};
use super::track::LiveTable;
use super::GlobalArena;
use crate::sync::{plain::AtomicU64, Ordering, SpinLock};
use crate::{align, sys};
use core::alloc::Layout;
use core::ptr;

/// Bytes of chunk per class-table entry.
pub(super) const GRANULE: usize = 16;
/// Where a chunk's class table starts (just after the `GlobalChunk`).
pub(super) const TABLE_OFFSET: usize = 128;
/// Bytes of a chunk's class table.
pub(super) const TABLE_BYTES: usize = CHUNK_SIZE / GRANULE;

const _: () = assert!(GRAIN == GRANULE, "every block must start on a granule");
const _: () = assert!(core::mem::size_of::<GlobalChunk>() <= TABLE_OFFSET);
const _: () = assert!(TABLE_OFFSET + TABLE_BYTES <= HEADER_SIZE);
const _: () = assert!(super::class::CLASSES <= 256, "a class fits in a byte");

/// Block size by table byte: `class_size` of each class, 0 for a byte that
/// is no class (0, which marks a granule that starts no live block, and
/// bytes past the last class). One load where `class_size` is a branch
/// and a shift.
static BLOCK_OF: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut class = 1;
    while class < super::class::CLASSES {
        t[class] = class_size(class) as u32;
        class += 1;
    }
    t
};

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
    // the chunk's header and zeroed table written before.
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

/// The class-table entry of the granule at `ptr`, a pointer into a chunk.
#[inline(always)]
fn entry(ptr: *mut u8) -> *mut u8 {
    let chunk = super::chunk::chunk_of(ptr).cast::<u8>();
    let granule = (ptr.addr() - chunk.addr()) / GRANULE;
    // SAFETY: `granule < TABLE_BYTES`, so the entry lies in the chunk's
    // class table, inside the chunk.
    unsafe { chunk.add(TABLE_OFFSET + granule) }
}

/// Records the class of a small block just handed out, and clears its
/// freed mark.
#[inline(always)]
fn note_small(p: *mut u8, size: usize) {
    note_class(p, class_of(size).0);
}

/// [`note_small`] with the class worked out. The table byte is written
/// only when it changes: a block handed out again from a thread cache
/// has its class's byte already (`free` leaves it), and not writing it
/// keeps the table's lines shared between the cores that read them: a
/// `free` that cleared the byte made larson's frees wait on a line another
/// core had written (78% of their cycles; 1.5x slower than now).
#[inline(always)]
fn note_class(p: *mut u8, class: usize) {
    set_class(p, class);
    // SAFETY: `p` is a live small block, at least 16 bytes, just handed
    // out: its second word is its own.
    unsafe { p.cast::<usize>().add(1).write(0) };
}

/// Writes the class of the small block at `p` into the table, if it
/// changed.
#[inline(always)]
fn set_class(p: *mut u8, class: usize) {
    // SAFETY: `p` is a live small block, so it lies in a chunk; the table
    // byte of its first granule is this block's.
    unsafe {
        let e = entry(p);
        if e.read() != class as u8 {
            e.write(class as u8);
        }
    }
}

/// What `free` writes into a small block's second word, and the mark of a
/// double free when it finds it there: a value no program writes by
/// chance (the address of a static, so different in every run under
/// ASLR, rotated and mixed with a constant). `malloc` clears the word, so
/// a live block never holds it unless its user wrote it.
#[inline(always)]
fn freed_mark() -> usize {
    static ANCHOR: u8 = 0;
    ptr::from_ref(&ANCHOR).addr().rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15
}

/// Clears the class-table bytes of the granules in `from..to`, a range of
/// one chunk's data (the bytes past an owner's cursor, which name no
/// block).
///
/// # Safety
/// `from..to` (when not empty) lies inside one registered chunk, past its
/// header, and no live block starts in it.
pub(super) unsafe fn clear_classes(from: *mut u8, to: usize) {
    if to <= from.addr() {
        return;
    }
    let first = entry(from);
    let n = (to - from.addr()).div_ceil(GRANULE);
    // SAFETY: `from..to` lies in one chunk's data (caller), so its table
    // entries are `n` consecutive bytes of that chunk's table.
    unsafe { first.write_bytes(0, n) };
}

/// `malloc`: a block of `size` bytes aligned to 16 (`max_align_t`); null
/// when memory runs out or the size overflows. The common case (a small
/// block) inline, with no stack frame of its own: every other case is a
/// tail call.
#[inline(always)]
pub fn malloc16(size: usize) -> *mut u8 {
    if size <= LARGE_THRESHOLD {
        // `malloc(0)` is a unique block: a byte's (`GlobalAlloc` is never
        // asked for 0 bytes). Every block starts on a GRAIN of 16, so
        // alignment 1 is as good as 16.
        let size = size.max(1);
        return GlobalArena::alloc_small_noting(size, 1, false, note_class);
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
    let Ok(layout) = Layout::from_size_align(size, align) else { return ptr::null_mut() };
    if is_large(size, align) {
        let p = large_alloc(size, align, zero);
        if !p.is_null() && !LARGE.with(|t| t.insert(p.addr(), size | (align.trailing_zeros() as usize) << 56))
        {
            // Unrecorded, `free` could not find it: give it back.
            // SAFETY: the block just mapped, unused.
            unsafe { large_free(p, size, align) };
            return ptr::null_mut();
        }
        return p;
    }
    let p = GlobalArena::alloc_layout(layout, zero);
    if !p.is_null() {
        note_small(p, size);
    }
    p
}

/// The allocator's statistics (`GlobalArena::stats`), for the C library's
/// report at exit.
pub fn stats() -> super::GlobalStats {
    GlobalArena::new().stats()
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

/// What a pointer handed to `free` is.
enum Block {
    /// A small block of this block size.
    Small(usize),
    /// A large block of this size and alignment.
    Large(usize, usize),
}

/// The class and block size of the small block that starts at `p`, or
/// `None` when `p` is no small block's start (null, a large block, or a
/// pointer this library never handed out): a bitmap word, a table byte and
/// [`BLOCK_OF`].
#[inline(always)]
fn small_class(p: *mut u8) -> Option<(usize, usize)> {
    let addr = p.addr();
    // No test that `p` lies past the chunk's header: the table bytes of the
    // header's granules (the table's own first bytes) are never written, so
    // they read 0, which is no class.
    if is_chunk(addr) && align::is_aligned(addr, GRANULE) {
        // SAFETY: a pointer into a registered chunk's data.
        let class = unsafe { entry(p).read() } as usize;
        let block = BLOCK_OF[class] as usize;
        if block != 0 {
            return Some((class, block));
        }
    }
    None
}

/// Finds the block `p` starts, or reports the pointer and aborts. The
/// small-block half is inline: a bitmap word and a table byte.
#[inline(always)]
fn lookup(p: *mut u8, what: &[u8]) -> Block {
    match small_class(p) {
        Some((_, block)) => Block::Small(block),
        None => lookup_large(p, what),
    }
}

/// [`lookup`] of a pointer that is no small block's start.
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
fn double_free() -> ! {
    sys::fatal(b"fiberalloc: free: a double free (the block is free already)\n")
}

#[cold]
#[inline(never)]
fn invalid(what: &[u8]) -> ! {
    sys::write_stderr(b"fiberalloc: ");
    sys::write_stderr(what);
    sys::fatal(b": a pointer fiberalloc did not hand out (or not a block's start)\n")
}

/// Frees a block from [`malloc`] (nothing for null). A small block's free
/// is inline, with no stack frame of its own; a large block, and a pointer
/// that is no block, go out of line.
///
/// # Safety
/// `p` is null or a live block from [`malloc`] or [`realloc`], not used
/// again.
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    if let Some((class, block)) = small_class(p) {
        // Marked free in its second word, so that a second `free` of the
        // block is caught while it waits in a thread cache (a remote
        // free's list link may overwrite the mark; `malloc` clears it).
        let mark = freed_mark();
        // SAFETY: `p` is a small block's start (`small_class`), of at
        // least 16 bytes.
        let second = unsafe { p.cast::<usize>().add(1) };
        // SAFETY: as above.
        if unsafe { second.read() } == mark {
            double_free()
        }
        // SAFETY: as above.
        unsafe { second.write(mark) };
        // SAFETY: a live small block of its class's size (at most
        // LARGE_THRESHOLD, so small, and GRAIN-aligned), which is the
        // class of that size.
        unsafe { GlobalArena::free_small_class(p, block, 1, || (class, block)) };
        return;
    }
    if !p.is_null() {
        // SAFETY: the caller's.
        unsafe { free_other(p) };
    }
}

/// [`free`] of a pointer that is no small block's start: a large block, or
/// one this library never handed out (reported, and the process aborts).
///
/// # Safety
/// As for [`free`], with `p` not null.
#[cold]
#[inline(never)]
unsafe fn free_other(p: *mut u8) {
    match lookup(p, b"free") {
        // (A small block reaches here only if its table byte changed
        // between the two reads: a double free racing with a reuse.)
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
        Block::Small(block) => block,
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
        Block::Small(block) if !is_large(size, GRAIN) => {
            // SAFETY: a live small block of `block` bytes (its class).
            let q =
                unsafe { GlobalArena::realloc_raw(p, Layout::from_size_align_unchecked(block, GRAIN), size) };
            if !q.is_null() {
                // Resized in place or moved (the contents copied, so the
                // second word is the user's: only the class is noted). A
                // moved-from `p` is free, its table byte left as after a
                // `free`.
                set_class(q, class_of(size).0);
            }
            q
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
        // Crossing between small and large: a new block and a copy.
        Block::Small(block) => {
            // SAFETY: a live small block of `block` bytes.
            unsafe { move_block(p, block, size, GRAIN) }
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
