//! `GlobalArena` as this program's global allocator, under real libraries
//! and real threads, with checks that memory goes back.
//!
//! A test binary of its own (`harness = false`): the global allocator is
//! process-wide, and the libtest harness would allocate around the checks.
//! Each check prints one line. `FIBERALLOC_QUICK=1` scales the workloads
//! down for valgrind and the sanitizers; under Miri they are smaller still
//! and the RSS checks are skipped (Miri has no `/proc`, and its memory is
//! the heap stand-in's).

use fiberalloc::report::ChunkState;
use fiberalloc::{GlobalArena, GlobalStats};
use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::mpsc;
use std::thread;

#[global_allocator]
static GLOBAL: GlobalArena = GlobalArena::new();

const MIB: usize = 1 << 20;

/// How much of each workload to run: 1 normally, smaller under
/// `FIBERALLOC_QUICK` and Miri.
fn scale(full: usize) -> usize {
    if cfg!(miri) {
        (full / 2000).max(4)
    } else if std::env::var_os("FIBERALLOC_QUICK").is_some() {
        (full / 50).max(4)
    } else {
        full
    }
}

/// Resident set size in bytes, from `/proc/self/statm` (None under Miri or
/// where there is no `/proc`).
fn rss() -> Option<usize> {
    if cfg!(miri) {
        return None;
    }
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    Some(pages * page)
}

fn stats() -> GlobalStats {
    GLOBAL.stats()
}

/// Asserts that the committed memory and the RSS are back within `budget`
/// bytes (plus `slack` for the RSS) of what they were before a workload;
/// returns a note for the check's line.
fn assert_returned(
    what: &str,
    before: GlobalStats,
    rss_before: Option<usize>,
    budget: usize,
    slack: usize,
) -> String {
    let after = stats();
    assert!(
        after.committed_bytes <= before.committed_bytes + budget,
        "{what}: committed before {} after {}",
        before.committed_bytes,
        after.committed_bytes
    );
    let mut note =
        format!("committed {} -> {} MiB", before.committed_bytes / MIB, after.committed_bytes / MIB);
    if let (Some(b), Some(a)) = (rss_before, rss()) {
        assert!(a <= b + budget + slack, "{what}: RSS before {b} after {a}");
        note += &format!(", RSS {} -> {} MiB", b / MIB, a / MIB);
    }
    note
}

fn check(name: &str, f: impl FnOnce() -> String) {
    let t = std::time::Instant::now();
    let detail = f();
    println!("ok  {name}: {detail} ({} ms)", t.elapsed().as_millis());
}

/// serde_json, regex and std collections growing and shrinking.
fn libraries() -> String {
    let n = scale(20_000);
    let mut doc = serde_json::Map::new();
    for i in 0..n {
        doc.insert(
            format!("key{i}"),
            serde_json::json!({ "id": i, "name": format!("item number {i}"), "tags": ["a", "b", i.to_string()] }),
        );
    }
    let value = serde_json::Value::Object(doc);
    let text = serde_json::to_string(&value).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, value, "JSON round trip");
    assert_eq!(back[format!("key{}", n - 1)]["id"], serde_json::json!(n - 1));

    let mut matched = 0;
    if !cfg!(miri) {
        let re = regex::Regex::new(r"item number (\d+)7\b").unwrap();
        matched = re.captures_iter(&text).count();
        assert_eq!(matched, (0..n).filter(|i| i % 10 == 7 && *i >= 10).count(), "regex matches");
    }

    let mut map: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut tree: BTreeMap<u64, String> = BTreeMap::new();
    let mut queue: VecDeque<Box<[u64]>> = VecDeque::new();
    for i in 0..n as u64 {
        map.insert(i, vec![i as u8; (i % 97) as usize]);
        tree.insert(i * 7 % 1009, i.to_string());
        queue.push_back(vec![i; (i % 13) as usize].into_boxed_slice());
        if queue.len() > 64 {
            queue.pop_front();
        }
    }
    for i in (0..n as u64).step_by(2) {
        map.remove(&i);
    }
    map.shrink_to_fit();
    for (k, v) in &map {
        assert!(v.iter().all(|&b| b == *k as u8) && v.len() == (*k % 97) as usize);
    }
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&i.to_string());
    }
    let full = s.clone();
    s.truncate(s.len() / 3);
    s.shrink_to_fit();
    assert_eq!(s, full[..full.len() / 3]);
    assert!(full.starts_with("0123"));
    format!("{} JSON bytes round-tripped, {matched} regex matches, {} map entries", text.len(), map.len())
}

/// 2,000,000 boxes made on one thread and freed on another; afterwards the
/// live bytes and the committed memory are back near where they started.
fn boxes_across_threads() -> String {
    let n = scale(2_000_000);
    let before = stats();
    let rss_before = rss();
    let (tx, rx) = mpsc::sync_channel::<Box<[u64; 4]>>(1024);
    let consumer = thread::spawn(move || {
        let mut sum = 0u64;
        for b in rx {
            sum = sum.wrapping_add(b[0] + b[3]);
        }
        sum
    });
    for i in 0..n as u64 {
        tx.send(Box::new([i, 0, 0, 1])).unwrap();
    }
    drop(tx);
    let sum = consumer.join().unwrap();
    let expect = (0..n as u64).fold(0u64, |a, i| a.wrapping_add(i + 1));
    assert_eq!(sum, expect);
    let after = stats();
    assert!(
        after.live_bytes <= before.live_bytes + MIB,
        "live bytes before {} after {}",
        before.live_bytes,
        after.live_bytes
    );
    assert!(after.free_count - before.free_count >= n as u64, "every box freed");
    // 2,000,000 boxes of 32 bytes fill about 61 chunks; afterwards at most
    // the cache's worth plus the two threads' current chunks stay committed.
    let budget = (GlobalArena::CACHED_CHUNKS + 4) * GlobalArena::CHUNK_SIZE;
    let note = assert_returned("boxes", before, rss_before, budget, 4 * MIB);
    format!("{n} boxes; live bytes {} -> {}; {note}", before.live_bytes, after.live_bytes)
}

