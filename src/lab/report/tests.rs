//! report.md from synthetic results: rows, intervals, the floor, verdicts, the platform.

use super::*;
use crate::lab::environment::Environment;
use crate::lab::platform::{CpuNoise, PerCall, Platform, Probe, Syscalls};
use crate::lab::results::{
    Intervals, Latency, Loss, PercentileCi, RatioFig, Round, SendLag, SweepPoint, Throughput,
    Verdict,
};

fn lat(p50: u64) -> Latency {
    Latency {
        count: 10,
        min_ns: 5_000,
        mean_ns: 7_000.0,
        p50_ns: p50,
        p90_ns: 8_000,
        p99_ns: 30_159,
        p999_ns: 210_000,
        max_ns: 1_560_000,
    }
}

fn round(k: u32, p50: u64, probe: usize, noisy: bool) -> Round {
    Round {
        round: k,
        status: Status::Ok,
        error: None,
        latency: Some(lat(p50)),
        loss: None,
        rate_per_s: None,
        hlog: None,
        probe_before: Some(probe),
        probe_after: Some(probe + 1),
        noisy,
        cross_check: None,
        cross_check_first: false,
        send_lag: None,
        elapsed_s: 1.0,
        hops: Vec::new(),
        counts_disagree: false,
        tails: None,
    }
}

fn ci(v: u64, enough: bool) -> PercentileCi {
    PercentileCi {
        value_ns: v,
        lo_ns: v - 50,
        hi_ns: v + 60,
        samples: 10,
        enough,
        round_min_ns: v - 700,
        round_max_ns: v + 900,
        rounds: 2,
    }
}

fn probe(lost: f64) -> Probe {
    Probe {
        label: "p".into(),
        duration_s: 0.5,
        cpus: vec![
            CpuNoise {
                cpu: 0,
                lost_pct: lost,
                gap_max_ns: 1_200_000,
                over_1ms: 1,
                ..CpuNoise::default()
            },
            CpuNoise {
                cpu: 1,
                lost_pct: 0.1,
                ..CpuNoise::default()
            },
        ],
        ..Probe::default()
    }
}

fn fig(m: f64, lo: f64, hi: f64) -> RatioFig {
    RatioFig {
        median: m,
        lo,
        hi,
        n: 2,
        method: "range".into(),
        coverage: 0.5,
        text: format!("{m:.2}x [{lo:.2}, {hi:.2}] over 2 paired rounds (min..max)"),
    }
}

fn lab() -> LabResults {
    let mut ok = PathResult::new("fast", "fastpath", "veth", "load", "round trip: x -> y");
    ok.status = Status::Ok;
    ok.latency = Some(lat(6_950));
    ok.rate_per_s = Some(7805.7);
    ok.loss = Some(Loss {
        sent: 1000,
        received: 998,
        lost: 2,
    });
    ok.rounds = vec![round(1, 6_250, 0, false), round(2, 7_850, 2, true)];
    ok.noisy_rounds = 1;
    ok.intervals = Some(Intervals {
        p50: ci(6_950, true),
        p99: ci(30_159, true),
        p999: ci(210_000, false),
    });
    ok.floor_multiple = Some(fig(34.75, 31.2, 39.25));
    let mut floor = PathResult::new("floor", "limit", "-", "none", "the floor");
    floor.status = Status::Ok;
    floor.latency = Some(lat(200));
    floor.rounds = vec![round(1, 200, 1, false), round(2, 200, 3, false)];
    let mut bad = PathResult::new("broken|pipe", "kernel-serve", "lo", "load", "d");
    bad.status = Status::Failed;
    bad.error = Some("server exited".into());
    let mut thr = PathResult::new("thr", "throughput", "pcap", "none", "pps");
    thr.status = Status::Ok;
    thr.throughput = Some(Throughput {
        bypass_pps: 11.58e6,
        testpmd_pps: 27.07e6,
        ratio: 0.428,
        frame_bytes: 106,
        rounds: 2,
        bypass_readings: vec![],
        testpmd_readings: vec![],
    });
    let mut sw = PathResult::new("sw", "kernel-serve", "veth", "load", "d");
    sw.status = Status::Ok;
    let mut pt_lat = lat(9_000);
    pt_lat.max_ns = 1_000_000_000;
    sw.sweep = vec![SweepPoint {
        target_rate: 10_000.0,
        achieved_rate: 9_100.0,
        latency: pt_lat,
        uncorrected: Some(lat(8_000)),
        loss: Loss::default(),
        hgrm: "sw-rate-10000.hgrm".into(),
        send_lag: Some(SendLag {
            p99_ns: 800_000,
            max_ns: 2_000_000,
            late_1us_fraction: 0.2,
            behind: true,
        }),
        lost_recorded_at_ns: Some(1_000_000_000),
        platform_model: None,
    }];
    LabResults {
        scenario: "t".into(),
        scenario_file: None,
        description: String::new(),
        started: "2026-11-27 17:19:01".into(),
        wall_s: 157.0,
        interrupted: false,
        environment: Environment::capture(0, 1, true, "busy"),
        paths: vec![ok, floor, bad, thr, sw],
        plots: vec!["latency-percentiles.svg".into()],
        platform: Platform {
            probe_s: 0.5,
            noisy_lost_pct: 1.0,
            probes: vec![probe(0.4), probe(0.3), probe(2.5), probe(0.2), probe(0.1)],
            end_probe: Some(4),
            syscalls: Some(Syscalls {
                cpu: 0,
                getppid_ns: PerCall {
                    median: 232.0,
                    min: 220.0,
                    max: 260.0,
                },
                udp_send_recv_ns: PerCall {
                    median: 3700.0,
                    min: 3500.0,
                    max: 4100.0,
                },
                unix_send_recv_ns: PerCall {
                    median: 2200.0,
                    min: 2100.0,
                    max: 2500.0,
                },
                command: "bypass syscalls --cpu 0 --json".into(),
            }),
            errors: vec![],
        },
        verdicts: vec![Verdict {
            a: "fast".into(),
            b: "floor".into(),
            what: "p50".into(),
            ratio: fig(34.75, 31.2, 39.25),
            text: "fast vs floor, p50: 34.75x [31.20, 39.25] over 2 paired rounds".into(),
        }],
        chains: vec![],
        ipc_tax: vec![],
    }
}

