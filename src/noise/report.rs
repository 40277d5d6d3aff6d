//! `bypass noise`: runs the probe, reads who else ran, applies the model, prints the per-CPU
//! table (or one JSON object) and writes the per-CPU .hgrm files.

use std::fmt::Write as _;
use std::path::PathBuf;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::contract::platform::{self as contract, CpuNoise, NoiseTag};
use crate::os::Clock;
use crate::stats::write_percentile_distribution;

use super::args::{NoiseArgs, NoiseConfig};
use super::model::{platform_model, ModelRow};
use super::output::{print_json, write_file};
use super::probe::{self, CpuProbe, ProbeRun};
use super::tasks::{self, OtherTask};
use super::NoiseError;

/// Tasks listed per CPU (all are counted).
pub const TOP_TASKS: usize = 5;

/// One CPU's line of the report: the lab's [`CpuNoise`] and the rest.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    #[serde(flatten)]
    pub noise: CpuNoise,
    pub gaps: u64,
    pub over_10us: u64,
    pub lost_ns: u64,
    pub log_overflow: u64,
    pub other_tasks: Vec<OtherTask>,
    pub hgrm: Option<String>,
}

/// The `--json` object: the lab's report (tag, CPUs, model) and the run's settings.
#[derive(Debug, Clone, Serialize)]
pub struct NoiseReport {
    #[serde(flatten)]
    pub shared: contract::NoiseReport<CpuReport, ModelRow>,
    pub duration_s: f64,
    pub threshold_ns: u64,
    pub time_source: String,
}

/// Gaps longer than `ns`.
fn over(h: &Histogram<u64>, ns: u64) -> u64 {
    h.iter_recorded()
        .filter(|v| h.lowest_equivalent(v.value_iterated_to()) > ns)
        .map(|v| v.count_at_value())
        .sum()
}

fn cpu_report(p: &CpuProbe, others: Vec<OtherTask>, hgrm: Option<String>) -> CpuReport {
    let h = &p.hist;
    let secs = p.window_ns as f64 / 1e9;
    let q = |x: f64| {
        if h.is_empty() {
            0
        } else {
            h.value_at_quantile(x)
        }
    };
    let noise = CpuNoise {
        cpu: p.cpu,
        lost_pct: if p.window_ns == 0 {
            0.0
        } else {
            p.lost_ns as f64 / p.window_ns as f64 * 100.0
        },
        gaps_per_s: if secs > 0.0 {
            h.len() as f64 / secs
        } else {
            0.0
        },
        gap_p50_ns: q(0.5),
        gap_p99_ns: q(0.99),
        gap_p999_ns: q(0.999),
        gap_max_ns: if h.is_empty() { 0 } else { h.max() },
        over_100us: over(h, 100_000),
        over_1ms: over(h, 1_000_000),
        other_tasks_seen: others.len() as u64,
    };
    CpuReport {
        noise,
        gaps: h.len(),
        over_10us: over(h, 10_000),
        lost_ns: p.lost_ns,
        log_overflow: p.log.overflow,
        other_tasks: others.into_iter().take(TOP_TASKS).collect(),
        hgrm,
    }
}

fn hgrm_path(prefix: &str, cpu: usize) -> PathBuf {
    PathBuf::from(format!("{prefix}-cpu{cpu}.hgrm"))
}

