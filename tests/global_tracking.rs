//! `GlobalArena::tracking()` as the global allocator: every live block is
//! recorded, `leaks()` lists exactly the blocks not freed (small and large,
//! grown in place, moved, freed on another thread). Its own `main` (the
//! allocator is process-wide; a test harness would add its own blocks).
//!
//! Then `fork` while other threads keep the allocator's locks busy: the
//! child must be able to allocate. Tracking takes a lock on every
//! allocation and free, so without the fork handlers a child is soon born
//! with a lock held by a thread it does not have, and hangs.
use fiberalloc::debug::Leak;
use fiberalloc::GlobalArena;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: GlobalArena = GlobalArena::tracking();

fn live() -> Vec<Leak> {
    GLOBAL.leaks()
}

fn has(leaks: &[Leak], addr: usize, size: usize) -> bool {
    leaks.iter().any(|l| l.addr == addr && l.size == size)
}

fn main() {
    assert!(GLOBAL.is_tracking());
    // Blocks made by the runtime before main are the baseline (the list's
    // own buffer is never in it, and it is dropped at once).
    let before = live().len();
    let small = Box::new([7u8; 24]);
    let large = vec![1u8; 1 << 20]; // a mapping of its own
    let mut grown: Vec<u64> = Vec::with_capacity(4);
    grown.extend(0..1000); // moves and grows in place
    let freed = String::from("gone soon");
    let (a, b, c) = (&*small as *const [u8; 24] as usize, large.as_ptr() as usize, grown.as_ptr() as usize);
    drop(freed);
    let now = live();
    assert!(has(&now, a, 24), "the box is recorded");
    assert!(has(&now, b, 1 << 20), "the large block is recorded");
    assert!(has(&now, c, grown.capacity() * 8), "the grown vector is recorded at its last address and size");
    assert_eq!(now.len(), before + 3, "exactly three new live blocks: {before} -> {}", now.len());
    let now = {
        let n = now.len();
        drop(now);
        n
    };
    // A large block grown by mremap keeps one record, at its new place.
    let mut large = large;
    large.resize(8 << 20, 2);
    let moved = live();
    assert!(has(&moved, large.as_ptr() as usize, large.capacity()));
    assert!(!has(&moved, b, 1 << 20) || large.as_ptr() as usize == b);
    assert_eq!(moved.len(), now);
    drop(moved);
    // Freed on another thread: the record goes too.
    let boxes: Vec<Box<u64>> = (0..1000).map(Box::new).collect();
    let addrs: Vec<usize> = boxes.iter().map(|b| &**b as *const u64 as usize).collect();
    let recorded = live();
    assert!(addrs.iter().all(|&p| has(&recorded, p, 8)));
    drop(recorded);
    std::thread::spawn(move || drop(boxes)).join().unwrap();
    let after = live();
    assert!(addrs.iter().all(|&p| !has(&after, p, 8)), "blocks freed on another thread are forgotten");
    drop((small, large, grown, addrs));
    let end = live();
    assert!(!has(&end, a, 24) && !has(&end, c, 8000));
    assert_eq!(GLOBAL.untracked_blocks(), 0);
    println!(
        "ok  GlobalArena::tracking(): {} live blocks at start, {} with the test's, {} at the end",
        before,
        now,
        end.len()
    );
    fork_while_busy();
}

/// Forks again and again while two threads allocate and free without a
/// pause (the tracking table's lock on every call, chunks mapped and
/// recycled, short-lived threads registering and leaving). Each child
/// allocates past a chunk, reads the stats (every lock of the allocator
/// but the teardown one) and exits; a child that has not exited within
/// 30 seconds (120 under valgrind) is killed and fails the test.
fn fork_while_busy() {
    let quick = std::env::var_os("FIBERALLOC_QUICK").is_some();
    // Under valgrind (`FIBERALLOC_QUICK`) one thread runs at a time, and a
    // child takes seconds.
    let (forks, limit) = if quick { (4, 120) } else { (40, 30) };
    static STOP: AtomicBool = AtomicBool::new(false);
    let busy: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !STOP.load(Ordering::Relaxed) {
                    // 3 MiB of small blocks: more than a chunk, so chunks
                    // are retired and recycled as they go.
                    let v: Vec<Box<[u8; 48]>> = (0..64 * 1024).map(|i| Box::new([i as u8; 48])).collect();
                    if t == 0 {
                        std::thread::spawn(move || drop(v)).join().unwrap();
                    } else {
                        drop(v);
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for i in 0..forks {
        // SAFETY: the child only allocates, frees and reads the stats
        // through this crate, then leaves with `_exit` (no destructors, no
        // buffered output, no other locks of the parent's threads taken).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let v: Vec<Box<[u8; 48]>> = (0..64 * 1024).map(|i| Box::new([i as u8; 48])).collect();
            let ok =
                v.iter().enumerate().all(|(i, b)| b[47] == i as u8) && GLOBAL.stats().live_bytes > 3 << 20;
            drop(v);
            // SAFETY: ends the child at once, as a forked child of a
            // threaded process should.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let started = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: `pid` is our child; `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
            if r == pid {
                break;
            }
            if started.elapsed() > Duration::from_secs(limit) {
                // SAFETY: kills and reaps our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                STOP.store(true, Ordering::Relaxed);
                panic!("fork {i}: the child still had not exited after {limit} s (an allocator lock held across fork?)");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        slowest = slowest.max(started.elapsed());
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "fork {i}: child ended with status {status:#x}"
        );
    }
    STOP.store(true, Ordering::Relaxed);
    let rounds: u64 = busy.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(rounds > 0, "the busy threads never ran");
    println!("ok  fork while other threads allocate: {forks} children allocated and exited (slowest {slowest:?}); {rounds} busy rounds");
}
