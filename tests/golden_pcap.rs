//! Golden test of `bypass serve --mode rpc` through net_pcap: a pcap of
//! requests (valid ones of every kind the server answers, and junk) goes in,
//! the replies the server transmits come out in another pcap, and those are
//! compared byte for byte with replies built here from scratch.
//!
//! The expected replies are written field by field with the `wire` emit
//! helpers, never by transforming the request the way the server does, so
//! a wrong in-place rewrite cannot be reproduced by the test. Only
//! `server_ns` varies between runs: it is read from each actual reply,
//! checked for plausibility and copied into the expected frame before that
//! frame's checksums are computed.
#![forbid(unsafe_code)]

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bypass::pcap;
use bypass::wire::frame::UDP_HEADERS_LEN;
use bypass::wire::{
    emit_request_frame, emit_udp_frame, rpc, sockperf, ArpOperation, ArpPacket, EtherType,
    EthernetFrame, IcmpEchoKind, IcmpEchoPacket, IpProtocol, Ipv4Address, Ipv4Packet, MacAddress,
    RpcHeader, RpcKind, RpcMethod, RpcRepr, RpcStatus, SockperfHeader, UdpEndpoints, UdpPacket,
};
use serde_json::Value;
use support::*;

const SERVER_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x01]);
const SERVER_IP: Ipv4Address = Ipv4Address([198, 18, 0, 1]);
const CLIENT_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x02]);
const CLIENT_IP: Ipv4Address = Ipv4Address([198, 18, 0, 2]);
const CLIENT_PORT: u16 = 40000;
const SOCKPERF_PORT: u16 = 11111;
const SOCKPERF_CLIENT_PORT: u16 = 45000;
const SPIN_MAX_NS: u32 = 1_000_000;
/// The TTL every reply carries (docs/protocol.md).
const REPLY_TTL: u8 = 64;

const ETH_LEN: usize = 14;
const IP_LEN: usize = 20;

/// A removed-on-drop scratch folder, pass or fail.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bypass-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client_to(port: u16) -> UdpEndpoints {
    UdpEndpoints {
        src_mac: CLIENT_MAC,
        dst_mac: SERVER_MAC,
        src_ip: CLIENT_IP,
        dst_ip: SERVER_IP,
        src_port: CLIENT_PORT,
        dst_port: port,
    }
}

/// The reply direction, spelled out rather than derived from the request.
fn server_to_client(server_port: u16, client_port: u16) -> UdpEndpoints {
    UdpEndpoints {
        src_mac: SERVER_MAC,
        dst_mac: CLIENT_MAC,
        src_ip: SERVER_IP,
        dst_ip: CLIENT_IP,
        src_port: server_port,
        dst_port: client_port,
    }
}

/// What the server must do with one input frame.
enum Expect {
    /// Answer with exactly these bytes.
    Frame(Vec<u8>),
    /// Answer with this RPC message from the RPC port to `CLIENT_PORT`; its
    /// `server_ns` comes from the actual reply and must be at least `min_ns`.
    Rpc {
        repr: RpcRepr,
        payload: Vec<u8>,
        min_ns: u32,
    },
    /// Drop it, counted under `"<node>/<reason>"`.
    Drop(&'static str),
}

struct Case {
    name: &'static str,
    request: Vec<u8>,
    expect: Expect,
}

fn rpc_request(method: RpcMethod, id: u64, payload: &[u8]) -> Vec<u8> {
    rpc_request_to(client_to(rpc::DEFAULT_PORT), method, id, payload)
}

fn rpc_request_to(ep: UdpEndpoints, method: RpcMethod, id: u64, payload: &[u8]) -> Vec<u8> {
    let repr = RpcRepr::request(method, id, 5_000_000_000 + id, 0);
    let mut buf = vec![0u8; UDP_HEADERS_LEN + rpc::HEADER_LEN + payload.len()];
    let n = emit_request_frame(&mut buf, &ep, &repr, payload).unwrap();
    assert_eq!(n, buf.len());
    buf
}

/// The answer to `rpc_request(method, id, _)`: same method, id and client_ts.
fn rpc_answer(
    method: RpcMethod,
    id: u64,
    kind: RpcKind,
    status: RpcStatus,
    payload: &[u8],
) -> Expect {
    Expect::Rpc {
        repr: RpcRepr {
            kind,
            method,
            status,
            request_id: id,
            client_ts: 5_000_000_000 + id,
            server_ns: 0,
            payload_len: payload.len() as u32,
        },
        payload: payload.to_vec(),
        min_ns: 0,
    }
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| seed.wrapping_add((i * 7) as u8)).collect()
}

