//! What the control thread prints: one line per interval and a final summary, as human text
//! or as JSON lines (one object per line, so scripts never parse the human text).

use serde::Serialize;

use crate::dpdk::{LinkStatus, PortStats};

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

#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub elapsed_s: f64,
    pub rx_pps: f64,
    pub tx_pps: f64,
    /// Packets dropped during this interval (tx refused after retries).
    pub drops: u64,
    pub workers: Vec<WorkerInterval>,
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
    pub name: String,
    pub driver: String,
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
    pub rx: u64,
    pub tx: u64,
    pub drops: u64,
    pub rx_pps: f64,
    pub tx_pps: f64,
    pub workers: Vec<WorkerTotal>,
    pub ports: Vec<PortTotal>,
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
            self.elapsed_s,
            mpps(self.rx_pps),
            mpps(self.tx_pps),
            self.drops
        );
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
            self.rx,
            self.tx,
            self.drops,
            mpps(self.rx_pps),
            mpps(self.tx_pps)
        );
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
        for p in &self.ports {
            s.push_str(&format!(
                "  port {} ({}, {}): ipackets {}  opackets {}  imissed {}  rx_nombuf {}  ierrors {}  oerrors {}  tx_first {}  drained {}\n",
                p.name,
                p.driver,
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
