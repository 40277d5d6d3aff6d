//! "The sidecar tax: latency against chain depth": per chain where its hops ran, each
//! depth's figures and relay-count check, the added latency per hop (slopes with intervals)
//! next to the published per-hop figures, and the tail amplification along the chain.

use std::fmt::Write as _;

use super::cell;
use crate::lab::chain::figures::{AmpRow, ChainFig, DepthRow, MedianFig};
use crate::lab::results::{LabResults, Status};
use crate::stats::interval::CONFIDENCE;

/// The chain plot's file, drawn in this section rather than with the other plots.
pub const PLOT: &str = "chain-depth.svg";

/// Signed microseconds from ns, three significant digits or so.
fn sus(ns: f64) -> String {
    let v = ns / 1000.0;
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// `median [lo, hi]` in us.
fn fig_us(f: &Option<MedianFig>) -> String {
    f.as_ref().map_or("-".into(), |m| {
        format!("{} [{}, {}]", sus(m.median), sus(m.lo), sus(m.hi))
    })
}

fn fig_ratio(f: &Option<MedianFig>) -> String {
    f.as_ref().map_or("-".into(), |m| {
        format!("{:.2}x [{:.2}, {:.2}]", m.median, m.lo, m.hi)
    })
}

fn how(m: &MedianFig) -> String {
    match m.method.as_str() {
        "range" => format!(
            "range of {} rounds, {:.0}% coverage",
            m.n,
            m.coverage * 100.0
        ),
        _ => format!(
            "order statistics over {} rounds, {:.0}%",
            m.n,
            m.coverage * 100.0
        ),
    }
}

fn depth_row(s: &mut String, c: &ChainFig, d: &DepthRow) {
    let l = d.latency.as_ref();
    let v = |f: fn(&crate::lab::results::Latency) -> u64| {
        l.map_or("-".into(), |l| format!("{:.2}", f(l) as f64 / 1000.0))
    };
    let counts = match (d.depth, d.counts_disagreed) {
        (0, _) => "no relay".to_string(),
        (_, 0) if d.counts_matched == 0 => "not checked (no round ran)".into(),
        (_, 0) => format!("match the client's in {} rounds", d.counts_matched),
        (_, bad) => format!(
            "**disagree in {bad} round{}: failed** (see the path's error)",
            if bad == 1 { "" } else { "s" }
        ),
    };
    let status = if d.status == Status::Ok {
        String::new()
    } else {
        format!(" ({})", d.status.as_str())
    };
    let _ = writeln!(
        s,
        "| {} | {} | {}{status} | {} | {} | {} | {counts} |",
        cell(&c.chain),
        d.depth,
        cell(&d.path),
        v(|l| l.p50_ns),
        v(|l| l.p99_ns),
        v(|l| l.p999_ns)
    );
}

fn depths(s: &mut String, chains: &[ChainFig]) {
    let _ = writeln!(
        s,
        "| chain | depth | path | p50 us | p99 us | p99.9 us | relay counts |\n|---|---:|---|---:|---:|---:|---|"
    );
    for c in chains {
        for d in &c.depths {
            depth_row(s, c, d);
        }
    }
    let _ = writeln!(s);
}

fn slopes(s: &mut String, chains: &[ChainFig]) {
    let _ = writeln!(s, "### Added latency per hop\n");
    let _ = writeln!(
        s,
        "The least-squares slope of each round's percentile against depth (round i of every \
         depth ran in the same pass of the interleaved schedule), one slope per round; the cell \
         is the median of the rounds' slopes and its interval: for fewer than 6 rounds the range \
         of the slopes, with its real coverage 1 - 2^(1-n), from 6 rounds an order-statistic \
         interval of the median (at least 95%), as the lab does for ratios. An interval that \
         includes 0 is no measurable cost per hop.\n"
    );
    let _ = writeln!(
        s,
        "| chain | hop | p50 us/hop | p99 us/hop | p99.9 us/hop | interval |\n|---|---|---:|---:|---:|---|"
    );
    for c in chains {
        let m = c.slopes.iter().find_map(|f| f.ns_per_hop.as_ref());
        let cells: Vec<String> = c.slopes.iter().map(|f| fig_us(&f.ns_per_hop)).collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            cell(&c.chain),
            c.hop,
            cells.join(" | "),
            m.map_or("no round with two depths".into(), how)
        );
    }
    let _ = writeln!(s);
    published(s);
    for c in chains {
        let _ = writeln!(s, "- {}", per_hop_words(c));
    }
    let _ = writeln!(s);
}

/// REFERENCES.md F, in microseconds: what a hop costs in the meshes people deploy.
fn published(s: &mut String) {
    let _ = writeln!(
        s,
        "Published per-hop figures (REFERENCES.md F), in the same unit. Their hop is a pair of \
         proxies on a network path (HTTP, often mTLS); ours is one relay on this machine, so \
         these bound what a mesh adds rather than match our setup:\n"
    );
    let _ = writeln!(
        s,
        "| source | one hop | median us | p90 us | p99 us |\n|---|---|---:|---:|---:|\n\
         | Istio 1.20 performance page | sidecar pair (http/1.1, 1 kB, 1000 rps, mTLS) | | +228 | +298 |\n\
         | Istio 1.22 performance page | ambient L4, two ztunnels | | +170 | +200 |\n\
         | Istio 1.3-1.11 pages | sidecar pair (1 ms histogram buckets) | | +2600 to +7000 | |\n\
         | Linkerd blog, 2021-11-29 (2000 rps) | Linkerd 2.11 / Istio 1.12 mesh, added median | +6000 / +17000 | | |\n"
    );
}

