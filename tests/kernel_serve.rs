//! `bypass kernel-serve` end to end: the binary is spawned on 127.0.0.1 or a unix socket
//! in /tmp (no root needed), real RPC requests go to it from std sockets, every reply is
//! checked byte by byte, and the final JSON counters must account for every message.
#![forbid(unsafe_code)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bypass::wire::rpc::HEADER_LEN;
use bypass::wire::sockperf::{FLAG_CLIENT, FLAG_PONG_REQUEST, FLAG_WARMUP};
use bypass::wire::{RpcHeader, RpcKind, RpcMethod, RpcRepr, RpcStatus, SockperfHeader};
use serde_json::Value;
use support::{run, strs, wait_exit, KernelServe, TempFiles};

/// Servers that spin own a core; two cores do not fit several at once.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const SPIN_MAX: u32 = 200_000;
const WAIT: Duration = Duration::from_secs(5);

/// `kernel-serve --proto udp --bind 127.0.0.1:0 EXTRA`.
fn udp_server(extra: &[&str]) -> KernelServe {
    let mut a = vec!["--proto", "udp", "--bind", "127.0.0.1:0"];
    a.extend(extra);
    KernelServe::start(&a)
}

/// `kernel-serve --proto tcp --bind 127.0.0.1:0 EXTRA`.
fn tcp_server(extra: &[&str]) -> KernelServe {
    let mut a = vec!["--proto", "tcp", "--bind", "127.0.0.1:0"];
    a.extend(extra);
    KernelServe::start(&a)
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("no integer {k} in {v}"))
}

fn drop_count(v: &Value, reason: &str) -> u64 {
    v["drops"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("no drop reason {reason} in {v}"))
}

/// Each drop reason named counted exactly as many.
fn assert_drops(v: &Value, want: &[(&str, u64)]) {
    for &(reason, n) in want {
        assert_eq!(drop_count(v, reason), n, "{reason}: {v}");
    }
}

/// A successful spin request's `server_ns` includes the 20 us spin of `basic_cases`.
fn assert_spin_counted(req: &[u8], status: RpcStatus, server_ns: u32) {
    if RpcHeader::new_unchecked(req).method() == RpcMethod::Spin && status == RpcStatus::Ok {
        assert!(
            server_ns >= 20_000,
            "server_ns {server_ns} must include the 20 us spin"
        );
    }
}