/// An ARP who-has from `(sha, spa)` for `tpa`, broadcast, `len` bytes long
/// (42, or 60 as it arrives from a real NIC, zero-padded).
fn arp_request(sha: MacAddress, spa: Ipv4Address, tpa: Ipv4Address, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst_addr(MacAddress::BROADCAST);
    eth.set_src_addr(sha);
    eth.set_ethertype(EtherType::Arp);
    let mut arp = ArpPacket::new_unchecked(&mut f[ETH_LEN..ETH_LEN + 28]);
    arp.set_ethernet_ipv4();
    arp.set_operation(ArpOperation::Request);
    arp.set_sender_hw_addr(sha);
    arp.set_sender_proto_addr(spa);
    arp.set_target_hw_addr(MacAddress::UNSPECIFIED);
    arp.set_target_proto_addr(tpa);
    f
}

/// Our ARP reply to `(tha, tpa)`: 42 bytes (the NIC pads on the wire).
fn arp_reply(tha: MacAddress, tpa: Ipv4Address) -> Vec<u8> {
    let mut f = vec![0u8; ETH_LEN + 28];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst_addr(tha);
    eth.set_src_addr(SERVER_MAC);
    eth.set_ethertype(EtherType::Arp);
    let mut arp = ArpPacket::new_unchecked(&mut f[ETH_LEN..]);
    arp.set_ethernet_ipv4();
    arp.set_operation(ArpOperation::Reply);
    arp.set_sender_hw_addr(SERVER_MAC);
    arp.set_sender_proto_addr(SERVER_IP);
    arp.set_target_hw_addr(tha);
    arp.set_target_proto_addr(tpa);
    f
}

/// Ethernet + IPv4 (no options) + ICMP echo, every checksum filled.
#[allow(clippy::too_many_arguments)]
fn icmp_echo(
    kind: IcmpEchoKind,
    src: (MacAddress, Ipv4Address),
    dst: (MacAddress, Ipv4Address),
    ip_ident: u16,
    ttl: u8,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; ETH_LEN + IP_LEN + 8 + payload.len()];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst_addr(dst.0);
    eth.set_src_addr(src.0);
    eth.set_ethertype(EtherType::Ipv4);
    let total = (IP_LEN + 8 + payload.len()) as u16;
    let mut ip = Ipv4Packet::new_unchecked(&mut f[ETH_LEN..]);
    ip.set_version_and_header_len(IP_LEN);
    ip.set_dscp_ecn(0);
    ip.set_total_len(total);
    ip.set_ident(ip_ident);
    ip.set_unfragmented(true);
    ip.set_ttl(ttl);
    ip.set_protocol(IpProtocol::Icmp);
    ip.set_src_addr(src.1);
    ip.set_dst_addr(dst.1);
    ip.fill_checksum();
    let mut icmp = IcmpEchoPacket::new_unchecked(&mut f[ETH_LEN + IP_LEN..]);
    icmp.set_kind(kind);
    icmp.set_ident(id);
    icmp.set_seq_no(seq);
    icmp.payload_mut().copy_from_slice(payload);
    icmp.fill_checksum();
    f
}

/// A sockperf message of `len` bytes (header included) with `flags`.
fn sockperf_message(seq: u64, flags: u16, len: usize) -> Vec<u8> {
    let mut m = pattern(len, 0x30);
    let mut h = SockperfHeader::new_unchecked(&mut m[..]);
    h.set_sequence_number(seq);
    h.set_flags(flags);
    h.set_message_len(len as u32);
    m
}

