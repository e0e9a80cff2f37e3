//! Transparent huge pages: when a chunk or a large mapping asks for them,
//! and how a slow huge page turns the advice off for a while.

use super::chunk::CHUNKS_MAPPED;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use crate::{align, sys};
use core::ptr::NonNull;

/// Chunks mapped while the program has at least this many bytes live ask
/// for transparent huge pages (`MADV_HUGEPAGE`): a heap that large gets
/// one TLB entry per chunk instead of 512 (a search through a B-tree of
/// 80 MiB misses the TLB on most nodes otherwise). A smaller heap stays on
/// 4 KiB pages, resident only as far as it has bumped: a huge page is
/// resident whole, and a chunk kept by one live block keeps all of it. A
/// program that churns through many chunks with a small live set (whose
/// chunks come back and are reused) therefore never asks.
pub(super) const HUGE_LIVE_MIN: usize = 16 << 20;
/// The advice is given only while huge pages come quickly: the first
/// fault of each advised chunk is timed, and one slower than this turns
/// the advice off (see [`huge_retry_after`] for when it is tried again).
/// (On a VM whose host takes back the guest's free memory, zeroing a fresh
/// huge page can take milliseconds; parsing 50 MB of JSON then took 1.4 s
/// instead of 0.5.)
pub(super) const HUGE_FAULT_BUDGET_NS: u64 = 1_000_000;
/// After a slow huge page turned the advice off, fresh chunks ask again
/// (and the first is timed again) once at least this many more chunks
/// have been mapped (see [`huge_retry_after`]).
pub(super) const HUGE_RETRY_CHUNKS: usize = 32;

/// Chunks mapped with the advice for huge pages.
pub(super) static CHUNKS_HUGE: AtomicUsize = AtomicUsize::new(0);
/// Set when a huge page came slowly: no advice until the chunk count
/// reaches [`HUGE_RETRY_AT`] (see [`HUGE_FAULT_BUDGET_NS`]).
pub(super) static HUGE_SLOW: AtomicBool = AtomicBool::new(false);
/// The count of chunks mapped at which a fresh chunk asks for huge pages
/// again while [`HUGE_SLOW`] is set.
pub(super) static HUGE_RETRY_AT: AtomicUsize = AtomicUsize::new(0);

/// When huge pages are tried again after a slow one turned the advice off
/// with `mapped` chunks mapped: once the count has doubled, and at least
/// [`HUGE_RETRY_CHUNKS`] more. The machine may have become quick again (on
/// this VM the cost of a fresh huge page changes by 50x from one phase to
/// another), and a program that runs for hours should not stay on 4 KiB
/// pages because of one slow fault at its start; while it stays slow, the
/// retries cost one slow fault per doubling of the chunks mapped.
pub(super) fn huge_retry_after(mapped: usize) -> usize {
    mapped.saturating_add(mapped.max(HUGE_RETRY_CHUNKS))
}

/// Turns the advice off after a slow huge page, until the count of chunks
/// mapped reaches the number returned ([`huge_retry_after`]).
pub(crate) fn turn_huge_pages_off() -> usize {
    let mapped = CHUNKS_MAPPED.load(Ordering::Relaxed);
    let at = huge_retry_after(mapped);
    // Relaxed: hints; a thread that misses the stores advises (and times)
    // once more, or waits for the retry a little longer.
    HUGE_RETRY_AT.store(at, Ordering::Relaxed);
    HUGE_SLOW.store(true, Ordering::Relaxed);
    at
}

/// Asks for transparent huge pages on the mapping `ptr..ptr + len`
/// unless they have been found slow (or `retry`: a fresh chunk past
/// [`HUGE_RETRY_AT`] asks anyway), and times the fault of the first huge
/// page lying wholly at or above `fresh` (the part of the mapping not yet
/// written: a new chunk, or what `mremap` added); one slower than
/// [`HUGE_FAULT_BUDGET_NS`] takes the advice back and turns it off
/// (again), a quick one after a retry turns it back on. The page faulted
/// is one the caller is about to write (a chunk's header), or 2 MiB of a
/// large block that is resident early (a block of 4 MiB or more that is
/// never written costs that much RSS). Returns whether the mapping was
/// advised.
///
/// # Safety
/// `ptr..ptr + len` is a mapping the caller owns.
#[cold]
pub(super) unsafe fn advise_huge_timed(ptr: NonNull<u8>, len: usize, fresh: usize, retry: bool) -> bool {
    // Relaxed: a hint; a thread that misses the store advises once more.
    if HUGE_SLOW.load(Ordering::Relaxed) && !retry {
        return false;
    }
    // SAFETY: the mapping is ours (caller).
    unsafe { sys::advise_huge(ptr, len, true) };
    const HUGE_PAGE: usize = 2 << 20;
    let probe = align::round_up(fresh, HUGE_PAGE);
    if probe + HUGE_PAGE <= ptr.addr().get() + len {
        let start = sys::monotonic_ns();
        // SAFETY: `probe` is a page inside the mapping (above), and
        // faulting a page in keeps its contents.
        unsafe { sys::prefault(NonNull::new_unchecked(ptr.as_ptr().with_addr(probe)), sys::page_size()) };
        if sys::monotonic_ns().wrapping_sub(start) > HUGE_FAULT_BUDGET_NS {
            turn_huge_pages_off();
            // SAFETY: as above.
            unsafe { sys::advise_huge(ptr, len, false) };
        } else if retry {
            // Relaxed: as in `turn_huge_pages_off`.
            HUGE_SLOW.store(false, Ordering::Relaxed);
        }
    }
    true
}
