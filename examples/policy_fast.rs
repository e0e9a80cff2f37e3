//! Built by `cargo test` and inspected by `tests/policy_symbols.rs`: uses
//! every arena operation under `Fast` only, so none of the checks of the
//! `Safe` and `Debug` policies may be in this binary.
#[path = "common/policy.rs"]
mod common;

fn main() {
    common::exercise::<fiberalloc::policy::Fast>();
}
