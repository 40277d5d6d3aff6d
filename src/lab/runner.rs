//! Runs a resolved scenario (its plan): builds the topologies, runs the paths in order with a progress
//! display on stderr, stops at Ctrl-C, tears everything down, writes the results.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::chain::figures::ChainInfo;
use super::chain::plan::placement_text;
use super::environment::Environment;
use super::paths::{self, Ctx, PathError};
use super::platform::{self, Platform, Probe};
use super::plot::{self, Series};
use super::results::{LabResults, Latency, Loss, PathResult, Round, Status};
use super::scenario::{LabPlan, ResolvedPath};
use super::topology::{lab_tag, remove_dpdk_files, Topology};
use super::{chain, figures, proc, report};
use crate::os::signal;
use crate::stats::{hgrm_read, write_percentile_distribution};
use hdrhistogram::Histogram;

/// "YYYY-mm-dd HH:MM:SS" and "YYYYmmdd-HHMMSS" of a time, UTC.
pub fn utc_stamp(t: SystemTime) -> (String, String) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    (
        format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        format!("{y:04}{m:02}{d:02}-{h:02}{mi:02}{s:02}"),
    )
}

/// The lab's scratch folder (sockets, pcap files); removed on drop.
struct RunDir(PathBuf);

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The progress line: "[i/N] path  elapsed", refreshed on a terminal, one line per event
/// otherwise (logs stay readable).
struct Progress {
    state: Arc<Mutex<Option<(String, Instant)>>>,
    stop: Arc<AtomicBool>,
    tty: bool,
    start: Instant,
}

impl Progress {
    fn new() -> Progress {
        let p = Progress {
            state: Arc::new(Mutex::new(None)),
            stop: Arc::new(AtomicBool::new(false)),
            tty: std::io::stderr().is_terminal(),
            start: Instant::now(),
        };
        if p.tty {
            let (state, stop, start) = (p.state.clone(), p.stop.clone(), p.start);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                    let st = state.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((label, t)) = st.as_ref() {
                        eprint!(
                            "\r\x1b[K{label}  {:.0} s  (lab {:.0} s)",
                            t.elapsed().as_secs_f64(),
                            start.elapsed().as_secs_f64()
                        );
                        let _ = std::io::stderr().flush();
                    }
                }
            });
        }
        p
    }

    fn begin(&self, label: String, what: &str) {
        if !self.tty {
            eprintln!("{label}: {what}");
        }
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some((label, Instant::now()));
    }

    fn end(&self, line: String) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *st = None;
        if self.tty {
            eprint!("\r\x1b[K");
        }
        eprintln!("{line}  [lab {:.0} s]", self.start.elapsed().as_secs_f64());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn summary_line(r: &PathResult) -> String {
    match r.status {
        Status::Ok => {
            let mut s = String::from("ok");
            if let Some(l) = &r.latency {
                s += &format!(
                    ", p50 {:.2} us, p99 {:.2} us",
                    l.p50_ns as f64 / 1e3,
                    l.p99_ns as f64 / 1e3
                );
            }
            if !r.warnings.is_empty() {
                s += &format!(" (warning: {})", r.warnings.join("; "));
            }
            if let Some(t) = &r.throughput {
                s += &format!(
                    ", bypass {:.2} Mpps, testpmd {:.2} Mpps, ratio {:.3}",
                    t.bypass_pps / 1e6,
                    t.testpmd_pps / 1e6,
                    t.ratio
                );
            }
            s
        }
        st => format!("{}: {}", st.as_str(), r.error.as_deref().unwrap_or("")),
    }
}

/// Removes anything named after this lab that a guard may have missed (a namespace whose
/// deletion failed while a process was still inside, DPDK files of a killed child).
fn sweep_leftovers() {
    let tag = lab_tag();
    if let Ok(list) = proc::run("ip", &["netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if name.starts_with(&tag) {
                let _ = proc::run("ip", &["netns", "del", name]);
            }
        }
    }
    remove_dpdk_files(&tag);
}

