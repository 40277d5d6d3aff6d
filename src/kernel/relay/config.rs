//! `kernel-relay`'s settings, typed and checked once: [`RelayConfig::from_args`] turns the
//! flags into a [`RelayConfig`] or refuses them with an error naming the flag.

use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

use crate::contract::relay::RelayEnd;
use crate::kernel::config::parse_cpus;
use crate::kernel::KernelError;
use crate::options::{Backend, Balance, FieldError, Proto};

use super::args::KernelRelayArgs;
use super::table::MAX_SLOTS;

/// Pooled connections per upstream beyond this are a typo.
pub const MAX_POOL: usize = 64;
/// Upstreams beyond this are a typo (and the table keeps the index in 16 bits).
pub const MAX_UPSTREAMS: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    pub listen: RelayEnd,
    pub upstreams: Vec<RelayEnd>,
    pub balance: Balance,
    /// Blocking or busy (batch refused).
    pub backend: Backend,
    pub cpu: Option<usize>,
    pub table: usize,
    pub expiry: Duration,
    pub pool: usize,
    /// None: until a signal.
    pub duration: Option<Duration>,
    pub json: bool,
}

impl RelayConfig {
    pub fn from_args(a: &KernelRelayArgs) -> Result<RelayConfig, KernelError> {
        let listen = parse_end("--listen", &a.listen)?;
        let upstreams = upstreams(&a.upstream)?;
        if a.backend == Backend::Batch {
            return Err(bad(
                "--backend",
                "batch is not a relay backend (blocking or busy)",
            ));
        }
        Ok(RelayConfig {
            listen,
            upstreams,
            balance: a.balance,
            backend: a.backend,
            cpu: cpu(a.cpus.as_deref())?,
            table: in_range("--table", a.table, 1, MAX_SLOTS)?,
            expiry: expiry(a.expiry_ms)?,
            pool: in_range("--pool", a.pool, 1, MAX_POOL)?,
            duration: duration(a.duration)?,
            json: a.json,
        })
    }

    pub fn upstream_proto(&self) -> Proto {
        self.upstreams[0].proto()
    }
}

impl KernelRelayArgs {
    /// [`RelayConfig::from_args`], for callers that hold the flags (the contract tests).
    pub fn to_config(&self) -> Result<RelayConfig, KernelError> {
        RelayConfig::from_args(self)
    }
}

fn bad(flag: &'static str, msg: impl Into<String>) -> KernelError {
    KernelError::Invalid(FieldError::new(flag, msg))
}

/// `udp:IP:PORT`, `tcp:IP:PORT` or `unix:PATH`.
pub fn parse_end(flag: &'static str, s: &str) -> Result<RelayEnd, KernelError> {
    let inet = |rest: &str| {
        rest.parse::<SocketAddrV4>()
            .map_err(|_| bad(flag, format!("'{rest}' is not an IPv4 IP:PORT (in '{s}')")))
    };
    match s.split_once(':') {
        Some(("udp", rest)) => inet(rest).map(RelayEnd::Udp),
        Some(("tcp", rest)) => inet(rest).map(RelayEnd::Tcp),
        Some(("unix", "")) => Err(bad(flag, "unix: needs a socket path")),
        Some(("unix", path)) => Ok(RelayEnd::Unix(path.to_string())),
        _ => Err(bad(
            flag,
            format!("'{s}' is not udp:IP:PORT, tcp:IP:PORT or unix:PATH"),
        )),
    }
}

fn upstreams(v: &[String]) -> Result<Vec<RelayEnd>, KernelError> {
    if v.is_empty() || v.len() > MAX_UPSTREAMS {
        return Err(bad(
            "--upstream",
            format!("give 1..={MAX_UPSTREAMS}, got {}", v.len()),
        ));
    }
    let ends = v
        .iter()
        .map(|s| parse_end("--upstream", s))
        .collect::<Result<Vec<_>, _>>()?;
    let p = ends[0].proto();
    if let Some(other) = ends.iter().find(|e| e.proto() != p) {
        return Err(bad(
            "--upstream",
            format!(
                "all upstreams must be one protocol: {} and {other}",
                ends[0]
            ),
        ));
    }
    if let Some(u) = ends.iter().find(|e| is_unspecified_or_port0(e)) {
        return Err(bad("--upstream", format!("{u} names no peer to send to")));
    }
    Ok(ends)
}

