//! What a run produced, and its outputs: human summary, JSON, CSV, .hgrm, .hlog.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::Arc;
use std::time::SystemTime;

use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

use super::fanout;
use crate::contract::load::{
    self as contract, HedgeFigures, LoadReport, LoadSummary, SummaryFigures,
};
use crate::options::ChecksumChoice;
use crate::options::{Codec, MessageSize};
use crate::stats::{write_percentile_distribution, HlogWriter, Summary, HIGHEST_TRACKABLE_NS};

use super::config::{Arrival, LoadConfig, LoadModel, RequestMethod};
use crate::os::Clock;

/// A send later than this behind its intended time counts as late.
pub const LATE_SEND_NS: u64 = 1_000;
/// Behind: achieved below this fraction of the target rate ...
pub const BEHIND_RATE_FRACTION: f64 = 0.99;
/// ... or send-lag p99 above one mean inter-send gap, clamped to this range (ns).
pub const BEHIND_LAG_P99_RANGE_NS: (f64, f64) = (10_000.0, 1_000_000.0);

/// Request accounting. Everything except `warmup_sent`, `invalid` and
/// `send_errors` counts measured requests only (intended send time after warmup).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub sent: u64,
    /// Successful responses recorded in the histograms.
    pub received: u64,
    /// Unanswered within the timeout.
    pub lost: u64,
    /// A second reply for an id already answered.
    pub duplicated: u64,
    /// A reply for an id lower than the highest answered so far.
    pub reordered: u64,
    /// A reply for a request already declared lost.
    pub late: u64,
    /// Malformed replies: bad magic/version/kind, unknown id, client_ts not
    /// echoed, wrong method or payload length.
    pub invalid: u64,
    /// Error replies (kind 2) from the server.
    pub errors: u64,
    /// Failed sends and ICMP errors reported by the socket.
    pub send_errors: u64,
    /// Requests sent during warmup (not measured).
    pub warmup_sent: u64,
    /// Closed loop: requests that gave their window slot up at the slot deadline (each is
    /// then received, late or lost like any other).
    pub slots_given_up: u64,
    /// Open loop: requests due before the end of the sending phase that a client too far
    /// behind never sent; charged in the corrected histogram at their age.
    pub unsent: u64,
}

/// One per-second interval (by reply arrival time). Latency is corrected.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalRow {
    /// End of the interval, seconds since measurement start.
    pub t: f64,
    #[serde(skip)]
    pub start_secs: f64,
    #[serde(skip)]
    pub length_secs: f64,
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    /// Requests sent per second in this interval.
    pub rate: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub config: LoadConfig,
    /// A fan-out or hedged run's sub-requests (None: plain requests).
    pub fanout: Option<FanoutRun>,
    /// `transcode`: the client's codec work.
    pub codec: Option<CodecRun>,
    /// The DPDK transport's checksum policy (None for kernel sockets).
    pub checksum: Option<ChecksumChoice>,
    /// [`crate::os::Clock::describe`] of the clock used.
    pub time_source: String,
    /// The clock used (its calibration for the JSON `clock` object).
    pub clock: Clock,
    pub start_time: SystemTime,
    /// Requests/s asked for (open loop), `None` in closed loop.
    pub target_rate: Option<f64>,
    /// Measured requests sent per second of the sending phase.
    pub achieved_rate: f64,
    /// Length of the measured sending phase, seconds.
    pub measured_secs: f64,
    pub counters: Counters,
    /// Round trip from the intended send time (coordinated-omission
    /// corrected; the primary result). Equal to `uncorrected` in closed loop.
    pub corrected: Histogram<u64>,
    /// Round trip from the actual send time.
    pub uncorrected: Histogram<u64>,
    /// The server's residence time (`server_ns` of the replies).
    pub server: Histogram<u64>,
    /// Uncorrected round trip minus server residence: network and stacks.
    pub wire: Histogram<u64>,
    /// Open loop: actual minus intended send time of each measured request sent; `None` in
    /// closed loop.
    pub send_lag: Option<Histogram<u64>>,
    pub intervals: Vec<IntervalRow>,
    /// Corrected histogram of each interval, same order as `intervals`.
    pub interval_histograms: IntervalHistograms,
}

