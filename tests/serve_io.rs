//! `bypass serve --mode io` end to end on virtual PMDs: packets forwarded and counted,
//! clean stops, no leaked buffers, and clear refusals of bad input.
#![forbid(unsafe_code)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

fn serve_args(extra: &[&str], eal: Vec<String>) -> Vec<String> {
    let mut a = strs(&["serve", "--mode", "io", "--poll-mode", "adaptive", "--json"]);
    a.extend(strs(extra));
    a.push("--".into());
    a.extend(eal);
    a
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} missing or not a number in {v}"))
}

/// Runs `serve --mode io EXTRA` on `workers` worker lcores and `vdevs` to its end (30 s at
/// most); it must exit 0. Returns its JSON lines.
fn run_to_end(tag: &str, extra: &[&str], workers: usize, vdevs: &[&str]) -> Vec<Value> {
    let p = Prefix::new(tag);
    let out = run(
        &serve_args(extra, p.eal(workers, vdevs)),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&out.stdout)
}

/// Checks the invariants every final report must hold and returns it.
fn check_final(lines: &[Value]) -> &Value {
    let fin = lines.last().expect("at least one line");
    assert_eq!(fin["type"], "final", "last line is the final report: {fin}");
    let (rx, tx, drops) = (u(fin, "rx"), u(fin, "tx"), u(fin, "drops"));
    assert!(rx > 0, "forwarded nothing: {fin}");
    assert_eq!(rx, tx + drops, "rx == tx + drops: {fin}");
    let mut wsum = 0;
    for w in fin["workers"].as_array().unwrap() {
        assert_eq!(u(w, "rx"), u(w, "tx") + u(w, "tx_drops"), "per worker: {w}");
        wsum += u(w, "rx");
    }
    assert_eq!(wsum, rx, "workers add up to the total");
    assert_eq!(u(&fin["mempool"], "in_use"), 0, "buffers leaked: {fin}");
    assert!(u(&fin["mempool"], "capacity") > 0);
    fin
}

#[test]
fn null_forwards_and_stops_on_duration() {
    if !need_root("null_forwards_and_stops_on_duration") {
        return;
    }
    let lines = run_to_end(
        "null",
        &["--duration", "1.5", "--interval-ms", "200"],
        1,
        &["net_null0"],
    );
    let fin = check_final(&lines);
    assert_eq!(fin["stop_reason"], "duration");
    assert_eq!(fin["mode"], "io");
    let intervals: Vec<&Value> = lines.iter().filter(|l| l["type"] == "interval").collect();
    assert!(
        intervals.len() >= 3,
        "interval lines every 200 ms: {}",
        intervals.len()
    );
    for i in &intervals {
        assert!(i["rx_pps"].is_number() && i["tx_pps"].is_number() && i["drops"].is_number());
        assert_eq!(i["workers"].as_array().unwrap().len(), 1);
    }
    let port = &fin["ports"][0];
    assert_eq!(port["name"], "net_null0");
    assert!(
        port.get("checksum").is_none(),
        "io mode checks none: {port}"
    );
    // The PMD's own counters agree with ours.
    assert_eq!(u(&port["stats"], "ipackets"), u(fin, "rx"));
    assert_eq!(u(&port["stats"], "opackets"), u(fin, "tx"));
}

#[test]
fn ring_loopback_with_tx_first() {
    if !need_root("ring_loopback_with_tx_first") {
        return;
    }
    let lines = run_to_end(
        "ring",
        &["--duration", "1", "--tx-first", "64"],
        1,
        &["net_ring0"],
    );
    let fin = check_final(&lines);
    let port = &fin["ports"][0];
    assert_eq!(u(port, "tx_first"), 64);
    // Everything primed is either still circulating (drained at exit) or was dropped; with a
    // loopback ring and no tx failures nothing is lost, so the 64 are all drained.
    assert_eq!(u(port, "drained") + u(fin, "drops"), 64, "{fin}");
    // A ring loopback only ever carries the primed packets, so rx counts whole laps.
    assert!(u(fin, "rx") >= 64, "{fin}");
}

