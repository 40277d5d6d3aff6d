//! Latency histogram construction and summary statistics.

use std::fmt;

use hdrhistogram::{Counter, Histogram};
use serde::{Deserialize, Serialize};

/// Lowest value the latency histograms distinguish (1 ns).
pub const LOWEST_DISCERNIBLE_NS: u64 = 1;
/// Highest trackable latency (60 s). Anything above is a measurement bug or a
/// hang, not a latency sample, so the histogram does not auto-resize for it.
pub const HIGHEST_TRACKABLE_NS: u64 = 60_000_000_000;
/// Significant value digits: 0.1% value resolution at any magnitude.
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// A tail percentile backed by fewer samples than this is statistically noisy
/// (one outlier more or less moves it), so the summary flags it.
pub const LOW_SAMPLES_THRESHOLD: u64 = 100;

/// A nanosecond latency histogram: 1 ns .. 60 s, 3 significant digits, no auto-resize.
pub fn new_latency_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(
        LOWEST_DISCERNIBLE_NS,
        HIGHEST_TRACKABLE_NS,
        SIGNIFICANT_DIGITS,
    )
    .expect("constant histogram bounds are valid");
    h.auto(false);
    h
}

/// Mean and standard deviation computed the way Java's `AbstractHistogram`
/// does (median-equivalent values, same summation order), so `.hgrm` footers
/// match the Java output to the last printed digit.
pub(crate) fn java_mean_stddev<T: Counter>(h: &Histogram<T>) -> (f64, f64) {
    let total = h.len();
    if total == 0 {
        return (0.0, 0.0);
    }
    let mut sum = 0.0;
    for v in h.iter_recorded() {
        sum += h.median_equivalent(v.value_iterated_to()) as f64 * v.count_at_value().as_f64();
    }
    let mean = sum / total as f64;
    let mut dev_total = 0.0;
    for v in h.iter_recorded() {
        let dev = h.median_equivalent(v.value_iterated_to()) as f64 - mean;
        dev_total += (dev * dev) * v.count_since_last_iteration() as f64;
    }
    (mean, (dev_total / total as f64).sqrt())
}

/// One tail percentile and how much data stands behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailPercentile {
    /// Display label, e.g. `p99.9`.
    pub label: String,
    /// Percentile in percent, e.g. `99.9`.
    pub percentile: f64,
    /// Value at the percentile, ns (highest value equivalent to the bucket).
    pub value: u64,
    /// Recorded samples whose value is at or above `value` (same bucket or higher).
    pub samples_at_or_above: u64,
}

/// Headline statistics of a latency histogram. All values are nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub stddev: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub p99999: u64,
    pub max: u64,
    /// p90 .. p99.999 with their sample support, in ascending order.
    pub tails: Vec<TailPercentile>,
}

const TAILS: [(&str, f64); 5] = [
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
    ("p99.999", 99.999),
];

