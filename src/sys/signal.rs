//! A SIGSEGV/SIGBUS handler that asks a callback about each fault, on an
//! alternate signal stack (a fault on a guard page leaves no stack to run
//! a handler on), and hands faults it does not claim to whoever handled
//! them before.

use crate::sync::plain::{AtomicUsize, Ordering};
use std::cell::UnsafeCell;
use std::io;

/// Decides about a fault at the given address: returns only if the fault
/// is not its business (it aborts otherwise). Runs inside the signal
/// handler, so it may only do async-signal-safe things.
pub type FaultHook = fn(usize);

/// The hook, as a `usize` (0 until installed).
static HOOK: AtomicUsize = AtomicUsize::new(0);
/// 0: not installed; 1: being installed; 2: installed.
static STATE: AtomicUsize = AtomicUsize::new(0);

/// The actions in place before ours, for SIGSEGV and SIGBUS.
struct Previous(UnsafeCell<[libc::sigaction; 2]>);
// SAFETY: written once by the installing thread before `STATE` becomes 2
// (a Release store), read by handlers only after seeing 2 (Acquire).
unsafe impl Sync for Previous {}
// SAFETY: `sigaction` is plain data; all zeros is a valid value (SIG_DFL).
static PREVIOUS: Previous = Previous(UnsafeCell::new(unsafe { std::mem::zeroed() }));

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs the handler for SIGSEGV and SIGBUS (once per process; later
/// calls change nothing and return `Ok`) and gives the calling thread an
/// alternate signal stack if it has none.
pub fn install_fault_handler(hook: FaultHook) -> io::Result<()> {
    ensure_alt_stack()?;
    // Acquire/Release: the winner's writes to PREVIOUS and HOOK happen
    // before STATE reads 2.
    if STATE.compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire).is_err() {
        return Ok(());
    }
    HOOK.store(hook as usize, Ordering::Relaxed);
    for (i, &sig) in SIGNALS.iter().enumerate() {
        // `old` points into PREVIOUS, which only this thread writes (it won
        // the CAS above) and handlers read only after STATE is 2.
        // SAFETY: all zeros is a valid `sigaction`; we set the SA_SIGINFO
        // handler, its flags and an empty mask; `old` is ours to write.
        let r = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = handler as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut act.sa_mask);
            let old = (*PREVIOUS.0.get()).as_mut_ptr().add(i);
            libc::sigaction(sig, &act, old)
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            STATE.store(0, Ordering::Release);
            return Err(e);
        }
    }
    STATE.store(2, Ordering::Release);
    Ok(())
}

/// Gives the calling thread an alternate signal stack (64 KiB, never
/// freed) unless it has one (Rust's runtime makes one for the threads it
/// starts).
pub fn ensure_alt_stack() -> io::Result<()> {
    // SAFETY: a null new stack only queries; `old` is a valid out-pointer.
    let mut old: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if old.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    let size = 64 << 10;
    let mem = super::map(size)?;
    let new = libc::stack_t { ss_sp: mem.as_ptr().cast(), ss_flags: 0, ss_size: size };
    // SAFETY: `new` describes a fresh mapping of `size` bytes that is never
    // unmapped (it stays this thread's signal stack).
    if unsafe { libc::sigaltstack(&new, std::ptr::null_mut()) } != 0 {
        let e = io::Error::last_os_error();
        // SAFETY: the mapping just made, not handed to the kernel.
        let _ = unsafe { super::release(mem, size) };
        return Err(e);
    }
    Ok(())
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Acquire: pairs with the Release store of 2 (PREVIOUS and HOOK are
    // written).
    if STATE.load(Ordering::Acquire) == 2 {
        // SAFETY: the kernel passes a valid siginfo for a SA_SIGINFO
        // handler; for SIGSEGV and SIGBUS `si_addr` is the fault address.
        let addr = unsafe { (*info).si_addr() } as usize;
        let hook = HOOK.load(Ordering::Relaxed);
        if hook != 0 {
            // SAFETY: HOOK holds a `FaultHook` stored by `install_fault_handler`.
            let f: FaultHook = unsafe { std::mem::transmute::<usize, FaultHook>(hook) };
            f(addr);
        }
    }
    let i = usize::from(sig == libc::SIGBUS);
    // SAFETY: STATE is 2 whenever this handler is installed, so PREVIOUS
    // was written and is no longer changing.
    let prev = unsafe { &(*PREVIOUS.0.get())[i] };
    let action = prev.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Put the old action back and return: the faulting instruction
        // runs again and the default action (death by the signal) follows.
        // SAFETY: `prev` is a complete sigaction read back from the kernel.
        unsafe { libc::sigaction(sig, prev, std::ptr::null_mut()) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler took SA_SIGINFO arguments, and we
        // pass on the ones the kernel gave us.
        let f = unsafe {
            std::mem::transmute::<usize, extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)>(
                action,
            )
        };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes the signal number.
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn(libc::c_int)>(action) };
        f(sig);
    }
}
