//! The alignment matrix: every power-of-two alignment from 1 to 2^16
//! against sizes 0, 1, align-1, align, align+1, page and page+1.
mod common;
use common::*;
use core::alloc::Layout;
use fiberalloc::{policy::Policy, Arena};

const PAGE: usize = 4096;

fn sizes(align: usize) -> Vec<usize> {
    let mut v = vec![0, 1, align - 1, align, align + 1, PAGE, PAGE + 1];
    v.sort();
    v.dedup();
    v
}

fn alignment_matrix<P: Policy>() {
    let arena = Arena::<P>::default();
    let max_shift = if cfg!(miri) { 12 } else { 16 };
    let mut blocks = Vec::new();
    for shift in 0..=max_shift {
        let align = 1usize << shift;
        for size in sizes(align) {
            let layout = Layout::from_size_align(size, align).unwrap();
            let p = arena.try_alloc_layout(layout).expect("allocation failed");
            assert_eq!(p.as_ptr() as usize % align, 0, "size {size} align {align} misaligned");
            if size > 0 {
                assert!(arena.contains(p.as_ptr()), "block outside the arena");
                assert!(arena.contains(p.as_ptr().wrapping_add(size - 1)), "block end outside");
            }
            let id = blocks.len();
            // SAFETY: the block holds `size` bytes.
            unsafe { fill(p.as_ptr(), size, id) };
            blocks.push((p.as_ptr(), size));
        }
        arena.validate().unwrap();
    }
    for (id, &(p, size)) in blocks.iter().enumerate() {
        // SAFETY: blocks stay valid until the arena is reset.
        unsafe { check(p, size, id) };
    }
    assert_disjoint(blocks.iter().map(|&(p, s)| p as usize..p as usize + s).collect());
    let stats = arena.stats();
    let requested: usize = blocks.iter().map(|b| b.1).sum();
    if P::EXACT_STATS {
        assert_eq!(stats.allocated_bytes, requested);
    } else {
        // Fast counts the padding of its blocks as allocated.
        assert!(stats.allocated_bytes >= requested);
        assert!(stats.allocated_bytes <= requested + blocks.iter().map(|b| b.1 + 8).sum::<usize>() * 2);
    }
    // Counted under every policy.
    assert_eq!(stats.allocation_count, blocks.len() as u64);
    assert!(stats.reserved_bytes >= requested + stats.padding_bytes);
}

fn typed_values_are_aligned<P: Policy>() {
    #[repr(align(64))]
    #[derive(Clone, Copy, PartialEq, Debug)]
    struct Line([u8; 64]);
    #[repr(align(4096))]
    #[derive(Clone, Copy, PartialEq, Debug)]
    struct Page(u8);
    let arena = Arena::<P>::default();
    let a = arena.alloc(1u8);
    let b = arena.alloc(Line([7; 64]));
    let c = arena.alloc(2u16);
    let d = arena.alloc(Page(9));
    let e = arena.alloc(());
    assert_eq!((b as *mut Line as usize) % 64, 0);
    assert_eq!((c as *mut u16 as usize) % 2, 0);
    assert_eq!((d as *mut Page as usize) % 4096, 0);
    assert_eq!((e as *mut () as usize) % core::mem::align_of::<()>(), 0);
    assert_eq!((*a, *b, *c, *d), (1, Line([7; 64]), 2, Page(9)));
}

fn simd_and_aligned_helpers<P: Policy>() {
    let arena = Arena::<P>::default();
    for size in [0, 1, 63, 64, 65, 1000] {
        let p = arena.alloc_simd(size);
        assert_eq!(p.as_ptr() as usize % 64, 0);
        let q = arena.alloc_aligned(size, 256);
        assert_eq!(q.as_ptr() as usize % 256, 0);
    }
    assert!(arena.try_alloc_aligned(8, 3).is_err(), "non-power-of-two alignment");
    assert!(arena.try_alloc_aligned(8, 0).is_err(), "zero alignment");
    let r = std::panic::catch_unwind(|| Arena::<P>::default().alloc_aligned(8, 24));
    assert!(r.is_err(), "alloc_aligned must reject alignment 24");
}

per_policy!(alignment_matrix, typed_values_are_aligned, simd_and_aligned_helpers);
