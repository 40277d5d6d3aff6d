//! Writes a pcap file of RPC echo requests, for replaying through net_pcap
//! (`--vdev=net_pcap0,rx_pcap=FILE,infinite_rx=1`) in benchmarks.
//!
//! ```sh
//! cargo run --release --example gen_rpc_pcap -- /tmp/rpc.pcap 1024 0 02:00:00:00:00:01 198.18.0.1
//! ```
//!
//! Requests come from 02:00:00:00:00:02 / 198.18.0.2:40000 and go to the
//! server's RPC port (7777 unless given), with request ids 1..=COUNT.

use std::process::ExitCode;

use bypass::pcap;
use bypass::wire::frame::{rpc_echo_requests, MAX_UDP_PAYLOAD};
use bypass::wire::{rpc, Ipv4Address, MacAddress, UdpEndpoints};

const USAGE: &str = "usage: gen_rpc_pcap OUT.pcap COUNT PAYLOAD_BYTES DST_MAC DST_IP [DST_PORT]";

fn parse<T: std::str::FromStr>(what: &str, s: Option<String>) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let s = s.ok_or_else(|| format!("missing {what}\n{USAGE}"))?;
    s.parse()
        .map_err(|e| format!("bad {what} {s:?}: {e}\n{USAGE}"))
}

fn run() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    let out: String = parse("output path", args.next())?;
    let count: usize = parse("count", args.next())?;
    let payload: usize = parse("payload size", args.next())?;
    let dst_mac: MacAddress = parse("destination MAC", args.next())?;
    let dst_ip: Ipv4Address = parse("destination IP", args.next())?;
    let dst_port: u16 = match args.next() {
        Some(p) => parse("destination port", Some(p))?,
        None => rpc::DEFAULT_PORT,
    };
    if args.next().is_some() {
        return Err(format!("too many arguments\n{USAGE}"));
    }
    if count == 0 {
        return Err("count must be at least 1".into());
    }
    let max = MAX_UDP_PAYLOAD - rpc::HEADER_LEN;
    if payload > max {
        return Err(format!(
            "payload {payload} is above the UDP limit of {max} bytes"
        ));
    }

    let base = UdpEndpoints {
        src_mac: MacAddress([0x02, 0, 0, 0, 0, 0x02]),
        dst_mac,
        src_ip: Ipv4Address([198, 18, 0, 2]),
        dst_ip,
        src_port: 40000,
        dst_port,
    };
    let frames = rpc_echo_requests(base, count, payload);
    pcap::write_all(&out, &frames).map_err(|e| format!("cannot write {out}: {e}"))?;
    Ok(format!(
        "wrote {count} RPC echo requests of {} bytes ({payload}-byte payload) to {out}",
        frames[0].len()
    ))
}

fn main() -> ExitCode {
    match run() {
        Ok(msg) => {
            eprintln!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_rpc_pcap: {e}");
            ExitCode::from(2)
        }
    }
}
