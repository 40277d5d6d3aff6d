//! The node kit: what every node of the server graph is built from (its
//! configuration, the node names its edges point at, the shared edge
//! indices and properties, the per-packet loop and the drop-reason
//! declaration), kept apart from `nodes/mod.rs`, which assembles the graph,
//! so a node depends on its tools and never on the graph it is placed in.
//!
//! [`drop_reasons!`] comes from src/drops.rs, where kernel-serve and the DPDK
//! client take it too: one drop-reason mechanism for every program.

use crate::service::ServiceModel;
use crate::wire::{Ipv4Address, MacAddress};

#[cfg(doc)]
use crate::graph::prefetch;
use crate::graph::{NodeCtx, PacketBuf, RxVerdict};

/// Node names, as used for edges and in the counters.
pub const ETHERNET_INPUT: &str = "ethernet-input";
pub const ARP_REPLY: &str = "arp-reply";
pub const IP4_INPUT: &str = "ip4-input";
pub const ICMP_ECHO: &str = "icmp-echo";
pub const UDP_INPUT: &str = "udp-input";
pub const RPC_SERVER: &str = "rpc-server";
pub const SOCKPERF_ECHO: &str = "sockperf-echo";
pub const RPC_RELAY: &str = "rpc-relay";

/// Most relays one graph holds: their addresses are searched linearly per packet not for the
/// server's own address, and a sidecar chain longer than this on one worker says more about
/// the chain than about a hop.
pub const MAX_RELAYS: usize = 16;

/// The relays' listen addresses: ours too (ARP answers for them, `ip4-input` accepts them),
/// and what `udp-input` sends to `rpc-relay`. A fixed array, so [`NodeConfig`] stays `Copy`
/// and nothing on the packet path allocates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayIps {
    ips: [Ipv4Address; MAX_RELAYS],
    len: usize,
}

impl RelayIps {
    /// Adds `ip`; false when [`MAX_RELAYS`] are there already.
    pub fn push(&mut self, ip: Ipv4Address) -> bool {
        let Some(slot) = self.ips.get_mut(self.len) else {
            return false;
        };
        *slot = ip;
        self.len += 1;
        true
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn contains(&self, ip: Ipv4Address) -> bool {
        self.as_slice().contains(&ip)
    }

    #[inline]
    pub fn as_slice(&self) -> &[Ipv4Address] {
        &self.ips[..self.len]
    }
}

/// Addressing and limits shared by all server nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeConfig {
    pub mac: MacAddress,
    pub ip: Ipv4Address,
    pub rpc_port: u16,
    /// If equal to `rpc_port`, RPC wins and sockperf is unreachable.
    pub sockperf_port: u16,
    /// RPC replicas answered on `rpc_port..rpc_port + rpc_replicas` (at least 1).
    pub rpc_replicas: u16,
    /// The service-time model every request answered Ok is held for.
    pub service: Option<ServiceModel>,
    /// Longest `spin` a client may ask for; longer ones get status 3.
    pub spin_max_ns: u32,
    /// Longest frame accepted, in bytes, without FCS unless the NIC keeps
    /// it. Longer frames are dropped as "oversize".
    pub max_frame_len: usize,
    /// How `ip4-input` and `udp-input` treat received checksums: the port's
    /// resolved policy (one port per worker, so one policy per graph).
    pub rx_checksum: RxChecksum,
    /// The `rpc-relay` instances' addresses (none unless relays are configured).
    pub relay_ips: RelayIps,
}

/// A port's resolved rx checksum policy, as the nodes apply it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxChecksum {
    /// Sum every IPv4 header and UDP datagram in software: an untrusted
    /// port, and every graph built on byte buffers (tests, fuzzing).
    #[default]
    Verify,
    /// Check nothing: the peer is a local process (net_memif, net_ring).
    Trust,
    /// Act on the NIC's per-packet verdict; software only where it has none.
    Offload,
}

/// What is left to do for one checksum of one packet under a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SumCheck {
    Software,
    Skip,
    /// The NIC found it wrong: dropped under the same reason as a software
    /// failure.
    Bad,
}

impl RxChecksum {
    /// `nic` is called on `Offload` ports only, so the other policies never
    /// touch the buffer's flags.
    #[inline(always)]
    pub(crate) fn check(self, nic: impl FnOnce() -> RxVerdict) -> SumCheck {
        match self {
            RxChecksum::Verify => SumCheck::Software,
            RxChecksum::Trust => SumCheck::Skip,
            RxChecksum::Offload => match nic() {
                RxVerdict::Good => SumCheck::Skip,
                RxVerdict::Bad => SumCheck::Bad,
                RxVerdict::Unknown => SumCheck::Software,
            },
        }
    }
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

    /// True for the server's address and every relay's.
    #[inline]
    pub fn is_ours(&self, ip: Ipv4Address) -> bool {
        ip == self.ip || self.relay_ips.contains(ip)
    }

    /// Our addresses with every other setting at its default.
    pub fn new(mac: MacAddress, ip: Ipv4Address) -> Self {
        Self {
            mac,
            ip,
            rpc_port: Self::DEFAULT_RPC_PORT,
            sockperf_port: Self::DEFAULT_SOCKPERF_PORT,
            rpc_replicas: 1,
            service: None,
            spin_max_ns: Self::DEFAULT_SPIN_MAX_NS,
            max_frame_len: Self::DEFAULT_MAX_FRAME_LEN,
            rx_checksum: RxChecksum::Verify,
            relay_ips: RelayIps::default(),
        }
    }
}

/// Every node puts `"drop"` first in its next list, so "dropped" is the
/// same edge index everywhere.
pub(crate) const NEXT_DROP: u16 = 0;

/// Edge property ([`Node::edge_props`]): Ethernet + option-less IPv4 whose
/// `total_len` ends the buffer, carrying UDP. Set by `ip4-input`.
pub(crate) const PROP_IPV4_UDP: u32 = 1 << 0;
/// Edge property: [`PROP_IPV4_UDP`] plus a UDP header whose length ends the
/// buffer (the layout [`UdpFrame::new_checked`](crate::wire::frame::UdpFrame::new_checked) checks). Set by `udp-input`.
pub(crate) const PROP_PLAIN_UDP: u32 = 1 << 1;

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
pub(crate) fn packet_loop<P, R, F>(
    ctx: &mut NodeCtx<'_>,
    pkts: &mut [P],
    nexts: &mut [u16],
    mut f: F,
) where
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

/// The drop-reason X-macro every program shares (src/drops.rs), re-exported so nodes find
/// their whole kit here.
pub(crate) use crate::drops::drop_reasons;
