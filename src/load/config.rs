//! The validated configuration the engine runs ([`super::run_with`]).

use std::net::SocketAddr;
use std::time::Duration;

use crate::wire::rpc::HEADER_LEN;

use super::args::{Arrival, Transport, WaitMode};
use super::LoadError;

/// Measured duration when neither a duration nor a count is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(5);
/// With a count and no duration, the run still stops after this long.
pub const COUNT_ONLY_TIME_LIMIT: Duration = Duration::from_secs(300);
/// Default echo payload.
pub const DEFAULT_ECHO_SIZE: usize = 32;
/// Largest UDP payload over IPv4 (65535 - 20 - 8).
pub const MAX_UDP_PAYLOAD: usize = 65_507;
/// Largest RPC payload that fits one UDP datagram.
pub const MAX_PAYLOAD: usize = MAX_UDP_PAYLOAD - HEADER_LEN;
/// Most in-flight slots the engine allocates (open loop: about rate x timeout x 2).
pub const MAX_SLOTS: usize = 1 << 24;
/// Longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadModel {
    /// Keep `window` requests in flight; send the next as each one resolves.
    Closed { window: u32 },
    /// Send on a schedule, regardless of replies.
    Open {
        rate: f64,
        arrival: Arrival,
        /// When this many are outstanding, wait (the wait is charged to the
        /// corrected histogram). `None`: no cap besides the slot ring.
        max_in_flight: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestMethod {
    Echo,
    Spin { ns: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    pub transport: Transport,
    pub server: SocketAddr,
    pub wait: WaitMode,
    pub load: LoadModel,
    /// Measured time after warmup; `None` only together with a count
    /// (then [`COUNT_ONLY_TIME_LIMIT`] bounds the run).
    pub duration: Option<Duration>,
    /// Measured requests to send; `None`: until the duration ends.
    pub count: Option<u64>,
    pub warmup: Duration,
    /// Payload bytes after the header.
    pub payload_len: usize,
    pub method: RequestMethod,
    pub timeout: Duration,
    pub seed: u64,
    /// `--transport dpdk` only: addressing, port and EAL arguments.
    pub dpdk: Option<super::dpdk::DpdkOptions>,
}

fn bad(flag: &'static str, msg: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        flag,
        msg: msg.into(),
    }
}

impl LoadConfig {
    /// A closed-loop echo configuration with defaults (blocking wait, 32-byte
    /// payload, 1 s timeout, 5 s duration), for library callers and tests.
    pub fn closed(server: SocketAddr, window: u32) -> LoadConfig {
        LoadConfig {
            transport: Transport::Udp,
            server,
            wait: WaitMode::Blocking,
            load: LoadModel::Closed { window },
            duration: Some(DEFAULT_DURATION),
            count: None,
            warmup: Duration::ZERO,
            payload_len: DEFAULT_ECHO_SIZE,
            method: RequestMethod::Echo,
            timeout: Duration::from_secs(1),
            seed: 1,
            dpdk: None,
        }
    }

    /// An open-loop echo configuration with defaults (busy wait, fixed arrival).
    pub fn open(server: SocketAddr, rate: f64) -> LoadConfig {
        LoadConfig {
            wait: WaitMode::Busy,
            load: LoadModel::Open {
                rate,
                arrival: Arrival::Fixed,
                max_in_flight: None,
            },
            ..LoadConfig::closed(server, 1)
        }
    }

    /// Target rate in requests/s (open loop only).
    pub fn target_rate(&self) -> Option<f64> {
        match self.load {
            LoadModel::Open { rate, .. } => Some(rate),
            LoadModel::Closed { .. } => None,
        }
    }

    /// The longest the sending phase may last after warmup.
    pub fn send_limit(&self) -> Duration {
        self.duration.unwrap_or(COUNT_ONLY_TIME_LIMIT)
    }

    /// In-flight slots to allocate (a power of two).
    pub fn slots(&self) -> Result<usize, LoadError> {
        let want = match self.load {
            LoadModel::Closed { window } => (window as f64) * 4.0,
            LoadModel::Open {
                rate,
                max_in_flight,
                ..
            } => {
                let by_rate = rate * self.timeout.as_secs_f64() * 2.0 + 64.0;
                match max_in_flight {
                    Some(m) => by_rate.max(m as f64 * 4.0),
                    None => by_rate,
                }
            }
        };
        if want > MAX_SLOTS as f64 {
            return Err(bad(
                "--timeout-ms",
                format!(
                    "rate x timeout needs {want:.0} in-flight slots, more than {MAX_SLOTS}; lower --timeout-ms or --rate"
                ),
            ));
        }
        Ok((want as usize).max(1024).next_power_of_two())
    }

    /// Checks every field; errors name the command-line flag.
    pub fn validate(&self) -> Result<(), LoadError> {
        match self.load {
            LoadModel::Closed { window } => {
                if window == 0 {
                    return Err(bad("--window", "must be at least 1"));
                }
                if window as usize > MAX_SLOTS / 4 {
                    return Err(bad("--window", format!("at most {}", MAX_SLOTS / 4)));
                }
            }
            LoadModel::Open {
                rate,
                max_in_flight,
                ..
            } => {
                if !rate.is_finite() || rate <= 0.0 {
                    return Err(bad(
                        "--rate",
                        format!("must be a finite number of requests/s > 0, got {rate}"),
                    ));
                }
                if self.wait == WaitMode::Blocking {
                    return Err(bad(
                        "--wait",
                        "blocking is closed-loop only: an open loop paces sends by spinning on the clock (use --wait busy)",
                    ));
                }
                if max_in_flight == Some(0) {
                    return Err(bad("--max-in-flight", "must be at least 1"));
                }
            }
        }
        if self.server.port() == 0 {
            return Err(bad("--server", "port 0 is not a server address"));
        }
        if self.server.ip().is_unspecified() || self.server.ip().is_multicast() {
            return Err(bad("--server", "needs a unicast address"));
        }
        if self.payload_len > MAX_PAYLOAD {
            return Err(bad(
                "--size",
                format!(
                    "{} bytes do not fit one UDP datagram: at most {MAX_PAYLOAD} (65507 - {HEADER_LEN} header)",
                    self.payload_len
                ),
            ));
        }
        if let RequestMethod::Spin { .. } = self.method {
            if self.payload_len != 4 {
                return Err(bad("--size", "spin requests carry exactly 4 payload bytes"));
            }
        }
        match (self.duration, self.count) {
            (None, None) => {
                return Err(bad("--duration", "give --duration, --count or both"));
            }
            (Some(d), _) if d.is_zero() => {
                return Err(bad("--duration", "must be > 0"));
            }
            (_, Some(0)) => return Err(bad("--count", "must be at least 1")),
            _ => {}
        }
        if let Some(d) = self.duration {
            if d > Duration::from_secs(7 * 24 * 3600) {
                return Err(bad("--duration", "at most one week"));
            }
        }
        if self.warmup > Duration::from_secs(3600) {
            return Err(bad("--warmup", "at most 3600 s"));
        }
        if self.timeout.is_zero() {
            return Err(bad("--timeout-ms", "must be at least 1"));
        }
        if self.timeout > MAX_TIMEOUT {
            return Err(bad("--timeout-ms", "at most 60000 (60 s)"));
        }
        self.slots()?;
        super::dpdk::validate(self)?;
        Ok(())
    }
}
