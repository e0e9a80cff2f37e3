//! What the `Safe` and `Debug` policies add: canaries, corruption reports,
//! poisoning (and AddressSanitizer's view of it), leak records and the
//! operation log.
//!
//! # Block layout under canaries
//!
//! With `Policy::CANARIES` every block carries a 16-byte header just below
//! it and at least 8 canary bytes just above it:
//!
//! ```text
//! old cursor                                                     new cursor
//! | pad words ... | meta | size | block (size bytes) | canary bytes ... |
//!                 ^ header      ^ block (aligned)     ^ start + size   ^ round8(start + size) + 8
//! ```
//!
//! - *pad words* (`PAD_WORD`) fill the alignment gap, so a walk from the old
//!   cursor finds the header by skipping them; there are none for blocks
//!   aligned to 16 or less that follow a block ending on a 16-byte line.
//! - *meta* holds a magic number (top 16 bits), flags (tracked by leak
//!   records, freed) and the pad length; *size* is the block's size.
//! - the canary runs from the block's last byte to 8 bytes past its end
//!   rounded to 8: a write of even one byte past the block changes it.
//!
//! A chunk is walked from its data start to its used end, block by block;
//! the walk checks each header and canary and stops at the first one that
//! is wrong ([`Corruption`]). `reset`, `scope` exit and drop walk the memory
//! they release before they poison it; [`Arena::validate`](crate::Arena::validate)
//! walks everything (the walks over every chunk of an arena are in `walk`;
//! this module walks one range). Under `Fast` none of this is compiled: every use sits
//! behind an `if P::CANARIES` (or `POISON`, `TRACK_LEAKS`, `LOG_EVENTS`)
//! on a `const`.

use crate::sync::plain::{AtomicBool, AtomicPtr, Ordering};
use core::fmt;
use core::ptr::NonNull;

/// Bytes of header below every block under canaries.
pub(crate) const HEADER: usize = 16;
/// Bytes of canary at least above every block (and at most 15).
pub(crate) const TAIL: usize = 8;
/// The canary byte.
pub(crate) const CANARY_BYTE: u8 = 0xCA;
const CANARY_WORD: u64 = u64::from_ne_bytes([CANARY_BYTE; 8]);
/// Fills the alignment gap below a header.
const PAD_WORD: u64 = 0xFAFA_FAFA_FAFA_FAFA;
/// Marks where the blocks of a range end before the range does: the tail a
/// `SharedArena` claim overshot, the unused part of a lease's block.
const END_WORD: u64 = 0xE0D0_E0D0_E0D0_E0D0;
const MAGIC: u64 = 0xB10C;
const PAD_BITS: u32 = 40;
const PAD_MASK: u64 = (1 << PAD_BITS) - 1;
/// Header flag: the block came from a `dealloc`-capable path (the
/// `Allocator` impls, `collections::Vec`) and is recorded for leak reports.
pub(crate) const TRACKED: u64 = 1;
/// Header flag: the block was deallocated (a hole the cursor cannot take back).
pub(crate) const FREED: u64 = 2;
/// Header flag: a `SharedArena` lease's block, holding blocks of its own.
pub(crate) const LEASE: u64 = 4;

/// The magic number kept in every chunk header under every policy,
/// xor'ed with the header's address; checked under canaries.
pub(crate) const CHUNK_MAGIC: u64 = 0xC4A2_C0DE_5AFE_A11C;

#[inline(always)]
const fn round8(x: usize) -> usize {
    crate::align::round_up(x, 8)
}

/// Where a block of `size` bytes at `align` (at least 8) goes when the
/// cursor is at `addr`: `(block start, new cursor)`. No overflow for
/// user-space addresses and a `Layout`'s size and alignment.
#[inline(always)]
pub(crate) const fn place_with_header(addr: usize, size: usize, align: usize) -> (usize, usize) {
    let start = crate::align::round_up(addr + HEADER, align);
    (start, round8(start + size) + TAIL)
}