fn udp_frame(ep: UdpEndpoints, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; UDP_HEADERS_LEN + payload.len()];
    emit_udp_frame(&mut f, &ep, payload).unwrap();
    f
}

fn refill_ip_checksum(f: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut f[ETH_LEN..]).fill_checksum();
}

fn cases() -> Vec<Case> {
    use RpcKind::{Error, Response};
    use RpcMethod::{Echo, Other, Spin};
    use RpcStatus::{BadArgument, BadLength, Ok as StOk, UnknownMethod};

    let mut v = Vec::new();
    let mut case = |name, request, expect| {
        v.push(Case {
            name,
            request,
            expect,
        })
    };

    // RPC: echo of several sizes, spin, and every error the server answers.
    for (id, len) in [(1u64, 0usize), (2, 5), (3, 64), (4, 1400)] {
        let p = pattern(len, id as u8);
        case(
            "rpc echo",
            rpc_request(Echo, id, &p),
            rpc_answer(Echo, id, Response, StOk, &p),
        );
    }
    let spin_arg = 1000u32.to_be_bytes();
    let mut spin = rpc_answer(Spin, 5, Response, StOk, &spin_arg);
    if let Expect::Rpc { min_ns, .. } = &mut spin {
        *min_ns = 1000;
    }
    case("rpc spin 1000 ns", rpc_request(Spin, 5, &spin_arg), spin);
    case(
        "rpc spin above the maximum",
        rpc_request(Spin, 6, &(SPIN_MAX_NS + 1).to_be_bytes()),
        rpc_answer(Spin, 6, Error, BadArgument, &[]),
    );
    case(
        "rpc spin with a 3-byte argument",
        rpc_request(Spin, 7, &[0, 0, 1]),
        rpc_answer(Spin, 7, Error, BadLength, &[]),
    );
    case(
        "rpc unknown method",
        rpc_request(Other(9), 8, b"whatever"),
        rpc_answer(Other(9), 8, Error, UnknownMethod, &[]),
    );

    // ARP: who-has for us (as a kernel sends it, and padded as a NIC
    // delivers it), and for someone else.
    case(
        "arp who-has us",
        arp_request(CLIENT_MAC, CLIENT_IP, SERVER_IP, 42),
        Expect::Frame(arp_reply(CLIENT_MAC, CLIENT_IP)),
    );
    let (mac3, ip3) = (
        MacAddress([0x02, 0, 0, 0, 0, 0x03]),
        Ipv4Address([198, 18, 0, 3]),
    );
    case(
        "arp who-has us, padded to 60 bytes",
        arp_request(mac3, ip3, SERVER_IP, 60),
        Expect::Frame(arp_reply(mac3, ip3)),
    );
    case(
        "arp who-has another address",
        arp_request(CLIENT_MAC, CLIENT_IP, Ipv4Address([198, 18, 0, 99]), 42),
        Expect::Drop("arp-reply/not-our-ip"),
    );

    // ICMP: like `ping` (56 bytes: a timeval, then 0x10, 0x11, ...), one
    // router away (TTL 63). The reply keeps the IP ident and carries TTL 64.
    let mut ping = vec![
        0x65, 0x4a, 0x3b, 0x2c, 0, 0, 0, 0, 0x1d, 0x0c, 0x0b, 0, 0, 0, 0, 0,
    ];
    ping.extend(0x10u8..0x38);
    assert_eq!(ping.len(), 56);
    case(
        "icmp echo request",
        icmp_echo(
            IcmpEchoKind::Request,
            (CLIENT_MAC, CLIENT_IP),
            (SERVER_MAC, SERVER_IP),
            0x4d2c,
            63,
            0x1c2b,
            1,
            &ping,
        ),
        Expect::Frame(icmp_echo(
            IcmpEchoKind::Reply,
            (SERVER_MAC, SERVER_IP),
            (CLIENT_MAC, CLIENT_IP),
            0x4d2c,
            REPLY_TTL,
            0x1c2b,
            1,
            &ping,
        )),
    );

    // sockperf: a ping-pong request is answered with the client bit
    // cleared; a plain (throughput) message is not answered.
    let sp_client = UdpEndpoints {
        src_port: SOCKPERF_CLIENT_PORT,
        ..client_to(SOCKPERF_PORT)
    };
    case(
        "sockperf ping-pong",
        udp_frame(
            sp_client,
            &sockperf_message(1, sockperf::FLAG_CLIENT | sockperf::FLAG_PONG_REQUEST, 64),
        ),
        Expect::Frame(udp_frame(
            server_to_client(SOCKPERF_PORT, SOCKPERF_CLIENT_PORT),
            &sockperf_message(1, sockperf::FLAG_PONG_REQUEST, 64),
        )),
    );
    case(
        "sockperf without pong request",
        udp_frame(sp_client, &sockperf_message(2, sockperf::FLAG_CLIENT, 64)),
        Expect::Drop("sockperf-echo/no-reply-wanted"),
    );

    // Junk: each frame is a valid echo request except for one property.
    let good = || rpc_request(Echo, 100, b"junk");
    case(
        "frame for another MAC",
        rpc_request_to(
            UdpEndpoints {
                dst_mac: MacAddress([0x02, 0, 0, 0, 0, 0x99]),
                ..client_to(rpc::DEFAULT_PORT)
            },
            Echo,
            101,
            b"junk",
        ),
        Expect::Drop("ethernet-input/not-for-us"),
    );
    let mut vlan = good();
    vlan.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
    case("vlan-tagged", vlan, Expect::Drop("ethernet-input/vlan"));
    let mut frag = good();
    frag[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&[0x20, 0x00]); // MF, offset 0
    refill_ip_checksum(&mut frag);
    case("ipv4 fragment", frag, Expect::Drop("ip4-input/fragment"));
    let mut opts = good();
    opts.splice(ETH_LEN + IP_LEN..ETH_LEN + IP_LEN, [1, 1, 1, 0]); // NOP NOP NOP EOL
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut opts[ETH_LEN..]);
        ip.set_version_and_header_len(IP_LEN + 4);
        let total = ip.total_len() + 4;
        ip.set_total_len(total);
        ip.fill_checksum();
    }
    case("ipv4 options", opts, Expect::Drop("ip4-input/options"));
    let mut bad_csum = good();
    bad_csum[ETH_LEN + 10] ^= 0x5a;
    case(
        "bad ipv4 checksum",
        bad_csum,
        Expect::Drop("ip4-input/bad-checksum"),
    );
    // A UDP length beyond the end of the IPv4 payload: the datagram was cut.
    let mut short_udp = good();
    let udp_len = u16::from_be_bytes([short_udp[38], short_udp[39]]);
    short_udp[38..40].copy_from_slice(&(udp_len + 8).to_be_bytes());
    case(
        "truncated udp",
        short_udp,
        Expect::Drop("udp-input/malformed"),
    );
    case(
        "udp to an unknown port",
        rpc_request_to(client_to(9), Echo, 102, b"junk"),
        Expect::Drop("udp-input/unknown-port"),
    );
    let mut magic = good();
    magic[UDP_HEADERS_LEN + 1] = 0x51;
    UdpPacket::new_unchecked(&mut magic[ETH_LEN + IP_LEN..]).fill_checksum(CLIENT_IP, SERVER_IP);
    case(
        "rpc with bad magic",
        magic,
        Expect::Drop("rpc-server/bad-magic"),
    );
    let mut runt = good();
    runt.truncate(10);
    case("runt", runt, Expect::Drop("ethernet-input/runt"));
    v
}

