//! Encode and decode cost of each `transcode` codec and message size (docs/codecs.md):
//! `cargo bench --bench codecs -- --warm-up-time 1 --measurement-time 2`.
//!
//! `server/transcode` is the server's whole work on one request (decode, answer, encode the
//! reply, copy it over the request), with the allocation-free transcoder for the codecs it
//! serves and the kernel server's for protobuf. `client/encode` and `client/check` are the
//! client's two halves.

use std::hint::black_box;

use bypass::codec::{ClientCodec, Transcoder};
use bypass::options::{Codec, MessageSize};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const CODECS: [Codec; 3] = [Codec::Json, Codec::Protobuf, Codec::Flatbuffers];
const SIZES: [MessageSize; 3] = [MessageSize::Small, MessageSize::Medium, MessageSize::Large];
/// A realistic id width: a long-running client's request counter.
const ID: u64 = 1_234_567;

fn codecs(c: &mut Criterion) {
    for codec in CODECS {
        for size in SIZES {
            let mut client = ClientCodec::new(codec, size);
            let mut transcoder = Transcoder::allocation_free();
            if !transcoder.can_serve(codec) {
                transcoder = Transcoder::new();
            }
            let mut request = [0u8; 1500];
            let request_len = client.encode_request(ID, &mut request);
            let mut reply = request;
            let reply_len = transcoder.transcode(&mut reply, request_len).unwrap();
            assert!(client.check_reply(ID, &reply[..reply_len]));

            let mut group = c.benchmark_group(format!("{codec}/{size}"));
            group.bench_function("server/transcode", |b| {
                // The request is copied in before each call (transcode overwrites it), in
                // batches so the copy is not timed.
                b.iter_batched_ref(
                    || request,
                    |buf| transcoder.transcode(black_box(buf), request_len),
                    BatchSize::SmallInput,
                )
            });
            let mut out = [0u8; 1500];
            group.bench_function("client/encode", |b| {
                b.iter(|| client.encode_request(black_box(ID), black_box(&mut out)))
            });
            group.bench_function("client/check", |b| {
                b.iter(|| client.check_reply(black_box(ID), black_box(&reply[..reply_len])))
            });
            group.finish();
        }
    }
}

criterion_group!(benches, codecs);
criterion_main!(benches);
