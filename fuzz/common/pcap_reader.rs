//! The `pcap_reader` checks, shared (by `#[path]`) between the fuzz target
//! and tests/fuzz_corpus.rs: the pcap reader over arbitrary bytes. Every
//! record it yields must be the input's own bytes at the place the format
//! puts them (its data and its header fields, in the file's byte order), no
//! record may exceed `MAX_CAPLEN` (what bounds the reader's allocation
//! whatever a header claims), a clean end must be the input's end, an
//! error must say something and end the iteration, and what was read must
//! survive the writer and the reader again.

use bypass::pcap::{PcapPacket, PcapReader, PcapWriter, MAX_CAPLEN, SNAPLEN};

const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// Every check on `data`; returns the records read, for the corpus test.
pub fn check_pcap_reader(data: &[u8]) -> Vec<PcapPacket> {
    let mut r = match PcapReader::new(data) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.to_string().trim().is_empty(), "an empty header error");
            return Vec::new();
        }
    };
    let big_endian = r.big_endian();
    let mut records = Vec::new();
    let mut at = GLOBAL_HEADER_LEN;
    let failed = loop {
        match r.next_packet() {
            Ok(Some(p)) => {
                at = check_record(data, at, big_endian, &p);
                records.push(p);
            }
            Ok(None) => {
                assert_eq!(at, data.len(), "a clean end before the input's end");
                break false;
            }
            Err(e) => {
                assert!(!e.to_string().trim().is_empty(), "an empty record error");
                assert!(at < data.len(), "an error with nothing left to read");
                break true;
            }
        }
    };
    check_iterator(data, &records, failed);
    round_trip(&records);
    records
}

/// The record `p` must be the bytes at `at`; returns where the next starts.
fn check_record(data: &[u8], at: usize, big_endian: bool, p: &PcapPacket) -> usize {
    let len = p.data.len();
    assert!(len <= MAX_CAPLEN as usize, "a record of {len} bytes");
    let start = at + RECORD_HEADER_LEN;
    let end = start + len;
    assert!(
        end <= data.len(),
        "record data at {start}..{end}, input {}",
        data.len()
    );
    assert!(
        p.data == data[start..end],
        "record data is not the input's bytes"
    );
    let field = |i: usize| {
        let b: [u8; 4] = data[at + i..at + i + 4].try_into().unwrap();
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    assert_eq!(field(0), p.ts_sec, "ts_sec");
    assert_eq!(field(4), p.ts_frac, "ts_frac");
    assert_eq!(field(8) as usize, len, "caplen");
    assert_eq!(field(12), p.orig_len, "orig_len");
    end
}

/// The iterator yields the same records, at most one error, then nothing.
fn check_iterator(data: &[u8], records: &[PcapPacket], failed: bool) {
    let mut it = PcapReader::new(data).expect("the header read once already");
    for (i, want) in records.iter().enumerate() {
        match it.next() {
            Some(Ok(p)) => assert!(&p == want, "iterator record {i} differs"),
            other => panic!("iterator record {i}: {other:?}"),
        }
    }
    if failed {
        assert!(
            matches!(it.next(), Some(Err(_))),
            "iterator hides the error"
        );
    }
    assert!(it.next().is_none(), "iterator goes on after the end");
    assert!(it.next().is_none(), "iterator goes on after the end");
}

/// Written back (timestamps normalised as the writer stores them) and read
/// again, each record keeps its first `SNAPLEN` bytes.
fn round_trip(records: &[PcapPacket]) {
    let mut w = PcapWriter::new(Vec::new()).expect("writing to memory");
    for p in records {
        w.write_packet((p.ts_sec, p.ts_frac), &p.data)
            .expect("writing to memory");
    }
    let bytes = w.into_inner().expect("writing to memory");
    let again: Vec<PcapPacket> = PcapReader::new(&bytes[..])
        .expect("the writer's header reads")
        .collect::<Result<_, _>>()
        .expect("the writer's records read");
    assert_eq!(again.len(), records.len(), "records lost in the round trip");
    for (a, p) in again.iter().zip(records) {
        let kept = p.data.len().min(SNAPLEN as usize);
        assert!(
            a.data == p.data[..kept],
            "round trip changed a record's bytes"
        );
        assert_eq!(a.orig_len as usize, p.data.len(), "the writer's orig_len");
    }
}
