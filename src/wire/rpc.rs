//! The bypass RPC protocol, version 1 (specified in `docs/protocol.md`).
//!
//! A 32-byte big-endian header followed by `length` payload bytes, carried
//! in one UDP datagram.

use super::{read_u16, read_u32, read_u64, WireError};

/// "RP" in ASCII.
pub const MAGIC: u16 = 0x5250;
pub const VERSION: u8 = 1;
/// UDP port a server listens on unless configured otherwise.
pub const DEFAULT_PORT: u16 = 7777;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcKind {
    Request,
    Response,
    Error,
    Other(u8),
}

impl From<u8> for RpcKind {
    #[inline]
    fn from(v: u8) -> Self {
        match v {
            0 => RpcKind::Request,
            1 => RpcKind::Response,
            2 => RpcKind::Error,
            other => RpcKind::Other(other),
        }
    }
}

impl From<RpcKind> for u8 {
    #[inline]
    fn from(k: RpcKind) -> u8 {
        match k {
            RpcKind::Request => 0,
            RpcKind::Response => 1,
            RpcKind::Error => 2,
            RpcKind::Other(v) => v,
        }
    }
}

/// The method a request invokes. Unknown numbers stay representable
/// because the server must answer them (with an error) rather than drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcMethod {
    /// Returns the request payload unchanged.
    Echo,
    /// Busy-waits for the u32 big-endian nanoseconds in the payload.
    Spin,
    /// Decodes the payload's message in its codec, answers it and encodes the reply in the
    /// same codec (docs/protocol.md, docs/codecs.md).
    Transcode,
    Other(u16),
}

impl From<u16> for RpcMethod {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            1 => RpcMethod::Echo,
            2 => RpcMethod::Spin,
            3 => RpcMethod::Transcode,
            other => RpcMethod::Other(other),
        }
    }
}

impl From<RpcMethod> for u16 {
    #[inline]
    fn from(m: RpcMethod) -> u16 {
        match m {
            RpcMethod::Echo => 1,
            RpcMethod::Spin => 2,
            RpcMethod::Transcode => 3,
            RpcMethod::Other(v) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RpcStatus {
    Ok,
    UnknownMethod,
    BadLength,
    BadArgument,
    Other(u16),
}

impl From<u16> for RpcStatus {
    #[inline]
    fn from(v: u16) -> Self {
        match v {
            0 => RpcStatus::Ok,
            1 => RpcStatus::UnknownMethod,
            2 => RpcStatus::BadLength,
            3 => RpcStatus::BadArgument,
            other => RpcStatus::Other(other),
        }
    }
}

impl From<RpcStatus> for u16 {
    #[inline]
    fn from(s: RpcStatus) -> u16 {
        match s {
            RpcStatus::Ok => 0,
            RpcStatus::UnknownMethod => 1,
            RpcStatus::BadLength => 2,
            RpcStatus::BadArgument => 3,
            RpcStatus::Other(v) => v,
        }
    }
}

/// What a server does with a valid request (protocol v1): `Ok(ns)` answers after spinning `ns`
/// nanoseconds (0 for echo), `Err(status)` answers with that error. The one place the method
/// rules live, so the fast path and the kernel baselines cannot drift apart.
#[inline]
pub fn plan_request(method: RpcMethod, payload: &[u8], spin_max_ns: u32) -> Result<u32, RpcStatus> {
    match method {
        RpcMethod::Echo => Ok(0),
        RpcMethod::Spin => {
            let Ok(arg) = <[u8; 4]>::try_from(payload) else {
                return Err(RpcStatus::BadLength);
            };
            let ns = u32::from_be_bytes(arg);
            if ns > spin_max_ns {
                return Err(RpcStatus::BadArgument);
            }
            Ok(ns)
        }
        // The payload is work, not a duration: a server that transcodes does so once the
        // plan says Ok (the service time still applies); one that does not, never gets here.
        RpcMethod::Transcode => Ok(0),
        RpcMethod::Other(_) => Err(RpcStatus::UnknownMethod),
    }
}

pub(crate) mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..2;
    pub const VERSION: usize = 2;
    pub const KIND: usize = 3;
    pub const METHOD: Range<usize> = 4..6;
    pub const STATUS: Range<usize> = 6..8;
    pub const REQUEST_ID: Range<usize> = 8..16;
    pub const CLIENT_TS: Range<usize> = 16..24;
    pub const SERVER_NS: Range<usize> = 24..28;
    pub const LENGTH: Range<usize> = 28..32;
}

pub const HEADER_LEN: usize = field::LENGTH.end;

/// A view of an RPC message: the UDP payload. Bytes past `length` (if the
/// datagram is longer) are ignored.
#[derive(Debug, Clone)]
pub struct RpcHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RpcHeader<T> {
    pub const HEADER_LEN: usize = HEADER_LEN;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        RpcHeader { buffer }
    }

    /// Checks magic, version and that `length` fits in the buffer. Kind and
    /// method are left to the caller, which answers some invalid values.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let h = RpcHeader { buffer };
        let len = h.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if h.magic() != MAGIC {
            return Err(WireError::BadMagic);
        }
        if h.version() != VERSION {
            return Err(WireError::BadVersion);
        }
        if h.length() as usize > len - HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(h)
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn magic(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::MAGIC])
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    #[inline]
    pub fn kind(&self) -> RpcKind {
        self.buffer.as_ref()[field::KIND].into()
    }

