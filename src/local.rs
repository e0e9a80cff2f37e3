//! `scoped`: the calling thread's own arena.
//!
//! Each thread has a small stack of arenas, one per nesting level, in a
//! `const`-initialised thread-local. `scoped(f)` hands `f` the arena of the
//! next free level and, when `f` returns or panics, resets that arena
//! (keeping its largest chunk for the next scope at that level). A scope
//! nested inside another gets the next level's arena, so the inner scope's
//! reset never touches memory the outer scope can still reach: an outer
//! collection that grows while an inner scope runs grows in the outer arena.
//!
//! Nesting deeper than [`LEVELS`], or a call made while the thread-local is
//! being torn down (from another thread-local's destructor), gets a fresh
//! arena of its own, dropped when the scope ends; its chunks still come
//! from, and return to, the chunk cache.
//!
//! At thread exit the arenas are dropped and their chunks go back to the
//! process-wide chunk cache.

use crate::arena::Arena;
use core::cell::Cell;

/// Nesting levels served by the thread's own arenas.
pub const LEVELS: usize = 8;

struct Levels {
    arenas: [Arena; LEVELS],
    depth: Cell<usize>,
}

std::thread_local! {
    static LOCAL: Levels = const {
        Levels { arenas: [const { Arena::new() }; LEVELS], depth: Cell::new(0) }
    };
}

/// Runs `f` with this thread's arena and frees everything `f` allocated from
/// it when `f` returns (or panics). Scopes nest; each level's memory is
/// freed when that level ends, innermost first.
///
/// ```
/// let total = fiberalloc::scoped(|arena| {
///     let xs = arena.alloc_slice_copy(&[1u64, 2, 3]);
///     let inner = fiberalloc::scoped(|a| *a.alloc(10u64));
///     xs.iter().sum::<u64>() + inner
/// });
/// assert_eq!(total, 16);
/// ```
///
/// Allocations cannot leave the closure:
///
/// ```compile_fail
/// let leaked: &mut u64 = fiberalloc::scoped(|arena| arena.alloc(1u64));
/// ```
pub fn scoped<R>(f: impl FnOnce(&Arena) -> R) -> R {
    let mut f = Some(f);
    let mut out = None;
    let _ = LOCAL.try_with(|levels| {
        let f = f.take().expect("taken once");
        let depth = levels.depth.get();
        let Some(arena) = levels.arenas.get(depth) else {
            out = Some(f(&Arena::new()));
            return;
        };
        struct Exit<'a> {
            levels: &'a Levels,
            depth: usize,
        }
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                // The closure's lifetime-generic argument kept every block
                // inside it, and deeper levels have already ended (scopes are
                // strictly nested calls).
                // SAFETY: the closure given this level's arena has ended, so
                // nothing uses the arena (see above).
                unsafe { self.levels.arenas[self.depth].reset_shared() };
                self.levels.depth.set(self.depth);
            }
        }
        levels.depth.set(depth + 1);
        let _exit = Exit { levels, depth };
        out = Some(f(arena));
    });
    match (out, f) {
        (Some(r), _) => r,
        // The thread-local is gone (thread teardown): a temporary arena.
        (None, Some(f)) => f(&Arena::new()),
        (None, None) => unreachable!("scoped: closure taken but no result"),
    }
}
