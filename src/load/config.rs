//! The validated configuration the engine runs ([`super::run_with`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

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
/// Largest whole message (header + payload) on a stream transport; a longer one closes the
/// connection (CONTRACTS.md, "Stream framing").
pub const MAX_STREAM_MESSAGE: usize = 65_536;
/// Largest RPC payload on a stream transport.
pub const MAX_STREAM_PAYLOAD: usize = MAX_STREAM_MESSAGE - HEADER_LEN;
/// Most in-flight slots the engine allocates (open loop: about rate x timeout x 2).
pub const MAX_SLOTS: usize = 1 << 24;
/// Longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Closed loop: a request outstanding this long gives its window slot up (it stays matched
/// until the timeout), so one loss cannot stall a window-1 loop for the whole timeout.
pub const DEFAULT_SLOT_DEADLINE: Duration = Duration::from_millis(10);

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
    /// The server's IP address and port (every transport but unix).
    pub server: Option<SocketAddr>,
    /// The server's socket path (unix only).
    pub server_path: Option<PathBuf>,
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
    /// Closed loop: a request outstanding this long frees its window slot for the next
    /// request, yet is still matched until `timeout` (lost after it). The engine uses the
    /// smaller of this and `timeout`. Unused in open loop.
    pub slot_deadline: Duration,
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
            server: Some(server),
            server_path: None,
            wait: WaitMode::Blocking,
            load: LoadModel::Closed { window },
            duration: Some(DEFAULT_DURATION),
            count: None,
            warmup: Duration::ZERO,
            payload_len: DEFAULT_ECHO_SIZE,
            method: RequestMethod::Echo,
            timeout: Duration::from_secs(1),
            slot_deadline: DEFAULT_SLOT_DEADLINE,
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

    /// The server's IP address; an error naming --server when the configuration has none.
    pub fn server_addr(&self) -> Result<SocketAddr, LoadError> {
        self.server
            .ok_or_else(|| bad("--server", "this transport needs --server IP:PORT"))
    }

    /// Where the requests go, for reports: `tcp -> 127.0.0.1:7777`, `unix -> /tmp/s.sock`.
    pub fn endpoint(&self) -> String {
        let name = self
            .transport
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string());
        match (&self.server, &self.server_path) {
            (Some(a), _) => format!("{name} -> {a}"),
            (None, Some(p)) => format!("{name} -> {}", p.display()),
            (None, None) => name,
        }
    }

    /// Largest payload the transport carries in one message.
    pub fn max_payload(&self) -> usize {
        match self.transport {
            Transport::Tcp | Transport::Unix => MAX_STREAM_PAYLOAD,
            _ => MAX_PAYLOAD,
        }
    }

    /// Checks that the transport has the address it needs and nothing it cannot use.
    fn validate_endpoint(&self) -> Result<(), LoadError> {
        match self.transport {
            Transport::Unix => {
                if self.server.is_some() {
                    return Err(bad(
                        "--server",
                        "--transport unix takes --server-path SOCKPATH, not --server",
                    ));
                }
                match &self.server_path {
                    None => Err(bad(
                        "--server-path",
                        "--transport unix needs --server-path SOCKPATH",
                    )),
                    Some(p) if p.as_os_str().is_empty() => {
                        Err(bad("--server-path", "must not be empty"))
                    }
                    Some(_) => Ok(()),
                }
            }
            // Every other transport addresses an IP server.
            _ => {
                if self.server_path.is_some() {
                    return Err(bad(
                        "--server-path",
                        "only with --transport unix (this transport takes --server IP:PORT)",
                    ));
                }
                let server = self.server_addr()?;
                if server.port() == 0 {
                    return Err(bad("--server", "port 0 is not a server address"));
                }
                if server.ip().is_unspecified() || server.ip().is_multicast() {
                    return Err(bad("--server", "needs a unicast address"));
                }
                Ok(())
            }
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

    /// Closed loop: how long a request holds its window slot (at most the timeout).
    pub fn effective_slot_deadline(&self) -> Duration {
        self.slot_deadline.min(self.timeout)
    }

    /// In-flight slots to allocate (a power of two).
    pub fn slots(&self) -> Result<usize, LoadError> {
        let want = match self.load {
            // Room for requests past their slot deadline but not yet timed out (up to 16
            // windows' worth; beyond that the ring gives the oldest up, counted lost).
            LoadModel::Closed { window } => {
                let ratio = self.timeout.as_secs_f64()
                    / self.effective_slot_deadline().as_secs_f64().max(1e-9);
                let windows = (ratio + 1.0).clamp(4.0, 16.0);
                ((window as f64) * windows).min((MAX_SLOTS / 4) as f64 * 4.0)
            }
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
        self.validate_endpoint()?;
        if self.payload_len > self.max_payload() {
            let why = if self.max_payload() == MAX_PAYLOAD {
                format!("do not fit one UDP datagram: at most {MAX_PAYLOAD} (65507 - {HEADER_LEN} header)")
            } else {
                format!("exceed a stream message: at most {MAX_STREAM_PAYLOAD} ({MAX_STREAM_MESSAGE} - {HEADER_LEN} header)")
            };
            return Err(bad("--size", format!("{} bytes {why}", self.payload_len)));
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
        if self.slot_deadline.is_zero() {
            return Err(bad("--slot-deadline-ms", "must be at least 1"));
        }
        self.slots()?;
        super::dpdk::validate(self)?;
        Ok(())
    }
}
