//! ICMPv4 echo request and reply (RFC 792), the only ICMP the fast path
//! answers.

use super::checksum;
use super::{read_u16, WireError};

const TYPE_ECHO_REPLY: u8 = 0;
const TYPE_ECHO_REQUEST: u8 = 8;

/// Which half of an echo exchange a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpEchoKind {
    Request,
    Reply,
}

impl IcmpEchoKind {
    #[inline]
    fn type_byte(self) -> u8 {
        match self {
            IcmpEchoKind::Request => TYPE_ECHO_REQUEST,
            IcmpEchoKind::Reply => TYPE_ECHO_REPLY,
        }
    }
}

pub(crate) mod field {
    use core::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const SEQ_NO: Range<usize> = 6..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// A view of an ICMP echo message. The buffer must be exactly the ICMP
/// message (the IPv4 payload), because the checksum covers all of it.
#[derive(Debug, Clone)]
pub struct IcmpEchoPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpEchoPacket<T> {
    pub const HEADER_LEN: usize = field::PAYLOAD.start;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        IcmpEchoPacket { buffer }
    }

    /// Accepts only echo request/reply with code 0; any other ICMP message
    /// is [`WireError::Unsupported`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = IcmpEchoPacket { buffer };
        if p.buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.kind().is_none() || p.code() != 0 {
            return Err(WireError::Unsupported);
        }
        Ok(p)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `None` for any ICMP type other than echo request/reply.
    #[inline]
    pub fn kind(&self) -> Option<IcmpEchoKind> {
        match self.buffer.as_ref()[field::TYPE] {
            TYPE_ECHO_REQUEST => Some(IcmpEchoKind::Request),
            TYPE_ECHO_REPLY => Some(IcmpEchoKind::Reply),
            _ => None,
        }
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::IDENT])
    }

    #[inline]
    pub fn seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SEQ_NO])
    }

    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::data_sum(self.buffer.as_ref()) == 0xffff
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpEchoPacket<T> {
    /// Sets the type byte and a zero code.
    #[inline]
    pub fn set_kind(&mut self, kind: IcmpEchoKind) {
        let buf = self.buffer.as_mut();
        buf[field::TYPE] = kind.type_byte();
        buf[field::CODE] = 0;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_ident(&mut self, v: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_seq_no(&mut self, v: u16) {
        self.buffer.as_mut()[field::SEQ_NO].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Turns a request into its reply in place. Only the type/code word
    /// changes, so the checksum is updated incrementally instead of
    /// re-summing a possibly large payload.
    #[inline]
    pub fn make_reply(&mut self) {
        let old_word = u16::from_be_bytes([self.buffer.as_ref()[field::TYPE], self.code()]);
        self.set_kind(IcmpEchoKind::Reply);
        let new_word = u16::from(TYPE_ECHO_REPLY) << 8;
        let c = checksum::update(self.checksum(), old_word, new_word);
        self.set_checksum(c);
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

    // A Windows `ping` echo request (id 1, seq 1, the classic a..w payload).
    const ECHO_REQUEST: &str = "
        08 00 4d 5a 00 01 00 01 61 62 63 64 65 66 67 68
        69 6a 6b 6c 6d 6e 6f 70 71 72 73 74 75 76 77 61
        62 63 64 65 66 67 68 69";

    #[test]
    fn parse_known_request() {
        let buf = hex(ECHO_REQUEST);
        let p = IcmpEchoPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.kind(), Some(IcmpEchoKind::Request));
        assert_eq!(
            (p.code(), p.checksum(), p.ident(), p.seq_no()),
            (0, 0x4d5a, 1, 1)
        );
        assert!(p.verify_checksum());
        assert_eq!(p.payload(), b"abcdefghijklmnopqrstuvwabcdefghi");
    }

    #[test]
    fn reply_in_place_matches_full_recompute() {
        let mut buf = hex(ECHO_REQUEST);
        let mut p = IcmpEchoPacket::new_checked(&mut buf[..]).unwrap();
        p.make_reply();
        assert_eq!(p.kind(), Some(IcmpEchoKind::Reply));
        assert!(p.verify_checksum());
        let incremental = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), incremental);
        // Known value: the reply differs only by 0x0800 in the first word.
        assert_eq!(incremental, 0x555a);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = hex(ECHO_REQUEST);
        for len in 0..IcmpEchoPacket::<&[u8]>::HEADER_LEN {
            assert_eq!(
                IcmpEchoPacket::new_checked(&buf[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
        // A shortened message still parses but no longer verifies.
        let p = IcmpEchoPacket::new_checked(&buf[..20]).unwrap();
        assert!(!p.verify_checksum());
    }

    #[test]
    fn other_icmp_is_unsupported() {
        let mut buf = hex(ECHO_REQUEST);
        buf[0] = 3; // destination unreachable
        assert_eq!(
            IcmpEchoPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::Unsupported
        );
        buf[0] = 8;
        buf[1] = 1;
        assert_eq!(
            IcmpEchoPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::Unsupported
        );
    }

    #[test]
    fn build_round_trip() {
        let mut buf = [0u8; 12];
        let mut p = IcmpEchoPacket::new_unchecked(&mut buf[..]);
        p.set_kind(IcmpEchoKind::Request);
        p.set_ident(0xbeef);
        p.set_seq_no(9);
        p.payload_mut().copy_from_slice(b"abcd");
        p.fill_checksum();
        let p = IcmpEchoPacket::new_checked(&buf[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.ident(), p.seq_no()), (0xbeef, 9));
    }
}
