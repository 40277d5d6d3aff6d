//! `rpc-relay` on byte buffers: the rewrite of both directions (addresses, ports, TTL,
//! checksums, `server_ns`, egress port), the mapping table's limits (full, expiry, unknown
//! and late replies), balancing, every drop reason, and a chain of relays in front of the
//! server inside one graph, its frames looped back as a net_ring port would.

use std::sync::Arc;

use super::kit::{NodeConfig, RelayIps};
use super::test_util::*;
use super::*;
use crate::graph::{now_tsc, GraphStats, NodeCtx, PacketVector, VecBuf, TX};
use crate::options::Balance;
use crate::wire::frame::field;
use crate::wire::rpc::{self, RpcHeader, RpcKind, RpcStatus};
use crate::wire::{Ipv4Address, MacAddress, RpcMethod, RpcRepr, UdpEndpoints, UdpFrame};

const RELAY_IP: Ipv4Address = Ipv4Address([198, 18, 0, 11]);
const UP_MAC: MacAddress = MacAddress([2, 0, 0, 0, 0, 0x33]);
const UP_IP: Ipv4Address = Ipv4Address([198, 18, 0, 33]);
const UP2_IP: Ipv4Address = Ipv4Address([198, 18, 0, 34]);
const FIRST: u16 = 50_000;
/// An rx stamp after any real TSC reading, so the node's residence is a deterministic 0
/// (`start - rx` saturates) while the table's clock still moves by wrapping differences.
const T0: u64 = u64::MAX - 100_000_000_000;

fn upstream(ip: Ipv4Address) -> Upstream {
    Upstream {
        mac: UP_MAC,
        ip,
        port: 7777,
    }
}

fn spec(upstreams: Vec<Upstream>) -> RelaySpec {
    RelaySpec {
        ip: RELAY_IP,
        port: 7777,
        upstreams,
        via: Some(1),
        balance: Balance::RoundRobin,
        table: 64,
        first_port: FIRST,
        expiry_ns: 1_000_000_000,
    }
}

fn relay_cfg(ips: &[Ipv4Address]) -> NodeConfig {
    let mut relay_ips = RelayIps::default();
    for &ip in ips {
        assert!(relay_ips.push(ip));
    }
    NodeConfig { relay_ips, ..cfg() }
}

fn relay(specs: Vec<RelaySpec>) -> (RpcRelay, Arc<RelayCounters>) {
    let ips: Vec<_> = specs.iter().map(|s| s.ip).collect();
    let counters = RelayCounters::new(specs.len());
    (
        RpcRelay::new(&relay_cfg(&ips), specs, Arc::clone(&counters)),
        counters,
    )
}

/// A client's request to the relay, its `server_ns` field holding `ns`.
fn request_from(src_port: u16, id: u64, ns: u32, payload: &[u8]) -> Vec<u8> {
    let ep = UdpEndpoints {
        dst_ip: RELAY_IP,
        src_port,
        ..to_us(7777)
    };
    let repr = RpcRepr {
        server_ns: ns,
        ..RpcRepr::request(RpcMethod::Echo, id, 5, payload.len() as u32)
    };
    rpc_frame_ep(&ep, &repr, payload)
}

/// What the upstream answers to a forwarded request `fwd`.
fn answer(fwd: &[u8], kind: RpcKind, ns: u32) -> Vec<u8> {
    let f = UdpFrame::new_checked(fwd).unwrap();
    let req = RpcHeader::new_checked(f.payload()).unwrap();
    let repr = RpcRepr {
        kind,
        server_ns: ns,
        ..RpcRepr::parse(&req).unwrap()
    };
    rpc_frame_ep(&f.endpoints().reversed(), &repr, req.payload())
}

/// Runs the node on buffers tagged with their ingress port.
fn run(
    node: &mut RpcRelay,
    frames: &[(Vec<u8>, u16)],
    rx_tsc: u64,
) -> (Vec<VecBuf>, Vec<u16>, Vec<u64>) {
    let mut pkts: Vec<VecBuf> = frames
        .iter()
        .map(|(f, port)| {
            let mut b = VecBuf::from_slice(f);
            b.set_port(*port);
            b
        })
        .collect();
    let mut nexts = vec![u16::MAX; pkts.len()];
    let mut drops = vec![0u64; RelayDrop::COUNT];
    let mut ctx = NodeCtx::new(&mut drops, rx_tsc, HZ);
    crate::graph::Node::process(node, &mut ctx, &mut pkts, &mut nexts);
    let dropped = nexts.iter().filter(|&&n| n == 0).count() as u64;
    assert_eq!(drops.iter().sum::<u64>(), dropped, "every drop is counted");
    (pkts, nexts, drops)
}

