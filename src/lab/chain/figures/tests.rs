//! The chain arithmetic on hand-made rounds: slopes with their intervals, amplification.

use super::*;
use crate::lab::results::Round;

fn lat(p50: u64, p99: u64, p999: u64) -> Latency {
    Latency {
        count: 1000,
        p50_ns: p50,
        p99_ns: p99,
        p999_ns: p999,
        ..Latency::default()
    }
}

fn round(k: u32, l: Option<Latency>) -> Round {
    Round {
        round: k,
        status: if l.is_some() {
            Status::Ok
        } else {
            Status::Failed
        },
        error: None,
        latency: l,
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

/// A chain depth whose round k has p50 = base + depth * per_hop[k], p99 = 3x, p99.9 = 10x.
fn depth(chain: &str, d: u32, base: u64, per_hop: &[u64]) -> PathResult {
    let mut p = PathResult::new(&format!("{chain}-d{d}"), "chain", "t", "load", "x");
    p.status = Status::Ok;
    p.chain = Some(ChainInfo {
        chain: chain.into(),
        hop: "kernel".into(),
        depth: d,
        placement: "here".into(),
    });
    p.rounds = per_hop
        .iter()
        .zip(1..)
        .map(|(h, k)| {
            let v = base + u64::from(d) * h;
            round(k, Some(lat(v, 3 * v, 10 * v)))
        })
        .collect();
    let mid = base + u64::from(d) * per_hop[per_hop.len() / 2];
    p.latency = Some(lat(mid, 3 * mid, 10 * mid));
    p
}

#[test]
fn least_squares_slope() {
    assert_eq!(slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some(2.0));
    // Noise around a line of slope 1: (0,0) (1,2) (2,1) (3,3) -> 0.8.
    let s = slope(&[(0.0, 0.0), (1.0, 2.0), (2.0, 1.0), (3.0, 3.0)]).unwrap();
    assert!((s - 0.8).abs() < 1e-12, "{s}");
    assert_eq!(slope(&[(1.0, 3.0)]), None);
    assert_eq!(
        slope(&[(1.0, 3.0), (1.0, 5.0)]),
        None,
        "one depth twice is no slope"
    );
}

#[test]
fn one_slope_per_round_and_the_median_interval() {
    // Five rounds of 0, 1, 2 hops: the per-hop cost is 1, 2, 3, 4, 5 us by round.
    let hops = [1_000, 2_000, 3_000, 4_000, 5_000];
    let paths: Vec<PathResult> = (0..=2).map(|d| depth("k", d, 10_000, &hops)).collect();
    let c = &chains(&paths)[0];
    assert_eq!(c.depths.len(), 3);
    let p50 = &c.slopes[0];
    assert_eq!(p50.what, "p50");
    assert_eq!(
        p50.per_round_ns,
        [1_000.0, 2_000.0, 3_000.0, 4_000.0, 5_000.0]
    );
    let m = p50.ns_per_hop.as_ref().unwrap();
    assert_eq!((m.median, m.lo, m.hi, m.n), (3_000.0, 1_000.0, 5_000.0, 5));
    assert_eq!(m.method, "range");
    assert!((m.coverage - (1.0 - 0.5f64.powi(4))).abs() < 1e-12);
    assert_eq!(p50.merged_ns_per_hop, Some(3_000.0));
    assert_eq!(
        c.slopes[1].ns_per_hop.as_ref().unwrap().median,
        9_000.0,
        "p99 is 3x"
    );
    // Six rounds reach the order-statistic interval.
    let six: Vec<PathResult> = (0..=1)
        .map(|d| depth("k", d, 10_000, &[1_000, 2_000, 3_000, 4_000, 5_000, 6_000]))
        .collect();
    let m = chains(&six)[0].slopes[0].ns_per_hop.clone().unwrap();
    assert_eq!(m.method, "order-statistic");
    assert!(
        m.coverage >= 0.95 && m.includes(3_500.0) && !m.includes(0.0),
        "{m:?}"
    );
}

#[test]
fn a_failed_round_leaves_its_depth_out_of_that_rounds_slope() {
    let mut paths: Vec<PathResult> = (0..=2)
        .map(|d| depth("k", d, 10_000, &[1_000, 1_000]))
        .collect();
    paths[2].rounds[1] = round(2, None);
    let c = &chains(&paths)[0];
    // Round 2 still has depths 0 and 1.
    assert_eq!(c.slopes[0].per_round_ns, [1_000.0, 1_000.0]);
    paths[1].rounds[1] = round(2, None);
    let c = &chains(&paths)[0];
    assert_eq!(
        c.slopes[0].per_round_ns,
        [1_000.0],
        "round 2 has one depth left: no slope"
    );
}

#[test]
fn amplification_against_n_single_hops() {
    // Linear chain: p99 at depth N is exactly N one-hop figures -> ratio 1 at every N.
    let linear: Vec<PathResult> = (0..=3)
        .map(|d| depth("lin", d, 10_000, &[1_000, 2_000]))
        .collect();
    let c = &chains(&linear)[0];
    let p99: Vec<&AmpRow> = c.amplification.iter().filter(|a| a.what == "p99").collect();
    assert_eq!(p99.iter().map(|a| a.depth).collect::<Vec<_>>(), [1, 2, 3]);
    let at3 = p99[2];
    assert_eq!(at3.added_ns.as_ref().unwrap().median, 3.0 * 3.0 * 1_500.0);
    let r = at3.ratio.as_ref().unwrap();
    assert!(
        (r.lo - 1.0).abs() < 1e-12 && (r.hi - 1.0).abs() < 1e-12,
        "{r:?}"
    );
    // A tail that grows faster: depth 2 adds 5 one-hop figures -> 2.5x.
    let mut amp: Vec<PathResult> = (0..=2)
        .map(|d| depth("amp", d, 10_000, &[1_000, 1_000]))
        .collect();
    for r in &mut amp[2].rounds {
        r.latency.as_mut().unwrap().p99_ns = 30_000 + 5 * 3_000;
    }
    let a = chains(&amp)[0]
        .amplification
        .iter()
        .find(|a| a.what == "p99" && a.depth == 2)
        .cloned()
        .unwrap();
    assert_eq!(a.ratio.as_ref().unwrap().median, 2.5);
    assert_eq!(a.n_one_hop_ns.as_ref().unwrap().median, 6_000.0);
    // One hop that adds nothing at the tail gives no ratio, and says so by count.
    let mut flat: Vec<PathResult> = (0..=2)
        .map(|d| depth("flat", d, 10_000, &[1_000, 1_000]))
        .collect();
    for r in &mut flat[1].rounds {
        r.latency.as_mut().unwrap().p99_ns = 30_000;
    }
    let f = chains(&flat)[0]
        .amplification
        .iter()
        .find(|a| a.what == "p99" && a.depth == 2)
        .cloned()
        .unwrap();
    assert!(f.ratio.is_none());
    assert_eq!(f.rounds_without_one_hop, 2);
}

#[test]
fn chains_keep_their_order_and_count_checks() {
    let mut paths: Vec<PathResult> = (0..=1).map(|d| depth("b", d, 10_000, &[1_000])).collect();
    paths.extend((0..=1).map(|d| depth("a", d, 10_000, &[1_000])));
    paths[1].rounds[0].hops = vec![crate::lab::chain::counters::HopCount {
        hop: 1,
        listen: "x".into(),
        forwarded: 1,
        returned: 1,
        drops: Default::default(),
    }];
    paths[3].rounds[0].hops = paths[1].rounds[0].hops.clone();
    paths[3].rounds[0].status = Status::Failed;
    paths[3].rounds[0].counts_disagree = true;
    let c = chains(&paths);
    assert_eq!(
        c.iter().map(|c| c.chain.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert_eq!(
        (
            c[0].depths[1].counts_matched,
            c[0].depths[1].counts_disagreed
        ),
        (1, 0)
    );
    assert_eq!(
        (
            c[1].depths[1].counts_matched,
            c[1].depths[1].counts_disagreed
        ),
        (0, 1)
    );
}
