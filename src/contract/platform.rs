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
}

impl FloorMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FloorMode::Ring => "ring",
            FloorMode::Line => "line",
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

/// The floor's `summary`: shaped like `bypass load`'s.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FloorSummary {
    #[serde(flatten)]
    pub latency: Percentiles,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub received: u64,
    #[serde(default)]
    pub lost: u64,
    #[serde(default)]
    pub measured_secs: f64,
}

/// `bypass floor --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FloorReport {
    #[serde(rename = "type")]
    pub kind: FloorTag,
    pub summary: FloorSummary,
}

/// The floor report's `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

/// `bypass noise --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NoiseReport {
    #[serde(rename = "type")]
    pub kind: NoiseTag,
    pub cpus: Vec<CpuNoise>,
    #[serde(default)]
    pub model: Vec<ModelRow>,
}

/// The noise report's `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

/// ns per call over the batches; a missing figure is refused by name by the reader.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Spread {
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// `bypass syscalls --json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SyscallsReport {
    #[serde(rename = "type")]
    pub kind: SyscallsTag,
    #[serde(default)]
    pub cpu: usize,
    #[serde(default)]
    pub getppid_ns: Spread,
    #[serde(default)]
    pub udp_send_recv_ns: Spread,
    #[serde(default)]
    pub unix_send_recv_ns: Spread,
}

/// The syscalls report's `"type"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SyscallsTag {
    #[serde(rename = "syscalls")]
    Syscalls,
}
