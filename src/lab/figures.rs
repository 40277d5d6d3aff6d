//! The arithmetic between measured rounds and printed claims: merged percentiles with their
//! order-statistic intervals and per-round spread, the floor multiple, the cross-check ratios,
//! the verdicts of paired comparisons, and the platform model beside the sweeps. Every
//! interval comes from stats::interval; nothing here measures.

use hdrhistogram::Histogram;

use super::platform::Platform;
use super::results::{
    CrossCheckFig, Intervals, PathResult, Pct, PercentileCi, RatioFig, Round, Status, Verdict,
};
use crate::stats::interval::{paired_ratio, quantile_ci, spread, verdict, Ratio, RatioMethod};

/// The confidence of every interval the lab prints.
pub const CONF: f64 = crate::stats::interval::CONFIDENCE;

pub fn ratio_fig(r: &Ratio) -> RatioFig {
    RatioFig {
        median: r.median,
        lo: r.lo,
        hi: r.hi,
        n: r.n,
        method: match r.method {
            RatioMethod::Range => "range",
            RatioMethod::OrderStatistic => "order-statistic",
        }
        .into(),
        coverage: r.coverage,
        text: r.describe(),
    }
}

/// One percentile of the merged rounds, with its 95% interval and the rounds' min..max.
pub fn percentile_ci(merged: &Histogram<u64>, what: Pct, rounds: &[Round]) -> PercentileCi {
    let ci = quantile_ci(merged, what.quantile(), CONF);
    let per: Vec<f64> = rounds
        .iter()
        .filter_map(|r| Some(what.of(r.latency.as_ref()?) as f64))
        .collect();
    let (lo, hi) = spread(&per).unwrap_or((ci.value as f64, ci.value as f64));
    PercentileCi {
        value_ns: ci.value,
        lo_ns: ci.lo,
        hi_ns: ci.hi,
        samples: ci.n,
        enough: ci.enough,
        round_min_ns: lo as u64,
        round_max_ns: hi as u64,
        rounds: per.len(),
    }
}

pub fn intervals(merged: &Histogram<u64>, rounds: &[Round]) -> Intervals {
    Intervals {
        p50: percentile_ci(merged, Pct::P50, rounds),
        p99: percentile_ci(merged, Pct::P99, rounds),
        p999: percentile_ci(merged, Pct::P999, rounds),
    }
}

/// a_i / b_i over the rounds both measured (round i of one pairs with round i of the
/// other: they ran next to each other in the interleaved schedule).
pub fn paired(a: &PathResult, b: &PathResult, what: Pct) -> Option<Ratio> {
    let bv = b.round_values(what);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (round, v) in a.round_values(what) {
        if let Some((_, w)) = bv.iter().find(|(r, _)| *r == round) {
            x.push(v);
            y.push(*w);
        }
    }
    paired_ratio(&x, &y)
}

/// The floor: the first limit path that measured.
pub fn floor_index(paths: &[PathResult]) -> Option<usize> {
    paths
        .iter()
        .position(|p| p.kind == "limit" && p.status == Status::Ok && !p.rounds.is_empty())
}

/// Sets every other latency path's p50 as a multiple of the floor's.
pub fn floor_multiples(paths: &mut [PathResult]) {
    let Some(fi) = floor_index(paths) else {
        return;
    };
    let floor = paths[fi].clone();
    for (i, p) in paths.iter_mut().enumerate() {
        if i == fi || p.rounds.is_empty() || p.latency.is_none() {
            continue;
        }
        p.floor_multiple = paired(p, &floor, Pct::P50).map(|r| ratio_fig(&r));
    }
}

