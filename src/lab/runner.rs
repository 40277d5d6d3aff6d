//! Runs a resolved scenario: builds the topologies, runs the paths in order with a progress
//! display on stderr, stops at Ctrl-C, tears everything down, writes the results.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::caps::Caps;
use super::environment::Environment;
use super::paths::{self, Ctx, PathError};
use super::plot::{self, Series};
use super::results::{LabResults, PathResult, Status};
use super::scenario::{ResolvedPath, Scenario};
use super::topology::{lab_tag, remove_dpdk_files, Topology};
use super::{hgrm_read, proc, report};
use crate::shutdown;

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
        // A sweep's open-loop points have their own plot; here closed loops compare.
        .filter(|p| p.sweep.is_empty())
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
                // A point that got no reply at all has no latency to draw (not 0 us).
                points: p
                    .sweep
                    .iter()
                    .filter(|pt| pt.latency.count > 0)
                    .map(|pt| {
                        let ns = [pt.latency.p50_ns, pt.latency.p99_ns, pt.latency.p999_ns][f];
                        (pt.achieved_rate, ns as f64 / 1000.0)
                    })
                    .collect(),
            });
        }
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

/// Runs the scenario into `out`; returns the results (already written).
pub fn run(
    scenario: &Scenario,
    scenario_file: Option<&Path>,
    resolved: &[ResolvedPath],
    out: &Path,
) -> Result<LabResults, String> {
    let wall = Instant::now();
    let (started, _) = utc_stamp(SystemTime::now());
    let env = Environment::capture(
        scenario.placement.client_cpu,
        scenario.placement.server_cpu,
        scenario.placement.hugepages,
        scenario.defaults.poll_mode.as_str(),
    );
    let bin = std::env::current_exe().map_err(|e| format!("cannot find the bypass binary: {e}"))?;
    let caps = Caps::probe(&bin);
    let run_dir = RunDir(std::env::temp_dir().join(format!("bypass-lab-{}", std::process::id())));
    std::fs::create_dir_all(&run_dir.0).map_err(|e| format!("{}: {e}", run_dir.0.display()))?;
    if let Some(f) = scenario_file {
        let _ = std::fs::copy(f, out.join("scenario.toml"));
    }

    let progress = Progress::new();
    let n = resolved.len();
    let mut results = Vec::new();
    {
        // Topologies live until every path ran; their drop removes namespaces and interfaces.
        let mut topos: Vec<Option<Result<Topology, String>>> =
            (0..scenario.topologies.len()).map(|_| None).collect();
        let ctx = Ctx {
            bin: bin.clone(),
            scenario,
            out,
            run_dir: &run_dir.0,
            caps: &caps,
        };
        for (i, p) in resolved.iter().enumerate() {
            let spec = &scenario.topologies[p.topology];
            let mut r = PathResult::new(
                &p.name,
                p.kind.as_str(),
                &spec.name,
                p.client.as_str(),
                &p.description,
            );
            r.server_cpu = p.server_cpu;
            r.client_cpu = p.client_cpu;
            let label = format!("[{}/{n}] {}", i + 1, p.name);
            if shutdown::requested() {
                r.status = Status::Skipped;
                r.error = Some("interrupted (Ctrl-C) before this path started".into());
                results.push(r);
                continue;
            }
            progress.begin(label.clone(), &p.description);
            let t = Instant::now();
            // Built on first use, so a scenario's later topologies do not hold resources
            // during earlier paths... and a build error fails only the paths that need it.
            let topo = topos[p.topology]
                .get_or_insert_with(|| Topology::build(spec, p.topology, &run_dir.0));
            let outcome = match topo {
                Ok(topo) => paths::run(&ctx, p, topo, &mut r),
                Err(e) => Err(PathError::Failed(format!(
                    "topology {:?} could not be built: {e}",
                    spec.name
                ))),
            };
            match outcome {
                Ok(()) => r.status = Status::Ok,
                Err(PathError::Failed(e)) => {
                    r.status = Status::Failed;
                    r.error = Some(e);
                }
                Err(PathError::Skipped(e)) => {
                    r.status = Status::Skipped;
                    r.error = Some(e);
                }
            }
            r.elapsed_s = t.elapsed().as_secs_f64();
            progress.end(format!(
                "{label}: {} ({:.1} s)",
                summary_line(&r),
                r.elapsed_s
            ));
            results.push(r);
        }
        if shutdown::requested() {
            eprintln!("bypass lab: interrupted; cleaning up");
        }
    }
    sweep_leftovers();
    drop(run_dir);

    let mut env = env;
    env.loadavg_end = super::environment::loadavg();
    let mut lab = LabResults {
        scenario: scenario.name.clone(),
        scenario_file: scenario_file.map(|f| f.display().to_string()),
        description: scenario.description.clone(),
        started,
        wall_s: 0.0,
        interrupted: shutdown::requested(),
        environment: env,
        paths: results,
        plots: Vec::new(),
    };
    lab.plots = plots(out, &lab);
    lab.wall_s = wall.elapsed().as_secs_f64();
    lab.write(out)
        .map_err(|e| format!("{}: {e}", out.join("results.json").display()))?;
    std::fs::write(out.join("report.md"), report::render(&lab))
        .map_err(|e| format!("{}: {e}", out.join("report.md").display()))?;
    Ok(lab)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_794_619);
        assert_eq!(utc_stamp(t).1, "20261127-155019");
        assert_eq!(utc_stamp(SystemTime::UNIX_EPOCH).0, "1970-01-01 00:00:00");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap).1, "20000229-000000");
    }
}
