//! The IPC tax table that opens report.md (issue 14): each claim of the article the project
//! grew from ("the IPC tax of microservices": system calls, UDS against TCP, the kernel on the
//! path, sidecar hops, fan-out, hedging, marshaling) next to the figure this run measured, with
//! its interval, and the ratio of the two. The published figures are REFERENCES F's; a claim
//! this scenario did not measure says which scenario does, rather than leaving a blank.

use serde::{Deserialize, Serialize};

use super::chain::figures::{ChainFig, MedianFig};
use super::figures::paired;
use super::results::{LabResults, PathResult, Pct, RoundTails, Status, Verdict};
use crate::contract::load::LoadSummary;
use crate::contract::serve::KernelServeFinal;
use crate::options::{Codec, Proto};
use crate::stats::interval::{fmt_ratio, median_interval, paired_ratio, Ratio, RatioMethod};

/// A figure measured here: a median over rounds (or batches) and its interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    /// "ns", "x" (a ratio) or "%".
    pub unit: String,
    /// How the interval was found and from what ("6 paired rounds, order statistics 97%").
    pub how: String,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaxRow {
    pub claim: String,
    /// The published figure, as its source gives it, and the source.
    pub published: String,
    /// The published figure as a number in `measured`'s unit (None: none to divide by).
    pub published_value: Option<f64>,
    pub measured: Option<Measured>,
    /// measured / published.
    pub ratio: Option<f64>,
    /// Which paths gave the figure, or why this run has none.
    pub note: String,
}

impl TaxRow {
    fn new(claim: &str, published: &str, published_value: Option<f64>) -> TaxRow {
        TaxRow {
            claim: claim.into(),
            published: published.into(),
            published_value,
            measured: None,
            ratio: None,
            note: String::new(),
        }
    }

    /// A figure whose interval holds "no effect" (0 added, a ratio of 1) is no figure to
    /// divide by: the row says so instead of giving a ratio.
    fn measured(mut self, m: Measured, note: String) -> TaxRow {
        let none = match m.unit.as_str() {
            "x" => Some(1.0),
            "ns" => Some(0.0),
            _ => None,
        };
        let inside = none.filter(|v| m.lo <= *v && *v <= m.hi);
        self.ratio = self
            .published_value
            .filter(|p| *p > 0.0 && inside.is_none())
            .map(|p| m.value / p);
        self.note = match inside {
            Some(v) => format!("no measurable effect (the interval holds {v}); {note}"),
            None => note,
        };
        self.measured = Some(m);
        self
    }

    fn missing(mut self, why: impl Into<String>) -> TaxRow {
        self.note = why.into();
        self
    }
}

fn of_ratio(r: &Ratio) -> Measured {
    Measured {
        value: r.median,
        lo: r.lo,
        hi: r.hi,
        unit: "x".into(),
        how: r.describe(),
    }
}

/// b over a from a's-over-b ratio: the interval's ends swap.
fn inverse(r: &Ratio) -> Ratio {
    Ratio {
        median: 1.0 / r.median,
        lo: 1.0 / r.hi,
        hi: 1.0 / r.lo,
        ..*r
    }
}

fn of_median_ns(m: &MedianFig) -> Measured {
    Measured {
        value: m.median,
        lo: m.lo,
        hi: m.hi,
        unit: "ns".into(),
        how: format!(
            "median of {} rounds' slopes ({}, {:.0}% coverage)",
            m.n,
            m.method,
            m.coverage * 100.0
        ),
    }
}

/// Every row, in the article's order.
pub fn table(r: &LabResults) -> Vec<TaxRow> {
    let mut rows = vec![syscall(r)];
    rows.extend(uds_vs_tcp(&r.paths));
    rows.push(kernel_vs_bypass(&r.paths, &r.verdicts));
    rows.extend(hops(&r.chains));
    rows.push(fanout(&r.paths));
    rows.extend(hedging(&r.paths));
    rows.extend(marshaling(&r.paths));
    rows
}

fn syscall(r: &LabResults) -> TaxRow {
    let row = TaxRow::new(
        "a system call, the smallest kernel crossing (getppid)",
        "no figure in REFERENCES F",
        None,
    );
    match &r.platform.syscalls {
        Some(s) => row.measured(
            Measured {
                value: s.getppid_ns.median,
                lo: s.getppid_ns.min,
                hi: s.getppid_ns.max,
                unit: "ns".into(),
                how: "median batch, range over the batches".into(),
            },
            format!(
                "`bypass syscalls` on CPU {}; a UDP send+recv pair costs {:.0} ns, unix {:.0} ns",
                s.cpu, s.udp_send_recv_ns.median, s.unix_send_recv_ns.median
            ),
        ),
        None => row.missing("the syscall row did not run (`[platform] syscalls = true`)"),
    }
}

