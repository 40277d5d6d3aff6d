//! The command line of `bypass kernel-relay`, as clap parses it; [`super::config`] checks and
//! types it once.

use clap::Args;

use crate::options::{Backend, Balance};

pub const DEFAULT_TABLE: usize = 4096;
pub const DEFAULT_EXPIRY_MS: u64 = 1000;
pub const DEFAULT_POOL: usize = 1;

/// `bypass kernel-relay`: an RPC v1 proxy over kernel sockets, one epoll thread.
#[derive(Debug, Clone, Args)]
pub struct KernelRelayArgs {
    /// Where clients connect: udp:IP:PORT, tcp:IP:PORT or unix:PATH (port 0: any free one,
    /// shown on the ready line).
    #[arg(long)]
    pub listen: String,
    /// Where requests go, in the same forms (repeatable; all of one protocol).
    #[arg(long, required = true)]
    pub upstream: Vec<String>,
    /// How a request picks its upstream: in turn, or by a hash of its client flow.
    #[arg(long, value_enum, default_value = "round-robin")]
    pub balance: Balance,
    /// blocking: epoll_wait sleeps (100 ms at most, to notice a stop); busy: epoll_wait(0)
    /// spinning. batch is refused.
    #[arg(long, value_enum, default_value = "blocking")]
    pub backend: Backend,
    /// The one CPU to pin the relay thread to.
    #[arg(long)]
    pub cpus: Option<String>,
    /// Mapping slots (requests in flight at once), allocated at start.
    #[arg(long, default_value_t = DEFAULT_TABLE)]
    pub table: usize,
    /// A forwarded request unanswered this long frees its slot (counted `expired`).
    #[arg(long, default_value_t = DEFAULT_EXPIRY_MS)]
    pub expiry_ms: u64,
    /// tcp/unix upstreams: persistent connections per upstream, shared by every client.
    #[arg(long, default_value_t = DEFAULT_POOL)]
    pub pool: usize,
    /// Seconds to run, then stop (0: until SIGINT/SIGTERM).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub duration: f64,
    /// Final report as one JSON line on stdout.
    #[arg(long)]
    pub json: bool,
}
