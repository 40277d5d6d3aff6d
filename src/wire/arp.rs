//! ARP (RFC 826) for Ethernet/IPv4 only, enough to answer who-has for our
//! own address.

use super::ethernet::MacAddress;
use super::ethernet::{EtherType, EthernetFrame};
use super::ipv4::Ipv4Address;
use super::{read_u16, WireError};

/// The shortest Ethernet frame without FCS: ARP frames are padded to it.
pub const MIN_FRAME: usize = 60;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    Request,
    Reply,
    Other(u16),
}

impl From<u16> for ArpOperation {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Other(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    #[inline]
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Other(v) => v,
        }
    }
}

pub(crate) mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub const LEN: usize = field::TPA.end;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Rejects anything but htype 1 / ptype 0x0800 / hlen 6 / plen 4 as
    /// [`WireError::Unsupported`]: the fixed field offsets assume them.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = ArpPacket { buffer };
        if p.buffer.as_ref().len() < Self::LEN {
            return Err(WireError::Truncated);
        }
        if p.hardware_type() != HTYPE_ETHERNET
            || p.protocol_type() != PTYPE_IPV4
            || p.hw_len() != 6
            || p.proto_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        Ok(p)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn hardware_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::HTYPE])
    }

    #[inline]
    pub fn protocol_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::PTYPE])
    }

    #[inline]
    pub fn hw_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    #[inline]
    pub fn proto_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    #[inline]
    pub fn operation(&self) -> ArpOperation {
        read_u16(&self.buffer.as_ref()[field::OPER]).into()
    }

    #[inline]
    pub fn sender_hw_addr(&self) -> MacAddress {
        MacAddress::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    #[inline]
    pub fn sender_proto_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::SPA])
    }

    #[inline]
    pub fn target_hw_addr(&self) -> MacAddress {
        MacAddress::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    #[inline]
    pub fn target_proto_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the fixed Ethernet/IPv4 prologue (htype, ptype, hlen, plen).
    #[inline]
    pub fn set_ethernet_ipv4(&mut self) {
        let buf = self.buffer.as_mut();
        buf[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        buf[field::PTYPE].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        buf[field::HLEN] = 6;
        buf[field::PLEN] = 4;
    }

    #[inline]
    pub fn set_operation(&mut self, op: ArpOperation) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&u16::from(op).to_be_bytes());
    }

    #[inline]
    pub fn set_sender_hw_addr(&mut self, a: MacAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a.0);
    }

    #[inline]
    pub fn set_sender_proto_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.0);
    }

    #[inline]
    pub fn set_target_hw_addr(&mut self, a: MacAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a.0);
    }

    #[inline]
    pub fn set_target_proto_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.0);
    }

    /// Turns a request into our reply in place: the requester becomes the
    /// target and we (`our_mac`, and the address that was asked for) the
    /// sender. The caller checks first that the request is for our address.
    #[inline]
    pub fn make_reply(&mut self, our_mac: MacAddress) {
        let (req_mac, req_ip) = (self.sender_hw_addr(), self.sender_proto_addr());
        let asked_ip = self.target_proto_addr();
        self.set_operation(ArpOperation::Reply);
        self.set_sender_hw_addr(our_mac);
        self.set_sender_proto_addr(asked_ip);
        self.set_target_hw_addr(req_mac);
        self.set_target_proto_addr(req_ip);
    }
}

/// Writes an ARP frame (padded to the Ethernet minimum) into `buf`, which is at least
/// [`MIN_FRAME`] long (a DPDK client and the fast path's relays ask with it).
pub fn emit_arp_frame(
    buf: &mut [u8],
    op: ArpOperation,
    eth_dst: MacAddress,
    (src_mac, src_ip): (MacAddress, Ipv4Address),
    (dst_mac, dst_ip): (MacAddress, Ipv4Address),
) {
    buf.fill(0);
    let mut eth = EthernetFrame::new_unchecked(&mut *buf);
    eth.set_dst_addr(eth_dst);
    eth.set_src_addr(src_mac);
    eth.set_ethertype(EtherType::Arp);
    let mut arp = ArpPacket::new_unchecked(eth.payload_mut());
    arp.set_ethernet_ipv4();
    arp.set_operation(op);
    arp.set_sender_hw_addr(src_mac);
    arp.set_sender_proto_addr(src_ip);
    arp.set_target_hw_addr(dst_mac);
    arp.set_target_proto_addr(dst_ip);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::hex;
    use super::*;

    // who-has 198.18.0.1 tell 198.18.0.2, from 02:00:00:00:00:02.
    const REQUEST: &str = "
        00 01 08 00 06 04 00 01 02 00 00 00 00 02 c6 12
        00 02 00 00 00 00 00 00 c6 12 00 01";

    #[test]
    fn parse_request() {
        let buf = hex(REQUEST);
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.operation(), ArpOperation::Request);
        assert_eq!(p.sender_hw_addr(), MacAddress([2, 0, 0, 0, 0, 2]));
        assert_eq!(p.sender_proto_addr(), Ipv4Address([198, 18, 0, 2]));
        assert!(p.target_hw_addr().is_unspecified());
        assert_eq!(p.target_proto_addr(), Ipv4Address([198, 18, 0, 1]));
    }

    #[test]
    fn reply_in_place() {
        let mut buf = hex(REQUEST);
        let ours = MacAddress([2, 0, 0, 0, 0, 1]);
        ArpPacket::new_checked(&mut buf[..])
            .unwrap()
            .make_reply(ours);
        let expected = hex("00 01 08 00 06 04 00 02 02 00 00 00 00 01 c6 12
             00 01 02 00 00 00 00 02 c6 12 00 02");
        assert_eq!(buf, expected);
    }

    #[test]
    fn build_from_scratch() {
        let mut buf = [0u8; 28];
        let mut p = ArpPacket::new_unchecked(&mut buf[..]);
        p.set_ethernet_ipv4();
        p.set_operation(ArpOperation::Request);
        p.set_sender_hw_addr(MacAddress([2, 0, 0, 0, 0, 2]));
        p.set_sender_proto_addr(Ipv4Address([198, 18, 0, 2]));
        p.set_target_hw_addr(MacAddress::UNSPECIFIED);
        p.set_target_proto_addr(Ipv4Address([198, 18, 0, 1]));
        assert_eq!(buf.to_vec(), hex(REQUEST));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = hex(REQUEST);
        for len in 0..buf.len() {
            assert_eq!(
                ArpPacket::new_checked(&buf[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
    }

    #[test]
    fn non_ethernet_ipv4_is_unsupported() {
        for (i, v) in [(1, 6u8), (3, 0xdd), (4, 8), (5, 16)] {
            let mut buf = hex(REQUEST);
            buf[i] = v;
            assert_eq!(
                ArpPacket::new_checked(&buf[..]).unwrap_err(),
                WireError::Unsupported
            );
        }
        assert_eq!(ArpOperation::from(3), ArpOperation::Other(3));
        assert_eq!(u16::from(ArpOperation::Other(3)), 3);
    }
}
