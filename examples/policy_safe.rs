//! The counterpart of `policy_fast.rs` under `Safe`: the same operations,
//! so `tests/policy_symbols.rs` can show its symbol check finds the checks
//! where they are compiled in.
#[path = "common/policy.rs"]
mod common;

fn main() {
    common::exercise::<fiberalloc::policy::Safe>();
}