/// Bytes a block of `size` at `align` can take at most, header, pad words
/// and canary included: what a chunk must have room for.
#[inline(always)]
pub(crate) const fn worst_span(size: usize, align: usize) -> usize {
    HEADER + (align - 1) + size + 7 + TAIL
}

/// Writes the pad words, the header and the canary of a block placed by
/// [`place_with_header`] at `start` (with `pad` bytes of pad words below its header,
/// starting at `from`).
///
/// # Safety
/// `from..round8(start + size) + TAIL` is writable memory of the caller's,
/// with `start = from + pad + HEADER`, `from`, `pad` and `start`
/// multiples of 8.
#[inline(always)]
pub(crate) unsafe fn write_block(from: NonNull<u8>, pad: usize, size: usize, flags: u64) {
    // SAFETY: the caller hands us the whole span, so every write below is
    // inside it; `from` is 8-aligned, so are the pad words and the header.
    unsafe {
        unpoison(from, pad + HEADER + round8(size) + TAIL);
        let mut w = from.cast::<u64>();
        for _ in 0..pad / 8 {
            w.write(PAD_WORD);
            w = w.add(1);
        }
        w.write(MAGIC << 48 | flags << PAD_BITS | pad as u64);
        w.add(1).cast::<usize>().write(size);
        write_canary(from.add(pad + HEADER), size);
    }
}

/// Writes the canary above a block of `size` bytes at `start`.
///
/// # Safety
/// `start..round8(start + size) + TAIL` is writable; `start` is 8-aligned.
#[inline(always)]
unsafe fn write_canary(start: NonNull<u8>, size: usize) {
    // Two stores cover the canary: an unaligned one from the block's end
    // and an aligned one at its end rounded to 8 (they overlap when the
    // size is not a multiple of 8).
    // SAFETY: both words lie in the span the caller vouches for.
    unsafe {
        start.add(size).cast::<u64>().write_unaligned(CANARY_WORD);
        start.add(round8(size)).cast::<u64>().write(CANARY_WORD);
    }
}

/// Moves the end of the block at `start` from `old` to `new` bytes: a new
/// size in its header and a new canary. When the block shrinks and stays
/// where it ends (`keep_span`), the bytes between the new canary and the
/// old end become pad words, so a walk still finds the next header.
///
/// # Safety
/// `start` is a live block of this layout with `old` bytes, and
/// `start..round8(start + max(old, new)) + TAIL` is the caller's.
pub(crate) unsafe fn resize_block(start: NonNull<u8>, old: usize, new: usize, keep_span: bool) {
    // SAFETY: the header is the 16 bytes below the block; the canary and
    // the pad words lie inside the old or the new span.
    unsafe {
        start.sub(8).cast::<usize>().write(new);
        unpoison(start, round8(new.max(old)) + TAIL);
        write_canary(start, new);
        if keep_span && round8(new) < round8(old) {
            let mut w = start.add(round8(new) + TAIL).cast::<u64>();
            let end = start.add(round8(old) + TAIL).cast::<u64>();
            while w < end {
                w.write(PAD_WORD);
                w = w.add(1);
            }
        }
    }
}

/// Marks the end of the blocks of a range at `at` (see `END_WORD`).
///
/// # Safety
/// `at..at + 8` is writable memory of the caller's, 8-aligned, that no
/// block uses.
pub(crate) unsafe fn write_end(at: NonNull<u8>) {
    // SAFETY: by the caller's promise.
    unsafe {
        unpoison(at, 8);
        at.cast::<u64>().write(END_WORD);
    }
}

/// Sets `flag` in the header of the block at `start`.
///
/// # Safety
/// `start` is a live block laid out by [`write_block`].
pub(crate) unsafe fn set_flag(start: NonNull<u8>, flag: u64) {
    // SAFETY: the meta word is 16 bytes below the block, 8-aligned.
    unsafe {
        let meta = start.sub(HEADER).cast::<u64>();
        meta.write(meta.read() | flag << PAD_BITS);
    }
}

/// The pad length below the header of the block at `start`.
///
/// # Safety
/// `start` is a live block laid out by [`write_block`].
pub(crate) unsafe fn pad_of(start: NonNull<u8>) -> usize {
    // SAFETY: as in `set_flag`.
    (unsafe { start.sub(HEADER).cast::<u64>().read() } & PAD_MASK) as usize
}

