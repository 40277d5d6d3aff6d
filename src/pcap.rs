//! Classic pcap files (the format net_pcap reads and writes).
//!
//! The libpcap "savefile" format: a 24-byte global header, then per packet a
//! 16-byte record header (seconds, fraction, captured length, original
//! length) and the captured bytes. The magic number says both the byte order
//! of every header field and the unit of the fraction: `0xa1b2c3d4` for
//! microseconds, `0xa1b23c4d` for nanoseconds (net_pcap writes the latter).
//! The reader accepts all four combinations; the writer always produces
//! little-endian microsecond files with link type 1 (Ethernet), which every
//! tool reads.
//!
//! Reading never panics on bad input: a wrong magic, a file cut anywhere, or
//! a record claiming an absurd length are all [`PcapError`]s.
//!
//! A leaf: a file format over `std::io` that knows nothing of the frames it
//! carries, so the lab, the tests and the examples can all use it without
//! pulling in a layer. What goes into the files (RPC request traffic) is
//! built next to the frame emitters, in [`crate::wire::frame`].

#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::time::Duration;

/// Magic of a file whose timestamps carry microseconds.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic of a file whose timestamps carry nanoseconds.
pub const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// LINKTYPE_ETHERNET: every record is an Ethernet II frame.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Snapshot length the writer declares (and truncates to).
pub const SNAPLEN: u32 = 65_535;
/// Largest captured length the reader accepts. libpcap itself caps records
/// at 256 KiB; anything larger is a corrupt length field, and refusing it
/// keeps a bad file from making us allocate gigabytes.
pub const MAX_CAPLEN: u32 = 256 * 1024;

const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
const VERSION_MAJOR: u16 = 2;
const VERSION_MINOR: u16 = 4;

/// Why a pcap file could not be read or written.
#[derive(Debug)]
pub enum PcapError {
    /// An I/O error other than a premature end of file.
    Io(io::Error),
    /// The first four bytes are not a pcap magic number in either byte order.
    BadMagic(u32),
    /// The file ends inside the 24-byte global header.
    TruncatedHeader { len: usize },
    /// The file ends inside a record (its header or its data). `index`
    /// counts records from 0.
    TruncatedRecord { index: u64 },
    /// A record claims more captured bytes than [`MAX_CAPLEN`].
    CaplenTooLarge { index: u64, caplen: u32 },
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcapError::Io(e) => write!(f, "pcap I/O error: {e}"),
            PcapError::BadMagic(m) => write!(
                f,
                "not a pcap file: magic {m:#010x} (expected {MAGIC_MICROS:#010x} or {MAGIC_NANOS:#010x}, either byte order)"
            ),
            PcapError::TruncatedHeader { len } => write!(
                f,
                "truncated pcap file: {len} bytes, shorter than the {GLOBAL_HEADER_LEN}-byte global header"
            ),
            PcapError::TruncatedRecord { index } => {
                write!(f, "truncated pcap file: record {index} is cut short")
            }
            PcapError::CaplenTooLarge { index, caplen } => write!(
                f,
                "corrupt pcap file: record {index} claims {caplen} captured bytes (limit {MAX_CAPLEN})"
            ),
        }
    }
}

impl std::error::Error for PcapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PcapError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for PcapError {
    fn from(e: io::Error) -> Self {
        PcapError::Io(e)
    }
}

/// A record timestamp as the writer stores it: seconds and microseconds
/// since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PcapTimestamp {
    pub sec: u32,
    pub usec: u32,
}

impl From<Duration> for PcapTimestamp {
    /// Saturates at `u32::MAX` seconds (the year 2106), the format's limit.
    fn from(d: Duration) -> Self {
        PcapTimestamp {
            sec: u32::try_from(d.as_secs()).unwrap_or(u32::MAX),
            usec: d.subsec_micros(),
        }
    }
}

impl From<(u32, u32)> for PcapTimestamp {
    /// `(seconds, microseconds)`; microseconds of a second or more carry
    /// into the seconds, so the stored fraction is always below 1 000 000.
    fn from((sec, usec): (u32, u32)) -> Self {
        PcapTimestamp {
            sec: sec.saturating_add(usec / 1_000_000),
            usec: usec % 1_000_000,
        }
    }
}

