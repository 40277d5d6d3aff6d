//! `bypass load --servers --fanout --hedge-after` against replicas living in the test
//! (tests/support/replica.rs): UDP sockets and TCP listeners on 127.0.0.1, and a unix-domain
//! stream listener, that answer RPC requests at once or hold chosen replies for a set time (a
//! timer queue, no spinning, so two cores hold the client and every replica). Which request a
//! replica holds is a rule of its request id, so the tail each run must see is known exactly.
#![forbid(unsafe_code)]

mod support;

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bypass::load::fanout::{HedgeAfter, Shape};
use bypass::load::{
    run_with, Arrival, LoadArgs, LoadConfig, LoadError, LoadModel, Report, Transport, WaitMode,
};
use clap::Parser;
use support::replica::{answer_all, hold_by_id, stall_once, Replica};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn fast(_: u64) -> Option<Duration> {
    None
}

const HOLD: Duration = Duration::from_millis(20);

/// 1 sub-request in 50 (by a hash of its id, so spread over the replicas) is held.
fn one_in_50(id: u64) -> Option<Duration> {
    slow_id(id).then_some(HOLD)
}

fn slow_id(id: u64) -> bool {
    // SplitMix64's finaliser: the slow ids fall anywhere, independent of the replica.
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).is_multiple_of(50)
}

/// The same odds as [`one_in_50`], other ids: a hedge to this replica is rarely held too.
fn other_one_in_50(id: u64) -> Option<Duration> {
    slow_id(id ^ 0x5555_5555).then_some(HOLD)
}

fn always_slow(_: u64) -> Option<Duration> {
    Some(Duration::from_millis(30))
}

fn config(
    servers: &[SocketAddr],
    fanout: u32,
    hedge: Option<HedgeAfter>,
    count: u64,
) -> LoadConfig {
    LoadConfig {
        count: Some(count),
        duration: Some(Duration::from_secs(60)),
        slot_deadline: Duration::from_millis(100),
        shape: Shape {
            servers: servers.to_vec(),
            fanout,
            hedge,
        },
        // Hedging needs a busy wait; the replicas sleep, so the other core holds them all.
        wait: if hedge.is_some() {
            WaitMode::Busy
        } else {
            WaitMode::Blocking
        },
        ..LoadConfig::closed(servers[0], 1)
    }
}

/// `cfg` over `transport`. Several tcp replicas are polled in turn: busy wait.
fn over(transport: Transport, cfg: LoadConfig) -> LoadConfig {
    let wait = match transport {
        Transport::Tcp => WaitMode::Busy,
        _ => cfg.wait,
    };
    LoadConfig {
        transport,
        wait,
        ..cfg
    }
}

fn at_least(h: &hdrhistogram::Histogram<u64>, ns: u64) -> u64 {
    h.count_between(ns, h.max().max(ns))
}

