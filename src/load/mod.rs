//! `bypass load`: the latency client. Sends RPC requests (docs/protocol.md)
//! closed-loop (a window in flight) or open-loop (a rate, fixed or Poisson),
//! matches replies by `request_id`, and reports coordinated-omission
//! corrected and uncorrected round trips, the server's residence time and
//! loss accounting. Transports: kernel UDP, TCP and unix-domain streams, or an EAL port of
//! the client's own (`dpdk`). `--rates` sweeps the open-loop rate (the latency-versus-load curve).

#![forbid(unsafe_code)]

pub mod args;
pub mod config;
pub mod dpdk;
mod engine;
pub mod fanout;
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

pub use crate::options::{RateSweep, WaitMode};
pub use crate::os::Clock;
pub use args::{Arrival, LoadArgs, MethodArg, Transport};
pub use config::{LoadConfig, LoadModel, LoadPlan, Outputs, RequestMethod};
pub use report::{Counters, IntervalRow, Report};
pub use schedule::Schedule;

use crate::options::FieldError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// A configuration value is wrong; the field is the command-line flag.
    Invalid(FieldError),
    /// The socket or an output file failed.
    Io(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `--flag: why`, the form the tests and the lab read on stderr.
            LoadError::Invalid(e) => write!(f, "{}: {}", e.field, e.message),
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
    write_files(&args.outputs(), report)
}

/// Writes every file of `out` for one run.
pub fn write_files(out: &Outputs, report: &Report) -> Result<(), LoadError> {
    if let Some(p) = &out.json {
        write_file(p, |w| report.write_json(w))?;
    }
    if let Some(p) = &out.csv {
        write_file(p, |w| report.write_csv(w))?;
    }
    if let Some(p) = &out.hgrm {
        write_file(p, |w| report.write_hgrm(w))?;
    }
    if let Some(p) = &out.hlog {
        write_file(p, |w| report.write_hlog(w).map(|_| ()))?;
    }
    Ok(())
}

/// The `bypass load` command: flags -> plan, run (one run or a `--rates` sweep), print,
/// write files.
pub fn run(args: LoadArgs) -> ExitCode {
    let result = LoadPlan::from_args(&args).and_then(|plan| match &plan.sweep {
        Some(sweep) => sweep::run(&plan.outputs, &plan.config, sweep),
        None => run_with(&plan.config).and_then(|report| {
            print!("{}", report.human_summary());
            write_files(&plan.outputs, &report)
        }),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(LoadError::Invalid(e)) => {
            eprintln!("bypass load: {}: {}", e.field, e.message);
            e.exit_code()
        }
        Err(e) => {
            eprintln!("bypass load: {e}");
            ExitCode::FAILURE
        }
    }
}