/// 1,000 short-lived threads that allocate: their chunks come back when they
/// exit, so memory does not grow with the number of threads.
fn short_lived_threads() -> String {
    let n = scale(1000).max(20);
    let round = |k: usize| {
        let handles: Vec<_> = (0..k)
            .map(|t| {
                thread::spawn(move || {
                    let v: Vec<String> = (0..200).map(|i| format!("thread {t} string {i}")).collect();
                    v.iter().map(|s| s.len()).sum::<usize>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
    };
    // Warm up: the first threads map the chunks the rest reuse.
    round(4);
    let before = stats();
    let rss_before = rss();
    let mut total = 0;
    for _ in 0..n / 4 {
        total += round(4);
    }
    let after = stats();
    assert!(total > 0);
    let budget = (GlobalArena::CACHED_CHUNKS + 6) * GlobalArena::CHUNK_SIZE;
    assert!(after.chunks_in_use <= before.chunks_in_use + 6, "chunks in use {before:?} -> {after:?}");
    let note = assert_returned("threads", before, rss_before, budget, 8 * MIB);
    format!("{n} threads; chunks in use {} -> {}; {note}", before.chunks_in_use, after.chunks_in_use)
}

/// 3,000,000 boxes sent to another thread through a bounded channel; the
/// consumer keeps one in 1,000 in a ring of the last 1,000 kept (64 KB
/// live) and frees the rest. Each kept box keeps its chunk from being
/// recycled; the producer takes the blocks freed around them back into use
/// (adopted from those chunks), so the memory committed stays bounded.
/// Without adoption it grew by a chunk per 32,000 boxes, about 31 chunks
/// (62 MiB) for the span of the ring.
fn stragglers() -> String {
    let n = scale(3_000_000);
    let before = stats();
    let (tx, rx) = mpsc::sync_channel::<Box<[u8; 64]>>(1000);
    let consumer = thread::spawn(move || {
        let mut kept = VecDeque::with_capacity(1001);
        for (i, b) in rx.into_iter().enumerate() {
            if i % 1000 == 999 {
                kept.push_back(b);
                if kept.len() > 1000 {
                    kept.pop_front();
                }
            }
        }
        kept
    });
    let mut peak = before.committed_bytes;
    for i in 0..n {
        tx.send(Box::new([i as u8; 64])).unwrap();
        if i % 65536 == 0 {
            peak = peak.max(stats().committed_bytes);
        }
    }
    drop(tx);
    let kept = consumer.join().unwrap();
    let after = stats();
    peak = peak.max(after.committed_bytes);
    assert!(kept.iter().all(|b| b.iter().all(|&x| x == b[0])), "a kept box was overwritten");
    let grown = peak.saturating_sub(before.committed_bytes);
    assert!(grown <= 12 * GlobalArena::CHUNK_SIZE, "committed memory grew by {} MiB", grown / MIB);
    format!(
        "{n} boxes, {} kept; committed {} -> peak {} MiB; pinned at the end {} MiB",
        kept.len(),
        before.committed_bytes / MIB,
        peak / MIB,
        after.pinned_bytes / MIB
    )
}

/// A thread fills four chunks with 16 KiB blocks and another frees all
/// but the first: the first chunk stays kept by it. When the owner's bump
/// next runs out, it takes the freed blocks of that chunk into its cache,
/// and its next blocks come from there. Raw blocks, never written, so that
/// Miri runs it too.
fn reuse_around_a_straggler() -> String {
    /// A raw block sent to the thread that frees it.
    struct Block(*mut u8);
    // SAFETY: a block of the global allocator, which any thread may free.
    unsafe impl Send for Block {}
    let layout = Layout::from_size_align(16 << 10, 8).unwrap();
    let per_chunk = GlobalArena::CHUNK_SIZE / layout.size();
    let chunk_of = |p: *mut u8| p.addr() & !(GlobalArena::CHUNK_SIZE - 1);
    thread::spawn(move || {
        // SAFETY: a non-zero size; every block is checked and freed below.
        let mut blocks: Vec<Block> = (0..4 * per_chunk).map(|_| Block(unsafe { alloc(layout) })).collect();
        assert!(blocks.iter().all(|b| !b.0.is_null()));
        let straggler = blocks.remove(0).0;
        thread::spawn(move || {
            for b in blocks {
                // SAFETY: allocated above with `layout`, freed once.
                unsafe { dealloc(b.0, layout) };
            }
        })
        .join()
        .unwrap();
        // SAFETY: as above.
        let again: Vec<*mut u8> = (0..2 * per_chunk).map(|_| unsafe { alloc(layout) }).collect();
        let reused = again.iter().filter(|&&p| chunk_of(p) == chunk_of(straggler)).count();
        assert!(again.iter().all(|&p| !p.is_null() && p != straggler));
        for p in again.into_iter().chain([straggler]) {
            // SAFETY: allocated above with `layout`, freed once.
            unsafe { dealloc(p, layout) };
        }
        assert!(reused > 0, "no block of the straggler's chunk was used again");
        format!("{reused} of {} new blocks from the straggler's chunk", 2 * per_chunk)
    })
    .join()
    .unwrap()
}

/// What a block of `len` bytes at `addr` holds at byte `j` in
/// [`passing_blocks_around`]: a block handed out twice, or overlapping
/// another, is overwritten by its other user and fails the check.
fn pattern(addr: usize, len: usize, j: usize) -> u8 {
    ((addr >> 3) ^ (len << 1) ^ j.wrapping_mul(31)) as u8
}

/// Four threads allocate blocks of random sizes (mostly small, some up to
/// 64 KiB), fill each with a pattern of its own address and length, and
/// send it to a random thread (maybe themselves). A thread checks every
/// block it receives, keeps one in 40 in a ring of the last 300 kept
/// (stragglers, so chunks stay kept and their freed blocks are adopted),
/// and frees the rest. Every block is checked once more when freed.
fn passing_blocks_around() -> String {
    const THREADS: usize = 4;
    let rounds = scale(100_000);
    // Miri writes and checks every byte slowly.
    let big = if cfg!(miri) { 2 << 10 } else { 64 << 10 };
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel::<Vec<u8>>()).unzip();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
    let check = |v: &Vec<u8>| {
        let addr = v.as_ptr().addr();
        v.iter().enumerate().all(|(j, &b)| b == pattern(addr, v.len(), j))
    };
    let handles: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(t, rx)| {
            let senders = senders.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let (mut kept, mut seen, mut bad) = (VecDeque::new(), 0usize, 0usize);
                let mut take = |v: Vec<u8>, kept: &mut VecDeque<Vec<u8>>, r: u64| {
                    seen += 1;
                    if !check(&v) {
                        bad += 1;
                    }
                    if r.is_multiple_of(40) {
                        kept.push_back(v);
                        if kept.len() > 300 {
                            let old = kept.pop_front().unwrap();
                            if !check(&old) {
                                bad += 1;
                            }
                        }
                    }
                };
                for _ in 0..rounds {
                    while let Ok(v) = rx.try_recv() {
                        let r = next();
                        take(v, &mut kept, r);
                    }
                    let r = next();
                    let len =
                        if r.is_multiple_of(16) { (r >> 8) as usize % big } else { (r >> 8) as usize % 200 };
                    let mut v: Vec<u8> = Vec::with_capacity(len);
                    let addr = v.as_ptr().addr();
                    v.extend((0..len).map(|j| pattern(addr, len, j)));
                    senders[(r >> 40) as usize % THREADS].send(v).unwrap();
                }
                barrier.wait();
                drop(senders);
                for v in rx {
                    let r = next();
                    take(v, &mut kept, r);
                }
                let stragglers_bad = kept.iter().filter(|v| !check(v)).count();
                (seen, bad + stragglers_bad)
            })
        })
        .collect();
    drop(senders);
    let (mut seen, mut bad) = (0, 0);
    for h in handles {
        let (s, b) = h.join().unwrap();
        seen += s;
        bad += b;
    }
    assert_eq!(seen, THREADS * rounds, "every block sent was received");
    assert_eq!(bad, 0, "{bad} blocks did not hold what their user wrote");
    format!("{seen} blocks passed between {THREADS} threads, all intact")
}

