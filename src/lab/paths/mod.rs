//! How each kind of path starts its server and runs its client. One file per kind; the clients
//! (bypass load, sockperf) are shared.

pub mod chain;
pub mod client;
pub mod fastpath;
pub mod kernel;
pub mod limit;
pub mod memif;
pub mod throughput;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::proc::{Proc, Waited};
use super::results::PathResult;
use super::scenario::{LabPlan, PathKind, PlanMode, ResolvedPath};
use super::topology::Topology;
use crate::contract::{last_final, Kept};

/// What every path needs to run.
pub struct Ctx<'a> {
    pub bin: PathBuf,
    pub plan: &'a LabPlan,
    /// Results folder: .hgrm, client JSON files.
    pub out: &'a Path,
    /// Scratch folder: sockets, pcap files.
    pub run_dir: &'a Path,
    /// The round being run (1-based) of a repeated path; its files carry `-r<round>`.
    pub round: Option<u32>,
}

impl Ctx<'_> {
    /// The stem of this run's files: `<path>` or `<path>-r<round>`.
    pub fn stem(&self, path: &ResolvedPath) -> String {
        match self.round {
            Some(r) => format!("{}-r{r}", path.name),
            None => path.name.clone(),
        }
    }
}

/// How a path ended when it did not measure.
#[derive(Debug)]
pub enum PathError {
    Failed(String),
}

/// A failure while the lab is stopping is read as the interrupt's, in one place: the
/// runner's `status_of`.
impl From<String> for PathError {
    fn from(s: String) -> Self {
        PathError::Failed(s)
    }
}

impl From<&str> for PathError {
    fn from(s: &str) -> Self {
        PathError::from(s.to_string())
    }
}

/// Runs one path, filling `res`.
pub fn run(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: Option<&Topology>,
    res: &mut PathResult,
) -> Result<(), PathError> {
    if path.kind == PathKind::Limit {
        return limit::run(ctx, path, res);
    }
    let topo = topo.ok_or("this path has no topology")?;
    match path.kind {
        PathKind::KernelServe => kernel::run(ctx, path, topo, res),
        PathKind::Fastpath => fastpath::run(ctx, path, topo, res),
        PathKind::FastpathMemif => memif::run(ctx, path, topo, res),
        PathKind::Throughput => throughput::run(ctx, path, topo, res),
        PathKind::Chain => chain::run(ctx, path, topo, res),
        PathKind::Limit => limit::run(ctx, path, res),
    }
}

/// The longest a server may live: the plan plus generous slack, so a lab killed by SIGKILL
/// leaves no server running for long.
pub fn server_cap_secs(path: &ResolvedPath) -> f64 {
    let points = match path.mode {
        PlanMode::Sweep => path.rates.len().max(1) as f64,
        _ => 1.0,
    };
    (points * (path.duration + path.warmup + 5.0) * 2.0 + 60.0).ceil()
}

/// Stops a server with SIGINT and returns its final report, read as its contract `T`.
pub fn stop_server<T: DeserializeOwned>(server: &mut Proc) -> Result<Kept<T>, String> {
    let w = server.stop(Duration::from_secs(10));
    let last = last_final::<T>(&server.stdout);
    match (w, last) {
        (Waited::Exited(0), Some(v)) => v.map_err(|e| format!("{}: {e}", server.what)),
        (Waited::Exited(0), None) => Err(format!("{} printed no final report", server.what)),
        (Waited::TimedOut, _) => Err(format!(
            "{} did not exit within 10 s of SIGINT and was killed; no final report",
            server.what
        )),
        (Waited::Exited(c), _) if c < 0 => Err(format!(
            "{} died of signal {} when asked to stop; no final report. stderr: {}",
            server.what,
            -c,
            server.stderr_tail(4)
        )),
        (w, _) => Err(format!(
            "{} did not stop cleanly ({w:?}): {}",
            server.what,
            server.stderr_tail(6)
        )),
    }
}

/// Formats an argv for the report.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
