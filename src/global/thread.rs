//! A thread's allocator state: its two owners, its cache and counters,
//! its runs of remote frees; how it is reached, registered and retired at
//! thread exit.
//!
//! The state is a `const`-initialised thread-local without a destructor
//! ([`with_local`]), so reaching it never allocates or registers anything.
//! A thread's first slow path arms a POSIX thread key ([`Local::activate`])
//! whose destructor flushes the cache, retires both chunks and folds the
//! counters into the shared ones; allocations after that go through the
//! shared fallback owner.

use super::abandon::abandon;
use super::cache::{ThreadCache, CACHE_FLUSH_BYTES};
use super::chunk::GlobalChunk;
use super::class::SMALL_MAX;
use super::fork::arm_fork_handlers;
use super::owner::Owner;
use super::stats::{Counters, REGISTRY, SHARED_COUNTS};
use crate::sync::Ordering;
use crate::sys;
use core::cell::Cell;
use core::ffi::c_void;
use core::ptr::{self, NonNull};

pub(super) const FRESH: u8 = 0;
pub(super) const ACTIVE: u8 = 1;
pub(super) const EXITED: u8 = 2;

/// A thread's allocator state.
pub(super) struct Local {
    /// The thread's two bump chunks: blocks of at most [`SMALL_MAX`] bytes
    /// (strings, boxes, small vectors) from the first, larger ones (tree
    /// nodes, hash tables, buffers) from the second. Kept apart, a program's
    /// structures of large nodes are packed densely instead of interleaved
    /// with the small objects they point to: a search through a B-tree of
    /// 1,000,000 entries touches a third fewer pages. A block's chunk, not
    /// its size, decides which owner counts its free (a block grown in
    /// place may cross [`SMALL_MAX`]).
    pub(super) owners: [Owner; 2],
    pub(super) cache: ThreadCache,
    pub(super) counters: Counters,
    pub(super) state: Cell<u8>,
    /// A chunk this thread does not bump in, and how many of its blocks the
    /// thread has freed since its last decrement of the chunk's count:
    /// consecutive frees to one chunk (a consumer draining what a producer
    /// made) cost one atomic decrement per run instead of one each. One
    /// run for each owner's sizes, so a consumer freeing small messages
    /// and the larger queue blocks that held them keeps both runs going.
    pub(super) pending: [Cell<*mut GlobalChunk>; 2],
    pub(super) pending_frees: [Cell<usize>; 2],
    /// The blocks of each pending run that may be reused (of cacheable
    /// layouts), linked first to last ([`RemoteList`](super::remote::RemoteList)), for the chunk's
    /// `xfree` list when the run is counted.
    pub(super) run_head: [Cell<*mut u8>; 2],
    pub(super) run_tail: [Cell<*mut u8>; 2],
    /// The descriptor of each run list's first sub-run (see `RemoteList`),
    /// or 0.
    pub(super) run_desc: [Cell<usize>; 2],
    /// The C build's last [`DEFERRED`](super::cabi::DEFERRED) frees, not
    /// yet done (`cabi.rs`), and the slot of the oldest.
    #[cfg(feature = "c-abi")]
    pub(super) deferred: [Cell<*mut u8>; super::cabi::DEFERRED],
    #[cfg(feature = "c-abi")]
    pub(super) deferred_at: Cell<usize>,
}

impl Local {
    /// A fresh thread's state. Every field is zero (null pointers, zero
    /// counts, `FRESH`), so the C build can keep it in zeroed TLS (`.tbss`);
    /// what is not zero for an active thread (the cache's limit) is set by
    /// [`activate`](Self::activate).
    #[cfg_attr(
        all(feature = "c-abi", target_arch = "x86_64", target_os = "linux", not(miri)),
        allow(dead_code, reason = "the C build's TLS is zeroed memory, which equals this")
    )]
    const fn fresh() -> Local {
        Local {
            owners: [Owner::new(), Owner::new()],
            cache: ThreadCache::new(),
            counters: Counters::new(),
            state: Cell::new(FRESH),
            pending: [const { Cell::new(ptr::null_mut()) }; 2],
            pending_frees: [const { Cell::new(0) }; 2],
            run_head: [const { Cell::new(ptr::null_mut()) }; 2],
            run_tail: [const { Cell::new(ptr::null_mut()) }; 2],
            run_desc: [const { Cell::new(0) }; 2],
            #[cfg(feature = "c-abi")]
            deferred: [const { Cell::new(ptr::null_mut()) }; super::cabi::DEFERRED],
            #[cfg(feature = "c-abi")]
            deferred_at: Cell::new(0),
        }
    }
}

