//! What one logical request is (issue 14): `--servers` (the replicas), `--fanout K` (K
//! sub-requests, complete when all K have replied, as slow as the slowest) and
//! `--hedge-after DURATION|pNN` (a sub-request unanswered after the threshold is sent again to
//! the next replica; the first reply wins). The engine keeps the slots; this module holds the
//! settings, the adaptive threshold and the amplification figures.
//!
//! How a pNN threshold adapts: every reply to a sub-request's *first* copy (winner or loser)
//! enters a histogram of recent round trips, measured from that copy's own send. Every
//! [`RECOMPUTE_EVERY`] such replies the threshold becomes that histogram's NN-th percentile;
//! the histogram is emptied when it holds [`RECENT_MAX`], so the threshold follows the last
//! few thousand replies. No sub-request is hedged until [`MIN_SAMPLES`] replies have been
//! seen (give the run a warmup). Only first copies count, so the hedges' own fast replies do
//! not pull the threshold down and hedge more and more.

#![forbid(unsafe_code)]

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use hdrhistogram::Histogram;

use crate::contract::load::{FanoutFigures, HedgeFigures};
use crate::service::{format_duration_ns, parse_duration_ns};
use crate::stats::{new_latency_histogram, HIGHEST_TRACKABLE_NS};

/// Most sub-requests per logical request.
pub const MAX_FANOUT: u32 = 64;
/// Most replicas in `--servers`.
pub const MAX_SERVERS: usize = 64;
/// First-copy replies between two recomputations of a pNN threshold.
pub const RECOMPUTE_EVERY: u64 = 256;
/// Replies a pNN threshold needs before the first hedge.
pub const MIN_SAMPLES: u64 = 100;
/// The recent histogram is emptied when it holds this many replies.
pub const RECENT_MAX: u64 = 4096;
/// The percentile the amplification is measured at.
pub const AMPLIFICATION_PERCENTILE: f64 = 99.0;

/// `--hedge-after`: a fixed delay or a percentile of recent round trips.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    Fixed {
        ns: u64,
    },
    /// 0 < percentile < 100.
    Percentile(f64),
}

impl FromStr for HedgeAfter {
    type Err = String;

    fn from_str(s: &str) -> Result<HedgeAfter, String> {
        let t = s.trim();
        if let Some(p) = t.strip_prefix('p') {
            let v: f64 = p
                .parse()
                .map_err(|_| format!("`{s}`: a percentile is pNN, e.g. p95 or p99.9"))?;
            // p999 reads as 99.9, as in the reports' key names.
            let v = if p.len() > 2 && p.starts_with("99") && !p.contains('.') {
                let digits = p.len() as i32;
                v / 10f64.powi(digits - 2)
            } else {
                v
            };
            if !(v > 0.0 && v < 100.0) {
                return Err(format!(
                    "`{s}`: the percentile must be above 0 and below 100"
                ));
            }
            return Ok(HedgeAfter::Percentile(v));
        }
        let ns = parse_duration_ns(t).map_err(|e| format!("`{s}`: {e} (or pNN, e.g. p95)"))?;
        if ns == 0 || ns > HIGHEST_TRACKABLE_NS {
            return Err(format!("`{s}`: must be above 0 and at most 60 s"));
        }
        Ok(HedgeAfter::Fixed { ns })
    }
}

impl fmt::Display for HedgeAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HedgeAfter::Fixed { ns } => write!(f, "{}", format_duration_ns(*ns)),
            HedgeAfter::Percentile(p) => write!(f, "p{p}"),
        }
    }
}

/// The replicas and the shape of a logical request.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// `--servers`: empty means the configuration's one server.
    pub servers: Vec<SocketAddr>,
    /// Sub-requests per logical request (1: plain requests).
    pub fanout: u32,
    pub hedge: Option<HedgeAfter>,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            servers: Vec::new(),
            fanout: 1,
            hedge: None,
        }
    }
}

