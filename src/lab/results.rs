//! results.json: every figure the lab measured, per path, with the environment it ran in.

use std::path::Path;

use super::chain::counters::HopCount;
use super::chain::figures::{ChainFig, ChainInfo};
use super::environment::Environment;
pub use super::platform::Platform;
use crate::contract::serve::ServeFinal;
use crate::contract::{self, Verbatim};
use crate::options::ChecksumChoice;
use serde::{Deserialize, Serialize};

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

/// Round-trip latency, nanoseconds: the percentiles a `bypass load` or `bypass floor` report
/// carries, kept as they are.
pub use crate::contract::load::Percentiles as Latency;
/// The client's schedule lag in open loop, as `bypass load` reports it.
pub use crate::contract::load::SendLag;

impl Latency {
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
    /// Corrected (from the intended send time).
    pub latency: Latency,
    /// From the actual send time: hides the client's own stalls.
    #[serde(default)]
    pub uncorrected: Option<Latency>,
    pub loss: Loss,
    pub hgrm: String,
    #[serde(default)]
    pub send_lag: Option<SendLag>,
    /// Lost requests are recorded at this value (the client's timeout): a percentile at or
    /// above it means "at least the timeout".
    #[serde(default)]
    pub lost_recorded_at_ns: Option<u64>,
    /// What the platform alone explains at this rate (the probe's model).
    #[serde(default)]
    pub platform_model: Option<ModelFig>,
}

impl SweepPoint {
    /// True when `ns` is a censored value: at or above the point where lost requests were
    /// recorded, so it only says "at least the timeout".
    pub fn is_censored(&self, ns: u64) -> bool {
        matches!(self.lost_recorded_at_ns, Some(t) if t > 0 && ns >= t)
    }
}

/// The platform model at one sweep point: the closed-loop p50 plus the probe's model delay,
/// over the measured corrected tail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFig {
    pub base_p50_ns: u64,
    pub delay_p99_ns: u64,
    pub delay_p999_ns: u64,
    /// Share of sends that would land in a gap longer than 100 us.
    pub in_gap_100us: f64,
    pub model_p99_ns: u64,
    pub model_p999_ns: u64,
    /// model / measured.
    pub ratio_p99: Option<f64>,
    pub ratio_p999: Option<f64>,
}

/// One percentile of a path over its rounds: the value of all rounds merged, its 95%
/// order-statistic interval, and the spread of the per-round values.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PercentileCi {
    pub value_ns: u64,
    pub lo_ns: u64,
    pub hi_ns: u64,
    /// Samples behind it (all rounds).
    pub samples: u64,
    /// False: too few samples for a 95% interval (lo/hi are then min and max).
    pub enough: bool,
    pub round_min_ns: u64,
    pub round_max_ns: u64,
    pub rounds: usize,
}

/// p50, p99 and p99.9 of a path with their uncertainty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Intervals {
    pub p50: PercentileCi,
    pub p99: PercentileCi,
    pub p999: PercentileCi,
}

impl Intervals {
    pub fn get(&self, what: Pct) -> &PercentileCi {
        match what {
            Pct::P50 => &self.p50,
            Pct::P99 => &self.p99,
            Pct::P999 => &self.p999,
        }
    }
}

/// The three percentiles every interval, ratio and verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pct {
    P50,
    P99,
    P999,
}

impl Pct {
    pub const ALL: [Pct; 3] = [Pct::P50, Pct::P99, Pct::P999];

    pub fn label(self) -> &'static str {
        match self {
            Pct::P50 => "p50",
            Pct::P99 => "p99",
            Pct::P999 => "p99.9",
        }
    }

    pub fn quantile(self) -> f64 {
        match self {
            Pct::P50 => 0.5,
            Pct::P99 => 0.99,
            Pct::P999 => 0.999,
        }
    }

    pub fn of(self, l: &Latency) -> u64 {
        match self {
            Pct::P50 => l.p50_ns,
            Pct::P99 => l.p99_ns,
            Pct::P999 => l.p999_ns,
        }
    }
}

