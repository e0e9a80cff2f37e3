//! Under `Fast`, none of the `Safe`/`Debug` checks is in the binary.
//!
//! `cargo test` builds the examples `policy_fast` (every arena operation
//! under `Fast`) and `policy_safe` (the same under `Safe`). This test lists
//! their symbols with `nm` and looks for the functions that carry the
//! checks: the canary walk, the sweep at reset/scope exit/drop, the checked
//! deallocation, the corruption report, the leak report and the log call.
//! `policy_safe` must have them (so the check can see them), `policy_fast`
//! none. Those functions are `#[inline(never)]` or generic and large, so a
//! binary that can reach them has their symbols.
use std::path::PathBuf;
use std::process::Command;

const CHECKS: [&str; 6] = [
    "fiberalloc::debug::walk",
    "fiberalloc::debug::corruption_abort",
    "fiberalloc::debug::report_leak",
    "fiberalloc::debug::log",
    "::sweep",
    "::dealloc_checked",
];

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/policy_symbols-<hash> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: run the whole `cargo test` (it builds the examples) or `cargo build --examples`",
        path.display()
    );
    path
}

fn symbols(name: &str) -> String {
    let out = Command::new("nm")
        .arg("-C")
        .arg(example(name))
        .output()
        .expect("`nm` (binutils, which the Rust linker needs too) must be installed");
    assert!(out.status.success(), "nm failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn checks_in(symbols: &str) -> Vec<&'static str> {
    CHECKS
        .iter()
        .copied()
        .filter(|c| symbols.lines().any(|l| l.contains("fiberalloc") && l.contains(c)))
        .collect()
}

#[test]
fn fast_binaries_hold_none_of_the_checks() {
    let safe = symbols("policy_safe");
    let found = checks_in(&safe);
    for c in
        ["fiberalloc::debug::walk", "::sweep", "::dealloc_checked", "fiberalloc::debug::corruption_abort"]
    {
        assert!(found.contains(&c), "policy_safe should hold {c}; found {found:?}");
    }
    let fast = symbols("policy_fast");
    assert!(fast.contains("fiberalloc::arena::Arena"), "policy_fast has no arena symbols at all?");
    assert_eq!(checks_in(&fast), Vec::<&str>::new(), "Fast must compile the checks out");
}
