//! Whole-graph tests: frames in at `ethernet-input`, replies out of `tx`,
//! every other frame accounted for by exactly one drop counter.

use crate::graph::{
    now_tsc, GraphStats, NodeCtx, PacketBuf, PacketVector, RxVerdict, VecBuf, DROP, TX, TX_FULL,
    VECTOR_SIZE,
};
use crate::wire::rpc::{RpcHeader, RpcKind, RpcStatus};
use crate::wire::sockperf::{FLAG_CLIENT, FLAG_PONG_REQUEST, FLAG_WARMUP};
use crate::wire::{Ipv4Address, RpcMethod, RpcRepr};

use super::kit::{PROP_IPV4_UDP, PROP_PLAIN_UDP};
use super::test_util::*;
use super::*;

/// Inserts an 802.1Q tag (VLAN 5) after the source MAC.
fn vlan_tagged(f: &[u8]) -> Vec<u8> {
    let mut t = f[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    t.extend_from_slice(&f[12..]);
    t
}

fn edit_ip(mut f: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    edit(&mut f);
    refill_ip_csum(&mut f);
    f
}

fn rpc_reply(
    method: RpcMethod,
    id: u64,
    kind: RpcKind,
    status: RpcStatus,
    ns: u32,
    payload: &[u8],
) -> Vec<u8> {
    let repr = RpcRepr {
        kind,
        status,
        server_ns: ns,
        ..RpcRepr::request(method, id, 1_000_000_007 + id, 0)
    };
    rpc_frame_ep(&to_us(7777).reversed(), &repr, payload)
}

fn dispatch(frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, GraphStats) {
    let mut g = build_server_graph::<VecBuf>(&cfg(), HZ).unwrap();
    let mut input = PacketVector::new();
    for f in frames {
        input.push(VecBuf::from_slice(f)).unwrap();
    }
    let mut out = PacketVector::new();
    g.dispatch(&mut input, now_tsc(), &mut out);
    let tx = out.drain().map(|p| p.data().to_vec()).collect();
    (tx, g.stats())
}

/// Every node-reason drop, plus tx: their sum must equal the input.
fn assert_conserved(stats: &GraphStats, n_in: usize, n_tx: usize) {
    assert_eq!(stats.node(ETHERNET_INPUT).unwrap().packets, n_in as u64);
    assert_eq!(stats.node(TX).unwrap().packets, n_tx as u64);
    assert_eq!(stats.drops(TX, TX_FULL), 0);
    assert_eq!(
        stats.node(DROP).unwrap().total_drops(),
        0,
        "no unattributed drops"
    );
    assert_eq!(stats.total_drops() + n_tx as u64, n_in as u64);
    assert_eq!(stats.node(DROP).unwrap().packets, stats.total_drops());
}

#[test]
fn graph_shape() {
    let g = build_server_graph::<VecBuf>(&cfg(), HZ).unwrap();
    assert_eq!(g.entry_name(), ETHERNET_INPUT);
    let mut names: Vec<_> = g.node_names().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            ARP_REPLY,
            ETHERNET_INPUT,
            ICMP_ECHO,
            IP4_INPUT,
            RPC_RELAY,
            RPC_SERVER,
            SOCKPERF_ECHO,
            UDP_INPUT
        ]
    );
    let stats = g.stats();
    for (node, reasons) in [
        (ETHERNET_INPUT, EthernetDrop::NAMES),
        (ARP_REPLY, ArpDrop::NAMES),
        (IP4_INPUT, Ip4Drop::NAMES),
        (ICMP_ECHO, IcmpDrop::NAMES),
        (UDP_INPUT, UdpDrop::NAMES),
        (RPC_SERVER, RpcDrop::NAMES),
        (SOCKPERF_ECHO, SockperfDrop::NAMES),
        (RPC_RELAY, RelayDrop::NAMES),
    ] {
        let got: Vec<_> = stats
            .node(node)
            .unwrap()
            .drops
            .iter()
            .map(|d| d.0)
            .collect();
        assert_eq!(got, reasons, "{node}");
    }
}

