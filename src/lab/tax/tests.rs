//! The IPC tax rows from fixture results: which paths each row reads, its arithmetic, and
//! the reason given when a row has nothing to read.

use serde_json::json;

use super::*;
use crate::contract::Verbatim;
use crate::lab::environment::Environment;
use crate::lab::platform::{PerCall, Platform, Syscalls};
use crate::lab::results::{Latency, Round, Status};
use crate::stats::interval::RatioMethod;

fn round(k: u32, p50_ns: u64, rate: f64) -> Round {
    Round {
        round: k,
        status: Status::Ok,
        error: None,
        latency: Some(Latency {
            count: 1000,
            p50_ns,
            p99_ns: p50_ns * 2,
            p999_ns: p50_ns * 3,
            ..Latency::default()
        }),
        loss: None,
        rate_per_s: Some(rate),
        hlog: None,
        probe_before: None,
        probe_after: None,
        noisy: false,
        cross_check: None,
        cross_check_first: false,
        send_lag: None,
        elapsed_s: 1.0,
        hops: vec![],
        counts_disagree: false,
        tails: None,
    }
}

/// A path with six rounds at `p50_ns` (times 1.0 .. 1.05) and the matching ping-pong rate.
fn path(name: &str, kind: &str, proto: Option<&str>, p50_ns: u64) -> PathResult {
    let mut p = PathResult::new(name, kind, "lo", "load", "");
    p.status = Status::Ok;
    p.rounds = (1..=6)
        .map(|k| {
            let ns = p50_ns + p50_ns * u64::from(k) / 100;
            round(k, ns, 1e9 / ns as f64)
        })
        .collect();
    if let Some(proto) = proto {
        let fin = json!({"type": "final", "proto": proto, "backend": "busy", "rx": 1, "tx": 1});
        p.server = Some(Verbatim::of(&fin).unwrap());
    }
    p
}

fn lab(paths: Vec<PathResult>, verdicts: Vec<Verdict>) -> LabResults {
    LabResults {
        scenario: "t".into(),
        scenario_file: None,
        description: String::new(),
        started: String::new(),
        wall_s: 1.0,
        interrupted: false,
        environment: Environment::capture(0, 1, true, "busy"),
        paths,
        plots: vec![],
        platform: Platform {
            syscalls: Some(Syscalls {
                cpu: 0,
                getppid_ns: PerCall {
                    median: 230.0,
                    min: 220.0,
                    max: 260.0,
                },
                udp_send_recv_ns: PerCall::default(),
                unix_send_recv_ns: PerCall::default(),
                command: String::new(),
            }),
            ..Platform::default()
        },
        verdicts,
        chains: vec![],
        ipc_tax: vec![],
    }
}

fn row<'a>(rows: &'a [TaxRow], claim_start: &str) -> &'a TaxRow {
    rows.iter()
        .find(|r| r.claim.starts_with(claim_start))
        .unwrap_or_else(|| panic!("no row {claim_start:?} in {rows:#?}"))
}

#[test]
fn the_syscall_row_reads_the_platform_batches() {
    let rows = table(&lab(vec![], vec![]));
    let m = row(&rows, "a system call").measured.as_ref().unwrap();
    assert_eq!((m.value, m.lo, m.hi), (230.0, 220.0, 260.0));
    assert_eq!(fmt_measured(m), "230 [220, 260] ns");
}