/// Chunks holding this many small boxes of `[u8; 48]` (48-byte blocks).
fn boxes_for_chunks(chunks: usize) -> usize {
    chunks * GlobalArena::CHUNK_SIZE / 48 + 1
}

/// A thread that allocates less than a chunk lets the pages of its chunks
/// fault in as it touches them (no `MADV_POPULATE_WRITE`, which holds the
/// process's mmap lock and makes resident up to 256 KiB ahead); a thread
/// that has filled a chunk prefaults its next untouched ones. The light
/// thread runs while another holds every cached chunk, so its chunks are
/// untouched ones (decommitted or fresh), which used to be prefaulted.
fn prefault_after_a_full_chunk() -> String {
    if cfg!(miri) {
        return "skipped under Miri (the heap stand-in does not prefault)".into();
    }
    let cached = stats().chunks_cached;
    let (hold, release) = mpsc::channel::<()>();
    let (held_tx, held) = mpsc::channel::<usize>();
    let holder = thread::spawn(move || {
        let boxes: Vec<Box<[u8; 48]>> =
            (0..boxes_for_chunks(cached + 1)).map(|i| Box::new([i as u8; 48])).collect();
        held_tx.send(boxes.len()).unwrap();
        release.recv().unwrap();
        drop(boxes);
    });
    held.recv().unwrap();
    assert_eq!(stats().chunks_cached, 0, "the holder took every cached chunk");
    let (light, touched) = thread::spawn(|| {
        let boxes: Vec<Box<[u8; 48]>> = (0..1000).map(|i| Box::new([i as u8; 48])).collect();
        let buffer = vec![1u8; 200 << 10];
        let touched = boxes.iter().map(|b| b[0] as usize).sum::<usize>() + buffer.len();
        (fiberalloc::__internals::prefaults_made(), touched)
    })
    .join()
    .unwrap();
    hold.send(()).unwrap();
    holder.join().unwrap();
    assert!(touched > 0);
    assert_eq!(light, 0, "a thread that allocated under a chunk prefaulted {light} times");
    // Past every cached chunk: at least one untouched chunk after the
    // first full one.
    let chunks = stats().chunks_cached + 3;
    let heavy = thread::spawn(move || {
        let boxes: Vec<Box<[u8; 48]>> =
            (0..boxes_for_chunks(chunks)).map(|i| Box::new([i as u8; 48])).collect();
        (fiberalloc::__internals::prefaults_made(), boxes.len())
    })
    .join()
    .unwrap();
    assert!(heavy.0 > 0, "a thread that filled {chunks} chunks never prefaulted");
    format!(
        "light thread (1000 boxes, 200 KiB buffer): {light} prefaults; {} boxes: {} prefaults",
        heavy.1, heavy.0
    )
}

/// Random-size vectors replaced in a bounded live set: the committed
/// memory stops growing once the live set has turned over.
fn churn() -> String {
    let slots = scale(4096).max(64);
    let rounds = 12;
    let per_round = slots * 8;
    let mut live: Vec<Vec<u8>> = (0..slots).map(|_| Vec::new()).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let committed_before = stats().committed_bytes;
    let mut committed = Vec::new();
    let mut resident = Vec::new();
    for _ in 0..rounds {
        for _ in 0..per_round {
            let r = next();
            let slot = (r % slots as u64) as usize;
            let len = ((r >> 20) % 2048) as usize;
            live[slot] = vec![r as u8; len];
        }
        committed.push(stats().committed_bytes);
        resident.push(rss());
    }
    for (i, v) in live.iter().enumerate() {
        assert!(v.iter().all(|&b| b == v[0]), "slot {i} intact");
    }
    // After the first half, the committed memory no longer grows: the last
    // round is within a few chunks of the sixth.
    let mid = committed[rounds / 2 - 1];
    let last = committed[rounds - 1];
    assert!(last <= mid + 4 * GlobalArena::CHUNK_SIZE, "committed kept growing: {committed:?}");
    // Freed space is reused (the thread cache): the memory taken stays
    // within a small multiple of the live set. Reclaiming only whole chunks
    // settled near 10x it here.
    let live: usize = live.iter().map(|v| v.capacity()).sum();
    let grown = last.saturating_sub(committed_before);
    assert!(grown <= 3 * live + 4 * MIB, "{grown} bytes committed for {live} live: {committed:?}");
    if let (Some(mid), Some(last)) = (resident[rounds / 2 - 1], resident[rounds - 1]) {
        assert!(last <= mid + 4 * GlobalArena::CHUNK_SIZE, "RSS kept growing: {resident:?}");
    }
    format!("{slots} slots, {} replacements; committed MiB per round {:?}", rounds * per_round, {
        committed.iter().map(|c| c / MIB).collect::<Vec<_>>()
    })
}