impl Shape {
    /// Plain requests: one per logical request to the one server, no hedging (the engine's
    /// figures are then exactly those of a run without this module). Given replicas, even
    /// K = 1 reports its sub-requests, so a fan-out series has its K = 1 point.
    pub fn is_plain(&self) -> bool {
        self.fanout == 1 && self.hedge.is_none() && self.servers.is_empty()
    }

    /// Replicas the sub-requests go to (at least 1).
    pub fn replicas(&self) -> usize {
        self.servers.len().max(1)
    }
}

/// The hedging threshold in force and what hedging did.
#[derive(Debug)]
pub struct Hedger {
    after: HedgeAfter,
    /// u64::MAX: no hedge yet (a pNN threshold before [`MIN_SAMPLES`]).
    threshold_ns: u64,
    min_ns: u64,
    max_ns: u64,
    recent: Histogram<u64>,
    since_recompute: u64,
    pub duplicates: u64,
    pub wasted: u64,
    pub won: u64,
}

impl Hedger {
    pub fn new(after: HedgeAfter) -> Hedger {
        let threshold_ns = match after {
            HedgeAfter::Fixed { ns } => ns,
            HedgeAfter::Percentile(_) => u64::MAX,
        };
        Hedger {
            after,
            threshold_ns,
            min_ns: u64::MAX,
            max_ns: 0,
            recent: new_latency_histogram(),
            since_recompute: 0,
            duplicates: 0,
            wasted: 0,
            won: 0,
        }
    }

    /// How long a sub-request waits for its reply before its duplicate goes out (u64::MAX:
    /// not yet).
    #[inline]
    pub fn threshold_ns(&self) -> u64 {
        self.threshold_ns
    }

    /// `n` hedges went out under the current threshold.
    pub fn sent_duplicates(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.duplicates += n;
        self.min_ns = self.min_ns.min(self.threshold_ns);
        self.max_ns = self.max_ns.max(self.threshold_ns);
    }

    /// A reply to a sub-request's first copy, `rtt_ns` after that copy was sent.
    pub fn first_copy_reply(&mut self, rtt_ns: u64) {
        let HedgeAfter::Percentile(p) = self.after else {
            return;
        };
        let _ = self.recent.record(rtt_ns.clamp(1, HIGHEST_TRACKABLE_NS));
        self.since_recompute += 1;
        let n = self.recent.len();
        if n >= MIN_SAMPLES
            && (self.since_recompute >= RECOMPUTE_EVERY || self.threshold_ns == u64::MAX)
        {
            self.threshold_ns = self.recent.value_at_percentile(p).max(1);
            self.since_recompute = 0;
        }
        if n >= RECENT_MAX {
            self.recent.reset();
        }
    }

    /// The report's figures; `firsts`: first copies of sub-requests sent.
    pub fn figures(&self, firsts: u64) -> HedgeFigures {
        let used = self.duplicates > 0;
        HedgeFigures {
            after: self.after.to_string(),
            threshold_ns: if self.threshold_ns == u64::MAX {
                0
            } else {
                self.threshold_ns
            },
            threshold_min_ns: if used { self.min_ns } else { 0 },
            threshold_max_ns: if used { self.max_ns } else { 0 },
            duplicates: self.duplicates,
            duplicates_pct: if firsts == 0 {
                0.0
            } else {
                self.duplicates as f64 * 100.0 / firsts as f64
            },
            wasted: self.wasted,
            won: self.won,
        }
    }
}

/// P(value > t) in `h` (0 when empty).
fn above(h: &Histogram<u64>, t: u64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    let at_or_below = h.count_between(0, t);
    1.0 - at_or_below as f64 / h.len() as f64
}