fn run(cfg: &LoadConfig) -> Report {
    run_with(cfg).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn fanout_1_through_the_fanout_path_equals_plain_requests() {
    let _g = serial();
    let r = Replica::udp(hold_by_id(one_in_50));
    let count = 1000;
    // A hedge threshold no reply reaches puts K = 1 through the sub-request machinery.
    let never = Some(HedgeAfter::Fixed { ns: 60_000_000_000 });
    let fan = run(&config(&[r.addr()], 1, never, count));
    let plain = run(&LoadConfig {
        shape: Shape::default(),
        ..config(&[r.addr()], 1, None, count)
    });
    for rep in [&fan, &plain] {
        let c = &rep.counters;
        assert_eq!((c.sent, c.received, c.lost, c.errors), (count, count, 0, 0));
        assert_eq!(rep.corrected.len(), count);
        // Ids 0..count, the same in both runs, so the same held ones.
        let held = (0..count).filter(|&i| slow_id(i)).count() as u64;
        assert_eq!(at_least(&rep.corrected, HOLD.as_nanos() as u64), held);
    }
    assert!(plain.fanout.is_none());
    let f = fan.summary_report().shared.fanout.expect("fan-out figures");
    assert_eq!((f.fanout, f.replicas), (1, 1));
    assert_eq!(f.sub.figures.read.count, count);
    assert_eq!(
        f.p_logical, f.p_sub,
        "K = 1: the logical request is its sub-request"
    );
    assert_eq!(f.p_model, f.p_sub);
    let h = f.hedge.expect("hedge figures");
    assert_eq!((h.duplicates, h.won, h.wasted), (0, 0, 0));
    assert_eq!(r.stop(), 2 * count);
}

/// K = 3 over three replicas holding 1 sub-request in 50: the logical tail is the slowest
/// sub-request's, exactly the held ids, and the amplification is the independent model's.
fn assert_fanout_tail(replicas: Vec<Replica>, transport: Transport) {
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr()).collect();
    let count = 1500;
    let k = 3u64;
    let rep = run(&over(transport, config(&addrs, k as u32, None, count)));
    let c = &rep.counters;
    assert_eq!((c.sent, c.received, c.lost), (count, count, 0));
    // Sub-request ids are n x K + j: the logical request n is held iff one of them is.
    let slow_subs = (0..count * k).filter(|&i| slow_id(i)).count() as u64;
    let slow_logical = (0..count)
        .filter(|&n| (0..k).any(|j| slow_id(n * k + j)))
        .count() as u64;
    let hold = HOLD.as_nanos() as u64;
    let fan = rep.fanout.as_ref().unwrap();
    assert_eq!(fan.sub.len(), count * k);
    // Every held one is at least the hold; a stall of this shared machine longer than the
    // hold may add a few (at most 1 in 100 here).
    let (subs_held, logical_held) = (at_least(&fan.sub, hold), at_least(&rep.corrected, hold));
    assert!(
        (slow_subs..=slow_subs + count * k / 100).contains(&subs_held),
        "{subs_held} vs {slow_subs}"
    );
    assert!(
        (slow_logical..=slow_logical + count / 100).contains(&logical_held),
        "{logical_held} vs {slow_logical}"
    );
    // And the measured amplification is the independent model's, within sampling noise
    // (1500 logical requests: a binomial's 3 sigma).
    let p = subs_held as f64 / (count * k) as f64;
    let model = 1.0 - (1.0 - p).powi(k as i32);
    let measured = logical_held as f64 / count as f64;
    let sigma = (model * (1.0 - model) / count as f64).sqrt();
    assert!(
        (measured - model).abs() < 3.0 * sigma,
        "{measured} vs {model}"
    );
    let f = rep.summary_report().shared.fanout.unwrap();
    assert_eq!((f.fanout, f.replicas), (3, 3));
    assert!((f.p_model - (1.0 - (1.0 - f.p_sub).powi(3))).abs() < 1e-12);
    assert!(f.p_logical >= f.p_sub, "{f:?}");
    // Each replica got its third: sub-request n x K + j goes to replica (n x K + j) mod 3.
    for r in replicas {
        assert_eq!(r.stop(), count);
    }
}

/// Hedging after 2 ms between a replica that holds every reply 30 ms and one that answers at
/// once: every request first sent to the slow one is won by its hedge, every duplicate is
/// counted, wasted or won.
fn assert_hedging_around_slow(slow: Replica, quick: Replica, transport: Transport) {
    let count = 200;
    let after = Duration::from_millis(2);
    let hedge = Some(HedgeAfter::Fixed {
        ns: after.as_nanos() as u64,
    });
    let rep = run(&over(
        transport,
        config(&[slow.addr(), quick.addr()], 1, hedge, count),
    ));
    let c = &rep.counters;
    assert_eq!(
        (c.sent, c.received, c.lost, c.duplicated),
        (count, count, 0, 0)
    );
    let f = rep.summary_report().shared.fanout.unwrap();
    let h = f.hedge.unwrap();
    // Even requests go to the slow replica first: each is hedged to the quick one, which
    // wins; its slow reply comes 30 ms later, wasted. A quick first copy can be hedged too
    // if this machine stalls past 2 ms; its duplicate then loses.
    assert_eq!(h.won, count / 2, "{h:?}");
    assert!(
        (count / 2..=count / 2 + 10).contains(&h.duplicates),
        "{h:?}"
    );
    assert_eq!(
        h.wasted, h.duplicates,
        "every losing reply arrived and was counted"
    );
    assert!((h.duplicates_pct - h.duplicates as f64 * 100.0 / count as f64).abs() < 1e-9);
    assert_eq!(h.threshold_ns, after.as_nanos() as u64);
    // Every hedged request waited at least the threshold; none waited for the slow reply.
    let two_ms = after.as_nanos() as u64;
    assert!(at_least(&rep.corrected, two_ms) >= count / 2);
    assert!(
        rep.corrected.max() < 25_000_000,
        "max {}",
        rep.corrected.max()
    );
    let (s, q) = (slow.stop(), quick.stop());
    assert_eq!(s + q, count + h.duplicates);
    assert_eq!(s, count / 2 + (h.duplicates - count / 2));
}

