//! Command-line arguments of `bypass noise`, `bypass floor` and `bypass syscalls`, and their
//! validation. Every error names its flag (exit 2).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::cpus;
use super::NoiseError;

/// Longest probe or floor run accepted: more is a typo.
pub const MAX_DURATION_S: f64 = 3600.0;
/// The model iterates over every intended send: bound the work.
pub const MAX_MODEL_SENDS: f64 = 1e9;
/// Floor messages are copied word by word through shared slots of this size.
pub const MAX_RING_SIZE: usize = 256;
/// A `line` mailbox is one cache line: a sequence word and 7 payload words.
pub const MAX_LINE_SIZE: usize = 56;

/// `bypass noise`: spin on the clock on each CPU and record every gap (time the CPU was taken away).
#[derive(Debug, Clone, Args)]
pub struct NoiseArgs {
    /// CPUs to probe, e.g. `0,1` or `0-3`: one pinned spinning thread each.
    #[arg(long)]
    pub cpus: String,
    /// Seconds to probe (0 < S <= 3600).
    #[arg(long, allow_negative_numbers = true)]
    pub duration: f64,
    /// Gaps between consecutive clock reads longer than this many ns are recorded.
    #[arg(long, default_value_t = 1000)]
    pub threshold_ns: u64,
    /// Open-loop rates (requests/s) for the platform model, comma-separated.
    #[arg(
        long,
        default_value = "1000,10000,100000",
        allow_negative_numbers = true
    )]
    pub model_rates: String,
    /// Print one JSON object on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Write each CPU's gap histogram to PREFIX-cpuN.hgrm (microseconds).
    #[arg(long)]
    pub hgrm: Option<String>,
}

/// The validated `bypass noise` request.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseConfig {
    pub cpus: Vec<usize>,
    pub duration: Duration,
    pub threshold_ns: u64,
    pub model_rates: Vec<f64>,
}

