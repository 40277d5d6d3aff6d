//! The protocol nodes of the server fast path: every frame enters at
//! `ethernet-input` and either leaves on `tx`, rewritten in place into its
//! reply, or is dropped under a counted reason.
//!
//! ```text
//! ethernet-input -> arp-reply ------------------------------------> tx
//!                -> ip4-input -> icmp-echo ------------------------> tx
//!                             -> udp-input -> rpc-server ----------> tx
//!                                          -> sockperf-echo -------> tx
//! ```
//!
//! Each node re-checks the bounds it indexes by (cheaply, through the
//! `wire` views) instead of trusting its predecessor, so a node fed directly
//! (tests, other graphs) can never panic; upstream nodes do the policy
//! checks. Nodes never allocate, lock or make system calls in `process`.

use crate::wire::{Ipv4Address, MacAddress};

#[cfg(doc)]
use super::prefetch;
use super::{BuildError, Graph, Node, NodeCtx, PacketBuf};

mod arp_reply;
mod ethernet_input;
mod icmp_echo;
mod ip4_input;
mod rpc_server;
mod sockperf_echo;
mod udp_input;
mod util;

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use arp_reply::{ArpDrop, ArpReply};
pub use ethernet_input::{EthernetDrop, EthernetInput};
pub use icmp_echo::{IcmpDrop, IcmpEcho};
pub use ip4_input::{Ip4Drop, Ip4Input};
pub use rpc_server::{RpcDrop, RpcServer};
pub use sockperf_echo::{SockperfDrop, SockperfEcho};
pub use udp_input::{UdpDrop, UdpInput};

/// Node names, as used for edges and in the counters.
pub const ETHERNET_INPUT: &str = "ethernet-input";
pub const ARP_REPLY: &str = "arp-reply";
pub const IP4_INPUT: &str = "ip4-input";
pub const ICMP_ECHO: &str = "icmp-echo";
pub const UDP_INPUT: &str = "udp-input";
pub const RPC_SERVER: &str = "rpc-server";
pub const SOCKPERF_ECHO: &str = "sockperf-echo";

/// Addressing and limits shared by all server nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub mac: MacAddress,
    pub ip: Ipv4Address,
    pub rpc_port: u16,
    /// If equal to `rpc_port`, RPC wins and sockperf is unreachable.
    pub sockperf_port: u16,
    /// Longest `spin` a client may ask for; longer ones get status 3.
    pub spin_max_ns: u32,
    /// Longest frame accepted, in bytes, without FCS unless the NIC keeps
    /// it. Longer frames are dropped as "oversize".
    pub max_frame_len: usize,
}

impl NodeConfig {
    pub const DEFAULT_RPC_PORT: u16 = crate::wire::rpc::DEFAULT_PORT;
    /// sockperf's own default port.
    pub const DEFAULT_SOCKPERF_PORT: u16 = 11111;
    /// 1 ms, as in docs/protocol.md.
    pub const DEFAULT_SPIN_MAX_NS: u32 = 1_000_000;
    /// A full 1500-byte-MTU Ethernet II frame (1514) plus 4 bytes so that a
    /// port configured to keep the FCS still passes; `ip4-input` trims
    /// those 4 bytes off with the padding.
    pub const DEFAULT_MAX_FRAME_LEN: usize = 1514 + 4;

    /// Our addresses with every other setting at its default.
    pub fn new(mac: MacAddress, ip: Ipv4Address) -> Self {
        Self {
            mac,
            ip,
            rpc_port: Self::DEFAULT_RPC_PORT,
            sockperf_port: Self::DEFAULT_SOCKPERF_PORT,
            spin_max_ns: Self::DEFAULT_SPIN_MAX_NS,
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// The server graph: entry [`ETHERNET_INPUT`], replies on `tx`.
///
/// `tsc_hz` must be the real TSC frequency (or 1e9 off x86_64): the RPC
/// `spin` method and `server_ns` convert through it.
pub fn build_server_graph<P: PacketBuf + 'static>(
    cfg: &NodeConfig,
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
    ];
    Graph::new(nodes, ETHERNET_INPUT, tsc_hz)
}

/// Every node puts `"drop"` first in its next list, so "dropped" is the
/// same edge index everywhere.
const NEXT_DROP: u16 = 0;

/// Edge property ([`Node::edge_props`]): Ethernet + option-less IPv4 whose
/// `total_len` ends the buffer, carrying UDP. Set by `ip4-input`.
const PROP_IPV4_UDP: u32 = 1 << 0;
/// Edge property: [`PROP_IPV4_UDP`] plus a UDP header whose length ends the
/// buffer (the layout [`util::is_plain_udp`] checks). Set by `udp-input`.
const PROP_PLAIN_UDP: u32 = 1 << 1;

/// Runs `f` on each packet in order. `f` returns the next-edge index, or a
/// drop reason that is counted here and routed to [`NEXT_DROP`].
///
/// No software prefetch: measured on the rpc benchmark (net_pcap, 74-byte
/// requests), prefetching the next packets' first line four ahead made
/// every node slower, in `ethernet-input` too. Computing the address to
/// prefetch means loading the packet's buffer header, which costs about as
/// much as the miss it hides when the PMD has just written the packet (as
/// it has, or the NIC's DMA into the last-level cache has); and after
/// `ethernet-input` the headers are in cache anyway. [`prefetch`] stays
/// available for nodes that touch cold data.
#[inline(always)]
fn packet_loop<P, R, F>(ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16], mut f: F)
where
    P: PacketBuf,
    R: Into<usize>,
    F: FnMut(&mut P) -> Result<u16, R>,
{
    debug_assert_eq!(pkts.len(), nexts.len());
    for (p, next) in pkts.iter_mut().zip(nexts.iter_mut()) {
        *next = match f(p) {
            Ok(next) => next,
            Err(reason) => {
                ctx.drop(reason.into());
                NEXT_DROP
            }
        };
    }
}

pub(crate) use crate::drops::drop_reasons;
