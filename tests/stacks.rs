//! Fiber stacks: coroutines on `FiberStack`, `PooledStack` and
//! `ArenaStack`; pools handing stacks out again, still guarded; VMAs per
//! stack; high-water marks; overflow in child processes (plain SIGSEGV, or
//! SIGABRT with a message when the reporter is on); bad sizes.
//!
//! Death tests run this binary again with `FIBERALLOC_STACK_CHILD` naming
//! what the child should do, and check how it died.
#![cfg(all(unix, not(miri)))]

mod common;

use corosensei::{Coroutine, CoroutineResult, ScopedCoroutine, Yielder};
use fiberalloc::pool::{BlockPool, BlockPoolOptions};
use fiberalloc::stack::{FiberStack, OnReturn, StackPool, StackPoolOptions};
use fiberalloc::Arena;
use std::hint::black_box;
use std::io;
use std::os::unix::process::ExitStatusExt;

const CHILD: &str = "FIBERALLOC_STACK_CHILD";
const SIGSEGV: i32 = 11;
const SIGABRT: i32 = 6;

/// Recursion with a frame of about 1 KiB per level; returns a value that
/// depends on every frame, so nothing is optimised away.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let buf = black_box([n; 128]);
    if n == 0 {
        return buf[0];
    }
    recurse(n - 1).wrapping_add(black_box(buf[127]))
}

/// Runs a coroutine on `stack` that yields once and returns; checks both.
fn run_coroutine<S: corosensei::stack::Stack + 'static>(stack: S) -> S {
    let mut co = Coroutine::with_stack(stack, |y, start: u64| {
        let back = y.suspend(recurse(start));
        back * 2
    });
    assert!(matches!(co.resume(20), CoroutineResult::Yield(v) if v == (0..=20).sum::<u64>()));
    assert!(matches!(co.resume(21), CoroutineResult::Return(42)));
    co.into_stack()
}

#[test]
fn coroutines_run_on_every_kind_of_stack() {
    let own = run_coroutine(FiberStack::new(128 << 10).unwrap());
    assert!(own.high_water_mark() >= 20 << 10, "20 levels of 1 KiB: {}", own.high_water_mark());

    let pool = StackPool::new(128 << 10);
    let pooled = run_coroutine(pool.get().unwrap());
    assert!(pooled.high_water_mark() >= 20 << 10);
    drop(pooled);

    let arena: Arena = Arena::new();
    run_scoped(arena.alloc_stack(128 << 10).unwrap());
}

/// As [`run_coroutine`], for a stack that borrows an arena.
fn run_scoped<S: corosensei::stack::Stack>(stack: S) {
    let co = ScopedCoroutine::with_stack(stack, |y: &Yielder<u64, u64>, start: u64| {
        let back = y.suspend(recurse(start));
        back * 2
    });
    co.scope(|mut co| {
        assert!(matches!(co.as_mut().resume(20), CoroutineResult::Yield(v) if v == (0..=20).sum::<u64>()));
        assert!(matches!(co.as_mut().resume(21), CoroutineResult::Return(42)));
    });
}

#[test]
fn a_returned_stack_is_handed_out_again() {
    let pool = StackPool::new(128 << 10);
    let a = pool.get().unwrap();
    let (base, limit) = (a.base(), a.limit());
    drop(a);
    let b = pool.get().unwrap();
    assert_eq!((b.base(), b.limit()), (base, limit));
    let stats = pool.stats();
    assert_eq!((stats.hits, stats.misses), (1, 1), "{stats:?}");
    // Still usable by a coroutine, and (see the death test below) guarded.
    drop(run_coroutine(b));
}

#[test]
fn pool_statistics_follow_the_stacks() {
    let pool = StackPool::new(64 << 10);
    let size = pool.stack_size();
    let held: Vec<_> = (0..20).map(|_| pool.get().unwrap()).collect();
    let s = pool.stats();
    assert_eq!((s.hits, s.misses, s.cached, s.resident_bytes), (0, 20, 0, 0), "{s:?}");
    assert!(s.mapped_bytes >= 20 * (size + 4096), "{s:?}");
    drop(held);
    // 16 in the hot cache, 4 in this thread's cache for the pool.
    let s = pool.stats();
    assert_eq!((s.cached, s.resident_bytes), (20, 20 * size), "{s:?}");
    let again: Vec<_> = (0..5).map(|_| pool.get().unwrap()).collect();
    let s = pool.stats();
    assert_eq!((s.hits, s.misses, s.cached, s.resident_bytes), (5, 20, 15, 15 * size), "{s:?}");
    // Seen from another thread too.
    let seen = std::thread::scope(|sc| sc.spawn(|| pool.stats()).join().unwrap());
    assert_eq!(seen, s);
    drop(again);
    assert_eq!(pool.stats().cached, 20);
}

