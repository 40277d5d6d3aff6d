//! Fuzz target: one frame or a vector of frames (see `decode_frames`) through
//! the whole server graph, with its invariants asserted by the library's
//! checker, the same one tests/fuzz_corpus.rs replays the corpus through.
#![no_main]

use bypass::graph::nodes::check::{check_server_graph, decode_frames};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(v) = check_server_graph(&decode_frames(data)) {
        panic!("server graph invariant broken: {v}");
    }
});
