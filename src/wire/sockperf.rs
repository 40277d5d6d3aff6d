//! The header sockperf puts at the start of each UDP payload, so the fast
//! path can serve as a sockperf `server` for latency comparisons.
//!
//! 14 bytes, big-endian, packed: u64 sequence number, u16 flags, u32 message
//! length (the whole UDP payload, header included).

use super::{read_u16, read_u32, read_u64, WireError};

/// Set by the client on every message it sends.
pub const FLAG_CLIENT: u16 = 1;
/// The client wants this message echoed back (ping-pong mode).
pub const FLAG_PONG_REQUEST: u16 = 2;
/// Warm-up traffic, not counted in the client's results.
pub const FLAG_WARMUP: u16 = 4;

pub(crate) mod field {
    use core::ops::{Range, RangeFrom};
    pub const SEQUENCE: Range<usize> = 0..8;
    pub const FLAGS: Range<usize> = 8..10;
    pub const LENGTH: Range<usize> = 10..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

/// A view of a sockperf message (the UDP payload).
#[derive(Debug, Clone)]
pub struct SockperfHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SockperfHeader<T> {
    pub const HEADER_LEN: usize = field::PAYLOAD.start;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        SockperfHeader { buffer }
    }

    /// Only the header length is checked: sockperf's length field is not
    /// needed to answer, and replies echo the whole datagram anyway.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(SockperfHeader { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn sequence_number(&self) -> u64 {
        read_u64(&self.buffer.as_ref()[field::SEQUENCE])
    }

    #[inline]
    pub fn flags(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::FLAGS])
    }

    #[inline]
    pub fn message_len(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::LENGTH])
    }

    #[inline]
    pub fn is_client(&self) -> bool {
        self.flags() & FLAG_CLIENT != 0
    }

    #[inline]
    pub fn is_pong_request(&self) -> bool {
        self.flags() & FLAG_PONG_REQUEST != 0
    }

    #[inline]
    pub fn is_warmup(&self) -> bool {
        self.flags() & FLAG_WARMUP != 0
    }

    /// sockperf's server answers only messages that ask for a pong; plain
    /// throughput messages are consumed silently.
    #[inline]
    pub fn wants_reply(&self) -> bool {
        self.is_pong_request()
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SockperfHeader<T> {
    #[inline]
    pub fn set_sequence_number(&mut self, v: u64) {
        self.buffer.as_mut()[field::SEQUENCE].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_flags(&mut self, v: u16) {
        self.buffer.as_mut()[field::FLAGS].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_message_len(&mut self, v: u32) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Turns a pong request into the server's answer: the client bit is
    /// cleared (the client uses it to tell its own messages from replies),
    /// everything else, sequence number included, goes back unchanged.
    #[inline]
    pub fn make_reply(&mut self) {
        let f = self.flags() & !FLAG_CLIENT;
        self.set_flags(f);
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

    // A ping (client | pong request) with sequence 7, 14-byte message.
    const PING: &str = "00 00 00 00 00 00 00 07 00 03 00 00 00 0e";

    #[test]
    fn parse_ping() {
        let buf = hex(PING);
        let h = SockperfHeader::new_checked(&buf[..]).unwrap();
        assert_eq!(h.sequence_number(), 7);
        assert_eq!(h.flags(), FLAG_CLIENT | FLAG_PONG_REQUEST);
        assert_eq!(h.message_len(), 14);
        assert!(h.is_client() && h.is_pong_request() && !h.is_warmup());
        assert!(h.wants_reply());
        assert!(h.payload().is_empty());
    }

    #[test]
    fn reply_clears_client_bit_only() {
        let mut buf = hex(PING);
        buf[9] |= FLAG_WARMUP as u8;
        SockperfHeader::new_checked(&mut buf[..])
            .unwrap()
            .make_reply();
        assert_eq!(buf, hex("00 00 00 00 00 00 00 07 00 06 00 00 00 0e"));
    }

    #[test]
    fn no_reply_without_pong_bit() {
        let mut buf = hex(PING);
        buf[9] = FLAG_CLIENT as u8;
        assert!(!SockperfHeader::new_checked(&buf[..]).unwrap().wants_reply());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = hex(PING);
        for len in 0..buf.len() {
            assert_eq!(
                SockperfHeader::new_checked(&buf[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
    }

    #[test]
    fn build_round_trip() {
        let mut buf = [0u8; 18];
        let mut h = SockperfHeader::new_unchecked(&mut buf[..]);
        h.set_sequence_number(u64::MAX - 1);
        h.set_flags(FLAG_CLIENT | FLAG_WARMUP);
        h.set_message_len(18);
        h.payload_mut().copy_from_slice(b"abcd");
        let h = SockperfHeader::new_checked(&buf[..]).unwrap();
        assert_eq!(h.sequence_number(), u64::MAX - 1);
        assert!(h.is_warmup() && !h.wants_reply());
        assert_eq!((h.message_len(), h.payload()), (18, &b"abcd"[..]));
    }
}
