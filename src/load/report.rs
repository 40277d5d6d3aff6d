//! What a run produced, and its outputs: human summary, JSON, CSV, .hgrm, .hlog.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::SystemTime;

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};

use crate::stats::{write_percentile_distribution, HlogWriter, Summary};

use super::args::{Arrival, WaitMode};
use super::config::{LoadConfig, LoadModel, RequestMethod};

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
    /// [`crate::os::Clock::describe`] of the clock used.
    pub time_source: String,
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
    pub intervals: Vec<IntervalRow>,
    /// Corrected histogram of each interval, same order as `intervals`.
    pub interval_histograms: Vec<Histogram<u64>>,
}

fn percentiles(s: &Summary) -> serde_json::Map<String, Value> {
    let v = json!({
        "count": s.count,
        "min_ns": s.min,
        "mean_ns": s.mean,
        "stddev_ns": s.stddev,
        "p50_ns": s.p50,
        "p90_ns": s.p90,
        "p99_ns": s.p99,
        "p999_ns": s.p999,
        "p9999_ns": s.p9999,
        "p99999_ns": s.p99999,
        "max_ns": s.max,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("json! of an object literal"),
    }
}

impl Report {
    pub fn is_open_loop(&self) -> bool {
        self.target_rate.is_some()
    }

    /// Summary of the corrected (primary) histogram.
    pub fn summary(&self) -> Summary {
        Summary::from_histogram(&self.corrected)
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
        };
        let wait = match c.wait {
            WaitMode::Blocking => "blocking",
            WaitMode::Busy => "busy",
        };
        format!(
            "{}, {model}, {method}, wait {wait}, timeout {} ms",
            c.endpoint(),
            c.timeout.as_millis()
        )
    }

    /// sockperf / wrk2 style text report.
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
            "requests: sent {}, received {}, lost {}, duplicated {}, reordered {}, late {}, invalid {}, errors {}, send errors {}",
            c.sent, c.received, c.lost, c.duplicated, c.reordered, c.late, c.invalid, c.errors, c.send_errors
        );
        if self.is_open_loop() {
            let _ = writeln!(
                out,
                "\nround trip, corrected (from intended send time) [primary]:"
            );
            out.push_str(&self.summary().to_table());
            let _ = writeln!(
                out,
                "\nround trip, uncorrected (from actual send time; hides coordinated omission):"
            );
            out.push_str(&Summary::from_histogram(&self.uncorrected).to_table());
        } else {
            let _ = writeln!(out, "\nround trip (closed loop: corrected == uncorrected):");
            out.push_str(&self.summary().to_table());
        }
        let _ = writeln!(out, "\nserver residence (server_ns from replies):");
        out.push_str(&Summary::from_histogram(&self.server).to_table());
        let _ = writeln!(out, "\nwire + stacks (uncorrected round trip - server_ns):");
        out.push_str(&Summary::from_histogram(&self.wire).to_table());
        out
    }

    /// `{"summary": {...}, "intervals": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({ "summary": self.summary_json(), "intervals": self.intervals })
    }

    /// The `"summary"` object of [`Report::to_json`]: corrected percentiles, counters, rates.
    pub fn summary_json(&self) -> Value {
        let mut summary = percentiles(&self.summary());
        let c = &self.counters;
        let extra = json!({
            "sent": c.sent,
            "received": c.received,
            "lost": c.lost,
            "duplicated": c.duplicated,
            "reordered": c.reordered,
            "late": c.late,
            "invalid": c.invalid,
            "errors": c.errors,
            "send_errors": c.send_errors,
            "warmup_sent": c.warmup_sent,
            "target_rate": self.target_rate,
            "achieved_rate": self.achieved_rate,
            "measured_secs": self.measured_secs,
            "time_source": self.time_source,
            "load": self.describe_load(),
            "uncorrected": percentiles(&Summary::from_histogram(&self.uncorrected)),
            "server_ns": percentiles(&Summary::from_histogram(&self.server)),
            "wire_ns": percentiles(&Summary::from_histogram(&self.wire)),
        });
        if let Value::Object(m) = extra {
            summary.extend(m);
        }
        Value::Object(summary)
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
        for (row, h) in self.intervals.iter().zip(&self.interval_histograms) {
            log.write_interval(None, warmup + row.start_secs, row.length_secs, h)?;
        }
        log.into_inner()
    }
}
