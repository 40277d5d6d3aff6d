//! IPv4 headers (RFC 791). Options are tolerated by the view but reported
//! via [`Ipv4Packet::has_options`] so the fast path can refuse them.

use core::fmt;
use core::str::FromStr;

use super::checksum;
use super::{read_u16, AddrParseError, WireError};

/// An IPv4 address in network byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Ipv4Address(pub [u8; 4]);

impl Ipv4Address {
    pub const UNSPECIFIED: Ipv4Address = Ipv4Address([0; 4]);
    pub const BROADCAST: Ipv4Address = Ipv4Address([255; 4]);

    #[inline]
    pub(crate) fn from_bytes(b: &[u8]) -> Ipv4Address {
        let mut a = [0u8; 4];
        let n = b.len().min(4);
        a[..n].copy_from_slice(&b[..n]);
        Ipv4Address(a)
    }

    #[inline]
    pub const fn to_u32(self) -> u32 {
        u32::from_be_bytes(self.0)
    }

    /// Limited broadcast only; a subnet's directed broadcast needs the mask.
    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// 224.0.0.0/4.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0xf0 == 0xe0
    }

    #[inline]
    pub fn is_unspecified(&self) -> bool {
        *self == Self::UNSPECIFIED
    }
}

impl From<std::net::Ipv4Addr> for Ipv4Address {
    #[inline]
    fn from(a: std::net::Ipv4Addr) -> Self {
        Ipv4Address(a.octets())
    }
}

impl From<Ipv4Address> for std::net::Ipv4Addr {
    #[inline]
    fn from(a: Ipv4Address) -> Self {
        a.0.into()
    }
}

impl fmt::Display for Ipv4Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

impl FromStr for Ipv4Address {
    type Err = AddrParseError;

    /// Strict dotted-quad: std's parser already rejects the ambiguous forms
    /// (octal-looking leading zeros, fewer than four parts).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<std::net::Ipv4Addr>()
            .map(Self::from)
            .map_err(|_| AddrParseError::Ipv4)
    }
}

/// The IPv4 protocol field, for the protocols the fast path dispatches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Other(u8),
}

impl From<u8> for IpProtocol {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Other(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    #[inline]
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Other(v) => v,
        }
    }
}