fn hexdump(frame: &[u8]) -> String {
    let mut s = String::new();
    for (i, line) in frame.chunks(16).enumerate() {
        let _ = write!(s, "    {:04x} ", i * 16);
        for b in line {
            let _ = write!(s, " {b:02x}");
        }
        s.push('\n');
    }
    s
}

/// One line saying what a frame is, for mismatch reports.
fn describe(f: &[u8]) -> String {
    let Ok(eth) = EthernetFrame::new_checked(f) else {
        return format!("{} bytes, not Ethernet", f.len());
    };
    let head = format!("{} bytes {} > {}", f.len(), eth.src_addr(), eth.dst_addr());
    match eth.ethertype() {
        EtherType::Arp => match ArpPacket::new_checked(eth.payload()) {
            Ok(a) => format!(
                "{head} ARP {:?} {} is-at {} for {}",
                a.operation(),
                a.sender_proto_addr(),
                a.sender_hw_addr(),
                a.target_proto_addr()
            ),
            Err(e) => format!("{head} ARP ({e})"),
        },
        EtherType::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                return format!("{head} IPv4 (malformed)");
            };
            let head = format!("{head} {} > {}", ip.src_addr(), ip.dst_addr());
            match ip.protocol() {
                IpProtocol::Icmp => match IcmpEchoPacket::new_checked(ip.payload()) {
                    Ok(i) => format!("{head} ICMP {:?} seq {}", i.kind(), i.seq_no()),
                    Err(e) => format!("{head} ICMP ({e})"),
                },
                IpProtocol::Udp => match UdpPacket::new_checked(ip.payload()) {
                    Ok(u) => {
                        let head = format!("{head} UDP {} > {}", u.src_port(), u.dst_port());
                        match RpcHeader::new_checked(u.payload()) {
                            Ok(h) => format!(
                                "{head} RPC {:?} {:?} {:?} id {} len {}",
                                h.kind(),
                                h.method(),
                                h.status(),
                                h.request_id(),
                                h.length()
                            ),
                            Err(_) => format!("{head} {} bytes", u.payload().len()),
                        }
                    }
                    Err(e) => format!("{head} UDP ({e})"),
                },
                p => format!("{head} {p:?}"),
            }
        }
        t => format!("{head} {t:?}"),
    }
}

