//! The IPC tax table that opens report.md (issue 14): each claim of the article the project
//! grew from ("the IPC tax of microservices": system calls, UDS against TCP, the kernel on the
//! path, sidecar hops, fan-out, hedging, marshaling) next to the figure this run measured, with
//! its interval, and the ratio of the two. The published figures are REFERENCES F's; a claim
//! this scenario did not measure says which scenario does, rather than leaving a blank.

use serde::{Deserialize, Serialize};

use super::chain::figures::{ChainFig, MedianFig};
use super::figures::paired;
use super::results::{LabResults, PathResult, Pct, Verdict};
use crate::contract::serve::KernelServeFinal;
use crate::options::Proto;
use crate::stats::interval::{fmt_ratio, paired_ratio, Ratio};

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

    fn measured(mut self, m: Measured, note: String) -> TaxRow {
        self.ratio = self
            .published_value
            .filter(|p| *p > 0.0)
            .map(|p| m.value / p);
        self.measured = Some(m);
        self.note = note;
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
    rows
}

fn syscall(r: &LabResults) -> TaxRow {
    let row = TaxRow::new(
        "a system call, the smallest kernel crossing (getppid)",
        "none published in REFERENCES F; the article's argument is that each crossing costs",
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
