//! The round-trip table (merged percentiles, their 95% intervals and the per-round spread,
//! the floor multiple) and the latency-versus-load table of the sweeps.

use std::fmt::Write as _;

use super::{cell, rate, us};
use crate::lab::results::{LabResults, PathResult, Pct, Status, SweepPoint};
use crate::stats::interval::fmt_ratio;

/// "6.95 [6.90, 7.01] (6.20..7.90)": merged value, its 95% interval, the rounds' min..max.
fn pct_cell(p: &PathResult, what: Pct) -> String {
    let Some(l) = &p.latency else {
        return String::new();
    };
    let Some(iv) = &p.intervals else {
        return us(what.of(l));
    };
    let c = iv.get(what);
    let mut s = us(c.value_ns);
    if c.enough {
        let _ = write!(s, " [{}, {}]", us(c.lo_ns), us(c.hi_ns));
    } else {
        s.push_str(" [too few samples]");
    }
    if c.rounds > 1 {
        let _ = write!(s, " ({}..{})", us(c.round_min_ns), us(c.round_max_ns));
    }
    s
}

fn status_cell(p: &PathResult) -> String {
    let mut s = match p.status {
        Status::Ok if !p.warnings.is_empty() => "ok, **warning**".to_string(),
        Status::Ok => "ok".to_string(),
        st => format!("**{}**", st.as_str()),
    };
    if p.noisy_rounds > 0 {
        let _ = write!(
            s,
            ", **noisy** ({} of {} rounds)",
            p.noisy_rounds,
            p.rounds.len()
        );
    }
    s
}

fn row(p: &PathResult) -> String {
    let max = p.latency.as_ref().map(|l| us(l.max_ns)).unwrap_or_default();
    let thr = match (&p.throughput, p.rate_per_s) {
        (Some(t), _) => format!(
            "{} pkt (testpmd {}, ratio {:.3})",
            rate(t.bypass_pps),
            rate(t.testpmd_pps),
            t.ratio
        ),
        (None, Some(r)) => format!("{} req", rate(r)),
        (None, None) => String::new(),
    };
    let loss = p
        .loss
        .as_ref()
        .map(|l| format!("{} of {} ({:.3}%)", l.lost, l.sent, l.percent()))
        .unwrap_or_default();
    // The floor is the first limit path; any other (another layout) is a multiple of it.
    let floor = match (&p.floor_multiple, p.kind.as_str()) {
        (Some(f), _) => format!(
            "{}x [{}, {}]",
            fmt_ratio(f.median),
            fmt_ratio(f.lo),
            fmt_ratio(f.hi)
        ),
        (None, "limit") if p.latency.is_some() => "the floor".to_string(),
        _ => String::new(),
    };
    let rounds = match (p.rounds.len(), p.status) {
        (0, Status::Ok) => "1".to_string(),
        (0, _) => String::new(),
        (n, _) => n.to_string(),
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell(&p.name),
        status_cell(p),
        rounds,
        pct_cell(p, Pct::P50),
        pct_cell(p, Pct::P99),
        pct_cell(p, Pct::P999),
        max,
        floor,
        cell(&thr),
        cell(&loss),
        p.client
    )
}

pub fn round_trips(s: &mut String, r: &LabResults) {
    let _ = writeln!(s, "## Round trips\n");
    let _ = writeln!(
        s,
        "Latency is the full round trip in microseconds (client send to reply received; \
         coordinated-omission corrected in open loop). Each latency path ran its rounds \
         interleaved with the others (A B C .. A B C ..), a fresh server and client each round. \
         A cell reads `value [lo, hi] (min..max)`: the percentile of all rounds merged, its 95% \
         order-statistic interval (how well the merged run pins it), and the lowest and highest \
         per-round value (how well the machine reproduces it; the wider of the two is what a \
         comparison must beat). \"x floor\" is the p50 as a multiple of the shared-memory floor \
         with the range of the paired per-round ratios. Throughput is the client's achieved \
         requests/s (mean of the rounds; for a throughput path: packets/s). Loss: requests never \
         answered, all rounds. **noisy**: a probe next to a round lost more than {:.1}% of a CPU \
         (see Platform).\n",
        r.platform.noisy_lost_pct
    );
    let _ = writeln!(
        s,
        "| path | status | rounds | p50 us | p99 us | p99.9 us | max us | x floor | throughput | loss | client |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|");
    for p in &r.paths {
        let _ = writeln!(s, "{}", row(p));
    }
    let _ = writeln!(s);
}

