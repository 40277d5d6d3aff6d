//! `bypass kernel-relay` end to end on 127.0.0.1 and unix sockets in /tmp (no root needed):
//! chains of relays in front of `bypass kernel-serve`, driven by `bypass load` (the real
//! client) or by hand-made requests, every reply checked, and each hop's final JSON counters
//! required to account for every message. Fake upstreams (plain sockets of the test) make
//! the mapping table's refusals happen on purpose.
#![forbid(unsafe_code)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use bypass::wire::{RpcHeader, RpcKind, RpcMethod, RpcRepr};
use serde_json::Value;
use support::{run, stdout_lines, stop_child, strs, KernelServe, Signal, TempFiles};

const WAIT: Duration = Duration::from_secs(5);

/// A running `bypass kernel-relay --json --duration 60 ARGS`; killed on drop if a test fails
/// before stopping it.
struct Relay {
    child: Option<Child>,
    lines: Receiver<String>,
    /// What the ready line names: the listening address or path, as `PROTO:WHERE`.
    end: String,
}

impl Relay {
    fn start(listen: &str, upstreams: &[&str], extra: &[&str]) -> Relay {
        let mut cmd = Command::new(support::bin());
        cmd.args([
            "kernel-relay",
            "--json",
            "--duration",
            "60",
            "--listen",
            listen,
        ]);
        for u in upstreams {
            cmd.args(["--upstream", u]);
        }
        let mut child = cmd
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bypass");
        let lines = stdout_lines(&mut child);
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no ready line from kernel-relay {listen}"));
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!((parts.len(), parts[0]), (3, "ready"), "ready line: {line}");
        Relay {
            child: Some(child),
            lines,
            end: format!("{}:{}", parts[1], parts[2]),
        }
    }

    /// The `IP:PORT` (or path) it listens on.
    fn addr(&self) -> &str {
        self.end.split_once(':').unwrap().1
    }

    /// SIGTERM, then the final JSON report; the relay must exit 0.
    fn stop(mut self) -> Value {
        let mut child = self.child.take().unwrap();
        let st = stop_child(
            &mut child,
            Signal::Term,
            Duration::from_secs(10),
            "kernel-relay",
        );
        assert!(st.success(), "kernel-relay exit status {st}");
        let last = self
            .lines
            .recv_timeout(WAIT)
            .expect("final line after SIGTERM");
        let v: Value = serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}"));
        assert_eq!(v["type"], "final", "{v}");
        assert_accounted(&v);
        v
    }
}

/// Every message read ends forwarded, returned or dropped (expired and upstream-reset count
/// requests already forwarded), and every message written is a forward or a return.
fn assert_accounted(v: &Value) {
    let all: u64 = v["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    let after_forward = drops(v, "expired") + drops(v, "upstream-reset");
    let passed = u(v, "forwarded") + u(v, "returned");
    assert_eq!(u(v, "rx"), passed + all - after_forward, "{v}");
    assert_eq!(u(v, "tx"), passed, "{v}");
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("no integer {k} in {v}"))
}

fn drops(v: &Value, reason: &str) -> u64 {
    v["drops"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("no drop reason {reason} in {v}"))
}

/// Every request forwarded and answered, nothing dropped: `n` each way.
fn assert_clean_hop(v: &Value, n: u64) {
    assert_eq!((u(v, "forwarded"), u(v, "returned")), (n, n), "{v}");
    assert_eq!((u(v, "rx"), u(v, "tx")), (2 * n, 2 * n), "{v}");
    let dropped: u64 = v["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!((dropped, u(v, "live_at_stop")), (0, 0), "{v}");
}

fn unix_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bypass-krelay-{}-{tag}.sock", std::process::id()))
}

fn udp_server() -> KernelServe {
    KernelServe::start(&[
        "--proto",
        "udp",
        "--bind",
        "127.0.0.1:0",
        "--sockperf-port",
        "0",
    ])
}

