//! The overflow reporter: a fault handler that recognises a fault on the
//! guard page below a fiber stack.
//!
//! Every guarded fiber stack registers its guard page in the guard-page
//! table (`crate::guards`), which the handler reads without locking or
//! allocating.
//!
//! [`install_overflow_reporter`] installs a SIGSEGV/SIGBUS handler (once
//! per process) that runs on an alternate signal stack. When the faulting
//! address lies on a registered guard page it writes
//! `fiber stack overflow: ...` with the stack's bounds to standard error and
//! aborts; any other fault goes to the handler in place before (Rust's own
//! stack-overflow check, or the default action).

#[cfg(all(unix, not(any(miri, fiberalloc_loom))))]
use crate::guards;

// Without real signals (Miri, loom) only the unit tests use these two.
#[cfg_attr(any(miri, fiberalloc_loom), allow(dead_code))]
/// Formats `n` in hexadecimal into `out` (no allocation); returns the
/// bytes written.
fn hex(n: usize, out: &mut [u8]) -> usize {
    let digits = b"0123456789abcdef";
    let mut tmp = [0u8; 16];
    let mut len = 0;
    let mut v = n;
    loop {
        tmp[len] = digits[v & 15];
        len += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out[0] = b'0';
    out[1] = b'x';
    for i in 0..len {
        out[2 + i] = tmp[len - 1 - i];
    }
    len + 2
}

#[cfg_attr(any(miri, fiberalloc_loom), allow(dead_code))]
/// Builds the report for a fault at `addr` on the guard page `guard` of
/// the stack `guard + page .. top` (no allocation).
fn report(addr: usize, guard: usize, page: usize, top: usize, out: &mut [u8; 256]) -> usize {
    let mut n = 0;
    let mut put = |s: &[u8], n: &mut usize| {
        out[*n..*n + s.len()].copy_from_slice(s);
        *n += s.len();
    };
    let mut num = [0u8; 18];
    put(b"fiber stack overflow: fault at ", &mut n);
    let k = hex(addr, &mut num);
    put(&num[..k], &mut n);
    put(b" on the guard page below the stack ", &mut n);
    let k = hex(guard + page, &mut num);
    put(&num[..k], &mut n);
    put(b"..", &mut n);
    let k = hex(top, &mut num);
    put(&num[..k], &mut n);
    put(b" (", &mut n);
    let mut kib = [0u8; 20];
    let mut v = (top - guard - page) >> 10;
    let mut len = 0;
    loop {
        kib[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    kib[..len].reverse();
    put(&kib[..len], &mut n);
    put(b" KiB usable); aborting\n", &mut n);
    n
}

#[cfg(all(unix, not(any(miri, fiberalloc_loom))))]
fn on_fault(addr: usize) {
    let page = crate::sys::page_size();
    let guard = crate::align::round_down(addr, page);
    if let Some(top) = guards::lookup(guard) {
        let mut msg = [0u8; 256];
        let n = report(addr, guard, page, top, &mut msg);
        crate::sys::fatal(&msg[..n]);
    }
}

/// Installs the overflow reporter (see the module docs): once per process,
/// later calls return `Ok` and change nothing. Also gives the calling
/// thread an alternate signal stack if it has none; threads started by
/// Rust's runtime have one, other threads should call
/// [`ensure_signal_stack`] before running fibers.
///
/// Without the reporter a fiber stack overflow still stops at the guard
/// page, with a plain SIGSEGV.
pub fn install_overflow_reporter() -> std::io::Result<()> {
    #[cfg(all(unix, not(any(miri, fiberalloc_loom))))]
    return crate::sys::signal::install_fault_handler(on_fault);
    #[cfg(not(all(unix, not(any(miri, fiberalloc_loom)))))]
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no signal handlers on this platform"))
}

/// Gives the calling thread an alternate signal stack (64 KiB, kept for
/// the life of the process) unless it has one, so that the overflow
/// reporter can run when one of its fibers overflows.
pub fn ensure_signal_stack() -> std::io::Result<()> {
    #[cfg(all(unix, not(any(miri, fiberalloc_loom))))]
    return crate::sys::signal::ensure_alt_stack();
    #[cfg(not(all(unix, not(any(miri, fiberalloc_loom)))))]
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no signal stacks on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_the_stack() {
        let mut out = [0u8; 256];
        let n = report(0x10ff8, 0x10000, 0x1000, 0x21000, &mut out);
        let s = core::str::from_utf8(&out[..n]).unwrap();
        assert_eq!(
            s,
            "fiber stack overflow: fault at 0x10ff8 on the guard page below the stack 0x11000..0x21000 \
             (64 KiB usable); aborting\n"
        );
    }
}
