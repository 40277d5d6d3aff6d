//! A lab scenario: the TOML file that names topologies, the server paths measured over them,
//! the client of each path and its load plan. Parsing refuses unknown keys; validation refuses
//! anything the lab could not build or measure fairly, naming the field, before anything exists.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::codec::Transcoder;
use crate::contract::load::RequestShape;
pub use crate::contract::platform::FloorMode;
use crate::contract::serve::ServiceArg;
use crate::lab::chain::plan as chain;
pub use crate::lab::chain::plan::{ChainPlan, Depths, HopKind};
use crate::load::fanout::HedgeAfter;
use crate::options::RateSweep;
use crate::options::{Backend, ChecksumPolicy, Codec, MessageSize, PollMode, Proto, WaitMode};
use crate::service::ServiceModel;

/// A scenario error: `field` is the TOML path of the offending value (e.g. `path[2].topology`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub field: String,
    pub msg: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "{}: {}", self.field, self.msg)
        }
    }
}

impl std::error::Error for ScenarioError {}

fn err(field: impl Into<String>, msg: impl Into<String>) -> ScenarioError {
    ScenarioError {
        field: field.into(),
        msg: msg.into(),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in the report title.
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub placement: Placement,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub platform: PlatformSpec,
    /// Pairs of latency paths the report compares with paired per-round ratios
    /// (`[["fastpath-memif", "kernel-udp-loopback"], ...]`); absent: each fast path against
    /// the busy kernel UDP path on its topology (or on loopback). Every latency path is also
    /// compared with the floor (the first `limit` path) whatever this says.
    pub compare: Option<Vec<Vec<String>>>,
    #[serde(rename = "topology", default)]
    pub topologies: Vec<TopologySpec>,
    #[serde(rename = "path", default)]
    pub paths: Vec<PathSpec>,
}

/// Which CPU the servers and the clients run on.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Placement {
    /// Clients (bypass load, sockperf, the DPDK client's main lcore) are pinned here; it also
    /// carries the fast path's EAL main (control) lcore, which sleeps between reports.
    pub client_cpu: usize,
    /// The fast path worker lcore and kernel-serve's thread.
    pub server_cpu: usize,
    /// Run DPDK programs on hugepages (with --huge-unlink); false uses --no-huge (tests only).
    pub hugepages: bool,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            client_cpu: 0,
            server_cpu: 1,
            hugepages: true,
        }
    }
}

/// Values every path inherits unless it sets its own.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// Measured seconds per run.
    pub duration: f64,
    /// Seconds of load before measuring.
    pub warmup: f64,
    /// Echo payload bytes after the 32-byte RPC header.
    pub size: usize,
    /// The fast path's poll mode.
    pub poll_mode: PollMode,
    /// How the client waits for replies.
    pub wait: WaitMode,
    /// Rounds of every latency path, interleaved A B C .. A B C (sweeps and throughput paths
    /// run once, in the first round).
    pub repeats: u32,
}

/// The platform measurements around the paths: the noise probe and the syscall tax row.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSpec {
    /// Seconds of `bypass noise` on the path's CPUs before every path-round and once at the
    /// end; 0 turns the probe off.
    pub probe: f64,
    /// A path-round whose probe before or after lost more than this share of a CPU (percent)
    /// is flagged as measured on a noisy machine.
    pub noisy_lost_pct: f64,
    /// Measure the syscall tax (`bypass syscalls`) once per lab on the client CPU.
    pub syscalls: bool,
}

impl Default for PlatformSpec {
    fn default() -> Self {
        PlatformSpec {
            probe: 0.5,
            noisy_lost_pct: 1.0,
            syscalls: true,
        }
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            duration: 3.0,
            warmup: 0.5,
            size: 32,
            poll_mode: PollMode::Busy,
            wait: WaitMode::Busy,
            repeats: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyKind {
    /// Two namespaces joined by a veth pair: server end and client end.
    Veth,
    /// One namespace; the fast path's net_tap creates the interface there, the kernel client
    /// uses it.
    Tap,
    /// One namespace with lo up and the server address on lo.
    Loopback,
    /// One namespace; two DPDK processes joined by net_memif over a unix socket.
    Memif,
    /// One namespace; net_pcap replays RPC requests forever (throughput, no client).
    Pcap,
    /// Real hardware: the server's DPDK devices are given as EAL arguments (`-a PCI`); the
    /// client is a kernel interface moved into a lab namespace, or another DPDK port.
    Nic,
}

impl TopologyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TopologyKind::Veth => "veth",
            TopologyKind::Tap => "tap",
            TopologyKind::Loopback => "loopback",
            TopologyKind::Memif => "memif",
            TopologyKind::Pcap => "pcap",
            TopologyKind::Nic => "nic",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    pub name: String,
    pub kind: TopologyKind,
    /// The server's address (198.18.0.0/15).
    pub server_ip: Ipv4Addr,
    /// The client's address (198.18.0.0/15); unused by loopback and pcap.
    pub client_ip: Option<Ipv4Addr>,
    #[serde(default = "default_prefix_len")]
    pub prefix_len: u8,
    /// nic: EAL device arguments of the server port, e.g. ["-a", "0000:03:00.0"].
    #[serde(default)]
    pub server_eal: Vec<String>,
    /// nic: a kernel interface cabled to the server port; moved into a lab namespace for the
    /// run and given back at the end.
    pub client_iface: Option<String>,
    /// nic: EAL device arguments of a DPDK client port (for `client = "load-dpdk"`).
    #[serde(default)]
    pub client_eal: Vec<String>,
    /// memif: the client's port in zero-copy mode (`zero-copy=yes`): the server copies straight
    /// from and to the client's mbufs, two of the four copies per round trip gone. Needs
    /// hugepages (the client shares its hugepage files). Default: on with hugepages.
    pub zero_copy: Option<bool>,
}

impl TopologySpec {
    /// Whether a memif topology's client runs zero-copy: as asked, else whenever hugepages are.
    pub fn memif_zero_copy(&self, hugepages: bool) -> bool {
        self.zero_copy.unwrap_or(hugepages)
    }
}

fn default_prefix_len() -> u8 {
    24
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// `bypass kernel-serve`: the kernel stack baseline.
    KernelServe,
    /// `bypass serve`: the fast path on the topology's PMD (af_xdp on veth, net_tap on tap,
    /// the given devices on nic).
    Fastpath,
    /// The fast path and the DPDK client over net_memif: kernel on neither end.
    FastpathMemif,
    /// The fast path against testpmd 5tswap on net_pcap: packets per second, and the ratio.
    Throughput,
    /// `bypass floor`: two threads on the client and server CPUs ping-pong a message through
    /// shared memory, the floor no IPC on this machine beats. No topology, no server.
    Limit,
    /// client -> hop 1 -> .. -> hop N -> server for each N of `depths`: fast-path relays in
    /// one process on memif, or kernel relays on loopback; one latency path per depth.
    Chain,
}

impl PathKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PathKind::KernelServe => "kernel-serve",
            PathKind::Fastpath => "fastpath",
            PathKind::FastpathMemif => "fastpath-memif",
            PathKind::Throughput => "throughput",
            PathKind::Limit => "limit",
            PathKind::Chain => "chain",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Client {
    /// `bypass load` over kernel sockets (udp, or tcp/unix per the path's proto).
    Load,
    /// `bypass load --transport dpdk`.
    LoadDpdk,
    /// The unmodified `sockperf ping-pong` client (UDP, sockperf port).
    Sockperf,
    /// No client (throughput paths).
    None,
}

impl Client {
    pub fn as_str(self) -> &'static str {
        match self {
            Client::Load => "load",
            Client::LoadDpdk => "load-dpdk",
            Client::Sockperf => "sockperf",
            Client::None => "none",
        }
    }
}

/// A second client measuring the same server process in every round of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrossCheck {
    /// The unmodified `sockperf ping-pong` client against the server's sockperf port.
    Sockperf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanMode {
    /// Closed loop, one request in flight.
    PingPong,
    /// Open loop at one rate.
    Rate,
    /// Open loop at each rate of `rates` (A:B:STEP), one measurement per point
    /// (one `bypass load --rates` run).
    Sweep,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub mode: PlanMode,
    /// Measured seconds (per point for a sweep; per run for throughput).
    pub duration: Option<f64>,
    pub warmup: Option<f64>,
    /// rate: requests per second.
    pub rate: Option<f64>,
    /// sweep: "A:B:STEP" requests per second, inclusive.
    pub rates: Option<String>,
    /// throughput: runs of each program, alternating; the median reading is reported.
    pub rounds: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// Unique; names the path's files (`<name>.hgrm`).
    pub name: String,
    pub kind: PathKind,
    /// Required by every kind but `limit`.
    pub topology: Option<String>,
    /// One line for the report saying what the path measures (a default is derived).
    pub description: Option<String>,
    /// kernel-serve: udp (default), tcp or unix.
    pub proto: Option<Proto>,
    /// kernel-serve: blocking (default), busy or batch.
    pub backend: Option<Backend>,
    /// fastpath*: busy or adaptive (default: defaults.poll_mode).
    pub poll_mode: Option<PollMode>,
    /// Default: load (none for throughput, load-dpdk for fastpath-memif).
    pub client: Option<Client>,
    /// Client wait mode (default: defaults.wait).
    pub wait: Option<WaitMode>,
    pub size: Option<usize>,
    pub plan: Plan,
    pub server_cpu: Option<usize>,
    pub client_cpu: Option<usize>,
    /// Rounds of this path (default: defaults.repeats); latency paths only.
    pub repeats: Option<u32>,
    /// `"sockperf"`: in every round the unmodified sockperf client measures the same server
    /// process right after (or before, alternating) our client; kernel-serve udp and fastpath
    /// paths measured by `bypass load` in ping-pong.
    pub cross_check: Option<CrossCheck>,
    /// limit: ring (default) or line.
    pub floor_mode: Option<FloorMode>,
    /// fastpath*: the rx checksum policy of the fast path and of a DPDK client (default:
    /// none passed, so each resolves auto per port).
    pub checksum: Option<ChecksumPolicy>,
    /// chain: what each hop is (fastpath or kernel).
    pub hop: Option<HopKind>,
    /// chain: the depths measured, `[0, 1, 2]` or `"0:5"`; 0 (the bare server) first.
    pub depths: Option<Depths>,
    /// chain, kernel hops: the CPU of hop k at index k-1 (default: every hop on server_cpu).
    pub hop_cpus: Option<Vec<usize>>,
    /// kernel-serve: the service-time model, e.g. "bimodal:20us,1%:1ms" or, for replicas
    /// that share a CPU yet stay independent, "bimodal:20us,1%:1ms,hold=sleep"
    /// (docs/protocol.md).
    #[serde(default)]
    pub service: Option<String>,
    /// kernel-serve (udp, tcp): replicas on consecutive ports; the client's sub-requests
    /// spread over them.
    #[serde(default)]
    pub replicas: Option<u16>,
    /// load: sub-requests per logical request.
    #[serde(default)]
    pub fanout: Option<u32>,
    /// load: hedge after a duration ("500us") or a percentile ("p95").
    #[serde(default)]
    pub hedge_after: Option<String>,
    /// load: the transcode method in this codec (kernel-serve paths, and fastpath /
    /// fastpath-memif for the codecs the fast path serves without allocating: json,
    /// flatbuffers).
    #[serde(default)]
    pub codec: Option<Codec>,
    /// load, with codec: small (default), medium or large.
    #[serde(default)]
    pub message: Option<MessageSize>,
}

