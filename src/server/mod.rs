//! `bypass serve`: poll-mode workers on EAL lcores, one per (port, rx queue), and a control
//! thread (the main lcore) that reports once per interval.

pub mod config;
pub mod counters;
pub mod latency;
pub mod report;
pub mod rpc;
pub mod worker;

use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

use crate::dpdk::{self, lcore, Burst, DpdkError, Eal, Mempool, Port, PortConfig};
use crate::graph::nodes::NodeConfig;
use crate::graph::{GraphCounters, GraphStats};
use crate::shutdown;
use crate::stats::{new_latency_histogram, HlogWriter, Summary};
use crate::wire::{Ipv4Address, MacAddress};

use config::{ConfigError, Mode, ServeConfig, Topology};
use counters::{WorkerCounters, WorkerSnapshot};
use latency::LatencyCollector;
use report::{
    drops_by_reason, node_lines, Final, Interval, MempoolTotal, PortTotal, ServiceLine,
    WorkerInterval, WorkerTotal,
};
use rpc::RpcSpec;
use worker::WorkerSpec;

#[derive(Debug)]
pub enum ServeError {
    Config(ConfigError),
    Dpdk(DpdkError),
    Setup(String),
    WorkerPanicked(usize),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Config(e) => write!(f, "{e}"),
            ServeError::Dpdk(e) => write!(f, "dpdk: {e}"),
            ServeError::Setup(m) => f.write_str(m),
            ServeError::WorkerPanicked(w) => write!(f, "worker {w} panicked"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<ConfigError> for ServeError {
    fn from(e: ConfigError) -> Self {
        ServeError::Config(e)
    }
}

impl From<DpdkError> for ServeError {
    fn from(e: DpdkError) -> Self {
        ServeError::Dpdk(e)
    }
}

/// One worker's assignment.
struct Assignment {
    lcore: u32,
    rx_port: usize,
    tx_port: usize,
    queue: u16,
}

/// Frame used to prime loopback topologies: addressed to the port itself, with the local
/// experimental ethertype so nothing on a real wire mistakes it for traffic.
fn prime_frame(mac: [u8; 6]) -> [u8; 64] {
    let mut f = [0u8; 64];
    f[0..6].copy_from_slice(&mac);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f
}

/// Sends `count` priming frames out of queue 0 of `port`; returns how many the port took.
fn tx_first(port: &mut Port, pool: &Mempool, count: u32) -> Result<u64, ServeError> {
    let mut txq = port
        .take_tx(0)
        .ok_or_else(|| ServeError::Setup("tx queue 0 already taken".into()))?;
    let frame = prime_frame(port.mac());
    let mut sent = 0u64;
    let mut left = count;
    while left > 0 {
        let mut burst = Burst::<32>::new();
        while left > 0 && !burst.is_full() {
            let mut m = pool
                .alloc()
                .ok_or_else(|| ServeError::Setup("mempool exhausted while priming".into()))?;
            if !m.set_data(&frame) {
                return Err(ServeError::Setup(
                    "mbuf too small for a priming frame".into(),
                ));
            }
            let _ = burst.push(m);
            left -= 1;
        }
        let (s, _) = worker::flush(&mut txq, &mut burst, 16);
        sent += s;
    }
    port.return_tx(txq);
    Ok(sent)
}

/// Runs the server until the duration passes or a stop is requested, printing as it goes,
/// and returns the final report (already printed).
pub fn serve(cfg: &ServeConfig, eal_args: &[String]) -> Result<Final, ServeError> {
    cfg.validate()?;
    let eal_args: Vec<String> = if eal_args.is_empty() {
        cfg.eal.clone()
    } else {
        eal_args.to_vec()
    };
    if eal_args.is_empty() {
        return Err(ServeError::Setup(
            "no EAL arguments: give them after `--` (e.g. `bypass serve -- -l 0,1 --vdev=net_null0`) or as `eal = [...]` in the config".into(),
        ));
    }
    let mut argv = vec!["bypass".to_string()];
    argv.extend(eal_args);
    let eal = Eal::init(&argv)?;
    shutdown::install_handlers()
        .map_err(|e| ServeError::Setup(format!("cannot install signal handlers: {e}")))?;

    let port_ids: Vec<u16> = if cfg.ports.is_empty() {
        (0..dpdk::port_count()).collect()
    } else {
        cfg.ports
            .iter()
            .map(|p| dpdk::find_port(p))
            .collect::<Result<_, _>>()?
    };
    if port_ids.is_empty() {
        return Err(ServeError::Setup(
            "no ports: add a device to the EAL arguments, e.g. --vdev=net_null0".into(),
        ));
    }
    if cfg.topology == Topology::Paired && !port_ids.len().is_multiple_of(2) {
        return Err(ServeError::Config(ConfigError {
            field: "ports".into(),
            message: format!(
                "the paired topology needs an even number of ports, the EAL has {}",
                port_ids.len()
            ),
        }));
    }

    let workers = eal.worker_lcores();
    let needed = port_ids.len() * cfg.queues as usize;
    if needed > workers.len() {
        return Err(ServeError::Setup(format!(
            "{needed} (port, queue) pairs need {needed} worker lcores, the EAL has {} (give more cores with -l; the first one is the control thread's)",
            workers.len()
        )));
    }

    let pool = Mempool::new("bypass_pool", cfg.mbufs, cfg.mempool_cache, 2048, -1)?;
    let pcfg = PortConfig {
        rx_queues: cfg.queues,
        tx_queues: cfg.queues,
        rx_desc: cfg.rx_desc,
        tx_desc: cfg.tx_desc,
        ..PortConfig::default()
    };
    let mut ports: Vec<Port> = port_ids
        .iter()
        .map(|&id| Port::configure(id, &pcfg, &pool))
        .collect::<Result<_, _>>()?;
    for p in ports.iter_mut() {
        p.start()?;
    }
    let mut primed = vec![0u64; ports.len()];
    if cfg.tx_first > 0 {
        for (i, p) in ports.iter_mut().enumerate() {
            primed[i] = tx_first(p, &pool, cfg.tx_first)?;
        }
    }

    let mut assignments = Vec::new();
    for (rx_port, _) in ports.iter().enumerate() {
        let tx_port = match cfg.topology {
            Topology::Loop => rx_port,
            Topology::Paired => rx_port ^ 1,
        };
        for queue in 0..cfg.queues {
            assignments.push(Assignment {
                lcore: workers[assignments.len()],
                rx_port,
                tx_port,
                queue,
            });
        }
    }

    let counters: Vec<Arc<WorkerCounters>> = assignments
        .iter()
        .map(|_| Arc::new(WorkerCounters::default()))
        .collect();
    let tsc_hz = eal.tsc_hz();
    let ip: Option<Ipv4Address> = cfg.ip.as_deref().and_then(|s| s.parse().ok());
    let mac_override: Option<MacAddress> = cfg.mac.as_deref().and_then(|s| s.parse().ok());
    let mut joins = Vec::new();
    let mut graphs: Vec<Arc<GraphCounters>> = Vec::new();
    let mut collectors: Vec<LatencyCollector> = Vec::new();
    for (i, a) in assignments.iter().enumerate() {
        let rx = ports[a.rx_port]
            .take_rx(a.queue)
            .ok_or_else(|| ServeError::Setup(format!("rx queue {} taken twice", a.queue)))?;
        let tx = ports[a.tx_port]
            .take_tx(a.queue)
            .ok_or_else(|| ServeError::Setup(format!("tx queue {} taken twice", a.queue)))?;
        let spec = WorkerSpec {
            rx,
            tx,
            burst: cfg.burst as usize,
            poll_mode: cfg.poll_mode,
            idle_polls: cfg.idle_polls,
            idle_sleep: Duration::from_micros(cfg.idle_sleep_us as u64),
            tx_retries: cfg.tx_retries,
            counters: Arc::clone(&counters[i]),
        };
        let launched = match cfg.mode {
            Mode::Io => {
                lcore::launch(a.lcore, move || worker::run_io(spec)).map_err(ServeError::from)
            }
            Mode::Rpc => {
                let (recorder, collector) = latency::pair(tsc_hz, cfg.interval_ms * 1_000_000);
                collectors.push(collector);
                let (gtx, grx) = crossbeam::channel::bounded(1);
                let (Some(ip), mac) = (
                    ip,
                    mac_override.unwrap_or(MacAddress(ports[a.rx_port].mac())),
                ) else {
                    return Err(ServeError::Config(ConfigError {
                        field: "ip".into(),
                        message: "rpc mode needs the IPv4 address to answer for".into(),
                    }));
                };
                let nodes = NodeConfig {
                    rpc_port: cfg.rpc_port,
                    sockperf_port: cfg.sockperf_port,
                    spin_max_ns: cfg.spin_max_ns,
                    ..NodeConfig::new(mac, ip)
                };
                let spec = RpcSpec {
                    base: spec,
                    nodes,
                    vector: cfg.vector as usize,
                    tsc_hz,
                    latency: recorder,
                    graph_counters: gtx,
                };
                let j = lcore::launch(a.lcore, move || rpc::run_rpc(spec));
                // The graph is built on the worker; wait for its counters (or its error).
                match j.as_ref().map(|_| grx.recv()) {
                    Ok(Ok(Ok(g))) => {
                        graphs.push(g);
                        j.map_err(ServeError::from)
                    }
                    Ok(Ok(Err(e))) => {
                        joins.extend(j.ok());
                        Err(ServeError::Setup(format!("graph: {e}")))
                    }
                    Ok(Err(_)) => {
                        joins.extend(j.ok());
                        Err(ServeError::WorkerPanicked(i))
                    }
                    Err(_) => j.map_err(ServeError::from),
                }
            }
        };
        match launched {
            Ok(j) => joins.push(j),
            Err(e) => {
                // Workers already running must stop before the ports they poll are closed.
                shutdown::request();
                for j in joins {
                    let _ = j.join();
                }
                return Err(e);
            }
        }
    }

    let names: Vec<String> = ports.iter().map(|p| p.name().to_string()).collect();
    let mut hlog = match &cfg.hlog {
        Some(path) => Some(
            File::create(path)
                .and_then(|f| HlogWriter::new(BufWriter::new(f), SystemTime::now()))
                .map_err(|e| ServeError::Setup(format!("cannot write hlog {path}: {e}")))?,
        ),
        None => None,
    };
    let started = Instant::now();
    let mut telemetry = Telemetry {
        counters: &counters,
        graphs: &graphs,
        collectors: &collectors,
        total_service: new_latency_histogram(),
        hlog: hlog.as_mut(),
        started,
        last_tick: started,
    };
    let stop_reason = control_loop(cfg, &assignments, &names, &mut telemetry);
    shutdown::request();

    let mut totals = Vec::new();
    let mut panicked = None;
    for (i, j) in joins.into_iter().enumerate() {
        match j.join() {
            Ok((rx, tx, snap)) => {
                let a = &assignments[i];
                ports[a.rx_port].return_rx(rx);
                ports[a.tx_port].return_tx(tx);
                totals.push(snap);
            }
            Err(_) => {
                panicked.get_or_insert(i);
                totals.push(counters[i].snapshot());
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();

    let mut port_totals = Vec::new();
    for (i, p) in ports.iter_mut().enumerate() {
        let drained = p.drain_rx(&pool, pool.capacity() as u64);
        let _ = p.stop();
        port_totals.push(PortTotal {
            name: p.name().to_string(),
            driver: p.driver().to_string(),
            mac: report::mac_string(p.mac()),
            link: p.link(),
            stats: p.stats().unwrap_or_default(),
            tx_first: primed[i],
            drained,
        });
    }
    // Closing the ports returns the buffers their rx rings held (net_tap prefills its ring).
    drop(ports);

    // Whatever the workers handed over after the last interval.
    let mut tail = new_latency_histogram();
    for c in &collectors {
        c.collect(&mut tail);
    }
    let tail_offset = telemetry.last_tick.duration_since(started).as_secs_f64();
    let tail_len = telemetry.last_tick.elapsed().as_secs_f64();
    if let Some(w) = telemetry.hlog.as_mut() {
        if !tail.is_empty() {
            let _ = w.write_interval(None, tail_offset, tail_len, &tail);
        }
        let _ = w.flush();
    }
    let _ = telemetry.total_service.add(&tail);

    let mut sum = WorkerSnapshot::default();
    for t in &totals {
        sum.add(t);
    }
    let graph_total = (!graphs.is_empty()).then(|| GraphStats::sum(&graph_snapshots(&graphs)));
    let graph_drops = graph_total.as_ref().map_or(0, GraphStats::total_drops);
    let fin = Final {
        kind: "final",
        mode: format!("{:?}", cfg.mode).to_lowercase(),
        stop_reason,
        elapsed_s: elapsed,
        rx: sum.rx,
        tx: sum.tx,
        drops: sum.tx_drops + graph_drops,
        rx_pps: sum.rx as f64 / elapsed.max(1e-9),
        tx_pps: sum.tx as f64 / elapsed.max(1e-9),
        workers: assignments
            .iter()
            .zip(&totals)
            .enumerate()
            .map(|(i, (a, t))| WorkerTotal {
                worker: i,
                lcore: a.lcore,
                port: names[a.rx_port].clone(),
                queue: a.queue,
                counters: *t,
            })
            .collect(),
        vector_avg: graph_total.as_ref().map(entry_vector_avg),
        drops_by_reason: drops_by_reason(graph_total.as_ref(), sum.tx_drops),
        nodes: graph_total.as_ref().map(node_lines).unwrap_or_default(),
        service_ns: (cfg.mode == Mode::Rpc)
            .then(|| Summary::from_histogram(&telemetry.total_service)),
        ports: port_totals,
        mempool: MempoolTotal {
            capacity: pool.capacity(),
            in_use: pool.in_use(),
        },
        dpdk_version: dpdk::DPDK_VERSION,
        git_rev: crate::GIT_REV,
    };
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(&fin).expect("report serialises")
        );
    } else {
        println!("{}", fin.human());
    }
    drop(pool);
    drop(eal);
    if let Some(w) = panicked {
        return Err(ServeError::WorkerPanicked(w));
    }
    Ok(fin)
}

/// What the control thread reads each interval.
struct Telemetry<'a> {
    counters: &'a [Arc<WorkerCounters>],
    graphs: &'a [Arc<GraphCounters>],
    collectors: &'a [LatencyCollector],
    total_service: Histogram<u64>,
    hlog: Option<&'a mut HlogWriter<BufWriter<File>>>,
    started: Instant,
    last_tick: Instant,
}

fn graph_snapshots(graphs: &[Arc<GraphCounters>]) -> Vec<GraphStats> {
    graphs.iter().map(|g| g.snapshot()).collect()
}

/// Packets per dispatch of the graph's entry node: how full the vectors run.
fn entry_vector_avg(g: &GraphStats) -> f64 {
    g.node("ethernet-input")
        .map_or(0.0, |n| n.avg_vector_size())
}

/// net_tap asks the kernel for a real-time signal per received packet (its rx burst skips the
/// read syscall until one arrives). Process-directed signals go to the main thread first, so
/// under load this thread was interrupted tens of thousands of times a second, fell behind
/// with its reports and took many seconds to notice SIGINT. Blocking the real-time range here
/// lets the kernel deliver them to another thread (the PMD's handler only bumps a counter);
/// SIGINT and SIGTERM are not in that range.
fn keep_realtime_signals_off_this_thread() {
    // SAFETY: sigset_t is plain data that sigemptyset initialises before use; sigaddset and
    // pthread_sigmask only read and write the set and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            libc::sigaddset(&mut set, sig);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            eprintln!("bypass serve: could not block real-time signals on the control thread (error {rc})");
        }
    }
}

