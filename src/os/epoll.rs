//! A level-triggered epoll set, for the kernel stream servers: one thread watches its
//! listener and every connection it holds, so an idle, half-sent or never-reading client
//! costs a slot in the set and nothing else. Tokens are the caller's (a connection index).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::socket::cvt;

/// What to be woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Nothing (the fd stays in the set; hang-ups and errors are still reported).
    None,
    Read,
    Write,
    /// Both: a relay's upstream keeps reading replies while its requests wait to be written.
    ReadWrite,
}

impl Interest {
    fn bits(self) -> u32 {
        match self {
            Interest::None => 0,
            Interest::Read => libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32,
            Interest::Write => libc::EPOLLOUT as u32,
            Interest::ReadWrite => Interest::Read.bits() | Interest::Write.bits(),
        }
    }
}

/// One readiness report: the token given at `add`, and what the fd is ready for. A
/// hang-up or an error counts as both readable and writable, so the next read or write
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
}

pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    /// A set reporting at most `batch` fds per wait.
    pub fn new(batch: usize) -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd is a new epoll fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; batch.max(1)];
        Ok(Epoll { fd, events })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, bits: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: bits,
            u64: token,
        };
        // SAFETY: ev is a live epoll_event the kernel only reads.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    pub fn add(&self, fd: &impl AsRawFd, token: u64, i: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd.as_raw_fd(), i.bits(), token)
    }

    pub fn modify(&self, fd: &impl AsRawFd, token: u64, i: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd.as_raw_fd(), i.bits(), token)
    }

    /// Removes `fd` from the set (closing it does too, once no duplicate of it is open).
    pub fn delete(&self, fd: &impl AsRawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), 0, 0)
    }

    /// Waits up to `timeout` (zero: just looks) and returns the ready fds. An interrupted
    /// wait returns none.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<impl Iterator<Item = Ready> + '_> {
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        let cap = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: events has room for `cap` entries, which is all the kernel writes.
        let n = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), self.events.as_mut_ptr(), cap, ms) };
        let n = match cvt(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        let gone = (libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP) as u32;
        Ok(self.events[..n].iter().map(move |ev| {
            let bits = ev.events;
            Ready {
                token: ev.u64,
                readable: bits & (libc::EPOLLIN as u32 | gone) != 0,
                writable: bits & (libc::EPOLLOUT as u32 | gone) != 0,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_readable_writable_and_hangup() {
        let (mut a, b) = UnixStream::pair().unwrap();
        let mut ep = Epoll::new(8).unwrap();
        ep.add(&b, 7, Interest::Read).unwrap();
        assert_eq!(ep.wait(Duration::ZERO).unwrap().count(), 0);
        a.write_all(b"x").unwrap();
        let r: Vec<Ready> = ep.wait(Duration::from_secs(1)).unwrap().collect();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].token, r[0].readable), (7, true));
        ep.modify(&b, 9, Interest::Write).unwrap();
        let r: Vec<Ready> = ep.wait(Duration::from_secs(1)).unwrap().collect();
        assert_eq!((r[0].token, r[0].writable, r[0].readable), (9, true, false));
        ep.modify(&b, 9, Interest::None).unwrap();
        assert_eq!(ep.wait(Duration::ZERO).unwrap().count(), 0);
        drop(a);
        let r: Vec<Ready> = ep.wait(Duration::from_secs(1)).unwrap().collect();
        assert!(
            r[0].readable && r[0].writable,
            "a hang-up wakes any interest"
        );
        let mut buf = [0u8; 4];
        assert_eq!((&b).read(&mut buf).unwrap(), 1);
        ep.delete(&b).unwrap();
        assert_eq!(ep.wait(Duration::ZERO).unwrap().count(), 0);
    }
}
