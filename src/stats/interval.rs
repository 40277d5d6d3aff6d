//! Intervals the lab puts around every figure, and the verdicts written from them.
//!
//! Two uncertainties, kept apart (docs/lab.md):
//! - how well one run pins its own percentile: a distribution-free confidence interval from
//!   order statistics. For the q-quantile of n samples the number of samples below it is
//!   Binomial(n, q), so the ranks r and s with P(r <= rank <= s) >= 95% bound it with no
//!   assumption on the latency distribution ([`rank_interval`], [`quantile_ci`]). With a
//!   million samples it is a fraction of a percent wide.
//! - how well the machine reproduces it: the spread of per-round values. Rounds of one path a
//!   few minutes apart move far more than the within-run interval here (consecutive round trips
//!   on a busy VM are not independent), so comparisons use per-round figures: paired ratios
//!   A_i / B_i of interleaved rounds, summarised by their median with an interval for that
//!   median ([`paired_ratio`]).
//!
//! The interval for a median of few values is again an order-statistic one: the median of the
//! ratios' distribution lies between the k-th smallest and k-th largest of n values with
//! probability given by Binomial(n, 1/2). Below 6 values no pair of ranks reaches 95%; the
//! whole range min..max is then used and its actual coverage (1 - 2^(1-n): 75% for 3 rounds)
//! is printed with it, so nobody mistakes it for a 95% interval.

use hdrhistogram::Histogram;

/// The confidence every interval in the lab is built for.
pub const CONFIDENCE: f64 = 0.95;

/// Fewest values whose min..max covers their median with at least 95% (1 - 2^(1-6) = 96.9%).
pub const MIN_VALUES_FOR_95: usize = 6;

/// A percentile of a histogram with its order-statistic confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileCi {
    pub q: f64,
    /// The percentile itself (the value at rank ceil(q n), as HdrHistogram reports it).
    pub value: u64,
    pub lo: u64,
    pub hi: u64,
    /// Samples in the histogram.
    pub n: u64,
    /// False when the samples cannot bound this percentile at the requested confidence (too
    /// few above it): `lo`/`hi` are then the smallest/largest sample, not an interval.
    pub enough: bool,
}

/// The 1-based ranks (r, s) such that the r-th and s-th smallest of n independent samples
/// bracket the q-quantile with probability >= `conf`, split evenly between the two tails.
/// None when n is too small for either bound to exist (e.g. p99.9 of 1,000 samples).
pub fn rank_interval(n: u64, q: f64, conf: f64) -> Option<(u64, u64)> {
    if n == 0 || !(q > 0.0 && q < 1.0) || !(conf > 0.0 && conf < 1.0) {
        return None;
    }
    let tail = (1.0 - conf) / 2.0;
    let cdf = BinomialCdf::new(n, q);
    // K = samples below the quantile ~ Binomial(n, q). X_(r) <= x_q iff K >= r, and
    // X_(s) >= x_q iff K <= s - 1, so P(X_(r) <= x_q <= X_(s)) = F(s-1) - F(r-1).
    // r: the largest rank with F(r-1) <= tail; s: the smallest with F(s-1) >= 1 - tail.
    let r = cdf.last_at_most(tail).map(|k| k + 1)?;
    let s = cdf.first_at_least(1.0 - tail).map(|k| k + 1)?;
    (r >= 1 && s <= n && r <= s).then_some((r, s))
}

/// The q-quantile of `h` with its 95%-style interval at `conf`.
pub fn quantile_ci(h: &Histogram<u64>, q: f64, conf: f64) -> QuantileCi {
    let n = h.len();
    let value = if n == 0 { 0 } else { h.value_at_quantile(q) };
    match rank_interval(n, q, conf) {
        Some((r, s)) => QuantileCi {
            q,
            value,
            lo: value_at_rank(h, r).min(value),
            hi: value_at_rank(h, s).max(value),
            n,
            enough: true,
        },
        None => QuantileCi {
            q,
            value,
            lo: if n == 0 { 0 } else { h.min() },
            hi: if n == 0 { 0 } else { h.max() },
            n,
            enough: false,
        },
    }
}

