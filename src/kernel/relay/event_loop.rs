//! The relay's one thread: an epoll loop over non-blocking sockets, as mesh sidecars are
//! built. Each readiness event reads whole messages (a datagram, or the framed messages of
//! one stream read) and passes each on at once: a client's request gets a mapping slot, its
//! request id rewritten to the slot's relay id and its residence added to `server_ns`, and
//! goes to an upstream; an upstream's reply finds its slot by that id, gets the client's id
//! back and the reply-side residence added, and goes to its client. Buffers, the table and
//! the connection lists are allocated at start; the steady state allocates nothing.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::kernel::framing::{Partial, SCRATCH};
use crate::kernel::handler::{elapsed_ns, stamp};
use crate::kernel::stream::STOP_CHECK;
use crate::kernel::udp::is_retry;
use crate::os::epoll::{Epoll, Interest, Ready};
use crate::os::signal;
use crate::wire::rpc::{self, RpcHeader, RpcKind};

use super::balance::{flow_of_addr, flow_of_conn, mix, Picker};
use super::config::RelayConfig;
use super::conn::RelayConn;
use super::counters::{RelayCounters, RelayDrop};
use super::ends::{accept, connect, ListenSide, UpstreamSide, RETRY_AFTER};
use super::table::{Client, Entry, Table};

/// Client stream connections held at once; one more is accepted and closed at once.
pub const MAX_CLIENTS: usize = 1024;
/// Datagrams or accepts taken per readiness event, so one busy socket cannot starve the
/// others (epoll is level-triggered: the rest is reported again).
const PER_EVENT: usize = 64;
const EVENTS: usize = 256;

const T_LISTEN: u64 = 0;
const T_UP_UDP: u64 = 1;
const T_CLIENT: u64 = 1 << 32;
const T_POOL: u64 = 2 << 32;

/// A client connection slot: its connection (if open) and a generation that changes when it
/// closes, so a reply for an earlier client of the slot is not sent to a later one.
struct ClientSlot {
    conn: Option<RelayConn>,
    gen: u32,
}

/// What the loop leaves behind for the report.
pub struct Outcome {
    pub counters: RelayCounters,
    /// Requests still waiting for a reply when the relay stopped.
    pub live_at_stop: usize,
    pub refused: u64,
}

pub struct Relay {
    ep: Epoll,
    listen: ListenSide,
    up: UpstreamSide,
    table: Table,
    picker: Picker,
    clients: Vec<ClientSlot>,
    free_clients: Vec<u32>,
    scratch: Vec<u8>,
    ready: Vec<Ready>,
    busy: bool,
    c: RelayCounters,
    refused: u64,
}

impl Relay {
    pub fn new(cfg: &RelayConfig, listen: ListenSide, up: UpstreamSide) -> io::Result<Relay> {
        let ep = Epoll::new(EVENTS)?;
        match &listen {
            ListenSide::Udp(s) => ep.add(s, T_LISTEN, Interest::Read)?,
            ListenSide::Stream(l) => ep.add(l, T_LISTEN, Interest::Read)?,
        }
        match &up {
            UpstreamSide::Udp { sock, .. } => ep.add(sock, T_UP_UDP, Interest::Read)?,
            UpstreamSide::Stream { pool, .. } => {
                for (j, p) in pool.iter().enumerate() {
                    if let Some(c) = &p.conn {
                        ep.add(&c.sock, T_POOL | j as u64, Interest::Read)?;
                    }
                }
            }
        }
        let stream_clients = matches!(listen, ListenSide::Stream(_));
        let n_clients = if stream_clients { MAX_CLIENTS } else { 0 };
        Ok(Relay {
            ep,
            listen,
            up,
            table: Table::new(cfg.table, cfg.expiry),
            picker: Picker::new(cfg.balance, cfg.upstreams.len()),
            clients: (0..n_clients)
                .map(|_| ClientSlot { conn: None, gen: 0 })
                .collect(),
            free_clients: (0..n_clients as u32).rev().collect(),
            scratch: vec![0u8; SCRATCH],
            ready: Vec::with_capacity(EVENTS),
            busy: cfg.backend == crate::options::Backend::Busy,
            c: RelayCounters::default(),
            refused: 0,
        })
    }