/// The amplification figures of a run: the sub-requests' histogram and the logical
/// requests', at the sub-requests' p99.
pub fn figures<P>(
    shape: &Shape,
    sub: &Histogram<u64>,
    logical: &Histogram<u64>,
    sub_figures: P,
    hedge: Option<HedgeFigures>,
) -> FanoutFigures<P> {
    let threshold_ns = if sub.is_empty() {
        0
    } else {
        sub.value_at_percentile(AMPLIFICATION_PERCENTILE)
    };
    let p_sub = above(sub, threshold_ns);
    FanoutFigures {
        fanout: shape.fanout,
        replicas: shape.replicas() as u32,
        sub: sub_figures,
        threshold_ns,
        p_sub,
        p_logical: above(logical, threshold_ns),
        p_model: 1.0 - (1.0 - p_sub).powi(shape.fanout as i32),
        hedge,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hedge_after_parses_durations_and_percentiles() {
        assert_eq!("500us".parse(), Ok(HedgeAfter::Fixed { ns: 500_000 }));
        assert_eq!("2ms".parse(), Ok(HedgeAfter::Fixed { ns: 2_000_000 }));
        assert_eq!("p95".parse(), Ok(HedgeAfter::Percentile(95.0)));
        assert_eq!("p99.9".parse(), Ok(HedgeAfter::Percentile(99.9)));
        assert_eq!("p999".parse(), Ok(HedgeAfter::Percentile(99.9)));
        for bad in ["p0", "p100", "pxx", "0us", "fast", "", "61s"] {
            assert!(bad.parse::<HedgeAfter>().is_err(), "{bad}");
        }
        assert_eq!(HedgeAfter::Percentile(95.0).to_string(), "p95");
        assert_eq!(HedgeAfter::Fixed { ns: 500_000 }.to_string(), "500us");
    }

    #[test]
    fn a_percentile_threshold_waits_for_samples_then_follows_them() {
        let mut h = Hedger::new(HedgeAfter::Percentile(90.0));
        assert_eq!(h.threshold_ns(), u64::MAX, "no hedge before any reply");
        for i in 0..MIN_SAMPLES - 1 {
            h.first_copy_reply(10_000 + i);
        }
        assert_eq!(h.threshold_ns(), u64::MAX);
        // 100 replies: 90 at 10 us, 10 at 1 ms -> p90 is about 10 us.
        let mut h = Hedger::new(HedgeAfter::Percentile(90.0));
        for i in 0..MIN_SAMPLES {
            h.first_copy_reply(if i % 10 == 0 { 1_000_000 } else { 10_000 });
        }
        let t = h.threshold_ns();
        assert!((9_990..=10_010).contains(&t), "{t}");
        // The service slows down 10x: within RECOMPUTE_EVERY replies the threshold follows
        // (after the histogram empties, the recent replies are all it holds).
        for _ in 0..RECENT_MAX + RECOMPUTE_EVERY {
            h.first_copy_reply(100_000);
        }
        let t = h.threshold_ns();
        assert!((99_900..=100_100).contains(&t), "{t}");
        h.sent_duplicates(1);
        let f = h.figures(1000);
        assert_eq!((f.duplicates, f.after.as_str()), (1, "p90"));
        assert!((f.duplicates_pct - 0.1).abs() < 1e-12);
        assert_eq!(f.threshold_min_ns, f.threshold_max_ns);
    }

    #[test]
    fn amplification_against_the_independent_model() {
        let shape = Shape {
            fanout: 3,
            ..Shape::default()
        };
        let mut sub = new_latency_histogram();
        let mut logical = new_latency_histogram();
        // 1 sub-request in 100 at 1 ms; logical = max of three consecutive.
        let v: Vec<u64> = (0..30_000u64)
            .map(|i| {
                if i % 100 == 7 {
                    1_000_000
                } else {
                    10_000 + i % 50
                }
            })
            .collect();
        for x in &v {
            sub.record(*x).unwrap();
        }
        for c in v.chunks(3) {
            logical.record(*c.iter().max().unwrap()).unwrap();
        }
        let f = figures(&shape, &sub, &logical, (), None);
        assert!(f.threshold_ns < 1_000_000, "{}", f.threshold_ns);
        assert!((f.p_sub - 0.01).abs() < 1e-9, "{}", f.p_sub);
        assert!((f.p_logical - 0.03).abs() < 1e-9, "{}", f.p_logical);
        assert!((f.p_model - (1.0 - 0.99f64.powi(3))).abs() < 1e-9);
    }
}
