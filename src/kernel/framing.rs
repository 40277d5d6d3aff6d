//! Stream framing for TCP and unix sockets (docs/protocol.md, "Stream framing"): RPC
//! messages back to back, each the 32-byte header and exactly `length` payload bytes, and
//! the reassembly of a connection's messages across reads ([`Partial`]), which the server
//! and the stream_framing fuzz target drive the same way.

use crate::wire::rpc::{self, RpcHeader};

use super::counters::DropReason;

/// The longest message a stream may carry, header included.
pub const MAX_MESSAGE: usize = 65_536;
/// The most a connection's held partial message (under [`MAX_MESSAGE`]) and one read
/// come to: the size of a thread's read and reply buffers.
pub const SCRATCH: usize = 2 * MAX_MESSAGE;

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

/// The bytes of one connection's incomplete message, kept between reads while the thread's
/// scratch buffer serves other connections. Never [`MAX_MESSAGE`] bytes or more: a tail
/// that long would be a whole message or would have been refused from its header.
#[derive(Debug, Default)]
pub struct Partial {
    held: Vec<u8>,
}

/// Bytes a connection may keep allocated for its partial message once it is emptied: a
/// connection that once sent a large message in pieces does not hold 64 KiB forever.
const KEEP: usize = 4096;

impl Partial {
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The memory this connection holds for its partial message.
    pub fn capacity(&self) -> usize {
        self.held.capacity()
    }

    /// How many bytes the next read may take: with the bytes held, never more than
    /// [`SCRATCH`] (so the replies to one read fit the thread's reply buffer), and always
    /// more than a whole message.
    pub fn room(&self) -> usize {
        SCRATCH - self.held.len()
    }

    /// Frames the held bytes followed by `fresh` (one read, at most [`Partial::room`]
    /// bytes): hands each whole message to `each`, in order, and keeps an incomplete tail.
    /// When the framing is lost, returns why: nothing from that message on is handed out or
    /// kept. Each byte is copied at most once in and once out, so a peer that sends a large
    /// message a byte at a time costs in proportion to its bytes, not bytes times held.
    pub fn feed(
        &mut self,
        fresh: &mut [u8],
        mut each: impl FnMut(&mut [u8]),
    ) -> Option<DropReason> {
        let lost = if self.held.is_empty() {
            let (pos, lost) = frame_prefix(fresh, &mut each);
            if lost.is_none() {
                self.held.extend_from_slice(&fresh[pos..]);
            }
            lost
        } else {
            let mut buf = std::mem::take(&mut self.held);
            buf.extend_from_slice(fresh);
            let (pos, lost) = frame_prefix(&mut buf, &mut each);
            match lost {
                Some(_) => buf.clear(),
                None => drop(buf.drain(..pos)),
            }
            self.held = buf;
            lost
        };
        debug_assert!(self.held.len() < MAX_MESSAGE);
        if self.held.is_empty() && self.held.capacity() > KEEP {
            self.held.shrink_to(KEEP);
        }
        lost
    }
}

/// Hands each whole message at the front of `buf` to `each`; returns where the first
/// incomplete one starts, or why the framing was lost.
fn frame_prefix(buf: &mut [u8], each: &mut impl FnMut(&mut [u8])) -> (usize, Option<DropReason>) {
    let mut pos = 0;
    loop {
        match next_frame(&buf[pos..]) {
            Frame::Incomplete => return (pos, None),
            Frame::Close(why) => return (pos, Some(why)),
            Frame::Message(len) => {
                each(&mut buf[pos..pos + len]);
                pos += len;
            }
        }
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

    /// Feeds `bytes` in `cuts`-sized reads through a [`Partial`], as the server does.
    fn reassemble(bytes: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, Option<DropReason>, usize) {
        let mut p = Partial::default();
        let mut scratch = vec![0u8; SCRATCH];
        let mut out = Vec::new();
        let mut rest = bytes;
        for &cut in cuts.iter().chain(std::iter::repeat(&usize::MAX)) {
            if rest.is_empty() {
                break;
            }
            let n = cut.min(rest.len()).min(p.room());
            scratch[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            if let Some(why) = p.feed(&mut scratch[..n], |m| out.push(m.to_vec())) {
                return (out, Some(why), 0);
            }
        }
        (out, None, p.len())
    }

    #[test]
    fn partial_reassembles_however_the_bytes_are_cut() {
        let msgs = [msg(0), msg(5), msg((MAX_MESSAGE - 32) as u32), msg(300)];
        let mut all = msgs.concat();
        all.extend_from_slice(&msg(9)[..20]);
        let want: Vec<Vec<u8>> = msgs.to_vec();
        for cuts in [
            vec![1],
            vec![7, 1000],
            vec![31, 33, 65_535],
            vec![usize::MAX],
        ] {
            let (got, close, held) = reassemble(&all, &cuts);
            assert_eq!((got == want, close, held), (true, None, 20), "{cuts:?}");
        }
        let mut bad = msgs[..2].concat();
        bad.extend_from_slice(&[0u8; 40]);
        for cuts in [vec![1], vec![33], vec![usize::MAX]] {
            let (got, close, _) = reassemble(&bad, &cuts);
            assert_eq!(
                (got, close),
                (msgs[..2].to_vec(), Some(DropReason::BadMagic))
            );
        }
    }

    #[test]
    fn partial_gives_back_memory_once_emptied() {
        let mut big = msg(60_000);
        let mut p = Partial::default();
        let (head, tail) = big.split_at_mut(50_000);
        assert_eq!(p.feed(head, |_| unreachable!()), None);
        assert!(p.capacity() >= 50_000 && p.room() == SCRATCH - 50_000);
        let mut n = 0;
        assert_eq!(p.feed(tail, |m| n += m.len()), None);
        assert_eq!((n, p.len()), (60_032, 0));
        assert!(p.capacity() <= KEEP, "{}", p.capacity());
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
