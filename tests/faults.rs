//! Faults `bypass serve` must survive, as far as they fit in CI (issue 11 §2): stop signals at
//! any moment of its life, a packet pool far too small for the traffic, and a tx queue that
//! stays full. Each run is bounded in time and leaves no DPDK state behind, pass or fail.
#![forbid(unsafe_code)]

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

fn serve_args(extra: &[&str], eal: Vec<String>) -> Vec<String> {
    serve_mode_args("io", extra, eal)
}

fn serve_mode_args(mode: &str, extra: &[&str], eal: Vec<String>) -> Vec<String> {
    let mut a = strs(&["serve", "--mode", mode, "--poll-mode", "adaptive", "--json"]);
    a.extend(strs(extra));
    a.push("--".into());
    a.extend(eal);
    a
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing or not a number in {v}"))
}

/// A folder under the temp dir, removed when this drops.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bypass-faults-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes `n` 64-byte frames (local experimental ethertype, so they mean nothing to anyone)
/// to a pcap file in `dir`; returns its path.
fn frames_pcap(dir: &TempDir, n: usize) -> String {
    let mut f = [0u8; 64];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x02]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    let path = dir.0.join(format!("frames-{n}.pcap"));
    bypass::pcap::write_all(&path, std::iter::repeat_n(f, n)).expect("write pcap");
    path.to_str().unwrap().to_string()
}

/// The final report's invariants: counters add up and every buffer is back in the pool.
fn check_final<'a>(lines: &'a [Value], what: &str) -> &'a Value {
    let fin = lines.last().unwrap_or_else(|| panic!("{what}: no line"));
    assert_eq!(
        fin["type"], "final",
        "{what}: last line is the final report"
    );
    let (rx, tx, drops) = (u(fin, "rx"), u(fin, "tx"), u(fin, "drops"));
    assert_eq!(rx, tx + drops, "{what}: rx == tx + drops: {fin}");
    assert_eq!(
        u(&fin["mempool"], "in_use"),
        0,
        "{what}: buffers leaked: {fin}"
    );
    fin
}

fn no_leftovers(p: &Prefix, what: &str) {
    let left = dpdk_leftovers(&p.0);
    assert!(left.is_empty(), "{what}: DPDK files left behind: {left:?}");
}

/// What a signal trial runs: the mode, extra flags, devices and worker count.
struct Rig {
    name: &'static str,
    mode: &'static str,
    extra: Vec<String>,
    vdevs: Vec<String>,
    workers: usize,
}

/// One signal trial: what was sent, when, and to what.
struct Trial<'a> {
    sig: Signal,
    delay_ms: u64,
    second_after_ms: Option<u64>,
    rig: &'a Rig,
}

impl Trial<'_> {
    fn what(&self) -> String {
        format!(
            "{:?} at {} ms (second: {:?}) on {}",
            self.sig, self.delay_ms, self.second_after_ms, self.rig.name
        )
    }

    fn run(&self, tag: &str) -> (Output, Prefix) {
        let p = Prefix::new(tag);
        let mut extra = vec!["--interval-ms", "50"];
        extra.extend(self.rig.extra.iter().map(String::as_str));
        let vdevs: Vec<&str> = self.rig.vdevs.iter().map(String::as_str).collect();
        let mut child = spawn(&serve_mode_args(
            self.rig.mode,
            &extra,
            p.eal(self.rig.workers, &vdevs),
        ));
        std::thread::sleep(Duration::from_millis(self.delay_ms));
        signal(child.id(), self.sig);
        if let Some(ms) = self.second_after_ms {
            std::thread::sleep(Duration::from_millis(ms));
            // It may have finished already; a second signal to a zombie is harmless.
            let _ = bypass::os::process::signal(child.id(), self.sig);
        }
        let start = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if start.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!("{}: no exit within 15 s: {}", self.what(), explain(&out));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (child.wait_with_output().expect("output"), p)
    }

    /// Exit 0 with a final report that holds; or, for a signal that beat the handlers (only
    /// the process's first instants, before the EAL), death by that signal with nothing made.
    /// Returns the packets received when there was a final report.
    fn check(&self, out: &Output, p: &Prefix) -> Option<u64> {
        let what = self.what();
        let received = if out.status.success() {
            let lines = json_lines(&out.stdout);
            let fin = check_final(&lines, &what);
            assert_eq!(fin["stop_reason"], "signal", "{what}: {fin}");
            Some(u(fin, "rx"))
        } else {
            assert_eq!(
                out.status.signal(),
                Some(self.sig.number()),
                "{what}: {}",
                explain(out)
            );
            assert!(out.stdout.is_empty(), "{what}: {}", explain(out));
            let dir = PathBuf::from("/var/run/dpdk").join(&p.0);
            assert!(!dir.exists(), "{what}: killed after the EAL made {dir:?}");
            None
        };
        no_leftovers(p, &what);
        received
    }
}

