//! RPC replicas living in the test, for `bypass load`: a UDP socket or a TCP listener on
//! 127.0.0.1, or a unix-domain stream listener, each answering requests (docs/protocol.md)
//! at once or as a [`Rule`] says: dropped, held for a set time (a timer queue and short read
//! timeouts, no spinning, so two cores hold the client and every replica), or misbehaving.
//! A rule sees each request's id and its arrival index at the replica, so the tail, the
//! losses and the reordering a run must see are known exactly.
//!
//! Streams are served as a real server serves them: messages framed by their header's length,
//! replies on the same connection in request order (docs/protocol.md, "Stream framing"), so a
//! held reply also holds the replies behind it on its connection.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bypass::wire::rpc::{RpcHeader, RpcKind, HEADER_LEN};

/// A replica stops by itself after this long, should a test never stop it.
const LIFETIME: Duration = Duration::from_secs(120);
/// Read timeout while replies are held: the granularity of a hold.
const HELD_POLL: Duration = Duration::from_micros(200);
/// Read timeout otherwise: how soon a stop is seen.
const IDLE_POLL: Duration = Duration::from_millis(5);

/// One request as it reached the replica.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub id: u64,
    /// 1-based: the replica's nth request (every message received counts, over all of its
    /// connections).
    pub index: u64,
    pub at: Instant,
}

/// What a replica does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Answer,
    /// Never answered.
    Drop,
    /// Answered this long after it arrived (on a stream, and not before the replies ahead of
    /// it on its connection).
    Hold(Duration),
    /// Datagrams only: answered right after the next request answered at once.
    HoldForNext,
    /// Datagrams only: before the good reply send junk, a reply with a wrong client_ts and
    /// the request itself (kind request); after it, the good reply again (a duplicate).
    Mischief,
}

/// Decides each request's fate; may keep state (a stall that starts on the nth request).
pub type Rule = Box<dyn FnMut(&Arrival) -> Action + Send>;

/// A rule from a closure.
pub fn rule(f: impl FnMut(&Arrival) -> Action + Send + 'static) -> Rule {
    Box::new(f)
}

/// Answers everything at once.
pub fn answer_all() -> Rule {
    rule(|_| Action::Answer)
}

/// Holds the requests whose id `hold` gives a duration for; answers the rest at once.
pub fn hold_by_id(hold: fn(u64) -> Option<Duration>) -> Rule {
    rule(move |a| hold(a.id).map_or(Action::Answer, Action::Hold))
}

/// Never answers every `n`th request (by arrival: n, 2n, ...).
pub fn drop_every(n: u64) -> Rule {
    rule(move |a| {
        if a.index.is_multiple_of(n) {
            Action::Drop
        } else {
            Action::Answer
        }
    })
}

/// Never answers the `n`th request; answers every other.
pub fn drop_only(n: u64) -> Rule {
    rule(move |a| {
        if a.index == n {
            Action::Drop
        } else {
            Action::Answer
        }
    })
}

/// From the `at`th request on, holds every reply until `pause` after it arrived (a stalled
/// server), then answers everything.
pub fn stall_once(at: u64, pause: Duration) -> Rule {
    let mut until: Option<Instant> = None;
    rule(move |a| {
        if a.index == at {
            until = Some(a.at + pause);
        }
        match until {
            Some(u) if a.at < u => Action::Hold(u - a.at),
            _ => Action::Answer,
        }
    })
}

/// Holds every `every`th reply (by arrival) for `by`.
pub fn delay_every(every: u64, by: Duration) -> Rule {
    rule(move |a| {
        if a.index.is_multiple_of(every) {
            Action::Hold(by)
        } else {
            Action::Answer
        }
    })
}

/// Answers requests in swapped pairs: 2nd, 1st, 4th, 3rd, ...
pub fn swap_pairs() -> Rule {
    rule(|a| {
        if a.index.is_multiple_of(2) {
            Action::Answer
        } else {
            Action::HoldForNext
        }
    })
}

/// Every request: [`Action::Mischief`].
pub fn mischief() -> Rule {
    rule(|_| Action::Mischief)
}

/// What a replica listens on.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// A running replica; stopped (and its socket file removed) on drop, pass or fail.
pub struct Replica {
    pub endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<u64>>,
}

