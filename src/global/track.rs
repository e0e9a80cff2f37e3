//! Live-block records of a tracking handle ([`GlobalArena::tracking`]).
//!
//! [`GlobalArena::tracking`]: super::GlobalArena::tracking

use crate::debug::Leak;
use crate::sync::{AtomicUsize, Ordering, SpinLock};
use crate::sys;
use core::ptr::{self, NonNull};

// ---------------------------------------------------------------------------
// Live-block records of a tracking handle.

/// An open-addressing hash table (linear probing) of live blocks, address
/// to size, in a mapping of its own: recording a block never allocates
/// through an allocator. A slot is `[addr, size]`; `addr` 0 is empty, 1 a
/// deleted entry (no block lives at address 0 or 1).
pub(super) struct LiveTable {
    pub(super) slots: *mut [usize; 2],
    /// Slots (a power of two, or 0 before the first record).
    pub(super) cap: usize,
    /// Live entries.
    pub(super) len: usize,
    /// Deleted entries still taking a slot.
    pub(super) tombs: usize,
}

// SAFETY: the table's mapping is reached only under `LIVE`'s lock.
unsafe impl Send for LiveTable {}

pub(super) static LIVE: SpinLock<LiveTable> =
    SpinLock::new(LiveTable { slots: ptr::null_mut(), cap: 0, len: 0, tombs: 0 });
/// Blocks not recorded because the table could not grow.
pub(super) static UNTRACKED: AtomicUsize = AtomicUsize::new(0);

pub(super) const EMPTY_SLOT: usize = 0;
pub(super) const TOMB: usize = 1;

impl LiveTable {
    pub(super) fn entries(&self) -> &[[usize; 2]] {
        if self.cap == 0 {
            return &[];
        }
        // SAFETY: `slots` is a live mapping of `cap` slots (zero-filled
        // when mapped, so every slot is initialised), owned by the table.
        unsafe { core::slice::from_raw_parts(self.slots, self.cap) }
    }

    pub(super) fn entries_mut(&mut self) -> &mut [[usize; 2]] {
        if self.cap == 0 {
            return &mut [];
        }
        // SAFETY: as in `entries`; `&mut self` is the only access.
        unsafe { core::slice::from_raw_parts_mut(self.slots, self.cap) }
    }

    pub(super) fn home(&self, addr: usize) -> usize {
        // Fibonacci hashing of the address without its low (alignment) bits.
        ((addr >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - self.cap.trailing_zeros()))
            & (self.cap - 1)
    }

    /// Records `addr` with `size` (replacing an entry for `addr`); `false`
    /// if the table was full and could not grow.
    pub(super) fn insert(&mut self, addr: usize, size: usize) -> bool {
        if (self.len + self.tombs + 1) * 2 > self.cap && !self.rebuild() {
            return false;
        }
        let mask = self.cap - 1;
        let mut i = self.home(addr);
        let mut tomb = None;
        let slots = self.entries_mut();
        loop {
            match slots[i][0] {
                EMPTY_SLOT => break,
                TOMB => {
                    tomb.get_or_insert(i);
                }
                a if a == addr => {
                    slots[i][1] = size;
                    return true;
                }
                _ => {}
            }
            i = (i + 1) & mask;
        }
        let at = match tomb {
            Some(t) => {
                self.tombs -= 1;
                t
            }
            None => i,
        };
        self.entries_mut()[at] = [addr, size];
        self.len += 1;
        true
    }