#[cfg(not(all(feature = "c-abi", target_arch = "x86_64", target_os = "linux", not(miri))))]
thread_local! {
    static LOCAL: Local = const { Local::fresh() };
}

/// The calling thread's [`Local`], or `Err` when the thread-local cannot be
/// reached. The closure given to `try_with` only takes the address, so it
/// is always inlined (a large closure made `try_with` an out-of-line call
/// on every allocation and free).
#[cfg(not(all(feature = "c-abi", target_arch = "x86_64", target_os = "linux", not(miri))))]
#[inline(always)]
fn local() -> Result<*const Local, ()> {
    LOCAL.try_with(ptr::from_ref).map_err(|_| ())
}

// The C library's thread state, in initial-exec TLS. A `thread_local!` in a
// shared library is reached through a TLS descriptor: a call per `malloc`
// and per `free` (7% of glibc-bench's simple loop). A variable of the
// initial-exec model is an offset from the thread pointer, read once from
// the GOT: two instructions and no call, as mimalloc and glibc's own
// malloc do it. Stable Rust has no `#[thread_local]` or TLS-model switch,
// so the variable is declared in assembly: `Local::fresh()` is all zeros,
// so it lives in `.tbss`. The cost of the model: a library with
// initial-exec TLS must be loaded at startup (`LD_PRELOAD` or linked in);
// `dlopen` of it later may fail for want of static TLS space, as for
// mimalloc's and jemalloc's libraries. Only for the `c-abi` feature on
// x86-64 Linux, outside Miri; everything else keeps `thread_local!`
// (which in an executable is an offset from the thread pointer already).
#[cfg(all(feature = "c-abi", target_arch = "x86_64", target_os = "linux", not(miri)))]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 6",
    ".globl fiberalloc_thread_local",
    ".hidden fiberalloc_thread_local",
    ".type fiberalloc_thread_local,@object",
    ".size fiberalloc_thread_local,{size}",
    "fiberalloc_thread_local:",
    ".zero {size}",
    ".popsection",
    size = const core::mem::size_of::<Local>(),
);

#[cfg(all(feature = "c-abi", target_arch = "x86_64", target_os = "linux", not(miri)))]
const _: () = assert!(core::mem::align_of::<Local>() <= 64);

/// The calling thread's [`Local`] (initial-exec TLS: never `Err`).
#[cfg(all(feature = "c-abi", target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
fn local() -> Result<*const Local, ()> {
    let addr: usize;
    // SAFETY: reads the thread pointer (`%fs:0` holds its own address on
    // x86-64 Linux) and the variable's offset from it, which the dynamic
    // loader wrote into the GOT at load time; nothing is written. The
    // result is the same for every call on a thread, hence `pure`.
    unsafe {
        core::arch::asm!(
            "mov {a}, qword ptr fs:[0]",
            "add {a}, qword ptr [rip + fiberalloc_thread_local@GOTTPOFF]",
            a = out(reg) addr,
            options(pure, readonly, nostack),
        );
    }
    Ok(ptr::without_provenance::<Local>(addr))
}

/// Runs `f` on the calling thread's [`Local`], or returns `Err` when the
/// thread-local cannot be reached.
#[inline(always)]
pub(super) fn with_local<R>(f: impl FnOnce(&Local) -> R) -> Result<R, ()> {
    match local() {
        // SAFETY: the state is const-initialised (or zeroed TLS) and has
        // no destructor, so its storage stays in place for the whole life
        // of the thread, and the reference is used only by this thread
        // during this call.
        Ok(l) => Ok(f(unsafe { &*l })),
        Err(()) => Err(()),
    }
}

impl Local {
    /// The owner that bumps blocks of `size` bytes.
    #[inline(always)]
    pub(super) fn owner_for(&self, size: usize) -> &Owner {
        &self.owners[usize::from(size > SMALL_MAX)]
    }

