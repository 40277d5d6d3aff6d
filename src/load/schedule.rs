//! Open-loop send schedules: intended send times in f64 nanoseconds, so a
//! rate is never rounded to an integer interval (DeathStarBench#347).

use super::config::Arrival;

/// SplitMix64: small, fast, good enough for inter-arrival gaps.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    #[inline]
    pub fn unit_open_zero(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// Intended send offsets (ns from the schedule's start) for an open loop.
#[derive(Debug, Clone)]
pub struct Schedule {
    arrival: Arrival,
    mean_gap_ns: f64,
    index: u64,
    /// Poisson: running sum of exponential gaps.
    at_ns: f64,
    rng: Rng,
}

impl Schedule {
    /// `rate` requests per second; must be finite and positive (validated by the config).
    pub fn new(rate: f64, arrival: Arrival, seed: u64) -> Schedule {
        Schedule {
            arrival,
            mean_gap_ns: 1e9 / rate,
            index: 0,
            at_ns: 0.0,
            rng: Rng::new(seed),
        }
    }

    /// The intended offset of the next request, without consuming it.
    #[inline]
    pub fn peek_ns(&self) -> u64 {
        match self.arrival {
            // i * gap rather than a running sum: no accumulated rounding.
            Arrival::Fixed => (self.index as f64 * self.mean_gap_ns) as u64,
            Arrival::Poisson => self.at_ns as u64,
        }
    }

    /// Consumes the next intended offset and returns it.
    #[inline]
    pub fn next_ns(&mut self) -> u64 {
        let t = self.peek_ns();
        self.index += 1;
        if self.arrival == Arrival::Poisson {
            // Exponential gap: -ln(U) * mean, U in (0, 1].
            self.at_ns += -self.rng.unit_open_zero().ln() * self.mean_gap_ns;
        }
        t
    }

    pub fn mean_gap_ns(&self) -> f64 {
        self.mean_gap_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_has_no_rate_rounding() {
        // 3 requests/s: a 333_333_333.33 ns gap; after 3 million requests the
        // schedule must be at 1e6 s, not drifted by integer truncation.
        let mut s = Schedule::new(3.0, Arrival::Fixed, 1);
        assert_eq!(s.next_ns(), 0);
        assert_eq!(s.next_ns(), 333_333_333);
        assert_eq!(s.next_ns(), 666_666_666);
        assert_eq!(s.next_ns(), 1_000_000_000);
        let mut s = Schedule::new(3.0, Arrival::Fixed, 1);
        for _ in 0..3_000_000 {
            s.next_ns();
        }
        assert_eq!(s.peek_ns(), 1_000_000_000_000_000);
    }

    #[test]
    fn poisson_gaps_are_exponential() {
        let rate = 50_000.0;
        let n = 20_000u64;
        let mut s = Schedule::new(rate, Arrival::Poisson, 7);
        let mut prev = s.next_ns();
        let mut gaps = Vec::new();
        for _ in 0..n {
            let t = s.next_ns();
            assert!(t >= prev);
            gaps.push((t - prev) as f64);
            prev = t;
        }
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let expected = 1e9 / rate;
        assert!((mean - expected).abs() < expected * 0.05, "mean gap {mean}");
        // Exponential: stddev == mean, and about e^-1 of gaps exceed the mean.
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((var.sqrt() - expected).abs() < expected * 0.1);
        let above = gaps.iter().filter(|&&g| g > expected).count() as f64 / n as f64;
        assert!((above - (-1f64).exp()).abs() < 0.03, "{above}");
    }
}
