//! The workloads of the global-allocator comparison. Each `global-*`
//! binary installs one allocator and includes this file; `main` runs the
//! workload named on the command line once and prints
//! `<milliseconds> <peak RSS in KiB>`. `scripts/global-bench.py` runs every
//! binary and workload round-robin and prints the medians.
//!
//! (i) `strings`: 2,000,000 short strings pushed into a `Vec<String>`.
//! (ii) `btree`: 1,000,000 inserts of pseudo-random keys into a
//!     `BTreeMap<u64, Vec<u8>>` (values of 0–63 bytes).
//! (iii) `json`: parsing a 50 MB JSON document into `serde_json::Value`
//!     (the text is generated before the clock starts).
//! (iv) `channel`: 5,000,000 `Box<[u8; 64]>` sent from one thread to
//!     another through `std::sync::mpsc::channel` and dropped there.
//! (v) `churn`: two threads, each replacing random slots of a 10,000-slot
//!     table with `Vec<u8>`s of random size (0–1023 bytes), 2,000,000 times
//!     (a bounded live set of about 5 MB per thread, random lifetimes).
//!
//! Each timing includes dropping what the workload built.
//!
//! `threads` (no target either): 64 short-lived threads, each churning a
//! small table of its own, for the cost of thread start and exit.
//! `stragglers` (no target): (iv)'s boxes through a bounded channel, one in
//! 1,000 kept a while by the consumer, which shows what blocks that outlive
//! their neighbours cost each allocator's memory.
//!
//! Three variants of (iv) help read it (they have no target): `bounded`,
//! the same traffic through `std::sync::mpsc::sync_channel(100_000)`;
//! `split`, which sends every box before the consumer starts and prints
//! the producer's and the consumer's time apart; and `lag`, which prints
//! how far behind the producer the consumer ran.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

/// A xorshift generator: the same sequence for every allocator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn strings() {
    let mut v = Vec::new();
    for i in 0..2_000_000u64 {
        v.push(format!("s{i}"));
    }
    black_box(&v);
}

fn btree() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut map = BTreeMap::new();
    for _ in 0..1_000_000 {
        let k = rng.next();
        map.insert(k, vec![k as u8; (k >> 58) as usize]);
    }
    black_box(&map);
}

/// About 50 MB of JSON: an array of records with strings, numbers, nested
/// arrays and objects.
fn json_text() -> String {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut s = String::with_capacity(52 << 20);
    s.push('[');
    let mut i = 0u64;
    while s.len() < 50_000_000 {
        if i > 0 {
            s.push(',');
        }
        let r = rng.next();
        s.push_str(&format!(
            r#"{{"id":{i},"name":"user {i} of the test set","score":{}.{},"active":{},"tags":["t{}","t{}","t{}"],"pos":{{"x":{},"y":{}}}}}"#,
            r % 1000,
            r % 97,
            r.is_multiple_of(2),
            r % 13,
            r % 17,
            r % 19,
            r % 4096,
            (r >> 12) % 4096
        ));
        i += 1;
    }
    s.push(']');
    s
}

/// The consumer of (iv) and its variants: receives every box, reads a
/// byte of it and drops it (a free on another thread than the one that
/// allocated it).
fn consume(rx: impl IntoIterator<Item = Box<[u8; 64]>>) -> u64 {
    let mut sum = 0u64;
    for b in rx {
        sum += b[0] as u64;
    }
    sum
}

/// The producer of (iv) and its variants.
fn produce(mut send: impl FnMut(Box<[u8; 64]>)) {
    for i in 0..5_000_000u64 {
        send(Box::new([i as u8; 64]));
    }
}

fn channel() {
    let (tx, rx) = std::sync::mpsc::channel::<Box<[u8; 64]>>();
    let consumer = std::thread::spawn(move || consume(rx));
    produce(|b| tx.send(b).unwrap());
    drop(tx);
    black_box(consumer.join().unwrap());
}

/// (iv) through a bounded channel (`sync_channel(100_000)`): the producer
/// waits when it is that far ahead (not one of the issue's workloads; see
/// benches/README.md).
fn bounded() {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Box<[u8; 64]>>(100_000);
    let consumer = std::thread::spawn(move || consume(rx));
    produce(|b| tx.send(b).unwrap());
    drop(tx);
    black_box(consumer.join().unwrap());
}

/// (iv)'s two halves one after the other: every box sent before the
/// consumer starts, so each side's own cost per message shows, without
/// the other running at the same time. Prints both times to stderr.
fn split() {
    let (tx, rx) = std::sync::mpsc::channel::<Box<[u8; 64]>>();
    let t0 = Instant::now();
    produce(|b| tx.send(b).unwrap());
    drop(tx);
    let produced = t0.elapsed();
    let consumer = std::thread::spawn(move || {
        let t1 = Instant::now();
        (consume(rx), t1.elapsed())
    });
    let (sum, consumed) = consumer.join().unwrap();
    black_box(sum);
    eprintln!(
        "producer {:.1} ms, consumer {:.1} ms",
        produced.as_secs_f64() * 1e3,
        consumed.as_secs_f64() * 1e3
    );
}

