//! The rpc worker: rx bursts gathered into a vector, pushed through the node graph, replies
//! sent from the same buffers, the service time (rx stamp to tx) recorded per burst.

use std::sync::Arc;

use crossbeam::channel::Sender;

use crate::dpdk::{Mbuf, RxQueue, TxQueue};
use crate::graph::nodes::{build_server_graph, NodeConfig};
use crate::graph::{now_tsc, GraphCounters, PacketVector, VECTOR_SIZE};
use crate::os::{signal, tsc};

use super::counters::WorkerSnapshot;
use super::latency::LatencyRecorder;
use super::worker::{flush, Idle, WorkerSpec};

/// The worker's graph times its node calls in one dispatch of this many
/// ([`crate::graph::Graph::time_one_in`]): the TSC reads around the 4 calls a
/// ping-pong request takes cost ~45 ns of a ~125 ns dispatch; sampled, about 3,
/// and every count stays exact.
pub const TIMED_DISPATCH_EVERY: u32 = 16;

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
    graph.time_one_in(TIMED_DISPATCH_EVERY);

    let mut input = PacketVector::<Mbuf>::new();
    let mut output = PacketVector::<Mbuf>::new();
    let mut idle = Idle::new(poll_mode, idle_polls, idle_sleep);
    let vector = vector.min(VECTOR_SIZE);
    while !signal::stop_requested() {
        s.polls += 1;
        // Gather bursts while they come back full, up to one vector: under load vectors
        // grow, at low load a single packet goes straight through. rx writes straight into
        // the vector's free slots, tx reads the output vector in place: no pointer copies.
        let mut rx_tsc = 0;
        loop {
            let n = input.len();
            let want = burst_size.min(vector - n);
            let got = rx.rx_up_to(input.as_mut_vec(), want);
            if n == 0 && got > 0 {
                // One stamp per vector, taken when its first packets have arrived: ordered
                // (lfence; rdtsc), because a plain rdtsc runs ahead of the rx burst's
                // outstanding loads. On net_memif (copy mode) those are cross-core misses on
                // the ring and the packet; with the plain read, ethernet-input's cycles and
                // every `server_ns` carried ~150 ns of them (server_ns p50 222 -> 72 ns,
                // ethernet-input 400 -> 45 cycles per packet, round trip unchanged).
                rx_tsc = tsc::read_ordered();
            }
            if got < burst_size || input.len() >= vector {
                break;
            }
        }
        let n = input.len();
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
        graph.dispatch(&mut input, rx_tsc, &mut output);
        if !output.is_empty() {
            let (sent, dropped) = flush(&mut tx, output.as_mut_vec(), tx_retries);
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
