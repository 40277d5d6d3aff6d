//! What the control thread prints: one line per interval and a final summary, as human text
//! or as JSON lines (one object per line, so scripts never parse the human text).

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::contract::serve::{ServeFinal, ServeInterval, ServePort};
use crate::dpdk::{LinkStatus, PortStats};
use crate::graph::GraphStats;
use crate::stats::Summary;

use super::counters::WorkerSnapshot;

#[derive(Debug, Clone, Serialize)]
pub struct WorkerInterval {
    pub worker: usize,
    pub lcore: u32,
    pub port: String,
    pub queue: u16,
    pub rx_pps: f64,
    pub tx_pps: f64,
    pub drops: u64,
}

/// One graph node's counters (over an interval, or in total).
#[derive(Debug, Clone, Serialize)]
pub struct NodeLine {
    pub name: &'static str,
    pub calls: u64,
    pub vectors: u64,
    pub packets: u64,
    pub vector_avg: f64,
    pub cycles_per_packet: f64,
}

/// Service time (rx burst stamp to tx) over an interval.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceLine {
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Seconds since start and the tx rate: what the lab reads.
    #[serde(flatten)]
    pub shared: ServeInterval,
    pub rx_pps: f64,
    /// Packets dropped during this interval, for any reason.
    pub drops: u64,
    pub workers: Vec<WorkerInterval>,
    /// Packets per graph dispatch (rpc mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_avg: Option<f64>,
    /// Drops during this interval by "node/reason"; only reasons that occurred.
    pub drops_by_reason: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ns: Option<ServiceLine>,
    /// Buffers out of the packet pool at the end of the interval (rx rings, PMDs, packets in
    /// flight): flat over a long run, or something holds on to buffers (scripts/soak.sh).
    pub mempool_in_use: u32,
}

/// The reason under which packets a full tx queue refused are counted.
pub const TX_QUEUE_FULL: &str = "tx/queue-full";

/// Drops by "node/reason" (only non-zero), plus the workers' tx refusals.
pub fn drops_by_reason(graph: Option<&GraphStats>, tx_drops: u64) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    if let Some(g) = graph {
        for n in &g.nodes {
            for &(reason, count) in &n.drops {
                if count > 0 {
                    m.insert(format!("{}/{}", n.name, reason), count);
                }
            }
        }
    }
    if tx_drops > 0 {
        *m.entry(TX_QUEUE_FULL.to_string()).or_default() += tx_drops;
    }
    m
}

pub fn node_lines(g: &GraphStats) -> Vec<NodeLine> {
    g.nodes
        .iter()
        .map(|n| NodeLine {
            name: n.name,
            calls: n.calls,
            vectors: n.vectors,
            packets: n.packets,
            vector_avg: n.avg_vector_size(),
            cycles_per_packet: n.cycles_per_packet(),
        })
        .collect()
}

