//! `bypass syscalls`: the syscall tax. Nanoseconds per no-op system call (getppid, which
//! `std::os::unix::process::parent_id` makes uncached) and per send+recv pair of a 32-byte
//! datagram on a loopback UDP socket sending to itself and on a unix datagram socketpair, from
//! one pinned thread, in batches: the median batch is the figure, min..max its spread.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use serde::Serialize;

use crate::contract::platform::{self as contract, SyscallsTag};
use crate::os::Clock;

use super::args::SyscallsArgs;
use super::cpus;
use super::output::print_json;
use super::NoiseError;

pub const BATCHES: u64 = 7;
const MESSAGE: usize = 32;
/// A datagram to oneself is queued before send returns; a receive waiting longer than this
/// means it was lost.
const RECV_TIMEOUT: Duration = Duration::from_secs(1);

/// ns per call over the batches: the lab's spread, every figure present.
pub type Spread = contract::Spread<f64>;

impl Spread {
    /// Median (the middle batch; the mean of the two middle ones for an even count), min, max.
    pub fn of(per_call: &mut [f64]) -> Spread {
        per_call.sort_by(f64::total_cmp);
        let n = per_call.len();
        let median = if !n.is_multiple_of(2) {
            per_call[n / 2]
        } else {
            (per_call[n / 2 - 1] + per_call[n / 2]) / 2.0
        };
        Spread {
            median,
            min: per_call[0],
            max: per_call[n - 1],
        }
    }
}

/// The `--json` object: the lab's report (CPU and the three spreads) and how it was measured.
#[derive(Debug, Clone, Serialize)]
pub struct SyscallsReport {
    #[serde(flatten)]
    pub shared: contract::SyscallsReport<f64>,
    pub iterations: u64,
    pub batches: u64,
    pub time_source: String,
}

/// Times `BATCHES` batches of `per_batch` calls of `op`; the first error ends the measurement.
fn batches(
    clock: &Clock,
    per_batch: u64,
    mut op: impl FnMut() -> std::io::Result<()>,
) -> Result<Spread, NoiseError> {
    let mut per_call = Vec::with_capacity(BATCHES as usize);
    for _ in 0..BATCHES {
        let t0 = clock.now_ns();
        for _ in 0..per_batch {
            op().map_err(|e| NoiseError::Io(format!("syscall measurement: {e}")))?;
        }
        per_call.push((clock.now_ns() - t0) as f64 / per_batch as f64);
    }
    Ok(Spread::of(&mut per_call))
}

fn io(what: &str) -> impl Fn(std::io::Error) -> NoiseError + '_ {
    move |e| NoiseError::Io(format!("{what}: {e}"))
}

fn udp_pair_op() -> Result<impl FnMut() -> std::io::Result<()>, NoiseError> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(io("udp bind 127.0.0.1"))?;
    s.connect(s.local_addr().map_err(io("udp local address"))?)
        .map_err(io("udp connect to itself"))?;
    s.set_read_timeout(Some(RECV_TIMEOUT))
        .map_err(io("udp timeout"))?;
    let (out, mut back) = ([7u8; MESSAGE], [0u8; MESSAGE]);
    Ok(move || {
        s.send(&out)?;
        s.recv(&mut back).map(|_| ())
    })
}

fn unix_pair_op() -> Result<impl FnMut() -> std::io::Result<()>, NoiseError> {
    let (a, b) = UnixDatagram::pair().map_err(io("unix socketpair"))?;
    b.set_read_timeout(Some(RECV_TIMEOUT))
        .map_err(io("unix timeout"))?;
    let (out, mut back) = ([7u8; MESSAGE], [0u8; MESSAGE]);
    Ok(move || {
        a.send(&out)?;
        b.recv(&mut back).map(|_| ())
    })
}

/// Measures all three on the calling thread (pinned first).
pub fn measure(cpu: usize, iterations: u64) -> Result<SyscallsReport, NoiseError> {
    cpus::pin(cpu)?;
    let clock = Clock::new();
    let per_batch = iterations / BATCHES;
    let mut sink = 0u32;
    let getppid_ns = batches(&clock, per_batch, || {
        sink = sink.wrapping_add(std::os::unix::process::parent_id());
        Ok(())
    })?;
    std::hint::black_box(sink);
    let udp_send_recv_ns = batches(&clock, per_batch, udp_pair_op()?)?;
    let unix_send_recv_ns = batches(&clock, per_batch, unix_pair_op()?)?;
    Ok(SyscallsReport {
        shared: contract::SyscallsReport {
            kind: SyscallsTag::Syscalls,
            cpu,
            getppid_ns,
            udp_send_recv_ns,
            unix_send_recv_ns,
        },
        iterations: per_batch * BATCHES,
        batches: BATCHES,
        time_source: clock.describe(),
    })
}

/// The `bypass syscalls` command.
pub fn run(args: &SyscallsArgs) -> Result<(), NoiseError> {
    args.validate()?;
    let r = measure(args.cpu, args.iterations)?;
    if args.json {
        return print_json(&r);
    }
    println!(
        "bypass syscalls: cpu {}, {} calls each in {} batches; time source: {}",
        r.shared.cpu, r.iterations, r.batches, r.time_source
    );
    println!(
        "{:<24}{:>12}{:>12}{:>12}",
        "ns per call", "median", "min", "max"
    );
    for (name, s) in [
        ("getppid", r.shared.getppid_ns),
        ("udp loopback send+recv", r.shared.udp_send_recv_ns),
        ("unix dgram send+recv", r.shared.unix_send_recv_ns),
    ] {
        println!("{name:<24}{:>12.1}{:>12.1}{:>12.1}", s.median, s.min, s.max);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_batch() {
        let mut v = [5.0, 1.0, 9.0, 3.0, 7.0];
        assert_eq!(
            Spread::of(&mut v),
            Spread {
                median: 5.0,
                min: 1.0,
                max: 9.0
            }
        );
        let mut even = [4.0, 1.0, 2.0, 3.0];
        assert_eq!(Spread::of(&mut even).median, 2.5);
    }

    #[test]
    fn each_kind_costs_something() {
        let r = measure(cpus::available()[0], 700).unwrap();
        let r = r.shared;
        for s in [r.getppid_ns, r.udp_send_recv_ns, r.unix_send_recv_ns] {
            assert!(
                s.min > 0.0 && s.min <= s.median && s.median <= s.max,
                "{s:?}"
            );
        }
    }
}