pub(crate) mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// The first byte of an option-less header: version 4, IHL 5 words.
pub(crate) const VER_IHL_PLAIN: u8 = 0x40 | (field::DST.end / 4) as u8;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet. The buffer may extend past `total_len`
/// (Ethernet padding); [`payload`](Self::payload) stops at `total_len`.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Length of a header without options.
    pub const HEADER_LEN: usize = field::DST.end;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Checks version 4, IHL >= 5 and `header_len <= total_len <= buffer`.
    /// The header checksum is left to [`verify_checksum`](Self::verify_checksum)
    /// because NICs commonly verify it in hardware.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Ipv4Packet { buffer };
        let len = p.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.version() != 4 {
            return Err(WireError::BadVersion);
        }
        let header_len = p.header_len();
        if header_len < Self::HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if header_len > len {
            return Err(WireError::Truncated);
        }
        let total_len = usize::from(p.total_len());
        if total_len < header_len {
            return Err(WireError::BadLength);
        }
        if total_len > len {
            return Err(WireError::Truncated);
        }
        Ok(p)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn has_options(&self) -> bool {
        self.header_len() > Self::HEADER_LEN
    }

    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::TOTAL_LEN])
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    #[inline]
    fn flags_frag(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLAGS_FRAG])
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }

    /// Any fragment, first or later: the fast path does no reassembly.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        self.buffer.as_ref()[field::PROTOCOL].into()
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Address {
        Ipv4Address::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    /// True when the header checksum is correct. False (not a panic) if the
    /// header length no longer fits the buffer.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        match self.buffer.as_ref().get(..self.header_len()) {
            Some(h) => checksum::data_sum(h) == 0xffff,
            None => false,
        }
    }

    /// The bytes between the header and `total_len`. Clamped to the buffer so
    /// that it stays panic-free even after a setter made the lengths
    /// inconsistent.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(buf.len());
        let start = self.header_len().min(end);
        &buf[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    #[inline]
    pub fn set_total_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::TOTAL_LEN].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes an unfragmented packet's flags: DF as given, MF clear, offset 0.
    #[inline]
    pub fn set_unfragmented(&mut self, dont_frag: bool) {
        let v = if dont_frag { FLAG_DF } else { 0 };
        self.buffer.as_mut()[field::FLAGS_FRAG].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    #[inline]
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into();
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Address) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    /// Recomputes the header checksum over `header_len` bytes (clamped to
    /// the buffer).
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let buf = self.buffer.as_ref();
        let end = self.header_len().min(buf.len());
        let c = checksum::checksum(&buf[..end]);
        self.set_checksum(c);
    }

    /// Mutable counterpart of [`payload`](Ipv4Packet::payload), same clamping.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = {
            let len = self.buffer.as_ref().len();
            let end = usize::from(self.total_len()).min(len);
            (self.header_len().min(end), end)
        };
        &mut self.buffer.as_mut()[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{hex, IPV4_UDP};
    use super::*;

    #[test]
    fn parse_known_packet() {
        let buf = hex(IPV4_UDP);
        let ip = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(ip.version(), 4);
        assert_eq!(ip.header_len(), 20);
        assert_eq!(ip.total_len(), 57);
        assert_eq!(ip.ident(), 0x1c46);
        assert!(ip.dont_frag() && !ip.more_frags() && !ip.is_fragment());
        assert!(!ip.has_options());
        assert_eq!(ip.ttl(), 64);
        assert_eq!(ip.protocol(), IpProtocol::Udp);
        assert_eq!(ip.src_addr(), Ipv4Address([192, 168, 1, 10]));
        assert_eq!(ip.dst_addr(), Ipv4Address([8, 8, 8, 8]));
        assert!(ip.verify_checksum());
        assert_eq!(ip.payload().len(), 37);
    }

    #[test]
    fn wikipedia_header_checksum() {
        // The worked example from Wikipedia's "IPv4 header checksum" article.
        let h = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7");
        let ip = Ipv4Packet::new_unchecked(&h[..]);
        assert!(ip.verify_checksum());
        assert_eq!(ip.checksum(), 0xb861);
        // total_len 115 exceeds this header-only buffer.
        assert_eq!(
            Ipv4Packet::new_checked(&h[..]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn checksum_fill_matches_capture() {
        let buf = hex(IPV4_UDP);
        let want = Ipv4Packet::new_checked(&buf[..]).unwrap().checksum();
        let mut copy = buf.clone();
        let mut ip = Ipv4Packet::new_unchecked(&mut copy[..]);
        ip.set_checksum(0xffff);
        assert!(!ip.verify_checksum());
        ip.fill_checksum();
        assert_eq!(ip.checksum(), want);
        assert!(ip.verify_checksum());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = hex(IPV4_UDP);
        for len in 0..buf.len() {
            assert_eq!(
                Ipv4Packet::new_checked(&buf[..len]).unwrap_err(),
                WireError::Truncated,
                "len {len}"
            );
        }
    }

    #[test]
    fn padding_is_excluded_from_payload() {
        let mut buf = hex(IPV4_UDP);
        buf.extend_from_slice(&[0xee; 6]);
        let ip = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(ip.payload().len(), 37);
        assert_ne!(ip.payload().last(), Some(&0xee));
    }

    #[test]
    fn malformed_headers() {
        let good = hex(IPV4_UDP);
        let check = |f: &dyn Fn(&mut Vec<u8>), e| {
            let mut b = good.clone();
            f(&mut b);
            assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), e);
        };
        check(&|b| b[0] = 0x65, WireError::BadVersion);
        check(&|b| b[0] = 0x44, WireError::BadHeaderLen);
        check(&|b| b[0] = 0x40, WireError::BadHeaderLen);
        check(&|b| b[0] = 0x4f, WireError::Truncated);
        check(&|b| b[2..4].copy_from_slice(&[0, 19]), WireError::BadLength);
        check(&|b| b[2..4].copy_from_slice(&[0, 61]), WireError::Truncated);
        check(&|b| b.truncate(56), WireError::Truncated);
    }

    #[test]
    fn options_and_fragments() {
        let mut b = hex(IPV4_UDP);
        b[0] = 0x46;
        let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(ip.has_options());
        assert_eq!(ip.payload().len(), 33);
        b[6..8].copy_from_slice(&[0x20, 0x00]);
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
        b[6..8].copy_from_slice(&[0x00, 0x01]);
        let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(ip.is_fragment() && ip.frag_offset() == 8 && !ip.dont_frag());
    }

    #[test]
    fn setters_keep_views_panic_free() {
        let mut b = hex(IPV4_UDP);
        let mut ip = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        ip.set_total_len(9000);
        assert_eq!(ip.payload().len(), 37);
        ip.set_version_and_header_len(60);
        ip.set_total_len(30);
        assert!(ip.payload().is_empty());
        assert!(ip.payload_mut().is_empty());
        ip.fill_checksum();
        ip.set_version_and_header_len(20);
        ip.set_total_len(57);
        ip.set_src_addr(Ipv4Address([10, 0, 0, 1]));
        ip.set_dst_addr(Ipv4Address([10, 0, 0, 2]));
        ip.set_ttl(1);
        ip.set_ident(7);
        ip.set_dscp_ecn(0xb8);
        ip.set_protocol(IpProtocol::Icmp);
        ip.set_unfragmented(false);
        ip.fill_checksum();
        let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr().to_string(), "10.0.0.1");
        assert_eq!((ip.ttl(), ip.ident(), ip.dscp_ecn()), (1, 7, 0xb8));
        assert_eq!(ip.protocol(), IpProtocol::Icmp);
        assert!(!ip.dont_frag());
    }

    #[test]
    fn address_parse_and_classify() {
        let a: Ipv4Address = "198.18.0.1".parse().unwrap();
        assert_eq!(a, Ipv4Address([198, 18, 0, 1]));
        assert_eq!(a.to_string(), "198.18.0.1");
        assert_eq!(a.to_u32(), 0xc612_0001);
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "a.b.c.d",
            " 1.2.3.4",
        ] {
            assert_eq!(
                bad.parse::<Ipv4Address>(),
                Err(AddrParseError::Ipv4),
                "{bad}"
            );
        }
        assert!(Ipv4Address([224, 0, 0, 1]).is_multicast());
        assert!(Ipv4Address([239, 255, 255, 250]).is_multicast());
        assert!(!a.is_multicast() && !a.is_broadcast() && !a.is_unspecified());
        assert!(Ipv4Address::BROADCAST.is_broadcast());
        assert!(Ipv4Address::UNSPECIFIED.is_unspecified());
        let std: std::net::Ipv4Addr = a.into();
        assert_eq!(Ipv4Address::from(std), a);
    }
}
