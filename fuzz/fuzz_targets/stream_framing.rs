//! Fuzz target: a byte stream cut at points the input picks, through kernel-serve's
//! connection reassembly and the load client's; the invariants (same messages and the same
//! close decision however the bytes are cut, bounded buffering, server and client agreeing)
//! are tests/stream_framing/check.rs, which tests/stream_framing_corpus.rs replays the
//! seeds through.
#![no_main]

#[path = "../../tests/stream_framing/check.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = check::check(data) {
        panic!("stream framing invariant broken: {v}");
    }
});