fn plots(out: &Path, results: &LabResults) -> Vec<String> {
    let mut files = Vec::new();
    let series: Vec<Series> = results
        .paths
        .iter()
        .filter(|p| p.status == Status::Ok)
        // A sweep's open-loop points have their own plot, and so do a chain's depths; here
        // the closed loops compare.
        .filter(|p| p.sweep.is_empty() && p.chain.is_none())
        .filter_map(|p| {
            let h = hgrm_read::read_file(&out.join(p.hgrm.as_ref()?)).ok()?;
            Some(Series {
                label: p.name.clone(),
                points: plot::percentile_points(&h),
            })
        })
        .collect();
    if !series.is_empty() {
        let svg = plot::percentile_svg(
            &format!("{}: round-trip latency by percentile", results.scenario),
            &series,
        );
        if std::fs::write(out.join("latency-percentiles.svg"), svg).is_ok() {
            files.push("latency-percentiles.svg".to_string());
        }
    }
    let mut load = Vec::new();
    for p in results.paths.iter().filter(|p| !p.sweep.is_empty()) {
        for (q, f) in [("p50", 0), ("p99", 1), ("p99.9", 2)] {
            load.push(Series {
                label: format!("{} {q}", p.name),
                // A point that got no reply at all has no latency to draw (not 0 us), and a
                // percentile at the timeout is only a lower bound (lost requests): not drawn
                // as if it were a measured 1 s.
                points: p
                    .sweep
                    .iter()
                    .filter(|pt| pt.latency.count > 0)
                    .filter_map(|pt| {
                        let ns = [pt.latency.p50_ns, pt.latency.p99_ns, pt.latency.p999_ns][f];
                        (!pt.is_censored(ns)).then(|| (pt.achieved_rate, ns as f64 / 1000.0))
                    })
                    .collect(),
            });
        }
    }
    if let Some(f) = chain_plot(out, results) {
        files.push(f);
    }
    if !load.is_empty() {
        let svg = plot::load_svg(
            &format!(
                "{}: round-trip latency versus achieved load",
                results.scenario
            ),
            &load,
        );
        if std::fs::write(out.join("latency-vs-load.svg"), svg).is_ok() {
            files.push("latency-vs-load.svg".to_string());
        }
    }
    files
}

/// p50, p99 and p99.9 of every chain's merged rounds against depth (report: the sidecar tax).
fn chain_plot(out: &Path, results: &LabResults) -> Option<String> {
    let mut series = Vec::new();
    for c in &results.chains {
        for (q, f) in [("p50", 0), ("p99", 1), ("p99.9", 2)] {
            series.push(Series {
                label: format!("{} {q}", c.chain),
                points: c
                    .depths
                    .iter()
                    .filter(|d| d.status == Status::Ok)
                    .filter_map(|d| {
                        let l = d.latency.as_ref()?;
                        let ns = [l.p50_ns, l.p99_ns, l.p999_ns][f];
                        Some((f64::from(d.depth), ns as f64 / 1000.0))
                    })
                    .collect(),
            });
        }
    }
    if series.is_empty() {
        return None;
    }
    let svg = plot::depth_svg(
        &format!(
            "{}: round-trip latency against chain depth",
            results.scenario
        ),
        &series,
    );
    let file = report::CHAIN_PLOT;
    std::fs::write(out.join(file), svg).ok()?;
    Some(file.to_string())
}

/// One step of the lab: a path, and its round when it repeats (None: a sweep or throughput
/// path, which runs once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub path: usize,
    pub round: Option<u32>,
}

/// The interleaved order: round 1 of every path in the scenario's order (sweeps and
/// throughput paths in their place, once), then round 2 of every path that repeats, and so
/// on, so slow drift of the machine spreads over all paths instead of landing on one.
pub fn schedule(paths: &[ResolvedPath]) -> Vec<Job> {
    let most = paths.iter().map(|p| p.repeats).max().unwrap_or(1);
    let mut jobs = Vec::new();
    for k in 1..=most {
        for (i, p) in paths.iter().enumerate() {
            if !p.is_latency() {
                if k == 1 {
                    jobs.push(Job {
                        path: i,
                        round: None,
                    });
                }
            } else if k <= p.repeats {
                jobs.push(Job {
                    path: i,
                    round: Some(k),
                });
            }
        }
    }
    jobs
}

