//! Compile-time policies: what an arena checks and how it lays out memory.
//!
//! A [`Policy`] is a set of associated consts read by the arena code; a
//! feature that is off is removed by the compiler (`if P::CANARIES { .. }`
//! with a `false` const is dead code), so [`Fast`] pays nothing for what
//! [`Safe`] and [`Debug`](struct@Debug) do. The trait is sealed: the set of policies is
//! part of the crate's tested surface, and every test runs once per policy.
//!
//! | policy  | min align | guard pages | exact stats        | canaries | poison | leak tracking | log |
//! |---------|-----------|-------------|--------------------|----------|--------|---------------|-----|
//! | `Fast`  | 8         | no          | no                 | no       | no     | no            | no  |
//! | `Safe`  | 8         | each chunk  | yes                | yes      | yes    | no            | no  |
//! | `Debug` | 8         | each chunk  | yes                | yes      | yes    | yes           | yes |
//!
//! - *canaries*: a 16-byte header below and a canary above every block,
//!   checked at `reset`, scope exit, `try_reset` and drop (a broken one
//!   aborts with a report naming the block) and by `validate()`; see
//!   [`debug`](crate::debug).
//! - *poison*: memory released by `reset`, scope exit, `try_reset` and
//!   `deallocate` is filled with [`POISON_BYTE`](Policy::POISON_BYTE).
//! - *leak tracking*: blocks of `dealloc`-capable paths are flagged;
//!   `leaks()` lists the live ones, and drop reports them.
//! - *log*: the hook set by [`set_log_hook`](crate::debug::set_log_hook)
//!   hears of chunks, resets, scopes and every allocation (`Arena` only).

mod sealed {
    pub trait Sealed {}
}

/// A compile-time arena policy. Sealed: use [`Fast`], [`Safe`] or [`Debug`](struct@Debug).
pub trait Policy: sealed::Sealed + Copy + Default + Send + Sync + 'static {
    /// Every block starts and ends on a multiple of this (a power of two);
    /// the cursor is always aligned to it, so requests at or below it need
    /// no padding arithmetic on the fast path.
    const MIN_ALIGN: usize;
    /// A guard page below and above every chunk.
    const GUARD_PAGES: bool;
    /// Keep exact byte statistics on the fast path: add the rounding and
    /// alignment padding of every block. A memory update per allocation
    /// (for a runtime layout, a third of its cost), so `Fast` leaves it off:
    /// its `allocated_bytes` includes the rounding and alignment padding of
    /// fast-path blocks. (Allocations are counted under every policy.)
    const EXACT_STATS: bool;
    /// Size of an arena's first chunk, header included (bytes).
    const MIN_CHUNK_SIZE: usize;
    /// A header below and a canary after every block (and a canary in
    /// every chunk header), checked on reset, drop, scope exit and by
    /// `validate`.
    const CANARIES: bool;
    /// Fill released memory (reset, scope exit, `deallocate`) with
    /// [`POISON_BYTE`](Policy::POISON_BYTE).
    const POISON: bool;
    /// The byte released memory is filled with.
    const POISON_BYTE: u8 = 0xDE;
    /// Flag blocks of `dealloc`-capable paths for `leaks()` and the report
    /// at drop.
    const TRACK_LEAKS: bool;
    /// Call the operation log hook ([`set_log_hook`](crate::debug::set_log_hook)).
    const LOG_EVENTS: bool;
}

/// The default: no checks, no guards, the shortest fast path.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fast;
/// Guard pages around every chunk and canaries after blocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Safe;
/// Everything on: guards, canaries, poisoning, leak tracking, log hook.
#[derive(Clone, Copy, Debug, Default)]
pub struct Debug;

impl sealed::Sealed for Fast {}
impl sealed::Sealed for Safe {}
impl sealed::Sealed for Debug {}

impl Policy for Fast {
    const MIN_ALIGN: usize = 8;
    const EXACT_STATS: bool = false;
    const GUARD_PAGES: bool = false;
    const MIN_CHUNK_SIZE: usize = 16 << 10;
    const CANARIES: bool = false;
    const POISON: bool = false;
    const TRACK_LEAKS: bool = false;
    const LOG_EVENTS: bool = false;
}

impl Policy for Safe {
    const MIN_ALIGN: usize = 8;
    const EXACT_STATS: bool = true;
    const GUARD_PAGES: bool = true;
    const MIN_CHUNK_SIZE: usize = 16 << 10;
    const CANARIES: bool = true;
    const POISON: bool = true;
    const TRACK_LEAKS: bool = false;
    const LOG_EVENTS: bool = false;
}

impl Policy for Debug {
    const MIN_ALIGN: usize = 8;
    const EXACT_STATS: bool = true;
    const GUARD_PAGES: bool = true;
    const MIN_CHUNK_SIZE: usize = 16 << 10;
    const CANARIES: bool = true;
    const POISON: bool = true;
    const TRACK_LEAKS: bool = true;
    const LOG_EVENTS: bool = true;
}
