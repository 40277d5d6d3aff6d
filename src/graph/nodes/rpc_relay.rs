//! `rpc-relay`: the fast path as a sidecar. Requests to a relay's listen address are
//! forwarded to one of its upstreams, rewritten in place (addresses, ports, TTL, checksums
//! updated incrementally, the relay's residence added to `server_ns`); replies to one of its
//! mapping ports go back to the client whose flow that port stands for. What it keeps and
//! when it forgets is in docs/protocol.md, "Relays".
//!
//! A relay source port per client flow (NAT-style): the flow table ([`FlowTable`]) is
//! allocated when the graph is built, so a full table is a counted drop, never a growing
//! structure, and a reply finds its flow by an index, not a search.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::graph::{Node, NodeCtx, PacketBuf, DROP, TX};
use crate::options::Balance;
use crate::os::tsc::{ns_to_ticks, TickScale};
use crate::wire::frame::UDP_HEADERS_LEN;
use crate::wire::rpc::{self, RpcHeader, RpcKind};
use crate::wire::{Ipv4Address, MacAddress, UdpEndpoints, UdpFrame};

use super::kit::{drop_reasons, NodeConfig, NEXT_DROP, PROP_PLAIN_UDP, RPC_RELAY};
use super::relay_table::{Client, FlowTable};

const NEXTS: &[&str] = &[DROP, TX];
const NEXT_TX: u16 = 1;

/// Headers plus the RPC header: every field the relay reads or rewrites lies in it.
const HEAD_LEN: usize = UDP_HEADERS_LEN + rpc::HEADER_LEN;
const SERVER_NS_AT: usize = UDP_HEADERS_LEN + rpc::field::SERVER_NS.start;

drop_reasons! {
    /// Why `rpc-relay` dropped a datagram instead of passing it on.
    RelayDrop {
        /// Not a plain Ethernet/IPv4/UDP frame; only reachable when the node is fed without
        /// `udp-input` in front of it.
        Malformed => "malformed",
        /// Addressed to none of the relays (`udp-input` only sends relay addresses here).
        UnknownRelay => "unknown-relay",
        /// Neither the relay's listen port nor one of its mapping ports.
        UnknownPort => "unknown-port",
        /// At the listen port, but not an RPC v1 request (short, bad magic or version, a
        /// response, a length past the datagram): a relay forwards requests only.
        NotRequest => "not-request",
        /// At a mapping port, but not an RPC v1 response or error.
        NotReply => "not-reply",
        /// Every slot the flow may take holds another live flow.
        TableFull => "table-full",
        /// A reply for a mapping port with no live flow: never used, or expired.
        UnknownMapping => "unknown-mapping",
        /// A reply from an address and port that is none of the relay's upstreams.
        WrongUpstream => "wrong-upstream",
        /// TTL 1 on arrival: a router decrements it to 0 and drops.
        TtlExpired => "ttl-expired",
    }
}

/// One upstream of a relay, its MAC resolved (ARP or configured) before the graph is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub mac: MacAddress,
    pub ip: Ipv4Address,
    pub port: u16,
}

/// One relay, as the server configured it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelaySpec {
    pub ip: Ipv4Address,
    pub port: u16,
    pub upstreams: Vec<Upstream>,
    /// The port (index in the worker's list) requests leave by; None: the one they came in
    /// on.
    pub via: Option<u16>,
    pub balance: Balance,
    /// Flow slots, one relay source port each: `first_port .. first_port + table`.
    pub table: usize,
    pub first_port: u16,
    /// A flow with no request or reply for this long is forgotten.
    pub expiry_ns: u64,
}

/// One relay's counts, as the control thread reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelaySnapshot {
    pub forwarded: u64,
    pub returned: u64,
    pub drops: [u64; RelayDrop::COUNT],
}

impl RelaySnapshot {
    pub fn add(&mut self, o: &RelaySnapshot) {
        self.forwarded += o.forwarded;
        self.returned += o.returned;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
    }
}

/// A relay's counters: written by its worker only (Relaxed stores of its own tallies), one
/// cache line each so neighbours do not share.
#[repr(align(64))]
#[derive(Default)]
struct RelayCell {
    forwarded: AtomicU64,
    returned: AtomicU64,
    drops: [AtomicU64; RelayDrop::COUNT],
}

/// Every relay's counters of one graph, in configuration order.
pub struct RelayCounters {
    cells: Box<[RelayCell]>,
}

impl RelayCounters {
    pub fn new(relays: usize) -> Arc<RelayCounters> {
        Arc::new(RelayCounters {
            cells: (0..relays).map(|_| RelayCell::default()).collect(),
        })
    }

    pub fn snapshot(&self) -> Vec<RelaySnapshot> {
        self.cells
            .iter()
            .map(|c| RelaySnapshot {
                forwarded: c.forwarded.load(Ordering::Relaxed),
                returned: c.returned.load(Ordering::Relaxed),
                drops: std::array::from_fn(|i| c.drops[i].load(Ordering::Relaxed)),
            })
            .collect()
    }

