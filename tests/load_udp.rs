//! `bypass::load` against a kernel UDP RPC server living in the test
//! (docs/protocol.md), on 127.0.0.1. Everything is bounded in time; timing
//! assertions are generous because test machines are shared and small.
#![forbid(unsafe_code)]

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bypass::load::{
    run_with, Arrival, LoadArgs, LoadConfig, LoadError, LoadModel, Report, Schedule, WaitMode,
};
use clap::Parser;
use support::read_hlog_with_python;
use support::replica::{
    answer_all, delay_every, drop_every, drop_only, mischief, stall_once, swap_pairs, Replica,
};

/// Timing-sensitive runs take turns: two cores do not fit several client
/// and server pairs at once.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn closed(server: SocketAddr, window: u32, count: u64) -> LoadConfig {
    LoadConfig {
        count: Some(count),
        duration: Some(Duration::from_secs(30)),
        ..LoadConfig::closed(server, window)
    }
}

/// Samples at or above the timeout's histogram bucket: the lost requests.
fn at_or_above_timeout(r: &Report, h: &hdrhistogram::Histogram<u64>) -> u64 {
    h.count_between(r.censor_ns(), u64::MAX / 2)
}

fn assert_clean(r: &Report, count: u64) {
    let c = &r.counters;
    assert_eq!(c.sent, count, "{}", r.human_summary());
    assert_eq!(c.received, count, "{}", r.human_summary());
    assert_eq!(
        (c.lost, c.duplicated, c.late, c.invalid, c.errors),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(r.corrected.len(), count);
    assert_eq!(r.uncorrected.len(), count);
    assert_eq!(r.server.len(), count);
    assert_eq!(r.wire.len(), count);
    assert!(r.server.max() > 0, "server_ns never filled");
    assert_eq!(r.target_rate, None);
    assert!(r.achieved_rate > 0.0);
    assert!(!r.time_source.is_empty());
}

#[test]
fn closed_loop_window_1_and_8() {
    let _g = serial();
    for (window, wait) in [
        (1, WaitMode::Blocking),
        (8, WaitMode::Blocking),
        (8, WaitMode::Busy),
    ] {
        let server = Replica::udp(answer_all());
        let started = Instant::now();
        let cfg = LoadConfig {
            wait,
            ..closed(server.addr(), window, 2000)
        };
        let r = run_with(&cfg).unwrap();
        println!("{}", r.human_summary());
        assert_clean(&r, 2000);
        // Closed loop: both histograms hold the same samples.
        assert_eq!(r.corrected.max(), r.uncorrected.max());
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(server.stop(), 2000, "window {window}");
        // The intervals account for every request.
        let sent: u64 = r.intervals.iter().map(|i| i.sent).sum();
        let received: u64 = r.intervals.iter().map(|i| i.received).sum();
        assert_eq!((sent, received), (2000, 2000));
    }
}

#[test]
fn spin_method_reaches_server_and_is_accounted() {
    let _g = serial();
    // The test server echoes any request, so spin replies come back as-is.
    let server = Replica::udp(answer_all());
    let args = Cli::try_parse_from([
        "load",
        "--server",
        &server.addr().to_string(),
        "--method",
        "spin",
        "--spin-ns",
        "1000",
        "--count",
        "200",
    ])
    .unwrap()
    .load;
    let cfg = args.to_config().unwrap();
    assert_eq!(cfg.payload_len, 4);
    let r = run_with(&cfg).unwrap();
    assert_clean(&r, 200);
}

#[test]
fn dropped_requests_are_lost_exactly_and_never_stall() {
    let _g = serial();
    let server = Replica::udp(drop_every(10));
    let cfg = LoadConfig {
        timeout: Duration::from_millis(100),
        ..closed(server.addr(), 16, 1000)
    };
    let started = Instant::now();
    let r = run_with(&cfg).unwrap();
    let took = started.elapsed();
    let c = &r.counters;
    assert_eq!(c.sent, 1000);
    assert_eq!(c.lost, 100, "{}", r.human_summary());
    assert_eq!(c.received, 900);
    assert_eq!((c.late, c.duplicated, c.invalid), (0, 0, 0));
    // Lost requests enter the histograms at the timeout (issue 9): 900 replies + 100 lost.
    assert_eq!(r.corrected.len(), 1000);
    assert_eq!(at_or_above_timeout(&r, &r.corrected), 100);
    assert_eq!(at_or_above_timeout(&r, &r.uncorrected), 100);
    // 100 timeouts of 100 ms over 16 slots: about 0.7 s; serially it would be 10 s.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(server.stop(), 1000);
    let lost: u64 = r.intervals.iter().map(|i| i.lost).sum();
    assert_eq!(lost, 100);
}

#[test]
fn window_1_loss_frees_the_slot() {
    let _g = serial();
    // Ping-pong against a server that drops every other request: each loss
    // costs one timeout, then the next request goes out.
    let server = Replica::udp(drop_every(2));
    let cfg = LoadConfig {
        timeout: Duration::from_millis(50),
        ..closed(server.addr(), 1, 20)
    };
    let r = run_with(&cfg).unwrap();
    assert_eq!(
        (r.counters.sent, r.counters.received, r.counters.lost),
        (20, 10, 10)
    );
}

#[test]
fn late_replies_are_counted_after_loss() {
    let _g = serial();
    let server = Replica::udp(delay_every(10, Duration::from_millis(80)));
    // Slots held for the whole timeout, so the run lasts long enough for the delayed
    // replies to come back (the slot deadline has its own test).
    let cfg = LoadConfig {
        timeout: Duration::from_millis(30),
        slot_deadline: Duration::from_millis(30),
        ..closed(server.addr(), 4, 200)
    };
    let r = run_with(&cfg).unwrap();
    server.stop();
    let c = &r.counters;
    assert_eq!((c.sent, c.received, c.lost), (200, 180, 20), "{c:?}");
    // Most delayed replies arrive while the run goes on; the last few may not.
    assert!((10..=20).contains(&c.late), "{c:?}");
    assert_eq!((c.duplicated, c.invalid), (0, 0));
    // 180 replies + 20 lost recorded at the timeout.
    assert_eq!(r.corrected.len(), 200);
    assert_eq!(at_or_above_timeout(&r, &r.corrected), 20);
}

#[test]
fn reordered_replies_are_counted() {
    let _g = serial();
    let server = Replica::udp(swap_pairs());
    let r = run_with(&closed(server.addr(), 2, 100)).unwrap();
    server.stop();
    let c = &r.counters;
    assert_eq!((c.sent, c.received, c.lost), (100, 100, 0), "{c:?}");
    assert_eq!(c.reordered, 50, "{c:?}");
}

#[test]
fn malformed_and_duplicate_replies_are_counted_not_fatal() {
    let _g = serial();
    let server = Replica::udp(mischief());
    let r = run_with(&closed(server.addr(), 1, 100)).unwrap();
    server.stop();
    let c = &r.counters;
    assert_eq!((c.sent, c.received, c.lost), (100, 100, 0), "{c:?}");
    assert_eq!(c.invalid, 300, "{c:?}");
    // The last duplicate may come after the run has finished.
    assert!((99..=100).contains(&c.duplicated), "{c:?}");
    assert_eq!(r.corrected.len(), 100);
}

#[test]
fn no_server_everything_lost_in_bounded_time() {
    let _g = serial();
    // A bound port nobody reads: requests vanish.
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = LoadConfig {
        timeout: Duration::from_millis(30),
        duration: Some(Duration::from_millis(300)),
        count: None,
        ..LoadConfig::closed(sink.local_addr().unwrap(), 4)
    };
    let started = Instant::now();
    let r = run_with(&cfg).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(r.counters.sent >= 4);
    assert_eq!(r.counters.lost, r.counters.sent);
    // Every request is lost, so every sample is the timeout, a lower bound.
    assert_eq!(r.corrected.len(), r.counters.sent);
    assert_eq!(at_or_above_timeout(&r, &r.corrected), r.counters.sent);
    assert!(r.human_summary().contains(">= timeout"));
    let j = r.summary_json();
    let flagged = j["at_least_timeout"].as_array().unwrap();
    for k in ["min_ns", "p50_ns", "p99_ns", "max_ns"] {
        assert!(flagged.iter().any(|v| v == k), "{k}: {j}");
    }
    assert_eq!(j["lost_recorded_at_ns"], 30_000_000u64);
    // An empty result still renders.
    assert!(r.human_summary().contains("lost"));
}

fn open_stall(max_in_flight: Option<u32>) -> Report {
    let server = Replica::udp(stall_once(1500, Duration::from_millis(200)));
    let cfg = LoadConfig {
        duration: Some(Duration::from_millis(1500)),
        load: LoadModel::Open {
            rate: 2000.0,
            arrival: Arrival::Fixed,
            max_in_flight,
        },
        ..LoadConfig::open(server.addr(), 2000.0)
    };
    let r = run_with(&cfg).unwrap();
    server.stop();
    let rate = r.achieved_rate;
    assert!(
        (rate - 2000.0).abs() < 200.0,
        "achieved {rate}\n{}",
        r.human_summary()
    );
    assert_eq!(r.target_rate, Some(2000.0));
    assert!(r.counters.sent >= 2700, "{}", r.human_summary());
    r
}

#[test]
fn open_loop_corrects_coordinated_omission() {
    let _g = serial();
    // With at most 16 in flight (wrk2's connections), the 200 ms server stall
    // stops the client from sending: about 400 requests go out late. Only
    // the corrected histogram, measured from the intended send time,
    // charges them the wait.
    let r = open_stall(Some(16));
    let corrected = r.summary();
    let uncorrected = bypass::stats::Summary::from_histogram(&r.uncorrected);
    let text = r.human_summary();
    println!("{text}");
    assert!(corrected.max >= 150_000_000, "{text}");
    assert!(corrected.p99 >= 100_000_000, "{text}");
    // "Wide margin", yet robust to a saturated machine (measured with two CPU
    // hogs on two cores: uncorrected p99 up to ~45 ms, corrected ~210 ms).
    assert!(
        uncorrected.p99 * 3 < corrected.p99,
        "uncorrected p99 {} vs corrected {}\n{text}",
        uncorrected.p99,
        corrected.p99
    );
    let slow = |h: &hdrhistogram::Histogram<u64>| h.count_between(50_000_000, u64::MAX / 2);
    let (slow_c, slow_u) = (slow(&r.corrected), slow(&r.uncorrected));
    assert!(slow_c >= 200, "{slow_c} corrected samples >= 50 ms\n{text}");
    assert!(slow_u * 3 < slow_c, "{slow_u} vs {slow_c} >= 50 ms\n{text}");
    assert!(text.contains("corrected (from intended send time) [primary]"));
    assert!(text.contains("uncorrected (from actual send time"));
}

#[test]
fn open_loop_without_cap_sees_stall_in_both() {
    let _g = serial();
    // Fire-and-forget UDP: the client keeps sending on time during the stall,
    // so actual == intended send times and both histograms show it.
    let r = open_stall(None);
    assert!(r.corrected.max() >= 150_000_000);
    assert!(r.uncorrected.max() >= 150_000_000);
    let c = r.summary().p99;
    let u = bypass::stats::Summary::from_histogram(&r.uncorrected).p99;
    assert!(c >= 100_000_000 && u >= 100_000_000, "{c} {u}");
}

#[test]
fn stall_arithmetic_of_the_corrected_tail() {
    let _g = serial();
    // At R = 2000/s a server stall of D = 200 ms holds about R*D = 400 requests; the k-th of
    // them waits about D - k/R, so the corrected max is about D and about R*D/2 = 200 samples
    // exceed D/2. Bounds are generous (a shared VM adds its own delays).
    let (rate, d_ms) = (2000.0, 200.0);
    let r = open_stall(None);
    let text = r.human_summary();
    let censor = r.censor_ns();
    // The held replies leave in one burst, which may overflow the client's socket buffer:
    // those requests are lost, recorded at the timeout, and counted apart below.
    let lost = r.counters.lost as f64;
    let held = rate * d_ms / 1e3;
    assert!(lost < held, "{text}");
    let max_answered = r
        .corrected
        .iter_recorded()
        .map(|v| v.value_iterated_to())
        .filter(|&v| v < censor)
        .max()
        .unwrap_or(0);
    let max_ms = max_answered as f64 / 1e6;
    assert!(
        (d_ms * 0.75..d_ms + 100.0).contains(&max_ms),
        "max {max_ms} ms\n{text}"
    );
    let above = |ms: f64| r.corrected.count_between((ms * 1e6) as u64, u64::MAX / 2) as f64;
    let half = above(d_ms / 2.0);
    assert!(
        (held / 2.0 * 0.6..held / 2.0 * 1.5 + lost).contains(&half),
        "{half} samples above D/2, expected ~{} (+ up to {lost} lost)\n{text}",
        held / 2.0
    );
    // A request sent t into the stall waits about D - t, so about R*(D - x) samples exceed x.
    // x = D/8 stays clear of what a loaded CI machine adds by itself (a failing run there had
    // send lag up to 8 ms and 200 samples above 5 ms outside the stall).
    let x_ms = d_ms / 8.0;
    let expected = rate * (d_ms - x_ms) / 1e3;
    let late = above(x_ms);
    // Lost requests sit at the timeout, above x too (a failing run: 163 lost from the burst).
    assert!(
        (expected * 0.6..expected * 1.5 + lost).contains(&late),
        "{late} samples above {x_ms} ms, expected ~{expected} (+ up to {lost} lost)\n{text}"
    );
    // Fire-and-forget: the stall is the server's, not the client's schedule.
    assert_eq!(r.counters.unsent, 0);
    assert!(text.contains("send lag (actual - intended send)"), "{text}");
}

#[test]
fn requests_due_before_the_end_are_sent_through_a_stall() {
    let _g = serial();
    // 16 in flight and a 300 ms stall from t = 1.425 s spans the end of a 1.5 s send phase:
    // the requests due in the last 75 ms cannot go out on time. They are sent when the
    // stall ends, so all R * T = 3000 scheduled requests go out, late, and the client says so.
    let server = Replica::udp(stall_once(2850, Duration::from_millis(300)));
    let cfg = LoadConfig {
        duration: Some(Duration::from_millis(1500)),
        load: LoadModel::Open {
            rate: 2000.0,
            arrival: Arrival::Fixed,
            max_in_flight: Some(16),
        },
        ..LoadConfig::open(server.addr(), 2000.0)
    };
    let r = run_with(&cfg).unwrap();
    server.stop();
    let text = r.human_summary();
    let c = &r.counters;
    assert_eq!(c.sent, 3000, "{text}");
    assert_eq!(c.unsent, 0, "{text}");
    assert_eq!(c.received + c.lost, 3000, "{text}");
    assert_eq!(r.corrected.len(), 3000);
    let lag = r.send_lag_summary().unwrap();
    assert_eq!(lag.count, 3000);
    assert!(lag.read.max_ns >= 150_000_000, "{lag:?}\n{text}");
    assert!(lag.read.behind, "{lag:?}\n{text}");
    assert!(r.corrected.max() >= 150_000_000, "{text}");
}

#[test]
fn a_client_forced_behind_reports_its_lag() {
    let _g = serial();
    // 5 M requests/s is far beyond what one thread sends through a kernel socket.
    let server = Replica::udp(answer_all());
    let rate = 5_000_000.0;
    let cfg = LoadConfig {
        duration: Some(Duration::from_millis(500)),
        timeout: Duration::from_millis(100),
        ..LoadConfig::open(server.addr(), rate)
    };
    let started = Instant::now();
    let r = run_with(&cfg).unwrap();
    server.stop();
    // A guard against a hang, not a timing: the debug build takes ~6 s for the 2.5 M-entry
    // schedule on an idle machine, and over 10 s on a loaded one.
    assert!(started.elapsed() < Duration::from_secs(60));
    let text = r.human_summary();
    let lag = r.send_lag_summary().unwrap();
    assert!(lag.read.behind, "{lag:?}\n{text}");
    assert!(r.behind_reason().is_some());
    assert!(text.contains("CLIENT FELL BEHIND"), "{text}");
    assert!(lag.read.p99_ns > 1_000_000, "{lag:?}");
    assert!(lag.read.late_1us_fraction > 0.5, "{lag:?}");
    let c = &r.counters;
    // Every request of the schedule (500 ms at 200 ns apart) is sent or charged as unsent.
    assert_eq!(c.sent + c.unsent, 2_500_000, "{c:?}");
    assert!(c.unsent > 0, "{c:?}");
    assert_eq!(r.corrected.len(), c.received + c.lost + c.unsent, "{c:?}");
    assert!(r.achieved_rate < rate * 0.99);
    let j = r.summary_json();
    assert_eq!(j["send_lag"]["behind"], true);
    assert_eq!(j["unsent"], c.unsent);
}

#[test]
fn one_loss_does_not_stall_a_window_1_loop() {
    let _g = serial();
    // The 100th request is never answered. Holding its slot for the 1 s timeout would end
    // this 1 s run at about 100 requests; giving the slot up after 10 ms keeps it going.
    let server = Replica::udp(drop_only(100));
    let cfg = LoadConfig {
        duration: Some(Duration::from_secs(1)),
        count: None,
        ..LoadConfig::closed(server.addr(), 1)
    };
    let r = run_with(&cfg).unwrap();
    server.stop();
    let text = r.human_summary();
    let c = &r.counters;
    assert!(c.sent > 1000, "{text}");
    assert_eq!(c.lost, 1, "{text}");
    assert_eq!(c.received, c.sent - 1, "{text}");
    assert!(c.slots_given_up >= 1, "{text}");
    assert_eq!(r.corrected.len(), c.sent);
    assert_eq!(at_or_above_timeout(&r, &r.corrected), 1, "{text}");
    assert!(text.contains("slots given up"), "{text}");
    assert_eq!(r.summary_json()["slot_deadline_ns"], 10_000_000);
    assert!(r.summary_json()["send_lag"].is_null());
}

#[test]
fn a_slow_reply_after_its_slot_deadline_is_still_received() {
    let _g = serial();
    // Every 50th reply takes 40 ms: past the 10 ms slot deadline, within the 1 s timeout.
    let server = Replica::udp(delay_every(50, Duration::from_millis(40)));
    let r = run_with(&closed(server.addr(), 1, 200)).unwrap();
    server.stop();
    let c = &r.counters;
    assert_eq!(
        (c.sent, c.received, c.lost, c.late),
        (200, 200, 0, 0),
        "{c:?}"
    );
    assert!(c.slots_given_up >= 4, "{c:?}");
    // Their real round trips are recorded.
    assert!(r.corrected.count_between(35_000_000, 900_000_000) >= 4);
}

#[test]
fn poisson_schedule_mean_gap() {
    for rate in [1_000.0, 33_333.3, 250_000.0] {
        let n = 5_000;
        let mut s = Schedule::new(rate, Arrival::Poisson, 42);
        let first = s.next_ns();
        let mut last = first;
        for _ in 0..n {
            last = s.next_ns();
        }
        let mean = (last - first) as f64 / n as f64;
        let expected = 1e9 / rate;
        assert!(
            (mean - expected).abs() < expected * 0.1,
            "rate {rate}: mean gap {mean} ns, expected {expected}"
        );
    }
    // Fixed: exactly 1/rate, no rounding drift.
    let mut s = Schedule::new(3.0, Arrival::Fixed, 0);
    let t: Vec<u64> = (0..4).map(|_| s.next_ns()).collect();
    assert_eq!(t, vec![0, 333_333_333, 666_666_666, 1_000_000_000]);
}

#[test]
fn poisson_open_loop_runs() {
    let _g = serial();
    let server = Replica::udp(answer_all());
    let cfg = LoadConfig {
        count: Some(1000),
        load: LoadModel::Open {
            rate: 5000.0,
            arrival: Arrival::Poisson,
            max_in_flight: None,
        },
        ..LoadConfig::open(server.addr(), 5000.0)
    };
    let r = run_with(&cfg).unwrap();
    assert_eq!(r.counters.sent, 1000);
    assert_eq!(r.counters.received + r.counters.lost, 1000);
    // Loopback can drop when the server thread is starved; most must arrive.
    assert!(r.counters.received >= 900, "{}", r.human_summary());
    // 1000 requests at 5000/s: about 0.2 s.
    assert!(r.measured_secs < 2.0, "{}", r.measured_secs);
}

/// A stand-in for main.rs, so the tests parse real command lines.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bypass-load-{}-{name}", std::process::id()))
}