#[test]
fn fanout_tail_is_the_slowest_sub_request_and_matches_the_model() {
    let _g = serial();
    let replicas = (0..3).map(|_| Replica::udp(hold_by_id(one_in_50)));
    assert_fanout_tail(replicas.collect(), Transport::Udp);
}

#[test]
fn tcp_fanout_tail_is_the_slowest_sub_request_and_matches_the_model() {
    let _g = serial();
    // Window 1 and one sub-request per replica: one request in flight per connection, so
    // the replies' request order holds nothing back and the held ids are the UDP run's.
    let replicas = (0..3).map(|_| Replica::tcp(hold_by_id(one_in_50)));
    assert_fanout_tail(replicas.collect(), Transport::Tcp);
}

#[test]
fn hedging_around_an_always_slow_replica_counts_every_duplicate() {
    let _g = serial();
    let slow = Replica::udp(hold_by_id(always_slow));
    assert_hedging_around_slow(slow, Replica::udp(hold_by_id(fast)), Transport::Udp);
}

#[test]
fn tcp_hedging_around_an_always_slow_replica_counts_every_duplicate() {
    let _g = serial();
    // The slow connection answers in request order, every reply 30 ms after its request:
    // the order costs nothing more, and the hedges go out on the other connection.
    let slow = Replica::tcp(hold_by_id(always_slow));
    assert_hedging_around_slow(slow, Replica::tcp(hold_by_id(fast)), Transport::Tcp);
}

#[test]
fn unix_fanout_to_its_one_server_answers_every_sub_request() {
    let _g = serial();
    let r = Replica::unix(hold_by_id(one_in_50));
    let (count, k) = (1000u64, 3u64);
    let cfg = LoadConfig {
        transport: Transport::Unix,
        server: None,
        server_path: Some(r.path().to_path_buf()),
        shape: Shape {
            fanout: k as u32,
            ..Shape::default()
        },
        ..config(&["127.0.0.1:9".parse().unwrap()], 1, None, count)
    };
    let rep = run(&cfg);
    let c = &rep.counters;
    assert_eq!(
        (c.sent, c.received, c.lost, c.errors),
        (count, count, 0, 0),
        "{c:?}"
    );
    assert_eq!((c.duplicated, c.late, c.invalid), (0, 0, 0), "{c:?}");
    assert_eq!(rep.corrected.len(), count);
    let fan = rep.fanout.as_ref().unwrap();
    assert_eq!(fan.sub.len(), count * k, "every sub-request answered once");
    let hold = HOLD.as_nanos() as u64;
    // The logical request n is held iff one of its sub-requests n x K + j is.
    let slow_logical = (0..count)
        .filter(|&n| (0..k).any(|j| slow_id(n * k + j)))
        .count() as u64;
    // All K go down the one connection, answered in request order: a held sub-request holds
    // the ones after it too (head-of-line), so the held sub-requests are, per logical
    // request, those from its first held one on.
    let hol_subs: u64 = (0..count)
        .filter_map(|n| (0..k).find(|&j| slow_id(n * k + j)).map(|j| k - j))
        .sum();
    let (subs_held, logical_held) = (at_least(&fan.sub, hold), at_least(&rep.corrected, hold));
    // A stall of this shared machine longer than the hold may add a few (at most 1 in 100).
    assert!(
        (hol_subs..=hol_subs + count * k / 100).contains(&subs_held),
        "{subs_held} vs {hol_subs}"
    );
    assert!(
        (slow_logical..=slow_logical + count / 100).contains(&logical_held),
        "{logical_held} vs {slow_logical}"
    );
    let f = rep.summary_report().shared.fanout.unwrap();
    assert_eq!((f.fanout, f.replicas), (3, 1));
    assert_eq!(f.sub.figures.read.count, count * k);
    assert!(f.hedge.is_none());
    assert_eq!(r.stop(), count * k);
}