/// A freed large block of at most 2 MiB is kept for the next block of its
/// length: handed out again at the same address (resident: no page faults),
/// cleared for `alloc_zeroed`; a larger one is unmapped at once.
fn large_blocks_kept() -> String {
    let layout = Layout::from_size_align(300 << 10, 8).unwrap();
    // SAFETY: non-zero-size layouts; each block is written within its size
    // and freed once with its layout.
    unsafe {
        let p = std::hint::black_box(alloc(layout));
        assert!(!p.is_null());
        p.write_bytes(0xAB, layout.size());
        dealloc(p, layout);
        let q = std::hint::black_box(alloc_zeroed(layout));
        assert_eq!(q, p, "the freed mapping is handed out again");
        assert!((0..layout.size()).all(|i| *q.add(i) == 0), "cleared for alloc_zeroed");
        let kept_before = stats().large_bytes;
        dealloc(q, layout);
        assert_eq!(stats().large_bytes, kept_before, "kept: still mapped");
        let big = Layout::from_size_align(4 << 20, 8).unwrap();
        // black_box: else the optimiser may drop the allocation and free.
        let b = std::hint::black_box(alloc(big));
        assert!(!b.is_null());
        let with_big = stats().large_bytes;
        dealloc(b, big);
        let after = stats().large_bytes;
        assert_eq!(after + (4 << 20), with_big, "a 4 MiB block is unmapped when freed");
        format!(
            "300 KiB block reused at {p:p}; 4 MiB block unmapped (large bytes {} -> {} KiB)",
            with_big >> 10,
            after >> 10
        )
    }
}

/// A 512 MiB block: its memory goes back to the OS when freed.
fn big_block() -> String {
    let size = scale(512 * MIB).max(GlobalArena::LARGE_THRESHOLD + 1);
    let before = rss();
    let mut v = vec![0u8; size];
    for i in (0..size).step_by(4096) {
        v[i] = 1;
    }
    let during = rss();
    let sum: usize = v.iter().step_by(4096).map(|&b| b as usize).sum();
    assert_eq!(sum, size.div_ceil(4096));
    drop(v);
    let after = rss();
    match (before, during, after) {
        (Some(b), Some(d), Some(a)) => {
            assert!(d >= b + size / 2, "RSS did not rise: {b} -> {d}");
            assert!(a <= b + 8 * MIB, "RSS not returned: {b} -> {d} -> {a}");
            format!("{} MiB block; RSS {} -> {} -> {} MiB", size / MIB, b / MIB, d / MIB, a / MIB)
        }
        _ => format!("{size} bytes (no RSS here)"),
    }
}

/// The offsets of a block of `size` bytes that a check writes and reads:
/// all of them, or under Miri (where a byte loop is slow) the first and
/// last 64.
fn offsets(size: usize) -> Vec<usize> {
    if cfg!(miri) && size > 128 {
        (0..64).chain(size - 64..size).collect()
    } else {
        (0..size).collect()
    }
}

/// Alignments from 1 to 2 MiB through `alloc`, `alloc_zeroed` and
/// `realloc`, with contents kept.
fn alignments() -> String {
    let mut checked = 0;
    let max_shift = if cfg!(miri) { 16 } else { 21 };
    for shift in 0..=max_shift {
        let align = 1usize << shift;
        for size in [1, 8, align, align + 1, 3 * align / 2 + 1, 100_000, GlobalArena::LARGE_THRESHOLD + 1] {
            let layout = Layout::from_size_align(size, align).unwrap();
            for new_size in
                [None, Some(size * 2 + 7), Some(size / 2 + 1), Some(4 * GlobalArena::LARGE_THRESHOLD)]
            {
                // SAFETY: non-zero sizes; each block is written within its
                // size, resized and freed with the layouts it has.
                unsafe {
                    let zeroed = size % 2 == 1;
                    let p = if zeroed { alloc_zeroed(layout) } else { alloc(layout) };
                    assert!(!p.is_null(), "alloc {size} align {align}");
                    assert_eq!(p.addr() % align, 0, "alloc {size} align {align}");
                    if zeroed {
                        assert!(offsets(size).iter().all(|&i| *p.add(i) == 0), "zeroed {size} align {align}");
                    }
                    for i in offsets(size) {
                        *p.add(i) = (i % 251) as u8;
                    }
                    let Some(new_size) = new_size else {
                        dealloc(p, layout);
                        continue;
                    };
                    let q = realloc(p, layout, new_size);
                    assert!(!q.is_null());
                    assert_eq!(q.addr() % align, 0, "realloc {size} -> {new_size} align {align}");
                    let keep = size.min(new_size);
                    assert!(
                        offsets(size).into_iter().filter(|&i| i < keep).all(|i| *q.add(i) == (i % 251) as u8),
                        "contents {size} -> {new_size}"
                    );
                    dealloc(q, Layout::from_size_align(new_size, align).unwrap());
                }
            }
            checked += 1;
        }
    }
    format!("{checked} size/alignment pairs, each resized three ways")
}

