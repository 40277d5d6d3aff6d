//! `bypass kernel-relay`: the sidecar baseline, a user-space RPC v1 proxy over kernel sockets
//! built as mesh proxies are: one thread pinned with `--cpus`, an epoll loop over
//! non-blocking sockets (blocking: epoll_wait sleeps; busy: epoll_wait(0) spins), udp, tcp
//! or unix on either side, a pool of persistent connections to each stream upstream shared
//! by every client, and a fixed mapping table from relay ids back to clients. Each hop adds
//! its residence to `server_ns` (docs/kernel-relay.md).

pub mod args;
pub mod balance;
pub mod config;
mod conn;
pub mod counters;
mod ends;
mod event_loop;
pub mod report;
pub mod table;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Instant;

use crate::kernel::socket::pin;
use crate::kernel::KernelError;
use crate::os::signal;

pub use args::KernelRelayArgs;
pub use config::RelayConfig;
pub use report::RelayReport;

/// The `bypass kernel-relay` command: flags -> config, relay until stopped, print the report.
pub fn run(args: KernelRelayArgs) -> ExitCode {
    let result = RelayConfig::from_args(&args).and_then(|cfg| {
        let report = relay(&cfg)?;
        let mut out = io::stdout().lock();
        let printed = if cfg.json {
            writeln!(out, "{}", report.to_json())
        } else {
            write!(out, "{}", report.human())
        };
        printed
            .and_then(|_| out.flush())
            .map_err(|e| KernelError::Io(format!("stdout: {e}")))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bypass kernel-relay: {e}");
            match e {
                KernelError::Invalid(e) => e.exit_code(),
                KernelError::Io(_) => ExitCode::FAILURE,
            }
        }
    }
}

/// Relays on the calling thread until SIGINT/SIGTERM or the configured duration.
pub fn relay(cfg: &RelayConfig) -> Result<RelayReport, KernelError> {
    signal::install_stop_handlers()
        .map_err(|e| KernelError::Io(format!("signal handlers: {e}")))?;
    if let Some(c) = cfg.cpu {
        pin(c).map_err(|e| KernelError::Io(format!("--cpus: {e}")))?;
    }
    let busy = cfg.backend == crate::options::Backend::Busy;
    let (listen, shown, unix_guard) = ends::bind_listen(&cfg.listen, busy)?;
    let up = ends::open_upstreams(&cfg.upstreams, cfg.pool, busy)?;
    let io_err = |e: io::Error| KernelError::Io(format!("relay: {e}"));
    let r = event_loop::Relay::new(cfg, listen, up).map_err(io_err)?;
    let start = Instant::now();
    {
        let mut out = io::stdout().lock();
        // The one line tests and the lab wait for: the listening socket is bound.
        let _ = writeln!(out, "ready {} {shown}", cfg.listen.proto());
        let _ = out.flush();
    }
    let o = r.run(cfg.duration.map(|d| start + d)).map_err(io_err)?;
    drop(unix_guard);
    Ok(RelayReport {
        listen: format!("{}:{shown}", cfg.listen.proto()),
        upstreams: cfg.upstreams.iter().map(|u| u.to_string()).collect(),
        proto: cfg.listen.proto(),
        upstream_proto: cfg.upstream_proto(),
        backend: cfg.backend,
        balance: cfg.balance,
        cpu: cfg.cpu,
        table: cfg.table,
        pool: cfg.pool,
        elapsed: start.elapsed(),
        counters: o.counters,
        live_at_stop: o.live_at_stop,
        refused: o.refused,
    })
}