#[test]
fn open_loop_fanout_charges_a_stalled_replica_from_the_intended_send() {
    let _g = serial();
    // K = 3 over three replicas: sub-request j of every logical request goes to replica j,
    // so replica 0 sees every logical request. Its 200 ms stall from its 1000th request, at
    // R = 2000 logical requests/s, holds about R*D = 400 of them; the k-th held waits about
    // D - k/R from its intended send, so about R*D/2 = 200 exceed D/2 (the arithmetic of
    // tests/load_udp.rs's plain stall, through the fan-out path). Bounds are generous: a
    // shared VM adds its own delays.
    let (rate, d_ms) = (2000.0, 200.0);
    let replicas = [
        Replica::udp(stall_once(1000, Duration::from_millis(d_ms as u64))),
        Replica::udp(answer_all()),
        Replica::udp(answer_all()),
    ];
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr()).collect();
    let cfg = LoadConfig {
        duration: Some(Duration::from_millis(1500)),
        load: LoadModel::Open {
            rate,
            arrival: Arrival::Fixed,
            max_in_flight: None,
        },
        shape: Shape {
            servers: addrs.clone(),
            fanout: 3,
            hedge: None,
        },
        ..LoadConfig::open(addrs[0], rate)
    };
    let rep = run(&cfg);
    let text = rep.human_summary();
    let c = &rep.counters;
    // Fire and forget: every scheduled logical request went out on time, the stall is the
    // replica's.
    assert_eq!(c.unsent, 0, "{text}");
    assert!(c.sent >= 2700, "{text}");
    assert_eq!(c.received + c.lost, c.sent, "{text}");
    let fan = rep.fanout.as_ref().unwrap();
    assert_eq!(fan.sub.len(), 3 * rep.corrected.len(), "{text}");
    let held = rate * d_ms / 1e3;
    let lost = c.lost as f64;
    assert!(lost < held, "{text}");
    let above = |h: &hdrhistogram::Histogram<u64>, ms: f64| {
        h.count_between((ms * 1e6) as u64, u64::MAX / 2) as f64
    };
    // The logical requests and their held sub-requests: each held logical request has
    // exactly one held sub-request (only replica 0 stalls), so both see the same ~200.
    for (what, h) in [("logical", &rep.corrected), ("sub-request", &fan.sub)] {
        let half = above(h, d_ms / 2.0);
        assert!(
            (held / 2.0 * 0.6..held / 2.0 * 1.5 + lost).contains(&half),
            "{what}: {half} above D/2, expected ~{} (+ up to {lost} lost)\n{text}",
            held / 2.0
        );
    }
    // The slowest answered logical request waited about the stall.
    let censor = rep.censor_ns();
    let max_answered = rep
        .corrected
        .iter_recorded()
        .map(|v| v.value_iterated_to())
        .filter(|&v| v < censor)
        .max()
        .unwrap_or(0) as f64
        / 1e6;
    assert!(
        (d_ms * 0.75..d_ms + 100.0).contains(&max_answered),
        "max {max_answered} ms\n{text}"
    );
    let f = rep.summary_report().shared.fanout.unwrap();
    assert_eq!((f.fanout, f.replicas), (3, 3));
    // A logical request is as slow as its slowest sub-request, so it is slow at least as
    // often as a sub-request is. Not when the stall's released burst overflowed the client's
    // socket buffer: lost requests sit at the timeout, the sub-request p99 can land there
    // too, and nothing is above it (seen on a loaded machine: 1 sub-request, 0 logical).
    if c.lost == 0 {
        assert!(f.p_logical >= f.p_sub, "{f:?}");
    }
    let seen: Vec<u64> = replicas.into_iter().map(Replica::stop).collect();
    assert!(
        seen.iter().all(|&n| n == c.sent),
        "each replica gets one sub-request of every logical request: {seen:?} vs {}",
        c.sent
    );
}

