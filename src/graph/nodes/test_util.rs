//! Frame builders and a node runner shared by the node tests.

use crate::graph::{Node, NodeCtx, PacketBuf, VecBuf};
use crate::wire::checksum;
use crate::wire::{
    emit_request_frame, emit_udp_frame, ArpOperation, ArpPacket, EtherType, EthernetFrame,
    IcmpEchoKind, IcmpEchoPacket, IpProtocol, Ipv4Address, Ipv4Packet, MacAddress, RpcMethod,
    RpcRepr, UdpEndpoints, UdpPacket,
};

use super::kit::NodeConfig;

pub const OUR_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const OUR_IP: Ipv4Address = Ipv4Address([198, 18, 0, 1]);
pub const PEER_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x02]);
pub const PEER_IP: Ipv4Address = Ipv4Address([198, 18, 0, 2]);
pub const PEER_PORT: u16 = 40000;
/// Nominal TSC frequency for tests: one tick per nanosecond keeps spin and
/// `server_ns` arithmetic checkable without knowing the real TSC rate.
pub const HZ: u64 = 1_000_000_000;

pub fn cfg() -> NodeConfig {
    NodeConfig::new(OUR_MAC, OUR_IP)
}

/// Peer -> us, UDP to `dst_port`.
pub fn to_us(dst_port: u16) -> UdpEndpoints {
    UdpEndpoints {
        src_mac: PEER_MAC,
        dst_mac: OUR_MAC,
        src_ip: PEER_IP,
        dst_ip: OUR_IP,
        src_port: PEER_PORT,
        dst_port,
    }
}

pub fn udp_frame(ep: &UdpEndpoints, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 42 + payload.len()];
    let n = emit_udp_frame(&mut buf, ep, payload).unwrap();
    buf.truncate(n);
    buf
}

pub fn rpc_frame_ep(ep: &UdpEndpoints, repr: &RpcRepr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 74 + payload.len()];
    let n = emit_request_frame(&mut buf, ep, repr, payload).unwrap();
    buf.truncate(n);
    buf
}

pub fn rpc_request(method: RpcMethod, id: u64, payload: &[u8]) -> Vec<u8> {
    let repr = RpcRepr::request(method, id, 1_000_000_007 + id, 0);
    rpc_frame_ep(&to_us(7777), &repr, payload)
}

pub fn spin_request(id: u64, ns: u32) -> Vec<u8> {
    rpc_request(RpcMethod::Spin, id, &ns.to_be_bytes())
}

/// An Ethernet/IPv4 frame (DF, ident 0x1234, TTL 57 so that replies can be
/// seen to reset it) around `l4`, with a valid header checksum.
pub fn ipv4_frame(src: Ipv4Address, dst: Ipv4Address, proto: IpProtocol, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 34 + l4.len()];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst_addr(OUR_MAC);
    eth.set_src_addr(PEER_MAC);
    eth.set_ethertype(EtherType::Ipv4);
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_version_and_header_len(20);
    ip.set_total_len((20 + l4.len()) as u16);
    ip.set_ident(0x1234);
    ip.set_unfragmented(true);
    ip.set_ttl(57);
    ip.set_protocol(proto);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    f[34..].copy_from_slice(l4);
    f
}

pub fn icmp_message(kind: IcmpEchoKind, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; 8 + payload.len()];
    let mut icmp = IcmpEchoPacket::new_unchecked(&mut m[..]);
    icmp.set_kind(kind);
    icmp.set_ident(ident);
    icmp.set_seq_no(seq);
    icmp.payload_mut().copy_from_slice(payload);
    icmp.fill_checksum();
    m
}

pub fn icmp_echo_request(payload: &[u8]) -> Vec<u8> {
    let m = icmp_message(IcmpEchoKind::Request, 0x4242, 7, payload);
    ipv4_frame(PEER_IP, OUR_IP, IpProtocol::Icmp, &m)
}

/// A who-has for `target` from `sender_mac`/`sender_ip`, broadcast, padded
/// to the 60-byte Ethernet minimum like a real NIC would deliver it.
pub fn arp_request(sender_mac: MacAddress, sender_ip: Ipv4Address, target: Ipv4Address) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    let mut eth = EthernetFrame::new_unchecked(&mut f[..]);
    eth.set_dst_addr(MacAddress::BROADCAST);
    eth.set_src_addr(sender_mac);
    eth.set_ethertype(EtherType::Arp);
    let mut arp = ArpPacket::new_unchecked(&mut f[14..42]);
    arp.set_ethernet_ipv4();
    arp.set_operation(ArpOperation::Request);
    arp.set_sender_hw_addr(sender_mac);
    arp.set_sender_proto_addr(sender_ip);
    arp.set_target_hw_addr(MacAddress::UNSPECIFIED);
    arp.set_target_proto_addr(target);
    f
}

