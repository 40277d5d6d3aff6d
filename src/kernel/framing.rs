//! Stream framing for TCP and unix sockets (docs/protocol.md, "Stream framing"): RPC
//! messages back to back, each the 32-byte header and exactly `length` payload bytes.

use crate::wire::rpc::{self, RpcHeader};

use super::counters::DropReason;

/// The longest message a stream may carry, header included.
pub const MAX_MESSAGE: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet: keep the bytes and read more.
    Incomplete,
    /// The first message is this many bytes long.
    Message(usize),
    /// The stream cannot be framed any further: close the connection. A bad magic or
    /// version means the length field cannot be trusted either.
    Close(DropReason),
}

/// Frames the message at the start of `buf`. Decides as soon as the header is in, so an
/// oversize message is refused before its payload is read.
#[inline]
pub fn next_frame(buf: &[u8]) -> Frame {
    if buf.len() < rpc::HEADER_LEN {
        return Frame::Incomplete;
    }
    let h = RpcHeader::new_unchecked(buf);
    if h.magic() != rpc::MAGIC {
        return Frame::Close(DropReason::BadMagic);
    }
    if h.version() != rpc::VERSION {
        return Frame::Close(DropReason::BadVersion);
    }
    let total = rpc::HEADER_LEN + h.length() as usize;
    if total > MAX_MESSAGE {
        return Frame::Close(DropReason::Oversize);
    }
    if buf.len() < total {
        Frame::Incomplete
    } else {
        Frame::Message(total)
    }
}

/// The length of the well-formed message at the start of `buf` (header plus `length`),
/// for walking a buffer of replies this server built.
#[inline]
pub fn message_len(buf: &[u8]) -> usize {
    rpc::HEADER_LEN + RpcHeader::new_unchecked(buf).length() as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{RpcMethod, RpcRepr};

    fn msg(len: u32) -> Vec<u8> {
        let r = RpcRepr::request(RpcMethod::Echo, 1, 2, len);
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
        v
    }

    #[test]
    fn frames_by_length() {
        let m = msg(5);
        for cut in 0..m.len() {
            assert_eq!(next_frame(&m[..cut]), Frame::Incomplete, "{cut}");
        }
        assert_eq!(next_frame(&m), Frame::Message(37));
        let mut two = m.clone();
        two.extend_from_slice(&msg(0));
        assert_eq!(next_frame(&two), Frame::Message(37));
        assert_eq!(next_frame(&two[37..]), Frame::Message(32));
        assert_eq!(message_len(&two), 37);
    }

    #[test]
    fn limits() {
        let max = msg((MAX_MESSAGE - 32) as u32);
        assert_eq!(next_frame(&max), Frame::Message(MAX_MESSAGE));
        let over = msg((MAX_MESSAGE - 31) as u32);
        // Refused from the header alone.
        assert_eq!(next_frame(&over[..32]), Frame::Close(DropReason::Oversize));
        let mut huge = msg(0);
        huge[28..32].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(next_frame(&huge), Frame::Close(DropReason::Oversize));
    }

    #[test]
    fn unframeable() {
        let mut m = msg(0);
        m[1] = 0;
        assert_eq!(next_frame(&m), Frame::Close(DropReason::BadMagic));
        let mut m = msg(0);
        m[2] = 9;
        assert_eq!(next_frame(&m), Frame::Close(DropReason::BadVersion));
        // The kind is the handler's business: a response frames fine.
        let mut m = msg(0);
        m[3] = 1;
        assert_eq!(next_frame(&m), Frame::Message(32));
    }
}
