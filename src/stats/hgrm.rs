//! `.hgrm` percentile distribution output, byte-compatible with Java
//! HdrHistogram's `AbstractHistogram.outputPercentileDistribution`.
//!
//! The Rust crate's `iter_quantiles` is not used because it emits a duplicate
//! final 100% row (HdrHistogram_rust#66) and differs from Java's iterator in
//! how many rows it reports per bucket; plotting tools and diffs against
//! Java-produced files need the exact Java row set.

use std::io::{self, Write};

use hdrhistogram::{Counter, Histogram};

use super::histogram::java_mean_stddev;
use super::javafmt::fixed_width;

/// Java's `subBucketCount` for a histogram with `sigfig` significant digits:
/// the smallest power of two that holds `2 * 10^sigfig` unit-resolution values.
fn java_sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig)))
        .next_power_of_two()
        .max(2)
}

/// Java `PercentileIterator.incrementIterationLevel`: ticks per step double each
/// time the remaining distance to 100% halves. Integer casts saturate and the
/// multiplication wraps, exactly like Java's `long` arithmetic.
fn next_percentile_level(level: f64, ticks_per_half: u32) -> f64 {
    let halvings = floor_log2(100.0 / (100.0 - level));
    let reporting_ticks = i64::from(ticks_per_half).wrapping_mul(pow2(halvings.wrapping_add(1)));
    level + 100.0 / reporting_ticks as f64
}

/// Java's `(long) (Math.log(x) / Math.log(2))`. For x >= 1 (every level below 100%) it is
/// read exactly off the float's exponent: the quotient of logarithms agrees wherever libm is
/// exact enough, but libm's `ln` is not bit-specified (Miri perturbs it on purpose and the
/// 50% level then came out one halving short).
fn floor_log2(x: f64) -> i64 {
    if (1.0..f64::INFINITY).contains(&x) {
        ((x.to_bits() >> 52) & 0x7ff) as i64 - 1023
    } else {
        // inf (100%) saturates to i64::MAX, NaN to 0, as Java's cast does.
        (x.ln() / 2f64.ln()) as i64
    }
}

/// Java's `(long) Math.pow(2, n)`: 0 below 2^0, saturated at i64::MAX from 2^63.
fn pow2(n: i64) -> i64 {
    match n {
        ..0 => 0,
        0..63 => 1 << n,
        _ => i64::MAX,
    }
}

/// One row of Java's percentile distribution: the iteration level reached, the
/// highest value equivalent to the bucket that reached it, and the number of
/// samples at or below that bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PercentileRow {
    /// Percentile level in `[0, 100]`; the last row of a non-empty histogram is 100.
    pub percentile: f64,
    /// Recorded value (in the histogram's unit) at that level.
    pub value: u64,
    /// Samples at or below `value`.
    pub total_count: u64,
}

/// The rows Java HdrHistogram's `outputPercentileDistribution` prints, in order:
/// its `PercentileIterator` with `ticks_per_half` steps per halving of the
/// distance to 100%, ending with one 100% row. Empty for an empty histogram or
/// `ticks_per_half == 0`. Shared by the `.hgrm` writer and the plots so both
/// show the same points.
pub fn percentile_rows<T: Counter>(hist: &Histogram<T>, ticks_per_half: u32) -> Vec<PercentileRow> {
    let mut rows = Vec::new();
    if ticks_per_half == 0 {
        return rows;
    }
    let recorded: Vec<(u64, u64)> = hist
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value().as_u64()))
        .collect();
    let total = hist.len();

    // State of Java's PercentileIterator over the recorded (non-zero) buckets;
    // zero-count buckets can never satisfy Java's reachedIterationLevel.
    let mut level = 0.0_f64;
    let mut reached_last = false;
    let mut pos = 0usize;
    let mut fresh = true;
    let mut cumulative = 0u64;
    'rows: loop {
        if cumulative >= total {
            // One extra step reports the 100% row once all counts are consumed.
            if reached_last || total == 0 {
                break;
            }
            level = 100.0;
            reached_last = true;
        }
        loop {
            let Some(&(value, count)) = recorded.get(pos) else {
                // Only reachable for inconsistent (overflowed) counts, where
                // Java gives up on the iteration as well.
                break 'rows;
            };
            if fresh {
                cumulative += count;
                fresh = false;
            }
            if 100.0 * cumulative as f64 / total as f64 >= level {
                rows.push(PercentileRow {
                    percentile: level,
                    value,
                    total_count: cumulative,
                });
                level = next_percentile_level(level, ticks_per_half);
                break;
            }
            pos += 1;
            fresh = true;
        }
    }
    rows
}

