//! The `GlobalArena` rows of `scripts/callgrind.sh`: `probe-global ROW N`
//! runs N operations of ROW with `GlobalArena` as the global allocator.
//!
//! - `alloc`: N blocks of 48 bytes, kept (the bump path);
//! - `free`: `alloc`, then every block freed in the order it was made
//!   (the thread cache's push); the script subtracts `alloc`;
//! - `ring`: a ring of 64 live blocks of 48 bytes, each step frees the
//!   oldest and allocates one (a pop and a push of the cache);
//! - `medium`: N blocks of 200 bytes, kept (the other owner's bump);
//! - `remote`: `alloc` on a second thread, every block freed on this one
//!   while that thread lives on (the run of remote frees); the script
//!   subtracts `alloc`;
//! - `exited`: as `remote`, with the second thread gone before the frees
//!   (its chunks have no owner: the first 256 KiB are cached, the rest go
//!   to the chunks, as in a teardown);
//! - `realloc`: a block grown by 8 bytes N times (the cursor moves).
//!
//! The script runs each twice with different N and divides the difference,
//! so start-up costs (the thread's first chunk, the vector of pointers)
//! cancel out.
use std::alloc::{alloc, dealloc, realloc, Layout};
use std::hint::black_box;

#[global_allocator]
static GLOBAL: fiberalloc::GlobalArena = fiberalloc::GlobalArena::new();

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let row = args[0].as_str();
    let n: usize = args[1].parse().expect("N");
    let small = Layout::from_size_align(48, 8).unwrap();
    let medium = Layout::from_size_align(200, 8).unwrap();
    // SAFETY, for every unsafe block below: `alloc` and `realloc` are given
    // layouts of non-zero size, and each block is freed (or reallocated)
    // once, with the layout it has, and never used afterwards.
    match row {
        "alloc" => black_box(make(n, small)).iter().for_each(|_| ()),
        "free" => {
            for p in make(n, small) {
                unsafe { dealloc(black_box(p), small) };
            }
        }
        "ring" => {
            let mut ring = make(64, small);
            for i in 0..n {
                let slot = i % 64;
                unsafe { dealloc(black_box(ring[slot]), small) };
                ring[slot] = black_box(unsafe { alloc(small) });
            }
            black_box(&ring);
        }
        "medium" => black_box(make(n, medium)).iter().for_each(|_| ()),
        "remote" => {
            let (tx, rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let maker = std::thread::spawn(move || {
                tx.send(make(n, small).into_iter().map(|p| p as usize).collect::<Vec<_>>()).unwrap();
                // Alive until the blocks are freed: their chunk has an owner.
                done_rx.recv().unwrap();
            });
            let made = rx.recv().unwrap();
            for p in made {
                // SAFETY: each block was allocated by the maker with
                // `small` and is freed once, here.
                unsafe { dealloc(black_box(p as *mut u8), small) };
            }
            done_tx.send(()).unwrap();
            maker.join().unwrap();
        }
        "exited" => {
            let made = std::thread::spawn(move || {
                make(n, small).into_iter().map(|p| p as usize).collect::<Vec<_>>()
            })
            .join()
            .unwrap();
            for p in made {
                // SAFETY: as in `remote`: allocated with `small`, freed once.
                unsafe { dealloc(black_box(p as *mut u8), small) };
            }
        }
        "realloc" => {
            // Grown 8 bytes at a time up to 128 KiB (below the large
            // threshold), then shrunk back to 8 in one call.
            let mut size = 8;
            let mut p = unsafe { alloc(Layout::from_size_align(size, 8).unwrap()) };
            for _ in 0..n {
                let old = Layout::from_size_align(size, 8).unwrap();
                size = if size == 128 << 10 { 8 } else { size + 8 };
                p = black_box(unsafe { realloc(p, old, size) });
            }
            unsafe { dealloc(p, Layout::from_size_align(size, 8).unwrap()) };
        }
        _ => eprintln!("unknown row: {row}"),
    }
}

/// N blocks of `layout`, kept in a vector made before them.
fn make(n: usize, layout: Layout) -> Vec<*mut u8> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(black_box(unsafe { alloc(layout) }));
    }
    v
}
