//! `sockperf-echo`: the server side of sockperf's UDP ping-pong, so the
//! fast path can be measured with an unmodified sockperf client.

use crate::graph::{Node, NodeCtx, PacketBuf, DROP, TX};
use crate::wire::sockperf::{self, FLAG_CLIENT};
use crate::wire::{SockperfHeader, UdpFrame};

use super::kit::{drop_reasons, packet_loop, NodeConfig, SOCKPERF_ECHO};

const NEXTS: &[&str] = &[DROP, TX];
const NEXT_TX: u16 = 1;

drop_reasons! {
    /// Why `sockperf-echo` consumed a message without answering.
    SockperfDrop {
        /// Shorter than the 14-byte sockperf header, or not a plain
        /// Ethernet/IPv4/UDP frame.
        Malformed => "malformed",
        /// Consumed as intended, not an error: throughput and warm-up
        /// messages without the pong-request flag expect no answer.
        NoReplyWanted => "no-reply-wanted",
        /// Client flag clear: a server's answer. Answering it could bounce
        /// one message between two servers forever.
        NotClient => "not-client",
    }
}

pub struct SockperfEcho;

impl SockperfEcho {
    pub fn new(_cfg: &NodeConfig) -> Self {
        Self
    }

    #[inline]
    fn reply<P: PacketBuf>(p: &mut P) -> Result<u16, SockperfDrop> {
        let Ok(mut frame) = UdpFrame::new_checked(p.data_mut()) else {
            return Err(SockperfDrop::Malformed);
        };
        let Ok(msg) = SockperfHeader::new_checked(frame.payload()) else {
            return Err(SockperfDrop::Malformed);
        };
        if !msg.wants_reply() {
            return Err(SockperfDrop::NoReplyWanted);
        }
        if !msg.is_client() {
            return Err(SockperfDrop::NotClient);
        }
        let flags = msg.flags() & !FLAG_CLIENT;
        frame.set_payload_u16s([sockperf::field::FLAGS.start], [flags]);
        frame.reverse();
        Ok(NEXT_TX)
    }
}

impl<P: PacketBuf> Node<P> for SockperfEcho {
    fn name(&self) -> &'static str {
        SOCKPERF_ECHO
    }

    fn next_nodes(&self) -> &'static [&'static str] {
        NEXTS
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        SockperfDrop::NAMES
    }

    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        packet_loop(ctx, pkts, nexts, Self::reply);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::wire::sockperf::{FLAG_PONG_REQUEST, FLAG_WARMUP};

    fn run(frames: &[Vec<u8>]) -> Run {
        run_node(&mut SockperfEcho::new(&cfg()), frames, 0)
    }

    fn only_drop(f: Vec<u8>, reason: SockperfDrop) {
        let r = run(&[f]);
        assert_eq!(r.nexts, [0], "{reason:?}");
        assert_eq!(r.drops[reason as usize], 1, "{reason:?}");
        assert_eq!(r.drops.iter().sum::<u64>(), 1);
    }

    #[test]
    fn pong_request_is_echoed_byte_exact() {
        for (flags, len) in [
            (FLAG_CLIENT | FLAG_PONG_REQUEST, 14),
            (FLAG_CLIENT | FLAG_PONG_REQUEST, 64),
            (FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP, 1000),
        ] {
            let req = udp_frame(&to_us(11111), &sockperf_message(77, flags, len));
            let r = run(std::slice::from_ref(&req));
            assert_eq!(r.nexts, [NEXT_TX]);
            let want = udp_frame(
                &to_us(11111).reversed(),
                &sockperf_message(77, flags & !FLAG_CLIENT, len),
            );
            assert_eq!(r.pkts[0].data(), &want[..]);
            assert_checksums_ok(r.pkts[0].data(), true);
        }
    }

    #[test]
    fn zero_checksum_stays_zero() {
        let mut req = udp_frame(
            &to_us(11111),
            &sockperf_message(1, FLAG_CLIENT | FLAG_PONG_REQUEST, 20),
        );
        req[40..42].fill(0);
        let r = run(&[req]);
        assert_eq!(r.nexts, [NEXT_TX]);
        assert_eq!(&r.pkts[0].data()[40..42], &[0, 0]);
        assert_checksums_ok(r.pkts[0].data(), false);
    }

    #[test]
    fn messages_without_pong_request_are_consumed() {
        only_drop(
            udp_frame(&to_us(11111), &sockperf_message(1, FLAG_CLIENT, 64)),
            SockperfDrop::NoReplyWanted,
        );
        only_drop(
            udp_frame(
                &to_us(11111),
                &sockperf_message(1, FLAG_CLIENT | FLAG_WARMUP, 64),
            ),
            SockperfDrop::NoReplyWanted,
        );
    }

    #[test]
    fn server_replies_are_not_answered() {
        only_drop(
            udp_frame(&to_us(11111), &sockperf_message(1, FLAG_PONG_REQUEST, 64)),
            SockperfDrop::NotClient,
        );
    }

    #[test]
    fn malformed() {
        let m = sockperf_message(1, FLAG_CLIENT | FLAG_PONG_REQUEST, 14);
        only_drop(udp_frame(&to_us(11111), &m[..13]), SockperfDrop::Malformed);
        only_drop(udp_frame(&to_us(11111), b""), SockperfDrop::Malformed);
        let mut padded = udp_frame(&to_us(11111), &m);
        padded.push(0);
        only_drop(padded, SockperfDrop::Malformed);
    }
}