    /// Whether an owner hint (`GlobalChunk::owner`) names one of this
    /// thread's owners.
    #[inline(always)]
    pub(super) fn owns_hint(&self, hint: usize) -> bool {
        hint.wrapping_sub(ptr::from_ref(&self.owners).addr()) < core::mem::size_of::<[Owner; 2]>()
    }

    /// Frees a block into its chunk's count: in place when it is in the
    /// thread's current chunk, atomically otherwise.
    ///
    /// # Safety
    /// `ptr` is a live small block of `size` bytes in `chunk`.
    #[inline(always)]
    pub(super) unsafe fn free_to_chunk(&self, ptr: *mut u8, size: usize, chunk: *mut GlobalChunk) {
        if let Some(owner) = self.owners.iter().find(|o| o.chunk.get() == chunk) {
            // SAFETY: the block is live and in our chunk (caller).
            unsafe { owner.free_local(ptr, size) };
        } else {
            // Not linked for reuse: this thread owned the chunk (the block
            // comes from its cache, or it frees what it built without
            // allocating), and writing into every block of a teardown
            // cost the strings workload 7%.
            self.count_run(size, chunk);
        }
    }
}

/// Runs at thread exit (a POSIX thread-key destructor): retires the
/// thread's chunk and unregisters its counters.
///
/// # Safety
/// Called by the C library on the exiting thread; the argument is unused.
pub(super) unsafe extern "C" fn on_thread_exit(_: *mut c_void) {
    let _ = with_local(|l| {
        // The frees still deferred first: they may fill the cache.
        #[cfg(feature = "c-abi")]
        super::cabi::drain_deferred(l);
        l.leave_cache();
        l.flush_pending();
        for (side, owner) in l.owners.iter().enumerate() {
            owner.retire_at_exit(side);
            // Nobody else will adopt from the chunks it remembers.
            for slot in &owner.pinned {
                abandon(slot.replace(ptr::null_mut()));
            }
        }
        l.state.set(EXITED);
        let me: *const Counters = &l.counters;
        REGISTRY.with(|r| {
            // Unlink our counters and fold them into the shared ones.
            let mut link: *const Counters = r.0;
            let mut prev: *const Counters = ptr::null();
            while !link.is_null() && link != me {
                prev = link;
                // SAFETY: registered counters are valid under the lock.
                link = unsafe { &*link }.next.load(Ordering::Relaxed);
            }
            if link == me {
                let next = l.counters.next.load(Ordering::Relaxed);
                if prev.is_null() {
                    r.0 = next;
                } else {
                    // SAFETY: as above.
                    unsafe { &*prev }.next.store(next, Ordering::Relaxed);
                }
            }
            l.counters.fold_into(&SHARED_COUNTS);
        });
    });
}

pub(super) static EXIT_KEY: sys::ThreadExitKey = sys::ThreadExitKey::new(on_thread_exit);

impl Local {
    /// First slow path of a thread: arm the exit hook and register the
    /// counters. A thread whose hook cannot be armed uses the fallback
    /// (else its chunk would never be retired).
    #[cold]
    pub(super) fn activate(&self) -> bool {
        arm_fork_handlers();
        // `pthread_atfork` may allocate (glibc's does), and that allocation
        // may have activated this thread already, from inside the call.
        if self.state.get() == ACTIVE {
            return true;
        }
        // SAFETY: any non-null value works; the destructor ignores it.
        let arg = unsafe { NonNull::new_unchecked(ptr::from_ref(self).cast_mut().cast::<c_void>()) };
        if EXIT_KEY.arm(arg).is_err() {
            self.state.set(EXITED);
            return false;
        }
        self.cache.limit.set(CACHE_FLUSH_BYTES);
        let me = ptr::from_ref(&self.counters).cast_mut();
        REGISTRY.with(|r| {
            self.counters.next.store(r.0.cast_mut(), Ordering::Relaxed);
            r.0 = me;
        });
        self.state.set(ACTIVE);
        true
    }
}

/// Gives the calling thread's cached free blocks back to their chunks
/// ([`GlobalArena::flush_thread_cache`](super::GlobalArena::flush_thread_cache)).
pub(super) fn flush_cache() {
    let _ = with_local(|l| {
        if l.state.get() == ACTIVE {
            #[cfg(feature = "c-abi")]
            super::cabi::drain_deferred(l);
            l.flush_cache();
            l.flush_left_caches();
        }
    });
}