fn server_ns(f: &[u8]) -> u32 {
    RpcHeader::new_checked(&f[field::PAYLOAD..])
        .unwrap()
        .server_ns()
}

#[test]
fn a_request_goes_upstream_and_its_reply_back_to_the_client() {
    let (mut node, counters) = relay(vec![spec(vec![upstream(UP_IP)])]);
    let req = request_from(40_001, 7, 120, b"payload");
    let (pkts, nexts, _) = run(&mut node, &[(req.clone(), 0)], T0);
    assert_eq!(nexts, [1]);
    let fwd = pkts[0].data().to_vec();
    assert_checksums_ok(&fwd, true);
    let f = UdpFrame::new_checked(&fwd[..]).unwrap();
    let ep = f.endpoints();
    assert_eq!((ep.dst_mac, ep.dst_ip, ep.dst_port), (UP_MAC, UP_IP, 7777));
    assert_eq!((ep.src_mac, ep.src_ip), (OUR_MAC, RELAY_IP));
    assert!((FIRST..FIRST + 64).contains(&ep.src_port), "a mapping port");
    assert_eq!(fwd[field::IP_TTL], req[field::IP_TTL] - 1, "decremented");
    assert_eq!(pkts[0].port(), 1, "out the via port");
    assert_eq!(
        server_ns(&fwd),
        120,
        "the request's own value plus a residence of 0"
    );
    assert_eq!(
        &fwd[field::PAYLOAD..],
        &req[field::PAYLOAD..][..],
        "the RPC message untouched but server_ns"
    );

    let reply = answer(&fwd, RpcKind::Response, 900);
    let (pkts, nexts, _) = run(&mut node, &[(reply.clone(), 1)], T0 + 10);
    assert_eq!(nexts, [1]);
    let back = pkts[0].data().to_vec();
    assert_checksums_ok(&back, true);
    let ep = UdpFrame::new_checked(&back[..]).unwrap().endpoints();
    let client = UdpEndpoints {
        dst_ip: RELAY_IP,
        src_port: 40_001,
        ..to_us(7777)
    };
    assert_eq!(ep, client.reversed());
    assert_eq!(
        pkts[0].port(),
        0,
        "back out the port the request came in on"
    );
    assert_eq!(back[field::IP_TTL], reply[field::IP_TTL] - 1);
    let h = RpcHeader::new_checked(&back[field::PAYLOAD..]).unwrap();
    assert_eq!(
        (h.request_id(), h.kind(), h.payload()),
        (7, RpcKind::Response, &b"payload"[..])
    );
    let snap = counters.snapshot();
    assert_eq!((snap[0].forwarded, snap[0].returned), (1, 1));
    assert_eq!(snap[0].drops, [0; RelayDrop::COUNT]);
}

#[test]
fn the_residence_is_added_both_ways() {
    let (mut node, _) = relay(vec![spec(vec![upstream(UP_IP)])]);
    // An rx stamp 2 ms (at the tests' nominal 1 GHz) before now: the residence is at least
    // that.
    let rx = now_tsc() - 2_000_000;
    let (pkts, _, _) = run(&mut node, &[(request_from(40_001, 1, 5, b""), 0)], rx);
    let fwd = pkts[0].data().to_vec();
    assert!(server_ns(&fwd) >= 5 + 2_000_000, "{}", server_ns(&fwd));
    let reply = answer(&fwd, RpcKind::Response, 1_000);
    // Later than the request's stamp, or the flow would look expired.
    let (pkts, nexts, _) = run(&mut node, &[(reply, 1)], now_tsc() - 1_000_000);
    assert_eq!(nexts, [1]);
    assert!(server_ns(pkts[0].data()) >= 1_000 + 1_000_000);
    assert_checksums_ok(pkts[0].data(), true);
}