/// The `transcode` client's own codec work, per message.
#[derive(Debug, Clone)]
pub struct CodecRun {
    pub codec: Codec,
    pub message: MessageSize,
    /// Message bytes without the tag, for a one-digit id.
    pub request_bytes: u64,
    pub reply_bytes: u64,
    pub encode: Histogram<u64>,
    pub decode: Histogram<u64>,
    pub bad_replies: u64,
}

/// What a fan-out or hedged run measured beside its logical requests.
#[derive(Debug, Clone)]
pub struct FanoutRun {
    /// Every measured sub-request, from its intended send to its first reply (lost: at the
    /// timeout).
    pub sub: Histogram<u64>,
    pub hedge: Option<HedgeFigures>,
}

/// The corrected histogram of every interval, in HdrHistogram's V2 encoding, appended to an
/// unnamed temporary file as each interval closes: a soak's client keeps one per second for
/// its interval log, and held in memory even encoded they grew its RSS by ~2 kB a second
/// (a plain copy is ~200 kB). Only each interval's place in the file stays in memory. Where
/// no temporary file can be made the encodings are kept in memory instead.
#[derive(Debug, Clone, Default)]
pub struct IntervalHistograms {
    spill: Option<Arc<File>>,
    /// Used when there is no spill file.
    memory: Vec<u8>,
    /// (offset, length) of each encoding, or why it could not be kept.
    spans: Vec<Result<(u64, usize), String>>,
    spill_tried: bool,
    scratch: Vec<u8>,
}

impl IntervalHistograms {
    pub fn push(&mut self, h: &Histogram<u64>) {
        self.scratch.clear();
        if let Err(e) = V2Serializer::new().serialize(h, &mut self.scratch) {
            self.spans.push(Err(format!("{e:?}")));
            return;
        }
        if !self.spill_tried {
            self.spill_tried = true;
            self.spill = unnamed_temp_file().ok().map(Arc::new);
        }
        let span = match &self.spill {
            Some(f) => append(f, &self.scratch),
            None => {
                let at = self.memory.len() as u64;
                self.memory.extend_from_slice(&self.scratch);
                Ok(at)
            }
        };
        self.spans.push(
            span.map(|at| (at, self.scratch.len()))
                .map_err(|e| format!("interval log spill: {e}")),
        );
    }

    pub fn get(&self, i: usize) -> io::Result<Histogram<u64>> {
        let bad = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
        let span = self
            .spans
            .get(i)
            .ok_or_else(|| bad(format!("no interval {i}")))?;
        let &(at, len) = span.as_ref().map_err(|e| bad(e.clone()))?;
        let mut bytes = vec![0u8; len];
        match &self.spill {
            Some(f) => f.read_exact_at(&mut bytes, at)?,
            None => bytes.copy_from_slice(&self.memory[at as usize..at as usize + len]),
        }
        Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| bad(format!("{e:?}")))
    }
}

/// A file in the temporary folder with no name: the kernel frees it with its last descriptor,
/// so a crash leaves nothing behind.
fn unnamed_temp_file() -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(std::env::temp_dir())
}

fn append(f: &File, bytes: &[u8]) -> io::Result<u64> {
    let mut f = f;
    let at = f.seek(SeekFrom::End(0))?;
    f.write_all(bytes)?;
    Ok(at)
}

/// How far an open-loop client fell behind its schedule: the lab's figures (p99, max, the
/// share of sends more than [`LATE_SEND_NS`] late, whether it fell behind: see
/// [`Report::behind_reason`]) and the rest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SendLag {
    #[serde(flatten)]
    pub read: contract::SendLag,
    pub count: u64,
    pub p50_ns: u64,
    pub p999_ns: u64,
}