#[test]
fn uds_against_tcp_pairs_the_rounds_of_the_two_kernel_paths() {
    let unix = path("kernel-unix", "kernel-serve", Some("unix"), 10_000);
    let tcp = path("kernel-tcp", "kernel-serve", Some("tcp"), 15_000);
    let udp = path("kernel-udp", "kernel-serve", Some("udp"), 12_000);
    let rows = table(&lab(vec![udp, unix, tcp], vec![]));
    let lat = row(
        &rows,
        "unix-domain sockets against TCP loopback: round trip",
    );
    let m = lat.measured.as_ref().unwrap();
    assert!((m.value - 1.5).abs() < 0.01, "tcp p50 / unix p50: {m:?}");
    assert!(
        lat.note.starts_with("kernel-tcp over kernel-unix"),
        "{}",
        lat.note
    );
    assert_eq!(lat.ratio, None, "no published latency figure to divide by");
    let thr = row(
        &rows,
        "unix-domain sockets against TCP loopback: throughput",
    );
    let m = thr.measured.as_ref().unwrap();
    assert!((m.value - 1.5).abs() < 0.01, "unix rate / tcp rate: {m:?}");
    assert!(
        (thr.ratio.unwrap() - 1.0).abs() < 0.01,
        "1.5x over redis' 1.5x"
    );
}

#[test]
fn kernel_against_bypass_inverts_the_scenarios_comparison() {
    let fast = path("fastpath-memif", "fastpath-memif", None, 4_000);
    let kernel = path("kernel-udp", "kernel-serve", Some("udp"), 20_000);
    let v = Verdict {
        a: "fastpath-memif".into(),
        b: "kernel-udp".into(),
        what: "p50".into(),
        ratio: crate::lab::figures::ratio_fig(&Ratio {
            median: 0.2,
            lo: 0.2,
            hi: 0.2,
            n: 6,
            method: RatioMethod::OrderStatistic,
            coverage: 0.97,
            paired: true,
        }),
        text: String::new(),
    };
    let rows = table(&lab(vec![fast, kernel], vec![v]));
    let r = row(&rows, "the kernel on the path");
    let m = r.measured.as_ref().unwrap();
    assert!((m.value - 5.0).abs() < 0.01, "kernel over bypass: {m:?}");
    assert!(m.lo <= m.value && m.value <= m.hi);
    assert!(
        (r.ratio.unwrap() - 1.0).abs() < 0.01,
        "5x over Demikernel's 5x"
    );
}

#[test]
fn a_claim_without_its_paths_says_what_measures_it() {
    let rows = table(&lab(vec![], vec![]));
    for start in ["unix-domain", "the kernel on the path", "the sidecar tax"] {
        let r = row(&rows, start);
        assert!(r.measured.is_none() && r.ratio.is_none(), "{r:?}");
        assert!(!r.note.is_empty(), "{start}: no reason given");
    }
    assert!(row(&rows, "the sidecar tax: a user-space")
        .note
        .contains("configs/lab-chain.toml"));
}

#[test]
fn the_report_opens_with_the_table() {
    let mut r = lab(
        vec![
            path("kernel-unix", "kernel-serve", Some("unix"), 10_000),
            path("kernel-tcp", "kernel-serve", Some("tcp"), 15_000),
        ],
        vec![],
    );
    r.ipc_tax = table(&r);
    let md = crate::lab::report::render(&r);
    let at = md.find("## The IPC tax, measured on this machine").unwrap();
    assert!(
        md[..at].matches("\n## ").count() == 0,
        "a section before the table"
    );
    let body = &md[at..];
    assert!(body.contains("| a system call, the smallest kernel crossing (getppid) |"));
    assert!(body.contains("| 230 [220, 260] ns |"), "{body}");
    assert!(
        body.contains("| not measured |"),
        "rows without paths say so"
    );
}

/// A path whose last round's client summary carries `extra` (fanout, codec objects).
fn with_summary(mut p: PathResult, count: u64, extra: serde_json::Value) -> PathResult {
    let mut v = json!({"count": count, "min_ns": 1, "mean_ns": 1.0, "p50_ns": 1, "p90_ns": 1,
                       "p99_ns": 1, "p999_ns": 1, "max_ns": 1});
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    p.client_report = Some(Verbatim::of(&v).unwrap());
    p
}