/// The CPUs a path runs on, each once.
fn path_cpus(p: &ResolvedPath) -> Vec<usize> {
    let mut c = vec![p.client_cpu, p.server_cpu];
    c.dedup();
    c
}

/// Runs `bypass noise` on `cpus` and records the probe (or why there is none).
fn take_probe(
    bin: &Path,
    platform: &mut Platform,
    cpus: &[usize],
    model_rates: &[f64],
    (label, path, round): (String, Option<String>, Option<u32>),
    start: Instant,
) -> Option<usize> {
    if platform.probe_s <= 0.0 || signal::stop_requested() {
        return None;
    }
    match platform::probe(bin, cpus, platform.probe_s, model_rates) {
        Ok((cpus, model)) => {
            platform.probes.push(Probe {
                label,
                path,
                round,
                duration_s: platform.probe_s,
                cpus,
                model,
                at_s: start.elapsed().as_secs_f64(),
            });
            Some(platform.probes.len() - 1)
        }
        Err(e) => {
            platform.errors.push(format!("probe {label}: {e}"));
            None
        }
    }
}

/// What a finished run of a path (or of one of its rounds) ended as.
fn status_of(outcome: Result<(), PathError>) -> (Status, Option<String>) {
    match outcome {
        Ok(()) => (Status::Ok, None),
        // Every failure while the lab is stopping is the interrupt's: a wait cut short by
        // it, or a child it killed (Ctrl-C reaches the whole process group: `ip`, a server,
        // a client).
        Err(PathError::Failed(e)) if signal::stop_requested() => (
            Status::Skipped,
            Some(format!("interrupted (Ctrl-C) while: {e}")),
        ),
        Err(PathError::Failed(e)) => (Status::Failed, Some(e)),
    }
}

/// Moves one round's run into its path's result: the round's figures, its histogram for the
/// merge, the commands, and the latest server and client reports.
fn fold_round(
    r: &mut PathResult,
    hists: &mut Vec<Histogram<u64>>,
    k: u32,
    mut rr: PathResult,
    probe_before: Option<usize>,
) {
    let ok = rr.status == Status::Ok;
    if let (true, Some(h)) = (ok, rr.histogram.take()) {
        hists.push(h);
    }
    let hlog = format!("{}-r{k}.hlog", r.name);
    r.rounds.push(Round {
        round: k,
        status: rr.status,
        error: rr.error.clone(),
        latency: if ok { rr.latency.clone() } else { None },
        loss: rr.loss.clone(),
        rate_per_s: rr.rate_per_s,
        hlog: rr
            .commands
            .iter()
            .any(|c| c.contains(&hlog))
            .then_some(hlog),
        probe_before,
        probe_after: None,
        noisy: false,
        cross_check: if ok {
            rr.cross.as_ref().and_then(|c| c.latency.clone())
        } else {
            None
        },
        cross_check_first: rr.cross.is_some() && k.is_multiple_of(2),
        send_lag: rr.send_lag.take(),
        elapsed_s: rr.elapsed_s,
        hops: std::mem::take(&mut rr.hops),
        counts_disagree: rr.counts_disagree,
        tails: rr.tails.take(),
    });
    r.commands.append(&mut rr.commands);
    r.warnings
        .extend(rr.warnings.iter().map(|w| format!("round {k}: {w}")));
    if rr.server.is_some() {
        r.server = rr.server;
    }
    if rr.client_report.is_some() {
        r.client_report = rr.client_report;
    }
    if !rr.checksum.is_empty() {
        r.checksum = rr.checksum;
    }
    r.elapsed_s += rr.elapsed_s;
}

