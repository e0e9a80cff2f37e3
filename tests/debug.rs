//! The `Safe` and `Debug` policies' checks: canaries (and the abort with a
//! report when one is broken), poisoning, leak records, the log hook and
//! the memory map. Death tests run this binary again with
//! `FIBERALLOC_DEBUG_CHILD` naming what the child does, and check how it
//! ended. Built with `--cfg fiberalloc_asan` under AddressSanitizer (see
//! `.ci/run`), it also checks that ASan reports a use after reset.
mod common;
use allocator_api2::boxed::Box as ABox;
use allocator_api2::vec::Vec as AVec;
use fiberalloc::debug::{self, Corruption, Event, Leak};
use fiberalloc::policy::{Debug, Fast, Policy, Safe};
use fiberalloc::report::{self, ChunkState};
use fiberalloc::{Arena, SharedArena};
use std::os::unix::process::ExitStatusExt;
use std::sync::Mutex;

const CHILD: &str = "FIBERALLOC_DEBUG_CHILD";
const SIGABRT: i32 = 6;

fn run_child(test: &str, what: &str) -> std::process::Output {
    common::run_child(CHILD, test, what)
}

/// In the child: does `what` and returns true; in the parent: false.
fn in_child(what: &mut Option<String>) -> bool {
    *what = std::env::var(CHILD).ok();
    what.is_some()
}

/// A child's way to die: a block of 13 bytes written one byte past its end,
/// then the arena given up by `how`. Prints the block's address first.
fn overrun_then<P: Policy>(how: &str) {
    let mut arena = Arena::<P>::default();
    arena.alloc(1u64);
    let block = arena.alloc_slice_copy(&[7u8; 13]);
    let p = block.as_mut_ptr();
    arena.alloc(2u64);
    println!("block at {:#x}", p as usize);
    // SAFETY: deliberately one byte past the block (inside the arena's
    // chunk, so no fault): the bug the canary is there to catch.
    unsafe { p.add(13).write(0) };
    match how {
        "reset" => arena.reset(),
        "drop" => drop(arena),
        _ => unreachable!(),
    }
    println!("ran on");
}

/// The same, for a block made inside a scope, found at scope exit.
fn overrun_in_scope<P: Policy>() {
    let mut arena = Arena::<P>::default();
    arena.scope(|a| {
        let block = a.alloc_slice_copy(&[7u8; 13]);
        println!("block at {:#x}", block.as_ptr() as usize);
        // SAFETY: as above.
        unsafe { block.as_mut_ptr().add(13).write(0) };
    });
    println!("ran on");
}

fn assert_aborted_naming_the_block(test: &str, what: &str, found_by: &str) {
    let out = run_child(test, what);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(SIGABRT), "{what}: {:?}\nstderr: {stderr}", out.status);
    assert!(!stdout.contains("ran on"), "{what}: the child ran on");
    let addr = stdout
        .lines()
        .find_map(|l| l.split("block at ").nth(1))
        .unwrap_or_else(|| panic!("{what}: no address printed: {stdout}"));
    let expected = format!("write past the end of block {addr} (13 bytes, chunk 0x");
    assert!(stderr.contains(&expected), "{what}: stderr does not name the block:\n{stderr}");
    assert!(stderr.contains("byte 13 of the block changed, 1 past its end"), "{stderr}");
    assert!(stderr.contains(found_by), "{what}: {stderr}");
}

#[test]
fn a_write_past_a_block_aborts_at_reset_naming_it() {
    let mut what = None;
    if in_child(&mut what) {
        return overrun_then::<Safe>("reset");
    }
    assert_aborted_naming_the_block(
        "a_write_past_a_block_aborts_at_reset_naming_it",
        "x",
        "the check at reset",
    );
}

