//! `--rates A:B:STEP`: the latency-versus-load curve. One full open-loop run (fresh transport,
//! warmup, then duration or count) per target rate, one summary row per point, printed as the
//! point finishes. SIGINT/SIGTERM let the running point finish and start no further one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::os::signal;
use crate::stats::Summary;

use super::config::{Arrival, LoadConfig, LoadModel, Outputs, RequestMethod, Sweep};
use super::report::{Report, SummaryJson};
use super::{run_with_clock, write_file, LoadError};
use crate::contract::load::LoadSweepReport;
use crate::options::RateSweep;
use crate::os::Clock;

/// Most points one sweep may have.
pub use crate::options::MAX_SWEEP_POINTS as MAX_POINTS;

fn bad(msg: impl Into<String>) -> LoadError {
    super::config::bad("--rates", msg)
}

/// One configuration per point: `base` (the flags) with the point's rate; all validated
/// before the first point runs, so a bad high rate is refused up front.
pub fn point_configs(base: &LoadConfig, sweep: &RateSweep) -> Result<Vec<LoadConfig>, LoadError> {
    let LoadModel::Open {
        arrival,
        max_in_flight,
        ..
    } = base.load
    else {
        return Err(bad("a sweep is an open loop"));
    };
    sweep
        .points()
        .iter()
        .map(|&rate| {
            let c = LoadConfig {
                load: LoadModel::Open {
                    rate,
                    arrival,
                    max_in_flight,
                },
                ..base.clone()
            };
            c.validate()?;
            Ok(c)
        })
        .collect()
}

/// `lat.hgrm` -> `lat-1000.hgrm`: the point's rate before the extension.
pub fn point_path(path: &Path, rate: f64) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{rate}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{rate}"),
    };
    path.with_file_name(name)
}

/// What every point shares: endpoint, arrival, request, wait, warmup and length of a point.
fn describe_points(base: &LoadConfig) -> String {
    let arrival = match base.load {
        LoadModel::Open {
            arrival: Arrival::Poisson,
            ..
        } => "poisson",
        _ => "fixed",
    };
    let method = match base.method {
        RequestMethod::Echo => format!("echo {} B", base.payload_len),
        RequestMethod::Spin { ns } => format!("spin {ns} ns"),
        RequestMethod::Transcode { codec, size } => format!("transcode {codec} {size}"),
    };
    let wait = base.wait;
    let length = match (base.duration, base.count) {
        (Some(d), Some(c)) => format!("{:.3} s or {c} requests", d.as_secs_f64()),
        (Some(d), None) => format!("{:.3} s", d.as_secs_f64()),
        (None, Some(c)) => format!("{c} requests"),
        (None, None) => String::new(),
    };
    format!(
        "{}, {arrival} arrival, {method}, wait {wait}, timeout {} ms; each point {:.3} s warmup then {length}",
        base.endpoint(),
        base.timeout.as_millis(),
        base.warmup.as_secs_f64()
    )
}

/// The human table's header: target and achieved rate, corrected round trip, losses, then
/// the uncorrected round trip (`u-`), achieved as % of target, the client's send-lag p99 and
/// whether it fell behind.
pub fn table_header() -> String {
    format!(
        "{:>12} {:>12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>6}",
        "target/s",
        "achieved/s",
        "count",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "lost",
        "u-p50",
        "u-p90",
        "u-p99",
        "u-p99.9",
        "u-max",
        "ach %",
        "lag p99",
        "behind"
    )
}

