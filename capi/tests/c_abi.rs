//! The C contract, through the exported functions: `contract.c` is compiled
//! with the system's C compiler and run with the library in `LD_PRELOAD`
//! (it checks that it is), and its death tests run in child processes.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The `libfiberalloc_malloc.so` cargo built next to this test.
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/c_abi-... -> target/<profile>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target directory");
    let so = dir.join("libfiberalloc_malloc.so");
    assert!(so.exists(), "{} was not built: run `cargo build -p fiberalloc-malloc` first", so.display());
    so
}

/// `contract.c`, compiled once per test process.
fn contract() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contract.c");
            let out = std::env::temp_dir().join(format!("fiberalloc-contract-{}", std::process::id()));
            // -fno-builtin: the compiler must not fold calls whose result it
            // thinks it knows (malloc of SIZE_MAX, say).
            let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
                .args(["-O1", "-fno-builtin", "-Wall", "-Wno-use-after-free", "-o"])
                .arg(&out)
                .arg(&src)
                .args(["-pthread", "-ldl"])
                .status()
                .expect("a C compiler (cc)");
            assert!(status.success(), "contract.c did not compile");
            out
        })
        .clone()
}

fn run(args: &[&str]) -> Output {
    Command::new(contract()).args(args).env("LD_PRELOAD", library()).output().expect("run contract")
}

#[test]
fn c_contract_holds_through_the_exported_functions() {
    let out = run(&[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let checks = stdout.lines().filter(|l| l.starts_with("ok") || l.starts_with("FAIL")).count();
    assert!(checks >= 28, "only {checks} checks ran");
    assert!(!stdout.contains("FAIL"), "a check failed");
    assert!(out.status.success(), "contract exited with {:?}", out.status);
    assert!(stdout.contains("0 failures"));
}

fn assert_aborts(arg: &str, message: &str) {
    use std::os::unix::process::ExitStatusExt;
    let out = run(&[arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{arg}: {:?}, stderr: {stderr}", out.status);
    assert!(stderr.contains(message), "{arg}: stderr was {stderr:?}");
}

#[test]
fn freeing_a_pointer_never_handed_out_aborts_with_a_message() {
    assert_aborts("invalid-free", "fiberalloc: free: a pointer fiberalloc did not hand out");
}

#[test]
fn freeing_inside_a_block_or_a_chunk_header_aborts() {
    assert_aborts("interior-free", "fiberalloc: free: a pointer fiberalloc did not hand out");
    assert_aborts("header-free", "fiberalloc: free: a pointer fiberalloc did not hand out");
    assert_aborts("chunk-start-free", "fiberalloc: free: a pointer fiberalloc did not hand out");
}

#[test]
fn a_double_free_aborts_with_a_message() {
    // The thread's last block (the first free gave its place back to the
    // cursor), a block waiting in the thread cache, and one on another
    // thread's run of remote frees: the second free finds the first's
    // mark in the header (each program calls `malloc_trim` after the
    // second free, which does the frees `free` defers).
    assert_aborts("double-free", "fiberalloc: free: a double free");
    assert_aborts("double-free-cached", "fiberalloc: free: a double free");
    assert_aborts("double-free-remote", "fiberalloc: free: a double free");
    assert_aborts("double-realloc", "fiberalloc: realloc: a double free");
    // Without a trim, within the next DEFERRED frees.
    assert_aborts("double-free-later", "fiberalloc: free: a double free");
}

#[test]
fn a_stale_pointer_into_reused_memory_aborts() {
    // Two blocks freed (the cursor moves back over both), a larger block
    // bumped over them and zeroed: the second block's pointer now has no
    // header before it.
    assert_aborts("stale-free", "fiberalloc: free: a pointer fiberalloc did not hand out");
}