/// Our answer to [`arp_request`] from the peer, as RFC 826 describes it,
/// written out field by field (unpadded).
pub fn arp_reply_to_peer() -> Vec<u8> {
    let mut e = vec![0u8; 42];
    e[..6].copy_from_slice(&PEER_MAC.0);
    e[6..12].copy_from_slice(&OUR_MAC.0);
    e[12..14].copy_from_slice(&[0x08, 0x06]);
    e[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    e[22..28].copy_from_slice(&OUR_MAC.0);
    e[28..32].copy_from_slice(&OUR_IP.0);
    e[32..38].copy_from_slice(&PEER_MAC.0);
    e[38..42].copy_from_slice(&PEER_IP.0);
    e
}

/// Our answer to [`icmp_echo_request`], as a fresh stack would send it:
/// our addresses first, TTL 64, same ident/flags as the request, type 0,
/// all checksums computed in full.
pub fn icmp_echo_reply(payload: &[u8]) -> Vec<u8> {
    let m = icmp_message(IcmpEchoKind::Reply, 0x4242, 7, payload);
    let mut f = ipv4_frame(OUR_IP, PEER_IP, IpProtocol::Icmp, &m);
    f[..6].copy_from_slice(&PEER_MAC.0);
    f[6..12].copy_from_slice(&OUR_MAC.0);
    f[22] = 64;
    refill_ip_csum(&mut f);
    f
}

/// A sockperf message: seq, flags, length = whole message, filler.
pub fn sockperf_message(seq: u64, flags: u16, len: usize) -> Vec<u8> {
    let mut m = vec![0x5a; len];
    let mut h = crate::wire::SockperfHeader::new_unchecked(&mut m[..]);
    h.set_sequence_number(seq);
    h.set_flags(flags);
    h.set_message_len(len as u32);
    m
}

/// Recomputes the IPv4 header checksum after a test edited the header.
pub fn refill_ip_csum(f: &mut [u8]) {
    let hl = usize::from(f[14] & 0xf) * 4;
    f[24..26].fill(0);
    let c = checksum::checksum(&f[14..14 + hl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// Recomputes the UDP checksum of an option-less frame after a test edit.
pub fn refill_udp_csum(f: &mut [u8]) {
    let (src, dst) = {
        let ip = Ipv4Packet::new_unchecked(&f[14..]);
        (ip.src_addr(), ip.dst_addr())
    };
    UdpPacket::new_unchecked(&mut f[34..]).fill_checksum(src, dst);
}

/// Every checksum a reply carries verifies: IPv4 header, and UDP (which
/// must be non-zero when `udp_nonzero`) or ICMP.
pub fn assert_checksums_ok(f: &[u8], udp_nonzero: bool) {
    let eth = EthernetFrame::new_checked(f).unwrap();
    if eth.ethertype() != EtherType::Ipv4 {
        return;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!(
        14 + usize::from(ip.total_len()),
        f.len(),
        "no trailing bytes"
    );
    match ip.protocol() {
        IpProtocol::Udp => {
            let udp = UdpPacket::new_checked(ip.payload()).unwrap();
            assert_eq!(usize::from(udp.len()), ip.payload().len());
            if udp_nonzero {
                assert_ne!(udp.checksum(), 0, "UDP checksum must be filled");
            }
            assert!(
                udp.verify_checksum(ip.src_addr(), ip.dst_addr()),
                "UDP checksum"
            );
        }
        IpProtocol::Icmp => {
            assert!(IcmpEchoPacket::new_checked(ip.payload())
                .unwrap()
                .verify_checksum());
        }
        _ => {}
    }
}

pub struct Run {
    pub pkts: Vec<VecBuf>,
    pub nexts: Vec<u16>,
    pub drops: Vec<u64>,
}

impl Run {
    /// Bytes of the packets sent to next edge `next`, in order.
    pub fn to(&self, next: u16) -> Vec<Vec<u8>> {
        self.pkts
            .iter()
            .zip(&self.nexts)
            .filter(|(_, n)| **n == next)
            .map(|(p, _)| p.data().to_vec())
            .collect()
    }

    pub fn drop_count(&self, names: &[&str], reason: &str) -> u64 {
        self.drops[names
            .iter()
            .position(|n| *n == reason)
            .expect("declared reason")]
    }
}

/// Runs one node directly on `frames`, as the engine would.
pub fn run_node<N: Node<VecBuf>>(node: &mut N, frames: &[Vec<u8>], rx_tsc: u64) -> Run {
    run_node_hz(node, frames, rx_tsc, HZ)
}

pub fn run_node_hz<N: Node<VecBuf>>(node: &mut N, frames: &[Vec<u8>], rx_tsc: u64, hz: u64) -> Run {
    let mut pkts: Vec<VecBuf> = frames.iter().map(|f| VecBuf::from_slice(f)).collect();
    let mut nexts = vec![u16::MAX; pkts.len()];
    let mut drops = vec![0u64; node.drop_reasons().len()];
    let mut ctx = NodeCtx::new(&mut drops, rx_tsc, hz);
    node.process(&mut ctx, &mut pkts, &mut nexts);
    assert!(
        nexts
            .iter()
            .all(|&n| usize::from(n) < node.next_nodes().len()),
        "every packet gets a declared next"
    );
    let dropped = nexts.iter().filter(|&&n| n == 0).count() as u64;
    assert_eq!(
        drops.iter().sum::<u64>(),
        dropped,
        "every drop is attributed"
    );
    Run { pkts, nexts, drops }
}
