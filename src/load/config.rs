//! The load client's settings, typed and checked once: [`LoadConfig::from_args`] turns the
//! flags of [`super::args`] into a [`LoadConfig`] (or refuses them, naming the flag), and from
//! here on the engine, the transports and the reports read typed fields only. A configuration
//! built in code (tests, the library) goes through the same [`LoadConfig::validate`].

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use crate::codec::{ClientCodec, Codec, MessageSize};
use crate::options::{ChecksumPolicy, FieldError, RateSweep, WaitMode};
use crate::wire::frame::UDP_HEADERS_LEN;
use crate::wire::rpc::HEADER_LEN;
use crate::wire::MacAddress;

pub use super::args::{Arrival, Transport};
use super::args::{LoadArgs, MethodArg};
pub use super::fanout::{HedgeAfter, Shape};
use super::fanout::{MAX_FANOUT, MAX_SERVERS};
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
/// connection (docs/protocol.md, "Stream framing").
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
/// Largest Ethernet frame the dpdk transport sends (1500-byte MTU): one mbuf, and what every
/// PMD accepts.
pub const MAX_FRAME: usize = 1514;
/// Largest RPC message (header + payload) that fits [`MAX_FRAME`].
pub const MAX_MESSAGE: usize = MAX_FRAME - UDP_HEADERS_LEN;

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
    Spin {
        ns: u32,
    },
    /// One message of this codec and size per request (its length varies with the id's
    /// width; `payload_len` is the longest).
    Transcode {
        codec: Codec,
        size: MessageSize,
    },
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
    pub dpdk: Option<DpdkOptions>,
    /// Replicas, fan-out and hedging (default: plain requests to `server`).
    pub shape: Shape,
}

/// What the dpdk transport needs beyond the common configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpdkOptions {
    /// This client's IPv4 address; its MAC is the port's.
    pub client_ip: Ipv4Addr,
    /// The server's MAC; `None`: resolved by ARP.
    pub server_mac: Option<MacAddress>,
    /// Port by device name or number; `None`: the only port the EAL has.
    pub port: Option<String>,
    /// How far replies' checksums are checked, resolved for the port when it opens.
    pub checksum: ChecksumPolicy,
    /// EAL arguments (what followed `--`), without the program name.
    pub eal: Vec<String>,
}

/// The files a run writes; with a sweep, `hgrm` and `hlog` are per point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub hgrm: Option<PathBuf>,
    pub hlog: Option<PathBuf>,
}

/// A `--rates` sweep: the points, and the text they came from (echoed in reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub text: String,
    pub rates: RateSweep,
}

/// Everything one `bypass load` invocation does: the run's configuration (with a sweep, that
/// of its first point), the sweep if any, and the output files.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    pub config: LoadConfig,
    pub sweep: Option<Sweep>,
    pub outputs: Outputs,
}

pub(crate) fn bad(flag: &'static str, msg: impl Into<String>) -> LoadError {
    LoadError::Invalid(FieldError::new(flag, msg))
}

fn seconds(flag: &'static str, v: f64) -> Result<Duration, LoadError> {
    if !v.is_finite() || v < 0.0 {
        return Err(bad(flag, format!("must be a finite number >= 0, got {v}")));
    }
    Duration::try_from_secs_f64(v).map_err(|e| bad(flag, e.to_string()))
}

