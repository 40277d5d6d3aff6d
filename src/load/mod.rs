//! `bypass load`: the latency client. Sends RPC requests (docs/protocol.md)
//! closed-loop (a window in flight) or open-loop (a rate, fixed or Poisson),
//! matches replies by `request_id`, and reports coordinated-omission
//! corrected and uncorrected round trips, the server's residence time and
//! loss accounting. Transports: kernel UDP, TCP and unix-domain streams, or an EAL port of
//! the client's own (`dpdk`). `--rates` sweeps the open-loop rate (the latency-versus-load curve).

pub mod args;
pub mod config;
pub mod dpdk;
mod engine;
pub mod report;
pub mod schedule;
pub mod stream;
pub mod sweep;
pub mod transport;

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

pub use crate::os::Clock;
pub use args::{Arrival, LoadArgs, MethodArg, Transport, WaitMode};
pub use config::{LoadConfig, LoadModel, RequestMethod};
pub use report::{Counters, IntervalRow, Report};
pub use schedule::Schedule;
pub use sweep::RateSweep;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// A configuration value is wrong; `flag` names the command-line flag.
    Invalid { flag: &'static str, msg: String },
    /// The socket or an output file failed.
    Io(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Invalid { flag, msg } => write!(f, "{flag}: {msg}"),
            LoadError::Io(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Runs one measurement with a calibrated [`Clock`] and returns what it saw.
pub fn run_with(config: &LoadConfig) -> Result<Report, LoadError> {
    config.validate()?;
    let transport = transport::open(config)?;
    engine::run(config, Clock::new(), transport)
}

/// Like [`run_with`] with a given clock (e.g. [`Clock::monotonic`]).
pub fn run_with_clock(config: &LoadConfig, clock: Clock) -> Result<Report, LoadError> {
    config.validate()?;
    let transport = transport::open(config)?;
    engine::run(config, clock, transport)
}

fn write_file(
    path: &Path,
    f: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), LoadError> {
    let err = |e: std::io::Error| LoadError::Io(format!("{}: {e}", path.display()));
    let mut w = BufWriter::new(File::create(path).map_err(err)?);
    f(&mut w).map_err(err)?;
    w.flush().map_err(err)
}

/// Writes every output file `args` asks for.
pub fn write_outputs(args: &LoadArgs, report: &Report) -> Result<(), LoadError> {
    if let Some(p) = &args.json {
        write_file(p, |w| report.write_json(w))?;
    }
    if let Some(p) = &args.csv {
        write_file(p, |w| report.write_csv(w))?;
    }
    if let Some(p) = &args.hgrm {
        write_file(p, |w| report.write_hgrm(w))?;
    }
    if let Some(p) = &args.hlog {
        write_file(p, |w| report.write_hlog(w).map(|_| ()))?;
    }
    Ok(())
}

/// The `bypass load` command: validate, run (one run or a `--rates` sweep), print, write files.
pub fn run(args: LoadArgs) -> ExitCode {
    let result = args.to_config().and_then(|cfg| match args.rate_sweep()? {
        Some(sweep) => sweep::run(&args, &cfg, &sweep),
        None => run_with(&cfg).and_then(|report| {
            print!("{}", report.human_summary());
            write_outputs(&args, &report)
        }),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ LoadError::Invalid { .. }) => {
            eprintln!("bypass load: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("bypass load: {e}");
            ExitCode::FAILURE
        }
    }
}