#[test]
fn a_full_table_drops_new_flows_and_keeps_the_old() {
    let mut s = spec(vec![upstream(UP_IP)]);
    s.table = 1;
    let (mut node, counters) = relay(vec![s]);
    let (_, nexts, drops) = run(
        &mut node,
        &[
            (request_from(40_001, 1, 0, b""), 0),
            (request_from(40_002, 2, 0, b""), 0),
            (request_from(40_001, 3, 0, b""), 0),
        ],
        T0,
    );
    assert_eq!(nexts, [1, 0, 1]);
    assert_eq!(drops[RelayDrop::TableFull as usize], 1);
    assert_eq!(
        counters.snapshot()[0].drops[RelayDrop::TableFull as usize],
        1
    );
    // Once the first flow expires, the second gets its slot.
    let (_, nexts, _) = run(
        &mut node,
        &[(request_from(40_002, 4, 0, b""), 0)],
        T0 + 1_000_000_001,
    );
    assert_eq!(nexts, [1]);
}

#[test]
fn late_unknown_and_foreign_replies_are_dropped() {
    let (mut node, counters) = relay(vec![spec(vec![upstream(UP_IP)])]);
    let (pkts, _, _) = run(&mut node, &[(request_from(40_001, 1, 0, b""), 0)], T0);
    let fwd = pkts[0].data().to_vec();
    let reply = answer(&fwd, RpcKind::Response, 0);
    // Another mapping port than the flow's: never used.
    let mut unknown = reply.clone();
    let port = UdpFrame::new_checked(&fwd[..]).unwrap().src_port();
    let other = if port == FIRST { FIRST + 1 } else { FIRST };
    unknown[field::UDP_DST_PORT].copy_from_slice(&other.to_be_bytes());
    refill_udp_csum(&mut unknown);
    // From an address that is no upstream of the relay.
    let mut foreign = reply.clone();
    foreign[field::IP_SRC].copy_from_slice(&UP2_IP.0);
    refill_ip_csum(&mut foreign);
    refill_udp_csum(&mut foreign);
    let (_, nexts, drops) = run(&mut node, &[(unknown, 1), (foreign, 1)], T0 + 1);
    assert_eq!(nexts, [0, 0]);
    assert_eq!(drops[RelayDrop::UnknownMapping as usize], 1);
    assert_eq!(drops[RelayDrop::WrongUpstream as usize], 1);
    // The real reply, after the flow expired: late, so unknown.
    let (_, nexts, drops) = run(&mut node, &[(reply.clone(), 1)], T0 + 1_000_000_001);
    assert_eq!(nexts, [0]);
    assert_eq!(drops[RelayDrop::UnknownMapping as usize], 1);
    let snap = counters.snapshot()[0];
    assert_eq!((snap.forwarded, snap.returned), (1, 0));
    assert_eq!(snap.drops[RelayDrop::UnknownMapping as usize], 2);
}

#[test]
fn every_drop_has_its_reason() {
    let (mut node, _) = relay(vec![spec(vec![upstream(UP_IP)])]);
    let req = request_from(40_001, 1, 0, b"x");
    let edit = |mut f: Vec<u8>, g: &dyn Fn(&mut Vec<u8>)| {
        g(&mut f);
        refill_ip_csum(&mut f);
        refill_udp_csum(&mut f);
        f
    };
    let rpc = field::PAYLOAD;
    let cases: Vec<(Vec<u8>, RelayDrop)> = vec![
        (
            edit(req.clone(), &|f| {
                f[field::IP_DST].copy_from_slice(&OUR_IP.0)
            }),
            RelayDrop::UnknownRelay,
        ),
        (
            edit(req.clone(), &|f| {
                f[field::UDP_DST_PORT].copy_from_slice(&9u16.to_be_bytes())
            }),
            RelayDrop::UnknownPort,
        ),
        (
            edit(req.clone(), &|f| f[rpc + rpc::field::KIND] = 1),
            RelayDrop::NotRequest,
        ),
        (edit(req.clone(), &|f| f[rpc] = 0), RelayDrop::NotRequest),
        (
            edit(req.clone(), &|f| f[rpc + rpc::field::LENGTH.end - 1] = 2),
            RelayDrop::NotRequest,
        ),
        (
            edit(req.clone(), &|f| f[field::IP_TTL] = 1),
            RelayDrop::TtlExpired,
        ),
        (
            // A request sent to a mapping port.
            edit(req.clone(), &|f| {
                f[field::UDP_DST_PORT].copy_from_slice(&FIRST.to_be_bytes())
            }),
            RelayDrop::NotReply,
        ),
        (req[..40].to_vec(), RelayDrop::Malformed),
    ];
    for (f, why) in cases {
        let (_, nexts, drops) = run(&mut node, &[(f, 0)], T0);
        assert_eq!(nexts, [0], "{why:?}");
        assert_eq!(drops[why as usize], 1, "{why:?}");
    }
}