/// The r-th smallest sample (1-based), at the histogram's resolution (the highest value
/// equivalent to its bucket, as `value_at_quantile` reports).
pub fn value_at_rank(h: &Histogram<u64>, r: u64) -> u64 {
    let mut seen = 0;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen >= r {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    h.max()
}

/// How a median's interval was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioMethod {
    /// Fewer than [`MIN_VALUES_FOR_95`] values: the whole range, with its real coverage.
    Range,
    /// Order statistics of the values (binomial bounds on the rank of their median), >= 95%.
    OrderStatistic,
}

/// A ratio of two paths' (or two runs') figures: median over rounds and an interval for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    /// Rounds (pairs, or the smaller of two unpaired sets).
    pub n: usize,
    pub method: RatioMethod,
    /// Probability that [lo, hi] covers the true median ratio (lower bound).
    pub coverage: f64,
    /// True for paired rounds, false for two independent sets (`--compare`).
    pub paired: bool,
}

impl Ratio {
    /// True when the interval does not exclude "no difference".
    pub fn includes_one(&self) -> bool {
        self.lo <= 1.0 && self.hi >= 1.0
    }

    /// "0.11x [0.09, 0.13] over 5 paired rounds (range, 94% coverage)".
    pub fn describe(&self) -> String {
        let what = if self.paired {
            "paired rounds"
        } else {
            "rounds each"
        };
        let how = match self.method {
            RatioMethod::Range => format!("range, {:.0}% coverage", self.coverage * 100.0),
            RatioMethod::OrderStatistic => {
                format!("order statistics, {:.0}%", self.coverage * 100.0)
            }
        };
        format!(
            "{}x [{}, {}] over {} {what} ({how})",
            fmt_ratio(self.median),
            fmt_ratio(self.lo),
            fmt_ratio(self.hi),
            self.n
        )
    }
}

/// Three significant digits, enough to tell 0.011x from 0.11x and 1.02x from 1.2x.
pub fn fmt_ratio(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.1 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

/// The median of a few per-round values and an interval for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianCi {
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    pub method: RatioMethod,
    /// Probability that [lo, hi] covers the true median (lower bound).
    pub coverage: f64,
}

/// A median of `values` with an interval for it; None for no values or a non-finite one.
pub fn median_interval(values: &[f64]) -> Option<MedianCi> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    if n < MIN_VALUES_FOR_95 {
        let coverage = 1.0 - 0.5f64.powi(n as i32 - 1);
        return Some(MedianCi {
            median,
            lo: v[0],
            hi: v[n - 1],
            method: RatioMethod::Range,
            coverage,
        });
    }
    let (r, s) = rank_interval(n as u64, 0.5, CONFIDENCE)
        .expect("n >= 6 always has a 95% interval for the median");
    let cdf = BinomialCdf::new(n as u64, 0.5);
    let coverage = cdf.at(s - 1) - cdf.at(r - 1);
    Some(MedianCi {
        median,
        lo: v[r as usize - 1],
        hi: v[s as usize - 1],
        method: RatioMethod::OrderStatistic,
        coverage,
    })
}

/// Per-round ratios a_i / b_i of two paths measured in interleaved rounds (round i of one with
/// round i of the other), their median and its interval. Pairs with a zero or non-finite side
/// are left out; None when no pair is left or the lengths differ.
pub fn paired_ratio(a: &[f64], b: &[f64]) -> Option<Ratio> {
    if a.len() != b.len() {
        return None;
    }
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() && y.is_finite() && **y > 0.0 && **x >= 0.0)
        .map(|(x, y)| x / y)
        .collect();
    let m = median_interval(&ratios)?;
    Some(Ratio {
        median: m.median,
        lo: m.lo,
        hi: m.hi,
        n: ratios.len(),
        method: m.method,
        coverage: m.coverage,
        paired: true,
    })
}

