//! `bypass lab`: runs a scenario (configs/lab-*.toml) of server paths side by side (the fast
//! path on several PMDs, the kernel stack's baselines, testpmd) with the same clients, in
//! network namespaces it builds and removes, and writes results.json, .hgrm files, SVG plots
//! and report.md into a timestamped folder.

#![forbid(unsafe_code)]

pub mod args;
pub mod chain;
pub mod compare;
pub mod eal;
pub mod environment;
pub mod figures;
pub mod paths;
pub mod platform;
pub mod plot;
pub mod prereq;
pub mod proc;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod tax;
pub mod topology;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use crate::options::EXIT_INVALID;

pub use args::LabArgs;
use scenario::Scenario;

/// The default scenario, used when configs/lab-default.toml is not in the current folder.
pub const DEFAULT_SCENARIO: &str = include_str!("../../configs/lab-default.toml");
pub const DEFAULT_SCENARIO_PATH: &str = "configs/lab-default.toml";

/// `--compare OLD_DIR NEW_DIR`: exit 2 when a folder is missing or holds no valid results.
fn compare_runs(args: &LabArgs, dirs: &[PathBuf]) -> ExitCode {
    if args.scenario.is_some() || args.out.is_some() {
        eprintln!("bypass lab: --compare reads two results folders; it takes no scenario or --out");
        return ExitCode::from(EXIT_INVALID);
    }
    let runs = compare::load("OLD_DIR", &dirs[0])
        .and_then(|old| Ok((old, compare::load("NEW_DIR", &dirs[1])?)));
    match runs {
        Ok((old, new)) => {
            print!("{}", compare::render(&old, &new, &dirs[0], &dirs[1]));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bypass lab --compare: {e}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn load(args: &LabArgs) -> Result<(Scenario, Option<PathBuf>), String> {
    let (scenario, file) = match &args.scenario {
        Some(p) => (Scenario::from_file(p), Some(p.clone())),
        None if std::path::Path::new(DEFAULT_SCENARIO_PATH).exists() => {
            let p = PathBuf::from(DEFAULT_SCENARIO_PATH);
            (Scenario::from_file(&p), Some(p))
        }
        None => (Scenario::from_toml(DEFAULT_SCENARIO), None),
    };
    let name = file
        .as_ref()
        .map_or("built-in default scenario".to_string(), |f| {
            f.display().to_string()
        });
    scenario
        .map(|s| (s, file))
        .map_err(|e| format!("{name}: {e}"))
}

pub fn run(args: LabArgs) -> ExitCode {
    if let Some(dirs) = &args.compare {
        return compare_runs(&args, dirs);
    }
    // Before anything exists (the results folder included): a signal from here on is a
    // clean stop with exit 130, never a death halfway through making something.
    if let Err(e) = crate::os::signal::install_stop_handlers() {
        eprintln!("bypass lab: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    let (scenario, file) = match load(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bypass lab: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let plan = match scenario.resolve() {
        Ok(r) => r,
        Err(e) => {
            let name = file
                .as_ref()
                .map_or("scenario".into(), |f| f.display().to_string());
            eprintln!("bypass lab: {name}: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let missing = prereq::check(&scenario, &plan.paths);
    // From here on the plan alone carries the scenario.
    drop(scenario);
    if !missing.is_empty() {
        eprintln!("bypass lab: prerequisites missing:");
        for m in missing {
            eprintln!("  - {m}");
        }
        return ExitCode::FAILURE;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("lab-results").join(runner::utc_stamp(SystemTime::now()).1)
    });
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("bypass lab: --out {}: {e}", out.display());
        return ExitCode::from(EXIT_INVALID);
    }
    eprintln!(
        "bypass lab: scenario {:?}, {} paths, results in {}",
        plan.name,
        plan.paths.len(),
        out.display()
    );
    match runner::run(&plan, file.as_deref(), &out) {
        Ok(lab) => {
            let failed = lab.failed();
            eprintln!(
                "bypass lab: {} paths, {} failed, wall time {:.0} s; report: {}",
                lab.paths.len(),
                failed,
                lab.wall_s,
                out.join("report.md").display()
            );
            // A signal after the results were built still answers 130: a script that
            // pressed Ctrl-C must not carry on as if nothing happened. Everything is torn
            // down by now, so a signal from here to the exit ends the process with 130.
            if crate::os::signal::exit_on_stop(130) || lab.interrupted {
                ExitCode::from(130)
            } else if failed > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("bypass lab: {e}");
            ExitCode::FAILURE
        }
    }
}
