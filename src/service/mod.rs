//! Service-time models of both servers (`--service`, TOML `service`): how long a request
//! is held before it is answered, drawn per request by the server itself, so a duplicate
//! sent to another replica sees an independent draw (docs/protocol.md, "Service time"). The
//! hold spins on the core by default; `hold=sleep` models a service that waits (a disk, a
//! lock, a downstream) and leaves the CPU to others, which only kernel-serve accepts.
//!
//! The grammar, one string on a command line, in TOML and in every report:
//!
//! ```text
//! fixed:20us                  every request 20 us
//! exp:20us                    exponential, mean 20 us
//! lognormal:20us,0.5          log-normal, median 20 us, sigma 0.5 (of the log)
//! bimodal:20us,1%:1ms         20 us, and 1% of requests 1 ms
//! ...,cap=5ms                 no draw above 5 ms (default 10 ms, at most 1 s)
//! ...,hold=sleep              sleep through the draw instead of spinning (default spin)
//! ```
//!
//! The options (`cap=`, `hold=`) come after the arguments, in either order, each at most
//! once; Display writes `cap` then `hold`, and `hold` only when it is `sleep`, so a model
//! without it reads as it always did.
//!
//! Drawing is a few floating-point operations on a SplitMix64 state owned by the worker: no
//! allocation, no lock, no table (`ln`, `exp` and one `sin_cos` cost tens of nanoseconds,
//! far below the shortest service time worth modelling).

#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

#[cfg(test)]
mod tests;

/// The cap a model gets unless it names one: far above every mode the lab uses, low enough
/// that an exponential tail cannot hold a core for seconds.
pub const DEFAULT_CAP_NS: u64 = 10_000_000;
/// The largest cap (and so the largest draw): `server_ns` is a u32 of nanoseconds.
pub const MAX_CAP_NS: u64 = 1_000_000_000;

/// The shape of a model, its parameters in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Fixed {
        ns: u64,
    },
    Exponential {
        mean_ns: u64,
    },
    LogNormal {
        median_ns: u64,
        sigma: f64,
    },
    /// `slow_ppm` parts per million of requests take `slow_ns`, the rest `fast_ns`.
    Bimodal {
        fast_ns: u64,
        slow_ppm: u32,
        slow_ns: u64,
    },
}

/// How a server holds a request for its draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Hold {
    /// Busy-wait on the core: a request that computes, so it holds the CPU.
    #[default]
    Spin,
    /// Sleep: a request that waits on something else and leaves the CPU free meanwhile, so
    /// replicas sharing a CPU stay independent. At least the draw, plus the wake-up latency.
    Sleep,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Spin => "spin",
            Hold::Sleep => "sleep",
        }
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed, validated model: its shape, cap and how it is held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceModel {
    pub shape: Shape,
    pub cap_ns: u64,
    pub hold: Hold,
}

impl ServiceModel {
    /// The fraction of requests the model makes slow (bimodal), for reports and the
    /// independent fan-out model; 0 for the other shapes.
    pub fn slow_fraction(&self) -> f64 {
        match self.shape {
            Shape::Bimodal { slow_ppm, .. } => f64::from(slow_ppm) / 1e6,
            _ => 0.0,
        }
    }
}

/// Parses a duration: a number (decimals allowed) and a unit, ns, us, ms or s.
pub fn parse_duration_ns(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{t}` has no unit (ns, us, ms or s)"))?;
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        other => {
            return Err(format!(
                "`{other}` in `{t}` is not a unit (ns, us, ms or s)"
            ))
        }
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{num}` in `{t}` is not a number"))?;
    let ns = v * scale;
    if !ns.is_finite() || ns > MAX_CAP_NS as f64 {
        return Err(format!("`{t}` is longer than 1 s"));
    }
    Ok(ns.round() as u64)
}

