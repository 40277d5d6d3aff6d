//! The rpc worker: rx bursts gathered into a vector, pushed through the node graph, replies
//! sent from the same buffers, the service time (rx stamp to tx) recorded per burst.

use std::sync::Arc;

use crossbeam::channel::Sender;

use crate::dpdk::{Mbuf, RxQueue, TxQueue};
use crate::graph::nodes::{build_server_graph, NodeConfig};
use crate::graph::{now_tsc, GraphCounters, PacketVector, VECTOR_SIZE};
use crate::shutdown;

use super::counters::WorkerSnapshot;
use super::latency::LatencyRecorder;
use super::worker::{Idle, WorkerSpec};

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

    let mut input = PacketVector::<Mbuf>::new();
    let mut output = PacketVector::<Mbuf>::new();
    let mut idle = Idle::new(poll_mode, idle_polls, idle_sleep);
    let vector = vector.min(VECTOR_SIZE);
    while !shutdown::requested() {
        s.polls += 1;
        // Gather bursts while they come back full, up to one vector: under load vectors
        // grow, at low load a single packet goes straight through. rx writes straight into
        // the vector's free slots, tx reads the output vector in place: no pointer copies.
        let mut rx_tsc = 0;
        loop {
            let n = input.len();
            let want = burst_size.min(vector - n);
            let spare = input.spare_mut();
            let room = want.min(spare.len());
            let got = rx.rx_into(&mut spare[..room]);
            // SAFETY: rx_into initialised exactly the first `got` spare slots with owned packets.
            unsafe { input.commit(got) };
            if n == 0 && got > 0 {
                // One stamp per vector, taken when its first packets arrive.
                rx_tsc = now_tsc();
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
            let (sent, dropped) = flush_vector(&mut tx, &mut output, tx_retries);
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

/// [`flush`](super::worker::flush) for a packet vector sent in place: pushes `out` to the NIC,
/// retrying what it refused up to `retries` times; whatever is still left is freed and
/// counted. Returns (sent, dropped).
#[inline]
fn flush_vector(tx: &mut TxQueue, out: &mut PacketVector<Mbuf>, retries: u32) -> (u64, u64) {
    let mut sent = 0u64;
    let mut tries = 0;
    while !out.is_empty() {
        // SAFETY: the packets tx_in_place reports sent belong to the NIC now, and
        // forget_front removes exactly those from the vector without dropping them.
        unsafe {
            let n = tx.tx_in_place(out.as_mut_slice());
            out.forget_front(n);
            sent += n as u64;
        }
        if out.is_empty() || tries == retries {
            break;
        }
        tries += 1;
    }
    let dropped = out.len() as u64;
    out.clear();
    (sent, dropped)
}
