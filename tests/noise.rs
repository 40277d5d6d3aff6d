//! `bypass noise`, `bypass floor` and `bypass syscalls` as a user (and the lab) runs them: the
//! probe finds a stall the test injects, the JSON contracts hold, output files parse, bad
//! input exits 2 naming its flag, and the floor stops on SIGINT.
#![forbid(unsafe_code)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;

use support::{bin, read_hlog_with_python, run, signal, spawn, strs, Signal};

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("bypass-noise-test-{}-{name}", std::process::id()))
}

fn available_cpus() -> Vec<usize> {
    let mut v: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .iter()
        .map(|c| c.id)
        .collect();
    v.sort_unstable();
    v
}

/// The one JSON object a `--json` run prints.
fn one_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one JSON line, got:\n{text}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an unsigned integer in {v}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn probe_finds_an_injected_stop() {
    let mut child = spawn(&strs(&[
        "noise",
        "--cpus",
        "0",
        "--duration",
        "2",
        "--json",
    ]));
    std::thread::sleep(Duration::from_millis(700));
    signal(child.id(), Signal::Stop);
    std::thread::sleep(Duration::from_millis(200));
    signal(child.id(), Signal::Cont);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "noise did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let v = one_json(&out);
    let cpu = &v["cpus"][0];
    assert!(u(cpu, "gap_max_ns") >= 150_000_000, "{cpu}");
    assert!(f(cpu, "lost_pct") >= 5.0, "{cpu}");
    assert!(u(cpu, "over_100us") >= 1, "{cpu}");
    assert!(u(cpu, "over_1ms") >= 1, "{cpu}");
    // The model sees the stop: at 1000/s about 200 sends land in it, delayed up to 200 ms.
    let m = &v["model"][0];
    assert!(f(m, "in_gap_100us") >= 0.05, "{m}");
    assert!(u(m, "delay_max_ns") >= 150_000_000, "{m}");
}

#[test]
fn noise_json_shape_and_hgrm_files() {
    let cpus = available_cpus();
    let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    let prefix = tmp("gaps");
    let prefix = prefix.to_str().unwrap();
    let args = strs(&[
        "noise",
        "--cpus",
        &list.join(","),
        "--duration",
        "0.3",
        "--model-rates",
        "1000,20000",
        "--json",
        "--hgrm",
        prefix,
    ]);
    let v = one_json(&run(&args, Duration::from_secs(20)));
    assert_eq!(v["type"], "noise");
    assert_eq!(f(&v, "duration_s"), 0.3);
    assert_eq!(u(&v, "threshold_ns"), 1000);
    assert!(v["time_source"].as_str().is_some());
    let got = v["cpus"].as_array().unwrap();
    assert_eq!(got.len(), cpus.len());
    for (c, want) in got.iter().zip(&cpus) {
        assert_eq!(u(c, "cpu"), *want as u64);
        for k in ["lost_pct", "gaps_per_s"] {
            assert!(f(c, k) >= 0.0, "{k} in {c}");
        }
        let (p50, p99, p999, max) = (
            u(c, "gap_p50_ns"),
            u(c, "gap_p99_ns"),
            u(c, "gap_p999_ns"),
            u(c, "gap_max_ns"),
        );
        assert!(p50 <= p99 && p99 <= p999 && p999 <= max, "{c}");
        assert!(u(c, "over_10us") >= u(c, "over_100us"));
        assert!(u(c, "over_100us") >= u(c, "over_1ms"));
        assert_eq!(u(c, "log_overflow"), 0);
        let others = c["other_tasks"].as_array().unwrap();
        assert!(others.len() <= 5 && others.len() <= u(c, "other_tasks_seen") as usize);
        for t in others {
            for k in ["pid", "tid", "ran_ns"] {
                u(t, k);
            }
            assert!(t["comm"].as_str().is_some());
            assert_ne!(u(t, "pid"), 0);
        }
        let hgrm = PathBuf::from(c["hgrm"].as_str().unwrap());
        assert_eq!(hgrm, PathBuf::from(format!("{prefix}-cpu{want}.hgrm")));
        let text = std::fs::read_to_string(&hgrm).unwrap();
        let (_, total) = bypass::stats::hgrm_read::parse(&text).unwrap();
        assert_eq!(total, u(c, "gaps"));
        let _ = std::fs::remove_file(hgrm);
    }
    let model = v["model"].as_array().unwrap();
    assert_eq!(model.len(), 2);
    assert_eq!(f(&model[0], "rate"), 1000.0);
    assert_eq!(u(&model[0], "sends"), 300);
    assert_eq!(u(&model[1], "sends"), 6000);
    for m in model {
        let (a, b, c) = (
            f(m, "in_gap_1us"),
            f(m, "in_gap_10us"),
            f(m, "in_gap_100us"),
        );
        assert!((0.0..=1.0).contains(&a) && b <= a && c <= b, "{m}");
        assert!(u(m, "delay_p50_ns") <= u(m, "delay_p99_ns"));
        assert!(u(m, "delay_p99_ns") <= u(m, "delay_p999_ns"));
        assert!(u(m, "delay_p999_ns") <= u(m, "delay_max_ns"));
    }
}

