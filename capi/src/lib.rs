//! fiberalloc's `GlobalArena` as the C allocation interface.
//!
//! Built as `libfiberalloc_malloc.so` (load it into any program with
//! `LD_PRELOAD`) and `libfiberalloc_malloc.a` (link it in), with the
//! `capi` profile (`panic = "abort"`):
//!
//! ```sh
//! cargo build -p fiberalloc-malloc --profile capi
//! LD_PRELOAD=target/capi/libfiberalloc_malloc.so python3 -c 'print("hi")'
//! ```
//!
//! The functions keep glibc's semantics:
//!
//! - every block is aligned to 16 (`max_align_t`); `malloc(0)` returns a
//!   unique block that can be freed;
//! - a failure returns null and sets `errno` to `ENOMEM`, and so does a
//!   `calloc` or `reallocarray` whose size overflows; `posix_memalign`
//!   returns `EINVAL` for an alignment that is not a power of two multiple
//!   of `sizeof(void *)`, `aligned_alloc` sets it for one that is not a
//!   power of two, and `memalign` rounds one up;
//! - `free(NULL)` does nothing, and `free` leaves `errno` as it was;
//! - `realloc(p, 0)` frees `p` and returns null (glibc's choice), and
//!   `realloc(NULL, n)` is `malloc(n)`;
//! - `free` of a chunk's block is done eight frees later on the same
//!   thread (it prefetches the block's header meanwhile), or at
//!   `malloc_trim` or the thread's exit, so a double free is reported up to
//!   eight frees late;
//! - a pointer this library did not hand out, given to `free`, `realloc` or
//!   `malloc_usable_size`, is reported on stderr and the process aborts
//!   (as glibc does for pointers it can tell are invalid), rather than
//!   being put on a free list.
//!
//! How `free` finds a block's size without being told is in the crate's
//! `src/global/cabi.rs`. Nothing here panics, and nothing allocates through
//! another allocator; the first call may come from any thread at any
//! moment (the dynamic loader calls `malloc` before `main`).

use core::ffi::c_void;
use fiberalloc::__capi as fa;

/// `max_align_t`'s alignment: every block's.
const MIN_ALIGN: usize = 16;

fn set_errno(e: i32) {
    // SAFETY: `__errno_location` returns the calling thread's `errno`.
    unsafe { *libc::__errno_location() = e };
}

/// `p`, or `ENOMEM` when it is null.
fn or_enomem(p: *mut u8) -> *mut c_void {
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// A block of `size` bytes.
///
/// # Safety
/// None beyond C's: the block is the caller's until `free`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    or_enomem(fa::malloc16(size))
}

/// Gives back a block (nothing for null); `errno` is left as it was (the
/// only calls that can set it, failing `munmap` or `madvise`, put it back:
/// fiberalloc's `sys` layer does that for every call it makes).
///
/// # Safety
/// `p` is null or a live block from this library, not used again.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: the caller's.
    unsafe { fa::free(p.cast()) };
}

/// `free` under its old name.
///
/// # Safety
/// As for [`free`].
#[no_mangle]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: the caller's.
    unsafe { free(p) }
}

/// `n * size` zeroed bytes; null with `ENOMEM` when the product overflows.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(bytes) => or_enomem(fa::malloc(bytes, MIN_ALIGN, true)),
        None => or_enomem(core::ptr::null_mut()),
    }
}

/// Resizes `p` to `size` bytes, keeping its contents; `realloc(NULL, n)` is
/// `malloc(n)`, `realloc(p, 0)` frees `p` and returns null. On failure `p`
/// is untouched and `errno` is `ENOMEM`.
///
/// # Safety
/// `p` is null or a live block from this library; after a success only the
/// result is used.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if size == 0 && !p.is_null() {
        // SAFETY: the caller's.
        unsafe { free(p) };
        return core::ptr::null_mut();
    }
    // SAFETY: the caller's.
    or_enomem(unsafe { fa::realloc(p.cast(), size) })
}

/// `realloc(p, n * size)`, or null with `ENOMEM` when the product
/// overflows (`p` untouched).
///
/// # Safety
/// As for [`realloc`].
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: the caller's.
        Some(bytes) => unsafe { realloc(p, bytes) },
        None => or_enomem(core::ptr::null_mut()),
    }
}

/// A block of `size` bytes aligned to `align`, written to `*out`; 0, or
/// `EINVAL` (an alignment that is not a power of two multiple of
/// `sizeof(void *)`) or `ENOMEM`, with `*out` untouched. `errno` is not
/// changed.
///
/// # Safety
/// `out` is valid for a pointer write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || !align.is_multiple_of(core::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let p = fa::malloc(size, align.max(MIN_ALIGN), false);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller's.
    unsafe { out.write(p.cast()) };
    0
}

/// C11's: `align` must be a power of two (else null and `EINVAL`).
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    or_enomem(fa::malloc(size, align.max(MIN_ALIGN), false))
}

/// glibc's: an alignment that is not a power of two is rounded up to one;
/// one too large for that is `EINVAL`.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    let Some(align) = align.checked_next_power_of_two() else {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    };
    or_enomem(fa::malloc(size, align.max(MIN_ALIGN), false))
}

/// A page-aligned block.
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    or_enomem(fa::malloc(size, fa::page_size(), false))
}

/// A page-aligned block of whole pages (at least one).
///
/// # Safety
/// None beyond C's.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    or_enomem(fa::malloc_pages(size))
}

/// Bytes usable in `p`'s block (at least what was asked); 0 for null.
///
/// # Safety
/// `p` is null or a live block from this library.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: the caller's.
    unsafe { fa::usable_size(p.cast()) }
}

/// glibc's `malloc_trim`: does the calling thread's deferred frees and
/// gives its cached blocks back to their chunks, whose free pages the
/// allocator then returns as it does for any chunk. `pad` is ignored.
/// Returns 0 (glibc's "no memory was released" is not tracked here).
///
/// # Safety
/// None: any thread may call it at any time.
#[no_mangle]
pub unsafe extern "C" fn malloc_trim(_pad: usize) -> i32 {
    fa::trim();
    0
}

/// With `FIBERALLOC_STATS` set in the environment, prints
/// `GlobalArena::stats()` to stderr when the program exits (run from
/// `.fini_array`, after `main` returns or `exit` is called): live and peak
/// bytes, chunks in use, cached and pinned, committed memory. Formatted
/// into a buffer on the stack: nothing is allocated.
extern "C" fn print_stats_at_exit() {
    // SAFETY: the name is a NUL-terminated string; `getenv` only reads.
    if unsafe { libc::getenv(c"FIBERALLOC_STATS".as_ptr()) }.is_null() {
        return;
    }
    struct Buf {
        bytes: [u8; 1024],
        len: usize,
    }
    impl core::fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let room = self.bytes.len() - self.len;
            let n = s.len().min(room);
            self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
    let mut buf = Buf { bytes: [0; 1024], len: 0 };
    let _ = core::fmt::write(&mut buf, format_args!("fiberalloc stats at exit:\n{}\n", fa::stats()));
    // SAFETY: writes `len` initialised bytes of the buffer to stderr.
    let _ = unsafe { libc::write(2, buf.bytes.as_ptr().cast(), buf.len) };
}

#[used]
#[link_section = ".fini_array"]
static PRINT_STATS_AT_EXIT: extern "C" fn() = print_stats_at_exit;