/// Write the percentile distribution of `hist` in Java HdrHistogram's text form.
///
/// `ticks_per_half` is the number of rows per halving of the distance to 100%
/// (Java's default is 5); values are divided by `value_unit_scaling` (e.g.
/// `1000.0` to print nanosecond data in microseconds).
pub fn write_percentile_distribution<T: Counter>(
    hist: &Histogram<T>,
    w: &mut impl Write,
    ticks_per_half: u32,
    value_unit_scaling: f64,
) -> io::Result<()> {
    if ticks_per_half == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ticks_per_half must be at least 1",
        ));
    }
    let nsd = usize::from(hist.sigfig());
    let mut out = String::new();
    out.push_str(&format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    ));

    for row in percentile_rows(hist, ticks_per_half) {
        let scaled = fixed_width(row.value as f64 / value_unit_scaling, 12, nsd);
        let quantile = row.percentile / 100.0;
        if row.percentile != 100.0 {
            out.push_str(&format!(
                "{} {} {:>10} {}\n",
                scaled,
                fixed_width(quantile, 2, 12),
                row.total_count,
                fixed_width(1.0 / (1.0 - quantile), 14, 2)
            ));
        } else {
            out.push_str(&format!(
                "{} {} {:>10}\n",
                scaled,
                fixed_width(quantile, 2, 12),
                row.total_count
            ));
        }
    }

    let total = hist.len();
    let (mean, stddev) = java_mean_stddev(hist);
    let max = if total == 0 { 0 } else { hist.max() };
    out.push_str(&format!(
        "#[Mean    = {}, StdDeviation   = {}]\n",
        fixed_width(mean / value_unit_scaling, 12, nsd),
        fixed_width(stddev / value_unit_scaling, 12, nsd)
    ));
    out.push_str(&format!(
        "#[Max     = {}, Total count    = {:>12}]\n",
        fixed_width(max as f64 / value_unit_scaling, 12, nsd),
        total
    ));
    out.push_str(&format!(
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]\n",
        hist.buckets(),
        java_sub_bucket_count(hist.sigfig())
    ));
    w.write_all(out.as_bytes())
}

/// [`write_percentile_distribution`] into a `String`.
pub fn percentile_distribution_string<T: Counter>(
    hist: &Histogram<T>,
    ticks_per_half: u32,
    value_unit_scaling: f64,
) -> io::Result<String> {
    let mut buf = Vec::new();
    write_percentile_distribution(hist, &mut buf, ticks_per_half, value_unit_scaling)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_latency_histogram;

    #[test]
    fn sub_bucket_count_matches_java() {
        assert_eq!(java_sub_bucket_count(0), 2);
        assert_eq!(java_sub_bucket_count(1), 32);
        assert_eq!(java_sub_bucket_count(2), 256);
        assert_eq!(java_sub_bucket_count(3), 2048);
        assert_eq!(java_sub_bucket_count(5), 262_144);
    }

    #[test]
    fn halvings_are_exact_and_saturate_like_java() {
        for k in 0..63 {
            let p = 2f64.powi(k);
            assert_eq!(floor_log2(p), i64::from(k));
            assert_eq!(floor_log2(p * (1.0 + f64::EPSILON)), i64::from(k));
            if k > 0 {
                assert_eq!(floor_log2(p * (1.0 - f64::EPSILON)), i64::from(k) - 1);
            }
        }
        assert_eq!(floor_log2(f64::INFINITY), i64::MAX);
        assert_eq!(floor_log2(f64::NAN), 0);
        assert_eq!(floor_log2(-2.0), 0);
        assert_eq!(
            (pow2(-1), pow2(0), pow2(62), pow2(63)),
            (0, 1, 1 << 62, i64::MAX)
        );
    }

    #[test]
    fn levels_follow_java_ticks() {
        let mut level = 0.0;
        let mut seen = Vec::new();
        for _ in 0..12 {
            seen.push(level);
            level = next_percentile_level(level, 5);
        }
        assert_eq!(
            seen,
            vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 77.5]
        );
    }

    #[test]
    fn single_final_row() {
        let mut h = new_latency_histogram();
        h.record_n(5_000, 10).unwrap();
        let s = percentile_distribution_string(&h, 5, 1000.0).unwrap();
        assert_eq!(s.matches("1.000000000000").count(), 1, "{s}");
    }

    #[test]
    fn zero_ticks_rejected() {
        let h = new_latency_histogram();
        let err = percentile_distribution_string(&h, 0, 1.0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