/// new / old for two runs whose rounds are not paired (`bypass lab --compare`): the ratio of
/// the medians, bounded by the ratios of their intervals' ends (each median's interval has
/// coverage c, so both hold together with at least 1 - 2(1 - c)).
pub fn unpaired_ratio(new: &[f64], old: &[f64]) -> Option<Ratio> {
    let (n, o) = (median_interval(new)?, median_interval(old)?);
    if o.median <= 0.0 || o.lo <= 0.0 {
        return None;
    }
    let method = if n.method == RatioMethod::Range || o.method == RatioMethod::Range {
        RatioMethod::Range
    } else {
        RatioMethod::OrderStatistic
    };
    Some(Ratio {
        median: n.median / o.median,
        lo: n.lo / o.hi,
        hi: n.hi / o.lo,
        n: new.len().min(old.len()),
        method,
        coverage: (n.coverage + o.coverage - 1.0).max(0.0),
        paired: false,
    })
}

/// The verdict line for "a vs b" on one figure, from the ratio a/b. An interval that includes
/// 1 is "no measurable difference", never a win.
pub fn verdict(a: &str, b: &str, what: &str, r: &Ratio) -> String {
    if r.includes_one() {
        format!(
            "{a} vs {b}, {what}: no measurable difference ({})",
            r.describe()
        )
    } else {
        let word = if r.hi < 1.0 { "lower" } else { "higher" };
        // Fewer rounds than a 95% interval needs: the direction is shown, flagged as a hint.
        let hint = if r.coverage < CONFIDENCE {
            "; below 95% coverage: a hint, not a verdict (more rounds make it one)"
        } else {
            ""
        };
        format!("{a} vs {b}, {what}: {word}, {}{hint}", r.describe())
    }
}

/// min..max of the finite values.
pub fn spread(values: &[f64]) -> Option<(f64, f64)> {
    values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// P(K <= k) for K ~ Binomial(n, p), summed exactly over the window where the mass is
/// (mean +- 40 standard deviations; beyond it the terms are below 1e-300), so n in the
/// hundreds of millions costs a few thousand terms.
struct BinomialCdf {
    start: u64,
    /// cumulative[i] = P(K <= start + i).
    cumulative: Vec<f64>,
}

impl BinomialCdf {
    fn new(n: u64, p: f64) -> BinomialCdf {
        let mean = n as f64 * p;
        let sd = (mean * (1.0 - p)).sqrt();
        let reach = 40.0 * sd + 50.0;
        let start = (mean - reach).floor().max(0.0) as u64;
        let end = ((mean + reach).ceil() as u64).min(n);
        let (lp, lq) = (p.ln(), (1.0 - p).ln());
        let mut cumulative = Vec::with_capacity((end - start + 1) as usize);
        let mut sum = 0.0;
        for k in start..=end {
            let ln_pmf = ln_choose(n, k) + k as f64 * lp + (n - k) as f64 * lq;
            sum += ln_pmf.exp();
            cumulative.push(sum.min(1.0));
        }
        BinomialCdf { start, cumulative }
    }

    fn at(&self, k: u64) -> f64 {
        if k < self.start {
            0.0
        } else {
            let i = (k - self.start) as usize;
            self.cumulative.get(i).copied().unwrap_or(1.0)
        }
    }

    /// The largest k with P(K <= k) <= x, if any.
    fn last_at_most(&self, x: f64) -> Option<u64> {
        let i = self.cumulative.partition_point(|&c| c <= x);
        match i {
            0 if self.start == 0 => None,
            // Below the window the CDF is ~0 <= x.
            0 => Some(self.start - 1),
            i => Some(self.start + i as u64 - 1),
        }
    }

    /// The smallest k with P(K <= k) >= x, if any.
    fn first_at_least(&self, x: f64) -> Option<u64> {
        let i = self.cumulative.partition_point(|&c| c < x);
        (i < self.cumulative.len()).then(|| self.start + i as u64)
    }
}

/// ln C(n, k).
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k)
}

