//! Fuzz target: the serve config and lab scenario TOML readers on arbitrary
//! bytes (fuzz/common/config_toml.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/config_toml.rs"]
mod config_toml;

fuzz_target!(|data: &[u8]| config_toml::check_config_toml(data));
