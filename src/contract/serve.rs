//! The servers: `bypass serve --mode rpc --json` (the fast path) and `bypass kernel-serve
//! --json` (the kernel baselines), their command lines and the report lines the lab reads.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

use super::Argv;
use crate::options::{Backend, ChecksumChoice, ChecksumPolicy, PollMode, Proto};
use crate::wire::MacAddress;

/// `bypass serve --mode rpc --json`, stopping by itself after `duration_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeCommand {
    /// The address the fast path answers for.
    pub ip: Ipv4Addr,
    pub poll_mode: PollMode,
    pub duration_s: f64,
    /// Milliseconds between interval lines (None: the server's default).
    pub interval_ms: Option<u64>,
    /// The MAC answered for (None: the port's).
    pub mac: Option<MacAddress>,
    pub burst: Option<u16>,
    /// The rx checksum policy asked for (None: the server's default, auto).
    pub checksum: Option<ChecksumPolicy>,
    /// `--topology joined`: one worker polls every port and sends each packet out of the
    /// port it is addressed to (relays whose upstream is on another port).
    pub joined: bool,
    /// `--relay` specs, in order: the fast path's `rpc-relay` instances.
    pub relays: Vec<RelayArg>,
    /// The service-time model and the replicas.
    pub service: ServiceArg,
    /// EAL arguments, after `--`.
    pub eal: Vec<String>,
}

/// `--service MODEL` and `--replicas N` of both servers (issue 14).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceArg {
    /// The per-request service-time model, e.g. "bimodal:20us,1%:1ms" (None: none).
    pub model: Option<String>,
    /// Replicas on consecutive ports from the listen port (None: 1).
    pub replicas: Option<u16>,
}

impl ServiceArg {
    fn push(&self, a: &mut Argv) {
        if let Some(m) = &self.model {
            a.opt("--service", m);
        }
        if let Some(n) = self.replicas {
            a.opt("--replicas", n);
        }
    }
}

/// One `--relay LISTEN=UPSTREAM[,UPSTREAM..][@PORT]` of `bypass serve`: requests to `listen`
/// are forwarded to the upstreams, reached through `via` (a port name or number; None: the
/// port the request came in on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayArg {
    pub listen: SocketAddrV4,
    pub upstreams: Vec<SocketAddrV4>,
    pub via: Option<String>,
}

impl std::fmt::Display for RelayArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=", self.listen)?;
        for (i, u) in self.upstreams.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{u}")?;
        }
        if let Some(v) = &self.via {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl ServeCommand {
    /// The arguments after the binary, starting with `serve`.
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::new("serve");
        a.opt("--mode", "rpc")
            .opt("--ip", self.ip)
            .opt("--poll-mode", self.poll_mode)
            .flag("--json")
            .opt("--duration", self.duration_s);
        if let Some(ms) = self.interval_ms {
            a.opt("--interval-ms", ms);
        }
        if let Some(m) = self.mac {
            a.opt("--mac", m);
        }
        if let Some(b) = self.burst {
            a.opt("--burst", b);
        }
        if let Some(c) = self.checksum {
            a.opt("--checksum", c);
        }
        if self.joined {
            a.opt("--topology", "joined");
        }
        for r in &self.relays {
            a.opt("--relay", r);
        }
        self.service.push(&mut a);
        a.eal(&self.eal).done()
    }
}

/// One `{"type":"interval",..}` line of `bypass serve --json`: the part the lab reads, which
/// the server's own line (`server::report::Interval`) embeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeInterval {
    /// Seconds since the workers started, at the end of the interval.
    pub elapsed_s: f64,
    pub tx_pps: f64,
}

/// The `{"type":"final",..}` line of `bypass serve --json`: the part the lab reads, which the
/// server's own report (`server::report::Final`) embeds, its ports `P` embedding
/// [`ServePort`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServeFinal<P = ServePort> {
    pub rx: u64,
    pub tx: u64,
    /// Drops by "node/reason", only reasons that occurred.
    #[serde(default)]
    pub drops_by_reason: BTreeMap<String, u64>,
    #[serde(default = "Vec::new")]
    pub ports: Vec<P>,
    /// One line per `--relay`, in the order given (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<RelayLine>,
    /// The service-time model in force, in the `--service` grammar (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// What one fast-path relay did over the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayLine {
    /// `ip:port` the relay listens on.
    pub listen: String,
    pub upstreams: Vec<String>,
    /// Requests sent on to an upstream.
    pub forwarded: u64,
    /// Replies mapped back to their client.
    pub returned: u64,
    /// Packets addressed to this relay that it dropped, by reason (only reasons that
    /// occurred; the same reasons as the `rpc-relay` node's).
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}

/// One port of the final line: the part the lab reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServePort {
    pub name: String,
    pub driver: String,
    /// The rx checksum policy: requested, resolved and why (rpc mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumChoice>,
}

/// Where `bypass kernel-serve` listens.
#[derive(Debug, Clone, PartialEq)]
pub enum KernelListen {
    /// udp or tcp.
    Bind(SocketAddrV4),
    /// unix: the socket path.
    Path(String),
}

/// `bypass kernel-serve --json`, one thread pinned to `cpu`, stopping after `duration_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelServeCommand {
    pub proto: Proto,
    pub listen: KernelListen,
    pub backend: Backend,
    pub cpu: usize,
    pub duration_s: f64,
    /// udp: also answer sockperf on this port.
    pub sockperf_port: Option<u16>,
    /// The service-time model and the replicas.
    pub service: ServiceArg,
}

impl KernelServeCommand {
    /// The arguments after the binary, starting with `kernel-serve`.
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::new("kernel-serve");
        a.opt("--proto", self.proto);
        match &self.listen {
            KernelListen::Path(p) => a.opt("--path", p),
            KernelListen::Bind(addr) => a.opt("--bind", addr),
        };
        a.opt("--backend", self.backend)
            .opt("--cpus", self.cpu)
            .flag("--json")
            .opt("--duration", self.duration_s);
        if let Some(p) = self.sockperf_port {
            a.opt("--sockperf-port", p);
        }
        self.service.push(&mut a);
        a.done()
    }
}

/// The final line of `bypass kernel-serve --json`: the part the lab reads, which the
/// program's own line (`kernel::report`) embeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelServeFinal {
    pub proto: Proto,
    pub backend: Backend,
    /// Not read by the lab: defined here so the line keeps the key order kernel-serve's
    /// tests pin (`type`, `proto`, `backend`, `threads`, `rx`, ..).
    #[serde(default)]
    pub threads: usize,
    pub rx: u64,
    pub tx: u64,
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
    /// The service-time model in force, in the `--service` grammar (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}