/// Builds the report from a finished probe and the /proc snapshots around it.
pub fn build(
    cfg: &NoiseConfig,
    clock: &Clock,
    run: &ProbeRun,
    others: Vec<Vec<OtherTask>>,
    hgrm_prefix: Option<&str>,
) -> NoiseReport {
    let cpus = run
        .cpus
        .iter()
        .zip(others)
        .map(|(p, o)| {
            let hgrm = hgrm_prefix.map(|pre| hgrm_path(pre, p.cpu).display().to_string());
            cpu_report(p, o, hgrm)
        })
        .collect();
    let logs: Vec<&[probe::Gap]> = run.cpus.iter().map(|p| p.log.gaps()).collect();
    let model = cfg
        .model_rates
        .iter()
        .map(|&r| platform_model(&logs, run.start_ns, run.duration_ns, r))
        .collect();
    NoiseReport {
        shared: contract::NoiseReport {
            kind: NoiseTag::Noise,
            cpus,
            model,
        },
        duration_s: cfg.duration.as_secs_f64(),
        threshold_ns: cfg.threshold_ns,
        time_source: clock.describe(),
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The human tables: one row per CPU, one per model rate, then who else ran.
pub fn human(r: &NoiseReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "bypass noise: {} s, gaps over {} ns; time source: {}",
        r.duration_s, r.threshold_ns, r.time_source
    );
    let _ = writeln!(
        o,
        "\n{:>4} {:>7} {:>8} {:>9} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7} {:>6} {:>6}",
        "cpu",
        "lost%",
        "gaps",
        "gaps/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us",
        ">10us",
        ">100us",
        ">1ms",
        "others"
    );
    for c in &r.shared.cpus {
        let n = &c.noise;
        let _ = writeln!(
            o,
            "{:>4} {:>7.3} {:>8} {:>9.1} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>7} {:>7} {:>6} {:>6}",
            n.cpu, n.lost_pct, c.gaps, n.gaps_per_s, us(n.gap_p50_ns), us(n.gap_p99_ns),
            us(n.gap_p999_ns), us(n.gap_max_ns), c.over_10us, n.over_100us, n.over_1ms,
            n.other_tasks_seen
        );
        if c.log_overflow > 0 {
            let _ = writeln!(
                o,
                "     ({} gaps did not fit the model's log)",
                c.log_overflow
            );
        }
    }
    let _ = writeln!(
        o,
        "\nplatform model (open loop, delay = largest remaining stall on any probed CPU):"
    );
    let _ = writeln!(
        o,
        "{:>10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "rate/s",
        "sends",
        "gap>1us",
        "gap>10us",
        "gap>100us",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us"
    );
    for ModelRow {
        shared: m,
        in_gap_1us,
    } in &r.shared.model
    {
        let _ = writeln!(
            o,
            "{:>10} {:>9} {:>9.5} {:>9.5} {:>9.5} {:>10.3} {:>10.3} {:>10.3} {:>10.3}",
            m.rate,
            m.sends,
            in_gap_1us,
            m.in_gap_10us,
            m.in_gap_100us,
            us(m.delay_p50_ns),
            us(m.delay_p99_ns),
            us(m.delay_p999_ns),
            us(m.delay_max_ns)
        );
    }
    for c in &r.shared.cpus {
        let _ = writeln!(
            o,
            "\nother tasks that ran on cpu {} (top {TOP_TASKS}):",
            c.noise.cpu
        );
        for t in &c.other_tasks {
            let _ = writeln!(
                o,
                "  pid {:>7} tid {:>7} {:<16} {:>12.3} us",
                t.pid,
                t.tid,
                t.comm,
                us(t.ran_ns)
            );
        }
    }
    o
}

/// The `bypass noise` command.
pub fn run(args: &NoiseArgs) -> Result<(), NoiseError> {
    let cfg = args.to_config()?;
    crate::os::signal::install_stop_handlers()
        .map_err(|e| NoiseError::Io(format!("signals: {e}")))?;
    let clock = Clock::new();
    let before = tasks::snapshot();
    let probed = probe::run(clock, &cfg.cpus, cfg.duration, cfg.threshold_ns)?;
    let after = tasks::snapshot();
    let me = std::process::id();
    let others = cfg
        .cpus
        .iter()
        .map(|&c| tasks::ran_on(&before, &after, c, me))
        .collect();
    let report = build(&cfg, &clock, &probed, others, args.hgrm.as_deref());
    if let Some(prefix) = &args.hgrm {
        for p in &probed.cpus {
            write_file(&hgrm_path(prefix, p.cpu), |w| {
                write_percentile_distribution(&p.hist, w, 5, 1000.0)
            })?;
        }
    }
    if args.json {
        print_json(&report)
    } else {
        print!("{}", human(&report));
        Ok(())
    }
}
