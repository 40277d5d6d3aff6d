//! The command line of `bypass kernel-serve`, as clap parses it and nothing more: a leaf that
//! names no other part of the kernel servers; [`super::config`] checks and types it once.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::options::{Backend, Proto};

/// Longest spin a request may ask for unless `--spin-max-ns` says otherwise.
pub const DEFAULT_SPIN_MAX_NS: u32 = 1_000_000;
/// tcp/unix: connections one thread holds at once unless `--max-connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// tcp/unix: seconds a peer may take none of its replies before it is closed.
pub const DEFAULT_STALL_TIMEOUT_S: f64 = 10.0;

/// `bypass kernel-serve`: kernel-stack baseline servers for RPC v1 (docs/protocol.md).
#[derive(Debug, Clone, Args)]
pub struct KernelServeArgs {
    #[arg(long, value_enum)]
    pub proto: Proto,
    /// udp/tcp: address to listen on [default: 0.0.0.0:7777].
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// unix: socket path [default: /tmp/bypass-rpc.sock]; a stale socket file is replaced.
    #[arg(long)]
    pub path: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "blocking")]
    pub backend: Backend,
    /// Messages per recvmmsg/sendmmsg (--backend batch) [default: 32].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Threads: udp, one SO_REUSEPORT socket each; tcp/unix, each serves the connections it
    /// accepted, new ones going to the thread holding fewest.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// tcp/unix: connections a thread holds at once; one more is accepted and closed at once.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// tcp/unix: seconds a peer may leave its replies unread (taking no byte) before the
    /// connection is closed and the replies counted as `stalled`.
    #[arg(long, default_value_t = DEFAULT_STALL_TIMEOUT_S)]
    pub stall_timeout: f64,
    /// CPUs to pin to, e.g. "1", "0,1" or "0-3": thread i runs on cpus[i % len].
    #[arg(long)]
    pub cpus: Option<String>,
    /// udp: also answer sockperf ping-pong on this port; 0 = off [default: 11111].
    #[arg(long)]
    pub sockperf_port: Option<u16>,
    /// Longest spin a request may ask for, in ns.
    #[arg(long, default_value_t = DEFAULT_SPIN_MAX_NS)]
    pub spin_max_ns: u32,
    /// Service time per request, drawn by each thread: fixed:20us, exp:20us,
    /// lognormal:20us,0.5, bimodal:20us,1%:1ms, each with an optional ,cap=DURATION and
    /// ,hold=spin|sleep: spin (default) holds the CPU; sleep waits without it (at least the
    /// draw, plus wake-up latency, both in server_ns), as a service waiting on a disk or a
    /// downstream does (docs/protocol.md, "Service time").
    #[arg(long)]
    pub service: Option<String>,
    /// udp/tcp: independent replicas on consecutive ports from --bind's, each with its own
    /// threads and its own draws.
    #[arg(long, default_value_t = 1)]
    pub replicas: u16,
    /// Seconds to run, then stop (0: until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub duration: f64,
    /// Final report as one JSON line on stdout.
    #[arg(long)]
    pub json: bool,
}
