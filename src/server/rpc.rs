//! The rpc worker: rx bursts gathered into a vector, pushed through the node graph, replies
//! sent from the same buffers, the service time (rx stamp to tx) recorded per burst. A joined
//! worker polls several ports into one vector, each packet tagged with its port, and sends
//! every packet out of the port the graph left in its tag (relays forward across ports).

use std::sync::Arc;

use crossbeam::channel::Sender;

use crate::dpdk::{Mbuf, RxQueue, TxQueue};
use crate::graph::nodes::{build_relay_graph, NodeConfig, RelayCounters, RelaySpec};
use crate::graph::{now_tsc, GraphCounters, PacketBuf, PacketVector, VECTOR_SIZE};
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
    /// The `rpc-relay` node's relays, and its counters (one cell each).
    pub relays: Vec<RelaySpec>,
    pub relay_counters: Arc<RelayCounters>,
    /// Joined topology: the other ports' queues, polled too (index k + 1 in the packets' port
    /// tags; the base queues are index 0).
    pub more: Vec<(RxQueue, TxQueue)>,
    /// Where the worker sends its graph's counters once the graph is built (the graph is
    /// built on the worker's own lcore and never leaves it).
    pub graph_counters: Sender<Result<Arc<GraphCounters>, String>>,
}

/// Every (rx, tx) queue pair the worker polls, index = the packets' port tag.
pub type Queues = Vec<(RxQueue, TxQueue)>;

pub fn run_rpc(spec: RpcSpec) -> (Queues, WorkerSnapshot) {
    let RpcSpec {
        base,
        nodes,
        vector,
        tsc_hz,
        mut latency,
        relays,
        relay_counters,
        more,
        graph_counters,
    } = spec;
    let WorkerSpec {
        rx,
        tx,
        burst: burst_size,
        poll_mode,
        idle_polls,
        idle_sleep,
        tx_retries,
        counters,
    } = base;
    let mut queues: Queues = std::iter::once((rx, tx)).chain(more).collect();
    let mut s = WorkerSnapshot::default();
    let mut graph = match build_relay_graph::<Mbuf>(&nodes, relays, relay_counters, tsc_hz) {
        Ok(g) => {
            let _ = graph_counters.send(Ok(g.counters()));
            g
        }
        Err(e) => {
            let _ = graph_counters.send(Err(e.to_string()));
            return (queues, s);
        }
    };
    drop(graph_counters);
    graph.time_one_in(TIMED_DISPATCH_EVERY);

    let mut input = PacketVector::<Mbuf>::new();
    let mut output = PacketVector::<Mbuf>::new();
    let joined = queues.len() > 1;
    // Joined: one tx burst per port, each able to take a whole vector (allocated here, once).
    let mut bursts: Vec<Vec<Mbuf>> = if joined {
        queues
            .iter()
            .map(|_| Vec::with_capacity(VECTOR_SIZE))
            .collect()
    } else {
        Vec::new()
    };
    let mut idle = Idle::new(poll_mode, idle_polls, idle_sleep);
    let vector = vector.min(VECTOR_SIZE);
    while !signal::stop_requested() {
        s.polls += 1;
        let mut rx_tsc = 0;
        for (k, (rx, _)) in queues.iter_mut().enumerate() {
            let before = input.len();
            gather(rx, &mut input, burst_size, vector, &mut rx_tsc);
            if joined {
                // A store per packet, joined workers only: net_ring does not set the mbuf's
                // port, and the graph routes replies by this tag.
                for m in &mut input.as_mut_vec()[before..] {
                    m.set_port(k as u16);
                }
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
            let (sent, dropped) = if joined {
                flush_by_port(&mut queues, &mut bursts, output.as_mut_vec(), tx_retries)
            } else {
                flush(&mut queues[0].1, output.as_mut_vec(), tx_retries)
            };
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
    (queues, s)
}

/// Gathers bursts from `rx` while they come back full, up to one vector: under load vectors
/// grow, at low load a single packet goes straight through. rx writes straight into the
/// vector's free slots, tx reads the output vector in place: no pointer copies.
#[inline(always)]
fn gather(
    rx: &mut RxQueue,
    input: &mut PacketVector<Mbuf>,
    burst_size: usize,
    vector: usize,
    rx_tsc: &mut u64,
) {
    loop {
        let n = input.len();
        if n >= vector {
            break;
        }
        let want = burst_size.min(vector - n);
        let got = rx.rx_up_to(input.as_mut_vec(), want);
        if n == 0 && got > 0 {
            // One stamp per vector, taken when its first packets have arrived: ordered
            // (lfence; rdtsc), because a plain rdtsc runs ahead of the rx burst's
            // outstanding loads. On net_memif (copy mode) those are cross-core misses on
            // the ring and the packet; with the plain read, ethernet-input's cycles and
            // every `server_ns` carried ~150 ns of them (server_ns p50 222 -> 72 ns,
            // ethernet-input 400 -> 45 cycles per packet, round trip unchanged).
            *rx_tsc = tsc::read_ordered();
        }
        if got < burst_size {
            break;
        }
    }
}

/// Sends each packet of `out` by the port its tag names (a tag past the worker's ports is a
/// graph bug: freed and counted as a tx drop). Returns (sent, dropped) over all ports.
#[inline]
fn flush_by_port(
    queues: &mut Queues,
    bursts: &mut [Vec<Mbuf>],
    out: &mut Vec<Mbuf>,
    retries: u32,
) -> (u64, u64) {
    let mut dropped = 0;
    for m in out.drain(..) {
        match bursts.get_mut(usize::from(PacketBuf::port(&m))) {
            Some(b) => b.push(m),
            None => {
                drop(m);
                dropped += 1;
            }
        }
    }
    let mut sent = 0;
    for (b, (_, tx)) in bursts.iter_mut().zip(queues.iter_mut()) {
        if !b.is_empty() {
            let (s, d) = flush(tx, b, retries);
            sent += s;
            dropped += d;
        }
    }
    (sent, dropped)
}
