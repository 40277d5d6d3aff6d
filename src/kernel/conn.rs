//! One stream connection of a kernel server: its socket, its partial message between reads
//! and the replies its peer has not taken yet. Sockets are non-blocking; the thread's epoll
//! set says when to read or write.
//!
//! The bound on a peer that does not read: while replies wait, nothing more is read from
//! that connection, so at most one read's replies (under [`SCRATCH`]) wait per connection
//! and the peer's further requests stay in the kernel's socket buffers, which TCP's flow
//! control bounds. A peer that takes no byte for `--stall-timeout` is closed.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::counters::{CloseReason, Counters, DropReason};
use super::framing::{message_len, Partial};
use super::handler::{elapsed_ns, stamp, Handler, Protocol};
use super::socket::set_busy_poll;
use super::udp::is_retry;

pub enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Sock {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Sock {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }
}

impl Sock {
    /// Non-blocking always (the thread waits in epoll, never in a read or write); TCP also
    /// gets TCP_NODELAY, and SO_BUSY_POLL for the busy backend.
    pub fn configure(&self, busy: bool) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(true)?;
                if busy {
                    set_busy_poll(s)?;
                }
            }
            Sock::Unix(s) => s.set_nonblocking(true)?,
        }
        Ok(())
    }
}

/// What a read or a write left the connection in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the peer's next bytes.
    Reading,
    /// Replies wait for the peer to take them; nothing is read meanwhile.
    Writing,
    /// Over: close it and count it under this reason.
    Closed(CloseReason),
}

/// The thread's buffers, shared by every connection it serves.
pub struct Scratch {
    pub rx: Box<[u8]>,
    pub tx: Box<[u8]>,
}

pub struct Conn {
    pub sock: Sock,
    partial: Partial,
    /// Replies not yet taken: `out[out_at..]`, whole messages from `out[0]` on.
    out: Vec<u8>,
    out_at: usize,
    /// When the peer last took a reply byte, or when replies began to wait.
    pub progress: Instant,
    /// The framing was lost: close once the replies due before it are written.
    close_after: bool,
}

/// Memory a connection keeps for waiting replies once they are written.
const KEEP_OUT: usize = 4096;

impl Conn {
    pub fn new(sock: Sock) -> Conn {
        Conn {
            sock,
            partial: Partial::default(),
            out: Vec::new(),
            out_at: 0,
            progress: Instant::now(),
            close_after: false,
        }
    }

    /// Whether replies wait for the peer (and nothing is read meanwhile).
    pub fn is_writing(&self) -> bool {
        !self.out.is_empty()
    }

    /// One read, every whole message in it answered, the replies written as far as the
    /// socket takes them. Call only in [`State::Reading`].
    pub fn on_readable(&mut self, h: &mut Handler, c: &mut Counters, s: &mut Scratch) -> State {
        let room = self.partial.room();
        // A partial message left by an end of stream or a reset is counted by `close`.
        let n = match self.sock.read(&mut s.rx[..room]) {
            Ok(0) => return State::Closed(CloseReason::Eof),
            Ok(n) => n,
            Err(e) if is_retry(&e) => return State::Reading,
            Err(_) => return State::Closed(CloseReason::Reset),
        };
        let t_rx = Instant::now();
        let (out, lost) = answer_all(&mut self.partial, &mut s.rx[..n], h, c, &mut s.tx);
        if out > 0 {
            let server_ns = elapsed_ns(t_rx);
            let mut k = 0;
            while k < out {
                let len = message_len(&s.tx[k..out]);
                stamp(&mut s.tx[k..k + len], server_ns);
                k += len;
            }
        }
        self.close_after = lost;
        self.send(&s.tx[..out], c)
    }

    /// Writes `replies` as far as the socket takes them; the rest waits in `out`.
    fn send(&mut self, replies: &[u8], c: &mut Counters) -> State {
        let mut written = 0;
        while written < replies.len() {
            match self.sock.write(&replies[written..]) {
                Ok(0) => return self.fail(replies, written, c, CloseReason::Reset),
                Ok(k) => written += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_retry(&e) => {
                    self.out.extend_from_slice(replies);
                    self.out_at = written;
                    self.progress = Instant::now();
                    return State::Writing;
                }
                Err(_) => return self.fail(replies, written, c, CloseReason::Reset),
            }
        }
        c.tx += count_messages(replies);
        self.after_replies()
    }

    fn after_replies(&self) -> State {
        if self.close_after {
            State::Closed(CloseReason::Framing)
        } else {
            State::Reading
        }
    }