/// A block found by a walk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub(crate) addr: usize,
    pub(crate) size: usize,
    pub(crate) flags: u64,
}

impl Block {
    /// Whether the block is a leak: allocated through a tracked
    /// (`dealloc`-capable) path and not freed.
    pub(crate) fn is_leak(&self) -> bool {
        self.flags & (TRACKED | FREED) == TRACKED
    }

    /// Whether the block's bytes count as live in a memory map: not freed,
    /// and not a lease block (whose bytes are counted through the blocks
    /// inside it).
    pub(crate) fn is_live(&self) -> bool {
        self.flags & (FREED | LEASE) == 0
    }
}

/// Walks the blocks of chunk `chunk` from `from` (a position the cursor
/// once had) up to `to` (or an end mark), checking each header and
/// canary; calls `f` on each block that checks out (and stops at its
/// error). Returns the first problem found.
///
/// # Safety
/// `from..to` is memory of one chunk, readable, laid out by
/// [`write_block`] (and the in-place operations) since it was last handed
/// out.
pub(crate) unsafe fn walk(
    chunk: usize,
    from: NonNull<u8>,
    to: usize,
    mut f: impl FnMut(Block) -> Result<(), Corruption>,
) -> Result<(), Corruption> {
    let base = from.addr().get();
    // Reads the 8 bytes at address `q`, or the byte there.
    // SAFETY: every caller below first checks `q + 8 <= to` (or `q < to`
    // for a byte) and `q >= from`; `from..to` is readable memory of one
    // chunk (this function's contract), and `from` carries its provenance.
    let word = |q: usize| unsafe { from.add(q - base).cast::<u64>().read_unaligned() };
    // SAFETY: as above.
    let byte = |q: usize| unsafe { from.add(q - base).read() };
    let mut p = base;
    while p < to {
        let header = |at| Corruption::Header { at, chunk };
        let mut h = p;
        // The common case first: a header right at `p` (no pad words).
        // `p + 8 <= to`: both are multiples of 8 and `p < to`.
        let mut meta = word(h);
        if meta >> 48 != MAGIC {
            while h + 8 <= to && word(h) == PAD_WORD {
                h += 8;
            }
            if h + 8 <= to && word(h) == END_WORD {
                p = to;
                break;
            }
            if h == to {
                // Pad words left by a block shrunk where it stood end the
                // range.
                p = h;
                break;
            }
            meta = word(h);
        }
        if h + HEADER + TAIL > to {
            return Err(header(h));
        }
        let size = word(h + 8) as usize;
        let pad = (meta & PAD_MASK) as usize;
        // Pad words may also follow a block shrunk where it stood
        // (`resize_block`), so the gap may exceed the header's own pad.
        if meta >> 48 != MAGIC || pad > h - p {
            return Err(header(h));
        }
        let start = h + HEADER;
        let Some(end) = size.checked_add(start).filter(|&e| e <= to - TAIL && round8(e) + TAIL <= to) else {
            return Err(header(h));
        };
        let next = round8(end) + TAIL;
        // The two words `write_canary` wrote cover the canary; only when
        // one differs are its bytes looked at one by one.
        if word(end) != CANARY_WORD || word(round8(end)) != CANARY_WORD {
            let q = (end..next).find(|&q| byte(q) != CANARY_BYTE).unwrap_or(end);
            return Err(Corruption::Overrun { block: start, size, chunk, offset: q - start });
        }
        f(Block { addr: start, size, flags: (meta >> PAD_BITS) & 0xFF })?;
        p = next;
    }
    if p != to {
        return Err(Corruption::Header { at: to, chunk });
    }
    Ok(())
}