/// rx == tx + every drop, in total and per thread.
fn assert_balanced(v: &Value) {
    let sum = |d: &Value| {
        d.as_object()
            .unwrap()
            .values()
            .map(|x| x.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(u(v, "rx"), u(v, "tx") + sum(&v["drops"]), "{v}");
    for t in v["per_thread"].as_array().unwrap() {
        assert_eq!(u(t, "rx"), u(t, "tx") + sum(&t["drops"]), "{v}");
    }
}

fn request(method: RpcMethod, id: u64, payload: &[u8]) -> Vec<u8> {
    let r = RpcRepr::request(method, id, 0x1122_3344_0000_0000 + id, payload.len() as u32);
    let mut v = vec![0u8; r.buffer_len()];
    r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
    v[HEADER_LEN..].copy_from_slice(payload);
    v
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

/// The reply `req` must get: byte for byte the request with kind response (and the
/// server's `server_ns`), or for an error the 32-byte header with kind error, `status`
/// and length 0. Returns the reply's `server_ns`.
fn check_reply(req: &[u8], reply: &[u8], status: RpcStatus) -> u32 {
    let server_ns = RpcHeader::new_checked(reply)
        .unwrap_or_else(|e| panic!("reply does not parse ({e:?}): {reply:02x?}"))
        .server_ns();
    let mut want = if status == RpcStatus::Ok {
        req.to_vec()
    } else {
        req[..HEADER_LEN].to_vec()
    };
    {
        let mut h = RpcHeader::new_unchecked(&mut want[..]);
        if status == RpcStatus::Ok {
            h.set_kind(RpcKind::Response);
        } else {
            h.set_kind(RpcKind::Error);
            h.set_status(status);
            h.set_length(0);
        }
        h.set_server_ns(server_ns);
    }
    assert_eq!(reply, &want[..], "reply differs from the expected one");
    server_ns
}

/// The requests every transport is checked with, and the status each must get.
fn basic_cases() -> Vec<(Vec<u8>, RpcStatus)> {
    vec![
        (request(RpcMethod::Echo, 1, b""), RpcStatus::Ok),
        (request(RpcMethod::Echo, 2, &pattern(1)), RpcStatus::Ok),
        (request(RpcMethod::Echo, 3, &pattern(1400)), RpcStatus::Ok),
        (
            request(RpcMethod::Spin, 4, &20_000u32.to_be_bytes()),
            RpcStatus::Ok,
        ),
        (
            request(RpcMethod::Spin, 5, &(SPIN_MAX + 1).to_be_bytes()),
            RpcStatus::BadArgument,
        ),
        (
            request(RpcMethod::Spin, 6, b"\0\0\x01"),
            RpcStatus::BadLength,
        ),
        (
            request(RpcMethod::Other(9), 7, &pattern(10)),
            RpcStatus::UnknownMethod,
        ),
    ]
}

fn udp_client(server: SocketAddr) -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.connect(server).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c
}

fn udp_round_trip(c: &UdpSocket, req: &[u8], status: RpcStatus) -> u32 {
    c.send(req).unwrap();
    let mut buf = [0u8; 65_536];
    let n = c.recv(&mut buf).expect("reply");
    check_reply(req, &buf[..n], status)
}

fn udp_backend(backend: &str) {
    let _g = serial();
    let max = SPIN_MAX.to_string();
    let s = udp_server(&[
        "--backend",
        backend,
        "--sockperf-port",
        "0",
        "--spin-max-ns",
        &max,
    ]);
    let c = udp_client(s.sock_addr());
    for (req, status) in basic_cases() {
        let ns = udp_round_trip(&c, &req, status);
        assert_spin_counted(&req, status, ns);
    }
    // Bytes after `length` come back unchanged in a response.
    let mut trailing = request(RpcMethod::Echo, 8, b"abcXYZ");
    trailing[31] = 3;
    udp_round_trip(&c, &trailing, RpcStatus::Ok);

    // Junk gets no answer: the next datagram back is the reply to the echo sent after it.
    let good = request(RpcMethod::Echo, 9, b"hi");
    let edit = |at: usize, v: u8| {
        let mut m = good.clone();
        m[at] = v;
        m
    };
    let junk = [
        b"junk".to_vec(), // truncated
        edit(0, 0x99),    // bad-magic
        edit(2, 7),       // bad-version
        edit(3, 1),       // not-request
        edit(3, 2),       // not-request
        edit(31, 3),      // bad-length
    ];
    for j in &junk {
        c.send(j).unwrap();
    }
    let after = request(RpcMethod::Echo, 10, b"after");
    udp_round_trip(&c, &after, RpcStatus::Ok);

    let v = s.stop();
    assert_eq!(v["proto"], "udp");
    assert_eq!(v["backend"], backend);
    let replies = basic_cases().len() as u64 + 2;
    assert_eq!(u(&v, "tx"), replies, "{v}");
    assert_eq!(u(&v, "rx"), replies + junk.len() as u64, "{v}");
    assert_drops(
        &v,
        &[
            ("truncated", 1),
            ("bad-magic", 1),
            ("bad-version", 1),
            ("not-request", 2),
            ("bad-length", 1),
            ("send-error", 0),
        ],
    );
    assert_eq!(u(&v, "connections"), 0);
    assert_balanced(&v);
}

#[test]
fn udp_blocking_serves_rpc() {
    udp_backend("blocking");
}

#[test]
fn udp_busy_serves_rpc() {
    udp_backend("busy");
}

#[test]
fn udp_batch_serves_rpc() {
    udp_backend("batch");
}

#[test]
fn udp_batch_answers_a_burst_in_order() {
    let _g = serial();
    let s = udp_server(&["--backend", "batch", "--batch", "4", "--sockperf-port", "0"]);
    let c = udp_client(s.sock_addr());
    // More than a batch in flight at once, with junk mixed in.
    let reqs: Vec<Vec<u8>> = (0..10)
        .map(|i| request(RpcMethod::Echo, 100 + i, &pattern(i as usize * 13)))
        .collect();
    for (i, r) in reqs.iter().enumerate() {
        c.send(r).unwrap();
        if i % 3 == 0 {
            c.send(b"x").unwrap();
        }
    }
    let mut buf = [0u8; 2048];
    for r in &reqs {
        let n = c.recv(&mut buf).unwrap();
        check_reply(r, &buf[..n], RpcStatus::Ok);
    }
    let v = s.stop();
    assert_eq!((u(&v, "rx"), u(&v, "tx")), (14, 10), "{v}");
    assert_eq!(drop_count(&v, "truncated"), 4);
    assert_balanced(&v);
}

#[test]
fn udp_two_threads_share_the_port() {
    let _g = serial();
    let s = udp_server(&["--threads", "2", "--sockperf-port", "0"]);
    // SO_REUSEPORT spreads flows by hash: 32 source ports all landing on one socket has
    // odds of 2^-31.
    let clients: Vec<UdpSocket> = (0..32).map(|_| udp_client(s.sock_addr())).collect();
    for (i, c) in clients.iter().enumerate() {
        udp_round_trip(c, &request(RpcMethod::Echo, i as u64, b"t"), RpcStatus::Ok);
    }
    let v = s.stop();
    assert_eq!(
        (u(&v, "threads"), u(&v, "rx"), u(&v, "tx")),
        (2, 32, 32),
        "{v}"
    );
    let per = v["per_thread"].as_array().unwrap();
    assert_eq!(per.len(), 2);
    for t in per {
        assert!(u(t, "rx") > 0, "a thread got nothing: {v}");
    }
    assert_balanced(&v);
}

trait Duplex: Read + Write {}
impl Duplex for TcpStream {}
impl Duplex for UnixStream {}

fn read_reply(c: &mut dyn Duplex, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    c.read_exact(&mut buf).expect("reply");
    buf
}

fn reply_len(req: &[u8], status: RpcStatus) -> usize {
    if status == RpcStatus::Ok {
        req.len()
    } else {
        HEADER_LEN
    }
}

fn stream_round_trip(c: &mut dyn Duplex, req: &[u8], status: RpcStatus) -> u32 {
    c.write_all(req).unwrap();
    let reply = read_reply(c, reply_len(req, status));
    check_reply(req, &reply, status)
}

/// The server must close the connection: EOF (or a reset) and nothing else.
fn expect_closed(c: &mut dyn Duplex) {
    let mut b = [0u8; 64];
    match c.read(&mut b) {
        Ok(0) => {}
        Ok(n) => panic!("unexpected {n} bytes: {:02x?}", &b[..n]),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected the server to close: {e}"),
    }
}

/// Runs every stream check over connections from `connect`; returns (replies, connections).
fn stream_checks(connect: &dyn Fn() -> Box<dyn Duplex>) -> (u64, u64) {
    let mut replies = 0;
    let mut c = connect();
    for (req, status) in basic_cases() {
        let ns = stream_round_trip(&mut *c, &req, status);
        replies += 1;
        assert_spin_counted(&req, status, ns);
    }

    // Several messages in one write: answered in order.
    let batch = [
        (request(RpcMethod::Echo, 20, b"hello"), RpcStatus::Ok),
        (
            request(RpcMethod::Spin, 21, &1000u32.to_be_bytes()),
            RpcStatus::Ok,
        ),
        (
            request(RpcMethod::Other(9), 22, b"zz"),
            RpcStatus::UnknownMethod,
        ),
        (request(RpcMethod::Echo, 23, &pattern(100)), RpcStatus::Ok),
    ];
    let all: Vec<u8> = batch.iter().flat_map(|(r, _)| r.clone()).collect();
    c.write_all(&all).unwrap();
    for (req, status) in &batch {
        let reply = read_reply(&mut *c, reply_len(req, *status));
        check_reply(req, &reply, *status);
        replies += 1;
    }

    // One message split over three writes.
    let split = request(RpcMethod::Echo, 30, &pattern(200));
    for part in [&split[..10], &split[10..110], &split[110..]] {
        c.write_all(part).unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    check_reply(&split, &read_reply(&mut *c, split.len()), RpcStatus::Ok);
    replies += 1;

    // A well-framed message that is not a request is skipped, the stream goes on.
    let mut response = request(RpcMethod::Echo, 31, b"abc");
    response[3] = 1;
    c.write_all(&response).unwrap();
    stream_round_trip(
        &mut *c,
        &request(RpcMethod::Echo, 32, b"next"),
        RpcStatus::Ok,
    );
    replies += 1;

    // The largest message allowed: 65536 bytes in total.
    let max = request(RpcMethod::Echo, 33, &pattern(65_536 - HEADER_LEN));
    stream_round_trip(&mut *c, &max, RpcStatus::Ok);
    replies += 1;
    drop(c);

    // A bad magic ends the connection, after the replies already due.
    let mut c = connect();
    let echo = request(RpcMethod::Echo, 40, b"before");
    let mut bad = request(RpcMethod::Echo, 41, b"");
    bad[0] = 0x00;
    let mut both = echo.clone();
    both.extend_from_slice(&bad);
    c.write_all(&both).unwrap();
    check_reply(&echo, &read_reply(&mut *c, echo.len()), RpcStatus::Ok);
    replies += 1;
    expect_closed(&mut *c);

    // Oversize: refused from the header alone.
    let mut c = connect();
    let mut over = request(RpcMethod::Echo, 50, b"");
    over[28..32].copy_from_slice(&((65_536 - HEADER_LEN + 1) as u32).to_be_bytes());
    c.write_all(&over).unwrap();
    expect_closed(&mut *c);

    // A client leaving mid-message: a normal disconnect, the partial message counted.
    let mut c = connect();
    c.write_all(&request(RpcMethod::Echo, 60, b"partial")[..20])
        .unwrap();
    drop(c);

    // A new connection after a framing close is served by the same single thread.
    let mut c = connect();
    stream_round_trip(
        &mut *c,
        &request(RpcMethod::Echo, 70, b"last"),
        RpcStatus::Ok,
    );
    replies += 1;
    (replies, 5)
}

fn check_stream_report(v: &Value, proto: &str, replies: u64, conns: u64) {
    assert_eq!(v["proto"], proto);
    assert_eq!(u(v, "tx"), replies, "{v}");
    assert_eq!(u(v, "connections"), conns, "{v}");
    assert_drops(
        v,
        &[
            ("not-request", 1),
            ("bad-magic", 1),
            ("oversize", 1),
            ("truncated", 1),
            ("bad-version", 0),
            ("send-error", 0),
        ],
    );
    assert_eq!(u(v, "rx"), replies + 4, "{v}");
    assert_balanced(v);
}

fn tcp(backend: &str) {
    let _g = serial();
    let max = SPIN_MAX.to_string();
    let s = tcp_server(&["--backend", backend, "--spin-max-ns", &max]);
    let addr = s.sock_addr();
    let connect = move || -> Box<dyn Duplex> {
        let c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        Box::new(c)
    };
    let (replies, conns) = stream_checks(&connect);
    let v = s.stop();
    assert_eq!(v["backend"], backend);
    check_stream_report(&v, "tcp", replies, conns);
}

#[test]
fn tcp_blocking_serves_rpc() {
    tcp("blocking");
}

#[test]
fn tcp_busy_serves_rpc() {
    tcp("busy");
}

fn unix_path(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    PathBuf::from(format!(
        "/tmp/bypass-kserve-test-{tag}-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn unix(backend: &str) {
    let _g = serial();
    let path = unix_path(backend);
    let _rm = TempFiles(vec![path.clone()]);
    // A stale socket file (nobody listening) is replaced.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let max = SPIN_MAX.to_string();
    let s = KernelServe::start(&[
        "--proto",
        "unix",
        "--path",
        path.to_str().unwrap(),
        "--backend",
        backend,
        "--spin-max-ns",
        &max,
    ]);
    assert_eq!(s.addr, path.to_str().unwrap());
    let p = path.clone();
    let connect = move || -> Box<dyn Duplex> {
        let c = UnixStream::connect(&p).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        Box::new(c)
    };
    let (replies, conns) = stream_checks(&connect);
    let v = s.stop();
    check_stream_report(&v, "unix", replies, conns);
    assert!(!path.exists(), "the server removes its socket file");
}

#[test]
fn unix_blocking_serves_rpc() {
    unix("blocking");
}

#[test]
fn unix_busy_serves_rpc() {
    unix("busy");
}

#[test]
fn unix_path_that_is_not_a_socket_is_refused() {
    let path = unix_path("file");
    let _rm = TempFiles(vec![path.clone()]);
    std::fs::write(&path, b"not a socket").unwrap();
    let out = run(
        &strs(&[
            "kernel-serve",
            "--proto",
            "unix",
            "--path",
            path.to_str().unwrap(),
        ]),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--path"));
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket", "left alone");
}

#[test]
fn tcp_threads_serve_connections_at_once() {
    let _g = serial();
    let s = tcp_server(&["--threads", "2"]);
    let mut a = TcpStream::connect(s.sock_addr()).unwrap();
    let mut b = TcpStream::connect(s.sock_addr()).unwrap();
    for c in [&a, &b] {
        c.set_read_timeout(Some(WAIT)).unwrap();
    }
    // `a` stays open while `b` is answered: two threads, one connection each.
    stream_round_trip(&mut a, &request(RpcMethod::Echo, 1, b"a"), RpcStatus::Ok);
    stream_round_trip(&mut b, &request(RpcMethod::Echo, 2, b"b"), RpcStatus::Ok);
    stream_round_trip(&mut a, &request(RpcMethod::Echo, 3, b"a"), RpcStatus::Ok);
    let v = s.stop();
    assert_eq!(
        (u(&v, "rx"), u(&v, "tx"), u(&v, "connections")),
        (3, 3, 2),
        "{v}"
    );
    let per = v["per_thread"].as_array().unwrap();
    assert!(per.iter().all(|t| u(t, "rx") > 0), "{v}");
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sockperf_message(flags: u16, len: usize) -> Vec<u8> {
    let mut v = pattern(len);
    let mut h = SockperfHeader::new_unchecked(&mut v[..]);
    h.set_sequence_number(1234);
    h.set_flags(flags);
    h.set_message_len(len as u32);
    v
}

/// Runs the unmodified sockperf client for 1 s; returns (received, dropped), or None
/// when sockperf is not installed.
fn run_sockperf(port: u16) -> Option<(u64, u64)> {
    let mut child = match Command::new("sockperf")
        .args([
            "ping-pong",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => panic!("sockperf: {e}"),
    };
    wait_exit(&mut child, Duration::from_secs(20), "sockperf");
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after = |line_has: &str, key: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.contains(line_has))
            .unwrap_or_else(|| panic!("no '{line_has}' in sockperf output:\n{text}"));
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key}:\n{text}")) + key.len()..];
        rest.trim_start()
            .split(|ch: char| !ch.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no number after {key}:\n{text}"))
    };
    let received = after("[Valid Duration]", "ReceivedMessages=");
    let dropped = after("# dropped messages", "# dropped messages =");
    Some((received, dropped))
}

fn sockperf_backend(backend: &str) {
    let _g = serial();
    let port = free_udp_port();
    let s = udp_server(&["--backend", backend, "--sockperf-port", &port.to_string()]);
    let c = udp_client(SocketAddr::from(([127, 0, 0, 1], port)));
    // The protocol by hand: a pong request comes back with the client bit cleared,
    // anything else gets nothing (the next datagram is the answer to the next ping).
    let malformed = sockperf_message(FLAG_CLIENT | FLAG_PONG_REQUEST, 14)[..10].to_vec();
    for m in [
        sockperf_message(FLAG_CLIENT, 64),
        sockperf_message(FLAG_PONG_REQUEST, 64),
        malformed,
    ] {
        c.send(&m).unwrap();
    }
    let mut buf = [0u8; 2048];
    for flags in [
        FLAG_CLIENT | FLAG_PONG_REQUEST,
        FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP,
    ] {
        let ping = sockperf_message(flags, 300);
        c.send(&ping).unwrap();
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], &sockperf_message(flags & !FLAG_CLIENT, 300)[..]);
    }
    // The RPC port still works next to it.
    udp_round_trip(
        &udp_client(s.sock_addr()),
        &request(RpcMethod::Echo, 1, b"rpc"),
        RpcStatus::Ok,
    );
    let sockperf = run_sockperf(port);
    let v = s.stop();
    assert_drops(
        &v,
        &[
            ("sockperf-no-reply-wanted", 1),
            ("sockperf-not-client", 1),
            ("sockperf-malformed", 1),
        ],
    );
    assert_balanced(&v);
    match sockperf {
        None => eprintln!("sockperf is not installed: skipped the sockperf client run"),
        Some((received, dropped)) => {
            assert!(received > 100, "sockperf got only {received} replies");
            assert_eq!(dropped, 0, "sockperf lost replies");
            assert!(u(&v, "tx") >= received + 3, "{v}");
        }
    }
}

#[test]
fn sockperf_blocking() {
    sockperf_backend("blocking");
}

#[test]
fn sockperf_busy() {
    sockperf_backend("busy");
}

#[test]
fn sockperf_batch() {
    sockperf_backend("batch");
}

#[test]
fn bypass_load_gets_every_reply() {
    let _g = serial();
    let s = udp_server(&["--sockperf-port", "0"]);
    let json = std::env::temp_dir().join(format!("bypass-kserve-load-{}.json", std::process::id()));
    let _rm = TempFiles(vec![json.clone()]);
    let out = run(
        &strs(&[
            "load",
            "--transport",
            "udp",
            "--server",
            &s.addr,
            "--count",
            "2000",
            "--window",
            "1",
            "--json",
            json.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "bypass load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let sum = &report["summary"];
    assert_eq!((u(sum, "received"), u(sum, "lost")), (2000, 0), "{sum}");
    let v = s.stop();
    assert_eq!((u(&v, "rx"), u(&v, "tx")), (2000, 2000), "{v}");
}

#[test]
fn duration_stops_by_itself_with_a_human_report() {
    let out = run(
        &strs(&[
            "kernel-serve",
            "--proto",
            "udp",
            "--bind",
            "127.0.0.1:0",
            "--sockperf-port",
            "0",
            "--duration",
            "0.3",
        ]),
        Duration::from_secs(10),
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().starts_with("ready udp 127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("kernel-serve udp blocking"), "{text}");
    assert!(text.contains("total: rx 0 tx 0 dropped 0"), "{text}");
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--proto", "udp", "--backend", "sideways"], "--backend"),
        (&["--proto", "tcp", "--backend", "batch"], "--backend"),
        (&["--proto", "unix", "--backend", "batch"], "--backend"),
        (&["--proto", "udp", "--threads", "0"], "--threads"),
        (&["--proto", "udp", "--cpus", "abc"], "--cpus"),
        (&["--proto", "udp", "--cpus", "100000"], "--cpus"),
        (&["--proto", "udp", "--batch", "8"], "--batch"),
        (
            &["--proto", "tcp", "--sockperf-port", "9"],
            "--sockperf-port",
        ),
        (&["--proto", "udp", "--duration", "-2"], "--duration"),
        (&["--proto", "udp", "--service", "gauss:3us"], "--service"),
        (&["--proto", "udp", "--service", "fixed:2s"], "--service"),
        (&["--proto", "udp", "--replicas", "0"], "--replicas"),
        (
            &["--proto", "udp", "--bind", "127.0.0.1:0", "--replicas", "2"],
            "--replicas",
        ),
        (
            &[
                "--proto",
                "udp",
                "--bind",
                "127.0.0.1:65535",
                "--replicas",
                "2",
            ],
            "--replicas",
        ),
        (
            &[
                "--proto",
                "unix",
                "--path",
                "/tmp/bypass-never",
                "--replicas",
                "2",
            ],
            "--replicas",
        ),
        (&["--proto", "sctp"], "--proto"),
    ];
    for (args, flag) in cases {
        let mut a = strs(&["kernel-serve"]);
        a.extend(strs(args));
        let out = run(&a, Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} should name {flag}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: no ready line");
    }
}

/// Two ports free on 127.0.0.1 for UDP right now (P and P+1), for replicas.
fn free_udp_pair() -> u16 {
    for _ in 0..50 {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65535 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free UDP ports on 127.0.0.1");
}

#[test]
fn udp_replicas_answer_on_their_own_ports_held_by_the_model() {
    let _g = serial();
    let port = free_udp_pair();
    let bind = format!("127.0.0.1:{port}");
    let s = KernelServe::start(&[
        "--proto",
        "udp",
        "--bind",
        &bind,
        "--replicas",
        "2",
        "--service",
        "fixed:300us",
        "--sockperf-port",
        "0",
    ]);
    assert_eq!(s.addr, format!("127.0.0.1:{port},127.0.0.1:{}", port + 1));
    for (i, p) in [port, port + 1].into_iter().enumerate() {
        let c = udp_client(SocketAddr::from(([127, 0, 0, 1], p)));
        let ns = udp_round_trip(&c, &request(RpcMethod::Echo, i as u64, b"r"), RpcStatus::Ok);
        assert!(
            ns >= 300_000,
            "replica {p}: server_ns {ns} must hold the 300 us draw"
        );
    }
    let v = s.stop();
    assert_eq!(v["service"], "fixed:300us", "{v}");
    assert_eq!(
        (u(&v, "rx"), u(&v, "tx"), u(&v, "threads")),
        (2, 2, 2),
        "{v}"
    );
    assert_balanced(&v);
}

/// The CPU time process `pid` has used so far, every thread's (utime + stime of
/// /proc/PID/stat), in ms. Those count in USER_HZ, 100 on Linux whatever the kernel's HZ.
fn cpu_ms(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces; the fields after its `)` start at field 3 (state),
    // so utime (field 14) and stime (15) are the 12th and 13th of them.
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0] + f[1]) * 10
}

/// The first CPU this process may run on: the one both replicas are pinned to.
fn one_cpu() -> String {
    let ids = core_affinity::get_core_ids().expect("this process's CPU affinity");
    ids.iter().map(|c| c.id).min().unwrap().to_string()
}

const HELD_MS: u64 = 2;
/// Requests each replica answers, and how many each keeps in flight: a queue always
/// waiting at both keeps both holding a request at once for the whole run.
const HELD_PER_REPLICA: u64 = 100;
const HELD_WINDOW: u64 = 4;

/// Two udp replicas pinned to one CPU, each held `HELD_MS` per request by `--service
/// fixed:2ms,hold=HOLD`, run closed-loop with `HELD_WINDOW` requests in flight to each
/// replica at once. Returns the server's CPU time over the run (ms) and its final report;
/// every reply must carry a server_ns of at least the hold.
fn held_replicas(hold: &str) -> (u64, Value) {
    let port = free_udp_pair();
    let bind = format!("127.0.0.1:{port}");
    let (cpu, model) = (one_cpu(), format!("fixed:{HELD_MS}ms,hold={hold}"));
    let s = KernelServe::start(&[
        "--proto",
        "udp",
        "--bind",
        &bind,
        "--replicas",
        "2",
        "--cpus",
        &cpu,
        "--service",
        &model,
        "--sockperf-port",
        "0",
    ]);
    let (before, t0) = (cpu_ms(s.pid()), std::time::Instant::now());
    std::thread::scope(|sc| {
        for (r, p) in [port, port + 1].into_iter().enumerate() {
            sc.spawn(move || {
                let c = udp_client(SocketAddr::from(([127, 0, 0, 1], p)));
                let req = |i: u64| request(RpcMethod::Echo, ((r as u64) << 32) | i, b"held");
                let mut buf = [0u8; 2048];
                for i in 0..HELD_WINDOW {
                    c.send(&req(i)).unwrap();
                }
                for i in 0..HELD_PER_REPLICA {
                    let n = c.recv(&mut buf).expect("reply");
                    let ns = check_reply(&req(i), &buf[..n], RpcStatus::Ok);
                    assert!(
                        u64::from(ns) >= HELD_MS * 1_000_000,
                        "replica {p}, request {i}: server_ns {ns} is below the {HELD_MS} ms hold"
                    );
                    if i + HELD_WINDOW < HELD_PER_REPLICA {
                        c.send(&req(i + HELD_WINDOW)).unwrap();
                    }
                }
            });
        }
    });
    let used = cpu_ms(s.pid()) - before;
    eprintln!(
        "hold={hold}: {used} ms of CPU over {:?} to hold {} requests of {HELD_MS} ms",
        t0.elapsed(),
        2 * HELD_PER_REPLICA
    );
    let v = s.stop();
    assert_eq!(v["service"], model.replace(",hold=spin", ""), "{v}");
    assert_eq!(
        (u(&v, "rx"), u(&v, "tx")),
        (2 * HELD_PER_REPLICA, 2 * HELD_PER_REPLICA),
        "{v}"
    );
    assert_balanced(&v);
    (used, v)
}

/// A sleeping hold leaves the CPU free: two replicas on one CPU hold their requests at once
/// for far less CPU than the holds add up to. A spinning hold spends about all of it.
#[test]
fn udp_replicas_on_one_cpu_sleep_their_hold_without_the_cpu() {
    let _g = serial();
    let held_ms = 2 * HELD_PER_REPLICA * HELD_MS;
    let (slept, _) = held_replicas("sleep");
    // The CPU a held request really costs is a receive, a send and a wake-up: tens of us
    // against the 2 ms held, so a quarter of the holds leaves room for a noisy machine.
    assert!(
        slept < held_ms / 4,
        "hold=sleep used {slept} ms of CPU to hold {held_ms} ms"
    );
    let (spun, _) = held_replicas("spin");
    // A spin runs to a wall-clock deadline, so a process sharing the CPU takes its share of
    // a spun hold: an eighth still needs the spinner to get most of its turns.
    assert!(
        spun >= held_ms / 8 && spun > slept,
        "hold=spin used {spun} ms of CPU to hold {held_ms} ms (sleep: {slept} ms)"
    );
}

/// Every backend of every protocol answers through the one handler, so each sleeps the
/// model's hold, and says so in its report.
#[test]
fn every_backend_sleeps_a_sleeping_hold() {
    let _g = serial();
    let model = "fixed:2ms,hold=sleep";
    let path = unix_path("sleep");
    let _rm = TempFiles(vec![path.clone()]);
    let p = path.to_str().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "udp",
            "blocking",
            &["--bind", "127.0.0.1:0", "--sockperf-port", "0"],
        ),
        (
            "udp",
            "busy",
            &["--bind", "127.0.0.1:0", "--sockperf-port", "0"],
        ),
        (
            "udp",
            "batch",
            &["--bind", "127.0.0.1:0", "--sockperf-port", "0"],
        ),
        ("tcp", "blocking", &["--bind", "127.0.0.1:0"]),
        ("tcp", "busy", &["--bind", "127.0.0.1:0"]),
        ("unix", "blocking", &["--path", p]),
        ("unix", "busy", &["--path", p]),
    ];
    for &(proto, backend, extra) in cases {
        let mut a = vec!["--proto", proto, "--backend", backend, "--service", model];
        a.extend_from_slice(extra);
        let s = KernelServe::start(&a);
        let req = request(RpcMethod::Echo, 1, b"slept");
        let ns = match proto {
            "udp" => udp_round_trip(&udp_client(s.sock_addr()), &req, RpcStatus::Ok),
            "tcp" => {
                let mut c = TcpStream::connect(s.sock_addr()).unwrap();
                c.set_read_timeout(Some(WAIT)).unwrap();
                stream_round_trip(&mut c, &req, RpcStatus::Ok)
            }
            _ => {
                let mut c = UnixStream::connect(&path).unwrap();
                c.set_read_timeout(Some(WAIT)).unwrap();
                stream_round_trip(&mut c, &req, RpcStatus::Ok)
            }
        };
        assert!(ns >= 2_000_000, "{proto} {backend}: server_ns {ns}");
        let v = s.stop();
        assert_eq!(v["service"], model, "{proto} {backend}: {v}");
    }
}

#[test]
fn udp_transcode_answers_every_codec_and_size_and_refuses_junk() {
    use bypass::codec::{ClientCodec, Codec, MessageSize};
    let _g = serial();
    let s = udp_server(&["--sockperf-port", "0"]);
    let c = udp_client(s.sock_addr());
    let mut buf = [0u8; 2048];
    let mut n_ok = 0u64;
    for codec in [Codec::Json, Codec::Protobuf, Codec::Flatbuffers] {
        for size in [MessageSize::Small, MessageSize::Medium, MessageSize::Large] {
            let mut cc = ClientCodec::new(codec, size);
            let id = 40 + n_ok;
            let mut payload = vec![0u8; cc.request_len_for(id)];
            let n = cc.encode_request(id, &mut payload);
            assert_eq!(n, payload.len());
            c.send(&request(RpcMethod::Transcode, id, &payload))
                .unwrap();
            let got = c.recv(&mut buf).expect("reply");
            let h = RpcHeader::new_checked(&buf[..got]).unwrap();
            assert_eq!(
                (h.kind(), h.status(), h.request_id()),
                (RpcKind::Response, RpcStatus::Ok, id)
            );
            assert_eq!(got, HEADER_LEN + cc.reply_len_for(id), "{codec} {size}");
            assert!(
                cc.check_reply(id, h.payload()),
                "{codec} {size}: not the expected reply"
            );
            n_ok += 1;
        }
    }
    // Malformed messages, an unknown codec, an empty payload: status 3, no payload.
    let mut cc = ClientCodec::new(Codec::Json, MessageSize::Small);
    let mut good = vec![0u8; cc.request_len_for(5)];
    cc.encode_request(5, &mut good);
    let junk: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![99, 1, 2, 3],
        good[..good.len() / 2].to_vec(),
        {
            let mut p = good.clone();
            p[0] = 2; // a JSON body under the protobuf tag
            p
        },
    ];
    for (i, p) in junk.iter().enumerate() {
        let req = request(RpcMethod::Transcode, 900 + i as u64, p);
        c.send(&req).unwrap();
        let got = c.recv(&mut buf).expect("reply");
        let h = RpcHeader::new_checked(&buf[..got]).unwrap();
        assert_eq!(
            (h.kind(), h.status()),
            (RpcKind::Error, RpcStatus::BadArgument),
            "junk {i}"
        );
        assert_eq!(got, HEADER_LEN, "junk {i}");
    }
    let v = s.stop();
    assert_eq!((u(&v, "rx"), u(&v, "tx")), (n_ok + 4, n_ok + 4), "{v}");
    assert_balanced(&v);
}

#[test]
fn load_transcode_reports_its_codec_work() {
    use bypass::codec::{Codec, MessageSize};
    use bypass::load::{run_with, LoadConfig, RequestMethod};
    let _g = serial();
    let s = udp_server(&["--sockperf-port", "0"]);
    for codec in [Codec::Json, Codec::Protobuf, Codec::Flatbuffers] {
        let cfg = LoadConfig {
            method: RequestMethod::Transcode {
                codec,
                size: MessageSize::Medium,
            },
            payload_len: bypass::codec::ClientCodec::new(codec, MessageSize::Medium)
                .request_len_for(u64::MAX),
            count: Some(300),
            ..LoadConfig::closed(s.sock_addr(), 1)
        };
        let r = run_with(&cfg).unwrap();
        assert_eq!(
            (r.counters.received, r.counters.invalid, r.counters.errors),
            (300, 0, 0)
        );
        let f = r.summary_report().shared.codec.expect("codec figures");
        assert_eq!(
            (f.codec, f.message, f.bad_replies),
            (codec, MessageSize::Medium, 0)
        );
        assert_eq!(
            (f.encode.figures.read.count, f.decode.figures.read.count),
            (300, 300)
        );
        assert!(f.request_bytes > 0 && f.reply_bytes > 0);
    }
    let v = s.stop();
    assert_eq!(u(&v, "tx"), 900, "{v}");
}