/// A repeated path's figures from its rounds: status, the merged histogram (written as
/// `<path>.hgrm`), its percentiles with intervals, summed loss, noisy flags.
fn finish_rounds(
    out: &Path,
    r: &mut PathResult,
    hists: &[Histogram<u64>],
    platform: &Platform,
) -> Result<(), String> {
    for round in &mut r.rounds {
        round.probe_after = round
            .probe_before
            .map(|i| i + 1)
            .filter(|&i| i < platform.probes.len());
        round.noisy = [round.probe_before, round.probe_after]
            .iter()
            .flatten()
            .any(|&i| platform.probes[i].max_lost_pct() > platform.noisy_lost_pct);
    }
    r.noisy_rounds = r.rounds.iter().filter(|x| x.noisy).count();
    let first_bad = r.rounds.iter().find(|x| x.status == Status::Failed);
    let ok = r.rounds.iter().filter(|x| x.status == Status::Ok).count();
    (r.status, r.error) = match (first_bad, ok) {
        (Some(b), _) => (
            Status::Failed,
            Some(format!(
                "round {}: {}",
                b.round,
                b.error.as_deref().unwrap_or("?")
            )),
        ),
        (None, 0) => (
            Status::Skipped,
            r.rounds.first().and_then(|x| x.error.clone()),
        ),
        (None, _) => (Status::Ok, None),
    };
    if r.status == Status::Ok && ok < r.rounds.len() {
        r.warnings.push(format!(
            "{ok} of {} rounds ran: {}",
            r.rounds.len(),
            r.rounds
                .iter()
                .find_map(|x| x.error.clone())
                .unwrap_or_default()
        ));
    }
    let Some(first) = hists.first() else {
        return Ok(());
    };
    let mut merged = first.clone();
    for h in &hists[1..] {
        merged
            .add(h)
            .map_err(|e| format!("merging rounds: {e:?}"))?;
    }
    let hgrm = format!("{}.hgrm", r.name);
    let mut f = std::fs::File::create(out.join(&hgrm)).map_err(|e| format!("{hgrm}: {e}"))?;
    write_percentile_distribution(&merged, &mut f, 5, 1000.0)
        .and_then(|_| f.flush())
        .map_err(|e| format!("{hgrm}: {e}"))?;
    r.hgrm = Some(hgrm);
    r.latency = Some(Latency::from_histogram(&merged));
    r.intervals = Some(figures::intervals(&merged, &r.rounds));
    let losses: Vec<&Loss> = r.rounds.iter().filter_map(|x| x.loss.as_ref()).collect();
    r.loss = Some(Loss {
        sent: losses.iter().map(|l| l.sent).sum(),
        received: losses.iter().map(|l| l.received).sum(),
        lost: losses.iter().map(|l| l.lost).sum(),
    });
    let rates: Vec<f64> = r.rounds.iter().filter_map(|x| x.rate_per_s).collect();
    r.rate_per_s = (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64);
    if r.cross_check.is_none() && r.rounds.iter().any(|x| x.cross_check.is_some()) {
        r.cross_check = figures::cross_check(r, "sockperf");
    }
    Ok(())
}

