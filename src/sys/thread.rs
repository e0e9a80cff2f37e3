//! Running code when a thread exits, without allocating: a POSIX thread key
//! whose destructor the C library calls as the thread ends (after the
//! destructors of Rust thread-locals, before the thread's memory goes).
//! glibc keeps the first 32 keys' values in the thread descriptor itself,
//! so arming a key allocates nothing. Works under Miri as well.

use crate::sync::{AtomicUsize, Ordering};
use core::ffi::c_void;
use core::ptr::NonNull;
use std::io;

/// A thread key created on first use; `dtor(arg)` runs at the exit of each
/// thread that armed it with `arg`.
pub struct ThreadExitKey {
    /// The key plus one; 0 until created.
    key: AtomicUsize,
    dtor: unsafe extern "C" fn(*mut c_void),
}

impl ThreadExitKey {
    /// A key that will call `dtor` (created by the first [`arm`](Self::arm)).
    pub const fn new(dtor: unsafe extern "C" fn(*mut c_void)) -> Self {
        ThreadExitKey { key: AtomicUsize::new(0), dtor }
    }

    fn key(&self) -> io::Result<libc::pthread_key_t> {
        // Acquire/Release: a thread that sees the key sees it created.
        let k = self.key.load(Ordering::Acquire);
        if k != 0 {
            return Ok((k - 1) as libc::pthread_key_t);
        }
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer and `dtor` has the C ABI the
        // library expects.
        let r = unsafe { libc::pthread_key_create(&mut key, Some(self.dtor)) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        match self.key.compare_exchange(0, key as usize + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(key),
            Err(winner) => {
                // Another thread created one first: use theirs.
                // SAFETY: `key` was created just above and never armed.
                unsafe { libc::pthread_key_delete(key) };
                Ok((winner - 1) as libc::pthread_key_t)
            }
        }
    }

    /// Makes the calling thread call `dtor(arg)` when it exits.
    pub fn arm(&self, arg: NonNull<c_void>) -> io::Result<()> {
        let key = self.key()?;
        // SAFETY: `key` is a live key; the value is only passed back to
        // `dtor`.
        let r = unsafe { libc::pthread_setspecific(key, arg.as_ptr()) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    }
}
