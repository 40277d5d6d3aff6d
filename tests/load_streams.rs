//! `bypass load --transport tcp|unix` and `--rates` through the CLI binary, against RPC servers
//! living in the test: stream servers that follow the framing (docs/protocol.md "Stream framing":
//! back-to-back messages, each framed by its header's length field) and misbehave on purpose,
//! and a UDP echo server for the sweep. Loopback and /tmp only; every run is bounded.
#![forbid(unsafe_code)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bypass::wire::rpc::{RpcHeader, HEADER_LEN};
use support::replica::respond;
use support::{
    explain, read_hlog_with_python, spawn, stdout_lines, stop_child, strs, KernelServe, Signal,
    TempFiles,
};

/// Runs take turns: two cores do not fit several client and server pairs at once.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Longest any server thread lives.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// One reply per request, each in its own write.
    Echo,
    /// Collects replies until `batch` are due, then writes them as one byte stream: the first
    /// one and a half messages a byte per write, the rest in one write.
    Fragments { batch: usize },
    /// Never answers every `n`th request (n, 2n, ...).
    DropEvery(u64),
    /// Closes the connection right after answering this many requests.
    CloseAfter(u64),
    /// On the `at`th request stops reading and answering for `pause`, then goes on.
    StallOnce { at: u64, pause: Duration },
}

/// Serves one connection until the client closes it, `stop` is set or the behaviour closes it.
/// Reads with a short timeout so `stop` is seen. Returns the requests it received.
fn serve_conn<S: Read + Write>(
    mut conn: S,
    behaviour: Behaviour,
    stop: &AtomicBool,
    deadline: Instant,
) -> u64 {
    let mut inbuf: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut chunk = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_n = 0usize;
    let mut seen = 0u64;
    let mut answered = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let n = match conn.read(&mut chunk) {
            Ok(0) => return seen,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return seen,
        };
        let at = Instant::now();
        inbuf.extend_from_slice(&chunk[..n]);
        // Every whole message in the buffer, by the header's length field.
        let mut off = 0;
        while inbuf.len() - off >= HEADER_LEN {
            let len = RpcHeader::new_unchecked(&inbuf[off..off + HEADER_LEN]).length() as usize;
            let total = HEADER_LEN + len;
            if inbuf.len() - off < total {
                break;
            }
            let mut msg = inbuf[off..off + total].to_vec();
            off += total;
            seen += 1;
            if respond(&mut msg, at).is_none() {
                continue;
            }
            match behaviour {
                Behaviour::Echo => {
                    if conn.write_all(&msg).is_err() {
                        return seen;
                    }
                }
                Behaviour::DropEvery(k) => {
                    if !seen.is_multiple_of(k) && conn.write_all(&msg).is_err() {
                        return seen;
                    }
                }
                Behaviour::CloseAfter(limit) => {
                    answered += 1;
                    if conn.write_all(&msg).is_err() || answered == limit {
                        return seen; // drops the connection
                    }
                }
                Behaviour::StallOnce { at, pause } => {
                    if seen == at {
                        std::thread::sleep(pause);
                    }
                    if conn.write_all(&msg).is_err() {
                        return seen;
                    }
                }
                Behaviour::Fragments { batch } => {
                    pending.extend_from_slice(&msg);
                    pending_n += 1;
                    if pending_n == batch {
                        let bytewise = (msg.len() * 3 / 2).min(pending.len());
                        for b in &pending[..bytewise] {
                            if conn.write_all(std::slice::from_ref(b)).is_err() {
                                return seen;
                            }
                        }
                        if conn.write_all(&pending[bytewise..]).is_err() {
                            return seen;
                        }
                        pending.clear();
                        pending_n = 0;
                    }
                }
            }
        }
        inbuf.drain(..off);
    }
    seen
}

enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// How long a served connection's read waits before it checks `stop`.
const READ_TIMEOUT: Duration = Duration::from_millis(5);

