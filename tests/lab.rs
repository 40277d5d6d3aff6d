//! `bypass lab` end to end: the CI scenario runs through the binary and leaves its files and
//! nothing else; broken scenarios are refused before anything exists; Ctrl-C cleans up.

#![forbid(unsafe_code)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bypass::stats::hgrm_read;
use serde_json::Value;
use support::*;

/// A scratch folder removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bypass-lab-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .to_string_lossy()
        .into_owned()
}

/// Everything named after lab process `pid` that still exists: namespaces, root-namespace
/// interfaces, DPDK runtime folders and hugepage files.
fn leftovers(pid: u32) -> Vec<String> {
    let tag = format!("bplab{pid}");
    let ifprefix = format!("bl{pid}t");
    let mut left = Vec::new();
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    for l in String::from_utf8_lossy(&ns.stdout).lines() {
        if l.starts_with(&tag) {
            left.push(format!("netns {l}"));
        }
    }
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(&ifprefix) {
            left.push(format!("link {l}"));
        }
    }
    for dir in ["/var/run/dpdk", "/dev/hugepages"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&tag) {
                    left.push(format!("{dir}/{n}"));
                }
            }
        }
    }
    left
}

/// Runs `bypass lab ARGS`, bounded; returns (pid, exit code, stderr).
fn lab(args: &[String], limit: Duration) -> (u32, i32, String) {
    let mut child = Command::new(bin())
        .arg("lab")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bypass lab");
    let pid = child.id();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            // SIGINT lets it clean up.
            let _ = bypass::os::process::signal(pid, Signal::Int);
            std::thread::sleep(Duration::from_secs(15));
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "bypass lab {args:?} overran {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        pid,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ci_scenario_runs_end_to_end_and_leaves_nothing_behind() {
    if !need_root("ci_scenario_runs_end_to_end_and_leaves_nothing_behind") {
        return;
    }
    let dir = TempDir::new("ci");
    let out = dir.0.join("results");
    let scenario = repo("configs/lab-ci.toml");
    let (pid, code, stderr) = lab(
        &[
            scenario.clone(),
            "--out".into(),
            out.to_string_lossy().into(),
        ],
        Duration::from_secs(180),
    );
    assert_eq!(code, 0, "bypass lab failed:\n{stderr}");
    assert!(stderr.contains("[1/"), "no progress display:\n{stderr}");

    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let results: Value = serde_json::from_str(&text).expect("results.json parses");
    let s = bypass::lab::scenario::Scenario::from_file(Path::new(&scenario)).unwrap();
    let paths = results["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().map(|p| p["name"].as_str().unwrap()).collect();
    // A chain path is one path per depth.
    let plan = s.resolve().unwrap();
    let want: Vec<&str> = plan.paths.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, want, "one result per path, in order");
    for k in ["cpu_model", "kernel", "dpdk_version", "git_rev"] {
        assert!(
            !results["environment"][k].as_str().unwrap_or("").is_empty(),
            "environment.{k} missing"
        );
    }
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");

    let mut ok = 0;
    for p in paths {
        let name = p["name"].as_str().unwrap();
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("| {name} |"))),
            "report.md has no row for {name}"
        );
        match p["status"].as_str().unwrap() {
            "ok" => {
                ok += 1;
                // Every server stopped when asked and gave its final report (the floor has
                // no server).
                assert!(p["warnings"].is_null(), "{name}: {}", p["warnings"]);
                if p["kind"] != "limit" {
                    assert!(p["server"]["type"] == "final", "{name}: no server report");
                }
                let hgrm = out.join(p["hgrm"].as_str().expect("hgrm named"));
                let (rows, total) = hgrm_read::parse(&std::fs::read_to_string(&hgrm).unwrap())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(total > 0 && !rows.is_empty(), "{name}: empty histogram");
                let lat = &p["latency"];
                assert!(lat["p50_ns"].as_u64().unwrap() > 0, "{name}: {lat}");
                assert!(lat["p99_ns"].as_u64() >= lat["p50_ns"].as_u64());
                assert_eq!(
                    lat["count"].as_u64().unwrap(),
                    total,
                    "{name}: .hgrm vs results"
                );
                let loss = &p["loss"];
                assert!(loss["received"].as_u64().unwrap() > 0, "{name}: {loss}");
                if name.starts_with("sweep") {
                    assert_eq!(p["sweep"].as_array().unwrap().len(), 2, "{name}");
                } else {
                    check_rounds_and_intervals(name, p, &report);
                }
            }
            // Every program the lab drives is in this build: nothing is skipped any more.
            st => panic!("{name}: {st}: {}", p["error"]),
        }
    }
    assert!(ok >= 2, "{ok} paths ran:\n{stderr}");
    assert_eq!(ok, paths.len(), "every path ran:\n{stderr}");
    for svg in results["plots"].as_array().unwrap() {
        let svg = out.join(svg.as_str().unwrap());
        let text = std::fs::read_to_string(&svg).unwrap();
        let doc =
            roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }
    assert!(out.join("latency-percentiles.svg").exists());
    check_platform_floor_and_verdicts(&results, &report);
    let chains: Vec<&str> = s
        .paths
        .iter()
        .filter(|p| p.kind == bypass::lab::scenario::PathKind::Chain)
        .map(|p| p.name.as_str())
        .collect();
    check_chains(&results, &report, &chains);
    check_compare(&out);
    check_tails(&results, &report);
    let left = leftovers(pid);
    assert!(left.is_empty(), "the lab left {left:?}");
}