/// One thread's churn: `replacements` times, a random slot of a table of
/// `slots` gets a fresh `Vec<u8>` of 0–1023 bytes (the old one is freed).
fn churn_table(seed: u64, slots: usize, replacements: usize) {
    let mut rng = Rng(seed);
    let mut table: Vec<Vec<u8>> = (0..slots).map(|_| Vec::new()).collect();
    for _ in 0..replacements {
        let r = rng.next();
        let i = (r % slots as u64) as usize;
        table[i] = vec![r as u8; ((r >> 32) % 1024) as usize];
    }
    black_box(&table);
}

fn churn() {
    std::thread::scope(|s| {
        s.spawn(|| churn_table(0x1234_5678_9ABC_DEF1, 10_000, 2_000_000));
        s.spawn(|| churn_table(0x0FED_CBA9_8765_4321, 10_000, 2_000_000));
    });
}

/// (iv) with the consumer sampling how far behind the producer it is
/// (every 1,024th box, against a count the producer stores after each
/// send: one relaxed store per box more than (iv)). Prints a histogram of
/// the lag, in boxes, to stderr.
fn lag() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static SENT: AtomicU64 = AtomicU64::new(0);
    const BOUNDS: [u64; 5] = [4, 32, 256, 4096, 65536];
    let (tx, rx) = std::sync::mpsc::channel::<Box<[u8; 64]>>();
    let consumer = std::thread::spawn(move || {
        let (mut sum, mut n, mut hist) = (0u64, 0u64, [0u64; BOUNDS.len() + 1]);
        for b in rx {
            sum += b[0] as u64;
            n += 1;
            if n % 1024 == 0 {
                let behind = SENT.load(Relaxed).saturating_sub(n);
                hist[BOUNDS.iter().take_while(|&&b| behind >= b).count()] += 1;
            }
        }
        (sum, hist)
    });
    let mut sent = 0;
    produce(|b| {
        tx.send(b).unwrap();
        sent += 1;
        SENT.store(sent, Relaxed);
    });
    drop(tx);
    let (sum, hist) = consumer.join().unwrap();
    black_box(sum);
    eprintln!("boxes behind, 0-3 / 4-31 / 32-255 / 256-4095 / 4096-65535 / more: {hist:?}");
}

/// 64 short-lived threads, started together, each replacing random slots
/// of its own 1,000-slot table with `Vec<u8>`s of 0–1023 bytes 20,000
/// times (a live set of about 0.5 MB per thread): what a program that
/// hands work to fresh threads (or a pool of many) asks of thread start
/// and exit.
fn threads() {
    std::thread::scope(|s| {
        for t in 0..64u64 {
            s.spawn(move || {
                churn_table(0x1234_5678_9ABC_DEF1 ^ t.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1000, 20_000)
            });
        }
    });
}

/// (iv)'s traffic through a bounded channel, with a consumer that keeps
/// one box in 1,000 in a ring of the last 1,000 kept (a cache of recent
/// messages: about 64 KB live) and drops the rest: stragglers that
/// outlive their neighbours, freed on another thread than the one that
/// allocated them.
fn stragglers() {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Box<[u8; 64]>>(10_000);
    let consumer = std::thread::spawn(move || {
        let mut kept = std::collections::VecDeque::with_capacity(1001);
        let mut sum = 0u64;
        for (n, b) in rx.into_iter().enumerate() {
            sum += b[0] as u64;
            if n % 1000 == 999 {
                kept.push_back(b);
                if kept.len() > 1000 {
                    kept.pop_front();
                }
            }
        }
        sum + kept.len() as u64
    });
    produce(|b| tx.send(b).unwrap());
    drop(tx);
    black_box(consumer.join().unwrap());
}

/// Peak resident set size (`VmHWM`) in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

pub fn main() {
    let name = std::env::args()
        .nth(1)
        .expect("workload: strings, btree, json, channel, churn, bounded, split or lag");
    let text = if name == "json" { Some(json_text()) } else { None };
    let start = Instant::now();
    match name.as_str() {
        "strings" => strings(),
        "btree" => btree(),
        "json" => {
            let v: serde_json::Value = serde_json::from_str(text.as_deref().unwrap()).unwrap();
            black_box(&v);
        }
        "channel" => channel(),
        "threads" => threads(),
        "stragglers" => stragglers(),
        "churn" => churn(),
        "bounded" => bounded(),
        "split" => split(),
        "lag" => lag(),
        other => panic!("unknown workload {other}"),
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!("{ms:.1} {}", peak_rss_kib());
}
