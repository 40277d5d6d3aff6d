//! results.json: every figure the lab measured, per path, with the environment it ran in.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::environment::Environment;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// Round-trip latency, nanoseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

impl Latency {
    /// From a `bypass load --json` summary object.
    pub fn from_load_summary(s: &Value) -> Option<Latency> {
        let u = |k: &str| s.get(k).and_then(Value::as_u64);
        Some(Latency {
            count: u("count")?,
            min_ns: u("min_ns")?,
            mean_ns: s.get("mean_ns").and_then(Value::as_f64)?,
            p50_ns: u("p50_ns")?,
            p90_ns: u("p90_ns")?,
            p99_ns: u("p99_ns")?,
            p999_ns: u("p999_ns")?,
            max_ns: u("max_ns")?,
        })
    }

    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            min_ns: h.min(),
            mean_ns: h.mean(),
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

/// Requests the client sent and how many got no answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Loss {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
}

impl Loss {
    pub fn percent(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            100.0 * self.lost as f64 / self.sent as f64
        }
    }
}

/// One point of a load sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepPoint {
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub latency: Latency,
    pub loss: Loss,
    pub hgrm: String,
}

/// The fast path against testpmd 5tswap, packets per second (medians of 1 s readings).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub bypass_pps: f64,
    pub testpmd_pps: f64,
    /// bypass / testpmd.
    pub ratio: f64,
    pub frame_bytes: usize,
    pub rounds: u32,
    pub bypass_readings: Vec<f64>,
    pub testpmd_readings: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathResult {
    pub name: String,
    pub kind: String,
    pub topology: String,
    pub client: String,
    pub description: String,
    pub status: Status,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    pub elapsed_s: f64,
    pub server_cpu: usize,
    pub client_cpu: usize,
    /// The primary round-trip figures (for a sweep: its lowest-rate point).
    pub latency: Option<Latency>,
    /// Achieved requests/s of the measurement (throughput paths: the fast path's packets/s).
    pub rate_per_s: Option<f64>,
    pub loss: Option<Loss>,
    /// The .hgrm file of `latency`, relative to the results folder.
    pub hgrm: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweep: Vec<SweepPoint>,
    pub throughput: Option<Throughput>,
    /// The server's final report (bypass serve / kernel-serve --json).
    pub server: Option<Value>,
    /// The client's own summary (bypass load --json summary; sockperf's figures).
    pub client_report: Option<Value>,
    /// The commands the path ran, for reproducing it by hand.
    pub commands: Vec<String>,
    /// Trouble that did not spoil the measurement (e.g. a server that would not stop when
    /// asked): the figures stand, the problem is shown next to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl PathResult {
    pub fn new(
        name: &str,
        kind: &str,
        topology: &str,
        client: &str,
        description: &str,
    ) -> PathResult {
        PathResult {
            name: name.into(),
            kind: kind.into(),
            topology: topology.into(),
            client: client.into(),
            description: description.into(),
            status: Status::Skipped,
            error: None,
            elapsed_s: 0.0,
            server_cpu: 0,
            client_cpu: 0,
            latency: None,
            rate_per_s: None,
            loss: None,
            hgrm: None,
            sweep: Vec::new(),
            throughput: None,
            server: None,
            client_report: None,
            commands: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The server's final report after the client measured; a server that would not stop
    /// cleanly is a warning on figures the client already has, not a failed measurement.
    pub fn keep_server_report(&mut self, fin: Result<Value, String>) {
        match fin {
            Ok(v) => self.server = Some(v),
            Err(e) => self.warnings.push(format!("server: {e}")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabResults {
    pub scenario: String,
    pub scenario_file: Option<String>,
    pub description: String,
    /// UTC, RFC 3339.
    pub started: String,
    pub wall_s: f64,
    pub interrupted: bool,
    pub environment: Environment,
    pub paths: Vec<PathResult>,
    /// Plot files, relative to the results folder.
    pub plots: Vec<String>,
}

impl LabResults {
    pub fn failed(&self) -> usize {
        self.paths
            .iter()
            .filter(|p| p.status == Status::Failed)
            .count()
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("results.json"), text + "\n")
    }
}
