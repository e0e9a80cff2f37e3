//! Large blocks: a mapping each, resized with `mremap`, unmapped on free
//! or kept for the next block of the same length.
//!
//! A program that allocates and frees blocks of a few hundred KiB over and
//! over (mstress's large objects, a buffer per request) would map, fault
//! in page by page, and unmap each one: a freed mapping of at most
//! [`KEPT_MAX_LEN`] is kept instead ([`KEPT`], at most [`KEPT_BYTES`] in
//! all, the oldest unmapped to make room), and a request of exactly its
//! length takes it back, resident already (entries make room round
//! robin). A kept mapping is dirty, so a
//! zeroed request clears it. Only mappings aligned to at most a page are
//! kept (the others were trimmed from a larger mapping to their
//! alignment, and a request of another alignment could not use them).

use super::huge::advise_huge_timed;
use super::stats::{note_peak, SHARED_COUNTS};
use crate::sync::{AtomicUsize, Ordering, SpinLock};
use crate::{align, sys};
use core::ptr::{self, NonNull};

/// Large mappings of at least this size ask for transparent huge pages:
/// a vector grown to tens of MiB then faults 2 MiB at a time.
pub(super) const HUGE_MIN: usize = 4 << 20;

/// Bytes mapped for large blocks.
pub(super) static LARGE_MAPPED: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------
// Large blocks: a mapping each.

pub(super) fn large_len(size: usize) -> Option<usize> {
    let page = sys::page_size();
    align::align_up(size, page).filter(|&s| s <= isize::MAX as usize)
}

/// Freed mappings of at most this length are kept for reuse.
pub(super) const KEPT_MAX_LEN: usize = 2 << 20;
/// Most bytes of freed mappings kept.
pub(super) const KEPT_BYTES: usize = 8 << 20;
/// Entries of [`KEPT`].
const KEPT_SLOTS: usize = 16;

/// Freed large mappings kept for reuse: (length, address) entries, a zero
/// length for a free entry, and the entry that goes next to make room.
pub(super) struct Kept {
    slots: [(usize, *mut u8); KEPT_SLOTS],
    bytes: usize,
    next: usize,
}

// SAFETY: the entries are mappings nobody refers to, handed from the lock
// holder to the thread that takes one out.
unsafe impl Send for Kept {}

/// The kept mappings (see the module docs).
pub(super) static KEPT: SpinLock<Kept> =
    SpinLock::new(Kept { slots: [(0, ptr::null_mut()); KEPT_SLOTS], bytes: 0, next: 0 });

/// How many bytes [`KEPT`] holds, written under its lock and read without
/// it: a look, so that a program with no kept mapping skips the lock.
static KEPT_LEN: AtomicUsize = AtomicUsize::new(0);

/// Takes a kept mapping of exactly `len` bytes, if there is one.
fn take_kept(len: usize) -> Option<NonNull<u8>> {
    // Relaxed: a look; the lock orders what is taken.
    if KEPT_LEN.load(Ordering::Relaxed) == 0 {
        return None;
    }
    KEPT.with(|k| {
        let slot = k.slots.iter_mut().find(|s| s.0 == len)?;
        let p = core::mem::replace(slot, (0, ptr::null_mut())).1;
        k.bytes -= len;
        // Relaxed: see KEPT_LEN.
        KEPT_LEN.store(k.bytes, Ordering::Relaxed);
        NonNull::new(p)
    })
}

/// Keeps the freed mapping `p` of `len` bytes (at most [`KEPT_MAX_LEN`])
/// for reuse; returns the kept mappings that made room for it, to unmap
/// (zero-length entries are none).
fn keep(p: *mut u8, len: usize) -> [(usize, *mut u8); KEPT_SLOTS] {
    let mut out = [(0, ptr::null_mut()); KEPT_SLOTS];
    KEPT.with(|k| {
        let mut n = 0;
        // Entries go, round robin, until there is a free one and room in
        // the bytes. Each turn frees an entry, so after KEPT_SLOTS turns at
        // most the table is empty, and `len <= KEPT_BYTES` fits.
        while k.bytes + len > KEPT_BYTES || k.slots.iter().all(|s| s.0 != 0) {
            let oldest = k.next;
            k.next = (oldest + 1) % KEPT_SLOTS;
            // (`get_mut`s that always succeed: no panic on this path.)
            let Some(slot) = k.slots.get_mut(oldest) else { break };
            let entry = core::mem::replace(slot, (0, ptr::null_mut()));
            if entry.0 != 0 {
                k.bytes -= entry.0;
                let Some(gone) = out.get_mut(n) else { break };
                *gone = entry;
                n += 1;
            }
        }
        match k.slots.iter_mut().find(|s| s.0 == 0) {
            Some(slot) if k.bytes + len <= KEPT_BYTES => {
                *slot = (len, p);
                k.bytes += len;
            }
            // (Not reached: the loop made room.) Unmapped with the rest.
            _ => {
                if let Some(gone) = out.get_mut(n) {
                    *gone = (len, p);
                }
            }
        }
        // Relaxed: see KEPT_LEN.
        KEPT_LEN.store(k.bytes, Ordering::Relaxed);
    });
    out
}

