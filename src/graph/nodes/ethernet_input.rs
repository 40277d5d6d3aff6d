//! `ethernet-input`: the graph entry. Decides whether a frame is ours at
//! all and hands it to the protocol it carries.

use crate::graph::{Node, NodeCtx, PacketBuf, DROP};
use crate::wire::{EtherType, EthernetFrame, MacAddress};

use super::kit::{drop_reasons, packet_loop, NodeConfig, ARP_REPLY, ETHERNET_INPUT, IP4_INPUT};

const NEXTS: &[&str] = &[DROP, ARP_REPLY, IP4_INPUT];
const NEXT_ARP: u16 = 1;
const NEXT_IP4: u16 = 2;

drop_reasons! {
    /// Why `ethernet-input` dropped a frame.
    EthernetDrop {
        /// Shorter than an Ethernet header.
        Runt => "runt",
        /// Longer than `NodeConfig::max_frame_len`.
        Oversize => "oversize",
        /// Destination neither our MAC nor (for ARP only) broadcast.
        NotForUs => "not-for-us",
        /// 802.1Q / 802.1ad tagged: the fast path is untagged only.
        Vlan => "vlan",
        /// Source broadcast, multicast or all-zero: nothing to answer to.
        BadSrcMac => "bad-src-mac",
        UnknownEthertype => "unknown-ethertype",
    }
}

pub struct EthernetInput {
    mac: MacAddress,
    max_frame_len: usize,
}

impl EthernetInput {
    pub fn new(cfg: &NodeConfig) -> Self {
        Self {
            mac: cfg.mac,
            max_frame_len: cfg.max_frame_len,
        }
    }

    #[inline]
    fn classify(&self, data: &[u8]) -> Result<u16, EthernetDrop> {
        let Ok(eth) = EthernetFrame::new_checked(data) else {
            return Err(EthernetDrop::Runt);
        };
        if data.len() > self.max_frame_len {
            return Err(EthernetDrop::Oversize);
        }
        let ty = eth.ethertype();
        let dst = eth.dst_addr();
        // Broadcast is only useful to us for ARP who-has; any other
        // broadcast is someone else's business and must not be answered.
        if dst != self.mac && !(dst.is_broadcast() && ty == EtherType::Arp) {
            return Err(EthernetDrop::NotForUs);
        }
        let src = eth.src_addr();
        if src.is_multicast() || src.is_unspecified() {
            return Err(EthernetDrop::BadSrcMac);
        }
        match ty {
            EtherType::Arp => Ok(NEXT_ARP),
            EtherType::Ipv4 => Ok(NEXT_IP4),
            EtherType::Vlan | EtherType::QinQ => Err(EthernetDrop::Vlan),
            EtherType::Other(_) => Err(EthernetDrop::UnknownEthertype),
        }
    }
}

