//! bypass: a DPDK kernel-bypass RPC fast path and the latency lab that measures it.

pub mod codec;
pub mod contract;
pub mod dpdk;
pub mod drops;

/// The git revision this binary was built from.
pub const GIT_REV: &str = env!("BYPASS_GIT_REV");
pub mod graph;
pub mod kernel;
pub mod lab;
pub mod load;
pub mod noise;
pub mod options;
pub mod os;
pub mod pcap;
pub mod server;
pub mod service;
pub mod stats;
pub mod wire;

/// How many rounds a randomised unit test runs. Miri (scripts/miri.sh) interprets each step
/// hundreds of times slower than native code, so there every such loop runs a hundredth of its
/// rounds: still every branch the rounds aim at, in minutes rather than hours.
#[cfg(test)]
pub(crate) const fn test_rounds(native: usize) -> usize {
    if cfg!(miri) {
        native.div_ceil(100)
    } else {
        native
    }
}