    /// Runs until a stop is requested or `until` passes.
    pub fn run(mut self, until: Option<Instant>) -> io::Result<Outcome> {
        let timeout = if self.busy {
            Duration::ZERO
        } else {
            STOP_CHECK
        };
        while !signal::stop_requested() {
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) {
                break;
            }
            let n = self.table.expire(now);
            self.c.drop_n(RelayDrop::Expired, n);
            let mut ready = std::mem::take(&mut self.ready);
            ready.clear();
            ready.extend(self.ep.wait(timeout)?);
            for r in &ready {
                self.on_ready(*r)?;
            }
            self.ready = ready;
        }
        Ok(Outcome {
            live_at_stop: self.table.live(),
            counters: self.c,
            refused: self.refused,
        })
    }

    fn on_ready(&mut self, r: Ready) -> io::Result<()> {
        let i = (r.token & 0xffff_ffff) as usize;
        match r.token & !0xffff_ffff {
            T_CLIENT => self.on_client(i, r),
            T_POOL => self.on_pool(i, r),
            _ if r.token == T_LISTEN => match self.listen {
                ListenSide::Udp(_) => self.on_udp_clients(),
                ListenSide::Stream(_) => self.on_accept(),
            },
            _ => self.on_udp_upstream(),
        }
    }

    // ---- the listening side ----

    fn on_udp_clients(&mut self) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        for _ in 0..PER_EVENT {
            let ListenSide::Udp(s) = &self.listen else {
                break;
            };
            let (n, from) = match s.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if is_retry(&e) => break,
                Err(e) => {
                    self.scratch = buf;
                    return Err(e);
                }
            };
            let t = Instant::now();
            self.c.rx += 1;
            let msg = &mut buf[..n];
            if let Err(why) = check(msg, true)
                .and_then(|()| self.forward(msg, Client::Udp(from), flow_of_addr(&from), t))
            {
                self.c.drop(why);
            }
        }
        self.scratch = buf;
        Ok(())
    }

    fn on_accept(&mut self) -> io::Result<()> {
        for _ in 0..PER_EVENT {
            let ListenSide::Stream(l) = &self.listen else {
                break;
            };
            let Some(sock) = accept(l, self.busy)? else {
                break;
            };
            let Some(i) = self.free_clients.pop() else {
                self.refused += 1;
                continue;
            };
            self.ep
                .add(&sock, T_CLIENT | u64::from(i), Interest::Read)?;
            self.clients[i as usize].conn = Some(RelayConn::new(sock));
            self.c.connections += 1;
        }
        Ok(())
    }

    fn on_client(&mut self, i: usize, r: Ready) -> io::Result<()> {
        if r.writable {
            self.flush_client(i)?;
        }
        if !r.readable {
            return Ok(());
        }
        let gen = self.clients[i].gen;
        let Some(conn) = self.clients[i].conn.as_mut() else {
            return Ok(());
        };
        let mut buf = std::mem::take(&mut self.scratch);
        let Some(n) = read_some(conn, &mut buf) else {
            self.scratch = buf;
            return Ok(());
        };
        let mut partial = std::mem::take(&mut conn.partial);
        let t = Instant::now();
        let client = Client::Stream {
            conn: i as u32,
            gen,
        };
        let flow = flow_of_conn(i as u32, gen);
        let over = self.take_messages(&mut partial, &mut buf[..n], |me, m| {
            check(m, true)?;
            me.forward(m, client, flow, t)
        });
        self.scratch = buf;
        if over {
            self.close_client(i);
        } else if let Some(conn) = self.clients[i].conn.as_mut() {
            conn.partial = partial;
        }
        Ok(())
    }

    fn flush_client(&mut self, i: usize) -> io::Result<()> {
        let Some(conn) = self.clients[i].conn.as_mut() else {
            return Ok(());
        };
        if conn.flush().is_err() {
            self.close_client(i);
            return Ok(());
        }
        if !conn.is_writing() {
            self.ep
                .modify(&conn.sock, T_CLIENT | i as u64, Interest::Read)?;
        }
        Ok(())
    }

    fn close_client(&mut self, i: usize) {
        let s = &mut self.clients[i];
        if let Some(conn) = s.conn.take() {
            // Closing the socket takes it out of the epoll set.
            drop(conn);
            s.gen = s.gen.wrapping_add(1);
            self.free_clients.push(i as u32);
        }
    }

    /// Frames `fresh` (one read; empty: the peer is gone) after a connection's `partial`,
    /// counts each whole message and hands it to `pass`, counting its drop if any. Returns
    /// whether the connection is over (closed, or its framing lost), the loss counted.
    fn take_messages(
        &mut self,
        partial: &mut Partial,
        fresh: &mut [u8],
        mut pass: impl FnMut(&mut Self, &mut [u8]) -> Result<(), RelayDrop>,
    ) -> bool {
        if fresh.is_empty() {
            if !partial.is_empty() {
                // Counted as read, so every message read ends somewhere.
                self.c.rx += 1;
                self.c.drop(RelayDrop::Truncated);
            }
            return true;
        }
        let lost = partial.feed(fresh, |m| {
            self.c.rx += 1;
            if let Err(why) = pass(self, m) {
                self.c.drop(why);
            }
        });
        if let Some(why) = lost {
            // The message whose header broke the framing was read too.
            self.c.rx += 1;
            self.c.drop(RelayDrop::from_framing(why));
        }
        lost.is_some()
    }

    // ---- requests out ----

    /// Maps and sends one valid request upstream.
    #[inline]
    fn forward(
        &mut self,
        msg: &mut [u8],
        client: Client,
        flow: u64,
        t: Instant,
    ) -> Result<(), RelayDrop> {
        let up = self.picker.pick(flow);
        let k = match &self.up {
            UpstreamSide::Udp { .. } => 0,
            UpstreamSide::Stream { per, .. } => (mix(flow ^ 0x5bd1_e995) % *per as u64) as usize,
        };
        self.ensure_pooled(up, k)?;
        let mut h = RpcHeader::new_unchecked(&mut msg[..]);
        let e = Entry {
            client,
            request_id: h.request_id(),
            upstream: up as u16,
            conn: k as u16,
        };
        let id = self.table.insert(e, t).ok_or(RelayDrop::TableFull)?;
        h.set_request_id(id);
        stamp(msg, elapsed_ns(t));
        let sent = match &mut self.up {
            UpstreamSide::Udp { sock, addrs } => send_udp(sock, msg, addrs[up]),
            UpstreamSide::Stream { per, pool, .. } => {
                let j = up * *per + k;
                send_stream(
                    &self.ep,
                    &mut pool[j].conn,
                    (T_POOL | j as u64, RelayDrop::UpstreamDown),
                    msg,
                )
            }
        };
        match sent {
            Ok(()) => {
                self.c.forwarded += 1;
                self.c.tx += 1;
                Ok(())
            }
            Err(why) => {
                let _ = self.table.take(id, up as u16);
                Err(why)
            }
        }
    }

    /// Makes sure pooled connection `k` of stream upstream `up` is open: a lost one is
    /// reopened, at most once per [`RETRY_AFTER`].
    fn ensure_pooled(&mut self, up: usize, k: usize) -> Result<(), RelayDrop> {
        let UpstreamSide::Stream { ends, per, pool } = &mut self.up else {
            return Ok(());
        };
        let j = up * *per + k;
        let p = &mut pool[j];
        if p.conn.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if now < p.retry_at {
            return Err(RelayDrop::UpstreamDown);
        }
        p.retry_at = now + RETRY_AFTER;
        let sock = connect(&ends[up], self.busy).map_err(|_| RelayDrop::UpstreamDown)?;
        self.ep
            .add(&sock, T_POOL | j as u64, Interest::Read)
            .map_err(|_| RelayDrop::UpstreamDown)?;
        p.conn = Some(RelayConn::new(sock));
        self.c.reconnects += 1;
        Ok(())
    }

    // ---- replies back ----

    fn on_udp_upstream(&mut self) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.scratch);
        for _ in 0..PER_EVENT {
            let UpstreamSide::Udp { sock, addrs } = &self.up else {
                break;
            };
            let (n, from) = match sock.recv_from(&mut buf) {
                Ok(x) => x,
                Err(e) if is_retry(&e) => break,
                Err(e) => {
                    self.scratch = buf;
                    return Err(e);
                }
            };
            let t = Instant::now();
            self.c.rx += 1;
            let up = upstream_of(addrs, from);
            let msg = &mut buf[..n];
            if let Err(why) = check(msg, false).and_then(|()| self.give_back(msg, up, t)) {
                self.c.drop(why);
            }
        }
        self.scratch = buf;
        Ok(())
    }

    fn on_pool(&mut self, j: usize, r: Ready) -> io::Result<()> {
        let UpstreamSide::Stream { per, pool, .. } = &mut self.up else {
            return Ok(());
        };
        let up = j / *per;
        let Some(conn) = pool[j].conn.as_mut() else {
            return Ok(());
        };
        if r.writable {
            if conn.flush().is_err() {
                self.lose_pooled(j);
                return Ok(());
            }
            if !conn.is_writing() {
                self.ep
                    .modify(&conn.sock, T_POOL | j as u64, Interest::Read)?;
            }
        }
        if !r.readable {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.scratch);
        let Some(n) = read_some(conn, &mut buf) else {
            self.scratch = buf;
            return Ok(());
        };
        let mut partial = std::mem::take(&mut conn.partial);
        let t = Instant::now();
        let over = self.take_messages(&mut partial, &mut buf[..n], |me, m| {
            check(m, false)?;
            me.give_back(m, up, t)
        });
        self.scratch = buf;
        if over {
            self.lose_pooled(j);
        } else if let UpstreamSide::Stream { pool, .. } = &mut self.up {
            if let Some(conn) = pool[j].conn.as_mut() {
                conn.partial = partial;
            }
        }
        Ok(())
    }

    /// Closes pooled connection `j`: the requests waiting on it will get no reply. The next
    /// request for it reopens it.
    fn lose_pooled(&mut self, j: usize) {
        let UpstreamSide::Stream { per, pool, .. } = &mut self.up else {
            return;
        };
        let (up, k) = ((j / *per) as u16, (j % *per) as u16);
        pool[j].conn = None;
        pool[j].retry_at = Instant::now();
        let n = self.table.remove_where(|e| e.upstream == up && e.conn == k);
        self.c.drop_n(RelayDrop::UpstreamReset, n);
    }

    /// Maps one valid reply from upstream `up` back and sends it to its client.
    #[inline]
    fn give_back(&mut self, msg: &mut [u8], up: usize, t: Instant) -> Result<(), RelayDrop> {
        let mut h = RpcHeader::new_unchecked(&mut msg[..]);
        let up = u16::try_from(up).map_err(|_| RelayDrop::UnknownMapping)?;
        let e = self
            .table
            .take(h.request_id(), up)
            .map_err(|_| RelayDrop::UnknownMapping)?;
        h.set_request_id(e.request_id);
        stamp(msg, elapsed_ns(t));
        match e.client {
            Client::Udp(to) => match &self.listen {
                ListenSide::Udp(s) => send_udp(s, msg, to)?,
                ListenSide::Stream(_) => return Err(RelayDrop::ClientGone),
            },
            Client::Stream { conn, gen } => {
                let slot = &mut self.clients[conn as usize];
                if slot.gen != gen {
                    return Err(RelayDrop::ClientGone);
                }
                let to = (T_CLIENT | u64::from(conn), RelayDrop::ClientGone);
                send_stream(&self.ep, &mut slot.conn, to, msg)?;
            }
        }
        self.c.returned += 1;
        self.c.tx += 1;
        Ok(())
    }
}

