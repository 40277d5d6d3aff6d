//! The machine a lab ran on, recorded next to its figures: a latency means little without it.

use serde::{Deserialize, Serialize};

use super::prereq;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub hostname: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub dpdk_version: String,
    pub git_rev: String,
    pub bypass_version: String,
    /// CPUs the lab pins to: clients (and the EAL control lcore) and servers.
    pub client_cpu: usize,
    pub server_cpu: usize,
    pub hugepages_total: u64,
    pub hugepages_free_at_start: u64,
    pub hugepage_size_kb: u64,
    /// Whether DPDK programs ran on hugepages (false: --no-huge, tests only).
    pub dpdk_hugepages: bool,
    /// The default fast path poll mode of the scenario.
    pub poll_mode: String,
    /// /proc/cmdline: isolcpus, nohz_full and friends change every figure.
    pub kernel_cmdline: String,
    pub command_line: Vec<String>,
    /// /proc/loadavg when the lab started and when it ended: other work on the machine (a
    /// build on the servers' CPU) shows up in every tail.
    pub loadavg_start: String,
    pub loadavg_end: String,
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

impl Environment {
    pub fn capture(client_cpu: usize, server_cpu: usize, hugepages: bool, poll: &str) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("unknown")
            .trim()
            .to_string();
        let (total, free, _) = prereq::hugepages();
        let size_kb = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("Hugepagesize:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Environment {
            hostname: read("/proc/sys/kernel/hostname"),
            cpu_model,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: read("/proc/sys/kernel/osrelease"),
            dpdk_version: env!("BYPASS_DPDK_VERSION").to_string(),
            git_rev: crate::GIT_REV.to_string(),
            bypass_version: env!("CARGO_PKG_VERSION").to_string(),
            client_cpu,
            server_cpu,
            hugepages_total: total,
            hugepages_free_at_start: free,
            hugepage_size_kb: size_kb,
            dpdk_hugepages: hugepages,
            poll_mode: poll.to_string(),
            kernel_cmdline: read("/proc/cmdline"),
            command_line: std::env::args().collect(),
            loadavg_start: loadavg(),
            loadavg_end: String::new(),
        }
    }
}
