//! recvmmsg/sendmmsg over message vectors allocated once: a batch of datagram slots, their
//! peer addresses, iovecs and headers, all boxed slices that never move or grow after `new`,
//! so a receive or a send is one syscall and allocates nothing.
//!
//! A reply is queued from the slot of the datagram it answers and goes back to that
//! datagram's sender; the replies leave in as few sendmmsg calls as the kernel allows.

use std::io;
use std::os::fd::AsRawFd;

const ADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

/// A batch of `capacity` datagram slots of `slot_len` bytes each, with the headers the kernel
/// reads and fills. The headers point into the slices owned here, never elsewhere.
pub struct MmsgBatch {
    slot_len: usize,
    bufs: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    rx_iov: Box<[libc::iovec]>,
    rx: Box<[libc::mmsghdr]>,
    tx_iov: Box<[libc::iovec]>,
    tx: Box<[libc::mmsghdr]>,
    /// The slot each queued reply lives in.
    tx_slot: Box<[usize]>,
    received: usize,
    queued: usize,
}

/// `n` all-zero values of `T`.
///
/// # Safety
/// All zeroes must be a valid `T` (plain C structs of integers and raw pointers).
unsafe fn zeroed<T>(n: usize) -> Box<[T]> {
    // SAFETY: the caller promises all-zero bytes are a valid T.
    (0..n).map(|_| unsafe { std::mem::zeroed() }).collect()
}

impl MmsgBatch {
    /// `capacity` slots of `slot_len` bytes; this is the only allocation.
    pub fn new(capacity: usize, slot_len: usize) -> MmsgBatch {
        // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all
        // zeroes (null pointers, zero lengths) is a valid value.
        let (addrs, rx_iov, rx, tx_iov, tx) = unsafe {
            (
                zeroed(capacity),
                zeroed(capacity),
                zeroed(capacity),
                zeroed(capacity),
                zeroed(capacity),
            )
        };
        let mut b = MmsgBatch {
            slot_len,
            bufs: vec![0u8; capacity * slot_len].into_boxed_slice(),
            addrs,
            rx_iov,
            rx,
            tx_iov,
            tx,
            tx_slot: vec![0; capacity].into_boxed_slice(),
            received: 0,
            queued: 0,
        };
        b.link();
        b
    }

    /// Points every header at its slot, address and iovec.
    fn link(&mut self) {
        for (i, slot) in self.bufs.chunks_exact_mut(self.slot_len.max(1)).enumerate() {
            self.rx_iov[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: self.slot_len,
            };
        }
        for i in 0..self.rx.len() {
            let m = &mut self.rx[i].msg_hdr;
            m.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            m.msg_namelen = ADDR_LEN;
            m.msg_iov = &mut self.rx_iov[i];
            m.msg_iovlen = 1;
            let t = &mut self.tx[i].msg_hdr;
            t.msg_iov = &mut self.tx_iov[i];
            t.msg_iovlen = 1;
        }
    }

    pub fn capacity(&self) -> usize {
        self.rx.len()
    }

    /// One recvmmsg with MSG_WAITFORONE: blocks (up to the socket's read timeout) for the
    /// first datagram, then takes whatever else is queued without waiting. Returns how many
    /// arrived; the queued replies of the previous batch are forgotten.
    pub fn recv(&mut self, fd: &impl AsRawFd) -> io::Result<usize> {
        self.received = 0;
        self.queued = 0;
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
                fd.as_raw_fd(),
                self.rx.as_mut_ptr(),
                self.rx.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = (got as usize).min(self.rx.len());
        Ok(self.received)
    }

    /// The `i`-th datagram of the last receive (empty past the last one).
    pub fn datagram_mut(&mut self, i: usize) -> &mut [u8] {
        if i >= self.received {
            return &mut [];
        }
        let len = (self.rx[i].msg_len as usize).min(self.slot_len);
        let start = i * self.slot_len;
        &mut self.bufs[start..start + len]
    }

    /// Queues the first `len` bytes of datagram `i`'s slot as a reply to its sender.
    /// A datagram not received or a full queue is ignored; `len` is cut to the slot.
    pub fn queue_reply(&mut self, i: usize, len: usize) {
        if i >= self.received || self.queued >= self.tx.len() {
            return;
        }
        let m = self.queued;
        let start = i * self.slot_len;
        self.tx_iov[m] = libc::iovec {
            iov_base: self.bufs[start..].as_mut_ptr().cast(),
            iov_len: len.min(self.slot_len),
        };
        self.tx_slot[m] = i;
        let t = &mut self.tx[m].msg_hdr;
        t.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
        t.msg_namelen = self.rx[i].msg_hdr.msg_namelen;
        self.queued += 1;
    }

    /// How many replies are queued.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// The `k`-th queued reply (empty past the last one), to finish it before it is sent.
    pub fn reply_mut(&mut self, k: usize) -> &mut [u8] {
        if k >= self.queued {
            return &mut [];
        }
        let start = self.tx_slot[k] * self.slot_len;
        &mut self.bufs[start..start + self.tx_iov[k].iov_len]
    }

    /// One sendmmsg of the queued replies from the `from`-th on; returns how many the kernel
    /// took (0 or an error: the `from`-th was refused).
    pub fn send(&mut self, fd: &impl AsRawFd, from: usize) -> io::Result<usize> {
        if from >= self.queued {
            return Ok(0);
        }
        // SAFETY: tx[from..queued] are initialised headers pointing at live replies and
        // peer addresses owned by self; `from` is inside tx.
        let sent = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.tx.as_mut_ptr().add(from),
                (self.queued - from) as libc::c_uint,
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn client(to: &UdpSocket, msg: &[u8]) -> UdpSocket {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.send_to(msg, to.local_addr().unwrap()).unwrap();
        c
    }

    #[test]
    fn one_receive_takes_the_queue_and_replies_reach_each_sender() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let a = client(&server, b"aaaa");
        let b = client(&server, b"bb");
        // Loopback delivers at once; the pause only makes sure both are queued.
        std::thread::sleep(Duration::from_millis(50));
        let mut batch = MmsgBatch::new(4, 16);
        assert_eq!(batch.recv(&server).unwrap(), 2);
        for i in 0..2 {
            let d = batch.datagram_mut(i);
            d[0] = b'R';
            let len = d.len();
            batch.queue_reply(i, len);
        }
        assert!(batch.datagram_mut(2).is_empty());
        assert_eq!(batch.reply_mut(1), b"Rb");
        assert!(batch.reply_mut(2).is_empty());
        assert_eq!(batch.send(&server, 0).unwrap(), 2);
        let mut buf = [0u8; 16];
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"Raaa");
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"Rb");
        assert_eq!(batch.send(&server, 2).unwrap(), 0);
    }
}