/// A scenario resolved: everything the runner needs, owned, so the raw scenario does not
/// travel beside it.
#[derive(Debug, Clone)]
pub struct LabPlan {
    pub name: String,
    pub description: String,
    pub placement: Placement,
    /// The defaults' poll mode, which the environment section names.
    pub poll_mode: PollMode,
    pub platform: PlatformSpec,
    /// The topologies the paths' `topology` indexes point into.
    pub topologies: Vec<TopologySpec>,
    pub paths: Vec<ResolvedPath>,
    /// The pairs the report compares, as path names (see [`Scenario::comparisons`]).
    pub comparisons: Vec<(String, String)>,
}

impl LabPlan {
    /// The topology a path runs on (None for a limit path).
    pub fn topology_of(&self, p: &ResolvedPath) -> Option<&TopologySpec> {
        p.topology.map(|t| &self.topologies[t])
    }
}

/// A path with every default filled in, ready to run.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedPath {
    pub name: String,
    pub kind: PathKind,
    /// Index into the scenario's topologies; None for a limit path.
    pub topology: Option<usize>,
    pub description: String,
    pub proto: Proto,
    pub backend: Backend,
    pub poll_mode: PollMode,
    pub client: Client,
    pub wait: WaitMode,
    pub size: usize,
    pub mode: PlanMode,
    pub duration: f64,
    pub warmup: f64,
    pub rate: Option<f64>,
    /// The sweep's points, requests per second, and the "A:B:STEP" they came from.
    pub rates: Vec<f64>,
    pub rates_spec: String,
    pub rounds: u32,
    pub server_cpu: usize,
    pub client_cpu: usize,
    /// Rounds of this path in the interleaved schedule (1 for sweeps and throughput).
    pub repeats: u32,
    pub cross_check: Option<CrossCheck>,
    pub floor_mode: FloorMode,
    /// Passed as `--checksum` to the fast path and a DPDK client (None: their default).
    pub checksum: Option<ChecksumPolicy>,
    /// A chain path's depth: its hops and where they run (None for other kinds).
    pub chain: Option<ChainPlan>,
    /// kernel-serve: `--service` and `--replicas`.
    #[serde(skip)]
    pub service: ServiceArg,
    /// The client's fan-out, hedging and transcode (its `servers` are filled in by the path
    /// that knows the replicas' addresses).
    #[serde(skip)]
    pub shape: RequestShape,
}

impl ResolvedPath {
    /// Whether this path gives one round-trip distribution per round (not a sweep or a
    /// packet rate): the paths that repeat, merge and compare.
    pub fn is_latency(&self) -> bool {
        self.kind != PathKind::Throughput && self.mode != PlanMode::Sweep
    }
}

/// Most points a lab sweep may have: a lab rule on top of [`RateSweep`]'s own limit, since
/// every point costs a warmup and a duration of the lab's wall time.
pub const MAX_LAB_SWEEP_POINTS: usize = 100;

/// The points of a sweep's "A:B:STEP", by the load client's own parser (so the lab names the
/// same rates, and the same .hgrm files, as `bypass load --rates`), within the lab's cap.
pub fn sweep_points(spec: &str) -> Result<Vec<f64>, String> {
    let points = RateSweep::parse(spec)?.points().to_vec();
    if points.len() > MAX_LAB_SWEEP_POINTS {
        return Err(format!(
            "{} points; a lab sweep runs at most {MAX_LAB_SWEEP_POINTS} (each costs warmup + duration)",
            points.len()
        ));
    }
    Ok(points)
}

/// 198.18.0.0/15, the RFC 2544 benchmarking range: the only addresses the lab uses.
pub fn in_lab_range(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    o[0] == 198 && (o[1] == 18 || o[1] == 19)
}

/// Most rounds a path may ask for.
pub const MAX_REPEATS: u32 = 50;
/// Largest message `bypass floor` passes through its ring, and through one cache line.
pub const MAX_FLOOR_SIZE: usize = 256;
pub const MAX_LINE_SIZE: usize = 56;

fn positive_secs(field: String, v: f64) -> Result<f64, ScenarioError> {
    if !v.is_finite() || v <= 0.0 || v > 3600.0 {
        return Err(err(field, format!("must be in (0, 3600] seconds, got {v}")));
    }
    Ok(v)
}

fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Scenario {
    pub fn from_file(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("", format!("cannot read {}: {e}", path.display())))?;
        Scenario::from_toml(&text)
    }

    /// Parses TOML; the error names the field (toml reports unknown or missing keys by name).
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| {
            // At the end of the input toml's message is empty; its report's first line
            // ("TOML parse error at line L, column C") still says where.
            let msg = match e.message().trim() {
                "" => e
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or("invalid TOML")
                    .to_string(),
                m => m.to_string(),
            };
            // toml's message names unknown/missing keys; the span locates them in the file.
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(l) => err(format!("line {l}"), msg),
                None => err("", msg),
            }
        })
    }

    /// Checks everything that can be checked without touching the machine, fills in the
    /// defaults of each path, and returns the plan the runner follows.
    pub fn resolve(&self) -> Result<LabPlan, ScenarioError> {
        self.resolve_with_cpus(cpu_count())
    }

    pub fn resolve_with_cpus(&self, cpus: usize) -> Result<LabPlan, ScenarioError> {
        self.check_settings(cpus)?;
        let paths = self.resolve_paths(cpus)?;
        self.check_compare(&paths)?;
        Ok(LabPlan {
            name: self.name.clone(),
            description: self.description.clone(),
            placement: self.placement.clone(),
            poll_mode: self.defaults.poll_mode,
            platform: self.platform.clone(),
            topologies: self.topologies.clone(),
            comparisons: self.comparisons(&paths),
            paths,
        })
    }

    /// The scenario-wide settings: name, placement, defaults, platform, topologies.
    fn check_settings(&self, cpus: usize) -> Result<(), ScenarioError> {
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty"));
        }
        if self.paths.is_empty() {
            return Err(err("path", "the scenario has no [[path]]"));
        }
        let p = &self.placement;
        for (f, c) in [
            ("placement.client_cpu", p.client_cpu),
            ("placement.server_cpu", p.server_cpu),
        ] {
            if c >= cpus {
                return Err(err(f, format!("CPU {c} does not exist ({cpus} CPUs)")));
            }
        }
        let d = &self.defaults;
        positive_secs("defaults.duration".into(), d.duration)?;
        if !d.warmup.is_finite() || d.warmup < 0.0 || d.warmup > 600.0 {
            return Err(err("defaults.warmup", "must be in [0, 600] seconds"));
        }
        if d.size > 8192 {
            return Err(err("defaults.size", "at most 8192 bytes"));
        }
        if !(1..=MAX_REPEATS).contains(&d.repeats) {
            return Err(err(
                "defaults.repeats",
                format!("must be in 1..={MAX_REPEATS}"),
            ));
        }
        let pl = &self.platform;
        if !pl.probe.is_finite() || !(0.0..=10.0).contains(&pl.probe) {
            return Err(err(
                "platform.probe",
                "must be in [0, 10] seconds (0: no probe)",
            ));
        }
        if !pl.noisy_lost_pct.is_finite() || !(0.0..=100.0).contains(&pl.noisy_lost_pct) {
            return Err(err(
                "platform.noisy_lost_pct",
                "must be a percentage in [0, 100]",
            ));
        }
        self.check_topologies()
    }

    /// Every path with its defaults, names unique.
    fn resolve_paths(&self, cpus: usize) -> Result<Vec<ResolvedPath>, ScenarioError> {
        let mut names = HashSet::new();
        let mut out = Vec::new();
        for (i, ps) in self.paths.iter().enumerate() {
            let f = |k: &str| format!("path[{i}].{k}");
            if ps.name.is_empty()
                || !ps
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(err(
                    f("name"),
                    format!("{:?}: use letters, digits, - and _", ps.name),
                ));
            }
            let rs = match ps.kind {
                PathKind::Limit => vec![self.resolve_limit(ps, cpus, &f)?],
                PathKind::Chain => self.resolve_chain(ps, cpus, &f)?,
                _ => vec![self.resolve_path(ps, cpus, &f)?],
            };
            for r in rs {
                if !names.insert(r.name.clone()) {
                    return Err(err(f("name"), format!("{:?} is used twice", r.name)));
                }
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The pairs the report compares: `compare` as given, or the default pairs (each fast
    /// path against the busy kernel UDP ping-pong path on its own topology, else on loopback).
    fn comparisons(&self, paths: &[ResolvedPath]) -> Vec<(String, String)> {
        if let Some(c) = &self.compare {
            return c.iter().map(|p| (p[0].clone(), p[1].clone())).collect();
        }
        let kernel = |p: &ResolvedPath| {
            p.kind == PathKind::KernelServe
                && p.proto == Proto::Udp
                && p.backend == Backend::Busy
                && p.is_latency()
        };
        let loopback = |p: &ResolvedPath| {
            p.topology
                .is_some_and(|t| self.topologies[t].kind == TopologyKind::Loopback)
        };
        let mut out = Vec::new();
        for f in paths.iter().filter(|p| {
            matches!(p.kind, PathKind::Fastpath | PathKind::FastpathMemif) && p.is_latency()
        }) {
            let same = paths
                .iter()
                .find(|k| kernel(k) && k.topology == f.topology)
                .or_else(|| paths.iter().find(|k| kernel(k) && loopback(k)));
            if let Some(k) = same {
                out.push((f.name.clone(), k.name.clone()));
            }
        }
        out
    }

    fn check_compare(&self, paths: &[ResolvedPath]) -> Result<(), ScenarioError> {
        let Some(pairs) = &self.compare else {
            return Ok(());
        };
        for (i, pair) in pairs.iter().enumerate() {
            let f = format!("compare[{i}]");
            if pair.len() != 2 {
                return Err(err(f, "a pair of path names: [\"a\", \"b\"]"));
            }
            if pair[0] == pair[1] {
                return Err(err(f, format!("{:?} against itself", pair[0])));
            }
            for name in pair {
                match paths.iter().find(|p| &p.name == name) {
                    None => return Err(err(f, format!("no path named {name:?}"))),
                    Some(p) if !p.is_latency() => {
                        return Err(err(
                            f,
                            format!("{name:?} is a sweep or throughput path; compare ping-pong or rate paths"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    fn repeats_of(&self, ps: &PathSpec, f: &dyn Fn(&str) -> String) -> Result<u32, ScenarioError> {
        let latency = ps.kind != PathKind::Throughput && ps.plan.mode != PlanMode::Sweep;
        match ps.repeats {
            Some(_) if !latency => Err(err(
                f("repeats"),
                "sweeps and throughput paths run once (throughput alternates plan.rounds)",
            )),
            Some(r) if !(1..=MAX_REPEATS).contains(&r) => {
                Err(err(f("repeats"), format!("must be in 1..={MAX_REPEATS}")))
            }
            Some(r) => Ok(r),
            None if latency => Ok(self.defaults.repeats),
            None => Ok(1),
        }
    }

    /// A chain path: one latency path per depth, `<name>-d<N>`, whose server has N relays in
    /// front of it (what each key means: src/lab/chain/plan.rs).
    fn resolve_chain(
        &self,
        ps: &PathSpec,
        cpus: usize,
        f: &dyn Fn(&str) -> String,
    ) -> Result<Vec<ResolvedPath>, ScenarioError> {
        // Topology, client, plan and the server's CPUs, checked as for any server path.
        let base = self.resolve_path(ps, cpus, f)?;
        let hop = ps
            .hop
            .ok_or_else(|| err(f("hop"), "a chain needs hop = \"fastpath\" or \"kernel\""))?;
        if base.mode == PlanMode::Sweep {
            return Err(err(
                f("plan.mode"),
                "a chain measures each depth as a latency path: ping-pong or rate",
            ));
        }
        let depths = chain::parse_depths(ps.depths.as_ref(), &f("depths"))?;
        let max = depths.last().copied().unwrap_or(0) as usize;
        let hop_cpus = self.chain_hop_cpus(ps, &base, hop, max, cpus, f)?;
        let relay_ips = match hop {
            HopKind::Fastpath => {
                let topo = &self.topologies[base.topology.unwrap_or(0)];
                chain::relay_ips(topo, max).map_err(|m| err(f("depths"), m))?
            }
            HopKind::Kernel => Vec::new(),
        };
        Ok(depths
            .iter()
            .map(|&d| {
                let n = d as usize;
                let mut r = base.clone();
                r.name = format!("{}-d{d}", ps.name);
                r.description = ps
                    .description
                    .clone()
                    .unwrap_or_else(|| chain::describe_depth(hop, d, &base));
                r.chain = Some(ChainPlan {
                    chain: ps.name.clone(),
                    hop,
                    depth: d,
                    depths: depths.clone(),
                    hop_cpus: hop_cpus[..n].to_vec(),
                    relay_ips: relay_ips.get(..n).map(<[_]>::to_vec).unwrap_or_default(),
                });
                r
            })
            .collect())
    }

    /// Where each hop of the deepest chain runs: fast-path hops live in the one worker; kernel
    /// hops on `hop_cpus` (default: all on server_cpu), never a busy poller beside another.
    fn chain_hop_cpus(
        &self,
        ps: &PathSpec,
        base: &ResolvedPath,
        hop: HopKind,
        max: usize,
        cpus: usize,
        f: &dyn Fn(&str) -> String,
    ) -> Result<Vec<usize>, ScenarioError> {
        if hop == HopKind::Fastpath {
            if ps.hop_cpus.is_some() {
                return Err(err(
                    f("hop_cpus"),
                    "fast-path hops run in the fast path's one worker on server_cpu (co-located); remove hop_cpus",
                ));
            }
            return Ok(vec![base.server_cpu; max]);
        }
        let list = ps.hop_cpus.clone().unwrap_or(vec![base.server_cpu; max]);
        if list.len() < max {
            return Err(err(
                f("hop_cpus"),
                format!(
                    "{} CPUs for a chain {max} hops deep: one per hop",
                    list.len()
                ),
            ));
        }
        if let Some(c) = list.iter().find(|&&c| c >= cpus) {
            return Err(err(
                f("hop_cpus"),
                format!("CPU {c} does not exist ({cpus} CPUs)"),
            ));
        }
        let busy_client = base.wait == WaitMode::Busy || base.mode != PlanMode::PingPong;
        if busy_client && list[..max].contains(&base.client_cpu) {
            return Err(err(
                f("hop_cpus"),
                format!(
                    "a relay on CPU {} would wait behind the spinning client there",
                    base.client_cpu
                ),
            ));
        }
        let mut pollers = list[..max].to_vec();
        pollers.push(base.server_cpu);
        pollers.sort_unstable();
        if base.backend == Backend::Busy && pollers.windows(2).any(|w| w[0] == w[1]) {
            return Err(err(
                f("backend"),
                "busy relays and the busy server would share a CPU (busy pollers need a core each): use backend = \"blocking\", or hop_cpus giving every hop its own core",
            ));
        }
        Ok(list[..max].to_vec())
    }

    /// A limit path: `bypass floor` on the client and server CPUs; no topology, no client.
    fn resolve_limit(
        &self,
        ps: &PathSpec,
        cpus: usize,
        f: &dyn Fn(&str) -> String,
    ) -> Result<ResolvedPath, ScenarioError> {
        let d = &self.defaults;
        if ps.topology.is_some() {
            return Err(err(
                f("topology"),
                "a limit path runs on no topology: remove it",
            ));
        }
        if ps.client.is_some_and(|c| c != Client::None) {
            return Err(err(f("client"), "a limit path has no client"));
        }
        if ps.proto.is_some() || ps.backend.is_some() || ps.poll_mode.is_some() {
            return Err(err(
                f("proto"),
                "proto, backend and poll_mode are server settings; a limit path has no server",
            ));
        }
        if ps.checksum.is_some() {
            return Err(err(
                f("checksum"),
                "a fast path setting; a limit path has no port",
            ));
        }
        if ps.cross_check.is_some() {
            return Err(err(
                f("cross_check"),
                "a limit path has no server to cross-check",
            ));
        }
        if ps.plan.mode != PlanMode::PingPong || ps.plan.rounds.is_some() {
            return Err(err(
                f("plan.mode"),
                "a limit path is a ping-pong (duration and warmup only)",
            ));
        }
        let duration = positive_secs(f("plan.duration"), ps.plan.duration.unwrap_or(d.duration))?;
        let size = ps.size.unwrap_or(d.size);
        if !(1..=MAX_FLOOR_SIZE).contains(&size) {
            return Err(err(
                f("size"),
                format!("a limit path passes 1..={MAX_FLOOR_SIZE} bytes"),
            ));
        }
        let server_cpu = ps.server_cpu.unwrap_or(self.placement.server_cpu);
        let client_cpu = ps.client_cpu.unwrap_or(self.placement.client_cpu);
        for (k, c) in [("server_cpu", server_cpu), ("client_cpu", client_cpu)] {
            if c >= cpus {
                return Err(err(f(k), format!("CPU {c} does not exist ({cpus} CPUs)")));
            }
        }
        if server_cpu == client_cpu {
            return Err(err(
                f("client_cpu"),
                format!("both floor threads spin: they need a CPU each, not both CPU {client_cpu}"),
            ));
        }
        let floor_mode = ps.floor_mode.unwrap_or(FloorMode::Ring);
        if floor_mode == FloorMode::Line && size > MAX_LINE_SIZE {
            return Err(err(
                f("size"),
                format!("floor_mode = \"line\" passes at most {MAX_LINE_SIZE} bytes (one cache line with its header)"),
            ));
        }
        let description = ps.description.clone().unwrap_or_else(|| {
            format!(
                "the floor: {size}-byte ping-pong through shared memory ({}), two spinning threads on CPUs {client_cpu} and {server_cpu}, no kernel, no NIC",
                match floor_mode {
                    FloorMode::Ring => "an SPSC ring each way",
                    FloorMode::Line => "one cache line each way",
                    FloorMode::Descriptors =>
                        "memif's layout each way: index, descriptor and buffer on lines of their own",
                }
            )
        });
        Ok(ResolvedPath {
            name: ps.name.clone(),
            kind: PathKind::Limit,
            topology: None,
            description,
            proto: Proto::Udp,
            backend: Backend::Busy,
            poll_mode: PollMode::Busy,
            client: Client::None,
            wait: WaitMode::Busy,
            size,
            mode: PlanMode::PingPong,
            duration,
            warmup: 0.0,
            rate: None,
            rates: Vec::new(),
            rates_spec: String::new(),
            rounds: 1,
            server_cpu,
            client_cpu,
            repeats: self.repeats_of(ps, f)?,
            cross_check: None,
            floor_mode,
            checksum: None,
            chain: None,
            service: ServiceArg::default(),
            shape: RequestShape::default(),
        })
    }

    fn check_topologies(&self) -> Result<(), ScenarioError> {
        let mut names = HashSet::new();
        for (i, t) in self.topologies.iter().enumerate() {
            let f = |k: &str| format!("topology[{i}].{k}");
            if t.name.is_empty() || !names.insert(t.name.as_str()) {
                return Err(err(
                    f("name"),
                    format!("{:?} is empty or used twice", t.name),
                ));
            }
            if !in_lab_range(t.server_ip) {
                return Err(err(
                    f("server_ip"),
                    format!(
                        "{} is outside 198.18.0.0/15 (the benchmarking range the lab uses)",
                        t.server_ip
                    ),
                ));
            }
            if let Some(c) = t.client_ip {
                if !in_lab_range(c) {
                    return Err(err(
                        f("client_ip"),
                        format!(
                            "{c} is outside 198.18.0.0/15 (the benchmarking range the lab uses)"
                        ),
                    ));
                }
                if c == t.server_ip {
                    return Err(err(f("client_ip"), "equals server_ip"));
                }
            }
            if !(8..=30).contains(&t.prefix_len) {
                return Err(err(f("prefix_len"), "must be in 8..=30"));
            }
            let needs_client = matches!(
                t.kind,
                TopologyKind::Veth | TopologyKind::Tap | TopologyKind::Memif
            );
            if needs_client && t.client_ip.is_none() {
                return Err(err(
                    f("client_ip"),
                    format!("a {} topology needs a client address", t.kind.as_str()),
                ));
            }
            if let Some(c) = t.client_ip {
                let mask = u32::MAX << (32 - t.prefix_len);
                if needs_client && (u32::from(c) & mask) != (u32::from(t.server_ip) & mask) {
                    return Err(err(
                        f("client_ip"),
                        format!("{c} is not in {}/{}", t.server_ip, t.prefix_len),
                    ));
                }
            }
            let nic = t.kind == TopologyKind::Nic;
            if nic && t.server_eal.is_empty() {
                return Err(err(
                    f("server_eal"),
                    "a nic topology names the server's devices, e.g. [\"-a\", \"0000:03:00.0\"]",
                ));
            }
            if !nic && !t.server_eal.is_empty() {
                return Err(err(f("server_eal"), "only for kind = \"nic\""));
            }
            if !nic && (t.client_iface.is_some() || !t.client_eal.is_empty()) {
                return Err(err(
                    f("client_iface"),
                    "client_iface / client_eal are only for kind = \"nic\"",
                ));
            }
            if nic
                && (t.client_iface.is_some() || !t.client_eal.is_empty())
                && t.client_ip.is_none()
            {
                return Err(err(f("client_ip"), "a nic client needs an address"));
            }
            if t.zero_copy.is_some() && t.kind != TopologyKind::Memif {
                return Err(err(f("zero_copy"), "only for kind = \"memif\""));
            }
            if t.zero_copy == Some(true) && !self.placement.hugepages {
                return Err(err(
                    f("zero_copy"),
                    "memif zero-copy shares the client's hugepages: needs placement.hugepages = true",
                ));
            }
            if let Some(ifc) = &t.client_iface {
                if ifc.is_empty() || ifc.len() > 15 || ifc.contains('/') {
                    return Err(err(
                        f("client_iface"),
                        format!("{ifc:?} is not an interface name"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A server path (every kind but `limit`): its topology, server, client, load plan and
    /// CPUs, each checked where it is decided.
    fn resolve_path(
        &self,
        ps: &PathSpec,
        cpus: usize,
        f: &dyn Fn(&str) -> String,
    ) -> Result<ResolvedPath, ScenarioError> {
        let topo_idx = self.path_topology(ps, f)?;
        let topo = &self.topologies[topo_idx];
        let tk = topo.kind;
        let (proto, backend) = server_settings(ps, f)?;
        let client = path_client(ps, topo, proto, f)?;
        let load = self.path_load(ps, client, f)?;
        let size = ps.size.unwrap_or(self.defaults.size);
        if size > 8192 {
            return Err(err(f("size"), "at most 8192 bytes"));
        }
        let wait = ps.wait.unwrap_or(self.defaults.wait);
        if load.mode != PlanMode::PingPong && wait == WaitMode::Blocking && client != Client::None {
            return Err(err(
                f("wait"),
                "open-loop clients pace by spinning: use wait = \"busy\"",
            ));
        }
        let poll_mode = ps.poll_mode.unwrap_or(self.defaults.poll_mode);
        let busy = Busy {
            server: match ps.kind {
                PathKind::KernelServe => backend == Backend::Busy,
                PathKind::Fastpath | PathKind::FastpathMemif | PathKind::Throughput => {
                    poll_mode == PollMode::Busy
                }
                PathKind::Chain if ps.hop == Some(HopKind::Kernel) => backend == Backend::Busy,
                PathKind::Chain => poll_mode == PollMode::Busy,
                PathKind::Limit => true,
            },
            client: match client {
                Client::None => false,
                Client::LoadDpdk => true,
                Client::Load => wait == WaitMode::Busy || load.mode != PlanMode::PingPong,
                Client::Sockperf => wait == WaitMode::Busy,
            },
        };
        let (server_cpu, client_cpu) = self.path_cpus(ps, cpus, busy, f)?;
        if ps.floor_mode.is_some() {
            return Err(err(f("floor_mode"), "only for kind = \"limit\""));
        }
        if ps.checksum.is_some() && !is_dpdk_server(ps) {
            return Err(err(
                f("checksum"),
                "only for kind = \"fastpath\", \"fastpath-memif\" or a chain of fastpath hops",
            ));
        }
        if ps.kind != PathKind::Chain
            && (ps.hop.is_some() || ps.depths.is_some() || ps.hop_cpus.is_some())
        {
            return Err(err(
                f("hop"),
                "hop, depths and hop_cpus are only for kind = \"chain\"",
            ));
        }
        check_cross_check(ps, topo, proto, client, load.mode, f)?;
        let repeats = self.repeats_of(ps, f)?;
        let mut description = ps
            .description
            .clone()
            .unwrap_or_else(|| describe(ps.kind, tk, proto, backend, poll_mode, client, wait));
        if ps.cross_check.is_some() {
            description += "; in every round sockperf measures the same server process too";
        }
        let (service, shape) = (tail_service(ps, proto, f)?, tail_shape(ps, client, f)?);
        if ps.description.is_none() {
            description += &describe_tails(&service, &shape);
        }
        if ps.kind == PathKind::FastpathMemif && ps.description.is_none() {
            description += if topo.memif_zero_copy(self.placement.hugepages) {
                "; client port zero-copy"
            } else {
                "; copy mode on both ends"
            };
        }
        Ok(ResolvedPath {
            name: ps.name.clone(),
            kind: ps.kind,
            topology: Some(topo_idx),
            description,
            proto,
            backend,
            poll_mode,
            client,
            wait,
            size,
            mode: load.mode,
            duration: load.duration,
            warmup: load.warmup,
            rate: load.rate,
            rates: load.rates,
            rates_spec: load.rates_spec,
            rounds: load.rounds,
            server_cpu,
            client_cpu,
            repeats,
            cross_check: ps.cross_check,
            floor_mode: FloorMode::Ring,
            checksum: ps.checksum,
            chain: None,
            service,
            shape,
        })
    }

    /// The index of the path's topology.
    fn path_topology(
        &self,
        ps: &PathSpec,
        f: &dyn Fn(&str) -> String,
    ) -> Result<usize, ScenarioError> {
        let topo_name = ps.topology.as_deref().ok_or_else(|| {
            err(
                f("topology"),
                format!("a {} path needs a topology", ps.kind.as_str()),
            )
        })?;
        self.topologies
            .iter()
            .position(|t| t.name == topo_name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.topologies.iter().map(|t| t.name.as_str()).collect();
                err(
                    f("topology"),
                    format!(
                        "no topology named {:?} (have: {})",
                        topo_name,
                        known.join(", ")
                    ),
                )
            })
    }

    /// The plan's mode, times and rates (`rounds` for throughput paths).
    fn path_load(
        &self,
        ps: &PathSpec,
        client: Client,
        f: &dyn Fn(&str) -> String,
    ) -> Result<LoadPlan, ScenarioError> {
        let plan = &ps.plan;
        let d = &self.defaults;
        let duration = positive_secs(f("plan.duration"), plan.duration.unwrap_or(d.duration))?;
        let warmup = plan.warmup.unwrap_or(d.warmup);
        if !warmup.is_finite() || !(0.0..=600.0).contains(&warmup) {
            return Err(err(f("plan.warmup"), "must be in [0, 600] seconds"));
        }
        let (rate, rates) = plan_rates(plan, f)?;
        if ps.kind == PathKind::Throughput && plan.mode != PlanMode::PingPong {
            return Err(err(
                f("plan.mode"),
                "a throughput path replays a pcap as fast as it can: use mode = \"ping-pong\" (duration and rounds only)",
            ));
        }
        if ps.kind != PathKind::Throughput && plan.rounds.is_some() {
            return Err(err(f("plan.rounds"), "only for throughput paths"));
        }
        let rounds = plan.rounds.unwrap_or(1);
        if !(1..=10).contains(&rounds) {
            return Err(err(f("plan.rounds"), "must be in 1..=10"));
        }
        if client == Client::Sockperf && plan.mode != PlanMode::PingPong {
            return Err(err(
                f("plan.mode"),
                "the sockperf client runs ping-pong only",
            ));
        }
        Ok(LoadPlan {
            mode: plan.mode,
            duration,
            warmup,
            rate,
            rates,
            rates_spec: plan.rates.clone().unwrap_or_default(),
            rounds,
        })
    }

    /// The server and client CPUs: existing, and a core each for two busy pollers and for
    /// the fast path's worker.
    fn path_cpus(
        &self,
        ps: &PathSpec,
        cpus: usize,
        busy: Busy,
        f: &dyn Fn(&str) -> String,
    ) -> Result<(usize, usize), ScenarioError> {
        let server_cpu = ps.server_cpu.unwrap_or(self.placement.server_cpu);
        let client_cpu = ps.client_cpu.unwrap_or(self.placement.client_cpu);
        for (k, c) in [("server_cpu", server_cpu), ("client_cpu", client_cpu)] {
            if c >= cpus {
                return Err(err(f(k), format!("CPU {c} does not exist ({cpus} CPUs)")));
            }
        }
        // Busy pollers own a core: two on one CPU measure the scheduler, not the path.
        if busy.server && busy.client && server_cpu == client_cpu {
            return Err(err(
                f("client_cpu"),
                format!("server and client both busy-poll on CPU {server_cpu}; busy pollers need a core each"),
            ));
        }
        if is_dpdk_server(ps) && server_cpu == client_cpu {
            return Err(err(
                f("server_cpu"),
                "the fast path's worker lcore needs its own CPU, apart from the control lcore on client_cpu",
            ));
        }
        Ok((server_cpu, client_cpu))
    }
}

/// Whether the path's server is a DPDK program (a worker lcore apart from the control lcore).
fn is_dpdk_server(ps: &PathSpec) -> bool {
    match ps.kind {
        PathKind::Fastpath | PathKind::FastpathMemif | PathKind::Throughput => true,
        PathKind::Chain => ps.hop == Some(HopKind::Fastpath),
        PathKind::KernelServe | PathKind::Limit => false,
    }
}

/// Whether a path's server and its client spin (and so each need a core).
#[derive(Debug, Clone, Copy)]
struct Busy {
    server: bool,
    client: bool,
}

/// A path's load plan with its defaults filled in.
struct LoadPlan {
    mode: PlanMode,
    duration: f64,
    warmup: f64,
    rate: Option<f64>,
    rates: Vec<f64>,
    rates_spec: String,
    rounds: u32,
}

/// The rate of a `rate` plan, or the points of a `sweep`.
fn plan_rates(
    plan: &Plan,
    f: &dyn Fn(&str) -> String,
) -> Result<(Option<f64>, Vec<f64>), ScenarioError> {
    match plan.mode {
        PlanMode::PingPong => {
            if plan.rate.is_some() || plan.rates.is_some() {
                return Err(err(f("plan.rate"), "ping-pong has no rate"));
            }
            Ok((None, Vec::new()))
        }
        PlanMode::Rate => {
            let r = plan
                .rate
                .ok_or_else(|| err(f("plan.rate"), "mode \"rate\" needs rate = N"))?;
            if !r.is_finite() || r <= 0.0 {
                return Err(err(f("plan.rate"), "must be a positive number"));
            }
            Ok((Some(r), Vec::new()))
        }
        PlanMode::Sweep => {
            let s = plan
                .rates
                .as_deref()
                .ok_or_else(|| err(f("plan.rates"), "mode \"sweep\" needs rates = \"A:B:STEP\""))?;
            let rates = sweep_points(s).map_err(|m| err(f("plan.rates"), m))?;
            Ok((None, rates))
        }
    }
}

/// A kernel-serve path's `--service` and `--replicas` (issue 14), checked here so a bad
/// model is refused before anything runs.
fn tail_service(
    ps: &PathSpec,
    proto: Proto,
    f: &dyn Fn(&str) -> String,
) -> Result<ServiceArg, ScenarioError> {
    if ps.kind != PathKind::KernelServe && (ps.service.is_some() || ps.replicas.is_some()) {
        return Err(err(
            f("service"),
            "service and replicas are for kind = \"kernel-serve\" (the fast path's replicas share its workers)",
        ));
    }
    if let Some(m) = &ps.service {
        m.parse::<ServiceModel>()
            .map_err(|e| err(f("service"), e))?;
    }
    if let Some(n) = ps.replicas {
        if !(1..=64).contains(&n) {
            return Err(err(f("replicas"), format!("must be 1..=64, got {n}")));
        }
        if n > 1 && proto == Proto::Unix {
            return Err(err(f("replicas"), "udp or tcp: a unix server has one path"));
        }
    }
    Ok(ServiceArg {
        model: ps.service.clone(),
        replicas: ps.replicas.filter(|&n| n > 1),
    })
}

/// What a tail path adds to its description: the model and replicas, the fan-out, the
/// hedge and the codec ("" for a plain path).
fn describe_tails(service: &ServiceArg, shape: &RequestShape) -> String {
    let mut d = String::new();
    if let Some(m) = &service.model {
        d += &format!("; service time {m}");
    }
    if let Some(n) = service.replicas {
        d += &format!(" on {n} replicas");
    }
    if let Some(k) = shape.fanout {
        d += &format!("; fan-out {k}");
    }
    if let Some(h) = &shape.hedge_after {
        d += &format!("; hedged after {h}");
    }
    if let Some((c, m)) = shape.transcode {
        d += &format!("; transcode, {c} {m} messages");
    }
    d
}

/// A path's fan-out, hedging and transcode for `bypass load`.
fn tail_shape(
    ps: &PathSpec,
    client: Client,
    f: &dyn Fn(&str) -> String,
) -> Result<RequestShape, ScenarioError> {
    let any = ps.fanout.is_some() || ps.hedge_after.is_some() || ps.codec.is_some();
    if !any {
        if ps.message.is_some() {
            return Err(err(f("message"), "needs codec"));
        }
        return Ok(RequestShape::default());
    }
    let kernel_load = ps.kind == PathKind::KernelServe && client == Client::Load;
    if (ps.fanout.is_some() || ps.hedge_after.is_some()) && !kernel_load {
        let key = if ps.fanout.is_some() {
            "fanout"
        } else {
            "hedge_after"
        };
        return Err(err(
            f(key),
            "fanout and hedge_after are for kind = \"kernel-serve\" measured by client = \"load\" \
             (the lab runs no fast-path replicas)",
        ));
    }
    if let Some(c) = ps.codec {
        let fast = matches!(ps.kind, PathKind::Fastpath | PathKind::FastpathMemif);
        let fast_load = fast && matches!(client, Client::Load | Client::LoadDpdk);
        if !(kernel_load || fast_load) {
            return Err(err(
                f("codec"),
                "codec is for kind = \"kernel-serve\", \"fastpath\" or \"fastpath-memif\" \
                 measured by bypass load",
            ));
        }
        if fast && !Transcoder::allocation_free_serves(c) {
            return Err(err(
                f("codec"),
                format!(
                    "the fast path refuses {c} (its decoder allocates on every message, and \
                     nothing on the packet path may: docs/codecs.md); measure it on kernel-serve"
                ),
            ));
        }
    }
    if let Some(k) = ps.fanout {
        if !(1..=64).contains(&k) {
            return Err(err(f("fanout"), format!("must be 1..=64, got {k}")));
        }
    }
    if let Some(h) = &ps.hedge_after {
        h.parse::<HedgeAfter>()
            .map_err(|e| err(f("hedge_after"), e))?;
    }
    if ps.message.is_some() && ps.codec.is_none() {
        return Err(err(f("message"), "needs codec"));
    }
    Ok(RequestShape {
        servers: Vec::new(),
        fanout: ps.fanout,
        hedge_after: ps.hedge_after.clone(),
        transcode: ps
            .codec
            .map(|c| (c, ps.message.unwrap_or(MessageSize::Small))),
    })
}

/// The kernel server's proto and backend (defaults for other kinds, which may not set them).
fn server_settings(
    ps: &PathSpec,
    f: &dyn Fn(&str) -> String,
) -> Result<(Proto, Backend), ScenarioError> {
    let proto = ps.proto.unwrap_or(Proto::Udp);
    let backend = ps.backend.unwrap_or(Backend::Blocking);
    let kernel_chain = ps.kind == PathKind::Chain && ps.hop == Some(HopKind::Kernel);
    if ps.kind != PathKind::KernelServe
        && !kernel_chain
        && (ps.proto.is_some() || ps.backend.is_some())
    {
        return Err(err(
            f("proto"),
            "proto and backend are kernel-serve and kernel chain settings",
        ));
    }
    if backend == Backend::Batch && proto != Proto::Udp {
        return Err(err(f("backend"), "batch is udp only"));
    }
    if kernel_chain && backend == Backend::Batch {
        return Err(err(
            f("backend"),
            "kernel-relay runs blocking or busy; batch is not a relay backend",
        ));
    }
    if (ps.kind == PathKind::KernelServe || kernel_chain) && ps.poll_mode.is_some() {
        return Err(err(
            f("poll_mode"),
            "a fast path setting; kernel-serve uses backend",
        ));
    }
    Ok((proto, backend))
}

/// The path's client, once the server kind is known to stand on this topology and the client
/// to reach it there.
fn path_client(
    ps: &PathSpec,
    topo: &TopologySpec,
    proto: Proto,
    f: &dyn Fn(&str) -> String,
) -> Result<Client, ScenarioError> {
    let tk = topo.kind;
    let client = ps.client.unwrap_or(match ps.kind {
        PathKind::Throughput => Client::None,
        PathKind::FastpathMemif => Client::LoadDpdk,
        PathKind::Chain if ps.hop == Some(HopKind::Fastpath) => Client::LoadDpdk,
        _ => Client::Load,
    });
    // Which topology each server kind can stand on, and which clients reach it.
    let topo_ok = match ps.kind {
        PathKind::KernelServe => matches!(tk, TopologyKind::Veth | TopologyKind::Loopback),
        PathKind::Fastpath => {
            matches!(
                tk,
                TopologyKind::Veth | TopologyKind::Tap | TopologyKind::Nic
            )
        }
        PathKind::FastpathMemif => tk == TopologyKind::Memif,
        PathKind::Throughput => tk == TopologyKind::Pcap,
        PathKind::Chain => match ps.hop {
            Some(HopKind::Fastpath) => tk == TopologyKind::Memif,
            Some(HopKind::Kernel) => tk == TopologyKind::Loopback,
            None => {
                return Err(err(
                    f("hop"),
                    "a chain needs hop = \"fastpath\" or \"kernel\"",
                ))
            }
        },
        PathKind::Limit => false,
    };
    if !topo_ok {
        return Err(err(
            f("topology"),
            format!(
                "a {} path cannot run on {:?}, a {} topology",
                ps.kind.as_str(),
                topo.name,
                tk.as_str()
            ),
        ));
    }
    let reaches = match (ps.kind, ps.hop) {
        (PathKind::Chain, Some(HopKind::Fastpath)) => client == Client::LoadDpdk,
        (PathKind::Chain, _) => client == Client::Load,
        _ => client_reaches(ps.kind, client, topo, proto),
    };
    if !reaches {
        return Err(err(
            f("client"),
            format!(
                "client {} cannot measure a {} path on a {} topology{}",
                client.as_str(),
                ps.kind.as_str(),
                tk.as_str(),
                if ps.kind == PathKind::KernelServe && proto != Proto::Udp {
                    " with this proto"
                } else {
                    ""
                }
            ),
        ));
    }
    if matches!(proto, Proto::Tcp | Proto::Unix) && tk != TopologyKind::Loopback {
        return Err(err(
            f("proto"),
            "tcp and unix paths run on a loopback topology",
        ));
    }
    Ok(client)
}

/// Whether `client` can measure a `kind` server on `topo`.
fn client_reaches(kind: PathKind, client: Client, topo: &TopologySpec, proto: Proto) -> bool {
    let tk = topo.kind;
    match (kind, client) {
        (PathKind::Throughput, Client::None) => true,
        (PathKind::Throughput, _) | (_, Client::None) => false,
        (PathKind::FastpathMemif, c) => c == Client::LoadDpdk,
        (PathKind::KernelServe, Client::Load) => true,
        (PathKind::KernelServe, Client::Sockperf) => proto == Proto::Udp,
        (PathKind::KernelServe, Client::LoadDpdk) => false,
        (PathKind::Fastpath, Client::Load | Client::Sockperf) => {
            tk != TopologyKind::Nic || topo.client_iface.is_some()
        }
        (PathKind::Fastpath, Client::LoadDpdk) => {
            tk == TopologyKind::Nic && !topo.client_eal.is_empty()
        }
        (PathKind::Limit | PathKind::Chain, _) => false,
    }
}

/// `cross_check`: only on a ping-pong `bypass load` path whose server sockperf can reach.
fn check_cross_check(
    ps: &PathSpec,
    topo: &TopologySpec,
    proto: Proto,
    client: Client,
    mode: PlanMode,
    f: &dyn Fn(&str) -> String,
) -> Result<(), ScenarioError> {
    if ps.cross_check.is_none() {
        return Ok(());
    }
    let ok = client == Client::Load
        && mode == PlanMode::PingPong
        && match ps.kind {
            PathKind::KernelServe => proto == Proto::Udp,
            PathKind::Fastpath => topo.kind != TopologyKind::Nic || topo.client_iface.is_some(),
            _ => false,
        };
    if ok {
        return Ok(());
    }
    Err(err(
        f("cross_check"),
        "sockperf cross-checks a ping-pong path measured by client = \"load\" on a kernel-serve udp or fastpath server",
    ))
}

/// The default one-line description of what a path measures.
fn describe(
    kind: PathKind,
    tk: TopologyKind,
    proto: Proto,
    backend: Backend,
    poll: PollMode,
    client: Client,
    wait: WaitMode,
) -> String {
    let server = match (kind, tk) {
        (PathKind::KernelServe, TopologyKind::Loopback) => format!(
            "kernel {} server ({} backend) on loopback",
            proto.as_str(),
            backend.as_str()
        ),
        (PathKind::KernelServe, _) => format!(
            "kernel {} server ({} backend) behind a veth pair",
            proto.as_str(),
            backend.as_str()
        ),
        (PathKind::Fastpath, TopologyKind::Veth) => {
            format!("fast path on net_af_xdp over a veth pair ({} poll)", poll.as_str())
        }
        (PathKind::Fastpath, TopologyKind::Tap) => {
            format!("fast path on net_tap ({} poll)", poll.as_str())
        }
        (PathKind::Fastpath, _) => format!("fast path on the given DPDK port ({} poll)", poll.as_str()),
        (PathKind::FastpathMemif, _) => {
            format!("fast path on net_memif, shared memory, no kernel ({} poll)", poll.as_str())
        }
        (PathKind::Limit, _) => return "the shared-memory floor".into(),
        (PathKind::Chain, _) => "a chain of relays in front of a server".into(),
        (PathKind::Throughput, _) => {
            return "packets/s: fast path vs testpmd 5tswap on net_pcap replaying RPC requests, same cores".into()
        }
    };
    let client = match client {
        Client::Load => format!("bypass load ({} wait, kernel sockets)", wait.as_str()),
        Client::LoadDpdk => "bypass load over DPDK".to_string(),
        Client::Sockperf => format!("unmodified sockperf ping-pong ({})", wait.as_str()),
        Client::None => String::new(),
    };
    format!("round trip: {client} -> {server}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[[topology]]
name = "v"
kind = "veth"
server_ip = "198.18.1.1"
client_ip = "198.18.1.2"

[[topology]]
name = "lo"
kind = "loopback"
server_ip = "198.18.3.1"

[[path]]
name = "k"
kind = "kernel-serve"
topology = "v"
backend = "busy"
plan = { mode = "ping-pong", duration = 1 }

[[path]]
name = "sw"
kind = "kernel-serve"
topology = "lo"
proto = "tcp"
plan = { mode = "sweep", rates = "1000:5000:2000" }
"#;

    fn resolve(text: &str) -> Result<Vec<ResolvedPath>, ScenarioError> {
        Ok(Scenario::from_toml(text)?.resolve_with_cpus(2)?.paths)
    }

    #[test]
    fn good_scenario_resolves_with_defaults() {
        let p = resolve(GOOD).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].backend, Backend::Busy);
        assert_eq!(p[0].duration, 1.0);
        assert_eq!(p[0].client, Client::Load);
        assert_eq!((p[0].server_cpu, p[0].client_cpu), (1, 0));
        assert_eq!(p[1].proto, Proto::Tcp);
        assert_eq!(p[1].rates, vec![1000.0, 3000.0, 5000.0]);
        assert_eq!(p[1].topology, Some(1));
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let e = resolve(&GOOD.replace("backend = \"busy\"", "backend = \"busy\"\nspeed = 3"))
            .unwrap_err();
        assert!(e.to_string().contains("speed"), "{e}");
    }

    /// Found by the config_toml fuzz seeds: a file cut after `key = ` gave an empty message.
    #[test]
    fn a_file_cut_after_a_key_says_where() {
        let e = Scenario::from_toml("name = \"x\"\nkind = ").unwrap_err();
        assert_eq!(e.field, "line 2");
        assert!(e.msg.contains("line 2, column 8"), "{e}");
    }

    #[test]
    fn missing_field_is_refused_by_name() {
        let e = resolve(&GOOD.replace("topology = \"v\"\n", "")).unwrap_err();
        assert!(e.to_string().contains("topology"), "{e}");
    }

    #[test]
    fn unknown_topology_is_refused() {
        let e = resolve(&GOOD.replace("topology = \"v\"", "topology = \"nope\"")).unwrap_err();
        assert_eq!(e.field, "path[0].topology");
        assert!(e.msg.contains("nope"));
    }

    #[test]
    fn address_outside_benchmark_range_is_refused() {
        let e = resolve(&GOOD.replace("198.18.1.2", "10.0.0.2")).unwrap_err();
        assert_eq!(e.field, "topology[0].client_ip");
        let e = resolve(&GOOD.replace("198.18.3.1", "127.0.0.1")).unwrap_err();
        assert_eq!(e.field, "topology[1].server_ip");
        assert!(in_lab_range("198.19.255.1".parse().unwrap()));
        assert!(!in_lab_range("198.20.0.1".parse().unwrap()));
    }

    #[test]
    fn two_busy_pollers_on_one_cpu_are_refused() {
        let text = GOOD.replace(
            "backend = \"busy\"",
            "backend = \"busy\"\nserver_cpu = 0\nclient_cpu = 0",
        );
        let e = resolve(&text).unwrap_err();
        assert_eq!(e.field, "path[0].client_cpu");
        // A blocking client may share the CPU.
        let ok = text.replace(
            "backend = \"busy\"",
            "backend = \"busy\"\nwait = \"blocking\"",
        );
        resolve(&ok).unwrap();
    }

    #[test]
    fn nonexistent_cpu_is_refused() {
        let e = resolve(&GOOD.replace("backend = \"busy\"", "backend = \"busy\"\nserver_cpu = 7"))
            .unwrap_err();
        assert_eq!(e.field, "path[0].server_cpu");
    }

    #[test]
    fn mismatched_kinds_are_refused() {
        let e = resolve(&GOOD.replace(
            "kind = \"kernel-serve\"\ntopology = \"v\"\nbackend = \"busy\"",
            "kind = \"fastpath-memif\"\ntopology = \"v\"",
        ))
        .unwrap_err();
        assert_eq!(e.field, "path[0].topology");
        let e = resolve(&GOOD.replace("proto = \"tcp\"", "proto = \"tcp\"\nclient = \"sockperf\""))
            .unwrap_err();
        assert_eq!(e.field, "path[1].client");
        let e = resolve(&GOOD.replace("topology = \"lo\"", "topology = \"v\"")).unwrap_err();
        assert_eq!(e.field, "path[1].proto");
    }

    #[test]
    fn bad_plans_are_refused() {
        let e = resolve(&GOOD.replace("1000:5000:2000", "5000:1000:10")).unwrap_err();
        assert_eq!(e.field, "path[1].plan.rates");
        let e = resolve(&GOOD.replace("mode = \"ping-pong\", duration = 1", "mode = \"rate\""))
            .unwrap_err();
        assert_eq!(e.field, "path[0].plan.rate");
        let e = resolve(&GOOD.replace("duration = 1", "duration = -1")).unwrap_err();
        assert_eq!(e.field, "path[0].plan.duration");
        assert!(sweep_points("1:2").is_err());
        assert!(sweep_points("1:1000000:1").is_err());
        let e = sweep_points("1:101:1").unwrap_err();
        assert!(e.contains("at most 100"), "the lab's own cap is named: {e}");
        assert_eq!(sweep_points("1:100:1").unwrap().len(), 100);
    }

    #[test]
    fn duplicate_path_names_are_refused() {
        let e = resolve(&GOOD.replace("name = \"sw\"", "name = \"k\"")).unwrap_err();
        assert_eq!(e.field, "path[1].name");
    }

    #[test]
    fn repeats_default_and_refusals() {
        let p = resolve(GOOD).unwrap();
        assert_eq!((p[0].repeats, p[1].repeats), (1, 1));
        let text = GOOD.replace("name = \"t\"\n", "name = \"t\"\n[defaults]\nrepeats = 3\n");
        let p = resolve(&text).unwrap();
        assert_eq!(p[0].repeats, 3, "latency paths take defaults.repeats");
        assert_eq!(p[1].repeats, 1, "a sweep runs once");
        let e =
            resolve(&GOOD.replace("proto = \"tcp\"", "proto = \"tcp\"\nrepeats = 2")).unwrap_err();
        assert_eq!(e.field, "path[1].repeats");
        let e = resolve(&text.replace("repeats = 3", "repeats = 0")).unwrap_err();
        assert_eq!(e.field, "defaults.repeats");
        let e = resolve(&GOOD.replace(
            "name = \"t\"\n",
            "name = \"t\"\n[platform]\nnoisy_lost_pct = -1\n",
        ))
        .unwrap_err();
        assert_eq!(e.field, "platform.noisy_lost_pct");
    }

    const LIMIT: &str =
        "\n[[path]]\nname = \"floor\"\nkind = \"limit\"\nplan = { mode = \"ping-pong\" }\n";

    const MEMIF: &str = "\n[[topology]]\nname = \"shm\"\nkind = \"memif\"\nserver_ip = \"198.18.4.1\"\nclient_ip = \"198.18.4.2\"\n\n[[path]]\nname = \"m\"\nkind = \"fastpath-memif\"\ntopology = \"shm\"\nplan = { mode = \"ping-pong\" }\n";

    #[test]
    fn memif_zero_copy_follows_hugepages_unless_told() {
        let huge = |on: bool| format!("name = \"t\"\n[placement]\nhugepages = {on}\n{MEMIF}");
        let zc = |text: &str| {
            let s = Scenario::from_toml(text).unwrap();
            let p = s.resolve_with_cpus(2).unwrap();
            (
                s.topologies[0].memif_zero_copy(s.placement.hugepages),
                p.paths[0].description.clone(),
            )
        };
        let (on, d) = zc(&huge(true));
        assert!(on);
        assert!(d.ends_with("; client port zero-copy"), "{d}");
        let (on, d) = zc(&huge(false));
        assert!(!on);
        assert!(d.ends_with("; copy mode on both ends"), "{d}");
        let off = huge(true).replace("kind = \"memif\"", "kind = \"memif\"\nzero_copy = false");
        assert!(!zc(&off).0);
        let e = Scenario::from_toml(
            &huge(false).replace("kind = \"memif\"", "kind = \"memif\"\nzero_copy = true"),
        )
        .and_then(|s| s.resolve_with_cpus(2).map(|_| ()))
        .unwrap_err();
        assert_eq!(e.field, "topology[0].zero_copy");
        let e = resolve(&GOOD.replace("kind = \"veth\"", "kind = \"veth\"\nzero_copy = true"))
            .unwrap_err();
        assert_eq!(e.field, "topology[0].zero_copy");
    }

    #[test]
    fn a_limit_path_needs_no_topology_and_two_cpus() {
        let p = resolve(&format!("{GOOD}{LIMIT}")).unwrap();
        assert_eq!(p[2].kind, PathKind::Limit);
        assert_eq!(p[2].topology, None);
        assert_eq!(p[2].floor_mode, FloorMode::Ring);
        assert_eq!((p[2].client_cpu, p[2].server_cpu), (0, 1));
        let e = resolve(&format!(
            "{GOOD}{}",
            LIMIT.replace("kind = \"limit\"", "kind = \"limit\"\ntopology = \"v\"")
        ))
        .unwrap_err();
        assert_eq!(e.field, "path[2].topology");
        let e = resolve(&format!(
            "{GOOD}{}",
            LIMIT.replace("kind = \"limit\"", "kind = \"limit\"\nserver_cpu = 0")
        ))
        .unwrap_err();
        assert_eq!(e.field, "path[2].client_cpu");
        let e = resolve(&format!(
            "{GOOD}{}",
            LIMIT.replace("kind = \"limit\"", "kind = \"fastpath\"")
        ))
        .unwrap_err();
        assert_eq!(e.field, "path[2].topology", "other kinds still need one");
        let e = resolve(&GOOD.replace(
            "backend = \"busy\"",
            "backend = \"busy\"\nfloor_mode = \"line\"",
        ))
        .unwrap_err();
        assert_eq!(e.field, "path[0].floor_mode");
    }

    #[test]
    fn checksum_is_a_fast_path_setting() {
        const MEMIF: &str = r#"
[[topology]]
name = "m"
kind = "memif"
server_ip = "198.18.4.1"
client_ip = "198.18.4.2"

[[path]]
name = "fm"
kind = "fastpath-memif"
topology = "m"
plan = { mode = "ping-pong", duration = 1 }
"#;
        let p = resolve(&format!("{GOOD}{MEMIF}")).unwrap();
        assert_eq!(p[2].checksum, None, "nothing passed: the programs' auto");
        let with = |text: &str| {
            resolve(&format!(
                "{GOOD}{}",
                MEMIF.replace("kind = \"fastpath-memif\"", text)
            ))
        };
        let p = with("kind = \"fastpath-memif\"\nchecksum = \"verify\"").unwrap();
        assert_eq!(p[2].checksum, Some(ChecksumPolicy::Verify));
        let e = with("kind = \"fastpath-memif\"\nchecksum = \"often\"").unwrap_err();
        assert!(e.to_string().contains("often"), "{e}");
        let e = resolve(&GOOD.replace(
            "backend = \"busy\"",
            "backend = \"busy\"\nchecksum = \"trust\"",
        ))
        .unwrap_err();
        assert_eq!(e.field, "path[0].checksum");
    }

    #[test]
    fn a_kernel_serve_path_may_sleep_its_service_time() {
        let with = |model: &str| {
            resolve(&GOOD.replace(
                "backend = \"busy\"",
                &format!("backend = \"busy\"\nservice = \"{model}\"\nreplicas = 2"),
            ))
        };
        let p = with("bimodal:10us,1%:1ms,hold=sleep").unwrap();
        assert_eq!(
            p[0].service.model.as_deref(),
            Some("bimodal:10us,1%:1ms,hold=sleep")
        );
        assert!(
            p[0].description
                .contains("service time bimodal:10us,1%:1ms,hold=sleep on 2 replicas"),
            "{}",
            p[0].description
        );
        let e = with("fixed:1ms,hold=nap").unwrap_err();
        assert_eq!(e.field, "path[0].service");
        assert!(e.msg.contains("hold `nap`"), "{e}");
        let e = with("fixed:1ms,hold=sleep,hold=sleep").unwrap_err();
        assert_eq!(e.field, "path[0].service", "{e}");
        // The fast path takes no service model at all, sleeping or not.
        let memif = MEMIF.replace(
            "kind = \"fastpath-memif\"",
            "kind = \"fastpath-memif\"\nservice = \"fixed:1ms,hold=sleep\"",
        );
        let e = resolve(&format!("{GOOD}{memif}")).unwrap_err();
        assert_eq!(e.field, "path[2].service", "{e}");
    }

    #[test]
    fn cross_check_and_compare_are_validated() {
        resolve(&GOOD.replace(
            "backend = \"busy\"",
            "backend = \"busy\"\ncross_check = \"sockperf\"",
        ))
        .unwrap();
        let e = resolve(&GOOD.replace(
            "proto = \"tcp\"",
            "proto = \"tcp\"\ncross_check = \"sockperf\"",
        ))
        .unwrap_err();
        assert_eq!(e.field, "path[1].cross_check");
        let with =
            |c: &str| GOOD.replace("name = \"t\"\n", &format!("name = \"t\"\ncompare = {c}\n"));
        let e = resolve(&with("[[\"k\", \"nope\"]]")).unwrap_err();
        assert_eq!(e.field, "compare[0]");
        assert!(e.msg.contains("nope"));
        let e = resolve(&with("[[\"k\", \"sw\"]]")).unwrap_err();
        assert!(e.msg.contains("sweep"), "{e}");
        let e = resolve(&with("[[\"k\"]]")).unwrap_err();
        assert_eq!(e.field, "compare[0]");
    }

    #[test]
    fn default_comparisons_pair_fast_paths_with_the_busy_kernel() {
        let s = Scenario::from_file(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/lab-default.toml"),
        )
        .unwrap();
        let mut s2 = s.clone();
        s2.compare = None;
        let pairs = s2.resolve_with_cpus(2).unwrap().comparisons;
        assert!(
            pairs.contains(&("fastpath-af-xdp-veth".into(), "kernel-udp-busy-veth".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("fastpath-memif".into(), "kernel-udp-loopback".into())),
            "{pairs:?}"
        );
    }

    const CHAINS: &str = r#"
name = "c"
[[topology]]
name = "shm"
kind = "memif"
server_ip = "198.18.4.1"
client_ip = "198.18.4.2"

[[topology]]
name = "lo"
kind = "loopback"
server_ip = "198.18.3.1"

[[path]]
name = "fp"
kind = "chain"
hop = "fastpath"
topology = "shm"
depths = "0:3"
plan = { mode = "ping-pong" }

[[path]]
name = "kr"
kind = "chain"
hop = "kernel"
topology = "lo"
proto = "tcp"
wait = "blocking"
depths = [0, 2]
plan = { mode = "ping-pong" }
"#;

    #[test]
    fn a_chain_becomes_one_latency_path_per_depth() {
        let p = resolve(CHAINS).unwrap();
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["fp-d0", "fp-d1", "fp-d2", "fp-d3", "kr-d0", "kr-d2"]
        );
        assert!(p
            .iter()
            .all(|p| p.kind == PathKind::Chain && p.is_latency()));
        let fp3 = p[3].chain.as_ref().unwrap();
        assert_eq!((fp3.hop, fp3.depth), (HopKind::Fastpath, 3));
        assert_eq!(fp3.depths, [0, 1, 2, 3]);
        let ips: Vec<String> = fp3.relay_ips.iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["198.18.4.3", "198.18.4.4", "198.18.4.5"]);
        assert_eq!(p[3].client, Client::LoadDpdk);
        assert!(p[0].chain.as_ref().unwrap().relay_ips.is_empty());
        assert!(
            p[0].description.contains("no relay"),
            "{}",
            p[0].description
        );
        let kr = p[5].chain.as_ref().unwrap();
        assert_eq!(
            (kr.hop, kr.depth, kr.hop_cpus.clone()),
            (HopKind::Kernel, 2, vec![1, 1])
        );
        assert_eq!(
            (p[5].proto, p[5].backend, p[5].client),
            (Proto::Tcp, Backend::Blocking, Client::Load)
        );
        assert!(
            p[5].description
                .contains("2 bypass kernel-relays (tcp blocking"),
            "{}",
            p[5].description
        );
    }

    #[test]
    fn chain_keys_are_refused_where_they_do_not_apply() {
        let bad = |from: &str, to: &str| resolve(&CHAINS.replacen(from, to, 1)).unwrap_err();
        let e = bad("hop = \"fastpath\"\n", "");
        assert_eq!(e.field, "path[0].hop");
        let e = bad("depths = \"0:3\"\n", "");
        assert_eq!(e.field, "path[0].depths");
        let e = bad("depths = \"0:3\"", "depths = [1, 2]");
        assert_eq!(e.field, "path[0].depths");
        let e = bad("topology = \"shm\"", "topology = \"lo\"");
        assert_eq!(e.field, "path[0].topology", "fastpath hops run on memif");
        let e = bad("topology = \"lo\"\nproto", "topology = \"shm\"\nproto");
        assert_eq!(e.field, "path[1].topology", "kernel hops run on loopback");
        let e = bad("hop = \"fastpath\"", "hop = \"fastpath\"\nproto = \"udp\"");
        assert_eq!(e.field, "path[0].proto");
        let e = bad("hop = \"fastpath\"", "hop = \"fastpath\"\nhop_cpus = [1]");
        assert_eq!(e.field, "path[0].hop_cpus");
        let e = bad(
            "hop = \"fastpath\"",
            "hop = \"fastpath\"\nclient = \"load\"",
        );
        assert_eq!(e.field, "path[0].client");
        let e = bad("proto = \"tcp\"", "proto = \"tcp\"\nbackend = \"batch\"");
        assert_eq!(e.field, "path[1].backend");
        let e = bad("proto = \"tcp\"", "proto = \"tcp\"\npoll_mode = \"busy\"");
        assert_eq!(e.field, "path[1].poll_mode");
        let e = bad(
            "mode = \"ping-pong\" }",
            "mode = \"sweep\", rates = \"1000:2000:1000\" }",
        );
        assert_eq!(e.field, "path[0].plan.mode");
        let e = bad(
            "proto = \"tcp\"",
            "proto = \"tcp\"\ncross_check = \"sockperf\"",
        );
        assert_eq!(e.field, "path[1].cross_check");
        let e = resolve(&GOOD.replace("backend = \"busy\"", "backend = \"busy\"\ndepths = [0, 1]"))
            .unwrap_err();
        assert_eq!(e.field, "path[0].hop", "chain keys on another kind");
        let e = bad("name = \"kr\"", "name = \"fp\"");
        assert_eq!(e.field, "path[1].name", "two chains' depths share names");
    }

    #[test]
    fn kernel_hops_never_spin_beside_another_poller() {
        let busy = CHAINS.replace("proto = \"tcp\"", "proto = \"tcp\"\nbackend = \"busy\"");
        let e = resolve(&busy).unwrap_err();
        assert_eq!(
            e.field, "path[1].backend",
            "busy relays and server on one CPU"
        );
        // With a core per hop (a bigger machine) the same chain is fine.
        let spread = busy.replace("depths = [0, 2]", "depths = [0, 2]\nhop_cpus = [2, 3]");
        let p = Scenario::from_toml(&spread)
            .unwrap()
            .resolve_with_cpus(4)
            .unwrap()
            .paths;
        assert_eq!(p[5].chain.as_ref().unwrap().hop_cpus, [2, 3]);
        let e = Scenario::from_toml(&spread)
            .unwrap()
            .resolve_with_cpus(2)
            .unwrap_err();
        assert_eq!(
            e.field, "path[1].hop_cpus",
            "CPU 2 does not exist on 2 CPUs"
        );
        let short = CHAINS.replace("depths = [0, 2]", "depths = [0, 2]\nhop_cpus = [1]");
        assert_eq!(resolve(&short).unwrap_err().field, "path[1].hop_cpus");
        // A relay on the spinning client's CPU would wait behind it.
        let on_client = CHAINS.replace(
            "wait = \"blocking\"\ndepths = [0, 2]",
            "wait = \"busy\"\ndepths = [0, 2]\nhop_cpus = [1, 0]",
        );
        assert_eq!(resolve(&on_client).unwrap_err().field, "path[1].hop_cpus");
    }

    #[test]
    fn tail_paths_say_what_they_measure() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/lab-tails.toml");
        let plan = Scenario::from_file(&p)
            .unwrap()
            .resolve_with_cpus(2)
            .unwrap();
        let d = |name: &str| {
            plan.paths
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .description
                .clone()
        };
        let fan9 = d("fan-9");
        assert!(
            fan9.contains("service time bimodal:10us,1%:1ms,hold=sleep on 9 replicas; fan-out 9"),
            "{fan9}"
        );
        assert!(
            d("hedge-p95").contains("hedged after p95"),
            "{}",
            d("hedge-p95")
        );
        assert!(d("codec-json-medium").contains("transcode, json medium messages"));
        assert!(
            !d("codec-echo-medium").contains(';'),
            "{}",
            d("codec-echo-medium")
        );
        let fast = plan
            .paths
            .iter()
            .find(|p| p.name == "fast-codec-flatbuffers-medium")
            .unwrap();
        assert_eq!(fast.kind, PathKind::FastpathMemif);
        assert_eq!(
            fast.shape.transcode,
            Some((Codec::Flatbuffers, MessageSize::Medium))
        );
    }

    #[test]
    fn codecs_on_the_fast_path_only_where_it_serves_them() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/lab-tails.toml");
        let text = std::fs::read_to_string(p).unwrap();
        let at = |name: &str| {
            let s = Scenario::from_toml(&text).unwrap();
            s.paths.iter().position(|p| p.name == name).unwrap()
        };
        let fast_json = at("fast-codec-json-medium");
        let bad = |from: &str, to: &str| {
            let t = text.replacen(from, to, 1);
            assert_ne!(t, text, "{from} not in lab-tails.toml");
            Scenario::from_toml(&t)
                .unwrap()
                .resolve_with_cpus(2)
                .unwrap_err()
        };
        let fast_block = "kind = \"fastpath-memif\"\ntopology = \"shm\"\ncodec = \"json\"";
        let e = bad(
            fast_block,
            "kind = \"fastpath-memif\"\ntopology = \"shm\"\ncodec = \"protobuf\"",
        );
        assert_eq!(e.field, format!("path[{fast_json}].codec"));
        assert!(e.msg.contains("refuses protobuf"), "{}", e.msg);
        let e = bad(fast_block, &format!("{fast_block}\nfanout = 3"));
        assert_eq!(e.field, format!("path[{fast_json}].fanout"));
        // sockperf cannot send a transcode request.
        let kernel_block = "backend = \"blocking\"\ncodec = \"json\"";
        let e = bad(
            kernel_block,
            &format!("{kernel_block}\nclient = \"sockperf\""),
        );
        assert_eq!(e.field, format!("path[{}].codec", at("codec-json-medium")));
        let e = bad(
            "kind = \"fastpath-memif\"\ntopology = \"shm\"\nsize = 450",
            "kind = \"fastpath-memif\"\ntopology = \"shm\"\nsize = 450\nmessage = \"large\"",
        );
        assert!(e.field.ends_with(".message"), "{}", e.field);
    }

    #[test]
    fn shipped_configs_resolve() {
        for f in [
            "lab-default.toml",
            "lab-ci.toml",
            "lab-baremetal.toml",
            "lab-chain.toml",
            "lab-tails.toml",
        ] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("configs")
                .join(f);
            let s = Scenario::from_file(&p).unwrap_or_else(|e| panic!("{f}: {e}"));
            s.resolve_with_cpus(64)
                .unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
}
