//! The one safe layer over the operating system and the CPU (beside src/dpdk for DPDK): the
//! TSC and its calibration against CLOCK_MONOTONIC, so every program reads time the same way.

pub mod clock;
pub mod cpu;
pub mod signal;
pub mod tsc;

pub use clock::Clock;