#[test]
fn pooled_stacks_outlive_the_pool_handle_and_cross_threads() {
    let pool = StackPool::new(128 << 10);
    let stacks: Vec<_> = (0..8).map(|_| pool.get().unwrap()).collect();
    let clone = pool.clone();
    drop(pool);
    let handle = std::thread::spawn(move || {
        let n = stacks.len();
        for s in stacks {
            drop(run_coroutine(s));
        }
        n
    });
    assert_eq!(handle.join().unwrap(), 8);
    // The other thread's cache gave its stacks back when it exited.
    let stats = clone.stats();
    assert_eq!(stats.cached, 8, "{stats:?}");
    let again: Vec<_> = (0..8).map(|_| clone.get().unwrap()).collect();
    assert_eq!(clone.stats().misses, 8, "all eight came back: {:?}", clone.stats());
    drop(clone);
    // Dropped after the last handle: back to the (closed) pool all the same.
    drop(again);
}

#[test]
fn return_policies() {
    let release = StackPool::with_options(
        128 << 10,
        StackPoolOptions { on_return: OnReturn::Release, ..Default::default() },
    );
    let s = run_coroutine(release.get().unwrap());
    assert!(s.high_water_mark() >= 20 << 10);
    drop(s);
    let s = release.get().unwrap();
    assert_eq!(s.high_water_mark(), 0, "released pages are not resident");
    drop(s);

    let zero = StackPool::with_options(
        128 << 10,
        StackPoolOptions { on_return: OnReturn::Zero, ..Default::default() },
    );
    let s = run_coroutine(zero.get().unwrap());
    drop(s);
    let s = zero.get().unwrap();
    // SAFETY: the stack's usable bytes are ours to read.
    let bytes =
        unsafe { std::slice::from_raw_parts(s.base().as_ptr().sub(s.usable_size()), s.usable_size()) };
    assert!(bytes.iter().all(|&b| b == 0));

    let capped = StackPool::with_options(
        128 << 10,
        StackPoolOptions { max_cached_bytes: 256 << 10, ..Default::default() },
    );
    let many: Vec<_> = (0..40).map(|_| run_coroutine(capped.get().unwrap())).collect();
    drop(many);
    let stats = capped.stats();
    assert_eq!(stats.cached, 40);
    // 16 in this thread's cache, the shared list keeps at most 128 KiB
    // resident (+ one stack of slack), the rest is released.
    assert!(stats.resident_bytes <= (16 + 3) * (128 << 10), "{stats:?}");
}

fn maps_lines() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

#[test]
fn ten_thousand_guarded_stacks_without_a_vma_each() {
    // Whether the kernel takes guard markers: ask with one stack first.
    let probe = FiberStack::new(16 << 10).unwrap();
    let markers = fiberalloc::__internals::guard_markers();
    drop(probe);
    let before = maps_lines();
    let own: Vec<FiberStack> = (0..10_000).map(|_| FiberStack::new(16 << 10).unwrap()).collect();
    let with_own = maps_lines();
    let pool = StackPool::new(16 << 10);
    let pooled: Vec<_> = (0..10_000).map(|_| pool.get().unwrap()).collect();
    let with_pooled = maps_lines();
    assert!(own.iter().chain(pooled.iter().map(|p| &**p)).all(|s| s.usable_size() == 16 << 10));
    if markers == Some(true) {
        assert!(with_own - before < 100, "10,000 FiberStacks added {} VMAs", with_own - before);
        assert!(with_pooled - with_own < 100, "10,000 pooled stacks added {} VMAs", with_pooled - with_own);
    } else {
        // mprotect guards split the mapping: at least one VMA per stack.
        assert!(with_own - before >= 10_000, "{} VMAs for 10,000 mprotect-guarded stacks", with_own - before);
    }
    println!("markers {markers:?}: VMAs {before} -> {with_own} (own) -> {with_pooled} (pooled)");
}