/// Our client over the cross-check client, round by round, same server process.
pub fn cross_check(p: &PathResult, client: &str) -> Option<CrossCheckFig> {
    let pairs: Vec<_> = p
        .rounds
        .iter()
        .filter_map(|r| Some((r.latency.as_ref()?, r.cross_check.as_ref()?)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let ratio = |what: Pct| {
        let ours: Vec<f64> = pairs.iter().map(|(a, _)| what.of(a) as f64).collect();
        let theirs: Vec<f64> = pairs.iter().map(|(_, b)| what.of(b) as f64).collect();
        paired_ratio(&ours, &theirs)
    };
    let r50 = ratio(Pct::P50);
    Some(CrossCheckFig {
        client: client.into(),
        p50_within_10pct: r50.as_ref().map(|r| (0.9..=1.1).contains(&r.median)),
        p50: r50.as_ref().map(ratio_fig),
        p99: ratio(Pct::P99).as_ref().map(ratio_fig),
        p999: ratio(Pct::P999).as_ref().map(ratio_fig),
    })
}

/// Verdict lines for the scenario's pairs, then every latency path against the floor.
pub fn verdicts(paths: &[PathResult], pairs: &[(String, String)]) -> Vec<Verdict> {
    let by_name = |n: &str| paths.iter().find(|p| p.name == n);
    let mut all: Vec<(&PathResult, &PathResult)> = pairs
        .iter()
        .filter_map(|(a, b)| Some((by_name(a)?, by_name(b)?)))
        .collect();
    if let Some(fi) = floor_index(paths) {
        let floor = &paths[fi];
        for p in paths
            .iter()
            .filter(|p| p.name != floor.name && !p.rounds.is_empty())
        {
            // A pair the scenario named already is not said twice.
            if !all
                .iter()
                .any(|(a, b)| a.name == p.name && b.name == floor.name)
            {
                all.push((p, floor));
            }
        }
    }
    let mut out = Vec::new();
    for (a, b) in all {
        for what in Pct::ALL {
            if let Some(r) = paired(a, b, what) {
                out.push(Verdict {
                    a: a.name.clone(),
                    b: b.name.clone(),
                    what: what.label().into(),
                    text: verdict(&a.name, &b.name, what.label(), &r),
                    ratio: ratio_fig(&r),
                });
            }
        }
    }
    out
}

/// The closed-loop p50 a sweep's model adds the platform's delay to: the ping-pong path on
/// the same server and topology with the same client, else the sweep's lowest point.
fn base_p50(paths: &[PathResult], sweep: &PathResult) -> Option<u64> {
    paths
        .iter()
        .find(|p| {
            p.sweep.is_empty()
                && !p.rounds.is_empty()
                && p.kind == sweep.kind
                && p.topology == sweep.topology
                && p.client == sweep.client
                && p.description == sweep.description
        })
        .and_then(|p| p.latency.as_ref().map(|l| l.p50_ns))
        .or_else(|| sweep.sweep.first().map(|pt| pt.latency.p50_ns))
}

/// For every sweep point: the platform model (the probe taken before the sweep, at the
/// point's rate) plus the closed-loop p50, over the measured corrected p99 and p99.9.
pub fn platform_models(paths: &mut [PathResult], platform: &Platform) {
    for i in 0..paths.len() {
        if paths[i].sweep.is_empty() {
            continue;
        }
        let Some(probe) = platform
            .probes
            .iter()
            .find(|pr| pr.path.as_deref() == Some(paths[i].name.as_str()) && !pr.model.is_empty())
        else {
            continue;
        };
        let Some(base) = base_p50(paths, &paths[i]) else {
            continue;
        };
        for pt in &mut paths[i].sweep {
            let Some(m) = probe
                .model
                .iter()
                .find(|m| (m.rate - pt.target_rate).abs() < 0.5)
            else {
                continue;
            };
            // A measured percentile at the censoring point is "at least the timeout": no ratio.
            let ratio = |model: u64, measured: u64| {
                (measured > 0 && !pt.is_censored(measured)).then(|| model as f64 / measured as f64)
            };
            let (m99, m999) = (base + m.delay_p99_ns, base + m.delay_p999_ns);
            pt.platform_model = Some(super::results::ModelFig {
                base_p50_ns: base,
                delay_p99_ns: m.delay_p99_ns,
                delay_p999_ns: m.delay_p999_ns,
                in_gap_100us: m.in_gap_100us,
                model_p99_ns: m99,
                model_p999_ns: m999,
                ratio_p99: ratio(m99, pt.latency.p99_ns),
                ratio_p999: ratio(m999, pt.latency.p999_ns),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::results::Latency;
    use crate::stats::new_latency_histogram;

    fn lat(p50: u64, p99: u64, p999: u64) -> Latency {
        Latency {
            count: 100,
            p50_ns: p50,
            p99_ns: p99,
            p999_ns: p999,
            ..Latency::default()
        }
    }

    fn round(k: u32, l: Latency) -> Round {
        Round {
            round: k,
            status: Status::Ok,
            error: None,
            latency: Some(l),
            loss: None,
            rate_per_s: None,
            hlog: None,
            probe_before: None,
            probe_after: None,
            noisy: false,
            cross_check: None,
            cross_check_first: false,
            send_lag: None,
            elapsed_s: 1.0,
            hops: Vec::new(),
            counts_disagree: false,
            tails: None,
        }
    }

    fn path(name: &str, kind: &str, p50s: &[u64]) -> PathResult {
        let mut p = PathResult::new(name, kind, "t", "load", "d");
        p.status = Status::Ok;
        p.latency = Some(lat(p50s[0], 0, 0));
        p.rounds = p50s
            .iter()
            .enumerate()
            .map(|(i, &v)| round(i as u32 + 1, lat(v, v * 3, v * 10)))
            .collect();
        p
    }

    #[test]
    fn percentile_ci_spans_the_rounds_and_brackets_the_value() {
        let mut h = new_latency_histogram();
        for v in 1..=100_000u64 {
            h.record(1000 + v % 1000).unwrap();
        }
        let rounds = [
            round(1, lat(1400, 1980, 1998)),
            round(2, lat(1600, 1990, 1999)),
        ];
        let ci = percentile_ci(&h, Pct::P50, &rounds);
        assert!(ci.enough);
        assert!(ci.lo_ns <= ci.value_ns && ci.value_ns <= ci.hi_ns, "{ci:?}");
        assert_eq!(
            (ci.round_min_ns, ci.round_max_ns, ci.rounds),
            (1400, 1600, 2)
        );
        assert_eq!(ci.samples, 100_000);
    }

    #[test]
    fn pairs_by_round_number_and_compares_with_the_floor() {
        let mut paths = vec![
            path("floor", "limit", &[100, 110, 90]),
            path("memif", "fastpath-memif", &[400, 330, 360]),
        ];
        // Round 3 of memif failed: only rounds 1 and 2 pair.
        paths[1].rounds[2].latency = None;
        floor_multiples(&mut paths);
        let m = paths[1].floor_multiple.as_ref().unwrap();
        assert_eq!(m.n, 2);
        assert!(
            (m.lo - 3.0).abs() < 1e-9 && (m.hi - 4.0).abs() < 1e-9,
            "{m:?}"
        );
        assert!(
            paths[0].floor_multiple.is_none(),
            "the floor is not its own multiple"
        );
        let v = verdicts(&paths, &[]);
        assert_eq!(v.len(), 3, "memif vs floor at three percentiles");
        assert!(
            v[0].text.starts_with("memif vs floor, p50: "),
            "{}",
            v[0].text
        );
        assert!(!v[0].text.contains("no measurable difference"));
        let named = verdicts(&paths, &[("memif".into(), "floor".into())]);
        assert_eq!(
            named.len(),
            3,
            "a pair against the floor the scenario names is said once"
        );
    }

    #[test]
    fn an_interval_including_one_is_no_difference() {
        let paths = vec![
            path("a", "kernel-serve", &[100, 120]),
            path("b", "kernel-serve", &[110, 100]),
        ];
        let v = verdicts(&paths, &[("a".into(), "b".into())]);
        assert!(
            v[0].text.contains("no measurable difference"),
            "{}",
            v[0].text
        );
    }

    #[test]
    fn the_platform_model_adds_the_closed_loop_p50_and_skips_censored_tails() {
        use crate::lab::platform::{ModelRow, Probe};
        use crate::lab::results::{Loss, SweepPoint};
        let closed = path("k", "kernel-serve", &[4_000, 4_000]);
        let mut sweep = PathResult::new("sw", "kernel-serve", "t", "load", "d");
        let point = |rate: f64, p99: u64, p999: u64| SweepPoint {
            target_rate: rate,
            achieved_rate: rate,
            latency: Latency {
                count: 1000,
                p50_ns: 5_000,
                p99_ns: p99,
                p999_ns: p999,
                ..Latency::default()
            },
            uncorrected: None,
            loss: Loss::default(),
            hgrm: String::new(),
            send_lag: None,
            lost_recorded_at_ns: Some(1_000_000_000),
            platform_model: None,
        };
        sweep.sweep = vec![point(10_000.0, 100_000, 1_500_000_000)];
        let platform = Platform {
            probes: vec![Probe {
                path: Some("sw".into()),
                model: vec![ModelRow {
                    rate: 10_000.0,
                    delay_p99_ns: 46_000,
                    delay_p999_ns: 996_000,
                    ..ModelRow::default()
                }],
                ..Probe::default()
            }],
            ..Platform::default()
        };
        let mut paths = vec![closed, sweep];
        paths[0].description = "d".into();
        platform_models(&mut paths, &platform);
        let m = paths[1].sweep[0].platform_model.as_ref().unwrap();
        // The closed-loop path's merged p50 (4 us) plus the platform's delay.
        assert_eq!((m.base_p50_ns, m.model_p99_ns), (4_000, 50_000));
        assert_eq!(m.ratio_p99, Some(0.5));
        assert_eq!(m.ratio_p999, None, "a tail at the timeout has no ratio");
    }

    #[test]
    fn cross_check_ratios_and_the_ten_percent_target() {
        let mut p = path("k", "kernel-serve", &[1000, 1100, 950]);
        for (r, other) in p.rounds.iter_mut().zip([1050u64, 1080, 1000]) {
            r.cross_check = Some(lat(other, other * 3, other * 10));
        }
        let c = cross_check(&p, "sockperf").unwrap();
        let r = c.p50.unwrap();
        assert_eq!(r.n, 3);
        assert!(r.lo <= r.median && r.median <= r.hi);
        assert!((r.lo - 0.95).abs() < 1e-9, "{r:?}");
        assert_eq!(c.p50_within_10pct, Some(true));
        p.rounds.iter_mut().for_each(|r| r.cross_check = None);
        assert!(cross_check(&p, "sockperf").is_none());
    }
}
