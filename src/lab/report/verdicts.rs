//! The claims: each path as a multiple of the shared-memory floor, the verdict lines of the
//! scenario's comparisons (paired per-round ratios; an interval including 1 is "no measurable
//! difference"), and the paired sockperf cross-check.

use std::fmt::Write as _;

use super::{cell, repeated, us};
use crate::lab::figures::floor_index;
use crate::lab::results::{LabResults, RatioFig};
use crate::stats::interval::fmt_ratio;

pub fn floor(s: &mut String, r: &LabResults) {
    let Some(fi) = floor_index(&r.paths) else {
        if let Some(f) = r.paths.iter().find(|p| p.kind == "limit") {
            let _ = writeln!(
                s,
                "## The floor\n\nThe floor ({}) did not measure: {}.\n",
                f.name,
                f.error.as_deref().unwrap_or("no rounds")
            );
        }
        return;
    };
    let floor = &r.paths[fi];
    let p50 = floor.latency.as_ref().map_or(0, |l| l.p50_ns);
    let _ = writeln!(s, "## The floor\n");
    let _ = writeln!(
        s,
        "**{}**: {}. p50 {} us. No IPC on this machine beats it; each path's p50 as a multiple \
         of it, from the rounds each ran next to the floor's (round i pairs with round i):\n",
        floor.name,
        floor.description,
        us(p50)
    );
    for p in repeated(r).filter(|p| p.name != floor.name) {
        if let Some(m) = &p.floor_multiple {
            let _ = writeln!(
                s,
                "- {}: {}x the shared-memory floor ({})",
                p.name,
                fmt_ratio(m.median),
                m.text
            );
        }
    }
    let _ = writeln!(s);
}

pub fn comparisons(s: &mut String, r: &LabResults) {
    if r.verdicts.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Comparisons\n");
    let _ = writeln!(
        s,
        "A over B from paired rounds (A's round i over B's round i; they ran minutes apart at \
         most): the median ratio and, for fewer than 6 rounds, the range of the per-round ratios \
         with its real coverage (75% for 3 rounds), else a 95% order-statistic interval of the \
         median. When the interval includes 1 the line says \"no \
         measurable difference\", whatever the median.\n"
    );
    let floor = floor_index(&r.paths).map(|i| r.paths[i].name.as_str());
    for v in r.verdicts.iter().filter(|v| Some(v.b.as_str()) != floor) {
        let _ = writeln!(s, "- {}", v.text);
    }
    let vs_floor: Vec<_> = r
        .verdicts
        .iter()
        .filter(|v| Some(v.b.as_str()) == floor)
        .collect();
    if !vs_floor.is_empty() {
        let _ = writeln!(s, "\nAgainst the floor:\n");
        for v in vs_floor {
            let _ = writeln!(s, "- {}", v.text);
        }
    }
    let _ = writeln!(s);
}

fn ratio_cell(f: &Option<RatioFig>) -> String {
    f.as_ref().map_or(String::new(), |r| {
        format!(
            "{}x [{}, {}]",
            fmt_ratio(r.median),
            fmt_ratio(r.lo),
            fmt_ratio(r.hi)
        )
    })
}

pub fn cross_checks(s: &mut String, r: &LabResults) {
    let checked: Vec<_> = repeated(r).filter(|p| p.cross_check.is_some()).collect();
    if checked.is_empty() {
        return;
    }
    let _ = writeln!(s, "## Two clients, one answer\n");
    let _ = writeln!(
        s,
        "In every round of these paths the unmodified sockperf client measured the same server \
         process as our client, right after it (or before: the order alternates by round). The \
         ratio is ours over sockperf per round: the median and the range over the rounds. \
         Target: within 10% at p50.\n"
    );
    let _ = writeln!(
        s,
        "| path | rounds | p50 ours/sockperf | p99 | p99.9 | within 10% at p50 |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---|");
    for p in checked {
        let c = p.cross_check.as_ref().expect("filtered");
        let met = match c.p50_within_10pct {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "",
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {met} |",
            cell(&p.name),
            c.p50.as_ref().map_or(0, |r| r.n),
            ratio_cell(&c.p50),
            ratio_cell(&c.p99),
            ratio_cell(&c.p999)
        );
    }
    let _ = writeln!(s);
}
