//! The clients: `bypass load` (kernel sockets or DPDK) and the unmodified `sockperf ping-pong`,
//! pinned to the client CPU, their outputs read back into the path's result.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use super::{shell_line, Ctx, PathError};
use crate::lab::eal;
use crate::lab::proc::{Proc, Waited};
use crate::lab::results::{Latency, Loss, PathResult, SendLag, SweepPoint};
use crate::lab::scenario::{PlanMode, ResolvedPath};
use crate::lab::topology::{DpdkPrefix, Netns};
use crate::options::WaitMode;
use crate::stats::hlog_read;
use crate::stats::{new_latency_histogram, write_percentile_distribution};

/// Where `bypass load` sends.
pub enum Target {
    /// udp or tcp to IP:PORT.
    Socket {
        transport: &'static str,
        addr: String,
    },
    Unix {
        path: String,
    },
    /// DPDK: the client's address and its EAL devices; each run gets its own file prefix.
    Dpdk {
        addr: String,
        client_ip: String,
        devices: Vec<String>,
    },
}

/// What one `bypass load` run offers.
enum Offered<'a> {
    /// Closed loop, one request in flight.
    PingPong,
    Rate(f64),
    /// `--rates A:B:STEP` of `n` points in one run (one .hgrm per point).
    Rates(&'a str, usize),
}

