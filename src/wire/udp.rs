//! UDP datagrams (RFC 768) over IPv4.

use super::checksum;
use super::ipv4::Ipv4Address;
use super::{read_u16, WireError};

pub(crate) mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram. The buffer is normally the IPv4 payload; it
/// may be longer than the UDP length field, and [`payload`](Self::payload)
/// stops at that length.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub const HEADER_LEN: usize = field::CHECKSUM.end;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Checks `8 <= length <= buffer`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = UdpPacket { buffer };
        let len = p.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let udp_len = usize::from(p.len());
        if udp_len < Self::HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if udp_len > len {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    /// Datagram length for a payload of `payload_len` bytes.
    #[inline]
    pub const fn buffer_len(payload_len: usize) -> usize {
        field::CHECKSUM.end + payload_len
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The length field: header plus payload, in bytes.
    #[allow(clippy::len_without_is_empty)]
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The datagram as the length field delimits it, clamped to the buffer.
    #[inline]
    fn datagram(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        &buf[..usize::from(self.len()).min(buf.len())]
    }

    /// True when the checksum is 0 (the sender opted out, allowed over
    /// IPv4) or verifies against the pseudo-header.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Address, dst: Ipv4Address) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let d = self.datagram();
        let pseudo = checksum::udp_pseudo_header(src, dst, self.len());
        checksum::combine(&[pseudo, checksum::data_sum(d)]) == 0xffff
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        let d = self.datagram();
        &d[Self::HEADER_LEN.min(d.len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Computes the checksum over pseudo-header, header and payload. A
    /// computed 0 is sent as 0xffff because 0 on the wire means "none".
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv4Address, dst: Ipv4Address) {
        self.set_checksum(0);
        let pseudo = checksum::udp_pseudo_header(src, dst, self.len());
        let sum = checksum::combine(&[pseudo, checksum::data_sum(self.datagram())]);
        let c = !sum;
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let buf = self.buffer.as_mut();
        let end = usize::from(read_u16(&buf[field::LENGTH])).min(buf.len());
        let start = Self::HEADER_LEN.min(end);
        &mut buf[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::super::ipv4::Ipv4Packet;
    use super::super::test_util::{hex, IPV4_UDP};
    use super::*;

    fn ip_udp() -> Vec<u8> {
        hex(IPV4_UDP)
    }

    #[test]
    fn parse_known_datagram() {
        let buf = ip_udp();
        let ip = Ipv4Packet::new_checked(&buf[..]).unwrap();
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port()), (52000, 53));
        assert_eq!(udp.len(), 37);
        assert_eq!(udp.checksum(), 0x80ea);
        assert!(udp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        // Same bytes under a different pseudo-header must fail.
        assert!(!udp.verify_checksum(ip.src_addr(), Ipv4Address([8, 8, 4, 4])));
        assert_eq!(&udp.payload()[..2], &[0x12, 0x34]);
        assert_eq!(udp.payload().len(), 29);
    }

    #[test]
    fn fill_checksum_matches_capture() {
        let buf = ip_udp();
        let (src, dst) = (Ipv4Address([192, 168, 1, 10]), Ipv4Address([8, 8, 8, 8]));
        let mut d = buf[20..].to_vec();
        let mut udp = UdpPacket::new_checked(&mut d[..]).unwrap();
        udp.set_checksum(0x1111);
        assert!(!udp.verify_checksum(src, dst));
        udp.set_checksum(0);
        assert!(udp.verify_checksum(src, dst), "zero means no checksum");
        udp.fill_checksum(src, dst);
        assert_eq!(udp.checksum(), 0x80ea);
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose the source port so the one's-complement sum is 0xffff,
        // i.e. the checksum computes to 0.
        let (src, dst) = (Ipv4Address([10, 0, 0, 1]), Ipv4Address([10, 0, 0, 2]));
        let mut d = [0u8; 8];
        let mut udp = UdpPacket::new_unchecked(&mut d[..]);
        udp.set_len(8);
        udp.set_dst_port(1);
        let partial = checksum::combine(&[
            checksum::udp_pseudo_header(src, dst, 8),
            checksum::data_sum(&udp.datagram()[..8]),
        ]);
        udp.set_src_port(!partial);
        udp.fill_checksum(src, dst);
        assert_eq!(udp.checksum(), 0xffff);
        assert!(udp.verify_checksum(src, dst));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = ip_udp();
        let d = &buf[20..];
        for len in 0..d.len() {
            assert_eq!(
                UdpPacket::new_checked(&d[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
    }

    #[test]
    fn bad_lengths() {
        let mut d = ip_udp()[20..].to_vec();
        for bad in [0u16, 7] {
            d[4..6].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(
                UdpPacket::new_checked(&d[..]).unwrap_err(),
                WireError::BadLength
            );
        }
        d[4..6].copy_from_slice(&8u16.to_be_bytes());
        let udp = UdpPacket::new_checked(&d[..]).unwrap();
        assert!(udp.payload().is_empty());
    }

    #[test]
    fn setters_round_trip() {
        let mut d = [0u8; 12];
        let mut udp = UdpPacket::new_unchecked(&mut d[..]);
        udp.set_src_port(1234);
        udp.set_dst_port(7777);
        udp.set_len(12);
        udp.payload_mut().copy_from_slice(b"ping");
        let udp = UdpPacket::new_checked(&d[..]).unwrap();
        assert_eq!(
            (udp.src_port(), udp.dst_port(), udp.len()),
            (1234, 7777, 12)
        );
        assert_eq!(udp.payload(), b"ping");
        assert_eq!(UdpPacket::<&[u8]>::buffer_len(4), 12);
    }
}