/// Checks an .hlog: one interval, its count as the python reader decodes it (when present).
fn check_hlog(path: &Path, count: u64) {
    let text = std::fs::read(path).unwrap();
    let intervals: Vec<_> = IntervalLogIterator::new(&text)
        .filter_map(|e| match e.unwrap() {
            LogEntry::Interval(i) => Some((i.duration().as_secs_f64(), i.max())),
            _ => None,
        })
        .collect();
    assert_eq!(intervals.len(), 1, "one interval with the whole run");
    assert!(intervals[0].0 > 0.0);
    match read_hlog_with_python(path) {
        Ok(got) => assert_eq!(got["all"]["count"], count),
        Err(why) => println!("SKIPPED hlog count read-back: {why}"),
    }
}

/// The first two CPUs this process may use, for the floor's two threads; None (and a
/// SKIPPED line for `what`) when there are fewer.
fn cpu_pair(what: &str) -> Option<[usize; 2]> {
    let cpus = available_cpus();
    if cpus.len() < 2 {
        println!("SKIPPED {what}: needs two CPUs, this process may use {cpus:?}");
        return None;
    }
    Some([cpus[0], cpus[1]])
}

#[test]
fn floor_both_modes_json_and_files() {
    let Some(cpus) = cpu_pair("floor") else {
        return;
    };
    let pair = format!("{},{}", cpus[0], cpus[1]);
    for mode in ["ring", "line", "descriptors"] {
        let (hgrm, hlog) = (tmp(&format!("{mode}.hgrm")), tmp(&format!("{mode}.hlog")));
        let args = strs(&[
            "floor",
            "--cpus",
            &pair,
            "--duration",
            "0.3",
            "--mode",
            mode,
            "--json",
            "--hgrm",
            hgrm.to_str().unwrap(),
            "--hlog",
            hlog.to_str().unwrap(),
        ]);
        let v = one_json(&run(&args, Duration::from_secs(20)));
        assert_eq!(v["type"], "floor");
        assert_eq!(v["mode"], mode);
        assert_eq!(u(&v, "size"), 32);
        assert_eq!(v["cpus"], serde_json::json!([cpus[0], cpus[1]]));
        assert!(v["time_source"].as_str().is_some());
        let s = &v["summary"];
        let count = u(s, "count");
        assert!(count > 0, "{s}");
        assert_eq!(u(s, "sent"), count);
        assert_eq!(u(s, "received"), count);
        assert_eq!(u(s, "lost"), 0);
        assert!(u(s, "min_ns") <= u(s, "p50_ns"));
        assert!(u(s, "p50_ns") <= u(s, "p90_ns") && u(s, "p90_ns") <= u(s, "p99_ns"));
        assert!(u(s, "p99_ns") <= u(s, "p999_ns") && u(s, "p999_ns") <= u(s, "p9999_ns"));
        assert!(u(s, "p9999_ns") <= u(s, "max_ns"));
        for k in ["mean_ns", "stddev_ns"] {
            f(s, k);
        }
        let secs = f(s, "measured_secs");
        assert!(secs > 0.2 && secs < 1.0, "{secs}");
        let (_, total) =
            bypass::stats::hgrm_read::parse(&std::fs::read_to_string(&hgrm).unwrap()).unwrap();
        assert_eq!(total, count);
        check_hlog(&hlog, count);
        let _ = std::fs::remove_file(hgrm);
        let _ = std::fs::remove_file(hlog);
    }
}

