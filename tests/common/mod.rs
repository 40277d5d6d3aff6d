//! Shared pieces of the interval-log interop tests: one known log, written by
//! our `HlogWriter`, and the statistics any correct reader must recover.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bypass::stats::{new_latency_histogram, HlogWriter};
use hdrhistogram::Histogram;

/// 2024-06-01T12:04:05.123Z
pub const START_MS: u64 = 1_717_243_445_123;

pub struct Interval {
    pub tag: Option<&'static str>,
    pub offset_secs: f64,
    pub length_secs: f64,
    pub hist: Histogram<u64>,
}

pub fn intervals() -> Vec<Interval> {
    let mut out = Vec::new();
    for i in 0..3u64 {
        let mut rpc = new_latency_histogram();
        let mut bulk = new_latency_histogram();
        for v in 0..1_000u64 {
            rpc.record(1_000 + v * 3 + i * 100).unwrap();
            bulk.record(50_000 + v * 97).unwrap();
        }
        rpc.record_n(250_000 * (i + 1), 5).unwrap();
        bulk.record(1_500_000_000).unwrap();
        out.push(Interval {
            tag: None,
            offset_secs: i as f64,
            length_secs: 1.0,
            hist: rpc,
        });
        out.push(Interval {
            tag: Some("bulk"),
            offset_secs: i as f64 + 0.25,
            length_secs: 0.5,
            hist: bulk,
        });
    }
    out
}

pub fn start_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(START_MS)
}

/// Write the known log to a fresh temp file and return its path.
pub fn write_log(name: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("bypass-stats-{}-{}.hlog", name, std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let mut w = HlogWriter::new(std::io::BufWriter::new(file), start_time()).unwrap();
    w.write_comment("written by bypass::stats tests").unwrap();
    for iv in intervals() {
        w.write_interval(iv.tag, iv.offset_secs, iv.length_secs, &iv.hist)
            .unwrap();
    }
    w.into_inner().unwrap();
    path
}

/// Merge the intervals whose tag satisfies `pick`.
pub fn merged(pick: impl Fn(Option<&str>) -> bool) -> Histogram<u64> {
    let mut h = new_latency_histogram();
    for iv in intervals().iter().filter(|iv| pick(iv.tag)) {
        h.add(&iv.hist).unwrap();
    }
    h
}

/// A reader's statistics of one histogram (`count`, `max`, `p50` .. `p999` in a JSON object)
/// equal ours.
pub fn assert_stats(what: &str, got: &serde_json::Value, h: &Histogram<u64>) {
    assert_eq!(got["count"], h.len(), "{what} count");
    assert_eq!(got["max"], h.max(), "{what} max");
    for (key, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9)] {
        assert_eq!(got[key], h.value_at_percentile(p), "{what} {key}");
    }
}
