//! UDP backends with one datagram per syscall: `blocking` (a blocking recv with a short
//! timeout, so the thread notices a stop request) and `busy` (non-blocking sockets polled
//! in a loop, the fair kernel baseline).

use std::io::{self, ErrorKind};
use std::net::UdpSocket;
use std::time::Instant;

use crate::os::signal;

use super::counters::Counters;
use super::handler::{elapsed_ns, stamp, Handler, Protocol};

/// Receive buffer: larger than any UDP payload (65507), so no datagram is cut.
pub const DATAGRAM_BUF: usize = 65_536;

/// One socket and the protocol it speaks.
pub struct Endpoint {
    pub sock: UdpSocket,
    pub proto: Protocol,
}

/// Errors a receive loop just retries: timeout (a stop check is due), no data yet
/// (non-blocking), a signal.
#[inline]
pub fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// Answers the datagram in `buf[..n]` from `from` and counts the outcome.
#[inline]
fn serve_one(
    ep: &Endpoint,
    h: &mut Handler,
    buf: &mut [u8],
    from: std::net::SocketAddr,
    t_rx: Instant,
    c: &mut Counters,
) {
    c.rx += 1;
    match h.answer(ep.proto, buf) {
        Err(why) => c.drop(why),
        Ok(len) => {
            let reply = &mut buf[..len];
            if ep.proto == Protocol::Rpc {
                stamp(reply, elapsed_ns(t_rx));
            }
            loop {
                match ep.sock.send_to(reply, from) {
                    Ok(_) => {
                        c.tx += 1;
                        break;
                    }
                    // A full socket buffer on a non-blocking socket: wait it out.
                    Err(e) if is_retry(&e) && !signal::stop_requested() => {}
                    Err(_) => {
                        c.drop(super::counters::DropReason::SendError);
                        break;
                    }
                }
            }
        }
    }
}

/// Blocking backend: `ep.sock` must carry a read timeout (the stop check interval).
pub fn serve_blocking(ep: &Endpoint, h: &mut Handler, c: &mut Counters) -> io::Result<()> {
    let mut buf = vec![0u8; DATAGRAM_BUF];
    while !signal::stop_requested() {
        match ep.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let t_rx = Instant::now();
                serve_one(ep, h, &mut buf[..n], from, t_rx, c);
            }
            Err(e) if is_retry(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Busy backend: every socket in `eps` is non-blocking; each loop turn tries each once.
pub fn serve_busy(eps: &[Endpoint], h: &mut Handler, c: &mut Counters) -> io::Result<()> {
    let mut buf = vec![0u8; DATAGRAM_BUF];
    while !signal::stop_requested() {
        for ep in eps {
            match ep.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let t_rx = Instant::now();
                    serve_one(ep, h, &mut buf[..n], from, t_rx, c);
                }
                Err(e) if is_retry(&e) => core::hint::spin_loop(),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
