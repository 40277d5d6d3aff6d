//! The sidecar tax in numbers: for each chain, the added latency per hop (the least-squares
//! slope of p50 / p99 / p99.9 against depth, one slope per round, the median of the rounds'
//! slopes with the lab's order-statistic interval) and the tail amplification (p(N) - p(0)
//! against N times the one-hop figure p(1) - p(0), per round, as a ratio). Paired by round:
//! round i of every depth ran in the same sweep of the interleaved schedule.

use serde::{Deserialize, Serialize};

use crate::lab::results::{Latency, PathResult, Pct, Status};
use crate::stats::interval::{median_interval, RatioMethod};

/// A chain depth's identity, kept on its path's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    pub chain: String,
    pub hop: String,
    pub depth: u32,
    /// Where the server and the hops ran (see chain::plan::placement_text).
    pub placement: String,
}

/// The median of per-round values and its interval (stats::interval::median_interval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedianFig {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
    /// "range" (fewer than 6 rounds: min..max, with its real coverage) or "order-statistic".
    pub method: String,
    pub coverage: f64,
}

impl MedianFig {
    pub fn of(values: &[f64]) -> Option<MedianFig> {
        let m = median_interval(values)?;
        Some(MedianFig {
            median: m.median,
            lo: m.lo,
            hi: m.hi,
            n: values.len(),
            method: match m.method {
                RatioMethod::Range => "range",
                RatioMethod::OrderStatistic => "order-statistic",
            }
            .into(),
            coverage: m.coverage,
        })
    }

    /// Whether the interval holds `v` (then the figure is no different from `v`).
    pub fn includes(&self, v: f64) -> bool {
        self.lo <= v && v <= self.hi
    }
}

/// One depth of a chain: its path, its merged figures and how its counter checks went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepthRow {
    pub depth: u32,
    pub path: String,
    pub status: Status,
    pub latency: Option<Latency>,
    /// Rounds whose relays' counts matched the client's, and those that did not.
    pub counts_matched: usize,
    pub counts_disagreed: usize,
}

/// The added latency per hop at one percentile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlopeFig {
    pub what: String,
    /// ns per hop, one per round with at least two depths measured.
    pub per_round_ns: Vec<f64>,
    pub ns_per_hop: Option<MedianFig>,
    /// The slope through the merged rounds' percentiles (the table's values).
    pub merged_ns_per_hop: Option<f64>,
}

/// Tail amplification at one depth N and percentile: p(N) - p(0) against N (p(1) - p(0)).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AmpRow {
    pub depth: u32,
    pub what: String,
    pub added_ns: Option<MedianFig>,
    pub n_one_hop_ns: Option<MedianFig>,
    /// added / (N x one hop), per round; rounds whose one-hop figure is not above 0 have none.
    pub ratio: Option<MedianFig>,
    pub rounds_without_one_hop: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChainFig {
    pub chain: String,
    pub hop: String,
    pub placement: String,
    pub depths: Vec<DepthRow>,
    pub slopes: Vec<SlopeFig>,
    pub amplification: Vec<AmpRow>,
}

/// Least-squares slope of y against x; None without two distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The chain's depths in order, each with its result.
fn depth_paths<'a>(paths: &'a [PathResult], chain: &str) -> Vec<(u32, &'a PathResult)> {
    let mut v: Vec<(u32, &PathResult)> = paths
        .iter()
        .filter_map(|p| {
            let c = p.chain.as_ref()?;
            (c.chain == chain).then_some((c.depth, p))
        })
        .collect();
    v.sort_by_key(|(d, _)| *d);
    v
}

/// The round numbers any depth measured.
fn round_numbers(depths: &[(u32, &PathResult)]) -> Vec<u32> {
    let mut r: Vec<u32> = depths
        .iter()
        .flat_map(|(_, p)| p.rounds.iter().map(|x| x.round))
        .collect();
    r.sort_unstable();
    r.dedup();
    r
}