#[test]
fn floor_stops_on_sigint() {
    let Some(cpus) = cpu_pair("floor SIGINT") else {
        return;
    };
    let pair = format!("{},{}", cpus[0], cpus[1]);
    let mut child = spawn(&strs(&[
        "floor",
        "--cpus",
        &pair,
        "--duration",
        "60",
        "--json",
    ]));
    std::thread::sleep(Duration::from_millis(600));
    let sent = Instant::now();
    signal(child.id(), Signal::Int);
    while child.try_wait().unwrap().is_none() {
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "floor ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let v = one_json(&child.wait_with_output().unwrap());
    assert!(u(&v["summary"], "count") > 0);
    assert!(f(&v["summary"], "measured_secs") < 5.0);
}

#[test]
fn syscalls_json_shape() {
    let cpu = available_cpus()[0].to_string();
    let args = strs(&["syscalls", "--cpu", &cpu, "--iterations", "1400", "--json"]);
    let v = one_json(&run(&args, Duration::from_secs(20)));
    assert_eq!(v["type"], "syscalls");
    assert_eq!(u(&v, "cpu").to_string(), cpu);
    assert_eq!(u(&v, "iterations"), 1400);
    assert_eq!(u(&v, "batches"), 7);
    for k in ["getppid_ns", "udp_send_recv_ns", "unix_send_recv_ns"] {
        let s = &v[k];
        let (med, min, max) = (f(s, "median"), f(s, "min"), f(s, "max"));
        assert!(min > 0.0 && min <= med && med <= max, "{k}: {s}");
    }
}

/// Runs `args`, expects exit 2 and a message naming `flag`.
fn refused(args: &[&str], flag: &str) {
    let out = Command::new(bin()).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        err.contains(flag),
        "{args:?}: message does not name {flag}: {err}"
    );
    assert!(out.stdout.is_empty(), "{args:?} printed a result");
}

#[test]
fn bad_arguments_exit_2_naming_the_flag() {
    // Valid runs that the `with` cases below spoil with one bad flag each.
    let noise = ["noise", "--cpus", "0", "--duration", "1"];
    let floor = ["floor", "--cpus", "0,1", "--duration", "1"];
    let with = |base: &[&'static str], extra: &[&'static str]| [base, extra].concat();
    refused(&["noise", "--cpus", "99999", "--duration", "1"], "--cpus");
    refused(&["noise", "--cpus", "", "--duration", "1"], "--cpus");
    refused(&["noise", "--cpus", "0", "--duration", "0"], "--duration");
    refused(&["noise", "--cpus", "0", "--duration", "-1"], "--duration");
    refused(
        &["noise", "--cpus", "0", "--duration", "3601"],
        "--duration",
    );
    refused(&with(&noise, &["--threshold-ns", "0"]), "--threshold-ns");
    refused(&with(&noise, &["--model-rates", "0"]), "--model-rates");
    refused(&["floor", "--cpus", "0", "--duration", "1"], "--cpus");
    refused(&["floor", "--cpus", "0,99999", "--duration", "1"], "--cpus");
    refused(&["floor", "--cpus", "0,1", "--duration", "0"], "--duration");
    refused(&with(&floor, &["--size", "300"]), "--size");
    refused(&with(&floor, &["--mode", "line", "--size", "64"]), "--size");
    refused(&["syscalls", "--cpu", "99999"], "--cpu");
    refused(&["syscalls", "--iterations", "3"], "--iterations");
}