#[test]
fn paired_rings_forward_across() {
    if !need_root("paired_rings_forward_across") {
        return;
    }
    let lines = run_to_end(
        "pair",
        &[
            "--duration",
            "1",
            "--tx-first",
            "32",
            "--topology",
            "paired",
        ],
        2,
        &["net_ring0", "net_ring1"],
    );
    let fin = check_final(&lines);
    let workers = fin["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    for w in workers {
        assert!(u(w, "rx") > 0, "both directions carry traffic: {w}");
    }
    let ports = fin["ports"].as_array().unwrap();
    let s = |i: usize, k: &str| u(&ports[i]["stats"], k);
    for i in 0..2 {
        // Each net_ring vdev is its own loopback: what a port sends, it receives, by its
        // worker or by the drain at exit.
        assert_eq!(s(i, "opackets"), s(i, "ipackets"));
        assert_eq!(
            u(&workers[i], "rx") + u(&ports[i], "drained"),
            s(i, "ipackets")
        );
        // The worker reading port i transmits on the other port, after that port's priming.
        assert_eq!(workers[i]["port"], ports[i]["name"]);
        let other = i ^ 1;
        assert_eq!(
            u(&workers[i], "tx") + u(&ports[other], "tx_first"),
            s(other, "opackets")
        );
    }
}

fn stops_cleanly_on(sig: Signal, name: &str) {
    let p = Prefix::new(name);
    let mut child = spawn(&serve_args(
        &["--interval-ms", "100"],
        p.eal(1, &["net_null0"]),
    ));
    let seen = read_until(&mut child, Duration::from_secs(20), |l| {
        l.contains("\"interval\"")
    });
    assert!(
        seen.iter().any(|l| l.contains("\"interval\"")),
        "no interval line before the signal: {seen:?}"
    );
    let status = stop_child(&mut child, sig, Duration::from_secs(15), name);
    assert!(status.success(), "{name}: exit status {status}");
}

#[test]
fn exits_zero_on_sigint() {
    if need_root("exits_zero_on_sigint") {
        stops_cleanly_on(Signal::Int, "sigint");
    }
}

#[test]
fn exits_zero_on_sigterm() {
    if need_root("exits_zero_on_sigterm") {
        stops_cleanly_on(Signal::Term, "sigterm");
    }
}

#[test]
fn final_report_after_signal_holds_invariants() {
    if !need_root("final_report_after_signal_holds_invariants") {
        return;
    }
    let p = Prefix::new("sigfinal");
    let mut child = spawn(&serve_args(
        &["--interval-ms", "100"],
        p.eal(1, &["net_null0"]),
    ));
    let stdout = child.stdout.take().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(child.id(), Signal::Int);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    let lines = json_lines(text.as_bytes());
    let fin = check_final(&lines);
    assert_eq!(fin["stop_reason"], "signal");
}

#[test]
fn human_output_without_json() {
    if !need_root("human_output_without_json") {
        return;
    }
    let p = Prefix::new("human");
    let mut args = strs(&[
        "serve",
        "--poll-mode",
        "adaptive",
        "--duration",
        "0.5",
        "--",
    ]);
    args.extend(p.eal(1, &["net_null0"]));
    let out = run(&args, Duration::from_secs(30));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stopped by duration"), "{text}");
    assert!(text.contains("mempool: 0 of"), "{text}");
    // DPDK's own log must not pollute stdout.
    assert!(!text.contains("EAL:"), "{text}");
}

