//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::ops::Range;
use std::process::{Command, Output};

/// Every integration test binary that uses these helpers runs on
/// `GlobalArena`: the harness, proptest and the collections in the tests
/// allocate through it from several test threads at once, so the whole
/// suite exercises the global allocator as well as what it tests. Not
/// under Miri, where it would triple the run (GlobalArena's own test,
/// `tests/global.rs`, runs under Miri on it).
#[cfg_attr(not(miri), global_allocator)]
static GLOBAL: fiberalloc::GlobalArena = fiberalloc::GlobalArena::new();

/// Instantiates generic test functions `fn name<P: Policy>()` once per
/// policy, in modules `fast`, `safe` and `debug`.
#[macro_export]
macro_rules! per_policy {
    ($($name:ident),* $(,)?) => {
        mod fast {
            $( #[test] fn $name() { super::$name::<fiberalloc::policy::Fast>() } )*
        }
        mod safe {
            $( #[test] fn $name() { super::$name::<fiberalloc::policy::Safe>() } )*
        }
        mod debug {
            $( #[test] fn $name() { super::$name::<fiberalloc::policy::Debug>() } )*
        }
    };
}

/// A deterministic byte pattern for block `id` at offset `i`.
pub fn pattern(id: usize, i: usize) -> u8 {
    (id.wrapping_mul(31).wrapping_add(i.wrapping_mul(7)) % 251) as u8
}

/// Fills a block with its pattern. Under Miri the pattern is one byte per
/// block (written with one `write_bytes`), since a byte loop is slow there.
///
/// # Safety
/// `ptr..ptr + len` is writable.
pub unsafe fn fill(ptr: *mut u8, len: usize, id: usize) {
    if cfg!(miri) {
        // SAFETY: in bounds by the caller's promise.
        unsafe { ptr.write_bytes(pattern(id, 0), len) };
        return;
    }
    for i in 0..len {
        // SAFETY: in bounds by the caller's promise.
        unsafe { ptr.add(i).write(pattern(id, i)) };
    }
}

/// Checks a block still holds its pattern.
///
/// # Safety
/// `ptr..ptr + len` is readable.
pub unsafe fn check(ptr: *const u8, len: usize, id: usize) {
    // SAFETY: in bounds by the caller's promise.
    let got = unsafe { core::slice::from_raw_parts(ptr, len) };
    if cfg!(miri) {
        let want = vec![pattern(id, 0); len];
        assert!(got == &want[..], "block {id} changed");
        return;
    }
    for (i, &b) in got.iter().enumerate() {
        assert_eq!(b, pattern(id, i), "block {id} byte {i} changed");
    }
}

/// Asserts that no two non-empty ranges overlap.
pub fn assert_disjoint(mut ranges: Vec<Range<usize>>) {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    for w in ranges.windows(2) {
        assert!(w[0].end <= w[1].start, "blocks overlap: {:#x?} and {:#x?}", w[0], w[1]);
    }
}

/// Test sizes scaled down under Miri, which runs about 1000x slower.
pub fn scale(n: usize) -> usize {
    if cfg!(miri) {
        (n / 100).max(4)
    } else {
        n
    }
}

/// Runs test `test` of this binary again in a child process with the
/// environment variable `var` set to `what` (the child's cue for what to
/// do, usually something that kills it), and returns how it ended.
pub fn run_child(var: &str, test: &str, what: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(var, what)
        .output()
        .unwrap()
}
