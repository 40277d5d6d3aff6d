//! HdrHistogram interval log (`.hlog`) writer, format version 1.3 as written
//! by Java's `HistogramLogWriter`.
//!
//! The crate's `IntervalLogWriterBuilder` is not used for the text: it writes
//! no format-version or legend line, omits the date from `StartTime`, adds a
//! non-Java `MaxValueDivisor` comment, and rounds numbers half-to-even where
//! Java rounds half-up. Only its V2 DEFLATE serializer (the payload format
//! Java, Python and other readers decode) is reused.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::{Counter, Histogram};

use super::javafmt::fixed;

/// Java's default `maxValueUnitRatio`: nanosecond histograms report the
/// `Interval_Max` column in milliseconds.
pub const DEFAULT_MAX_VALUE_UNIT_RATIO: f64 = 1_000_000.0;

const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// Writes an interval log: header on construction, then one line per interval.
pub struct HlogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    payload: Vec<u8>,
    max_value_unit_ratio: f64,
}

impl<W: Write> HlogWriter<W> {
    /// Start a log whose interval timestamps are offsets from `start_time`.
    ///
    /// Writes the version, `StartTime` and legend lines. Without a `BaseTime`
    /// line readers (Java, Python) treat timestamps far below `StartTime` as
    /// relative to it, which is what [`HlogWriter::write_interval`] produces.
    pub fn new(out: W, start_time: SystemTime) -> io::Result<Self> {
        Self::with_header(out, start_time, None)
    }

    /// Like [`HlogWriter::new`] but also writes an explicit `BaseTime` line, so
    /// interval offsets are relative to `base_time` without reader heuristics.
    pub fn with_base_time(
        out: W,
        start_time: SystemTime,
        base_time: SystemTime,
    ) -> io::Result<Self> {
        Self::with_header(out, start_time, Some(base_time))
    }

    fn with_header(
        mut out: W,
        start_time: SystemTime,
        base_time: Option<SystemTime>,
    ) -> io::Result<Self> {
        let start_ms = epoch_millis(start_time)?;
        let mut header = String::new();
        header.push_str("#[Histogram log format version 1.3]\n");
        header.push_str(&format!(
            "#[StartTime: {} (seconds since epoch), {}]\n",
            fixed(start_ms as f64 / 1000.0, 3),
            java_date_utc(start_ms)
        ));
        if let Some(base) = base_time {
            header.push_str(&format!(
                "#[BaseTime: {} (seconds since epoch)]\n",
                fixed(epoch_millis(base)? as f64 / 1000.0, 3)
            ));
        }
        header.push_str(LEGEND);
        header.push('\n');
        out.write_all(header.as_bytes())?;
        Ok(HlogWriter {
            out,
            serializer: V2DeflateSerializer::new(),
            payload: Vec::new(),
            max_value_unit_ratio: DEFAULT_MAX_VALUE_UNIT_RATIO,
        })
    }

    /// Divisor applied to the histogram max in the `Interval_Max` column
    /// (default [`DEFAULT_MAX_VALUE_UNIT_RATIO`]). The encoded histogram is
    /// always written unscaled.
    pub fn set_max_value_unit_ratio(&mut self, ratio: f64) {
        self.max_value_unit_ratio = ratio;
    }

    /// Write `#<comment>` lines (one per line of `comment`).
    pub fn write_comment(&mut self, comment: &str) -> io::Result<()> {
        for line in comment.split('\n') {
            writeln!(self.out, "#{line}")?;
        }
        Ok(())
    }

    /// Append one interval: `[Tag=<tag>,]<start>,<length>,<max>,<payload>`.
    ///
    /// `start_offset_secs` is relative to the log's base (the start time unless
    /// a base time was given). Tags may not contain commas, spaces or line
    /// breaks, which would corrupt the CSV-like line (Java rejects them too).
    pub fn write_interval<T: Counter>(
        &mut self,
        tag: Option<&str>,
        start_offset_secs: f64,
        length_secs: f64,
        hist: &Histogram<T>,
    ) -> io::Result<()> {
        if let Some(t) = tag {
            if t.is_empty() || t.contains([',', ' ', '\r', '\n']) {
                return Err(invalid(format!(
                    "tag {t:?} must be non-empty and contain no commas, spaces or line breaks"
                )));
            }
        }
        // Readers parse these columns as unsigned decimals.
        if !(start_offset_secs.is_finite() && start_offset_secs >= 0.0) {
            return Err(invalid(format!(
                "start offset {start_offset_secs} must be finite and >= 0"
            )));
        }
        if !(length_secs.is_finite() && length_secs >= 0.0) {
            return Err(invalid(format!(
                "interval length {length_secs} must be finite and >= 0"
            )));
        }
        self.payload.clear();
        self.serializer
            .serialize(hist, &mut self.payload)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))?;
        let max = if hist.is_empty() { 0 } else { hist.max() };
        let mut line = String::with_capacity(self.payload.len() * 4 / 3 + 64);
        if let Some(t) = tag {
            line.push_str("Tag=");
            line.push_str(t);
            line.push(',');
        }
        line.push_str(&fixed(start_offset_secs, 3));
        line.push(',');
        line.push_str(&fixed(length_secs, 3));
        line.push(',');
        line.push_str(&fixed(max as f64 / self.max_value_unit_ratio, 3));
        line.push(',');
        base64_into(&self.payload, &mut line);
        line.push('\n');
        self.out.write_all(line.as_bytes())
    }

    /// Flush the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flush and return the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Milliseconds since the epoch, truncated like Java's `currentTimeMillis` stamps.
