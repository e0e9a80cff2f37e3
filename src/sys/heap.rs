//! A stand-in for `mmap` under Miri: mappings come from the `System`
//! allocator (never the global one, which may be `GlobalArena`) with page
//! alignment. Guards and protection are recorded, not enforced; Miri
//! still reports any access outside a live allocation.

use super::GuardKind;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::ptr::NonNull;

const PAGE: usize = 4096;

/// The size of a page, in bytes.
pub fn page_size() -> usize {
    PAGE
}

/// Largest mapping the stand-in makes: Miri stops the program rather than
/// fail on an allocation much larger than this, while mmap would say ENOMEM.
const MAX_MAPPING: usize = 1 << 32;

fn layout(size: usize) -> io::Result<Layout> {
    if size > MAX_MAPPING {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    Layout::from_size_align(size, PAGE).map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Mappings made so far (not counted by the stand-in).
#[allow(dead_code)]
pub fn mappings_made() -> usize {
    0
}

/// Prefault calls made so far (the stand-in makes none).
#[allow(dead_code)]
pub fn prefaults_made() -> usize {
    0
}

/// Maps `size` bytes readable, writable and zero-filled.
pub fn map(size: usize) -> io::Result<NonNull<u8>> {
    let layout = layout(size)?;
    // SAFETY: the contract makes `size` non-zero.
    let p = unsafe { System.alloc_zeroed(layout) };
    NonNull::new(p).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// Reserves `size` bytes (accessible here: Miri cannot model no-access).
#[allow(dead_code)]
pub fn reserve(size: usize) -> io::Result<NonNull<u8>> {
    map(size)
}

/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn commit(_ptr: NonNull<u8>, _size: usize) -> io::Result<()> {
    Ok(())
}

/// Writes zeros, as the next touch after `MADV_DONTNEED` would read.
///
/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn decommit(ptr: NonNull<u8>, size: usize) -> io::Result<()> {
    // SAFETY: the caller owns the range, which is writable here.
    unsafe { ptr.as_ptr().write_bytes(0, size) };
    Ok(())
}

/// Advice only; heap memory is resident already.
///
/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn prefault(_ptr: NonNull<u8>, _size: usize) {}

/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn advise_huge(_ptr: NonNull<u8>, _size: usize, _on: bool) {}

/// No clock is read in the stand-in: always 0.
#[allow(dead_code)]
pub fn monotonic_ns() -> u64 {
    0
}

/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn protect(_ptr: NonNull<u8>, _size: usize) -> io::Result<()> {
    Ok(())
}

/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
pub unsafe fn guard(_ptr: NonNull<u8>, _size: usize) -> io::Result<GuardKind> {
    Ok(GuardKind::Recorded)
}

/// # Safety
/// `ptr..ptr + size` lies in a mapping the caller owns.
#[allow(dead_code)]
pub unsafe fn unguard(_ptr: NonNull<u8>, _size: usize, _kind: GuardKind) -> io::Result<()> {
    Ok(())
}

/// The heap cannot tell residency: a page counts as touched when it holds
/// a non-zero byte (mappings start zeroed).
///
/// # Safety
/// The range lies in a mapping the caller owns and nothing writes it
/// meanwhile.
#[allow(dead_code)]
pub unsafe fn resident(ptr: NonNull<u8>, out: &mut [bool]) -> io::Result<()> {
    let page = page_size();
    for (i, o) in out.iter_mut().enumerate() {
        // SAFETY: page `i` lies in the caller's mapping, readable here.
        let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr().add(i * page), page) };
        *o = bytes.iter().any(|&b| b != 0);
    }
    Ok(())
}

/// Guard markers are never in use under Miri.
#[allow(dead_code)]
pub fn guard_markers() -> Option<bool> {
    Some(false)
}

/// # Safety
/// `ptr` came from [`map`] or [`reserve`] with this `size`, and nothing
/// refers to it any more.
pub unsafe fn release(ptr: NonNull<u8>, size: usize) -> io::Result<()> {
    // SAFETY: by the caller's promise, `ptr` was allocated with this layout.
    unsafe { System.dealloc(ptr.as_ptr(), layout(size)?) };
    Ok(())
}

/// No fork handlers under the stand-in (Miri cannot fork).
pub fn at_fork(
    _prepare: extern "C" fn(),
    _parent: extern "C" fn(),
    _child: extern "C" fn(),
) -> io::Result<()> {
    Ok(())
}

/// Writes `msg` to standard error with one `write(2)`, allocating nothing.
#[allow(dead_code)]
pub fn write_stderr(msg: &[u8]) {
    // SAFETY: `msg` is a valid slice; a short or failed write is ignored,
    // since this is the last thing said before an abort.
    let _ = unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
}

/// Maps `size` zeroed bytes aligned to `align` (at least a page).
pub fn map_aligned(size: usize, align: usize) -> io::Result<NonNull<u8>> {
    let layout = Layout::from_size_align(size, align.max(PAGE))
        .map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))?;
    if size > MAX_MAPPING {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    // SAFETY: the contract makes `size` non-zero.
    let p = unsafe { System.alloc_zeroed(layout) };
    NonNull::new(p).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))
}

/// # Safety
/// `ptr` came from [`map_aligned`] with this `size` and `align`, and
/// nothing refers to it any more.
pub unsafe fn release_aligned(ptr: NonNull<u8>, size: usize, align: usize) -> io::Result<()> {
    let layout = Layout::from_size_align(size, align.max(PAGE))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: by the caller's promise, `ptr` was allocated with this layout.
    unsafe { System.dealloc(ptr.as_ptr(), layout) };
    Ok(())
}

/// Resizes a mapping from [`map`]; moving only with `may_move` (the stand-in
/// cannot grow in place). New bytes read as zeros.
///
/// # Safety
/// `ptr..ptr + old` came from [`map`] or [`map_aligned`] with at most page
/// alignment; after a success the caller uses only the returned address.
pub unsafe fn remap(ptr: NonNull<u8>, old: usize, new: usize, may_move: bool) -> io::Result<NonNull<u8>> {
    if !may_move || new > MAX_MAPPING {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    let moved = map(new)?;
    // SAFETY: both ranges are live, distinct allocations of at least
    // `min(old, new)` bytes; the old one is then freed with its layout.
    unsafe {
        core::ptr::copy_nonoverlapping(ptr.as_ptr(), moved.as_ptr(), old.min(new));
        release(ptr, old)?;
    }
    Ok(moved)
}
