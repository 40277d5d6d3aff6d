//! The rpc fast path answering kernel clients in network namespaces: on net_tap, and on
//! net_af_xdp over a veth pair. The kernel's ping, the unmodified sockperf client and a small
//! UDP RPC client all get correct answers; junk gets none; the counters match.
#![forbid(unsafe_code)]

mod support;

use std::net::UdpSocket;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bypass::wire::rpc::{RpcHeader, RpcKind, RpcMethod, RpcRepr, RpcStatus, HEADER_LEN};
use serde_json::Value;
use support::*;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fast path running inside a namespace; stopped by SIGINT on `finish` (killed on drop).
struct Server {
    child: Option<Child>,
    _prefix: Prefix,
}

impl Server {
    fn start(ns: &Netns, ip: &str, vdev: &str, tag: &str) -> Server {
        let prefix = Prefix::new(tag);
        let mut args = vec![
            "netns".to_string(),
            "exec".into(),
            ns.0.clone(),
            bin().into(),
        ];
        args.extend(strs(&[
            "serve",
            "--mode",
            "rpc",
            "--ip",
            ip,
            "--poll-mode",
            "adaptive",
            "--json",
            "--duration",
            "60",
            "--",
        ]));
        args.extend(prefix.eal(1, &[vdev]));
        let child = Command::new("ip")
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn server");
        Server {
            child: Some(child),
            _prefix: prefix,
        }
    }