/// A kernel-serve path's protocol and backend, from its server's final report.
fn kernel_proto(p: &PathResult) -> Option<KernelServeFinal> {
    if p.kind != "kernel-serve" || p.rounds.is_empty() {
        return None;
    }
    let v = serde_json::to_value(p.server.as_ref()?).ok()?;
    serde_json::from_value(v).ok()
}

/// The unix-socket path and a TCP path with the same backend (same topology preferred).
fn uds_tcp_pair(paths: &[PathResult]) -> Option<(&PathResult, &PathResult)> {
    let kernel: Vec<(&PathResult, KernelServeFinal)> = paths
        .iter()
        .filter_map(|p| Some((p, kernel_proto(p)?)))
        .collect();
    let (unix, uf) = kernel.iter().find(|(_, f)| f.proto == Proto::Unix)?;
    let tcp = kernel
        .iter()
        .filter(|(_, f)| f.proto == Proto::Tcp && f.backend == uf.backend)
        .min_by_key(|(p, _)| p.topology != unix.topology)?;
    Some((unix, tcp.0))
}

fn uds_vs_tcp(paths: &[PathResult]) -> [TaxRow; 2] {
    let lat = TaxRow::new(
        "unix-domain sockets against TCP loopback: round trip (TCP over UDS, p50)",
        "none published for latency",
        None,
    );
    let thr = TaxRow::new(
        "unix-domain sockets against TCP loopback: throughput (UDS over TCP)",
        "\"around 50% more throughput\" (redis.io benchmarks): 1.5x",
        Some(1.5),
    );
    let Some((unix, tcp)) = uds_tcp_pair(paths) else {
        let why = "needs a kernel-serve path with proto = \"unix\" and one with \"tcp\" (the \
                   default lab has both)";
        return [lat.missing(why), thr.missing(why)];
    };
    let names = format!("{} over {}, paired rounds", tcp.name, unix.name);
    let lat = match paired(tcp, unix, Pct::P50) {
        Some(r) => lat.measured(of_ratio(&r), names),
        None => lat.missing("the two paths share no measured round"),
    };
    let rates = |p: &PathResult| -> Vec<(u32, f64)> {
        p.rounds
            .iter()
            .filter_map(|r| Some((r.round, r.rate_per_s?)))
            .collect()
    };
    let (u, t) = (rates(unix), rates(tcp));
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (round, v) in &u {
        if let Some((_, w)) = t.iter().find(|(r, _)| r == round) {
            x.push(*v);
            y.push(*w);
        }
    }
    let thr = match paired_ratio(&x, &y) {
        Some(r) => thr.measured(
            of_ratio(&r),
            format!(
                "{} over {}: requests/s of one request in flight (ping-pong), paired rounds; \
                 redis measured pipelined load, so this is the latency-bound rate",
                unix.name, tcp.name
            ),
        ),
        None => thr.missing("no round of the two paths reported a rate"),
    };
    [lat, thr]
}

/// The fast path's comparison with a kernel path at p50: the scenario's pair, memif first.
fn bypass_verdict<'a>(paths: &[PathResult], verdicts: &'a [Verdict]) -> Option<&'a Verdict> {
    let kind = |n: &str| paths.iter().find(|p| p.name == n).map(|p| p.kind.as_str());
    let fits = |v: &&Verdict, memif: bool| {
        v.what == Pct::P50.label()
            && kind(&v.b) == Some("kernel-serve")
            && match kind(&v.a) {
                Some("fastpath-memif") => memif,
                Some("fastpath") => !memif,
                _ => false,
            }
    };
    verdicts
        .iter()
        .find(|v| fits(v, true))
        .or_else(|| verdicts.iter().find(|v| fits(v, false)))
}

fn kernel_vs_bypass(paths: &[PathResult], verdicts: &[Verdict]) -> TaxRow {
    let row = TaxRow::new(
        "the kernel on the path: kernel round trip over the bypass one (p50)",
        "Demikernel Catnip echo 5x lower latency than Linux in an Azure VM (SOSP 2021): 5x",
        Some(5.0),
    );
    let Some(v) = bypass_verdict(paths, verdicts) else {
        return row.missing(
            "needs a fast-path path compared with a kernel-serve path (`compare`, or the \
             default pairs)",
        );
    };
    let by_name = |n: &str| paths.iter().find(|p| p.name == n);
    let (Some(a), Some(b)) = (by_name(&v.a), by_name(&v.b)) else {
        return row.missing("the compared paths are not in the results");
    };
    match paired(a, b, Pct::P50) {
        Some(r) => row.measured(
            of_ratio(&inverse(&r)),
            format!("{} over {}, paired rounds", b.name, a.name),
        ),
        None => row.missing("the two paths share no measured round"),
    }
}

