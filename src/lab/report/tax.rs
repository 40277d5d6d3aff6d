//! The table report.md opens with: the article's claims, the figures this run measured for
//! them with their intervals, and the ratio (src/lab/tax.rs computes the rows).

use std::fmt::Write as _;

use super::cell;
use crate::lab::results::LabResults;
use crate::lab::tax::fmt_measured;
use crate::stats::interval::fmt_ratio;

pub fn section(s: &mut String, r: &LabResults) {
    if r.ipc_tax.is_empty() {
        return;
    }
    let _ = writeln!(s, "## The IPC tax, measured on this machine\n");
    let _ = writeln!(
        s,
        "Each claim of the \"IPC tax\" argument next to what this run measured: the median \
         over rounds (or batches) with its interval, and measured / published. A published \
         figure comes from another machine, another load and often another percentile; the \
         ratio says how far this machine is from it, not who is right. A row this scenario \
         did not measure says which one does.\n"
    );
    let _ = writeln!(
        s,
        "| claim | published | measured here | here / published | from |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---|");
    for row in &r.ipc_tax {
        let measured = row
            .measured
            .as_ref()
            .map_or_else(|| "not measured".to_string(), fmt_measured);
        let ratio = row
            .ratio
            .map_or(String::new(), |x| format!("{}x", fmt_ratio(x)));
        let from = match &row.measured {
            Some(m) => format!("{}; {}", row.note, m.how),
            None => row.note.clone(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            cell(&row.claim),
            cell(&row.published),
            cell(&measured),
            ratio,
            cell(&from)
        );
    }
    let _ = writeln!(s);
}