fn fanout_json(k: u32, p_logical: f64, hedge: serde_json::Value) -> serde_json::Value {
    let sub = json!({"count": 9000, "min_ns": 1, "mean_ns": 1.0, "p50_ns": 1, "p90_ns": 1,
                     "p99_ns": 1, "p999_ns": 1, "max_ns": 1});
    let mut f = json!({"fanout": k, "replicas": k, "sub": sub, "threshold_ns": 25000,
                       "p_sub": 0.01, "p_logical": p_logical, "p_model": 0.0865});
    if !hedge.is_null() {
        f["hedge"] = hedge;
    }
    json!({ "fanout": f })
}

#[test]
fn fan_out_and_hedging_rows_read_the_clients_figures() {
    let k1 = with_summary(
        path("t-k1", "tails", None, 30_000),
        1000,
        fanout_json(1, 0.01, json!(null)),
    );
    let k9 = with_summary(
        path("t-k9", "tails", None, 90_000),
        1000,
        fanout_json(9, 0.09, json!(null)),
    );
    let hedge = json!({"after": "p95", "threshold_ns": 40000, "threshold_min_ns": 30000,
                       "threshold_max_ns": 50000, "duplicates": 50, "duplicates_pct": 5.0,
                       "wasted": 40, "won": 10});
    let h95 = with_summary(
        path("t-k9-h95", "tails", None, 45_000),
        1000,
        fanout_json(9, 0.02, hedge),
    );
    let rows = table(&lab(vec![k1, k9, h95], vec![]));
    let amp = row(&rows, "tail amplification");
    let m = amp.measured.as_ref().unwrap();
    assert!((m.value - 9.0).abs() < 1e-9, "90 of 1000 at K = 9: {m:?}");
    assert!(
        m.lo < 9.0 && m.hi > 9.0 && m.lo > 7.0 && m.hi < 11.5,
        "Wilson: {m:?}"
    );
    assert!(amp.note.starts_with("t-k9 (K = 9)"), "{}", amp.note);
    let gain = row(&rows, "hedged requests: p99.9");
    let g = gain.measured.as_ref().unwrap();
    assert!(
        (g.value - 2.0).abs() < 0.01,
        "unhedged k9 p99.9 over hedged: {g:?}"
    );
    assert!(gain.note.starts_with("t-k9 over t-k9-h95"), "{}", gain.note);
    let load = row(&rows, "hedged requests: the extra load");
    assert!((load.measured.as_ref().unwrap().value - 5.0).abs() < 1e-9);
    assert!(load
        .note
        .contains("50 duplicates, 10 answered first, 40 wasted"));
}

#[test]
fn fan_out_rows_pool_the_rounds_counts() {
    let tails = |slow_logical, slow_sub, duplicates| RoundTails {
        fanout: 9,
        logical: 1000,
        slow_logical,
        sub: 9000,
        slow_sub,
        duplicates,
        firsts: if duplicates > 0 { 9000 } else { 0 },
    };
    let with_rounds = |mut p: PathResult, t: [RoundTails; 3]| {
        for (r, t) in p.rounds.iter_mut().zip(t) {
            r.tails = Some(t);
        }
        // A failed round's counts are not pooled.
        p.rounds[3].status = Status::Failed;
        p.rounds[3].tails = Some(tails(1000, 9000, 9000));
        p
    };
    let k9 = with_rounds(
        with_summary(
            path("t-k9", "tails", None, 90_000),
            1000,
            fanout_json(9, 0.5, json!(null)),
        ),
        [tails(80, 90, 0), tails(90, 90, 0), tails(100, 90, 0)],
    );
    let hedge = json!({"after": "p95", "threshold_ns": 40000, "threshold_min_ns": 30000,
                       "threshold_max_ns": 50000, "duplicates": 50, "duplicates_pct": 5.0,
                       "wasted": 40, "won": 10});
    let h95 = with_rounds(
        with_summary(
            path("t-k9-h95", "tails", None, 45_000),
            1000,
            fanout_json(9, 0.02, hedge),
        ),
        [tails(20, 90, 400), tails(20, 90, 500), tails(20, 90, 450)],
    );
    let rows = table(&lab(vec![k9, h95], vec![]));
    let amp = row(&rows, "tail amplification");
    let m = amp.measured.as_ref().unwrap();
    // 270 of 3000, not the last summary's 50%.
    assert!((m.value - 9.0).abs() < 1e-9, "{m:?}");
    assert!(
        m.how
            .starts_with("270 of 3000 logical requests (3 rounds pooled)"),
        "{}",
        m.how
    );
    assert!(
        m.hi - m.lo < 2.2,
        "3000 requests pin it closer than 1000: {m:?}"
    );
    // The model from the pooled p_sub, 270 / 27000 = 1%: 1 - 0.99^9.
    assert!(amp.note.contains("in 1.00% of cases"), "{}", amp.note);
    assert!(amp.note.contains("model gives 8.65%"), "{}", amp.note);
    let load = row(&rows, "hedged requests: the extra load");
    let l = load.measured.as_ref().unwrap();
    assert!((l.value - 5.0).abs() < 1e-9, "1350 of 27000: {l:?}");
    assert!(l.how.contains("(3 rounds pooled)"), "{}", l.how);
}