fn epoch_millis(t: SystemTime) -> io::Result<u64> {
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| invalid("log times before 1970 are not representable".to_string()))?;
    u64::try_from(d.as_millis()).map_err(|_| invalid("log time out of range".to_string()))
}

/// `java.util.Date.toString()` rendered in UTC, e.g. `Thu Jan 01 00:00:00 UTC 1970`.
/// Readers ignore this text; it is there for humans, and UTC keeps the output
/// independent of the machine's time zone.
fn java_date_utc(epoch_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms / 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    // Civil-from-days (H. Hinnant), shifted so the era starts on 0000-03-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        sod / 3_600,
        sod % 3_600 / 60,
        sod % 60,
        year
    )
}

/// Standard (RFC 4648, padded) base64, as Java's `Base64Helper` writes it.
fn base64_into(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [n >> 18, n >> 12, n >> 6, n];
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(s & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_latency_histogram;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    use std::time::Duration;

    fn b64(data: &[u8]) -> String {
        let mut s = String::new();
        base64_into(data, &mut s);
        s
    }

    #[test]
    fn base64_rfc4648_vectors() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg==");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foob"), "Zm9vYg==");
        assert_eq!(b64(b"fooba"), "Zm9vYmE=");
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn java_date_format() {
        assert_eq!(java_date_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            java_date_utc(951_782_400_000),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
        assert_eq!(
            java_date_utc(1_717_243_445_123),
            "Sat Jun 01 12:04:05 UTC 2024"
        );
    }

    #[test]
    fn header_and_line_layout() {
        let start = UNIX_EPOCH + Duration::from_millis(1_717_243_445_123);
        let mut w = HlogWriter::with_base_time(Vec::new(), start, start).unwrap();
        w.write_comment("bypass lab").unwrap();
        let mut h = new_latency_histogram();
        h.record(2_500_000).unwrap();
        w.write_interval(Some("rpc"), 0.0, 1.0, &h).unwrap();
        w.write_interval(None, 1.0005, 0.25, &h).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#[Histogram log format version 1.3]");
        assert_eq!(
            lines[1],
            "#[StartTime: 1717243445.123 (seconds since epoch), Sat Jun 01 12:04:05 UTC 2024]"
        );
        assert_eq!(
            lines[2],
            "#[BaseTime: 1717243445.123 (seconds since epoch)]"
        );
        assert_eq!(lines[3], LEGEND);
        assert_eq!(lines[4], "#bypass lab");
        // Max is the bucket's highest equivalent value: 2,500,000 ns lies in a
        // 1024 ns wide bucket ending at 2,500,607 ns -> 2.501 ms.
        assert!(
            lines[5].starts_with("Tag=rpc,0.000,1.000,2.501,HISTF"),
            "{}",
            lines[5]
        );
        // Java rounds the tie 1.0005 half-up.
        assert!(
            lines[6].starts_with("1.001,0.250,2.501,HISTF"),
            "{}",
            lines[6]
        );
    }

    #[test]
    fn payload_decodes_with_crate_reader() {
        let mut h = new_latency_histogram();
        for v in [1u64, 10, 100, 1_000, 10_000, 59_000_000_000] {
            h.record_n(v, v % 7 + 1).unwrap();
        }
        let mut w = HlogWriter::new(Vec::new(), UNIX_EPOCH + Duration::from_secs(1)).unwrap();
        w.write_interval(Some("a"), 0.5, 1.0, &h).unwrap();
        let text = w.into_inner().unwrap();
        let hist = IntervalLogIterator::new(&text)
            .find_map(|e| match e {
                Ok(LogEntry::Interval(i)) => Some(i),
                _ => None,
            })
            .expect("one interval");
        assert_eq!(hist.tag().map(|t| t.as_str()), Some("a"));
        let bytes = base64_decode(hist.encoded_histogram());
        let back: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .unwrap();
        assert_eq!(back, h);
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        let val = |c: u8| -> u32 {
            match c {
                b'A'..=b'Z' => u32::from(c - b'A'),
                b'a'..=b'z' => u32::from(c - b'a') + 26,
                b'0'..=b'9' => u32::from(c - b'0') + 52,
                b'+' => 62,
                _ => 63,
            }
        };
        let mut out = Vec::new();
        for chunk in s.as_bytes().chunks(4) {
            let pad = chunk.iter().filter(|&&c| c == b'=').count();
            let n = chunk.iter().fold(0u32, |acc, &c| {
                (acc << 6) | if c == b'=' { 0 } else { val(c) }
            });
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        out
    }

    #[test]
    fn rejects_bad_input() {
        let h = new_latency_histogram();
        let mut w = HlogWriter::new(Vec::new(), SystemTime::now()).unwrap();
        for tag in ["a,b", "a b", "a\nb", ""] {
            assert!(
                w.write_interval(Some(tag), 0.0, 1.0, &h).is_err(),
                "{tag:?}"
            );
        }
        assert!(w.write_interval(None, -1.0, 1.0, &h).is_err());
        assert!(w.write_interval(None, 0.0, f64::NAN, &h).is_err());
        assert!(HlogWriter::new(Vec::new(), UNIX_EPOCH - Duration::from_secs(1)).is_err());
    }
}