#[test]
fn config_file_with_cli_override() {
    if !need_root("config_file_with_cli_override") {
        return;
    }
    let p = Prefix::new("cfg");
    let dir = std::env::temp_dir().join(format!("bypass-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("serve.toml");
    let eal: Vec<String> = p.eal(1, &["net_null0"]);
    let eal_toml: Vec<String> = eal.iter().map(|a| format!("{a:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "mode = \"io\"\npoll_mode = \"adaptive\"\nduration = 30\nburst = 16\njson = true\neal = [{}]\n",
            eal_toml.join(", ")
        ),
    )
    .unwrap();
    // --duration on the command line overrides the file's 30 s.
    let out = run(
        &strs(&[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--duration",
            "0.5",
        ]),
        Duration::from_secs(20),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out.stdout);
    let fin = check_final(&lines);
    assert!(fin["elapsed_s"].as_f64().unwrap() < 10.0);
}

fn refused(args: &[&str], config: Option<&str>, expect_in_stderr: &str) {
    let mut a = strs(args);
    let dir = std::env::temp_dir().join(format!(
        "bypass-bad-{}-{}",
        std::process::id(),
        expect_in_stderr.len()
    ));
    if let Some(text) = config {
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}.toml", expect_in_stderr.replace(' ', "_")));
        std::fs::write(&path, text).unwrap();
        a.insert(1, "--config".into());
        a.insert(2, path.to_str().unwrap().into());
    }
    let out = run(&a, Duration::from_secs(20));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "{a:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(expect_in_stderr),
        "{a:?}: stderr lacks {expect_in_stderr:?}:\n{err}"
    );
}

#[test]
fn bad_command_lines_are_refused() {
    refused(&["serve", "--bogus"], None, "--bogus");
    refused(&["serve", "--mode", "teleport"], None, "teleport");
    refused(&["serve", "--queues", "zero"], None, "zero");
    refused(&["serve", "--checksum", "often"], None, "--checksum");
    refused(
        &["serve", "--burst", "0", "--", "-l", "0,1"],
        None,
        "`burst`",
    );
    refused(
        &["serve", "--duration=-3", "--", "-l", "0"],
        None,
        "`duration`",
    );
    refused(&["serve"], None, "no EAL arguments");
    refused(
        &["serve", "--config", "/nonexistent/serve.toml"],
        None,
        "cannot read",
    );
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    refused(&["serve"], Some("bursty = 3\n"), "bursty");
    refused(&["serve"], Some("queues = 0\n"), "`queues`");
    refused(&["serve"], Some("poll_mode = \"lazy\"\n"), "lazy");
    refused(&["serve"], Some("checksum = \"often\"\n"), "`checksum`");
    refused(&["serve"], Some("mbufs = \"many\"\n"), "mbufs");
    refused(&["serve"], Some("this is not toml"), "config");
}

#[test]
fn unknown_port_and_too_few_lcores_are_refused() {
    if !need_root("unknown_port_and_too_few_lcores_are_refused") {
        return;
    }
    let p = Prefix::new("noport");
    let mut a = strs(&["serve", "--ports", "net_null7", "--duration", "1", "--"]);
    a.extend(p.eal(1, &["net_null0"]));
    let out = run(&a, Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("net_null7") && err.contains("net_null0"),
        "{err}"
    );

    let p = Prefix::new("fewcores");
    let mut a = strs(&["serve", "--queues", "2", "--duration", "1", "--"]);
    a.extend(p.eal(1, &["net_null0"]));
    let out = run(&a, Duration::from_secs(20));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("worker lcores"), "{err}");

    // net_null offers no rx checksum offload: asking for it is refused, not downgraded.
    let p = Prefix::new("nooffload");
    let mut a = strs(&[
        "serve",
        "--mode",
        "rpc",
        "--ip",
        "198.18.0.1",
        "--checksum",
        "offload",
        "--duration",
        "1",
        "--",
    ]);
    a.extend(p.eal(1, &["net_null0"]));
    let out = run(&a, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`checksum`") && err.contains("net_null0") && err.contains("offload"),
        "{err}"
    );
}
