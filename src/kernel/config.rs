//! The kernel servers' settings, typed and checked once: [`KernelConfig::from_args`] turns the
//! flags of [`super::args`] into a [`KernelConfig`] (or refuses them, naming the flag); the
//! servers read typed fields only.

#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::options::{Backend, FieldError, Proto};
use crate::service::ServiceModel;

use super::args::KernelServeArgs;
use super::mmsg::MAX_BATCH;
use super::KernelError;

pub use super::args::DEFAULT_SPIN_MAX_NS;

pub const DEFAULT_BIND: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7777);
pub const DEFAULT_PATH: &str = "/tmp/bypass-rpc.sock";
pub const DEFAULT_BATCH: usize = 32;
pub const DEFAULT_SOCKPERF_PORT: u16 = 11111;
/// More threads than this is a typo, not a server.
pub const MAX_THREADS: usize = 1024;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Inet(SocketAddr),
    Path(PathBuf),
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Inet(a) => write!(f, "{a}"),
            Listen::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A validated `kernel-serve` configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelConfig {
    pub proto: Proto,
    pub listen: Listen,
    pub backend: Backend,
    /// Messages per recvmmsg (batch backend).
    pub batch: usize,
    pub threads: usize,
    /// Thread i is pinned to `cpus[i % len]`; empty: no pinning.
    pub cpus: Vec<usize>,
    /// udp: sockperf port, `None` = off.
    pub sockperf_port: Option<u16>,
    pub spin_max_ns: u32,
    /// The service-time model every request is held for (None: answered at once).
    pub service: Option<ServiceModel>,
    /// udp/tcp: replicas on consecutive ports from the listen port's.
    pub replicas: u16,
    /// tcp/unix: connections one thread holds at once.
    pub max_connections: usize,
    /// tcp/unix: how long replies may wait on a peer that takes no byte of them.
    pub stall_timeout: Duration,
    /// `None`: until a signal.
    pub duration: Option<Duration>,
    pub json: bool,
}

impl KernelConfig {
    /// The CPU thread `i` is pinned to, if any.
    pub fn cpu_of(&self, i: usize) -> Option<usize> {
        (!self.cpus.is_empty()).then(|| self.cpus[i % self.cpus.len()])
    }

    /// Replica `r`'s configuration: its own port, and sockperf on the first replica only
    /// (a second bind of that port would fail).
    pub fn replica(&self, r: u16) -> KernelConfig {
        let mut c = self.clone();
        if let Listen::Inet(addr) = &mut c.listen {
            addr.set_port(addr.port() + r);
        }
        if r > 0 {
            c.sockperf_port = None;
        }
        c.replicas = 1;
        c
    }

    /// Turns the flags into a validated configuration; errors name the flag.
    pub fn from_args(a: &KernelServeArgs) -> Result<KernelConfig, KernelError> {
        let listen = listen(a)?;
        let replicas = replicas(a, &listen)?;
        if a.backend == Backend::Batch && a.proto != Proto::Udp {
            return Err(bad(
                "--backend",
                format!("batch (recvmmsg/sendmmsg) is udp only, not {}", a.proto),
            ));
        }
        let batch = batch(a)?;
        if a.threads == 0 || a.threads > MAX_THREADS {
            return Err(bad(
                "--threads",
                format!("must be 1..={MAX_THREADS}, got {}", a.threads),
            ));
        }
        let cpus = match &a.cpus {
            None => Vec::new(),
            Some(s) => {
                let cpus = parse_cpus(s)?;
                check_cpus_available(&cpus)?;
                cpus
            }
        };
        let sockperf_port = sockperf_port(a, &listen)?;
        if let (Some(sp), Listen::Inet(addr)) = (sockperf_port, &listen) {
            let first = u32::from(addr.port());
            if replicas > 1 && (first..first + u32::from(replicas)).contains(&u32::from(sp)) {
                return Err(bad(
                    "--sockperf-port",
                    format!("{sp} is one of the {replicas} replicas' ports from {first}"),
                ));
            }
        }
        Ok(KernelConfig {
            proto: a.proto,
            sockperf_port,
            listen,
            backend: a.backend,
            batch,
            threads: a.threads,
            cpus,
            spin_max_ns: a.spin_max_ns,
            service: service(a.service.as_deref())?,
            replicas,
            max_connections: max_connections(a.max_connections)?,
            stall_timeout: stall_timeout(a.stall_timeout)?,
            duration: duration(a.duration)?,
            json: a.json,
        })
    }
}

impl KernelServeArgs {
    /// [`KernelConfig::from_args`], for callers that hold the flags (the lab's contract tests).
    pub fn to_config(&self) -> Result<KernelConfig, KernelError> {
        KernelConfig::from_args(self)
    }
}

fn service(text: Option<&str>) -> Result<Option<ServiceModel>, KernelError> {
    text.map(|t| t.parse().map_err(|e| bad("--service", e)))
        .transpose()
}

