//! The global-allocator workloads (`workloads.rs`) on system.
#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

#[path = "workloads.rs"]
mod workloads;

fn main() {
    workloads::main()
}
