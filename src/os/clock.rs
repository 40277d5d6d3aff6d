//! The programs' time source: the TSC when it is invariant (calibrated against
//! CLOCK_MONOTONIC), otherwise `std::time::Instant`.
//!
//! One `Clock` is read from one thread: the engine is single-threaded, so the
//! per-core TSC mismatch (pktgen#73) cannot mix readings of different cores
//! unless the OS migrates the thread, which an invariant, synchronised TSC
//! tolerates.
//!
//! Calibration pairs TSC reads with `Instant` reads at both ends of a sleep. A VM stall inside
//! one pairing would skew the frequency (issue 9 saw -0.67% once in 60 runs), so each end keeps
//! the tightest of [`PAIRINGS`] pairings (the one whose bracketing TSC reads are closest); the
//! widths of the two kept pairings bound the error, reported as `uncertainty_ppm`. The result
//! is cross-checked against a frequency the CPU, hypervisor or kernel states, when one exists.

use std::time::{Duration, Instant};

use super::tsc::{self, TickScale};

/// How long [`Clock::new`] calibrates the TSC.
pub const CALIBRATION: Duration = Duration::from_millis(50);
/// Pairings taken at each end of the calibration sleep; the tightest is kept.
pub const PAIRINGS: usize = 32;
/// A calibration whose error bound exceeds this is retried once (a stall hit every pairing).
const RETRY_PPM: f64 = 100.0;

/// What the TSC calibration found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Calibrated TSC frequency.
    pub mhz: f64,
    /// Bound on the frequency's relative error from the pairings' widths, parts per million.
    pub uncertainty_ppm: f64,
    /// A frequency stated by the platform, if any was found.
    pub stated: Option<StatedFrequency>,
}

/// A TSC frequency the platform states, and how far the calibration is from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatedFrequency {
    /// Where it came from, e.g. `kernel log (tsc: Detected ... MHz processor)`.
    pub source: &'static str,
    pub mhz: f64,
    /// (calibrated - stated) / stated, parts per million.
    pub diff_ppm: f64,
}

impl Calibration {
    /// One line: `stated 2600.000 MHz by CPUID 0x15; calibrated differs by +1.2 ppm`, or `None`.
    pub fn cross_check(&self) -> Option<String> {
        self.stated.map(|s| {
            format!(
                "stated {:.3} MHz by {}; calibrated differs by {:+.1} ppm",
                s.mhz, s.source, s.diff_ppm
            )
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// `ns = scale(tsc - tsc0)`.
    Tsc {
        tsc0: u64,
        scale: TickScale,
        cal: Calibration,
    },
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
            Source::Tsc { tsc0, scale, .. } => scale.ticks_to_ns(tsc::read().wrapping_sub(tsc0)),
            Source::Monotonic { .. } => self.origin.elapsed().as_nanos() as u64,
        }
    }

    /// Like [`Clock::now_ns`], but the TSC is read only after every earlier instruction has
    /// completed (`lfence; rdtsc`): a receive stamp then cannot be taken before the receive
    /// it follows has finished, which matters at sub-microsecond round trips.
    #[inline]
    pub fn now_ns_ordered(&self) -> u64 {
        match self.source {
            Source::Tsc { tsc0, scale, .. } => {
                scale.ticks_to_ns(tsc::read_ordered().wrapping_sub(tsc0))
            }
            Source::Monotonic { .. } => self.origin.elapsed().as_nanos() as u64,
        }
    }

    /// True when readings come from the TSC.
    pub fn is_tsc(&self) -> bool {
        matches!(self.source, Source::Tsc { .. })
    }

    /// `"tsc"` or `"monotonic"`.
    pub fn source_name(&self) -> &'static str {
        if self.is_tsc() {
            "tsc"
        } else {
            "monotonic"
        }
    }

    /// The TSC calibration, `None` when the clock is not the TSC.
    pub fn calibration(&self) -> Option<Calibration> {
        match self.source {
            Source::Tsc { cal, .. } => Some(cal),
            Source::Monotonic { .. } => None,
        }
    }

