//! `bypass lab --compare OLD_DIR NEW_DIR`: two runs' results.json side by side, path by path,
//! new over old at p50 / p99 / p99.9 from their rounds. The rounds of two runs are not paired
//! (they ran hours or days apart), so the ratio is `unpaired_ratio` of the per-round values,
//! with the same verdict wording as the report: an interval including 1 is no difference.

use std::fmt::Write as _;
use std::path::Path;

use super::report::{cell, us};
use super::results::{LabResults, PathResult, Pct, Status};
use crate::stats::interval::{unpaired_ratio, verdict};

/// Reads `DIR/results.json`; the error names the folder and what is wrong with it.
pub fn load(flag: &str, dir: &Path) -> Result<LabResults, String> {
    if !dir.is_dir() {
        return Err(format!("{flag} {}: no such folder", dir.display()));
    }
    let file = dir.join("results.json");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("{flag} {}: no results.json ({e})", dir.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{flag} {}: results.json is not a bypass lab result ({e})",
            dir.display()
        )
    })
}

fn round_values(p: &PathResult, what: Pct) -> Vec<f64> {
    p.round_values(what).into_iter().map(|(_, v)| v).collect()
}

/// "7.85 (6.2..8.1, 3 rounds)": merged value and the per-round spread.
fn side(p: &PathResult, what: Pct) -> String {
    let merged = p.latency.as_ref().map_or(0, |l| what.of(l));
    let v = round_values(p, what);
    match (
        v.iter().cloned().reduce(f64::min),
        v.iter().cloned().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) if v.len() > 1 => format!(
            "{} ({}..{}, {} rounds)",
            us(merged),
            us(lo as u64),
            us(hi as u64),
            v.len()
        ),
        _ => format!("{} (1 round)", us(merged)),
    }
}

/// One table row per percentile of a path both runs measured, and its verdict line.
fn path_rows(s: &mut String, lines: &mut Vec<String>, old: &PathResult, new: &PathResult) {
    for what in Pct::ALL {
        let (o, n) = (round_values(old, what), round_values(new, what));
        let (ratio, line) = if o.len() < 2 || n.len() < 2 {
            (
                format!("too few rounds ({} old, {} new)", o.len(), n.len()),
                None,
            )
        } else {
            match unpaired_ratio(&n, &o) {
                Some(r) => (
                    r.describe(),
                    Some(verdict(
                        &format!("{} new", new.name),
                        "old",
                        what.label(),
                        &r,
                    )),
                ),
                None => ("no ratio (a zero figure)".to_string(), None),
            }
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            cell(&new.name),
            what.label(),
            side(old, what),
            side(new, what),
            cell(&ratio)
        );
        lines.extend(line);
    }
}

