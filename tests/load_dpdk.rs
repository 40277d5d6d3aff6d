//! `bypass load --transport dpdk`: the DPDK client against the fast path over net_memif
//! (two processes, shared memory, no kernel), and against a kernel UDP echo server through
//! net_tap in a namespace the test makes (ARP both ways, checksums checked by the kernel and
//! by the client). Argument errors need no root; everything else does.
#![forbid(unsafe_code)]

mod support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bypass::wire::rpc::{RpcHeader, RpcKind};
use serde_json::Value;
use support::*;

/// Two cores: one DPDK pair at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a command to completion within `limit`, killing it if it overstays.
fn run_cmd(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut g = Guarded(Some(child));
    let start = Instant::now();
    while g.0.as_mut().unwrap().try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < limit,
            "{cmd:?} did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    g.0.take().unwrap().wait_with_output().expect("output")
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bypass-load-dpdk-{}-{name}", std::process::id()))
}

/// What one client run produced: the --json summary and the transport's closing line.
struct ClientRun {
    summary: Value,
    port: Value,
}

fn client_result(out: &Output, json: &Path) -> ClientRun {
    assert!(out.status.success(), "client failed: {}", explain(out));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("client --json")).unwrap();
    let _ = std::fs::remove_file(json);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let port = stderr
        .lines()
        .find_map(|l| l.strip_prefix("dpdk: "))
        .unwrap_or_else(|| panic!("no closing dpdk line: {}", explain(out)));
    ClientRun {
        summary: report["summary"].clone(),
        port: serde_json::from_str(port).expect("dpdk line is JSON"),
    }
}

/// The client's checksum policy, the same in its JSON summary and its closing `dpdk:` line.
fn client_checksum(r: &ClientRun) -> (String, String, String) {
    let c = &r.summary["checksum"];
    assert_eq!(c, &r.port["checksum"], "summary and dpdk line agree");
    let s = |k: &str| {
        c[k].as_str()
            .unwrap_or_else(|| panic!("{k}: {c}"))
            .to_string()
    };
    (s("requested"), s("resolved"), s("why"))
}

/// Every one of `count` (logical) requests sent once and answered once, nothing else.
fn assert_requests_answered(s: &Value, count: u64) {
    for (k, v) in [("sent", count), ("received", count)] {
        assert_eq!(s[k], v, "{k}: {s}");
    }
    for k in [
        "lost",
        "invalid",
        "send_errors",
        "errors",
        "duplicated",
        "late",
    ] {
        assert_eq!(s[k], 0, "{k}: {s}");
    }
}

fn assert_all_answered(r: &ClientRun, count: u64) {
    assert_requests_answered(&r.summary, count);
    let p = &r.port;
    assert_eq!(p["replies"], count, "{p}");
    assert_eq!(p["mempool"]["in_use"], 0, "client buffers still out: {p}");
    assert_eq!(p["drops"]["bad-udp-checksum"], 0, "{p}");
    assert_eq!(p["drops"]["bad-ip-checksum"], 0, "{p}");
    assert_eq!(p["tx_ring_full"], 0, "{p}");
}

/// `bypass load --transport dpdk` from `client_ip` to `server`, then `rest`.
fn dpdk_load(server: &str, client_ip: &str, rest: &[&str]) -> Vec<String> {
    let mut a = strs(&[
        "load",
        "--transport",
        "dpdk",
        "--server",
        server,
        "--client-ip",
        client_ip,
    ]);
    a.extend(strs(rest));
    a
}

fn load_args(server: &str, client_ip: &str, window: u32, count: u64, json: &Path) -> Vec<String> {
    dpdk_load(
        server,
        client_ip,
        &[
            "--window",
            &window.to_string(),
            "--count",
            &count.to_string(),
            "--timeout-ms",
            "500",
            "--json",
            json.to_str().unwrap(),
        ],
    )
}