impl Replica {
    /// A UDP replica on 127.0.0.1.
    pub fn udp(rule: Rule) -> Replica {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        Replica::start(Endpoint::Udp(addr), move |stop| {
            serve_udp(sock, rule, &stop)
        })
    }

    /// A TCP replica on 127.0.0.1.
    pub fn tcp(rule: Rule) -> Replica {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        Replica::start(Endpoint::Tcp(addr), move |stop| {
            let accept = move || match l.accept() {
                Ok((s, _)) => {
                    // Replies leave at once, not when Nagle has filled a segment.
                    s.set_nodelay(true).unwrap();
                    Ok(s)
                }
                Err(e) => Err(e),
            };
            serve_listener(accept, rule, stop)
        })
    }

    /// A unix-domain stream replica on a fresh path in the temporary directory.
    pub fn unix(rule: Rule) -> Replica {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "bypass-replica-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        Replica::start(Endpoint::Unix(path), move |stop| {
            serve_listener(move || l.accept().map(|(s, _)| s), rule, stop)
        })
    }

    fn start(
        endpoint: Endpoint,
        serve: impl FnOnce(Arc<AtomicBool>) -> u64 + Send + 'static,
    ) -> Replica {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || serve(s));
        Replica {
            endpoint,
            stop,
            handle: Some(handle),
        }
    }

    /// The IP address and port (UDP and TCP replicas).
    pub fn addr(&self) -> SocketAddr {
        match &self.endpoint {
            Endpoint::Udp(a) | Endpoint::Tcp(a) => *a,
            Endpoint::Unix(p) => panic!("a unix replica ({}) has no address", p.display()),
        }
    }

    /// The socket path (unix replicas).
    pub fn path(&self) -> &Path {
        match &self.endpoint {
            Endpoint::Unix(p) => p,
            e => panic!("{e:?} has no socket path"),
        }
    }

    /// Stops it; returns the messages it received.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Endpoint::Unix(p) = &self.endpoint {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Turns a request into its response in place, `server_ns` the time since `received`; `None`
/// if it is not a request. tests/load_streams.rs's misbehaving stream server answers with it.
pub fn respond(buf: &mut [u8], received: Instant) -> Option<()> {
    if RpcHeader::new_checked(&buf[..]).ok()?.kind() != RpcKind::Request {
        return None;
    }
    let mut h = RpcHeader::new_unchecked(&mut buf[..]);
    h.set_kind(RpcKind::Response);
    h.set_server_ns(received.elapsed().as_nanos().min(u32::MAX as u128) as u32);
    Some(())
}

/// The request id of a message, if it has a header.
fn request_id(msg: &[u8]) -> Option<u64> {
    RpcHeader::new_checked(msg).ok().map(|h| h.request_id())
}

fn serve_udp(sock: UdpSocket, mut rule: Rule, stop: &AtomicBool) -> u64 {
    let deadline = Instant::now() + LIFETIME;
    let mut buf = [0u8; 65_536];
    let mut seen = 0u64;
    // (message, peer, received at, due)
    let mut held: Vec<(Vec<u8>, SocketAddr, Instant, Instant)> = Vec::new();
    let mut after_next: Vec<(Vec<u8>, SocketAddr, Instant)> = Vec::new();
    let mut poll = Duration::ZERO;
    let reply = |msg: &mut [u8], from: SocketAddr, at: Instant| {
        if respond(msg, at).is_some() {
            let _ = sock.send_to(msg, from);
        }
    };
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let now = Instant::now();
        held.retain_mut(|(msg, from, at, due)| {
            if *due <= now {
                reply(msg, *from, *at);
                false
            } else {
                true
            }
        });
        let want = if held.is_empty() {
            IDLE_POLL
        } else {
            HELD_POLL
        };
        if want != poll {
            sock.set_read_timeout(Some(want)).unwrap();
            poll = want;
        }
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let at = Instant::now();
        seen += 1;
        let msg = &mut buf[..n];
        let Some(id) = request_id(msg) else {
            continue;
        };
        match rule(&Arrival {
            id,
            index: seen,
            at,
        }) {
            Action::Answer => {
                reply(msg, from, at);
                for (mut m, f, a) in after_next.drain(..) {
                    reply(&mut m, f, a);
                }
            }
            Action::Drop => {}
            Action::Hold(d) => held.push((msg.to_vec(), from, at, at + d)),
            Action::HoldForNext => after_next.push((msg.to_vec(), from, at)),
            Action::Mischief => {
                let _ = sock.send_to(b"junk", from);
                let mut bad_ts = msg.to_vec();
                if respond(&mut bad_ts, at).is_some() {
                    let mut h = RpcHeader::new_unchecked(&mut bad_ts[..]);
                    h.set_client_ts(h.client_ts() ^ 1);
                    let _ = sock.send_to(&bad_ts, from);
                }
                let _ = sock.send_to(msg, from); // kind request: not a reply
                reply(msg, from, at);
                let _ = sock.send_to(msg, from);
            }
        }
    }
    seen
}

