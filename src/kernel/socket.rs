//! The kernel servers' socket policy over `os::socket`: how long to busy-poll, that a
//! refused busy-poll is no error, and pinning a server thread to its CPU.

use std::io;
use std::os::fd::AsRawFd;

pub use crate::os::socket::bind_udp;

/// Microseconds the kernel may busy-poll the device queue in a blocking receive.
pub const BUSY_POLL_US: u32 = 50;

/// Asks the kernel to busy-poll the device queue for a while before sleeping in a
/// receive. Raising it needs CAP_NET_ADMIN: returns Ok(false) when refused (EPERM), as
/// the option is an optimisation only. On loopback there is no device queue to poll.
pub fn set_busy_poll(fd: &impl AsRawFd) -> io::Result<bool> {
    match crate::os::socket::set_busy_poll(fd, BUSY_POLL_US) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) -> io::Result<()> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "could not pin a thread to cpu {cpu}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::socket::set_recv_timeout;
    use std::time::Duration;

    #[test]
    fn busy_poll_is_set_or_refused_quietly() {
        let a = bind_udp("127.0.0.1:0".parse().unwrap(), true).unwrap();
        assert!(set_busy_poll(&a).is_ok());
        set_recv_timeout(&a, Duration::from_millis(5)).unwrap();
        let mut buf = [0u8; 4];
        let e = a.recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
