//! The rpc worker: rx bursts gathered into a vector, pushed through the node graph, replies
//! sent from the same buffers, the service time (rx stamp to tx) recorded per burst.

use std::sync::Arc;

use crossbeam::channel::Sender;

use crate::dpdk::{Burst, Mbuf, RxQueue, TxQueue};
use crate::graph::nodes::{build_server_graph, NodeConfig};
use crate::graph::{now_tsc, GraphCounters, PacketVector, VECTOR_SIZE};
use crate::shutdown;

use super::counters::WorkerSnapshot;
use super::latency::LatencyRecorder;
use super::worker::{flush, Idle, WorkerSpec};

/// What an rpc worker needs beyond the io worker's queues and counters.
pub struct RpcSpec {
    pub base: WorkerSpec,
    pub nodes: NodeConfig,
    pub vector: usize,
    pub tsc_hz: u64,
    pub latency: LatencyRecorder,
    /// Where the worker sends its graph's counters once the graph is built (the graph is
    /// built on the worker's own lcore and never leaves it).
    pub graph_counters: Sender<Result<Arc<GraphCounters>, String>>,
}

pub fn run_rpc(spec: RpcSpec) -> (RxQueue, TxQueue, WorkerSnapshot) {
    let RpcSpec {
        base,
        nodes,
        vector,
        tsc_hz,
        mut latency,
        graph_counters,
    } = spec;
    let WorkerSpec {
        mut rx,
        mut tx,
        burst: burst_size,
        poll_mode,
        idle_polls,
        idle_sleep,
        tx_retries,
        counters,
    } = base;
    let mut s = WorkerSnapshot::default();
    let mut graph = match build_server_graph::<Mbuf>(&nodes, tsc_hz) {
        Ok(g) => {
            let _ = graph_counters.send(Ok(g.counters()));
            g
        }
        Err(e) => {
            let _ = graph_counters.send(Err(e.to_string()));
            return (rx, tx, s);
        }
    };
    drop(graph_counters);

    let mut rxb = Burst::<VECTOR_SIZE>::new();
    let mut txb = Burst::<VECTOR_SIZE>::new();
    let mut input = PacketVector::<Mbuf>::new();
    let mut output = PacketVector::<Mbuf>::new();
    let mut idle = Idle::new(poll_mode, idle_polls, idle_sleep);
    while !shutdown::requested() {
        s.polls += 1;
        // Gather bursts while they come back full, up to one vector: under load vectors
        // grow, at low load a single packet goes straight through.
        let mut n = 0;
        let mut rx_tsc = 0;
        loop {
            let got = rx.rx_up_to(&mut rxb, burst_size.min(vector - n));
            if n == 0 && got > 0 {
                // One stamp per vector, taken when its first packets arrive.
                rx_tsc = now_tsc();
            }
            n += got;
            if got < burst_size || n >= vector {
                break;
            }
        }
        if n == 0 {
            s.empty_polls += 1;
            if idle.empty_poll() {
                counters.publish(&s);
                latency.maybe_publish(now_tsc());
            }
            continue;
        }
        idle.traffic();
        s.rx += n as u64;
        rxb.drain_to(|m| {
            // Cannot fail: the vector holds VECTOR_SIZE and n <= vector <= VECTOR_SIZE.
            let _ = input.push(m);
        });
        graph.dispatch(&mut input, rx_tsc, &mut output);
        if !output.is_empty() {
            for m in output.drain() {
                let _ = txb.push(m);
            }
            let (sent, dropped) = flush(&mut tx, &mut txb, tx_retries);
            let done = now_tsc();
            latency.record_ticks(done.wrapping_sub(rx_tsc), sent);
            s.tx += sent;
            s.tx_drops += dropped;
            latency.maybe_publish(done);
        }
        counters.publish(&s);
    }
    latency.publish();
    counters.publish(&s);
    (rx, tx, s)
}
