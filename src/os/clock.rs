//! The programs' time source: the TSC when it is invariant (calibrated against
//! CLOCK_MONOTONIC), otherwise `std::time::Instant`.
//!
//! One `Clock` is read from one thread: the engine is single-threaded, so the
//! per-core TSC mismatch (pktgen#73) cannot mix readings of different cores
//! unless the OS migrates the thread, which an invariant, synchronised TSC
//! tolerates.

use std::time::{Duration, Instant};

/// How long [`Clock::new`] calibrates the TSC.
pub const CALIBRATION: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// `ns = (tsc - tsc0) * mult >> 32`.
    Tsc { tsc0: u64, mult: u64, mhz: f64 },
    /// The TSC was not usable; the reason is kept for the report.
    Monotonic { why: &'static str },
}

/// A monotonic nanosecond clock with an arbitrary origin (the moment it was built).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    source: Source,
    origin: Instant,
}

impl Clock {
    /// Uses the TSC if it is invariant and calibrates it over [`CALIBRATION`];
    /// falls back to `Instant` otherwise.
    pub fn new() -> Clock {
        Self::with_calibration(CALIBRATION)
    }

    /// Always `Instant` (CLOCK_MONOTONIC).
    pub fn monotonic() -> Clock {
        Clock {
            source: Source::Monotonic { why: "requested" },
            origin: Instant::now(),
        }
    }

    /// Like [`Clock::new`] with a chosen calibration interval.
    pub fn with_calibration(interval: Duration) -> Clock {
        let origin = Instant::now();
        let source = match tsc::invariant() {
            Err(why) => Source::Monotonic { why },
            Ok(()) => calibrate(interval),
        };
        Clock { source, origin }
    }

    /// Nanoseconds since the clock was built.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        match self.source {
            Source::Tsc { tsc0, mult, .. } => {
                let ticks = tsc::read().wrapping_sub(tsc0);
                ((u128::from(ticks) * u128::from(mult)) >> 32) as u64
            }
            Source::Monotonic { .. } => self.origin.elapsed().as_nanos() as u64,
        }
    }

    /// True when readings come from the TSC.
    pub fn is_tsc(&self) -> bool {
        matches!(self.source, Source::Tsc { .. })
    }

    /// One line for every report, e.g.
    /// `tsc (invariant, 2994.2 MHz, calibrated against CLOCK_MONOTONIC)`.
    pub fn describe(&self) -> String {
        match self.source {
            Source::Tsc { mhz, .. } => {
                format!("tsc (invariant, {mhz:.1} MHz, calibrated against CLOCK_MONOTONIC)")
            }
            Source::Monotonic { why } => {
                format!("CLOCK_MONOTONIC (std::time::Instant; tsc not used: {why})")
            }
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// Pairs a TSC reading with an `Instant`, bracketing the `Instant` read by
/// two TSC reads and keeping the midpoint.
fn paired() -> (u64, Instant) {
    let a = tsc::read();
    let t = Instant::now();
    let b = tsc::read();
    (a + b.wrapping_sub(a) / 2, t)
}

fn calibrate(interval: Duration) -> Source {
    let (tsc_a, t_a) = paired();
    std::thread::sleep(interval);
    let (tsc_b, t_b) = paired();
    let ns = t_b.duration_since(t_a).as_nanos() as f64;
    let ticks = tsc_b.wrapping_sub(tsc_a) as f64;
    if ns <= 0.0 || ticks <= 0.0 {
        return Source::Monotonic {
            why: "tsc calibration saw no progress",
        };
    }
    let mhz = ticks / ns * 1000.0;
    if !(50.0..=20_000.0).contains(&mhz) {
        return Source::Monotonic {
            why: "tsc calibration gave an implausible frequency",
        };
    }
    let ns_per_tick = ns / ticks;
    Source::Tsc {
        tsc0: tsc_a,
        // Origin: the TSC reading paired with the clock's creation is close
        // enough (the calibration sleep happens after `origin` is taken, so
        // `now_ns` starts near 0 and only grows).
        mult: (ns_per_tick * 4_294_967_296.0).round() as u64,
        mhz,
    }
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use core::arch::x86_64::{__cpuid, _rdtsc, CpuidResult};

    #[inline]
    pub fn read() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU and only reads a counter.
        unsafe { _rdtsc() }
    }

    fn cpuid(leaf: u32) -> CpuidResult {
        // CPUID is a safe intrinsic on x86_64 (always present, read-only).
        __cpuid(leaf)
    }

    /// Invariant TSC: CPUID 0x80000007, EDX bit 8.
    pub fn invariant() -> Result<(), &'static str> {
        if cpuid(0x8000_0000).eax < 0x8000_0007 {
            return Err("CPUID leaf 0x80000007 not available");
        }
        if cpuid(0x8000_0007).edx & (1 << 8) == 0 {
            return Err("CPU does not report an invariant TSC");
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    pub fn read() -> u64 {
        0
    }

    pub fn invariant() -> Result<(), &'static str> {
        Err("not x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_tracks_instant() {
        let c = Clock::with_calibration(Duration::from_millis(20));
        let start = Instant::now();
        let a = c.now_ns();
        std::thread::sleep(Duration::from_millis(30));
        let b = c.now_ns();
        let real = start.elapsed().as_nanos() as f64;
        assert!(b > a);
        let measured = (b - a) as f64;
        // Generous: shared, noisy machines.
        assert!(
            (measured - real).abs() < real * 0.2 + 2_000_000.0,
            "{measured} vs {real} ({})",
            c.describe()
        );
        assert!(!c.describe().is_empty());
    }

    #[test]
    fn monotonic_fallback_describes_itself() {
        let c = Clock::monotonic();
        assert!(!c.is_tsc());
        assert!(c.describe().starts_with("CLOCK_MONOTONIC"));
        let a = c.now_ns();
        assert!(c.now_ns() >= a);
    }
}