#[test]
fn signals_at_any_moment() {
    if !need_root("signals_at_any_moment") {
        return;
    }
    let dir = TempDir::new("sig");
    let replay = format!(
        "net_pcap0,rx_pcap={},tx_pcap=/dev/null,infinite_rx=1",
        frames_pcap(&dir, 64)
    );
    let big = format!(
        "net_pcap0,rx_pcap={},tx_pcap=/dev/null",
        frames_pcap(&dir, 50_000)
    );
    let rig = |name, mode, extra: &[&str], vdevs: &[&str], workers| Rig {
        name,
        mode,
        extra: strs(extra),
        vdevs: strs(vdevs),
        workers,
    };
    let ip = ["--ip", "198.18.9.1"];
    let rigs = [
        rig("io on net_null", "io", &[], &["net_null0"], 1),
        rig("io on pcap replay", "io", &[], &[&replay], 1),
        rig("rpc on net_null", "rpc", &ip, &["net_null0"], 1),
        rig("rpc on pcap replay", "rpc", &ip, &[&replay], 1),
        rig(
            "io, full tx rings",
            "io",
            &["--topology", "paired", "--tx-first", "2000"],
            &["net_ring0", "net_ring1"],
            2,
        ),
        rig(
            "io, pool of 512 run dry",
            "io",
            &["--topology", "paired", "--mbufs", "512"],
            &[&big, "net_ring0"],
            2,
        ),
    ];
    let mut rng = Rng::from_env("FAULTS_SEED", "faults");
    let trials = 60;
    // Trials that stopped before any packet, during the flood, and that died of the signal.
    let (mut early, mut flood, mut killed) = (0, 0, 0);
    let started = Instant::now();
    for i in 0..trials {
        let t = Trial {
            sig: if (i / rigs.len()) % 2 == 0 {
                Signal::Int
            } else {
                Signal::Term
            },
            // Mostly early (EAL init and port start take ~100-300 ms here), some mid-flood.
            delay_ms: rng.below(400),
            second_after_ms: (rng.below(3) == 0).then(|| rng.below(20)),
            rig: &rigs[i % rigs.len()],
        };
        let (out, p) = t.run("sig");
        match t.check(&out, &p) {
            Some(0) => early += 1,
            Some(_) => flood += 1,
            None => killed += 1,
        }
    }
    eprintln!(
        "faults: {trials} signal trials in {:?}: {early} stopped before any packet, {flood} during the flood, {killed} killed before the handlers",
        started.elapsed()
    );
    assert!(flood > 0, "no trial reached the flood");
}

/// Runs `serve --mode io EXTRA` over `vdevs` on two worker lcores sharing one CPU (so one
/// worker's queue fills while the other is descheduled) until its duration ends; it must exit
/// 0. Returns the final report, its invariants checked.
fn run_paired(tag: &str, extra: &[&str], vdevs: &[&str]) -> Value {
    let p = Prefix::new(tag);
    let mut args = strs(&["--topology", "paired", "--interval-ms", "200"]);
    args.extend(strs(extra));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&serve_args(&args, p.eal(2, vdevs)), Duration::from_secs(30));
    assert!(out.status.success(), "{tag}: {}", explain(&out));
    let lines = json_lines(&out.stdout);
    let fin = check_final(&lines, tag).clone();
    for w in fin["workers"].as_array().unwrap() {
        assert_eq!(u(w, "rx"), u(w, "tx") + u(w, "tx_drops"), "{tag}: {w}");
    }
    no_leftovers(&p, tag);
    fin
}

#[test]
fn pool_exhaustion_is_counted_and_survived() {
    if !need_root("pool_exhaustion_is_counted_and_survived") {
        return;
    }
    let dir = TempDir::new("pool");
    let frames = 50_000u64;
    let pcap = format!(
        "net_pcap0,rx_pcap={},tx_pcap=/dev/null",
        frames_pcap(&dir, frames as usize)
    );
    // 512 buffers (the least serve takes) against a 1024-slot ring the pcap worker fills
    // faster than its reader, descheduled on the same CPU, empties it.
    let fin = run_paired(
        "pool",
        &["--mbufs", "512", "--duration", "2"],
        &[&pcap, "net_ring0"],
    );
    let pcap_port = &fin["ports"][0];
    assert_eq!(pcap_port["name"], "net_pcap0");
    let (ipackets, nombuf) = (
        u(&pcap_port["stats"], "ipackets"),
        u(&pcap_port["stats"], "rx_nombuf"),
    );
    assert!(nombuf > 0, "the pool never ran dry: {fin}");
    // net_pcap reads a frame from the file before it asks for a buffer: every frame is either
    // received or counted as rx_nombuf, none vanishes.
    assert_eq!(ipackets + nombuf, frames, "{fin}");
    assert_eq!(u(&fin["workers"][0], "rx"), ipackets, "{fin}");
    assert_eq!(u(&fin["mempool"], "capacity"), 512);
    eprintln!("faults: pool of 512, {frames} frames: {ipackets} received, {nombuf} rx_nombuf");
}

#[test]
fn full_tx_queue_drops_are_counted_and_freed() {
    if !need_root("full_tx_queue_drops_are_counted_and_freed") {
        return;
    }
    // Each net_ring is a 1024-slot loopback: priming 2000 fills both rings (the surplus is
    // retried, then freed), and each worker then transmits into a ring that is full whenever
    // the other worker, on the same CPU, is not draining it.
    let fin = run_paired(
        "txfull",
        &["--tx-first", "2000", "--duration", "1"],
        &["net_ring0", "net_ring1"],
    );
    let drops = u(&fin, "drops");
    assert!(drops > 0, "no tx drops with full rings: {fin}");
    assert_eq!(
        fin["drops_by_reason"]["tx/queue-full"].as_u64(),
        Some(drops),
        "{fin}"
    );
    let ports = fin["ports"].as_array().unwrap();
    let workers = fin["workers"].as_array().unwrap();
    for (i, port) in ports.iter().enumerate() {
        let primed = u(port, "tx_first");
        assert!(
            primed > 0 && primed < 2000,
            "ring took part of the priming: {port}"
        );
        // What a loopback ring took, its worker or the drain at exit took back out.
        let s = |k| u(&port["stats"], k);
        assert_eq!(s("opackets"), s("ipackets"), "{port}");
        assert_eq!(u(&workers[i], "rx") + u(port, "drained"), s("ipackets"));
    }
    eprintln!("faults: full tx rings: {drops} tx drops, pool full at exit");
}