/// A percentile of a sweep point; at or above the censoring point it reads ">= timeout".
fn censored(ns: u64, pt: &SweepPoint) -> String {
    match pt.lost_recorded_at_ns {
        Some(t) if pt.is_censored(ns) => format!(">= {} (timeout)", us(t)),
        _ => us(ns),
    }
}

fn sweep_row(p: &PathResult, pt: &SweepPoint) -> String {
    let l = &pt.latency;
    let un = |f: fn(&crate::lab::results::Latency) -> u64| {
        pt.uncorrected
            .as_ref()
            .map_or(String::new(), |u| format!(" ({})", us(f(u))))
    };
    let lag = match &pt.send_lag {
        Some(g) if g.behind => format!(
            "**client fell behind** (lag p99 {} us, max {} us)",
            us(g.p99_ns),
            us(g.max_ns)
        ),
        Some(g) => format!("lag p99 {} us", us(g.p99_ns)),
        None => String::new(),
    };
    format!(
        "| {} | {} | {} | {}{} | {}{} | {}{} | {} | {} | {} |",
        cell(&p.name),
        rate(pt.target_rate),
        rate(pt.achieved_rate),
        censored(l.p50_ns, pt),
        un(|u| u.p50_ns),
        censored(l.p99_ns, pt),
        un(|u| u.p99_ns),
        censored(l.p999_ns, pt),
        un(|u| u.p999_ns),
        censored(l.max_ns, pt),
        pt.loss.lost,
        lag
    )
}

fn model_rows(s: &mut String, sweeps: &[&PathResult]) {
    let pts: Vec<(&PathResult, &SweepPoint)> = sweeps
        .iter()
        .flat_map(|p| p.sweep.iter().map(move |pt| (*p, pt)))
        .filter(|(_, pt)| pt.platform_model.is_some() && pt.latency.count > 0)
        .collect();
    if pts.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "What the platform alone explains: the probe taken before the sweep, replayed at each \
         offered rate (a request sent at an instant inside a gap of either CPU waits out the \
         rest of that gap), plus the path's closed-loop p50. A ratio near 1 means the measured \
         tail is the machine's, not the stack's.\n"
    );
    let _ = writeln!(
        s,
        "| path | offered | sends in a gap > 100 us | model p99 us | measured p99 us | model/measured | model p99.9 us | measured p99.9 us | model/measured |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let ratio = |r: Option<f64>| r.map_or("-".to_string(), |v| format!("{v:.2}x"));
    for (p, pt) in pts {
        let m = pt.platform_model.as_ref().expect("filtered");
        let _ = writeln!(
            s,
            "| {} | {} | {:.3}% | {} | {} | {} | {} | {} | {} |",
            cell(&p.name),
            rate(pt.target_rate),
            m.in_gap_100us * 100.0,
            us(m.model_p99_ns),
            censored(pt.latency.p99_ns, pt),
            ratio(m.ratio_p99),
            us(m.model_p999_ns),
            censored(pt.latency.p999_ns, pt),
            ratio(m.ratio_p999)
        );
    }
    let _ = writeln!(s);
}

pub fn sweeps(s: &mut String, r: &LabResults) {
    let sweeps: Vec<&PathResult> = r.paths.iter().filter(|p| !p.sweep.is_empty()).collect();
    if sweeps.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Latency versus load\n");
    let _ = writeln!(
        s,
        "Open loop, one run per offered rate (sweeps run once, in the first round); the table \
         row above is the lowest rate. Each percentile is corrected (from the intended send \
         time), with the uncorrected value (from the actual send) in parentheses: a corrected \
         tail far above the uncorrected one is time the requests waited to be sent. Lost \
         requests count at the client's timeout: a percentile reading \">= timeout\" is at least \
         that, and the latency-versus-load plot leaves it out. \"client\" is the client's own schedule lag; \"fell behind\" means the achieved \
         rate is the client's, not the server's.\n"
    );
    let _ = writeln!(
        s,
        "| path | offered | achieved | p50 us | p99 us | p99.9 us | max us | lost | client |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for p in &sweeps {
        for pt in &p.sweep {
            if pt.latency.count == 0 {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | no reply | | | | {} | |",
                    cell(&p.name),
                    rate(pt.target_rate),
                    rate(pt.achieved_rate),
                    pt.loss.lost
                );
                continue;
            }
            let _ = writeln!(s, "{}", sweep_row(p, pt));
        }
    }
    let _ = writeln!(s);
    model_rows(s, &sweeps);
}