#[test]
fn high_water_mark_follows_recursion_depth() {
    let mut marks = Vec::new();
    for depth in [8u64, 32, 96] {
        let stack = FiberStack::new(1 << 20).unwrap();
        assert_eq!(stack.high_water_mark(), 0);
        let mut co = Coroutine::with_stack(stack, |_: &Yielder<u64, ()>, d: u64| recurse(d));
        assert!(matches!(co.resume(depth), CoroutineResult::Return(_)));
        let hwm = co.into_stack().high_water_mark();
        assert!(hwm as u64 >= depth * 1024, "depth {depth}: {hwm}");
        // Unoptimised builds use larger frames than the 1 KiB buffer.
        assert!((hwm as u64) < depth * 4096 + (64 << 10), "depth {depth}: {hwm}");
        marks.push(hwm);
    }
    assert!(marks[0] < marks[1] && marks[1] < marks[2], "{marks:?}");
}

#[test]
fn bad_sizes() {
    let page = 4096.max(FiberStack::new(0).unwrap().guard_size());
    assert_eq!(FiberStack::new(0).unwrap().usable_size(), page);
    assert_eq!(FiberStack::new(1).unwrap().usable_size(), page);
    for size in [usize::MAX, isize::MAX as usize, usize::MAX / 2 + 1] {
        assert_eq!(FiberStack::new(size).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{size}");
        assert_eq!(StackPool::new(size).get().unwrap_err().kind(), io::ErrorKind::InvalidInput, "{size}");
        let arena: Arena = Arena::new();
        assert!(arena.alloc_stack(size).is_err());
        assert!(BlockPool::new(size).is_err());
    }
    // Too big for this machine's address space: the OS says so.
    let e = FiberStack::new(1 << 62).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(12), "ENOMEM expected: {e}");
    assert_eq!(BlockPool::new(0).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let pool = StackPool::new(0);
    assert_eq!(pool.get().unwrap().usable_size(), page);
    // An arena at its limit reports OutOfMemory and stays usable.
    let arena: Arena = Arena::new();
    arena.set_allocation_limit(Some(16 << 10));
    assert_eq!(arena.alloc_stack(64 << 10).unwrap_err().kind(), io::ErrorKind::OutOfMemory);
    assert_eq!(*arena.alloc(5u32), 5);
}

#[test]
fn block_pool_reuses_and_preallocates() {
    let pool = BlockPool::with_options(
        10_000,
        BlockPoolOptions { guard_pages: true, prealloc: 32, blocks_per_chunk: 16 },
    )
    .unwrap();
    // The vector first: under GlobalArena its first block may map a chunk.
    let mut blocks = Vec::with_capacity(32);
    let maps = fiberalloc::__internals::mappings_made();
    blocks.extend((0..32).map(|_| pool.get().unwrap()));
    assert_eq!(fiberalloc::__internals::mappings_made(), maps, "preallocated blocks map nothing");
    let page = pool.guard_size();
    let mut sorted: Vec<usize> = blocks.iter().map(|b| b.as_ptr() as usize).collect();
    sorted.sort_unstable();
    for w in sorted.windows(2) {
        assert!(w[1] - w[0] >= 10_000 + page, "blocks {:#x} and {:#x} overlap their guard", w[0], w[1]);
    }
    for &b in &blocks {
        // SAFETY: each block has 10,000 writable bytes.
        unsafe { b.as_ptr().write_bytes(1, 10_000) };
    }
    // SAFETY: from this pool, given back once, not used after.
    unsafe { pool.put(blocks[5]) };
    assert_eq!(pool.get().unwrap(), blocks[5]);
    let more = pool.get().unwrap();
    assert!(!blocks.contains(&more));
    assert_eq!(pool.free_blocks(), 0);
}

#[test]
fn arena_stack_guards_come_off_on_reset_and_scope_end() {
    let mut arena: Arena<fiberalloc::policy::Safe> = Arena::with_policy(fiberalloc::policy::Safe);
    let before = fiberalloc::stack::registered_guards();
    for _ in 0..3 {
        run_scoped(arena.alloc_stack(128 << 10).unwrap());
    }
    assert!(fiberalloc::stack::registered_guards() >= before + 3);
    // The stacks' blocks keep their headers and canaries (the coroutines
    // ran on them; the walk reads around the guard pages, never on them).
    assert_eq!(arena.validate(), Ok(()));
    arena.reset();
    // Every byte the arena hands out now is writable, the old guard pages
    // included (a guard left behind would kill this test with SIGSEGV).
    for _ in 0..64 {
        let block = arena.alloc_aligned(64 << 10, 4096);
        // SAFETY: a fresh block of 64 KiB.
        unsafe { block.as_ptr().write_bytes(9, 64 << 10) };
    }
    arena.reset();
    arena.scope(|a| {
        run_scoped(a.alloc_stack(128 << 10).unwrap());
    });
    for _ in 0..64 {
        let block = arena.alloc_aligned(64 << 10, 4096);
        // SAFETY: as above.
        unsafe { block.as_ptr().write_bytes(9, 64 << 10) };
    }
}

// ---------------------------------------------------------------------------
// Death tests.

fn overflow_on<S: corosensei::stack::Stack>(stack: S) {
    let r = corosensei::on_stack(stack, || recurse(u64::MAX));
    println!("ran on past the guard page: {r}");
}

fn child(what: &str) {
    match what {
        "own" => overflow_on(FiberStack::new(32 << 10).unwrap()),
        "reused" => {
            let pool = StackPool::new(32 << 10);
            let base = pool.get().unwrap().base();
            let s = pool.get().unwrap();
            assert_eq!(s.base(), base);
            overflow_on(s);
        }
        "arena" => {
            let arena: Arena = Arena::new();
            overflow_on(arena.alloc_stack(32 << 10).unwrap());
        }
        "block" => {
            let pool =
                BlockPool::with_options(4096, BlockPoolOptions { guard_pages: true, ..Default::default() })
                    .unwrap();
            let _a = pool.get().unwrap();
            let b = pool.get().unwrap();
            // SAFETY: deliberately not: the byte below a guarded block is its
            // guard page; the write must kill the process.
            unsafe { b.as_ptr().sub(1).write_volatile(1) };
            println!("ran on past the guard page");
        }
        "reported" => {
            fiberalloc::stack::install_overflow_reporter().unwrap();
            overflow_on(StackPool::new(32 << 10).get().unwrap());
        }
        "elsewhere" => {
            // The reporter is on, but this fault is not on a fiber stack's
            // guard: it goes on to the default action (SIGSEGV).
            fiberalloc::stack::install_overflow_reporter().unwrap();
            let p = std::ptr::without_provenance_mut::<u8>(16);
            // SAFETY: deliberately not: a write to an unmapped page.
            unsafe { p.write_volatile(1) };
            println!("ran on past the fault");
        }
        other => panic!("unknown child {other}"),
    }
}

fn run_child(test: &str, what: &str) -> std::process::Output {
    common::run_child(CHILD, test, what)
}

fn death(test: &str, what: &str, signal: i32) -> String {
    if let Some(w) = std::env::var_os(CHILD) {
        child(w.to_str().unwrap());
        return String::new();
    }
    let out = run_child(test, what);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.signal(), Some(signal), "{what}: {:?}\nstderr: {stderr}", out.status);
    assert!(!stdout.contains("ran on"), "{what}: the child ran on: {stdout}");
    stderr
}

