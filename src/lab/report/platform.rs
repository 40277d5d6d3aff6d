//! The platform section: the noise each CPU showed over all probes, the probe next to every
//! round of every path, the end probe, and the syscall tax row.

use std::fmt::Write as _;

use super::{cell, repeated, us};
use crate::lab::platform::{PerCall, Probe};
use crate::lab::results::LabResults;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn per_cpu(s: &mut String, probes: &[Probe]) {
    let mut cpus: Vec<usize> = probes
        .iter()
        .flat_map(|p| p.cpus.iter().map(|c| c.cpu))
        .collect();
    cpus.sort_unstable();
    cpus.dedup();
    let _ = writeln!(
        s,
        "| CPU | probes | lost % median (min..max) | gaps/s median | gap p99 us median | gap p99.9 us median | worst gap us | gaps > 1 ms | other tasks seen (most) |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for cpu in cpus {
        let seen: Vec<_> = probes
            .iter()
            .flat_map(|p| p.cpus.iter().filter(move |c| c.cpu == cpu))
            .collect();
        let col = |f: fn(&crate::lab::platform::CpuNoise) -> f64| -> Vec<f64> {
            seen.iter().map(|c| f(c)).collect()
        };
        let mut lost = col(|c| c.lost_pct);
        let (lo, hi) = lost
            .iter()
            .fold((f64::MAX, 0.0f64), |(l, h), v| (l.min(*v), h.max(*v)));
        let _ = writeln!(
            s,
            "| {cpu} | {} | {:.2} ({:.2}..{:.2}) | {:.0} | {} | {} | {} | {} | {} |",
            seen.len(),
            median(&mut lost),
            lo,
            hi,
            median(&mut col(|c| c.gaps_per_s)),
            us(median(&mut col(|c| c.gap_p99_ns as f64)) as u64),
            us(median(&mut col(|c| c.gap_p999_ns as f64)) as u64),
            us(seen.iter().map(|c| c.gap_max_ns).max().unwrap_or(0)),
            seen.iter().map(|c| c.over_1ms).sum::<u64>(),
            seen.iter().map(|c| c.other_tasks_seen).max().unwrap_or(0)
        );
    }
    let _ = writeln!(s);
}

fn lost_list(probe: &Probe) -> String {
    probe
        .cpus
        .iter()
        .map(|c| format!("{:.2}", c.lost_pct))
        .collect::<Vec<_>>()
        .join(" / ")
}

fn per_path(s: &mut String, r: &LabResults) {
    let probes = &r.platform.probes;
    let _ = writeln!(
        s,
        "The probe before each round, lost % per CPU (client / server CPU); a round is noisy \
         when the probe before or after it lost more than {:.1}%:\n",
        r.platform.noisy_lost_pct
    );
    let _ = writeln!(s, "| path | lost % before each round | noisy rounds |");
    let _ = writeln!(s, "|---|---|---|");
    for p in repeated(r) {
        let before: Vec<String> = p
            .rounds
            .iter()
            .map(|x| match x.probe_before.and_then(|i| probes.get(i)) {
                Some(pr) => format!("r{}: {}", x.round, lost_list(pr)),
                None => format!("r{}: -", x.round),
            })
            .collect();
        let noisy: Vec<String> = p
            .rounds
            .iter()
            .filter(|x| x.noisy)
            .map(|x| x.round.to_string())
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            cell(&p.name),
            before.join("; "),
            if noisy.is_empty() {
                "none".to_string()
            } else {
                noisy.join(", ")
            }
        );
    }
    let _ = writeln!(s);
}

fn per_call(c: &PerCall) -> String {
    format!("{:.0} [{:.0}..{:.0}]", c.median, c.min, c.max)
}

fn syscall_row(s: &mut String, r: &LabResults) {
    let Some(sc) = &r.platform.syscalls else {
        return;
    };
    let _ = writeln!(s, "### The syscall tax\n");
    let _ = writeln!(
        s,
        "ns per call on CPU {}, the median batch [min..max over batches] (`{}`): what a kernel \
         path pays per request before any stack work.\n",
        sc.cpu, sc.command
    );
    let _ = writeln!(
        s,
        "| syscall tax | getppid (no-op) | UDP loopback send+recv | unix datagram send+recv |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|");
    let _ = writeln!(
        s,
        "| ns per call | {} | {} | {} |\n",
        per_call(&sc.getppid_ns),
        per_call(&sc.udp_send_recv_ns),
        per_call(&sc.unix_send_recv_ns)
    );
}

pub fn section(s: &mut String, r: &LabResults) {
    let pl = &r.platform;
    let _ = writeln!(s, "## Platform\n");
    if pl.probes.is_empty() {
        let _ = writeln!(s, "No noise probes in this run.\n");
    } else {
        let _ = writeln!(
            s,
            "`bypass noise` spun on the CPUs of each path for {:.2} s before each of its rounds \
             and once at the end ({} probes): every gap between two clock reads above 1 us is \
             time the CPU did something else (an interrupt, another task, the hypervisor). Lost \
             time is the share of the probe spent in gaps.\n",
            pl.probe_s,
            pl.probes.len()
        );
        per_cpu(s, &pl.probes);
        if let Some(end) = pl.end_probe.and_then(|i| pl.probes.get(i)) {
            let _ = writeln!(s, "At the end: lost % per CPU {}.\n", lost_list(end));
        }
        per_path(s, r);
    }
    syscall_row(s, r);
    for e in &pl.errors {
        let _ = writeln!(s, "- {e}");
    }
    if !pl.errors.is_empty() {
        let _ = writeln!(s);
    }
}