#[test]
fn output_files() {
    let _g = serial();
    let server = Replica::udp(answer_all());
    let (json, csv, hgrm, hlog) = (tmp("o.json"), tmp("o.csv"), tmp("o.hgrm"), tmp("o.hlog"));
    let args = Cli::try_parse_from([
        "load",
        "--server",
        &server.addr().to_string(),
        "--rate",
        "3000",
        "--duration",
        "1.5",
        "--warmup",
        "0.2",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--hlog",
        hlog.to_str().unwrap(),
    ])
    .unwrap()
    .load;
    let cfg = args.to_config().unwrap();
    let r = run_with(&cfg).unwrap();
    server.stop();
    bypass::load::write_outputs(&args, &r).unwrap();
    let count = r.corrected.len();
    assert!(count > 3000, "{}", r.human_summary());
    assert!(r.counters.warmup_sent > 300);

    // JSON: every key.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let s = &v["summary"];
    // Issue 9 keys: the censoring point, send lag (open loop), the clock's calibration.
    assert_eq!(s["lost_recorded_at_ns"], 1_000_000_000u64, "{s}");
    assert!(s["at_least_timeout"].is_array(), "{s}");
    assert!(s["uncorrected"]["at_least_timeout"].is_array(), "{s}");
    let lag = &s["send_lag"];
    for k in ["count", "p50_ns", "p99_ns", "p999_ns", "max_ns"] {
        assert!(lag[k].is_u64(), "send_lag.{k}: {s}");
    }
    assert!(lag["late_1us_fraction"].is_f64(), "{s}");
    assert!(lag["behind"].is_boolean(), "{s}");
    assert_eq!(lag["count"], s["sent"], "{s}");
    let clock = &s["clock"];
    match clock["source"].as_str() {
        Some("tsc") => {
            assert!(clock["mhz"].as_f64().unwrap() > 0.0, "{s}");
            assert!(clock["uncertainty_ppm"].as_f64().unwrap() > 0.0, "{s}");
            assert!(clock["cross_check"].is_string() || clock["cross_check"].is_null());
        }
        Some("monotonic") => assert!(clock["mhz"].is_null(), "{s}"),
        other => panic!("clock.source {other:?}: {s}"),
    }
    assert!(s["slot_deadline_ns"].is_null(), "open loop: {s}");
    let pct = [
        "count",
        "min_ns",
        "mean_ns",
        "stddev_ns",
        "p50_ns",
        "p90_ns",
        "p99_ns",
        "p999_ns",
        "p9999_ns",
        "p99999_ns",
        "max_ns",
    ];
    for k in pct.iter().chain(&[
        "sent",
        "received",
        "lost",
        "duplicated",
        "reordered",
        "late",
        "invalid",
        "target_rate",
        "achieved_rate",
        "time_source",
        "uncorrected",
        "server_ns",
    ]) {
        assert!(s.get(*k).is_some(), "summary lacks {k}: {s}");
    }
    for sub in ["uncorrected", "server_ns"] {
        for k in pct {
            assert!(s[sub].get(k).is_some(), "{sub} lacks {k}");
        }
    }
    assert_eq!(s["count"], count);
    assert_eq!(s["target_rate"], 3000.0);
    let intervals = v["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), r.intervals.len());
    assert!(intervals.len() >= 2);
    for i in intervals {
        for k in [
            "t", "sent", "received", "lost", "rate", "p50_ns", "p99_ns", "p999_ns", "max_ns",
        ] {
            assert!(i.get(k).is_some(), "interval lacks {k}: {i}");
        }
    }

    // CSV: header plus one row per interval.
    let text = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "t,sent,received,lost,rate,p50_ns,p99_ns,p999_ns,max_ns"
    );
    assert_eq!(lines.len(), 1 + r.intervals.len());
    assert!(lines[1..].iter().all(|l| l.split(',').count() == 9));

    // .hgrm: Java header first, bucket footer last.
    let text = std::fs::read_to_string(&hgrm).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert!(text.lines().last().unwrap().starts_with("#[Buckets"));
    assert!(text.contains("#[Max     = "));

    // .hlog: an independent reader must see the same total count.
    match read_hlog_with_python(&hlog) {
        Err(reason) => println!("SKIPPED hlog read-back: {reason}"),
        Ok(got) => {
            assert_eq!(got["all"]["count"], count);
            assert_eq!(got["all"]["max"], r.corrected.max());
            assert_eq!(
                got["intervals"].as_array().unwrap().len(),
                r.intervals.len()
            );
        }
    }
    for p in [json, csv, hgrm, hlog] {
        let _ = std::fs::remove_file(p);
    }
}

