//! Zero-copy views over the protocol headers the fast path speaks.
//!
//! Every view wraps a byte buffer (`T: AsRef<[u8]>`) and reads or writes
//! fields in place, in the style of smoltcp's `wire` module. Nothing here
//! knows about DPDK: the views work equally on an mbuf's data, a `Vec<u8>`
//! in a test, or a stack array in a client.
//!
//! `new_checked` validates lengths (and magic/version where the protocol has
//! them) once, so that every getter on the returned view is infallible and
//! cannot index out of bounds. `new_unchecked` skips that validation and is
//! meant for buffers the caller has sized itself, e.g. when emitting; getters
//! on an unchecked view over a short buffer may panic.

#![forbid(unsafe_code)]

use core::fmt;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod frame;
pub mod icmp;
pub mod ipv4;
pub mod rpc;
pub mod sockperf;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket};
pub use ethernet::{EtherType, EthernetFrame, MacAddress};
pub use frame::{emit_request_frame, emit_udp_frame, Ipv4Frame, UdpEndpoints, UdpFrame};
pub use icmp::{IcmpEchoKind, IcmpEchoPacket};
pub use ipv4::{IpProtocol, Ipv4Address, Ipv4Packet};
pub use rpc::{RpcHeader, RpcKind, RpcMethod, RpcRepr, RpcStatus};
pub use sockperf::SockperfHeader;
pub use udp::UdpPacket;

/// Why a buffer could not be viewed as (or written as) a given header.
///
/// Small and `Copy` so the fast path can count drops per reason without
/// allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the header, or than a length field claims.
    Truncated,
    /// A checksum did not verify.
    BadChecksum,
    /// A version field holds a version this code does not speak.
    BadVersion,
    /// A magic number did not match.
    BadMagic,
    /// A header-length field is below the protocol minimum (e.g. IPv4 IHL < 5).
    BadHeaderLen,
    /// A length field is inconsistent (e.g. smaller than its own header).
    BadLength,
    /// A well-formed packet of a variant this code does not handle
    /// (non-Ethernet/IPv4 ARP, ICMP other than echo).
    Unsupported,
    /// The output buffer is too small for what was asked to be emitted.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated packet",
            WireError::BadChecksum => "bad checksum",
            WireError::BadVersion => "unsupported protocol version",
            WireError::BadMagic => "bad magic number",
            WireError::BadHeaderLen => "bad header length",
            WireError::BadLength => "inconsistent length field",
            WireError::Unsupported => "unsupported packet variant",
            WireError::BufferTooSmall => "output buffer too small",
        })
    }
}

impl std::error::Error for WireError {}

/// Failure to parse a textual address (from a command line or config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrParseError {
    /// Not of the form `a.b.c.d` with each part in 0..=255.
    Ipv4,
    /// Not six two-digit hex octets separated by `:`.
    Mac,
}

impl fmt::Display for AddrParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrParseError::Ipv4 => {
                "invalid IPv4 address: expected four decimal octets like 198.18.0.1"
            }
            AddrParseError::Mac => {
                "invalid MAC address: expected six hex octets like 02:00:00:00:00:01"
            }
        })
    }
}

impl std::error::Error for AddrParseError {}

// Big-endian field helpers. Callers always pass a slice cut with a
// fixed-width field range, so the conversion cannot fail; `unwrap_or`
// rather than `unwrap` just keeps a dead panic branch out of hot code.
#[inline]
pub(crate) fn read_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes(b.try_into().unwrap_or([0; 2]))
}

#[inline]
pub(crate) fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().unwrap_or([0; 4]))
}

#[inline]
pub(crate) fn read_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().unwrap_or([0; 8]))
}

#[cfg(test)]
pub(crate) mod test_util {
    /// Tiny xorshift64* PRNG so fuzz-style tests need no crates and are
    /// reproducible from the seed.
    pub struct XorShift(pub u64);

