//! [`BlockPool`]: fixed-size blocks carved from mapped chunks, with a free
//! list and optional guard pages between blocks.
//!
//! A pool maps its memory a chunk at a time (several blocks per mapping,
//! about 1 MiB or one block, whichever is larger) and hands blocks out
//! from a free list first, then from the newest chunk's unused tail; both
//! are O(1). With guard pages, every block has a page below it that faults
//! on any access (a `MADV_GUARD_INSTALL` marker where the kernel has them,
//! so the chunk stays one VMA; `mprotect` otherwise), and blocks start on
//! page boundaries. Blocks are never unmapped one by one: the chunks go
//! back to the OS when the pool is dropped.
//!
//! [`StackPool`](crate::stack::StackPool) keeps its stacks in one of these
//! per size class.

use crate::region::Region;
use crate::sync::Mutex;
use crate::sys;
use std::io;
use std::ptr::NonNull;

/// How a [`BlockPool`] lays out and prepares its blocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockPoolOptions {
    /// A guard page below every block (blocks are then page-aligned and
    /// their size rounded up to pages). Default: no.
    pub guard_pages: bool,
    /// Blocks to map when the pool is made, so the first `get`s map
    /// nothing. Default: 0.
    pub prealloc: usize,
    /// Blocks per mapping; 0 picks about 1 MiB worth (at least one).
    pub blocks_per_chunk: usize,
}

struct Inner {
    chunks: Vec<Region>,
    /// Blocks given back, reused last-in first-out.
    free: Vec<NonNull<u8>>,
    /// The next never-used block of the newest chunk (with the chunk's
    /// provenance), and how many remain.
    next: *mut u8,
    left: usize,
}

// SAFETY: the raw pointers are addresses inside the pool's own chunks,
// which the `Region`s own; moving them between threads moves nothing.
unsafe impl Send for Inner {}

/// A pool of fixed-size blocks (see the module docs).
///
/// ```
/// use fiberalloc::pool::{BlockPool, BlockPoolOptions};
///
/// let pool = BlockPool::with_options(
///     1000,
///     BlockPoolOptions { guard_pages: true, prealloc: 8, ..Default::default() },
/// )
/// .unwrap();
/// let a = pool.get().unwrap();
/// // SAFETY: a fresh block of at least 1000 writable bytes.
/// unsafe { a.as_ptr().write_bytes(7, 1000) };
/// // SAFETY: `a` came from this pool and is not used again.
/// unsafe { pool.put(a) };
/// assert_eq!(pool.get().unwrap(), a); // the free list comes first
/// ```
pub struct BlockPool {
    inner: Mutex<Inner>,
    block_size: usize,
    /// Distance between block starts (guard included).
    stride: usize,
    /// Bytes of guard below each block (0 or a page).
    guard: usize,
    per_chunk: usize,
    /// Register each guard page with the overflow reporter (stack pools).
    report: bool,
}

impl BlockPool {
    /// A pool of `block_size`-byte blocks with default options.
    pub fn new(block_size: usize) -> io::Result<BlockPool> {
        Self::with_options(block_size, BlockPoolOptions::default())
    }

    /// A pool of `block_size`-byte blocks. Errors: a zero or unrepresentable
    /// block size (`InvalidInput`), or the OS refusing the preallocation.
    pub fn with_options(block_size: usize, options: BlockPoolOptions) -> io::Result<BlockPool> {
        Self::build(block_size, options, false)
    }