/// Per-hop cost of each chain kind at p99 (the published figure's percentile).
fn hops(chains: &[ChainFig]) -> Vec<TaxRow> {
    let published = "Istio 1.20 sidecar pair per hop: +0.228 ms p90, +0.298 ms p99 \
                     (istio.io, 1 kB http/1.1, 1000 rps, mTLS)";
    let mut rows = Vec::new();
    for (hop, what) in [
        ("kernel", "a user-space proxy hop on kernel sockets"),
        ("fastpath", "a fast-path relay hop"),
    ] {
        let claim = format!("the sidecar tax: {what}, added p99 per hop");
        let row = TaxRow::new(&claim, published, Some(298_000.0));
        let slope = chains.iter().find(|c| c.hop == hop).and_then(|c| {
            let s = c.slopes.iter().find(|s| s.what == Pct::P99.label())?;
            Some((c, s.ns_per_hop.as_ref()?))
        });
        rows.push(match slope {
            Some((c, m)) => row.measured(
                of_median_ns(m),
                format!(
                    "chain {} ({}): slope of p99 against depth",
                    c.chain, c.placement
                ),
            ),
            None => row.missing(format!(
                "no {hop} chain in this scenario (configs/lab-chain.toml measures it)"
            )),
        });
    }
    rows
}

/// The client's summary of a path's last round (None for sockperf and the floor).
fn summary(p: &PathResult) -> Option<LoadSummary> {
    if p.rounds.is_empty() {
        return None;
    }
    let v = serde_json::to_value(p.client_report.as_ref()?).ok()?;
    serde_json::from_value(v).ok()
}

/// A proportion `k` of `n` in percent, with its 95% Wilson score interval.
fn proportion(k: f64, n: f64, what: &str) -> Option<Measured> {
    if n <= 0.0 {
        return None;
    }
    let z = 1.96f64;
    let p = k / n;
    let d = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / d;
    let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / d;
    Some(Measured {
        value: 100.0 * p,
        lo: 100.0 * (centre - half).max(0.0),
        hi: 100.0 * (centre + half).min(1.0),
        unit: "%".into(),
        how: format!("{k:.0} of {n:.0} {what}, 95% Wilson interval"),
    })
}

/// Fan-out paths without hedging, by their K.
fn fanouts(paths: &[PathResult]) -> Vec<(&PathResult, LoadSummary)> {
    paths
        .iter()
        .filter_map(|p| Some((p, summary(p)?)))
        .filter(|(_, s)| s.fanout.as_ref().is_some_and(|f| f.hedge.is_none()))
        .collect()
}

fn fanout(paths: &[PathResult]) -> TaxRow {
    let row = TaxRow::new(
        "tail amplification: share of 9-way fan-out requests slower than a sub-request's p99",
        "1 - (1 - 1%)^9 = 8.6% (\"The Tail at Scale\": one slow in 100, nine services)",
        Some(8.6),
    );
    let all = fanouts(paths);
    let Some((p, s)) = all
        .iter()
        .max_by_key(|(_, s)| s.fanout.as_ref().map_or(0, |f| f.fanout))
    else {
        return row
            .missing("no fan-out path in this scenario (configs/lab-tails.toml measures it)");
    };
    let f = s.fanout.as_ref().expect("filtered");
    let (slow, n, what, p_sub) = if let Some((rounds, t)) = pooled(p) {
        let what = format!("logical requests ({rounds} rounds pooled)");
        (t.slow_logical, t.logical, what, ratio(t.slow_sub, t.sub))
    } else {
        // A results.json from before rounds kept their counts: the last round's summary.
        let n = s.latency.count;
        let slow = (f.p_logical * n as f64).round() as u64;
        (slow, n, "logical requests (last round)".into(), f.p_sub)
    };
    let p_model = 1.0 - (1.0 - p_sub).powi(f.fanout as i32);
    match proportion(slow as f64, n as f64, &what) {
        Some(m) => row.measured(
            m,
            format!(
                "{} (K = {}): a sub-request was slower than its round's p99 (last round {}) in \
                 {:.2}% of cases here, for which the independent model gives {:.2}%",
                p.name,
                f.fanout,
                fmt_ns(f.threshold_ns as f64),
                100.0 * p_sub,
                100.0 * p_model
            ),
        ),
        None => row.missing(format!("{}: no logical request measured", p.name)),
    }
}