    #[inline]
    pub fn method(&self) -> RpcMethod {
        read_u16(&self.buffer.as_ref()[field::METHOD]).into()
    }

    #[inline]
    pub fn status(&self) -> RpcStatus {
        read_u16(&self.buffer.as_ref()[field::STATUS]).into()
    }

    #[inline]
    pub fn request_id(&self) -> u64 {
        read_u64(&self.buffer.as_ref()[field::REQUEST_ID])
    }

    #[inline]
    pub fn client_ts(&self) -> u64 {
        read_u64(&self.buffer.as_ref()[field::CLIENT_TS])
    }

    #[inline]
    pub fn server_ns(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::SERVER_NS])
    }

    /// Payload length in bytes, as the header states it.
    #[inline]
    pub fn length(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Clamped to the buffer so a setter cannot make this panic.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let buf = self.buffer.as_ref();
        let start = HEADER_LEN.min(buf.len());
        let end = start.saturating_add(self.length() as usize).min(buf.len());
        &buf[start..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RpcHeader<T> {
    /// Writes magic and version.
    #[inline]
    pub fn set_magic_version(&mut self) {
        let buf = self.buffer.as_mut();
        buf[field::MAGIC].copy_from_slice(&MAGIC.to_be_bytes());
        buf[field::VERSION] = VERSION;
    }

    #[inline]
    pub fn set_kind(&mut self, k: RpcKind) {
        self.buffer.as_mut()[field::KIND] = k.into();
    }

    #[inline]
    pub fn set_method(&mut self, m: RpcMethod) {
        self.buffer.as_mut()[field::METHOD].copy_from_slice(&u16::from(m).to_be_bytes());
    }

    #[inline]
    pub fn set_status(&mut self, s: RpcStatus) {
        self.buffer.as_mut()[field::STATUS].copy_from_slice(&u16::from(s).to_be_bytes());
    }

    #[inline]
    pub fn set_request_id(&mut self, v: u64) {
        self.buffer.as_mut()[field::REQUEST_ID].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_client_ts(&mut self, v: u64) {
        self.buffer.as_mut()[field::CLIENT_TS].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_server_ns(&mut self, v: u32) {
        self.buffer.as_mut()[field::SERVER_NS].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn set_length(&mut self, v: u32) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.length() as usize;
        let buf = self.buffer.as_mut();
        let start = HEADER_LEN.min(buf.len());
        let end = start.saturating_add(len).min(buf.len());
        &mut buf[start..end]
    }
}

/// An RPC header as plain values, for building messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcRepr {
    pub kind: RpcKind,
    pub method: RpcMethod,
    pub status: RpcStatus,
    pub request_id: u64,
    pub client_ts: u64,
    pub server_ns: u32,
    pub payload_len: u32,
}

impl RpcRepr {
    /// A request as a client sends it: status ok, server_ns zero.
    #[inline]
    pub fn request(method: RpcMethod, request_id: u64, client_ts: u64, payload_len: u32) -> Self {
        RpcRepr {
            kind: RpcKind::Request,
            method,
            status: RpcStatus::Ok,
            request_id,
            client_ts,
            server_ns: 0,
            payload_len,
        }
    }

    /// Reads a header already validated by [`RpcHeader::new_checked`].
    /// Fails with `Truncated` if the view was built unchecked over a short
    /// buffer, instead of panicking.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(h: &RpcHeader<T>) -> Result<Self, WireError> {
        if h.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if h.magic() != MAGIC {
            return Err(WireError::BadMagic);
        }
        if h.version() != VERSION {
            return Err(WireError::BadVersion);
        }
        Ok(RpcRepr {
            kind: h.kind(),
            method: h.method(),
            status: h.status(),
            request_id: h.request_id(),
            client_ts: h.client_ts(),
            server_ns: h.server_ns(),
            payload_len: h.length(),
        })
    }

    /// Header plus payload length.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }

    /// Writes the header (not the payload) into `h`, which must hold at
    /// least [`HEADER_LEN`] bytes.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        h: &mut RpcHeader<T>,
    ) -> Result<(), WireError> {
        if h.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::BufferTooSmall);
        }
        h.set_magic_version();
        h.set_kind(self.kind);
        h.set_method(self.method);
        h.set_status(self.status);
        h.set_request_id(self.request_id);
        h.set_client_ts(self.client_ts);
        h.set_server_ns(self.server_ns);
        h.set_length(self.payload_len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{hex, XorShift};
    use super::*;

    // Echo request id 0x0102030405060708, ts 0x1122334455667788, "hi".
    const ECHO: &str = "
        52 50 01 00 00 01 00 00 01 02 03 04 05 06 07 08
        11 22 33 44 55 66 77 88 00 00 00 00 00 00 00 02
        68 69";

    #[test]
    fn parse_known_request() {
        let buf = hex(ECHO);
        let h = RpcHeader::new_checked(&buf[..]).unwrap();
        assert_eq!(h.kind(), RpcKind::Request);
        assert_eq!(h.method(), RpcMethod::Echo);
        assert_eq!(h.status(), RpcStatus::Ok);
        assert_eq!(h.request_id(), 0x0102_0304_0506_0708);
        assert_eq!(h.client_ts(), 0x1122_3344_5566_7788);
        assert_eq!((h.server_ns(), h.length()), (0, 2));
        assert_eq!(h.payload(), b"hi");
        let repr = RpcRepr::parse(&h).unwrap();
        assert_eq!(
            repr,
            RpcRepr::request(
                RpcMethod::Echo,
                0x0102_0304_0506_0708,
                0x1122_3344_5566_7788,
                2
            )
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let buf = hex(ECHO);
        for len in 0..buf.len() {
            assert_eq!(
                RpcHeader::new_checked(&buf[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut buf = hex(ECHO);
        buf.extend_from_slice(b"xyz");
        assert_eq!(RpcHeader::new_checked(&buf[..]).unwrap().payload(), b"hi");
    }

    #[test]
    fn bad_magic_and_version() {
        let mut buf = hex(ECHO);
        buf[1] = 0x51;
        assert_eq!(
            RpcHeader::new_checked(&buf[..]).unwrap_err(),
            WireError::BadMagic
        );
        let mut buf = hex(ECHO);
        buf[2] = 2;
        assert_eq!(
            RpcHeader::new_checked(&buf[..]).unwrap_err(),
            WireError::BadVersion
        );
        assert_eq!(
            RpcRepr::parse(&RpcHeader::new_unchecked(&buf[..])),
            Err(WireError::BadVersion)
        );
        assert_eq!(
            RpcRepr::parse(&RpcHeader::new_unchecked(&buf[..5])),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn huge_length_is_truncated_not_overflow() {
        let mut buf = hex(ECHO);
        buf[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            RpcHeader::new_checked(&buf[..]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(RpcHeader::new_unchecked(&buf[..]).payload(), b"hi");
    }

    #[test]
    fn unknown_values_are_representable() {
        let mut buf = hex(ECHO);
        buf[3] = 9;
        buf[4..6].copy_from_slice(&[0xab, 0xcd]);
        buf[6..8].copy_from_slice(&[0, 7]);
        let h = RpcHeader::new_checked(&buf[..]).unwrap();
        assert_eq!(h.kind(), RpcKind::Other(9));
        assert_eq!(h.method(), RpcMethod::Other(0xabcd));
        assert_eq!(h.status(), RpcStatus::Other(7));
        for v in 0..=10u16 {
            assert_eq!(u16::from(RpcMethod::from(v)), v);
            assert_eq!(u16::from(RpcStatus::from(v)), v);
            assert_eq!(u8::from(RpcKind::from(v as u8)), v as u8);
        }
    }

    #[test]
    fn emit_parse_round_trip() {
        let mut rng = XorShift(5);
        let mut buf = [0u8; 64];
        for _ in 0..crate::test_rounds(1000) {
            let repr = RpcRepr {
                kind: RpcKind::from(rng.next_u64() as u8 % 4),
                method: RpcMethod::from(rng.next_u64() as u16 % 4),
                status: RpcStatus::from(rng.next_u64() as u16 % 5),
                request_id: rng.next_u64(),
                client_ts: rng.next_u64(),
                server_ns: rng.next_u64() as u32,
                payload_len: rng.below(33) as u32,
            };
            let mut h = RpcHeader::new_unchecked(&mut buf[..repr.buffer_len()]);
            repr.emit(&mut h).unwrap();
            let h = RpcHeader::new_checked(&buf[..repr.buffer_len()]).unwrap();
            assert_eq!(RpcRepr::parse(&h).unwrap(), repr);
            assert_eq!(h.payload().len(), repr.payload_len as usize);
        }
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let mut buf = [0u8; HEADER_LEN - 1];
        let repr = RpcRepr::request(RpcMethod::Spin, 1, 2, 0);
        assert_eq!(
            repr.emit(&mut RpcHeader::new_unchecked(&mut buf[..])),
            Err(WireError::BufferTooSmall)
        );
    }
}
