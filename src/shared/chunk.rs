//! The header of a shared chunk and its lock-free bump.

use crate::align;
use crate::chunk::ChunkHeader;
use crate::debug;
use crate::policy::Policy;
use crate::sync::{AtomicUsize, Ordering};
use core::cell::Cell;
use core::ptr::NonNull;

/// The header at the start of a shared chunk's data area.
///
/// Invariants: `start <= cursor`, and every block handed out lies in
/// `start..end`; the cursor may pass `end` (a small `fetch_add` that did not
/// fit leaves it there, and the chunk counts as full); `start`, `end` and
/// `chunk` never change while the chunk is in an arena; `start` is 64-byte
/// aligned, so the cursor stays a multiple of `MIN_ALIGN`.
#[repr(C, align(64))]
pub(crate) struct SharedChunk {
    /// One past the last data byte.
    pub(super) end: usize,
    /// First data byte (for rewinding; blocks take their provenance from
    /// it).
    pub(super) start: NonNull<u8>,
    /// The backing chunk; `None` for the empty sentinel.
    pub(super) chunk: Option<NonNull<ChunkHeader>>,
    /// The next older chunk of the same lane (written under the lock or
    /// with `&mut` only).
    pub(super) prev: Cell<*mut SharedChunk>,
    /// Address of the next free byte, on a cache line of its own: threads
    /// contend for it, while the fields above are only read.
    pub(super) cursor: CursorLine,
}

/// The cursor, alone on its cache line.
#[repr(C, align(64))]
pub(super) struct CursorLine(pub(super) AtomicUsize);

impl core::ops::Deref for CursorLine {
    type Target = AtomicUsize;
    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

/// Bytes the shared header takes at the start of a chunk's data area.
pub(super) const SHARED_HEADER: usize = core::mem::size_of::<SharedChunk>();

/// Requests up to this size with an alignment up to `MIN_ALIGN` take the
/// single-`fetch_add` path; a miss wastes at most this much of a chunk's
/// tail per racing thread.
pub(super) const FETCH_ADD_MAX: usize = 256;

impl SharedChunk {
    /// Claims `size` bytes at `align`: one `fetch_add` for small requests
    /// at most `MIN_ALIGN`-aligned, else a compare-exchange loop. `None` if
    /// the chunk has no room.
    #[inline(always)]
    pub(super) fn bump<P: Policy>(&self, size: usize, align: usize, flags: u64) -> Option<NonNull<u8>> {
        if P::CANARIES {
            return self.bump_checked::<P>(size, align, flags);
        }
        let round = align::round_up(size, P::MIN_ALIGN);
        if align <= P::MIN_ALIGN && round <= FETCH_ADD_MAX {
            // Acquire: the bytes may have been given back by another
            // thread's rollback (a Release exchange); see the module docs.
            // The cursor is a multiple of MIN_ALIGN: no padding needed.
            let at = self.cursor.fetch_add(round, Ordering::Acquire);
            if at + round <= self.end {
                return Some(self.block_at(at));
            }
            // Did not fit: the cursor now lies past the end (by at most
            // FETCH_ADD_MAX per racing thread) and the chunk is full.
            return None;
        }
        // Relaxed: only the first guess; the exchange below decides.
        let mut cur = self.cursor.load(Ordering::Relaxed);
        loop {
            // Checked: the sentinel's cursor sits half-way up the address
            // range, where a huge request could overflow.
            let end = align::round_up_checked(cur, align).and_then(|s| s.checked_add(round))?;
            if end > self.end {
                return None;
            }
            let start = end - round;
            // Acquire on success, as for the `fetch_add` above. Relaxed on
            // failure: another thread moved the cursor; retry from its new
            // value (nothing is read through it).
            match self.cursor.compare_exchange_weak(cur, end, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(self.block_at(start)),
                Err(now) => cur = now,
            }
        }
    }

    /// [`bump`](Self::bump) under canaries: the claim covers the block's
    /// header and canary too (see [`debug`]), written by the claimant.
    #[inline(always)]
    pub(super) fn bump_checked<P: Policy>(
        &self,
        size: usize,
        align: usize,
        flags: u64,
    ) -> Option<NonNull<u8>> {
        let round = align::round_up(size, P::MIN_ALIGN);
        if align <= P::MIN_ALIGN && round <= FETCH_ADD_MAX {
            // The cursor is 8-aligned and `align <= 8`: the block follows
            // its header with no pad words.
            let span = debug::HEADER + round + debug::TAIL;
            // Acquire: as in `bump`.
            let at = self.cursor.fetch_add(span, Ordering::Acquire);
            if at + span <= self.end {
                let from = self.block_at(at);
                // SAFETY: the claim `at..at + span` is this thread's alone
                // and lies inside the chunk's data.
                unsafe { debug::write_block(from, 0, size, flags) };
                return Some(self.block_at(at + debug::HEADER));
            }
            if at < self.end {
                // The first claim past the end: the chunk's blocks stop
                // here. Nobody else can claim `at..end` (the cursor stays
                // past the end), and both are multiples of 8.
                // SAFETY: 8 bytes inside the data no block uses.
                unsafe { debug::write_end(self.block_at(at)) };
            }
            return None;
        }
        // Relaxed: only the first guess; the exchange decides.
        let mut cur = self.cursor.load(Ordering::Relaxed);
        loop {
            if cur >= self.end {
                return None;
            }
            // No overflow: `cur < end`, a user-space address, and a
            // Layout's size and alignment.
            let (start, next) = debug::place_with_header(cur, size, align);
            if next > self.end {
                return None;
            }
            // Acquire on success, Relaxed on failure: as in `bump`.
            match self.cursor.compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => {
                    // SAFETY: the claim `cur..next` is this thread's.
                    unsafe {
                        debug::write_block(self.block_at(cur), start - debug::HEADER - cur, size, flags)
                    };
                    return Some(self.block_at(start));
                }
                Err(now) => cur = now,
            }
        }
    }

    /// The block at address `at` (inside `start..end`), with the chunk's
    /// provenance.
    #[inline(always)]
    pub(super) fn block_at(&self, at: usize) -> NonNull<u8> {
        // SAFETY: callers pass an address in `start..=end`, inside this
        // chunk's data (or one past it), so it is in bounds and not null.
        unsafe { self.start.add(at - self.start.addr().get()) }
    }

    /// Moves the cursor from `from` to `to` if nobody moved it since.
    #[inline]
    pub(super) fn move_cursor(&self, from: usize, to: usize) -> bool {
        if to > self.end {
            return false;
        }
        // AcqRel on success: Release so that this thread's accesses to the
        // bytes it gives back (moving the cursor down) happen before the
        // next thread's Acquire that claims them; Acquire so that bytes it
        // takes (moving the cursor up) were released by whoever gave them
        // back. Relaxed on failure: another thread allocated after the
        // block (or the cursor is elsewhere); nothing changes.
        self.cursor.compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    pub(super) fn used(&self) -> usize {
        self.cursor.load(Ordering::Relaxed).min(self.end) - self.start.addr().get()
    }
}

// SAFETY: the header's shared state is atomic; `prev` is only written under
// the arena's lock or with `&mut SharedArena`.
unsafe impl Sync for SharedChunk {}
// SAFETY: as above; the pointers it holds name chunks owned by the arena.
unsafe impl Send for SharedChunk {}
