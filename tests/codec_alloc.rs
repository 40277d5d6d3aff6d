//! The fast path's allocation claim for `transcode` (docs/codecs.md): once warm,
//! `Transcoder::allocation_free` transcodes every codec it serves without a heap allocation, and
//! a client encodes and checks without one. The counting allocator is stats_alloc's wrapper
//! of the system allocator, so this test needs no `unsafe` of its own.
//!
//! The counters are process-wide, and libtest's own threads allocate now and then while a test
//! runs, so this target has no harness (`harness = false` in Cargo.toml): `main` measures on
//! the only thread of the process.

use std::alloc::System;

use bypass::codec::{ClientCodec, TranscodeError, Transcoder};
use bypass::options::{Codec, MessageSize};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CODECS: [Codec; 3] = [Codec::Json, Codec::Protobuf, Codec::Flatbuffers];
const SIZES: [MessageSize; 3] = [MessageSize::Small, MessageSize::Medium, MessageSize::Large];
const CALLS: u64 = 1000;
/// Ids of growing width, so the measured calls see every encoded length.
const FIRST_ID: u64 = 1 << 40;

/// Heap allocations (new blocks and reallocations) while `f` runs.
fn allocations(f: impl FnOnce()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

fn main() {
    transcode_and_the_client_allocate_nothing_once_warm();
    println!("codec_alloc: transcode_and_the_client_allocate_nothing_once_warm ... ok");
}

fn transcode_and_the_client_allocate_nothing_once_warm() {
    let mut fast = Transcoder::allocation_free();
    let mut full = Transcoder::new();
    let mut buf = [0u8; 1500];
    // Lines of the failure report, allocated only after the regions are closed.
    let mut failures = Vec::with_capacity(64);

    for codec in CODECS {
        for size in SIZES {
            let mut client = ClientCodec::new(codec, size);
            // Warm-up: the FlatBuffers builder's bookkeeping vectors reach their capacity.
            let len = client.encode_request(FIRST_ID, &mut buf);
            let served = fast.can_serve(codec);
            if served {
                let n = fast.transcode(&mut buf, len).unwrap();
                assert!(client.check_reply(FIRST_ID, &buf[..n]));
            }

            let mut bad = 0u64;
            let encode = allocations(|| {
                for id in FIRST_ID..FIRST_ID + CALLS {
                    if client.encode_request(id, &mut buf) == 0 {
                        bad += 1;
                    }
                }
            });
            if encode != 0 {
                failures.push((codec, size, "encode_request", encode));
            }

            // The check decodes a reply produced outside the region; the transcode region
            // covers the server's work alone.
            let mut reply = [0u8; 1500];
            let len = client.encode_request(FIRST_ID, &mut buf);
            let reply_len = full.transcode(&mut buf, len).unwrap();
            reply[..reply_len].copy_from_slice(&buf[..reply_len]);
            let check = allocations(|| {
                for _ in 0..CALLS {
                    if !client.check_reply(FIRST_ID, &reply[..reply_len]) {
                        bad += 1;
                    }
                }
            });
            if check != 0 {
                failures.push((codec, size, "check_reply", check));
            }

            if served {
                let transcode = allocations(|| {
                    // Each call answers a new request. Encoding and checking it run inside
                    // the region too; both were found allocation-free above.
                    for id in FIRST_ID..FIRST_ID + CALLS {
                        let len = client.encode_request(id, &mut buf);
                        match fast.transcode(&mut buf, len) {
                            Ok(n) if client.check_reply(id, &buf[..n]) => {}
                            _ => bad += 1,
                        }
                    }
                });
                if transcode != 0 {
                    failures.push((codec, size, "transcode", transcode));
                }
            } else {
                assert_eq!(
                    codec,
                    Codec::Protobuf,
                    "the fast path refuses protobuf only"
                );
                let len = client.encode_request(FIRST_ID, &mut buf);
                assert_eq!(
                    fast.transcode(&mut buf, len),
                    Err(TranscodeError::Refused(Codec::Protobuf))
                );
            }
            assert_eq!(bad, 0, "{codec} {size}: failed calls");
        }
    }
    assert!(
        failures.is_empty(),
        "allocations (codec, size, call, count): {failures:?}"
    );

    // The counter does see allocations: protobuf on the kernel server's transcoder allocates
    // the decoded message on every call, which is why the fast path refuses it.
    let mut client = ClientCodec::new(Codec::Protobuf, MessageSize::Small);
    let len = client.encode_request(1, &mut buf);
    full.transcode(&mut buf, len).unwrap();
    let len = client.encode_request(1, &mut buf);
    let protobuf = allocations(|| {
        full.transcode(&mut buf, len).unwrap();
    });
    assert!(protobuf > 0, "protobuf decoding allocated nothing?");
}
