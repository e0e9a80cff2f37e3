//! The global-allocator workloads (`workloads.rs`) on fiberalloc.
#[global_allocator]
static GLOBAL: fiberalloc::GlobalArena = fiberalloc::GlobalArena::new();

#[path = "workloads.rs"]
mod workloads;

fn main() {
    workloads::main()
}