/// Sizes the allocator cannot serve give null (and `try_reserve` an
/// error), leaving existing blocks as they were.
fn impossible_sizes() -> String {
    let page = 4096;
    let huge = Layout::from_size_align(isize::MAX as usize - page + 1, page).unwrap();
    // SAFETY: a non-zero-size layout; null is the expected answer. (Through
    // `black_box`: an optimised build may otherwise drop an allocation
    // whose pointer is only compared with null, and call it a success.)
    let p = std::hint::black_box(unsafe { alloc(huge) });
    assert!(p.is_null(), "isize::MAX - page bytes");
    let almost = Layout::from_size_align(1 << 46, 1 << 21).unwrap();
    // SAFETY: as above (64 TiB cannot be mapped with 24 GiB and overcommit
    // heuristics; null either way is what we check for).
    let q = unsafe { alloc(almost) };
    if !q.is_null() {
        // SAFETY: allocated just above with this layout.
        unsafe { dealloc(q, almost) };
    }
    let mut v: Vec<u8> = vec![7; 100];
    assert!(v.try_reserve(isize::MAX as usize).is_err());
    assert!(v.try_reserve_exact(usize::MAX - 50).is_err());
    assert!(v.iter().all(|&b| b == 7) && v.len() == 100);
    let layout = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: the block is written within its size and realloc'd to a size
    // that, rounded to its alignment, fits in isize.
    unsafe {
        let b = alloc(layout);
        assert!(!b.is_null());
        b.write_bytes(9, 64);
        let r = realloc(b, layout, isize::MAX as usize - 4096);
        assert!(r.is_null(), "realloc to an impossible size");
        assert!((0..64).all(|i| *b.add(i) == 9), "block kept after a failed realloc");
        dealloc(b, layout);
    }
    format!("null for {} bytes; try_reserve errors; failed realloc keeps the block", huge.size())
}

/// `alloc_zeroed` after the same bytes were written and freed in place.
fn zeroed_reuse() -> String {
    let layout = Layout::from_size_align(4000, 16).unwrap();
    let mut rounds = 0;
    for _ in 0..scale(1000).max(10) {
        // SAFETY: blocks written within their size and freed with their
        // layouts.
        unsafe {
            let p = alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(0xAB, layout.size());
            dealloc(p, layout);
            let z = alloc_zeroed(layout);
            assert!((0..layout.size()).all(|i| *z.add(i) == 0), "zeroed after reuse");
            z.write_bytes(0xCD, layout.size());
            dealloc(z, layout);
        }
        rounds += 1;
    }
    format!("{rounds} write/free/alloc_zeroed rounds")
}

/// Chunks that went back to the free list, some of them decommitted, hand
/// out zeroed blocks that really are zero: every byte that was written
/// before is cleared, and only the parts known to be fresh are skipped.
fn zeroed_after_recycling() -> String {
    // Fewer, larger blocks when scaled down (Miri, valgrind).
    let block = if scale(1000) < 1000 { 16_000 } else { 2000 };
    let layout = Layout::from_size_align(block, 8).unwrap();
    let chunks = GlobalArena::CACHED_CHUNKS + 6;
    let per_chunk = GlobalArena::CHUNK_SIZE / block;
    let count = chunks * per_chunk;
    /// A block handed from the thread that wrote it to the one that frees it.
    struct Block(*mut u8);
    // SAFETY: the block is plain memory, used by one thread at a time.
    unsafe impl Send for Block {}
    // Written on another thread, whose chunks retire when it exits.
    let blocks: Vec<Block> = thread::spawn(move || {
        (0..count)
            .map(|_| {
                // SAFETY: a non-zero-size layout; the block is filled within
                // its size.
                unsafe {
                    let p = alloc(layout);
                    assert!(!p.is_null());
                    p.write_bytes(0xEE, layout.size());
                    Block(p)
                }
            })
            .collect()
    })
    .join()
    .unwrap();
    let before = stats();
    for b in blocks {
        // SAFETY: each block was allocated above with `layout` and is freed
        // once.
        unsafe { dealloc(b.0, layout) };
    }
    let freed = stats();
    assert!(freed.chunks_decommitted > before.chunks_decommitted, "some chunks decommitted: {freed:?}");
    let step = if scale(1000) < 1000 { 97 } else { 1 };
    let checked = thread::spawn(move || {
        let mut checked = 0;
        let mut keep = Vec::new();
        for _ in 0..count {
            // SAFETY: as above; the block is read within its size.
            unsafe {
                let z = alloc_zeroed(layout);
                assert!(!z.is_null());
                for i in (0..layout.size()).step_by(step) {
                    assert_eq!(*z.add(i), 0, "byte {i} of a zeroed block");
                    checked += 1;
                }
                keep.push(z);
            }
        }
        for z in keep {
            // SAFETY: allocated just above with `layout`.
            unsafe { dealloc(z, layout) };
        }
        checked
    })
    .join()
    .unwrap();
    format!(
        "{count} blocks over {chunks} recycled chunks ({} decommitted), {checked} bytes checked",
        freed.chunks_decommitted
    )
}

/// A block its thread frees (not the last one) is handed to that thread's
/// next request of the same size class: the thread cache, not the chunk,
/// takes it back.
fn thread_cache_reuses_freed_blocks() -> String {
    thread::spawn(|| {
        let a = Box::new([1u64; 3]);
        let b = Box::new([2u64; 3]);
        let freed = std::ptr::from_ref(&*a).addr();
        drop(a);
        let c = Box::new([3u64; 3]);
        assert_eq!(std::ptr::from_ref(&*c).addr(), freed, "the freed block is reused");
        assert_eq!((b[0], c[2]), (2, 3));
        format!("block at {freed:#x} reused by the next allocation of its class")
    })
    .join()
    .unwrap()
}

