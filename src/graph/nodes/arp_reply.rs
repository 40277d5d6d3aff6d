//! `arp-reply`: answers who-has for our IPv4 address by turning the request
//! into the reply in place. We keep no ARP cache: replies and RPC answers
//! go back to the MAC the request came from.

use crate::graph::{Node, NodeCtx, PacketBuf, DROP, TX};
use crate::wire::{ArpOperation, ArpPacket, EthernetFrame, MacAddress};

use super::kit::{drop_reasons, packet_loop, NodeConfig, ARP_REPLY};
use super::util::is_bad_source_ip;

const NEXTS: &[&str] = &[DROP, TX];
const NEXT_TX: u16 = 1;
const ETH_LEN: usize = EthernetFrame::<&[u8]>::HEADER_LEN;
const ARP_LEN: usize = ETH_LEN + ArpPacket::<&[u8]>::LEN;

drop_reasons! {
    /// Why `arp-reply` dropped a frame.
    ArpDrop {
        /// Too short, or not Ethernet/IPv4 ARP.
        Malformed => "malformed",
        /// Replies and other operations need no answer.
        NotRequest => "not-request",
        /// Asks for an address that is not ours.
        NotOurIp => "not-our-ip",
        /// Sender IP zero (RFC 5227 probe), broadcast, multicast, class E,
        /// loopback or our own; or sender MAC not unicast. A reply would go
        /// nowhere useful, or defend against a probe we cannot arbitrate.
        BadSender => "bad-sender",
    }
}

pub struct ArpReply {
    mac: MacAddress,
    /// The server's address and the relays': ARP answers for every one of them.
    cfg: NodeConfig,
}

impl ArpReply {
    pub fn new(cfg: &NodeConfig) -> Self {
        Self {
            mac: cfg.mac,
            cfg: *cfg,
        }
    }

    #[inline]
    fn reply<P: PacketBuf>(&self, p: &mut P) -> Result<u16, ArpDrop> {
        let data = p.data_mut();
        let Some(Ok(mut arp)) = data.get_mut(ETH_LEN..ARP_LEN).map(ArpPacket::new_checked) else {
            return Err(ArpDrop::Malformed);
        };
        if arp.operation() != ArpOperation::Request {
            return Err(ArpDrop::NotRequest);
        }
        if !self.cfg.is_ours(arp.target_proto_addr()) {
            return Err(ArpDrop::NotOurIp);
        }
        let (sha, spa) = (arp.sender_hw_addr(), arp.sender_proto_addr());
        if is_bad_source_ip(spa)
            || self.cfg.is_ours(spa)
            || sha.is_multicast()
            || sha.is_unspecified()
        {
            return Err(ArpDrop::BadSender);
        }
        arp.make_reply(self.mac);
        let mut eth = EthernetFrame::new_unchecked(&mut data[..ETH_LEN]);
        eth.set_dst_addr(sha);
        eth.set_src_addr(self.mac);
        // The request's padding is the requester's bytes; the NIC pads the
        // reply with zeros instead.
        let excess = p.len() - ARP_LEN;
        p.trim(excess);
        Ok(NEXT_TX)
    }
}

impl<P: PacketBuf> Node<P> for ArpReply {
    fn name(&self) -> &'static str {
        ARP_REPLY
    }

    fn next_nodes(&self) -> &'static [&'static str] {
        NEXTS
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        ArpDrop::NAMES
    }

    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        packet_loop(ctx, pkts, nexts, |p| self.reply(p));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::wire::{EtherType, Ipv4Address};

    fn run(frames: &[Vec<u8>]) -> Run {
        run_node(&mut ArpReply::new(&cfg()), frames, 0)
    }

    fn only_drop(f: Vec<u8>, reason: ArpDrop) {
        let r = run(&[f]);
        assert_eq!(r.nexts, [0], "{reason:?}");
        assert_eq!(r.drops[reason as usize], 1, "{reason:?}");
        assert_eq!(r.drops.iter().sum::<u64>(), 1);
    }

    #[test]
    fn answers_request_for_us_byte_exact() {
        let req = arp_request(PEER_MAC, PEER_IP, OUR_IP);
        assert_eq!(req.len(), 60, "padded request");
        let r = run(&[req.clone(), req]);
        assert_eq!(r.nexts, [NEXT_TX, NEXT_TX]);
        assert_eq!(r.to(NEXT_TX), [arp_reply_to_peer(), arp_reply_to_peer()]);
        let arp = ArpPacket::new_checked(&r.pkts[0].data()[14..]).unwrap();
        assert_eq!(arp.operation(), ArpOperation::Reply);
        let eth = EthernetFrame::new_checked(r.pkts[0].data()).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Arp);
    }

    #[test]
    fn unpadded_and_unicast_requests() {
        let mut req = arp_request(PEER_MAC, PEER_IP, OUR_IP);
        req.truncate(42);
        req[..6].copy_from_slice(&OUR_MAC.0);
        let r = run(&[req]);
        assert_eq!(r.to(NEXT_TX), [arp_reply_to_peer()]);
    }

    #[test]
    fn reply_goes_to_arp_sender_not_ethernet_source() {
        // A proxy or bridge may relay; the ARP sender is who asked.
        let mut req = arp_request(PEER_MAC, PEER_IP, OUR_IP);
        req[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x77]);
        let r = run(&[req]);
        assert_eq!(r.to(NEXT_TX), [arp_reply_to_peer()]);
    }

    #[test]
    fn other_ip_is_not_answered() {
        only_drop(
            arp_request(PEER_MAC, PEER_IP, Ipv4Address([198, 18, 0, 3])),
            ArpDrop::NotOurIp,
        );
    }

    #[test]
    fn replies_and_other_ops_are_not_answered() {
        let mut f = arp_request(PEER_MAC, PEER_IP, OUR_IP);
        f[21] = 2;
        only_drop(f.clone(), ArpDrop::NotRequest);
        f[21] = 3; // RARP request
        only_drop(f, ArpDrop::NotRequest);
    }

    #[test]
    fn bad_senders_are_never_answered() {
        for ip in [
            Ipv4Address::UNSPECIFIED, // RFC 5227 probe
            Ipv4Address::BROADCAST,
            Ipv4Address([224, 0, 0, 251]),
            Ipv4Address([127, 0, 0, 1]),
            Ipv4Address([240, 0, 0, 1]),
            OUR_IP, // gratuitous ARP / conflict
        ] {
            only_drop(arp_request(PEER_MAC, ip, OUR_IP), ArpDrop::BadSender);
        }
        for mac in [
            MacAddress::BROADCAST,
            MacAddress::UNSPECIFIED,
            MacAddress([0x01, 0, 0x5e, 0, 0, 1]),
        ] {
            let mut f = arp_request(PEER_MAC, PEER_IP, OUR_IP);
            f[22..28].copy_from_slice(&mac.0);
            only_drop(f, ArpDrop::BadSender);
        }
    }

    #[test]
    fn malformed() {
        let f = arp_request(PEER_MAC, PEER_IP, OUR_IP);
        only_drop(f[..41].to_vec(), ArpDrop::Malformed);
        only_drop(f[..10].to_vec(), ArpDrop::Malformed);
        for (at, v) in [(15, 6u8), (16, 0x86), (18, 8), (19, 16)] {
            let mut g = f.clone();
            g[at] = v;
            only_drop(g, ArpDrop::Malformed);
        }
    }
}