/// The fast path in rpc mode as the memif server on `sock`: main lcore on CPU 0, its one
/// worker (one port, one queue) on CPU 1, adaptive polling so the client's core is not
/// starved; `extra` flags before the EAL's. Returns once the control socket exists.
fn memif_server(sock: &SocketFile, prefix: &Prefix, extra: &[&str]) -> Guarded {
    let mut args = strs(&[
        "serve",
        "--mode",
        "rpc",
        "--ip",
        "198.18.0.1",
        "--poll-mode",
        "adaptive",
        "--json",
        "--duration",
        "90",
        "--interval-ms",
        "60000",
    ]);
    args.extend(strs(extra));
    args.push("--".into());
    args.extend(memif_eal(prefix, "0@0,1@1", &sock.vdev("server")));
    let mut server = Guarded(Some(spawn(&args)));
    let start = Instant::now();
    while !sock.0.exists() {
        if let Some(st) = server.child().try_wait().unwrap() {
            let out = server.0.take().unwrap().wait_with_output().unwrap();
            panic!("server exited early ({st}): {}", explain(&out));
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no memif socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Stops the memif server with SIGINT; it must exit 0. Returns its final JSON line.
fn stop_memif_server(server: &mut Guarded) -> Value {
    // Let the server finish handling the last disconnect before it closes its port: memif's
    // disconnect handling races with a close (docs/memif.md).
    std::thread::sleep(Duration::from_millis(500));
    let child = server.0.take().unwrap();
    signal(child.id(), Signal::Int);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "server: {}", explain(&out));
    json_lines(&out.stdout).pop().expect("final line")
}

/// Packets through the server's node `name`, from its final line.
fn node_packets(fin: &Value, name: &str) -> u64 {
    fin["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("node {name}: {fin}"))["packets"]
        .as_u64()
        .unwrap()
}

#[test]
fn memif_fast_path_and_dpdk_client() {
    if !need_root("memif_fast_path_and_dpdk_client") {
        return;
    }
    let _serial = serial();
    let sock = SocketFile::new("load-dpdk");
    let sprefix = Prefix::new("memifs");
    let mut server = memif_server(&sock, &sprefix, &[]);

    let count = 2000u64;
    let mut arps_sent = 0;
    // The default trusts the local peer; verify, asked for, sums every reply (and finds
    // them all sound).
    for (window, policy) in [(1u32, None), (8, Some("verify"))] {
        let cprefix = Prefix::new("memifc");
        let json = tmp(&format!("memif-w{window}.json"));
        let mut a = load_args("198.18.0.1:7777", "198.18.0.2", window, count, &json);
        if let Some(p) = policy {
            a.extend(strs(&["--checksum", p]));
        }
        a.push("--".into());
        a.extend(memif_eal(
            &cprefix,
            "0@0",
            &format!(
                "net_memif0,role=client,socket={},socket-abstract=no",
                sock.path()
            ),
        ));
        let out = run(&a, Duration::from_secs(60));
        let r = client_result(&out, &json);
        assert_all_answered(&r, count);
        assert_eq!(r.port["arp_replies_received"], 1, "{}", r.port);
        // The requests and an ARP request, repeated if its reply missed the retry.
        arps_sent += client_arps(&r, count);
        let want = match policy {
            None => ("auto", "trust", "auto: net_memif peer is a local process"),
            Some(_) => ("verify", "verify", "requested"),
        };
        let got = client_checksum(&r);
        assert_eq!((&*got.0, &*got.1, &*got.2), want, "{}", r.port);
    }

    // A zero-copy client (hugepages in one file per list, which the PMD shares with the
    // server) for long enough to spill interval histograms to a file: that file must outlive
    // the PMD's closing of the EAL's memseg fd (src/dpdk/memseg.rs).
    let (zc_requests, zc_arps) = {
        let cprefix = Prefix::new("memifz");
        let _files = HugepageFiles(cprefix.0.clone());
        let (json, hlog) = (tmp("memif-zc.json"), tmp("memif-zc.hlog"));
        let mut a = dpdk_load(
            "198.18.0.1:7777",
            "198.18.0.2",
            &[
                "--duration",
                "2.2",
                "--warmup",
                "0",
                "--timeout-ms",
                "500",
                "--json",
                json.to_str().unwrap(),
                "--hlog",
                hlog.to_str().unwrap(),
                "--",
                "--lcores=0@0",
                "--single-file-segments",
                "--no-pci",
                "--no-telemetry",
                &format!("--file-prefix={}", cprefix.0),
                &format!(
                    "--vdev=net_memif0,role=client,socket={},socket-abstract=no,zero-copy=yes",
                    sock.path()
                ),
            ],
        );
        let out = run(&a, Duration::from_secs(60));
        a.clear();
        assert!(out.status.success(), "zero-copy client: {}", explain(&out));
        let r = client_result(&out, &json);
        let s = &r.summary;
        let n = s["received"].as_u64().unwrap();
        assert!(n > 0, "{s}");
        assert_eq!(s["sent"], n, "{s}");
        assert_eq!(s["lost"], 0, "{s}");
        assert_eq!(r.port["replies"], n, "no warm-up: {}", r.port);
        let text = std::fs::read_to_string(&hlog).expect("zero-copy client --hlog");
        let _ = std::fs::remove_file(&hlog);
        let intervals = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('"'))
            .count();
        assert!(intervals >= 2, "hlog intervals: {text}");
        if r.port["mempool"]["in_use"] != 0 {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("zero-copy rx ring"),
                "unexplained buffers: {err}"
            );
        }
        // Every frame it sent is a request or an ARP request: one, or more when the first
        // reply took longer than the 300 ms retry (seen on a loaded machine).
        let arps = r.port["tx_frames"].as_u64().unwrap() - n;
        assert!(arps >= 1, "{}", r.port);
        (n, arps)
    };

    let fin = stop_memif_server(&mut server);
    // Three clients: each had at least one ARP request answered.
    assert_server_accounts_for(&fin, 2 * count + zc_requests, arps_sent + zc_arps);
    assert!(node_packets(&fin, "arp-reply") >= 3, "{fin}");
    let port = &fin["ports"][0];
    assert_eq!(port["driver"], "net_memif", "{port}");
    let c = &port["checksum"];
    assert_eq!(
        (&c["requested"], &c["resolved"]),
        (&"auto".into(), &"trust".into()),
        "{c}"
    );
    assert_eq!(c["why"], "auto: net_memif peer is a local process", "{c}");
}

/// The client's ARP requests: every frame it sent beyond the `requests`. One, or more when
/// the first reply did not come within the 300 ms retry (seen once in about 20 runs of the
/// memif tests: the server then answered one of two).
fn client_arps(r: &ClientRun, requests: u64) -> u64 {
    let arps = r.port["tx_frames"].as_u64().unwrap() - requests;
    assert!((1..=3).contains(&arps), "{}", r.port);
    arps
}

/// The server saw exactly `requests` RPC requests and answered each, and answered the
/// client's ARP requests it saw (at least one, at most the `arps` sent); nothing dropped.
fn assert_server_accounts_for(fin: &Value, requests: u64, arps: u64) {
    assert_eq!(node_packets(fin, "rpc-server"), requests, "{fin}");
    let answered = node_packets(fin, "arp-reply");
    assert!(
        (1..=arps).contains(&answered),
        "{arps} ARP requests sent: {fin}"
    );
    assert_eq!(fin["rx"], requests + answered, "{fin}");
    assert_eq!(fin["tx"], requests + answered, "{fin}");
    assert_eq!(fin["drops"], 0, "no unknown-port drop: {fin}");
    assert_eq!(
        fin["mempool"]["in_use"], 0,
        "server buffers still out: {fin}"
    );
}

/// The three replicas of a `--replicas 3` fast path, as `--servers` names them.
const REPLICAS: &str = "198.18.0.1:7777,198.18.0.1:7778,198.18.0.1:7779";

/// A DPDK client over memif to the fast path's replicas: `--servers REPLICAS`, window 1,
/// `count` logical requests, then `shape`; returns what it reported.
fn memif_replicas_client(sock: &SocketFile, tag: &str, count: u64, shape: &[&str]) -> ClientRun {
    let cprefix = Prefix::new("memifc");
    let json = tmp(&format!("memif-{tag}.json"));
    let _cleanup = TempFiles(vec![json.clone()]);
    let count = count.to_string();
    let mut rest = vec![
        "--servers",
        REPLICAS,
        "--window",
        "1",
        "--count",
        &count,
        "--duration",
        "30",
        "--timeout-ms",
        "500",
        "--json",
        json.to_str().unwrap(),
    ];
    rest.extend(shape);
    let mut a = dpdk_load("198.18.0.1:7777", "198.18.0.2", &rest);
    a.push("--".into());
    a.extend(memif_eal(&cprefix, "0@0", &sock.vdev("client")));
    client_result(&run(&a, Duration::from_secs(60)), &json)
}

#[test]
fn memif_fanout_to_fast_path_replicas() {
    if !need_root("memif_fanout_to_fast_path_replicas") {
        return;
    }
    let _serial = serial();
    let sock = SocketFile::new("load-dpdk-fan");
    let sprefix = Prefix::new("memifs");
    let mut server = memif_server(
        &sock,
        &sprefix,
        &["--replicas", "3", "--service", "fixed:20us"],
    );
    let count = 2000u64;
    let r = memif_replicas_client(&sock, "fanout", count, &["--fanout", "3"]);
    let s = &r.summary;
    // Every logical request answered, each of its three sub-requests once.
    assert_requests_answered(s, count);
    let f = &s["fanout"];
    assert_eq!(
        (&f["fanout"], &f["replicas"]),
        (&3.into(), &3.into()),
        "{f}"
    );
    assert_eq!(f["sub"]["count"], 3 * count, "{f}");
    assert!(f.get("hedge").is_none(), "{f}");
    let p = &r.port;
    assert_eq!(p["replies"], 3 * count, "{p}");
    // Every frame it sent is a sub-request or an ARP request.
    let arps = client_arps(&r, 3 * count);
    assert_eq!(p["mempool"]["in_use"], 0, "client buffers still out: {p}");
    assert_eq!(p["tx_ring_full"], 0, "{p}");
    // Every reply carries the 20 us the server spun for it (one reading per vector, taken
    // after every spin of the vector: at least 20 us, never less).
    let min = s["server_ns"]["min_ns"].as_u64().unwrap();
    assert!(min >= 19_900, "server_ns min {min}: {s}");

    let fin = stop_memif_server(&mut server);
    // The three ports are one rpc-server node: it answered every sub-request, whichever
    // replica port it named.
    assert_server_accounts_for(&fin, 3 * count, arps);
}

#[test]
fn memif_hedging_between_fast_path_replicas() {
    if !need_root("memif_hedging_between_fast_path_replicas") {
        return;
    }
    let _serial = serial();
    let sock = SocketFile::new("load-dpdk-hedge");
    let sprefix = Prefix::new("memifs");
    // 2% of requests hold the worker 5 ms. The replicas share the server's one worker, so a
    // hedge queues behind the slow first copy it duplicates and is answered after it: every
    // duplicate loses, and its reply still arrives (wasted), exactly.
    let mut server = memif_server(
        &sock,
        &sprefix,
        &["--replicas", "3", "--service", "bimodal:20us,2%:5ms"],
    );
    let count = 2000u64;
    let r = memif_replicas_client(&sock, "hedge", count, &["--hedge-after", "1ms"]);
    let s = &r.summary;
    // Every logical request answered, each of its three sub-requests once.
    assert_requests_answered(s, count);
    let f = &s["fanout"];
    assert_eq!(
        (&f["fanout"], &f["replicas"]),
        (&1.into(), &3.into()),
        "{f}"
    );
    let h = &f["hedge"];
    assert_eq!(h["threshold_ns"], 1_000_000, "{h}");
    let dups = h["duplicates"].as_u64().unwrap();
    // Every slow first copy is hedged, and so is a fast one queued behind a slow hedge: about
    // 40 to 90 here, at least one unless none of 2000 draws was slow (0.98^2000, e^-40).
    assert!(dups > 0, "{h}");
    assert_eq!(h["won"], 0, "a hedge is served after its first copy: {h}");
    assert_eq!(
        h["wasted"], dups,
        "every losing reply arrived and was counted: {h}"
    );
    let p = &r.port;
    assert_eq!(p["replies"], count + dups, "{p}");
    assert_eq!(p["mempool"]["in_use"], 0, "client buffers still out: {p}");
    // Every frame it sent is a request, a hedge or an ARP request.
    let arps = client_arps(&r, count + dups);

    let fin = stop_memif_server(&mut server);
    // The server saw every first copy and every hedge, and answered them all.
    assert_server_accounts_for(&fin, count + dups, arps);
}

/// Removes a zero-copy client's hugepage files (kept, not unlinked, so the PMD can share them).
struct HugepageFiles(String);

impl Drop for HugepageFiles {
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir("/dev/hugepages") else {
            return;
        };
        let map = format!("{}map_", self.0);
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&map) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

const KERNEL_IP: &str = "198.18.2.1";
const CLIENT_IP: &str = "198.18.2.2";
/// The PMD gives the kernel side of its tap the port's own MAC, so this is both.
const TAP_MAC: &str = "02:00:00:12:02:01";

/// A namespace with a persistent tap device (address up before the client starts, so its
/// first ARP finds the kernel ready) and a kernel UDP echo server on it.
struct TapPeer {
    ns: Netns,
    dev: String,
    stop: Arc<AtomicBool>,
    echo: Option<JoinHandle<u64>>,
}

impl TapPeer {
    fn new(tag: &str) -> TapPeer {
        // `bpl`: the load tests' namespaces, apart from the fast path tests' `bp` ones.
        let ns = Netns::new(&format!("l{tag}"));
        let dev = format!("{}t", ns.0);
        ns.exec(&[
            "ip",
            "tuntap",
            "add",
            "dev",
            &dev,
            "mode",
            "tap",
            "multi_queue",
        ]);
        ns.exec(&["ip", "addr", "add", &format!("{KERNEL_IP}/24"), "dev", &dev]);
        ns.exec(&["ip", "link", "set", &dev, "up"]);
        let stop = Arc::new(AtomicBool::new(false));
        let echo = Some(kernel_echo(&ns, Arc::clone(&stop)));
        TapPeer {
            ns,
            dev,
            stop,
            echo,
        }
    }

    /// Runs the DPDK client in the namespace on the tap device.
    fn client(&self, extra: &[&str], server: &str, json: &Path) -> Output {
        let prefix = Prefix::new("tapc");
        let mut a = strs(&["netns", "exec", &self.ns.0, bin()]);
        a.extend(load_args(server, CLIENT_IP, 8, 2000, json));
        a.extend(strs(extra));
        a.extend(strs(&[
            "--",
            "--lcores=0@0",
            "--no-huge",
            "--no-shconf",
            "--no-pci",
            "--no-telemetry",
            "-m",
            "256",
            &format!("--file-prefix={}", prefix.0),
            &format!("--vdev=net_tap0,iface={},mac={TAP_MAC}", self.dev),
        ]));
        run_cmd(Command::new("ip").args(&a), Duration::from_secs(60))
    }

    /// Stops the echo server and returns how many requests it answered.
    fn echoed(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.echo.take().unwrap().join().expect("echo thread")
    }
}

impl Drop for TapPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.echo.take() {
            let _ = h.join();
        }
    }
}

