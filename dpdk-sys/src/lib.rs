//! Raw FFI bindings to the system DPDK, generated at build time.
//!
//! Everything here is `unsafe` and unchecked; the project's safe layer is `bypass::dpdk`.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all, improper_ctypes, unnecessary_transmutes)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
