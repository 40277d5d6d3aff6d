//! Fuzz target: the pcap reader on arbitrary bytes (fuzz/common/pcap_reader.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../common/pcap_reader.rs"]
mod pcap_reader;

fuzz_target!(|data: &[u8]| {
    pcap_reader::check_pcap_reader(data);
});
