//! `mmap`, `mprotect` and `madvise` for Linux and other Unix systems.

use super::GuardKind;
use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use std::io;
use std::ptr::NonNull;

/// `MADV_GUARD_INSTALL` / `MADV_GUARD_REMOVE` from Linux 6.13's uapi headers;
/// named here because the libc crate may not carry them yet.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_GUARD_INSTALL: libc::c_int = 102;
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_GUARD_REMOVE: libc::c_int = 103;

/// `MADV_POPULATE_WRITE` (Linux 5.14).
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// 0: not asked yet; 1: the kernel takes guard markers; 2: it does not.
static GUARD_MARKERS: AtomicUsize = AtomicUsize::new(0);
/// The page size, read once (0 until then).
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
std::thread_local! {
    /// Mappings made so far by this thread (for tests that check a path
    /// makes no syscall; per thread, so tests running at the same time do
    /// not see each other's). Const-initialised and without a destructor:
    /// counting never allocates, even from the global allocator.
    static MAPPINGS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
    /// Prefault calls made so far by this thread (for tests), as above.
    static PREFAULTS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Prefault calls (`MADV_POPULATE_WRITE`) made so far by the calling thread.
pub fn prefaults_made() -> usize {
    PREFAULTS.try_with(core::cell::Cell::get).unwrap_or(0)
}

/// Mappings made so far by the calling thread through this module.
pub fn mappings_made() -> usize {
    MAPPINGS.try_with(core::cell::Cell::get).unwrap_or(0)
}

/// `errno` as it is before a call, for [`failure`] to put back.
#[inline]
fn errno_before() -> libc::c_int {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `__errno_location` returns the calling thread's `errno`.
        unsafe { *libc::__errno_location() }
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The error a failed call left in `errno`, which is then put back as it
/// was `before` the call: a C program's `free` reaches `munmap` and
/// `madvise`, and `free` must leave `errno` alone (calls that succeed do
/// not touch it).
fn failure(before: libc::c_int) -> io::Error {
    let e = io::Error::last_os_error();
    #[cfg(target_os = "linux")]
    // SAFETY: as in `errno_before`.
    unsafe {
        *libc::__errno_location() = before
    };
    #[cfg(not(target_os = "linux"))]
    let _ = before;
    e
}

/// The size of a page, in bytes.
#[inline]
pub fn page_size() -> usize {
    // Relaxed: the value is the same whichever thread reads it first.
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let raw = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = if raw > 0 { raw as usize } else { 4096 };
    PAGE_SIZE.store(page, Ordering::Relaxed);
    page
}

fn mmap(size: usize, prot: libc::c_int) -> io::Result<NonNull<u8>> {
    let before = errno_before();
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let p = unsafe {
        libc::mmap(core::ptr::null_mut(), size, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    };
    if p == libc::MAP_FAILED {
        return Err(failure(before));
    }
    let _ = MAPPINGS.try_with(|n| n.set(n.get() + 1));
    NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Maps `size` bytes readable, writable and zero-filled.
pub fn map(size: usize) -> io::Result<NonNull<u8>> {
    mmap(size, libc::PROT_READ | libc::PROT_WRITE)
}

/// Reserves `size` bytes of address space with no access.
#[allow(dead_code)]
pub fn reserve(size: usize) -> io::Result<NonNull<u8>> {
    mmap(size, libc::PROT_NONE)
}

fn mprotect(ptr: NonNull<u8>, size: usize, prot: libc::c_int) -> io::Result<()> {
    let before = errno_before();
    // SAFETY: the caller (an unsafe fn of this module) guarantees that the
    // range is a mapping it owns; mprotect on it affects nothing else.
    let r = unsafe { libc::mprotect(ptr.as_ptr().cast(), size, prot) };
    if r == 0 {
        Ok(())
    } else {
        Err(failure(before))
    }
}

fn madvise(ptr: NonNull<u8>, size: usize, advice: libc::c_int) -> io::Result<()> {
    let before = errno_before();
    // SAFETY: as for `mprotect`: the caller owns the range.
    let r = unsafe { libc::madvise(ptr.as_ptr().cast(), size, advice) };
    if r == 0 {
        Ok(())
    } else {
        Err(failure(before))
    }
}

/// Opens `size` bytes at `ptr` for reading and writing.
///
/// # Safety
/// `ptr..ptr + size` is page-aligned and part of a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn commit(ptr: NonNull<u8>, size: usize) -> io::Result<()> {
    mprotect(ptr, size, libc::PROT_READ | libc::PROT_WRITE)
}

/// Gives back the physical pages of `ptr..ptr + size`; the range stays
/// accessible and reads as zeros afterwards.
///
/// # Safety
/// As for [`commit`]; in addition nothing may rely on the range's contents.
#[allow(dead_code)]
pub unsafe fn decommit(ptr: NonNull<u8>, size: usize) -> io::Result<()> {
    madvise(ptr, size, libc::MADV_DONTNEED)
}

/// Whether `MADV_POPULATE_WRITE` was refused (a kernel before 5.14):
/// [`prefault`] stops asking.
static NO_POPULATE: AtomicBool = AtomicBool::new(false);

/// Makes `ptr..ptr + size` resident and writable now, in one call
/// (`MADV_POPULATE_WRITE`), instead of one page fault per page at first
/// touch. Advice only: where the kernel refuses, the pages fault in as
/// usual, so errors are ignored.
///
/// # Safety
/// As for [`commit`]; the range is readable and writable.
#[allow(dead_code)]
pub unsafe fn prefault(ptr: NonNull<u8>, size: usize) {
    // Relaxed: a hint; a thread that misses the store asks once more.
    if NO_POPULATE.load(Ordering::Relaxed) {
        return;
    }
    let _ = PREFAULTS.try_with(|n| n.set(n.get() + 1));
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = madvise(ptr, size, MADV_POPULATE_WRITE) {
        if e.raw_os_error() == Some(libc::EINVAL) {
            NO_POPULATE.store(true, Ordering::Relaxed);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (ptr, size);
}

/// Asks for transparent huge pages on `ptr..ptr + size` (`MADV_HUGEPAGE`,
/// `on`: one fault per 2 MiB instead of per page where the kernel grants
/// them), or takes that back (`MADV_NOHUGEPAGE`: pages faulted from then on
/// are small). Advice only; errors are ignored.
///
/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn advise_huge(ptr: NonNull<u8>, size: usize, on: bool) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = madvise(ptr, size, if on { libc::MADV_HUGEPAGE } else { libc::MADV_NOHUGEPAGE });
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (ptr, size, on);
}

/// Nanoseconds on the monotonic clock, or 0 if it cannot be read. Never
/// allocates or panics (callable from inside the global allocator).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(t.tv_nsec as u64)
}

/// Removes all access from `ptr..ptr + size`.
///
/// # Safety
/// As for [`commit`]; in addition nothing may access the range until it is
/// committed again.
#[allow(dead_code)]
pub unsafe fn protect(ptr: NonNull<u8>, size: usize) -> io::Result<()> {
    mprotect(ptr, size, libc::PROT_NONE)
}

/// Makes any access to `ptr..ptr + size` fault.
///
/// # Safety
/// As for [`protect`].
pub unsafe fn guard(ptr: NonNull<u8>, size: usize) -> io::Result<GuardKind> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Relaxed: a stale 0 only means asking the kernel once more.
        if GUARD_MARKERS.load(Ordering::Relaxed) != 2 {
            match madvise(ptr, size, MADV_GUARD_INSTALL) {
                Ok(()) => {
                    GUARD_MARKERS.store(1, Ordering::Relaxed);
                    return Ok(GuardKind::Marker);
                }
                // EINVAL: the kernel does not know the advice (before 6.13).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    GUARD_MARKERS.store(2, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
    }
    mprotect(ptr, size, libc::PROT_NONE).map(|()| GuardKind::Protect)
}

/// Undoes [`guard`]: the range becomes readable and writable again.
///
/// # Safety
/// `ptr..ptr + size` was guarded by [`guard`], which returned `kind`.
#[allow(dead_code)]
pub unsafe fn unguard(ptr: NonNull<u8>, size: usize, kind: GuardKind) -> io::Result<()> {
    match kind {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        GuardKind::Marker => madvise(ptr, size, MADV_GUARD_REMOVE),
        _ => mprotect(ptr, size, libc::PROT_READ | libc::PROT_WRITE),
    }
}

/// Fills `out[i]` with whether page `i` of `ptr..ptr + out.len() pages` is
/// resident (`mincore`).
///
/// # Safety
/// The range lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn resident(ptr: NonNull<u8>, out: &mut [bool]) -> io::Result<()> {
    let page = page_size();
    let mut vec = [0u8; 64];
    for (i, part) in out.chunks_mut(vec.len()).enumerate() {
        let at = ptr.as_ptr().wrapping_add(i * vec.len() * page);
        let before = errno_before();
        // SAFETY: `at..at + part.len() pages` lies in the caller's mapping,
        // and `vec` has room for one byte per page of it.
        let r = unsafe { libc::mincore(at.cast(), part.len() * page, vec.as_mut_ptr().cast()) };
        if r != 0 {
            return Err(failure(before));
        }
        for (o, v) in part.iter_mut().zip(vec) {
            *o = v & 1 != 0;
        }
    }
    Ok(())
}

/// Whether guard markers are in use (for tests and stats): `Some(true)` once
/// the kernel accepted one, `Some(false)` once it refused, `None` before.
#[allow(dead_code)]
pub fn guard_markers() -> Option<bool> {
    match GUARD_MARKERS.load(Ordering::Relaxed) {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

/// Returns `ptr..ptr + size` to the OS.
///
/// # Safety
/// The range is a whole mapping (or a page-aligned part of one) that the
/// caller owns and that nothing refers to any more.
pub unsafe fn release(ptr: NonNull<u8>, size: usize) -> io::Result<()> {
    let before = errno_before();
    // SAFETY: the caller hands over the range.
    let r = unsafe { libc::munmap(ptr.as_ptr().cast(), size) };
    if r == 0 {
        Ok(())
    } else {
        Err(failure(before))
    }
}

/// Registers handlers that `fork(2)` runs in the forking thread before it
/// forks (`prepare`), and after it in the parent and in the child
/// (`pthread_atfork`). They run for every later `fork`, not for
/// `posix_spawn` or `vfork`. Fails with the error `pthread_atfork` returns
/// (`ENOMEM`).
pub fn at_fork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) -> io::Result<()> {
    // SAFETY: the handlers are plain functions with no arguments, valid
    // for the life of the process.
    let r = unsafe {
        libc::pthread_atfork(
            Some(prepare as unsafe extern "C" fn()),
            Some(parent as unsafe extern "C" fn()),
            Some(child as unsafe extern "C" fn()),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(r))
    }
}

/// Writes `msg` to standard error with one `write(2)`, allocating nothing.
#[allow(dead_code)]
pub fn write_stderr(msg: &[u8]) {
    // SAFETY: `msg` is a valid slice; a short or failed write is ignored,
    // since this is the last thing said before an abort.
    let _ = unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Maps `size` bytes readable, writable and zero-filled at an address that
/// is a multiple of `align` (a power of two; `size` a multiple of the page
/// size). Maps `size + align` and unmaps the misaligned head and the tail.
pub fn map_aligned(size: usize, align: usize) -> io::Result<NonNull<u8>> {
    let page = page_size();
    if align <= page {
        return map(size);
    }
    let span = size.checked_add(align).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
    let raw = map(span)?;
    let start = raw.as_ptr().addr();
    let aligned = crate::align::round_up(start, align);
    let head = aligned - start;
    let tail = span - head - size;
    // SAFETY: the head and tail are page-aligned parts of the mapping just
    // made (`start`, `aligned` and `size` are page multiples), owned here
    // and referred to by nothing.
    unsafe {
        if head != 0 {
            release(raw, head)?;
        }
        if tail != 0 {
            release(NonNull::new_unchecked(raw.as_ptr().add(head + size)), tail)?;
        }
    }
    // SAFETY: `aligned` lies inside the mapping, so it is not null.
    Ok(unsafe { NonNull::new_unchecked(raw.as_ptr().add(head)) })
}

/// Returns a mapping made by [`map_aligned`] to the OS.
///
/// # Safety
/// As for [`release`]: `ptr` and `size` are what [`map_aligned`] was given
/// and returned, and nothing refers to the range any more.
pub unsafe fn release_aligned(ptr: NonNull<u8>, size: usize, _align: usize) -> io::Result<()> {
    // SAFETY: passed on from the caller.
    unsafe { release(ptr, size) }
}

/// Resizes a mapping from [`map`] (or [`map_aligned`] with an alignment of
/// at most a page) from `old` to `new` bytes, keeping its contents; with
/// `may_move` the kernel may move it (`mremap`), else it grows or shrinks in
/// place or fails. New bytes read as zeros.
///
/// # Safety
/// `ptr..ptr + old` is a whole mapping the caller owns; after a success the
/// caller uses only the returned address.
pub unsafe fn remap(ptr: NonNull<u8>, old: usize, new: usize, may_move: bool) -> io::Result<NonNull<u8>> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let flags = if may_move { libc::MREMAP_MAYMOVE } else { 0 };
        let before = errno_before();
        // SAFETY: the caller owns the mapping; mremap either moves it whole
        // (unmapping the old range) or fails and leaves it as it was.
        let p = unsafe { libc::mremap(ptr.as_ptr().cast(), old, new, flags) };
        if p == libc::MAP_FAILED {
            return Err(failure(before));
        }
        NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (ptr, old, new, may_move);
        Err(io::Error::from_raw_os_error(libc::ENOTSUP))
    }
}