    /// Writes waiting replies as far as the socket takes them. Call only in
    /// [`State::Writing`].
    pub fn on_writable(&mut self, c: &mut Counters) -> State {
        while self.out_at < self.out.len() {
            match self.sock.write(&self.out[self.out_at..]) {
                Ok(0) => return self.close(c, CloseReason::Reset),
                Ok(k) => {
                    self.out_at += k;
                    self.progress = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_retry(&e) => return State::Writing,
                Err(_) => return self.close(c, CloseReason::Reset),
            }
        }
        c.tx += count_messages(&self.out);
        self.out.clear();
        self.out_at = 0;
        if self.out.capacity() > KEEP_OUT {
            self.out.shrink_to(KEEP_OUT);
        }
        self.after_replies()
    }

    /// Ends the connection: replies still waiting are counted as dropped for `why`, and a
    /// partial message as truncated.
    pub fn close(&mut self, c: &mut Counters, why: CloseReason) -> State {
        if !self.partial.is_empty() {
            c.rx += 1;
            c.drop(DropReason::Truncated);
        }
        let out = std::mem::take(&mut self.out);
        let at = self.out_at;
        self.out_at = 0;
        self.fail(&out, at, c, why)
    }

    /// Counts the replies in `replies` wholly written before `written` as tx, the others as
    /// dropped for `why`.
    fn fail(
        &mut self,
        replies: &[u8],
        written: usize,
        c: &mut Counters,
        why: CloseReason,
    ) -> State {
        let reason = match why {
            CloseReason::Stalled => DropReason::Stalled,
            CloseReason::Stopped => DropReason::SendError,
            _ => DropReason::PeerClosed,
        };
        let mut k = 0;
        while k < replies.len() {
            k += message_len(&replies[k..]);
            if k > written {
                c.drop(reason);
            } else {
                c.tx += 1;
            }
        }
        State::Closed(why)
    }
}

/// Answers every whole message in the held bytes and `buf` into `tx`; returns the replies' length and whether
/// the framing was lost (that message counted as dropped).
fn answer_all(
    partial: &mut Partial,
    buf: &mut [u8],
    h: &mut Handler,
    c: &mut Counters,
    tx: &mut [u8],
) -> (usize, bool) {
    let mut out = 0;
    let lost = partial.feed(buf, |msg| {
        c.rx += 1;
        match h.answer(Protocol::Rpc, msg) {
            Err(why) => c.drop(why),
            Ok(len) => {
                // Replies are never longer than their requests, so the replies of one
                // buffer fit a buffer of the same size.
                tx[out..out + len].copy_from_slice(&msg[..len]);
                out += len;
            }
        }
    });
    if let Some(why) = lost {
        c.rx += 1;
        c.drop(why);
    }
    (out, lost.is_some())
}

/// How many whole messages `buf` holds, back to back.
fn count_messages(buf: &[u8]) -> u64 {
    let mut k = 0;
    let mut n = 0;
    while k < buf.len() {
        k += message_len(&buf[k..]);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::framing::SCRATCH;
    use crate::wire::{RpcHeader, RpcMethod, RpcRepr};

    fn request(payload: usize) -> Vec<u8> {
        let r = RpcRepr::request(RpcMethod::Echo, 1, 0, payload as u32);
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
        v
    }

    #[test]
    fn a_peer_that_does_not_read_bounds_what_waits_and_is_counted() {
        let (a, mut peer) = UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(Sock::Unix(a));
        conn.sock.configure(false).unwrap();
        let mut h = Handler::new(1000);
        let mut c = Counters::default();
        let mut s = Scratch {
            rx: vec![0u8; SCRATCH].into_boxed_slice(),
            tx: vec![0u8; SCRATCH].into_boxed_slice(),
        };
        let req = request(30_000);
        let mut state = State::Reading;
        for _ in 0..10_000 {
            // The peer writes whatever its socket takes, never reading.
            let _ = peer.write(&req);
            state = conn.on_readable(&mut h, &mut c, &mut s);
            if state != State::Reading {
                break;
            }
        }
        assert_eq!(state, State::Writing, "{c:?}");
        assert!(
            conn.is_writing() && conn.out.len() <= SCRATCH,
            "{}",
            conn.out.len()
        );
        // Still nothing taken: the waiting replies stay as they are.
        assert_eq!(conn.on_writable(&mut c), State::Writing);
        assert_eq!(
            conn.close(&mut c, CloseReason::Stalled),
            State::Closed(CloseReason::Stalled)
        );
        assert!(c.get(DropReason::Stalled) > 0, "{c:?}");
        assert_eq!(c.rx, c.tx + c.dropped(), "{c:?}");
    }
}