fn flag_error(extra: &[&str]) -> LoadError {
    let mut argv = vec!["load", "--server", "127.0.0.1:7777"];
    argv.extend_from_slice(extra);
    let args = Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .load;
    args.to_config().unwrap_err()
}

#[test]
fn validation_errors_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--window", "0"], "--window"),
        (&["--rate", "-5"], "--rate"),
        (&["--rate", "NaN"], "--rate"),
        (&["--rate", "0"], "--rate"),
        (&["--rate", "100", "--window", "2"], "--rate"),
        (&["--size", "65476"], "--size"),
        (&["--method", "spin"], "--spin-ns"),
        (
            &["--method", "spin", "--spin-ns", "5", "--size", "8"],
            "--size",
        ),
        (&["--spin-ns", "5"], "--spin-ns"),
        (&["--arrival", "poisson"], "--arrival"),
        (&["--max-in-flight", "3"], "--max-in-flight"),
        (&["--rate", "10", "--max-in-flight", "0"], "--max-in-flight"),
        (&["--rate", "10", "--wait", "blocking"], "--wait"),
        (&["--duration", "0"], "--duration"),
        (&["--duration", "-1"], "--duration"),
        (&["--count", "0"], "--count"),
        (&["--warmup", "-1"], "--warmup"),
        (&["--timeout-ms", "0"], "--timeout-ms"),
        (&["--rate", "1e9", "--timeout-ms", "60000"], "--timeout-ms"),
        (&["--slot-deadline-ms", "0"], "--slot-deadline-ms"),
        (
            &["--rate", "10", "--slot-deadline-ms", "5"],
            "--slot-deadline-ms",
        ),
    ];
    for (extra, flag) in cases {
        let e = flag_error(extra);
        match &e {
            LoadError::Invalid(f) => assert_eq!(f.field, *flag, "{extra:?}: {e}"),
            other => panic!("{extra:?}: {other:?}"),
        }
        assert!(e.to_string().starts_with(flag), "{e}");
    }
    // The largest payload that fits is accepted; defaults need no duration or count.
    let ok = Cli::try_parse_from(["load", "--server", "127.0.0.1:7777", "--size", "65475"])
        .unwrap()
        .load
        .to_config()
        .unwrap();
    assert_eq!(ok.payload_len, 65_475);
    assert_eq!(ok.duration, Some(Duration::from_secs(5)));
    assert_eq!(ok.load, LoadModel::Closed { window: 1 });
    assert_eq!(ok.wait, WaitMode::Blocking);
    // A config built in code is validated by run_with too.
    let bad = LoadConfig::closed("127.0.0.1:7777".parse().unwrap(), 0);
    assert!(matches!(
        run_with(&bad),
        Err(LoadError::Invalid(f)) if f.field == "--window"
    ));
}
