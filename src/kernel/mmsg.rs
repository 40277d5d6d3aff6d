//! UDP `batch` backend: recvmmsg/sendmmsg over buffers allocated once per thread.
//!
//! The receive blocks (with the socket's read timeout, so a stop request is noticed) until
//! the first datagram arrives; MSG_WAITFORONE then takes whatever else is already queued,
//! up to the batch size, without waiting. All replies of a batch leave in one sendmmsg and
//! carry one `server_ns`, read after the last request was handled (like the fast path's
//! one stamp per vector).

use std::io;
use std::time::Instant;

use crate::os::mmsg::MmsgBatch;
use crate::os::signal;

use super::counters::{Counters, DropReason};
use super::handler::{elapsed_ns, stamp, Handler, Protocol};
use super::udp::{is_retry, Endpoint, DATAGRAM_BUF};

/// Largest batch: the kernel's UIO_MAXIOV limit on the vector length.
pub const MAX_BATCH: usize = 1024;

/// One recvmmsg; returns how many datagrams arrived (0 on timeout or signal).
fn recv(b: &mut MmsgBatch, ep: &Endpoint) -> io::Result<usize> {
    match b.recv(&ep.sock) {
        Ok(got) => Ok(got),
        Err(e) if is_retry(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

/// Answers the `got` datagrams in place and queues the replies; returns how many are queued.
fn answer(
    b: &mut MmsgBatch,
    got: usize,
    ep: &Endpoint,
    h: &mut Handler,
    c: &mut Counters,
) -> usize {
    for i in 0..got {
        c.rx += 1;
        match h.answer(ep.proto, b.datagram_mut(i)) {
            Err(why) => c.drop(why),
            Ok(reply_len) => b.queue_reply(i, reply_len),
        }
    }
    b.queued()
}

/// Stamps the `m` queued RPC replies with one `server_ns`.
fn stamp_all(b: &mut MmsgBatch, m: usize, server_ns: u32) {
    for k in 0..m {
        stamp(b.reply_mut(k), server_ns);
    }
}

/// Sends the `m` queued replies, retrying past a datagram the kernel refused.
fn send(b: &mut MmsgBatch, ep: &Endpoint, m: usize, c: &mut Counters) {
    let mut done = 0;
    while done < m {
        match b.send(&ep.sock, done) {
            Ok(sent) if sent > 0 => {
                c.tx += sent as u64;
                done += sent;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted && !signal::stop_requested() => {
                continue
            }
            _ => {}
        }
        // The first queued datagram failed: count it, go on with the rest.
        c.drop(DropReason::SendError);
        done += 1;
    }
}

/// Batch backend on `ep`, `n` messages per call; `ep.sock` carries a read timeout.
pub fn serve_batch(ep: &Endpoint, n: usize, h: &mut Handler, c: &mut Counters) -> io::Result<()> {
    let mut b = MmsgBatch::new(n, DATAGRAM_BUF);
    while !signal::stop_requested() {
        let got = recv(&mut b, ep)?;
        if got == 0 {
            continue;
        }
        let t_rx = Instant::now();
        let m = answer(&mut b, got, ep, h, c);
        if m == 0 {
            continue;
        }
        if ep.proto == Protocol::Rpc {
            stamp_all(&mut b, m, elapsed_ns(t_rx));
        }
        send(&mut b, ep, m, c);
    }
    Ok(())
}