/// The RPC header of a reply frame, if it is one.
fn rpc_of(f: &[u8]) -> Option<RpcRepr> {
    let eth = EthernetFrame::new_checked(f).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    RpcRepr::parse(&RpcHeader::new_checked(udp.payload()).ok()?).ok()
}

/// Every checksum in `f` verifies. Returns whether the UDP checksum (if
/// any) was 0, i.e. not computed, which the protocol allows.
fn assert_checksums(name: &str, f: &[u8]) -> bool {
    let eth = EthernetFrame::new_checked(f).unwrap();
    if eth.ethertype() != EtherType::Ipv4 {
        return false;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(
        ip.verify_checksum(),
        "{name}: IPv4 checksum does not verify"
    );
    match ip.protocol() {
        IpProtocol::Icmp => {
            let icmp = IcmpEchoPacket::new_checked(ip.payload()).unwrap();
            assert!(icmp.verify_checksum(), "{name}: ICMP checksum");
            false
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(ip.payload()).unwrap();
            assert!(
                udp.verify_checksum(ip.src_addr(), ip.dst_addr()),
                "{name}: UDP checksum {:#06x} does not verify",
                udp.checksum()
            );
            udp.checksum() == 0
        }
        p => panic!("{name}: unexpected protocol {p:?} in a reply"),
    }
}

/// The expected frame for `case` given the actual reply in its place.
fn expected_frame(case: &Case, actual: &[u8]) -> Vec<u8> {
    match &case.expect {
        Expect::Frame(f) => f.clone(),
        Expect::Rpc { min_ns, .. } => {
            let got = rpc_of(actual).unwrap_or_else(|| {
                panic!(
                    "{}: the reply is not an RPC message: {}\n{}",
                    case.name,
                    describe(actual),
                    hexdump(actual)
                )
            });
            assert!(
                got.server_ns >= *min_ns && got.server_ns < 1_000_000_000,
                "{}: implausible server_ns {} (want {min_ns} ns .. 1 s)",
                case.name,
                got.server_ns
            );
            rpc_reply_frame(case, got.server_ns)
        }
        Expect::Drop(_) => unreachable!("dropped cases have no reply"),
    }
}

/// The flow a frame belongs to: replies within one flow must keep the
/// order of their requests.
fn flow_key(f: &[u8]) -> String {
    let Ok(eth) = EthernetFrame::new_checked(f) else {
        return "not ethernet".into();
    };
    match eth.ethertype() {
        EtherType::Arp => format!("arp to {}", eth.dst_addr()),
        EtherType::Ipv4 => {
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                return "ipv4 malformed".into();
            };
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            match ip.protocol() {
                IpProtocol::Udp => match UdpPacket::new_checked(ip.payload()) {
                    Ok(u) => format!("udp {src}:{} > {dst}:{}", u.src_port(), u.dst_port()),
                    Err(_) => "udp malformed".into(),
                },
                IpProtocol::Icmp => match IcmpEchoPacket::new_checked(ip.payload()) {
                    Ok(i) => format!("icmp {src} > {dst} id {:#06x}", i.ident()),
                    Err(_) => "icmp malformed".into(),
                },
                p => format!("ipv4 {p:?}"),
            }
        }
        t => format!("{t:?}"),
    }
}