/// One table row in microseconds; a value at or above the timeout reads `>=tmo`.
pub fn table_row(r: &Report) -> String {
    let (c, u) = (r.summary(), Summary::from_histogram(&r.uncorrected));
    let censor = r.censor_ns();
    let cell = |s: &Summary, ns: u64| {
        if s.count > 0 && ns >= censor {
            ">=tmo".to_string()
        } else {
            format!("{:.1}", ns as f64 / 1000.0)
        }
    };
    let target = r.target_rate.unwrap_or(0.0);
    let pct = if target > 0.0 {
        r.achieved_rate / target * 100.0
    } else {
        0.0
    };
    let lag = r.send_lag_summary();
    format!(
        "{:>12} {:>12.1} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7.1} {:>9.1} {:>6}",
        target,
        r.achieved_rate,
        c.count,
        cell(&c, c.p50),
        cell(&c, c.p90),
        cell(&c, c.p99),
        cell(&c, c.p999),
        cell(&c, c.max),
        r.counters.lost,
        cell(&u, u.p50),
        cell(&u, u.p90),
        cell(&u, u.p99),
        cell(&u, u.p999),
        cell(&u, u.max),
        pct,
        lag.as_ref().map_or(0.0, |l| l.read.p99_ns as f64 / 1000.0),
        if lag.is_some_and(|l| l.read.behind) {
            "yes"
        } else {
            "no"
        },
    )
}

/// The sweep as CSV: a header line and one row per point (ns). The first eleven columns are
/// as before; uncorrected percentiles, send lag and the behind flag follow.
pub fn write_csv(points: &[Report], w: &mut impl Write) -> io::Result<()> {
    writeln!(
        w,
        "target_rate,achieved_rate,count,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,sent,received,lost,\
         uncorrected_p50_ns,uncorrected_p90_ns,uncorrected_p99_ns,uncorrected_p999_ns,uncorrected_max_ns,\
         send_lag_p99_ns,send_lag_max_ns,late_1us_fraction,behind,unsent,lost_recorded_at_ns"
    )?;
    for r in points {
        let s = r.summary();
        let u = Summary::from_histogram(&r.uncorrected);
        let c = &r.counters;
        let lag = r.send_lag_summary();
        writeln!(
            w,
            "{},{:.1},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{},{}",
            r.target_rate.unwrap_or(0.0),
            r.achieved_rate,
            s.count,
            s.p50,
            s.p90,
            s.p99,
            s.p999,
            s.max,
            c.sent,
            c.received,
            c.lost,
            u.p50,
            u.p90,
            u.p99,
            u.p999,
            u.max,
            lag.as_ref().map_or(0, |l| l.read.p99_ns),
            lag.as_ref().map_or(0, |l| l.read.max_ns),
            lag.as_ref().map_or(0.0, |l| l.read.late_1us_fraction),
            lag.is_some_and(|l| l.read.behind),
            c.unsent,
            r.lost_recorded_at_ns()
        )?;
    }
    Ok(())
}

/// The sweep's `--json`: the lab's [`LoadSweepReport`] of full summaries, and the rates asked
/// for and the clock (of the first point).
#[derive(Debug, Clone, Serialize)]
pub struct SweepJson<'a> {
    #[serde(flatten)]
    pub shared: LoadSweepReport<SummaryJson>,
    pub rates: &'a str,
    pub time_source: Option<String>,
    pub clock: Option<Value>,
}

/// `{"sweep": [<the summary object of each point>], "time_source": ..., "rates": ...}`, as a
/// document (keys sorted).
pub fn to_json(points: &[Report], rates: &str) -> Value {
    let doc = SweepJson {
        shared: LoadSweepReport {
            sweep: points.iter().map(Report::summary_report).collect(),
        },
        rates,
        time_source: points.first().map(|r| r.time_source.clone()),
        clock: points.first().map(Report::clock_json),
    };
    serde_json::to_value(doc).expect("plain data serialises")
}

fn write_point_files(out: &Outputs, r: &Report) -> Result<(), LoadError> {
    let rate = r.target_rate.unwrap_or(0.0);
    if let Some(p) = &out.hgrm {
        write_file(&point_path(p, rate), |w| r.write_hgrm(w))?;
    }
    if let Some(p) = &out.hlog {
        write_file(&point_path(p, rate), |w| r.write_hlog(w).map(|_| ()))?;
    }
    Ok(())
}