fn us(ns: u64) -> String {
    format!("{:.2}us", ns as f64 / 1e3)
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerTotal {
    pub worker: usize,
    pub lcore: u32,
    pub port: String,
    pub queue: u16,
    #[serde(flatten)]
    pub counters: WorkerSnapshot,
}

#[derive(Debug, Clone, Serialize)]
pub struct PortTotal {
    /// Name, driver and checksum policy: what the lab reads.
    #[serde(flatten)]
    pub port: ServePort,
    pub mac: String,
    pub link: LinkStatus,
    pub stats: PortStats,
    /// Packets sent at start to prime loopback topologies.
    pub tx_first: u64,
    /// Packets found waiting in rx queues at shutdown and freed.
    pub drained: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MempoolTotal {
    pub capacity: u32,
    /// Buffers not back in the pool after every port closed: anything but 0 is a leak.
    pub in_use: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Final {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub mode: String,
    pub stop_reason: &'static str,
    pub elapsed_s: f64,
    /// rx, tx, drops by reason and the ports: what the lab reads.
    #[serde(flatten)]
    pub shared: ServeFinal<PortTotal>,
    pub drops: u64,
    pub rx_pps: f64,
    pub tx_pps: f64,
    pub workers: Vec<WorkerTotal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_avg: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeLine>,
    /// Service time from rx burst to tx, over the whole run (rpc mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ns: Option<Summary>,
    pub mempool: MempoolTotal,
    pub dpdk_version: &'static str,
    pub git_rev: &'static str,
}

pub fn mac_string(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn mpps(pps: f64) -> String {
    format!("{:.3} Mpps", pps / 1e6)
}

impl Interval {
    pub fn human(&self) -> String {
        let mut s = format!(
            "[{:>7.1}s] rx {:>13}  tx {:>13}  drops {}",
            self.shared.elapsed_s,
            mpps(self.rx_pps),
            mpps(self.shared.tx_pps),
            self.drops
        );
        if let Some(v) = self.vector_avg {
            s.push_str(&format!("  vec {v:.1}"));
        }
        if let Some(l) = self.service_ns.as_ref().filter(|l| l.count > 0) {
            s.push_str(&format!(
                "  service p50 {} p99 {} p99.9 {} max {}",
                us(l.p50_ns),
                us(l.p99_ns),
                us(l.p999_ns),
                us(l.max_ns)
            ));
        }
        if !self.drops_by_reason.is_empty() {
            let d: Vec<String> = self
                .drops_by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            s.push_str(&format!("\n           drops: {}", d.join(", ")));
        }
        if !self.nodes.is_empty() {
            let n: Vec<String> = self
                .nodes
                .iter()
                .filter(|n| n.packets > 0)
                .map(|n| {
                    format!(
                        "{} {} ({:.0} cyc/pkt)",
                        n.name, n.packets, n.cycles_per_packet
                    )
                })
                .collect();
            s.push_str(&format!("\n           nodes: {}", n.join(", ")));
        }
        if self.workers.len() > 1 {
            for w in &self.workers {
                s.push_str(&format!(
                    "\n           w{} lcore {} {}/q{}: rx {} tx {} drops {}",
                    w.worker,
                    w.lcore,
                    w.port,
                    w.queue,
                    mpps(w.rx_pps),
                    mpps(w.tx_pps),
                    w.drops
                ));
            }
        }
        s
    }
}

impl Final {
    pub fn human(&self) -> String {
        let mut s = format!(
            "bypass serve ({}) stopped by {} after {:.2} s\n  total: rx {}  tx {}  drops {}  (rx {} / tx {} average)\n",
            self.mode,
            self.stop_reason,
            self.elapsed_s,
            self.shared.rx,
            self.shared.tx,
            self.drops,
            mpps(self.rx_pps),
            mpps(self.tx_pps)
        );
        if let Some(m) = &self.shared.service {
            s.push_str(&format!("  service time: {m}\n"));
        }
        for w in &self.workers {
            s.push_str(&format!(
                "  worker {} (lcore {}, {} queue {}): rx {}  tx {}  drops {}  polls {} ({} empty)\n",
                w.worker,
                w.lcore,
                w.port,
                w.queue,
                w.counters.rx,
                w.counters.tx,
                w.counters.tx_drops,
                w.counters.polls,
                w.counters.empty_polls
            ));
        }
        if let Some(v) = self.vector_avg {
            s.push_str(&format!("  average vector: {v:.2} packets\n"));
        }
        for (k, v) in &self.shared.drops_by_reason {
            s.push_str(&format!("  dropped {k}: {v}\n"));
        }
        for r in &self.shared.relays {
            let drops: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k} {v}")).collect();
            s.push_str(&format!(
                "  relay {} -> {}: forwarded {}  returned {}  dropped {}\n",
                r.listen,
                r.upstreams.join(","),
                r.forwarded,
                r.returned,
                if drops.is_empty() {
                    "0".into()
                } else {
                    drops.join(", ")
                }
            ));
        }
        for n in &self.nodes {
            s.push_str(&format!(
                "  node {:<14} calls {:>10}  vectors {:>10}  packets {:>12}  vec {:>6.2}  {:>7.1} cycles/pkt\n",
                n.name, n.calls, n.vectors, n.packets, n.vector_avg, n.cycles_per_packet
            ));
        }
        if let Some(sv) = self.service_ns.as_ref().filter(|sv| sv.count > 0) {
            s.push_str("  service time (rx burst to tx), per packet:\n");
            for line in sv.to_table().lines() {
                s.push_str(&format!("    {line}\n"));
            }
        }
        for p in &self.shared.ports {
            let ServePort {
                name,
                driver,
                checksum,
            } = &p.port;
            s.push_str(&format!(
                "  port {name} ({driver}, {}): ipackets {}  opackets {}  imissed {}  rx_nombuf {}  ierrors {}  oerrors {}  tx_first {}  drained {}\n",
                p.mac,
                p.stats.ipackets,
                p.stats.opackets,
                p.stats.imissed,
                p.stats.rx_nombuf,
                p.stats.ierrors,
                p.stats.oerrors,
                p.tx_first,
                p.drained
            ));
            if let Some(c) = checksum {
                s.push_str(&format!(
                    "  port {name} checksums: {} asked, {c}\n",
                    c.requested
                ));
            }
        }
        s.push_str(&format!(
            "  mempool: {} of {} buffers in use at exit{}\n  built against DPDK {}, revision {}",
            self.mempool.in_use,
            self.mempool.capacity,
            if self.mempool.in_use == 0 {
                ""
            } else {
                " (LEAK)"
            },
            self.dpdk_version,
            self.git_rev
        ));
        s
    }
}