#[test]
fn a_percentile_threshold_hedges_the_slowest_few() {
    let _g = serial();
    let replicas = [
        Replica::udp(hold_by_id(one_in_50)),
        Replica::udp(hold_by_id(other_one_in_50)),
    ];
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr()).collect();
    let count = 2000;
    let rep = run(&config(
        &addrs,
        1,
        Some(HedgeAfter::Percentile(90.0)),
        count,
    ));
    assert_eq!(rep.counters.received, count);
    let h = rep.summary_report().shared.fanout.unwrap().hedge.unwrap();
    // Every held first copy (after the first 100 replies) is hedged, to a replica that
    // holds other ids: nearly every such hedge wins.
    let held_after_warm = (100..count).filter(|&i| slow_id(i)).count() as u64;
    assert!(h.duplicates >= held_after_warm, "{h:?}");
    assert!(h.won >= held_after_warm * 9 / 10, "{h:?}");
    assert_eq!(h.wasted, h.duplicates, "{h:?} {:?}", rep.counters);
    assert!(
        h.threshold_ns > 0 && h.threshold_ns < HOLD.as_nanos() as u64,
        "{h:?}"
    );
    // The held requests no longer wait the hold.
    assert!(at_least(&rep.corrected, HOLD.as_nanos() as u64) <= 10);
}

fn plan(extra: &[&str]) -> Result<bypass::load::LoadPlan, LoadError> {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }
    let mut a = vec!["load", "--count", "10"];
    a.extend(extra);
    let args = Cli::try_parse_from(a).unwrap().load;
    bypass::load::LoadPlan::from_args(&args)
}

fn flag_error(extra: &[&str]) -> LoadError {
    plan(extra).unwrap_err()
}

#[test]
fn bad_shapes_are_refused_naming_the_flag() {
    let field = |e: LoadError| match e {
        LoadError::Invalid(f) => f.field,
        e => panic!("{e}"),
    };
    let s = "127.0.0.1:7777,127.0.0.1:7778";
    assert_eq!(
        field(flag_error(&["--server", "127.0.0.1:7", "--fanout", "0"])),
        "--fanout"
    );
    assert_eq!(
        field(flag_error(&["--server", "127.0.0.1:7", "--fanout", "65"])),
        "--fanout"
    );
    for bad in ["p100", "0ms", "soon"] {
        assert_eq!(
            field(flag_error(&[
                "--server",
                "127.0.0.1:7",
                "--hedge-after",
                bad
            ])),
            "--hedge-after"
        );
    }
    assert_eq!(
        field(flag_error(&["--servers", "127.0.0.1:0", "--fanout", "2"])),
        "--servers"
    );
    assert_eq!(
        field(flag_error(&[
            "--transport",
            "tcp",
            "--servers",
            s,
            "--wait",
            "blocking"
        ])),
        "--wait"
    );
    assert_eq!(
        field(flag_error(&[
            "--transport",
            "unix",
            "--server-path",
            "/tmp/x",
            "--servers",
            s
        ])),
        "--servers"
    );
    let ok = |extra: &[&str]| plan(extra).unwrap().config;
    let c = ok(&["--servers", s, "--fanout", "3", "--hedge-after", "p95"]);
    assert_eq!(
        c.server,
        Some("127.0.0.1:7777".parse().unwrap()),
        "--server defaults to the first"
    );
    assert_eq!(c.shape.fanout, 3);
    assert_eq!(c.shape.hedge, Some(HedgeAfter::Percentile(95.0)));
    assert_eq!(c.wait, WaitMode::Busy, "hedging waits busy");
    assert_eq!(c.replica_addrs().len(), 2);
}
