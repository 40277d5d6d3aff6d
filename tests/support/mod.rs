//! Helpers for tests that spawn the `bypass` binary (on virtual PMDs, in network namespaces
//! or on loopback): spawning and stopping it, reading its lines, and cleaning up after it.
//! Signals and namespaces go through `bypass::os`, so the tests carry no `unsafe`.
#![allow(dead_code)]
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub use bypass::os::process::Signal;

pub mod replica;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bypass")
}

pub fn is_root() -> bool {
    bypass::os::process::is_root()
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
    let rx = stdout_lines(child);
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

/// Sends `sig` to `pid`, a child of this test not yet waited for; it must arrive.
pub fn signal(pid: u32, sig: Signal) {
    bypass::os::process::signal(pid, sig).unwrap_or_else(|e| panic!("{sig:?} to {pid}: {e}"));
}

/// Waits up to `limit` for `child` to exit; kills it and fails the test if it overstays.
pub fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `sig`, then waits up to `limit` for the exit.
pub fn stop_child(child: &mut Child, sig: Signal, limit: Duration, what: &str) -> ExitStatus {
    signal(child.id(), sig);
    wait_exit(child, limit, &format!("{what} after {sig:?}"))
}

/// Takes `child`'s piped stdout and sends its lines on the channel from a thread (which ends
/// when the child closes its stdout or the receiver is dropped).
pub fn stdout_lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Status, stdout and stderr of a finished command, for an assertion's message.
pub fn explain(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Removes the files it names when the test ends, passed or not.
pub struct TempFiles(pub Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A running `bypass kernel-serve --json --duration 60 ARGS`; killed on drop if a test fails
/// before stopping it.
pub struct KernelServe {
    child: Option<Child>,
    lines: Receiver<String>,
    /// What the ready line names: IP:PORT or the socket path.
    pub addr: String,
}

impl KernelServe {
    /// Starts it and waits for its `ready PROTO ADDR` line.
    pub fn start(args: &[&str]) -> KernelServe {
        let mut child = Command::new(bin())
            .args(["kernel-serve", "--json", "--duration", "60"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn bypass");
        let lines = stdout_lines(&mut child);
        let mut s = KernelServe {
            child: Some(child),
            lines,
            addr: String::new(),
        };
        let line = s
            .lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no ready line from kernel-serve {args:?}"));
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!((parts.len(), parts[0]), (3, "ready"), "ready line: {line}");
        s.addr = parts[2].to_string();
        s
    }

    pub fn sock_addr(&self) -> SocketAddr {
        self.addr.parse().unwrap()
    }

    /// Its process id, for what /proc says about it while it runs.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGTERM, then the final JSON report; the server must exit 0.
    pub fn stop(mut self) -> serde_json::Value {
        let mut child = self.child.take().unwrap();
        let status = stop_child(
            &mut child,
            Signal::Term,
            Duration::from_secs(10),
            "kernel-serve",
        );
        assert!(status.success(), "kernel-serve exit status {status}");
        let last = self
            .lines
            .recv_timeout(Duration::from_secs(5))
            .expect("final report line after SIGTERM");
        let v: serde_json::Value =
            serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}"));
        assert_eq!(v["type"], "final", "{v}");
        v
    }
}

impl Drop for KernelServe {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A network namespace this test made (`bp<tag><pid>`); deleted on drop, pass or fail.
pub struct Netns(pub String);

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("bp{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip netns add");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            explain(&out)
        );
        let ns = Netns(name);
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `args` inside the namespace; it must succeed.
    pub fn exec(&self, args: &[&str]) -> Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .expect("ip netns exec");
        assert!(
            out.status.success(),
            "{args:?} in {}: {}",
            self.0,
            explain(&out)
        );
        out
    }

    /// Runs `f` on a new thread that has entered this namespace; returns what it returns.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().expect("netns thread")
    }

    /// Starts `f` on a new thread that has entered this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            bypass::os::process::enter_net_namespace(&file)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Why python3 with the PyPI `hdrh` module cannot run here (CI installs it with
/// `pip install hdrhistogram`), or Ok.
pub fn python_with_hdrh() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import hdrh.log"])
        .output()
    {
        Err(e) => Err(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "python3 lacks the hdrh module (pip install hdrhistogram): {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => Ok(()),
    }
}

/// An .hlog as the independent python reader decodes it (tests/check_hlog.py's JSON:
/// `start_time_sec`, `intervals`, `all`); Err(why) when that reader is missing here. A
/// reader that fails on the file fails the test.
pub fn read_hlog_with_python(path: &std::path::Path) -> Result<serde_json::Value, String> {
    python_with_hdrh()?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_hlog.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(path)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "check_hlog.py {} failed: {}",
        path.display(),
        explain(&out)
    );
    Ok(serde_json::from_slice(&out.stdout).expect("check_hlog.py prints JSON"))
}

/// What a DPDK process with file prefix `prefix` left behind: its runtime folder
/// `/var/run/dpdk/<prefix>` (with whatever is in it) and hugepage files named after it.
pub fn dpdk_leftovers(prefix: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from("/var/run/dpdk").join(prefix);
    let mut left: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    if dir.exists() {
        left.push(dir);
    }
    if let Ok(d) = std::fs::read_dir("/dev/hugepages") {
        left.extend(
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path()),
        );
    }
    left
}

/// A child killed on drop (pass or fail).
pub struct Guarded(pub Option<Child>);

impl Guarded {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child")
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A memif control socket path under /run, unique to this process, removed on drop.
pub struct SocketFile(pub PathBuf);

impl SocketFile {
    pub fn new(tag: &str) -> SocketFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = PathBuf::from(format!(
            "/run/bypass-{tag}-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&p);
        SocketFile(p)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }

    /// The `--vdev` of a net_memif port with this control socket.
    pub fn vdev(&self, role: &str) -> String {
        format!(
            "net_memif0,role={role},socket={},socket-abstract=no",
            self.path()
        )
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// EAL arguments for one side of a memif pair. No `--no-shconf`: memif registers a
/// multi-process action at probe and fails without the shared config. No hugepages, a
/// unique prefix (removed by `Prefix`'s drop).
pub fn memif_eal(prefix: &Prefix, lcores: &str, vdev: &str) -> Vec<String> {
    strs(&[
        &format!("--lcores={lcores}"),
        "--no-huge",
        "--no-pci",
        "--no-telemetry",
        "-m",
        "256",
        &format!("--file-prefix={}", prefix.0),
        &format!("--vdev={vdev}"),
    ])
}

/// A whole number from the environment, if set and parseable.
pub fn env_u64(k: &str) -> Option<u64> {
    std::env::var(k).ok().and_then(|s| s.parse().ok())
}

/// xorshift64 for a trial's random moments, seeded from the variable `seed_var` or the clock;
/// the seed is printed so a failing sequence can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn from_env(seed_var: &str, who: &str) -> Rng {
        let seed = env_u64(seed_var).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
        eprintln!("{who}: {seed_var}={seed}");
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
