//! `icmp-echo`: answers ping in place. Only the type byte and TTL change
//! besides the swapped addresses, so both checksums are updated
//! incrementally and the payload is never re-summed for the reply.

use crate::graph::{Node, NodeCtx, PacketBuf, DROP, TX};
use crate::wire::{IcmpEchoKind, IcmpEchoPacket, IpProtocol, Ipv4Frame, WireError};

use super::kit::{drop_reasons, packet_loop, NodeConfig, ICMP_ECHO};

const NEXTS: &[&str] = &[DROP, TX];
const NEXT_TX: u16 = 1;

drop_reasons! {
    /// Why `icmp-echo` dropped a packet.
    IcmpDrop {
        /// Shorter than an echo header, or not a plain ICMP/IPv4 frame.
        Malformed => "malformed",
        BadChecksum => "bad-checksum",
        /// Echo replies, errors and every other ICMP type: answering an
        /// error or a reply could start a loop between two hosts.
        NotEchoRequest => "not-echo-request",
    }
}

pub struct IcmpEcho;

impl IcmpEcho {
    pub fn new(_cfg: &NodeConfig) -> Self {
        Self
    }

    #[inline]
    fn reply<P: PacketBuf>(p: &mut P) -> Result<u16, IcmpDrop> {
        let mut frame = match Ipv4Frame::new_checked(p.data_mut()) {
            Ok(f) if f.protocol() == IpProtocol::Icmp => f,
            _ => return Err(IcmpDrop::Malformed),
        };
        let mut icmp = match IcmpEchoPacket::new_checked(frame.payload_mut()) {
            Ok(icmp) => icmp,
            Err(WireError::Unsupported) => return Err(IcmpDrop::NotEchoRequest),
            Err(_) => return Err(IcmpDrop::Malformed),
        };
        if icmp.kind() != Some(IcmpEchoKind::Request) {
            return Err(IcmpDrop::NotEchoRequest);
        }
        if !icmp.verify_checksum() {
            return Err(IcmpDrop::BadChecksum);
        }
        icmp.make_reply();
        frame.reverse();
        Ok(NEXT_TX)
    }
}

impl<P: PacketBuf> Node<P> for IcmpEcho {
    fn name(&self) -> &'static str {
        ICMP_ECHO
    }

    fn next_nodes(&self) -> &'static [&'static str] {
        NEXTS
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        IcmpDrop::NAMES
    }

    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        packet_loop(ctx, pkts, nexts, Self::reply);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::wire::RpcMethod;

    fn run(frames: &[Vec<u8>]) -> Run {
        run_node(&mut IcmpEcho::new(&cfg()), frames, 0)
    }

    fn only_drop(f: Vec<u8>, reason: IcmpDrop) {
        let r = run(&[f]);
        assert_eq!(r.nexts, [0], "{reason:?}");
        assert_eq!(r.drops[reason as usize], 1, "{reason:?}");
        assert_eq!(r.drops.iter().sum::<u64>(), 1);
    }

    #[test]
    fn echo_reply_byte_exact() {
        for payload in [
            &b""[..],
            b"a",
            b"abcdefghijklmnopqrstuvwabcdefghi",
            &[0xff; 1472],
        ] {
            let req = icmp_echo_request(payload);
            let r = run(std::slice::from_ref(&req));
            assert_eq!(r.nexts, [NEXT_TX]);
            let out = r.pkts[0].data();
            assert_eq!(
                out,
                &icmp_echo_reply(payload)[..],
                "payload len {}",
                payload.len()
            );
            assert_checksums_ok(out, false);
            assert_eq!(out.len(), req.len());
        }
    }

    #[test]
    fn not_echo_requests() {
        let reply = icmp_message(IcmpEchoKind::Reply, 1, 1, b"x");
        only_drop(
            ipv4_frame(PEER_IP, OUR_IP, IpProtocol::Icmp, &reply),
            IcmpDrop::NotEchoRequest,
        );
        // Destination unreachable (type 3), and an echo request with code 1.
        let mut unreach = icmp_message(IcmpEchoKind::Request, 1, 1, b"x");
        unreach[0] = 3;
        only_drop(
            ipv4_frame(PEER_IP, OUR_IP, IpProtocol::Icmp, &unreach),
            IcmpDrop::NotEchoRequest,
        );
        let mut code1 = icmp_message(IcmpEchoKind::Request, 1, 1, b"x");
        code1[1] = 1;
        only_drop(
            ipv4_frame(PEER_IP, OUR_IP, IpProtocol::Icmp, &code1),
            IcmpDrop::NotEchoRequest,
        );
    }

    #[test]
    fn bad_checksum() {
        let mut f = icmp_echo_request(b"hello");
        let last = f.len() - 1;
        f[last] ^= 0x40;
        only_drop(f, IcmpDrop::BadChecksum);
    }

    #[test]
    fn malformed() {
        // 7 bytes of ICMP: shorter than the echo header.
        let f = ipv4_frame(PEER_IP, OUR_IP, IpProtocol::Icmp, &[8, 0, 0, 0, 0, 0, 0]);
        only_drop(f, IcmpDrop::Malformed);
        // Lower layers inconsistent: not UDP-free, padded, truncated.
        only_drop(rpc_request(RpcMethod::Echo, 1, b""), IcmpDrop::Malformed);
        let mut padded = icmp_echo_request(b"");
        padded.resize(60, 0);
        only_drop(padded, IcmpDrop::Malformed);
        only_drop(icmp_echo_request(b"")[..30].to_vec(), IcmpDrop::Malformed);
    }
}
