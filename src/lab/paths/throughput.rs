//! Throughput: the fast path against `dpdk-testpmd --forward-mode=5tswap` on the same input
//! (net_pcap replaying RPC echo requests forever), the same cores and hugepages, alternating
//! runs (what benches/rpc-vs-5tswap.sh does). Each rate is the median of the 1 s readings after
//! the first, warm-up, second; the result holds both rates and their ratio.

use std::time::{Duration, Instant};

use super::fastpath::{serve_argv, serve_command};
use super::{shell_line, Ctx, PathError};
use crate::contract::serve::{ServeCommand, ServeFinal, ServeInterval};
use crate::contract::{last_final, lines_of, Kept};
use crate::lab::eal;
use crate::lab::proc::{Proc, Waited};
use crate::lab::results::{PathResult, Throughput};
use crate::lab::scenario::ResolvedPath;
use crate::lab::topology::{DpdkPrefix, Topology};
use crate::pcap;
use crate::wire::{rpc, Ipv4Address, MacAddress, UdpEndpoints};

const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const REQUESTS: usize = 1024;
const BURST: u16 = 32;

/// Median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// testpmd's per-port `Tx-pps:` readings, without the first two (taken before forwarding
/// starts, and the warm-up second).
pub fn testpmd_readings(text: &str) -> Vec<f64> {
    text.lines()
        .filter_map(|l| l.split("Tx-pps:").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse::<f64>().ok())
        .skip(2)
        .collect()
}

fn write_pcap(ctx: &Ctx, path: &ResolvedPath, topo: &Topology) -> Result<(String, usize), String> {
    let octets = |ip: std::net::Ipv4Addr| Ipv4Address(ip.octets());
    let client = topo.spec.client_ip.unwrap_or_else(|| {
        // Any other address of the server's /24 in the lab range stands for the client.
        let o = topo.spec.server_ip.octets();
        std::net::Ipv4Addr::new(o[0], o[1], o[2], o[3] ^ 1)
    });
    let ep = UdpEndpoints {
        src_mac: MacAddress(CLIENT_MAC),
        dst_mac: MacAddress(SERVER_MAC),
        src_ip: octets(client),
        dst_ip: octets(topo.spec.server_ip),
        src_port: 40000,
        dst_port: rpc::DEFAULT_PORT,
    };
    let max = crate::wire::frame::MAX_UDP_PAYLOAD - rpc::HEADER_LEN;
    if path.size > max {
        return Err(format!(
            "size {} is above the UDP limit of {max}",
            path.size
        ));
    }
    let frames = pcap::rpc_echo_requests(ep, REQUESTS, path.size);
    let file = ctx.run_dir.join(format!("{}.pcap", path.name));
    pcap::write_all(&file, &frames).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok((file.to_string_lossy().into_owned(), frames[0].len()))
}

fn testpmd_round(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    pcap_file: &str,
    res: &mut PathResult,
) -> Result<Vec<f64>, PathError> {
    let prefix = DpdkPrefix::new("tp");
    let mut argv = topo.server_ns.prefix();
    // testpmd's printf output to a pipe is block-buffered: line-buffer it so each 1 s reading
    // arrives when it is printed.
    argv.extend(["stdbuf".into(), "-oL".into(), "dpdk-testpmd".into()]);
    argv.extend(eal::args(
        &[path.client_cpu, path.server_cpu],
        ctx.plan.placement.hugepages,
        &prefix,
        &[format!(
            "--vdev=net_pcap0,rx_pcap={pcap_file},infinite_rx=1"
        )],
    ));
    argv.extend(
        [
            "--",
            "--forward-mode=5tswap",
            "--nb-cores=1",
            "--burst",
            &BURST.to_string(),
            "--auto-start",
            "--stats-period",
            "1",
        ]
        .map(String::from),
    );
    res.commands.push(shell_line(&argv));
    let mut p = Proc::spawn("dpdk-testpmd", &argv)?;
    // testpmd prints every --stats-period, or slower (every 2 s on a busy 2-core machine):
    // collect the two readings that are skipped (before forwarding starts, warm-up) plus one
    // per measured second, however long that takes, within a bound.
    let want = 2 + path.duration.ceil().max(1.0) as usize;
    let limit = Duration::from_secs_f64(path.duration * 3.0 + 30.0);
    let start = Instant::now();
    let count = |p: &Proc| p.stdout.iter().filter(|l| l.contains("Tx-pps")).count();
    while count(&p) < want {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        if let Err(e) = p.wait_line(left, |l| l.contains("Tx-pps")) {
            if e == "interrupted" {
                return Err(e.into());
            }
            if count(&p) > 2 {
                // Out of time with some readings: use them.
                break;
            }
            return Err(PathError::Failed(format!(
                "dpdk-testpmd after {:.1} s: {e}",
                start.elapsed().as_secs_f64()
            )));
        }
    }
    p.stop(Duration::from_secs(10));
    let r = testpmd_readings(&p.stdout.join("\n"));
    if r.is_empty() {
        return Err(PathError::Failed(format!(
            "no testpmd Tx-pps readings: {}",
            p.stderr_tail(8)
        )));
    }
    Ok(r)
}