    /// The slot holding `addr`, if it is recorded.
    pub(super) fn find(&self, addr: usize) -> Option<usize> {
        if self.cap == 0 || addr <= TOMB {
            return None;
        }
        let mask = self.cap - 1;
        let mut i = self.home(addr);
        let slots = self.entries();
        loop {
            match slots[i][0] {
                EMPTY_SLOT => return None,
                a if a == addr => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Forgets `addr`; whether it was recorded.
    pub(super) fn remove(&mut self, addr: usize) -> bool {
        let Some(i) = self.find(addr) else { return false };
        self.entries_mut()[i][0] = TOMB;
        self.len -= 1;
        self.tombs += 1;
        true
    }

    /// Moves the entries to a new mapping, twice as large when more than a
    /// quarter is live (tombstones dropped); `false` if it cannot be mapped.
    pub(super) fn rebuild(&mut self) -> bool {
        let cap = if self.cap == 0 {
            4096
        } else if self.len * 4 > self.cap {
            self.cap * 2
        } else {
            self.cap
        };
        let bytes = cap * core::mem::size_of::<[usize; 2]>();
        let Ok(mem) = sys::map(bytes) else { return false };
        let old = core::mem::replace(self, LiveTable { slots: mem.as_ptr().cast(), cap, len: 0, tombs: 0 });
        for &[addr, size] in old.entries() {
            if addr > TOMB {
                self.insert(addr, size);
            }
        }
        if old.cap > 0 {
            let old_bytes = old.cap * core::mem::size_of::<[usize; 2]>();
            // SAFETY: the old table's mapping, no longer referred to.
            let _ = unsafe { sys::release(NonNull::new_unchecked(old.slots.cast()), old_bytes) };
        }
        true
    }
}

/// Records a block handed out by a tracking handle (nothing for null).
#[cold]
#[inline(never)]
pub(super) fn record(p: *mut u8, size: usize) {
    if !p.is_null() && !LIVE.with(|t| t.insert(p.addr(), size)) {
        // Relaxed: a statistic.
        UNTRACKED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Forgets a block a tracking handle is freeing.
#[cold]
#[inline(never)]
pub(super) fn forget(p: *mut u8) {
    LIVE.with(|t| t.remove(p.addr()));
}

/// Blocks not recorded because the table could not grow.
pub(super) fn untracked() -> usize {
    // Relaxed: a statistic.
    UNTRACKED.load(Ordering::Relaxed)
}

/// The recorded blocks, in no particular order (the returned `Vec`'s own
/// buffer left out).
pub(super) fn live_blocks() -> Vec<Leak> {
    let n = LIVE.with(|t| t.len);
    // Allocated before the lock is taken (allocating records the block,
    // which takes the lock); blocks made meanwhile by other threads may
    // not fit and are left out.
    let mut out: Vec<Leak> = Vec::with_capacity(n + 64);
    let own = out.as_ptr().addr();
    LIVE.with(|t| {
        for &[addr, size] in t.entries() {
            if addr > TOMB && addr != own && out.len() < out.capacity() {
                out.push(Leak { addr, size });
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_table_grows_forgets_and_reuses_tombstones() {
        let mut t = LiveTable { slots: ptr::null_mut(), cap: 0, len: 0, tombs: 0 };
        let n = if cfg!(miri) { 3000 } else { 20_000 };
        for i in 0..n {
            assert!(t.insert(0x1000 + i * 16, i));
        }
        assert_eq!(t.len, n);
        assert!(t.cap >= 2 * n);
        for i in (0..n).step_by(2) {
            assert!(t.remove(0x1000 + i * 16));
            assert!(!t.remove(0x1000 + i * 16), "removed twice");
        }
        assert!(t.insert(0x1000 + 16, 99), "replacing an entry");
        assert_eq!(t.len, n / 2);
        let mut live: Vec<[usize; 2]> = t.entries().iter().copied().filter(|e| e[0] > TOMB).collect();
        live.sort();
        assert_eq!(live.len(), n / 2);
        assert_eq!(live[0], [0x1000 + 16, 99]);
        assert!(live.iter().skip(1).all(|&[a, s]| (a - 0x1000) / 16 == s && s % 2 == 1));
        let bytes = t.cap * core::mem::size_of::<[usize; 2]>();
        // SAFETY: the table's own mapping, given back once.
        let _ = unsafe { sys::release(NonNull::new_unchecked(t.slots.cast()), bytes) };
    }
}