/// The tails paths: every round keeps its fan-out counts (each of K = 3 sub-requests of
/// every logical request measured; the hedged twin sent duplicates), and the tax table
/// quotes the amplification, the hedging and the fast path's JSON from them.
fn check_tails(results: &Value, report: &str) {
    let path = |name: &str| {
        results["paths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no path {name}"))
    };
    let mut duplicates = 0;
    for (name, hedged) in [("tails-fan-3", false), ("tails-fan-3-hedge-p90", true)] {
        for r in path(name)["rounds"].as_array().unwrap() {
            let t = &r["tails"];
            let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{name}: {k}: {r}"));
            assert_eq!(n("fanout"), 3, "{name}: {t}");
            assert!(n("logical") > 0, "{name}: {t}");
            assert!(n("slow_logical") <= n("logical"), "{name}: {t}");
            if hedged {
                assert_eq!(n("firsts"), 3 * n("logical"), "{name}: {t}");
                duplicates += n("duplicates");
            } else {
                assert_eq!(n("sub"), 3 * n("logical"), "{name}: {t}");
                assert_eq!(n("duplicates"), 0, "{name}: {t}");
            }
        }
    }
    assert!(duplicates > 0, "a p90 hedge sends some");
    let row = |claim: &str| {
        report
            .lines()
            .find(|l| l.starts_with(&format!("| {claim}")))
            .unwrap_or_else(|| panic!("no tax row {claim}"))
    };
    for (claim, from) in [
        ("tail amplification", "tails-fan-3 (K = 3)"),
        (
            "hedged requests: p99.9",
            "tails-fan-3 over tails-fan-3-hedge-p90",
        ),
        ("hedged requests: the extra load", "(2 rounds pooled)"),
        (
            "the serialization tax: json (small message, fast path server)",
            "codec-json-small minus codec-echo-small",
        ),
    ] {
        let r = row(claim);
        assert!(!r.contains("| not measured |") && r.contains(from), "{r}");
    }
}

/// Two rounds per latency path, each with its figures and interval log; merged p50 / p99 /
/// p99.9 with lo <= value <= hi and the rounds' min..max, in results.json and report.md.
fn check_rounds_and_intervals(name: &str, p: &Value, report: &str) {
    let rounds = p["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{name}: two rounds");
    for (i, r) in rounds.iter().enumerate() {
        assert_eq!(r["round"].as_u64(), Some(i as u64 + 1), "{name}: {r}");
        assert_eq!(r["status"], "ok", "{name}: {r}");
        assert!(r["latency"]["p50_ns"].as_u64().unwrap() > 0, "{name}: {r}");
        assert!(
            r["hlog"].is_string(),
            "{name}: round {} has no interval log",
            i + 1
        );
    }
    for k in ["p50", "p99", "p999"] {
        let c = &p["intervals"][k];
        let v = |f: &str| {
            c[f].as_u64()
                .unwrap_or_else(|| panic!("{name}.{k}.{f}: {c}"))
        };
        assert!(
            v("lo_ns") <= v("value_ns") && v("value_ns") <= v("hi_ns"),
            "{name} {k}: {c}"
        );
        assert!(v("round_min_ns") <= v("round_max_ns"), "{name} {k}: {c}");
        assert_eq!(v("rounds"), 2, "{name} {k}");
        assert!(c["enough"].is_boolean(), "{name} {k}");
    }
    assert_eq!(
        p["intervals"]["p50"]["value_ns"], p["latency"]["p50_ns"],
        "{name}: the table shows the merged rounds"
    );
    let row = report
        .lines()
        .find(|l| l.starts_with(&format!("| {name} |")))
        .unwrap();
    assert!(
        row.contains(" [") && row.contains(".."),
        "{name}: no interval or spread in {row}"
    );
}