/// Which UDP upstream a datagram came from; one from no upstream of ours gets an index
/// that names none, so it cannot match a slot.
#[inline]
fn upstream_of(addrs: &[SocketAddr], from: SocketAddr) -> usize {
    addrs.iter().position(|a| *a == from).unwrap_or(usize::MAX)
}

/// One read from a stream connection into `buf`, at most what its partial message leaves
/// room for: `Some(n)` bytes (0: the connection is over), None when nothing waits.
#[inline]
fn read_some(conn: &mut RelayConn, buf: &mut [u8]) -> Option<usize> {
    let room = conn.partial.room();
    match conn.sock.read(&mut buf[..room]) {
        Ok(n) => Some(n),
        Err(e) if is_retry(&e) => None,
        Err(_) => Some(0),
    }
}

/// Checks what the relay must know of a message before passing it on: a whole RPC v1 header,
/// a length the datagram holds, and the kind this side may send (requests from clients,
/// replies from upstreams).
#[inline]
fn check(msg: &[u8], from_client: bool) -> Result<(), RelayDrop> {
    if msg.len() < rpc::HEADER_LEN {
        return Err(RelayDrop::Truncated);
    }
    let h = RpcHeader::new_unchecked(msg);
    if h.magic() != rpc::MAGIC {
        return Err(RelayDrop::BadMagic);
    }
    if h.version() != rpc::VERSION {
        return Err(RelayDrop::BadVersion);
    }
    if h.length() as usize > msg.len() - rpc::HEADER_LEN {
        return Err(RelayDrop::BadLength);
    }
    match (from_client, h.kind()) {
        (true, RpcKind::Request) => Ok(()),
        (true, _) => Err(RelayDrop::NotRequest),
        (false, RpcKind::Response | RpcKind::Error) => Ok(()),
        (false, _) => Err(RelayDrop::NotReply),
    }
}

