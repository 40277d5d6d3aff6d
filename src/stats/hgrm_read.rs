//! Reads a `.hgrm` percentile distribution (Java HdrHistogram text, values in microseconds)
//! back into a nanosecond histogram, so every path's curve in the plot comes from the same
//! file the user gets, whichever client wrote it.

use hdrhistogram::Histogram;

use super::new_latency_histogram;

/// One row: value (us), quantile (0..=1), cumulative count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub value_us: f64,
    pub quantile: f64,
    pub total: u64,
}

/// The rows of an .hgrm text, and the footer's total count. Err names the line that is wrong.
pub fn parse(text: &str) -> Result<(Vec<Row>, u64), String> {
    let mut rows = Vec::new();
    let mut total = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("Value") {
            continue;
        }
        if let Some(rest) = t.strip_prefix("#[Max") {
            let n = rest
                .split("Total count")
                .nth(1)
                .and_then(|s| {
                    s.trim_start_matches([' ', '='])
                        .trim_end_matches(']')
                        .trim()
                        .parse()
                        .ok()
                })
                .ok_or_else(|| format!("line {}: bad footer {t:?}", i + 1))?;
            total = Some(n);
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = t.split_whitespace().collect();
        let bad = || format!("line {}: not an .hgrm row: {t:?}", i + 1);
        if f.len() < 3 {
            return Err(bad());
        }
        let row = Row {
            value_us: f[0].parse().map_err(|_| bad())?,
            quantile: f[1].parse().map_err(|_| bad())?,
            total: f[2].parse().map_err(|_| bad())?,
        };
        if !(0.0..=1.0).contains(&row.quantile) || !row.value_us.is_finite() || row.value_us < 0.0 {
            return Err(bad());
        }
        if let Some(prev) = rows.last() {
            let prev: &Row = prev;
            if row.total < prev.total || row.quantile < prev.quantile {
                return Err(format!(
                    "line {}: counts or percentiles go backwards",
                    i + 1
                ));
            }
        }
        rows.push(row);
    }
    let total = total.ok_or("no `#[Max ..., Total count ...]` footer")?;
    if rows.last().map_or(0, |r| r.total) != total {
        return Err(format!(
            "rows count {} samples, the footer {total}",
            rows.last().map_or(0, |r| r.total)
        ));
    }
    Ok((rows, total))
}

/// A histogram holding each row's new samples at the row's value: its percentiles at the
/// rows' levels equal the file's.
pub fn to_histogram(rows: &[Row]) -> Histogram<u64> {
    let mut h = new_latency_histogram();
    let mut prev = 0;
    for r in rows {
        let n = r.total - prev;
        prev = r.total;
        if n > 0 {
            let ns = (r.value_us * 1000.0).round().max(1.0) as u64;
            // A value beyond the histogram's range (60 s) is clamped rather than lost.
            let ns = ns.min(h.high());
            let _ = h.record_n(ns, n);
        }
    }
    h
}

pub fn read_file(path: &std::path::Path) -> Result<Histogram<u64>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (rows, _) = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(to_histogram(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::percentile_distribution_string;

    #[test]
    fn round_trips_through_the_writer() {
        let mut h = new_latency_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 100).unwrap();
        }
        let text = percentile_distribution_string(&h, 5, 1000.0).unwrap();
        let (rows, total) = parse(&text).unwrap();
        assert_eq!(total, 10_000);
        let back = to_histogram(&rows);
        assert_eq!(back.len(), 10_000);
        for q in [0.5, 0.9, 0.99] {
            let (a, b) = (
                h.value_at_quantile(q) as f64,
                back.value_at_quantile(q) as f64,
            );
            assert!((a - b).abs() / a < 0.01, "q {q}: {a} vs {b}");
        }
        assert!((back.max() as f64 - h.max() as f64).abs() / (h.max() as f64) < 0.01);
    }

    #[test]
    fn refuses_broken_files() {
        assert!(parse("").is_err());
        assert!(parse("       1.000 0.5 3 2.0\n").is_err(), "no footer");
        assert!(parse("abc def ghi\n#[Max = 1, Total count = 1]\n").is_err());
    }
}
