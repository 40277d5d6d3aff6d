//! Stream transports (tcp, unix): RPC messages back to back on one connection, each framed by
//! its own header's length field, no other prefix (docs/protocol.md, "Stream framing"). A
//! header with a bad magic or version, or a length past 65536 bytes in all, means the framing
//! is lost: the run ends with an error. One type, generic over the socket, so TCP and
//! unix-domain sockets are measured through the same code.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::options::WaitMode;
use crate::wire::rpc::{RpcHeader, HEADER_LEN, MAGIC, VERSION};

use super::config::{bad, LoadConfig, MAX_STREAM_MESSAGE};
use super::transport::{blocking_wait, io_err, RpcTransport};
use super::LoadError;

/// Connecting is not part of the measurement; this only bounds a server that never answers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive buffer: room for a whole largest message behind a partial one, so a read never
/// has to wait for the buffer to drain and compaction copies at most one partial message.
pub const RX_BUF: usize = 2 * MAX_STREAM_MESSAGE;
/// Send queue for what the socket does not take at once (a server behind, or stalled): holds
/// 64 largest messages, or tens of thousands of small ones, before requests are refused.
const TX_BUF: usize = 64 * MAX_STREAM_MESSAGE;

/// What the stream transport needs from a connected socket beyond `Read + Write`.
pub trait StreamSocket: Read + Write {
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl StreamSocket for TcpStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        TcpStream::set_nonblocking(self, on)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
}

impl StreamSocket for UnixStream {
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        UnixStream::set_nonblocking(self, on)
    }
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, t)
    }
}

/// A connection to an RPC server that carries length-framed messages.
///
/// `recv` reassembles a message split over several reads and hands out the messages of one
/// read one per call, from a buffer allocated once. `send` queues a whole message or nothing:
/// a frame half on the wire with nothing to follow would corrupt every message after it.
pub struct Stream<S> {
    sock: S,
    /// Names the connection in errors ("tcp 127.0.0.1:7777").
    label: String,
    /// Bytes read but not yet handed out are `rx[start..end]`.
    rx: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes of messages the socket has not taken yet are `tx[tx_start..tx_end]`.
    tx: Vec<u8>,
    tx_start: usize,
    tx_end: usize,
    /// Set once the connection can no longer carry whole messages (closed by the server, an
    /// I/O error, a frame left half-written, a message too long); every later call fails.
    broken: Option<String>,
}

/// Connects to `--server` over TCP with TCP_NODELAY (a request must leave at once, not wait
/// for Nagle to fill a segment).
pub fn connect_tcp(cfg: &LoadConfig) -> Result<Stream<TcpStream>, LoadError> {
    let server = cfg.server_addr()?;
    let label = format!("tcp {server}");
    let sock = TcpStream::connect_timeout(&server, CONNECT_TIMEOUT)
        .map_err(|e| io_err(&format!("connect {label}"), e))?;
    sock.set_nodelay(true)
        .map_err(|e| io_err("set TCP_NODELAY", e))?;
    Stream::configured(sock, label, cfg)
}

/// Connects to `--server-path` over a unix-domain stream socket.
pub fn connect_unix(cfg: &LoadConfig) -> Result<Stream<UnixStream>, LoadError> {
    let path = cfg.server_path.as_deref().ok_or_else(|| {
        bad(
            "--server-path",
            "--transport unix needs --server-path SOCKPATH",
        )
    })?;
    let label = format!("unix {}", path.display());
    let sock = UnixStream::connect(path).map_err(|e| io_err(&format!("connect {label}"), e))?;
    Stream::configured(sock, label, cfg)
}

impl<S: StreamSocket> Stream<S> {
    /// Applies `cfg.wait`: busy = non-blocking socket the engine spins on; blocking = reads
    /// that give control back after [`blocking_wait`], writes bounded by the request timeout.
    fn configured(sock: S, label: String, cfg: &LoadConfig) -> Result<Stream<S>, LoadError> {
        match cfg.wait {
            WaitMode::Busy => sock
                .set_nonblocking(true)
                .map_err(|e| io_err("set_nonblocking", e))?,
            WaitMode::Blocking => {
                sock.set_read_timeout(Some(blocking_wait(cfg)))
                    .map_err(|e| io_err("set_read_timeout", e))?;
                sock.set_write_timeout(Some(cfg.timeout))
                    .map_err(|e| io_err("set_write_timeout", e))?;
            }
        }
        Ok(Stream::new(sock, label))
    }
}

