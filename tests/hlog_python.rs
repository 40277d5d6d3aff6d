//! Interop check: the PyPI `hdrhistogram` reader (`hdrh.log.HistogramLogReader`)
//! must decode our interval log to the histograms we wrote.
//! Skips (with a printed reason) only when python3 or the `hdrh` module is absent;
//! CI installs it with `pip install hdrhistogram`.
#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

use hdrhistogram::Histogram;
use serde_json::Value;

fn python_with_hdrh() -> Result<(), String> {
    match Command::new("python3")
        .args(["-c", "import hdrh.log"])
        .output()
    {
        Err(e) => Err(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Err(format!(
            "python3 lacks the hdrh module (pip install hdrhistogram): {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Ok(_) => Ok(()),
    }
}

fn assert_stats(what: &str, got: &Value, h: &Histogram<u64>) {
    assert_eq!(got["count"], h.len(), "{what} count");
    assert_eq!(got["max"], h.max(), "{what} max");
    assert_eq!(got["min"], h.min(), "{what} min");
    for (key, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)] {
        assert_eq!(got[key], h.value_at_percentile(p), "{what} {key}");
    }
}

#[test]
fn python_reader_decodes_our_hlog() {
    if let Err(reason) = python_with_hdrh() {
        println!("SKIPPED python_reader_decodes_our_hlog: {reason}");
        return;
    }
    let path = common::write_log("python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_hlog.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "check_hlog.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();

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
