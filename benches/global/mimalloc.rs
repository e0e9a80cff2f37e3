//! The global-allocator workloads (`workloads.rs`) on mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "workloads.rs"]
mod workloads;

fn main() {
    workloads::main()
}
