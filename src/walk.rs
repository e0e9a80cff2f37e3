//! The walks over an arena's chunks, written once for [`Arena`](crate::Arena)
//! and [`SharedArena`](crate::SharedArena).
//!
//! Both kinds of arena hold their blocks in chunks of the chunk layer
//! (`chunk`), each used from the start of its data up to some end: the
//! cursor for the chunk being bumped, a recorded end for the others. They
//! differ in how they keep their chunks (one list of used chunks and one of
//! spare ones; two lanes of linked `SharedChunk`s) but not in what a walk
//! does with them. An arena names its chunks through [`Chunks`], and the
//! checks (`validate`), the leak list (`leaks`), the memory map
//! (`memory_map`), `contains` and the checks when blocks are given up
//! (`sweep`) are written here against it.
//!
//! Blocks inside a lease block (a `SharedArena` lease's allocations) are
//! walked too, each lease's blocks before the lease block itself; an
//! [`Arena`](crate::Arena) has no lease blocks, so for it the walk is a
//! plain one.

use crate::chunk::{ChunkHeader, HEADER_SIZE};
use crate::debug::{self, Block, Corruption, Leak};
use crate::report::{ChunkState, ChunkUsage, MemoryMap};
use core::ptr::NonNull;

/// One chunk an arena holds blocks in.
#[derive(Clone, Copy)]
pub(crate) struct Used {
    /// The chunk's region (its header).
    pub(crate) chunk: NonNull<ChunkHeader>,
    /// Where the arena's blocks start (with the chunk's provenance).
    pub(crate) start: NonNull<u8>,
    /// The end of the used part: the cursor, or where it stopped.
    pub(crate) end: usize,
    /// The end of the data area.
    pub(crate) limit: usize,
    /// Whether the arena bumps from this chunk now.
    pub(crate) current: bool,
}

/// The chunks an arena has.
///
/// # Safety
/// Every chunk the implementation names is live, and owned by the arena,
/// for as long as the value it is called on is borrowed; `start..end` of a
/// [`Used`] chunk is its used data, and when [`CANARIES`](Self::CANARIES)
/// is set that data was laid out by the canary paths ([`debug::write_block`]
/// and the in-place operations) since it was last handed out.
pub(crate) unsafe trait Chunks {
    /// Whether the blocks carry headers and canaries (the policy's
    /// `CANARIES`), so that they can be walked.
    const CANARIES: bool;

    /// Calls `f` on each chunk that holds blocks.
    fn used(&self, f: impl FnMut(Used));

    /// Calls `f` on each chunk kept for later that holds none.
    fn spare(&self, f: impl FnMut(NonNull<ChunkHeader>));
}

/// Checks chunk `chunk`'s header, then walks its blocks from `from` to
/// `to` (the blocks inside lease blocks too), calling `f` on each.
///
/// # Safety
/// `from..to` is used data of the live chunk `chunk`, laid out by the
/// canary paths, that no other thread writes while the walk runs.
pub(crate) unsafe fn check(
    chunk: NonNull<ChunkHeader>,
    from: NonNull<u8>,
    to: usize,
    f: &mut impl FnMut(Block) -> Result<(), Corruption>,
) -> Result<(), Corruption> {
    let base = chunk.addr().get();
    if !ChunkHeader::intact(chunk) {
        return Err(Corruption::ChunkHeader { chunk: base });
    }
    let origin = from.addr().get();
    // SAFETY: the caller's contract; a lease block lies inside `from..to`
    // and holds blocks laid out by the same paths.
    unsafe {
        debug::walk(base, from, to, |b| {
            if b.flags & debug::LEASE != 0 {
                // In bounds: the lease block starts inside `from..to`.
                let inside = from.add(b.addr - origin);
                debug::walk(base, inside, b.addr + b.size, &mut *f)?;
            }
            f(b)
        })
    }
}

/// Checks every spare chunk's header, then every used chunk's header and
/// blocks; `Err` names the first problem. `Ok` without canaries (there is
/// nothing to check).
///
/// # Safety
/// No other thread writes the blocks of `a`'s chunks while this runs.
pub(crate) unsafe fn validate<A: Chunks>(a: &A) -> Result<(), Corruption> {
    let mut r = Ok(());
    if !A::CANARIES {
        return r;
    }
    a.spare(|c| {
        if r.is_ok() && !ChunkHeader::intact(c) {
            r = Err(Corruption::ChunkHeader { chunk: c.addr().get() });
        }
    });
    a.used(|u| {
        if r.is_ok() {
            // SAFETY: `A: Chunks` (canaries are on) and the caller.
            r = unsafe { check(u.chunk, u.start, u.end, &mut |_| Ok(())) };
        }
    });
    r
}