#[test]
fn a_write_past_a_block_aborts_at_drop_and_scope_exit() {
    let mut what = None;
    if in_child(&mut what) {
        return match what.as_deref() {
            Some("drop") => overrun_then::<Debug>("drop"),
            _ => overrun_in_scope::<Safe>(),
        };
    }
    let test = "a_write_past_a_block_aborts_at_drop_and_scope_exit";
    assert_aborted_naming_the_block(test, "drop", "the check at arena drop");
    assert_aborted_naming_the_block(test, "scope", "the check at scope exit");
}

/// The shared arena's kinds of blocks: a small direct one (one
/// `fetch_add`), an over-aligned direct one (the compare-exchange loop), one
/// in a lease (bumped without atomics inside a claimed lease block), and
/// one past a quarter lease block (a claim of its own).
fn shared_blocks(arena: &SharedArena<Safe>) -> Vec<(*mut u8, usize)> {
    let small = arena.alloc_slice_copy(&[1u8; 13]).as_mut_ptr();
    let wide = aligned(arena, 100, 64);
    let lease = arena.lease();
    let leased = lease.alloc_slice_copy(&[2u8; 21]).as_mut_ptr();
    let big = lease.alloc_slice_copy(&[3u8; 1500]).as_mut_ptr();
    drop(lease);
    vec![(small, 13), (wide, 100), (leased, 21), (big, 1500)]
}

fn aligned(arena: &SharedArena<Safe>, size: usize, align: usize) -> *mut u8 {
    let l = core::alloc::Layout::from_size_align(size, align).unwrap();
    arena.try_alloc_layout(l).unwrap().as_ptr()
}

#[test]
fn shared_arena_canaries_catch_overruns_on_every_path() {
    let mut arena = SharedArena::with_policy(Safe);
    let blocks = shared_blocks(&arena);
    assert_eq!(arena.validate(), Ok(()));
    for (p, size) in blocks {
        // SAFETY: one byte past the block: its canary, arena memory.
        unsafe { p.add(size).write(0) };
        match arena.validate() {
            Err(Corruption::Overrun { block, size: s, offset, .. }) => {
                assert_eq!((block, s, offset), (p as usize, size, size))
            }
            other => panic!("block of {size}: expected an overrun, got {other:?}"),
        }
        // SAFETY: put the canary byte back.
        unsafe { p.add(size).write(0xCA) };
    }
    assert_eq!(arena.validate(), Ok(()));
    // A zero-sized block (no header) grows like any other.
    {
        use allocator_api2::alloc::Allocator;
        let a = &arena;
        let z = a.allocate(core::alloc::Layout::new::<[u64; 0]>()).unwrap().cast::<u8>();
        let l8 = core::alloc::Layout::new::<u64>();
        // SAFETY: `z` came from this allocator with the zero-sized layout.
        let g = unsafe { a.grow(z, core::alloc::Layout::new::<[u64; 0]>(), l8) }.unwrap();
        // SAFETY: the grown block holds a u64.
        unsafe { g.cast::<u64>().as_ptr().write(5) };
    }
    assert_eq!(arena.validate(), Ok(()));
    // Reset poisons what it frees.
    let p = arena.alloc_slice_copy(&[9u8; 40]).as_ptr();
    arena.reset();
    assert_eq!(read(p, 40), vec![<Safe as Policy>::POISON_BYTE; 40]);
}

#[test]
fn shared_arena_aborts_at_reset_naming_the_block() {
    let mut what = None;
    if in_child(&mut what) {
        let mut arena = SharedArena::with_policy(Safe);
        let lease = arena.lease();
        let b = lease.alloc_slice_copy(&[7u8; 13]);
        println!("block at {:#x}", b.as_ptr() as usize);
        // SAFETY: one byte past the block, as in the other death tests.
        unsafe { b.as_mut_ptr().add(13).write(0) };
        drop(lease);
        arena.reset();
        println!("ran on");
        return;
    }
    assert_aborted_naming_the_block(
        "shared_arena_aborts_at_reset_naming_the_block",
        "shared",
        "the check at reset",
    );
}

