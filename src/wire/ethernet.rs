//! Ethernet II frames (no 802.1Q tag: tagged frames are recognised and left
//! to the caller to drop).

use core::fmt;
use core::str::FromStr;

use super::{read_u16, AddrParseError, WireError};

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    pub const BROADCAST: MacAddress = MacAddress([0xff; 6]);
    pub const UNSPECIFIED: MacAddress = MacAddress([0; 6]);

    /// Builds an address from the first six bytes of `b` (which must be at
    /// least that long; used only with fixed field ranges).
    #[inline]
    pub(crate) fn from_bytes(b: &[u8]) -> MacAddress {
        let mut a = [0u8; 6];
        let n = b.len().min(6);
        a[..n].copy_from_slice(&b[..n]);
        MacAddress(a)
    }

    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Group bit set (includes broadcast).
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    #[inline]
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    #[inline]
    pub fn is_unspecified(&self) -> bool {
        *self == Self::UNSPECIFIED
    }

    /// Locally administered bit set (e.g. `02:..` addresses of virtual ports).
    #[inline]
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddress {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or(AddrParseError::Mac)?;
            // from_str_radix alone would accept "+f" or "f"; insist on the
            // canonical two hex digits so typos are not silently accepted.
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(AddrParseError::Mac);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| AddrParseError::Mac)?;
        }
        if parts.next().is_some() {
            return Err(AddrParseError::Mac);
        }
        Ok(MacAddress(out))
    }
}

/// The EtherType field. VLAN tags are named so the caller can count
/// "tagged frame" drops separately from "unknown protocol" drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    /// 802.1Q customer VLAN tag (0x8100).
    Vlan,
    /// 802.1ad service VLAN tag, "QinQ" (0x88a8).
    QinQ,
    Other(u16),
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::QinQ,
            other => EtherType::Other(other),
        }
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Other(v) => v,
        }
    }
}

pub(crate) mod field {
    use core::ops::{Range, RangeFrom};
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// A view of an Ethernet II frame. The payload is everything after the
/// header, including any padding up to the 60-byte minimum: inner headers
/// carry their own lengths.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    pub const HEADER_LEN: usize = field::PAYLOAD.start;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(EthernetFrame { buffer })
    }

    /// Frame length for a payload of `payload_len` bytes.
    #[inline]
    pub const fn buffer_len(payload_len: usize) -> usize {
        field::PAYLOAD.start + payload_len
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst_addr(&self) -> MacAddress {
        MacAddress::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    #[inline]
    pub fn src_addr(&self) -> MacAddress {
        MacAddress::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    #[inline]
    pub fn ethertype(&self) -> EtherType {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE]).into()
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddress) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddress) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(t).to_be_bytes());
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::hex;
    use super::*;

    const FRAME: &str = "ff ff ff ff ff ff 02 00 00 00 00 01 08 06 de ad";

    #[test]
    fn parse_fields() {
        let buf = hex(FRAME);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert!(f.dst_addr().is_broadcast());
        assert_eq!(f.src_addr(), MacAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.payload(), &[0xde, 0xad]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = hex(FRAME);
        for len in 0..EthernetFrame::<&[u8]>::HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&buf[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
        assert!(EthernetFrame::new_checked(&buf[..14])
            .unwrap()
            .payload()
            .is_empty());
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0u8; 20];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(MacAddress([1, 2, 3, 4, 5, 6]));
        f.set_src_addr(MacAddress([2, 0, 0, 0, 0, 9]));
        f.set_ethertype(EtherType::Ipv4);
        f.payload_mut()[0] = 0x45;
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddress([1, 2, 3, 4, 5, 6]));
        assert!(f.dst_addr().is_multicast());
        assert!(f.src_addr().is_unicast() && f.src_addr().is_local());
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(buf[12..15], [0x08, 0x00, 0x45]);
    }

    #[test]
    fn ethertypes() {
        for v in [0x0800, 0x0806, 0x8100, 0x88a8, 0x86dd] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x8100), EtherType::Vlan);
        assert_eq!(EtherType::from(0x88a8), EtherType::QinQ);
        assert_eq!(EtherType::from(0x86dd), EtherType::Other(0x86dd));
    }

    #[test]
    fn mac_display_and_parse() {
        let m: MacAddress = "02:00:00:00:00:01".parse().unwrap();
        assert_eq!(m, MacAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(m.to_string(), "02:00:00:00:00:01");
        let m: MacAddress = "AA:bb:Cc:dd:EE:ff".parse().unwrap();
        assert_eq!(m.to_string(), "aa:bb:cc:dd:ee:ff");
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:02",
            "02:00:00:00:00:1",
            "02:00:00:00:00:+1",
            "02-00-00-00-00-01",
            "02:00:00:00:00:0g",
            "02:00:00:00:00:001",
        ] {
            assert_eq!(bad.parse::<MacAddress>(), Err(AddrParseError::Mac), "{bad}");
        }
        assert!(MacAddress::UNSPECIFIED.is_unspecified());
        assert!(!MacAddress::BROADCAST.is_unspecified());
    }
}