impl<S: Read + Write> Stream<S> {
    /// Wraps a connected socket as it is configured (blocking or not).
    pub fn new(sock: S, label: String) -> Stream<S> {
        Stream {
            sock,
            label,
            rx: vec![0u8; RX_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            tx: Vec::new(),
            tx_start: 0,
            tx_end: 0,
            broken: None,
        }
    }

    /// Bytes received but not yet handed out: never more than [`RX_BUF`].
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Marks the connection unusable and returns the error that ends the run.
    fn fail(&mut self, why: impl std::fmt::Display) -> io::Error {
        let msg = format!("{}: {why}", self.label);
        self.broken = Some(msg.clone());
        io::Error::other(msg)
    }

    fn check(&self) -> io::Result<()> {
        match &self.broken {
            Some(msg) => Err(io::Error::other(msg.clone())),
            None => Ok(()),
        }
    }

    /// Hands out the message at the front of the buffer if it has arrived whole.
    fn take_message(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let have = self.end - self.start;
        if have < HEADER_LEN {
            return Ok(None);
        }
        let header = RpcHeader::new_unchecked(&self.rx[self.start..self.start + HEADER_LEN]);
        if header.magic() != MAGIC || header.version() != VERSION {
            // docs/protocol.md: then the length field cannot be trusted either.
            return Err(self.fail(format!(
                "the server sent a message with magic {:#06x}, version {}: framing lost",
                header.magic(),
                header.version()
            )));
        }
        let total = HEADER_LEN.saturating_add(header.length() as usize);
        if total > MAX_STREAM_MESSAGE {
            return Err(self.fail(format!(
                "the server sent a {total}-byte message, more than {MAX_STREAM_MESSAGE}: framing lost"
            )));
        }
        if have < total {
            return Ok(None);
        }
        if total > out.len() {
            return Err(self.fail(format!(
                "a {total}-byte message does not fit the {}-byte receive buffer",
                out.len()
            )));
        }
        out[..total].copy_from_slice(&self.rx[self.start..self.start + total]);
        self.start += total;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(Some(total))
    }

    /// Writes what the send queue holds, as far as the socket takes it.
    fn flush(&mut self) -> io::Result<()> {
        while self.tx_start < self.tx_end {
            match self.sock.write(&self.tx[self.tx_start..self.tx_end]) {
                Ok(0) => return Err(self.fail("the connection takes no more bytes")),
                Ok(n) => self.tx_start += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(())
                }
                Err(e) if is_closed(&e) => {
                    return Err(self.fail(format!("the server closed the connection ({e})")))
                }
                Err(e) => return Err(self.fail(format!("send: {e}"))),
            }
        }
        self.tx_start = 0;
        self.tx_end = 0;
        Ok(())
    }

