//! One stream connection of the relay (a client's, or a pooled upstream one): its socket, its
//! partial message between reads, and a bounded buffer of the messages its peer has not taken
//! yet. The buffer is allocated once per connection; a message that does not fit is refused
//! (`backpressure`) rather than grown into, so a peer that stops reading costs at most
//! [`OUT_CAP`] bytes.

use std::io::{self, ErrorKind, Write};

use crate::kernel::conn::Sock;
use crate::kernel::framing::{Partial, MAX_MESSAGE};
use crate::kernel::udp::is_retry;

use super::counters::RelayDrop;

/// Bytes a connection may hold for its peer: four largest messages.
pub const OUT_CAP: usize = 4 * MAX_MESSAGE;

pub struct RelayConn {
    pub sock: Sock,
    pub partial: Partial,
    /// Waiting bytes: `out[out_at..]`.
    out: Vec<u8>,
    out_at: usize,
}

impl RelayConn {
    pub fn new(sock: Sock) -> RelayConn {
        RelayConn {
            sock,
            partial: Partial::default(),
            out: Vec::with_capacity(OUT_CAP),
            out_at: 0,
        }
    }

    /// Whether bytes wait for the peer (so the connection wants to be told it is writable).
    pub fn is_writing(&self) -> bool {
        self.out_at < self.out.len()
    }

    /// Sends `msg` now as far as the socket takes it and keeps the rest; refuses it whole
    /// when the buffer cannot hold it. A broken connection shows on its next read.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<(), RelayDrop> {
        if self.is_writing() {
            return self.hold(msg);
        }
        let mut at = 0;
        while at < msg.len() {
            match self.sock.write(&msg[at..]) {
                Ok(0) => return Err(RelayDrop::SendError),
                Ok(k) => at += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_retry(&e) => break,
                Err(_) => return Err(RelayDrop::SendError),
            }
        }
        if at < msg.len() {
            // Part of it is on the wire: the rest must follow, so it is held whatever its size
            // (the buffer is empty, and a message is at most a quarter of it).
            self.out.extend_from_slice(&msg[at..]);
        }
        Ok(())
    }

    fn hold(&mut self, msg: &[u8]) -> Result<(), RelayDrop> {
        if self.out.len() - self.out_at + msg.len() > OUT_CAP {
            return Err(RelayDrop::Backpressure);
        }
        if self.out.len() + msg.len() > OUT_CAP {
            self.out.drain(..self.out_at);
            self.out_at = 0;
        }
        self.out.extend_from_slice(msg);
        Ok(())
    }

    /// Writes waiting bytes as far as the socket takes them.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.is_writing() {
            match self.sock.write(&self.out[self.out_at..]) {
                Ok(0) => return Err(io::Error::from(ErrorKind::WriteZero)),
                Ok(k) => self.out_at += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_retry(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.out_at = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_peer_that_does_not_read_meets_backpressure_not_growth() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut c = RelayConn::new(Sock::Unix(a));
        let msg = vec![7u8; MAX_MESSAGE];
        let mut refused = 0;
        for _ in 0..64 {
            if c.send(&msg) == Err(RelayDrop::Backpressure) {
                refused += 1;
            }
        }
        assert!(refused > 0 && c.is_writing());
        assert!(c.out.capacity() <= OUT_CAP + MAX_MESSAGE, "bounded");
        b.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        for _ in 0..10_000 {
            match b.read(&mut buf) {
                Ok(n) => got += n,
                Err(_) => {
                    c.flush().unwrap();
                    if !c.is_writing() && b.read(&mut buf).map(|n| got += n).is_err() {
                        break;
                    }
                }
            }
        }
        assert_eq!(
            got,
            (64 - refused) * MAX_MESSAGE,
            "every accepted byte arrives"
        );
        assert!(buf[..16].iter().all(|&x| x == 7));
    }
}