/// One sentence per chain: its p99 per hop against Istio 1.20's +298 us p99.
fn per_hop_words(c: &ChainFig) -> String {
    let p99 = c.slopes.iter().find(|f| f.what == "p99");
    let p50 = c.slopes.iter().find(|f| f.what == "p50");
    let say = |f: Option<&crate::lab::chain::figures::SlopeFig>, what: &str| match f
        .and_then(|f| f.ns_per_hop.as_ref())
    {
        None => format!("no {what} slope"),
        Some(m) if m.includes(0.0) => format!(
            "no measurable {what} cost per hop ({} us, interval includes 0)",
            sus(m.median)
        ),
        Some(m) => format!(
            "{what} {}{} us per hop [{}, {}]",
            if m.median >= 0.0 { "+" } else { "" },
            sus(m.median),
            sus(m.lo),
            sus(m.hi)
        ),
    };
    let mut line = format!(
        "**{}** ({} hops): {}; {}",
        c.chain,
        c.hop,
        say(p50, "p50"),
        say(p99, "p99")
    );
    if let Some(m) = p99
        .and_then(|f| f.ns_per_hop.as_ref())
        .filter(|m| m.lo > 0.0)
    {
        line += &format!(
            ", {:.0}x below Istio 1.20's +298 us p99 per sidecar pair",
            298_000.0 / m.median
        );
    }
    if p99
        .and_then(|f| f.ns_per_hop.as_ref())
        .is_some_and(|m| m.coverage < CONFIDENCE)
    {
        line += " (below 95% coverage: a hint, not a verdict)";
    }
    line + "."
}

/// What one amplification row says, in words.
fn reading(a: &AmpRow) -> String {
    let Some(added) = &a.added_ns else {
        return "not measured".into();
    };
    if added.includes(0.0) {
        return "no measurable difference from depth 0".into();
    }
    let one_hop_nothing = a.n_one_hop_ns.as_ref().is_none_or(|e| e.lo <= 0.0);
    if one_hop_nothing {
        return "one hop adds nothing measurable here (its interval reaches 0): no ratio".into();
    }
    let words = match &a.ratio {
        None => return "one hop adds nothing measurable here: no ratio".into(),
        Some(r) if r.includes(1.0) => {
            format!("as {} single hops (no measurable amplification)", a.depth)
        }
        Some(r) if r.lo > 1.0 => format!("amplified: more than {} single hops", a.depth),
        Some(_) => format!("less than {} single hops", a.depth),
    };
    let hint = if a.ratio.as_ref().is_some_and(|r| r.coverage < CONFIDENCE) {
        "; below 95% coverage: a hint"
    } else {
        ""
    };
    format!("{words}{hint}")
}

/// The ratio, and over how many rounds when some had no one-hop figure above 0.
fn ratio_cell(a: &AmpRow) -> String {
    match (&a.ratio, a.rounds_without_one_hop) {
        (Some(r), k) if k > 0 => format!("{} ({} of {} rounds)", fig_ratio(&a.ratio), r.n, r.n + k),
        _ => fig_ratio(&a.ratio),
    }
}

fn amplification(s: &mut String, chains: &[ChainFig]) {
    let _ = writeln!(s, "### Tail amplification along the chain\n");
    let _ = writeln!(
        s,
        "Per round: added = p(N) - p(0), N x one hop = N (p(1) - p(0)), ratio = added / (N x one \
         hop); each cell is the median over rounds with its interval (as above). A ratio whose \
         interval includes 1 grows like N single hops; above 1 the tail is amplified by the \
         chain. Rounds whose one-hop figure is not above 0 give no ratio.\n"
    );
    if !chains
        .iter()
        .any(|c| c.amplification.iter().any(|a| a.depth >= 2))
    {
        let _ = writeln!(
            s,
            "No chain here is deeper than one hop: nothing to amplify.\n"
        );
        return;
    }
    let _ = writeln!(
        s,
        "| chain | pct | N | added us | N x one hop us | ratio | reading |\n|---|---|---:|---:|---:|---:|---|"
    );
    for c in chains {
        for a in c.amplification.iter().filter(|a| a.depth >= 2) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(&c.chain),
                a.what,
                a.depth,
                fig_us(&a.added_ns),
                fig_us(&a.n_one_hop_ns),
                ratio_cell(a),
                reading(a)
            );
        }
    }
    let _ = writeln!(s);
}

pub fn section(s: &mut String, r: &LabResults) {
    if r.chains.is_empty() {
        return;
    }
    let _ = writeln!(s, "## The sidecar tax: latency against chain depth\n");
    let _ = writeln!(
        s,
        "Each chain puts N relays between the client and the server for every N of its depths; \
         each depth is a path of its own in the interleaved rounds, depth 0 the bare server with \
         the same client. Where the hops ran:\n"
    );
    for c in &r.chains {
        let _ = writeln!(s, "- **{}** ({} hops): {}.", c.chain, c.hop, c.placement);
    }
    let _ = writeln!(s);
    if r.plots.iter().any(|p| p == PLOT) {
        let _ = writeln!(s, "![{PLOT}]({PLOT})\n");
    }
    depths(s, &r.chains);
    slopes(s, &r.chains);
    amplification(s, &r.chains);
}
