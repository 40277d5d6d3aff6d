//! Interop check: the PyPI `hdrhistogram` reader (`hdrh.log.HistogramLogReader`)
//! must decode our interval log to the histograms we wrote.
//! Skips (with a printed reason) only when python3 or the `hdrh` module is absent;
//! CI installs it with `pip install hdrhistogram`.
#![forbid(unsafe_code)]

mod common;
mod support;

use hdrhistogram::Histogram;
use serde_json::Value;
use support::read_hlog_with_python;

/// The interop statistics, and `min`, which the python reader reports too.
fn assert_stats(what: &str, got: &Value, h: &Histogram<u64>) {
    common::assert_stats(what, got, h);
    assert_eq!(got["min"], h.min(), "{what} min");
}

#[test]
fn python_reader_decodes_our_hlog() {
    let path = common::write_log("python");
    let got = read_hlog_with_python(&path);
    let _ = std::fs::remove_file(&path);
    let got = match got {
        Ok(got) => got,
        Err(reason) => {
            println!("SKIPPED python_reader_decodes_our_hlog: {reason}");
            return;
        }
    };

    assert_eq!(got["start_time_sec"], common::START_MS as f64 / 1000.0);
    let expected = common::intervals();
    let seen = got["intervals"].as_array().unwrap();
    assert_eq!(seen.len(), expected.len());
    for (g, e) in seen.iter().zip(&expected) {
        assert_eq!(g["tag"], e.tag.unwrap_or(""));
        // Relative offsets are resolved against StartTime by the reader.
        let start_ms = common::START_MS + (e.offset_secs * 1000.0).round() as u64;
        let end_ms = start_ms + (e.length_secs * 1000.0).round() as u64;
        assert_eq!(g["start_ms"], start_ms);
        assert_eq!(g["end_ms"], end_ms);
        assert_eq!(g["count"], e.hist.len());
        assert_eq!(g["max"], e.hist.max());
    }
    assert_stats("all", &got["all"], &common::merged(|_| true));
    assert_stats(
        "untagged",
        &got["tags"][""],
        &common::merged(|t| t.is_none()),
    );
    assert_stats(
        "bulk",
        &got["tags"]["bulk"],
        &common::merged(|t| t == Some("bulk")),
    );
}
