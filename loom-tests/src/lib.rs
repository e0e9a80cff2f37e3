//! loom models of fiberalloc's lock-free protocols; the models are in
//! `tests/`. Build only with `RUSTFLAGS="--cfg fiberalloc_loom"`.
