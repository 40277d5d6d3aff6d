//! The clients: `bypass load` (kernel sockets or DPDK) and the unmodified `sockperf ping-pong`,
//! pinned to the client CPU, their outputs read back into the path's result.

use std::io::Write;
use std::net::SocketAddrV4;
use std::time::Duration;

use serde::Serialize;

use super::{shell_line, Ctx, PathError};
use crate::contract::load::{
    LoadCommand, LoadReport, LoadSummary, LoadSweepReport, LoadTarget, Offered, RequestShape,
};
use crate::contract::Verbatim;
use crate::lab::eal;
use crate::lab::proc::{Proc, Waited};
use crate::lab::results::{Latency, Loss, PathResult, RoundTails, SweepPoint};
use crate::lab::scenario::{PlanMode, ResolvedPath};
use crate::lab::topology::{DpdkPrefix, Netns};
use crate::options::WaitMode;
use crate::stats::hlog_read;
use crate::stats::{new_latency_histogram, write_percentile_distribution};

/// Where `bypass load` sends, and (DPDK) the EAL devices of the client's port; each DPDK run
/// gets its own file prefix.
pub struct Target {
    pub to: LoadTarget,
    pub devices: Vec<String>,
    /// `--servers`: the replicas (empty: `to` alone).
    pub replicas: Vec<SocketAddrV4>,
}

impl Target {
    /// A kernel socket target (udp, tcp or unix).
    pub fn socket(to: LoadTarget) -> Target {
        Target {
            to,
            devices: Vec::new(),
            replicas: Vec::new(),
        }
    }
}

/// The files of one `bypass load` run, named after `stem` in the results folder.
struct LoadFiles {
    json: std::path::PathBuf,
    hgrm: std::path::PathBuf,
    hlog: std::path::PathBuf,
}

/// Runs one `bypass load` and returns its JSON text; `points` bounds its time.
fn load_once(
    ctx: &Ctx,
    path: &ResolvedPath,
    ns: &Netns,
    target: &Target,
    offered: Offered,
    files: &LoadFiles,
    res: &mut PathResult,
) -> Result<String, PathError> {
    let dpdk = matches!(target.to, LoadTarget::Dpdk { .. });
    let sweep = match &offered {
        Offered::Rates(_) => Some(path.rates.len()),
        _ => None,
    };
    // Removed (runtime folder, hugepage files) when this run is over.
    let prefix = DpdkPrefix::new("cl");
    let cmd = LoadCommand {
        target: target.to.clone(),
        offered,
        size: path.size,
        duration_s: path.duration,
        warmup_s: path.warmup,
        json: files.json.clone(),
        hgrm: files.hgrm.clone(),
        // A sweep's points are read from their .hgrm files (plotted, never merged).
        hlog: sweep.is_none().then(|| files.hlog.clone()),
        // Kernel sockets refuse it: their checksums are the kernel's.
        checksum: path.checksum.filter(|_| dpdk),
        shape: RequestShape {
            servers: target.replicas.clone(),
            ..path.shape.clone()
        },
        eal: if dpdk {
            eal::args(
                &[path.client_cpu],
                ctx.plan.placement.hugepages,
                &prefix,
                &target.devices,
            )
        } else {
            Vec::new()
        },
    };
    let mut argv = ns.prefix();
    if !dpdk {
        // The DPDK client is pinned by its EAL lcore list instead.
        argv.extend(["taskset".into(), "-c".into(), path.client_cpu.to_string()]);
    }
    argv.push(ctx.bin.to_string_lossy().into_owned());
    argv.extend(cmd.argv());
    res.commands.push(shell_line(&argv));
    let mut p = Proc::spawn("bypass load", &argv)?;
    let points = sweep.unwrap_or(1);
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
    std::fs::read_to_string(&files.json)
        .map_err(|e| format!("bypass load wrote no {}: {e}", files.json.display()).into())
}

/// Reads a report of `bypass load` as its contract type.
fn read<T: serde::de::DeserializeOwned>(file: &std::path::Path, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("{} is not a load report: {e}", file.display()))
}

fn loss_of(s: &LoadSummary) -> Loss {
    Loss {
        sent: s.sent,
        received: s.received,
        lost: s.lost,
    }
}

impl LoadFiles {
    fn new(ctx: &Ctx, stem: &str) -> LoadFiles {
        LoadFiles {
            json: ctx.out.join(format!("{stem}.load.json")),
            hgrm: ctx.out.join(format!("{stem}.hgrm")),
            hlog: ctx.out.join(format!("{stem}.hlog")),
        }
    }
}