/// Takes the kept mappings' lock around `fork` (see `fork.rs`).
pub(super) fn lock_for_fork() {
    KEPT.lock();
}

/// Releases what [`lock_for_fork`] took.
///
/// # Safety
/// [`lock_for_fork`] took the lock in this thread.
pub(super) unsafe fn unlock_after_fork() {
    // SAFETY: the caller's.
    unsafe { KEPT.unlock() };
}

/// A large block of `size` bytes aligned to `align`: a kept mapping of its
/// length (cleared when `zero`), else a fresh one (which reads as zeros).
pub(super) fn large_alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    let Some(len) = large_len(size) else { return ptr::null_mut() };
    if len <= KEPT_MAX_LEN && align <= sys::page_size() {
        if let Some(p) = take_kept(len) {
            if zero {
                // SAFETY: the kept mapping is `len` bytes, ours now.
                unsafe { p.as_ptr().write_bytes(0, size) };
            }
            SHARED_COUNTS.on_alloc_shared(size);
            note_peak();
            return p.as_ptr();
        }
    }
    match sys::map_aligned(len, align) {
        Ok(p) => {
            if len >= HUGE_MIN {
                // SAFETY: the fresh mapping is ours.
                unsafe { advise_huge_timed(p, len, p.addr().get(), false) };
            }
            // Relaxed: statistics.
            LARGE_MAPPED.fetch_add(len, Ordering::Relaxed);
            SHARED_COUNTS.on_alloc_shared(size);
            note_peak();
            p.as_ptr()
        }
        Err(_) => ptr::null_mut(),
    }
}

/// # Safety
/// `ptr` came from [`large_alloc`] with `size` and `align`.
pub(super) unsafe fn large_free(ptr: *mut u8, size: usize, align: usize) {
    let len = large_len(size).unwrap_or(0);
    SHARED_COUNTS.on_free_shared(size);
    let mut gone = [(0, ptr::null_mut()); KEPT_SLOTS];
    if len <= KEPT_MAX_LEN && align <= sys::page_size() {
        gone = keep(ptr, len);
    } else {
        gone[0] = (len, ptr);
    }
    for (len, p) in gone {
        if len == 0 {
            continue;
        }
        // SAFETY: a freed large block's whole mapping (the caller's, or a
        // kept one just taken out of the table), `len` bytes from `p`,
        // that nothing refers to.
        let ok = unsafe { sys::release_aligned(NonNull::new_unchecked(p), len, align) }.is_ok();
        if !ok {
            sys::fatal(b"fiberalloc: GlobalArena could not unmap a large block (bad pointer or layout given to dealloc)\n");
        }
        // Relaxed: a statistic.
        LARGE_MAPPED.fetch_sub(len, Ordering::Relaxed);
    }
}

/// Resizes a large block to another large size in place or by `mremap`;
/// `None` when it has to be moved by copy (an alignment above a page that
/// `mremap` could not keep in place, or the OS refused).
///
/// # Safety
/// `ptr` came from [`large_alloc`] with `old_size` and `align`, and
/// `new_size` is large too; on `Some`, only the result is used from here
/// on.
pub(super) unsafe fn large_realloc(
    ptr: *mut u8,
    old_size: usize,
    align: usize,
    new_size: usize,
) -> Option<*mut u8> {
    if let (Some(old_len), Some(new_len)) = (large_len(old_size), large_len(new_size)) {
        if old_len == new_len {
            SHARED_COUNTS.bytes_in.fetch_add(new_size, Ordering::Relaxed);
            SHARED_COUNTS.bytes_out.fetch_add(old_size, Ordering::Relaxed);
            return Some(ptr);
        }
        // A moved mapping keeps only page alignment.
        let may_move = align <= sys::page_size();
        // SAFETY: `ptr` is a live large block whose mapping is
        // `old_len` bytes (caller); on success only the result is
        // used from here on.
        let moved = unsafe { sys::remap(NonNull::new_unchecked(ptr), old_len, new_len, may_move) };
        if let Ok(p) = moved {
            if new_len >= HUGE_MIN {
                // A mapping advised before keeps the advice when it
                // moves: probed again on its new part, or taken
                // back once huge pages are slow.
                // SAFETY: the remapped block is ours.
                if !unsafe { advise_huge_timed(p, new_len, p.addr().get() + old_len, false) }
                    && old_len >= HUGE_MIN
                {
                    // SAFETY: as above.
                    unsafe { sys::advise_huge(p, new_len, false) };
                }
            }
            // Relaxed: statistics.
            LARGE_MAPPED.fetch_add(new_len, Ordering::Relaxed);
            LARGE_MAPPED.fetch_sub(old_len, Ordering::Relaxed);
            SHARED_COUNTS.bytes_in.fetch_add(new_size, Ordering::Relaxed);
            SHARED_COUNTS.bytes_out.fetch_add(old_size, Ordering::Relaxed);
            note_peak();
            return Some(p.as_ptr());
        }
    }
    None
}