/// ln n!: exact sum below 64, Stirling's series above (error below 1e-13 there).
fn ln_factorial(n: u64) -> f64 {
    if n < 64 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x * x * x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_latency_histogram;

    #[test]
    fn ln_factorial_matches_exact_sum_across_the_switch() {
        for n in [63u64, 64, 65, 100, 1000] {
            let exact: f64 = (2..=n).map(|i| (i as f64).ln()).sum();
            assert!((ln_factorial(n) - exact).abs() < 1e-9 * exact, "{n}");
        }
    }

    #[test]
    fn binomial_cdf_by_hand() {
        // Binomial(10, 0.5): P(K <= 1) = 11/1024, P(K <= 7) = 968/1024.
        let c = BinomialCdf::new(10, 0.5);
        assert!((c.at(1) - 11.0 / 1024.0).abs() < 1e-12);
        assert!((c.at(7) - 968.0 / 1024.0).abs() < 1e-12);
        assert!((c.at(10) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn median_of_ten_by_hand() {
        // Binomial(10, 1/2): F(1) = 0.0107 <= 0.025 < F(2) = 0.0547, so r = 2;
        // F(7) = 0.945 < 0.975 <= F(8) = 0.989, so s = 9. Coverage F(8) - F(1) = 0.9785.
        assert_eq!(rank_interval(10, 0.5, 0.95), Some((2, 9)));
    }

    #[test]
    fn median_of_hundred_matches_the_textbook_ranks() {
        // The classic 95% interval for the median of 100 samples: X_(40) .. X_(61).
        assert_eq!(rank_interval(100, 0.5, 0.95), Some((40, 61)));
    }

    #[test]
    fn p99_of_ten_thousand_is_near_the_normal_approximation() {
        // Normal approximation: 9900 +- 1.96 * sqrt(99) = 9900 +- 19.5.
        let (r, s) = rank_interval(10_000, 0.99, 0.95).unwrap();
        assert!((9878..=9883).contains(&r), "{r}");
        assert!((9918..=9922).contains(&s), "{s}");
    }

    #[test]
    fn too_few_samples_for_a_tail() {
        // p99.9 of 1,000 samples: the upper bound would need rank > n.
        assert_eq!(rank_interval(1000, 0.999, 0.95), None);
        assert_eq!(rank_interval(0, 0.5, 0.95), None);
        assert_eq!(rank_interval(5, 0.5, 0.95), None);
        assert!(rank_interval(6, 0.5, 0.95).is_some());
    }

    #[test]
    fn large_n_is_cheap_and_tight() {
        let (r, s) = rank_interval(100_000_000, 0.999, 0.95).unwrap();
        let width = (s - r) as f64 / 100_000_000.0;
        assert!(width < 2e-5, "{width}");
        assert!(r < 99_900_000 && s > 99_900_000);
    }

    #[test]
    fn quantile_ci_on_a_uniform_histogram() {
        let mut h = new_latency_histogram();
        for v in 1..=1000u64 {
            h.record(v).unwrap();
        }
        let ci = quantile_ci(&h, 0.5, 0.95);
        assert!(ci.enough);
        assert_eq!(ci.value, 500);
        // Ranks for the median of 1000: 469 .. 532.
        assert_eq!((ci.lo, ci.hi), (469, 532));
        let tail = quantile_ci(&h, 0.999, 0.95);
        assert!(!tail.enough);
        assert_eq!((tail.lo, tail.hi), (1, 1000));
        let empty = quantile_ci(&new_latency_histogram(), 0.5, 0.95);
        assert_eq!((empty.n, empty.value, empty.enough), (0, 0, false));
    }

    #[test]
    fn paired_ratio_few_rounds_is_the_range_with_its_coverage() {
        let r = paired_ratio(&[1.0, 2.0, 3.0], &[10.0, 10.0, 10.0]).unwrap();
        assert_eq!((r.median, r.lo, r.hi, r.n), (0.2, 0.1, 0.3, 3));
        assert_eq!(r.method, RatioMethod::Range);
        assert!((r.coverage - 0.75).abs() < 1e-12);
        assert!(!r.includes_one());
        assert_eq!(
            r.describe(),
            "0.200x [0.100, 0.300] over 3 paired rounds (range, 75% coverage)"
        );
    }

    #[test]
    fn paired_ratio_many_rounds_uses_order_statistics() {
        let a: Vec<f64> = (1..=10).map(f64::from).collect();
        let b = vec![1.0; 10];
        let r = paired_ratio(&a, &b).unwrap();
        assert_eq!(r.method, RatioMethod::OrderStatistic);
        // Ranks 2 and 9 of 1..10.
        assert_eq!((r.lo, r.hi, r.median), (2.0, 9.0, 5.5));
        assert!((r.coverage - 0.978_515_625).abs() < 1e-9);
    }

    #[test]
    fn paired_ratio_skips_unusable_pairs_and_refuses_mismatch() {
        let r = paired_ratio(&[1.0, 5.0, 2.0], &[2.0, 0.0, 4.0]).unwrap();
        assert_eq!((r.n, r.median), (2, 0.5));
        assert_eq!(paired_ratio(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(paired_ratio(&[1.0], &[0.0]), None);
    }

    #[test]
    fn verdicts_never_call_noise_a_win() {
        let same = paired_ratio(&[0.9, 1.0, 1.2], &[1.0, 1.0, 1.0]).unwrap();
        let v = verdict("a", "b", "p50", &same);
        assert!(v.contains("no measurable difference"), "{v}");
        let faster = paired_ratio(&[0.1, 0.12, 0.11], &[1.0, 1.0, 1.0]).unwrap();
        let v = verdict("memif", "kernel", "p50", &faster);
        assert!(v.starts_with("memif vs kernel, p50: lower, 0.110x"), "{v}");
        let slower = paired_ratio(&[2.0, 3.0, 2.5], &[1.0, 1.0, 1.0]).unwrap();
        assert!(verdict("a", "b", "p99", &slower).contains("higher, 2.50x"));
        assert!(
            v.ends_with("a hint, not a verdict (more rounds make it one)"),
            "{v}"
        );
        let six = paired_ratio(&[0.5; 6], &[1.0; 6]).unwrap();
        let v = verdict("a", "b", "p50", &six);
        assert!(v.ends_with("(order statistics, 97%)"), "{v}");
    }

    #[test]
    fn unpaired_ratio_bounds_by_the_ends() {
        let r = unpaired_ratio(&[2.0, 2.2, 2.4], &[1.0, 1.1, 1.2]).unwrap();
        assert!((r.median - 2.0).abs() < 1e-12);
        assert!((r.lo - 2.0 / 1.2).abs() < 1e-12);
        assert!((r.hi - 2.4).abs() < 1e-12);
        assert!(!r.paired);
        assert!((r.coverage - 0.5).abs() < 1e-12);
        assert!(r.describe().contains("over 3 rounds each"));
        assert_eq!(unpaired_ratio(&[], &[1.0]), None);
    }

    #[test]
    fn spread_ignores_non_finite() {
        assert_eq!(spread(&[3.0, f64::NAN, 1.0, 2.0]), Some((1.0, 3.0)));
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn ratio_formatting() {
        assert_eq!(fmt_ratio(0.0123), "1.23e-2");
        assert_eq!(fmt_ratio(0.5), "0.500");
        assert_eq!(fmt_ratio(3.456), "3.46");
        assert_eq!(fmt_ratio(43.21), "43.2");
        assert_eq!(fmt_ratio(432.1), "432");
    }
}
