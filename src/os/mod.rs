//! The one safe layer over the operating system and the CPU (beside src/dpdk for DPDK): the
//! TSC and its calibration against CLOCK_MONOTONIC, so every program reads time the same way;
//! sockets, recvmmsg/sendmmsg batches and process helpers for the kernel servers, lab and tests.

pub mod clock;
pub mod mmsg;
pub mod process;
pub mod socket;

pub use clock::Clock;
