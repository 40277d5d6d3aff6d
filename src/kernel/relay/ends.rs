//! The relay's sockets: the listening side (one UDP socket, or a TCP/unix listener whose
//! accepted connections are the clients) and the upstream side (one unconnected UDP socket for
//! every UDP upstream, or a pool of persistent stream connections per upstream, opened at
//! start and reopened lazily when one is lost). All non-blocking: the thread waits in epoll.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::contract::relay::RelayEnd;
use crate::kernel::conn::Sock;
use crate::kernel::socket::set_busy_poll;
use crate::kernel::stream::Listener;
use crate::kernel::{bind_unix, KernelError, RemoveOnDrop};

use super::config::inet;
use super::conn::RelayConn;

/// How long one connect to an upstream may take, and how long a failed one keeps the
/// connection down before the next try (so a dead upstream costs one connect per this, not
/// one per request).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
pub const RETRY_AFTER: Duration = Duration::from_millis(100);

pub enum ListenSide {
    Udp(UdpSocket),
    Stream(Listener),
}

/// The bound listening socket, what the ready line shows, and the guard removing a unix
/// socket file at the end.
pub fn bind_listen(
    end: &RelayEnd,
    busy: bool,
) -> Result<(ListenSide, String, Option<RemoveOnDrop>), KernelError> {
    let io = |e: io::Error| KernelError::Io(format!("--listen {end}: {e}"));
    match end {
        RelayEnd::Udp(a) => {
            let s = UdpSocket::bind(a).map_err(io)?;
            s.set_nonblocking(true).map_err(io)?;
            if busy {
                set_busy_poll(&s).map_err(io)?;
            }
            let shown = s.local_addr().map_err(io)?.to_string();
            Ok((ListenSide::Udp(s), shown, None))
        }
        RelayEnd::Tcp(a) => {
            let l = TcpListener::bind(a).map_err(io)?;
            let shown = l.local_addr().map_err(io)?.to_string();
            let l = Listener::Tcp(l);
            l.configure().map_err(io)?;
            Ok((ListenSide::Stream(l), shown, None))
        }
        RelayEnd::Unix(p) => {
            let l = Listener::Unix(bind_unix(Path::new(p), "--listen")?);
            let guard = RemoveOnDrop(p.into());
            l.configure().map_err(io)?;
            Ok((ListenSide::Stream(l), p.clone(), Some(guard)))
        }
    }
}

/// Accepts one waiting connection, non-blocking and configured; None when none waits.
pub fn accept(l: &Listener, busy: bool) -> io::Result<Option<Sock>> {
    let r = match l {
        Listener::Tcp(l) => l.accept().map(|(s, _)| Sock::Tcp(s)),
        Listener::Unix(l) => l.accept().map(|(s, _)| Sock::Unix(s)),
    };
    match r {
        Ok(s) => {
            s.configure(busy)?;
            Ok(Some(s))
        }
        Err(e) if crate::kernel::udp::is_retry(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One pooled upstream connection: open, or down until `retry_at`.
pub struct Pooled {
    pub conn: Option<RelayConn>,
    pub retry_at: Instant,
}

pub enum UpstreamSide {
    /// One socket for every upstream; a reply's source address says which upstream it is.
    Udp {
        sock: UdpSocket,
        addrs: Vec<SocketAddr>,
    },
    /// `per` connections per upstream, upstream `u`'s k-th at `pool[u * per + k]`.
    Stream {
        ends: Vec<RelayEnd>,
        per: usize,
        pool: Vec<Pooled>,
    },
}

/// The upstream side; stream connections are tried once here (a failed one stays down and
/// is retried when a request needs it).
pub fn open_upstreams(
    ends: &[RelayEnd],
    per: usize,
    busy: bool,
) -> Result<UpstreamSide, KernelError> {
    if let Some(addrs) = ends
        .iter()
        .map(|e| match e {
            RelayEnd::Udp(a) => Some(SocketAddr::V4(*a)),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
    {
        let io = |e: io::Error| KernelError::Io(format!("--upstream udp socket: {e}"));
        let sock = UdpSocket::bind("0.0.0.0:0").map_err(io)?;
        sock.set_nonblocking(true).map_err(io)?;
        if busy {
            set_busy_poll(&sock).map_err(io)?;
        }
        return Ok(UpstreamSide::Udp { sock, addrs });
    }
    let now = Instant::now();
    let mut pool = Vec::with_capacity(ends.len() * per);
    for e in ends {
        for _ in 0..per {
            pool.push(Pooled {
                conn: connect(e, busy).ok().map(RelayConn::new),
                retry_at: now + RETRY_AFTER,
            });
        }
    }
    Ok(UpstreamSide::Stream {
        ends: ends.to_vec(),
        per,
        pool,
    })
}

/// A new non-blocking connection to a stream upstream.
pub fn connect(e: &RelayEnd, busy: bool) -> io::Result<Sock> {
    let s = match (e, inet(e)) {
        (RelayEnd::Unix(p), _) => Sock::Unix(UnixStream::connect(p)?),
        (_, Some(a)) => Sock::Tcp(TcpStream::connect_timeout(&a, CONNECT_TIMEOUT)?),
        (_, None) => return Err(io::Error::other("not a stream upstream")),
    };
    s.configure(busy)?;
    Ok(s)
}