#[test]
fn round_robin_takes_turns_and_hash_sticks_to_a_flow() {
    let ups = vec![upstream(UP_IP), upstream(UP2_IP)];
    let dsts = |node: &mut RpcRelay, ports: &[u16]| -> Vec<Ipv4Address> {
        let frames: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(i, &p)| (request_from(p, i as u64, 0, b""), 0))
            .collect();
        let (pkts, _, _) = run(node, &frames, T0);
        pkts.iter()
            .map(|p| UdpFrame::new_checked(p.data()).unwrap().endpoints().dst_ip)
            .collect()
    };
    let (mut rr, _) = relay(vec![spec(ups.clone())]);
    assert_eq!(
        dsts(&mut rr, &[40_001, 40_001, 40_002, 40_001]),
        [UP_IP, UP2_IP, UP_IP, UP2_IP]
    );
    let mut s = spec(ups);
    s.balance = Balance::Hash;
    let (mut hash, _) = relay(vec![s]);
    let ports: Vec<u16> = (40_000..40_032).collect();
    let first = dsts(&mut hash, &ports);
    assert_eq!(dsts(&mut hash, &ports), first, "one flow, one upstream");
    assert!(
        first.contains(&UP_IP) && first.contains(&UP2_IP),
        "both used: {first:?}"
    );
}

#[test]
fn without_via_a_request_leaves_by_its_ingress() {
    let mut s = spec(vec![upstream(UP_IP)]);
    s.via = None;
    let (mut node, _) = relay(vec![s]);
    let (pkts, _, _) = run(&mut node, &[(request_from(40_001, 1, 0, b""), 3)], T0);
    assert_eq!(pkts[0].port(), 3);
}

/// The relay node and the server in one graph: hops R1 -> R2 -> server, every frame the
/// graph sends to port 1 fed back in as a net_ring loopback does.
#[test]
fn a_chain_of_relays_in_one_graph_answers_the_client() {
    let r1 = Ipv4Address([198, 18, 0, 11]);
    let r2 = Ipv4Address([198, 18, 0, 12]);
    let local = |ip| Upstream {
        mac: OUR_MAC,
        ip,
        port: 7777,
    };
    let specs = vec![
        RelaySpec {
            ip: r1,
            ..spec(vec![local(r2)])
        },
        RelaySpec {
            ip: r2,
            first_port: FIRST + 1000,
            ..spec(vec![local(OUR_IP)])
        },
    ];
    let counters = RelayCounters::new(2);
    let mut g =
        build_relay_graph::<VecBuf>(&relay_cfg(&[r1, r2]), specs, Arc::clone(&counters), HZ)
            .unwrap();
    let client = UdpEndpoints {
        dst_ip: r1,
        ..to_us(7777)
    };
    let repr = RpcRepr::request(RpcMethod::Echo, 42, 9, 3);
    let mut input = PacketVector::new();
    input
        .push(VecBuf::from_slice(&rpc_frame_ep(&client, &repr, b"abc")))
        .unwrap();
    let mut out = PacketVector::new();
    let mut passes = 0;
    let reply = loop {
        passes += 1;
        assert!(passes <= 10, "the chain loops");
        g.dispatch(&mut input, now_tsc(), &mut out);
        assert_eq!(out.len(), 1, "pass {passes}");
        let p = out.drain().next().unwrap();
        assert_checksums_ok(p.data(), true);
        if p.port() == 0 {
            break p;
        }
        input.push(p).unwrap();
    };
    // R1, R2, the server, R2, R1.
    assert_eq!(passes, 5);
    let f = UdpFrame::new_checked(reply.data()).unwrap();
    assert_eq!(f.endpoints(), client.reversed());
    let h = RpcHeader::new_checked(f.payload()).unwrap();
    assert_eq!(
        (h.kind(), h.status(), h.request_id(), h.payload()),
        (RpcKind::Response, RpcStatus::Ok, 42, &b"abc"[..])
    );
    for s in counters.snapshot() {
        assert_eq!((s.forwarded, s.returned), (1, 1));
    }
    let stats: GraphStats = g.stats();
    assert_eq!(stats.node(TX).unwrap().packets, 5);
    assert_eq!(stats.total_drops(), 0);
    assert_eq!(stats.node(RPC_RELAY).unwrap().packets, 4);
}
