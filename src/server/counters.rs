//! Per-worker counters: written by one worker, read by the control thread, no locks.

use std::sync::atomic::{AtomicU64, Ordering};

/// One worker's counters on their own cache line, so workers never share a line.
///
/// Single writer: the worker keeps plain u64 totals and publishes them with Relaxed stores
/// (a plain mov on x86), never fetch_add. Readers may see a slightly stale value, never a torn one.
#[repr(align(64))]
#[derive(Default)]
pub struct WorkerCounters {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    /// Packets dropped because tx refused them after every retry.
    pub tx_drops: AtomicU64,
    pub polls: AtomicU64,
    pub empty_polls: AtomicU64,
}

/// A plain copy of a worker's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkerSnapshot {
    pub rx: u64,
    pub tx: u64,
    pub tx_drops: u64,
    pub polls: u64,
    pub empty_polls: u64,
}

impl WorkerCounters {
    #[inline]
    pub fn publish(&self, s: &WorkerSnapshot) {
        self.rx.store(s.rx, Ordering::Relaxed);
        self.tx.store(s.tx, Ordering::Relaxed);
        self.tx_drops.store(s.tx_drops, Ordering::Relaxed);
        self.polls.store(s.polls, Ordering::Relaxed);
        self.empty_polls.store(s.empty_polls, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot {
            rx: self.rx.load(Ordering::Relaxed),
            tx: self.tx.load(Ordering::Relaxed),
            tx_drops: self.tx_drops.load(Ordering::Relaxed),
            polls: self.polls.load(Ordering::Relaxed),
            empty_polls: self.empty_polls.load(Ordering::Relaxed),
        }
    }
}

impl WorkerSnapshot {
    /// Counter growth since `earlier` (saturating, so a reset never shows as a huge number).
    pub fn delta(&self, earlier: &WorkerSnapshot) -> WorkerSnapshot {
        WorkerSnapshot {
            rx: self.rx.saturating_sub(earlier.rx),
            tx: self.tx.saturating_sub(earlier.tx),
            tx_drops: self.tx_drops.saturating_sub(earlier.tx_drops),
            polls: self.polls.saturating_sub(earlier.polls),
            empty_polls: self.empty_polls.saturating_sub(earlier.empty_polls),
        }
    }

    pub fn add(&mut self, o: &WorkerSnapshot) {
        self.rx += o.rx;
        self.tx += o.tx;
        self.tx_drops += o.tx_drops;
        self.polls += o.polls;
        self.empty_polls += o.empty_polls;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_snapshot_delta_add() {
        let c = WorkerCounters::default();
        let a = WorkerSnapshot {
            rx: 10,
            tx: 8,
            tx_drops: 2,
            polls: 5,
            empty_polls: 1,
        };
        c.publish(&a);
        assert_eq!(c.snapshot(), a);
        let b = WorkerSnapshot {
            rx: 25,
            tx: 20,
            tx_drops: 5,
            polls: 9,
            empty_polls: 3,
        };
        let d = b.delta(&a);
        assert_eq!(
            d,
            WorkerSnapshot {
                rx: 15,
                tx: 12,
                tx_drops: 3,
                polls: 4,
                empty_polls: 2
            }
        );
        assert_eq!(a.delta(&b), WorkerSnapshot::default());
        let mut sum = a;
        sum.add(&d);
        assert_eq!(sum, b);
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
    }
}