#[test]
fn shared_arena_leaks_under_debug() {
    let mut arena = SharedArena::with_policy(Debug);
    let kept;
    {
        let a = &arena;
        let mut v = AVec::new_in(a);
        v.extend(0..50u32);
        let freed = ABox::new_in([0u8; 64], a);
        drop(freed);
        kept = (v.as_ptr() as usize, v.capacity() * 4);
        core::mem::forget(v);
    }
    assert_eq!(arena.leaks(), vec![Leak { addr: kept.0, size: kept.1 }]);
    assert_eq!(arena.validate(), Ok(()));
}

#[test]
fn fast_has_no_canary_to_break() {
    // The same bug under Fast goes unseen: reset returns normally.
    let mut arena = Arena::new();
    let block = arena.alloc_slice_copy(&[7u8; 13]);
    // SAFETY: inside the block's rounding to 8 bytes, still arena memory.
    unsafe { block.as_mut_ptr().add(13).write(0) };
    assert_eq!(arena.validate(), Ok(()));
    arena.reset();
}

#[test]
fn validate_names_the_block_its_size_and_chunk() {
    let arena = Arena::with_policy(Safe);
    let blocks: Vec<*mut u8> =
        (1..=40).map(|n| arena.alloc_slice_copy(&vec![1u8; n * 3]).as_mut_ptr()).collect();
    assert_eq!(arena.validate(), Ok(()));
    let (victim, size) = (blocks[20], 21 * 3);
    // SAFETY: 5 bytes past a 63-byte block: its canary, still arena memory.
    unsafe { victim.add(size + 5).write(0x55) };
    match arena.validate() {
        Err(Corruption::Overrun { block, size: s, chunk, offset }) => {
            assert_eq!((block, s, offset), (victim as usize, size, size + 5));
            let map = arena.memory_map();
            let home = map.chunks.iter().find(|c| c.addr == chunk).expect("chunk is one of the arena's");
            assert!(chunk < block && block < chunk + home.size());
        }
        other => panic!("expected an overrun, got {other:?}"),
    }
    // SAFETY: put the canary byte back.
    unsafe { victim.add(size + 5).write(0xCA) };
    assert_eq!(arena.validate(), Ok(()));
    // A write just below a block lands in its header.
    let below = blocks[30];
    // SAFETY: the 8 bytes below the block (its size word), arena memory.
    let saved = unsafe { below.sub(8).cast::<u64>().read() };
    // SAFETY: as above.
    unsafe { below.sub(8).cast::<u64>().write(u64::MAX) };
    assert!(matches!(arena.validate(), Err(Corruption::Header { at, .. }) if at == below as usize - 16));
    // SAFETY: restore it.
    unsafe { below.sub(8).cast::<u64>().write(saved) };
    assert_eq!(arena.validate(), Ok(()));
}

#[test]
fn in_place_operations_keep_the_canary_in_step() {
    // Grow and shrink the last block and a middle one; validate after each.
    let arena = Arena::with_policy(Debug);
    let mut a: AVec<u8, _> = AVec::new_in(&arena);
    let mut b: AVec<u8, _> = AVec::new_in(&arena);
    for i in 0..500u32 {
        a.push(i as u8);
        assert_eq!(arena.validate(), Ok(()));
        if i % 7 == 0 {
            b.push(i as u8);
        }
    }
    a.truncate(3);
    a.shrink_to_fit();
    b.shrink_to_fit();
    assert_eq!(arena.validate(), Ok(()));
    // Writing the byte just past the shrunk buffer is caught.
    let p = a.as_mut_ptr();
    // SAFETY: one byte past the 3-byte buffer: its canary.
    unsafe { p.add(3).write(0) };
    assert!(matches!(arena.validate(), Err(Corruption::Overrun { size: 3, offset: 3, .. })));
    // SAFETY: restore it.
    unsafe { p.add(3).write(0xCA) };
    assert_eq!(arena.validate(), Ok(()));
}

