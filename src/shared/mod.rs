//! `SharedArena`: a bump arena many threads allocate from at once.
//!
//! # How it works
//!
//! Each chunk of a shared arena starts its data area with a [`SharedChunk`](chunk::SharedChunk)
//! header: an atomic cursor and the (immutable) end of the chunk. The arena
//! holds an atomic pointer to the current chunk. An allocation loads that
//! pointer, then runs a compare-exchange loop on the chunk's cursor: compute
//! the aligned block from the cursor value, and move the cursor past it if
//! no other thread moved it first. That is the whole fast path: one atomic
//! read-modify-write, no lock.
//!
//! When the block does not fit, the allocating thread takes the arena's
//! refill lock, looks again (another thread may have installed a chunk
//! while it waited), and only if there is still no room maps or takes a
//! cached chunk, places its own block in it *before* publishing it with a
//! `Release` store of the current pointer. So exactly one thread installs
//! each chunk, the waiting threads allocate from it, and no chunk is mapped
//! in vain. A thread that still holds the old chunk pointer may go on using
//! what is left in it: old chunks stay mapped until `reset`/drop, which take
//! `&mut self`.
//!
//! Blocks too large for the next chunk get a chunk of their own, linked
//! under the lock. Giving back, growing or shrinking the block that ends at
//! the current cursor is a compare-exchange of the cursor from the block's
//! end; it fails harmlessly if another thread allocated in between.
//!
//! # Leases
//!
//! A [`Lease`] is a per-thread handle whose allocations are bounded by the
//! lease's lifetime. It claims blocks of [`LEASE_BLOCK`] bytes from a
//! second lane of chunks with the same one-CAS path, then bumps inside its
//! block with plain `Cell`s, so allocating through a lease costs about what
//! [`Arena`](crate::Arena) costs and does not contend. The arena counts live
//! leases; [`SharedArena::try_reset`] moves that count from 0 to a
//! "resetting" mark (so no lease can start meanwhile), rewinds the lease
//! lane, and puts the count back to 0. Direct allocations (through
//! `&SharedArena`) live in the other lane, which `try_reset` never touches:
//! their references are bounded by the arena borrow, not by a lease.
//!
//! # Orderings
//!
//! - `current` is stored with `Release` after the new chunk's header (and
//!   the installer's own block placement) is written, and loaded with
//!   `Acquire`, so a thread that sees the chunk sees its header.
//! - Disjointness needs only the atomicity of the cursor's
//!   read-modify-writes (successful ones form one chain in its modification
//!   order). But bytes can change hands without a reset: giving back the
//!   last block moves the cursor down, and the next allocation takes the
//!   same bytes, possibly on another thread. So the give-back exchange is
//!   `Release` and every claim (`fetch_add`, exchange) is `Acquire`: the
//!   previous owner's accesses happen before the new owner's (each
//!   read-modify-write continues the release sequence, so claims in between
//!   do not break the chain). Miri's data-race detector caught the earlier
//!   all-`Relaxed` version; on x86 both compile to the same instructions.
//! - Other reuse comes after `reset(&mut self)` (exclusive) or `try_reset`,
//!   which synchronises with every lease through the lease count.
//! - A lease's drop decrements the count with `Release`; `try_reset`'s
//!   exchange from 0 is `Acquire`, so every access a lease made to its
//!   blocks happens before the reset rewinds them. The reset stores 0 with
//!   `Release`, and `lease()` increments with `Acquire`, so a new lease sees
//!   the rewound cursors.
//!
//! The files: `chunk.rs` (the shared chunk header and its one-CAS bump),
//! `arena.rs` ([`SharedArena`]: lanes, refill, reset; `arena/check.rs` its
//! walks, sweep and checks) and
//! `lease.rs` ([`Lease`]).

mod arena;
mod chunk;
mod lease;

pub use arena::SharedArena;
pub use lease::Lease;

/// Bytes a lease claims from the shared lane at a time.
pub const LEASE_BLOCK: usize = 4096;
