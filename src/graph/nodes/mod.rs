//! The protocol nodes of the server fast path: every frame enters at
//! `ethernet-input` and either leaves on `tx`, rewritten in place into its
//! reply, or is dropped under a counted reason.
//!
//! ```text
//! ethernet-input -> arp-reply ------------------------------------> tx
//!                -> ip4-input -> icmp-echo ------------------------> tx
//!                             -> udp-input -> rpc-server ----------> tx
//!                                          -> sockperf-echo -------> tx
//!                                          -> rpc-relay -------------> tx (to an upstream,
//!                                                                     or back to a client)
//! ```
//!
//! Each node re-checks the bounds it indexes by (cheaply, through the
//! `wire` views) instead of trusting its predecessor, so a node fed directly
//! (tests, other graphs) can never panic; upstream nodes do the policy
//! checks. Nodes never allocate, lock or make system calls in `process`.

use super::{BuildError, Graph, Node, PacketBuf};

mod arp_reply;
pub mod check;
mod ethernet_input;
mod icmp_echo;
mod ip4_input;
pub(crate) mod kit;
mod relay_table;
mod rpc_relay;
mod rpc_server;
mod sockperf_echo;
mod udp_input;
mod util;

#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use arp_reply::{ArpDrop, ArpReply};
pub use ethernet_input::{EthernetDrop, EthernetInput};
pub use icmp_echo::{IcmpDrop, IcmpEcho};
pub use ip4_input::{Ip4Drop, Ip4Input};
pub use relay_table::{Client, FlowTable, PROBE};
pub use rpc_relay::{RelayCounters, RelayDrop, RelaySnapshot, RelaySpec, RpcRelay, Upstream};
pub use rpc_server::{RpcDrop, RpcServer};
pub use sockperf_echo::{SockperfDrop, SockperfEcho};
pub use udp_input::{UdpDrop, UdpInput};

pub use kit::{
    NodeConfig, RelayIps, RxChecksum, ARP_REPLY, ETHERNET_INPUT, ICMP_ECHO, IP4_INPUT, MAX_RELAYS,
    RPC_RELAY, RPC_SERVER, SOCKPERF_ECHO, UDP_INPUT,
};

/// The server graph: entry [`ETHERNET_INPUT`], replies on `tx`.
///
/// `tsc_hz` must be the real TSC frequency (or 1e9 off x86_64): the RPC
/// `spin` method and `server_ns` convert through it.
pub fn build_server_graph<P: PacketBuf + 'static>(
    cfg: &NodeConfig,
    tsc_hz: u64,
) -> Result<Graph<P>, BuildError> {
    build_relay_graph(cfg, Vec::new(), RelayCounters::new(0), tsc_hz)
}

/// [`build_server_graph`] with `relays` in its `rpc-relay` node, counting into `counters`
/// (one cell per relay). `cfg.relay_ips` must hold the relays' addresses.
pub fn build_relay_graph<P: PacketBuf + 'static>(
    cfg: &NodeConfig,
    relays: Vec<RelaySpec>,
    counters: std::sync::Arc<RelayCounters>,
    tsc_hz: u64,
) -> Result<Graph<P>, BuildError> {
    debug_assert!(tsc_hz != 0, "tsc_hz 0 would make spin a no-op");
    let nodes: Vec<Box<dyn Node<P>>> = vec![
        Box::new(EthernetInput::new(cfg)),
        Box::new(ArpReply::new(cfg)),
        Box::new(Ip4Input::new(cfg)),
        Box::new(IcmpEcho::new(cfg)),
        Box::new(UdpInput::new(cfg)),
        Box::new(RpcServer::new(cfg)),
        Box::new(SockperfEcho::new(cfg)),
        Box::new(RpcRelay::new(cfg, relays, counters)),
    ];
    Graph::new(nodes, ETHERNET_INPUT, tsc_hz)
}