/// A percentile block as written: every figure, and (corrected and uncorrected round trips)
/// the keys whose values are only "at least the timeout".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    #[serde(flatten)]
    pub figures: SummaryFigures,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_least_timeout: Option<Vec<&'static str>>,
}

/// The `"summary"` object: the lab's [`LoadSummary`] with every figure, and the rest of the
/// run's accounting (the counters the lab does not read, the clock, the load model).
#[derive(Debug, Clone, Serialize)]
pub struct SummaryJson {
    #[serde(flatten)]
    pub shared: LoadSummary<Figures, SendLag>,
    pub duplicated: u64,
    pub reordered: u64,
    pub late: u64,
    pub invalid: u64,
    pub errors: u64,
    pub send_errors: u64,
    pub slots_given_up: u64,
    pub unsent: u64,
    /// Closed loop only (null in open loop).
    pub slot_deadline_ns: Option<u64>,
    pub clock: Value,
    pub measured_secs: f64,
    pub time_source: String,
    pub load: String,
    pub server_ns: Figures,
    pub wire_ns: Figures,
}

/// `{"summary": {...}, "intervals": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct ReportJson<'a> {
    #[serde(flatten)]
    pub shared: LoadReport<SummaryJson>,
    pub intervals: &'a [IntervalRow],
}

const PERCENTILE_KEYS: [&str; 8] = [
    "min_ns",
    "p50_ns",
    "p90_ns",
    "p99_ns",
    "p999_ns",
    "p9999_ns",
    "p99999_ns",
    "max_ns",
];

/// The summary's values; `censor`: values at or above it are lower bounds ("at least the
/// timeout"), listed under `at_least_timeout`.
fn percentiles(s: &Summary, censor: Option<u64>) -> Figures {
    let at_least_timeout = censor.map(|c| {
        let values = [s.min, s.p50, s.p90, s.p99, s.p999, s.p9999, s.p99999, s.max];
        PERCENTILE_KEYS
            .iter()
            .zip(values)
            .filter(|&(_, v)| s.count > 0 && v >= c)
            .map(|(k, _)| *k)
            .collect()
    });
    Figures {
        figures: SummaryFigures::from(s),
        at_least_timeout,
    }
}

