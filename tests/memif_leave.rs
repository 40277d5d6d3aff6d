//! memif clients leaving one running fast path (issue 11 §2): ten that finish a bounded load
//! and exit, ten SIGKILLed with requests in flight, against one busy-polling `bypass serve`.
//! The server must outlive every one of them and exit cleanly at the end with every buffer
//! back: the interrupt thread's unmap waits for the worker's burst (src/dpdk/quiesce.rs,
//! docs/memif.md). scripts/memif-leave.sh runs the long version on hugepages.
#![forbid(unsafe_code)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::*;

const CYCLES: u32 = 10;
const COUNT: u64 = 2000;
/// Stops of a server the moment a client dies (each with a server of its own).
const STOPS: u32 = 5;

/// Two cores: one DPDK pair at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn eal(prefix: &Prefix, lcores: &str, role: &str, sock: &SocketFile) -> Vec<String> {
    memif_eal(prefix, lcores, &sock.vdev(role))
}

fn client_args(sock: &SocketFile, prefix: &Prefix, bound: &[&str]) -> Vec<String> {
    let mut a = strs(&[
        "load",
        "--transport",
        "dpdk",
        "--server",
        "198.18.0.1:7777",
        "--client-ip",
        "198.18.0.2",
        "--window",
        "8",
        "--timeout-ms",
        "500",
    ]);
    a.extend(strs(bound));
    a.push("--".into());
    a.extend(eal(prefix, "0@0", "client", sock));
    a
}

/// Fails the test if the server has exited, naming the cycle.
fn assert_alive(server: &mut Guarded, what: &str) {
    // A crash shows within microseconds of the disconnect the interrupt thread handles.
    std::thread::sleep(Duration::from_millis(200));
    if let Some(st) = server.child().try_wait().expect("try_wait") {
        let out = server.0.take().unwrap().wait_with_output().unwrap();
        panic!("the server died after {what} ({st}): {}", explain(&out));
    }
}

fn orderly(sock: &SocketFile, server: &mut Guarded, i: u32) {
    let prefix = Prefix::new("mlo");
    let out = run(
        &client_args(sock, &prefix, &["--count", &COUNT.to_string()]),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "orderly client {i}: {}",
        explain(&out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("\"replies\":{COUNT},")),
        "orderly client {i} got every reply: {err}"
    );
    assert_alive(server, &format!("orderly client {i}"));
}

/// Starts a long client and returns once its traffic has started.
fn traffic_client(sock: &SocketFile, prefix: &Prefix, i: u32) -> Guarded {
    let mut client = Guarded(Some(
        Command::new(bin())
            .args(client_args(sock, prefix, &["--duration", "30"]))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn client"),
    ));
    let stderr = client.child().stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if l.starts_with("bypass load: dpdk port") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("client {i} never started its traffic"));
    client
}

/// Kills a client with traffic in flight, `delay` after its traffic starts.
fn abrupt(sock: &SocketFile, server: &mut Guarded, i: u32, delay: Duration) {
    let prefix = Prefix::new("mla");
    let mut client = traffic_client(sock, &prefix, i);
    std::thread::sleep(delay);
    let mut c = client.0.take().unwrap();
    c.kill().expect("SIGKILL the client");
    let _ = c.wait();
    assert_alive(server, &format!("SIGKILLed client {i}"));
}

/// A busy-polling memif server on `sock`, once its socket exists.
fn start_server(sock: &SocketFile, prefix: &Prefix) -> Guarded {
    let mut args = strs(&[
        "serve",
        "--mode",
        "rpc",
        "--ip",
        "198.18.0.1",
        "--poll-mode",
        "busy",
        "--json",
        "--duration",
        "150",
        "--interval-ms",
        "600000",
        "--",
    ]);
    args.extend(eal(prefix, "0@0,1@1", "server", sock));
    let mut server = Guarded(Some(spawn(&args)));
    let started = Instant::now();
    while !sock.0.exists() {
        if server.child().try_wait().unwrap().is_some() {
            let out = server.0.take().unwrap().wait_with_output().unwrap();
            panic!("server exited early: {}", explain(&out));
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no memif socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// Waits for a server already sent SIGINT: exit 0, a final report with every buffer back
/// and every packet answered or counted, the socket removed. Returns the report.
fn clean_exit(server: &mut Guarded, sock: &SocketFile, what: &str) -> serde_json::Value {
    let mut child = server.0.take().unwrap();
    let waited = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "{what}: server ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what}: server: {}", explain(&out));
    let fin = json_lines(&out.stdout).pop().expect("final line");
    assert_eq!(fin["type"], "final", "{what}: {fin}");
    assert_eq!(fin["mempool"]["in_use"], 0, "{what}: buffers out: {fin}");
    let (rx, tx, drops) = (
        fin["rx"].as_u64().unwrap(),
        fin["tx"].as_u64().unwrap(),
        fin["drops"].as_u64().unwrap(),
    );
    assert_eq!(
        rx,
        tx + drops,
        "{what}: every packet answered or counted: {fin}"
    );
    assert!(!sock.0.exists(), "{what}: the server removes its socket");
    fin
}

#[test]
fn server_outlives_clients_that_leave() {
    if !need_root("server_outlives_clients_that_leave") {
        return;
    }
    let _serial = serial();
    let started = Instant::now();
    let sock = SocketFile::new("memif-leave-cycles");
    let sprefix = Prefix::new("mls");
    let mut server = start_server(&sock, &sprefix);
    for i in 0..CYCLES {
        orderly(&sock, &mut server, i);
        // Spread the kills over the first 100 ms of traffic.
        abrupt(
            &sock,
            &mut server,
            i,
            Duration::from_millis(u64::from(i) * 11),
        );
    }
    signal(server.child().id(), Signal::Int);
    let fin = clean_exit(&mut server, &sock, "after the cycles");
    assert!(
        fin["rx"].as_u64().unwrap() >= u64::from(CYCLES) * (COUNT + 1),
        "the orderly clients' requests and ARPs at least: {fin}"
    );
    eprintln!(
        "memif_leave: {CYCLES} orderly + {CYCLES} SIGKILL cycles in {:?}",
        started.elapsed()
    );
}

/// The server's port stop meets its interrupt thread's handling of the client's death: the
/// client SIGKILLed and the server sent SIGINT back to back, in either order.
#[test]
fn server_stopped_as_a_client_dies() {
    if !need_root("server_stopped_as_a_client_dies") {
        return;
    }
    let _serial = serial();
    for i in 0..STOPS {
        let sock = SocketFile::new("memif-leave-stop");
        let sprefix = Prefix::new("mlq");
        let mut server = start_server(&sock, &sprefix);
        let cprefix = Prefix::new("mlc");
        let mut client = traffic_client(&sock, &cprefix, i);
        std::thread::sleep(Duration::from_millis(u64::from(i) * 13));
        let (sid, mut c) = (server.child().id(), client.0.take().unwrap());
        if i % 2 == 0 {
            c.kill().expect("SIGKILL the client");
            signal(sid, Signal::Int);
        } else {
            signal(sid, Signal::Int);
            c.kill().expect("SIGKILL the client");
        }
        let _ = c.wait();
        clean_exit(&mut server, &sock, &format!("stop {i}"));
    }
}