fn is_unspecified_or_port0(e: &RelayEnd) -> bool {
    match e {
        RelayEnd::Udp(a) | RelayEnd::Tcp(a) => a.ip().is_unspecified() || a.port() == 0,
        RelayEnd::Unix(_) => false,
    }
}

fn in_range(flag: &'static str, v: usize, lo: usize, hi: usize) -> Result<usize, KernelError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(bad(flag, format!("must be {lo}..={hi}, got {v}")))
    }
}

fn expiry(ms: u64) -> Result<Duration, KernelError> {
    if ms == 0 || ms > 3_600_000 {
        return Err(bad("--expiry-ms", format!("must be 1..=3600000, got {ms}")));
    }
    Ok(Duration::from_millis(ms))
}

/// One CPU, one this process may run on.
fn cpu(s: Option<&str>) -> Result<Option<usize>, KernelError> {
    let Some(s) = s else { return Ok(None) };
    let cpus = parse_cpus(s)?;
    let [c] = cpus[..] else {
        return Err(bad("--cpus", format!("one thread, one CPU: got '{s}'")));
    };
    let ids = core_affinity::get_core_ids()
        .ok_or_else(|| bad("--cpus", "cannot read this process's CPU affinity"))?;
    if !ids.iter().any(|i| i.id == c) {
        return Err(bad("--cpus", format!("cpu {c} is not available here")));
    }
    Ok(Some(c))
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

/// The address a UDP or TCP end names, for binding or connecting.
pub fn inet(e: &RelayEnd) -> Option<SocketAddr> {
    match e {
        RelayEnd::Udp(a) | RelayEnd::Tcp(a) => Some(SocketAddr::V4(*a)),
        RelayEnd::Unix(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        a: KernelRelayArgs,
    }

    fn cfg(extra: &[&str]) -> Result<RelayConfig, KernelError> {
        let mut v = vec!["kernel-relay", "--listen", "udp:127.0.0.1:0"];
        v.extend(extra);
        Cli::try_parse_from(v).unwrap().a.to_config()
    }

    fn refused(extra: &[&str]) -> String {
        match cfg(extra) {
            Err(KernelError::Invalid(e)) => e.field,
            other => panic!("{extra:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_ends() {
        let c = cfg(&["--upstream", "unix:/tmp/x.sock"]).unwrap();
        assert_eq!(c.upstreams, vec![RelayEnd::Unix("/tmp/x.sock".into())]);
        assert_eq!(
            (c.table, c.pool, c.expiry),
            (4096, 1, Duration::from_secs(1))
        );
        assert_eq!(
            (c.backend, c.balance),
            (Backend::Blocking, Balance::RoundRobin)
        );
        assert_eq!(c.listen.to_string(), "udp:127.0.0.1:0");
    }

    #[test]
    fn bad_values_name_their_flag() {
        let up = ["--upstream", "udp:127.0.0.1:9"];
        let with = |more: &[&'static str]| {
            let mut v = up.to_vec();
            v.extend_from_slice(more);
            refused(&v)
        };
        assert_eq!(refused(&["--upstream", "udp:127.0.0.1"]), "--upstream");
        assert_eq!(refused(&["--upstream", "sctp:1.2.3.4:5"]), "--upstream");
        assert_eq!(refused(&["--upstream", "udp:0.0.0.0:9"]), "--upstream");
        assert_eq!(
            refused(&[
                "--upstream",
                "udp:127.0.0.1:9",
                "--upstream",
                "tcp:127.0.0.1:9"
            ]),
            "--upstream"
        );
        assert_eq!(with(&["--backend", "batch"]), "--backend");
        assert_eq!(with(&["--table", "0"]), "--table");
        assert_eq!(with(&["--pool", "0"]), "--pool");
        assert_eq!(with(&["--expiry-ms", "0"]), "--expiry-ms");
        assert_eq!(with(&["--duration", "-1"]), "--duration");
        assert_eq!(with(&["--cpus", "0,1"]), "--cpus");
        assert_eq!(with(&["--cpus", "9999"]), "--cpus");
        let mut v = vec!["kernel-relay", "--listen", "unix:"];
        v.extend(up);
        match Cli::try_parse_from(v).unwrap().a.to_config() {
            Err(KernelError::Invalid(e)) => assert_eq!(e.field, "--listen"),
            other => panic!("{other:?}"),
        }
    }
}
