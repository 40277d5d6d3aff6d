//! report.md: the table of every path with its intervals, the comparisons, the platform, the
//! plots, and one line per path saying what it measured, for a reader who was not there
//! (docs/lab.md explains how to read it).

mod chain;
mod platform;
mod table;
mod tax;
mod verdicts;

use std::fmt::Write as _;

use super::results::{LabResults, PathResult, Status};

pub use chain::PLOT as CHAIN_PLOT;

pub(crate) fn us(ns: u64) -> String {
    let v = ns as f64 / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(crate) fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k/s", r / 1e3)
    } else {
        format!("{r:.0}/s")
    }
}

/// Table cells must not break the table.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn header(s: &mut String, r: &LabResults) {
    let e = &r.environment;
    let _ = writeln!(s, "# Lab report: {}\n", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.description.trim());
    }
    let count = |st: Status| r.paths.iter().filter(|p| p.status == st).count();
    let _ = writeln!(
        s,
        "Started {} UTC, wall time {:.0} s{}. {} paths: {} ok ({} with a warning), {} failed, {} skipped.\n",
        r.started,
        r.wall_s,
        if r.interrupted {
            ", **interrupted (Ctrl-C)**"
        } else {
            ""
        },
        r.paths.len(),
        count(Status::Ok),
        r.paths.iter().filter(|p| !p.warnings.is_empty()).count(),
        r.failed(),
        count(Status::Skipped)
    );
    let _ = writeln!(
        s,
        "Machine: {} ({} CPUs), kernel {}, DPDK {}, bypass {} ({}). Clients on CPU {}, servers on CPU {}; \
         hugepages {} ({} x {} kB, {} free at start); default fast path poll mode {}. \
         Load average at start: {}; at the end: {}.\n",
        e.cpu_model,
        e.cpus,
        e.kernel,
        e.dpdk_version,
        e.bypass_version,
        e.git_rev,
        e.client_cpu,
        e.server_cpu,
        if e.dpdk_hugepages { "on" } else { "off (--no-huge)" },
        e.hugepages_total,
        e.hugepage_size_kb,
        e.hugepages_free_at_start,
        e.poll_mode,
        e.loadavg_start,
        e.loadavg_end
    );
}

fn what_each_path_measured(s: &mut String, r: &LabResults) {
    let _ = writeln!(s, "## What each path measured\n");
    for p in &r.paths {
        let mut cpus = format!("server CPU {}, client CPU {}", p.server_cpu, p.client_cpu);
        if !p.checksum.is_empty() {
            cpus += &format!("; checksums: {}", p.checksum.describe());
        }
        let _ = match p.status {
            Status::Ok if !p.warnings.is_empty() => writeln!(
                s,
                "- **{}**: {} ({cpus}). **Warning**: {}",
                p.name,
                p.description,
                p.warnings.join("; ")
            ),
            Status::Ok => writeln!(s, "- **{}**: {} ({cpus}).", p.name, p.description),
            Status::Failed => writeln!(
                s,
                "- **{}**: {}. **Failed**: {}",
                p.name,
                p.description,
                p.error.as_deref().unwrap_or("?")
            ),
            Status::Skipped => writeln!(
                s,
                "- **{}**: {}. **Skipped**: {}",
                p.name,
                p.description,
                p.error.as_deref().unwrap_or("?")
            ),
        };
    }
    let _ = writeln!(
        s,
        "\nFiles: results.json (every figure, every round, the probes and the environment), \
         <path>.hgrm (the merged rounds' percentile distribution, microseconds), \
         <path>-r<k>.hlog / .hgrm / .load.json (round k: lossless interval log, its distribution, \
         the client's report). The commands each path ran are in results.json (`commands`). \
         How to read this report: docs/lab.md.\n"
    );
}

pub fn render(r: &LabResults) -> String {
    let mut s = String::new();
    header(&mut s, r);
    tax::section(&mut s, r);
    table::round_trips(&mut s, r);
    for plot in r.plots.iter().filter(|p| *p != chain::PLOT) {
        let _ = writeln!(s, "![{plot}]({plot})\n");
    }
    verdicts::floor(&mut s, r);
    verdicts::comparisons(&mut s, r);
    chain::section(&mut s, r);
    verdicts::cross_checks(&mut s, r);
    table::sweeps(&mut s, r);
    platform::section(&mut s, r);
    what_each_path_measured(&mut s, r);
    s
}

/// Paths with rounds, for the sections that are about them.
pub(crate) fn repeated(r: &LabResults) -> impl Iterator<Item = &PathResult> {
    r.paths.iter().filter(|p| !p.rounds.is_empty())
}

#[cfg(test)]
mod tests;
