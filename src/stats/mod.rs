//! Latency statistics: HdrHistogram helpers and writers for the text formats
//! latency tooling expects (Java-compatible `.hgrm` percentile distributions
//! and `.hlog` interval logs).
//!
//! All values are nanoseconds recorded into `hdrhistogram::Histogram<u64>`; each format's
//! reader sits beside its writer.

#![forbid(unsafe_code)]

mod hgrm;
pub mod hgrm_read;
mod histogram;
mod hlog;
pub mod hlog_read;
pub mod interval;
mod javafmt;

pub use hgrm::{
    percentile_distribution_string, percentile_rows, write_percentile_distribution, PercentileRow,
};
pub use histogram::{
    new_latency_histogram, Summary, TailPercentile, HIGHEST_TRACKABLE_NS, LOWEST_DISCERNIBLE_NS,
    LOW_SAMPLES_THRESHOLD, SIGNIFICANT_DIGITS,
};
pub use hlog::{HlogWriter, DEFAULT_MAX_VALUE_UNIT_RATIO};