/// `bypass load` to `target` (`PROTO:WHERE`), `count` ping-pong requests; returns its summary,
/// after checking every request was answered with its own id and payload.
fn load(target: &str, count: u64, tag: &str) -> Value {
    let json = std::env::temp_dir().join(format!(
        "bypass-krelay-load-{}-{tag}.json",
        std::process::id()
    ));
    let _rm = TempFiles(vec![json.clone()]);
    let (proto, at) = target.split_once(':').unwrap();
    let flag = if proto == "unix" {
        "--server-path"
    } else {
        "--server"
    };
    let n = count.to_string();
    let out = run(
        &strs(&[
            "load",
            "--transport",
            proto,
            flag,
            at,
            "--count",
            &n,
            "--duration",
            "30",
            "--json",
            json.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "bypass load failed: {}",
        support::explain(&out)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = v["summary"].clone();
    assert_eq!((u(&s, "sent"), u(&s, "received")), (count, count), "{s}");
    for bad in [
        "errors",
        "invalid",
        "lost",
        "duplicated",
        "late",
        "send_errors",
    ] {
        assert_eq!(u(&s, bad), 0, "{bad} in {s}");
    }
    s
}

#[test]
fn three_udp_relays_answer_bypass_load_and_count_every_hop() {
    let s = udp_server();
    let r3 = Relay::start("udp:127.0.0.1:0", &[&format!("udp:{}", s.addr)], &[]);
    let r2 = Relay::start("udp:127.0.0.1:0", &[&r3.end], &[]);
    let r1 = Relay::start("udp:127.0.0.1:0", &[&r2.end], &[]);
    let sum = load(&r1.end, 2000, "udp3");
    assert!(sum["server_ns"]["count"].as_u64() == Some(2000), "{sum}");
    for r in [r1, r2, r3] {
        assert_clean_hop(&r.stop(), 2000);
    }
    let v = s.stop();
    assert_eq!((u(&v, "rx"), u(&v, "tx")), (2000, 2000), "{v}");
}

#[test]
fn a_mixed_chain_relays_every_protocol_pair() {
    // client -unix-> r1 -tcp-> r2 -udp-> r3 -tcp-> server: each side of each protocol.
    let s = KernelServe::start(&["--proto", "tcp", "--bind", "127.0.0.1:0"]);
    let path = unix_path("mixed");
    let _rm = TempFiles(vec![path.clone()]);
    let r3 = Relay::start("udp:127.0.0.1:0", &[&format!("tcp:{}", s.addr)], &[]);
    let r2 = Relay::start("tcp:127.0.0.1:0", &[&r3.end], &[]);
    let r1 = Relay::start(
        &format!("unix:{}", path.display()),
        &[&r2.end],
        &["--backend", "busy"],
    );
    load(&r1.end, 1500, "mixed");
    let (v1, v2, v3) = (r1.stop(), r2.stop(), r3.stop());
    for v in [&v1, &v2, &v3] {
        assert_clean_hop(v, 1500);
    }
    assert_eq!(
        (v1["proto"].as_str(), v1["upstream_proto"].as_str()),
        (Some("unix"), Some("tcp"))
    );
    assert_eq!(
        (v2["proto"].as_str(), v2["upstream_proto"].as_str()),
        (Some("tcp"), Some("udp"))
    );
    assert_eq!(
        (v3["proto"].as_str(), v3["upstream_proto"].as_str()),
        (Some("udp"), Some("tcp"))
    );
    assert!(!path.exists(), "the relay removes its socket file");
    let v = s.stop();
    assert_eq!(
        (u(&v, "tx"), u(&v, "connections")),
        (1500, 1),
        "one pooled connection: {v}"
    );
}

#[test]
fn two_tcp_clients_share_one_pooled_upstream_connection() {
    let path = unix_path("pool");
    let s = KernelServe::start(&["--proto", "unix", "--path", path.to_str().unwrap()]);
    let r = Relay::start(
        "tcp:127.0.0.1:0",
        &[&format!("unix:{}", path.display())],
        &["--pool", "1"],
    );
    let target = r.end.clone();
    let t2 = target.clone();
    let other = std::thread::spawn(move || load(&t2, 1000, "pool-b"));
    load(&target, 1000, "pool-a");
    other.join().expect("second client");
    let v = r.stop();
    assert_clean_hop(&v, 2000);
    assert_eq!((u(&v, "connections"), u(&v, "reconnects")), (2, 0), "{v}");
    let sv = s.stop();
    assert_eq!(
        (u(&sv, "tx"), u(&sv, "connections")),
        (2000, 1),
        "multiplexed: {sv}"
    );
}

fn request(method: RpcMethod, id: u64, server_ns: u32, payload: &[u8]) -> Vec<u8> {
    let r = RpcRepr {
        server_ns,
        ..RpcRepr::request(method, id, 77, payload.len() as u32)
    };
    let mut v = vec![0u8; r.buffer_len()];
    r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
    v[32..].copy_from_slice(payload);
    v
}

fn client() -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c
}

#[test]
fn server_ns_accumulates_along_the_chain() {
    let s = udp_server();
    let r2 = Relay::start("udp:127.0.0.1:0", &[&format!("udp:{}", s.addr)], &[]);
    let r1 = Relay::start("udp:127.0.0.1:0", &[&r2.end], &["--balance", "hash"]);
    let c = client();
    // As if earlier hops had spent 1 ms; the server spins 30 us of its own.
    let spin = 30_000u32.to_be_bytes();
    let req = request(RpcMethod::Spin, 0xfeed_0001, 1_000_000, &spin);
    c.send_to(&req, r1.addr()).unwrap();
    let mut buf = [0u8; 256];
    let n = c.recv(&mut buf).unwrap();
    let h = RpcHeader::new_checked(&buf[..n]).unwrap();
    assert_eq!((h.kind(), h.request_id()), (RpcKind::Response, 0xfeed_0001));
    assert_eq!(h.payload(), &spin);
    assert!(
        h.server_ns() > 1_000_000 + 30_000,
        "every hop adds its residence: {}",
        h.server_ns()
    );
    assert_clean_hop(&r1.stop(), 1);
    assert_clean_hop(&r2.stop(), 1);
    s.stop();
}

#[test]
fn the_table_refuses_what_it_cannot_map() {
    // A fake upstream: the test reads what the relay forwards and answers by hand.
    let up = client();
    let up_addr = up.local_addr().unwrap();
    let r = Relay::start(
        "udp:127.0.0.1:0",
        &[&format!("udp:{up_addr}")],
        &["--table", "1", "--expiry-ms", "100"],
    );
    let c = client();
    let mut buf = [0u8; 256];
    c.send_to(&request(RpcMethod::Echo, 41, 0, b"one"), r.addr())
        .unwrap();
    let (n, relay_from) = up.recv_from(&mut buf).unwrap();
    let fwd = buf[..n].to_vec();
    let relay_id = RpcHeader::new_checked(&fwd[..]).unwrap().request_id();
    assert_ne!(relay_id, 41, "the id is rewritten to the slot's");
    // The one slot is live: a second request is refused; a reply is no request.
    c.send_to(&request(RpcMethod::Echo, 42, 0, b"two"), r.addr())
        .unwrap();
    let mut reply = fwd.clone();
    RpcHeader::new_unchecked(&mut reply[..]).set_kind(RpcKind::Response);
    c.send_to(&reply, r.addr()).unwrap();
    // A reply naming no slot, then the right one.
    let mut wrong = reply.clone();
    RpcHeader::new_unchecked(&mut wrong[..]).set_request_id(relay_id ^ 1);
    up.send_to(&wrong, relay_from).unwrap();
    up.send_to(&reply, relay_from).unwrap();
    let n = c.recv(&mut buf).unwrap();
    let h = RpcHeader::new_checked(&buf[..n]).unwrap();
    assert_eq!(
        (h.request_id(), h.payload()),
        (41, &b"one"[..]),
        "the client's id restored"
    );
    // Answered twice: the slot is free again, the second copy maps to nothing.
    up.send_to(&reply, relay_from).unwrap();
    // A request nobody answers expires, and its late reply is refused.
    c.send_to(&request(RpcMethod::Echo, 43, 0, b"three"), r.addr())
        .unwrap();
    let n = up.recv(&mut buf).unwrap();
    let mut late = buf[..n].to_vec();
    RpcHeader::new_unchecked(&mut late[..]).set_kind(RpcKind::Response);
    std::thread::sleep(Duration::from_millis(400));
    up.send_to(&late, relay_from).unwrap();
    // The garbage a client may send.
    c.send_to(b"short", r.addr()).unwrap();
    let mut bad = request(RpcMethod::Echo, 44, 0, b"");
    bad[0] = 0;
    c.send_to(&bad, r.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let v = r.stop();
    let want = [
        ("table-full", 1),
        ("not-request", 1),
        ("unknown-mapping", 3),
        ("expired", 1),
        ("truncated", 1),
        ("bad-magic", 1),
    ];
    for (why, n) in want {
        assert_eq!(drops(&v, why), n, "{why}: {v}");
    }
    assert_eq!((u(&v, "forwarded"), u(&v, "returned")), (2, 1), "{v}");
    // Read: 6 from the client, 4 from the upstream; each ends forwarded, returned or
    // dropped (expiry drops a request already forwarded).
    assert_eq!((u(&v, "rx"), u(&v, "tx")), (10, 3), "{v}");
}

#[test]
fn stream_upstreams_down_or_lost_are_counted() {
    // Nobody listens on a port just freed: every request meets upstream-down.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = Relay::start("udp:127.0.0.1:0", &[&format!("tcp:{dead}")], &[]);
    let c = client();
    c.send_to(&request(RpcMethod::Echo, 1, 0, b""), r.addr())
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    c.send_to(&request(RpcMethod::Echo, 2, 0, b""), r.addr())
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let v = r.stop();
    assert_eq!(
        (drops(&v, "upstream-down"), u(&v, "forwarded")),
        (2, 0),
        "{v}"
    );

    // An upstream that takes a request and hangs up: its slot is lost with it; the next
    // request reconnects the pool.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let at: SocketAddr = l.local_addr().unwrap();
    let r = Relay::start("udp:127.0.0.1:0", &[&format!("tcp:{at}")], &[]);
    let (mut conn, _) = l.accept().unwrap();
    c.send_to(&request(RpcMethod::Echo, 3, 0, b"x"), r.addr())
        .unwrap();
    let mut got = [0u8; 33];
    conn.read_exact(&mut got).unwrap();
    drop(conn);
    std::thread::sleep(Duration::from_millis(200));
    c.send_to(&request(RpcMethod::Echo, 4, 0, b"y"), r.addr())
        .unwrap();
    let (mut conn, _) = l.accept().unwrap();
    conn.read_exact(&mut got).unwrap();
    RpcHeader::new_unchecked(&mut got[..]).set_kind(RpcKind::Response);
    conn.write_all(&got).unwrap();
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(RpcHeader::new_checked(&buf[..n]).unwrap().request_id(), 4);
    let v = r.stop();
    assert_eq!(
        (drops(&v, "upstream-reset"), u(&v, "reconnects")),
        (1, 1),
        "{v}"
    );
    assert_eq!((u(&v, "forwarded"), u(&v, "returned")), (2, 1), "{v}");
}

#[test]
fn a_stream_client_that_leaves_gets_its_replies_dropped() {
    let up = client();
    let up_addr = up.local_addr().unwrap();
    let path = unix_path("gone");
    let _rm = TempFiles(vec![path.clone()]);
    let r = Relay::start(
        &format!("unix:{}", path.display()),
        &[&format!("udp:{up_addr}")],
        &[],
    );
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(&request(RpcMethod::Echo, 9, 0, b"bye"))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = up.recv_from(&mut buf).unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
    RpcHeader::new_unchecked(&mut buf[..n]).set_kind(RpcKind::Response);
    up.send_to(&buf[..n], from).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let v = r.stop();
    assert_eq!((drops(&v, "client-gone"), u(&v, "returned")), (1, 0), "{v}");
    assert_eq!(u(&v, "connections"), 1, "{v}");
}

#[test]
fn duration_stops_by_itself_with_a_human_report() {
    let out = run(
        &strs(&[
            "kernel-relay",
            "--listen",
            "udp:127.0.0.1:0",
            "--upstream",
            "udp:127.0.0.1:9",
            "--duration",
            "0.3",
        ]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", support::explain(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ready udp 127.0.0.1:"), "{text}");
    assert!(
        text.contains("rx 0 tx 0 forwarded 0 returned 0 dropped 0"),
        "{text}"
    );
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let up = ["--upstream", "udp:127.0.0.1:9"];
    let cases: &[(&[&str], &str)] = &[
        (&["--listen", "udp:nowhere"], "--listen"),
        (
            &["--listen", "udp:127.0.0.1:0", "--backend", "batch"],
            "--backend",
        ),
        (&["--listen", "udp:127.0.0.1:0", "--table", "0"], "--table"),
        (&["--listen", "udp:127.0.0.1:0", "--pool", "0"], "--pool"),
        (
            &["--listen", "udp:127.0.0.1:0", "--expiry-ms", "0"],
            "--expiry-ms",
        ),
        (&["--listen", "udp:127.0.0.1:0", "--cpus", "0-1"], "--cpus"),
        (
            &[
                "--listen",
                "udp:127.0.0.1:0",
                "--upstream",
                "tcp:127.0.0.1:9",
            ],
            "--upstream",
        ),
    ];
    for (args, flag) in cases {
        let mut a = vec!["kernel-relay"];
        a.extend_from_slice(args);
        a.extend_from_slice(&up);
        let out = run(&strs(&a), Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(flag), "{a:?} should name {flag}: {err}");
    }
}
