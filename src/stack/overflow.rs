//! The overflow reporter: a table of the guard pages below fiber stacks,
//! and a fault handler that recognises a fault on one of them.
//!
//! Every guarded fiber stack (a [`FiberStack`](super::FiberStack) of its
//! own, a stack block of a [`StackPool`](super::StackPool), a stack from
//! `Arena::alloc_stack`) registers its guard page here while it exists: a
//! lock-free open-addressing table of `SLOTS` entries, keyed by the guard
//! page's address, holding the stack's top. Registering costs one
//! compare-exchange; the table takes no lock and allocates nothing, so the
//! handler can read it.
//!
//! [`install_overflow_reporter`] installs a SIGSEGV/SIGBUS handler (once
//! per process) that runs on an alternate signal stack. When the faulting
//! address lies on a registered guard page it writes
//! `fiber stack overflow: ...` with the stack's bounds to standard error and
//! aborts; any other fault goes to the handler in place before (Rust's own
//! stack-overflow check, or the default action).

use core::sync::atomic::{AtomicUsize, Ordering};

/// Table size: a power of two. 64 Ki guard pages (a table of 1 MiB of
/// address space, zero pages until used); stacks beyond that are not
/// registered and overflow with a plain SIGSEGV.
const SLOTS: usize = 1 << 16;
/// A slot never used: lookups stop here.
const EMPTY: usize = 0;
/// A slot whose stack is gone: lookups go on past it, inserts reuse it.
const TOMB: usize = 1;
/// A slot being filled in.
const BUSY: usize = 2;

static KEYS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(EMPTY) }; SLOTS];
static TOPS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
/// Guard pages registered now (for tests and the tour).
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

fn slot_of(guard: usize) -> usize {
    // Fibonacci hashing of the page number.
    ((guard >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - 16)) & (SLOTS - 1)
}

/// Records that the page at `guard` guards the stack whose highest address
/// is `top`. Returns false when the table is full (the stack is then not
/// recognised by the reporter).
pub(crate) fn register(guard: usize, top: usize) -> bool {
    let start = slot_of(guard);
    for i in 0..SLOTS {
        let s = (start + i) & (SLOTS - 1);
        let key = &KEYS[s];
        let cur = key.load(Ordering::Relaxed);
        if cur != EMPTY && cur != TOMB {
            continue;
        }
        // Acquire on success: nothing to see, but keeps the slot's
        // previous TOPS store before ours. Relaxed on failure: we move on.
        if key.compare_exchange(cur, BUSY, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            TOPS[s].store(top, Ordering::Relaxed);
            // Release: a handler that reads the key (Acquire) sees `top`.
            key.store(guard, Ordering::Release);
            REGISTERED.fetch_add(1, Ordering::Relaxed);
            return true;
        }
    }
    false
}

/// Removes the guard page at `guard` from the table (if it is there).
pub(crate) fn unregister(guard: usize) {
    let start = slot_of(guard);
    for i in 0..SLOTS {
        let s = (start + i) & (SLOTS - 1);
        match KEYS[s].load(Ordering::Relaxed) {
            EMPTY => return,
            k if k == guard => {
                // Relaxed: only the owner of this guard page writes the
                // key now; readers treat TOMB as absent either way.
                KEYS[s].store(TOMB, Ordering::Relaxed);
                REGISTERED.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            _ => {}
        }
    }
}

/// The top of the stack whose guard page is `guard`, if registered.
/// Async-signal-safe: loads only.
pub(crate) fn lookup(guard: usize) -> Option<usize> {
    let start = slot_of(guard);
    for i in 0..SLOTS {
        let s = (start + i) & (SLOTS - 1);
        // Acquire: pairs with the Release store in `register`.
        match KEYS[s].load(Ordering::Acquire) {
            EMPTY => return None,
            k if k == guard => return Some(TOPS[s].load(Ordering::Relaxed)),
            _ => {}
        }
    }
    None
}

/// How many guard pages are registered now.
pub fn registered_guards() -> usize {
    REGISTERED.load(Ordering::Relaxed)
}

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
    let guard = addr & !(page - 1);
    if let Some(top) = lookup(guard) {
        let mut msg = [0u8; 256];
        let n = report(addr, guard, page, top, &mut msg);
        crate::sys::signal::fatal_in_handler(&msg[..n]);
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
    fn register_lookup_unregister() {
        let base = 0x7000_0000_0000usize;
        let guards: Vec<usize> = (0..100).map(|i| base + i * 0x11000).collect();
        for &g in &guards {
            assert!(register(g, g + 0x11000));
        }
        for &g in &guards {
            assert_eq!(lookup(g), Some(g + 0x11000));
            assert_eq!(lookup(g + 0x1000), None);
        }
        for &g in &guards[..50] {
            unregister(g);
        }
        assert!(guards[..50].iter().all(|&g| lookup(g).is_none()));
        assert!(guards[50..].iter().all(|&g| lookup(g) == Some(g + 0x11000)));
        for &g in &guards[50..] {
            unregister(g);
        }
    }

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
