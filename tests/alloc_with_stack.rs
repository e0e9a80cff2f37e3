//! `alloc_with` builds its value in the arena, not on the stack: a 40 MB
//! value made on a thread with a 1 MiB stack must not overflow it. Each
//! case runs in a child process (this binary again, with `CHILD` naming
//! the case), so an overflow kills the child, not the test.
//!
//! Values of 16 KiB or more are built on a side stack (see `typed.rs`), so
//! the promise holds in debug and release builds alike. The control case
//! (the same value made on the stack) must die of the overflow, which shows
//! the stack is small enough for the other cases to mean something.

use fiberalloc::{Arena, SharedArena};
use std::hint::black_box;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

const CHILD: &str = "FIBERALLOC_ALLOC_WITH_CHILD";
/// 40 MB of `u64`s.
const WORDS: usize = 5_000_000;
/// The stack of the thread that builds the value.
const STACK: usize = 1 << 20;

struct Big {
    words: [u64; WORDS],
    tag: u32,
}

/// Builds a `Big` as its caller's result (in place when inlined).
#[inline(always)]
fn big(tag: u32) -> Big {
    Big { words: [u64::from(tag); WORDS], tag }
}

/// Checks a `Big` built with `tag` without reading all 40 MB.
fn check(b: &Big, tag: u32) {
    let t = u64::from(tag);
    assert!(b.tag == tag && b.words[0] == t && b.words[WORDS / 2] == t && b.words[WORDS - 1] == t);
}

/// The control: a `Big` in a local, kept there by `black_box`. A function
/// of its own, so that its 40 MB frame is not the frame of the other cases
/// (a frame is sized for all its paths at entry).
#[inline(never)]
fn on_the_stack() {
    let b = black_box(big(8));
    check(&b, 8);
}

/// The child: runs case `what` on a thread with a 1 MiB stack, then says so.
fn child(what: &str) {
    let what = what.to_owned();
    let t = std::thread::Builder::new().stack_size(STACK).spawn(move || match what.as_str() {
        "alloc_with" => {
            let arena = Arena::new();
            check(arena.alloc_with(|| big(3)), 3);
        }
        "try_alloc_with" => {
            let arena = Arena::new();
            check(arena.try_alloc_with(|| big(4)).unwrap(), 4);
        }
        "alloc_try_with" => {
            let arena = Arena::new();
            let r: Result<&mut Big, ()> = arena.alloc_try_with(|| Ok(big(5)));
            check(r.unwrap(), 5);
        }
        "shared" => {
            let arena = SharedArena::new();
            check(arena.alloc_with(|| big(6)), 6);
            let lease = arena.lease();
            check(lease.alloc_with(|| big(7)), 7);
        }
        "on_the_stack" => on_the_stack(),
        other => panic!("unknown case {other}"),
    });
    t.unwrap().join().unwrap();
    println!("built in place");
}

fn run(what: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1", "--include-ignored"])
        .env(CHILD, what)
        .output()
        .unwrap()
}

/// The child's entry point (does nothing in the parent).
#[test]
fn child_entry() {
    if let Ok(what) = std::env::var(CHILD) {
        child(&what);
    }
}

fn assert_built(what: &str) {
    let out = run(what);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("built in place"),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alloc_with_builds_40_mb_in_place() {
    assert_built("alloc_with");
}

#[test]
fn try_alloc_with_builds_40_mb_in_place() {
    assert_built("try_alloc_with");
}

#[test]
fn alloc_try_with_builds_40_mb_in_place() {
    assert_built("alloc_try_with");
}

#[test]
fn shared_arena_and_lease_build_40_mb_in_place() {
    assert_built("shared");
}

#[test]
fn the_same_value_on_the_stack_overflows_it() {
    let out = run("on_the_stack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // std's guard-page handler reports the overflow and aborts.
    assert_eq!(out.status.signal(), Some(6), "expected SIGABRT, got {:?}\n{stderr}", out.status);
    assert!(stderr.contains("has overflowed its stack"), "{stderr}");
}
