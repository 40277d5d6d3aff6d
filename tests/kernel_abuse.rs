//! `bypass kernel-serve` against abusive stream clients (issue 11 §2): on TCP and on unix,
//! one thread, 1000 connections in waves that stop halfway through a header or a payload,
//! sit idle, send garbage or reset, plus one client that sends but never reads. Throughout,
//! a well-behaved client gets every reply; afterwards the server's fds are back to their
//! baseline exactly, its RSS within a bound, and its counters say what happened.
#![forbid(unsafe_code)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bypass::os::epoll::{Epoll, Interest};
use bypass::os::process::Signal;
use bypass::os::socket::set_linger_zero;
use bypass::wire::rpc::HEADER_LEN;
use bypass::wire::{RpcHeader, RpcMethod, RpcRepr};
use serde_json::Value;
use support::{bin, stdout_lines, stop_child, TempFiles};

/// One server at a time: the two cores are shared with the clients.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const WAVES: usize = 4;
const PER_WAVE: usize = 250;
/// What the abusers do, one kind per connection in turn.
const KINDS: usize = 6;
/// The server's `--stall-timeout`, seconds.
const STALL_S: &str = "1";
/// RSS the server may keep after the abuse, over its baseline: what the allocator keeps of
/// freed per-connection memory, and the thread's 256 KiB of buffers touched by large messages.
const RSS_SLACK_KB: u64 = 2048;
/// Bounds on everything that waits.
const WAIT: Duration = Duration::from_secs(10);