    /// One line for every report, e.g. `tsc (invariant, 2600.0 MHz +-0.4 ppm, calibrated
    /// against CLOCK_MONOTONIC; stated 2600.000 MHz by ...; calibrated differs by +3.0 ppm)`.
    pub fn describe(&self) -> String {
        match self.source {
            Source::Tsc { cal, .. } => {
                let check = cal
                    .cross_check()
                    .unwrap_or_else(|| "no stated TSC frequency found to cross-check".into());
                format!(
                    "tsc (invariant, {:.1} MHz +-{:.1} ppm, calibrated against CLOCK_MONOTONIC; {check})",
                    cal.mhz, cal.uncertainty_ppm
                )
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

/// A TSC reading paired with an `Instant`: the midpoint of the two TSC reads bracketing the
/// `Instant` read, and their distance (the pairing's width, ticks).
#[derive(Debug, Clone, Copy)]
struct Pairing {
    tsc: u64,
    at: Instant,
    width: u64,
}

/// The tightest of [`PAIRINGS`] pairings: a stall (preemption, VM exit) widens the pairing it
/// hits, so the narrowest one is the one that was not disturbed.
fn tightest_pairing() -> Pairing {
    tightest_of(PAIRINGS, &mut tsc::read_ordered)
}

fn tightest_of(pairings: usize, read: &mut dyn FnMut() -> u64) -> Pairing {
    let mut best: Option<Pairing> = None;
    for _ in 0..pairings.max(1) {
        let a = read();
        let at = Instant::now();
        let b = read();
        let width = b.wrapping_sub(a);
        let p = Pairing {
            tsc: a + width / 2,
            at,
            width,
        };
        if best.is_none_or(|q| p.width < q.width) {
            best = Some(p);
        }
    }
    best.expect("at least one pairing")
}

/// One calibration: frequency and error bound, or why the TSC cannot be used.
fn measure(interval: Duration) -> Result<(Pairing, f64, f64), &'static str> {
    let a = tightest_pairing();
    std::thread::sleep(interval);
    let b = tightest_pairing();
    let ns = b.at.duration_since(a.at).as_nanos() as f64;
    let ticks = b.tsc.wrapping_sub(a.tsc) as f64;
    if ns <= 0.0 || ticks <= 0.0 || b.tsc < a.tsc {
        return Err("tsc calibration saw no progress");
    }
    let mhz = ticks / ns * 1000.0;
    if !(50.0..=20_000.0).contains(&mhz) {
        return Err("tsc calibration gave an implausible frequency");
    }
    // Each midpoint is within half its pairing's width of the TSC at the `Instant` read;
    // `Instant` itself resolves 1 ns at each end.
    let err_ticks = (a.width + b.width) as f64 / 2.0;
    let ppm = (err_ticks / ticks + 2.0 / ns) * 1e6;
    Ok((a, mhz, ppm))
}

fn calibrate(interval: Duration) -> Source {
    let mut best = match measure(interval) {
        Ok(m) => m,
        Err(why) => return Source::Monotonic { why },
    };
    if best.2 > RETRY_PPM {
        if let Ok(m) = measure(interval) {
            if m.2 < best.2 {
                best = m;
            }
        }
    }
    let (start, mhz, uncertainty_ppm) = best;
    let stated = stated::frequency().map(|(source, s)| StatedFrequency {
        source,
        mhz: s,
        diff_ppm: (mhz - s) / s * 1e6,
    });
    Source::Tsc {
        // Origin: the TSC reading paired with the calibration's start is close enough (the
        // calibration happens after `origin` is taken, so `now_ns` starts near 0 and grows).
        tsc0: start.tsc,
        scale: TickScale::from_mhz(mhz),
        cal: Calibration {
            mhz,
            uncertainty_ppm,
            stated,
        },
    }
}

/// The TSC frequency the platform states, in order of trust: CPUID leaf 0x15 (crystal ratio),
/// the hypervisor's timing leaf 0x40000010, sysfs `tsc_freq_khz`, the kernel's refined
/// calibration, CPUID leaf 0x16 (base frequency), the kernel's detected frequency.
mod stated {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::OnceLock;

    /// Kernel log records read at most, so a huge ring buffer cannot hold calibration up.
    const MAX_RECORDS: usize = 100_000;

    pub fn frequency() -> Option<(&'static str, f64)> {
        static FOUND: OnceLock<Option<(&'static str, f64)>> = OnceLock::new();
        *FOUND.get_or_init(find)
    }

    fn find() -> Option<(&'static str, f64)> {
        if let Some(f) = crate::os::tsc::stated::cpuid_crystal_mhz() {
            return Some(("CPUID leaf 0x15", f));
        }
        if let Some(f) = crate::os::tsc::stated::hypervisor_tsc_mhz() {
            return Some(("hypervisor CPUID leaf 0x40000010", f));
        }
        if let Some(f) = sysfs_mhz() {
            return Some(("/sys/devices/system/cpu/cpu0/tsc_freq_khz", f));
        }
        let (refined, detected) = kernel_log();
        if let Some(f) = refined {
            return Some(("kernel log (tsc: Refined TSC clocksource calibration)", f));
        }
        if let Some(f) = crate::os::tsc::stated::cpuid_base_mhz() {
            return Some(("CPUID leaf 0x16 (base frequency)", f));
        }
        detected.map(|f| ("kernel log (tsc: Detected ... MHz)", f))
    }

    fn sysfs_mhz() -> Option<f64> {
        let text = std::fs::read_to_string("/sys/devices/system/cpu/cpu0/tsc_freq_khz").ok()?;
        let khz: f64 = text.trim().parse().ok()?;
        (khz > 0.0).then_some(khz / 1000.0)
    }

    /// The last `Refined TSC clocksource calibration: X MHz` and `Detected X MHz` of the
    /// kernel log (/dev/kmsg, one record per read; needs privilege, absent is fine).
    fn kernel_log() -> (Option<f64>, Option<f64>) {
        let (mut refined, mut detected) = (None, None);
        let Ok(mut f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
        else {
            return (None, None);
        };
        let mut buf = vec![0u8; 8192];
        for _ in 0..MAX_RECORDS {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                // EPIPE: records were overwritten while reading; the next read goes on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            };
            let line = String::from_utf8_lossy(&buf[..n]);
            let msg = line.split_once(';').map_or(&*line, |(_, m)| m);
            if let Some(v) = parse_mhz(msg, "tsc: Refined TSC clocksource calibration: ") {
                refined = Some(v);
            } else if let Some(v) = parse_mhz(msg, "tsc: Detected ") {
                detected = Some(v);
            }
        }
        (refined, detected)
    }

    /// `2600.000` from `tsc: Detected 2600.000 MHz processor` given the prefix.
    pub fn parse_mhz(msg: &str, prefix: &str) -> Option<f64> {
        let rest = msg.trim_start().strip_prefix(prefix)?;
        let (num, unit) = rest.split_once(' ')?;
        if !unit.starts_with("MHz") {
            return None;
        }
        let v: f64 = num.parse().ok()?;
        (v.is_finite() && v > 0.0).then_some(v)
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
        assert_eq!(c.source_name(), "monotonic");
        assert!(c.calibration().is_none());
        assert!(c.describe().starts_with("CLOCK_MONOTONIC"));
        let a = c.now_ns_ordered();
        assert!(c.now_ns() >= a);
    }

    #[test]
    fn calibration_reports_its_uncertainty() {
        let c = Clock::with_calibration(Duration::from_millis(20));
        let Some(cal) = c.calibration() else {
            assert_eq!(c.source_name(), "monotonic");
            return;
        };
        assert_eq!(c.source_name(), "tsc");
        // The bound is finite, positive, and (generously) under 1%: 32 pairings each side.
        assert!(
            cal.uncertainty_ppm > 0.0 && cal.uncertainty_ppm < 10_000.0,
            "{}",
            c.describe()
        );
        assert!(c.describe().contains("ppm"), "{}", c.describe());
        if let Some(s) = cal.stated {
            assert!((s.diff_ppm - (cal.mhz - s.mhz) / s.mhz * 1e6).abs() < 1e-6);
            assert!(cal.cross_check().unwrap().contains(s.source));
        }
        // Ordered and plain reads come from the same counter.
        let a = c.now_ns();
        let b = c.now_ns_ordered();
        let d = c.now_ns();
        assert!(a <= b && b <= d, "{a} {b} {d}");
    }

    #[test]
    fn the_tightest_pairing_wins() {
        // Pairings of widths 1000 (a stall), 30, 500: the 30-tick one is kept, midpoint 1015.
        let reads = [0u64, 1000, 1000, 1030, 2000, 2500];
        let mut i = 0;
        let mut read = || {
            let v = reads[i];
            i += 1;
            v
        };
        let p = tightest_of(3, &mut read);
        assert_eq!((p.tsc, p.width), (1015, 30));
    }

    #[test]
    fn kernel_log_lines_parse() {
        let p = stated::parse_mhz;
        assert_eq!(
            p("tsc: Detected 2600.000 MHz processor", "tsc: Detected "),
            Some(2600.0)
        );
        assert_eq!(
            p(
                "tsc: Refined TSC clocksource calibration: 2593.906 MHz",
                "tsc: Refined TSC clocksource calibration: "
            ),
            Some(2593.906)
        );
        assert_eq!(p("tsc: Detected 2600.000 kHz", "tsc: Detected "), None);
        assert_eq!(p("tsc: Detected x MHz", "tsc: Detected "), None);
        assert_eq!(p("tsc: Marking TSC unstable", "tsc: Detected "), None);
    }
}
