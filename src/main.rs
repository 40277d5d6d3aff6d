//! The `bypass` command line: parses, builds a configuration, dispatches. Nothing else.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use bypass::options::EXIT_INVALID;
use bypass::server::args::ServeArgs;
use bypass::server::config::ServeConfig;
use bypass::server::{self, ServeError};

#[derive(Parser)]
#[command(
    name = "bypass",
    version,
    about = "DPDK kernel-bypass RPC fast path and latency lab"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the fast path: poll-mode workers on EAL lcores. EAL arguments follow `--`.
    Serve(ServeArgs),
    /// Measure round trips against an RPC server (kernel UDP, TCP, unix sockets or a DPDK port).
    Load(bypass::load::LoadArgs),
    /// Run a lab scenario: every server path side by side, same clients, in network
    /// namespaces; writes results.json, .hgrm files, SVG plots and report.md.
    /// Exit status: 0 if every path ran or was skipped, 1 if any path failed or a prerequisite
    /// is missing, 2 for a broken scenario (refused before anything is created), 130 after
    /// Ctrl-C.
    Lab(bypass::lab::LabArgs),
    /// Probe each CPU for the time the platform takes from it (sysjitter-style gaps), who else
    /// ran there, and what an open-loop client would see from it alone.
    Noise(bypass::noise::NoiseArgs),
    /// The shared-memory ping-pong floor between two pinned threads: the limit of IPC here.
    Floor(bypass::noise::FloorArgs),
    /// The syscall tax: ns per no-op system call and per loopback UDP / unix send+recv pair.
    Syscalls(bypass::noise::SyscallsArgs),
    /// Kernel-stack baseline RPC servers (udp, tcp, unix sockets) speaking the same protocol.
    KernelServe(bypass::kernel::KernelServeArgs),
    /// A user-space RPC proxy over kernel sockets (one epoll thread, udp/tcp/unix on either
    /// side): the sidecar baseline for call chains.
    KernelRelay(bypass::kernel::KernelRelayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Load(args) => bypass::load::run(args),
        Command::Lab(args) => bypass::lab::run(args),
        Command::KernelServe(args) => bypass::kernel::run(args),
        Command::KernelRelay(args) => bypass::kernel::relay::run(args),
        Command::Noise(args) => bypass::noise::run_noise(args),
        Command::Floor(args) => bypass::noise::run_floor(args),
        Command::Syscalls(args) => bypass::noise::run_syscalls(args),
        Command::Serve(args) => serve(args),
    }
}

/// `bypass serve`: flags (over the TOML file) -> config -> the fast path.
fn serve(args: ServeArgs) -> ExitCode {
    let result = ServeConfig::from_args(args)
        .map_err(ServeError::Config)
        .and_then(|(cfg, eal)| server::serve(&cfg, &eal));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bypass serve: {e}");
            match e {
                ServeError::Config(_) => ExitCode::from(EXIT_INVALID),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
