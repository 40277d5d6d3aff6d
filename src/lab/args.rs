//! `bypass lab`'s command line (clap only, a leaf): the scenario file, the results folder, or
//! two earlier runs to compare. The scenario itself is TOML, read and resolved into a plan by
//! scenario.rs.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::Args;

/// `bypass lab`: measure every path of a scenario and write a report.
///
/// Exit status: 0 when every path ran, 1 when any path failed or a prerequisite is missing, 2
/// for a broken scenario (nothing is created then), 130 after Ctrl-C or SIGTERM, whenever it
/// arrives (everything is still cleaned up; results.json says which paths ran).
#[derive(Debug, Clone, Args)]
pub struct LabArgs {
    /// Scenario TOML file (default: configs/lab-default.toml).
    pub scenario: Option<PathBuf>,
    /// Results folder (default: lab-results/<YYYYmmdd-HHMMSS>/ under the current folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Compare two earlier runs instead of measuring: prints, as markdown on stdout, each path's
    /// p50 / p99 / p99.9 in both, new/old from their rounds, and a verdict line per figure.
    #[arg(long, num_args = 2, value_names = ["OLD_DIR", "NEW_DIR"])]
    pub compare: Option<Vec<PathBuf>>,
}