fn bypass_round(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    pcap_file: &str,
    res: &mut PathResult,
) -> Result<(Vec<f64>, Kept<ServeFinal>), PathError> {
    let prefix = DpdkPrefix::new("tb");
    let devices = [format!(
        "--vdev=net_pcap0,rx_pcap={pcap_file},infinite_rx=1"
    )];
    let cmd = ServeCommand {
        mac: Some(MacAddress(SERVER_MAC)),
        burst: Some(BURST),
        ..serve_command(ctx, path, topo, path.duration + 1.0, &prefix, &devices)
    };
    let argv = serve_argv(ctx, topo, &cmd);
    res.commands.push(shell_line(&argv));
    let mut p = Proc::spawn("bypass serve", &argv)?;
    match p.wait(Duration::from_secs_f64(path.duration + 40.0)) {
        Waited::Exited(0) => {}
        Waited::Interrupted => return Err("interrupted".into()),
        w => {
            return Err(PathError::Failed(format!(
                "bypass serve ended {w:?}: {}",
                p.stderr_tail(8)
            )))
        }
    }
    let rates: Vec<f64> = lines_of::<ServeInterval>(&p.stdout, "interval")?
        .iter()
        .filter(|i| i.elapsed_s > 1.5)
        .map(|i| i.tx_pps)
        .collect();
    let fin =
        last_final::<ServeFinal>(&p.stdout).ok_or("bypass serve printed no final report")??;
    // Every request must be answered, or the rate measures the drop path, not the RPC path.
    let (rx, tx) = (fin.typed.rx, fin.typed.tx);
    if rx == 0 || (tx as f64) < 0.999 * rx as f64 {
        return Err(PathError::Failed(format!(
            "bypass answered {tx} of {rx} requests; drops: {}",
            serde_json::to_string(&fin.typed.drops_by_reason).unwrap_or_default()
        )));
    }
    if rates.is_empty() {
        return Err(PathError::Failed(
            "bypass serve gave no readings after the first second".into(),
        ));
    }
    Ok((rates, fin))
}

pub fn run(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let (pcap_file, frame_bytes) = write_pcap(ctx, path, topo)?;
    let (mut tp, mut bp) = (Vec::new(), Vec::new());
    let mut last = None;
    for _ in 0..path.rounds {
        tp.extend(testpmd_round(ctx, path, topo, &pcap_file, res)?);
        let (r, fin) = bypass_round(ctx, path, topo, &pcap_file, res)?;
        bp.extend(r);
        last = Some(fin);
    }
    let _ = std::fs::remove_file(&pcap_file);
    let (b, t) = (median(&bp), median(&tp));
    res.throughput = Some(Throughput {
        bypass_pps: b,
        testpmd_pps: t,
        ratio: if t > 0.0 { b / t } else { 0.0 },
        frame_bytes,
        rounds: path.rounds,
        bypass_readings: bp,
        testpmd_readings: tp,
    });
    res.rate_per_s = Some(b);
    res.server = last.map(|k| k.verbatim);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn testpmd_readings_skip_the_first_two() {
        let log = "  Rx-pps:            0          Rx-bps:            0\n  Tx-pps:            0          Tx-bps:            0\n  Tx-pps:     50000000\n  Tx-pps:     61000000          Tx-bps: 1\n  Tx-pps:     60000000\n";
        assert_eq!(testpmd_readings(log), vec![61e6, 60e6]);
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