/// Reports once per interval until the duration passes or a stop is requested; returns why
/// it stopped.
fn control_loop(
    cfg: &ServeConfig,
    assignments: &[Assignment],
    names: &[String],
    t: &mut Telemetry,
) -> &'static str {
    keep_realtime_signals_off_this_thread();
    let started = t.started;
    let interval = Duration::from_millis(cfg.interval_ms);
    let deadline = (cfg.duration > 0.0).then(|| started + Duration::from_secs_f64(cfg.duration));
    let mut prev: Vec<WorkerSnapshot> = t.counters.iter().map(|c| c.snapshot()).collect();
    let mut prev_graph = GraphStats::sum(&graph_snapshots(t.graphs));
    let mut next_tick = started + interval;
    let mut service = new_latency_histogram();
    loop {
        // Short sleeps keep the reaction to a signal or the deadline within a few ms.
        let now = Instant::now();
        if shutdown::requested() {
            return "signal";
        }
        if deadline.is_some_and(|d| now >= d) {
            return "duration";
        }
        if now < next_tick {
            let wake = deadline.map_or(next_tick, |d| d.min(next_tick));
            std::thread::sleep(
                wake.saturating_duration_since(now)
                    .min(Duration::from_millis(10)),
            );
            continue;
        }
        next_tick += interval;
        let dt = now.duration_since(t.last_tick).as_secs_f64().max(1e-9);
        let offset = t.last_tick.duration_since(started).as_secs_f64();
        t.last_tick = now;
        let mut line = Interval {
            kind: "interval",
            elapsed_s: now.duration_since(started).as_secs_f64(),
            rx_pps: 0.0,
            tx_pps: 0.0,
            drops: 0,
            workers: Vec::with_capacity(t.counters.len()),
            vector_avg: None,
            drops_by_reason: Default::default(),
            nodes: Vec::new(),
            service_ns: None,
        };
        let mut tx_drops = 0;
        for (i, c) in t.counters.iter().enumerate() {
            let cur = c.snapshot();
            let d = cur.delta(&prev[i]);
            prev[i] = cur;
            let w = WorkerInterval {
                worker: i,
                lcore: assignments[i].lcore,
                port: names[assignments[i].rx_port].clone(),
                queue: assignments[i].queue,
                rx_pps: d.rx as f64 / dt,
                tx_pps: d.tx as f64 / dt,
                drops: d.tx_drops,
            };
            line.rx_pps += w.rx_pps;
            line.tx_pps += w.tx_pps;
            tx_drops += w.drops;
            line.workers.push(w);
        }
        let mut graph_delta = None;
        if !t.graphs.is_empty() {
            let cur = GraphStats::sum(&graph_snapshots(t.graphs));
            let d = cur.delta(&prev_graph);
            prev_graph = cur;
            line.vector_avg = Some(entry_vector_avg(&d));
            line.nodes = node_lines(&d);
            graph_delta = Some(d);
        }
        line.drops_by_reason = drops_by_reason(graph_delta.as_ref(), tx_drops);
        line.drops = line.drops_by_reason.values().sum();
        if !t.collectors.is_empty() {
            service.reset();
            for c in t.collectors {
                c.collect(&mut service);
            }
            line.service_ns = Some(ServiceLine {
                count: service.len(),
                p50_ns: service.value_at_quantile(0.5),
                p99_ns: service.value_at_quantile(0.99),
                p999_ns: service.value_at_quantile(0.999),
                max_ns: service.max(),
            });
            let _ = t.total_service.add(&service);
            if let Some(w) = t.hlog.as_mut() {
                if let Err(e) = w.write_interval(None, offset, dt, &service) {
                    eprintln!("bypass serve: hlog write failed, no more intervals: {e}");
                    t.hlog = None;
                }
            }
        }
        if cfg.json {
            println!(
                "{}",
                serde_json::to_string(&line).expect("report serialises")
            );
        } else {
            println!("{}", line.human());
        }
    }
}
