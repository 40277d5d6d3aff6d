//! The platform's own measurements (issue 9): `bypass noise` (a sysjitter-style probe of the
//! gaps each CPU loses, and what an open-loop client would see from them), `bypass floor` (the
//! shared-memory round trip no IPC on this machine can beat) and `bypass syscalls` (the cost of a
//! no-op system call and of a loopback send+recv pair).
#![forbid(unsafe_code)]

pub mod args;
pub mod cpus;
pub mod floor;
pub mod model;
pub mod output;
pub mod probe;
pub mod report;
pub mod syscalls;
pub mod tasks;

use std::fmt;
use std::process::ExitCode;

use crate::options::{FieldError, EXIT_INVALID};

pub use args::{FloorArgs, FloorMode, NoiseArgs, SyscallsArgs};
pub use model::{platform_model, ModelRow};
pub use probe::{Gap, GapLog};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoiseError {
    /// A command-line value is wrong; the field is the flag.
    Invalid(FieldError),
    /// The OS refused something (pinning, a socket, an output file).
    Io(String),
}

impl NoiseError {
    pub fn invalid(flag: &'static str, msg: impl Into<String>) -> NoiseError {
        NoiseError::Invalid(FieldError::new(flag, msg))
    }
}

impl fmt::Display for NoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `--flag: why`, as every program's command line says it.
            NoiseError::Invalid(e) => write!(f, "{}: {}", e.field, e.message),
            NoiseError::Io(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for NoiseError {}

/// Exit status for a program's result: 2 for bad input, 1 for anything else that failed.
fn exit(program: &str, result: Result<(), NoiseError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ NoiseError::Invalid(_)) => {
            eprintln!("bypass {program}: {e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => {
            eprintln!("bypass {program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `bypass noise`.
pub fn run_noise(args: NoiseArgs) -> ExitCode {
    exit("noise", report::run(&args))
}

/// `bypass floor`.
pub fn run_floor(args: FloorArgs) -> ExitCode {
    exit("floor", floor::run(&args))
}

/// `bypass syscalls`.
pub fn run_syscalls(args: SyscallsArgs) -> ExitCode {
    exit("syscalls", syscalls::run(&args))
}