/// Replicas need ports of their own: a known first port (not 0, which each bind would
/// resolve differently) and room above it.
fn replicas(a: &KernelServeArgs, listen: &Listen) -> Result<u16, KernelError> {
    let n = a.replicas;
    if n == 0 || n > 64 {
        return Err(bad("--replicas", format!("must be 1..=64, got {n}")));
    }
    if n == 1 {
        return Ok(1);
    }
    match listen {
        Listen::Path(_) => Err(bad(
            "--replicas",
            "unix listens on one path: run one process per replica",
        )),
        Listen::Inet(addr) if addr.port() == 0 => Err(bad(
            "--replicas",
            "needs a --bind port (not 0): replicas take consecutive ports from it",
        )),
        Listen::Inet(addr) if u32::from(addr.port()) + u32::from(n) - 1 > 65535 => Err(bad(
            "--replicas",
            format!("{n} ports from {} run past 65535", addr.port()),
        )),
        Listen::Inet(_) => Ok(n),
    }
}

fn bad(flag: &'static str, msg: impl Into<String>) -> KernelError {
    KernelError::Invalid(FieldError::new(flag, msg))
}

/// The address or path to listen on: --bind for udp/tcp, --path for unix.
fn listen(a: &KernelServeArgs) -> Result<Listen, KernelError> {
    match a.proto {
        Proto::Udp | Proto::Tcp => {
            if a.path.is_some() {
                return Err(bad(
                    "--path",
                    "only with --proto unix (udp/tcp take --bind)",
                ));
            }
            Ok(Listen::Inet(a.bind.unwrap_or(DEFAULT_BIND)))
        }
        Proto::Unix => {
            if a.bind.is_some() {
                return Err(bad("--bind", "not with --proto unix (use --path)"));
            }
            let p = a.path.clone().unwrap_or_else(|| DEFAULT_PATH.into());
            if p.as_os_str().is_empty() {
                return Err(bad("--path", "must not be empty"));
            }
            Ok(Listen::Path(p))
        }
    }
}

fn batch(a: &KernelServeArgs) -> Result<usize, KernelError> {
    match (a.batch, a.backend) {
        (None, _) => Ok(DEFAULT_BATCH),
        (Some(_), b) if b != Backend::Batch => Err(bad("--batch", "only with --backend batch")),
        (Some(n), _) if n == 0 || n > MAX_BATCH => {
            Err(bad("--batch", format!("must be 1..={MAX_BATCH}, got {n}")))
        }
        (Some(n), _) => Ok(n),
    }
}

/// udp: the sockperf port (default on, 0 = off), apart from the RPC port; other protos: none.
fn sockperf_port(a: &KernelServeArgs, listen: &Listen) -> Result<Option<u16>, KernelError> {
    let port = match (a.proto, a.sockperf_port) {
        (Proto::Udp, p) => match p.unwrap_or(DEFAULT_SOCKPERF_PORT) {
            0 => None,
            p => Some(p),
        },
        (_, None) => None,
        (_, Some(_)) => return Err(bad("--sockperf-port", "udp only")),
    };
    if let (Listen::Inet(addr), Some(p)) = (listen, port) {
        if addr.port() == p {
            return Err(bad(
                "--sockperf-port",
                format!("{p} is also the RPC port (--bind)"),
            ));
        }
    }
    Ok(port)
}

/// `--duration` seconds; 0 means until a signal.
/// One thread's fds must fit RLIMIT_NOFILE; more than this is a typo.
const MAX_CONNECTIONS: usize = 1 << 20;

fn max_connections(n: usize) -> Result<usize, KernelError> {
    if n == 0 || n > MAX_CONNECTIONS {
        return Err(bad(
            "--max-connections",
            format!("must be 1..={MAX_CONNECTIONS}, got {n}"),
        ));
    }
    Ok(n)
}

fn stall_timeout(secs: f64) -> Result<Duration, KernelError> {
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad(
            "--stall-timeout",
            format!("must be a finite number of seconds > 0, got {secs}"),
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| bad("--stall-timeout", e.to_string()))
}

fn duration(secs: f64) -> Result<Option<Duration>, KernelError> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad(
            "--duration",
            format!("must be a finite number >= 0, got {secs}"),
        ));
    }
    if secs == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|e| bad("--duration", e.to_string()))
}

/// Parses "1", "0,1", "0-3,6" into CPU numbers (in order, repeats allowed).
pub fn parse_cpus(s: &str) -> Result<Vec<usize>, KernelError> {
    let num = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| bad("--cpus", format!("'{t}' is not a CPU number (in '{s}')")))
    };
    let mut cpus = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad("--cpus", format!("range '{part}' runs backwards")));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(num(part)?),
        }
    }
    Ok(cpus)
}

