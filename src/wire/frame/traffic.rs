//! Request traffic for load files and benchmarks: many distinct RPC echo
//! requests of one size, complete frames ready to be written to a pcap and
//! replayed.

use super::super::rpc::{self, RpcMethod, RpcRepr};
use super::{emit_request_frame, UdpEndpoints, UDP_HEADERS_LEN};

/// `count` RPC echo requests addressed by `ep` (client to server), each with
/// a `payload`-byte body, distinct `request_id`s `1..=count` and distinct
/// `client_ts` values. For load files and benchmarks: the frames are
/// complete, with valid IPv4 and UDP checksums.
///
/// # Panics
/// If `payload` exceeds what one UDP datagram can carry.
pub fn rpc_echo_requests(ep: UdpEndpoints, count: usize, payload: usize) -> Vec<Vec<u8>> {
    let frame_len = UDP_HEADERS_LEN + rpc::HEADER_LEN + payload;
    (1..=count as u64)
        .map(|id| {
            // A recognisable body that differs per request.
            let body: Vec<u8> = (0..payload)
                .map(|i| (id as usize).wrapping_add(i) as u8)
                .collect();
            // client_ts: an arbitrary but distinct, monotonic clock reading.
            let repr = RpcRepr::request(RpcMethod::Echo, id, 1_000_000_000 + id * 1_000, 0);
            let mut frame = vec![0u8; frame_len];
            let n = emit_request_frame(&mut frame, &ep, &repr, &body)
                .expect("RPC payload too large for one UDP datagram");
            debug_assert_eq!(n, frame_len);
            frame
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EtherType, EthernetFrame, Ipv4Packet, RpcHeader, UdpPacket};

    #[test]
    fn rpc_echo_requests_are_valid_and_distinct() {
        let ep = crate::wire::test_util::client_to_server();
        for payload in [0usize, 22, 1400] {
            let frames = rpc_echo_requests(ep, 50, payload);
            assert_eq!(frames.len(), 50);
            let mut ts = std::collections::HashSet::new();
            for (i, f) in frames.iter().enumerate() {
                assert_eq!(f.len(), 42 + 32 + payload);
                let eth = EthernetFrame::new_checked(&f[..]).unwrap();
                assert_eq!(eth.ethertype(), EtherType::Ipv4);
                assert_eq!(eth.dst_addr(), ep.dst_mac);
                let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                assert!(ip.verify_checksum());
                let udp = UdpPacket::new_checked(ip.payload()).unwrap();
                assert_ne!(udp.checksum(), 0);
                assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));
                assert_eq!(udp.dst_port(), rpc::DEFAULT_PORT);
                let r = RpcRepr::parse(&RpcHeader::new_checked(udp.payload()).unwrap()).unwrap();
                assert_eq!(r.request_id, i as u64 + 1);
                assert_eq!(r.method, RpcMethod::Echo);
                assert_eq!(r.payload_len as usize, payload);
                assert!(ts.insert(r.client_ts), "client_ts repeats");
            }
        }
        assert!(rpc_echo_requests(ep, 0, 10).is_empty());
    }
}
