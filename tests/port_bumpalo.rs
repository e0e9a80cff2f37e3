//! Proof by porting: `tests/port/body.rs`, a tokenizer, parser, evaluator
//! and printer written as bumpalo code, compiles against bumpalo and
//! against fiberalloc with only the imports changed, and both runs print
//! the same report.

/// The body on bumpalo, as its users write it.
mod on_bumpalo {
    use bumpalo::boxed::Box;
    use bumpalo::collections::{CollectIn, String, Vec};
    use bumpalo::{format, vec, Bump};
    include!("port/body.rs");
}

/// The same body on fiberalloc: only these imports differ.
mod on_fiberalloc {
    use fiberalloc::boxed::Box;
    use fiberalloc::collections::{CollectIn, String, Vec};
    use fiberalloc::Arena as Bump;
    use fiberalloc::{format, vec};
    include!("port/body.rs");
}

#[test]
fn the_port_prints_what_bumpalo_prints() {
    let theirs = on_bumpalo::run();
    let ours = on_fiberalloc::run();
    assert!(theirs.lines().count() > 40, "{theirs}");
    assert_eq!(ours, theirs);
}
