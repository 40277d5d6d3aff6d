//! Reads an `.hlog` interval log (the lossless format `bypass load --hlog` and `bypass floor
//! --hlog` write) back into one histogram, the sum of its intervals: rounds merge exactly,
//! where a `.hgrm` percentile text would round every value to its row.

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use super::new_latency_histogram;

/// Decodes standard base64 (with `=` padding); None on any other character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = s.trim().as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let b = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&b[..3 - pad]);
    }
    Some(out)
}

/// The sum of every interval of an interval log's text. Err names the line that is wrong.
pub fn parse(text: &str) -> Result<Histogram<u64>, String> {
    let mut sum = new_latency_histogram();
    let mut intervals = 0;
    let mut de = Deserializer::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        // Comments, the header lines and the CSV legend carry no histogram.
        if t.is_empty() || t.starts_with('#') || t.starts_with('"') || t.starts_with("StartTime") {
            continue;
        }
        let payload = t
            .rsplit(',')
            .next()
            .ok_or_else(|| format!("line {}: no payload", i + 1))?;
        let bytes = base64_decode(payload)
            .ok_or_else(|| format!("line {}: payload is not base64", i + 1))?;
        let h: Histogram<u64> = de
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("line {}: not a histogram: {e:?}", i + 1))?;
        sum.add(&h)
            .map_err(|e| format!("line {}: cannot add: {e:?}", i + 1))?;
        intervals += 1;
    }
    if intervals == 0 {
        return Err("no interval in the log".into());
    }
    Ok(sum)
}

pub fn read_file(path: &std::path::Path) -> Result<Histogram<u64>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::HlogWriter;
    use std::time::SystemTime;

    #[test]
    fn sums_the_intervals_exactly() {
        let mut a = new_latency_histogram();
        let mut b = new_latency_histogram();
        for v in 1..=1000u64 {
            a.record(v * 37).unwrap();
            b.record(v * 1001).unwrap();
        }
        let mut log = HlogWriter::new(Vec::new(), SystemTime::now()).unwrap();
        log.write_comment("two intervals").unwrap();
        log.write_interval(None, 0.0, 1.0, &a).unwrap();
        log.write_interval(Some("x"), 1.0, 1.0, &b).unwrap();
        let text = String::from_utf8(log.into_inner().unwrap()).unwrap();
        let sum = parse(&text).unwrap();
        let mut want = a.clone();
        want.add(&b).unwrap();
        assert_eq!(sum.len(), 2000);
        for q in [0.0, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(sum.value_at_quantile(q), want.value_at_quantile(q), "q {q}");
        }
    }

    #[test]
    fn base64_round_trips_and_refuses_junk() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert!(base64_decode("TQ=").is_none());
        assert!(base64_decode("T!==").is_none());
        assert!(parse("#[comment only]\n").is_err());
        assert!(
            parse("0.000,1.000,0.001,TWFu\n").is_err(),
            "not a histogram"
        );
    }
}
