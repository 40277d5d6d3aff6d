//! `udp-input`: validates the UDP header and dispatches by destination
//! port.

use super::kit::{
    drop_reasons, packet_loop, NodeConfig, RxChecksum, SumCheck, PROP_IPV4_UDP, PROP_PLAIN_UDP,
    RPC_RELAY, RPC_SERVER, SOCKPERF_ECHO, UDP_INPUT,
};
use crate::graph::{Node, NodeCtx, PacketBuf, DROP};
use crate::wire::{Ipv4Address, UdpFrame};

const NEXTS: &[&str] = &[DROP, RPC_SERVER, SOCKPERF_ECHO, RPC_RELAY];
const NEXT_RPC: u16 = 1;
const NEXT_SOCKPERF: u16 = 2;
const NEXT_RELAY: u16 = 3;

drop_reasons! {
    /// Why `udp-input` dropped a datagram.
    UdpDrop {
        /// Shorter than a UDP header, or a UDP length that is not exactly
        /// the IPv4 payload length (bytes outside the datagram would be
        /// echoed back by in-place replies).
        Malformed => "malformed",
        /// The reply would go to port 0, which nothing listens on.
        ZeroSrcPort => "zero-src-port",
        UnknownPort => "unknown-port",
        /// Non-zero checksum that does not verify.
        BadChecksum => "bad-checksum",
    }
}

pub struct UdpInput {
    ip: Ipv4Address,
    /// Relays are configured: datagrams to any address but the server's are theirs
    /// (`ip4-input` let through only ours).
    relays: bool,
    rpc_port: u16,
    /// Replicas answer `rpc_port..rpc_port + rpc_replicas`: one subtraction and compare.
    rpc_replicas: u16,
    sockperf_port: u16,
    rx_checksum: RxChecksum,
}

impl UdpInput {
    pub fn new(cfg: &NodeConfig) -> Self {
        Self {
            ip: cfg.ip,
            relays: !cfg.relay_ips.is_empty(),
            rpc_port: cfg.rpc_port,
            rpc_replicas: cfg.rpc_replicas.max(1),
            sockperf_port: cfg.sockperf_port,
            rx_checksum: cfg.rx_checksum,
        }
    }

    /// The layout check is [`UdpFrame::new_checked`], four compares on the
    /// first 42 bytes. `IPV4_UDP`: the vector carries [`PROP_IPV4_UDP`], so
    /// only the UDP length is left to check of the layout.
    /// `sum`: what the port's checksum policy leaves to do of the UDP
    /// checksum.
    #[inline]
    fn dispatch<const IPV4_UDP: bool>(&self, data: &[u8], sum: SumCheck) -> Result<u16, UdpDrop> {
        // Shorter than the headers, IPv4 options, another protocol, or a
        // length field that does not end the frame: all one reason, since
        // ip4-input already refused every such frame it could tell apart.
        let frame = if IPV4_UDP {
            UdpFrame::new_checked_udp(data)
        } else {
            UdpFrame::new_checked(data)
        };
        let Ok(frame) = frame else {
            return Err(UdpDrop::Malformed);
        };
        if frame.src_port() == 0 {
            return Err(UdpDrop::ZeroSrcPort);
        }
        let port = frame.dst_port();
        let next = if self.relays && frame.ip().dst_addr() != self.ip {
            NEXT_RELAY
        } else if port.wrapping_sub(self.rpc_port) < self.rpc_replicas {
            NEXT_RPC
        } else if port == self.sockperf_port {
            NEXT_SOCKPERF
        } else {
            return Err(UdpDrop::UnknownPort);
        };
        // Summing the payload is the expensive check, so it comes after the
        // port filter: stray traffic to closed ports costs no more than a
        // header read.
        match sum {
            SumCheck::Bad => Err(UdpDrop::BadChecksum),
            SumCheck::Software if !frame.verify_udp_checksum() => Err(UdpDrop::BadChecksum),
            SumCheck::Software | SumCheck::Skip => Ok(next),
        }
    }
}

