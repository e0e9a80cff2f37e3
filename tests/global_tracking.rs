//! `GlobalArena::tracking()` as the global allocator: every live block is
//! recorded, `leaks()` lists exactly the blocks not freed (small and large,
//! grown in place, moved, freed on another thread). Its own `main` (the
//! allocator is process-wide; a test harness would add its own blocks).
use fiberalloc::debug::Leak;
use fiberalloc::GlobalArena;

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
}