/// The markdown comparison of two runs.
pub fn render(old: &LabResults, new: &LabResults, old_dir: &Path, new_dir: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Lab comparison: {} vs {}\n",
        new_dir.display(),
        old_dir.display()
    );
    let _ = writeln!(
        s,
        "Old: {} ({}, started {} UTC, git {}). New: {} ({}, started {} UTC, git {}).\n",
        old_dir.display(),
        old.scenario,
        old.started,
        old.environment.git_rev,
        new_dir.display(),
        new.scenario,
        new.started,
        new.environment.git_rev
    );
    let _ = writeln!(
        s,
        "Round trips in us: the merged value, then the per-round min..max. new/old is the ratio \
         of the two runs' per-round medians, bounded by the ends of each median's interval (the \
         runs' rounds are not paired); an interval including 1 is no measurable difference.\n"
    );
    let _ = writeln!(s, "| path | percentile | old us | new us | new/old |");
    let _ = writeln!(s, "|---|---|---:|---:|---|");
    let mut lines = Vec::new();
    let mut only = Vec::new();
    let measured =
        |p: &PathResult| p.status == Status::Ok && p.latency.is_some() && p.sweep.is_empty();
    for n in new.paths.iter().filter(|p| measured(p)) {
        match old.paths.iter().find(|o| o.name == n.name && measured(o)) {
            Some(o) => path_rows(&mut s, &mut lines, o, n),
            None => only.push(format!("{} (new only)", n.name)),
        }
    }
    for o in old.paths.iter().filter(|p| measured(p)) {
        if !new.paths.iter().any(|n| n.name == o.name && measured(n)) {
            only.push(format!("{} (old only)", o.name));
        }
    }
    let _ = writeln!(s, "\n## Verdicts\n");
    if lines.is_empty() {
        let _ = writeln!(s, "No path has at least two rounds in both runs.");
    }
    for l in lines {
        let _ = writeln!(s, "- {l}");
    }
    if !only.is_empty() {
        let _ = writeln!(
            s,
            "\nNot compared (measured in one run only, or sweeps): {}.",
            only.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::environment::Environment;
    use crate::lab::results::{Latency, Round};

    fn path(name: &str, p50s: &[u64]) -> PathResult {
        let mut p = PathResult::new(name, "kernel-serve", "lo", "load", "d");
        p.status = Status::Ok;
        let lat = |v: u64| Latency {
            count: 100,
            p50_ns: v,
            p99_ns: v * 2,
            p999_ns: v * 4,
            ..Latency::default()
        };
        p.latency = Some(lat(p50s[0]));
        p.rounds = p50s
            .iter()
            .enumerate()
            .map(|(i, &v)| Round {
                round: i as u32 + 1,
                status: Status::Ok,
                error: None,
                latency: Some(lat(v)),
                loss: None,
                rate_per_s: None,
                hlog: None,
                probe_before: None,
                probe_after: None,
                noisy: false,
                cross_check: None,
                cross_check_first: false,
                send_lag: None,
                elapsed_s: 1.0,
                hops: Vec::new(),
                counts_disagree: false,
                tails: None,
            })
            .collect();
        p
    }

    fn lab(paths: Vec<PathResult>) -> LabResults {
        LabResults {
            scenario: "t".into(),
            scenario_file: None,
            description: String::new(),
            started: "2026-12-01 00:00:00".into(),
            wall_s: 1.0,
            interrupted: false,
            environment: Environment::capture(0, 1, false, "busy"),
            paths,
            plots: vec![],
            platform: Default::default(),
            verdicts: vec![],
            chains: vec![],
            ipc_tax: vec![],
        }
    }

    fn write(dir: &Path, l: &LabResults) {
        std::fs::create_dir_all(dir).unwrap();
        l.write(dir).unwrap();
    }

    #[test]
    fn compares_two_written_runs_path_by_path() {
        let base = std::env::temp_dir().join(format!("bypass-compare-{}", std::process::id()));
        let (od, nd) = (base.join("old"), base.join("new"));
        write(
            &od,
            &lab(vec![
                path("a", &[10_000, 11_000, 10_500]),
                path("b", &[5_000, 5_100, 4_900]),
                path("gone", &[1_000, 1_000]),
            ]),
        );
        // a halves; b moves within its spread; c is new.
        write(
            &nd,
            &lab(vec![
                path("a", &[5_000, 5_200, 5_100]),
                path("b", &[5_050, 4_950, 5_000]),
                path("c", &[1_000, 1_000]),
            ]),
        );
        let (old, new) = (load("OLD_DIR", &od).unwrap(), load("NEW_DIR", &nd).unwrap());
        let md = render(&old, &new, &od, &nd);
        assert!(
            md.contains("| a | p50 | 10.0 (10.0..11.0, 3 rounds) | 5.00 (5.00..5.20, 3 rounds) |"),
            "{md}"
        );
        assert!(md.contains("- a new vs old, p50: lower, "), "{md}");
        assert!(
            md.contains("- b new vs old, p50: no measurable difference"),
            "{md}"
        );
        assert!(
            md.contains("c (new only)") && md.contains("gone (old only)"),
            "{md}"
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn refuses_missing_or_broken_folders_by_name() {
        let base = std::env::temp_dir().join(format!("bypass-compare-bad-{}", std::process::id()));
        let e = load("OLD_DIR", &base.join("nope")).unwrap_err();
        assert!(
            e.starts_with("OLD_DIR ") && e.contains("no such folder"),
            "{e}"
        );
        std::fs::create_dir_all(&base).unwrap();
        let e = load("NEW_DIR", &base).unwrap_err();
        assert!(e.contains("no results.json"), "{e}");
        std::fs::write(base.join("results.json"), "{\"x\": 1}").unwrap();
        let e = load("NEW_DIR", &base).unwrap_err();
        assert!(e.contains("not a bypass lab result"), "{e}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