#[test]
fn a_codec_row_subtracts_the_raw_echo_of_the_same_size() {
    let echo = path("c-echo-small", "codec", None, 20_000);
    let codec = json!({"codec": {"codec": "json", "message": "small", "request_bytes": 150,
        "reply_bytes": 150, "encode": {"count": 10, "min_ns": 1, "mean_ns": 1.0, "p50_ns": 400,
        "p90_ns": 1, "p99_ns": 1, "p999_ns": 1, "max_ns": 1}, "decode": {"count": 10,
        "min_ns": 1, "mean_ns": 1.0, "p50_ns": 700, "p90_ns": 1, "p99_ns": 1, "p999_ns": 1,
        "max_ns": 1}, "bad_replies": 0}});
    let json_path = with_summary(
        path("c-json-small", "kernel-serve", None, 21_000),
        100,
        codec.clone(),
    );
    // The same codec on the fast path, paired with its own echo: a row of its own.
    let fast_echo = path("f-echo-small", "fastpath-memif", None, 5_000);
    let fast_json = with_summary(
        path("f-json-small", "fastpath-memif", None, 5_500),
        100,
        codec,
    );
    let rows = table(&lab(vec![echo, json_path, fast_echo, fast_json], vec![]));
    let r = row(
        &rows,
        "the serialization tax: json (small message, kernel server)",
    );
    let m = r.measured.as_ref().unwrap();
    // Round k: 21000 (1 + k/100) - 20000 (1 + k/100) = 1000 (1 + k/100).
    assert!((1010.0..=1060.0).contains(&m.value), "{m:?}");
    assert!((r.ratio.unwrap() - m.value / 989.0).abs() < 1e-9);
    assert!(
        r.note.contains("encode p50 400 ns and decode p50 700 ns"),
        "{}",
        r.note
    );
    let f = row(
        &rows,
        "the serialization tax: json (small message, fast path server)",
    );
    // Round k: 500 (1 + k/100).
    let fm = f.measured.as_ref().unwrap();
    assert!((505.0..=530.0).contains(&fm.value), "{fm:?}");
    assert!(
        f.note.starts_with("f-json-small minus f-echo-small"),
        "{}",
        f.note
    );
}

#[test]
fn a_figure_inside_the_noise_gets_no_ratio() {
    let row = TaxRow::new("c", "p", Some(298_000.0)).measured(
        Measured {
            value: -400.0,
            lo: -1400.0,
            hi: 1300.0,
            unit: "ns".into(),
            how: String::new(),
        },
        "chain".into(),
    );
    assert_eq!(row.ratio, None);
    assert!(row
        .note
        .starts_with("no measurable effect (the interval holds 0)"));
}