#[test]
fn mixed_vector() {
    let echo = rpc_request(RpcMethod::Echo, 1, b"hello");
    let spin = spin_request(2, 1000);
    let spin_over = spin_request(3, 1_000_001);
    let unknown = rpc_request(RpcMethod::Other(9), 4, b"what is this");
    let arp_us = arp_request(PEER_MAC, PEER_IP, OUR_IP);
    let arp_other = arp_request(PEER_MAC, PEER_IP, Ipv4Address([198, 18, 0, 9]));
    let arp_probe = arp_request(PEER_MAC, Ipv4Address::UNSPECIFIED, OUR_IP);
    let ping = icmp_echo_request(b"abcdefgh");
    let mut ping_padded = icmp_echo_request(b"");
    ping_padded.resize(60, 0xee);
    let pong_req = sockperf_message(10, FLAG_CLIENT | FLAG_PONG_REQUEST, 64);
    let pong = udp_frame(&to_us(11111), &pong_req);
    let no_pong = udp_frame(
        &to_us(11111),
        &sockperf_message(11, FLAG_CLIENT | FLAG_WARMUP, 64),
    );

    let mut not_for_us = echo.clone();
    not_for_us[5] = 0x99;
    let mut bcast_src = echo.clone();
    bcast_src[6..12].fill(0xff);
    let mut ipv6 = echo.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut bad_ip_csum = echo.clone();
    bad_ip_csum[25] ^= 0x10;
    let mut options = echo[..34].to_vec();
    options.extend_from_slice(&[1, 1, 1, 0]);
    options.extend_from_slice(&echo[34..]);
    let options = edit_ip(options, |f| {
        f[14] = 0x46;
        let total = (f.len() - 14) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
    });
    let mut bad_udp_csum = echo.clone();
    bad_udp_csum[41] ^= 0x01;
    let mut bad_magic = echo.clone();
    bad_magic[42] = 0;
    refill_udp_csum(&mut bad_magic);
    let reflected = rpc_reply(
        RpcMethod::Echo,
        5,
        RpcKind::Response,
        RpcStatus::Ok,
        0,
        b"x",
    );
    // Our reply reflected back with addresses flipped, as an attacker would.
    let mut reflected_to_us = rpc_request(RpcMethod::Echo, 5, b"x");
    reflected_to_us[42 + 3] = 1;
    refill_udp_csum(&mut reflected_to_us);

    let junk: Vec<(Vec<u8>, &str, &str)> = vec![
        (vec![0; 10], ETHERNET_INPUT, "runt"),
        (
            udp_frame(&to_us(7777), &[0; 1600 - 42]),
            ETHERNET_INPUT,
            "oversize",
        ),
        (not_for_us, ETHERNET_INPUT, "not-for-us"),
        (vlan_tagged(&echo), ETHERNET_INPUT, "vlan"),
        (bcast_src, ETHERNET_INPUT, "bad-src-mac"),
        (ipv6, ETHERNET_INPUT, "unknown-ethertype"),
        (arp_other, ARP_REPLY, "not-our-ip"),
        (arp_probe, ARP_REPLY, "bad-sender"),
        (echo[..40].to_vec(), IP4_INPUT, "truncated"),
        (bad_ip_csum, IP4_INPUT, "bad-checksum"),
        (options, IP4_INPUT, "options"),
        (
            edit_ip(echo.clone(), |f| f[20] = 0x20),
            IP4_INPUT,
            "fragment",
        ),
        (
            edit_ip(echo.clone(), |f| f[33] = 2),
            IP4_INPUT,
            "not-our-ip",
        ),
        (
            edit_ip(echo.clone(), |f| f[26] = 230),
            IP4_INPUT,
            "bad-src-ip",
        ),
        (
            edit_ip(echo.clone(), |f| f[22] = 0),
            IP4_INPUT,
            "ttl-expired",
        ),
        (
            edit_ip(echo.clone(), |f| f[23] = 6),
            IP4_INPUT,
            "unknown-protocol",
        ),
        (udp_frame(&to_us(53), b"dns?"), UDP_INPUT, "unknown-port"),
        (bad_udp_csum, UDP_INPUT, "bad-checksum"),
        (bad_magic, RPC_SERVER, "bad-magic"),
        (reflected_to_us, RPC_SERVER, "not-request"),
        (no_pong, SOCKPERF_ECHO, "no-reply-wanted"),
        // Our own reply looped back: wrong MAC/IP direction, never answered.
        (reflected, ETHERNET_INPUT, "not-for-us"),
    ];

    let answered = [
        echo.clone(),
        spin.clone(),
        spin_over.clone(),
        unknown.clone(),
        arp_us.clone(),
        ping.clone(),
        ping_padded.clone(),
        pong.clone(),
    ];
    // Interleave answered and junk so every node sees mixed vectors.
    let mut frames = Vec::new();
    for i in 0..answered.len().max(junk.len()) {
        if let Some(f) = answered.get(i) {
            frames.push(f.clone());
        }
        if let Some((f, _, _)) = junk.get(i) {
            frames.push(f.clone());
        }
    }
    let (tx, stats) = dispatch(&frames);
    assert_eq!(tx.len(), answered.len());

    // One stamp for the whole rpc-server vector, taken after the spin.
    let rpc_out: Vec<_> = tx
        .iter()
        .filter(|f| f.len() >= 74 && f[34..36] == [0x1e, 0x61])
        .collect();
    assert_eq!(rpc_out.len(), 4);
    let ns = RpcHeader::new_checked(&rpc_out[0][42..])
        .unwrap()
        .server_ns();
    assert!(ns >= 1000, "server_ns {ns} includes the 1000 ns spin");

    let mut want = vec![
        rpc_reply(
            RpcMethod::Echo,
            1,
            RpcKind::Response,
            RpcStatus::Ok,
            ns,
            b"hello",
        ),
        rpc_reply(
            RpcMethod::Spin,
            2,
            RpcKind::Response,
            RpcStatus::Ok,
            ns,
            &1000u32.to_be_bytes(),
        ),
        rpc_reply(
            RpcMethod::Spin,
            3,
            RpcKind::Error,
            RpcStatus::BadArgument,
            ns,
            b"",
        ),
        rpc_reply(
            RpcMethod::Other(9),
            4,
            RpcKind::Error,
            RpcStatus::UnknownMethod,
            ns,
            b"",
        ),
        arp_reply_to_peer(),
        icmp_echo_reply(b"abcdefgh"),
        icmp_echo_reply(b""),
        udp_frame(
            &to_us(11111).reversed(),
            &sockperf_message(10, FLAG_PONG_REQUEST, 64),
        ),
    ];
    let mut got = tx.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    for f in &tx {
        assert_checksums_ok(f, true);
    }

    let mut expected_drops: Vec<((&str, &str), u64)> = Vec::new();
    for (_, node, reason) in &junk {
        match expected_drops
            .iter_mut()
            .find(|(k, _)| *k == (*node, *reason))
        {
            Some((_, n)) => *n += 1,
            None => expected_drops.push(((node, reason), 1)),
        }
    }
    for n in &stats.nodes {
        for &(reason, count) in &n.drops {
            let want = expected_drops
                .iter()
                .find(|(k, _)| *k == (n.name, reason))
                .map_or(0, |d| d.1);
            assert_eq!(count, want, "{}/{reason}", n.name);
        }
    }
    assert_conserved(&stats, frames.len(), tx.len());
    assert_eq!(stats.node(RPC_SERVER).unwrap().packets, 6);
    assert_eq!(stats.node(SOCKPERF_ECHO).unwrap().packets, 2);
    assert_eq!(stats.node(ARP_REPLY).unwrap().packets, 3);
}

