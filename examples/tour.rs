//! A short tour of fiberalloc: every part at work, with what it measured.
//!
//! Run with `cargo run --release --example tour`.

use allocator_api2::boxed::Box as ABox;
use allocator_api2::vec::Vec as AVec;
use fiberalloc::policy::{Debug, Fast, Safe};
use fiberalloc::{scoped, Arena, GlobalArena};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Instant;

/// The tour runs on fiberalloc's global allocator: every `Box`, `Vec` and
/// `String` below (and std's own allocations) go through it.
#[global_allocator]
static GLOBAL: GlobalArena = GlobalArena::new();

fn ns_per(n: usize, start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    println!("fiberalloc tour\n");

    // 1. An arena: typed values, strings, slices.
    let mut arena = Arena::new();
    let point = arena.alloc((3.0f64, 4.0f64));
    let name = arena.alloc_str("fiberalloc");
    let primes = arena.alloc_slice_copy(&[2u32, 3, 5, 7, 11]);
    println!("1. Arena: point {:?}, name {:?}, primes {:?}", point, name, primes);

    // 2. Speed of the fast path against the system allocator.
    const N: usize = 1_000_000;
    arena.reset();
    let t = Instant::now();
    for i in 0..N {
        black_box(arena.alloc(i as u64));
    }
    let arena_ns = ns_per(N, t);
    let t = Instant::now();
    let kept: Vec<Box<u64>> = (0..N).map(|i| Box::new(black_box(i as u64))).collect();
    let box_ns = ns_per(N, t);
    drop(kept);
    println!(
        "2. {N} u64 allocations: arena {arena_ns:.2} ns each, Box::new (kept, on GlobalArena) {box_ns:.2} ns each ({:.1}x)",
        box_ns / arena_ns
    );
    println!("   stats after them: {:?}", arena.stats());
    println!("   (allocations are counted under every policy; Safe and Debug also count padding exactly)");

    // 3. allocator-api2 collections living in the arena.
    arena.reset();
    let mut words = AVec::new_in(&arena);
    let mut counts = hashbrown::HashMap::new_in(&arena);
    let text = "the quick brown fox jumps over the lazy dog the end";
    for w in text.split(' ') {
        words.push(w);
        *counts.entry(w).or_insert(0u32) += 1;
    }
    let boxed = ABox::new_in([1u8; 32], &arena);
    println!(
        "3. Vec of {} words, HashMap of {} distinct (\"the\" x{}), Box of {} bytes, all in the arena",
        words.len(),
        counts.len(),
        counts["the"],
        boxed.len()
    );
    drop((words, counts, boxed));
    // fiberalloc's own Vec: push at std's speed, and reserve_exact(1) before
    // every push grows the arena's last block in place (linear, not
    // quadratic as with a downward-bumping arena).
    let mut grown = fiberalloc::collections::Vec::<u8>::new_in(&arena);
    let t = Instant::now();
    for i in 0..N {
        grown.reserve_exact(1);
        grown.push(i as u8);
    }
    println!(
        "   collections::Vec grown one byte at a time to {N}: {:.2} ns per push, {} KiB reserved",
        ns_per(N, t),
        arena.stats().reserved_bytes / 1024
    );
    drop(grown);
    println!("   stats: {:?}", arena.stats());

    // 4. A scope: everything inside is freed at its end, even on panic.
    let before = arena.stats().allocated_bytes;
    let inside = arena.scope(|a| {
        for i in 0..10_000u64 {
            a.alloc([i; 4]);
        }
        a.stats().allocated_bytes
    });
    println!(
        "4. scope: {} bytes allocated inside, {} after it ended (was {before})",
        inside,
        arena.stats().allocated_bytes
    );

    // 5. The thread's own arena, nested scopes.
    let t = Instant::now();
    let mut total = 0u64;
    for i in 0..100_000u64 {
        total += scoped(|a| {
            let x = a.alloc(i);
            *x + scoped(|b| *b.alloc(1u64))
        });
    }
    println!(
        "5. scoped: 100000 nested scope pairs, sum {total}, {:.1} ns per outer scope",
        ns_per(100_000, t)
    );

    // 6. Warm-up: a fresh arena, one allocation, drop. Chunks come from the
    //    thread's chunk cache, so no syscall in the steady state.
    let t = Instant::now();
    for i in 0..N {
        let a: Arena = Arena::new();
        black_box(a.alloc(i));
    }
    println!("6. Arena::new + first allocation + drop: {:.1} ns", ns_per(N, t));

    // 7. Policies: the same work under Fast, Safe (guard pages, canaries,
    //    poison) and Debug (leak records and the log hook too).
    fn work<P: fiberalloc::policy::Policy>() -> (f64, fiberalloc::Stats) {
        let mut a = Arena::<P>::default();
        let t = Instant::now();
        for round in 0..10 {
            for i in 0..100_000u64 {
                black_box(a.alloc(i + round));
            }
            a.reset();
        }
        let ns = ns_per(1_000_000, t);
        for i in 0..1000u64 {
            a.alloc(i);
        }
        (ns, a.stats())
    }
    for (name, (ns, s)) in [("Fast", work::<Fast>()), ("Safe", work::<Safe>()), ("Debug", work::<Debug>())] {
        println!(
            "7. {name:5}: {ns:.2} ns per allocation (reset every 100k); {} chunk(s), {} KiB reserved, fragmentation {:.2}",
            s.chunk_count,
            s.reserved_bytes / 1024,
            s.fragmentation()
        );
    }

    // 8. A shared arena: several threads at once, one atomic operation per
    //    allocation; leases bump without atomics and try_reset rewinds
    //    between frames.
    {
        use fiberalloc::SharedArena;
        let mut arena: SharedArena = SharedArena::new();
        let threads = 2;
        let per = 500_000;
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for i in 0..per {
                        black_box(arena.alloc(i as u64));
                    }
                });
            }
        });
        let direct = ns_per(threads * per, t);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let lease = arena.lease();
                    for i in 0..per {
                        black_box(lease.alloc(i as u64));
                    }
                });
            }
        });
        let leased = ns_per(threads * per, t);
        let reset = arena.try_reset();
        let map = arena.memory_map();
        let live: usize = map.chunks.iter().map(|c| c.live).sum();
        println!(
            "8. SharedArena, {threads} threads: {direct:.2} ns per direct allocation, {leased:.2} ns through leases; try_reset after the leases ended: {reset}; {} chunks, {} KiB, {} KiB used",
            map.chunks.len(),
            map.chunks.iter().map(|c| c.size()).sum::<usize>() / 1024,
            live / 1024
        );
    }

    // 9. Errors are values, not crashes.
    let impossible = core::alloc::Layout::from_size_align(isize::MAX as usize, 1).unwrap();
    println!("9. an isize::MAX request: {:?}", arena.try_alloc_layout(impossible));
    let capped: Arena = Arena::new();
    capped.set_allocation_limit(Some(1 << 20));
    let mut n = 0;
    while capped.try_alloc([0u8; 1024]).is_ok() {
        n += 1;
    }
    println!("   with a 1 MiB limit: {n} KiB-blocks, then Err(AllocError)");

    // 10. The global allocator: bump speed for Box and Vec, and memory that
    //     comes back when blocks are freed, even on another thread.
    let layout = Layout::new::<[u64; 2]>();
    let time_pairs = |alloc: &dyn Fn() -> *mut u8, free: &dyn Fn(*mut u8)| {
        let t = Instant::now();
        for _ in 0..N {
            let p = black_box(alloc());
            free(p);
        }
        ns_per(N, t)
    };
    // SAFETY: each block is allocated with `layout` and freed once with it.
    let global_ns =
        time_pairs(&|| unsafe { GLOBAL.alloc(layout) }, &|p| unsafe { GLOBAL.dealloc(p, layout) });
    // SAFETY: as above, through the system allocator.
    let system_ns =
        time_pairs(&|| unsafe { System.alloc(layout) }, &|p| unsafe { System.dealloc(p, layout) });
    println!("10. GlobalArena: alloc + free of 16 bytes {global_ns:.2} ns, System {system_ns:.2} ns");
    let before = GLOBAL.stats();
    let t = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Box<[u64; 4]>>(4096);
    let consumer = std::thread::spawn(move || rx.into_iter().map(|b| b[0]).sum::<u64>());
    for i in 0..N as u64 {
        tx.send(Box::new([i; 4])).unwrap();
    }
    drop(tx);
    let sum = consumer.join().unwrap();
    let during = GLOBAL.stats();
    println!(
        "    {N} boxes sent to another thread and freed there (sum {sum}) in {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "    live bytes {} -> {}; chunks in use {} -> {}, cached {}, decommitted {}",
        before.live_bytes,
        during.live_bytes,
        before.chunks_in_use,
        during.chunks_in_use,
        during.chunks_cached,
        during.chunks_decommitted
    );
    let mut big: Vec<u64> = Vec::new();
    for i in 0..(8 << 20) {
        big.push(i);
    }
    let grown = GLOBAL.stats().large_bytes;
    drop(big);
    println!(
        "    a Vec pushed to 64 MiB (grown by mremap): {} MiB mapped while alive, {} after drop",
        grown >> 20,
        GLOBAL.stats().large_bytes >> 20
    );
    println!("    GlobalArena::stats():");
    for line in GLOBAL.stats().to_string().lines() {
        println!("      {line}");
    }

    // 11. Fiber stacks: corosensei coroutines on pooled, guarded stacks.
    fiber_stacks();

    // 12. Safe and Debug checks, and a picture of memory.
    checks_and_picture();

    // 13. bumpalo's API: code written for bumpalo runs on `Arena`.
    bumpalo_api();
}