/// The scenario's chains at depths 0 and 1: a results.json row and a report.md row per depth,
/// every depth-1 round with its relay's counts, which match the client's, a slope row each.
fn check_chains(results: &Value, report: &str, want: &[&str]) {
    assert!(!want.is_empty(), "the CI scenario has a chain");
    let chains = results["chains"].as_array().expect("results.chains");
    let names: Vec<&str> = chains
        .iter()
        .map(|c| c["chain"].as_str().unwrap())
        .collect();
    assert_eq!(names, want);
    assert!(report.contains("## The sidecar tax: latency against chain depth"));
    assert!(report.contains("![chain-depth.svg](chain-depth.svg)"));
    for c in chains {
        let chain = c["chain"].as_str().unwrap();
        let depths = c["depths"].as_array().unwrap();
        assert_eq!(depths.len(), 2, "{chain}: {c}");
        for d in depths {
            let (n, path) = (d["depth"].as_u64().unwrap(), d["path"].as_str().unwrap());
            assert_eq!(path, format!("{chain}-d{n}"));
            assert_eq!(d["counts_disagreed"], 0, "{path}: {d}");
            assert!(
                report
                    .lines()
                    .any(|l| l.starts_with(&format!("| {chain} | {n} | {path} |"))),
                "report.md has no depth row for {path}"
            );
        }
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&format!("| {chain} | {} |", c["hop"].as_str().unwrap()))),
            "no slope row for {chain}"
        );
        let slopes = c["slopes"].as_array().unwrap();
        assert_eq!(slopes.len(), 3);
        assert_eq!(
            slopes[0]["per_round_ns"].as_array().unwrap().len(),
            2,
            "{chain}: one slope per round"
        );
        assert!(!c["placement"].as_str().unwrap().is_empty());
    }
    let paths = results["paths"].as_array().unwrap();
    for p in paths.iter().filter(|p| p["kind"] == "chain") {
        let depth = p["chain"]["depth"].as_u64().unwrap();
        for r in p["rounds"].as_array().unwrap() {
            let hops = r["hops"].as_array().map_or(0, Vec::len);
            assert_eq!(hops as u64, depth, "{}: {r}", p["name"]);
            if depth == 1 {
                let h = &r["hops"][0];
                let sent = r["loss"]["sent"].as_u64().unwrap();
                let received = r["loss"]["received"].as_u64().unwrap();
                let (f, back) = (
                    h["forwarded"].as_u64().unwrap(),
                    h["returned"].as_u64().unwrap(),
                );
                assert!(
                    f >= sent && back >= received && f == back,
                    "{}: {r}",
                    p["name"]
                );
            }
        }
    }
}