/// A kernel UDP server in `ns` answering each RPC request with the same message as a
/// response. The kernel drops datagrams whose checksum is wrong, so an answer proves the
/// client's checksums.
fn kernel_echo(ns: &Netns, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = ns.spawn(move || {
        let s = UdpSocket::bind(format!("{KERNEL_IP}:7777")).expect("bind echo");
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let Ok((len, from)) = s.recv_from(&mut buf) else {
                continue;
            };
            let Ok(mut h) = RpcHeader::new_checked(&mut buf[..len]) else {
                continue;
            };
            h.set_kind(RpcKind::Response);
            if s.send_to(&buf[..len], from).is_ok() {
                n += 1;
            }
        }
        n
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("echo server ready");
    h
}

#[test]
fn tap_kernel_peer_arp_both_ways() {
    if !need_root("tap_kernel_peer_arp_both_ways") {
        return;
    }
    let _serial = serial();
    let peer = TapPeer::new("a");
    let server = format!("{KERNEL_IP}:7777");

    // The client asks for the kernel's MAC; the kernel learns ours from the request.
    let json = tmp("tap-arp.json");
    let r = client_result(&peer.client(&[], &server, &json), &json);
    assert_all_answered(&r, 2000);
    // net_tap checks checksums as it reads and says so in the mbuf flags: auto takes them,
    // and every reply came through them.
    let (requested, resolved, why) = client_checksum(&r);
    assert_eq!((&*requested, &*resolved), ("auto", "offload"), "{why}");
    assert_eq!(why, "auto: net_tap offers rx IPv4+UDP checksum offload");
    assert!(
        r.port["arp_replies_received"].as_u64().unwrap() >= 1,
        "{}",
        r.port
    );

    // Given the MAC the client asks nothing; with its neighbour table flushed the kernel
    // must ask for ours before it can answer.
    peer.ns.exec(&["ip", "neigh", "flush", "all"]);
    let json = tmp("tap-mac.json");
    let r = client_result(
        &peer.client(&["--server-mac", TAP_MAC], &server, &json),
        &json,
    );
    assert_all_answered(&r, 2000);
    assert_eq!(r.port["arp_replies_received"], 0, "{}", r.port);
    assert!(
        r.port["arp_requests_answered"].as_u64().unwrap() >= 1,
        "{}",
        r.port
    );
    assert_eq!(
        r.port["tx_frames"],
        2000 + r.port["arp_requests_answered"].as_u64().unwrap()
    );
    assert_eq!(peer.echoed(), 4000);
}

#[test]
fn arp_to_a_silent_address_fails_clearly() {
    if !need_root("arp_to_a_silent_address_fails_clearly") {
        return;
    }
    let _serial = serial();
    let peer = TapPeer::new("s");
    let json = tmp("tap-silent.json");
    let start = Instant::now();
    let out = peer.client(&[], "198.18.2.9:7777", &json);
    let took = start.elapsed();
    assert!(!out.status.success(), "{}", explain(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no ARP reply from 198.18.2.9") && err.contains("--server-mac"),
        "{}",
        explain(&out)
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(!json.exists(), "no report for a run that never started");
    assert_eq!(peer.echoed(), 0);
}

/// Validation happens before the EAL starts, so these need no root.
#[test]
fn bad_arguments_exit_2_naming_the_flag() {
    let base = [
        "load",
        "--transport",
        "dpdk",
        "--server",
        "198.18.0.1:7777",
        "--count",
        "10",
    ];
    let eal = ["--", "--lcores=0@0", "--no-huge", "--vdev=net_null0"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (eal.to_vec(), "--client-ip"),
        (
            [
                &["--client-ip", "198.18.0.2", "--wait", "blocking"][..],
                &eal,
            ]
            .concat(),
            "--wait",
        ),
        (
            vec!["--client-ip", "198.18.0.2"],
            "EAL arguments after `--`",
        ),
        (
            [
                &[
                    "--client-ip",
                    "198.18.0.2",
                    "--server-mac",
                    "02:00:00:00:00",
                ][..],
                &eal,
            ]
            .concat(),
            "--server-mac",
        ),
        (
            [&["--client-ip", "198.18.0.2", "--size", "1500"][..], &eal].concat(),
            "--size",
        ),
        (
            [&["--client-ip", "198.18.0.1"][..], &eal].concat(),
            "--client-ip",
        ),
    ];
    for (extra, flag) in cases {
        let mut a = strs(&base);
        a.extend(strs(&extra));
        let out = run(&a, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{a:?}: {}", explain(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{a:?} should name {flag}: {err}");
        assert!(!err.contains("EAL:"), "{a:?} started the EAL: {err}");
    }
    // dpdk-only flags with the kernel transport.
    let a = strs(&[
        "load",
        "--server",
        "127.0.0.1:7777",
        "--client-ip",
        "198.18.0.2",
        "--count",
        "1",
    ]);
    let out = run(&a, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--client-ip"));
    let a = strs(&[
        "load",
        "--server",
        "127.0.0.1:7777",
        "--checksum",
        "trust",
        "--count",
        "1",
    ]);
    let out = run(&a, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--checksum"));
    let a = [
        &base[..],
        &["--client-ip", "198.18.0.2", "--checksum", "often"],
        &eal,
    ]
    .concat();
    let out = run(&strs(&a), Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--checksum"));
}

/// `--checksum offload` on a port without rx checksum offload is refused once the port is
/// known, naming the flag and the port, never quietly verified instead.
#[test]
fn offload_on_a_port_without_it_is_refused() {
    if !need_root("offload_on_a_port_without_it_is_refused") {
        return;
    }
    let _serial = serial();
    let prefix = Prefix::new("nooff");
    let mut a = dpdk_load(
        "198.18.0.1:7777",
        "198.18.0.2",
        &["--count", "1", "--checksum", "offload", "--"],
    );
    a.extend(prefix.eal(0, &["net_null0"]));
    let out = run(&a, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--checksum") && err.contains("net_null0"),
        "{err}"
    );
}

#[test]
fn memif_client_without_server_fails_clearly() {
    if !need_root("memif_client_without_server_fails_clearly") {
        return;
    }
    let _serial = serial();
    let sock = SocketFile::new("load-dpdk");
    let prefix = Prefix::new("memifn");
    let json = tmp("memif-none.json");
    let mut a = load_args("198.18.0.1:7777", "198.18.0.2", 1, 10, &json);
    a.push("--".into());
    a.extend(memif_eal(
        &prefix,
        "0@0",
        &format!(
            "net_memif0,role=client,socket={},socket-abstract=no",
            sock.path()
        ),
    ));
    let out = run(&a, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", explain(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs its server running"),
        "{}",
        explain(&out)
    );
    assert!(!json.exists());
}