/// One `bypass load` run; returns its JSON (`{"summary":..}`, or `{"sweep":[..]}` for Rates).
fn load_once(
    ctx: &Ctx,
    path: &ResolvedPath,
    ns: &Netns,
    target: &Target,
    offered: Offered,
    stem: &str,
    res: &mut PathResult,
) -> Result<Value, PathError> {
    let json_file = ctx.out.join(format!("{stem}.load.json"));
    let hgrm_file = ctx.out.join(format!("{stem}.hgrm"));
    let hlog_file = ctx.out.join(format!("{stem}.hlog"));
    let mut argv = ns.prefix();
    let dpdk = matches!(target, Target::Dpdk { .. });
    if !dpdk {
        // The DPDK client is pinned by its EAL lcore list instead.
        argv.extend(["taskset".into(), "-c".into(), path.client_cpu.to_string()]);
    }
    argv.push(ctx.bin.to_string_lossy().into_owned());
    argv.push("load".into());
    match target {
        Target::Socket { transport, addr } => {
            argv.extend([
                "--transport".into(),
                transport.to_string(),
                "--server".into(),
                addr.clone(),
            ]);
        }
        Target::Unix { path } => {
            argv.extend([
                "--transport".into(),
                "unix".into(),
                "--server-path".into(),
                path.clone(),
            ]);
        }
        Target::Dpdk {
            addr, client_ip, ..
        } => {
            argv.extend([
                "--transport".into(),
                "dpdk".into(),
                "--server".into(),
                addr.clone(),
                "--client-ip".into(),
                client_ip.clone(),
            ]);
        }
    }
    let sweep = matches!(offered, Offered::Rates(..));
    let points = match offered {
        Offered::Rate(r) => {
            argv.extend(["--rate".into(), format!("{r}")]);
            1
        }
        Offered::Rates(spec, n) => {
            argv.extend(["--rates".into(), spec.to_string()]);
            n
        }
        Offered::PingPong => {
            if !dpdk {
                argv.extend(["--wait".into(), path.wait.as_str().into()]);
            }
            1
        }
    };
    argv.extend([
        "--size".into(),
        path.size.to_string(),
        "--duration".into(),
        format!("{}", path.duration),
        "--warmup".into(),
        format!("{}", path.warmup),
        "--json".into(),
        json_file.to_string_lossy().into_owned(),
        "--hgrm".into(),
        hgrm_file.to_string_lossy().into_owned(),
    ]);
    if !sweep {
        // A sweep's points are read from their .hgrm files (plotted, never merged).
        argv.extend(["--hlog".into(), hlog_file.to_string_lossy().into_owned()]);
    }
    // Removed (runtime folder, hugepage files) when this run is over.
    let prefix = DpdkPrefix::new("cl");
    if let Target::Dpdk { devices, .. } = target {
        argv.push("--".into());
        argv.extend(eal::args(
            &[path.client_cpu],
            ctx.scenario.placement.hugepages,
            &prefix,
            devices,
        ));
    }
    res.commands.push(shell_line(&argv));
    let mut p = Proc::spawn("bypass load", &argv)?;
    let limit =
        Duration::from_secs_f64((path.duration + path.warmup + 10.0) * points as f64 + 30.0);
    match p.wait(limit) {
        Waited::Exited(0) => {}
        Waited::Exited(c) => {
            return Err(PathError::Failed(format!(
                "bypass load exited with {c}: {}",
                p.stderr_tail(8)
            )))
        }
        Waited::TimedOut => {
            return Err(PathError::Failed(format!(
                "bypass load still running after {:.0} s: {}",
                limit.as_secs_f64(),
                p.stderr_tail(8)
            )))
        }
        Waited::Interrupted => return Err("interrupted".into()),
    }
    let text = std::fs::read_to_string(&json_file)
        .map_err(|e| format!("bypass load wrote no {}: {e}", json_file.display()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not JSON: {e}", json_file.display()))?;
    if sweep {
        // One .hgrm per point, checked by the caller.
        return Ok(v);
    }
    if !hgrm_file.exists() {
        return Err(PathError::Failed(format!(
            "bypass load wrote no {}",
            hgrm_file.display()
        )));
    }
    // The interval log is exact, where the .hgrm rounds each value to its row: rounds merge
    // from it.
    res.histogram = Some(hlog_read::read_file(&hlog_file)?);
    Ok(v["summary"].clone())
}

fn loss_of(s: &Value) -> Loss {
    let u = |k: &str| s[k].as_u64().unwrap_or(0);
    Loss {
        sent: u("sent"),
        received: u("received"),
        lost: u("lost"),
    }
}

/// Runs the path's load plan with `bypass load` and fills the result.
pub fn run_load(
    ctx: &Ctx,
    path: &ResolvedPath,
    ns: &Netns,
    target: &Target,
    res: &mut PathResult,
) -> Result<(), PathError> {
    match path.mode {
        PlanMode::PingPong | PlanMode::Rate => {
            let offered = path.rate.map_or(Offered::PingPong, Offered::Rate);
            let stem = ctx.stem(path);
            let s = load_once(ctx, path, ns, target, offered, &stem, res)?;
            res.latency = Some(
                Latency::from_load_summary(&s)
                    .ok_or_else(|| format!("bypass load summary lacks percentiles: {s}"))?,
            );
            res.rate_per_s = s["achieved_rate"].as_f64();
            res.loss = Some(loss_of(&s));
            res.hgrm = Some(format!("{stem}.hgrm"));
            res.client_report = Some(s);
        }
        PlanMode::Sweep => {
            // One `--rates` run: a fresh transport, warmup and duration per point, and one
            // .hgrm per point named `<stem>-<rate>.hgrm` by bypass load.
            let spec = path.rates_spec.clone();
            let stem = format!("{}-rate", path.name);
            let v = load_once(
                ctx,
                path,
                ns,
                target,
                Offered::Rates(&spec, path.rates.len()),
                &stem,
                res,
            )?;
            let points = v["sweep"]
                .as_array()
                .ok_or_else(|| format!("bypass load --rates wrote no sweep: {v}"))?;
            for s in points {
                let r = s["target_rate"]
                    .as_f64()
                    .ok_or("sweep point without target_rate")?;
                let hgrm = format!("{stem}-{r}.hgrm");
                if !ctx.out.join(&hgrm).exists() {
                    return Err(PathError::Failed(format!("bypass load wrote no {hgrm}")));
                }
                res.sweep.push(sweep_point(r, s, hgrm)?);
            }
            row_from_first_point(ctx, path, res)?;
        }
    }
    Ok(())
}

/// One sweep point from its load summary: corrected and uncorrected figures, the client's
/// schedule lag and the censoring point of lost requests when the client reports them.
fn sweep_point(rate: f64, s: &Value, hgrm: String) -> Result<SweepPoint, PathError> {
    Ok(SweepPoint {
        target_rate: rate,
        achieved_rate: s["achieved_rate"].as_f64().unwrap_or(0.0),
        latency: Latency::from_load_summary(s)
            .ok_or_else(|| format!("sweep point lacks percentiles: {s}"))?,
        uncorrected: Latency::from_load_summary(&s["uncorrected"]),
        loss: loss_of(s),
        hgrm,
        send_lag: SendLag::from_load_summary(s),
        lost_recorded_at_ns: s["lost_recorded_at_ns"].as_u64(),
        platform_model: None,
    })
}

/// A sweep's table row is its lowest-load point; the sweep has its own plot and table.
fn row_from_first_point(
    ctx: &Ctx,
    path: &ResolvedPath,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let first = res.sweep.first().ok_or("empty sweep")?.clone();
    std::fs::copy(
        ctx.out.join(&first.hgrm),
        ctx.out.join(format!("{}.hgrm", path.name)),
    )
    .map_err(|e| format!("copy {}: {e}", first.hgrm))?;
    res.latency = Some(first.latency);
    res.rate_per_s = Some(first.achieved_rate);
    res.loss = Some(first.loss);
    res.hgrm = Some(format!("{}.hgrm", path.name));
    Ok(())
}

/// The path's measurement by its own client, then (with `cross_check`) by sockperf against
/// the same server process; the order alternates by round so neither always runs on a
/// freshly started server.
pub fn measure_with_cross_check(
    ctx: &Ctx,
    path: &ResolvedPath,
    ns: &Netns,
    sockperf_at: (&str, u16),
    ours: impl FnOnce(&mut PathResult) -> Result<(), PathError>,
    res: &mut PathResult,
) -> Result<(), PathError> {
    if path.cross_check.is_none() {
        return ours(res);
    }
    let mut other = PathResult::new(&path.name, "", "", "sockperf", "");
    let stem = format!("{}-sockperf", ctx.stem(path));
    let sockperf_first = ctx.round.is_some_and(|r| r.is_multiple_of(2));
    if sockperf_first {
        run_sockperf(ctx, path, ns, sockperf_at, &stem, &mut other)?;
        ours(res)?;
    } else {
        ours(res)?;
        run_sockperf(ctx, path, ns, sockperf_at, &stem, &mut other)?;
    }
    res.commands.append(&mut other.commands);
    res.cross = Some(Box::new(other));
    Ok(())
}

/// sockperf's summary figures, from its stdout.
#[derive(Debug, Default, PartialEq)]
pub struct SockperfSummary {
    pub run_secs: f64,
    pub sent: u64,
    pub received: u64,
    pub dropped: u64,
}

/// Reads the `[Valid Duration]` and `# dropped messages` lines sockperf prints.
pub fn parse_sockperf_summary(text: &str) -> Option<SockperfSummary> {
    let valid = text.lines().find(|l| l.contains("[Valid Duration]"))?;
    let field = |line: &str, key: &str| -> Option<String> {
        let rest = line.split(key).nth(1)?;
        Some(
            rest.split(|c: char| c == ';' || c.is_whitespace())
                .find(|s| !s.is_empty())?
                .to_string(),
        )
    };
    let dropped_line = text.lines().find(|l| l.contains("# dropped messages"))?;
    Some(SockperfSummary {
        run_secs: field(valid, "RunTime=")?
            .trim_end_matches("sec")
            .parse()
            .ok()?,
        sent: field(valid, "SentMessages=")?.parse().ok()?,
        received: field(valid, "ReceivedMessages=")?.parse().ok()?,
        dropped: field(dropped_line, "# dropped messages = ")?.parse().ok()?,
    })
}

/// Round trips in ns from a `sockperf --full-log` file: rows `packet, txTime(sec),
/// rxTime(sec), latency(usec)` after a header. sockperf's own "latency" column is half the
/// round trip; rx - tx is the whole round trip, which is what every other path reports.
pub fn parse_sockperf_full_log(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut in_rows = false;
    for line in text.lines() {
        if line.starts_with("packet,") {
            in_rows = true;
            continue;
        }
        if !in_rows {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 3 {
            continue;
        }
        let (Ok(tx), Ok(rx)) = (f[1].parse::<f64>(), f[2].parse::<f64>()) else {
            continue;
        };
        // Seconds with 9 decimals: exact to the ns as long as the run is short; a row with
        // rx before tx (never seen) is not a sample.
        let ns = ((rx - tx) * 1e9).round();
        if ns.is_finite() && ns > 0.0 {
            out.push(ns as u64);
        }
    }
    out
}

/// Runs `sockperf ping-pong` against the server's sockperf port; its files are named
/// `<stem>.sockperf.csv` and `<stem>.hgrm`.
pub fn run_sockperf(
    ctx: &Ctx,
    path: &ResolvedPath,
    ns: &Netns,
    (server_ip, port): (&str, u16),
    stem: &str,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let log = ctx.out.join(format!("{stem}.sockperf.csv"));
    let secs = path.duration.ceil().max(1.0) as u64;
    let mut argv = ns.prefix();
    argv.extend([
        "taskset".into(),
        "-c".into(),
        path.client_cpu.to_string(),
        "sockperf".into(),
        "ping-pong".into(),
        "-i".into(),
        server_ip.into(),
        "-p".into(),
        port.to_string(),
        "-t".into(),
        secs.to_string(),
        "--full-log".into(),
        log.to_string_lossy().into_owned(),
    ]);
    if path.wait == WaitMode::Busy {
        // Non-blocking socket, recvfrom in a loop: the spinning client.
        argv.push("--nonblocked".into());
    }
    res.commands.push(shell_line(&argv));
    let mut p = Proc::spawn("sockperf", &argv)?;
    match p.wait(Duration::from_secs(secs + 30)) {
        Waited::Exited(0) => {}
        Waited::Exited(c) => {
            return Err(PathError::Failed(format!(
                "sockperf exited with {c}: {}",
                p.stderr_tail(8)
            )))
        }
        Waited::TimedOut => return Err(PathError::Failed("sockperf did not finish".into())),
        Waited::Interrupted => return Err("interrupted".into()),
    }
    let stdout = p.stdout.join("\n") + "\n" + &p.stderr_tail(200);
    let sum = parse_sockperf_summary(&stdout)
        .ok_or_else(|| format!("no sockperf summary in its output:\n{}", p.stderr_tail(20)))?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let samples = parse_sockperf_full_log(&text);
    if samples.is_empty() {
        return Err(PathError::Failed(format!(
            "{} holds no samples (sockperf received {})",
            log.display(),
            sum.received
        )));
    }
    let mut h = new_latency_histogram();
    let mut clipped = 0u64;
    for s in &samples {
        if h.record(*s).is_err() {
            clipped += 1;
        }
    }
    let hgrm = format!("{stem}.hgrm");
    let mut f = std::fs::File::create(ctx.out.join(&hgrm)).map_err(|e| format!("{hgrm}: {e}"))?;
    write_percentile_distribution(&h, &mut f, 5, 1000.0).map_err(|e| format!("{hgrm}: {e}"))?;
    f.flush().map_err(|e| format!("{hgrm}: {e}"))?;
    res.latency = Some(Latency::from_histogram(&h));
    res.rate_per_s = Some(if sum.run_secs > 0.0 {
        sum.received as f64 / sum.run_secs
    } else {
        0.0
    });
    res.loss = Some(Loss {
        sent: sum.sent,
        received: sum.received,
        lost: sum.dropped,
    });
    res.hgrm = Some(hgrm);
    res.histogram = Some(h);
    res.client_report = Some(json!({
        "sockperf_run_secs": sum.run_secs,
        "sent": sum.sent,
        "received": sum.received,
        "dropped": sum.dropped,
        "samples_in_full_log": samples.len(),
        "samples_out_of_histogram_range": clipped,
        "full_log": log.file_name().map(|n| n.to_string_lossy().into_owned()),
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = "sockperf: [Total Run] RunTime=1.000 sec; Warm up time=400 msec; SentMessages=86353; ReceivedMessages=86352
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.550 sec; SentMessages=47654; ReceivedMessages=47650
sockperf: \x1b[2;35m====> avg-latency=5.761 (std-dev=2.986)\x1b[0m
sockperf: # dropped messages = 4; # duplicated messages = 0; # out-of-order messages = 0
";

    #[test]
    fn parses_sockperf_summary() {
        let s = parse_sockperf_summary(OUT).unwrap();
        assert_eq!(
            s,
            SockperfSummary {
                run_secs: 0.55,
                sent: 47654,
                received: 47650,
                dropped: 4
            }
        );
        assert!(parse_sockperf_summary("nothing").is_none());
    }

    #[test]
    fn parses_full_log_rows_as_round_trips() {
        let log = "------------------------------\ntest was performed using the following parameters: --mps=600000\n------------------------------\nsockperf: [Total Run] RunTime=1.000 sec\npacket, txTime(sec), rxTime(sec), latency(usec)\n0, 2.970676903, 2.970688110, 5.604\n1, 2.970688140, 2.970699326, 5.593\nbroken, x, y\n------------------------------\n";
        assert_eq!(parse_sockperf_full_log(log), vec![11207, 11186]);
        assert!(
            parse_sockperf_full_log("1, 2.0, 3.0, 4\n").is_empty(),
            "rows before the header"
        );
    }
}