/// A path's fan-out counts summed over its measured rounds, and how many rounds kept them
/// (None: none did).
fn pooled(p: &PathResult) -> Option<(u32, RoundTails)> {
    let mut sum = RoundTails::default();
    let mut rounds = 0;
    for t in p
        .rounds
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|r| r.tails.as_ref())
    {
        rounds += 1;
        sum.logical += t.logical;
        sum.slow_logical += t.slow_logical;
        sum.sub += t.sub;
        sum.slow_sub += t.slow_sub;
        sum.duplicates += t.duplicates;
        sum.firsts += t.firsts;
    }
    (rounds > 0).then_some((rounds, sum))
}

fn ratio(k: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        k as f64 / n as f64
    }
}

/// The hedged path to quote (the one hedging after the p95, as the paper does, else the
/// first) and the unhedged path with the same fan-out it is measured against.
fn hedge_pair(paths: &[PathResult]) -> Option<(&PathResult, LoadSummary, &PathResult)> {
    let hedged: Vec<(&PathResult, LoadSummary)> = paths
        .iter()
        .filter_map(|p| Some((p, summary(p)?)))
        .filter(|(_, s)| s.fanout.as_ref().is_some_and(|f| f.hedge.is_some()))
        .collect();
    let after = |s: &LoadSummary| {
        s.fanout
            .as_ref()
            .and_then(|f| f.hedge.as_ref())
            .map(|h| h.after.clone())
    };
    let (p, s) = hedged
        .iter()
        .find(|(_, s)| after(s).as_deref() == Some("p95"))
        .or_else(|| hedged.first())?;
    let k = s.fanout.as_ref()?.fanout;
    let base = fanouts(paths)
        .into_iter()
        .filter(|(b, bs)| {
            bs.fanout.as_ref().is_some_and(|f| f.fanout == k) && b.topology == p.topology
        })
        .map(|(b, _)| b)
        .next()?;
    Some((p, s.clone(), base))
}

fn hedging(paths: &[PathResult]) -> [TaxRow; 2] {
    let gain = TaxRow::new(
        "hedged requests: p99.9 without hedging over p99.9 with it",
        "BigTable 1000-key read, hedged after the p95: p99.9 1800 -> 74 ms, 24x (\"The Tail at \
         Scale\", CACM 2013)",
        Some(1800.0 / 74.0),
    );
    let load = TaxRow::new(
        "hedged requests: the extra load (duplicates per 100 requests)",
        "2% more requests (same paper)",
        Some(2.0),
    );
    let Some((hedged, s, base)) = hedge_pair(paths) else {
        let why = "no hedged path with an unhedged twin in this scenario (configs/lab-tails.toml \
                   measures it)";
        return [gain.missing(why), load.missing(why)];
    };
    let h = s
        .fanout
        .as_ref()
        .and_then(|f| f.hedge.as_ref())
        .expect("hedge_pair");
    let gain = match paired(base, hedged, Pct::P999) {
        Some(r) => gain.measured(
            of_ratio(&r),
            format!(
                "{} over {} (hedge after {}), paired rounds",
                base.name, hedged.name, h.after
            ),
        ),
        None => gain.missing("the two paths share no measured round"),
    };
    let (duplicates, firsts, what) =
        if let Some((rounds, t)) = pooled(hedged).filter(|(_, t)| t.firsts > 0) {
            let what = format!("first sub-requests ({rounds} rounds pooled)");
            (t.duplicates as f64, t.firsts as f64, what)
        } else {
            let firsts = if h.duplicates_pct > 0.0 {
                100.0 * h.duplicates as f64 / h.duplicates_pct
            } else {
                0.0
            };
            let what = "first sub-requests (last round)".to_string();
            (h.duplicates as f64, firsts, what)
        };
    let load = match proportion(duplicates, firsts, &what) {
        Some(m) => load.measured(
            m,
            format!(
                "{}: the last round's {} duplicates, {} answered first, {} wasted",
                hedged.name, h.duplicates, h.won, h.wasted
            ),
        ),
        None => load.missing(format!("{}: no duplicate sent", hedged.name)),
    };
    [gain, load]
}

/// encode + decode per record, ns, from djkoloski/rust_serialization_benchmark (REFERENCES F).
fn published_marshaling(c: Codec) -> (&'static str, f64) {
    match c {
        Codec::Json => (
            "serde_json 371 ns encode + 618 decode (rust_serialization_benchmark, log, 183 B)",
            989.0,
        ),
        Codec::Protobuf => (
            "prost 95 ns encode + 342 decode (rust_serialization_benchmark, log, 88 B)",
            437.0,
        ),
        Codec::Flatbuffers => (
            "flatbuffers 104 ns encode + 220 validated read (rust_serialization_benchmark, log)",
            324.0,
        ),
    }
}

