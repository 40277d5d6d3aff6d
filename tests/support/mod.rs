//! Helpers for tests that spawn the `bypass` binary on virtual PMDs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bypass")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns false (and says why) when the test cannot run here.
pub fn need_root(test: &str) -> bool {
    if !is_root() {
        eprintln!("skipping {test}: DPDK tests need root (CI runs them as root)");
        return false;
    }
    true
}

/// A unique DPDK file prefix whose runtime folder is removed when this drops, pass or fail.
pub struct Prefix(pub String);

impl Prefix {
    pub fn new(tag: &str) -> Prefix {
        static N: AtomicU32 = AtomicU32::new(0);
        Prefix(format!(
            "bypass-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// EAL arguments for a test process: no hugepages, no PCI, main lcore on CPU 0 and
    /// `workers` worker lcores mapped onto CPU 1 (several lcores may share it).
    pub fn eal(&self, workers: usize, vdevs: &[&str]) -> Vec<String> {
        let mut lcores = vec!["0@0".to_string()];
        for i in 1..=workers {
            lcores.push(format!("{i}@1"));
        }
        let mut v = vec![
            format!("--lcores={}", lcores.join(",")),
            "--no-huge".into(),
            "--no-shconf".into(),
            "--no-pci".into(),
            "--no-telemetry".into(),
            "-m".into(),
            "256".into(),
            format!("--file-prefix={}", self.0),
        ];
        v.extend(vdevs.iter().map(|d| format!("--vdev={d}")));
        v
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(PathBuf::from("/var/run/dpdk").join(&self.0));
    }
}

/// Runs `bypass` with `args` to completion (bounded by `limit`), killing it if it overstays.
pub fn run(args: &[String], limit: Duration) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bypass");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "bypass {args:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Spawns `bypass` with stdout piped, for tests that talk to it while it runs.
pub fn spawn(args: &[String]) -> Child {
    Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bypass")
}

/// Reads stdout lines until one satisfies `pred` or `limit` passes; returns the lines read.
pub fn read_until(child: &mut Child, limit: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut lines = Vec::new();
    while start.elapsed() < limit {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(l) => {
                let done = pred(&l);
                lines.push(l);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    // Keep draining in the background so the child never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    lines
}

pub fn json_lines(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
