//! The one safe layer over the operating system and the CPU (beside src/dpdk for DPDK): the
//! TSC, its tick<->ns conversions and its calibration against CLOCK_MONOTONIC, so every program
//! reads time the same way; signals; prefetch; sockets, recvmmsg/sendmmsg batches and process
//! helpers for the kernel servers, lab and tests.

pub mod clock;
pub mod cpu;
pub mod epoll;
pub mod mmsg;
pub mod process;
pub mod signal;
pub mod socket;
pub mod tsc;

pub use clock::Clock;
