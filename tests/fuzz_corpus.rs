//! Replays the committed fuzz seed corpus (fuzz/corpus/<target>/) through
//! the very checks the fuzz targets make, on stable and without libFuzzer,
//! so CI catches in seconds a regression a long fuzz run would find; and
//! (ignored) writes those seeds from the crate's own emitters.
//!
//! Regenerate the seeds: `cargo test --test fuzz_corpus -- --ignored write_seeds`.

use std::fs;
use std::path::{Path, PathBuf};

use bypass::graph::nodes::check::{
    check_server_graph, decode_frames, encode_frames, GraphChecker, CHECK_IP, CHECK_MAC,
};
use bypass::pcap::{PcapWriter, MAX_CAPLEN};
use bypass::wire::sockperf::{FLAG_CLIENT, FLAG_PONG_REQUEST, FLAG_WARMUP};
use bypass::wire::{
    emit_request_frame, emit_udp_frame, ArpOperation, ArpPacket, EtherType, EthernetFrame,
    IcmpEchoKind, IcmpEchoPacket, IpProtocol, Ipv4Address, Ipv4Packet, MacAddress, RpcMethod,
    RpcRepr, SockperfHeader, UdpEndpoints,
};

#[path = "../fuzz/common/wire_views.rs"]
mod wire_views;

#[path = "../fuzz/common/config_toml.rs"]
mod config_toml;

#[path = "../fuzz/common/pcap_reader.rs"]
mod pcap_reader;

/// The targets whose seeds this file writes and replays.
const TARGETS: &[&str] = &["wire_views", "server_graph", "config_toml", "pcap_reader"];

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

/// The fuzz target keeps one graph across inputs: every seed, in turn,
/// through one [`GraphChecker`] holds as it does through a fresh graph.
#[test]
fn server_graph_corpus_holds_on_one_graph() {
    let mut c = GraphChecker::new().unwrap();
    for (path, bytes) in seeds("server_graph").iter().chain(&seeds("server_graph")) {
        if let Err(v) = c.check(&decode_frames(bytes)) {
            panic!("{} (reused graph): {v}", path.display());
        }
    }
}

#[test]
fn config_toml_corpus_holds() {
    let all = seeds("config_toml");
    assert!(all.len() >= 8, "the seed corpus is there");
    for (path, bytes) in all {
        let r = std::panic::catch_unwind(|| config_toml::check_config_toml(&bytes));
        assert!(r.is_ok(), "{} fails the config checks", path.display());
    }
}

/// The repo's own configs are among the seeds and read without error, so
/// the fuzzer starts from files that reach validation, not parse errors.
#[test]
fn config_toml_seeds_include_the_valid_configs() {
    let serve = fs::read_to_string(corpus("config_toml").join("serve-null.toml")).unwrap();
    let c = bypass::server::config::ServeConfig::from_toml(&serve).unwrap();
    c.validate().unwrap();
    for name in ["lab-ci.toml", "lab-default.toml", "lab-baremetal.toml"] {
        let text = fs::read_to_string(corpus("config_toml").join(name)).unwrap();
        let s = bypass::lab::scenario::Scenario::from_toml(&text).unwrap();
        s.resolve_with_cpus(64)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn pcap_reader_corpus_holds() {
    let all = seeds("pcap_reader");
    assert!(all.len() >= 6, "the seed corpus is there");
    let mut records = 0;
    for (path, bytes) in all {
        let r = std::panic::catch_unwind(|| pcap_reader::check_pcap_reader(&bytes).len());
        records += r.unwrap_or_else(|_| panic!("{} fails the pcap checks", path.display()));
    }
    assert!(records >= 4, "the seeds hold records ({records})");
}

/// Every fuzz target has a non-empty seed corpus (a target added without
/// one would start the fuzzer from nothing and be replayed by nothing).
#[test]
fn every_target_has_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
            continue;
        };
        let n = fs::read_dir(corpus(name)).map_or(0, |d| d.count());
        assert!(
            n > 0,
            "fuzz target {name} has no seeds in fuzz/corpus/{name}"
        );
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

/// The repo's config files, then ways to break one.
fn config_seeds() -> Vec<(String, Vec<u8>)> {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let read = |name: &str| fs::read(configs.join(name)).unwrap();
    let mut all: Vec<(String, Vec<u8>)> = ["serve-null.toml", "lab-ci.toml", "lab-default.toml"]
        .into_iter()
        .chain(["lab-baremetal.toml"])
        .map(|n| (n.to_string(), read(n)))
        .collect();
    let ci = read("lab-ci.toml");
    let broken: [(&str, &[u8]); 10] = [
        ("empty", b""),
        (
            "serve-unknown-key",
            b"mode = \"rpc\"\nip = \"198.18.0.1\"\nbogus = 1\n",
        ),
        ("serve-wrong-type", b"queues = \"two\"\nrx_desc = -1\n"),
        (
            "serve-invalid",
            b"mode = \"rpc\"\nqueues = 0\nduration = nan\n",
        ),
        ("serve-bad-ip", b"ip = \"198.18.0.256\"\nmac = \"02:00\"\n"),
        (
            "scenario-no-paths",
            b"name = \"x\"\n[defaults]\nduration = 1.0\n",
        ),
        (
            "scenario-bad-path",
            b"name = \" \"\n[[path]]\nname = \"p\"\nkind = \"warp\"\n",
        ),
        ("unterminated", b"name = \"ci\n[placement\nclient_cpu = 0"),
        ("not-utf8", b"name = \"\xff\xfe\"\nmode = \"\xc3\"\n"),
        (
            "duplicate-table",
            b"[defaults]\nsize = 1\n[defaults]\nsize = 2\n",
        ),
    ];
    all.extend(broken.map(|(n, b)| (n.to_string(), b.to_vec())));
    all.push(("lab-ci-cut".into(), ci[..ci.len() / 2].to_vec()));
    // What the fuzzer found: a backtick in a value left the serve error naming no field.
    let backtick = b"mode = \"`pc\"\nip = \"198.18.0.1\"\nbogus = 1\n";
    all.push(("crash-serve-backtick-value".into(), backtick.to_vec()));
    all
}

/// A tiny pcap from the crate's writer, then ways to break one.
fn pcap_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let frames = [rpc(RpcMethod::Echo, 1, b"hello"), arp_request(), Vec::new()];
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_packet((1_700_000_000, i as u32 * 1000), f).unwrap();
    }
    let good = w.into_inner().unwrap();
    let mut big_endian_nanos = good[..24].to_vec();
    big_endian_nanos[..4].copy_from_slice(&bypass::pcap::MAGIC_NANOS.to_be_bytes());
    big_endian_nanos.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 9, 1, 2, 3]);
    let caplen_at = 24 + 8;
    let mut huge = good.clone();
    huge[caplen_at..caplen_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut over_cap = good.clone();
    over_cap[caplen_at..caplen_at + 4].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    vec![
        ("three-frames", good.clone()),
        ("header-only", good[..24].to_vec()),
        ("big-endian-nanos", big_endian_nanos),
        ("caplen-4gib", huge),
        ("caplen-over-limit", over_cap),
        ("bad-magic", bad_magic),
        ("header-cut", good[..10].to_vec()),
        ("record-cut", good[..good.len() - 3].to_vec()),
        ("record-header-cut", good[..24 + 7].to_vec()),
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
    for (name, bytes) in config_seeds() {
        fs::write(corpus("config_toml").join(name), bytes).unwrap();
    }
    for (name, bytes) in pcap_seeds() {
        fs::write(corpus("pcap_reader").join(name), bytes).unwrap();
    }
}