/// The platform section (probes before every round and at the end), the floor row, the
/// syscall row, the sockperf cross-check and at least one verdict line.
fn check_platform_floor_and_verdicts(results: &Value, report: &str) {
    let pl = &results["platform"];
    let probes = pl["probes"].as_array().expect("platform.probes");
    // Two rounds of 5 latency paths, the sweep, the end.
    assert!(probes.len() >= 12, "{} probes: {pl}", probes.len());
    for pr in probes {
        let cpus = pr["cpus"].as_array().unwrap();
        assert!(!cpus.is_empty(), "{pr}");
        assert!(
            cpus.iter().all(|c| c["lost_pct"].as_f64().is_some()),
            "{pr}"
        );
    }
    assert!(pl["end_probe"].is_u64(), "no end probe");
    assert!(report.contains("## Platform") && report.contains("| CPU | probes | lost %"));
    for r in results["paths"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["rounds"].as_array().unwrap())
    {
        assert!(r["probe_before"].is_u64(), "a round without its probe: {r}");
    }
    let sc = &pl["syscalls"];
    for k in ["getppid_ns", "udp_send_recv_ns", "unix_send_recv_ns"] {
        assert!(
            sc[k]["median"].as_f64().unwrap() > 0.0,
            "syscalls.{k}: {sc}"
        );
    }
    assert!(report.contains("| ns per call |"), "no syscall row");
    let floor = results["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "limit")
        .expect("the floor path");
    assert_eq!(floor["status"], "ok", "{}", floor["error"]);
    assert!(report.contains("## The floor"));
    assert!(
        report.contains("x the shared-memory floor ("),
        "no path shown as a floor multiple"
    );
    let tap = results["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fastpath-tap")
        .unwrap();
    assert_eq!(tap["cross_check"]["p50"]["n"], 2, "{}", tap["cross_check"]);
    // The scenario's checksum field reached the server, whose port reported it.
    let c = &tap["checksum"]["server"][0];
    assert_eq!(c["port"], "net_tap0", "{c}");
    assert_eq!(
        (&c["requested"], &c["resolved"]),
        (&"verify".into(), &"verify".into()),
        "{c}"
    );
    assert!(
        tap["checksum"]["client"].is_null(),
        "a kernel client has none"
    );
    assert!(
        report.contains("; checksums: server net_tap0 verify (requested))."),
        "no checksum policy on the path's line"
    );
    for p in results["paths"].as_array().unwrap() {
        if p["kind"] == "kernel-serve" {
            assert!(p["checksum"].is_null(), "{}: {}", p["name"], p["checksum"]);
        }
    }
    assert!(
        report.contains("| fastpath-tap | 2 |"),
        "no cross-check row"
    );
    let verdicts = results["verdicts"].as_array().expect("verdicts");
    assert!(
        verdicts
            .iter()
            .any(|v| v["a"] == "fastpath-tap" && v["b"] == "kernel-udp-veth" && v["what"] == "p50"),
        "{verdicts:?}"
    );
    assert!(
        report.contains("- fastpath-tap vs kernel-udp-veth, p50: "),
        "no verdict line"
    );
}

/// `bypass lab --compare` renders a run against itself as no difference anywhere, and
/// refuses a missing folder with exit 2.
fn check_compare(out: &Path) {
    let o = out.to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let r = Command::new(bin()).arg("lab").args(args).output().unwrap();
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    };
    let (code, md, err) = run(&["--compare", &o, &o]);
    assert_eq!(code, Some(0), "{err}");
    assert!(md.contains("| kernel-udp-veth | p50 |"), "{md}");
    assert!(
        md.contains("kernel-udp-veth new vs old, p50: no measurable difference"),
        "{md}"
    );
    let (code, _, err) = run(&["--compare", "/nonexistent-bypass-run", &o]);
    assert_eq!(code, Some(2));
    assert!(err.contains("OLD_DIR /nonexistent-bypass-run"), "{err}");
}

const GOOD: &str = r#"
name = "broken"
[[topology]]
name = "v"
kind = "veth"
server_ip = "198.18.201.1"
client_ip = "198.18.201.2"

[[path]]
name = "k"
kind = "kernel-serve"
topology = "v"
backend = "busy"
plan = { mode = "ping-pong", duration = 1 }
"#;

