//! The fast path as a relay, end to end: a chain of three `rpc-relay` hops in one process
//! (joined topology: the client's port and a net_ring loopback the hops cross) in front of
//! the in-process server, answering a kernel client over net_tap and the DPDK client over
//! net_memif; a relay that finds its kernel upstream by ARP; and configs refused by field.
//! Root (namespaces, tap, memif) except the refusals; each test skips without it, saying so.

mod support;

use std::io::Read;
use std::net::{SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

use bypass::wire::rpc::{RpcHeader, RpcKind, RpcMethod, HEADER_LEN};
use bypass::wire::RpcRepr;

/// Two cores: one fast path at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const SERVER: &str = "198.18.7.1";
const CLIENT: &str = "198.18.7.2";
/// The hops: the client talks to the first, the last talks to the server.
const HOPS: [&str; 3] = ["198.18.7.11", "198.18.7.12", "198.18.7.13"];

/// `--relay` flags of a chain over `via`: hop i forwards to hop i+1, the last to the server.
fn chain_flags(via: &str) -> Vec<String> {
    let mut v = Vec::new();
    for (i, hop) in HOPS.iter().enumerate() {
        let next = HOPS.get(i + 1).copied().unwrap_or(SERVER);
        v.push("--relay".to_string());
        v.push(format!("{hop}:7777={next}:7777@{via}"));
    }
    v
}

fn serve_args(extra: &[String], eal: Vec<String>) -> Vec<String> {
    let mut a = strs(&[
        "serve",
        "--mode",
        "rpc",
        "--ip",
        SERVER,
        "--poll-mode",
        "adaptive",
        "--json",
        "--duration",
        "60",
        "--interval-ms",
        "200",
    ]);
    a.extend(extra.iter().cloned());
    a.push("--".into());
    a.extend(eal);
    a
}

/// A running `bypass serve` (killed on drop) and its stdout lines.
struct Server {
    proc: Guarded,
    lines: Receiver<String>,
}

impl Server {
    /// Starts `argv` (a whole command line, `ip netns exec ..` or the binary's).
    fn start(argv: &[String]) -> Server {
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bypass serve");
        let mut proc = Guarded(Some(child));
        let lines = stdout_lines(proc.child());
        Server { proc, lines }
    }

    /// Waits for the first interval line: the workers are running.
    fn wait_running(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(50)) {
                if l.contains("\"interval\"") {
                    return;
                }
            }
            if let Some(st) = self.proc.child().try_wait().unwrap() {
                let mut err = String::new();
                let _ = self
                    .proc
                    .child()
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err);
                panic!("server exited early ({st}): {err}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "server not running"
            );
        }
    }

    /// Stops the server (SIGINT) and returns its final line.
    fn final_line(mut self) -> Value {
        signal(self.proc.child().id(), Signal::Int);
        let st = wait_exit(self.proc.child(), Duration::from_secs(20), "bypass serve");
        assert!(st.success(), "server: {st}");
        let lines: Vec<String> = self.lines.iter().collect();
        lines
            .iter()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["type"] == "final")
            .unwrap_or_else(|| panic!("no final line in {} lines", lines.len()))
    }
}

fn in_ns(ns: &Netns, args: Vec<String>) -> Vec<String> {
    let mut v = strs(&["ip", "netns", "exec", &ns.0, bin()]);
    v.extend(args);
    v
}

/// Waits for the tap interface the fast path makes in `ns`, then gives it the client's
/// address.
fn tap_up(ns: &Netns, iface: &str) {
    let start = Instant::now();
    while !String::from_utf8_lossy(&ns.exec(&["ip", "-o", "link"]).stdout).contains(iface) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no tap interface"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    ns.exec(&["ip", "addr", "add", &format!("{CLIENT}/24"), "dev", iface]);
    ns.exec(&["ip", "link", "set", iface, "up"]);
}