/// Parses `--rates A:B:STEP`; the error names `--rates`.
pub fn parse_rates(text: &str) -> Result<RateSweep, LoadError> {
    RateSweep::parse(text).map_err(|m| bad("--rates", m))
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
            shape: Shape::default(),
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
        self.validate_model()?;
        self.validate_shape()?;
        self.validate_endpoint()?;
        self.validate_payload()?;
        self.validate_times()?;
        self.slots()?;
        self.validate_dpdk()?;
        Ok(())
    }

    /// The replicas sub-requests go to: `--servers`, or the one server.
    pub fn replica_addrs(&self) -> Vec<SocketAddr> {
        if self.shape.servers.is_empty() {
            self.server.into_iter().collect()
        } else {
            self.shape.servers.clone()
        }
    }

    /// `--servers`, `--fanout`, `--hedge-after`.
    fn validate_shape(&self) -> Result<(), LoadError> {
        let s = &self.shape;
        if s.fanout == 0 || s.fanout > MAX_FANOUT {
            return Err(bad(
                "--fanout",
                format!("must be 1..={MAX_FANOUT}, got {}", s.fanout),
            ));
        }
        if s.hedge.is_some() && self.wait == WaitMode::Blocking {
            return Err(bad(
                "--wait",
                "--hedge-after sends duplicates when they fall due, which a blocking wait would delay: use --wait busy (the default with hedging)",
            ));
        }
        if self.slots()?.saturating_mul(s.fanout as usize) > MAX_SLOTS {
            return Err(bad(
                "--fanout",
                format!(
                    "{} sub-requests per request need more than {MAX_SLOTS} in-flight slots at this rate or window and timeout; lower one of them",
                    s.fanout
                ),
            ));
        }
        if s.servers.is_empty() {
            return Ok(());
        }
        if s.servers.len() > MAX_SERVERS {
            return Err(bad("--servers", format!("at most {MAX_SERVERS} replicas")));
        }
        if self.transport == Transport::Unix {
            return Err(bad(
                "--servers",
                "udp, tcp and dpdk only: a unix client has one --server-path (fan out to it with --fanout)",
            ));
        }
        for a in &s.servers {
            if a.port() == 0 || a.ip().is_unspecified() || a.ip().is_multicast() {
                return Err(bad(
                    "--servers",
                    format!("{a} is not a unicast server address"),
                ));
            }
        }
        if s.servers.len() > 1
            && self.wait == WaitMode::Blocking
            && self.transport == Transport::Tcp
        {
            return Err(bad(
                "--wait",
                "several tcp replicas are polled in turn: use --wait busy",
            ));
        }
        if self.transport == Transport::Dpdk {
            let ip = s.servers[0].ip();
            if s.servers.iter().any(|a| a.ip() != ip) {
                return Err(bad(
                    "--servers",
                    "--transport dpdk sends to one server address: replicas differ by port only",
                ));
            }
            if self.server.is_some_and(|a| a.ip() != ip) {
                return Err(bad("--servers", "must share --server's address (dpdk)"));
            }
        }
        Ok(())
    }

    /// The window, or the open loop's rate, wait and in-flight cap.
    fn validate_model(&self) -> Result<(), LoadError> {
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
        Ok(())
    }

    /// The payload fits the transport's message and the method's size.
    fn validate_payload(&self) -> Result<(), LoadError> {
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
        Ok(())
    }

    /// Duration or count, warmup, timeout and slot deadline.
    fn validate_times(&self) -> Result<(), LoadError> {
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
        Ok(())
    }

    /// Checks what the dpdk transport needs of a configuration; errors name the flag.
    fn validate_dpdk(&self) -> Result<(), LoadError> {
        if self.transport != Transport::Dpdk {
            return Ok(());
        }
        let Some(o) = &self.dpdk else {
            return Err(bad("--client-ip", "--transport dpdk needs --client-ip IP"));
        };
        if self.wait == WaitMode::Blocking {
            return Err(bad(
                "--wait",
                "blocking makes no sense with --transport dpdk: the client polls its port (busy, the default)",
            ));
        }
        let server = self.server_ipv4()?;
        let ip = o.client_ip;
        if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() {
            return Err(bad("--client-ip", format!("{ip} is not a unicast address")));
        }
        if ip == server {
            return Err(bad("--client-ip", "must differ from the server's address"));
        }
        if let Some(m) = o.server_mac {
            if m.is_multicast() || m.is_unspecified() {
                return Err(bad("--server-mac", format!("{m} is not a unicast MAC")));
            }
        }
        if o.eal.is_empty() {
            return Err(bad(
                "--",
                "--transport dpdk needs EAL arguments after `--`, e.g. `-- -l 0 --vdev=net_tap0`",
            ));
        }
        if HEADER_LEN + self.payload_len > MAX_MESSAGE {
            return Err(bad(
                "--size",
                format!(
                    "--transport dpdk sends one frame of at most {MAX_FRAME} bytes per message: payload at most {}, got {}",
                    MAX_MESSAGE - HEADER_LEN,
                    self.payload_len
                ),
            ));
        }
        Ok(())
    }

    /// The server's IPv4 address (the dpdk transport speaks IPv4 only).
    pub fn server_ipv4(&self) -> Result<Ipv4Addr, LoadError> {
        match self.server_addr()?.ip() {
            IpAddr::V4(a) => Ok(a),
            IpAddr::V6(_) => Err(bad("--server", "--transport dpdk speaks IPv4 only")),
        }
    }
}

impl LoadPlan {
    /// Turns the flags into a checked plan; errors name the flag.
    pub fn from_args(a: &LoadArgs) -> Result<LoadPlan, LoadError> {
        let sweep = a
            .rates
            .as_deref()
            .map(|text| {
                parse_rates(text).map(|rates| Sweep {
                    text: text.to_string(),
                    rates,
                })
            })
            .transpose()?;
        Ok(LoadPlan {
            config: LoadConfig::from_args(a, sweep.as_ref().map(|s| &s.rates))?,
            sweep,
            outputs: a.outputs(),
        })
    }
}

