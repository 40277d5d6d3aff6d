//! UDP `batch` backend: recvmmsg/sendmmsg over buffers allocated once per thread.
//!
//! The receive blocks (with the socket's read timeout, so a stop request is noticed) until
//! the first datagram arrives; MSG_WAITFORONE then takes whatever else is already queued,
//! up to the batch size, without waiting. All replies of a batch leave in one sendmmsg and
//! carry one `server_ns`, read after the last request was handled (like the fast path's
//! one stamp per vector).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use crate::shutdown;

use super::counters::{Counters, DropReason};
use super::handler::{elapsed_ns, stamp, Handler, Protocol};
use super::udp::{is_retry, Endpoint, DATAGRAM_BUF};

/// Largest batch: the kernel's UIO_MAXIOV limit on the vector length.
pub const MAX_BATCH: usize = 1024;

/// The message vectors handed to the kernel. The headers point into `bufs`, `addrs` and
/// the iovec arrays, all boxed slices that never move or grow after `new`.
struct Batch {
    bufs: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    rx_iov: Box<[libc::iovec]>,
    rx: Box<[libc::mmsghdr]>,
    tx_iov: Box<[libc::iovec]>,
    tx: Box<[libc::mmsghdr]>,
}

const ADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// `n` all-zero values of `T`.
///
/// # Safety
/// All zeroes must be a valid `T` (plain C structs of integers and raw pointers).
unsafe fn zeroed<T>(n: usize) -> Box<[T]> {
    // SAFETY: the caller promises all-zero bytes are a valid T.
    (0..n).map(|_| unsafe { std::mem::zeroed() }).collect()
}

impl Batch {
    fn new(n: usize) -> Batch {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all
        // zeroes (null pointers, zero lengths) is a valid value.
        let (addrs, rx_iov, rx, tx_iov, tx) =
            unsafe { (zeroed(n), zeroed(n), zeroed(n), zeroed(n), zeroed(n)) };
        let mut b = Batch {
            bufs: vec![0u8; n * DATAGRAM_BUF].into_boxed_slice(),
            addrs,
            rx_iov,
            rx,
            tx_iov,
            tx,
        };
        let base = b.bufs.as_mut_ptr();
        for i in 0..n {
            b.rx_iov[i] = libc::iovec {
                // SAFETY: i * DATAGRAM_BUF is inside `bufs` (n slots of DATAGRAM_BUF bytes).
                iov_base: unsafe { base.add(i * DATAGRAM_BUF) }.cast(),
                iov_len: DATAGRAM_BUF,
            };
            let m = &mut b.rx[i].msg_hdr;
            m.msg_name = (&mut b.addrs[i] as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = ADDR_LEN;
            m.msg_iov = &mut b.rx_iov[i];
            m.msg_iovlen = 1;
            let t = &mut b.tx[i].msg_hdr;
            t.msg_iov = &mut b.tx_iov[i];
            t.msg_iovlen = 1;
        }
        b
    }

    /// One recvmmsg; returns how many datagrams arrived (0 on timeout or signal).
    fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for m in self.rx.iter_mut() {
            // The kernel overwrites these on every call.
            m.msg_hdr.msg_namelen = ADDR_LEN;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
        // SAFETY: `rx` holds rx.len() headers whose pointers reference live buffers owned
        // by self, sized as the iovecs and namelens say.
        let got = unsafe {
            libc::recvmmsg(
                fd,
                self.rx.as_mut_ptr(),
                self.rx.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            return if is_retry(&e) { Ok(0) } else { Err(e) };
        }
        Ok(got as usize)
    }

    /// Answers the `got` datagrams in place and queues the replies in `tx`; returns how
    /// many replies are queued.
    fn answer(&mut self, got: usize, ep: &Endpoint, h: &Handler, c: &mut Counters) -> usize {
        let mut m = 0;
        for i in 0..got {
            c.rx += 1;
            let len = self.rx[i].msg_len as usize;
            let slot = &mut self.bufs[i * DATAGRAM_BUF..i * DATAGRAM_BUF + len];
            match h.answer(ep.proto, slot) {
                Err(why) => c.drop(why),
                Ok(reply_len) => {
                    self.tx_iov[m] = libc::iovec {
                        iov_base: slot.as_mut_ptr().cast(),
                        iov_len: reply_len,
                    };
                    let t = &mut self.tx[m].msg_hdr;
                    t.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                    t.msg_namelen = self.rx[i].msg_hdr.msg_namelen;
                    m += 1;
                }
            }
        }
        m
    }

    /// Stamps the `m` queued RPC replies with one `server_ns`.
    fn stamp(&mut self, m: usize, server_ns: u32) {
        for iov in &self.tx_iov[..m] {
            // SAFETY: each queued iovec points at a reply inside `bufs` of iov_len bytes,
            // and no other reference to those bytes is live.
            let reply =
                unsafe { std::slice::from_raw_parts_mut(iov.iov_base.cast::<u8>(), iov.iov_len) };
            stamp(reply, server_ns);
        }
    }

    /// Sends the `m` queued replies, retrying past a datagram the kernel refused.
    fn send(&mut self, fd: RawFd, m: usize, c: &mut Counters) {
        let mut done = 0;
        while done < m {
            // SAFETY: tx[done..m] are initialised headers pointing at live replies and
            // peer addresses owned by self.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    self.tx.as_mut_ptr().add(done),
                    (m - done) as libc::c_uint,
                    0,
                )
            };
            if sent > 0 {
                c.tx += sent as u64;
                done += sent as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            if sent < 0 && e.kind() == io::ErrorKind::Interrupted && !shutdown::requested() {
                continue;
            }
            // The first queued datagram failed: count it, go on with the rest.
            c.drop(DropReason::SendError);
            done += 1;
        }
    }
}

/// Batch backend on `ep`, `n` messages per call; `ep.sock` carries a read timeout.
pub fn serve_batch(ep: &Endpoint, n: usize, h: &Handler, c: &mut Counters) -> io::Result<()> {
    let fd = ep.sock.as_raw_fd();
    let mut b = Batch::new(n);
    while !shutdown::requested() {
        let got = b.recv(fd)?;
        if got == 0 {
            continue;
        }
        let t_rx = Instant::now();
        let m = b.answer(got, ep, h, c);
        if m == 0 {
            continue;
        }
        if ep.proto == Protocol::Rpc {
            b.stamp(m, elapsed_ns(t_rx));
        }
        b.send(fd, m, c);
    }
    Ok(())
}
