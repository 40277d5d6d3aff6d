//! Service-time histograms handed from workers to the control thread without locks on the
//! packet path: a worker records into its own histogram and, once per interval, swaps it for
//! an empty one through a pair of bounded channels.

use crossbeam::channel::{bounded, Receiver, Sender, TrySendError};
use hdrhistogram::Histogram;

use crate::os::tsc::{self, TickScale};
use crate::stats::new_latency_histogram;

/// The worker's end.
pub struct LatencyRecorder {
    hist: Histogram<u64>,
    full: Sender<Histogram<u64>>,
    empty: Receiver<Histogram<u64>>,
    /// Converts stamps' differences once per burst.
    scale: TickScale,
    interval_ticks: u64,
    next_publish: u64,
}

/// The control thread's end.
pub struct LatencyCollector {
    full: Receiver<Histogram<u64>>,
    empty: Sender<Histogram<u64>>,
}

/// Makes a connected pair. Two spare histograms are allocated up front, so the worker never
/// allocates while the control thread keeps up (it returns each one it receives).
pub fn pair(tsc_hz: u64, interval_ns: u64) -> (LatencyRecorder, LatencyCollector) {
    let (full_tx, full_rx) = bounded(4);
    let (empty_tx, empty_rx) = bounded(4);
    for _ in 0..2 {
        let _ = empty_tx.try_send(new_latency_histogram());
    }
    let scale = TickScale::from_hz(tsc_hz);
    let interval_ticks = tsc::ns_to_ticks(interval_ns, tsc_hz);
    (
        LatencyRecorder {
            hist: new_latency_histogram(),
            full: full_tx,
            empty: empty_rx,
            scale,
            interval_ticks,
            next_publish: 0,
        },
        LatencyCollector {
            full: full_rx,
            empty: empty_tx,
        },
    )
}

impl LatencyRecorder {
    /// Records `count` packets that took `ticks` from rx stamp to tx.
    #[inline]
    pub fn record_ticks(&mut self, ticks: u64, count: u64) {
        let ns = self.scale.ticks_to_ns(ticks);
        // Values beyond the histogram's range are clamped rather than lost.
        self.hist.saturating_record_n(ns.max(1), count);
    }

    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        self.scale.ticks_to_ns(ticks)
    }

    /// Hands the histogram over when an interval has passed (by the caller's TSC reading).
    #[inline]
    pub fn maybe_publish(&mut self, now_tsc: u64) {
        if now_tsc < self.next_publish {
            return;
        }
        self.next_publish = now_tsc + self.interval_ticks;
        self.publish();
    }

    /// Hands the current histogram over now (also at exit).
    pub fn publish(&mut self) {
        if self.hist.is_empty() {
            return;
        }
        let fresh = match self.empty.try_recv() {
            Ok(h) => h,
            // The control thread fell behind: keep recording into the same histogram rather
            // than allocating; it is handed over whole next time.
            Err(_) => return,
        };
        let full = std::mem::replace(&mut self.hist, fresh);
        if let Err(TrySendError::Full(mut h) | TrySendError::Disconnected(mut h)) =
            self.full.try_send(full)
        {
            // Put the samples back so none are lost.
            let _ = h.add(&self.hist);
            self.hist = h;
        }
    }
}

impl LatencyCollector {
    /// Adds every histogram the worker handed over into `into`, and returns them cleared.
    pub fn collect(&self, into: &mut Histogram<u64>) {
        while let Ok(mut h) = self.full.try_recv() {
            let _ = into.add(&h);
            h.reset();
            let _ = self.empty.try_send(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_move_from_worker_to_collector_without_loss() {
        let (mut rec, col) = pair(1_000_000_000, 1_000);
        let mut total = new_latency_histogram();
        let mut expected = 0;
        for round in 0..10u64 {
            for i in 0..100 {
                rec.record_ticks(1_000 + i, 2);
                expected += 2;
            }
            rec.maybe_publish(round * 10_000);
            if round % 3 == 0 {
                col.collect(&mut total);
            }
        }
        rec.publish();
        col.collect(&mut total);
        // Whatever was not handed over yet is still in the recorder.
        assert_eq!(total.len() + rec.hist.len(), expected);
        assert_eq!(total.min(), 1_000);
    }

    #[test]
    fn ticks_convert_to_ns() {
        let (mut rec, col) = pair(2_000_000_000, 1_000_000);
        rec.record_ticks(2_000, 1); // 1 us at 2 GHz
        rec.publish();
        let mut h = new_latency_histogram();
        col.collect(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.equivalent(h.max(), 1_000), "{}", h.max());
    }
}
