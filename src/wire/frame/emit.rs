//! Whole-frame builders: Ethernet + IPv4 + UDP (+ RPC) written in one pass,
//! in the common frame's layout, with lengths and checksums filled. Used by
//! clients and tests; the server answers in place instead.

use super::super::ethernet::{EtherType, EthernetFrame, MacAddress};
use super::super::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet};
use super::super::rpc::{self, RpcHeader, RpcRepr};
use super::super::udp::UdpPacket;
use super::super::WireError;
use super::{field, MAX_UDP_PAYLOAD, TTL, UDP_HEADERS_LEN};

/// Link, network and transport addressing of one direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpEndpoints {
    pub src_mac: MacAddress,
    pub dst_mac: MacAddress,
    pub src_ip: Ipv4Address,
    pub dst_ip: Ipv4Address,
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpEndpoints {
    /// The same flow seen from the other end, as a reply is addressed.
    #[inline]
    pub fn reversed(&self) -> Self {
        UdpEndpoints {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            src_ip: self.dst_ip,
            dst_ip: self.src_ip,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }
}

/// Checks sizes and returns the frame length for a UDP payload of `len`.
#[inline]
fn frame_len(buf: &[u8], payload_len: usize) -> Result<usize, WireError> {
    if payload_len > MAX_UDP_PAYLOAD {
        return Err(WireError::BadLength);
    }
    let n = UDP_HEADERS_LEN + payload_len;
    if buf.len() < n {
        return Err(WireError::BufferTooSmall);
    }
    Ok(n)
}

/// Writes all three headers around a UDP payload already in place in
/// `frame[UDP_HEADERS_LEN..]`, then both checksums (UDP last, since it
/// covers the payload).
#[inline]
fn finish(frame: &mut [u8], ep: &UdpEndpoints) {
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    eth.set_dst_addr(ep.dst_mac);
    eth.set_src_addr(ep.src_mac);
    eth.set_ethertype(EtherType::Ipv4);

    // frame_len() bounded the payload, so these casts cannot truncate.
    let ip_len = (frame.len() - field::IP) as u16;
    let udp_len = (frame.len() - field::UDP) as u16;

    let mut ip = Ipv4Packet::new_unchecked(&mut frame[field::IP..]);
    ip.set_version_and_header_len(field::UDP - field::IP);
    ip.set_dscp_ecn(0);
    ip.set_total_len(ip_len);
    // Ident is irrelevant for DF packets (RFC 6864), so zero is fine.
    ip.set_ident(0);
    ip.set_unfragmented(true);
    ip.set_ttl(TTL);
    ip.set_protocol(IpProtocol::Udp);
    ip.set_src_addr(ep.src_ip);
    ip.set_dst_addr(ep.dst_ip);
    ip.fill_checksum();

    let mut udp = UdpPacket::new_unchecked(&mut frame[field::UDP..]);
    udp.set_src_port(ep.src_port);
    udp.set_dst_port(ep.dst_port);
    udp.set_len(udp_len);
    udp.fill_checksum(ep.src_ip, ep.dst_ip);
}

/// Writes an Ethernet/IPv4/UDP frame carrying `payload` at the start of
/// `buf` and returns its length. No padding to the 60-byte Ethernet minimum
/// is added; NICs do that on transmit.
pub fn emit_udp_frame(
    buf: &mut [u8],
    ep: &UdpEndpoints,
    payload: &[u8],
) -> Result<usize, WireError> {
    let n = frame_len(buf, payload.len())?;
    let frame = &mut buf[..n];
    frame[UDP_HEADERS_LEN..].copy_from_slice(payload);
    finish(frame, ep);
    Ok(n)
}

/// Writes a complete RPC frame (headers, `repr`, `payload`) at the start of
/// `buf` and returns its length. The RPC `length` field is taken from
/// `payload.len()`, not `repr.payload_len`, so the two cannot disagree.
pub fn emit_request_frame(
    buf: &mut [u8],
    ep: &UdpEndpoints,
    repr: &RpcRepr,
    payload: &[u8],
) -> Result<usize, WireError> {
    let n = frame_len(buf, rpc::HEADER_LEN + payload.len())?;
    let frame = &mut buf[..n];
    let repr = RpcRepr {
        payload_len: payload.len() as u32,
        ..*repr
    };
    let mut h = RpcHeader::new_unchecked(&mut frame[UDP_HEADERS_LEN..]);
    repr.emit(&mut h)?;
    h.payload_mut().copy_from_slice(payload);
    finish(frame, ep);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::super::rpc::{RpcKind, RpcMethod};
    use super::super::super::test_util::XorShift;
    use super::super::UdpFrame;
    use super::*;
    use std::fmt::Write;

    use super::super::super::test_util::client_to_server as endpoints;

    /// Parses a frame down to the RPC layer, verifying everything on the way.
    fn parse(frame: &[u8]) -> (UdpEndpoints, RpcRepr, Vec<u8>) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Ipv4);
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum() && !ip.is_fragment() && !ip.has_options());
        assert_eq!(ip.protocol(), IpProtocol::Udp);
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_ne!(udp.checksum(), 0);
        assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        let h = RpcHeader::new_checked(udp.payload()).unwrap();
        let ep = UdpEndpoints {
            src_mac: eth.src_addr(),
            dst_mac: eth.dst_addr(),
            src_ip: ip.src_addr(),
            dst_ip: ip.dst_addr(),
            src_port: udp.src_port(),
            dst_port: udp.dst_port(),
        };
        assert_eq!(UdpFrame::new_checked(frame).unwrap().endpoints(), ep);
        (ep, RpcRepr::parse(&h).unwrap(), h.payload().to_vec())
    }

    #[test]
    fn request_round_trip() {
        let mut rng = XorShift(99);
        let mut buf = [0u8; 1514];
        let mut payload = [0u8; 1400];
        for _ in 0..crate::test_rounds(500) {
            let plen = rng.below(payload.len() + 1);
            rng.fill(&mut payload[..plen]);
            let repr = RpcRepr::request(RpcMethod::Echo, rng.next_u64(), rng.next_u64(), 0);
            let n = emit_request_frame(&mut buf, &endpoints(), &repr, &payload[..plen]).unwrap();
            assert_eq!(n, UDP_HEADERS_LEN + rpc::HEADER_LEN + plen);
            let (ep, got, p) = parse(&buf[..n]);
            assert_eq!(ep, endpoints());
            assert_eq!(
                got,
                RpcRepr {
                    payload_len: plen as u32,
                    ..repr
                }
            );
            assert_eq!(p, &payload[..plen]);
        }
    }

    #[test]
    fn size_errors() {
        let repr = RpcRepr::request(RpcMethod::Echo, 1, 1, 0);
        let mut small = [0u8; UDP_HEADERS_LEN + rpc::HEADER_LEN + 3];
        assert_eq!(
            emit_request_frame(&mut small, &endpoints(), &repr, b"abcd"),
            Err(WireError::BufferTooSmall)
        );
        assert!(emit_request_frame(&mut small, &endpoints(), &repr, b"abc").is_ok());
        let big = vec![0u8; MAX_UDP_PAYLOAD + 1];
        let mut out = vec![0u8; UDP_HEADERS_LEN + big.len()];
        assert_eq!(
            emit_udp_frame(&mut out, &endpoints(), &big),
            Err(WireError::BadLength)
        );
        let n = emit_udp_frame(&mut out, &endpoints(), &big[1..]).unwrap();
        let ip = Ipv4Packet::new_checked(&out[field::IP..n]).unwrap();
        assert_eq!(ip.total_len(), u16::MAX);
    }

    #[test]
    fn reversed_endpoints() {
        let ep = endpoints();
        assert_eq!(ep.reversed().reversed(), ep);
        assert_eq!(ep.reversed().src_port, rpc::DEFAULT_PORT);
    }

    fn hexdump(frame: &[u8]) -> String {
        let mut s = String::new();
        for (i, line) in frame.chunks(16).enumerate() {
            write!(s, "{:04x} ", i * 16).unwrap();
            for b in line {
                write!(s, " {b:02x}").unwrap();
            }
            s.push('\n');
        }
        s
    }

    /// Builds the worked example in docs/protocol.md and checks the document
    /// still shows exactly these bytes.
    #[test]
    fn protocol_doc_example_is_current() {
        let ep = endpoints();
        let repr = RpcRepr::request(RpcMethod::Echo, 42, 1_000_000_007, 0);
        let mut req = [0u8; 128];
        let n = emit_request_frame(&mut req, &ep, &repr, b"hello").unwrap();

        // What the server sends back: same payload, addressing reversed,
        // kind response, server_ns filled, UDP checksum recomputed.
        let resp_repr = RpcRepr {
            kind: RpcKind::Response,
            server_ns: 850,
            ..repr
        };
        let mut resp = [0u8; 128];
        let m = emit_request_frame(&mut resp, &ep.reversed(), &resp_repr, b"hello").unwrap();
        assert_eq!(n, m, "an echo reply is exactly as large as its request");

        let doc = include_str!("../../../docs/protocol.md");
        let (req_dump, resp_dump) = (hexdump(&req[..n]), hexdump(&resp[..m]));
        assert!(
            doc.contains(&req_dump),
            "docs/protocol.md request example is stale; expected:\n{req_dump}"
        );
        assert!(
            doc.contains(&resp_dump),
            "docs/protocol.md response example is stale; expected:\n{resp_dump}"
        );
    }
}