/// Writes a little-endian, microsecond, Ethernet pcap file.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    inner: W,
    packets: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header. Wrap `inner` in a `BufWriter` for files:
    /// every record is two small writes.
    pub fn new(mut inner: W) -> io::Result<Self> {
        let mut h = [0u8; GLOBAL_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        h[4..6].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        h[6..8].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay 0, as every writer does.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        inner.write_all(&h)?;
        Ok(PcapWriter { inner, packets: 0 })
    }

    /// Appends one frame. Frames longer than [`SNAPLEN`] are stored
    /// truncated, with their full length in the record's original-length
    /// field, as libpcap does.
    pub fn write_packet(&mut self, ts: impl Into<PcapTimestamp>, data: &[u8]) -> io::Result<()> {
        let ts = ts.into();
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let caplen = orig_len.min(SNAPLEN);
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&ts.sec.to_le_bytes());
        h[4..8].copy_from_slice(&ts.usec.to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.inner.write_all(&h)?;
        self.inner.write_all(&data[..caplen as usize])?;
        self.packets += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// Flushes and hands back the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// One record of a pcap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapPacket {
    pub ts_sec: u32,
    /// Microseconds or nanoseconds, as [`PcapReader::nanosecond`] says.
    pub ts_frac: u32,
    /// The frame's length on the wire; `data` is shorter when the capture
    /// was truncated to the snapshot length.
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// Reads a pcap file record by record; iterating yields
/// `Result<PcapPacket, PcapError>` and stops after the first error.
#[derive(Debug)]
pub struct PcapReader<R: Read> {
    inner: R,
    big_endian: bool,
    nanosecond: bool,
    snaplen: u32,
    linktype: u32,
    index: u64,
    done: bool,
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the global header.
    pub fn new(mut inner: R) -> Result<Self, PcapError> {
        let mut h = [0u8; GLOBAL_HEADER_LEN];
        let n = read_full(&mut inner, &mut h)?;
        if n >= 4 {
            // Check the magic first so a non-pcap file says so, whatever its length.
            magic_order(&h)?;
        }
        if n < GLOBAL_HEADER_LEN {
            return Err(PcapError::TruncatedHeader { len: n });
        }
        let (big_endian, nanosecond) = magic_order(&h)?;
        let u32_at = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        Ok(PcapReader {
            snaplen: u32_at(16),
            linktype: u32_at(20),
            inner,
            big_endian,
            nanosecond,
            index: 0,
            done: false,
        })
    }

    /// True when record timestamps carry nanoseconds rather than microseconds.
    pub fn nanosecond(&self) -> bool {
        self.nanosecond
    }

    /// True when the file's header fields are big-endian.
    pub fn big_endian(&self) -> bool {
        self.big_endian
    }

    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    fn u32_at(&self, b: &[u8], i: usize) -> u32 {
        let b = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    /// The next record, `Ok(None)` at a clean end of file.
    pub fn next_packet(&mut self) -> Result<Option<PcapPacket>, PcapError> {
        let index = self.index;
        let mut h = [0u8; RECORD_HEADER_LEN];
        match read_full(&mut self.inner, &mut h)? {
            0 => return Ok(None),
            RECORD_HEADER_LEN => {}
            _ => return Err(PcapError::TruncatedRecord { index }),
        }
        let caplen = self.u32_at(&h, 8);
        if caplen > MAX_CAPLEN {
            return Err(PcapError::CaplenTooLarge { index, caplen });
        }
        let mut data = vec![0u8; caplen as usize];
        if read_full(&mut self.inner, &mut data)? < data.len() {
            return Err(PcapError::TruncatedRecord { index });
        }
        self.index += 1;
        Ok(Some(PcapPacket {
            ts_sec: self.u32_at(&h, 0),
            ts_frac: self.u32_at(&h, 4),
            orig_len: self.u32_at(&h, 12),
            data,
        }))
    }
}

/// `(big_endian, nanosecond)` from the first four bytes of a file.
fn magic_order(h: &[u8]) -> Result<(bool, bool), PcapError> {
    let le = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let be = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    match (le, be) {
        (MAGIC_MICROS, _) => Ok((false, false)),
        (MAGIC_NANOS, _) => Ok((false, true)),
        (_, MAGIC_MICROS) => Ok((true, false)),
        (_, MAGIC_NANOS) => Ok((true, true)),
        _ => Err(PcapError::BadMagic(be)),
    }
}

impl<R: Read> Iterator for PcapReader<R> {
    type Item = Result<PcapPacket, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_packet() {
            Ok(Some(p)) => Some(Ok(p)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The request-traffic generator's old home; it now lives beside the
/// frame emitters. Kept for the lab's throughput path.
pub use crate::wire::frame::rpc_echo_requests;

/// Every frame of the pcap file at `path`, in order.
pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<Vec<u8>>, PcapError> {
    let file = File::open(path)?;
    PcapReader::new(BufReader::new(file))?
        .map(|p| p.map(|p| p.data))
        .collect()
}

/// Writes `frames` to a new pcap file at `path`, one microsecond apart
/// starting at the epoch (net_pcap ignores the timestamps it reads).
pub fn write_all<F: AsRef<[u8]>>(
    path: impl AsRef<Path>,
    frames: impl IntoIterator<Item = F>,
) -> io::Result<()> {
    let mut w = PcapWriter::new(BufWriter::new(File::create(path)?))?;
    for (i, f) in frames.into_iter().enumerate() {
        let us = u64::try_from(i).unwrap_or(u64::MAX);
        w.write_packet(Duration::from_micros(us), f.as_ref())?;
    }
    w.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn frames() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0xab],
            (0..60).collect(),
            (0..=255u8).cycle().take(1514).collect(),
        ]
    }

    fn write_mem(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        for (i, f) in frames.iter().enumerate() {
            w.write_packet((1_700_000_000 + i as u32, 250_000 * i as u32), f)
                .unwrap();
        }
        assert_eq!(w.packets(), frames.len() as u64);
        w.into_inner().unwrap()
    }

    #[test]
    fn round_trip_in_memory() {
        let fs = frames();
        let bytes = write_mem(&fs);
        assert_eq!(
            bytes.len(),
            24 + fs.iter().map(|f| 16 + f.len()).sum::<usize>()
        );
        let r = PcapReader::new(Cursor::new(&bytes)).unwrap();
        assert!(!r.nanosecond() && !r.big_endian());
        assert_eq!((r.snaplen(), r.linktype()), (SNAPLEN, LINKTYPE_ETHERNET));
        let got: Vec<PcapPacket> = r.collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), fs.len());
        for (i, (p, f)) in got.iter().zip(&fs).enumerate() {
            assert_eq!(&p.data, f);
            assert_eq!(p.orig_len as usize, f.len());
            // 250 000 us * i carries into the seconds from i = 4 on; here i < 4.
            assert_eq!(
                (p.ts_sec, p.ts_frac),
                (1_700_000_000 + i as u32, 250_000 * i as u32)
            );
        }
    }

    #[test]
    fn header_bytes_are_libpcap_le_micro() {
        let bytes = write_mem(&[]);
        assert_eq!(
            bytes,
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0,
                0, 0
            ]
        );
    }

    #[test]
    fn round_trip_through_files() {
        let dir = std::env::temp_dir().join(format!("bypass-pcap-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rt.pcap");
        let fs = frames();
        write_all(&path, &fs).unwrap();
        let got = read_all(&path);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got.unwrap(), fs);
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            PcapTimestamp::from(Duration::new(5, 123_456_789)),
            PcapTimestamp {
                sec: 5,
                usec: 123_456
            }
        );
        assert_eq!(
            PcapTimestamp::from(Duration::from_secs(u64::MAX)).sec,
            u32::MAX
        );
        assert_eq!(
            PcapTimestamp::from((7, 2_500_000)),
            PcapTimestamp {
                sec: 9,
                usec: 500_000
            }
        );
    }

    /// Builds a file by hand in any of the four magic/byte-order variants.
    fn foreign_file(magic: u32, big_endian: bool, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend_from_slice(&u32b(magic));
        b.extend_from_slice(&u16b(2));
        b.extend_from_slice(&u16b(4));
        b.extend_from_slice(&u32b(0));
        b.extend_from_slice(&u32b(0));
        b.extend_from_slice(&u32b(262_144));
        b.extend_from_slice(&u32b(LINKTYPE_ETHERNET));
        for &(sec, frac, data) in records {
            b.extend_from_slice(&u32b(sec));
            b.extend_from_slice(&u32b(frac));
            b.extend_from_slice(&u32b(data.len() as u32));
            b.extend_from_slice(&u32b(data.len() as u32 + 4));
            b.extend_from_slice(data);
        }
        b
    }

    #[test]
    fn reads_both_magics_in_both_byte_orders() {
        for (magic, nano, frac) in [
            (MAGIC_MICROS, false, 999_999),
            (MAGIC_NANOS, true, 999_999_999),
        ] {
            for big in [false, true] {
                let file = foreign_file(magic, big, &[(3, frac, b"abc"), (4, 0, b"")]);
                let mut r = PcapReader::new(Cursor::new(file)).unwrap();
                assert_eq!((r.nanosecond(), r.big_endian()), (nano, big), "{magic:#x}");
                assert_eq!((r.snaplen(), r.linktype()), (262_144, 1));
                let p = r.next().unwrap().unwrap();
                assert_eq!(
                    p,
                    PcapPacket {
                        ts_sec: 3,
                        ts_frac: frac,
                        orig_len: 7,
                        data: b"abc".to_vec()
                    }
                );
                assert_eq!(r.next().unwrap().unwrap().data, b"");
                assert!(r.next().is_none());
                assert!(r.next().is_none(), "stays finished");
            }
        }
    }

    #[test]
    fn bad_magic_is_an_error() {
        let mut file = write_mem(&frames());
        file[0] ^= 0xff;
        match PcapReader::new(Cursor::new(&file)) {
            Err(PcapError::BadMagic(m)) => assert_eq!(m, 0x2bc3_b2a1),
            other => panic!("expected BadMagic, got {other:?}"),
        }
        // A pcapng file is refused the same way, with its magic in the message.
        let ng = [0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0];
        let e = PcapReader::new(Cursor::new(&ng[..])).unwrap_err();
        assert!(e.to_string().contains("0x0a0d0d0a"), "{e}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let file = write_mem(&frames()[..3]);
        // Record boundaries: where a cut file is still a valid (shorter) one.
        let mut boundaries = vec![24];
        for f in &frames()[..3] {
            boundaries.push(boundaries.last().unwrap() + 16 + f.len());
        }
        assert_eq!(*boundaries.last().unwrap(), file.len());
        for len in 0..file.len() {
            let cut = &file[..len];
            let result: Result<Vec<PcapPacket>, PcapError> =
                PcapReader::new(Cursor::new(cut)).and_then(|r| r.collect());
            match (len, result) {
                (l, Err(PcapError::TruncatedHeader { len })) if l < 24 => {
                    assert_eq!(len, l)
                }
                (l, Ok(ps)) if boundaries.contains(&l) => {
                    assert_eq!(ps.len(), boundaries.iter().position(|&b| b == l).unwrap())
                }
                (_, Err(PcapError::TruncatedRecord { .. })) => {}
                (l, other) => panic!("cut at {l}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let mut file = write_mem(&frames());
        file.truncate(file.len() - 1);
        let items: Vec<_> = PcapReader::new(Cursor::new(&file)).unwrap().collect();
        assert_eq!(items.len(), 4);
        assert!(items[..3].iter().all(|i| i.is_ok()));
        assert!(matches!(
            items[3],
            Err(PcapError::TruncatedRecord { index: 3 })
        ));
    }

    #[test]
    fn absurd_caplen_is_refused_before_allocating() {
        let mut file = write_mem(&frames()[..2]);
        // Record 1 starts after the global header and record 0 (empty).
        let caplen_at = 24 + 16 + 8;
        file[caplen_at..caplen_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let items: Vec<_> = PcapReader::new(Cursor::new(&file)).unwrap().collect();
        assert!(matches!(
            items[1],
            Err(PcapError::CaplenTooLarge {
                index: 1,
                caplen: u32::MAX
            })
        ));
        file[caplen_at..caplen_at + 4].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        let e = PcapReader::new(Cursor::new(&file))
            .unwrap()
            .nth(1)
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("262145"), "{e}");
    }

    #[test]
    fn oversized_frames_are_truncated_to_snaplen() {
        let big = vec![7u8; SNAPLEN as usize + 10];
        let bytes = write_mem(std::slice::from_ref(&big));
        let p = PcapReader::new(Cursor::new(&bytes))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(p.data.len(), SNAPLEN as usize);
        assert_eq!(p.orig_len as usize, big.len());
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let e = read_all("/nonexistent/bypass.pcap").unwrap_err();
        assert!(matches!(e, PcapError::Io(_)));
        assert!(std::error::Error::source(&e).is_some());
    }
}
