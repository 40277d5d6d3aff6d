//! The command line of `bypass load`, as clap parses it and nothing more: a leaf that names
//! no other part of the load client, so the flow runs one way, flags -> [`super::config`]
//! (which checks and types them once) -> the engine and transports.

#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::options::{ChecksumPolicy, Codec, MessageSize, WaitMode};
use crate::wire::MacAddress;

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
    /// One message in --codec, decoded, answered and encoded back by the server.
    Transcode,
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
    /// Transcode: the message codec.
    #[arg(long, value_enum)]
    pub codec: Option<Codec>,
    /// Transcode: the message's size (the same schema with more items).
    #[arg(long, value_enum)]
    pub message: Option<MessageSize>,
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
    /// Replicas, IP:PORT,IP:PORT,.. (udp, tcp, dpdk; dpdk: one IP, ports apart). Sub-request
    /// j of logical request n goes to replica (n x fanout + j) mod N; a hedge to the next
    /// one. Default: --server alone.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<SocketAddr>,
    /// Sub-requests per logical request (1..=64): it completes when all have replied, its
    /// round trip is the slowest's. The summary is then the logical requests', with the
    /// sub-requests' histogram and the tail amplification beside it.
    #[arg(long)]
    pub fanout: Option<u32>,
    /// Send a sub-request again, to the next replica, when unanswered this long (500us, 2ms)
    /// or past this percentile of recent round trips (p95: adapted every 256 replies from
    /// the last few thousand first copies; none before 100 replies). The first reply wins;
    /// the other is counted as wasted.
    #[arg(long)]
    pub hedge_after: Option<String>,
    /// dpdk: this client's IPv4 address (its MAC is the port's).
    #[arg(long)]
    pub client_ip: Option<Ipv4Addr>,
    /// dpdk: the server's MAC (default: ask by ARP).
    #[arg(long)]
    pub server_mac: Option<MacAddress>,
    /// dpdk: the port, by device name or number (default: the only one).
    #[arg(long)]
    pub dpdk_port: Option<String>,
    /// dpdk: how far replies' IPv4 and UDP checksums are checked (default auto: trust on
    /// net_memif and net_ring, the NIC's verdicts where it offers rx checksum offload,
    /// software otherwise).
    #[arg(long, value_enum)]
    pub checksum: Option<ChecksumPolicy>,
    /// dpdk: EAL arguments, after `--`; the main lcore (-l/--lcores) runs the measuring loop.
    #[arg(last = true)]
    pub eal: Vec<String>,
}