/// The tracked blocks still live in `a`'s chunks, in walk order; a walk
/// stops at the first corrupted block. Empty without canaries.
///
/// # Safety
/// As for [`validate`].
pub(crate) unsafe fn leaks<A: Chunks>(a: &A) -> Vec<Leak> {
    let mut out = Vec::new();
    if A::CANARIES {
        a.used(|u| {
            let mut each = |b: Block| {
                if b.is_leak() {
                    out.push(Leak { addr: b.addr, size: b.size });
                }
                Ok(())
            };
            // SAFETY: `A: Chunks` (canaries are on) and the caller. A
            // corrupted chunk ends its walk early (`validate` names it).
            let _ = unsafe { check(u.chunk, u.start, u.end, &mut each) };
        });
    }
    out
}

/// Checks the blocks `from..to` of chunk `chunk` before they are given up,
/// and aborts with a report naming `when` if one is corrupted; with
/// `leaks` (at drop under `TRACK_LEAKS`) reports each tracked block still
/// live as a leak of arena `arena`.
///
/// # Safety
/// As for [`check`].
#[cold]
#[inline(never)]
pub(crate) unsafe fn sweep(
    chunk: NonNull<ChunkHeader>,
    from: NonNull<u8>,
    to: usize,
    leaks: bool,
    arena: usize,
    when: &str,
) {
    let mut each = |b: Block| {
        if leaks && b.is_leak() {
            debug::report_leak(arena, Leak { addr: b.addr, size: b.size });
        }
        Ok(())
    };
    // SAFETY: the caller's contract.
    debug::or_abort(unsafe { check(chunk, from, to, &mut each) }, when);
}

/// A picture of `a`'s chunks for [`report::svg`](crate::report::svg), titled
/// `title`: per chunk its live bytes (all used bytes without canaries),
/// padding, free space and guard pages.
///
/// # Safety
/// As for [`validate`].
pub(crate) unsafe fn memory_map<A: Chunks>(a: &A, title: String) -> MemoryMap {
    let guard = |c| if ChunkHeader::guarded(c) { 2 * crate::sys::page_size() } else { 0 };
    let mut chunks = Vec::new();
    a.used(|u| {
        let used = u.end - u.start.addr().get();
        let mut live = used;
        if A::CANARIES {
            live = 0;
            let mut each = |b: Block| {
                if b.is_live() {
                    live += b.size;
                }
                Ok(())
            };
            // SAFETY: `A: Chunks` (canaries are on) and the caller. A
            // corrupted chunk counts the live bytes walked before it.
            let _ = unsafe { check(u.chunk, u.start, u.end, &mut each) };
        }
        chunks.push(ChunkUsage {
            addr: u.chunk.addr().get(),
            state: if u.current { ChunkState::Current } else { ChunkState::Full },
            header: u.start.addr().get() - u.chunk.addr().get(),
            live,
            padding: used - live,
            free: u.limit - u.end,
            guard: guard(u.chunk),
        });
    });
    a.spare(|c| {
        chunks.push(ChunkUsage {
            addr: c.addr().get(),
            state: ChunkState::Spare,
            header: HEADER_SIZE,
            live: 0,
            padding: 0,
            free: ChunkHeader::capacity(c),
            guard: guard(c),
        });
    });
    MemoryMap { title, chunks, note: None }
}

/// Whether `addr` lies in the data area of one of `a`'s chunks.
pub(crate) fn contains(a: &impl Chunks, addr: usize) -> bool {
    let mut inside = false;
    a.used(|u| inside |= u.start.addr().get() <= addr && addr < u.limit);
    a.spare(|c| inside |= ChunkHeader::data_start(c).addr().get() <= addr && addr < ChunkHeader::data_end(c));
    inside
}

/// The short name of policy `P` for a memory map's title (`Fast`, `Debug`).
pub(crate) fn policy_name<P>() -> &'static str {
    core::any::type_name::<P>().rsplit("::").next().unwrap_or("?")
}
