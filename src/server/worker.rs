//! The poll loop of one worker: one rx queue in, one tx queue out.

use std::sync::Arc;
use std::time::Duration;

use crate::dpdk::{Mbuf, RxQueue, TxQueue};
use crate::os::signal;

use super::config::{PollMode, MAX_BURST};
use super::counters::{WorkerCounters, WorkerSnapshot};

/// What a worker needs: its queues, how to poll, and where to publish counters.
pub struct WorkerSpec {
    pub rx: RxQueue,
    pub tx: TxQueue,
    pub burst: usize,
    pub poll_mode: PollMode,
    pub idle_polls: u32,
    pub idle_sleep: Duration,
    pub tx_retries: u32,
    pub counters: Arc<WorkerCounters>,
}

/// What a worker does on an empty poll: count it, and in adaptive mode sleep once the run of
/// empty polls is long enough (a system call only while there is no traffic).
pub struct Idle {
    run: u32,
    threshold: u32,
    sleep: Option<Duration>,
}

impl Idle {
    pub fn new(mode: PollMode, threshold: u32, sleep: Duration) -> Idle {
        Idle {
            run: 0,
            threshold,
            sleep: (mode == PollMode::Adaptive).then_some(sleep),
        }
    }

    /// Records an empty poll; true every 1024th in a row, when the caller should publish its
    /// counters (they are otherwise published only when packets move).
    #[inline]
    pub fn empty_poll(&mut self) -> bool {
        self.run += 1;
        if let Some(d) = self.sleep {
            if self.run >= self.threshold {
                std::thread::sleep(d);
            }
        }
        self.run.is_multiple_of(1024)
    }

    #[inline]
    pub fn traffic(&mut self) {
        self.run = 0;
    }
}

/// Pushes `pkts` out, retrying what the queue refused up to `retries` times; whatever is
/// still left is freed and counted. Returns (sent, dropped). The one flush of the io worker,
/// the rpc worker and priming.
#[inline]
pub fn flush(tx: &mut TxQueue, pkts: &mut Vec<Mbuf>, retries: u32) -> (u64, u64) {
    let mut sent = 0u64;
    let mut tries = 0;
    while !pkts.is_empty() {
        sent += tx.tx(pkts) as u64;
        if pkts.is_empty() || tries == retries {
            break;
        }
        tries += 1;
    }
    let dropped = pkts.len() as u64;
    Mbuf::free_all(pkts);
    (sent, dropped)
}

/// io forwarding: every packet received goes straight back out, untouched. Returns the queue
/// handles so the caller can drain the rx queue at shutdown.
pub fn run_io(spec: WorkerSpec) -> (RxQueue, TxQueue, WorkerSnapshot) {
    let WorkerSpec {
        mut rx,
        mut tx,
        burst: burst_size,
        poll_mode,
        idle_polls,
        idle_sleep,
        tx_retries,
        counters,
    } = spec;
    // Allocated once; rx and tx never grow it.
    let mut burst = Vec::with_capacity(MAX_BURST);
    let mut s = WorkerSnapshot::default();
    let mut idle = Idle::new(poll_mode, idle_polls, idle_sleep);
    while !signal::stop_requested() {
        s.polls += 1;
        let n = rx.rx_up_to(&mut burst, burst_size);
        if n == 0 {
            s.empty_polls += 1;
            if idle.empty_poll() {
                counters.publish(&s);
            }
            continue;
        }
        idle.traffic();
        s.rx += n as u64;
        let (sent, dropped) = flush(&mut tx, &mut burst, tx_retries);
        s.tx += sent;
        s.tx_drops += dropped;
        counters.publish(&s);
    }
    counters.publish(&s);
    (rx, tx, s)
}