/// A ratio with its interval, as results.json keeps it (see stats::interval::Ratio).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RatioFig {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    /// "range" (min..max of the per-round ratios, fewer than 6) or "order-statistic" (binomial
    /// bounds on the rank of the median, >= 95%).
    pub method: String,
    /// Probability that [lo, hi] covers the true median ratio (75% for a range of 3).
    #[serde(default)]
    pub coverage: f64,
    pub text: String,
}

/// One fan-out round's counts behind `bypass load`'s `summary.fanout` (each round measured
/// against its own sub-request p99), kept so rounds pool into one proportion.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RoundTails {
    /// K.
    pub fanout: u32,
    /// Logical requests measured, and how many were slower than the sub-request p99.
    pub logical: u64,
    pub slow_logical: u64,
    /// Sub-requests measured (hedges included), and how many were slower than their p99.
    pub sub: u64,
    pub slow_sub: u64,
    /// With hedging: duplicates sent, over first sub-requests sent.
    pub duplicates: u64,
    pub firsts: u64,
}

impl RoundTails {
    /// From one run's summary: the proportions it reports times the counts behind them.
    pub fn of(logical: u64, f: &crate::contract::load::FanoutFigures) -> RoundTails {
        let (duplicates, firsts) = match &f.hedge {
            Some(h) if h.duplicates_pct > 0.0 => (
                h.duplicates,
                (100.0 * h.duplicates as f64 / h.duplicates_pct).round() as u64,
            ),
            Some(_) => (0, logical * u64::from(f.fanout)),
            None => (0, 0),
        };
        let sub = f.sub.count;
        RoundTails {
            fanout: f.fanout,
            logical,
            slow_logical: (f.p_logical * logical as f64).round() as u64,
            sub,
            slow_sub: (f.p_sub * sub as f64).round() as u64,
            duplicates,
            firsts,
        }
    }
}

/// One round of a latency path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    /// 1-based.
    pub round: u32,
    pub status: Status,
    pub error: Option<String>,
    pub latency: Option<Latency>,
    pub loss: Option<Loss>,
    pub rate_per_s: Option<f64>,
    /// The round's lossless histogram (interval log), relative to the results folder.
    pub hlog: Option<String>,
    /// Indexes into `platform.probes`: the probe just before this round and the next one.
    pub probe_before: Option<usize>,
    pub probe_after: Option<usize>,
    /// A neighbouring probe lost more than `noisy_lost_pct` of a CPU.
    pub noisy: bool,
    /// The cross-check client's figures against the same server process this round.
    pub cross_check: Option<Latency>,
    /// Whether the cross-check client ran first this round (the order alternates).
    #[serde(default)]
    pub cross_check_first: bool,
    #[serde(default)]
    pub send_lag: Option<SendLag>,
    pub elapsed_s: f64,
    /// A chain depth's relays, hop 1 first, as their final lines counted this round.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<HopCount>,
    /// The relays' counts disagreed with the client's (the round failed; `error` says how).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counts_disagree: bool,
    /// A fan-out round's tail counts, which the tax table pools over the rounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tails: Option<RoundTails>,
}

/// A path's cross-check: our client over the other client, per round, same server process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrossCheckFig {
    pub client: String,
    pub p50: Option<RatioFig>,
    pub p99: Option<RatioFig>,
    pub p999: Option<RatioFig>,
    /// The target: the p50 ratio's median within 10% of 1.
    pub p50_within_10pct: Option<bool>,
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

/// One fast-path port's rx checksum policy, as its final report gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortChecksum {
    pub port: String,
    pub driver: String,
    #[serde(flatten)]
    pub choice: ChecksumChoice,
}

/// The rx checksum policies a path ran with: the fast path's ports and the DPDK client's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathChecksums {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server: Vec<PortChecksum>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ChecksumChoice>,
}

impl PathChecksums {
    pub fn is_empty(&self) -> bool {
        self.server.is_empty() && self.client.is_none()
    }