    /// Moves the bytes not yet handed out to the front when the free end has less room than
    /// a whole message.
    fn compact(&mut self) {
        if self.start > 0 && self.rx.len() - self.end < MAX_STREAM_MESSAGE {
            self.rx.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// One read into the free end of the buffer. Called only when the buffered bytes are less
    /// than one whole message, so after compaction there is always room.
    fn fill(&mut self) -> io::Result<()> {
        self.compact();
        // Never a zero-length read: its Ok(0) would read as the server closing.
        debug_assert!(self.end < self.rx.len());
        match self.sock.read(&mut self.rx[self.end..]) {
            Ok(0) => {
                // Reported as "nothing yet" this once: a run whose last reply came just before
                // the server closed ends cleanly (the engine stops when nothing is in flight);
                // any later call reports the close and ends the run.
                self.fail("the server closed the connection");
                Err(ErrorKind::WouldBlock.into())
            }
            Ok(n) => {
                self.end += n;
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                Err(e)
            }
            Err(e) if is_closed(&e) => {
                Err(self.fail(format!("the server closed the connection ({e})")))
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

/// The errors a socket reports when the other end has gone.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

impl<S: Read + Write> RpcTransport for Stream<S> {
    /// Puts the whole message on the connection, or none of it. What the socket does not take
    /// at once waits in the send queue, ahead of every later message, and goes out on the
    /// following `send` or `recv` calls: a busy server shows up as latency charged from the
    /// intended send time, as on any stream, and the client never blocks on a server that is
    /// itself blocked writing replies to it. Only when the queue is full is the message
    /// refused (`WouldBlock`; it times out as lost).
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.check()?;
        self.flush()?;
        let mut off = 0;
        if self.tx_start == self.tx_end {
            off = loop {
                match self.sock.write(msg) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break 0
                    }
                    Err(e) if is_closed(&e) => {
                        return Err(self.fail(format!("the server closed the connection ({e})")))
                    }
                    Err(e) => return Err(self.fail(format!("send: {e}"))),
                }
            };
            if off == msg.len() {
                return Ok(());
            }
        }
        let rest = &msg[off..];
        if TX_BUF - self.tx_end < rest.len() && self.tx_start > 0 {
            self.tx.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end -= self.tx_start;
            self.tx_start = 0;
        }
        if TX_BUF - self.tx_end < rest.len() {
            // Nothing of this message is on the wire (a partial write only happens with an
            // empty queue, which always has room for a whole message), so framing is intact.
            debug_assert_eq!(off, 0);
            return Err(ErrorKind::WouldBlock.into());
        }
        if self.tx.len() < TX_BUF {
            // Made the first time the socket falls behind, once: most connections never
            // queue, and zeroing 4 MiB per connection up front is what a client with many
            // short connections (or the stream_framing fuzz target) pays for nothing.
            self.tx.resize(TX_BUF, 0);
        }
        self.tx[self.tx_end..self.tx_end + rest.len()].copy_from_slice(rest);
        self.tx_end += rest.len();
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.flush()?;
        loop {
            if let Some(n) = self.take_message(buf)? {
                return Ok(n);
            }
            self.fill()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::rpc::{RpcKind, RpcMethod, RpcRepr};
    use std::time::Instant;

    fn message(id: u64, payload: usize) -> Vec<u8> {
        let repr = RpcRepr::request(RpcMethod::Echo, id, id * 10, payload as u32);
        let mut buf = vec![0u8; HEADER_LEN + payload];
        repr.emit(&mut RpcHeader::new_unchecked(&mut buf[..]))
            .unwrap();
        for (i, b) in buf[HEADER_LEN..].iter_mut().enumerate() {
            *b = (i as u64 + id) as u8;
        }
        buf
    }

    fn pair() -> (Stream<UnixStream>, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (Stream::new(a, "test".into()), b)
    }

    #[test]
    fn nothing_queued_is_would_block() {
        let (mut s, _peer) = pair();
        let mut out = [0u8; MAX_STREAM_MESSAGE];
        assert_eq!(s.recv(&mut out).unwrap_err().kind(), ErrorKind::WouldBlock);
    }

    #[test]
    fn reassembles_fragments_and_splits_batches() {
        let (mut s, mut peer) = pair();
        let mut out = [0u8; MAX_STREAM_MESSAGE];
        let msgs: Vec<Vec<u8>> = (0..5).map(|i| message(i, 7 * i as usize)).collect();
        // One message a byte at a time: nothing is handed out until its last byte.
        let first = &msgs[0];
        for (i, b) in first.iter().enumerate() {
            peer.write_all(&[*b]).unwrap();
            if i + 1 < first.len() {
                assert_eq!(s.recv(&mut out).unwrap_err().kind(), ErrorKind::WouldBlock);
            }
        }
        assert_eq!(s.recv(&mut out).unwrap(), first.len());
        assert_eq!(&out[..first.len()], &first[..]);
        // The other four in one write, the last cut short: three whole ones, one per call.
        let mut all: Vec<u8> = msgs[1..].concat();
        let tail = all.split_off(all.len() - 5);
        peer.write_all(&all).unwrap();
        for m in &msgs[1..4] {
            assert_eq!(s.recv(&mut out).unwrap(), m.len());
            assert_eq!(&out[..m.len()], &m[..]);
        }
        assert_eq!(s.recv(&mut out).unwrap_err().kind(), ErrorKind::WouldBlock);
        peer.write_all(&tail).unwrap();
        let m = &msgs[4];
        assert_eq!(s.recv(&mut out).unwrap(), m.len());
        assert_eq!(&out[..m.len()], &m[..]);
        let h = RpcHeader::new_checked(&out[..m.len()]).unwrap();
        assert_eq!((h.kind(), h.request_id()), (RpcKind::Request, 4));
    }

    #[test]
    fn many_large_messages_survive_compaction() {
        let (mut s, mut peer) = pair();
        let mut out = vec![0u8; MAX_STREAM_MESSAGE];
        let msgs: Vec<Vec<u8>> = (0..40)
            .map(|i| {
                message(
                    i,
                    [10, 40_000, MAX_STREAM_MESSAGE - HEADER_LEN][i as usize % 3],
                )
            })
            .collect();
        let bytes = msgs.concat();
        let writer = std::thread::spawn(move || {
            // Odd-sized writes so message boundaries never line up with reads.
            for chunk in bytes.chunks(9_999) {
                peer.write_all(chunk).unwrap();
            }
            peer
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        for m in &msgs {
            let n = loop {
                match s.recv(&mut out) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        assert!(Instant::now() < deadline, "stalled");
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(&out[..n], &m[..]);
        }
        drop(writer.join().unwrap());
    }

    #[test]
    fn a_full_socket_queues_whole_messages_and_refuses_only_when_the_queue_is_full() {
        let (a, mut reader) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut s = Stream::new(a, "test".into());
        let mut out = [0u8; MAX_STREAM_MESSAGE];
        // 10 MB, more than the socket buffer and the send queue together.
        let msgs: Vec<Vec<u8>> = (0..200).map(|i| message(i, 50_000)).collect();
        let expect = msgs.concat();
        // A slow reader: the socket fills, messages wait in the queue, writes go in pieces.
        let check = std::thread::spawn(move || {
            reader
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut got = Vec::with_capacity(expect.len());
            let mut buf = vec![0u8; 64_000];
            while got.len() < expect.len() {
                std::thread::sleep(Duration::from_micros(200));
                let n = reader.read(&mut buf).unwrap();
                assert!(n > 0, "closed early");
                got.extend_from_slice(&buf[..n]);
            }
            assert!(got == expect, "bytes differ");
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut refused = 0u64;
        for m in &msgs {
            // WouldBlock: nothing of this message went out or was queued; offer it again
            // after recv (which writes out the queue) has made room.
            loop {
                match s.send(m) {
                    Ok(()) => break,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        refused += 1;
                        assert!(Instant::now() < deadline, "stalled");
                        let e = s.recv(&mut out).unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::WouldBlock);
                        std::thread::sleep(Duration::from_micros(100));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        // recv writes out what is still queued.
        while s.tx_start < s.tx_end {
            assert!(Instant::now() < deadline, "stalled");
            assert_eq!(s.recv(&mut out).unwrap_err().kind(), ErrorKind::WouldBlock);
            std::thread::sleep(Duration::from_micros(100));
        }
        check.join().unwrap();
        assert!(
            refused > 0,
            "the queue never filled: this test tested nothing"
        );
    }

    #[test]
    fn server_close_is_an_error_that_sticks() {
        let (mut s, peer) = pair();
        let mut out = [0u8; MAX_STREAM_MESSAGE];
        drop(peer);
        // The close is seen as "nothing yet" once (the engine may be done), then as an error.
        assert_eq!(s.recv(&mut out).unwrap_err().kind(), ErrorKind::WouldBlock);
        let e = s.recv(&mut out).unwrap_err();
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{e:?}"
        );
        assert!(e.to_string().contains("closed the connection"), "{e}");
        assert!(s.send(&message(1, 4)).is_err());
        assert!(s.recv(&mut out).unwrap_err().to_string().contains("closed"));
    }

    #[test]
    fn bad_magic_loses_framing() {
        let (mut s, mut peer) = pair();
        let mut out = [0u8; MAX_STREAM_MESSAGE];
        let mut m = message(1, 8);
        m[0] ^= 0xff;
        peer.write_all(&m).unwrap();
        let e = s.recv(&mut out).unwrap_err();
        assert!(e.to_string().contains("framing lost"), "{e}");
        assert!(s.recv(&mut out).is_err());
    }

    #[test]
    fn oversized_message_loses_framing() {
        let (mut s, mut peer) = pair();
        let mut out = [0u8; MAX_STREAM_MESSAGE];
        let mut m = message(1, 8);
        RpcHeader::new_unchecked(&mut m[..])
            .set_length((MAX_STREAM_MESSAGE - HEADER_LEN + 1) as u32);
        peer.write_all(&m).unwrap();
        let e = s.recv(&mut out).unwrap_err();
        assert!(e.to_string().contains("more than 65536"), "{e}");
    }
}