/// Like [`Summary::to_table`], but a value at or above `censor` reads `>= timeout`.
fn latency_table(s: &Summary, censor: u64) -> String {
    let v = |ns: u64| {
        if s.count > 0 && ns >= censor {
            format!("{:>14}", ">= timeout")
        } else {
            format!("{:>14.3}", ns as f64 / 1000.0)
        }
    };
    let mut out = format!("{:<10}{:>14}{:>14}\n", "metric", "value (us)", "samples >=");
    let _ = writeln!(out, "{:<10}{:>14}", "count", s.count);
    let _ = writeln!(out, "{:<10}{}", "min", v(s.min));
    let _ = writeln!(out, "{:<10}{:>14.3}", "mean", s.mean / 1000.0);
    let _ = writeln!(out, "{:<10}{:>14.3}", "stddev", s.stddev / 1000.0);
    let _ = writeln!(out, "{:<10}{}", "p50", v(s.p50));
    for t in &s.tails {
        let _ = writeln!(
            out,
            "{:<10}{}{:>14}",
            t.label,
            v(t.value),
            t.samples_at_or_above
        );
    }
    let _ = writeln!(out, "{:<10}{}", "max", v(s.max));
    if let Some(w) = s.low_samples_warning() {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

impl Report {
    pub fn is_open_loop(&self) -> bool {
        self.target_rate.is_some()
    }

    /// Summary of the corrected (primary) histogram.
    pub fn summary(&self) -> Summary {
        Summary::from_histogram(&self.corrected)
    }

    /// Where lost requests are recorded (the timeout, ns): the censoring point.
    pub fn lost_recorded_at_ns(&self) -> u64 {
        self.config.timeout.as_nanos() as u64
    }

    /// The lowest value sharing a histogram bucket with the timeout: a percentile at or
    /// above it may be a lost request, so it only says "at least the timeout".
    pub fn censor_ns(&self) -> u64 {
        let t = self.lost_recorded_at_ns().min(HIGHEST_TRACKABLE_NS);
        self.corrected.lowest_equivalent(t)
    }

    /// Why the open-loop client counts as behind its schedule, or `None` when it kept up
    /// (or in closed loop). Behind: requests left unsent, achieved below
    /// [`BEHIND_RATE_FRACTION`] of the target, or send-lag p99 above one mean inter-send
    /// gap (clamped to [`BEHIND_LAG_P99_RANGE_NS`]): then 1% of requests went out later than
    /// the next one was due, and the offered load was not the schedule.
    pub fn behind_reason(&self) -> Option<String> {
        let (target, lag) = (self.target_rate?, self.send_lag.as_ref()?);
        if self.counters.unsent > 0 {
            return Some(format!(
                "{} requests due were never sent",
                self.counters.unsent
            ));
        }
        if self.achieved_rate < target * BEHIND_RATE_FRACTION {
            return Some(format!(
                "achieved {:.1}% of the target rate (< {:.0}%)",
                self.achieved_rate / target * 100.0,
                BEHIND_RATE_FRACTION * 100.0
            ));
        }
        let (lo, hi) = BEHIND_LAG_P99_RANGE_NS;
        let limit = (1e9 / target).clamp(lo, hi);
        let p99 = if lag.is_empty() {
            0
        } else {
            lag.value_at_percentile(99.0)
        };
        (p99 as f64 > limit).then(|| {
            format!(
                "send-lag p99 {:.1} us > {:.1} us (one mean inter-send gap, clamped to {:.0}..{:.0} us)",
                p99 as f64 / 1e3,
                limit / 1e3,
                lo / 1e3,
                hi / 1e3
            )
        })
    }

    /// The send-lag figures (open loop), `None` in closed loop.
    pub fn send_lag_summary(&self) -> Option<SendLag> {
        let h = self.send_lag.as_ref()?;
        let at = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_percentile(p)
            }
        };
        let late = h.len() - h.count_between(0, LATE_SEND_NS);
        Some(SendLag {
            read: contract::SendLag {
                p99_ns: at(99.0),
                max_ns: if h.is_empty() { 0 } else { h.max() },
                late_1us_fraction: if h.is_empty() {
                    0.0
                } else {
                    late as f64 / h.len() as f64
                },
                behind: self.behind_reason().is_some(),
            },
            count: h.len(),
            p50_ns: at(50.0),
            p999_ns: at(99.9),
        })
    }

    /// The `"clock"` object: source, frequency, calibration uncertainty, cross-check.
    pub fn clock_json(&self) -> Value {
        let cal = self.clock.calibration();
        json!({
            "source": self.clock.source_name(),
            "mhz": cal.map(|c| c.mhz),
            "uncertainty_ppm": cal.map(|c| c.uncertainty_ppm),
            "cross_check": cal.and_then(|c| c.cross_check()),
        })
    }

    /// One line describing the load model.
    pub fn describe_load(&self) -> String {
        let c = &self.config;
        let model = match c.load {
            LoadModel::Closed { window } => format!("closed loop, window {window}"),
            LoadModel::Open {
                rate,
                arrival,
                max_in_flight,
            } => {
                let a = match arrival {
                    Arrival::Fixed => "fixed",
                    Arrival::Poisson => "poisson",
                };
                let cap = max_in_flight.map_or(String::new(), |m| format!(", max {m} in flight"));
                format!("open loop, {rate} req/s {a}{cap}")
            }
        };
        let method = match c.method {
            RequestMethod::Echo => format!("echo {} B", c.payload_len),
            RequestMethod::Spin { ns } => format!("spin {ns} ns"),
            RequestMethod::Transcode { codec, size } => format!("transcode {codec} {size}"),
        };
        let wait = c.wait;
        format!(
            "{}, {model}, {method}, wait {wait}, timeout {} ms",
            c.endpoint(),
            c.timeout.as_millis()
        )
    }

    /// sockperf / wrk2 style text report.
    /// The sub-requests beside the logical requests, the amplification, and hedging.
    fn human_fanout(&self, f: &contract::FanoutFigures<Figures>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nfan-out {} over {} replica(s): the round trips above are the logical requests' (the slowest of {}); each sub-request from its intended send:",
            f.fanout, f.replicas, f.fanout
        );
        if let Some(sub) = &self.fanout {
            out.push_str(&latency_table(
                &Summary::from_histogram(&sub.sub),
                self.censor_ns(),
            ));
        }
        let _ = writeln!(
            out,
            "amplification at the sub-requests' p99 ({:.3} us): P(sub >) {:.4}, P(logical >) {:.4}, independent model 1-(1-p)^{} {:.4}",
            f.threshold_ns as f64 / 1000.0,
            f.p_sub,
            f.p_logical,
            f.fanout,
            f.p_model
        );
        if let Some(h) = &f.hedge {
            let _ = writeln!(
                out,
                "hedging after {}: threshold {:.3} us at the end ({:.3}..{:.3} us while hedging), {} duplicates ({:.2}% more sub-requests), {} won, {} wasted",
                h.after,
                h.threshold_ns as f64 / 1000.0,
                h.threshold_min_ns as f64 / 1000.0,
                h.threshold_max_ns as f64 / 1000.0,
                h.duplicates,
                h.duplicates_pct,
                h.won,
                h.wasted
            );
        }
        out
    }

    pub fn human_summary(&self) -> String {
        let c = &self.counters;
        let mut out = String::new();
        let _ = writeln!(out, "bypass load: {}", self.describe_load());
        let _ = writeln!(out, "time source: {}", self.time_source);
        let _ = writeln!(
            out,
            "measured: {:.3} s sending (after {:.3} s warmup, {} warmup requests)",
            self.measured_secs,
            self.config.warmup.as_secs_f64(),
            c.warmup_sent
        );
        match self.target_rate {
            Some(t) => {
                let pct = if t > 0.0 {
                    self.achieved_rate / t * 100.0
                } else {
                    0.0
                };
                let _ = writeln!(
                    out,
                    "rate: target {t:.1} req/s, achieved {:.1} req/s ({pct:.1}% of target)",
                    self.achieved_rate
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "rate: target none (closed loop), achieved {:.1} req/s",
                    self.achieved_rate
                );
            }
        }
        let _ = writeln!(
            out,
            "requests: sent {}, received {}, lost {}, duplicated {}, reordered {}, late {}, invalid {}, errors {}, send errors {}, unsent {}",
            c.sent, c.received, c.lost, c.duplicated, c.reordered, c.late, c.invalid, c.errors, c.send_errors, c.unsent
        );
        out.push_str(&self.human_accounting());
        let censor = self.censor_ns();
        if self.is_open_loop() {
            let _ = writeln!(
                out,
                "\nround trip, corrected (from intended send time) [primary]:"
            );
            out.push_str(&latency_table(&self.summary(), censor));
            let _ = writeln!(
                out,
                "\nround trip, uncorrected (from actual send time; hides coordinated omission):"
            );
            out.push_str(&latency_table(
                &Summary::from_histogram(&self.uncorrected),
                censor,
            ));
        } else {
            let _ = writeln!(out, "\nround trip (closed loop: corrected == uncorrected):");
            out.push_str(&latency_table(&self.summary(), censor));
        }
        if let Some(f) = self.summary_report().shared.fanout {
            out.push_str(&self.human_fanout(&f));
        }
        if let Some(c) = &self.codec {
            let e = Summary::from_histogram(&c.encode);
            let d = Summary::from_histogram(&c.decode);
            let _ = writeln!(
                out,
                "\nclient codec {} {} ({} B requests, {} B replies): encode p50 {:.3} us p99 {:.3} us (inside the round trip), decode+check p50 {:.3} us p99 {:.3} us (after it), {} bad replies",
                c.codec, c.message, c.request_bytes, c.reply_bytes,
                e.p50 as f64 / 1000.0, e.p99 as f64 / 1000.0,
                d.p50 as f64 / 1000.0, d.p99 as f64 / 1000.0, c.bad_replies
            );
        }
        let _ = writeln!(out, "\nserver residence (server_ns from replies):");
        out.push_str(&Summary::from_histogram(&self.server).to_table());
        let _ = writeln!(out, "\nwire + stacks (uncorrected round trip - server_ns):");
        out.push_str(&Summary::from_histogram(&self.wire).to_table());
        out
    }

    /// The human lines on losses, send lag (open loop) and window slots (closed loop).
    fn human_accounting(&self) -> String {
        let mut out = String::new();
        let timeout_ms = self.config.timeout.as_secs_f64() * 1e3;
        let _ = writeln!(
            out,
            "lost requests are recorded at the {timeout_ms:.0} ms timeout; '>= timeout' marks a value that is only a lower bound"
        );
        if let Some(l) = self.send_lag_summary() {
            let us = |ns: u64| ns as f64 / 1e3;
            let verdict = match self.behind_reason() {
                Some(why) => format!("CLIENT FELL BEHIND: {why}"),
                None => "client kept up".into(),
            };
            let _ = writeln!(
                out,
                "send lag (actual - intended send): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; {:.2}% of sends > 1 us late; {verdict}",
                us(l.p50_ns),
                us(l.read.p99_ns),
                us(l.p999_ns),
                us(l.read.max_ns),
                l.read.late_1us_fraction * 100.0
            );
        } else {
            let _ = writeln!(
                out,
                "window: {} slots given up at the {:.1} ms slot deadline (the window stayed full; each request was still matched until the timeout)",
                self.counters.slots_given_up,
                self.config.effective_slot_deadline().as_secs_f64() * 1e3
            );
        }
        out
    }

    /// `{"summary": {...}, "intervals": [...]}`, as a document (keys sorted).
    pub fn to_json(&self) -> Value {
        let doc = ReportJson {
            shared: LoadReport {
                summary: self.summary_report(),
            },
            intervals: &self.intervals,
        };
        serde_json::to_value(doc).expect("plain data serialises")
    }

    /// The `"summary"` object of [`Report::to_json`] as a document.
    pub fn summary_json(&self) -> Value {
        serde_json::to_value(self.summary_report()).expect("plain data serialises")
    }

    /// The `"summary"` object of [`Report::to_json`]: corrected percentiles, counters, rates.
    pub fn summary_report(&self) -> SummaryJson {
        let censor = Some(self.censor_ns());
        let c = &self.counters;
        let shared = LoadSummary {
            latency: percentiles(&self.summary(), censor),
            uncorrected: Some(percentiles(
                &Summary::from_histogram(&self.uncorrected),
                censor,
            )),
            sent: c.sent,
            received: c.received,
            lost: c.lost,
            warmup_sent: c.warmup_sent,
            target_rate: self.target_rate,
            achieved_rate: Some(self.achieved_rate),
            send_lag: self.send_lag_summary(),
            lost_recorded_at_ns: Some(self.lost_recorded_at_ns()),
            checksum: self.checksum.clone(),
            fanout: self.fanout.as_ref().map(|f| {
                let sub = percentiles(&Summary::from_histogram(&f.sub), censor);
                fanout::figures(
                    &self.config.shape,
                    &f.sub,
                    &self.corrected,
                    sub,
                    f.hedge.clone(),
                )
            }),
            codec: self.codec.as_ref().map(|c| contract::CodecFigures {
                codec: c.codec,
                message: c.message,
                request_bytes: c.request_bytes,
                reply_bytes: c.reply_bytes,
                encode: percentiles(&Summary::from_histogram(&c.encode), None),
                decode: percentiles(&Summary::from_histogram(&c.decode), None),
                bad_replies: c.bad_replies,
            }),
        };
        SummaryJson {
            shared,
            duplicated: c.duplicated,
            reordered: c.reordered,
            late: c.late,
            invalid: c.invalid,
            errors: c.errors,
            send_errors: c.send_errors,
            slots_given_up: c.slots_given_up,
            unsent: c.unsent,
            slot_deadline_ns: (!self.is_open_loop())
                .then(|| self.config.effective_slot_deadline().as_nanos() as u64),
            clock: self.clock_json(),
            measured_secs: self.measured_secs,
            time_source: self.time_source.clone(),
            load: self.describe_load(),
            server_ns: percentiles(&Summary::from_histogram(&self.server), None),
            wire_ns: percentiles(&Summary::from_histogram(&self.wire), None),
        }
    }

    pub fn write_json(&self, w: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *w, &self.to_json())?;
        w.write_all(b"\n")
    }

    /// Interval rows with a header line.
    pub fn write_csv(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "t,sent,received,lost,rate,p50_ns,p99_ns,p999_ns,max_ns")?;
        for r in &self.intervals {
            writeln!(
                w,
                "{:.3},{},{},{},{:.1},{},{},{},{}",
                r.t, r.sent, r.received, r.lost, r.rate, r.p50_ns, r.p99_ns, r.p999_ns, r.max_ns
            )?;
        }
        Ok(())
    }

    /// The corrected histogram as a Java `.hgrm`, values in microseconds.
    pub fn write_hgrm(&self, w: &mut impl Write) -> io::Result<()> {
        write_percentile_distribution(&self.corrected, w, 5, 1000.0)
    }

    /// An interval log of the corrected histogram, one interval per second.
    pub fn write_hlog<W: Write>(&self, w: W) -> io::Result<W> {
        let mut log = HlogWriter::new(w, self.start_time)?;
        log.write_comment(&format!(
            "bypass load: {}; corrected round trip, ns; time source: {}",
            self.describe_load(),
            self.time_source
        ))?;
        let warmup = self.config.warmup.as_secs_f64();
        for (i, row) in self.intervals.iter().enumerate() {
            let h = self.interval_histograms.get(i)?;
            log.write_interval(None, warmup + row.start_secs, row.length_secs, &h)?;
        }
        log.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_latency_histogram;

    #[test]
    fn interval_histograms_are_kept_out_of_memory_and_come_back_whole() {
        let mut kept = IntervalHistograms::default();
        let mut hs = Vec::new();
        for k in 1..=50u64 {
            let mut h = new_latency_histogram();
            for v in [20_000u64, 21_000 + k, 35_000 * k, 1_000_000_000] {
                h.record_n(v, k).unwrap();
            }
            kept.push(&h);
            hs.push(h);
        }
        assert_eq!(kept.spans.len(), 50);
        // Spilled: nothing but the spans in memory.
        assert!(
            kept.spill.is_some(),
            "no unnamed temporary file in {:?}",
            std::env::temp_dir()
        );
        assert!(kept.memory.is_empty());
        for (i, h) in hs.iter().enumerate().rev() {
            let back = kept.get(i).unwrap();
            assert_eq!(back.len(), h.len());
            for v in h.iter_recorded() {
                assert_eq!(back.count_at(v.value_iterated_to()), v.count_at_value());
            }
            assert_eq!(back.max(), h.max());
        }
        assert!(kept.get(50).is_err());
        // A clone (a report handed on) reads the same file.
        assert_eq!(kept.clone().get(7).unwrap().len(), hs[7].len());
    }

    #[test]
    fn without_a_spill_file_they_stay_in_memory() {
        let mut kept = IntervalHistograms {
            spill_tried: true,
            ..IntervalHistograms::default()
        };
        let mut h = new_latency_histogram();
        h.record_n(20_000, 3).unwrap();
        kept.push(&h);
        h.record_n(90_000, 2).unwrap();
        kept.push(&h);
        assert!(kept.spill.is_none());
        assert_eq!(kept.get(0).unwrap().len(), 3);
        assert_eq!(kept.get(1).unwrap().len(), 5);
        // V2: a run of empty buckets takes a byte or two, not a plain copy's hundreds of kB.
        assert!(kept.memory.len() < 256, "{} bytes", kept.memory.len());
    }
}
