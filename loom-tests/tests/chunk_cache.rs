//! The process-wide chunk cache (`SlotCache`): pushes and pops from several
//! threads hand each pointer out exactly once, never lose one, and publish
//! the memory behind a pointer to whoever pops it.
//!
//! Weakening checked when this model was written: with `push`'s exchange
//! made `Relaxed` instead of `Release`, `publishes_contents` fails with a
//! loom data-race report on the `UnsafeCell`; with `pop` made a `load` +
//! `store(null)` instead of a compare-exchange, `each_pointer_once` fails
//! with a pointer handed out twice.
#![cfg(fiberalloc_loom)]

use fiberalloc::loom_api::SlotCache;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

fn fake(i: usize) -> *mut u8 {
    core::ptr::without_provenance_mut(i * 4096)
}

#[test]
fn each_pointer_once() {
    loom::model(|| {
        let cache = Arc::new(SlotCache::<2>::new());
        cache.push(fake(1)).unwrap();
        let c = cache.clone();
        let t = thread::spawn(move || {
            let got = c.pop(|_| true);
            let pushed = c.push(fake(2)).is_ok();
            (got, pushed)
        });
        let mine = cache.pop(|_| true);
        let (theirs, pushed) = t.join().unwrap();
        let mut all: Vec<*mut u8> = [mine, theirs].into_iter().flatten().collect();
        while let Some(p) = cache.pop(|_| true) {
            all.push(p);
        }
        all.sort();
        let mut expect = vec![fake(1)];
        if pushed {
            expect.push(fake(2));
        }
        assert_eq!(all, expect, "a pointer was lost or handed out twice");
    });
}

#[test]
fn pop_filters_by_key() {
    loom::model(|| {
        let cache = Arc::new(SlotCache::<2>::new());
        let c = cache.clone();
        let t = thread::spawn(move || c.push(fake(3)).is_ok());
        cache.push(fake(4)).unwrap();
        assert!(t.join().unwrap());
        // Only even pages are accepted: 4 comes out, 3 stays.
        assert_eq!(cache.pop(|p| (p as usize / 4096) % 2 == 0), Some(fake(4)));
        assert_eq!(cache.pop(|p| (p as usize / 4096) % 2 == 0), None);
        assert_eq!(cache.pop(|_| true), Some(fake(3)));
    });
}

#[test]
fn publishes_contents() {
    loom::model(|| {
        let cache = Arc::new(SlotCache::<1>::new());
        let c = cache.clone();
        let producer = thread::spawn(move || {
            let cell = Box::into_raw(Box::new(UnsafeCell::new(0u64)));
            // SAFETY: the cell is fresh and only this thread has it.
            unsafe { (*cell).with_mut(|p| *p = 42) };
            c.push(cell.cast()).unwrap();
        });
        let got = loop {
            if let Some(p) = cache.pop(|_| true) {
                break p;
            }
            thread::yield_now();
        };
        let cell = got.cast::<UnsafeCell<u64>>();
        // SAFETY: the pop handed the cell over; loom reports a race if the
        // push did not publish the write.
        let v = unsafe { (*cell).with(|p| *p) };
        assert_eq!(v, 42);
        // SAFETY: made by Box::into_raw above, now owned here.
        drop(unsafe { Box::from_raw(cell) });
        producer.join().unwrap();
    });
}