impl<P: PacketBuf> Node<P> for UdpInput {
    fn name(&self) -> &'static str {
        UDP_INPUT
    }

    fn next_nodes(&self) -> &'static [&'static str] {
        NEXTS
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        UdpDrop::NAMES
    }

    fn edge_props(&self) -> &'static [u32] {
        const PLAIN: u32 = PROP_IPV4_UDP | PROP_PLAIN_UDP;
        const PROPS: [u32; NEXTS.len()] = {
            let mut p = [0; NEXTS.len()];
            p[NEXT_RPC as usize] = PLAIN;
            p[NEXT_SOCKPERF as usize] = PLAIN;
            p[NEXT_RELAY as usize] = PLAIN;
            p
        };
        &PROPS
    }

    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        // One branch per vector picks the loop; the packets' verdicts are
        // the same either way.
        let policy = self.rx_checksum;
        if ctx.guaranteed(PROP_IPV4_UDP) {
            packet_loop(ctx, pkts, nexts, |p| {
                self.dispatch::<true>(p.data(), policy.check(|| p.rx_l4_checksum()))
            });
        } else {
            packet_loop(ctx, pkts, nexts, |p| {
                self.dispatch::<false>(p.data(), policy.check(|| p.rx_l4_checksum()))
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::wire::{IpProtocol, RpcMethod};

    fn run(frames: &[Vec<u8>]) -> Run {
        run_node(&mut UdpInput::new(&cfg()), frames, 0)
    }

    fn only_drop(f: Vec<u8>, reason: UdpDrop) {
        let r = run(&[f]);
        assert_eq!(r.nexts, [0], "{reason:?}");
        assert_eq!(r.drops[reason as usize], 1, "{reason:?}");
        assert_eq!(r.drops.iter().sum::<u64>(), 1);
    }

    #[test]
    fn dispatch_by_port_untouched() {
        let rpc = rpc_request(RpcMethod::Echo, 1, b"abc");
        let sp = udp_frame(&to_us(11111), &[0; 14]);
        let mut no_csum = udp_frame(&to_us(7777), b"xyz");
        no_csum[40..42].fill(0);
        let r = run(&[rpc.clone(), sp.clone(), no_csum.clone()]);
        assert_eq!(r.nexts, [NEXT_RPC, NEXT_SOCKPERF, NEXT_RPC]);
        assert_eq!(r.to(NEXT_RPC), [rpc, no_csum]);
        assert_eq!(r.to(NEXT_SOCKPERF), [sp]);
    }

    #[test]
    fn configured_ports() {
        let mut c = cfg();
        c.rpc_port = 9000;
        c.sockperf_port = 9001;
        let r = run_node(
            &mut UdpInput::new(&c),
            &[
                udp_frame(&to_us(9000), b""),
                udp_frame(&to_us(9001), b""),
                udp_frame(&to_us(7777), b""),
            ],
            0,
        );
        assert_eq!(r.nexts, [NEXT_RPC, NEXT_SOCKPERF, 0]);
        assert_eq!(r.drop_count(UdpDrop::NAMES, "unknown-port"), 1);
    }

    #[test]
    fn replicas_are_a_port_range() {
        let mut c = cfg();
        c.rpc_port = 9000;
        c.rpc_replicas = 3;
        c.sockperf_port = 9100;
        let ports = [8999, 9000, 9001, 9002, 9003, 9100];
        let frames: Vec<Vec<u8>> = ports.iter().map(|&p| udp_frame(&to_us(p), b"")).collect();
        let r = run_node(&mut UdpInput::new(&c), &frames, 0);
        assert_eq!(r.nexts, [0, NEXT_RPC, NEXT_RPC, NEXT_RPC, 0, NEXT_SOCKPERF]);
        assert_eq!(r.drop_count(UdpDrop::NAMES, "unknown-port"), 2);
    }

    #[test]
    fn unknown_port_and_zero_source_port() {
        only_drop(udp_frame(&to_us(53), b"q"), UdpDrop::UnknownPort);
        let mut ep = to_us(7777);
        ep.src_port = 0;
        only_drop(udp_frame(&ep, b"q"), UdpDrop::ZeroSrcPort);
    }

    #[test]
    fn bad_checksum() {
        let mut f = udp_frame(&to_us(7777), b"payload");
        let last = f.len() - 1;
        f[last] ^= 1;
        only_drop(f, UdpDrop::BadChecksum);
    }

    #[test]
    fn malformed_lengths() {
        let f = udp_frame(&to_us(7777), b"payload");
        for udp_len in [0u16, 7, 14, 16] {
            let mut g = f.clone();
            g[38..40].copy_from_slice(&udp_len.to_be_bytes());
            refill_udp_csum(&mut g);
            only_drop(g, UdpDrop::Malformed);
        }
        // IPv4 payload too short for a UDP header.
        only_drop(
            ipv4_frame(PEER_IP, OUR_IP, IpProtocol::Udp, &[0x9c, 0x40, 0x1e]),
            UdpDrop::Malformed,
        );
        // Wrong protocol, padding left on.
        only_drop(icmp_echo_request(b"abcdefgh"), UdpDrop::Malformed);
        let mut padded = udp_frame(&to_us(7777), b"");
        padded.resize(60, 0);
        only_drop(padded, UdpDrop::Malformed);
    }
}