/// Runs the scenario into `out`; returns the results (already written).
pub fn run(plan: &LabPlan, scenario_file: Option<&Path>, out: &Path) -> Result<LabResults, String> {
    let wall = Instant::now();
    let (started, _) = utc_stamp(SystemTime::now());
    let env = Environment::capture(
        plan.placement.client_cpu,
        plan.placement.server_cpu,
        plan.placement.hugepages,
        plan.poll_mode.as_str(),
    );
    let bin = std::env::current_exe().map_err(|e| format!("cannot find the bypass binary: {e}"))?;
    let run_dir = RunDir(std::env::temp_dir().join(format!("bypass-lab-{}", std::process::id())));
    std::fs::create_dir_all(&run_dir.0).map_err(|e| format!("{}: {e}", run_dir.0.display()))?;
    if let Some(f) = scenario_file {
        let _ = std::fs::copy(f, out.join("scenario.toml"));
    }

    let progress = Progress::new();
    let jobs = schedule(&plan.paths);
    let n = jobs.len();
    let mut results: Vec<PathResult> = plan
        .paths
        .iter()
        .map(|p| {
            let topo = p.topology.map_or("-", |t| plan.topologies[t].name.as_str());
            let mut r = PathResult::new(
                &p.name,
                p.kind.as_str(),
                topo,
                p.client.as_str(),
                &p.description,
            );
            r.server_cpu = p.server_cpu;
            r.client_cpu = p.client_cpu;
            r.chain = p.chain.as_ref().map(|c| ChainInfo {
                chain: c.chain.clone(),
                hop: c.hop.as_str().into(),
                depth: c.depth,
                placement: placement_text(c.hop, p.server_cpu, p.client_cpu, &c.hop_cpus),
            });
            r
        })
        .collect();
    let mut hists: Vec<Vec<Histogram<u64>>> = vec![Vec::new(); plan.paths.len()];
    // A path skipped once is not retried every round.
    let mut given_up = vec![false; plan.paths.len()];
    let mut platform = Platform {
        probe_s: plan.platform.probe,
        noisy_lost_pct: plan.platform.noisy_lost_pct,
        ..Platform::default()
    };
    {
        // Topologies live until every path ran; their drop removes namespaces and interfaces.
        let mut topos: Vec<Option<Result<Topology, String>>> =
            (0..plan.topologies.len()).map(|_| None).collect();
        for (j, job) in jobs.iter().enumerate() {
            let p = &plan.paths[job.path];
            if given_up[job.path] {
                continue;
            }
            let r = &mut results[job.path];
            if signal::stop_requested() {
                if r.rounds.is_empty() && job.round.unwrap_or(1) == 1 {
                    r.status = Status::Skipped;
                    r.error = Some("interrupted (Ctrl-C) before this path started".into());
                }
                continue;
            }
            let label = match job.round {
                Some(k) => format!("[{}/{n}] {} round {k}/{}", j + 1, p.name, p.repeats),
                None => format!("[{}/{n}] {}", j + 1, p.name),
            };
            let probe_label = match job.round {
                Some(k) => format!("before {} round {k}", p.name),
                None => format!("before {}", p.name),
            };
            let probe_before = take_probe(
                &bin,
                &mut platform,
                &path_cpus(p),
                &p.rates,
                (probe_label, Some(p.name.clone()), job.round),
                wall,
            );
            progress.begin(label.clone(), &p.description);
            let t = Instant::now();
            let ctx = Ctx {
                bin: bin.clone(),
                plan,
                out,
                run_dir: &run_dir.0,
                round: job.round,
            };
            let mut rr = match job.round {
                Some(_) => PathResult::new(&p.name, "", "", "", ""),
                None => r.clone(),
            };
            // Built on first use, so a scenario's later topologies do not hold resources
            // during earlier paths... and a build error fails only the paths that need it.
            let outcome = match p.topology {
                None => paths::run(&ctx, p, None, &mut rr),
                Some(ti) => {
                    let spec = &plan.topologies[ti];
                    match topos[ti].get_or_insert_with(|| Topology::build(spec, ti, &run_dir.0)) {
                        Ok(topo) => paths::run(&ctx, p, Some(topo), &mut rr),
                        Err(e) => Err(PathError::Failed(format!(
                            "topology {:?} could not be built: {e}",
                            spec.name
                        ))),
                    }
                }
            };
            (rr.status, rr.error) = status_of(outcome);
            rr.elapsed_s = t.elapsed().as_secs_f64();
            progress.end(format!(
                "{label}: {} ({:.1} s)",
                summary_line(&rr),
                rr.elapsed_s
            ));
            if rr.status == Status::Skipped && !signal::stop_requested() {
                given_up[job.path] = true;
            }
            match job.round {
                Some(k) => fold_round(r, &mut hists[job.path], k, rr, probe_before),
                None => *r = rr,
            }
        }
        if signal::stop_requested() {
            eprintln!("bypass lab: interrupted; cleaning up");
        }
    }
    sweep_leftovers();
    drop(run_dir);
    finish_platform(&bin, plan, &mut platform, wall);

    for (i, p) in plan.paths.iter().enumerate() {
        if p.is_latency() && !results[i].rounds.is_empty() {
            if let Err(e) = finish_rounds(out, &mut results[i], &hists[i], &platform) {
                results[i].status = Status::Failed;
                results[i].error = Some(e);
            }
        }
    }
    figures::floor_multiples(&mut results);
    figures::platform_models(&mut results, &platform);
    let verdicts = figures::verdicts(&results, &plan.comparisons);
    let chains = chain::figures::chains(&results);

    let mut env = env;
    env.loadavg_end = super::environment::loadavg();
    let mut lab = LabResults {
        scenario: plan.name.clone(),
        scenario_file: scenario_file.map(|f| f.display().to_string()),
        description: plan.description.clone(),
        started,
        wall_s: 0.0,
        interrupted: signal::stop_requested(),
        environment: env,
        paths: results,
        plots: Vec::new(),
        platform,
        verdicts,
        chains,
        ipc_tax: Vec::new(),
    };
    lab.ipc_tax = super::tax::table(&lab);
    lab.plots = plots(out, &lab);
    lab.wall_s = wall.elapsed().as_secs_f64();
    lab.write(out)
        .map_err(|e| format!("{}: {e}", out.join("results.json").display()))?;
    std::fs::write(out.join("report.md"), report::render(&lab))
        .map_err(|e| format!("{}: {e}", out.join("report.md").display()))?;
    Ok(lab)
}

