//! An owned, page-aligned mapping with optional guard pages.
//!
//! A [`Region`] is the unit the arenas get memory in. Its layout is
//!
//! ```text
//! base                                                     base + total
//! | low guard (0 or 1 page) | usable bytes | high guard (0 or 1 page) |
//! ```
//!
//! The owner is built as soon as the mapping exists, so if installing a
//! guard fails afterwards, dropping the half-built region unmaps it and
//! nothing leaks. Dropping a region unmaps the whole range.

use crate::sys::{self, GuardKind};
use std::io;
use std::ptr::NonNull;

/// An owned mapping. Invariants: `base` is page-aligned and owns
/// `total = low + usable + high` bytes; `usable` is a non-zero multiple of
/// the page size; `low` and `high` are 0 or one page each.
pub(crate) struct Region {
    base: NonNull<u8>,
    total: usize,
    low: usize,
    high: usize,
    guard: Option<GuardKind>,
}

// SAFETY: a Region is a unique owner of its mapping, like a `Box<[u8]>`.
unsafe impl Send for Region {}

impl Region {
    /// Maps `usable` bytes (rounded up to pages), readable, writable and
    /// zeroed, with a guard page below and/or above them.
    pub(crate) fn new(usable: usize, low_guard: bool, high_guard: bool) -> io::Result<Region> {
        let page = sys::page_size();
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "region size out of range");
        if usable == 0 {
            return Err(invalid());
        }
        let usable = crate::align::align_up(usable, page).ok_or_else(invalid)?;
        let low = if low_guard { page } else { 0 };
        let high = if high_guard { page } else { 0 };
        let total =
            usable.checked_add(low + high).filter(|&t| t <= isize::MAX as usize).ok_or_else(invalid)?;
        if (low != 0 || high != 0) && sys::guard_markers() == Some(false) {
            // No guard markers: reserve everything with no access, own it,
            // then open only the usable part (the guards stay closed).
            let base = sys::reserve(total)?;
            let region = Region { base, total, low, high, guard: Some(GuardKind::Protect) };
            // SAFETY: the usable part of the reservation just made.
            unsafe { sys::commit(region.start(), usable)? };
            return Ok(region);
        }
        let base = sys::map(total)?;
        let mut region = Region { base, total, low, high, guard: None };
        if low != 0 {
            // SAFETY: the first page belongs to the mapping just made, and
            // nothing has been handed out from it.
            region.guard = Some(unsafe { sys::guard(base, low)? });
        }
        if high != 0 {
            let at = region.usable_end();
            // SAFETY: the last page belongs to the mapping just made.
            region.guard = Some(unsafe { sys::guard(at, high)? });
        }
        Ok(region)
    }

    /// First usable byte (page-aligned).
    #[inline]
    pub(crate) fn start(&self) -> NonNull<u8> {
        // SAFETY: `low <= total`, so the result stays inside the mapping.
        unsafe { self.base.add(self.low) }
    }

    /// One past the last usable byte.
    #[inline]
    pub(crate) fn usable_end(&self) -> NonNull<u8> {
        // SAFETY: `low + usable <= total`: still inside (or one past) the
        // mapping.
        unsafe { self.base.add(self.total - self.high) }
    }

    /// Usable bytes (guards excluded).
    #[inline]
    pub(crate) fn usable_size(&self) -> usize {
        self.total - self.low - self.high
    }

    /// Whether this region has guard pages, and how they were installed.
    #[allow(dead_code)]
    pub(crate) fn guard_kind(&self) -> Option<GuardKind> {
        self.guard
    }

    /// Gives the mapping up to the caller as `(base, total bytes)`, guards
    /// included; the caller unmaps it (`sys::release`) when done.
    pub(crate) fn into_mapping(self) -> (NonNull<u8>, usize) {
        let m = (self.base, self.total);
        core::mem::forget(self);
        m
    }

    /// Gives the region up without unmapping it; [`Region::from_raw`]
    /// takes it back.
    pub(crate) fn into_raw(self) -> RawRegion {
        let raw = RawRegion {
            base: self.base,
            total: self.total,
            low: self.low != 0,
            high: self.high != 0,
            guard: self.guard,
        };
        core::mem::forget(self);
        raw
    }

    /// Takes back a region given up by [`Region::into_raw`].
    ///
    /// # Safety
    /// `raw` came from `into_raw` and has not been taken back before.
    pub(crate) unsafe fn from_raw(raw: RawRegion) -> Region {
        let page = sys::page_size();
        Region {
            base: raw.base,
            total: raw.total,
            low: if raw.low { page } else { 0 },
            high: if raw.high { page } else { 0 },
            guard: raw.guard,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // A failure of munmap (it cannot fail on a range we mapped) would
        // leak the range, which is safe.
        // SAFETY: the region owns `base..base + total`, and whoever handed
        // out memory from it gave it back before dropping the owner.
        let _ = unsafe { sys::release(self.base, self.total) };
    }
}

/// A region's description while it is not owned by a [`Region`] value (it
/// lives in a chunk header inside its own mapping).
#[derive(Clone, Copy)]
pub(crate) struct RawRegion {
    base: NonNull<u8>,
    total: usize,
    low: bool,
    high: bool,
    guard: Option<GuardKind>,
}
