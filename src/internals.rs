//! Internals for the crate's own tests (`fiberalloc::__internals`); not
//! part of the API. Each hook reads a counter a lower layer keeps, so tests
//! can check what the crate did (mappings made, prefaults, which guard
//! mechanism the kernel took) without a debugger.

/// Mappings (`mmap` calls) the calling thread has made through
/// fiberalloc.
pub fn mappings_made() -> usize {
    crate::sys::mappings_made()
}

/// Prefault calls (`MADV_POPULATE_WRITE`) the calling thread has made
/// through fiberalloc.
pub fn prefaults_made() -> usize {
    crate::sys::prefaults_made()
}

/// Whether guard pages are `MADV_GUARD_INSTALL` markers (`Some(true)`),
/// `mprotect` (`Some(false)`), or not known yet (`None`).
pub fn guard_markers() -> Option<bool> {
    crate::sys::guard_markers()
}

/// Does what a slow huge page does to `GlobalArena`: turns the advice
/// off until the count of chunks mapped reaches the number returned.
#[cfg(not(fiberalloc_loom))]
pub fn global_turn_huge_pages_off() -> usize {
    crate::global::turn_huge_pages_off()
}