/// Accepts connections one after another (`accept` polls a non-blocking listener and makes
/// what it accepts blocking with [`READ_TIMEOUT`]) and serves each until it ends, adding the
/// requests it received to `seen`.
fn accept_loop<C: Read + Write>(
    accept: impl Fn() -> Option<C>,
    behaviour: Behaviour,
    stop: &AtomicBool,
    seen: &AtomicU64,
    deadline: Instant,
) {
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match accept() {
            Some(c) => {
                let n = serve_conn(c, behaviour, stop, deadline);
                seen.fetch_add(n, Ordering::Relaxed);
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Every transport with every wait mode: (unix, wait).
const TRANSPORTS_AND_WAITS: [(bool, &str); 4] = [
    (false, "blocking"),
    (false, "busy"),
    (true, "blocking"),
    (true, "busy"),
];

/// A stream RPC server in a thread: accepts connections one after another.
struct StreamServer {
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    seen: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bypass-streams-{}-{name}", std::process::id()))
}

impl StreamServer {
    fn tcp(behaviour: Behaviour) -> StreamServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap();
        StreamServer::spawn(Endpoint::Tcp(addr), move |stop, seen, deadline| {
            let accept = || {
                let (c, _) = l.accept().ok()?;
                c.set_nonblocking(false).unwrap();
                c.set_nodelay(true).unwrap();
                c.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                Some(c)
            };
            accept_loop(accept, behaviour, stop, seen, deadline);
        })
    }

    fn unix(behaviour: Behaviour, name: &str) -> StreamServer {
        let path = tmp(name);
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        StreamServer::spawn(Endpoint::Unix(path), move |stop, seen, deadline| {
            let accept = || {
                let (c, _) = l.accept().ok()?;
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
                Some(c)
            };
            accept_loop(accept, behaviour, stop, seen, deadline);
        })
    }

    /// A unix server on socket `name`, or a TCP one (which needs no name).
    fn on(unix: bool, behaviour: Behaviour, name: &str) -> StreamServer {
        if unix {
            StreamServer::unix(behaviour, name)
        } else {
            StreamServer::tcp(behaviour)
        }
    }

    fn spawn(
        endpoint: Endpoint,
        body: impl FnOnce(&AtomicBool, &AtomicU64, Instant) + Send + 'static,
    ) -> StreamServer {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), seen.clone());
        let handle = std::thread::spawn(move || body(&s, &n, Instant::now() + SERVER_LIFETIME));
        StreamServer {
            endpoint,
            stop,
            seen,
            handle: Some(handle),
        }
    }

    /// `--transport X --server A` or `--transport unix --server-path P`.
    fn args(&self) -> Vec<String> {
        match &self.endpoint {
            Endpoint::Tcp(a) => vec![
                "--transport".into(),
                "tcp".into(),
                "--server".into(),
                a.to_string(),
            ],
            Endpoint::Unix(p) => vec![
                "--transport".into(),
                "unix".into(),
                "--server-path".into(),
                p.to_str().unwrap().into(),
            ],
        }
    }

    /// Stops the server; returns how many requests it received.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap();
        self.seen.load(Ordering::Relaxed)
    }
}

