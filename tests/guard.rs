//! Guard pages: under `Safe` and `Debug` every chunk has a guard page right
//! after its data, so a write one byte past the last usable byte faults.
//! The write happens in a child process (this test binary run again with
//! an environment variable), and the parent checks that it died of SIGSEGV.
#![cfg(all(unix, not(miri)))]

use fiberalloc::{policy::Policy, Arena};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

/// This binary runs on `GlobalArena` too (see `tests/common/mod.rs`).
#[global_allocator]
static GLOBAL: fiberalloc::GlobalArena = fiberalloc::GlobalArena::new();

const CHILD: &str = "FIBERALLOC_GUARD_CHILD";

/// The first address past the data of the chunk holding a fresh block.
fn data_end<P: Policy>(arena: &Arena<P>) -> *mut u8 {
    let p = arena.alloc(0u64) as *mut u64 as *mut u8;
    let mut end = p;
    // Step a page at a time, then a byte at a time, while still inside.
    while arena.contains(end.wrapping_add(4096)) {
        end = end.wrapping_add(4096);
    }
    while arena.contains(end.wrapping_add(1)) {
        end = end.wrapping_add(1);
    }
    end.wrapping_add(1)
}

fn child<P: Policy>() {
    let arena = Arena::<P>::default();
    let end = data_end(&arena);
    // SAFETY: deliberately not: this write lands on the guard page and must
    // kill the process before anything else happens.
    unsafe { end.write_volatile(1) };
    // Only reached when there is no guard page.
    std::process::exit(0);
}

fn run_child(test: &str) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap()
        .status
}

#[test]
fn safe_write_past_the_chunk_faults() {
    if std::env::var_os(CHILD).is_some() {
        return child::<fiberalloc::policy::Safe>();
    }
    let status = run_child("safe_write_past_the_chunk_faults");
    assert_eq!(status.signal(), Some(libc_sigsegv()), "expected SIGSEGV, got {status:?}");
}

#[test]
fn debug_write_past_the_chunk_faults() {
    if std::env::var_os(CHILD).is_some() {
        return child::<fiberalloc::policy::Debug>();
    }
    let status = run_child("debug_write_past_the_chunk_faults");
    assert_eq!(status.signal(), Some(libc_sigsegv()), "expected SIGSEGV, got {status:?}");
}

#[test]
fn the_last_usable_byte_is_writable() {
    // The probe must stop exactly at the data's end: the byte before the
    // guard is ours to write.
    let arena = Arena::with_policy(fiberalloc::policy::Safe);
    let end = data_end(&arena);
    // SAFETY: `end - 1` is the chunk's last data byte (it lies in the arena
    // and no block has been handed out over it; we only poke it).
    unsafe { end.wrapping_sub(1).write_volatile(7) };
    assert!(arena.contains(end.wrapping_sub(1)));
    assert!(!arena.contains(end));
}

/// SIGSEGV on Linux and the BSDs.
fn libc_sigsegv() -> i32 {
    11
}
