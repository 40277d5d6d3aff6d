//! How requests travel. The measuring loop in `engine` sees only [`RpcTransport`]: one RPC
//! message (header + payload) out, one in, with socket semantics, so the kernel sockets and
//! the DPDK port are measured by the same code.

use std::io;
use std::net::UdpSocket;
use std::time::Duration;

use super::config::{LoadConfig, Transport};
use super::stream;
use super::LoadError;
use crate::options::{ChecksumChoice, WaitMode};
use crate::os::Clock;

/// A message pipe to one RPC server.
///
/// `recv` follows socket conventions: `WouldBlock`, `TimedOut` or `Interrupted` mean "nothing
/// yet" (busy: nothing queued; blocking: the short wait ran out so the engine can expire lost
/// requests and watch the clock); `ConnectionRefused` means an earlier request was refused
/// (counted, the run goes on); any other error ends the run.
pub trait RpcTransport {
    /// Sends one whole message. An error leaves the request in flight until it times out.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;
    /// Receives one whole message into `buf` and returns its length.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Receives one message and hands it to `f` with its arrival time on `clock`. By
    /// default: `recv` into `buf`, then an ordered clock read. A transport that receives in
    /// bursts stamps the burst as it arrives (later messages are not charged for the work on
    /// earlier ones) and may hand its own buffer over instead of copying into `buf`.
    #[inline]
    fn recv_with(
        &mut self,
        buf: &mut [u8],
        clock: &Clock,
        f: &mut dyn FnMut(&[u8], u64),
    ) -> io::Result<()> {
        let n = self.recv(buf)?;
        let at = clock.now_ns_ordered();
        f(&buf[..n], at);
        Ok(())
    }

    /// How this transport checks replies' checksums, for the report; None where the kernel
    /// does (sockets).
    fn checksum(&self) -> Option<&ChecksumChoice> {
        None
    }
}

/// How long a blocking wait lasts before the engine gets control back: short enough to expire
/// lost requests on time, to give a window slot up near its slot deadline, and to stop at the
/// end of the run.
pub fn blocking_wait(cfg: &LoadConfig) -> Duration {
    (cfg.timeout / 4)
        .min(cfg.effective_slot_deadline() / 2)
        .clamp(Duration::from_millis(1), Duration::from_millis(100))
}

pub(crate) fn io_err(what: &str, e: io::Error) -> LoadError {
    LoadError::Io(format!("{what}: {e}"))
}

/// A connected kernel UDP socket.
pub struct Udp(UdpSocket);

impl Udp {
    pub fn connect(cfg: &LoadConfig) -> Result<Udp, LoadError> {
        let server = cfg.server_addr()?;
        let bind = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = UdpSocket::bind(bind).map_err(|e| io_err("bind", e))?;
        sock.connect(server)
            .map_err(|e| io_err(&format!("connect {server}"), e))?;
        match cfg.wait {
            WaitMode::Busy => sock
                .set_nonblocking(true)
                .map_err(|e| io_err("set_nonblocking", e))?,
            WaitMode::Blocking => sock
                .set_read_timeout(Some(blocking_wait(cfg)))
                .map_err(|e| io_err("set_read_timeout", e))?,
        }
        Ok(Udp(sock))
    }
}

impl RpcTransport for Udp {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.0.send(msg).map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv(buf)
    }
}

/// Opens the transport `cfg` asks for.
pub fn open(cfg: &LoadConfig) -> Result<Box<dyn RpcTransport>, LoadError> {
    match cfg.transport {
        Transport::Udp => Ok(Box::new(Udp::connect(cfg)?)),
        Transport::Tcp => Ok(Box::new(stream::connect_tcp(cfg)?)),
        Transport::Unix => Ok(Box::new(stream::connect_unix(cfg)?)),
        Transport::Dpdk => Ok(Box::new(super::dpdk::DpdkTransport::open(cfg)?)),
    }
}
