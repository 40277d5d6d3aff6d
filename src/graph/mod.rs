//! Vector packet-processing engine: a DAG of nodes, each handed a whole
//! vector of packets per call (VPP style), so instruction and data caches
//! are warmed once per vector instead of once per packet.
//!
//! The engine knows nothing about DPDK: packets are anything implementing
//! [`PacketBuf`].

#![forbid(unsafe_code)]

mod buf;
mod counters;
mod engine;
mod node;
pub mod nodes;
mod vector;

pub use buf::{prefetch, PacketBuf, RxVerdict, VecBuf};
pub use counters::{GraphCounters, GraphStats, NodeStats};
pub use engine::{BuildError, Graph, NodeId, DROP, TX, TX_FULL};
pub use node::{now_tsc, Node, NodeCtx};
pub use vector::{PacketVector, VECTOR_SIZE};

#[cfg(test)]
mod tests;
