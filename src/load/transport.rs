//! How requests travel. The measuring loop in `engine` sees only [`RpcTransport`]: one RPC
//! message (header + payload) out, one in, with socket semantics, so the kernel sockets and
//! the DPDK port are measured by the same code.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::config::{LoadConfig, Shape, Transport};
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

    /// Sends one whole message to replica `replica` (an index into
    /// [`LoadConfig::replica_addrs`]). A transport with one destination sends it there.
    #[inline]
    fn send_to(&mut self, replica: usize, msg: &[u8]) -> io::Result<()> {
        let _ = replica;
        self.send(msg)
    }

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

/// A kernel UDP socket: connected to the one server, or, with several replicas, sending to
/// each by address and taking replies from them only.
pub struct Udp {
    sock: UdpSocket,
    /// Empty: connected to the one server.
    replicas: Vec<SocketAddr>,
}

impl Udp {
    pub fn connect(cfg: &LoadConfig) -> Result<Udp, LoadError> {
        let server = cfg.server_addr()?;
        let bind = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = UdpSocket::bind(bind).map_err(|e| io_err("bind", e))?;
        let replicas = cfg.replica_addrs();
        let replicas = if replicas.len() > 1 {
            replicas
        } else {
            sock.connect(server)
                .map_err(|e| io_err(&format!("connect {server}"), e))?;
            Vec::new()
        };
        match cfg.wait {
            WaitMode::Busy => sock
                .set_nonblocking(true)
                .map_err(|e| io_err("set_nonblocking", e))?,
            WaitMode::Blocking => sock
                .set_read_timeout(Some(blocking_wait(cfg)))
                .map_err(|e| io_err("set_read_timeout", e))?,
        }
        Ok(Udp { sock, replicas })
    }
}

impl RpcTransport for Udp {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.send_to(0, msg)
    }

    fn send_to(&mut self, replica: usize, msg: &[u8]) -> io::Result<()> {
        match self.replicas.get(replica) {
            Some(a) => self.sock.send_to(msg, a).map(|_| ()),
            None => self.sock.send(msg).map(|_| ()),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.replicas.is_empty() {
            return self.sock.recv(buf);
        }
        loop {
            let (n, from) = self.sock.recv_from(buf)?;
            // What a connected socket filters: datagrams from anyone but the servers.
            if self.replicas.contains(&from) {
                return Ok(n);
            }
        }
    }
}

/// One stream transport per replica (tcp `--servers`), polled in turn.
pub struct Replicas {
    conns: Vec<Box<dyn RpcTransport>>,
    next: usize,
}

impl RpcTransport for Replicas {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.send_to(0, msg)
    }

    fn send_to(&mut self, replica: usize, msg: &[u8]) -> io::Result<()> {
        match self.conns.get_mut(replica) {
            Some(c) => c.send(msg),
            None => Err(io::ErrorKind::InvalidInput.into()),
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.conns.len();
        let mut last = io::Error::from(io::ErrorKind::WouldBlock);
        for i in 0..n {
            let r = (self.next + i) % n;
            match self.conns[r].recv(buf) {
                Ok(len) => {
                    // The next poll starts after this one, so no replica starves the rest.
                    self.next = (r + 1) % n;
                    return Ok(len);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

/// Opens the transport `cfg` asks for.
pub fn open(cfg: &LoadConfig) -> Result<Box<dyn RpcTransport>, LoadError> {
    match cfg.transport {
        Transport::Udp => Ok(Box::new(Udp::connect(cfg)?)),
        Transport::Tcp if cfg.replica_addrs().len() > 1 => {
            let conns = cfg
                .replica_addrs()
                .into_iter()
                .map(|a| {
                    let one = LoadConfig {
                        server: Some(a),
                        shape: Shape::default(),
                        ..cfg.clone()
                    };
                    stream::connect_tcp(&one).map(|s| Box::new(s) as Box<dyn RpcTransport>)
                })
                .collect::<Result<_, _>>()?;
            Ok(Box::new(Replicas { conns, next: 0 }))
        }
        Transport::Tcp => Ok(Box::new(stream::connect_tcp(cfg)?)),
        Transport::Unix => Ok(Box::new(stream::connect_unix(cfg)?)),
        Transport::Dpdk => Ok(Box::new(super::dpdk::DpdkTransport::open(cfg)?)),
    }
}