#[test]
fn replies_are_never_larger_than_requests() {
    let frames = vec![
        rpc_request(RpcMethod::Echo, 1, &[7; 1400]),
        rpc_request(RpcMethod::Other(9), 2, &[7; 1400]),
        rpc_request(RpcMethod::Spin, 3, &[0; 1400]),
        spin_request(4, 5),
        arp_request(PEER_MAC, PEER_IP, OUR_IP),
        icmp_echo_request(&[1; 1000]),
    ];
    for f in &frames {
        let (tx, stats) = dispatch(std::slice::from_ref(f));
        assert_eq!(tx.len(), 1);
        assert!(tx[0].len() <= f.len(), "{} > {}", tx[0].len(), f.len());
        assert_checksums_ok(&tx[0], true);
        assert_conserved(&stats, 1, 1);
    }
}

#[test]
fn full_vector_of_echoes() {
    let frames: Vec<_> = (0..VECTOR_SIZE as u64)
        .map(|i| rpc_request(RpcMethod::Echo, i, &i.to_be_bytes()))
        .collect();
    let (tx, stats) = dispatch(&frames);
    assert_eq!(tx.len(), VECTOR_SIZE);
    for (i, f) in tx.iter().enumerate() {
        let h = RpcHeader::new_checked(&f[42..]).unwrap();
        assert_eq!(h.request_id(), i as u64, "order kept on a home run");
        assert_eq!(h.kind(), RpcKind::Response);
        assert_eq!(h.payload(), &(i as u64).to_be_bytes());
        assert_checksums_ok(f, true);
    }
    assert_conserved(&stats, VECTOR_SIZE, VECTOR_SIZE);
    assert_eq!(stats.node(RPC_SERVER).unwrap().vectors, 1);
}