#[test]
fn broken_scenarios_are_refused_before_anything_is_created() {
    let cases = [
        (
            GOOD.replace("backend = \"busy\"", "backend = \"busy\"\nturbo = true"),
            "turbo",
        ),
        (GOOD.replace("kind = \"veth\"\n", ""), "kind"),
        (
            GOOD.replace("topology = \"v\"", "topology = \"w\""),
            "path[0].topology",
        ),
        (
            GOOD.replace(
                "backend = \"busy\"",
                "backend = \"busy\"\nclient_cpu = 1\nserver_cpu = 1",
            ),
            "path[0].client_cpu",
        ),
        (
            GOOD.replace("198.18.201.2", "192.168.1.2"),
            "topology[0].client_ip",
        ),
    ];
    let dir = TempDir::new("broken");
    for (i, (text, field)) in cases.iter().enumerate() {
        let file = dir.0.join(format!("broken{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = dir.0.join(format!("out{i}"));
        let (pid, code, stderr) = lab(
            &[
                file.to_string_lossy().into(),
                "--out".into(),
                out.to_string_lossy().into(),
            ],
            Duration::from_secs(20),
        );
        assert_eq!(code, 2, "case {i}: {stderr}");
        assert!(
            stderr.contains(field),
            "case {i}: the message names {field}: {stderr}"
        );
        assert!(!out.exists(), "case {i}: results folder created");
        if is_root() {
            let left = leftovers(pid);
            assert!(left.is_empty(), "case {i}: {left:?}");
        }
    }
}

#[test]
fn ctrl_c_stops_the_lab_and_cleans_up() {
    if !need_root("ctrl_c_stops_the_lab_and_cleans_up") {
        return;
    }
    let dir = TempDir::new("intr");
    let file = dir.0.join("long.toml");
    std::fs::write(
        &file,
        r#"
name = "interrupted"
[placement]
hugepages = false
[defaults]
poll_mode = "adaptive"
wait = "blocking"
[[topology]]
name = "tap"
kind = "tap"
server_ip = "198.18.202.1"
client_ip = "198.18.202.2"
[[path]]
name = "long"
kind = "fastpath"
topology = "tap"
plan = { mode = "ping-pong", duration = 60 }
[[path]]
name = "never"
kind = "fastpath"
topology = "tap"
plan = { mode = "ping-pong", duration = 60 }
"#,
    )
    .unwrap();
    let out = dir.0.join("out");
    let mut child = Command::new(bin())
        .args([
            "lab",
            &file.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the measurement runs: the client's JSON file is not there yet but the
    // namespace and the fast path are.
    let start = Instant::now();
    let ns = format!("bplab{pid}-t0s");
    loop {
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let up = String::from_utf8_lossy(&list.stdout).contains(&ns);
        if up && start.elapsed() > Duration::from_secs(4) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lab never built {ns}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, Signal::Int);
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(30), "lab ignored SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out_status = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out_status.stderr);
    assert_eq!(out_status.status.code(), Some(130), "{stderr}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["interrupted"], true);
    for p in results["paths"].as_array().unwrap() {
        assert_eq!(p["status"], "skipped", "{p}");
        assert!(p["error"].as_str().unwrap().contains("interrupted"), "{p}");
    }
    let left = leftovers(pid);
    assert!(left.is_empty(), "the lab left {left:?}");
}

/// `bypass serve`'s parser lives in the binary, so the lab's serve command line is checked
/// against it here: every flag the builder writes, with its values, parses (clap reads them
/// in order before it meets `--help`), and a misspelt flag does not (the check can fail).
#[test]
fn the_labs_serve_command_is_what_bypass_serve_parses() {
    use bypass::contract::serve::{ServeCommand, ServiceArg};
    use bypass::options::PollMode;
    let cmd = ServeCommand {
        ip: "198.18.102.1".parse().unwrap(),
        poll_mode: PollMode::Adaptive,
        duration_s: 12.5,
        interval_ms: Some(500),
        mac: Some(bypass::wire::MacAddress([2, 0, 0, 0, 0, 1])),
        burst: Some(32),
        checksum: Some(bypass::options::ChecksumPolicy::Trust),
        joined: false,
        relays: Vec::new(),
        service: ServiceArg::default(),
        eal: vec!["--no-pci".into()],
    };
    let parses = |mut argv: Vec<String>| {
        // The EAL part is DPDK's, not clap's.
        let flags = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
        argv.truncate(flags);
        argv.push("--help".into());
        let out = Command::new(env!("CARGO_BIN_EXE_bypass"))
            .args(&argv)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = parses(cmd.argv());
    assert_eq!(code, Some(0), "{:?}: {stderr}", cmd.argv());
    for (from, to) in [
        ("--poll-mode", "--poll-mod"),
        ("adaptive", "sometimes"),
        ("trust", "often"),
    ] {
        let broken: Vec<String> = cmd
            .argv()
            .into_iter()
            .map(|a| if a == from { to.to_string() } else { a })
            .collect();
        assert_eq!(parses(broken).0, Some(2), "{to} must be refused");
    }
}