/// Checks that every CPU is one this process may run on.
fn check_cpus_available(cpus: &[usize]) -> Result<(), KernelError> {
    let Some(ids) = core_affinity::get_core_ids() else {
        return Err(bad("--cpus", "cannot read this process's CPU affinity"));
    };
    let have: Vec<usize> = ids.iter().map(|c| c.id).collect();
    for c in cpus {
        if !have.contains(c) {
            let list: Vec<String> = have.iter().map(|c| c.to_string()).collect();
            return Err(bad(
                "--cpus",
                format!(
                    "cpu {c} is not available to this process (available: {})",
                    list.join(",")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: KernelServeArgs,
    }

    fn parse(v: &[&str]) -> Result<KernelConfig, KernelError> {
        let mut all = vec!["x"];
        all.extend_from_slice(v);
        KernelConfig::from_args(&Cli::try_parse_from(all).unwrap().args)
    }

    fn flag_of(r: Result<KernelConfig, KernelError>) -> String {
        match r {
            Err(KernelError::Invalid(e)) => e.field,
            other => panic!("expected an invalid-flag error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = parse(&["--proto", "udp"]).unwrap();
        assert_eq!(c.listen, Listen::Inet(DEFAULT_BIND));
        assert_eq!((c.backend, c.batch, c.threads), (Backend::Blocking, 32, 1));
        assert_eq!(c.sockperf_port, Some(11111));
        assert_eq!(
            (c.spin_max_ns, c.duration, c.json),
            (1_000_000, None, false)
        );
        assert!(c.cpus.is_empty() && c.cpu_of(3).is_none());
        assert_eq!(
            (c.max_connections, c.stall_timeout),
            (1024, Duration::from_secs(10))
        );
        let c = parse(&["--proto", "unix"]).unwrap();
        assert_eq!(c.listen, Listen::Path(DEFAULT_PATH.into()));
        assert_eq!(c.sockperf_port, None);
        let c = parse(&[
            "--proto",
            "udp",
            "--sockperf-port",
            "0",
            "--duration",
            "1.5",
        ])
        .unwrap();
        assert_eq!(c.sockperf_port, None);
        assert_eq!(c.duration, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_flags_are_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--proto", "tcp", "--backend", "batch"], "--backend"),
            (&["--proto", "unix", "--backend", "batch"], "--backend"),
            (&["--proto", "udp", "--batch", "8"], "--batch"),
            (
                &["--proto", "udp", "--backend", "batch", "--batch", "0"],
                "--batch",
            ),
            (
                &["--proto", "udp", "--backend", "batch", "--batch", "1025"],
                "--batch",
            ),
            (&["--proto", "udp", "--threads", "0"], "--threads"),
            (
                &["--proto", "tcp", "--max-connections", "0"],
                "--max-connections",
            ),
            (
                &["--proto", "tcp", "--stall-timeout", "0"],
                "--stall-timeout",
            ),
            (
                &["--proto", "tcp", "--stall-timeout", "nan"],
                "--stall-timeout",
            ),
            (&["--proto", "udp", "--cpus", "x"], "--cpus"),
            (&["--proto", "udp", "--cpus", "3-1"], "--cpus"),
            (&["--proto", "udp", "--cpus", "100000"], "--cpus"),
            (&["--proto", "udp", "--cpus", ""], "--cpus"),
            (
                &["--proto", "tcp", "--sockperf-port", "5"],
                "--sockperf-port",
            ),
            (
                &[
                    "--proto",
                    "udp",
                    "--bind",
                    "127.0.0.1:5",
                    "--sockperf-port",
                    "5",
                ],
                "--sockperf-port",
            ),
            (&["--proto", "udp", "--duration", "-1"], "--duration"),
            (&["--proto", "udp", "--duration", "NaN"], "--duration"),
            (&["--proto", "unix", "--bind", "127.0.0.1:5"], "--bind"),
            (&["--proto", "tcp", "--path", "/tmp/x"], "--path"),
        ];
        for (args, flag) in cases {
            assert_eq!(flag_of(parse(args)), *flag, "{args:?}");
        }
    }

    #[test]
    fn a_sleeping_model_is_a_kernel_serve_model() {
        let c = parse(&["--proto", "udp", "--service", "exp:1ms,hold=sleep,cap=5ms"]).unwrap();
        let m = c.service.unwrap();
        assert_eq!(m.hold, crate::service::Hold::Sleep);
        assert_eq!(m.to_string(), "exp:1ms,cap=5ms,hold=sleep");
        match parse(&["--proto", "udp", "--service", "fixed:1ms,hold=doze"]) {
            Err(KernelError::Invalid(e)) => {
                assert_eq!(e.field, "--service");
                assert!(e.message.contains("hold `doze`"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("1").unwrap(), [1]);
        assert_eq!(parse_cpus("0,1").unwrap(), [0, 1]);
        assert_eq!(parse_cpus("0-2, 5").unwrap(), [0, 1, 2, 5]);
        let c = parse(&["--proto", "udp", "--cpus", "0"]).unwrap();
        assert_eq!((c.cpu_of(0), c.cpu_of(1)), (Some(0), Some(0)));
    }
}