/// Every relay of the final line forwarded and returned exactly `n`, and dropped nothing.
fn assert_hops(fin: &Value, n: u64) {
    let relays = fin["relays"].as_array().expect("relay lines");
    assert_eq!(relays.len(), HOPS.len(), "{fin}");
    for (r, hop) in relays.iter().zip(HOPS) {
        assert_eq!(r["listen"], format!("{hop}:7777"));
        assert_eq!(r["forwarded"], n, "{r}");
        assert_eq!(r["returned"], n, "{r}");
        assert_eq!(r["drops"], serde_json::json!({}), "{r}");
    }
    assert_eq!(fin["mempool"]["in_use"], 0, "{fin}");
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bypass-relay-{}-{name}", std::process::id()))
}

/// `bypass load` --json summary: all `n` answered, none lost or wrong.
fn assert_answered(json: &PathBuf, n: u64) -> Value {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("load --json")).unwrap();
    let _ = std::fs::remove_file(json);
    let s = v["summary"].clone();
    assert_eq!(s["sent"], n, "{s}");
    assert_eq!(s["received"], n, "{s}");
    for k in ["lost", "invalid", "errors", "duplicated"] {
        assert_eq!(s[k], 0, "{k}: {s}");
    }
    s
}

/// `bypass load` from the namespace to the first hop, closed loop: `count` requests, every
/// one answered.
fn kernel_load(ns: &Netns, count: u64, tag: &str) {
    let json = tmp(&format!("{tag}.json"));
    ns.exec(&[
        bin(),
        "load",
        "--server",
        &format!("{}:7777", HOPS[0]),
        "--count",
        &count.to_string(),
        "--warmup",
        "0",
        "--timeout-ms",
        "500",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_answered(&json, count);
}

/// One request by hand through the chain: the reply names our id, echoes our payload, comes
/// from the first hop, and its `server_ns` holds more than the server's own residence.
fn one_by_hand() -> u32 {
    let sock = UdpSocket::bind(format!("{CLIENT}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let first: SocketAddrV4 = format!("{}:7777", HOPS[0]).parse().unwrap();
    let payload = b"through three hops";
    let mut msg = vec![0u8; HEADER_LEN + payload.len()];
    RpcRepr::request(RpcMethod::Echo, 0xfeed, 1, payload.len() as u32)
        .emit(&mut RpcHeader::new_unchecked(&mut msg[..HEADER_LEN]))
        .unwrap();
    msg[HEADER_LEN..].copy_from_slice(payload);
    sock.send_to(&msg, first).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = sock.recv_from(&mut buf).expect("a reply through the chain");
    assert_eq!(
        from,
        std::net::SocketAddr::V4(first),
        "the reply comes from the first hop"
    );
    let h = RpcHeader::new_checked(&buf[..n]).unwrap();
    assert_eq!(
        (h.kind(), h.request_id(), h.payload()),
        (RpcKind::Response, 0xfeed, &payload[..])
    );
    h.server_ns()
}

#[test]
fn a_chain_of_three_relays_answers_the_kernel_client() {
    if !need_root("a_chain_of_three_relays_answers_the_kernel_client") {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("rly");
    let prefix = Prefix::new("rlytap");
    let mut flags = strs(&["--topology", "joined"]);
    flags.extend(chain_flags("net_ring0"));
    let eal = prefix.eal(1, &["net_tap0,iface=rly0", "net_ring0"]);
    let mut server = Server::start(&in_ns(&ns, serve_args(&flags, eal)));
    server.wait_running();
    tap_up(&ns, "rly0");

    let by_hand = ns.run(one_by_hand);
    let count = 3000u64;
    kernel_load(&ns, count, "kernel");
    let fin = server.final_line();
    assert_hops(&fin, count + 1);
    // Each request passes the graph 7 times (3 hops each way and the server).
    let rpc = fin["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "rpc-server")
        .unwrap();
    assert_eq!(rpc["packets"], count + 1, "{rpc}");
    let relay = fin["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "rpc-relay")
        .unwrap();
    assert_eq!(relay["packets"], 6 * (count + 1), "{relay}");
    assert!(by_hand > 0, "server_ns carries the residences");
}

#[test]
fn a_chain_of_three_relays_answers_the_dpdk_client() {
    if !need_root("a_chain_of_three_relays_answers_the_dpdk_client") {
        return;
    }
    let _serial = serial();
    let sock = SocketFile::new("relay");
    let sprefix = Prefix::new("rlys");
    let mut eal = memif_eal(&sprefix, "0@0,1@1", &sock.vdev("server"));
    eal.push("--vdev=net_ring0".into());
    let mut flags = strs(&["--topology", "joined"]);
    flags.extend(chain_flags("1"));
    let mut argv = vec![bin().to_string()];
    argv.extend(serve_args(&flags, eal));
    let mut server = Server::start(&argv);
    server.wait_running();
    let count = 2000u64;
    let cprefix = Prefix::new("rlyc");
    let json = tmp("dpdk.json");
    let mut a = strs(&[
        "load",
        "--transport",
        "dpdk",
        "--server",
        &format!("{}:7777", HOPS[0]),
        "--client-ip",
        CLIENT,
        "--window",
        "4",
        "--count",
        &count.to_string(),
        "--timeout-ms",
        "500",
        "--json",
        json.to_str().unwrap(),
        "--",
    ]);
    a.extend(memif_eal(&cprefix, "0@0", &sock.vdev("client")));
    let out = run(&a, Duration::from_secs(60));
    assert!(out.status.success(), "client: {}", explain(&out));
    let s = assert_answered(&json, count);
    // The reply's server_ns is every hop's residence (both ways) and the server's.
    assert!(s["server_ns"]["p50_ns"].as_u64().unwrap() > 0, "{s}");
    let fin = server.final_line();
    assert_hops(&fin, count);
}

#[test]
fn a_relay_finds_its_kernel_upstream_by_arp() {
    if !need_root("a_relay_finds_its_kernel_upstream_by_arp") {
        return;
    }
    let _serial = serial();
    let ns = Netns::new("rla");
    let prefix = Prefix::new("rlaarp");
    // The kernel server must be up (its address on the tap) before the relay asks for it:
    // the fast path starts first (it makes the interface), then the address, then the ask,
    // which waits up to 3 s.
    let flags = strs(&["--relay", &format!("{}:7777={CLIENT}:7000", HOPS[0])]);
    let eal = prefix.eal(1, &["net_tap0,iface=rla0"]);
    let mut server = Server::start(&in_ns(&ns, serve_args(&flags, eal)));
    tap_up(&ns, "rla0");
    let kargs = strs(&[
        "kernel-serve",
        "--proto",
        "udp",
        "--bind",
        &format!("{CLIENT}:7000"),
        "--duration",
        "30",
        "--json",
    ]);
    let kernel = Server::start(&in_ns(&ns, kargs));
    server.wait_running();
    let count = 1000u64;
    kernel_load(&ns, count, "arp");
    let fin = server.final_line();
    let r = &fin["relays"][0];
    assert_eq!(
        (r["forwarded"].as_u64(), r["returned"].as_u64()),
        (Some(count), Some(count)),
        "{r}"
    );
    let k = kernel.final_line();
    assert_eq!(
        (k["rx"].as_u64(), k["tx"].as_u64()),
        (Some(count), Some(count)),
        "{k}"
    );
}

#[test]
fn bad_relays_are_refused_naming_the_field() {
    let cases: &[(&[&str], &str)] = &[
        (&["--relay", "198.18.7.11:7777"], "--relay"),
        (
            &["--relay", "198.18.7.1:7777=198.18.7.2:7777"],
            "relay[0].listen",
        ),
        (
            &["--relay", "198.18.7.11:7777=198.18.7.2:7777@1"],
            "relay[0].via",
        ),
        (
            &[
                "--relay",
                "198.18.7.11:7777=198.18.7.2:7777",
                "--relay-table",
                "0",
            ],
            "relay[0].table",
        ),
        (&["--relay-table", "8"], "--relay"),
        (
            &[
                "--relay",
                "198.18.7.11:7777=198.18.7.2:7777",
                "--queues",
                "2",
            ],
            "queues",
        ),
    ];
    for (extra, field) in cases {
        let mut a = strs(&["serve", "--mode", "rpc", "--ip", SERVER]);
        a.extend(strs(extra));
        a.extend(strs(&["--", "--no-pci"]));
        let out = run(&a, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", explain(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{extra:?}: {err}");
    }
    let out = run(
        &strs(&[
            "serve",
            "--mode",
            "io",
            "--topology",
            "joined",
            "--",
            "--no-pci",
        ]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("topology"));
}
