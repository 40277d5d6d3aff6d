//! Command-line arguments of `bypass load` and their validation into a [`LoadConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::wire::MacAddress;

use super::config::{
    LoadConfig, LoadModel, RequestMethod, DEFAULT_DURATION, DEFAULT_ECHO_SIZE,
    DEFAULT_SLOT_DEADLINE,
};
use super::sweep::RateSweep;
use super::LoadError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// Kernel UDP socket.
    Udp,
    /// Kernel TCP connection, length-framed RPC messages (TCP_NODELAY).
    Tcp,
    /// Unix-domain stream socket, length-framed RPC messages.
    Unix,
    /// An EAL port of the client's own (needs --client-ip and EAL arguments after `--`).
    Dpdk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitMode {
    /// Blocking `recv` (closed loop only): the thread sleeps until a reply.
    Blocking,
    /// Non-blocking socket, spinning on `recv`.
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arrival {
    /// Constant interval 1/rate.
    Fixed,
    /// Exponential inter-arrival gaps with mean 1/rate.
    Poisson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    Echo,
    Spin,
}

/// `bypass load`: measure RPC round trips against a server (docs/protocol.md).
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Server address, IP:PORT (udp, tcp).
    #[arg(long)]
    pub server: Option<SocketAddr>,
    /// Server socket path (unix).
    #[arg(long)]
    pub server_path: Option<PathBuf>,
    /// How requests travel.
    #[arg(long, value_enum, default_value = "udp")]
    pub transport: Transport,
    /// How the client waits for replies (default: blocking in closed loop, busy in open loop;
    /// open loop paces by spinning and accepts only busy).
    #[arg(long, value_enum)]
    pub wait: Option<WaitMode>,
    /// Closed loop: requests kept in flight (default 1 = ping-pong). Excludes --rate.
    #[arg(long)]
    pub window: Option<u32>,
    /// Open loop: requests per second (fractional allowed). Excludes --window. The summary
    /// reports the send lag (actual - intended send: p50/p99/p99.9/max, the fraction of sends
    /// more than 1 us late) and flags a client that fell behind: requests left unsent,
    /// achieved < 99% of the target, or lag p99 above one mean inter-send gap (clamped to
    /// 10 us..1 ms). Requests due before the end of the run are still sent after it (a stall
    /// spanning the end) for up to one --timeout-ms; any left then are charged as unsent.
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Open-loop sweep A:B:STEP requests/s: one full run (warmup, then duration or count) per
    /// rate A, A+STEP, ... up to B, one row per point. Excludes --rate and --window.
    #[arg(long)]
    pub rates: Option<String>,
    /// Open loop: at most this many requests outstanding; when reached the client
    /// waits (like wrk2's connection count) and the corrected histogram charges the wait.
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// Open-loop arrival process (needs --rate).
    #[arg(long, value_enum)]
    pub arrival: Option<Arrival>,
    /// Measured seconds (after warmup). Default 5 when neither --duration nor --count is given;
    /// with --count alone the run still stops after 300 s.
    #[arg(long, allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Measured requests to send (after warmup); the run stops at whichever of
    /// --count and --duration comes first.
    #[arg(long)]
    pub count: Option<u64>,
    /// Seconds of load before measuring; their samples are discarded.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub warmup: f64,
    /// Payload bytes after the 32-byte header (echo default 32; spin is always 4).
    #[arg(long)]
    pub size: Option<usize>,
    #[arg(long, value_enum, default_value = "echo")]
    pub method: MethodArg,
    /// Spin: nanoseconds the server busy-waits per request.
    #[arg(long)]
    pub spin_ns: Option<u32>,
    /// A request unanswered this long is counted lost (its slot is freed) and enters both
    /// round-trip histograms at this value: a percentile at or above it reads ">= timeout"
    /// (JSON: listed under "at_least_timeout"; "lost_recorded_at_ns" is the timeout).
    #[arg(long, default_value_t = 1000)]
    pub timeout_ms: u64,
    /// Closed loop: a request outstanding this long gives its window slot up, so the next
    /// request goes out and one loss does not stall a window-1 loop for the whole timeout.
    /// The request is still matched until --timeout-ms (received if answered by then, lost
    /// and recorded at the timeout if not, "late" after). The summary counts the slots given
    /// up. Default 10 (at most the timeout); raise it for a server slower than that.
    #[arg(long)]
    pub slot_deadline_ms: Option<u64>,
    /// Seed of the Poisson arrival generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write summary and per-second intervals as JSON (with --rates: one summary per point).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write per-second interval rows as CSV (with --rates: one row per point).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the corrected histogram as a Java-compatible .hgrm (microseconds); with --rates
    /// one file per point, the rate inserted before the extension (lat.hgrm -> lat-1000.hgrm).
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write an HdrHistogram interval log, one interval per second; with --rates one file per
    /// point, named like --hgrm's.
    #[arg(long)]
    pub hlog: Option<PathBuf>,
    /// dpdk: this client's IPv4 address (its MAC is the port's).
    #[arg(long)]
    pub client_ip: Option<std::net::Ipv4Addr>,
    /// dpdk: the server's MAC (default: ask by ARP).
    #[arg(long)]
    pub server_mac: Option<MacAddress>,
    /// dpdk: the port, by device name or number (default: the only one).
    #[arg(long)]
    pub dpdk_port: Option<String>,
    /// dpdk: EAL arguments, after `--`; the main lcore (-l/--lcores) runs the measuring loop.
    #[arg(last = true)]
    pub eal: Vec<String>,
}