    /// One line for the report: "server net_memif0 trust (auto: ...); client trust (...)".
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .server
            .iter()
            .map(|p| format!("server {} {}", p.port, p.choice))
            .collect();
        if let Some(c) = &self.client {
            parts.push(format!("client {c}"));
        }
        parts.join("; ")
    }
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
    pub server: Option<Verbatim>,
    /// The client's own summary (bypass load --json summary; sockperf's figures).
    pub client_report: Option<Verbatim>,
    /// The rx checksum policies of the fast path's ports and of a DPDK client.
    #[serde(default, skip_serializing_if = "PathChecksums::is_empty")]
    pub checksum: PathChecksums,
    /// The commands the path ran, for reproducing it by hand.
    pub commands: Vec<String>,
    /// Trouble that did not spoil the measurement (e.g. a server that would not stop when
    /// asked): the figures stand, the problem is shown next to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Every round of a latency path (results of a later run compare against these).
    #[serde(default)]
    pub rounds: Vec<Round>,
    /// p50 / p99 / p99.9 of the merged rounds with their intervals.
    #[serde(default)]
    pub intervals: Option<Intervals>,
    /// p50 as a multiple of the floor's p50, from paired rounds.
    #[serde(default)]
    pub floor_multiple: Option<RatioFig>,
    #[serde(default)]
    pub cross_check: Option<CrossCheckFig>,
    /// Rounds flagged noisy.
    #[serde(default)]
    pub noisy_rounds: usize,
    /// A depth of a chain path: which chain, which depth, where its hops ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainInfo>,
    /// This round's relay counts, while it runs; kept in its [`Round`].
    #[serde(skip)]
    pub hops: Vec<HopCount>,
    /// This round's relay counts disagreed with the client's; kept in its [`Round`].
    #[serde(skip)]
    pub counts_disagree: bool,
    /// This run's warmup requests (`bypass load`), for the chain's counter check; not written.
    #[serde(skip)]
    pub warmup_sent: u64,
    /// This run's lossless histogram (the round's, while it runs); not written.
    #[serde(skip)]
    pub histogram: Option<hdrhistogram::Histogram<u64>>,
    /// The cross-check client's result of this round, while it runs; not written.
    #[serde(skip)]
    pub cross: Option<Box<PathResult>>,
    /// This run's send lag from `bypass load` (open loop), for its round; not written.
    #[serde(skip)]
    pub send_lag: Option<SendLag>,
    /// This run's fan-out counts, for its round; not written here.
    #[serde(skip)]
    pub tails: Option<RoundTails>,
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
            checksum: PathChecksums::default(),
            commands: Vec::new(),
            warnings: Vec::new(),
            rounds: Vec::new(),
            intervals: None,
            floor_multiple: None,
            cross_check: None,
            noisy_rounds: 0,
            chain: None,
            hops: Vec::new(),
            counts_disagree: false,
            warmup_sent: 0,
            histogram: None,
            cross: None,
            send_lag: None,
            tails: None,
        }
    }

    /// The per-round values of one percentile, in round order (ok rounds only).
    pub fn round_values(&self, what: Pct) -> Vec<(u32, f64)> {
        self.rounds
            .iter()
            .filter_map(|r| Some((r.round, what.of(r.latency.as_ref()?) as f64)))
            .collect()
    }

    /// The server's final report after the client measured; a server that would not stop
    /// cleanly is a warning on figures the client already has, not a failed measurement.
    /// [`Self::keep_server_report`] of the fast path, whose ports' checksum policies are kept
    /// typed too.
    pub fn keep_fastpath_report(&mut self, fin: Result<contract::Kept<ServeFinal>, String>) {
        if let Ok(k) = &fin {
            self.checksum.server = k
                .typed
                .ports
                .iter()
                .filter_map(|p| {
                    Some(PortChecksum {
                        port: p.name.clone(),
                        driver: p.driver.clone(),
                        choice: p.checksum.clone()?,
                    })
                })
                .collect();
        }
        self.keep_server_report(fin);
    }

    pub fn keep_server_report<T>(&mut self, fin: Result<contract::Kept<T>, String>) {
        match fin {
            Ok(v) => self.server = Some(v.verbatim),
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
    /// The noise probes and the syscall tax.
    #[serde(default)]
    pub platform: Platform,
    /// Verdict lines from paired per-round ratios.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    /// Chain paths: per-hop slopes and tail amplification (report: "The sidecar tax").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<ChainFig>,
    /// The table report.md opens with: the article's claims against this run's figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipc_tax: Vec<super::tax::TaxRow>,
}

/// One comparison: `a` over `b` at one percentile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub a: String,
    pub b: String,
    pub what: String,
    pub ratio: RatioFig,
    pub text: String,
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