/// The flow of the reply `case` expects (its `server_ns` does not matter).
fn flow_of_case(case: &Case) -> String {
    match &case.expect {
        Expect::Frame(f) => flow_key(f),
        Expect::Rpc { .. } => flow_key(&rpc_reply_frame(case, 0)),
        Expect::Drop(_) => unreachable!("dropped cases have no reply"),
    }
}

/// The RPC reply `case` expects, built from scratch with `server_ns`.
fn rpc_reply_frame(case: &Case, server_ns: u32) -> Vec<u8> {
    let Expect::Rpc { repr, payload, .. } = &case.expect else {
        unreachable!("{} expects no RPC reply", case.name);
    };
    let repr = RpcRepr { server_ns, ..*repr };
    let mut f = vec![0u8; UDP_HEADERS_LEN + rpc::HEADER_LEN + payload.len()];
    emit_request_frame(
        &mut f,
        &server_to_client(rpc::DEFAULT_PORT, CLIENT_PORT),
        &repr,
        payload,
    )
    .unwrap();
    f
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing or not a number in {v}"))
}

fn serve(input: &Path, output: &Path, prefix: &Prefix) -> Vec<Value> {
    let vdev = format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        input.display(),
        output.display()
    );
    let mut args = strs(&[
        "serve",
        "--mode",
        "rpc",
        "--ip",
        "198.18.0.1",
        "--mac",
        "02:00:00:00:00:01",
        "--poll-mode",
        "adaptive",
        "--duration",
        "2",
        "--json",
        "--",
    ]);
    args.extend(prefix.eal(1, &[&vdev]));
    let out = run(&args, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "bypass serve failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

#[test]
fn rpc_mode_replies_match_golden_frames() {
    if !need_root("rpc_mode_replies_match_golden_frames") {
        return;
    }
    let cases = cases();
    let dir = TempDir::new("golden-pcap");
    let prefix = Prefix::new("golden");
    let (input, output) = (dir.path("in.pcap"), dir.path("out.pcap"));
    pcap::write_all(&input, cases.iter().map(|c| &c.request)).unwrap();

    let lines = serve(&input, &output, &prefix);
    let actual = pcap::read_all(&output).unwrap_or_else(|e| panic!("reading {output:?}: {e}"));

    let answered: Vec<&Case> = cases
        .iter()
        .filter(|c| !matches!(c.expect, Expect::Drop(_)))
        .collect();
    let listing = || {
        let mut s = String::from("expected replies, in input order:\n");
        for (i, c) in answered.iter().enumerate() {
            let _ = writeln!(s, "  {i:2} {}", c.name);
        }
        s.push_str("actual replies, in output order:\n");
        for (i, f) in actual.iter().enumerate() {
            let _ = writeln!(s, "  {i:2} {}", describe(f));
        }
        s
    };
    assert_eq!(
        actual.len(),
        answered.len(),
        "number of replies\n{}",
        listing()
    );

    // Order is kept per flow, not across flows: the graph hands a burst to
    // each protocol node in turn, so e.g. an ICMP reply may leave before an
    // RPC reply to an earlier request. Compare in order within each flow.
    let mut want_flows: BTreeMap<String, Vec<&Case>> = BTreeMap::new();
    for c in &answered {
        want_flows.entry(flow_of_case(c)).or_default().push(c);
    }
    let mut got_flows: BTreeMap<String, Vec<&Vec<u8>>> = BTreeMap::new();
    for f in &actual {
        got_flows.entry(flow_key(f)).or_default().push(f);
    }
    let want_sizes: BTreeMap<String, usize> = want_flows
        .iter()
        .map(|(k, v)| (k.clone(), v.len()))
        .collect();
    let got_sizes: BTreeMap<String, usize> = got_flows
        .iter()
        .map(|(k, v)| (k.clone(), v.len()))
        .collect();
    assert_eq!(
        got_sizes,
        want_sizes,
        "replies per flow (left: actual, right: expected)\n{}",
        listing()
    );

    let mut zero_udp = 0;
    for (flow, want_cases) in &want_flows {
        for (i, (case, got)) in want_cases.iter().zip(&got_flows[flow]).enumerate() {
            let mut want = expected_frame(case, got);
            if assert_checksums(case.name, got) {
                // The server may leave the UDP checksum out (0), per the protocol.
                zero_udp += 1;
                want[ETH_LEN + IP_LEN + 6..ETH_LEN + IP_LEN + 8].fill(0);
            }
            if **got != want {
                panic!(
                    "reply {i} of flow {flow} ({}) differs at byte {}\nexpected: {}\n{}actual:   {}\n{}\n{}",
                    case.name,
                    first_difference(got, &want),
                    describe(&want),
                    hexdump(&want),
                    describe(got),
                    hexdump(got),
                    listing()
                );
            }
        }
    }
    if zero_udp > 0 {
        eprintln!("note: {zero_udp} replies carry UDP checksum 0 (allowed, not computed)");
    }

    // The final report accounts for every input frame.
    let fin = lines.last().expect("at least one JSON line");
    assert_eq!(fin["type"], "final", "{fin}");
    let dropped: Vec<&'static str> = cases
        .iter()
        .filter_map(|c| match c.expect {
            Expect::Drop(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(u(fin, "rx"), cases.len() as u64, "rx: {fin}");
    assert_eq!(u(fin, "tx"), answered.len() as u64, "tx: {fin}");
    assert_eq!(u(fin, "drops"), dropped.len() as u64, "drops: {fin}");
    let mut want_reasons: BTreeMap<String, u64> = BTreeMap::new();
    for r in &dropped {
        *want_reasons.entry(r.to_string()).or_default() += 1;
    }
    let got_reasons: BTreeMap<String, u64> = fin["drops_by_reason"]
        .as_object()
        .unwrap_or_else(|| panic!("no drops_by_reason object: {fin}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got_reasons, want_reasons, "drops by reason");
    assert_eq!(u(&fin["mempool"], "in_use"), 0, "buffers leaked: {fin}");
}

/// The input file reads back as written, and every request the server must
/// answer is itself well-formed; needs no DPDK, so it runs everywhere.
#[test]
fn golden_input_is_well_formed() {
    let cases = cases();
    let dir = TempDir::new("golden-pcap-rt");
    let path = dir.path("in.pcap");
    pcap::write_all(&path, cases.iter().map(|c| &c.request)).unwrap();
    let back = pcap::read_all(&path).unwrap();
    assert_eq!(back.len(), cases.len());
    for (c, f) in cases.iter().zip(&back) {
        assert_eq!(&c.request, f, "{}", c.name);
    }
    // A drop of one of these would be the server's fault, not the fixture's.
    for c in cases
        .iter()
        .filter(|c| !matches!(c.expect, Expect::Drop(_)))
    {
        assert_checksums(c.name, &c.request);
    }
}