/// Something an arena's checks found wrong; [`Display`](fmt::Display)
/// says what, where, and how to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// Bytes past the end of a block changed: something wrote past it.
    Overrun {
        /// The block's address.
        block: usize,
        /// Its size as allocated (or last resized).
        size: usize,
        /// The chunk it lies in.
        chunk: usize,
        /// Offset from the block's start of the first changed byte (at
        /// least `size`).
        offset: usize,
    },
    /// A block header (or the pad words below it) does not read back:
    /// overwritten, most likely by a write before the start of the block
    /// above it or past the end of the one below.
    Header {
        /// Where the header should be.
        at: usize,
        /// The chunk.
        chunk: usize,
    },
    /// A chunk's header lost its magic number.
    ChunkHeader {
        /// The chunk.
        chunk: usize,
    },
    /// The arena's own bookkeeping disagrees with itself (a bug in
    /// fiberalloc, or memory corrupted beyond what canaries see).
    Bookkeeping(&'static str),
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Corruption::Overrun { block, size, chunk, offset } => write!(
                f,
                "heap corruption: write past the end of block {block:#x} ({size} bytes, chunk \
                 {chunk:#x}): byte {offset} of the block changed, {} past its end",
                offset - size + 1
            ),
            Corruption::Header { at, chunk } => {
                write!(f, "heap corruption: block header at {at:#x} in chunk {chunk:#x} is overwritten")
            }
            Corruption::ChunkHeader { chunk } => {
                write!(f, "heap corruption: the header of chunk {chunk:#x} is overwritten")
            }
            Corruption::Bookkeeping(what) => write!(f, "arena bookkeeping broken: {what}"),
        }
    }
}

impl std::error::Error for Corruption {}

/// A fixed buffer that `write!` can fill without allocating; what does not
/// fit is cut off.
pub(crate) struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    pub(crate) const fn new() -> Self {
        StackBuf { buf: [0; N], len: 0 }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> fmt::Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(N - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes `fiberalloc: <corruption> (found by <when>); aborting` to stderr
/// with one `write(2)` and no allocation, and aborts.
#[cold]
#[inline(never)]
pub(crate) fn corruption_abort(c: &Corruption, when: &str) -> ! {
    use fmt::Write;
    let mut msg = StackBuf::<512>::new();
    let _ = writeln!(msg, "fiberalloc: {c} (found by {when}); aborting");
    crate::sys::fatal(msg.as_bytes())
}

/// Reports `r`'s corruption and aborts; nothing when `r` is `Ok`.
#[inline]
pub(crate) fn or_abort(r: Result<(), Corruption>, when: &str) {
    if let Err(c) = r {
        corruption_abort(&c, when)
    }
}

// ---------------------------------------------------------------
// Leaks
// ---------------------------------------------------------------

/// A block still live in an arena under `Debug`: allocated through a
/// `dealloc`-capable path (the `Allocator` impls, `collections::Vec`) and
/// not given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leak {
    /// The block's address.
    pub addr: usize,
    /// Its size in bytes.
    pub size: usize,
}

static LEAK_REPORT: AtomicBool = AtomicBool::new(false);

/// Whether dropping an `Arena<Debug>` that still holds tracked blocks
/// writes one line per block to stderr (off by default). The blocks are
/// also given to the log hook as [`Event::Leak`] either way.
pub fn set_leak_report(on: bool) {
    // Relaxed: a switch read on its own; no other memory hangs on it.
    LEAK_REPORT.store(on, Ordering::Relaxed);
}

/// Reports a leak found at arena drop: to the log hook, and to stderr if
/// [`set_leak_report`] is on.
#[cold]
pub(crate) fn report_leak(arena: usize, leak: Leak) {
    log(Event::Leak { arena, addr: leak.addr, size: leak.size });
    if LEAK_REPORT.load(Ordering::Relaxed) {
        use fmt::Write;
        let mut msg = StackBuf::<160>::new();
        let _ = writeln!(
            msg,
            "fiberalloc: leak: {} bytes at {:#x} still live when arena {arena:#x} was dropped",
            leak.size, leak.addr
        );
        crate::sys::write_stderr(msg.as_bytes());
    }
}

// ---------------------------------------------------------------
// The operation log
// ---------------------------------------------------------------

/// What an arena under a policy with `LOG_EVENTS` (`Debug`) tells the log
/// hook. Addresses are plain numbers; `arena` is the arena's address when
/// the event happened (an arena that moves changes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The arena took a chunk: newly mapped, or from the chunk cache.
    ChunkMap {
        /// The arena.
        arena: usize,
        /// The chunk's header address.
        chunk: usize,
        /// Its usable size, header included.
        size: usize,
    },
    /// The arena gave a chunk back: to the chunk cache or the OS.
    ChunkUnmap {
        /// The arena.
        arena: usize,
        /// The chunk's header address.
        chunk: usize,
        /// Its usable size, header included.
        size: usize,
    },
    /// `reset` began.
    Reset {
        /// The arena.
        arena: usize,
    },
    /// `scope` began.
    ScopeEnter {
        /// The arena.
        arena: usize,
    },
    /// `scope` ended (its memory was just released).
    ScopeExit {
        /// The arena.
        arena: usize,
    },
    /// A block was handed out.
    Alloc {
        /// The arena.
        arena: usize,
        /// The block.
        addr: usize,
        /// Its size.
        size: usize,
        /// Its alignment.
        align: usize,
    },
    /// A block was given back through `deallocate`.
    Dealloc {
        /// The arena.
        arena: usize,
        /// The block.
        addr: usize,
        /// Its size.
        size: usize,
    },
    /// A tracked block was still live when its arena was dropped.
    Leak {
        /// The arena.
        arena: usize,
        /// The block.
        addr: usize,
        /// Its size.
        size: usize,
    },
}

static HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Installs (`Some`) or removes (`None`) the process-wide operation log
/// hook. It is called on the thread doing the operation, by arenas whose
/// policy logs (`Debug`); under `Fast` and `Safe` the calls are not
/// compiled. It may allocate, but must not use the arena that calls it.
pub fn set_log_hook(hook: Option<fn(Event)>) {
    let p = hook.map_or(core::ptr::null_mut(), |f| f as *mut ());
    // Release pairs with the Acquire in `log`: a thread that sees the hook
    // also sees whatever the installing thread wrote before installing it.
    HOOK.store(p, Ordering::Release);
}

/// Calls the log hook with `e`, if one is installed.
#[inline]
pub(crate) fn log(e: Event) {
    // Acquire: see `set_log_hook`.
    let p = HOOK.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: the only non-null values stored are `fn(Event)` pointers
        // cast to `*mut ()` in `set_log_hook`; casting back gives the same
        // function pointer.
        let f = unsafe { core::mem::transmute::<*mut (), fn(Event)>(p) };
        f(e);
    }
}

// ---------------------------------------------------------------
// AddressSanitizer
// ---------------------------------------------------------------

#[cfg(fiberalloc_asan)]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Tells AddressSanitizer that `len` bytes at `p` are off limits (only in
/// builds with `--cfg fiberalloc_asan`; a no-op otherwise).
#[inline(always)]
pub(crate) fn asan_poison(p: NonNull<u8>, len: usize) {
    #[cfg(fiberalloc_asan)]
    // SAFETY: the ASan runtime only updates its shadow memory for the range.
    unsafe {
        __asan_poison_memory_region(p.as_ptr(), len)
    };
    let _ = (p, len);
}

/// Tells AddressSanitizer that `len` bytes at `p` may be used again.
#[inline(always)]
pub(crate) fn unpoison(p: NonNull<u8>, len: usize) {
    #[cfg(fiberalloc_asan)]
    // SAFETY: as in `asan_poison`.
    unsafe {
        __asan_unpoison_memory_region(p.as_ptr(), len)
    };
    let _ = (p, len);
}

/// Fills `len` bytes at `p` with `byte` when `fill`, then hides them from
/// use under AddressSanitizer.
///
/// # Safety
/// The bytes are memory of the caller's that nothing uses any more.
#[inline]
pub(crate) unsafe fn poison_freed(p: NonNull<u8>, len: usize, fill: bool, byte: u8) {
    if fill {
        unpoison(p, len);
        // SAFETY: by the caller's promise.
        unsafe { p.as_ptr().write_bytes(byte, len) };
    }
    asan_poison(p, len);
}