/// A thread that exits leaves its cache of freed blocks for the next thread
/// that needs blocks to take whole (the relay check below shows what that
/// saves), and `flush_thread_cache` gives such a left cache back to its
/// chunks: the chunks that only its blocks kept are recycled. (Before left
/// caches, the exiting thread emptied its cache itself, and the flush had
/// nothing to give back.)
fn exited_threads_leave_their_caches() -> String {
    GLOBAL.flush_thread_cache();
    // 8,000 blocks over four chunks, freed into the cache (not scaled down
    // under valgrind: fewer would share a chunk with older blocks; under
    // Miri 3,000, still more than a chunk).
    let layout = Layout::from_size_align(1000, 8).unwrap();
    let n = if cfg!(miri) { 3000 } else { 8000 };
    thread::spawn(move || {
        let blocks: Vec<*mut u8> = (0..n)
            // SAFETY: a non-zero-size layout.
            .map(|_| unsafe { alloc(layout) })
            .collect();
        assert!(blocks.iter().all(|p| !p.is_null()));
        for &p in &blocks {
            // SAFETY: allocated just above with `layout`, freed once.
            unsafe { dealloc(p, layout) };
        }
    })
    .join()
    .unwrap();
    let left = stats();
    GLOBAL.flush_thread_cache();
    let flushed = stats();
    let chunks = (n * 1000 / GlobalArena::CHUNK_SIZE).saturating_sub(1).max(1);
    assert!(
        flushed.pinned_bytes + chunks * GlobalArena::CHUNK_SIZE <= left.pinned_bytes,
        "flushing gives the left cache back: pinned {} -> {} MiB",
        left.pinned_bytes >> 20,
        flushed.pinned_bytes >> 20
    );
    format!(
        "{n} blocks freed by a thread that exited; flush_thread_cache: pinned {} -> {} MiB",
        left.pinned_bytes >> 20,
        flushed.pinned_bytes >> 20
    )
}

/// A thread that frees everything it built without allocating again (a
/// teardown) sends the blocks to their chunks rather than into its cache,
/// so the chunks are recycled while the thread still runs. The cache takes
/// at most 64 Ki frees after an allocation phase (about 7 MiB of these
/// boxes); without that rule it would keep up to half the live set (about
/// 20 MiB at full scale).
fn teardown_frees_to_chunks() -> String {
    let n = scale(400_000);
    let chunk = GlobalArena::CHUNK_SIZE;
    thread::spawn(move || {
        let before = stats().chunks_in_use;
        let boxes: Vec<Box<[u8; 100]>> = (0..n).map(|i| Box::new([i as u8; 100])).collect();
        let built = stats().chunks_in_use;
        assert!(boxes.iter().enumerate().all(|(i, b)| b[99] == i as u8));
        drop(boxes);
        let after = stats().chunks_in_use;
        if n == 400_000 {
            // Enough chunks for the test to tell the rule from its absence.
            assert!(built >= before + 30 * MIB / chunk, "{n} boxes took only {} chunks", built - before);
        }
        // Up to 8 MiB of chunks pinned by the cache, the thread's two
        // current chunks, and two whose runs of frees are not counted yet.
        assert!(after <= before + 8 * MIB / chunk + 4, "chunks in use: {before} -> {built} -> {after}");
        format!("{n} boxes: chunks in use {before} -> {built} -> {after}, no flush")
    })
    .join()
    .unwrap()
}

/// The last block grows in place past the part of a fresh chunk made
/// resident so far (the limit moves on a step at a time). The thread first
/// takes every cached chunk (those are resident throughout), until a block
/// starts a chunk that is fresh or decommitted.
fn growth_in_place_across_prefault() -> String {
    thread::spawn(|| {
        let chunk = GlobalArena::CHUNK_SIZE;
        let mut held = Vec::with_capacity(1000);
        let mut first = None;
        for _ in 0..1000 {
            let cached = stats().chunks_cached;
            let b = Box::new([3u8; 128 << 10]);
            let offset = std::ptr::from_ref(&*b).addr() % chunk;
            held.push(b);
            if cached == 0 && offset < 4096 {
                first = Some(offset);
                break;
            }
        }
        let first = first.expect("a fresh chunk within 1000 blocks");
        let mut v: Vec<u8> = Vec::with_capacity(256);
        let start = v.as_ptr().addr();
        assert!(start % chunk < 256 << 10, "the vector starts in the chunk's first step");
        let mut moves = 0;
        let piece: [u8; 256] = std::array::from_fn(|i| i as u8);
        for _ in 0..1000 {
            let before = v.as_ptr().addr();
            v.extend_from_slice(&piece);
            moves += usize::from(v.as_ptr().addr() != before);
        }
        assert_eq!(moves, 0, "the vector moved while growing at the end of its chunk");
        assert!(v.iter().enumerate().all(|(i, &b)| b == i as u8));
        assert!(held.iter().all(|b| b[0] == 3 && b[(128 << 10) - 1] == 3));
        format!(
            "after {} blocks, a fresh chunk (first block at offset {first}); a vector grew from 256 bytes \
             to {} KiB at offset {:#x} without moving",
            held.len(),
            v.capacity() >> 10,
            start % chunk
        )
    })
    .join()
    .unwrap()
}

thread_local! {
    static ALLOCATES_ON_EXIT: AllocOnDrop = const { AllocOnDrop };
}
struct AllocOnDrop;
impl Drop for AllocOnDrop {
    fn drop(&mut self) {
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
        std::hint::black_box(v);
    }
}

/// Runs after `GlobalArena`'s own exit hook: glibc calls key destructors
/// in key order, and this key is made after the allocator's (which the
/// first allocation of the program made).
unsafe extern "C" fn allocate_late(_: *mut libc::c_void) {
    let v: Vec<u64> = (0..100).collect();
    assert_eq!(v.iter().sum::<u64>(), 4950);
    let s = format!("allocated after the thread's chunk was retired: {}", v.len());
    std::hint::black_box(s);
}

/// Threads that allocate while they are torn down: in a Rust thread-local
/// destructor, and in a thread-key destructor that runs after the
/// allocator has retired the thread's chunk (served by the fallback).
fn allocation_in_teardown() -> String {
    let n = scale(100).max(4);
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; the destructor has the C ABI.
    assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(allocate_late)) }, 0);
    let before = stats().fallback_allocations;
    for _ in 0..n {
        thread::spawn(move || {
            ALLOCATES_ON_EXIT.with(|_| ());
            let b = Box::new([1u8; 100]);
            std::hint::black_box(b);
            // SAFETY: a live key; any non-null value arms the destructor.
            unsafe { libc::pthread_setspecific(key, std::ptr::dangling_mut::<u8>().cast()) };
        })
        .join()
        .unwrap();
    }
    let fallback = stats().fallback_allocations - before;
    assert!(fallback >= n as u64, "{fallback} fallback allocations from {n} threads");
    format!(
        "{n} threads allocated in thread-local and thread-key destructors; {fallback} fallback allocations"
    )
}