impl Summary {
    /// Summarise `h`. An empty histogram yields all-zero statistics.
    pub fn from_histogram<T: Counter>(h: &Histogram<T>) -> Summary {
        let (mean, stddev) = java_mean_stddev(h);
        let recorded: Vec<(u64, u64)> = h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value().as_u64()))
            .collect();
        let tails: Vec<TailPercentile> = TAILS
            .iter()
            .map(|&(label, percentile)| {
                let value = if h.is_empty() {
                    0
                } else {
                    h.value_at_percentile(percentile)
                };
                let samples_at_or_above = if h.is_empty() {
                    0
                } else {
                    recorded
                        .iter()
                        .filter(|(v, _)| *v >= value)
                        .map(|(_, c)| c)
                        .sum()
                };
                TailPercentile {
                    label: label.to_string(),
                    percentile,
                    value,
                    samples_at_or_above,
                }
            })
            .collect();
        let at = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_percentile(p)
            }
        };
        Summary {
            count: h.len(),
            min: if h.is_empty() { 0 } else { h.min() },
            mean,
            stddev,
            p50: at(50.0),
            p90: tails[0].value,
            p99: tails[1].value,
            p999: tails[2].value,
            p9999: tails[3].value,
            p99999: tails[4].value,
            max: if h.is_empty() { 0 } else { h.max() },
            tails,
        }
    }

    /// Tail percentiles backed by fewer than [`LOW_SAMPLES_THRESHOLD`] samples.
    pub fn low_sample_tails(&self) -> Vec<&TailPercentile> {
        self.tails
            .iter()
            .filter(|t| t.samples_at_or_above < LOW_SAMPLES_THRESHOLD)
            .collect()
    }

    /// A one-line warning naming the tail percentiles with fewer than
    /// [`LOW_SAMPLES_THRESHOLD`] samples behind them, or `None` when every
    /// reported tail is adequately supported.
    pub fn low_samples_warning(&self) -> Option<String> {
        let low = self.low_sample_tails();
        if low.is_empty() {
            return None;
        }
        let list: Vec<String> = low
            .iter()
            .map(|t| {
                let unit = if t.samples_at_or_above == 1 {
                    "sample"
                } else {
                    "samples"
                };
                format!("{} ({} {})", t.label, t.samples_at_or_above, unit)
            })
            .collect();
        Some(format!(
            "low sample count: {} backed by fewer than {} samples; treat as indicative only",
            list.join(", "),
            LOW_SAMPLES_THRESHOLD
        ))
    }

    /// Fixed-layout human table, values in microseconds with 3 decimals.
    pub fn to_table(&self) -> String {
        fn us(ns: f64) -> String {
            format!("{:>14.3}", ns / 1000.0)
        }
        let mut out = String::new();
        out.push_str(&format!(
            "{:<10}{:>14}{:>14}\n",
            "metric", "value (us)", "samples >="
        ));
        out.push_str(&format!("{:<10}{:>14}\n", "count", self.count));
        out.push_str(&format!("{:<10}{}\n", "min", us(self.min as f64)));
        out.push_str(&format!("{:<10}{}\n", "mean", us(self.mean)));
        out.push_str(&format!("{:<10}{}\n", "stddev", us(self.stddev)));
        out.push_str(&format!("{:<10}{}\n", "p50", us(self.p50 as f64)));
        for t in &self.tails {
            out.push_str(&format!(
                "{:<10}{}{:>14}\n",
                t.label,
                us(t.value as f64),
                t.samples_at_or_above
            ));
        }
        out.push_str(&format!("{:<10}{}\n", "max", us(self.max as f64)));
        if let Some(w) = self.low_samples_warning() {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_configuration() {
        let h = new_latency_histogram();
        assert_eq!(h.low(), 1);
        assert_eq!(h.high(), 60_000_000_000);
        assert_eq!(h.sigfig(), 3);
        assert!(!h.is_auto_resize());
        // Like Java, the top bucket is filled out to a power of two (~68.7 s),
        // but nothing beyond it is accepted.
        let mut h = h;
        assert!(h.record(60_000_000_000).is_ok());
        assert!(h.record(100_000_000_000).is_err());
    }

    #[test]
    fn summary_of_uniform_1_to_10000() {
        let mut h = new_latency_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let s = Summary::from_histogram(&h);
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min, 1);
        assert_eq!(s.p50, 5_000 + 3); // bucket of 5000 has width 4 -> highest equivalent
        assert_eq!(s.max, h.max());
        assert!((s.mean - 5000.5).abs() < 5.0, "mean {}", s.mean);
        assert!((s.stddev - 2886.75).abs() < 5.0, "stddev {}", s.stddev);
        let t: Vec<u64> = s.tails.iter().map(|t| t.samples_at_or_above).collect();
        // Buckets above 8192 are 8 ns wide, so a count covers the percentile's
        // whole bucket (e.g. p99 = 9903 covers 9896..=10000 -> 105 samples).
        assert_eq!(t, vec![1_001, 105, 17, 9, 1]);
        assert_eq!(s.p90, s.tails[0].value);
        let w = s.low_samples_warning().unwrap();
        assert!(w.contains("p99.9 (17 samples)"), "{w}");
        assert!(w.contains("p99.999 (1 sample)"), "{w}");
        assert!(!w.contains("p99 ("), "{w}");
    }

    #[test]
    fn no_warning_with_enough_samples() {
        let mut h = new_latency_histogram();
        h.record_n(1_000, 10_000_000).unwrap();
        let s = Summary::from_histogram(&h);
        assert_eq!(s.low_samples_warning(), None);
        assert!(s.tails.iter().all(|t| t.samples_at_or_above == 10_000_000));
    }

    #[test]
    fn empty_summary_is_zero() {
        let s = Summary::from_histogram(&new_latency_histogram());
        assert_eq!(s.count, 0);
        assert_eq!((s.min, s.p50, s.p99999, s.max), (0, 0, 0, 0));
        assert_eq!((s.mean, s.stddev), (0.0, 0.0));
        assert_eq!(s.low_sample_tails().len(), 5);
    }

    #[test]
    fn serde_round_trip() {
        let mut h = new_latency_histogram();
        h.record(1_500).unwrap();
        let s = Summary::from_histogram(&h);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"p9999\":1500"), "{json}");
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn table_layout_is_fixed() {
        let mut h = new_latency_histogram();
        h.record_n(1_234, 1_000).unwrap();
        h.record(2_000_000).unwrap();
        let expected = "\
metric        value (us)    samples >=
count               1001
min                1.234
mean               3.231
stddev            63.156
p50                1.234
p90                1.234          1001
p99                1.234          1001
p99.9              1.234          1001
p99.99          2000.895             1
p99.999         2000.895             1
max             2000.895
warning: low sample count: p99.99 (1 sample), p99.999 (1 sample) backed by fewer than 100 samples; treat as indicative only
";
        assert_eq!(Summary::from_histogram(&h).to_string(), expected);
    }
}