impl LoadConfig {
    /// Turns the flags into a validated configuration; errors name the flag. With a sweep it
    /// is the configuration of the sweep's first point.
    pub fn from_args(a: &LoadArgs, sweep: Option<&RateSweep>) -> Result<LoadConfig, LoadError> {
        let load = load_model(a, sweep)?;
        let wait = match (a.wait, &load) {
            (Some(w), _) => w,
            (None, LoadModel::Open { .. }) => WaitMode::Busy,
            // A DPDK port is polled; there is nothing to block on.
            (None, _) if a.transport == Transport::Dpdk => WaitMode::Busy,
            // A hedge must go out when it falls due, not when a blocking wait ends.
            (None, _) if a.hedge_after.is_some() => WaitMode::Busy,
            (None, LoadModel::Closed { .. }) => WaitMode::Blocking,
        };
        let duration = match (a.duration, a.count) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d.map(|d| seconds("--duration", d)).transpose()?,
        };
        let (method, payload_len) = method_and_size(a)?;
        let cfg = LoadConfig {
            transport: a.transport,
            server: a.server.or_else(|| a.servers.first().copied()),
            server_path: a.server_path.clone(),
            wait,
            load,
            duration,
            count: a.count,
            warmup: seconds("--warmup", a.warmup)?,
            payload_len,
            method,
            timeout: Duration::from_millis(a.timeout_ms),
            slot_deadline: a
                .slot_deadline_ms
                .map_or(DEFAULT_SLOT_DEADLINE, Duration::from_millis),
            seed: a.seed,
            dpdk: dpdk_options(a)?,
            shape: shape(a)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// `--servers`, `--fanout`, `--hedge-after`; with --servers alone, --server defaults to
/// the first replica.
fn shape(a: &LoadArgs) -> Result<Shape, LoadError> {
    Ok(Shape {
        servers: a.servers.clone(),
        fanout: a.fanout.unwrap_or(1),
        hedge: a
            .hedge_after
            .as_deref()
            .map(|t| t.parse().map_err(|e| bad("--hedge-after", e)))
            .transpose()?,
    })
}

/// Closed or open loop, from --window, --rate or the sweep's first point, and the flags
/// that belong to one of them only.
fn load_model(a: &LoadArgs, sweep: Option<&RateSweep>) -> Result<LoadModel, LoadError> {
    if sweep.is_some() {
        if a.rate.is_some() {
            return Err(bad(
                "--rates",
                "--rates (a sweep of open-loop rates) excludes --rate",
            ));
        }
        if a.window.is_some() {
            return Err(bad(
                "--rates",
                "--rates (open loop) excludes --window (closed loop)",
            ));
        }
    }
    // A sweep is an open loop; the configuration carries its first point.
    let rate = sweep.map(|s| s.points()[0]).or(a.rate);
    match (a.window, rate) {
        (Some(_), Some(_)) => Err(bad(
            "--rate",
            "--rate (open loop) and --window (closed loop) exclude each other",
        )),
        (_, Some(_)) if a.slot_deadline_ms.is_some() => Err(bad(
            "--slot-deadline-ms",
            "closed loop only (an open loop has no window)",
        )),
        (_, Some(rate)) => Ok(LoadModel::Open {
            rate,
            arrival: a.arrival.unwrap_or(Arrival::Fixed),
            max_in_flight: a.max_in_flight,
        }),
        (window, None) => {
            if a.arrival.is_some() {
                return Err(bad("--arrival", "needs --rate (open loop)"));
            }
            if a.max_in_flight.is_some() {
                return Err(bad("--max-in-flight", "needs --rate (open loop)"));
            }
            Ok(LoadModel::Closed {
                window: window.unwrap_or(1),
            })
        }
    }
}

/// The request method and its payload length, from --method, --spin-ns and --size.
fn method_and_size(a: &LoadArgs) -> Result<(RequestMethod, usize), LoadError> {
    if a.method != MethodArg::Transcode {
        if a.codec.is_some() {
            return Err(bad("--codec", "only with --method transcode"));
        }
        if a.message.is_some() {
            return Err(bad("--message", "only with --method transcode"));
        }
    }
    let method = match a.method {
        MethodArg::Transcode => {
            if a.spin_ns.is_some() {
                return Err(bad("--spin-ns", "only with --method spin"));
            }
            let Some(codec) = a.codec else {
                return Err(bad(
                    "--codec",
                    "--method transcode needs --codec json|protobuf|flatbuffers",
                ));
            };
            RequestMethod::Transcode {
                codec,
                size: a.message.unwrap_or(MessageSize::Small),
            }
        }
        MethodArg::Echo => {
            if a.spin_ns.is_some() {
                return Err(bad("--spin-ns", "only with --method spin"));
            }
            RequestMethod::Echo
        }
        MethodArg::Spin => match a.spin_ns {
            None => return Err(bad("--spin-ns", "--method spin needs --spin-ns N")),
            Some(ns) => RequestMethod::Spin { ns },
        },
    };
    let payload_len = match (method, a.size) {
        (RequestMethod::Transcode { .. }, Some(_)) => {
            return Err(bad(
                "--size",
                "--method transcode sizes its messages with --message small|medium|large",
            ))
        }
        // The longest request, at the widest id.
        (RequestMethod::Transcode { codec, size }, None) => {
            ClientCodec::new(codec, size).request_len_for(u64::MAX)
        }
        (RequestMethod::Echo, s) => s.unwrap_or(DEFAULT_ECHO_SIZE),
        (RequestMethod::Spin { .. }, None | Some(4)) => 4,
        (RequestMethod::Spin { .. }, Some(s)) => {
            return Err(bad(
                "--size",
                format!("spin requests carry exactly 4 payload bytes, got {s}"),
            ))
        }
    };
    Ok((method, payload_len))
}

/// The dpdk options from the command line: `Some` for `--transport dpdk`, `None` otherwise;
/// dpdk-only flags with another transport are an error naming the flag.
fn dpdk_options(a: &LoadArgs) -> Result<Option<DpdkOptions>, LoadError> {
    if a.transport != Transport::Dpdk {
        let only = "only with --transport dpdk";
        if a.client_ip.is_some() {
            return Err(bad("--client-ip", only));
        }
        if a.server_mac.is_some() {
            return Err(bad("--server-mac", only));
        }
        if a.dpdk_port.is_some() {
            return Err(bad("--dpdk-port", only));
        }
        if a.checksum.is_some() {
            return Err(bad(
                "--checksum",
                "only with --transport dpdk (a kernel socket's checksums are the kernel's)",
            ));
        }
        if !a.eal.is_empty() {
            return Err(bad(
                "--",
                "EAL arguments after `--` are for --transport dpdk only",
            ));
        }
        return Ok(None);
    }
    let Some(client_ip) = a.client_ip else {
        return Err(bad(
            "--client-ip",
            "--transport dpdk needs --client-ip IP (the address this client sends from)",
        ));
    };
    Ok(Some(DpdkOptions {
        client_ip,
        server_mac: a.server_mac,
        port: a.dpdk_port.clone(),
        checksum: a.checksum.unwrap_or(ChecksumPolicy::Auto),
        eal: a.eal.clone(),
    }))
}

impl LoadArgs {
    /// [`LoadConfig::from_args`] with the sweep of `--rates`, for callers that hold the flags.
    pub fn to_config(&self) -> Result<LoadConfig, LoadError> {
        LoadPlan::from_args(self).map(|p| p.config)
    }

    /// The output files the flags ask for.
    pub fn outputs(&self) -> Outputs {
        Outputs {
            json: self.json.clone(),
            csv: self.csv.clone(),
            hgrm: self.hgrm.clone(),
            hlog: self.hlog.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn dpdk_args(extra: &[&str]) -> Result<LoadArgs, clap::Error> {
        let mut argv = vec![
            "load",
            "--transport",
            "dpdk",
            "--server",
            "198.18.0.1:7777",
            "--client-ip",
            "198.18.0.2",
        ];
        argv.extend_from_slice(extra);
        argv.extend_from_slice(&["--", "-l", "0", "--vdev=net_null0"]);
        Cli::try_parse_from(argv).map(|c| c.load)
    }

    #[test]
    fn checksum_flag_is_typed_defaults_to_auto_and_is_dpdk_only() {
        let policy = |extra: &[&str]| {
            let c = dpdk_args(extra).unwrap().to_config().unwrap();
            c.dpdk.unwrap().checksum
        };
        assert_eq!(policy(&[]), ChecksumPolicy::Auto);
        assert_eq!(policy(&["--checksum", "verify"]), ChecksumPolicy::Verify);
        assert_eq!(policy(&["--checksum", "trust"]), ChecksumPolicy::Trust);
        assert_eq!(policy(&["--checksum", "offload"]), ChecksumPolicy::Offload);
        let e = dpdk_args(&["--checksum", "sometimes"]).expect_err("refused");
        assert!(e.to_string().contains("--checksum"), "{e}");
        let udp =
            Cli::try_parse_from(["load", "--server", "127.0.0.1:7777", "--checksum", "trust"])
                .unwrap()
                .load;
        match udp.to_config() {
            Err(LoadError::Invalid(e)) => assert_eq!(e.field, "--checksum", "{e}"),
            other => panic!("expected a refusal naming --checksum, got {other:?}"),
        }
    }
}