    pub(crate) fn build(block_size: usize, options: BlockPoolOptions, report: bool) -> io::Result<BlockPool> {
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "block size out of range");
        if block_size == 0 || block_size > isize::MAX as usize / 2 {
            return Err(invalid());
        }
        let page = sys::page_size();
        let (guard, stride) = if options.guard_pages {
            let size = crate::align::align_up(block_size, page).ok_or_else(invalid)?;
            (page, size + page)
        } else {
            (0, crate::align::align_up(block_size, 16).ok_or_else(invalid)?)
        };
        let per_chunk = if options.blocks_per_chunk != 0 {
            options.blocks_per_chunk
        } else {
            ((1 << 20) / stride).max(1)
        };
        stride.checked_mul(per_chunk).filter(|&b| b <= isize::MAX as usize / 2).ok_or_else(invalid)?;
        let pool = BlockPool {
            inner: Mutex::new(Inner {
                chunks: Vec::new(),
                free: Vec::new(),
                next: std::ptr::null_mut(),
                left: 0,
            }),
            block_size,
            stride,
            guard,
            per_chunk,
            report,
        };
        if options.prealloc != 0 {
            let mut inner = pool.lock();
            let mut remaining = options.prealloc;
            while remaining != 0 {
                let n = remaining.min(per_chunk);
                pool.map_chunk(&mut inner, n)?;
                // Move the fresh chunk's blocks to the free list (in address
                // order, lowest handed out first).
                for _ in 0..n {
                    let b = inner.next;
                    inner.next = b.wrapping_add(stride);
                    inner.left -= 1;
                    // SAFETY: `b` is a block start inside the chunk just
                    // mapped, so not null.
                    inner.free.push(unsafe { NonNull::new_unchecked(b) });
                }
                remaining -= n;
            }
            inner.free.reverse();
            drop(inner);
        }
        Ok(pool)
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-changed
        // in a way that matters (at worst a block is lost), so a poisoned
        // lock is used as it is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Maps a chunk of `n` blocks (installing their guard pages) and makes
    /// it the one new blocks are carved from.
    fn map_chunk(&self, inner: &mut Inner, n: usize) -> io::Result<()> {
        let region = Region::new(self.stride * n, false, false)?;
        let start = region.start().as_ptr();
        if self.guard != 0 {
            for i in 0..n {
                let g = start.wrapping_add(i * self.stride);
                // SAFETY: `g..g + guard` is a page inside the region just
                // mapped, from which nothing has been handed out.
                if let Err(e) = unsafe { sys::guard(NonNull::new_unchecked(g), self.guard) } {
                    // The region unmaps itself as it drops.
                    self.unregister_guards(start as usize, i);
                    return Err(e);
                }
                if self.report {
                    crate::guards::register(g as usize, g as usize + self.stride);
                }
            }
        }
        inner.next = start.wrapping_add(self.guard);
        inner.left = n;
        inner.chunks.push(region);
        Ok(())
    }

    fn unregister_guards(&self, start: usize, n: usize) {
        if self.report {
            for i in 0..n {
                crate::guards::unregister(start + i * self.stride);
            }
        }
    }

    /// A block of [`block_size`](Self::block_size) bytes: a freed one if
    /// any, else a new one (mapping a chunk when the last is used up). Its
    /// contents are whatever the last user left (zeros when new).
    pub fn get(&self) -> io::Result<NonNull<u8>> {
        self.get_counted().map(|(b, _)| b)
    }

    /// [`get`](Self::get), also saying whether the block is new.
    pub(crate) fn get_counted(&self) -> io::Result<(NonNull<u8>, bool)> {
        let mut inner = self.lock();
        if let Some(b) = inner.free.pop() {
            return Ok((b, false));
        }
        if inner.left == 0 {
            self.map_chunk(&mut inner, self.per_chunk)?;
        }
        let b = inner.next;
        inner.next = b.wrapping_add(self.stride);
        inner.left -= 1;
        // SAFETY: `b` is a block start inside a mapped chunk: not null.
        Ok((unsafe { NonNull::new_unchecked(b) }, true))
    }

    /// Gives a block back.
    ///
    /// # Safety
    /// `block` came from [`get`](Self::get) on this pool, has not been
    /// given back since, and is not used after this call.
    pub unsafe fn put(&self, block: NonNull<u8>) {
        self.lock().free.push(block);
    }

    /// The usable size of each block, as asked.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Bytes of guard below each block (0 without guard pages).
    pub fn guard_size(&self) -> usize {
        self.guard
    }

    /// Bytes mapped by the pool (guards included).
    pub fn mapped_bytes(&self) -> usize {
        self.lock().chunks.iter().map(|r| r.usable_size()).sum()
    }

    /// Blocks on the free list.
    pub fn free_blocks(&self) -> usize {
        self.lock().free.len()
    }
}

impl Drop for BlockPool {
    fn drop(&mut self) {
        let chunks = std::mem::take(&mut self.inner.get_mut().unwrap_or_else(|e| e.into_inner()).chunks);
        for r in &chunks {
            self.unregister_guards(r.start().as_ptr() as usize, r.usable_size() / self.stride);
        }
        // The regions unmap themselves (guards included) as they drop.
    }
}

impl core::fmt::Debug for BlockPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlockPool")
            .field("block_size", &self.block_size)
            .field("guard", &self.guard)
            .field("mapped_bytes", &self.mapped_bytes())
            .field("free_blocks", &self.free_blocks())
            .finish()
    }
}