impl Drop for StreamServer {
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

/// A UDP echo server in a thread (for the sweep).
struct UdpServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl UdpServer {
    fn start() -> UdpServer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + SERVER_LIFETIME;
            let mut buf = [0u8; 65_536];
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if respond(&mut buf[..n], Instant::now()).is_some() {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        UdpServer {
            addr,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn bypass_load(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bypass"))
        .arg("load")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// A closed-loop run of 400 requests with every output file; checks exact counts and that
/// every file parses.
fn closed_loop_with_outputs(server: &StreamServer, tag: &str, window: u32, wait: &str) {
    let count = 400u64;
    let files = TempFiles(
        ["json", "csv", "hgrm", "hlog"]
            .iter()
            .map(|e| tmp(&format!("{tag}.{e}")))
            .collect(),
    );
    let f = |i: usize| files.0[i].to_str().unwrap().to_string();
    let mut args = server.args();
    args.extend(strs(&[
        "--window",
        &window.to_string(),
        "--count",
        &count.to_string(),
        "--duration",
        "20",
        "--wait",
        wait,
        "--timeout-ms",
        "2000",
    ]));
    args.extend([
        "--json".into(),
        f(0),
        "--csv".into(),
        f(1),
        "--hgrm".into(),
        f(2),
        "--hlog".into(),
        f(3),
    ]);
    let out = bypass_load(&args);
    assert!(out.status.success(), "{}", explain(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let proto = if tag.starts_with("tcp") {
        "tcp -> "
    } else {
        "unix -> "
    };
    assert!(stdout.contains(proto), "{stdout}");

    let v = json_file(&files.0[0]);
    let s = &v["summary"];
    assert_eq!(s["sent"], count, "{s}");
    assert_eq!(s["received"], count, "{s}");
    assert_eq!(s["count"], count, "{s}");
    for k in [
        "lost",
        "duplicated",
        "late",
        "invalid",
        "errors",
        "send_errors",
    ] {
        assert_eq!(s[k], 0, "{k}: {s}");
    }
    let intervals = v["intervals"].as_array().unwrap();
    assert!(!intervals.is_empty());
    let total: u64 = intervals
        .iter()
        .map(|i| i["received"].as_u64().unwrap())
        .sum();
    assert_eq!(total, count);

    let csv = std::fs::read_to_string(&files.0[1]).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "t,sent,received,lost,rate,p50_ns,p99_ns,p999_ns,max_ns"
    );
    assert_eq!(lines.len(), 1 + intervals.len());
    let csv_received: u64 = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(csv_received, count);

    let hgrm = std::fs::read_to_string(&files.0[2]).unwrap();
    assert_eq!(
        hgrm.lines().next().unwrap(),
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert!(hgrm.contains("#[Max     = "));
    assert!(
        hgrm.contains(&format!("Total count    = {count:>12}")),
        "{hgrm}"
    );

    let hlog = std::fs::read_to_string(&files.0[3]).unwrap();
    assert!(hlog.contains(proto), "{hlog}");
    match read_hlog_with_python(&files.0[3]) {
        Ok(got) => assert_eq!(got["all"]["count"], count),
        Err(why) => println!("SKIPPED hlog read-back: {why}"),
    }
}

#[test]
fn tcp_closed_loop_exact_counts_and_outputs() {
    let _g = serial();
    for (window, wait) in [(1, "blocking"), (8, "busy")] {
        let server = StreamServer::tcp(Behaviour::Echo);
        closed_loop_with_outputs(&server, &format!("tcp-w{window}"), window, wait);
        assert_eq!(server.stop(), 400);
    }
}

#[test]
fn unix_closed_loop_exact_counts_and_outputs() {
    let _g = serial();
    for (window, wait) in [(1, "blocking"), (8, "busy")] {
        let server = StreamServer::unix(Behaviour::Echo, &format!("echo-w{window}.sock"));
        closed_loop_with_outputs(&server, &format!("unix-w{window}"), window, wait);
        assert_eq!(server.stop(), 400);
    }
}

/// Runs `count` requests and returns the JSON summary.
fn summary(server: &StreamServer, tag: &str, extra: &[&str]) -> (Output, serde_json::Value) {
    let files = TempFiles(vec![tmp(&format!("{tag}.json"))]);
    let mut args = server.args();
    args.extend(strs(extra));
    args.extend(["--json".into(), files.0[0].to_str().unwrap().into()]);
    let out = bypass_load(&args);
    assert!(out.status.success(), "{}", explain(&out));
    let v = json_file(&files.0[0]);
    (out, v["summary"].clone())
}

#[test]
fn fragmented_and_batched_replies_give_exact_counts() {
    let _g = serial();
    for (unix, wait) in TRANSPORTS_AND_WAITS {
        let b = Behaviour::Fragments { batch: 4 };
        let server = StreamServer::on(unix, b, &format!("frag-{wait}.sock"));
        // 400 is a multiple of the batch, and the window (8) exceeds it: every batch fills.
        let (out, s) = summary(
            &server,
            &format!("frag-{unix}-{wait}"),
            &[
                "--window",
                "8",
                "--count",
                "400",
                "--duration",
                "20",
                "--wait",
                wait,
            ],
        );
        assert_eq!(s["received"], 400, "{}", explain(&out));
        for k in ["lost", "duplicated", "late", "invalid"] {
            assert_eq!(s[k], 0, "{k}: {s}");
        }
        assert_eq!(server.stop(), 400);
    }
}

#[test]
fn dropped_requests_are_lost_exactly_and_never_stall() {
    let _g = serial();
    for unix in [false, true] {
        let server = StreamServer::on(unix, Behaviour::DropEvery(10), "drop.sock");
        let t = Instant::now();
        let (out, s) = summary(
            &server,
            &format!("drop-{unix}"),
            &[
                "--window",
                "4",
                "--count",
                "100",
                "--duration",
                "20",
                "--timeout-ms",
                "100",
            ],
        );
        // Ten timeouts of 100 ms at most, overlapping in a window of 4: far from the 20 s cap.
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "stalled: {:?}",
            t.elapsed()
        );
        assert_eq!(s["sent"], 100, "{}", explain(&out));
        assert_eq!(s["received"], 90, "{s}");
        assert_eq!(s["lost"], 10, "{s}");
        assert_eq!(s["late"], 0, "{s}");
        assert_eq!(server.stop(), 100);
    }
}

#[test]
fn a_stalled_stream_server_means_latency_not_loss() {
    let _g = serial();
    for unix in [false, true] {
        let b = Behaviour::StallOnce {
            at: 100,
            pause: Duration::from_millis(400),
        };
        let server = StreamServer::on(unix, b, "stall.sock");
        // 2000 x 4 kB/s: the 400 ms stall backs up 3.3 MB, more than a unix socket buffer
        // holds; the rest waits in the client's send queue and is charged as latency.
        let (out, s) = summary(
            &server,
            &format!("stall-{unix}"),
            &[
                "--rate",
                "2000",
                "--size",
                "4096",
                "--count",
                "1500",
                "--duration",
                "20",
                "--timeout-ms",
                "5000",
            ],
        );
        assert_eq!(s["sent"], 1500, "{}", explain(&out));
        assert_eq!(s["received"], 1500, "{s}");
        assert_eq!(
            (s["lost"].as_u64(), s["send_errors"].as_u64()),
            (Some(0), Some(0)),
            "{s}"
        );
        // The request right behind the stalled one waited out most of the stall.
        assert!(s["max_ns"].as_u64().unwrap() >= 300_000_000, "{s}");
        assert_eq!(server.stop(), 1500);
    }
}

#[test]
fn server_closing_mid_run_ends_the_run_with_an_error() {
    let _g = serial();
    for (unix, wait) in TRANSPORTS_AND_WAITS {
        let server = StreamServer::on(
            unix,
            Behaviour::CloseAfter(50),
            &format!("close-{wait}.sock"),
        );
        let mut args = server.args();
        args.extend(strs(&[
            "--count",
            "100000",
            "--duration",
            "20",
            "--wait",
            wait,
        ]));
        let t = Instant::now();
        let out = bypass_load(&args);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(!out.status.success(), "{}", explain(&out));
        assert_ne!(
            out.status.code(),
            Some(2),
            "not a usage error: {}",
            explain(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("closed the connection"), "{}", explain(&out));
        drop(server);
    }
}

#[test]
fn server_closing_after_the_last_reply_is_a_clean_end() {
    let _g = serial();
    for (unix, wait) in TRANSPORTS_AND_WAITS {
        let server = StreamServer::on(
            unix,
            Behaviour::CloseAfter(200),
            &format!("last-{wait}.sock"),
        );
        let (out, s) = summary(
            &server,
            &format!("last-{unix}-{wait}"),
            &[
                "--window",
                "4",
                "--count",
                "200",
                "--duration",
                "20",
                "--wait",
                wait,
            ],
        );
        assert_eq!(s["received"], 200, "{}", explain(&out));
        assert_eq!(s["lost"], 0, "{s}");
        assert_eq!(server.stop(), 200);
    }
}

#[test]
fn no_server_is_a_clear_error() {
    let path = tmp("nobody.sock");
    let out = bypass_load(&strs(&[
        "--transport",
        "unix",
        "--server-path",
        path.to_str().unwrap(),
        "--count",
        "1",
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connect unix"), "{err}");
}

/// Data rows of the sweep's human table: lines of nine numbers.
/// The sweep table's rows as numbers: `>=tmo` (at least the timeout) reads as infinity,
/// the behind column's yes/no as 1/0.
fn table_rows(stdout: &str) -> Vec<Vec<f64>> {
    const COLUMNS: usize = 17;
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<f64> = l
                .split_whitespace()
                .map_while(|x| match x {
                    ">=tmo" => Some(f64::INFINITY),
                    "yes" => Some(1.0),
                    "no" => Some(0.0),
                    _ => x.parse().ok(),
                })
                .collect();
            (f.len() == COLUMNS && l.split_whitespace().count() == COLUMNS).then_some(f)
        })
        .collect()
}

#[test]
fn rate_sweep_over_udp() {
    let _g = serial();
    let server = UdpServer::start();
    let files = TempFiles(vec![
        tmp("sweep.json"),
        tmp("sweep.csv"),
        tmp("sweep-500.hgrm"),
        tmp("sweep-1000.hgrm"),
        tmp("sweep-1500.hgrm"),
    ]);
    let hgrm = tmp("sweep.hgrm");
    let out = bypass_load(&strs(&[
        "--server",
        &server.addr.to_string(),
        "--rates",
        "500:1500:500",
        "--warmup",
        "0.1",
        "--duration",
        "1",
        "--json",
        files.0[0].to_str().unwrap(),
        "--csv",
        files.0[1].to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", explain(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("target/s"), "{stdout}");
    let rows = table_rows(&stdout);
    assert_eq!(rows.len(), 3, "{stdout}");
    for (row, target) in rows.iter().zip([500.0, 1000.0, 1500.0]) {
        assert_eq!(row[0], target, "{stdout}");
        // Behaviour, not timing: the rate follows the target, loosely.
        assert!((row[1] - target).abs() < target * 0.5, "{stdout}");
        assert!(row[2] > target * 0.5, "count: {stdout}");
        assert_eq!(row[8], 0.0, "lost: {stdout}");
        // p50 <= p90 <= p99 <= p99.9 <= max, corrected and uncorrected
        assert!(row[3..8].windows(2).all(|w| w[0] <= w[1]), "{stdout}");
        assert!(row[9..14].windows(2).all(|w| w[0] <= w[1]), "{stdout}");
        // Achieved as % of target, beside the rates it is computed from.
        assert!((row[14] - row[1] / row[0] * 100.0).abs() < 0.2, "{stdout}");
        assert!(row[16] == 0.0 || row[16] == 1.0, "behind: {stdout}");
    }

    let csv = std::fs::read_to_string(&files.0[1]).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // The first eleven columns as before; uncorrected, send lag and behind after them.
    assert!(
        lines[0].starts_with(
            "target_rate,achieved_rate,count,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,sent,received,lost,uncorrected_p50_ns,"
        ),
        "{csv}"
    );
    let columns = lines[0].split(',').count();
    assert_eq!(columns, 22, "{csv}");
    assert_eq!(lines.len(), 4, "{csv}");
    for (line, target) in lines[1..].iter().zip([500.0, 1000.0, 1500.0]) {
        let f: Vec<f64> = line
            .split(',')
            .map(|x| match x {
                "true" => 1.0,
                "false" => 0.0,
                _ => x.parse().unwrap(),
            })
            .collect();
        assert_eq!(f.len(), columns, "{line}");
        assert_eq!(f[0], target);
        // Lost requests are recorded too (at the timeout): count == received + lost.
        assert_eq!(f[2], f[9] + f[10], "count == received + lost: {line}");
        assert_eq!(f[8], f[9] + f[10], "sent == received + lost: {line}");
        assert!(
            f[11] <= f[3] * 1.01 + 1000.0,
            "uncorrected p50 <= corrected: {line}"
        );
    }

    let v = json_file(&files.0[0]);
    let sweep = v["sweep"].as_array().unwrap();
    assert_eq!(sweep.len(), 3, "{v}");
    for (s, target) in sweep.iter().zip([500.0, 1000.0, 1500.0]) {
        assert_eq!(s["target_rate"], target);
        for k in [
            "count",
            "p50_ns",
            "p99_ns",
            "p999_ns",
            "max_ns",
            "sent",
            "received",
            "lost",
            "achieved_rate",
            "uncorrected",
            "lost_recorded_at_ns",
        ] {
            assert!(s.get(k).is_some(), "{k}: {s}");
        }
        assert!(s["uncorrected"]["p99_ns"].is_u64(), "{s}");
        assert!(s["send_lag"]["p99_ns"].is_u64(), "{s}");
        assert!(s["send_lag"]["behind"].is_boolean(), "{s}");
        assert!(s["clock"]["source"].is_string(), "{s}");
    }
    assert!(v["time_source"].is_string());

    // One .hgrm per point, each with that point's count.
    for (p, s) in files.0[2..].iter().zip(sweep) {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let want = format!("Total count    = {:>12}", s["count"].as_u64().unwrap());
        assert!(text.contains(&want), "{}: {text}", p.display());
    }
    assert!(!hgrm.exists(), "no single-run file in a sweep");
}

#[test]
fn sigint_stops_a_sweep_between_points() {
    let _g = serial();
    let server = UdpServer::start();
    let files = TempFiles(vec![tmp("int.csv")]);
    let mut child = spawn(&strs(&[
        "load",
        "--server",
        &server.addr.to_string(),
        "--rates",
        "100:500:100",
        "--duration",
        "1",
        "--csv",
        files.0[0].to_str().unwrap(),
    ]));
    let rx = stdout_lines(&mut child);
    // The first line comes after the signal handlers are in place: then interrupt the first point.
    let first = rx.recv_timeout(Duration::from_secs(20));
    assert!(first.is_ok(), "no output from the sweep");
    std::thread::sleep(Duration::from_millis(300));
    let status = stop_child(
        &mut child,
        Signal::Int,
        Duration::from_secs(10),
        "the sweep",
    );
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    // The reader ends at the child's end of output: every line is in.
    let lines: Vec<String> = first.into_iter().chain(rx.iter()).collect();
    let stdout = lines.join("\n");
    let out = Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    };
    assert!(out.status.success(), "{}", explain(&out));
    let rows = table_rows(&String::from_utf8_lossy(&out.stdout));
    assert!(!rows.is_empty() && rows.len() < 5, "{}", explain(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("interrupted"),
        "{}",
        explain(&out)
    );
    let csv = std::fs::read_to_string(&files.0[0]).unwrap();
    assert_eq!(csv.lines().count(), 1 + rows.len(), "{csv}");
}

#[test]
fn bad_arguments_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--server",
                "127.0.0.1:7777",
                "--rates",
                "1:3:1",
                "--rate",
                "5",
            ],
            "--rates",
        ),
        (
            &[
                "--server",
                "127.0.0.1:7777",
                "--rates",
                "1:3:1",
                "--window",
                "2",
            ],
            "--rates",
        ),
        (&["--server", "127.0.0.1:7777", "--rates", "1:2"], "--rates"),
        (
            &["--server", "127.0.0.1:7777", "--rates", "a:b:c"],
            "--rates",
        ),
        (
            &["--server", "127.0.0.1:7777", "--rates", "5:1:1"],
            "--rates",
        ),
        (
            &["--server", "127.0.0.1:7777", "--rates", "1:5:0"],
            "--rates",
        ),
        (
            &["--server", "127.0.0.1:7777", "--rates", "1:5000:1"],
            "--rates",
        ),
        (
            &["--server", "127.0.0.1:7777", "--server-path", "/tmp/x.sock"],
            "--server-path",
        ),
        (
            &["--transport", "udp", "--server-path", "/tmp/x.sock"],
            "--server-path",
        ),
        (&["--transport", "unix"], "--server-path"),
        (
            &[
                "--transport",
                "unix",
                "--server",
                "127.0.0.1:7777",
                "--server-path",
                "/tmp/x.sock",
            ],
            "--server",
        ),
        (&["--transport", "tcp"], "--server"),
        (
            &["--transport", "tcp", "--server-path", "/tmp/x.sock"],
            "--server-path",
        ),
        (&[], "--server"),
        (
            &[
                "--transport",
                "tcp",
                "--server",
                "127.0.0.1:7777",
                "--size",
                "65505",
            ],
            "--size",
        ),
    ];
    for (extra, flag) in cases {
        let out = bypass_load(&strs(extra));
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", explain(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("bypass load: {flag}:")),
            "{extra:?}: {err}"
        );
    }
}

#[test]
fn against_bypass_kernel_serve_tcp_and_unix() {
    let _g = serial();
    let path = tmp("kserve.sock");
    let _rm = TempFiles(vec![path.clone()]);
    for proto in ["tcp", "unix"] {
        let server = match proto {
            "tcp" => KernelServe::start(&["--proto", "tcp", "--bind", "127.0.0.1:0"]),
            _ => KernelServe::start(&["--proto", "unix", "--path", path.to_str().unwrap()]),
        };
        let endpoint = if proto == "tcp" {
            "--server"
        } else {
            "--server-path"
        };
        let json = tmp(&format!("kserve-{proto}.json"));
        let _rmj = TempFiles(vec![json.clone()]);
        let out = bypass_load(&strs(&[
            "--transport",
            proto,
            endpoint,
            &server.addr,
            "--window",
            "4",
            "--count",
            "2000",
            "--duration",
            "30",
            "--json",
            json.to_str().unwrap(),
        ]));
        assert!(out.status.success(), "{}", explain(&out));
        let s = json_file(&json)["summary"].clone();
        assert_eq!(
            (s["received"].as_u64(), s["lost"].as_u64()),
            (Some(2000), Some(0)),
            "{s}"
        );
        assert_eq!(s["invalid"], 0, "{s}");
        let v = server.stop();
        assert_eq!(v["proto"], proto, "{v}");
        assert_eq!(
            (v["rx"].as_u64(), v["tx"].as_u64()),
            (Some(2000), Some(2000)),
            "{v}"
        );
        assert_eq!(v["connections"], 1, "{v}");
    }
}