/// `stats()` can be sampled from a monitoring thread while others
/// allocate: it allocates nothing itself, and what it reports moves
/// forward.
fn monitoring_thread() -> String {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (samples, ns) = thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let mut keep = VecDeque::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        keep.push_back(vec![t as u8; 64]);
                        if keep.len() > 1000 {
                            keep.pop_front();
                        }
                    }
                })
            })
            .collect();
        let monitor = s.spawn(|| {
            let mut last = stats();
            let n = scale(20_000);
            let start = std::time::Instant::now();
            for _ in 0..n {
                let now = stats();
                assert!(now.allocation_count >= last.allocation_count && now.free_count >= last.free_count);
                assert!(now.peak_bytes >= last.peak_bytes);
                last = now;
            }
            (n, start.elapsed().as_nanos() as f64 / n as f64)
        });
        let r = monitor.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Joined one by one: a join waits for the thread's end, its
        // thread-exit work included (the scope's own wait does not).
        for w in workers {
            w.join().unwrap();
        }
        r
    });
    // Quiet now: two samples in a row see the same counts, so taking one
    // allocated nothing.
    let (a, b) = (stats(), stats());
    assert_eq!((a.allocation_count, a.free_count), (b.allocation_count, b.free_count));
    format!("{samples} samples while 2 threads allocate, {ns:.0} ns each")
}

/// Chunks mapped so far: in use, cached or decommitted.
fn chunks_mapped(s: &GlobalStats) -> usize {
    s.chunks_in_use + s.chunks_cached + s.chunks_decommitted
}

/// Chunks mapped while at least 16 MiB are live ask for transparent huge
/// pages (while they come quickly); a chunk mapped with less live does not.
fn huge_pages_once_16_mib_live() -> String {
    if cfg!(miri) {
        return "skipped under Miri (no mappings)".into();
    }
    let before = stats();
    // 4 KiB blocks come from the chunks (not mappings of their own).
    let mut keep: Vec<Box<[u8; 4096]>> = Vec::with_capacity(64 * MIB / 4096);
    // With little live, a fresh chunk (once the free ones are reused) is
    // not advised. Skipped when the free list outlasts the room left.
    let mut small = "no fresh chunk below 16 MiB live (free chunks reused)".to_string();
    while stats().live_bytes < 12 * MIB {
        keep.push(Box::new([7u8; 4096]));
        let s = stats();
        if chunks_mapped(&s) > chunks_mapped(&before) {
            assert_eq!(
                s.huge_chunks, before.huge_chunks,
                "a chunk mapped with {} live was advised: {s:?}",
                s.live_bytes
            );
            small = format!("chunk mapped at {} MiB live not advised", s.live_bytes / MIB);
            break;
        }
    }
    while stats().live_bytes < 16 * MIB {
        keep.push(Box::new([7u8; 4096]));
    }
    let mid = stats();
    let target = chunks_mapped(&mid) + 2;
    while chunks_mapped(&stats()) < target {
        keep.push(Box::new([7u8; 4096]));
        assert!(keep.len() < 64 * MIB / 4096, "48 MiB of blocks mapped no new chunk: {:?}", stats());
    }
    let s = stats();
    if mid.huge_pages_slow {
        // A slow huge page (of a chunk or a large block) had turned the
        // advice off: no chunk asks before the retry point, at least 32
        // chunks away (`huge_pages_tried_again`).
        assert_eq!(s.huge_chunks, mid.huge_chunks, "advice after it was turned off: {s:?}");
    } else if s.huge_pages_slow {
        // One of these chunks turned it off, and was counted.
        assert!(s.huge_chunks > mid.huge_chunks, "{s:?}");
    } else {
        assert!(s.huge_chunks >= mid.huge_chunks + 2, "fresh chunks past 16 MiB live not advised: {s:?}");
    }
    let huge_kib = std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("AnonHugePages:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "?".into());
    let blocks = keep.len();
    drop(keep);
    format!(
        "{small}; {blocks} blocks; {} of {} chunks advised{}; AnonHugePages {huge_kib} KiB",
        s.huge_chunks,
        chunks_mapped(&s),
        if s.huge_pages_slow { ", then turned off (slow faults)" } else { "" }
    )
}

/// After a slow huge page turned the advice off, no fresh chunk asks for
/// huge pages until the count of chunks mapped reaches the retry point;
/// the chunk that reaches it asks again (and is timed again).
fn huge_pages_tried_again() -> String {
    if cfg!(miri) {
        return "skipped under Miri (no mappings)".into();
    }
    // 64 KiB blocks come from the chunks, 31 to a chunk.
    let mut keep: Vec<Box<[u8; 65536]>> = Vec::new();
    let grow_to = |chunks: usize, keep: &mut Vec<Box<[u8; 65536]>>| {
        while chunks_mapped(&stats()) < chunks {
            keep.push(Box::new([3u8; 65536]));
            assert!(keep.len() < 512 * MIB / 65536, "512 MiB of blocks mapped too few chunks: {:?}", stats());
        }
    };
    // 16 MiB live or more: every fresh chunk would ask.
    while stats().live_bytes < 16 * MIB {
        keep.push(Box::new([3u8; 65536]));
    }
    let at = fiberalloc::__internals::global_turn_huge_pages_off();
    let off = stats();
    assert!(off.huge_pages_slow && at >= chunks_mapped(&off) + 32, "retry at {at}: {off:?}");
    grow_to(at - 1, &mut keep);
    let before = stats();
    assert_eq!(before.huge_chunks, off.huge_chunks, "a chunk asked while the advice was off: {before:?}");
    grow_to(at, &mut keep);
    let s = stats();
    assert_eq!(s.huge_chunks, off.huge_chunks + 1, "the chunk at the retry point did not ask: {s:?}");
    let blocks = keep.len();
    drop(keep);
    format!(
        "off at {} chunks, {} fresh chunks not advised, chunk {at} asked again ({}; {blocks} blocks)",
        chunks_mapped(&off),
        at - 1 - chunks_mapped(&off),
        if s.huge_pages_slow { "still slow: off again" } else { "quick: advice back on" }
    )
}

/// The memory map sees the thread's chunk and the free chunks, and the
/// picture of it parses.
fn memory_map() -> String {
    // With the thread's cache of freed blocks empty, a new block is bumped
    // from the thread's current chunk.
    GLOBAL.flush_thread_cache();
    let keep: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([1u8; 100])).collect();
    let last = Box::new([2u8; 40]);
    let map = GLOBAL.memory_map();
    let s = stats();
    let current: Vec<_> = map.chunks.iter().filter(|c| c.state == ChunkState::Current).collect();
    // Two: one for blocks of up to 64 bytes, one for larger ones.
    assert_eq!(current.len(), 2, "{map:?}");
    let inside = |at: usize, len: usize| {
        current.iter().position(|c| c.addr < at && at + len <= c.addr + c.header + c.live)
    };
    let small = inside(&*last as *const [u8; 40] as usize, 40);
    let medium = inside(&**keep.last().unwrap() as *const [u8; 100] as usize, 100);
    assert!(small.is_some() && medium.is_some() && small != medium, "{small:?} {medium:?} in {current:?}");
    let free =
        map.chunks.iter().filter(|c| matches!(c.state, ChunkState::Spare | ChunkState::Decommitted)).count();
    assert!(free <= s.chunks_cached + s.chunks_decommitted + 64, "{free} free chunks drawn, stats {s:?}");
    assert!(map.chunks.iter().all(|c| c.size() == GlobalArena::CHUNK_SIZE));
    let svg = fiberalloc::report::svg(&map);
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let strips = doc.descendants().filter(|n| n.attribute("class") == Some("chunk")).count();
    assert_eq!(strips, map.chunks.len());
    drop((keep, last));
    format!("{} strips ({free} free chunks)", strips)
}

