//! Fuzz target: one frame or a vector of frames (see `decode_frames`) through
//! the whole server graph, with its invariants asserted by the library's
//! checker, the same one tests/fuzz_corpus.rs replays the corpus through.
//! One graph serves every input (`GraphChecker`): building a graph per input
//! held the target to about 4,000 executions a second.
#![no_main]

use std::cell::RefCell;

use bypass::graph::nodes::check::{decode_frames, GraphChecker};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static CHECKER: RefCell<GraphChecker> =
        RefCell::new(GraphChecker::new().expect("the server graph builds"));
}

fuzz_target!(|data: &[u8]| {
    CHECKER.with_borrow_mut(|c| {
        if let Err(v) = c.check(&decode_frames(data)) {
            panic!("server graph invariant broken: {v}");
        }
    });
});