#[test]
fn table_has_a_row_per_path_with_its_intervals() {
    let md = render(&lab());
    let start = md
        .find("| path | status | rounds")
        .expect("round-trip table");
    let rows: Vec<&str> = md[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .collect();
    // Header, separator, one row per path.
    assert_eq!(rows.len(), 7, "{md}");
    assert!(
        rows[2].starts_with(
            "| fast | ok, **noisy** (1 of 2 rounds) | 2 | 6.95 [6.90, 7.01] (6.25..7.85) | \
             30.2 [30.1, 30.2] (29.5..31.1) | 210 [too few samples] (209..211) | 1560 | \
             34.8x [31.2, 39.2] | 7.8 k/s req | 2 of 1000 (0.200%) |"
        ),
        "{}",
        rows[2]
    );
    assert!(rows[3].contains("| the floor |"), "{}", rows[3]);
    assert!(
        rows[4].starts_with("| broken\\|pipe | **failed** |"),
        "{}",
        rows[4]
    );
    assert!(
        rows[5].contains("11.58 M/s pkt (testpmd 27.07 M/s, ratio 0.428)"),
        "{}",
        rows[5]
    );
    assert!(md.contains("**Failed**: server exited"));
    assert!(md.contains("![latency-percentiles.svg](latency-percentiles.svg)"));
    assert!(md.contains("1 failed"));
}

#[test]
fn a_second_limit_path_shows_its_multiple_of_the_floor() {
    let mut r = lab();
    let mut layout = PathResult::new("layout", "limit", "-", "none", "memif's layout");
    layout.status = Status::Ok;
    layout.latency = Some(lat(260));
    layout.floor_multiple = Some(fig(1.3, 1.25, 1.34));
    r.paths.push(layout);
    let md = render(&r);
    let row = md
        .lines()
        .find(|l| l.starts_with("| layout |"))
        .expect("layout row");
    assert!(row.contains("| 1.30x [1.25, 1.34] |"), "{row}");
    let floor = md.lines().find(|l| l.starts_with("| floor |")).unwrap();
    assert!(floor.contains("| the floor |"), "{floor}");
}

#[test]
fn floor_verdicts_platform_and_syscalls_are_reported() {
    let md = render(&lab());
    assert!(
        md.contains("- fast: 34.8x the shared-memory floor (34.75x [31.20, 39.25]"),
        "{md}"
    );
    assert!(md.contains("- fast vs floor, p50: 34.75x [31.20, 39.25] over 2 paired rounds"));
    assert!(md.contains("## Platform"));
    // CPU 0 over five probes: median 0.3, range 0.1..2.5, one gap over 1 ms in each.
    assert!(md.contains("| 0 | 5 | 0.30 (0.10..2.50) |"), "{md}");
    assert!(
        md.contains("| fast | r1: 0.40 / 0.10; r2: 2.50 / 0.10 | 2 |"),
        "{md}"
    );
    assert!(md.contains("At the end: lost % per CPU 0.10 / 0.10."));
    assert!(md.contains("| ns per call | 232 [220..260] | 3700 [3500..4100] | 2200 [2100..2500] |"));
}

#[test]
fn sweep_rows_show_uncorrected_lag_and_censoring() {
    let md = render(&lab());
    let row = md
        .lines()
        .find(|l| l.starts_with("| sw | 10.0 k/s |"))
        .expect("sweep row");
    assert!(row.contains("| 9.00 (8.00) |"), "{row}");
    assert!(row.contains(">= 1000000 (timeout)"), "{row}");
    assert!(
        row.contains("**client fell behind** (lag p99 800 us"),
        "{row}"
    );
}

#[test]
fn censoring_is_at_or_above_the_timeout_only() {
    let l = lab();
    let pt = &l
        .paths
        .iter()
        .find(|p| p.name == "sw")
        .expect("sweep")
        .sweep[0];
    assert!(pt.is_censored(1_000_000_000));
    assert!(pt.is_censored(1_000_342_000));
    assert!(!pt.is_censored(999_999_999));
    let mut uncensored = pt.clone();
    uncensored.lost_recorded_at_ns = None;
    assert!(!uncensored.is_censored(u64::MAX));
}

#[test]
fn each_paths_checksum_policies_are_in_what_it_measured() {
    use crate::lab::results::{PathChecksums, PortChecksum};
    use crate::options::{ChecksumChoice, ChecksumPolicy};
    let trust = ChecksumChoice {
        requested: ChecksumPolicy::Auto,
        resolved: ChecksumPolicy::Trust,
        why: "auto: net_memif peer is a local process".into(),
    };
    let mut r = lab();
    let mut memif = PathResult::new("memif", "fastpath-memif", "m", "load-dpdk", "over memif");
    memif.status = Status::Ok;
    memif.checksum = PathChecksums {
        server: vec![PortChecksum {
            port: "net_memif0".into(),
            driver: "net_memif".into(),
            choice: trust.clone(),
        }],
        client: Some(trust),
    };
    r.paths.push(memif);
    let md = render(&r);
    let line = md
        .lines()
        .find(|l| l.starts_with("- **memif**"))
        .expect("the path's line");
    assert!(
        line.contains(
            "checksums: server net_memif0 trust (auto: net_memif peer is a local process); \
             client trust (auto: net_memif peer is a local process)"
        ),
        "{line}"
    );
    // A path without a fast-path port says nothing of checksums.
    let kernel = md.lines().find(|l| l.starts_with("- **sw**")).unwrap();
    assert!(!kernel.contains("checksums"), "{kernel}");
    // results.json carries them typed, and a path without them has no key.
    let json = serde_json::to_value(&r.paths).unwrap();
    let memif = json.as_array().unwrap().last().unwrap();
    assert_eq!(memif["checksum"]["server"][0]["resolved"], "trust");
    assert_eq!(memif["checksum"]["client"]["requested"], "auto");
    assert!(json[0].get("checksum").is_none());
}

/// A chain depth whose round k has p50 = 10 us + depth * per_hop[k], p99 3x, p99.9 10x.
fn chain_depth(chain: &str, d: u32, per_hop: &[u64]) -> PathResult {
    use crate::lab::chain::figures::ChainInfo;
    let mut p = PathResult::new(&format!("{chain}-d{d}"), "chain", "shm", "load-dpdk", "x");
    p.status = Status::Ok;
    p.chain = Some(ChainInfo {
        chain: chain.into(),
        hop: "fastpath".into(),
        depth: d,
        placement: "co-located: one fast-path process".into(),
    });
    p.rounds = per_hop
        .iter()
        .zip(1..)
        .map(|(h, k)| {
            let v = 10_000 + u64::from(d) * h;
            let mut r = round(k, v, 0, false);
            r.latency = Some(Latency {
                p50_ns: v,
                p99_ns: 3 * v,
                p999_ns: 10 * v,
                ..lat(v)
            });
            if d > 0 {
                r.hops = vec![crate::lab::chain::counters::HopCount {
                    hop: 1,
                    listen: "198.18.4.3:7777".into(),
                    forwarded: 100,
                    returned: 100,
                    drops: Default::default(),
                }];
            }
            r
        })
        .collect();
    let v = 10_000 + u64::from(d) * per_hop[0];
    p.latency = Some(Latency {
        p50_ns: v,
        p99_ns: 3 * v,
        p999_ns: 10 * v,
        ..lat(v)
    });
    p
}

#[test]
fn the_sidecar_tax_section_has_a_row_per_depth_slopes_and_amplification() {
    let mut r = lab();
    let per_hop = [1_000, 1_200, 1_100];
    r.paths
        .extend((0..=2).map(|d| chain_depth("chain-fp", d, &per_hop)));
    r.chains = crate::lab::chain::figures::chains(&r.paths);
    r.plots.push(CHAIN_PLOT.into());
    let md = render(&r);
    let start = md
        .find("## The sidecar tax: latency against chain depth")
        .expect("section");
    let sec = &md[start..];
    assert!(sec.contains("- **chain-fp** (fastpath hops): co-located: one fast-path process."));
    assert!(sec.contains("![chain-depth.svg](chain-depth.svg)"));
    assert_eq!(
        md.matches("![chain-depth.svg]").count(),
        1,
        "drawn in the section only"
    );
    for (d, p50) in [(0, "10.00"), (1, "11.00"), (2, "12.00")] {
        let row = sec
            .lines()
            .find(|l| l.starts_with(&format!("| chain-fp | {d} | chain-fp-d{d} |")))
            .unwrap_or_else(|| panic!("no row for depth {d}:\n{sec}"));
        assert!(row.contains(&format!("| {p50} |")), "{row}");
        let counts = if d == 0 {
            "no relay"
        } else {
            "match the client's in 3 rounds"
        };
        assert!(row.ends_with(&format!("| {counts} |")), "{row}");
    }
    // Per-round slopes 1.0, 1.2, 1.1 us: median 1.1, range 1.0..1.2 (3 rounds, 75%).
    let slope = sec
        .lines()
        .find(|l| l.starts_with("| chain-fp | fastpath |"))
        .expect("slope row");
    assert!(
        slope.contains("| 1.10 [1.00, 1.20] | 3.30 [3.00, 3.60] | 11.0 [10.0, 12.0] | range of 3 rounds, 75% coverage |"),
        "{slope}"
    );
    assert!(sec.contains("| Istio 1.20 performance page |") && sec.contains("+298"));
    assert!(sec.contains("**chain-fp** (fastpath hops): p50 +1.10 us per hop [1.00, 1.20]; p99 +3.30 us per hop [3.00, 3.60], 90x below Istio 1.20's +298 us p99 per sidecar pair (below 95% coverage: a hint, not a verdict)."), "{sec}");
    // Linear in every round: depth 2's tail is two single hops.
    let amp = sec
        .lines()
        .find(|l| l.starts_with("| chain-fp | p99 | 2 |"))
        .expect("amplification row");
    assert!(amp.contains("| 1.00x [1.00, 1.00] | as 2 single hops (no measurable amplification); below 95% coverage: a hint |"), "{amp}");
}

#[test]
fn a_disagreeing_round_and_a_flat_chain_are_said_so() {
    let mut r = lab();
    let mut paths: Vec<PathResult> = (0..=2).map(|d| chain_depth("k", d, &[0, 0])).collect();
    paths[2].rounds[1].status = Status::Failed;
    paths[2].rounds[1].counts_disagree = true;
    paths[2].status = Status::Failed;
    r.paths.extend(paths);
    r.chains = crate::lab::chain::figures::chains(&r.paths);
    let md = render(&r);
    let row = md
        .lines()
        .find(|l| l.starts_with("| k | 2 | k-d2 (failed) |"))
        .expect("failed depth row");
    assert!(row.contains("**disagree in 1 round: failed**"), "{row}");
    assert!(
        md.contains(
            "**k** (fastpath hops): no measurable p50 cost per hop (0.00 us, interval includes 0)"
        ),
        "{md}"
    );
    let amp = md
        .lines()
        .find(|l| l.starts_with("| k | p99 | 2 |"))
        .unwrap();
    assert!(
        amp.ends_with("| no measurable difference from depth 0 |"),
        "{amp}"
    );
    assert!(!md.contains("![chain-depth.svg]"), "no plot file, no link");
    // A one-hop figure whose interval reaches 0 gives no ratio, whatever one round says.
    let mut r = lab();
    let mut paths: Vec<PathResult> = (0..=2)
        .map(|d| chain_depth("t", d, &[1_000, 1_000]))
        .collect();
    paths[1].rounds[1].latency.as_mut().unwrap().p99_ns = 20_000;
    paths[2].rounds[0].latency.as_mut().unwrap().p99_ns = 80_000;
    r.paths.extend(paths);
    r.chains = crate::lab::chain::figures::chains(&r.paths);
    let md = render(&r);
    let amp = md
        .lines()
        .find(|l| l.starts_with("| t | p99 | 2 |"))
        .unwrap();
    assert!(amp.contains("(1 of 2 rounds)"), "{amp}");
    assert!(
        amp.ends_with("(its interval reaches 0): no ratio |"),
        "{amp}"
    );
}
