//! The command line of `bypass serve`, as clap parses it and nothing more: a leaf that names no
//! other part of the server. Every flag is optional, so [`super::config`] can tell a flag given
//! (it overrides the TOML file) from one left out.

#![forbid(unsafe_code)]

use crate::service::ServiceModel;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::options::{Balance, ChecksumPolicy, PollMode};
use crate::wire::{Ipv4Address, MacAddress};

/// What the workers do with a received packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Send every received packet back out unchanged (testpmd's io forwarding).
    Io,
    /// Answer RPC, ARP, ICMP echo and sockperf in place through the node graph; drop the rest.
    Rpc,
}

/// Where a worker transmits what it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Topology {
    /// Out of the port it came in on.
    Loop,
    /// Out of the neighbouring port: 0<->1, 2<->3, ... (testpmd's paired topology).
    Paired,
    /// One worker polls every port and sends each packet out of the port it is addressed to:
    /// replies where their request came in, relayed requests by their relay's `via` port (rpc
    /// mode; the worker answers as one MAC, the first port's or `mac`, on all of them).
    Joined,
}

/// `bypass serve`: the fast path. EAL arguments follow `--`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML settings file; command-line options override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    #[arg(long, value_enum)]
    pub topology: Option<Topology>,
    /// Ports by name or number, comma-separated (default: every port).
    #[arg(long, value_delimiter = ',')]
    pub ports: Option<Vec<String>>,
    /// Rx/tx queues per port (one worker lcore each).
    #[arg(long)]
    pub queues: Option<u16>,
    #[arg(long)]
    pub rx_desc: Option<u16>,
    #[arg(long)]
    pub tx_desc: Option<u16>,
    /// Packets per rx burst.
    #[arg(long)]
    pub burst: Option<u16>,
    /// Most packets per graph dispatch (rpc mode).
    #[arg(long)]
    pub vector: Option<u16>,
    /// IPv4 address the fast path answers for (rpc mode).
    #[arg(long)]
    pub ip: Option<Ipv4Address>,
    /// MAC address answered for (default: the port's).
    #[arg(long)]
    pub mac: Option<MacAddress>,
    #[arg(long)]
    pub rpc_port: Option<u16>,
    #[arg(long)]
    pub sockperf_port: Option<u16>,
    /// Longest spin a request may ask for, in ns.
    #[arg(long)]
    pub spin_max_ns: Option<u32>,
    /// Service time per request (rpc mode), drawn by each worker: fixed:20us, exp:20us,
    /// lognormal:20us,0.5, bimodal:20us,1%:1ms, each with an optional ,cap=DURATION. Held by
    /// spinning: ,hold=sleep is refused, a poll-mode worker that slept would stop polling
    /// (kernel-serve takes it).
    #[arg(long)]
    pub service: Option<ServiceModel>,
    /// Replicas on consecutive ports from --rpc-port's (rpc mode). They share the workers,
    /// so their service times queue behind each other: independent servers are processes.
    #[arg(long)]
    pub replicas: Option<u16>,
    /// How far received checksums are checked, resolved per port (rpc mode).
    #[arg(long, value_enum)]
    pub checksum: Option<ChecksumPolicy>,
    /// Write service-time histograms to this HdrHistogram interval log (rpc mode).
    #[arg(long)]
    pub hlog: Option<String>,
    /// Buffers in the packet pool.
    #[arg(long)]
    pub mbufs: Option<u32>,
    #[arg(long, value_enum)]
    pub poll_mode: Option<PollMode>,
    /// Packets each port sends at start (primes loopback topologies).
    #[arg(long)]
    pub tx_first: Option<u32>,
    /// Seconds to run, then stop by itself (0: until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Milliseconds between report lines.
    #[arg(long)]
    pub interval_ms: Option<u64>,
    /// A relay (rpc mode), repeatable: LISTEN=UPSTREAM[,UPSTREAM..][@PORT]: requests to
    /// LISTEN (an address of its own) go to the upstreams, through PORT (name or number;
    /// default: the port they came in on). Replaces the config file's `[[relay]]` tables.
    #[arg(long = "relay", value_name = "LISTEN=UPSTREAM[,..][@PORT]")]
    pub relays: Vec<String>,
    /// How the --relay relays pick among several upstreams.
    #[arg(long, value_enum)]
    pub relay_balance: Option<Balance>,
    /// Flow slots of each --relay relay.
    #[arg(long)]
    pub relay_table: Option<u32>,
    /// Milliseconds after which a --relay relay forgets an idle flow.
    #[arg(long)]
    pub relay_expiry_ms: Option<u64>,
    /// JSON lines on stdout (one per interval, one final) instead of human text.
    #[arg(long)]
    pub json: bool,
    /// EAL arguments, after `--`.
    #[arg(last = true)]
    pub eal: Vec<String>,
}
