//! Large blocks: a mapping each, unmapped on free, resized with `mremap`.

use super::huge::advise_huge_timed;
use super::stats::{note_peak, SHARED_COUNTS};
use crate::sync::{AtomicUsize, Ordering};
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

pub(super) fn large_alloc(size: usize, align: usize) -> *mut u8 {
    let Some(len) = large_len(size) else { return ptr::null_mut() };
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
    // SAFETY: the caller passes a live large block, whose mapping is `len`
    // bytes from `ptr`.
    let ok = unsafe { sys::release_aligned(NonNull::new_unchecked(ptr), len, align) }.is_ok();
    if !ok {
        sys::fatal(b"fiberalloc: GlobalArena could not unmap a large block (bad pointer or layout given to dealloc)\n");
    }
    LARGE_MAPPED.fetch_sub(len, Ordering::Relaxed);
    SHARED_COUNTS.on_free_shared(size);
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
