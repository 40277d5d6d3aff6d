//! The socket calls std does not expose: a UDP bind with SO_REUSEPORT set before it,
//! SO_BUSY_POLL, SO_RCVTIMEO on any socket (Linux applies it to `accept`, which std
//! offers no timeout for), and SO_LINGER 0 (a close that resets, for tests of abusive
//! clients).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::time::Duration;

/// A negative return from libc is the thread's errno.
pub(super) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live T of the size passed; the kernel only reads it.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// The C form of `addr`, for bind.
fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// A UDP socket bound to `addr`; with `reuseport`, SO_REUSEPORT is set before the bind so
/// that several sockets (one per thread) share the port and the kernel spreads flows
/// over them.
pub fn bind_udp(addr: SocketAddr, reuseport: bool) -> io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: socket() takes no pointers.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd is a new socket nobody else owns; the UdpSocket closes it on every path.
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    if reuseport {
        setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            &(1 as libc::c_int),
        )?;
    }
    let (ss, len) = sockaddr(addr);
    // SAFETY: ss holds a sockaddr of `len` bytes for the socket's family.
    cvt(unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) })?;
    Ok(sock)
}

/// SO_BUSY_POLL: the kernel busy-polls the device queue for up to `us` microseconds before
/// sleeping in a blocking receive. Raising it needs CAP_NET_ADMIN (EPERM otherwise).
pub fn set_busy_poll(fd: &impl AsRawFd, us: u32) -> io::Result<()> {
    let us = libc::c_int::try_from(us).unwrap_or(libc::c_int::MAX);
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_BUSY_POLL, &us)
}

/// SO_LINGER with a zero timeout: closing the socket then resets the connection (TCP sends
/// an RST) instead of the orderly close, as a crashing or impatient client does.
pub fn set_linger_zero(fd: &impl AsRawFd) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, &l)
}

/// SO_RCVTIMEO on any socket; on a listening socket it bounds `accept`.
pub fn set_recv_timeout(fd: &impl AsRawFd, t: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuseport_sockets_share_a_port() {
        let a = bind_udp("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = a.local_addr().unwrap();
        let b = bind_udp(addr, true).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        // Without the option the port is taken.
        let plain = bind_udp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        let taken = bind_udp(plain.local_addr().unwrap(), false).unwrap_err();
        assert_eq!(taken.kind(), io::ErrorKind::AddrInUse);
        set_recv_timeout(&a, Duration::from_millis(5)).unwrap();
        let mut buf = [0u8; 4];
        let e = a.recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn linger_zero_close_resets() {
        use std::io::Read;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        set_linger_zero(&c).unwrap();
        drop(c);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let e = s.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn v6_bind() {
        // Loopback v6 may be disabled in a container; only check the conversion then.
        if let Ok(s) = bind_udp("[::1]:0".parse().unwrap(), false) {
            assert!(s.local_addr().unwrap().is_ipv6());
        }
    }
}