/// A duration in the largest unit that shows it exactly with at most three decimals
/// (`20us`, `1.5ms`, `800ns`), so the text parses back to the same nanoseconds.
pub fn format_duration_ns(ns: u64) -> String {
    let (scale, unit) = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")]
        .into_iter()
        .find(|&(scale, _)| ns >= scale && ns.is_multiple_of(scale / 1000))
        .unwrap_or((1, "ns"));
    let s = format!("{:.3}", ns as f64 / scale as f64);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

impl FromStr for ServiceModel {
    type Err = String;

    fn from_str(text: &str) -> Result<ServiceModel, String> {
        let (kind, rest) = text.split_once(':').ok_or_else(|| {
            format!("`{text}`: expected KIND:ARGS (fixed, exp, lognormal, bimodal)")
        })?;
        let mut args: Vec<&str> = rest.split(',').map(str::trim).collect();
        let (mut cap, mut hold) = (None, None);
        // Options trail the arguments; no argument of any shape holds a `=`.
        while let Some((key, value)) = args.last().and_then(|a| a.split_once('=')) {
            let (key, value) = (key.trim(), value.trim());
            match key {
                "cap" if cap.is_none() => {
                    let ns = parse_duration_ns(value)?;
                    if ns == 0 {
                        return Err("cap must be above 0".into());
                    }
                    cap = Some(ns);
                }
                "hold" if hold.is_none() => {
                    hold = Some(match value {
                        "spin" => Hold::Spin,
                        "sleep" => Hold::Sleep,
                        other => {
                            return Err(format!("`{text}`: hold `{other}` is not spin or sleep"))
                        }
                    });
                }
                "cap" | "hold" => return Err(format!("`{text}`: {key}= is given twice")),
                other => {
                    return Err(format!(
                        "`{text}`: `{other}=` is not an option (cap=, hold=)"
                    ))
                }
            }
            args.pop();
        }
        if let Some(a) = args.iter().find(|a| a.contains('=')) {
            return Err(format!(
                "`{text}`: `{a}` is an option: options (cap=, hold=) come after the arguments"
            ));
        }
        let cap_ns = cap.unwrap_or(DEFAULT_CAP_NS);
        let hold = hold.unwrap_or_default();
        let want = |n: usize, form: &str| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("`{text}`: {kind} takes {form}"))
            }
        };
        let shape = match kind.trim() {
            "fixed" => {
                want(1, "one duration (fixed:20us)")?;
                Shape::Fixed {
                    ns: parse_duration_ns(args[0])?,
                }
            }
            "exp" => {
                want(1, "its mean (exp:20us)")?;
                let mean_ns = parse_duration_ns(args[0])?;
                if mean_ns == 0 {
                    return Err("exp: the mean must be above 0".into());
                }
                Shape::Exponential { mean_ns }
            }
            "lognormal" => {
                want(2, "its median and sigma (lognormal:20us,0.5)")?;
                let median_ns = parse_duration_ns(args[0])?;
                let sigma: f64 = args[1]
                    .parse()
                    .map_err(|_| format!("lognormal: sigma `{}` is not a number", args[1]))?;
                if median_ns == 0 || !(sigma > 0.0 && sigma <= 4.0) {
                    return Err("lognormal: the median must be above 0 and sigma in (0, 4]".into());
                }
                Shape::LogNormal { median_ns, sigma }
            }
            "bimodal" => {
                want(2, "a duration, then P%:DURATION (bimodal:20us,1%:1ms)")?;
                let fast_ns = parse_duration_ns(args[0])?;
                let (p, slow) = args[1]
                    .split_once("%:")
                    .ok_or_else(|| format!("bimodal: `{}` is not P%:DURATION", args[1]))?;
                let pct: f64 = p
                    .parse()
                    .map_err(|_| format!("bimodal: `{p}` is not a percentage"))?;
                if !(0.0..=100.0).contains(&pct) {
                    return Err(format!("bimodal: {pct}% is not in 0..100"));
                }
                Shape::Bimodal {
                    fast_ns,
                    slow_ppm: (pct * 1e4).round() as u32,
                    slow_ns: parse_duration_ns(slow)?,
                }
            }
            other => {
                return Err(format!(
                    "`{other}` is not a model (fixed, exp, lognormal, bimodal)"
                ))
            }
        };
        let top = match shape {
            Shape::Fixed { ns } => ns,
            Shape::Bimodal {
                fast_ns, slow_ns, ..
            } => fast_ns.max(slow_ns),
            _ => 0,
        };
        if top > cap_ns {
            return Err(format!(
                "`{text}`: {} is above the cap ({}); raise it with ,cap=DURATION",
                format_duration_ns(top),
                format_duration_ns(cap_ns)
            ));
        }
        Ok(ServiceModel {
            shape,
            cap_ns,
            hold,
        })
    }
}

impl fmt::Display for ServiceModel {
    /// The canonical form, which parses back to the same model.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = format_duration_ns;
        match self.shape {
            Shape::Fixed { ns } => write!(f, "fixed:{}", d(ns))?,
            Shape::Exponential { mean_ns } => write!(f, "exp:{}", d(mean_ns))?,
            Shape::LogNormal { median_ns, sigma } => {
                write!(f, "lognormal:{},{sigma}", d(median_ns))?
            }
            Shape::Bimodal {
                fast_ns,
                slow_ppm,
                slow_ns,
            } => write!(
                f,
                "bimodal:{},{}%:{}",
                d(fast_ns),
                f64::from(slow_ppm) / 1e4,
                d(slow_ns)
            )?,
        }
        if self.cap_ns != DEFAULT_CAP_NS {
            write!(f, ",cap={}", d(self.cap_ns))?;
        }
        if self.hold != Hold::Spin {
            write!(f, ",hold={}", self.hold)?;
        }
        Ok(())
    }
}

/// One worker's draws from a model: the model and a SplitMix64 state. Cheap to copy, so each
/// worker thread takes its own with its own seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceTime {
    model: ServiceModel,
    state: u64,
}

impl ServiceTime {
    pub fn new(model: ServiceModel, seed: u64) -> ServiceTime {
        ServiceTime { model, state: seed }
    }

    /// A seed that differs between processes, threads and replicas: the pid, the clock and
    /// a caller's index, so two replicas never draw the same sequence.
    pub fn seed_for(index: u64) -> u64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ (u64::from(std::process::id()) << 32) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    pub fn model(&self) -> &ServiceModel {
        &self.model
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    #[inline]
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// The next request's service time, in nanoseconds, at most the cap.
    #[inline]
    pub fn draw_ns(&mut self) -> u32 {
        let ns = match self.model.shape {
            Shape::Fixed { ns } => ns as f64,
            Shape::Exponential { mean_ns } => -self.unit().ln() * mean_ns as f64,
            Shape::LogNormal { median_ns, sigma } => {
                // Box-Muller; one normal per draw keeps the state a single u64.
                let (u1, u2) = (self.unit(), self.unit());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median_ns as f64 * (sigma * z).exp()
            }
            Shape::Bimodal {
                fast_ns,
                slow_ppm,
                slow_ns,
            } => {
                if self.next_u64() % 1_000_000 < u64::from(slow_ppm) {
                    slow_ns as f64
                } else {
                    fast_ns as f64
                }
            }
        };
        // The cap is at most 1 s, so the result always fits.
        ns.min(self.model.cap_ns as f64) as u32
    }
}