#[cfg(fiberalloc_asan)]
extern "C" {
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Reads released memory to see its poison (telling AddressSanitizer,
/// which would rightly report the read, to look away first).
fn read(p: *const u8, n: usize) -> Vec<u8> {
    // SAFETY: the ASan runtime only clears its shadow bytes for the range.
    #[cfg(fiberalloc_asan)]
    unsafe {
        __asan_unpoison_memory_region(p, n)
    };
    // SAFETY: callers pass memory of an arena that is still mapped (its
    // chunk is kept by reset and by the scope).
    unsafe { std::slice::from_raw_parts(p, n).to_vec() }
}

#[test]
fn released_memory_is_poisoned() {
    let byte = <Safe as Policy>::POISON_BYTE;
    // Reset.
    let mut arena = Arena::with_policy(Safe);
    let p = arena.alloc_slice_copy(&[0x11u8; 64]).as_ptr();
    arena.reset();
    assert_eq!(read(p, 64), vec![byte; 64], "reset must poison");
    // Scope exit.
    let q = arena.scope(|a| a.alloc_slice_copy(&[0x22u8; 64]).as_ptr());
    assert_eq!(read(q, 64), vec![byte; 64], "scope exit must poison");
    // Deallocate (a block that is not the last, so it stays a hole).
    let arena = Arena::with_policy(Debug);
    let boxed = ABox::new_in([0x33u8; 40], &arena);
    let _after = arena.alloc(1u64);
    let r = &*boxed as *const [u8; 40] as *const u8;
    drop(boxed);
    assert_eq!(read(r, 40), vec![byte; 40], "deallocate must poison under Debug");
    // Fast leaves the bytes as they were.
    let mut fast = Arena::new();
    let f = fast.alloc_slice_copy(&[0x44u8; 64]).as_ptr();
    fast.reset();
    assert_eq!(read(f, 64), vec![0x44; 64]);
}

#[test]
fn leaks_lists_exactly_the_blocks_left_live() {
    let arena = Arena::with_policy(Debug);
    assert!(arena.leaks().is_empty());
    // Not tracked: blocks that are never freed one by one.
    arena.alloc(5u64);
    arena.alloc_str("not a leak");
    let kept_box = ABox::new_in(7u32, &arena);
    let mut kept_vec = AVec::new_in(&arena);
    kept_vec.extend(0..100u64); // grows: the old buffers are freed as it moves
    let freed = ABox::new_in([0u8; 300], &arena);
    let mut map = hashbrown::HashMap::new_in(&arena);
    for i in 0..50u32 {
        map.insert(i, i); // rehashes free the old tables
    }
    drop(freed);
    let mut leaks = arena.leaks();
    leaks.sort_by_key(|l| l.addr);
    let mut expected = vec![
        Leak { addr: &*kept_box as *const u32 as usize, size: 4 },
        Leak { addr: kept_vec.as_ptr() as usize, size: kept_vec.capacity() * 8 },
    ];
    // The map's one live table: the leak neither of the others is.
    let table: Vec<&Leak> = leaks.iter().filter(|l| !expected.contains(l)).collect();
    assert_eq!(table.len(), 1, "exactly one more live block (the map's table): {leaks:?}");
    expected.push(*table[0]);
    expected.sort_by_key(|l| l.addr);
    assert_eq!(leaks, expected);
    drop(map);
    drop(kept_box);
    assert_eq!(arena.leaks(), vec![Leak { addr: kept_vec.as_ptr() as usize, size: kept_vec.capacity() * 8 }]);
    drop(kept_vec);
    assert!(arena.leaks().is_empty());
    // Only Debug records blocks.
    let safe = Arena::with_policy(Safe);
    let _v = ABox::new_in(1u8, &safe);
    assert!(safe.leaks().is_empty());
}

#[test]
fn a_leak_report_is_written_at_drop() {
    let mut what = None;
    if in_child(&mut what) {
        debug::set_leak_report(true);
        let arena = Arena::with_policy(Debug);
        let b = ABox::new_in([1u8; 24], &arena);
        println!("leaked at {:#x}", &*b as *const [u8; 24] as usize);
        core::mem::forget(b);
        drop(arena);
        return;
    }
    let out = run_child("a_leak_report_is_written_at_drop", "report");
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let addr = stdout.lines().find_map(|l| l.split("leaked at ").nth(1)).expect("address");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = format!("fiberalloc: leak: 24 bytes at {addr} still live when arena");
    assert!(stderr.contains(&line), "{stderr}");
    assert_eq!(stderr.matches("fiberalloc: leak:").count(), 1, "{stderr}");
}

static EVENTS: Mutex<Vec<(std::thread::ThreadId, Event)>> = Mutex::new(Vec::new());

fn record(e: Event) {
    EVENTS.lock().unwrap().push((std::thread::current().id(), e));
}

/// This thread's events since the last call (the hook is process-wide and
/// other tests run on other threads).
fn take_mine() -> Vec<Event> {
    let me = std::thread::current().id();
    let mut all = EVENTS.lock().unwrap();
    let mine = all.iter().filter(|(t, _)| *t == me).map(|(_, e)| *e).collect();
    all.retain(|(t, _)| *t != me);
    mine
}

/// The operations the log test runs, under policy `P`; returns the arena's
/// address, its chunk and the three blocks' addresses.
fn logged_ops<P: Policy>() -> (usize, usize, [usize; 3]) {
    let mut arena = Box::new(Arena::<P>::default()); // boxed: its address stays put
    let id = &*arena as *const Arena<P> as usize;
    let a = arena.alloc(1u64) as *mut u64 as usize;
    let b = arena.scope(|s| s.alloc(2u32) as *mut u32 as usize);
    let boxed = ABox::new_in(3u16, &*arena);
    let c = &*boxed as *const u16 as usize;
    drop(boxed);
    let chunk = arena.memory_map().chunks[0].addr;
    arena.reset();
    drop(arena);
    (id, chunk, [a, b, c])
}

#[test]
fn the_log_hook_sees_the_events_in_order() {
    debug::set_log_hook(Some(record));
    take_mine();
    let (arena, chunk, [a, b, c]) = logged_ops::<Debug>();
    let size = 16 << 10;
    let expected = vec![
        Event::ChunkMap { arena, chunk, size },
        Event::Alloc { arena, addr: a, size: 8, align: 8 },
        Event::ScopeEnter { arena },
        Event::Alloc { arena, addr: b, size: 4, align: 4 },
        Event::ScopeExit { arena },
        Event::Alloc { arena, addr: c, size: 2, align: 2 },
        Event::Dealloc { arena, addr: c, size: 2 },
        Event::Reset { arena },
        Event::ChunkUnmap { arena, chunk, size },
    ];
    assert_eq!(take_mine(), expected);
    // Safe and Fast compile the calls out: nothing reaches the hook.
    logged_ops::<Safe>();
    logged_ops::<Fast>();
    assert_eq!(take_mine(), vec![]);
    // A leak at drop is an event too.
    let arena = Box::new(Arena::with_policy(Debug));
    let leaked = ABox::leak(ABox::new_in(9u64, &*arena)) as *mut u64 as usize;
    let id = &*arena as *const Arena<Debug> as usize;
    drop(arena);
    let events = take_mine();
    assert!(events.contains(&Event::Leak { arena: id, addr: leaked, size: 8 }), "{events:?}");
    // A shared arena under Debug: chunks, direct and leased blocks, frees,
    // resets.
    let mut shared = Box::new(SharedArena::with_policy(Debug));
    let arena = &*shared as *const SharedArena<Debug> as usize;
    let d = shared.alloc(1u64) as *mut u64 as usize;
    let boxed = ABox::new_in(2u32, &*shared);
    let e = &*boxed as *const u32 as usize;
    drop(boxed);
    let lease = shared.lease();
    let f = lease.alloc(3u16) as *mut u16 as usize;
    drop(lease);
    assert!(shared.try_reset());
    shared.reset();
    drop(shared);
    let events = take_mine();
    let maps: Vec<_> = events.iter().filter(|e| matches!(e, Event::ChunkMap { .. })).collect();
    let unmaps = events.iter().filter(|e| matches!(e, Event::ChunkUnmap { .. })).count();
    assert_eq!(maps.len(), 2, "a chunk for each lane: {events:?}");
    assert_eq!(unmaps, 2, "both given back at drop: {events:?}");
    let rest: Vec<Event> = events
        .into_iter()
        .filter(|e| !matches!(e, Event::ChunkMap { .. } | Event::ChunkUnmap { .. }))
        .collect();
    assert_eq!(
        rest,
        vec![
            Event::Alloc { arena, addr: d, size: 8, align: 8 },
            Event::Alloc { arena, addr: e, size: 4, align: 4 },
            Event::Dealloc { arena, addr: e, size: 4 },
            Event::Alloc { arena, addr: f, size: 2, align: 2 },
            Event::Reset { arena },
            Event::Reset { arena },
        ]
    );
    debug::set_log_hook(None);
    let arena = Arena::with_policy(Debug);
    arena.alloc(1u8);
    drop(arena);
    assert_eq!(take_mine(), vec![]);
}

#[test]
fn the_memory_map_draws_one_strip_per_chunk() {
    let mut arena = Arena::with_policy(Safe);
    let mut keep = Vec::new();
    for i in 0..4000u64 {
        keep.push(arena.alloc([i; 4]) as *mut [u64; 4]);
    }
    let big = arena.alloc_layout(core::alloc::Layout::from_size_align(3 << 20, 64).unwrap());
    arena.scope(|a| {
        for i in 0..20_000u64 {
            a.alloc(i);
        }
    });
    let s = arena.stats();
    let map = arena.memory_map();
    assert_eq!(map.chunks.len(), s.chunk_count);
    assert!(map.chunks.iter().any(|c| c.state == ChunkState::Spare), "the scope's chunks are spares");
    assert_eq!(map.chunks.iter().filter(|c| c.state == ChunkState::Current).count(), 1);
    let live: usize = map.chunks.iter().map(|c| c.live).sum();
    let padding: usize = map.chunks.iter().map(|c| c.padding).sum();
    assert_eq!(live, s.allocated_bytes, "live bytes per chunk add up to the arena's");
    assert_eq!(padding, s.padding_bytes);
    let mapped: usize = map.chunks.iter().map(|c| c.size()).sum();
    assert_eq!(mapped, s.reserved_bytes);
    assert!(map.chunks.iter().all(|c| c.guard > 0), "Safe chunks have guard pages");
    let svg = report::svg(&map);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let strips: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("chunk")).collect();
    assert_eq!(strips.len(), s.chunk_count);
    for (strip, c) in strips.iter().zip(&map.chunks) {
        assert_eq!(strip.attribute("data-addr"), Some(format!("{:#x}", c.addr).as_str()));
        assert!(strip.children().any(|n| n.has_tag_name("rect")));
    }
    assert!(svg.contains("Arena&lt;Safe&gt;"));
    let _ = (keep, big);
}

#[cfg(fiberalloc_asan)]
#[test]
fn a_use_after_reset_is_reported_by_asan() {
    let mut what = None;
    if in_child(&mut what) {
        let mut arena = Arena::new();
        let p = arena.alloc(41u64) as *mut u64;
        arena.reset();
        // SAFETY: none: the block was released by the reset. The read is
        // the bug ASan must report.
        let v = unsafe { p.read_volatile() };
        println!("ran on: {v}");
        return;
    }
    let out = run_child("a_use_after_reset_is_reported_by_asan", "uaf");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ran on"));
    assert!(stderr.contains("use-after-poison"), "{stderr}");
}