/// Runs `node` on `frames` twice, once told that every packet carries the
/// edge properties `props` and once not, and asserts identical verdicts,
/// bytes and drop counts: the properties only let a node skip checks whose
/// outcome they already fix.
fn same_verdicts_with_props<N: Node<VecBuf>>(mut node: N, props: u32, frames: &[Vec<u8>]) {
    let mut runs = Vec::new();
    for with in [props, 0] {
        let mut pkts: Vec<VecBuf> = frames.iter().map(|f| VecBuf::from_slice(f)).collect();
        let mut nexts = vec![u16::MAX; pkts.len()];
        let mut drops = vec![0u64; node.drop_reasons().len()];
        // rx stamp in the future: server_ns is a deterministic 0.
        let mut ctx = NodeCtx::with_start(&mut drops, u64::MAX, HZ, 0, with);
        assert_eq!(ctx.guaranteed(props), with != 0);
        node.process(&mut ctx, &mut pkts, &mut nexts);
        let bytes: Vec<Vec<u8>> = pkts.iter().map(|p| p.data().to_vec()).collect();
        runs.push((nexts, drops, bytes));
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn trusted_paths_give_the_same_verdicts() {
    let echo = rpc_request(RpcMethod::Echo, 1, b"hello");
    let mut zero_csum = echo.clone();
    zero_csum[40..42].fill(0);
    let edit = |at: usize, v: u8| {
        let mut f = echo.clone();
        f[at] = v;
        refill_udp_csum(&mut f);
        f
    };
    let mut bad_csum = echo.clone();
    bad_csum[60] ^= 0x10;
    // All plain Ethernet/IPv4/UDP frames, as the properties promise.
    let frames = vec![
        echo.clone(),
        zero_csum,
        bad_csum,
        edit(42, 0),   // bad magic
        edit(44, 2),   // bad version
        edit(45, 1),   // a response
        edit(73, 200), // length beyond the datagram
        rpc_request(RpcMethod::Other(9), 2, &[1; 40]),
        spin_request(3, 2_000_000),
        rpc_request(RpcMethod::Spin, 4, b"\0\0"),
        udp_frame(&to_us(7777), &echo[42..60]), // truncated RPC header
        udp_frame(&to_us(7777), b""),
        udp_frame(&to_us(11111), &[0; 14]),
        udp_frame(&to_us(53), b"q"),
    ];
    same_verdicts_with_props(RpcServer::new(&cfg()), PROP_PLAIN_UDP, &frames);
    same_verdicts_with_props(UdpInput::new(&cfg()), PROP_IPV4_UDP, &frames);
    // A UDP length that does not end the frame is still caught.
    let mut short_udp = echo;
    short_udp[38..40].copy_from_slice(&20u16.to_be_bytes());
    refill_udp_csum(&mut short_udp);
    same_verdicts_with_props(UdpInput::new(&cfg()), PROP_IPV4_UDP, &[short_udp]);
}

/// Runs `frames`, each with the NIC verdicts (IPv4 header, L4) an mbuf would carry, through
/// a graph whose port has the checksum policy `policy`.
fn dispatch_flagged(
    policy: RxChecksum,
    frames: &[(&[u8], RxVerdict, RxVerdict)],
) -> (Vec<Vec<u8>>, GraphStats) {
    let c = NodeConfig {
        rx_checksum: policy,
        ..cfg()
    };
    let mut g = build_server_graph::<VecBuf>(&c, HZ).unwrap();
    let mut input = PacketVector::new();
    for &(f, ip, l4) in frames {
        let mut b = VecBuf::from_slice(f);
        b.set_rx_checksums(ip, l4);
        input.push(b).unwrap();
    }
    let mut out = PacketVector::new();
    g.dispatch(&mut input, now_tsc(), &mut out);
    let tx: Vec<Vec<u8>> = out.drain().map(|p| p.data().to_vec()).collect();
    assert_conserved(&g.stats(), frames.len(), tx.len());
    (tx, g.stats())
}

/// The per-port checksum policy: what `verify` drops, `trust` answers; `offload` follows the
/// NIC's verdict and falls back to software where it has none.
#[test]
fn checksum_policy_per_port() {
    use RxVerdict::{Bad, Good, Unknown};
    let echo = rpc_request(RpcMethod::Echo, 1, b"hello");
    // Only the checksum fields are wrong: every other check passes.
    let mut bad_ip = echo.clone();
    bad_ip[25] ^= 0x10;
    let mut bad_udp = echo.clone();
    bad_udp[41] ^= 0x01;
    let ip_drops = |s: &GraphStats| s.drops(IP4_INPUT, "bad-checksum");
    let udp_drops = |s: &GraphStats| s.drops(UDP_INPUT, "bad-checksum");

    // verify (the default of every graph on byte buffers): the NIC's flags are not read, so
    // a Good flag saves no corrupt frame and a Bad flag drops no sound one.
    assert_eq!(cfg().rx_checksum, RxChecksum::Verify);
    // The fuzz targets' graph too: what they prove of corrupt frames needs verify.
    assert_eq!(check::check_config().rx_checksum, RxChecksum::Verify);
    let (tx, s) = dispatch_flagged(
        RxChecksum::Verify,
        &[
            (&bad_ip, Good, Good),
            (&bad_udp, Good, Good),
            (&echo, Bad, Bad),
        ],
    );
    assert_eq!((tx.len(), ip_drops(&s), udp_drops(&s)), (1, 1, 1));
    assert_checksums_ok(&tx[0], true);

    // trust: nothing is summed, so both corrupt frames are answered; flags do not matter.
    let (tx, s) = dispatch_flagged(
        RxChecksum::Trust,
        &[(&bad_ip, Bad, Bad), (&bad_udp, Unknown, Bad)],
    );
    assert_eq!((tx.len(), s.total_drops()), (2, 0));

    // offload, NIC said bad: dropped under the software check's own reasons, even though
    // the bytes would verify.
    let (tx, s) = dispatch_flagged(
        RxChecksum::Offload,
        &[(&echo, Bad, Good), (&echo, Good, Bad)],
    );
    assert_eq!((tx.len(), ip_drops(&s), udp_drops(&s)), (0, 1, 1));

    // offload, NIC said good: no software check, so frames whose checksums are wrong are
    // answered (the NIC checked the bytes it received).
    let (tx, s) = dispatch_flagged(
        RxChecksum::Offload,
        &[(&bad_ip, Good, Good), (&bad_udp, Good, Good)],
    );
    assert_eq!((tx.len(), s.total_drops()), (2, 0));

    // offload, no verdict: software decides, one layer at a time.
    let (tx, s) = dispatch_flagged(
        RxChecksum::Offload,
        &[
            (&bad_ip, Unknown, Good),
            (&bad_udp, Good, Unknown),
            (&echo, Unknown, Unknown),
        ],
    );
    assert_eq!((tx.len(), ip_drops(&s), udp_drops(&s)), (1, 1, 1));
}