/// One measurement (ping-pong or one rate): its figures, its .hgrm and its lossless histogram.
fn run_point(
    ctx: &Ctx,
    path: &ResolvedPath,
    ns: &Netns,
    target: &Target,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let offered = match path.rate {
        Some(r) => Offered::Rate(r),
        // The DPDK client polls its port whatever the wait mode.
        None if matches!(target.to, LoadTarget::Dpdk { .. }) => Offered::PingPong { wait: None },
        None => Offered::PingPong {
            wait: Some(path.wait),
        },
    };
    let stem = ctx.stem(path);
    let files = LoadFiles::new(ctx, &stem);
    let text = load_once(ctx, path, ns, target, offered, &files, res)?;
    let report: LoadReport = read(&files.json, &text)?;
    if !files.hgrm.exists() {
        return Err(PathError::Failed(format!(
            "bypass load wrote no {}",
            files.hgrm.display()
        )));
    }
    // The interval log is exact, where the .hgrm rounds each value to its row: rounds merge
    // from it.
    res.histogram = Some(hlog_read::read_file(&files.hlog)?);
    let s = &report.summary.typed;
    res.latency = Some(s.latency.clone());
    res.rate_per_s = s.achieved_rate;
    res.loss = Some(loss_of(s));
    res.warmup_sent = s.warmup_sent;
    res.send_lag = s.send_lag.clone();
    res.tails = s
        .fanout
        .as_ref()
        .map(|f| RoundTails::of(s.latency.count, f));
    res.hgrm = Some(format!("{stem}.hgrm"));
    res.checksum.client = s.checksum.clone();
    res.client_report = Some(report.summary.verbatim);
    Ok(())
}

/// One `--rates` run: a fresh transport, warmup and duration per point, and one .hgrm per
/// point named `<stem>-<rate>.hgrm` by bypass load.
fn run_sweep(
    ctx: &Ctx,
    path: &ResolvedPath,
    ns: &Netns,
    target: &Target,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let stem = format!("{}-rate", path.name);
    let files = LoadFiles::new(ctx, &stem);
    let offered = Offered::Rates(path.rates_spec.clone());
    let text = load_once(ctx, path, ns, target, offered, &files, res)?;
    let report: LoadSweepReport = read(&files.json, &text)?;
    res.checksum.client = report.sweep.first().and_then(|s| s.checksum.clone());
    for s in &report.sweep {
        let r = s.target_rate.ok_or("sweep point without target_rate")?;
        let hgrm = format!("{stem}-{r}.hgrm");
        if !ctx.out.join(&hgrm).exists() {
            return Err(PathError::Failed(format!("bypass load wrote no {hgrm}")));
        }
        res.sweep.push(sweep_point(r, s, hgrm));
    }
    row_from_first_point(ctx, path, res)
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
        PlanMode::PingPong | PlanMode::Rate => run_point(ctx, path, ns, target, res),
        PlanMode::Sweep => run_sweep(ctx, path, ns, target, res),
    }
}

/// One sweep point from its load summary: corrected and uncorrected figures, the client's
/// schedule lag and the censoring point of lost requests when the client reports them.
fn sweep_point(rate: f64, s: &LoadSummary, hgrm: String) -> SweepPoint {
    SweepPoint {
        target_rate: rate,
        achieved_rate: s.achieved_rate.unwrap_or(0.0),
        latency: s.latency.clone(),
        uncorrected: s.uncorrected.clone(),
        loss: loss_of(s),
        hgrm,
        send_lag: s.send_lag.clone(),
        lost_recorded_at_ns: s.lost_recorded_at_ns,
        platform_model: None,
    }
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

/// What the lab keeps of a sockperf run as its client report (sockperf writes no JSON).
#[derive(Serialize)]
struct SockperfReport {
    sockperf_run_secs: f64,
    sent: u64,
    received: u64,
    dropped: u64,
    samples_in_full_log: usize,
    samples_out_of_histogram_range: u64,
    full_log: Option<String>,
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
    res.client_report = Some(Verbatim::of(&SockperfReport {
        sockperf_run_secs: sum.run_secs,
        sent: sum.sent,
        received: sum.received,
        dropped: sum.dropped,
        samples_in_full_log: samples.len(),
        samples_out_of_histogram_range: clipped,
        full_log: log.file_name().map(|n| n.to_string_lossy().into_owned()),
    })?);
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