/// A connected stream socket a replica serves.
trait Conn: Read + Write + Send + 'static {
    fn read_timeout(&self, t: Duration);
}

impl Conn for TcpStream {
    fn read_timeout(&self, t: Duration) {
        self.set_read_timeout(Some(t)).unwrap();
    }
}

impl Conn for UnixStream {
    fn read_timeout(&self, t: Duration) {
        self.set_read_timeout(Some(t)).unwrap();
    }
}

/// What a stream replica's connections share: the rule and the arrival count.
type Shared = Arc<Mutex<(Rule, u64)>>;

/// Accepts connections (`accept` is non-blocking) and serves each on its own thread until
/// `stop`; returns the messages received on all of them.
fn serve_listener<C: Conn>(
    accept: impl Fn() -> std::io::Result<C>,
    rule: Rule,
    stop: Arc<AtomicBool>,
) -> u64 {
    let deadline = Instant::now() + LIFETIME;
    let shared: Shared = Arc::new(Mutex::new((rule, 0)));
    let mut conns = Vec::new();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match accept() {
            Ok(c) => {
                // Blocking reads with a timeout, so the thread sleeps between requests.
                let (shared, stop) = (shared.clone(), stop.clone());
                conns.push(std::thread::spawn(move || {
                    serve_stream(c, &shared, &stop, deadline)
                }));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    for c in conns {
        let _ = c.join();
    }
    let seen = shared.lock().unwrap_or_else(|e| e.into_inner()).1;
    seen
}

/// Serves one connection: framed requests in, replies out in request order, each no sooner
/// than its rule says.
fn serve_stream<C: Conn>(mut c: C, shared: &Shared, stop: &AtomicBool, deadline: Instant) {
    let mut rx: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    // (reply, received at, due), in request order.
    let mut queue: VecDeque<(Vec<u8>, Instant, Instant)> = VecDeque::new();
    let mut out: Vec<u8> = Vec::new();
    let mut poll = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let now = Instant::now();
        while queue.front().is_some_and(|(_, _, due)| *due <= now) {
            let (mut m, at, _) = queue.pop_front().unwrap();
            respond(&mut m, at).expect("only requests are queued");
            out.extend_from_slice(&m);
        }
        if !out.is_empty() {
            if c.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        let want = if queue.is_empty() {
            IDLE_POLL
        } else {
            HELD_POLL
        };
        if want != poll {
            c.read_timeout(want);
            poll = want;
        }
        let n = match c.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        let at = Instant::now();
        rx.extend_from_slice(&buf[..n]);
        while rx.len() >= HEADER_LEN {
            let h = RpcHeader::new_unchecked(&rx[..HEADER_LEN]);
            let total = HEADER_LEN + h.length() as usize;
            if rx.len() < total {
                break;
            }
            let msg: Vec<u8> = rx.drain(..total).collect();
            let Ok(h) = RpcHeader::new_checked(&msg[..]) else {
                // Bad magic or version: the framing is lost, as a real server says by closing.
                return;
            };
            let (id, request) = (h.request_id(), h.kind() == RpcKind::Request);
            let action = {
                let mut g = shared.lock().unwrap_or_else(|e| e.into_inner());
                g.1 += 1;
                let index = g.1;
                (g.0)(&Arrival { id, index, at })
            };
            if !request {
                continue;
            }
            match action {
                Action::Answer => queue.push_back((msg, at, at)),
                Action::Drop => {}
                Action::Hold(d) => queue.push_back((msg, at, at + d)),
                a @ (Action::HoldForNext | Action::Mischief) => {
                    panic!("{a:?} is for datagram replicas only")
                }
            }
        }
    }
}
