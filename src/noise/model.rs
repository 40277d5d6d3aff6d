//! The platform model (issue 9 §1): what an open-loop client sending every 1/R s would see from
//! the platform alone. A request intended at instant t waits for the largest remaining stall at
//! t on any probed CPU (a stall on the client's or the server's CPU delays it either way);
//! outside every gap it waits 0. A pure function over the probe's gap logs.

use serde::Serialize;

use crate::contract::platform as contract;
use crate::stats::new_latency_histogram;

use super::probe::Gap;

/// The model at one rate: the figures the lab reads (the contract's row) and the share of
/// sends in a gap over 1 us, which only `bypass noise` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRow {
    #[serde(flatten)]
    pub shared: contract::ModelRow,
    /// Fraction of sends intended inside a gap longer than 1 us on any CPU.
    pub in_gap_1us: f64,
}

/// Per CPU, the first gap that has not ended before the current instant. Sends are visited in
/// time order and each log is in time order, so every cursor only moves forward.
struct Cursor<'a> {
    gaps: &'a [Gap],
    next: usize,
}

impl Cursor<'_> {
    /// The gap containing `t` (start <= t < end), if any.
    fn at(&mut self, t: u64) -> Option<Gap> {
        while self.next < self.gaps.len() && self.gaps[self.next].end_ns() <= t {
            self.next += 1;
        }
        self.gaps
            .get(self.next)
            .copied()
            .filter(|g| g.start_ns <= t)
    }
}

/// Replays sends at `start_ns + k / rate` for every k with the instant inside
/// `[start_ns, start_ns + duration_ns)`, against each CPU's gaps (each slice in time order).
pub fn platform_model(logs: &[&[Gap]], start_ns: u64, duration_ns: u64, rate: f64) -> ModelRow {
    let mut hist = new_latency_histogram();
    let mut cursors: Vec<Cursor> = logs.iter().map(|g| Cursor { gaps: g, next: 0 }).collect();
    let interval = 1e9 / rate;
    let sends = (duration_ns as f64 / interval).ceil() as u64;
    let (mut over_1us, mut over_10us, mut over_100us) = (0u64, 0u64, 0u64);
    for k in 0..sends {
        let t = start_ns + (k as f64 * interval) as u64;
        let (mut delay, mut longest) = (0u64, 0u64);
        for c in cursors.iter_mut() {
            if let Some(g) = c.at(t) {
                delay = delay.max(g.end_ns() - t);
                longest = longest.max(g.len_ns);
            }
        }
        over_1us += u64::from(longest > 1_000);
        over_10us += u64::from(longest > 10_000);
        over_100us += u64::from(longest > 100_000);
        hist.saturating_record(delay);
    }
    let frac = |n: u64| {
        if sends == 0 {
            0.0
        } else {
            n as f64 / sends as f64
        }
    };
    let at = |p: f64| {
        if sends == 0 {
            0
        } else {
            hist.value_at_quantile(p)
        }
    };
    ModelRow {
        shared: contract::ModelRow {
            rate,
            sends,
            in_gap_10us: frac(over_10us),
            in_gap_100us: frac(over_100us),
            delay_p50_ns: at(0.5),
            delay_p99_ns: at(0.99),
            delay_p999_ns: at(0.999),
            delay_max_ns: if sends == 0 { 0 } else { hist.max() },
        },
        in_gap_1us: frac(over_1us),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(start_ns: u64, len_ns: u64) -> Gap {
        Gap { start_ns, len_ns }
    }

    /// 1000 sends at 1000/s over 1 s from t = 5 ms: send k at 5 ms + k ms.
    /// CPU a: a 2.5 ms stall from 10.2 ms covers sends at 11 and 12 ms (remaining 1.7, 0.7 ms).
    /// CPU b: a 50 us stall from 19.99 ms covers the send at 20 ms (remaining 40 us), and a 5 us
    /// stall from 29.998 ms covers 30 ms (remaining 3 us); a gap ending exactly at a send
    /// instant (39.9 .. 40 ms) does not cover it; a 200 us stall at 500.95 ms on both CPUs
    /// (a: 200 us, b: 150 us from 500.9 ms) covers 501 ms: remaining max(150, 50) = 150 us,
    /// longest 200 us.
    #[test]
    fn hand_computed_sends_and_delays() {
        const MS: u64 = 1_000_000;
        let a = [gap(10_200_000, 2_500_000), gap(500_950_000, 200_000)];
        let b = [
            gap(19_990_000, 50_000),
            gap(29_998_000, 5_000),
            gap(39_900_000, 100_000),
            gap(500_900_000, 150_000),
        ];
        let row = platform_model(&[&a, &b], 5 * MS, 1_000 * MS, 1000.0);
        assert_eq!(row.shared.sends, 1000);
        // Sends in a gap: 11, 12, 20, 30, 501 ms (5); longer than 10 us: all but 30 (4);
        // longer than 100 us: 11, 12, 501 (3).
        assert_eq!(row.in_gap_1us, 5.0 / 1000.0);
        assert_eq!(row.shared.in_gap_10us, 4.0 / 1000.0);
        assert_eq!(row.shared.in_gap_100us, 3.0 / 1000.0);
        assert_eq!(row.shared.delay_p50_ns, 0);
        // 995 zeros then 3 us, 40 us, 150 us, 0.7 ms, 1.7 ms: rank 990 is 0, rank 999 is 0.7 ms.
        assert_eq!(row.shared.delay_p99_ns, 0);
        let h = new_latency_histogram();
        let eq = |v: u64| h.highest_equivalent(v);
        assert_eq!(row.shared.delay_p999_ns, eq(700_000));
        assert_eq!(row.shared.delay_max_ns, eq(1_700_000));
    }

    #[test]
    fn no_gaps_means_no_delay_and_rate_sets_sends() {
        let row = platform_model(&[&[], &[]], 0, 2_000_000_000, 10_000.0);
        assert_eq!(row.shared.sends, 20_000);
        assert_eq!(row.in_gap_1us, 0.0);
        assert_eq!(row.shared.delay_max_ns, 0);
    }

    /// A CPU stalled for the whole window delays every send by the time left in the window.
    #[test]
    fn whole_window_stall() {
        let g = [gap(0, 1_000_000_000)];
        let row = platform_model(&[&g], 0, 1_000_000_000, 10.0);
        assert_eq!(row.shared.sends, 10);
        assert_eq!(row.shared.in_gap_100us, 1.0);
        let h = new_latency_histogram();
        assert_eq!(row.shared.delay_max_ns, h.highest_equivalent(1_000_000_000));
        // Delays 1.0, 0.9, ..., 0.1 s: the median (5th smallest of 10) is 0.5 s.
        assert_eq!(row.shared.delay_p50_ns, h.highest_equivalent(500_000_000));
    }
}