/// A `kernel-serve` child; killed on drop if the test fails first.
struct Server {
    child: Option<Child>,
    lines: Receiver<String>,
    addr: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .args(["kernel-serve", "--json", "--duration", "120"])
            .args(["--stall-timeout", STALL_S])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bypass");
        let lines = stdout_lines(&mut child);
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("ready line");
        let addr = line
            .split(' ')
            .nth(2)
            .expect("ready PROTO ADDR")
            .to_string();
        Server {
            child: Some(child),
            lines,
            addr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// A `/proc/PID/status` field in kB, e.g. "VmRSS".
    fn status_kb(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn stop(mut self) -> Value {
        let mut child = self.child.take().unwrap();
        let st = stop_child(&mut child, Signal::Term, WAIT, "kernel-serve");
        assert!(st.success(), "kernel-serve exit status {st}");
        let last = self.lines.recv_timeout(WAIT).expect("final report");
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A TCP or unix client socket.
trait Duplex: Read + Write + AsRawFd + Send {
    fn set_nonblocking(&self);
}

impl Duplex for TcpStream {
    fn set_nonblocking(&self) {
        TcpStream::set_nonblocking(self, true).unwrap();
    }
}

impl Duplex for UnixStream {
    fn set_nonblocking(&self) {
        UnixStream::set_nonblocking(self, true).unwrap();
    }
}

type Connect = Arc<dyn Fn() -> Box<dyn Duplex> + Send + Sync>;

fn request(id: u64, payload: usize) -> Vec<u8> {
    let r = RpcRepr::request(RpcMethod::Echo, id, 0, payload as u32);
    let mut v = vec![0u8; HEADER_LEN + payload];
    r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
    for (i, b) in v[HEADER_LEN..].iter_mut().enumerate() {
        *b = (i as u64 ^ id) as u8;
    }
    v
}

/// The well-behaved client: one echo at a time until `stop`, every reply checked byte by
/// byte (the server's timestamp aside). Returns (sent, received).
fn good_client(connect: Connect, stop: Arc<AtomicBool>, progress: Arc<AtomicU64>) -> (u64, u64) {
    let mut c = connect();
    let (mut sent, mut received) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(50);
    let mut buf = vec![0u8; HEADER_LEN + 2000];
    while !stop.load(Ordering::Relaxed) && sent < 2_000_000 && Instant::now() < deadline {
        let req = request(sent, (sent % 2000) as usize);
        c.write_all(&req).expect("good client: send");
        sent += 1;
        let reply = &mut buf[..req.len()];
        c.read_exact(reply).expect("good client: a reply");
        let h = RpcHeader::new_unchecked(&reply[..]);
        assert_eq!(h.request_id(), sent - 1);
        assert_eq!(&reply[HEADER_LEN..], &req[HEADER_LEN..], "payload");
        received += 1;
        progress.store(received, Ordering::Relaxed);
    }
    (sent, received)
}

/// Sends requests without ever reading until the socket takes no more for a while (its
/// buffers and the server's are full); returns the connection, still open.
fn never_reader(connect: &Connect) -> Box<dyn Duplex> {
    let mut c = connect();
    c.set_nonblocking();
    let req = request(7, 60_000);
    let (mut off, mut idle_since) = (0, None::<Instant>);
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        match c.write(&req[off..]) {
            Ok(k) => {
                off = (off + k) % req.len();
                idle_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    return c;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("never-reading client: {e}"),
        }
    }
    panic!("the never-reading client's socket never filled");
}

/// What one abusive connection does before it is closed.
fn abuse(c: &mut Box<dyn Duplex>, kind: usize, id: u64, tcp: bool) {
    let req = request(id, 1000);
    match kind {
        // Half a header, then gone.
        0 => c.write_all(&req[..HEADER_LEN / 2]).unwrap(),
        // The header and half the payload.
        1 => c.write_all(&req[..HEADER_LEN + 500]).unwrap(),
        // Connects and says nothing.
        2 => {}
        // Garbage: framing lost, the server closes.
        3 => {
            let mut bad = req.clone();
            bad[0] ^= 0xff;
            c.write_all(&bad).unwrap();
        }
        // A whole request and half another, then a reset before reading the reply.
        4 => {
            c.write_all(&req).unwrap();
            c.write_all(&req[..100]).unwrap();
            if tcp {
                set_linger_zero(&c.as_raw_fd()).unwrap();
            }
            // Unix resets the peer only if a reply waits unread at the close.
            wait_readable(c.as_raw_fd());
        }
        // A whole request and its reply, then an orderly close.
        _ => {
            c.write_all(&req).unwrap();
            let mut reply = vec![0u8; req.len()];
            c.read_exact(&mut reply).expect("a reply");
        }
    }
}

fn wait_readable(fd: std::os::fd::RawFd) {
    let mut ep = Epoll::new(1).unwrap();
    ep.add(&fd, 0, Interest::Read).unwrap();
    assert_eq!(ep.wait(WAIT).unwrap().count(), 1, "no reply to wait for");
}

/// Polls `f` until it holds or [`WAIT`] passes.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn n(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for k in path {
        x = &x[*k];
    }
    x.as_u64().unwrap_or_else(|| panic!("no {path:?} in {v}"))
}

/// rx == tx + every drop.
fn assert_balanced(v: &Value) {
    let drops: u64 = v["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|d| d.as_u64().unwrap())
        .sum();
    assert_eq!(n(v, &["rx"]), n(v, &["tx"]) + drops, "{v}");
}

fn run_abuse(server: Server, connect: Connect, tcp: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let good = {
        let (c, s, p) = (connect.clone(), stop.clone(), progress.clone());
        std::thread::spawn(move || good_client(c, s, p))
    };
    // The good client's connection is part of the baseline.
    eventually("the good client's first replies", || {
        progress.load(Ordering::Relaxed) >= 100
    });
    let (fds0, rss0) = (server.fds(), server.status_kb("VmRSS"));
    let t0 = Instant::now();
    let stuck = never_reader(&connect);
    let mut id = 1000;
    for _ in 0..WAVES {
        let mut wave: Vec<Box<dyn Duplex>> = (0..PER_WAVE).map(|_| connect()).collect();
        for (i, c) in wave.iter_mut().enumerate() {
            abuse(c, i % KINDS, id, tcp);
            id += 1;
        }
        assert!(
            !good.is_finished(),
            "the good client stopped during the abuse"
        );
        drop(wave);
    }
    let abuse_s = t0.elapsed().as_secs_f64();
    // The never-reading client is closed by the server after --stall-timeout.
    eventually("the server to release every abusive connection", || {
        server.fds() == fds0
    });
    drop(stuck);
    let fds1 = server.fds();
    let (rss1, hwm) = (server.status_kb("VmRSS"), server.status_kb("VmHWM"));
    stop.store(true, Ordering::Relaxed);
    let (sent, received) = good.join().expect("good client");
    let v = server.stop();
    eprintln!(
        "kernel_abuse {} {}: {} abusive connections in {abuse_s:.2} s; good client {sent} sent, \
         {received} received; fds {fds0} -> {fds1}; VmRSS {rss0} -> {rss1} kB (peak {hwm} kB); {}",
        if tcp { "tcp" } else { "unix" },
        v["backend"],
        WAVES * PER_WAVE,
        v["closed"]
    );
    assert_eq!(sent, received, "the good client lost replies");
    assert!(sent > 0);
    assert_eq!(fds1, fds0, "fds back to the baseline");
    assert!(rss1 <= rss0 + RSS_SLACK_KB, "RSS {rss0} -> {rss1} kB");
    check_counters(&v, tcp);
}

fn check_counters(v: &Value, tcp: bool) {
    let total = (WAVES * PER_WAVE) as u64 + 2;
    assert_eq!(n(v, &["connections"]), total, "{v}");
    let closed: u64 = v["closed"]
        .as_object()
        .unwrap()
        .values()
        .map(|d| d.as_u64().unwrap())
        .sum();
    assert_eq!(closed, total, "every connection ends under one reason: {v}");
    let kinds_with = |k: usize| (WAVES * (0..PER_WAVE).filter(|i| i % KINDS == k).count()) as u64;
    assert_eq!(n(v, &["closed", "framing"]), kinds_with(3), "{v}");
    assert_eq!(n(v, &["drops", "bad-magic"]), kinds_with(3), "{v}");
    assert_eq!(
        n(v, &["closed", "stalled"]),
        1,
        "the never-reading client: {v}"
    );
    assert!(n(v, &["drops", "stalled"]) >= 1, "its replies: {v}");
    assert_eq!(n(v, &["closed", "refused"]), 0, "{v}");
    // Half headers, half payloads and the resets' half requests; and the never-reading
    // client's, if its last read ended inside a message.
    let cut = kinds_with(0) + kinds_with(1) + kinds_with(4);
    let truncated = n(v, &["drops", "truncated"]);
    assert!(
        truncated == cut || truncated == cut + 1,
        "truncated {truncated}, {cut} cut: {v}"
    );
    // Resets are seen as resets (on unix: a close with a reply unread); the good client's
    // orderly close at the end is an eof, or a stop if the server stops first.
    assert_eq!(n(v, &["closed", "reset"]), kinds_with(4), "{v}");
    let _ = tcp;
    let eof = kinds_with(0) + kinds_with(1) + kinds_with(2) + kinds_with(5) + 1;
    assert_eq!(
        n(v, &["closed", "eof"]) + n(v, &["closed", "stopped"]),
        eof,
        "{v}"
    );
    assert_balanced(v);
}

#[test]
fn tcp_survives_abusive_clients() {
    tcp_abuse("blocking");
}

/// The busy backend spins on epoll_wait with a zero timeout: the same rules must hold.
#[test]
fn tcp_busy_survives_abusive_clients() {
    tcp_abuse("busy");
}

fn tcp_abuse(backend: &str) {
    let _g = serial();
    let server = Server::start(&[
        "--proto",
        "tcp",
        "--bind",
        "127.0.0.1:0",
        "--backend",
        backend,
    ]);
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let connect: Connect = Arc::new(move || {
        let c = TcpStream::connect(addr).expect("connect");
        c.set_nodelay(true).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.set_write_timeout(Some(WAIT)).unwrap();
        Box::new(c)
    });
    run_abuse(server, connect, true);
}

#[test]
fn unix_survives_abusive_clients() {
    let _g = serial();
    let path = PathBuf::from(format!("/tmp/bypass-abuse-{}.sock", std::process::id()));
    let _rm = TempFiles(vec![path.clone()]);
    let server = Server::start(&["--proto", "unix", "--path", path.to_str().unwrap()]);
    let p = path.clone();
    let connect: Connect = Arc::new(move || {
        let c = UnixStream::connect(&p).expect("connect");
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.set_write_timeout(Some(WAIT)).unwrap();
        Box::new(c)
    });
    run_abuse(server, connect, false);
}

/// Whether a round trip on `c` works; false if the server closed it (EOF or a reset).
fn round_trip(c: &mut Box<dyn Duplex>, id: u64) -> bool {
    let req = request(id, 10);
    if c.write_all(&req).is_err() {
        return false;
    }
    let mut reply = vec![0u8; req.len()];
    match c.read_exact(&mut reply) {
        Ok(()) => {
            assert_eq!(&reply[HEADER_LEN..], &req[HEADER_LEN..]);
            true
        }
        Err(e) => {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
                ),
                "{e}"
            );
            false
        }
    }
}

#[test]
fn connections_over_the_limit_are_refused_and_slots_come_back() {
    let _g = serial();
    let server = Server::start(&[
        "--proto",
        "tcp",
        "--bind",
        "127.0.0.1:0",
        "--max-connections",
        "10",
    ]);
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let connect = move || -> Box<dyn Duplex> {
        let c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(WAIT)).unwrap();
        Box::new(c)
    };
    // Served, so the server's thread is up (its epoll fd made): the fd baseline.
    let mut probe = connect();
    assert!(round_trip(&mut probe, 1000));
    let fds0 = server.fds();
    let mut held: Vec<Box<dyn Duplex>> = Vec::new();
    for i in 0..12 {
        let mut c = connect();
        assert_eq!(round_trip(&mut c, i), i < 9, "connection {i}");
        held.push(c);
    }
    drop(held);
    eventually("the held connections to close", || server.fds() == fds0);
    let mut again = connect();
    assert!(round_trip(&mut again, 99), "a slot freed is served again");
    drop((again, probe));
    let v = server.stop();
    assert_eq!(n(&v, &["connections"]), 14, "{v}");
    assert_eq!(n(&v, &["closed", "refused"]), 3, "{v}");
    assert_eq!((n(&v, &["rx"]), n(&v, &["tx"])), (11, 11), "{v}");
}