fn bumpalo_api() {
    use fiberalloc::collections::{CollectIn, String as AString, Vec as FVec};
    use fiberalloc::{format, vec, Arena as Bump};
    let mut bump = Bump::new();
    // A 16 MiB value built by `alloc_with` on a thread whose stack is 256
    // KiB: large values are built on a side stack, never on the caller's.
    let sum = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let b = Bump::new();
            let table = b.alloc_with(|| [3u64; 2 << 20]);
            table.iter().sum::<u64>()
        })
        .unwrap()
        .join()
        .unwrap();
    let mut tokens: FVec<&str> = vec![in &bump; "let", "x", "=", "1"];
    tokens.retain(|t| *t != "=");
    let upper: AString = "shout".chars().map(|c| c.to_ascii_uppercase()).collect_in(&bump);
    let evens = bump.alloc_iter((0..20u32).filter(|x| x % 4 == 0));
    let t = Instant::now();
    const LINES: usize = 100_000;
    for i in 0..LINES {
        black_box(format!(in &bump, "line {i}: {}", "ok").into_bump_str());
    }
    let fmt_ns = ns_per(LINES, t);
    println!(
        "13. bumpalo API: a 16 MiB alloc_with on a 256 KiB stack (sum {sum}), tokens {:?}, {upper}, evens {evens:?}",
        tokens.as_slice()
    );
    println!("    format!(in &arena, ..): {fmt_ns:.1} ns per line");
    drop((tokens, upper));
    let rc = std::rc::Rc::new(());
    bump.alloc_dropped(std::rc::Rc::clone(&rc));
    let cp = bump.raw_checkpoint();
    bump.alloc_str("a parse that failed");
    // SAFETY: nothing allocated after the checkpoint is used again.
    unsafe { bump.reset_to_raw_checkpoint(cp) };
    let held = std::rc::Rc::strong_count(&rc);
    let counted = bump.stats().allocation_count;
    bump.reset();
    println!(
        "    alloc_dropped: {held} owners before reset, {} after (the arena ran the destructor); {counted} allocations counted before it",
        std::rc::Rc::strong_count(&rc),
    );
}

static EVENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_event(_: fiberalloc::debug::Event) {
    EVENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

fn checks_and_picture() {
    use fiberalloc::debug;
    debug::set_log_hook(Some(count_event));
    let arena = Arena::with_policy(Debug);
    let mut index = hashbrown::HashMap::new_in(&arena);
    let mut lines = AVec::new_in(&arena);
    for i in 0..2000u32 {
        index.insert(i, i * i);
        lines.push(arena.alloc_str(&format!("line {i}")).len());
    }
    let scratch = ABox::new_in([0u8; 13], &arena);
    drop(ABox::new_in([0u8; 500], &arena));
    println!(
        "12. Arena<Debug>: {} events seen by the log hook; validate() = {:?}; {} blocks live from dealloc-capable paths ({} bytes)",
        EVENTS.load(std::sync::atomic::Ordering::Relaxed),
        arena.validate(),
        arena.leaks().len(),
        arena.leaks().iter().map(|l| l.size).sum::<usize>()
    );
    // A bug: one byte written past a 13-byte block. The canary sees it.
    let p = ABox::into_raw(scratch) as *mut u8;
    // SAFETY: one byte past the block is its canary, still arena memory;
    // it is put back below.
    unsafe { p.add(13).write(0) };
    if let Err(e) = arena.validate() {
        println!("    after a write one byte past a block: {e}");
    }
    // SAFETY: the canary byte back, and the block given back to the arena.
    unsafe {
        p.add(13).write(0xCA);
        drop(ABox::from_raw_in(p as *mut [u8; 13], &arena));
    }
    debug::set_log_hook(None);
    let map = arena.memory_map();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/fiberalloc-map.svg");
    match std::fs::write(path, fiberalloc::report::svg(&map)) {
        Ok(()) => println!("    memory map of its {} chunks written to {path}", map.chunks.len()),
        Err(e) => println!("    could not write {path}: {e}"),
    }
    let global = GLOBAL.memory_map();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/fiberalloc-global-map.svg");
    if std::fs::write(path, fiberalloc::report::svg(&global)).is_ok() {
        println!(
            "    GlobalArena's map as this thread sees it ({} chunks) written to {path}",
            global.chunks.len()
        );
    }
    drop((index, lines));
}

/// About 1 KiB of stack per level.
#[inline(never)]
fn recurse(n: u32) -> u64 {
    let frame = black_box([u64::from(n); 128]);
    if n == 0 {
        return frame[0];
    }
    recurse(n - 1) + black_box(frame[127])
}

fn fiber_stacks() {
    use corosensei::stack::DefaultStack;
    use corosensei::{Coroutine, CoroutineResult, Yielder};
    use fiberalloc::stack::{FiberStack, OnReturn, StackPool, StackPoolOptions};

    fiberalloc::stack::install_overflow_reporter().expect("overflow reporter");
    // A pool that releases returned pages, so each stack's high-water mark
    // is that of its last fiber alone.
    let releasing = StackPool::with_options(
        64 << 10,
        StackPoolOptions { on_return: OnReturn::Release, ..Default::default() },
    );
    print!("11. Fiber stacks: high-water marks of coroutines recursing");
    for depth in [2u32, 8, 24, 48] {
        let mut co =
            Coroutine::with_stack(releasing.get().unwrap(), move |_: &Yielder<(), ()>, ()| recurse(depth));
        let CoroutineResult::Return(v) = co.resume(()) else { unreachable!() };
        black_box(v);
        let mark = co.into_stack().high_water_mark();
        print!(" {depth} levels: {} KiB;", mark >> 10);
    }
    println!();

    const FIBERS: usize = 100_000;
    let body = |y: &Yielder<u64, u64>, x: u64| y.suspend(x + 1) * 2;
    let pool = StackPool::new(64 << 10);
    let t = Instant::now();
    for i in 0..FIBERS as u64 {
        let mut co = Coroutine::with_stack(pool.get().unwrap(), body);
        let _ = black_box(co.resume(i));
        let _ = black_box(co.resume(i));
    }
    let pooled_ns = ns_per(FIBERS, t);
    let t = Instant::now();
    for i in 0..(FIBERS / 10) as u64 {
        let mut co = Coroutine::with_stack(DefaultStack::new(64 << 10).unwrap(), body);
        let _ = black_box(co.resume(i));
        let _ = black_box(co.resume(i));
    }
    let fresh_ns = ns_per(FIBERS / 10, t);
    let stats = pool.stats();
    println!(
        "    {FIBERS} coroutines (create, suspend, finish) on pooled stacks: {pooled_ns:.0} ns each; \
         on a fresh corosensei DefaultStack: {fresh_ns:.0} ns ({:.0}x)",
        fresh_ns / pooled_ns
    );
    println!(
        "    pool: {} hits, {} misses, {} cached, {} KiB resident, {} KiB mapped",
        stats.hits,
        stats.misses,
        stats.cached,
        stats.resident_bytes >> 10,
        stats.mapped_bytes >> 10
    );
    let markers = fiberalloc::__internals::guard_markers();
    let own: Vec<FiberStack> = (0..1000).map(|_| FiberStack::new(64 << 10).unwrap()).collect();
    println!(
        "    1000 FiberStacks, each with its guard page ({}); {} guard pages known to the overflow reporter",
        if markers == Some(true) { "MADV_GUARD_INSTALL markers" } else { "mprotect" },
        fiberalloc::stack::registered_guards()
    );
    drop(own);
    let arena: Arena = Arena::new();
    let stack = arena.alloc_stack(32 << 10).unwrap();
    let r = corosensei::on_stack(stack, || recurse(16));
    println!("    a 32 KiB stack carved from an Arena ran a 16-level recursion (result {r})");
}