    /// Stops the server and returns its final JSON report.
    fn finish(mut self) -> Value {
        let child = self.child.take().unwrap();
        // `ip netns exec` execs the program, so the child's pid is the server's.
        signal(child.id(), Signal::Int);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "server exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = json_lines(&out.stdout);
        lines.last().expect("final line").clone()
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

fn wait_for_link(ns: &Netns, dev: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let ok = Command::new("ip")
            .args(["-n", &ns.0, "link", "show", dev])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{dev} never appeared in {}", ns.0);
}

fn request(method: RpcMethod, id: u64, payload: &[u8]) -> Vec<u8> {
    let repr = RpcRepr::request(method, id, id * 1000 + 7, payload.len() as u32);
    let mut buf = vec![0u8; HEADER_LEN + payload.len()];
    repr.emit(&mut RpcHeader::new_unchecked(&mut buf[..]))
        .expect("buffer holds the header");
    buf[HEADER_LEN..].copy_from_slice(payload);
    buf
}

/// What the UDP RPC client saw.
#[derive(Debug)]
struct ClientResult {
    echoes_ok: u64,
    spin_ok: bool,
    unknown_method_error: bool,
    junk_answered: u64,
}

/// A small kernel UDP client: echo requests, a spin, an unknown method, and junk.
fn rpc_client(server: &'static str) -> ClientResult {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let dst = format!("{server}:7777");
    let mut buf = [0u8; 2048];
    let mut echoes_ok = 0;
    for id in 1..=50u64 {
        let payload: Vec<u8> = (0..(id as usize * 7 % 300)).map(|i| i as u8).collect();
        s.send_to(&request(RpcMethod::Echo, id, &payload), &dst)
            .unwrap();
        let n = s.recv(&mut buf).expect("echo reply");
        let h = RpcHeader::new_checked(&buf[..n]).expect("valid reply");
        if h.kind() == RpcKind::Response
            && h.status() == RpcStatus::Ok
            && h.request_id() == id
            && h.client_ts() == id * 1000 + 7
            && h.payload() == &payload[..]
            && h.server_ns() > 0
        {
            echoes_ok += 1;
        }
    }
    s.send_to(&request(RpcMethod::Spin, 99, &1000u32.to_be_bytes()), &dst)
        .unwrap();
    let n = s.recv(&mut buf).expect("spin reply");
    let h = RpcHeader::new_checked(&buf[..n]).unwrap();
    let spin_ok = h.kind() == RpcKind::Response && h.request_id() == 99 && h.server_ns() >= 1000;
    s.send_to(&request(RpcMethod::from(77u16), 100, b"xyz"), &dst)
        .unwrap();
    let n = s.recv(&mut buf).expect("error reply");
    let h = RpcHeader::new_checked(&buf[..n]).unwrap();
    let unknown_method_error = h.kind() == RpcKind::Error
        && h.status() == RpcStatus::UnknownMethod
        && h.request_id() == 100
        && h.length() == 0;

    // Junk: bad magic to the RPC port, and anything to a port nobody serves.
    let mut bad = request(RpcMethod::Echo, 101, b"junk");
    bad[0] = 0xde;
    s.send_to(&bad, &dst).unwrap();
    s.send_to(b"hello", format!("{server}:9")).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut junk_answered = 0;
    while s.recv(&mut buf).is_ok() {
        junk_answered += 1;
    }
    ClientResult {
        echoes_ok,
        spin_ok,
        unknown_method_error,
        junk_answered,
    }
}

fn sockperf(ns: &Netns, server: &str) -> (u64, u64) {
    let out = ns.exec(&[
        "timeout",
        "20",
        "sockperf",
        "ping-pong",
        "-i",
        server,
        "-p",
        "11111",
        "-t",
        "1",
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let received = text
        .lines()
        .find(|l| l.contains("[Valid Duration]"))
        .and_then(|l| l.split("ReceivedMessages=").nth(1))
        .and_then(|v| v.trim().trim_end_matches(';').parse().ok())
        .unwrap_or_else(|| panic!("no sockperf summary:\n{text}"));
    let dropped = text
        .lines()
        .find(|l| l.contains("# dropped messages"))
        .and_then(|l| l.split("# dropped messages = ").nth(1))
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sockperf drop count:\n{text}"));
    (received, dropped)
}

fn exercise(client_ns: &Netns, server_ip: &'static str) -> ClientResult {
    let ping = client_ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", server_ip]);
    let ping = String::from_utf8_lossy(&ping.stdout);
    assert!(ping.contains("3 received"), "{ping}");

    let (received, dropped) = sockperf(client_ns, server_ip);
    assert!(received > 100, "sockperf got {received} replies");
    assert_eq!(dropped, 0, "sockperf lost replies");

    let r = client_ns.run(move || rpc_client(server_ip));
    assert_eq!(r.echoes_ok, 50, "{r:?}");
    assert!(r.spin_ok, "{r:?}");
    assert!(r.unknown_method_error, "{r:?}");
    assert_eq!(r.junk_answered, 0, "{r:?}");
    r
}

fn check_counters(fin: &Value) {
    let n = |k: &str| fin[k].as_u64().unwrap();
    assert_eq!(n("rx"), n("tx") + n("drops"), "{fin}");
    let by = &fin["drops_by_reason"];
    assert!(
        by["rpc-server/bad-magic"].as_u64().unwrap_or(0) >= 1,
        "{by}"
    );
    assert!(
        by["udp-input/unknown-port"].as_u64().unwrap_or(0) >= 1,
        "{by}"
    );
    let nodes = fin["nodes"].as_array().unwrap();
    let node = |name: &str| {
        nodes
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("node {name}"))["packets"]
            .as_u64()
            .unwrap()
    };
    assert!(node("icmp-echo") >= 3);
    assert!(node("rpc-server") >= 53);
    assert!(node("sockperf-echo") > 100);
    assert!(node("arp-reply") >= 1, "the kernel resolved us by ARP");
    assert!(fin["service_ns"]["count"].as_u64().unwrap() >= 53);
}

#[test]
fn tap_answers_ping_sockperf_and_rpc() {
    if !need_root("tap_answers_ping_sockperf_and_rpc") {
        return;
    }
    let ns = Netns::new("t");
    let server = Server::start(&ns, "198.18.0.1", "net_tap0,iface=bptap0", "tap");
    wait_for_link(&ns, "bptap0");
    ns.exec(&["ip", "addr", "add", "198.18.0.2/24", "dev", "bptap0"]);
    ns.exec(&["ip", "link", "set", "bptap0", "up"]);
    exercise(&ns, "198.18.0.1");
    let fin = server.finish();
    check_counters(&fin);
    assert_eq!(fin["mempool"]["in_use"], 0, "{fin}");
    // net_tap checks checksums itself and reports its verdicts in the mbuf's flags, so auto
    // takes them (and every request above was answered through them).
    let c = &fin["ports"][0]["checksum"];
    assert_eq!(c["requested"], "auto", "{c}");
    assert_eq!(c["resolved"], "offload", "{c}");
    assert_eq!(
        c["why"], "auto: net_tap offers rx IPv4+UDP checksum offload",
        "{c}"
    );
}

#[test]
fn af_xdp_on_veth_answers_ping_sockperf_and_rpc() {
    if !need_root("af_xdp_on_veth_answers_ping_sockperf_and_rpc") {
        return;
    }
    let srv = Netns::new("xs");
    let cli = Netns::new("xc");
    let (sdev, cdev) = (format!("{}v", srv.0), format!("{}v", cli.0));
    ip(&["link", "add", &sdev, "type", "veth", "peer", "name", &cdev]);
    ip(&["link", "set", &sdev, "netns", &srv.0]);
    ip(&["link", "set", &cdev, "netns", &cli.0]);
    srv.exec(&["ip", "link", "set", &sdev, "up"]);
    cli.exec(&["ip", "addr", "add", "198.18.1.2/24", "dev", &cdev]);
    cli.exec(&["ip", "link", "set", &cdev, "up"]);
    // veth leaves UDP checksums to an offload that never happens on the way into AF_XDP;
    // the fast path (rightly) drops those, so the client side computes them.
    cli.exec(&["ethtool", "-K", &cdev, "tx", "off"]);
    let server = Server::start(
        &srv,
        "198.18.1.1",
        &format!("net_af_xdp0,iface={sdev}"),
        "xdp",
    );
    // The PMD attaches its XDP program at start; give it a moment before the first packet.
    std::thread::sleep(Duration::from_secs(2));
    exercise(&cli, "198.18.1.1");
    let fin = server.finish();
    check_counters(&fin);
    // AF_XDP hands frames over as the kernel had them, with no checksum verdict: verify.
    let c = &fin["ports"][0]["checksum"];
    assert_eq!(
        (&c["requested"], &c["resolved"]),
        (&"auto".into(), &"verify".into()),
        "{c}"
    );
    assert_eq!(
        c["why"], "auto: net_af_xdp offers no rx checksum offload, peer not local",
        "{c}"
    );
}