    impl XorShift {
        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        pub fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next_u64() as u8;
            }
        }
    }

    // IPv4/UDP DNS query for example.com, 192.168.1.10:52000 -> 8.8.8.8:53.
    // Checksums (IP 0x4cac, UDP 0x80ea) were computed by an independent
    // implementation, not by this module.
    pub(crate) const IPV4_UDP: &str = "
        45 00 00 39 1c 46 40 00 40 11 4c ac c0 a8 01 0a
        08 08 08 08 cb 20 00 35 00 25 80 ea 12 34 01 00
        00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65
        03 63 6f 6d 00 00 01 00 01";

    /// The client-to-server flow of the frame tests (and of
    /// docs/protocol.md's worked example).
    pub(crate) fn client_to_server() -> super::UdpEndpoints {
        use super::{rpc, Ipv4Address, MacAddress};
        super::UdpEndpoints {
            src_mac: MacAddress([0x02, 0, 0, 0, 0, 0x02]),
            dst_mac: MacAddress([0x02, 0, 0, 0, 0, 0x01]),
            src_ip: Ipv4Address([198, 18, 0, 2]),
            dst_ip: Ipv4Address([198, 18, 0, 1]),
            src_port: 40000,
            dst_port: rpc::DEFAULT_PORT,
        }
    }

    /// Parses a whitespace-separated hex dump into bytes.
    pub fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::XorShift;
    use super::*;

    /// Touches every getter of every view; the point is only that none panic.
    fn exercise(buf: &[u8]) {
        if let Ok(f) = EthernetFrame::new_checked(buf) {
            let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
            exercise_l3(f.ethertype(), f.payload());
        }
        exercise_l3(EtherType::Ipv4, buf);
        exercise_l3(EtherType::Arp, buf);
        exercise_l4(buf);
    }

    fn exercise_l3(ty: EtherType, buf: &[u8]) {
        match ty {
            EtherType::Arp => {
                if let Ok(a) = ArpPacket::new_checked(buf) {
                    let _ = (a.operation(), a.sender_hw_addr(), a.sender_proto_addr());
                    let _ = (a.target_hw_addr(), a.target_proto_addr());
                    let _ = (
                        a.hardware_type(),
                        a.protocol_type(),
                        a.hw_len(),
                        a.proto_len(),
                    );
                }
            }
            EtherType::Ipv4 => {
                if let Ok(ip) = Ipv4Packet::new_checked(buf) {
                    let _ = (ip.version(), ip.header_len(), ip.total_len(), ip.ident());
                    let _ = (ip.dont_frag(), ip.more_frags(), ip.frag_offset());
                    let _ = (ip.is_fragment(), ip.has_options(), ip.ttl(), ip.protocol());
                    let _ = (ip.checksum(), ip.src_addr(), ip.dst_addr(), ip.dscp_ecn());
                    let _ = ip.verify_checksum();
                    if let Ok(udp) = UdpPacket::new_checked(ip.payload()) {
                        let _ = udp.verify_checksum(ip.src_addr(), ip.dst_addr());
                        exercise_l4(udp.payload());
                    }
                    exercise_icmp(ip.payload());
                }
            }
            _ => {}
        }
    }

    fn exercise_icmp(buf: &[u8]) {
        if let Ok(icmp) = IcmpEchoPacket::new_checked(buf) {
            let _ = (icmp.kind(), icmp.code(), icmp.checksum(), icmp.ident());
            let _ = (icmp.seq_no(), icmp.payload().len(), icmp.verify_checksum());
        }
    }

    fn exercise_l4(buf: &[u8]) {
        exercise_icmp(buf);
        if let Ok(u) = UdpPacket::new_checked(buf) {
            let _ = (
                u.src_port(),
                u.dst_port(),
                u.len(),
                u.checksum(),
                u.payload().len(),
            );
            let _ = u.verify_checksum(Ipv4Address::UNSPECIFIED, Ipv4Address::BROADCAST);
        }
        if let Ok(h) = RpcHeader::new_checked(buf) {
            let _ = (h.magic(), h.version(), h.kind(), h.method(), h.status());
            let _ = (h.request_id(), h.client_ts(), h.server_ns(), h.length());
            let _ = (h.payload().len(), RpcRepr::parse(&h));
        }
        if let Ok(s) = SockperfHeader::new_checked(buf) {
            let _ = (
                s.sequence_number(),
                s.flags(),
                s.message_len(),
                s.wants_reply(),
            );
            let _ = (
                s.is_client(),
                s.is_pong_request(),
                s.is_warmup(),
                s.payload().len(),
            );
        }
    }

    #[test]
    fn random_buffers_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut buf = [0u8; 256];
        for _ in 0..crate::test_rounds(20_000) {
            let len = rng.below(buf.len() + 1);
            rng.fill(&mut buf[..len]);
            exercise(&buf[..len]);
        }
    }

    #[test]
    fn mutated_valid_frames_never_panic() {
        // Random bytes rarely get past the first magic/version check, so
        // also mutate real frames to reach the deeper length logic.
        let ep = UdpEndpoints {
            src_mac: MacAddress([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddress([2, 0, 0, 0, 0, 2]),
            src_ip: Ipv4Address([198, 18, 0, 1]),
            dst_ip: Ipv4Address([198, 18, 0, 2]),
            src_port: 40000,
            dst_port: rpc::DEFAULT_PORT,
        };
        let repr = RpcRepr::request(RpcMethod::Echo, 1, 2, 0);
        let mut rng = XorShift(42);
        let mut good = [0u8; 128];
        let n = emit_request_frame(&mut good, &ep, &repr, b"0123456789").unwrap();
        for _ in 0..crate::test_rounds(20_000) {
            let mut buf = good;
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(n);
                buf[i] = rng.next_u64() as u8;
            }
            let len = rng.below(n + 1);
            exercise(&buf[..len]);
        }
    }

    #[test]
    fn errors_display() {
        assert_eq!(WireError::Truncated.to_string(), "truncated packet");
        assert!(AddrParseError::Mac
            .to_string()
            .contains("02:00:00:00:00:01"));
    }
}
