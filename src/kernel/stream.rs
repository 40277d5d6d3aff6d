//! TCP and unix stream backends. Each worker thread accepts a connection and serves it
//! alone until it closes, then accepts the next: one connection is always served by one
//! thread, and at most `--threads` connections are served at once (more wait in the
//! listen backlog).
//!
//! A read takes whatever bytes are there; every whole message in them is answered and the
//! replies leave in one write; a partial message stays at the front of the buffer for the
//! next read. `blocking` reads with a 100 ms timeout (to notice a stop request); `busy`
//! spins on non-blocking sockets. Buffers are allocated once per thread.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use crate::os::signal;

use super::counters::{Counters, DropReason};
use super::framing::{message_len, next_frame, Frame, MAX_MESSAGE};
use super::handler::{elapsed_ns, stamp, Handler, Protocol};
use super::socket::{set_busy_poll, set_recv_timeout};
use super::udp::is_retry;

/// How long a blocking accept, read or write waits before checking for a stop request.
pub const STOP_CHECK: Duration = Duration::from_millis(100);
/// Room for a whole maximal message behind a partial one, and for many small ones.
const BUF: usize = 2 * MAX_MESSAGE;

pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
        })
    }

    /// Blocking: accept waits at most [`STOP_CHECK`]. Busy: accept never waits.
    pub fn configure(&self, busy: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(busy)?,
            Listener::Unix(l) => l.set_nonblocking(busy)?,
        }
        if !busy {
            set_recv_timeout(self, STOP_CHECK)?;
        }
        Ok(())
    }

    fn accept(&self) -> io::Result<Conn> {
        Ok(match self {
            Listener::Tcp(l) => Conn::Tcp(l.accept()?.0),
            Listener::Unix(l) => Conn::Unix(l.accept()?.0),
        })
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

impl Conn {
    fn configure(&self, busy: bool) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(busy)?;
                if busy {
                    set_busy_poll(s)?;
                } else {
                    s.set_read_timeout(Some(STOP_CHECK))?;
                    s.set_write_timeout(Some(STOP_CHECK))?;
                }
            }
            Conn::Unix(s) => {
                s.set_nonblocking(busy)?;
                if !busy {
                    s.set_read_timeout(Some(STOP_CHECK))?;
                    s.set_write_timeout(Some(STOP_CHECK))?;
                }
            }
        }
        Ok(())
    }
}

impl Read for Conn {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Per-thread state, reused by every connection the thread serves.
struct Buffers {
    rx: Box<[u8]>,
    tx: Box<[u8]>,
}

/// A disconnect the client caused: normal, not an error.
fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Accepts and serves connections until a stop request; counts accepted connections.
pub fn serve(
    listener: &Listener,
    busy: bool,
    h: &Handler,
    c: &mut Counters,
    connections: &mut u64,
) -> io::Result<()> {
    let mut bufs = Buffers {
        rx: vec![0u8; BUF].into_boxed_slice(),
        tx: vec![0u8; BUF].into_boxed_slice(),
    };
    while !signal::stop_requested() {
        match listener.accept() {
            Ok(mut conn) => {
                *connections += 1;
                if let Err(e) = conn.configure(busy) {
                    eprintln!("bypass kernel-serve: configuring a connection: {e}");
                    continue;
                }
                serve_conn(&mut conn, busy, h, c, &mut bufs);
            }
            Err(e) if is_retry(&e) || e.kind() == ErrorKind::ConnectionAborted => {
                if busy {
                    core::hint::spin_loop();
                }
            }
            Err(e) => {
                // E.g. out of file descriptors: say so, back off, keep serving.
                eprintln!("bypass kernel-serve: accept: {e}");
                std::thread::sleep(STOP_CHECK);
            }
        }
    }
    Ok(())
}

/// Serves one connection until the peer closes it, it breaks the framing, or a stop.
fn serve_conn(conn: &mut Conn, busy: bool, h: &Handler, c: &mut Counters, b: &mut Buffers) {
    let mut filled = 0;
    while !signal::stop_requested() {
        let n = match conn.read(&mut b.rx[filled..]) {
            Ok(0) => {
                if filled > 0 {
                    // The peer closed inside a message.
                    c.rx += 1;
                    c.drop(DropReason::Truncated);
                }
                return;
            }
            Ok(n) => n,
            Err(e) if is_retry(&e) => {
                if busy {
                    core::hint::spin_loop();
                }
                continue;
            }
            Err(e) if is_peer_gone(&e) => return,
            Err(e) => {
                eprintln!("bypass kernel-serve: read: {e}");
                return;
            }
        };
        let t_rx = Instant::now();
        filled += n;
        let mut pos = 0;
        let mut out = 0;
        let mut close = false;
        loop {
            match next_frame(&b.rx[pos..filled]) {
                Frame::Incomplete => break,
                Frame::Close(why) => {
                    c.rx += 1;
                    c.drop(why);
                    close = true;
                    break;
                }
                Frame::Message(len) => {
                    c.rx += 1;
                    let msg = &mut b.rx[pos..pos + len];
                    pos += len;
                    match h.answer(Protocol::Rpc, msg) {
                        Err(why) => c.drop(why),
                        Ok(reply_len) => {
                            // Replies are never longer than their requests, so `out`
                            // never passes `pos` and the tx buffer cannot overflow.
                            b.tx[out..out + reply_len].copy_from_slice(&msg[..reply_len]);
                            out += reply_len;
                        }
                    }
                }
            }
        }
        if out > 0 {
            let server_ns = elapsed_ns(t_rx);
            let mut at = 0;
            while at < out {
                let len = message_len(&b.tx[at..out]);
                stamp(&mut b.tx[at..at + len], server_ns);
                at += len;
            }
            if !write_replies(conn, &b.tx[..out], busy, c) {
                return;
            }
        }
        if close {
            return;
        }
        b.rx.copy_within(pos..filled, 0);
        filled -= pos;
    }
}

/// Writes `replies` completely; false if the connection is gone. Replies that could not
/// be written are counted as drops, those written as tx.
fn write_replies(conn: &mut Conn, replies: &[u8], busy: bool, c: &mut Counters) -> bool {
    let mut written = 0;
    let failed = loop {
        if written == replies.len() {
            break None;
        }
        match conn.write(&replies[written..]) {
            Ok(0) => break Some(DropReason::PeerClosed),
            Ok(k) => written += k,
            Err(e) if is_retry(&e) => {
                if signal::stop_requested() {
                    break Some(DropReason::SendError);
                }
                if busy {
                    core::hint::spin_loop();
                }
            }
            Err(e) if is_peer_gone(&e) => break Some(DropReason::PeerClosed),
            Err(e) => {
                eprintln!("bypass kernel-serve: write: {e}");
                break Some(DropReason::SendError);
            }
        }
    };
    let mut at = 0;
    while at < replies.len() {
        at += message_len(&replies[at..]);
        match failed {
            Some(why) if at > written => c.drop(why),
            _ => c.tx += 1,
        }
    }
    failed.is_none()
}
