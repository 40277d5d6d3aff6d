//! report.md: the table of every path, the plots, and one line per path saying what it
//! measured, for a reader who was not there (docs/lab.md explains how to read it).

use std::fmt::Write as _;

use super::results::{LabResults, PathResult, Status};

fn us(ns: u64) -> String {
    let v = ns as f64 / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k/s", r / 1e3)
    } else {
        format!("{r:.0}/s")
    }
}

/// Table cells must not break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn row(p: &PathResult) -> String {
    let status = match p.status {
        Status::Ok if !p.warnings.is_empty() => "ok, **warning**".to_string(),
        Status::Ok => "ok".to_string(),
        s => format!("**{}**", s.as_str()),
    };
    let (p50, p99, p999, max) = match &p.latency {
        Some(l) => (us(l.p50_ns), us(l.p99_ns), us(l.p999_ns), us(l.max_ns)),
        None => ("".into(), "".into(), "".into(), "".into()),
    };
    let thr = match (&p.throughput, p.rate_per_s) {
        (Some(t), _) => format!(
            "{} pkt (testpmd {}, ratio {:.3})",
            rate(t.bypass_pps),
            rate(t.testpmd_pps),
            t.ratio
        ),
        (None, Some(r)) => format!("{} req", rate(r)),
        (None, None) => String::new(),
    };
    let loss = p
        .loss
        .as_ref()
        .map(|l| format!("{} of {} ({:.3}%)", l.lost, l.sent, l.percent()))
        .unwrap_or_default();
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell(&p.name),
        status,
        p50,
        p99,
        p999,
        max,
        cell(&thr),
        cell(&loss),
        p.client
    )
}

pub fn render(r: &LabResults) -> String {
    let mut s = String::new();
    let e = &r.environment;
    let _ = writeln!(s, "# Lab report: {}\n", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.description.trim());
    }
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
        r.paths.iter().filter(|p| p.status == Status::Ok).count(),
        r.paths.iter().filter(|p| !p.warnings.is_empty()).count(),
        r.failed(),
        r.paths
            .iter()
            .filter(|p| p.status == Status::Skipped)
            .count()
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
    let _ = writeln!(s, "## Round trips\n");
    let _ = writeln!(
        s,
        "Latency is the full round trip in microseconds (client send to reply received; \
         coordinated-omission corrected in open loop). Throughput is the client's achieved \
         requests/s (for a throughput path: packets/s). Loss: requests never answered.\n"
    );
    let _ = writeln!(
        s,
        "| path | status | p50 us | p99 us | p99.9 us | max us | throughput | loss | client |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---|---|---|");
    for p in &r.paths {
        let _ = writeln!(s, "{}", row(p));
    }
    let _ = writeln!(s);
    for plot in &r.plots {
        let _ = writeln!(s, "![{plot}]({plot})\n");
    }

    let sweeps: Vec<&PathResult> = r.paths.iter().filter(|p| !p.sweep.is_empty()).collect();
    if !sweeps.is_empty() {
        let _ = writeln!(s, "## Latency versus load\n");
        let _ = writeln!(
            s,
            "Open loop, one run per offered rate; the table row above is the lowest rate (not drawn \
             in the percentile plot, which compares the ping-pong paths).\n"
        );
        let _ = writeln!(
            s,
            "| path | offered | achieved | p50 us | p99 us | p99.9 us | max us | lost |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for p in sweeps {
            for pt in &p.sweep {
                if pt.latency.count == 0 {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} | no reply | | | | {} |",
                        cell(&p.name),
                        rate(pt.target_rate),
                        rate(pt.achieved_rate),
                        pt.loss.lost
                    );
                    continue;
                }
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    cell(&p.name),
                    rate(pt.target_rate),
                    rate(pt.achieved_rate),
                    us(pt.latency.p50_ns),
                    us(pt.latency.p99_ns),
                    us(pt.latency.p999_ns),
                    us(pt.latency.max_ns),
                    pt.loss.lost
                );
            }
        }
        let _ = writeln!(s);
    }

    let _ = writeln!(s, "## What each path measured\n");
    for p in &r.paths {
        let cpus = format!("server CPU {}, client CPU {}", p.server_cpu, p.client_cpu);
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
        "\nFiles: results.json (every figure and the environment), <path>.hgrm (percentile \
         distribution, microseconds), <path>.load.json (client report). The commands each path \
         ran are in results.json (`commands`). How to read this report: docs/lab.md.\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::environment::Environment;
    use crate::lab::results::{Latency, Loss, Throughput};

    fn lab() -> LabResults {
        let mut ok = PathResult::new("fast", "fastpath", "veth", "load", "round trip: x -> y");
        ok.status = Status::Ok;
        ok.latency = Some(Latency {
            count: 10,
            min_ns: 5_000,
            mean_ns: 7_000.0,
            p50_ns: 6_950,
            p90_ns: 8_000,
            p99_ns: 30_159,
            p999_ns: 210_000,
            max_ns: 1_560_000,
        });
        ok.rate_per_s = Some(7805.7);
        ok.loss = Some(Loss {
            sent: 1000,
            received: 998,
            lost: 2,
        });
        let mut bad = PathResult::new("broken|pipe", "kernel-serve", "lo", "load", "d");
        bad.status = Status::Failed;
        bad.error = Some("server exited".into());
        let mut thr = PathResult::new("thr", "throughput", "pcap", "none", "pps");
        thr.status = Status::Ok;
        thr.throughput = Some(Throughput {
            bypass_pps: 11.58e6,
            testpmd_pps: 27.07e6,
            ratio: 0.428,
            frame_bytes: 106,
            rounds: 2,
            bypass_readings: vec![],
            testpmd_readings: vec![],
        });
        LabResults {
            scenario: "t".into(),
            scenario_file: None,
            description: String::new(),
            started: "2026-11-27 17:19:01".into(),
            wall_s: 157.0,
            interrupted: false,
            environment: Environment::capture(0, 1, true, "busy"),
            paths: vec![ok, bad, thr],
            plots: vec!["latency-percentiles.svg".into()],
        }
    }

    #[test]
    fn table_has_a_row_per_path_with_its_figures() {
        let md = render(&lab());
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        // Header plus one row per path.
        assert_eq!(rows.len(), 4, "{md}");
        assert!(
            rows[1].starts_with(
                "| fast | ok | 6.95 | 30.2 | 210 | 1560 | 7.8 k/s req | 2 of 1000 (0.200%) |"
            ),
            "{}",
            rows[1]
        );
        assert!(
            rows[2].starts_with("| broken\\|pipe | **failed** |"),
            "{}",
            rows[2]
        );
        assert!(
            rows[3].contains("11.58 M/s pkt (testpmd 27.07 M/s, ratio 0.428)"),
            "{}",
            rows[3]
        );
        assert!(md.contains("**Failed**: server exited"));
        assert!(md.contains("![latency-percentiles.svg](latency-percentiles.svg)"));
        assert!(md.contains("1 failed"));
    }
}
