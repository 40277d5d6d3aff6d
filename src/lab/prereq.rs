//! What the machine must offer before a scenario starts: root, the programs the paths run,
//! hugepages. Every missing thing gets its own line saying how to get it.

use std::path::Path;

use crate::os::process::is_root;

use super::scenario::{Client, HopKind, PathKind, ResolvedPath, Scenario, TopologyKind};

/// Finds `prog` in PATH (or takes it as a path when it has a slash).
pub fn which(prog: &str) -> Option<std::path::PathBuf> {
    if prog.contains('/') {
        let p = Path::new(prog);
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    // sudo's secure_path usually has the sbin folders; a plain PATH may not.
    let extra = std::env::split_paths("/usr/sbin:/sbin:/usr/local/sbin");
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

/// Free 2 MiB (or default-size) hugepages, and whether hugetlbfs is mounted.
pub fn hugepages() -> (u64, u64, bool) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |k: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mounted = std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"));
    (field("HugePages_Total:"), field("HugePages_Free:"), mounted)
}

/// Every unmet prerequisite of running `paths`, one message each; empty when all is there.
pub fn check(scenario: &Scenario, paths: &[ResolvedPath]) -> Vec<String> {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push(
            "not root: the lab creates network namespaces and runs DPDK; run it with sudo".into(),
        );
    }
    let mut progs = vec![
        ("ip", "iproute2 (apt-get install iproute2)"),
        ("taskset", "util-linux (apt-get install util-linux)"),
    ];
    let kind = |k: TopologyKind| {
        paths
            .iter()
            .any(|p| p.topology.is_some_and(|t| scenario.topologies[t].kind == k))
    };
    if kind(TopologyKind::Veth) {
        progs.push(("ethtool", "ethtool (apt-get install ethtool)"));
    }
    if kind(TopologyKind::Veth) || kind(TopologyKind::Tap) || kind(TopologyKind::Nic) {
        progs.push(("ping", "iputils-ping (apt-get install iputils-ping)"));
    }
    if paths
        .iter()
        .any(|p| p.client == Client::Sockperf || p.cross_check.is_some())
    {
        progs.push(("sockperf", "sockperf (apt-get install sockperf)"));
    }
    if paths.iter().any(|p| p.kind == PathKind::Throughput) {
        progs.push(("dpdk-testpmd", "dpdk (apt-get install dpdk)"));
        progs.push(("stdbuf", "coreutils"));
    }
    for (p, pkg) in progs {
        if which(p).is_none() {
            missing.push(format!("{p} not found: install {pkg}"));
        }
    }
    let dpdk = paths.iter().any(|p| {
        matches!(
            p.kind,
            PathKind::Fastpath | PathKind::FastpathMemif | PathKind::Throughput
        ) || p.chain.as_ref().is_some_and(|c| c.hop == HopKind::Fastpath)
    });
    if dpdk && scenario.placement.hugepages {
        let (total, free, mounted) = hugepages();
        if !mounted {
            missing.push(
                "no hugetlbfs mounted: run scripts/setup.sh (or mount -t hugetlbfs nodev /dev/hugepages)"
                    .into(),
            );
        }
        // Two DPDK processes (memif, or fast path + client) at a few hundred MiB each.
        if free < 256 {
            missing.push(format!(
                "hugepages: {free} of {total} free, the lab wants at least 256 (512 MiB of 2 MiB pages): \
                 echo 1024 > /proc/sys/vm/nr_hugepages (scripts/setup.sh does it), \
                 or set placement.hugepages = false (tests only)"
            ));
        }
    }
    missing
}