/// The value of `what` at each depth in round `k` (depths whose round k measured).
fn round_points(depths: &[(u32, &PathResult)], k: u32, what: Pct) -> Vec<(u32, f64)> {
    depths
        .iter()
        .filter_map(|(d, p)| {
            let r = p.rounds.iter().find(|r| r.round == k)?;
            Some((*d, what.of(r.latency.as_ref()?) as f64))
        })
        .collect()
}

fn slope_fig(depths: &[(u32, &PathResult)], what: Pct) -> SlopeFig {
    let per_round_ns: Vec<f64> = round_numbers(depths)
        .into_iter()
        .filter_map(|k| {
            let pts: Vec<(f64, f64)> = round_points(depths, k, what)
                .into_iter()
                .map(|(d, v)| (f64::from(d), v))
                .collect();
            slope(&pts)
        })
        .collect();
    let merged: Vec<(f64, f64)> = depths
        .iter()
        .filter(|(_, p)| p.status == Status::Ok)
        .filter_map(|(d, p)| Some((f64::from(*d), what.of(p.latency.as_ref()?) as f64)))
        .collect();
    SlopeFig {
        what: what.label().into(),
        ns_per_hop: MedianFig::of(&per_round_ns),
        per_round_ns,
        merged_ns_per_hop: slope(&merged),
    }
}

/// p(N) - p(0), N (p(1) - p(0)) and their ratio per round, for every N >= 1 of the chain.
fn amplification(depths: &[(u32, &PathResult)], what: Pct) -> Vec<AmpRow> {
    let rounds = round_numbers(depths);
    let mut out = Vec::new();
    for &(n, _) in depths.iter().filter(|(d, _)| *d >= 1) {
        let (mut added, mut expected, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        let mut without = 0;
        for &k in &rounds {
            let pts = round_points(depths, k, what);
            let at = |d: u32| pts.iter().find(|(x, _)| *x == d).map(|(_, v)| *v);
            let (Some(p0), Some(p1), Some(pn)) = (at(0), at(1), at(n)) else {
                continue;
            };
            let e = f64::from(n) * (p1 - p0);
            added.push(pn - p0);
            expected.push(e);
            if e > 0.0 {
                ratio.push((pn - p0) / e);
            } else {
                without += 1;
            }
        }
        out.push(AmpRow {
            depth: n,
            what: what.label().into(),
            added_ns: MedianFig::of(&added),
            n_one_hop_ns: MedianFig::of(&expected),
            ratio: MedianFig::of(&ratio),
            rounds_without_one_hop: without,
        });
    }
    out
}

/// Rounds whose hop counters matched, and those that did not (a disagreement fails its round).
fn count_checks(p: &PathResult) -> (usize, usize) {
    let checked = p.rounds.iter().filter(|r| !r.hops.is_empty());
    let bad = checked
        .clone()
        .filter(|r| r.status == Status::Failed && r.counts_disagree)
        .count();
    (checked.count() - bad, bad)
}

/// Every chain of the results, in the order its first depth appears.
pub fn chains(paths: &[PathResult]) -> Vec<ChainFig> {
    let mut names: Vec<&str> = Vec::new();
    for c in paths.iter().filter_map(|p| p.chain.as_ref()) {
        if !names.contains(&c.chain.as_str()) {
            names.push(&c.chain);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let depths = depth_paths(paths, name);
            let info = depths[0].1.chain.clone().expect("filtered on chain");
            let rows = depths
                .iter()
                .map(|(d, p)| {
                    let (counts_matched, counts_disagreed) = count_checks(p);
                    DepthRow {
                        depth: *d,
                        path: p.name.clone(),
                        status: p.status,
                        latency: p.latency.clone(),
                        counts_matched,
                        counts_disagreed,
                    }
                })
                .collect();
            ChainFig {
                chain: name.to_string(),
                hop: info.hop,
                placement: depths.last().map_or(info.placement, |(_, p)| {
                    p.chain
                        .as_ref()
                        .map_or(String::new(), |c| c.placement.clone())
                }),
                depths: rows,
                slopes: Pct::ALL.iter().map(|&w| slope_fig(&depths, w)).collect(),
                amplification: [Pct::P99, Pct::P999]
                    .iter()
                    .flat_map(|&w| amplification(&depths, w))
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