    fn publish(&self, i: usize, t: &RelaySnapshot) {
        let c = &self.cells[i];
        c.forwarded.store(t.forwarded, Ordering::Relaxed);
        c.returned.store(t.returned, Ordering::Relaxed);
        for (a, &v) in c.drops.iter().zip(&t.drops) {
            a.store(v, Ordering::Relaxed);
        }
    }
}

struct Relay {
    spec: RelaySpec,
    table: FlowTable,
    /// Round robin: the upstream the next request goes to.
    next: usize,
    tally: RelaySnapshot,
}

pub struct RpcRelay {
    mac: MacAddress,
    relays: Box<[Relay]>,
    counters: Arc<RelayCounters>,
    /// The TSC frequency the tables' expiry was converted at, and the residence's scale.
    scale: (u64, TickScale),
    /// Bit i: relay i's tally changed in this call and is published at its end.
    touched: u32,
}

impl RpcRelay {
    /// `relays` at most [`super::kit::MAX_RELAYS`]; their addresses must be in
    /// `cfg.relay_ips` for `ip4-input` and `udp-input` to send them here.
    pub fn new(cfg: &NodeConfig, relays: Vec<RelaySpec>, counters: Arc<RelayCounters>) -> Self {
        debug_assert!(relays.len() <= super::kit::MAX_RELAYS);
        debug_assert_eq!(counters.cells.len(), relays.len());
        RpcRelay {
            mac: cfg.mac,
            relays: relays
                .into_iter()
                .map(|spec| Relay {
                    table: FlowTable::new(spec.table, 0),
                    spec,
                    next: 0,
                    tally: RelaySnapshot::default(),
                })
                .collect(),
            counters,
            scale: (0, TickScale::from_hz(0)),
            touched: 0,
        }
    }

    /// The tables keep time in TSC ticks: converted once, when the graph's rate is first
    /// seen.
    fn set_hz(&mut self, hz: u64) {
        self.scale = (hz, TickScale::from_hz(hz));
        for r in self.relays.iter_mut() {
            r.table = FlowTable::new(r.spec.table, ns_to_ticks(r.spec.expiry_ns, hz));
        }
    }

    /// Passes one datagram on; counts it (or its drop) on its relay.
    #[inline]
    fn pass<P: PacketBuf, const PLAIN: bool>(
        &mut self,
        p: &mut P,
        now: u64,
        residence_ns: u32,
    ) -> Result<u16, RelayDrop> {
        if !PLAIN && UdpFrame::new_checked(p.data()).is_err() {
            return Err(RelayDrop::Malformed);
        }
        let ep = UdpFrame::new_unchecked(p.data()).endpoints();
        let Some(i) = self.relays.iter().position(|r| r.spec.ip == ep.dst_ip) else {
            return Err(RelayDrop::UnknownRelay);
        };
        self.touched |= 1 << i;
        let mac = self.mac;
        let r = &mut self.relays[i];
        let verdict = r.pass(mac, p, &ep, now, residence_ns);
        match verdict {
            Ok(Hop::Forwarded) => r.tally.forwarded += 1,
            Ok(Hop::Returned) => r.tally.returned += 1,
            Err(why) => r.tally.drops[why as usize] += 1,
        }
        verdict.map(|_| NEXT_TX)
    }
}

enum Hop {
    Forwarded,
    Returned,
}

impl Relay {
    #[inline]
    fn pass<P: PacketBuf>(
        &mut self,
        mac: MacAddress,
        p: &mut P,
        ep: &UdpEndpoints,
        now: u64,
        residence_ns: u32,
    ) -> Result<Hop, RelayDrop> {
        let s = &self.spec;
        let offset = ep.dst_port.wrapping_sub(s.first_port) as usize;
        if ep.dst_port == s.port {
            self.forward(mac, p, ep, now, residence_ns)
                .map(|()| Hop::Forwarded)
        } else if ep.dst_port >= s.first_port && offset < s.table {
            self.give_back(mac, p, ep, offset, now, residence_ns)
                .map(|()| Hop::Returned)
        } else {
            Err(RelayDrop::UnknownPort)
        }
    }

    /// A request: to an upstream, from the flow's relay source port.
    #[inline]
    fn forward<P: PacketBuf>(
        &mut self,
        mac: MacAddress,
        p: &mut P,
        ep: &UdpEndpoints,
        now: u64,
        residence_ns: u32,
    ) -> Result<(), RelayDrop> {
        if rpc_kind(p.data()) != Some(RpcKind::Request) {
            return Err(RelayDrop::NotRequest);
        }
        let ttl = ttl_after_hop(p.data())?;
        let client = Client {
            mac: ep.src_mac,
            ip: ep.src_ip,
            port: ep.src_port,
            ingress: p.port(),
        };
        let n = self.spec.upstreams.len();
        let balance = self.spec.balance;
        let rr = self.next;
        let Some(flow) = self.table.claim(&client, now, |h| match balance {
            Balance::Hash => (h % n as u64) as u16,
            Balance::RoundRobin => rr as u16,
        }) else {
            return Err(RelayDrop::TableFull);
        };
        // Hash: the flow's upstream for its life. Round robin: each request the next one,
        // whichever flow it belongs to (replies are accepted from any upstream of the relay).
        let upstream = match balance {
            Balance::Hash => usize::from(flow.upstream),
            Balance::RoundRobin => {
                self.next = (rr + 1) % n;
                rr
            }
        };
        let up = self.spec.upstreams[upstream % n];
        let to = UdpEndpoints {
            src_mac: mac,
            dst_mac: up.mac,
            src_ip: self.spec.ip,
            dst_ip: up.ip,
            src_port: self.spec.first_port + flow.slot as u16,
            dst_port: up.port,
        };
        rewrite(p, &to, ttl, residence_ns);
        p.set_port(self.spec.via.unwrap_or(client.ingress));
        Ok(())
    }

