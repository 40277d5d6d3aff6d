//! The `bypass` command line: parses, builds a configuration, dispatches. Nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use bypass::server::config::{Mode, PollMode, ServeConfig, Topology};
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
}

#[derive(Args)]
struct ServeArgs {
    /// TOML settings file; command-line options override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    #[arg(long, value_enum)]
    topology: Option<Topology>,
    /// Ports by name or number, comma-separated (default: every port).
    #[arg(long, value_delimiter = ',')]
    ports: Option<Vec<String>>,
    /// Rx/tx queues per port (one worker lcore each).
    #[arg(long)]
    queues: Option<u16>,
    #[arg(long)]
    rx_desc: Option<u16>,
    #[arg(long)]
    tx_desc: Option<u16>,
    /// Packets per rx burst.
    #[arg(long)]
    burst: Option<u16>,
    /// Most packets per graph dispatch (rpc mode).
    #[arg(long)]
    vector: Option<u16>,
    /// IPv4 address the fast path answers for (rpc mode).
    #[arg(long)]
    ip: Option<String>,
    /// MAC address answered for (default: the port's).
    #[arg(long)]
    mac: Option<String>,
    #[arg(long)]
    rpc_port: Option<u16>,
    #[arg(long)]
    sockperf_port: Option<u16>,
    /// Longest spin a request may ask for, in ns.
    #[arg(long)]
    spin_max_ns: Option<u32>,
    /// Write service-time histograms to this HdrHistogram interval log (rpc mode).
    #[arg(long)]
    hlog: Option<String>,
    /// Buffers in the packet pool.
    #[arg(long)]
    mbufs: Option<u32>,
    #[arg(long, value_enum)]
    poll_mode: Option<PollMode>,
    /// Packets each port sends at start (primes loopback topologies).
    #[arg(long)]
    tx_first: Option<u32>,
    /// Seconds to run, then stop by itself (0: until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// Milliseconds between report lines.
    #[arg(long)]
    interval_ms: Option<u64>,
    /// JSON lines on stdout (one per interval, one final) instead of human text.
    #[arg(long)]
    json: bool,
    /// EAL arguments, after `--`.
    #[arg(last = true)]
    eal: Vec<String>,
}

impl ServeArgs {
    fn into_config(self) -> Result<(ServeConfig, Vec<String>), ServeError> {
        let mut c = match &self.config {
            Some(p) => ServeConfig::from_file(p)?,
            None => ServeConfig::default(),
        };
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { c.$f = v; } )* };
        }
        if self.ip.is_some() {
            c.ip = self.ip;
        }
        if self.mac.is_some() {
            c.mac = self.mac;
        }
        if self.hlog.is_some() {
            c.hlog = self.hlog;
        }
        over!(
            vector,
            rpc_port,
            sockperf_port,
            spin_max_ns,
            mode,
            topology,
            ports,
            queues,
            rx_desc,
            tx_desc,
            burst,
            mbufs,
            poll_mode,
            tx_first,
            duration,
            interval_ms
        );
        c.json |= self.json;
        Ok((c, self.eal))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::Load(args) => bypass::load::run(args),
        Command::Lab(args) => bypass::lab::run(args),
        Command::KernelServe(args) => bypass::kernel::run(args),
        Command::Noise(args) => bypass::noise::run_noise(args),
        Command::Floor(args) => bypass::noise::run_floor(args),
        Command::Syscalls(args) => bypass::noise::run_syscalls(args),
        Command::Serve(args) => {
            let result = args
                .into_config()
                .and_then(|(cfg, eal)| server::serve(&cfg, &eal));
            match result {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bypass serve: {e}");
                    match e {
                        ServeError::Config(_) => ExitCode::from(2),
                        _ => ExitCode::from(1),
                    }
                }
            }
        }
    }
}