impl<P: PacketBuf> Node<P> for EthernetInput {
    fn name(&self) -> &'static str {
        ETHERNET_INPUT
    }

    fn next_nodes(&self) -> &'static [&'static str] {
        NEXTS
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        EthernetDrop::NAMES
    }

    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        packet_loop(ctx, pkts, nexts, |p| self.classify(p.data()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::wire::RpcMethod;

    fn run(frames: &[Vec<u8>]) -> Run {
        run_node(&mut EthernetInput::new(&cfg()), frames, 0)
    }

    fn with_eth(mut f: Vec<u8>, dst: MacAddress, src: MacAddress, ty: u16) -> Vec<u8> {
        f[..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&src.0);
        f[12..14].copy_from_slice(&ty.to_be_bytes());
        f
    }

    fn only_drop(f: Vec<u8>, reason: EthernetDrop) {
        let r = run(&[f]);
        assert_eq!(r.nexts, [0], "{reason:?}");
        assert_eq!(r.drops[reason as usize], 1, "{reason:?}");
        assert_eq!(r.drops.iter().sum::<u64>(), 1);
    }

    #[test]
    fn dispatches_arp_and_ipv4_untouched() {
        let rpc = rpc_request(RpcMethod::Echo, 1, b"x");
        let arp = arp_request(PEER_MAC, PEER_IP, OUR_IP);
        let unicast_arp = with_eth(arp.clone(), OUR_MAC, PEER_MAC, 0x0806);
        let frames = [rpc.clone(), arp.clone(), unicast_arp.clone()];
        let r = run(&frames);
        assert_eq!(r.nexts, [NEXT_IP4, NEXT_ARP, NEXT_ARP]);
        assert_eq!(r.to(NEXT_IP4), [rpc]);
        assert_eq!(r.to(NEXT_ARP), [arp, unicast_arp]);
        assert!(r.drops.iter().all(|&d| d == 0));
    }

    #[test]
    fn length_limits() {
        only_drop(vec![0; 13], EthernetDrop::Runt);
        only_drop(Vec::new(), EthernetDrop::Runt);
        let f = with_eth(vec![0; 14], OUR_MAC, PEER_MAC, 0x0800);
        assert_eq!(
            run(&[f]).nexts,
            [NEXT_IP4],
            "header-only frame is ip4-input's problem"
        );
        let max = NodeConfig::DEFAULT_MAX_FRAME_LEN;
        let f = with_eth(vec![0; max], OUR_MAC, PEER_MAC, 0x0800);
        assert_eq!(run(&[f]).nexts, [NEXT_IP4]);
        only_drop(
            with_eth(vec![0; max + 1], OUR_MAC, PEER_MAC, 0x0800),
            EthernetDrop::Oversize,
        );
        let mut small = cfg();
        small.max_frame_len = 100;
        let r = run_node(
            &mut EthernetInput::new(&small),
            &[rpc_request(RpcMethod::Echo, 1, &[0; 60])],
            0,
        );
        assert_eq!(r.drop_count(EthernetDrop::NAMES, "oversize"), 1);
    }

    #[test]
    fn only_our_mac_or_arp_broadcast() {
        let ip = rpc_request(RpcMethod::Echo, 1, b"x");
        let other = MacAddress([0x02, 0, 0, 0, 0, 0x99]);
        only_drop(
            with_eth(ip.clone(), other, PEER_MAC, 0x0800),
            EthernetDrop::NotForUs,
        );
        only_drop(
            with_eth(ip.clone(), MacAddress::BROADCAST, PEER_MAC, 0x0800),
            EthernetDrop::NotForUs,
        );
        let mcast = MacAddress([0x01, 0x00, 0x5e, 0, 0, 1]);
        only_drop(
            with_eth(ip.clone(), mcast, PEER_MAC, 0x0800),
            EthernetDrop::NotForUs,
        );
        let arp = arp_request(PEER_MAC, PEER_IP, OUR_IP);
        only_drop(
            with_eth(arp.clone(), mcast, PEER_MAC, 0x0806),
            EthernetDrop::NotForUs,
        );
        only_drop(
            with_eth(arp, other, PEER_MAC, 0x0806),
            EthernetDrop::NotForUs,
        );
    }

    #[test]
    fn bad_source_macs() {
        let ip = rpc_request(RpcMethod::Echo, 1, b"x");
        for src in [
            MacAddress::BROADCAST,
            MacAddress::UNSPECIFIED,
            MacAddress([0x01, 0x00, 0x5e, 0, 0, 1]),
            MacAddress([0x33, 0x33, 0, 0, 0, 1]),
        ] {
            only_drop(
                with_eth(ip.clone(), OUR_MAC, src, 0x0800),
                EthernetDrop::BadSrcMac,
            );
            let arp = arp_request(src, PEER_IP, OUR_IP);
            only_drop(arp, EthernetDrop::BadSrcMac);
        }
    }

    #[test]
    fn vlan_and_unknown_ethertypes() {
        let ip = rpc_request(RpcMethod::Echo, 1, b"x");
        only_drop(
            with_eth(ip.clone(), OUR_MAC, PEER_MAC, 0x8100),
            EthernetDrop::Vlan,
        );
        only_drop(
            with_eth(ip.clone(), OUR_MAC, PEER_MAC, 0x88a8),
            EthernetDrop::Vlan,
        );
        only_drop(
            with_eth(ip.clone(), OUR_MAC, PEER_MAC, 0x86dd),
            EthernetDrop::UnknownEthertype,
        );
        // An 802.3 length field is not an EtherType we speak either.
        only_drop(
            with_eth(ip, OUR_MAC, PEER_MAC, 0x0040),
            EthernetDrop::UnknownEthertype,
        );
    }

    #[test]
    fn mixed_vector_longer_than_a_quad() {
        let good = rpc_request(RpcMethod::Echo, 1, b"x");
        let mut frames = Vec::new();
        for i in 0..11 {
            frames.push(if i % 3 == 0 { vec![0; 5] } else { good.clone() });
        }
        let r = run(&frames);
        for (i, n) in r.nexts.iter().enumerate() {
            assert_eq!(*n, if i % 3 == 0 { 0 } else { NEXT_IP4 }, "packet {i}");
        }
        assert_eq!(r.drop_count(EthernetDrop::NAMES, "runt"), 4);
    }

    #[test]
    fn reason_names_match_enum() {
        for r in EthernetDrop::ALL {
            assert_eq!(EthernetDrop::NAMES[*r as usize], r.name());
        }
        assert_eq!(EthernetDrop::NAMES.len(), 6);
    }
}
