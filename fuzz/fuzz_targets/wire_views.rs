//! Fuzz target: every `wire` view on arbitrary bytes (fuzz/common/wire_views.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/wire_views.rs"]
mod wire_views;

fuzz_target!(|data: &[u8]| wire_views::check_wire_views(data));