/// Per codec path: its round trip over the raw echo of the same message size on the same
/// path (`<name>-echo-<message>` for `<name>-<codec>-<message>`), paired by round. The
/// difference is the server's decode, reply and encode: the published encode + decode.
fn marshaling(paths: &[PathResult]) -> Vec<TaxRow> {
    let mut rows = Vec::new();
    for (p, s) in paths.iter().filter_map(|p| Some((p, summary(p)?))) {
        let Some(c) = &s.codec else { continue };
        let (published, ns) = published_marshaling(c.codec);
        // Kernel and fast-path servers transcode with the same code, so the row says which
        // it measured: the network cost it sits next to differs by the stack.
        let server = if p.kind.starts_with("fastpath") {
            "fast path"
        } else {
            "kernel"
        };
        let claim = format!(
            "the serialization tax: {} ({} message, {server} server), added round trip p50",
            c.codec, c.message
        );
        let row = TaxRow::new(&claim, published, Some(ns));
        let echo_name = p.name.replace(&format!("-{}-", c.codec), "-echo-");
        let Some(echo) = paths
            .iter()
            .find(|e| e.name == echo_name && e.name != p.name)
        else {
            rows.push(row.missing(format!("no raw echo path {echo_name} to subtract")));
            continue;
        };
        let e = echo.round_values(Pct::P50);
        let diffs: Vec<f64> = p
            .round_values(Pct::P50)
            .iter()
            .filter_map(|(k, v)| Some(v - e.iter().find(|(j, _)| j == k)?.1))
            .collect();
        rows.push(match median_interval(&diffs) {
            Some(m) => row.measured(
                Measured {
                    value: m.median,
                    lo: m.lo,
                    hi: m.hi,
                    unit: "ns".into(),
                    how: format!(
                        "median of {} paired rounds' differences ({}, {:.0}% coverage)",
                        diffs.len(),
                        match m.method {
                            RatioMethod::Range => "range",
                            RatioMethod::OrderStatistic => "order statistics",
                        },
                        m.coverage * 100.0
                    ),
                },
                format!(
                    "{} minus {}; the client's own encode p50 {} and decode p50 {} are outside \
                     the round trip",
                    p.name,
                    echo.name,
                    fmt_ns(c.encode.p50_ns as f64),
                    fmt_ns(c.decode.p50_ns as f64)
                ),
            ),
            None => row.missing("the two paths share no measured round"),
        });
    }
    if rows.is_empty() {
        let (published, ns) = published_marshaling(Codec::Json);
        rows.push(
            TaxRow::new(
                "the serialization tax: a codec's added round trip p50",
                published,
                Some(ns),
            )
            .missing("no codec path in this scenario (configs/lab-tails.toml measures it)"),
        );
    }
    rows
}

/// "1.23x [1.10, 1.40]" / "52 [50, 60] ns" / "8.60% [7.90, 9.30]".
pub fn fmt_measured(m: &Measured) -> String {
    match m.unit.as_str() {
        "ns" => {
            let (div, unit) = ns_scale(m.value);
            let f = |v: f64| {
                let x = v / div;
                if x.abs() >= 100.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x:.1}")
                }
            };
            format!("{} [{}, {}] {unit}", f(m.value), f(m.lo), f(m.hi))
        }
        "%" => format!("{:.2}% [{:.2}, {:.2}]", m.value, m.lo, m.hi),
        _ => format!(
            "{}x [{}, {}]",
            fmt_ratio(m.value),
            fmt_ratio(m.lo),
            fmt_ratio(m.hi)
        ),
    }
}

/// One figure of ns in the unit it reads best in.
pub fn fmt_ns(ns: f64) -> String {
    let (div, unit) = ns_scale(ns);
    let x = ns / div;
    if x.abs() >= 100.0 {
        format!("{x:.0} {unit}")
    } else {
        format!("{x:.1} {unit}")
    }
}

/// The unit a figure of `ns` reads best in: ns below 10 us, us below 10 ms, ms above.
fn ns_scale(ns: f64) -> (f64, &'static str) {
    let a = ns.abs();
    if a < 10_000.0 {
        (1.0, "ns")
    } else if a < 10_000_000.0 {
        (1e3, "us")
    } else {
        (1e6, "ms")
    }
}

#[cfg(test)]
mod tests;
