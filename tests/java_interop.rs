//! Interop checks against the real Java HdrHistogram (Debian
//! `libhdrhistogram-java`, 2.1.11) via `scripts/hdrtool/HdrTool.java`:
//! - `.hgrm` output on many pseudo-random data sets, byte for byte;
//! - our `.hlog` decoded by Java's `HistogramLogReader`;
//! - our `.hlog` header/line text against Java's `HistogramLogWriter`.
//!
//! Skips (with a printed reason) when java/javac or the jar is missing:
//! `apt-get install -y default-jdk-headless libhdrhistogram-java`.
//! `HDRHISTOGRAM_JAR` overrides the jar location.
#![forbid(unsafe_code)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use bypass::stats::{new_latency_histogram, percentile_distribution_string, HlogWriter};
use hdrhistogram::Histogram;
use serde_json::Value;

fn jar() -> PathBuf {
    std::env::var_os("HDRHISTOGRAM_JAR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/java/hdrhistogram.jar"))
}

/// Compile HdrTool once per test binary; `Err` carries the skip reason.
fn tool_classes() -> &'static Result<PathBuf, String> {
    static CLASSES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        if !jar().is_file() {
            return Err(format!("{} not found", jar().display()));
        }
        let dir = std::env::temp_dir().join(format!("bypass-hdrtool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hdrtool/HdrTool.java");
        let out = Command::new("javac")
            .arg("-cp")
            .arg(jar())
            .arg("-d")
            .arg(&dir)
            .arg(&src)
            .output()
            .map_err(|e| format!("javac not runnable: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "javac failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(dir)
    })
}

fn run_java(args: &[&str], stdin: &str) -> Option<String> {
    let classes = match tool_classes() {
        Ok(c) => c,
        Err(reason) => {
            println!("SKIPPED java interop: {reason}");
            return None;
        }
    };
    let cp = format!("{}:{}", jar().display(), classes.display());
    // Our writer renders StartTime dates in UTC; pin Java's default zone to match.
    let mut child = Command::new("java")
        .arg("-Duser.timezone=UTC")
        .arg("-cp")
        .arg(cp)
        .arg("HdrTool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java runs when javac did");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_string();
    let feeder = std::thread::spawn(move || input.write_all(data.as_bytes()));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "HdrTool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// SplitMix64: deterministic, dependency-free data generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Data sets as (value, count) pairs, covering empty, tiny, heavy-tailed and
/// high-count shapes.
fn data_sets(seed: u64, n: usize) -> Vec<Vec<(u64, u64)>> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let samples = match i % 5 {
                0 => rng.below(4),
                1 => rng.below(50),
                _ => rng.below(3_000) + 1,
            };
            let shape = rng.below(4);
            (0..samples)
                .map(|_| {
                    let v = match shape {
                        0 => {
                            let magnitude = rng.below(11) as u32;
                            rng.below(10u64.pow(magnitude) + 1)
                        }
                        1 => (1_000.0 / (rng.unit() + 1e-9).powf(1.3)) as u64,
                        2 => 2_000 + rng.below(300) + if rng.below(20) == 0 { 80_000 } else { 0 },
                        _ => (5_000.0 * (-(rng.unit() + 1e-12).ln())) as u64,
                    };
                    let c = if rng.below(50) == 0 {
                        rng.below(1_000_000) + 1
                    } else {
                        1
                    };
                    (v.min(59_999_999_999), c)
                })
                .collect()
        })
        .collect()
}

fn histogram_of(pairs: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = new_latency_histogram();
    for &(v, c) in pairs {
        h.record_n(v, c).unwrap();
    }
    h
}

#[test]
fn hgrm_matches_java_on_random_data() {
    for (ticks, scaling, seed) in [
        (5u32, 1000.0, 1u64),
        (1, 1.0, 2),
        (7, 3.0, 3),
        (5, 1e6, 4),
        (3, 0.7, 5),
    ] {
        let sets = data_sets(seed, 30);
        let input: Vec<String> = sets
            .iter()
            .map(|s| s.iter().map(|(v, c)| format!("{v} {c}\n")).collect())
            .collect();
        let Some(java) = run_java(
            &["hgrm-multi", &ticks.to_string(), &scaling.to_string()],
            &input.join("---\n"),
        ) else {
            return;
        };
        let outputs: Vec<&str> = java.split("---\n").collect();
        assert_eq!(outputs.len(), sets.len());
        for (i, (set, want)) in sets.iter().zip(outputs).enumerate() {
            let got = percentile_distribution_string(&histogram_of(set), ticks, scaling).unwrap();
            if got != want {
                let line = got
                    .lines()
                    .zip(want.lines())
                    .position(|(g, w)| g != w)
                    .map_or("line count".to_string(), |l| format!("line {}", l + 1));
                panic!("ticks {ticks} scaling {scaling} set {i}: differs at {line}\n--- got\n{got}\n--- java\n{want}");
            }
        }
    }
}

#[test]
fn java_reader_decodes_our_hlog() {
    let path = common::write_log("java");
    let result = run_java(&["hlog-read", path.to_str().unwrap()], "");
    let _ = std::fs::remove_file(&path);
    let Some(out) = result else { return };
    let got: Value = serde_json::from_str(out.trim()).unwrap();
    let expected = common::intervals();
    assert_eq!(got["intervals"], expected.len());
    assert_eq!(got["start_time_sec"], common::START_MS as f64 / 1000.0);
    let spans = got["interval_ms"].as_array().unwrap();
    for (span, e) in spans.iter().zip(&expected) {
        let start_ms = common::START_MS + (e.offset_secs * 1000.0).round() as u64;
        assert_eq!(span[0], start_ms);
        assert_eq!(span[1], start_ms + (e.length_secs * 1000.0).round() as u64);
    }
    common::assert_stats("all", &got["all"], &common::merged(|_| true));
    common::assert_stats(
        "untagged",
        &got["tags"][""],
        &common::merged(|t| t.is_none()),
    );
    common::assert_stats(
        "bulk",
        &got["tags"]["bulk"],
        &common::merged(|t| t == Some("bulk")),
    );
}

#[test]
fn hlog_text_matches_java_writer() {
    let values: Vec<u64> = (1..=1_000u64).map(|v| v * 1_000).collect();
    let input: String = values.iter().map(|v| format!("{v}\n")).collect();
    let Some(java) = run_java(&["hlog-write", &common::START_MS.to_string()], &input) else {
        return;
    };
    let mut w =
        HlogWriter::with_base_time(Vec::new(), common::start_time(), common::start_time()).unwrap();
    w.write_interval(
        Some("t"),
        0.0,
        1.5,
        &histogram_of(&values.iter().map(|&v| (v, 1)).collect::<Vec<_>>()),
    )
    .unwrap();
    let ours = String::from_utf8(w.into_inner().unwrap()).unwrap();
    let (ours_lines, java_lines): (Vec<&str>, Vec<&str>) =
        (ours.lines().collect(), java.lines().collect());
    assert_eq!(ours_lines.len(), java_lines.len());
    assert_eq!(ours_lines[..4], java_lines[..4]);
    // Interval metadata columns are identical; the DEFLATE payload bytes may
    // differ between zlib implementations, so only its V2 prefix is compared.
    let prefix = |l: &str| l.splitn(5, ',').take(4).collect::<Vec<_>>().join(",");
    assert_eq!(prefix(ours_lines[4]), prefix(java_lines[4]));
    assert_eq!(prefix(ours_lines[4]), "Tag=t,0.000,1.500,1.000");
    assert!(ours_lines[4]
        .split(',')
        .nth(4)
        .unwrap()
        .starts_with("HISTF"));
}