fn bad(flag: &'static str, msg: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        flag,
        msg: msg.into(),
    }
}

fn seconds(flag: &'static str, v: f64) -> Result<Duration, LoadError> {
    if !v.is_finite() || v < 0.0 {
        return Err(bad(flag, format!("must be a finite number >= 0, got {v}")));
    }
    Duration::try_from_secs_f64(v).map_err(|e| bad(flag, e.to_string()))
}

impl LoadArgs {
    /// The parsed `--rates`, if given.
    pub fn rate_sweep(&self) -> Result<Option<RateSweep>, LoadError> {
        self.rates.as_deref().map(RateSweep::parse).transpose()
    }

    /// Turns the flags into a validated configuration; errors name the flag. With `--rates`
    /// it is the configuration of the sweep's first point.
    pub fn to_config(&self) -> Result<LoadConfig, LoadError> {
        let sweep = self.rate_sweep()?;
        if sweep.is_some() {
            if self.rate.is_some() {
                return Err(bad(
                    "--rates",
                    "--rates (a sweep of open-loop rates) excludes --rate",
                ));
            }
            if self.window.is_some() {
                return Err(bad(
                    "--rates",
                    "--rates (open loop) excludes --window (closed loop)",
                ));
            }
        }
        // A sweep is an open loop; the configuration carries its first point.
        let rate = sweep.as_ref().map(|s| s.points()[0]).or(self.rate);
        let load = match (self.window, rate) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "--rate",
                    "--rate (open loop) and --window (closed loop) exclude each other",
                ))
            }
            (_, Some(_)) if self.slot_deadline_ms.is_some() => {
                return Err(bad(
                    "--slot-deadline-ms",
                    "closed loop only (an open loop has no window)",
                ))
            }
            (_, Some(rate)) => LoadModel::Open {
                rate,
                arrival: self.arrival.unwrap_or(Arrival::Fixed),
                max_in_flight: self.max_in_flight,
            },
            (window, None) => {
                if self.arrival.is_some() {
                    return Err(bad("--arrival", "needs --rate (open loop)"));
                }
                if self.max_in_flight.is_some() {
                    return Err(bad("--max-in-flight", "needs --rate (open loop)"));
                }
                LoadModel::Closed {
                    window: window.unwrap_or(1),
                }
            }
        };
        let wait = match (self.wait, &load) {
            (Some(w), _) => w,
            (None, LoadModel::Open { .. }) => WaitMode::Busy,
            // A DPDK port is polled; there is nothing to block on.
            (None, _) if self.transport == Transport::Dpdk => WaitMode::Busy,
            (None, LoadModel::Closed { .. }) => WaitMode::Blocking,
        };
        let duration = match (self.duration, self.count) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d.map(|d| seconds("--duration", d)).transpose()?,
        };
        let method = match self.method {
            MethodArg::Echo => {
                if self.spin_ns.is_some() {
                    return Err(bad("--spin-ns", "only with --method spin"));
                }
                RequestMethod::Echo
            }
            MethodArg::Spin => match self.spin_ns {
                None => return Err(bad("--spin-ns", "--method spin needs --spin-ns N")),
                Some(ns) => RequestMethod::Spin { ns },
            },
        };
        let payload_len = match (method, self.size) {
            (RequestMethod::Echo, s) => s.unwrap_or(DEFAULT_ECHO_SIZE),
            (RequestMethod::Spin { .. }, None | Some(4)) => 4,
            (RequestMethod::Spin { .. }, Some(s)) => {
                return Err(bad(
                    "--size",
                    format!("spin requests carry exactly 4 payload bytes, got {s}"),
                ))
            }
        };
        let cfg = LoadConfig {
            transport: self.transport,
            server: self.server,
            server_path: self.server_path.clone(),
            wait,
            load,
            duration,
            count: self.count,
            warmup: seconds("--warmup", self.warmup)?,
            payload_len,
            method,
            timeout: Duration::from_millis(self.timeout_ms),
            slot_deadline: self
                .slot_deadline_ms
                .map_or(DEFAULT_SLOT_DEADLINE, Duration::from_millis),
            seed: self.seed,
            dpdk: super::dpdk::options_from_args(self)?,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}