#[test]
fn overflow_of_an_own_stack_dies_on_the_guard() {
    death("overflow_of_an_own_stack_dies_on_the_guard", "own", SIGSEGV);
}

#[test]
fn overflow_of_a_reused_pooled_stack_dies_on_the_guard() {
    death("overflow_of_a_reused_pooled_stack_dies_on_the_guard", "reused", SIGSEGV);
}

#[test]
fn overflow_of_an_arena_stack_dies_on_the_guard() {
    death("overflow_of_an_arena_stack_dies_on_the_guard", "arena", SIGSEGV);
}

#[test]
fn a_write_below_a_guarded_block_dies() {
    death("a_write_below_a_guarded_block_dies", "block", SIGSEGV);
}

#[test]
fn the_reporter_names_the_overflowing_stack() {
    let stderr = death("the_reporter_names_the_overflowing_stack", "reported", SIGABRT);
    if std::env::var_os(CHILD).is_none() {
        assert!(stderr.contains("fiber stack overflow"), "stderr: {stderr}");
        assert!(stderr.contains("(32 KiB usable)"), "stderr: {stderr}");
    }
}

#[test]
fn the_reporter_passes_other_faults_on() {
    let stderr = death("the_reporter_passes_other_faults_on", "elsewhere", SIGSEGV);
    assert!(!stderr.contains("fiber stack overflow"), "stderr: {stderr}");
}
