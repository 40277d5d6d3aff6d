//! Command-line arguments of `bypass kernel-serve` and their validation into a
//! [`KernelConfig`]. Every error names its flag.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::mmsg::MAX_BATCH;
use super::KernelError;

pub const DEFAULT_BIND: &str = "0.0.0.0:7777";
pub const DEFAULT_PATH: &str = "/tmp/bypass-rpc.sock";
pub const DEFAULT_BATCH: usize = 32;
pub const DEFAULT_SOCKPERF_PORT: u16 = 11111;
pub const DEFAULT_SPIN_MAX_NS: u32 = 1_000_000;
/// More threads than this is a typo, not a server.
pub const MAX_THREADS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    Udp,
    Tcp,
    Unix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Blocking receive (100 ms timeout to notice a stop request).
    Blocking,
    /// Non-blocking sockets polled in a loop; SO_BUSY_POLL where allowed.
    Busy,
    /// recvmmsg/sendmmsg, --batch messages per call (udp only).
    Batch,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Unix => "unix",
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Blocking => "blocking",
            Backend::Busy => "busy",
            Backend::Batch => "batch",
        })
    }
}

/// `bypass kernel-serve`: kernel-stack baseline servers for RPC v1 (docs/protocol.md).
#[derive(Debug, Clone, Args)]
pub struct KernelServeArgs {
    #[arg(long, value_enum)]
    pub proto: Proto,
    /// udp/tcp: address to listen on [default: 0.0.0.0:7777].
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// unix: socket path [default: /tmp/bypass-rpc.sock]; a stale socket file is replaced.
    #[arg(long)]
    pub path: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "blocking")]
    pub backend: Backend,
    /// Messages per recvmmsg/sendmmsg (--backend batch) [default: 32].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Threads: udp, one SO_REUSEPORT socket each; tcp/unix, one connection each at a time.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// CPUs to pin to, e.g. "1", "0,1" or "0-3": thread i runs on cpus[i % len].
    #[arg(long)]
    pub cpus: Option<String>,
    /// udp: also answer sockperf ping-pong on this port; 0 = off [default: 11111].
    #[arg(long)]
    pub sockperf_port: Option<u16>,
    /// Longest spin a request may ask for, in ns.
    #[arg(long, default_value_t = DEFAULT_SPIN_MAX_NS)]
    pub spin_max_ns: u32,
    /// Seconds to run, then stop (0: until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub duration: f64,
    /// Final report as one JSON line on stdout.
    #[arg(long)]
    pub json: bool,
}

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
    /// `None`: until a signal.
    pub duration: Option<Duration>,
    pub json: bool,
}

impl KernelConfig {
    /// The CPU thread `i` is pinned to, if any.
    pub fn cpu_of(&self, i: usize) -> Option<usize> {
        (!self.cpus.is_empty()).then(|| self.cpus[i % self.cpus.len()])
    }
}

fn bad(flag: &'static str, msg: impl Into<String>) -> KernelError {
    KernelError::Invalid {
        flag,
        msg: msg.into(),
    }
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

impl KernelServeArgs {
    /// Turns the flags into a validated configuration; errors name the flag.
    pub fn to_config(&self) -> Result<KernelConfig, KernelError> {
        let listen = match self.proto {
            Proto::Udp | Proto::Tcp => {
                if self.path.is_some() {
                    return Err(bad(
                        "--path",
                        "only with --proto unix (udp/tcp take --bind)",
                    ));
                }
                let addr = self
                    .bind
                    .unwrap_or_else(|| DEFAULT_BIND.parse().expect("default address parses"));
                Listen::Inet(addr)
            }
            Proto::Unix => {
                if self.bind.is_some() {
                    return Err(bad("--bind", "not with --proto unix (use --path)"));
                }
                let p = self.path.clone().unwrap_or_else(|| DEFAULT_PATH.into());
                if p.as_os_str().is_empty() {
                    return Err(bad("--path", "must not be empty"));
                }
                Listen::Path(p)
            }
        };
        if self.backend == Backend::Batch && self.proto != Proto::Udp {
            return Err(bad(
                "--backend",
                format!("batch (recvmmsg/sendmmsg) is udp only, not {}", self.proto),
            ));
        }
        let batch = match (self.batch, self.backend) {
            (None, _) => DEFAULT_BATCH,
            (Some(_), b) if b != Backend::Batch => {
                return Err(bad("--batch", "only with --backend batch"));
            }
            (Some(n), _) if n == 0 || n > MAX_BATCH => {
                return Err(bad("--batch", format!("must be 1..={MAX_BATCH}, got {n}")));
            }
            (Some(n), _) => n,
        };
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(bad(
                "--threads",
                format!("must be 1..={MAX_THREADS}, got {}", self.threads),
            ));
        }
        let cpus = match &self.cpus {
            None => Vec::new(),
            Some(s) => {
                let cpus = parse_cpus(s)?;
                check_cpus_available(&cpus)?;
                cpus
            }
        };
        let sockperf_port = match (self.proto, self.sockperf_port) {
            (Proto::Udp, p) => match p.unwrap_or(DEFAULT_SOCKPERF_PORT) {
                0 => None,
                p => Some(p),
            },
            (_, None) => None,
            (_, Some(_)) => return Err(bad("--sockperf-port", "udp only")),
        };
        if let (Listen::Inet(a), Some(p)) = (&listen, sockperf_port) {
            if a.port() == p {
                return Err(bad(
                    "--sockperf-port",
                    format!("{p} is also the RPC port (--bind)"),
                ));
            }
        }
        if !self.duration.is_finite() || self.duration < 0.0 {
            return Err(bad(
                "--duration",
                format!("must be a finite number >= 0, got {}", self.duration),
            ));
        }
        let duration = if self.duration == 0.0 {
            None
        } else {
            Some(
                Duration::try_from_secs_f64(self.duration)
                    .map_err(|e| bad("--duration", e.to_string()))?,
            )
        };
        Ok(KernelConfig {
            proto: self.proto,
            listen,
            backend: self.backend,
            batch,
            threads: self.threads,
            cpus,
            sockperf_port,
            spin_max_ns: self.spin_max_ns,
            duration,
            json: self.json,
        })
    }
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
        Cli::try_parse_from(all).unwrap().args.to_config()
    }

    fn flag_of(r: Result<KernelConfig, KernelError>) -> &'static str {
        match r {
            Err(KernelError::Invalid { flag, .. }) => flag,
            other => panic!("expected an invalid-flag error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = parse(&["--proto", "udp"]).unwrap();
        assert_eq!(c.listen, Listen::Inet(DEFAULT_BIND.parse().unwrap()));
        assert_eq!((c.backend, c.batch, c.threads), (Backend::Blocking, 32, 1));
        assert_eq!(c.sockperf_port, Some(11111));
        assert_eq!(
            (c.spin_max_ns, c.duration, c.json),
            (1_000_000, None, false)
        );
        assert!(c.cpus.is_empty() && c.cpu_of(3).is_none());
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
    fn cpu_lists() {
        assert_eq!(parse_cpus("1").unwrap(), [1]);
        assert_eq!(parse_cpus("0,1").unwrap(), [0, 1]);
        assert_eq!(parse_cpus("0-2, 5").unwrap(), [0, 1, 2, 5]);
        let c = parse(&["--proto", "udp", "--cpus", "0"]).unwrap();
        assert_eq!((c.cpu_of(0), c.cpu_of(1)), (Some(0), Some(0)));
    }
}
