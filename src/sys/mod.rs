//! The platform layer: the only code that names `libc` or a `target_os`.
//!
//! # Contract
//!
//! Every function here keeps these rules, and the layers above rely on them
//! instead of on what the platform is:
//!
//! - Addresses and sizes passed in and returned are multiples of
//!   [`page_size()`], and sizes are never zero.
//! - A failure returns the OS reason as an [`std::io::Error`] (its `errno`)
//!   and leaves the pages as they were, and `errno` as it was before the
//!   call (the C library's `free` must not change it); nothing here panics
//!   or allocates through the global allocator, so the global allocator may
//!   call it.
//! - [`map`] returns readable, writable, zero-filled pages; [`reserve`]
//!   returns address space with no access; [`commit`] opens pages for reading
//!   and writing; [`decommit`] gives the physical pages back while keeping the
//!   address range readable and writable (the next touch sees zeros);
//!   [`protect`] removes all access; [`guard`] makes pages fault on any access,
//!   with `MADV_GUARD_INSTALL` where the kernel accepts it (no extra VMA) and
//!   `mprotect(PROT_NONE)` otherwise; [`release`] returns the range to the OS.
//! - [`map_aligned`] maps at a multiple of a power-of-two alignment;
//!   [`remap`] resizes a mapping (`mremap`), moving it only when allowed;
//!   [`ThreadExitKey`] runs a function at thread exit without allocating.
//! - The upper layers ask questions ([`guard_markers`], [`page_size`])
//!   rather than testing the platform themselves.
//!
//! Under Miri, which cannot model `mmap` or `mprotect`, `heap.rs` stands in:
//! mappings come from `std::alloc` with page alignment, guards and
//! protection are recorded but not enforced, and decommit writes zeros.

#[cfg(not(any(miri, fiberalloc_loom)))]
mod unix;
#[cfg(not(any(miri, fiberalloc_loom)))]
pub(crate) use unix::*;

// Miri cannot model mmap; loom builds want no `static` atomics. Both get
// the heap stand-in.
#[cfg(any(miri, fiberalloc_loom))]
mod heap;
#[cfg(any(miri, fiberalloc_loom))]
pub(crate) use heap::*;

// The fault handler behind the fiber-stack overflow reporter (real signals
// only: not under Miri or loom).
#[cfg(all(unix, not(any(miri, fiberalloc_loom))))]
pub(crate) mod signal;

// Thread-exit hooks for `GlobalArena` (not under loom: no statics there).
#[cfg(not(fiberalloc_loom))]
mod thread;
#[cfg(not(fiberalloc_loom))]
pub(crate) use thread::ThreadExitKey;

/// Writes `msg` to stderr with one `write(2)` and aborts the process: for
/// states the crate cannot survive (a corrupted heap, a guard page that
/// will not come off, a bad pointer handed to `dealloc`). Allocates
/// nothing and is async-signal-safe, so allocator paths and signal
/// handlers may call it.
#[cold]
#[inline(never)]
pub(crate) fn fatal(msg: &[u8]) -> ! {
    write_stderr(msg);
    std::process::abort()
}

/// How guard pages were installed, so they can be removed the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(any(miri, fiberalloc_loom), allow(dead_code))]
pub enum GuardKind {
    /// `MADV_GUARD_INSTALL` markers in the page tables (Linux 6.13+): the
    /// pages stay part of the surrounding VMA.
    Marker,
    /// `mprotect(PROT_NONE)`: splits the VMA.
    Protect,
    /// Not enforced (Miri's heap stand-in).
    #[cfg_attr(not(any(miri, fiberalloc_loom)), allow(dead_code))]
    Recorded,
}