/// One datagram; a full socket buffer is backpressure (never waited out: the loop serves
/// every socket).
#[inline]
fn send_udp(s: &std::net::UdpSocket, msg: &[u8], to: SocketAddr) -> Result<(), RelayDrop> {
    match s.send_to(msg, to) {
        Ok(_) => Ok(()),
        Err(e) if is_retry(&e) => Err(RelayDrop::Backpressure),
        Err(_) => Err(RelayDrop::SendError),
    }
}

/// One message on a stream connection (`None`: closed, counted as `gone`); asks to be told
/// when it is writable if bytes now wait.
#[inline]
fn send_stream(
    ep: &Epoll,
    conn: &mut Option<RelayConn>,
    (token, gone): (u64, RelayDrop),
    msg: &[u8],
) -> Result<(), RelayDrop> {
    let Some(c) = conn.as_mut() else {
        return Err(gone);
    };
    let was_writing = c.is_writing();
    c.send(msg)?;
    if !was_writing && c.is_writing() {
        ep.modify(&c.sock, token, Interest::ReadWrite)
            .map_err(|_| RelayDrop::SendError)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{RpcMethod, RpcRepr};
    use std::net::UdpSocket;

    fn msg(kind: RpcKind, len: u32) -> Vec<u8> {
        let r = RpcRepr {
            kind,
            ..RpcRepr::request(RpcMethod::Echo, 5, 6, len)
        };
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
        v
    }

    /// A relay over loopback UDP sockets, with the test's sockets as client and upstream.
    fn relay_between(client: &UdpSocket, upstream: &UdpSocket) -> Relay {
        let a = crate::kernel::relay::args::KernelRelayArgs {
            listen: "udp:127.0.0.1:0".into(),
            upstream: vec![format!("udp:{}", upstream.local_addr().unwrap())],
            balance: crate::options::Balance::RoundRobin,
            backend: crate::options::Backend::Blocking,
            cpus: None,
            table: 4,
            expiry_ms: 1000,
            pool: 1,
            duration: 0.0,
            json: true,
        };
        let cfg = a.to_config().unwrap();
        let listen = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(listen.local_addr().unwrap()).unwrap();
        let up = super::super::ends::open_upstreams(&cfg.upstreams, 1, false).unwrap();
        Relay::new(&cfg, ListenSide::Udp(listen), up).unwrap()
    }

    #[test]
    fn request_ids_are_rewritten_and_restored_and_residence_added() {
        let (client, upstream) = (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        let mut r = relay_between(&client, &upstream);
        let from = client.local_addr().unwrap();
        let mut req = msg(RpcKind::Request, 3);
        RpcHeader::new_unchecked(&mut req[..]).set_server_ns(1000);
        let sent = req.clone();
        let t = Instant::now();
        r.forward(&mut req, Client::Udp(from), flow_of_addr(&from), t)
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, relay_at) = upstream.recv_from(&mut buf).unwrap();
        let fwd = RpcHeader::new_checked(&buf[..n]).unwrap();
        assert_ne!(fwd.request_id(), 5, "rewritten to a relay id");
        assert!(fwd.server_ns() > 1000, "residence added to the request's");
        assert_eq!(
            (&buf[..8], &buf[16..24], &buf[28..n]),
            (&sent[..8], &sent[16..24], &sent[28..])
        );
        let relay_id = fwd.request_id();
        let mut reply = buf[..n].to_vec();
        RpcHeader::new_unchecked(&mut reply[..]).set_kind(RpcKind::Response);
        let before = RpcHeader::new_unchecked(&reply[..]).server_ns();
        let UpstreamSide::Udp { addrs, .. } = &r.up else {
            panic!("a udp upstream side")
        };
        let up = upstream_of(addrs, upstream.local_addr().unwrap());
        assert_eq!(
            upstream_of(addrs, relay_at),
            usize::MAX,
            "a stranger names no upstream"
        );
        assert_eq!(
            r.give_back(&mut reply.clone(), 1, Instant::now()),
            Err(RelayDrop::UnknownMapping),
            "another upstream"
        );
        r.give_back(&mut reply, up, Instant::now()).unwrap();
        let n = client.recv(&mut buf).unwrap();
        let back = RpcHeader::new_checked(&buf[..n]).unwrap();
        assert_eq!((back.request_id(), back.kind()), (5, RpcKind::Response));
        assert!(back.server_ns() > before, "reply-side residence added");
        assert_eq!((r.c.forwarded, r.c.returned), (1, 1));
        // The same reply again names a freed slot.
        RpcHeader::new_unchecked(&mut reply[..]).set_request_id(relay_id);
        assert_eq!(
            r.give_back(&mut reply, up, Instant::now()),
            Err(RelayDrop::UnknownMapping)
        );
    }

    #[test]
    fn only_requests_go_up_and_only_replies_come_back() {
        let req = msg(RpcKind::Request, 3);
        assert_eq!(check(&req, true), Ok(()));
        assert_eq!(check(&req, false), Err(RelayDrop::NotReply));
        for k in [RpcKind::Response, RpcKind::Error] {
            assert_eq!(check(&msg(k, 0), false), Ok(()));
            assert_eq!(check(&msg(k, 0), true), Err(RelayDrop::NotRequest));
        }
        assert_eq!(check(&req[..31], true), Err(RelayDrop::Truncated));
        assert_eq!(check(&req[..34], true), Err(RelayDrop::BadLength));
        let mut bad = req.clone();
        bad[0] = 0;
        assert_eq!(check(&bad, true), Err(RelayDrop::BadMagic));
        bad = req.clone();
        bad[2] = 7;
        assert_eq!(check(&bad, true), Err(RelayDrop::BadVersion));
    }
}