/// The probe after the last path and the syscall tax row, once per lab.
fn finish_platform(bin: &Path, plan: &LabPlan, platform: &mut Platform, wall: Instant) {
    let pl = &plan.placement;
    let mut cpus = vec![pl.client_cpu, pl.server_cpu];
    cpus.dedup();
    platform.end_probe = take_probe(bin, platform, &cpus, &[], ("end".into(), None, None), wall);
    if !plan.platform.syscalls || signal::stop_requested() {
        return;
    }
    eprintln!("bypass lab: syscall tax on CPU {}", pl.client_cpu);
    match platform::syscalls(bin, pl.client_cpu) {
        Ok(s) => platform.syscalls = Some(s),
        Err(e) => platform.errors.push(format!("syscalls: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::scenario::Scenario;

    #[test]
    fn schedule_interleaves_rounds_and_runs_sweeps_once() {
        let text = r#"
name = "s"
[defaults]
repeats = 2
[[topology]]
name = "lo"
kind = "loopback"
server_ip = "198.18.3.1"
[[path]]
name = "a"
kind = "kernel-serve"
topology = "lo"
plan = { mode = "ping-pong" }
[[path]]
name = "sw"
kind = "kernel-serve"
topology = "lo"
wait = "busy"
plan = { mode = "sweep", rates = "1000:2000:1000" }
[[path]]
name = "b"
kind = "kernel-serve"
topology = "lo"
repeats = 3
plan = { mode = "ping-pong" }
"#;
        let paths = Scenario::from_toml(text)
            .unwrap()
            .resolve_with_cpus(2)
            .unwrap()
            .paths;
        let order: Vec<(usize, Option<u32>)> =
            schedule(&paths).iter().map(|j| (j.path, j.round)).collect();
        assert_eq!(
            order,
            [
                (0, Some(1)),
                (1, None),
                (2, Some(1)),
                (0, Some(2)),
                (2, Some(2)),
                (2, Some(3))
            ]
        );
    }

    #[test]
    fn utc_stamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_794_619);
        assert_eq!(utc_stamp(t).1, "20261127-155019");
        assert_eq!(utc_stamp(SystemTime::UNIX_EPOCH).0, "1970-01-01 00:00:00");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap).1, "20000229-000000");
    }
}