fn duration(flag: &'static str, s: f64) -> Result<Duration, NoiseError> {
    if !s.is_finite() || s <= 0.0 || s > MAX_DURATION_S {
        return Err(NoiseError::invalid(
            flag,
            format!("{s} must be more than 0 and at most {MAX_DURATION_S} seconds"),
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Parses `R,R,...` (requests/s, each > 0 and finite).
pub fn parse_rates(text: &str) -> Result<Vec<f64>, NoiseError> {
    let bad = |m: String| NoiseError::invalid("--model-rates", m);
    let mut rates = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let r: f64 = part
            .parse()
            .map_err(|_| bad(format!("'{part}' is not a number")))?;
        if !r.is_finite() || r <= 0.0 {
            return Err(bad(format!("{part} must be a positive rate (requests/s)")));
        }
        rates.push(r);
    }
    Ok(rates)
}

impl NoiseArgs {
    pub fn to_config(&self) -> Result<NoiseConfig, NoiseError> {
        let cpus = cpus::parse_available("--cpus", &self.cpus)?;
        let duration = duration("--duration", self.duration)?;
        if self.threshold_ns == 0 || self.threshold_ns > 1_000_000_000 {
            return Err(NoiseError::invalid(
                "--threshold-ns",
                format!("{} must be between 1 and 1e9 ns", self.threshold_ns),
            ));
        }
        let model_rates = parse_rates(&self.model_rates)?;
        for r in &model_rates {
            if r * duration.as_secs_f64() > MAX_MODEL_SENDS {
                return Err(NoiseError::invalid(
                    "--model-rates",
                    format!(
                        "{r}/s over {} s is more than {MAX_MODEL_SENDS} sends",
                        self.duration
                    ),
                ));
            }
        }
        Ok(NoiseConfig {
            cpus,
            duration,
            threshold_ns: self.threshold_ns,
            model_rates,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FloorMode {
    /// A single-producer single-consumer ring of slots each way.
    Ring,
    /// One cache-line mailbox each way (message at most 56 bytes).
    Line,
    /// memif's layout each way: the producer's index, the consumer's index, a ring of
    /// descriptors and the buffers they point to, each on lines of their own; what a
    /// descriptor-ring PMD costs at best.
    Descriptors,
}

impl FloorMode {
    pub fn name(self) -> &'static str {
        match self {
            FloorMode::Ring => "ring",
            FloorMode::Line => "line",
            FloorMode::Descriptors => "descriptors",
        }
    }
}

/// `bypass floor`: ping-pong a message between two pinned threads through shared memory.
#[derive(Debug, Clone, Args)]
pub struct FloorArgs {
    /// Two distinct CPUs A,B: the initiator runs on A, the responder on B.
    #[arg(long)]
    pub cpus: String,
    /// Measured seconds (after a 0.2 s warmup), 0 < S <= 3600.
    #[arg(long, allow_negative_numbers = true)]
    pub duration: f64,
    /// Most measured round trips; the run stops at whichever of --count and --duration
    /// comes first.
    #[arg(long, default_value_t = 100_000_000)]
    pub count: u64,
    #[arg(long, value_enum, default_value = "ring")]
    pub mode: FloorMode,
    /// Message bytes (1..=256 for ring, 1..=56 for line).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write the round-trip histogram as a Java .hgrm (microseconds).
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write the round-trip histogram as a one-interval .hlog.
    #[arg(long)]
    pub hlog: Option<PathBuf>,
}

/// The validated `bypass floor` request.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorConfig {
    pub initiator_cpu: usize,
    pub responder_cpu: usize,
    pub duration: Duration,
    pub count: u64,
    pub mode: FloorMode,
    pub size: usize,
}

impl FloorArgs {
    pub fn to_config(&self) -> Result<FloorConfig, NoiseError> {
        let list = cpus::parse("--cpus", &self.cpus)?;
        let [a, b] = list[..] else {
            return Err(NoiseError::invalid(
                "--cpus",
                format!("'{}' must name exactly two CPUs, A,B", self.cpus),
            ));
        };
        if a == b {
            return Err(NoiseError::invalid(
                "--cpus",
                format!("the two CPUs must differ (got {a} twice)"),
            ));
        }
        let max = match self.mode {
            FloorMode::Ring | FloorMode::Descriptors => MAX_RING_SIZE,
            FloorMode::Line => MAX_LINE_SIZE,
        };
        if self.size == 0 || self.size > max {
            return Err(NoiseError::invalid(
                "--size",
                format!(
                    "{} must be 1..={max} bytes in {} mode",
                    self.size,
                    self.mode.name()
                ),
            ));
        }
        if self.count == 0 {
            return Err(NoiseError::invalid("--count", "must be at least 1"));
        }
        let duration = duration("--duration", self.duration)?;
        // Last, so every other flag is judged the same on any machine.
        cpus::check_available("--cpus", &list)?;
        Ok(FloorConfig {
            initiator_cpu: a,
            responder_cpu: b,
            duration,
            count: self.count,
            mode: self.mode,
            size: self.size,
        })
    }
}

/// `bypass syscalls`: the syscall tax, ns per no-op call and per loopback send+recv pair.
#[derive(Debug, Clone, Args)]
pub struct SyscallsArgs {
    /// CPU to pin the measuring thread to.
    #[arg(long, default_value_t = 0)]
    pub cpu: usize,
    /// Calls per kind, split into 7 batches (at least 7, at most 1e8).
    #[arg(long, default_value_t = 140_000)]
    pub iterations: u64,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

impl SyscallsArgs {
    /// The pinned CPU, checked against this process's affinity.
    pub fn validate(&self) -> Result<(), NoiseError> {
        cpus::check_available("--cpu", &[self.cpu])?;
        if !(super::syscalls::BATCHES..=100_000_000).contains(&self.iterations) {
            return Err(NoiseError::invalid(
                "--iterations",
                format!(
                    "{} must be between {} and 100000000",
                    self.iterations,
                    super::syscalls::BATCHES
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(cpus: &str, duration: f64, rates: &str) -> NoiseArgs {
        NoiseArgs {
            cpus: cpus.into(),
            duration,
            threshold_ns: 1000,
            model_rates: rates.into(),
            json: false,
            hgrm: None,
        }
    }

    fn flag(r: Result<NoiseConfig, NoiseError>) -> String {
        match r {
            Err(NoiseError::Invalid(e)) => e.field,
            other => panic!("expected an invalid flag, got {other:?}"),
        }
    }

    #[test]
    fn noise_validation_names_the_flag() {
        assert_eq!(flag(noise("", 1.0, "1000").to_config()), "--cpus");
        assert_eq!(flag(noise("0", 0.0, "1000").to_config()), "--duration");
        assert_eq!(flag(noise("0", 3601.0, "1000").to_config()), "--duration");
        assert_eq!(flag(noise("0", 1.0, "-5").to_config()), "--model-rates");
        assert_eq!(flag(noise("0", 1.0, "x").to_config()), "--model-rates");
        assert_eq!(flag(noise("0", 100.0, "1e8").to_config()), "--model-rates");
        let ok = noise("0", 1.5, "10, 1e4").to_config().unwrap();
        assert_eq!(ok.cpus, vec![0]);
        assert_eq!(ok.model_rates, vec![10.0, 10_000.0]);
        assert_eq!(ok.duration, Duration::from_millis(1500));
    }

    #[test]
    fn floor_validation_names_the_flag() {
        let mut a = FloorArgs {
            cpus: "0".into(),
            duration: 1.0,
            count: 10,
            mode: FloorMode::Line,
            size: 32,
            json: false,
            hgrm: None,
            hlog: None,
        };
        let f = |a: &FloorArgs| match a.to_config() {
            Err(NoiseError::Invalid(e)) => e.field,
            other => panic!("expected an invalid flag, got {other:?}"),
        };
        assert_eq!(f(&a), "--cpus");
        a.cpus = "0,0".into();
        assert_eq!(f(&a), "--cpus");
        a.cpus = "0,1".into();
        a.size = 57;
        assert_eq!(f(&a), "--size");
        a.mode = FloorMode::Ring;
        if cpus::available().len() >= 2 {
            assert!(a.to_config().is_ok());
        }
        a.size = 0;
        assert_eq!(f(&a), "--size");
        a.size = 32;
        a.duration = -1.0;
        assert_eq!(f(&a), "--duration");
    }
}
