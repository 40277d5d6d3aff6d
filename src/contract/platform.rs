//! The platform programs around the paths: `bypass floor` (the shared-memory floor, a limit
//! path), `bypass noise` (the probe before every round) and `bypass syscalls` (the syscall tax
//! row), their command lines and `--json` reports.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::load::Percentiles;
use super::Argv;

/// How `bypass floor` passes its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FloorMode {
    /// A single-producer single-consumer ring of slots each way.
    Ring,
    /// One cache-line mailbox each way.
    Line,
    /// memif's layout: index, descriptor and buffer on separate lines, each way.
    Descriptors,
}

impl FloorMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FloorMode::Ring => "ring",
            FloorMode::Line => "line",
            FloorMode::Descriptors => "descriptors",
        }
    }
}

/// `bypass floor --json` between two pinned threads.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorCommand {
    /// The initiator's CPU, then the responder's.
    pub cpus: (usize, usize),
    pub duration_s: f64,
    pub mode: FloorMode,
    pub size: usize,
    pub hlog: PathBuf,
    pub hgrm: PathBuf,
}

impl FloorCommand {
    /// The arguments after the binary, starting with `floor`.
    pub fn argv(&self) -> Vec<String> {
        Argv::new("floor")
            .opt("--cpus", format!("{},{}", self.cpus.0, self.cpus.1))
            .opt("--duration", self.duration_s)
            .opt("--mode", self.mode.as_str())
            .opt("--size", self.size)
            .flag("--json")
            .path("--hlog", &self.hlog)
            .path("--hgrm", &self.hgrm)
            .done()
    }
}

/// The floor's `summary`: shaped like `bypass load`'s. The lab reads the percentiles as
/// [`Percentiles`]; the floor writes every figure
/// ([`SummaryFigures`](super::load::SummaryFigures)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloorSummary<P = Percentiles> {
    #[serde(flatten)]
    pub latency: P,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub received: u64,
    #[serde(default)]
    pub lost: u64,
    #[serde(default)]
    pub measured_secs: f64,
}

/// `bypass floor --json`: the part the lab reads, `S` its summary (the floor's writer
/// `noise::floor::FloorJson` embeds it with a summary of its own that embeds [`FloorSummary`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloorReport<S = FloorSummary> {
    #[serde(rename = "type")]
    pub kind: FloorTag,
    pub summary: S,
}

/// The floor report's `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FloorTag {
    #[serde(rename = "floor")]
    Floor,
}

/// `bypass noise --cpus LIST --duration S --json [--model-rates R,..]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseCommand {
    pub cpus: Vec<usize>,
    pub duration_s: f64,
    /// Rates of the platform model (none: the program's default rates).
    pub model_rates: Vec<f64>,
}

impl NoiseCommand {
    /// The arguments after the binary, starting with `noise`.
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::new("noise");
        a.opt("--cpus", join(&self.cpus))
            .opt("--duration", self.duration_s)
            .flag("--json");
        if !self.model_rates.is_empty() {
            a.opt("--model-rates", join(&self.model_rates));
        }
        a.done()
    }
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// One CPU of a noise report (the lab's results keep these fields).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuNoise {
    pub cpu: usize,
    /// Share of the probe's time lost to gaps, percent.
    pub lost_pct: f64,
    pub gaps_per_s: f64,
    pub gap_p50_ns: u64,
    pub gap_p99_ns: u64,
    pub gap_p999_ns: u64,
    pub gap_max_ns: u64,
    pub over_100us: u64,
    pub over_1ms: u64,
    /// Other tasks that ran on this CPU during the probe.
    pub other_tasks_seen: u64,
}

/// What an open-loop client at `rate` would see from the platform alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelRow {
    pub rate: f64,
    pub sends: u64,
    pub in_gap_10us: f64,
    pub in_gap_100us: f64,
    pub delay_p50_ns: u64,
    pub delay_p99_ns: u64,
    pub delay_p999_ns: u64,
    pub delay_max_ns: u64,
}

/// `bypass noise --json`: the part the lab reads. The program's writer
/// (`noise::report::NoiseReport`) embeds it with rows of its own (`C`, `M`) that each embed
/// [`CpuNoise`] and [`ModelRow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseReport<C = CpuNoise, M = ModelRow> {
    #[serde(rename = "type")]
    pub kind: NoiseTag,
    pub cpus: Vec<C>,
    #[serde(default = "Vec::new")]
    pub model: Vec<M>,
}

/// The noise report's `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NoiseTag {
    #[serde(rename = "noise")]
    Noise,
}

/// `bypass syscalls --cpu C --json`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyscallsCommand {
    pub cpu: usize,
}

impl SyscallsCommand {
    /// The arguments after the binary, starting with `syscalls`.
    pub fn argv(&self) -> Vec<String> {
        Argv::new("syscalls")
            .opt("--cpu", self.cpu)
            .flag("--json")
            .done()
    }
}

/// ns per call over the batches. The reader reads `Option<f64>` (a missing figure is refused
/// by name); the program writes `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Spread<T = Option<f64>> {
    pub median: T,
    pub min: T,
    pub max: T,
}

/// `bypass syscalls --json`: the part the lab reads, which the program's writer
/// (`noise::syscalls::SyscallsReport`) embeds with `T = f64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub struct SyscallsReport<T = Option<f64>> {
    #[serde(rename = "type")]
    pub kind: SyscallsTag,
    #[serde(default)]
    pub cpu: usize,
    #[serde(default)]
    pub getppid_ns: Spread<T>,
    #[serde(default)]
    pub udp_send_recv_ns: Spread<T>,
    #[serde(default)]
    pub unix_send_recv_ns: Spread<T>,
}

/// The syscalls report's `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyscallsTag {
    #[serde(rename = "syscalls")]
    Syscalls,
}
