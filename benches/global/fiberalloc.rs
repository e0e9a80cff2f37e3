//! The global-allocator workloads (`workloads.rs`) on fiberalloc.
#[global_allocator]
static GLOBAL: fiberalloc::GlobalArena = fiberalloc::GlobalArena::new();

#[path = "workloads.rs"]
mod workloads;

fn main() {
    workloads::main();
    // `FIBERALLOC_STATS=1`: the allocator's statistics after the run, on
    // stderr (the script reads stdout only).
    if std::env::var_os("FIBERALLOC_STATS").is_some() {
        eprintln!("{}", GLOBAL.stats());
    }
}