    /// A reply on mapping port `slot`: back to the flow's client, from the listen address.
    #[inline]
    fn give_back<P: PacketBuf>(
        &mut self,
        mac: MacAddress,
        p: &mut P,
        ep: &UdpEndpoints,
        slot: usize,
        now: u64,
        residence_ns: u32,
    ) -> Result<(), RelayDrop> {
        if !matches!(rpc_kind(p.data()), Some(RpcKind::Response | RpcKind::Error)) {
            return Err(RelayDrop::NotReply);
        }
        if !self
            .spec
            .upstreams
            .iter()
            .any(|u| u.ip == ep.src_ip && u.port == ep.src_port)
        {
            return Err(RelayDrop::WrongUpstream);
        }
        let ttl = ttl_after_hop(p.data())?;
        let Some(client) = self.table.reply_to(slot, now) else {
            return Err(RelayDrop::UnknownMapping);
        };
        let to = UdpEndpoints {
            src_mac: mac,
            dst_mac: client.mac,
            src_ip: self.spec.ip,
            dst_ip: client.ip,
            src_port: self.spec.port,
            dst_port: client.port,
        };
        rewrite(p, &to, ttl, residence_ns);
        p.set_port(client.ingress);
        Ok(())
    }
}

/// The RPC kind of a well-formed v1 message (magic, version, a length the datagram holds);
/// None for anything else.
#[inline]
fn rpc_kind(data: &[u8]) -> Option<RpcKind> {
    let h = data.first_chunk::<HEAD_LEN>()?;
    let m = RpcHeader::new_unchecked(&h[UDP_HEADERS_LEN..]);
    (m.magic() == rpc::MAGIC
        && m.version() == rpc::VERSION
        && m.length() as usize <= data.len() - HEAD_LEN)
        .then(|| m.kind())
}

/// The TTL the datagram leaves with, as a router sets it: one less, and a drop where that is 0.
#[inline]
fn ttl_after_hop(data: &[u8]) -> Result<u8, RelayDrop> {
    match data[crate::wire::frame::field::IP_TTL] {
        0 | 1 => Err(RelayDrop::TtlExpired),
        t => Ok(t - 1),
    }
}

/// Readdresses to `to` and adds the relay's residence to `server_ns` (docs/protocol.md: a
/// request carries the residences of the relays it passed, the server adds its own).
#[inline]
fn rewrite<P: PacketBuf>(p: &mut P, to: &UdpEndpoints, ttl: u8, residence_ns: u32) {
    let data = p.data_mut();
    let Some(h) = data.first_chunk::<HEAD_LEN>() else {
        return;
    };
    let ns = u32::from_be_bytes([
        h[SERVER_NS_AT],
        h[SERVER_NS_AT + 1],
        h[SERVER_NS_AT + 2],
        h[SERVER_NS_AT + 3],
    ]);
    let mut frame = UdpFrame::new_unchecked(data);
    frame.forward(to, ttl);
    frame.set_payload_u32(rpc::field::SERVER_NS.start, ns.saturating_add(residence_ns));
}

impl<P: PacketBuf> Node<P> for RpcRelay {
    fn name(&self) -> &'static str {
        RPC_RELAY
    }

    fn next_nodes(&self) -> &'static [&'static str] {
        NEXTS
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        RelayDrop::NAMES
    }

    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        let hz = ctx.tsc_hz();
        if self.scale.0 != hz {
            self.set_hz(hz);
        }
        let now = ctx.rx_tsc();
        let residence = u32::try_from(
            self.scale
                .1
                .ticks_to_ns(ctx.start_tsc().saturating_sub(now)),
        )
        .unwrap_or(u32::MAX);
        let plain = ctx.guaranteed(PROP_PLAIN_UDP);
        for (p, next) in pkts.iter_mut().zip(nexts.iter_mut()) {
            let verdict = if plain {
                self.pass::<P, true>(p, now, residence)
            } else {
                self.pass::<P, false>(p, now, residence)
            };
            *next = match verdict {
                Ok(n) => n,
                Err(why) => {
                    ctx.drop(why.into());
                    NEXT_DROP
                }
            };
        }
        let mut touched = std::mem::take(&mut self.touched);
        while touched != 0 {
            let i = touched.trailing_zeros() as usize;
            touched &= touched - 1;
            self.counters.publish(i, &self.relays[i].tally);
        }
    }
}
