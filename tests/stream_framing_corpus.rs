//! Replays the stream_framing fuzz target's seeds (fuzz/corpus/stream_framing) through the
//! same invariants on the stable toolchain, and checks a few splits the seeds are about.
#![forbid(unsafe_code)]

#[path = "stream_framing/check.rs"]
mod check;

use bypass::kernel::framing::MAX_MESSAGE;
use bypass::wire::rpc::{RpcHeader, HEADER_LEN};
use bypass::wire::{RpcMethod, RpcRepr};

fn corpus() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/stream_framing")
}

fn message(id: u64, payload: usize) -> Vec<u8> {
    let r = RpcRepr::request(RpcMethod::Echo, id, 0, payload as u32);
    let mut v = vec![0u8; HEADER_LEN + payload];
    r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
    for (i, b) in v[HEADER_LEN..].iter_mut().enumerate() {
        *b = (i as u64 ^ id) as u8;
    }
    v
}

/// An input: the chunk lengths, then the stream.
fn input(cuts: &[u16], stream: &[u8]) -> Vec<u8> {
    let mut v = vec![cuts.len() as u8];
    for c in cuts {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v.extend_from_slice(stream);
    v
}

/// The seeds, as `write_seeds` writes them: (name, input).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let small: Vec<u8> = (0..6).flat_map(|i| message(i, i as usize * 7)).collect();
    let mut cut_header = small.clone();
    cut_header.extend_from_slice(&message(9, 4)[..20]);
    let mut cut_payload = small.clone();
    cut_payload.extend_from_slice(&message(9, 400)[..100]);
    let mut bad_magic = small.clone();
    bad_magic.extend_from_slice(&[0u8; 32]);
    bad_magic.extend_from_slice(&small);
    let mut bad_version = message(1, 3);
    bad_version.extend_from_slice(&message(2, 3));
    bad_version[35 + 2] = 9;
    let mut oversize = message(1, 3);
    let mut over = message(2, 0);
    over[28..32].copy_from_slice(&((MAX_MESSAGE - HEADER_LEN + 1) as u32).to_be_bytes());
    oversize.extend_from_slice(&over);
    let large: Vec<u8> = [
        message(1, MAX_MESSAGE - HEADER_LEN),
        message(2, 40_000),
        message(3, 10),
    ]
    .concat();
    vec![
        ("empty", input(&[], &[])),
        ("small-whole", input(&[], &small)),
        ("small-bytewise", input(&[1], &small)),
        ("small-odd-cuts", input(&[7, 33, 2], &small)),
        ("cut-in-header", input(&[16], &cut_header)),
        ("cut-in-payload", input(&[31, 64], &cut_payload)),
        ("bad-magic", input(&[5, 40], &bad_magic)),
        ("bad-version", input(&[36], &bad_version)),
        ("oversize", input(&[33], &oversize)),
        ("large", input(&[9_999, 65_535, 1], &large)),
    ]
}

#[test]
fn seeds_hold_the_invariants() {
    for (name, data) in seeds() {
        check::check(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn committed_corpus_holds_the_invariants() {
    let dir = corpus();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        check::check(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= seeds().len(), "{n} seeds in {}", dir.display());
}

#[test]
fn outcomes_are_what_the_seeds_are_about() {
    use check::{ClientEnd, ServerEnd};
    let by = |name: &str| seeds().into_iter().find(|s| s.0 == name).unwrap().1;
    let seed = by("cut-in-payload");
    let (cuts, bytes) = check::decode(&seed);
    assert_eq!(cuts, vec![31, 64]);
    let s = check::server(&[bytes]).unwrap();
    assert_eq!(
        (s.messages.len(), s.end),
        (6, ServerEnd::Closed { held: 100 })
    );
    let seed = by("oversize");
    let (_, bytes) = check::decode(&seed);
    let s = check::server(&[bytes]).unwrap();
    assert_eq!(s.end, ServerEnd::Lost(bypass::kernel::DropReason::Oversize));
    assert_eq!(check::client(&[bytes]).unwrap().end, ClientEnd::Lost);
    let seed = by("bad-version");
    let (_, bytes) = check::decode(&seed);
    let s = check::server(&[bytes]).unwrap();
    assert_eq!(
        (s.messages.len(), s.end),
        (1, ServerEnd::Lost(bypass::kernel::DropReason::BadVersion))
    );
    let seed = by("large");
    let (_, bytes) = check::decode(&seed);
    assert_eq!(check::client(&[bytes]).unwrap().messages.len(), 3);
}

/// Writes the seeds to fuzz/corpus/stream_framing (run once after changing them).
#[test]
#[ignore]
fn write_seeds() {
    std::fs::create_dir_all(corpus()).unwrap();
    for (name, data) in seeds() {
        std::fs::write(corpus().join(name), data).unwrap();
    }
}

/// A small deterministic generator (xorshift), so the structured cases are the same on
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Streams of valid messages of every size class (up to the 65536-byte maximum, so reads
/// cross the buffers' compaction points), sometimes ending inside a message or with one
/// corrupted byte in a header, cut at random points: the structured complement of the
/// fuzzer, which rarely builds many large valid messages by itself.
#[test]
fn structured_streams_hold_the_invariants() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..200 {
        let mut stream = Vec::new();
        for id in 0..rng.below(12) {
            let size = match rng.below(4) {
                0 => rng.below(16),
                1 => rng.below(2_000),
                2 => rng.below(40_000),
                _ => (MAX_MESSAGE - HEADER_LEN) as u64 - rng.below(2),
            };
            stream.extend_from_slice(&message(id, size as usize));
        }
        if !stream.is_empty() && rng.below(3) == 0 {
            let len = stream.len() as u64;
            stream.truncate(rng.below(len) as usize);
        }
        if stream.len() > 40 && rng.below(4) == 0 {
            let at = rng.below(stream.len() as u64 - 32) as usize;
            stream[at] ^= 1 << rng.below(8);
        }
        let cuts: Vec<u16> = (0..rng.below(17))
            .map(|_| {
                [1, 31, 32, 33, 65_535, rng.below(70_000).min(65_535)][rng.below(6) as usize] as u16
            })
            .collect();
        check::check(&input(&cuts, &stream)).unwrap_or_else(|e| panic!("case {case}: {e}"));
    }
}