/// Runs every point of the sweep, printing each row as it finishes, then writes --csv and
/// --json for the points that ran. A failing point ends the sweep; the points before it are
/// still written.
pub fn run(files: &Outputs, base: &LoadConfig, sweep: &Sweep) -> Result<(), LoadError> {
    let configs = point_configs(base, &sweep.rates)?;
    signal::install_stop_handlers().map_err(|e| LoadError::Io(format!("signal handlers: {e}")))?;
    let clock = Clock::new();
    let rates = &sweep.text;
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "bypass load: rate sweep {rates} req/s, {} points; {}",
        configs.len(),
        describe_points(base)
    );
    let _ = writeln!(out, "time source: {}", clock.describe());
    let _ = writeln!(
        out,
        "round trip: corrected (from intended send time), then uncorrected (u-, from actual send); lag p99: the client's send lag; >=tmo: at least the timeout (lost requests are recorded there)"
    );
    let _ = writeln!(out, "{}", table_header());
    let _ = out.flush();
    let mut done: Vec<Report> = Vec::with_capacity(configs.len());
    let mut failure = None;
    for cfg in &configs {
        if signal::stop_requested() {
            eprintln!(
                "bypass load: interrupted: {} of {} points ran",
                done.len(),
                configs.len()
            );
            break;
        }
        match run_with_clock(cfg, clock).and_then(|r| write_point_files(files, &r).map(|_| r)) {
            Ok(r) => {
                let _ = writeln!(out, "{}", table_row(&r));
                let _ = out.flush();
                done.push(r);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(p) = &files.csv {
        write_file(p, |w| write_csv(&done, w))?;
    }
    if let Some(p) = &files.json {
        write_file(p, |w| {
            serde_json::to_writer_pretty(&mut *w, &to_json(&done, rates))?;
            w.write_all(b"\n")
        })?;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::parse_rates;

    fn points(s: &str) -> Vec<f64> {
        RateSweep::parse(s).unwrap().points().to_vec()
    }

    #[test]
    fn parses_inclusive_ranges() {
        assert_eq!(points("1000:3000:1000"), [1000.0, 2000.0, 3000.0]);
        assert_eq!(points("1000:3500:1000"), [1000.0, 2000.0, 3000.0]);
        assert_eq!(points("5:5:1"), [5.0]);
        assert_eq!(points("1:2:5"), [1.0]);
        assert_eq!(points(" 10 : 20 : 2.5 "), [10.0, 12.5, 15.0, 17.5, 20.0]);
        assert_eq!(points("1e3:2e3:5e2"), [1000.0, 1500.0, 2000.0]);
    }

    #[test]
    fn float_drift_neither_loses_nor_adds_the_end() {
        // 0.1 + 0.2 > 0.3 in binary, and (0.3 - 0.1) / 0.1 < 2.
        assert_eq!(points("0.1:0.3:0.1"), [0.1, 0.2, 0.3]);
        let p = points("0.1:1.0:0.1");
        assert_eq!(p.len(), 10);
        assert_eq!(*p.last().unwrap(), 1.0);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert!(p.iter().all(|&r| r <= 1.0));
        let p = points("1:1000:1");
        assert_eq!(p.len(), 1000);
        assert_eq!(p[999], 1000.0);
    }

    #[test]
    fn refuses_bad_syntax_and_values() {
        for bad in [
            "", "1:2", "1:2:3:4", "a:b:c", "1:2:x", "5:1:1", "0:10:1", "1:10:0", "-1:10:1",
            "1:10:-1", "1:inf:1", "NaN:10:1", "1:10:NaN", "1::1", "1:1001:1",
        ] {
            match parse_rates(bad) {
                Err(LoadError::Invalid(e)) => {
                    assert_eq!(e.field, "--rates", "{bad:?}: {}", e.message)
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        // 1000 points is the most.
        assert!(parse_rates("1:1000:1").is_ok());
        assert_eq!(MAX_POINTS, 1000);
        assert!(parse_rates("1:1e300:1e-300").is_err());
    }

    #[test]
    fn point_file_names_carry_the_rate() {
        assert_eq!(
            point_path(Path::new("/tmp/lat.hgrm"), 1000.0),
            PathBuf::from("/tmp/lat-1000.hgrm")
        );
        assert_eq!(
            point_path(Path::new("out/lat"), 2500.5),
            PathBuf::from("out/lat-2500.5")
        );
    }
}
