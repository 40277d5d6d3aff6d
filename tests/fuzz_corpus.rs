//! Replays the committed fuzz seed corpus (fuzz/corpus/<target>/) through
//! the very checks the fuzz targets make, on stable and without libFuzzer,
//! so CI catches in seconds a regression a long fuzz run would find; and
//! (ignored) writes those seeds from the crate's own emitters.
//!
//! Regenerate the seeds: `cargo test --test fuzz_corpus -- --ignored write_seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use bypass::graph::nodes::check::{
    check_server_graph, decode_frames, encode_frames, CHECK_IP, CHECK_MAC,
};
use bypass::wire::sockperf::{FLAG_CLIENT, FLAG_PONG_REQUEST, FLAG_WARMUP};
use bypass::wire::{
    emit_request_frame, emit_udp_frame, ArpOperation, ArpPacket, EtherType, EthernetFrame,
    IcmpEchoKind, IcmpEchoPacket, IpProtocol, Ipv4Address, Ipv4Packet, MacAddress, RpcMethod,
    RpcRepr, SockperfHeader, UdpEndpoints,
};

#[path = "../fuzz/common/wire_views.rs"]
mod wire_views;

const TARGETS: &[&str] = &["wire_views", "server_graph"];

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// Every file of a target's corpus, sorted so a failure names the same file each run.
fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus(target))
        .unwrap_or_else(|e| panic!("{target} corpus: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn wire_views_corpus_holds() {
    let all = seeds("wire_views");
    assert!(all.len() >= 5, "the seed corpus is there");
    for (path, bytes) in all {
        let r = std::panic::catch_unwind(|| wire_views::check_wire_views(&bytes));
        assert!(r.is_ok(), "{} fails the wire checks", path.display());
    }
}

#[test]
fn server_graph_corpus_holds() {
    let all = seeds("server_graph");
    assert!(all.len() >= 5, "the seed corpus is there");
    for (path, bytes) in all {
        if let Err(v) = check_server_graph(&decode_frames(&bytes)) {
            panic!("{}: {v}", path.display());
        }
    }
}

/// The seeds answer: a corpus whose frames the graph all dropped would
/// not reach the reply checks at all.
#[test]
fn server_graph_seeds_get_replies() {
    for (name, frame) in good_frames() {
        let run = bypass::graph::nodes::check::run_server_graph(
            &bypass::graph::nodes::check::check_config(),
            &[&frame],
        )
        .unwrap();
        assert_eq!(run.replies.len(), 1, "{name} is answered");
    }
}

const PEER_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x02]);
const PEER_IP: Ipv4Address = Ipv4Address([198, 18, 0, 2]);

fn to_us(dst_port: u16) -> UdpEndpoints {
    UdpEndpoints {
        src_mac: PEER_MAC,
        dst_mac: CHECK_MAC,
        src_ip: PEER_IP,
        dst_ip: CHECK_IP,
        src_port: 40000,
        dst_port,
    }
}

fn rpc(method: RpcMethod, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let repr = RpcRepr::request(method, id, 1_000_000_007, 0);
    let n = emit_request_frame(&mut buf, &to_us(7777), &repr, payload).unwrap();
    buf.truncate(n);
    buf
}

fn udp(dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let n = emit_udp_frame(&mut buf, &to_us(dst_port), payload).unwrap();
    buf.truncate(n);
    buf
}

fn sockperf_ping(flags: u16) -> Vec<u8> {
    let mut m = vec![0x5a; 64];
    let mut h = SockperfHeader::new_unchecked(&mut m[..]);
    h.set_sequence_number(10);
    h.set_flags(flags);
    h.set_message_len(64);
    udp(11111, &m)
}

fn arp_request() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst_addr(MacAddress::BROADCAST);
    eth.set_src_addr(PEER_MAC);
    eth.set_ethertype(EtherType::Arp);
    let mut arp = ArpPacket::new_unchecked(&mut f[14..42]);
    arp.set_ethernet_ipv4();
    arp.set_operation(ArpOperation::Request);
    arp.set_sender_hw_addr(PEER_MAC);
    arp.set_sender_proto_addr(PEER_IP);
    arp.set_target_hw_addr(MacAddress::UNSPECIFIED);
    arp.set_target_proto_addr(CHECK_IP);
    f
}

/// An ICMP echo request: the UDP emitter's Ethernet/IPv4 headers around
/// an echo message, the protocol turned to ICMP and the header re-summed.
fn icmp_echo() -> Vec<u8> {
    let mut m = vec![0u8; 8 + 8];
    let mut icmp = IcmpEchoPacket::new_unchecked(&mut m[..]);
    icmp.set_kind(IcmpEchoKind::Request);
    icmp.set_ident(0x4242);
    icmp.set_seq_no(7);
    icmp.payload_mut().copy_from_slice(b"abcdefgh");
    icmp.fill_checksum();
    let mut f = udp(0, &[0u8; 8]);
    f.truncate(34);
    f.extend_from_slice(&m);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_total_len((20 + m.len()) as u16);
    ip.set_protocol(IpProtocol::Icmp);
    ip.fill_checksum();
    f
}

/// Frames the server answers.
fn good_frames() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("rpc-echo", rpc(RpcMethod::Echo, 1, b"hello")),
        ("rpc-spin", rpc(RpcMethod::Spin, 2, &1000u32.to_be_bytes())),
        ("arp-request", arp_request()),
        ("icmp-echo", icmp_echo()),
        (
            "sockperf-ping",
            sockperf_ping(FLAG_CLIENT | FLAG_PONG_REQUEST),
        ),
    ]
}

/// Frames it must drop, each for a different reason.
fn broken_frames() -> Vec<(&'static str, Vec<u8>)> {
    let echo = rpc(RpcMethod::Echo, 3, b"hello");
    let mut bad_ip_csum = echo.clone();
    bad_ip_csum[25] ^= 0x10;
    let mut bcast_src = echo.clone();
    bcast_src[6..12].fill(0xff);
    let mut long_len = echo.clone();
    long_len[16..18].copy_from_slice(&0x0fffu16.to_be_bytes());
    vec![
        ("empty", Vec::new()),
        ("rpc-truncated", echo[..50].to_vec()),
        ("rpc-bad-ip-checksum", bad_ip_csum),
        ("rpc-broadcast-source", bcast_src),
        ("ip-total-len-past-end", long_len),
        ("rpc-unknown-method", rpc(RpcMethod::Other(9), 4, b"?")),
        ("sockperf-warmup", sockperf_ping(FLAG_CLIENT | FLAG_WARMUP)),
    ]
}

#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing a seed"]
fn write_seeds() {
    let all: Vec<_> = good_frames().into_iter().chain(broken_frames()).collect();
    for target in TARGETS {
        fs::create_dir_all(corpus(target)).unwrap();
    }
    for (name, f) in &all {
        fs::write(corpus("wire_views").join(name), f).unwrap();
        let one = encode_frames(&[f]).unwrap();
        fs::write(corpus("server_graph").join(name), one).unwrap();
    }
    let vector: Vec<&[u8]> = all.iter().map(|(_, f)| &f[..]).collect();
    let mixed = encode_frames(&vector).unwrap();
    fs::write(corpus("server_graph").join("vector-mixed"), mixed).unwrap();
}