/// A relay of short-lived threads, each replacing blocks of one array at
/// random and handing it to the next (larson's pattern): each thread takes
/// over the chunk its predecessor left half used and adopts the blocks
/// freed in the chunks of threads that exited, so memory stays bounded by
/// the live set, not by the number of threads.
fn relay_of_short_lived_threads() -> String {
    let slots = scale(4000).max(64);
    let threads = scale(400).max(8);
    let per_thread = slots / 4;
    let before = stats();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut array: Vec<Vec<u8>> = (0..slots).map(|i| vec![1u8; 16 + i % 480]).collect();
    for _ in 0..threads {
        let mut a = array;
        let s = seed;
        let (a2, s2) = thread::spawn(move || {
            let mut s = s;
            for _ in 0..per_thread {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let r = (s >> 33) as usize;
                a[r % slots] = vec![2u8; 16 + (r / slots) % 480];
            }
            (a, s)
        })
        .join()
        .unwrap();
        array = a2;
        seed = s2;
    }
    let peak_growth = stats().committed_bytes.saturating_sub(before.committed_bytes);
    let live: usize = array.iter().map(Vec::len).sum();
    drop(array);
    // Without take-over and adoption every thread left two fresh chunks
    // behind, pinned by the blocks it made: hundreds of MiB for 400. With
    // them, but with each thread's cache emptied onto the chunks' lists at
    // exit (adopted back a batch per slow path), 14 to 18 MiB.
    assert!(peak_growth <= 10 * MIB, "{threads} threads grew committed memory by {} MiB", peak_growth / MIB);
    format!(
        "{threads} threads, {slots} slots ({} KiB live): committed grew {} MiB",
        live >> 10,
        peak_growth / MIB
    )
}

fn main() {
    let started = stats();
    // First, while the free list is empty: it maps a chunk with little live.
    check("huge pages once 16 MiB are live", huge_pages_once_16_mib_live);
    check("huge pages tried again after a slow one", huge_pages_tried_again);
    check("libraries (serde_json, regex, collections)", libraries);
    check("2,000,000 boxes freed on another thread", boxes_across_threads);
    check("1,000 short-lived threads", short_lived_threads);
    check("stragglers kept by a consumer", stragglers);
    check("blocks freed elsewhere reused around a straggler", reuse_around_a_straggler);
    check("four threads passing blocks around, some kept long", passing_blocks_around);
    check("the thread cache reuses freed blocks", thread_cache_reuses_freed_blocks);
    check("exited threads leave their caches to the next", exited_threads_leave_their_caches);
    check("a teardown frees to the chunks", teardown_frees_to_chunks);
    check("growth in place across the prefaulted part", growth_in_place_across_prefault);
    check("prefaulting only once a thread has filled a chunk", prefault_after_a_full_chunk);
    check("churn with a bounded live set", churn);
    check("512 MiB block returns its RSS", big_block);
    check("freed large blocks kept for the next of their length", large_blocks_kept);
    check("alignments up to 2 MiB", alignments);
    check("impossible sizes", impossible_sizes);
    check("alloc_zeroed after reuse", zeroed_reuse);
    check("alloc_zeroed from recycled and decommitted chunks", zeroed_after_recycling);
    check("allocation during thread teardown", allocation_in_teardown);
    check("memory map of this thread's chunks", memory_map);
    check("stats() from a monitoring thread", monitoring_thread);
    // Last: it leaves half-used chunks for others to take over, which the
    // checks of where a fresh chunk's first block lies do not expect.
    check("a relay of short-lived threads", relay_of_short_lived_threads);

    let end = stats();
    assert!(end.allocation_count > started.allocation_count && end.free_count > started.free_count);
    // The main thread's cache of freed blocks pins chunks until flushed.
    GLOBAL.flush_thread_cache();
    let flushed = stats();
    assert!(flushed.pinned_bytes <= end.pinned_bytes, "{end:?} -> {flushed:?}");
    println!(
        "after flushing the main thread's cache: {} chunks in use (was {})",
        flushed.chunks_in_use, end.chunks_in_use
    );
    println!("stats at the end: {end:?}");
}
