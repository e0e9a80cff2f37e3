//! The global-allocator workloads (`workloads.rs`) on jemalloc.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "workloads.rs"]
mod workloads;

fn main() {
    workloads::main()
}
