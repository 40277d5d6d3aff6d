//! `bypass serve`: poll-mode workers on EAL lcores, one per (port, rx queue), and a control
//! thread (the main lcore) that reports once per interval: setup (EAL, pool, ports), launch
//! (the workers), the control loop, and the final report.

#![forbid(unsafe_code)]

pub mod args;
pub mod config;
pub mod counters;
pub mod latency;
mod neighbor;
mod packet;
pub mod relay;
pub mod report;
pub mod rpc;
pub mod worker;

use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

use crate::dpdk::lcore::{self, LcoreJoin};
use crate::dpdk::{self, DpdkError, Eal, Mempool, Port, PortConfig, RxQueue, TxQueue};
use crate::graph::nodes::{NodeConfig, RelayCounters, RelaySnapshot, RelaySpec, RxChecksum};
use crate::graph::{GraphCounters, GraphStats};
use crate::options::{ChecksumCaps, ChecksumChoice, ChecksumPolicy};
use crate::os::signal;
use crate::stats::{new_latency_histogram, HlogWriter, Summary};
use crate::wire::{Ipv4Address, MacAddress};

use config::{ConfigError, Mode, ServeConfig, Topology};
use counters::{WorkerCounters, WorkerSnapshot};
use latency::LatencyCollector;
use report::{
    drops_by_reason, node_lines, Final, Interval, MempoolTotal, PortTotal, ServeFinal,
    ServeInterval, ServePort, ServiceLine, WorkerInterval, WorkerTotal,
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
            ServeError::Config(e) => write!(f, "config: {e}"),
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
    /// Joined topology: the other ports this worker polls (and sends on), in order; their
    /// packets carry port tags 1, 2, ...
    more: Vec<usize>,
}

/// What `serve` holds while it runs. Fields drop in declaration order, which is the order the
/// resources must go: the ports close first (returning the buffers their rings hold to the
/// pool), then the pool, then the EAL both live in.
struct Setup {
    ports: Vec<Port>,
    /// Each port's checksum policy, resolved before it was configured (rpc mode: io
    /// forwarding checks nothing).
    checksums: Vec<Option<ChecksumChoice>>,
    /// Priming frames each port took (`tx_first`).
    primed: Vec<u64>,
    /// The relays as the graphs take them, every upstream's MAC known.
    relays: Vec<RelaySpec>,
    pool: Mempool,
    eal: Eal,
}

impl Setup {
    /// The EAL, the stop-signal handlers, the pool and the started (and primed) ports.
    fn new(cfg: &ServeConfig, eal_args: &[String]) -> Result<Setup, ServeError> {
        cfg.validate()?;
        // Before the EAL: a SIGINT/SIGTERM during its init (a few hundred ms) used to kill the
        // process with its runtime folder made and no report; now it is a stop request that
        // the control loop sees as soon as the ports are up.
        signal::install_stop_handlers()
            .map_err(|e| ServeError::Setup(format!("cannot install signal handlers: {e}")))?;
        let eal = Eal::init(&eal_argv(cfg, eal_args)?)?;
        let port_ids = port_ids(cfg)?;
        let needed = if cfg.topology == Topology::Joined {
            cfg.queues as usize
        } else {
            port_ids.len() * cfg.queues as usize
        };
        let lcores = eal.worker_lcores().len();
        if needed > lcores {
            return Err(ServeError::Setup(format!(
                "{needed} (port, queue) pairs need {needed} worker lcores, the EAL has {lcores} (give more cores with -l; the first one is the control thread's)"
            )));
        }
        let checksums = port_ids
            .iter()
            .map(|&id| {
                (cfg.mode == Mode::Rpc)
                    .then(|| resolve_checksum(cfg.checksum, id))
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pool = Mempool::new("bypass_pool", cfg.mbufs, cfg.mempool_cache, 2048, -1)?;
        let mut ports: Vec<Port> = port_ids
            .iter()
            .zip(&checksums)
            .map(|(&id, c)| {
                let pcfg = PortConfig {
                    rx_queues: cfg.queues,
                    tx_queues: cfg.queues,
                    rx_desc: cfg.rx_desc,
                    tx_desc: cfg.tx_desc,
                    rx_checksum_offload: c
                        .as_ref()
                        .is_some_and(|c| c.resolved == ChecksumPolicy::Offload),
                    ..PortConfig::default()
                };
                Port::configure(id, &pcfg, &pool)
            })
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
        let relays = relay_specs(cfg, &mut ports, &port_ids, &pool)?;
        Ok(Setup {
            ports,
            checksums,
            primed,
            relays,
            pool,
            eal,
        })
    }

    /// Drains, stops and closes every port and says what each did. Closing returns the
    /// buffers their rx rings held (net_tap prefills its ring), so the pool's count of
    /// buffers in use is read after this.
    fn close_ports(&mut self) -> Vec<PortTotal> {
        let pool = &self.pool;
        let totals = self
            .ports
            .iter_mut()
            .zip(&self.primed)
            .zip(&self.checksums)
            .map(|((p, &primed), checksum)| {
                let drained = p.drain_rx(pool, pool.capacity() as u64);
                // Before the stop: a stopped port reports its link down (net_tap even sets
                // its interface down), which said nothing about the run.
                let link = p.link();
                if let Err(e) = p.stop() {
                    eprintln!("bypass: port {}: {e}", p.name());
                }
                PortTotal {
                    port: ServePort {
                        name: p.name().to_string(),
                        driver: p.driver().to_string(),
                        checksum: checksum.clone(),
                    },
                    mac: report::mac_string(p.mac()),
                    link,
                    stats: p.stats().unwrap_or_default(),
                    tx_first: primed,
                    drained,
                }
            })
            .collect();
        self.ports.clear();
        totals
    }
}

/// How long a relay waits at start for an upstream's ARP answer.
const ARP_TIMEOUT: Duration = Duration::from_secs(3);

/// The configured relays with `via` as an index in the worker's ports and every upstream's
/// MAC: ours for an address of this process (the first port's, or `mac`: what a joined
/// worker answers as), the configured one, or asked by ARP on the via port (the first port
/// when none), once per address.
fn relay_specs(
    cfg: &ServeConfig,
    ports: &mut [Port],
    port_ids: &[u16],
    pool: &Mempool,
) -> Result<Vec<RelaySpec>, ServeError> {
    let (Some(ip), Some(first)) = (cfg.ip, ports.first()) else {
        return Ok(Vec::new());
    };
    let ours = cfg.mac.unwrap_or(MacAddress(first.mac()));
    let local = NodeConfig {
        relay_ips: relay::relay_ips(&cfg.relays),
        ..NodeConfig::new(ours, ip)
    };
    let via_index = |name: &str| -> Result<u16, String> {
        let id = dpdk::find_port(name).map_err(|e| e.to_string())?;
        port_ids
            .iter()
            .position(|&p| p == id)
            .map(|i| i as u16)
            .ok_or_else(|| format!("{name} is not one of the ports served"))
    };
    let mut asked: Vec<(Ipv4Address, MacAddress)> = Vec::new();
    let mac_of = |i: usize, r: &relay::RelayConfig, up: std::net::SocketAddrV4| {
        let up_ip = Ipv4Address(up.ip().octets());
        if local.is_ours(up_ip) {
            return Ok(ours);
        }
        if let Some(m) = r
            .upstream_mac(&format!("relay[{i}].upstream_mac"))
            .map_err(|e| e.to_string())?
        {
            return Ok(m);
        }
        if let Some(&(_, m)) = asked.iter().find(|(a, _)| *a == up_ip) {
            return Ok(m);
        }
        let via = r.via.as_deref().map(via_index).transpose()?.unwrap_or(0);
        let me = (ours, Ipv4Address(r.listen.ip().octets()));
        let m = neighbor::resolve(&mut ports[usize::from(via)], pool, me, up_ip, ARP_TIMEOUT)
            .map_err(|e| format!("relay[{i}].upstream {up}: {e}"))?;
        asked.push((up_ip, m));
        Ok(m)
    };
    relay::specs(&cfg.relays, via_index, mac_of).map_err(ServeError::Setup)
}

/// Port `id`'s checksum policy from the request, its driver and its offloads. Tx checksums
/// stay in software whatever the port offers: replies are the requests rewritten in place,
/// so their checksums are a handful of 16-bit adds folded into the request's, cheaper than
/// setting the mbuf's tx flags and lengths and seeding the pseudo-header sum that a NIC's
/// UDP offload needs (docs/memif.md).
fn resolve_checksum(requested: ChecksumPolicy, id: u16) -> Result<ChecksumChoice, ServeError> {
    let dev = dpdk::device_info(id)?;
    let caps = ChecksumCaps {
        rx_ipv4: dev.checksum.rx_ipv4,
        rx_udp: dev.checksum.rx_udp,
    };
    Ok(requested.resolve("checksum", &dev.name, &dev.driver, caps)?)
}

/// The nodes' form of a resolved policy.
fn rx_checksum(c: Option<&ChecksumChoice>) -> RxChecksum {
    match c.map(|c| c.resolved) {
        Some(ChecksumPolicy::Trust) => RxChecksum::Trust,
        Some(ChecksumPolicy::Offload) => RxChecksum::Offload,
        // `resolve` never leaves auto; verifying is the safe reading of anything else.
        _ => RxChecksum::Verify,
    }
}

/// The EAL's argv: the arguments after `--`, else the config's `eal`.
fn eal_argv(cfg: &ServeConfig, eal_args: &[String]) -> Result<Vec<String>, ServeError> {
    let args = if eal_args.is_empty() {
        &cfg.eal[..]
    } else {
        eal_args
    };
    if args.is_empty() {
        return Err(ServeError::Setup(
            "no EAL arguments: give them after `--` (e.g. `bypass serve -- -l 0,1 --vdev=net_null0`) or as `eal = [...]` in the config".into(),
        ));
    }
    Ok(std::iter::once("bypass".to_string())
        .chain(args.iter().cloned())
        .collect())
}

/// The ports the config names (all the EAL has when it names none), checked against the
/// topology.
fn port_ids(cfg: &ServeConfig) -> Result<Vec<u16>, ServeError> {
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
    Ok(port_ids)
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
    let mut burst = Vec::with_capacity(32);
    while left > 0 {
        while left > 0 && burst.len() < burst.capacity() {
            let mut m = pool
                .alloc()
                .ok_or_else(|| ServeError::Setup("mempool exhausted while priming".into()))?;
            if !m.set_data(&frame) {
                return Err(ServeError::Setup(
                    "mbuf too small for a priming frame".into(),
                ));
            }
            let _ = dpdk::push_within(&mut burst, m);
            left -= 1;
        }
        let (s, _) = worker::flush(&mut txq, &mut burst, 16);
        sent += s;
    }
    port.return_tx(txq);
    Ok(sent)
}

/// Workers in order: each port's queues, on the worker lcores in order.
fn assign(cfg: &ServeConfig, ports: usize, lcores: &[u32]) -> Vec<Assignment> {
    let mut assignments = Vec::new();
    if cfg.topology == Topology::Joined {
        for queue in 0..cfg.queues {
            assignments.push(Assignment {
                lcore: lcores[assignments.len()],
                rx_port: 0,
                tx_port: 0,
                queue,
                more: (1..ports).collect(),
            });
        }
        return assignments;
    }
    for rx_port in 0..ports {
        let tx_port = match cfg.topology {
            Topology::Loop | Topology::Joined => rx_port,
            Topology::Paired => rx_port ^ 1,
        };
        for queue in 0..cfg.queues {
            assignments.push(Assignment {
                lcore: lcores[assignments.len()],
                rx_port,
                tx_port,
                queue,
                more: Vec::new(),
            });
        }
    }
    assignments
}

/// What a worker hands back when it stops: its queues (for the drain; the assignment's ports
/// in order) and its totals.
type WorkerEnd = (rpc::Queues, WorkerSnapshot);

/// The running workers and the ends the control thread reads them by.
struct Workers {
    joins: Vec<LcoreJoin<WorkerEnd>>,
    /// Each rpc worker's relay counters (empty cells when no relays are configured).
    relays: Vec<Arc<RelayCounters>>,
    counters: Vec<Arc<WorkerCounters>>,
    graphs: Vec<Arc<GraphCounters>>,
    collectors: Vec<LatencyCollector>,
}

/// Starts one worker per assignment. On an error, the workers already running are stopped
/// and joined before it returns: the ports they poll close after.
fn launch(
    cfg: &ServeConfig,
    setup: &mut Setup,
    assignments: &[Assignment],
) -> Result<Workers, ServeError> {
    let mut w = Workers {
        joins: Vec::new(),
        counters: assignments
            .iter()
            .map(|_| Arc::new(WorkerCounters::default()))
            .collect(),
        graphs: Vec::new(),
        collectors: Vec::new(),
        relays: Vec::new(),
    };
    for (i, a) in assignments.iter().enumerate() {
        if let Err(e) = launch_one(cfg, setup, a, i, &mut w) {
            signal::request_stop();
            for j in w.joins {
                let _ = j.join();
            }
            return Err(e);
        }
    }
    Ok(w)
}

fn launch_one(
    cfg: &ServeConfig,
    setup: &mut Setup,
    a: &Assignment,
    i: usize,
    w: &mut Workers,
) -> Result<(), ServeError> {
    let rx = setup.ports[a.rx_port]
        .take_rx(a.queue)
        .ok_or_else(|| ServeError::Setup(format!("rx queue {} taken twice", a.queue)))?;
    let tx = setup.ports[a.tx_port]
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
        counters: Arc::clone(&w.counters[i]),
    };
    match cfg.mode {
        Mode::Io => {
            w.joins.push(lcore::launch(a.lcore, move || {
                let (rx, tx, s) = worker::run_io(spec);
                (vec![(rx, tx)], s)
            })?);
            Ok(())
        }
        Mode::Rpc => {
            let mac = cfg.mac.unwrap_or(MacAddress(setup.ports[a.rx_port].mac()));
            let checksum = rx_checksum(setup.checksums[a.rx_port].as_ref());
            let mut more = Vec::with_capacity(a.more.len());
            for &p in &a.more {
                let port = &mut setup.ports[p];
                let q = port.take_rx(a.queue).zip(port.take_tx(a.queue));
                more.push(q.ok_or_else(|| {
                    ServeError::Setup(format!("queue {} of port {p} taken twice", a.queue))
                })?);
            }
            let port = PortSide {
                mac,
                checksum,
                more,
            };
            launch_rpc(cfg, setup, port, a.lcore, spec, i, w)
        }
    }
}

/// What an rpc worker's graph takes from the port it receives on, and a joined worker's other
/// ports' queues.
struct PortSide {
    mac: MacAddress,
    checksum: RxChecksum,
    more: Vec<(RxQueue, TxQueue)>,
}

/// Starts an rpc worker and waits for the graph it builds on its own lcore.
fn launch_rpc(
    cfg: &ServeConfig,
    setup: &Setup,
    port: PortSide,
    lcore_id: u32,
    base: WorkerSpec,
    i: usize,
    w: &mut Workers,
) -> Result<(), ServeError> {
    let tsc_hz = setup.eal.tsc_hz();
    let (recorder, collector) = latency::pair(tsc_hz, cfg.interval_ms * 1_000_000);
    w.collectors.push(collector);
    let Some(ip) = cfg.ip else {
        return Err(ServeError::Config(ConfigError {
            field: "ip".into(),
            message: "rpc mode needs the IPv4 address to answer for".into(),
        }));
    };
    let nodes = NodeConfig {
        rpc_port: cfg.rpc_port,
        sockperf_port: cfg.sockperf_port,
        rpc_replicas: cfg.replicas,
        service: cfg.service,
        spin_max_ns: cfg.spin_max_ns,
        rx_checksum: port.checksum,
        relay_ips: relay::relay_ips(&cfg.relays),
        ..NodeConfig::new(port.mac, ip)
    };
    let relays = setup.relays.clone();
    let relay_counters = RelayCounters::new(relays.len());
    w.relays.push(Arc::clone(&relay_counters));
    let (gtx, grx) = crossbeam::channel::bounded(1);
    let spec = RpcSpec {
        base,
        nodes,
        vector: cfg.vector as usize,
        tsc_hz,
        latency: recorder,
        relays,
        relay_counters,
        more: port.more,
        graph_counters: gtx,
    };
    let j = lcore::launch(lcore_id, move || rpc::run_rpc(spec))?;
    // The graph is built on the worker; wait for its counters (or its error).
    let got = grx.recv();
    w.joins.push(j);
    match got {
        Ok(Ok(g)) => {
            w.graphs.push(g);
            Ok(())
        }
        Ok(Err(e)) => Err(ServeError::Setup(format!("graph: {e}"))),
        Err(_) => Err(ServeError::WorkerPanicked(i)),
    }
}

/// Joins every worker and gives its queues back to their ports; returns each worker's totals
/// (a panicked one's last published counters) and the first that panicked.
fn join_workers(
    ports: &mut [Port],
    assignments: &[Assignment],
    joins: Vec<LcoreJoin<WorkerEnd>>,
    counters: &[Arc<WorkerCounters>],
) -> (Vec<WorkerSnapshot>, Option<usize>) {
    let mut totals = Vec::new();
    let mut panicked = None;
    for (i, j) in joins.into_iter().enumerate() {
        match j.join() {
            Ok((queues, snap)) => {
                let a = &assignments[i];
                for (k, (rx, tx)) in queues.into_iter().enumerate() {
                    let (r, t) = match k.checked_sub(1) {
                        None => (a.rx_port, a.tx_port),
                        Some(m) => (a.more[m], a.more[m]),
                    };
                    ports[r].return_rx(rx);
                    ports[t].return_tx(tx);
                }
                totals.push(snap);
            }
            Err(_) => {
                panicked.get_or_insert(i);
                totals.push(counters[i].snapshot());
            }
        }
    }
    (totals, panicked)
}

fn open_hlog(cfg: &ServeConfig) -> Result<Option<HlogWriter<BufWriter<File>>>, ServeError> {
    let Some(path) = &cfg.hlog else {
        return Ok(None);
    };
    File::create(path)
        .and_then(|f| HlogWriter::new(BufWriter::new(f), SystemTime::now()))
        .map(Some)
        .map_err(|e| ServeError::Setup(format!("cannot write hlog {path}: {e}")))
}

/// Runs the server until the duration passes or a stop is requested, printing as it goes,
/// and returns the final report (already printed).
pub fn serve(cfg: &ServeConfig, eal_args: &[String]) -> Result<Final, ServeError> {
    let mut setup = Setup::new(cfg, eal_args)?;
    let assignments = assign(cfg, setup.ports.len(), &setup.eal.worker_lcores());
    let mut hlog = open_hlog(cfg)?;
    let Workers {
        joins,
        counters,
        graphs,
        collectors,
        relays,
    } = launch(cfg, &mut setup, &assignments)?;

    let names: Vec<String> = setup.ports.iter().map(|p| p.name().to_string()).collect();
    let started = Instant::now();
    let mut telemetry = Telemetry {
        assignments: &assignments,
        names: &names,
        counters: &counters,
        graphs: &graphs,
        collectors: &collectors,
        pool: &setup.pool,
        total_service: new_latency_histogram(),
        hlog: hlog.as_mut(),
        started,
        last_tick: started,
    };
    let stop_reason = control_loop(cfg, &mut telemetry);
    signal::request_stop();
    let (totals, panicked) = join_workers(&mut setup.ports, &assignments, joins, &counters);
    let elapsed_s = started.elapsed().as_secs_f64();
    telemetry.finish();
    // Ends telemetry's borrow of the pool, which closing the ports needs.
    let total_service = telemetry.total_service;
    let ports = setup.close_ports();

    let run = Run {
        stop_reason,
        elapsed_s,
        assignments: &assignments,
        names: &names,
        totals,
        graphs: &graphs,
        service: &total_service,
    };
    let mut fin = final_report(cfg, &run, ports, &setup.pool);
    fin.shared.relays = relay_lines(&cfg.relays, &relays);
    if cfg.json {
        println!(
            "{}",
            serde_json::to_string(&fin).expect("report serialises")
        );
    } else {
        println!("{}", fin.human());
    }
    drop(setup);
    if let Some(w) = panicked {
        return Err(ServeError::WorkerPanicked(w));
    }
    Ok(fin)
}

/// One line per relay: its counts summed over the workers.
fn relay_lines(
    relays: &[relay::RelayConfig],
    counters: &[Arc<RelayCounters>],
) -> Vec<crate::contract::serve::RelayLine> {
    let mut sums = vec![RelaySnapshot::default(); relays.len()];
    for c in counters {
        for (sum, s) in sums.iter_mut().zip(c.snapshot()) {
            sum.add(&s);
        }
    }
    relays
        .iter()
        .zip(sums)
        .map(|(r, s)| crate::contract::serve::RelayLine {
            listen: r.listen.to_string(),
            upstreams: r.upstream.iter().map(|u| u.to_string()).collect(),
            forwarded: s.forwarded,
            returned: s.returned,
            drops: crate::graph::nodes::RelayDrop::ALL
                .iter()
                .filter(|&&d| s.drops[d as usize] > 0)
                .map(|&d| (d.name().to_string(), s.drops[d as usize]))
                .collect(),
        })
        .collect()
}

/// What a finished run leaves for the final report.
struct Run<'a> {
    stop_reason: &'static str,
    elapsed_s: f64,
    assignments: &'a [Assignment],
    names: &'a [String],
    totals: Vec<WorkerSnapshot>,
    graphs: &'a [Arc<GraphCounters>],
    service: &'a Histogram<u64>,
}

fn final_report(cfg: &ServeConfig, run: &Run, ports: Vec<PortTotal>, pool: &Mempool) -> Final {
    let elapsed = run.elapsed_s;
    let mut sum = WorkerSnapshot::default();
    for t in &run.totals {
        sum.add(t);
    }
    let graph_total =
        (!run.graphs.is_empty()).then(|| GraphStats::sum(&graph_snapshots(run.graphs)));
    let graph_drops = graph_total.as_ref().map_or(0, GraphStats::total_drops);
    Final {
        kind: "final",
        mode: format!("{:?}", cfg.mode).to_lowercase(),
        stop_reason: run.stop_reason,
        elapsed_s: elapsed,
        shared: ServeFinal {
            rx: sum.rx,
            tx: sum.tx,
            drops_by_reason: drops_by_reason(graph_total.as_ref(), sum.tx_drops),
            ports,
            relays: Vec::new(),
            service: cfg.service.map(|m| m.to_string()),
        },
        drops: sum.tx_drops + graph_drops,
        rx_pps: sum.rx as f64 / elapsed.max(1e-9),
        tx_pps: sum.tx as f64 / elapsed.max(1e-9),
        workers: run
            .assignments
            .iter()
            .zip(&run.totals)
            .enumerate()
            .map(|(i, (a, t))| WorkerTotal {
                worker: i,
                lcore: a.lcore,
                port: run.names[a.rx_port].clone(),
                queue: a.queue,
                counters: *t,
            })
            .collect(),
        vector_avg: graph_total.as_ref().map(entry_vector_avg),
        nodes: graph_total.as_ref().map(node_lines).unwrap_or_default(),
        service_ns: (cfg.mode == Mode::Rpc).then(|| Summary::from_histogram(run.service)),
        mempool: MempoolTotal {
            capacity: pool.capacity(),
            in_use: pool.in_use(),
        },
        dpdk_version: dpdk::DPDK_VERSION,
        git_rev: crate::GIT_REV,
    }
}

/// What the control thread reads each interval.
struct Telemetry<'a> {
    assignments: &'a [Assignment],
    names: &'a [String],
    counters: &'a [Arc<WorkerCounters>],
    graphs: &'a [Arc<GraphCounters>],
    collectors: &'a [LatencyCollector],
    pool: &'a Mempool,
    total_service: Histogram<u64>,
    hlog: Option<&'a mut HlogWriter<BufWriter<File>>>,
    started: Instant,
    last_tick: Instant,
}

impl Telemetry<'_> {
    /// Takes in what the workers handed over after the last interval, once they have stopped.
    fn finish(&mut self) {
        let mut tail = new_latency_histogram();
        for c in self.collectors {
            c.collect(&mut tail);
        }
        let tail_offset = self.last_tick.duration_since(self.started).as_secs_f64();
        let tail_len = self.last_tick.elapsed().as_secs_f64();
        if let Some(w) = self.hlog.as_mut() {
            if !tail.is_empty() {
                let _ = w.write_interval(None, tail_offset, tail_len, &tail);
            }
            let _ = w.flush();
        }
        let _ = self.total_service.add(&tail);
    }
}

fn graph_snapshots(graphs: &[Arc<GraphCounters>]) -> Vec<GraphStats> {
    graphs.iter().map(|g| g.snapshot()).collect()
}

/// Packets per dispatch of the graph's entry node: how full the vectors run.
fn entry_vector_avg(g: &GraphStats) -> f64 {
    g.node("ethernet-input")
        .map_or(0.0, |n| n.avg_vector_size())
}

/// Reports once per interval until the duration passes or a stop is requested; returns why
/// it stopped.
fn control_loop(cfg: &ServeConfig, t: &mut Telemetry) -> &'static str {
    // net_tap raises a real-time signal per received packet; process-directed signals go to
    // the main thread first, so under load this thread fell behind with its reports and
    // took seconds to notice SIGINT. The PMD's handler only bumps a counter, so any other
    // thread may take them.
    if let Err(e) = signal::block_realtime_signals_on_this_thread() {
        eprintln!("bypass serve: could not block real-time signals on the control thread ({e})");
    }
    let started = t.started;
    let interval = Duration::from_millis(cfg.interval_ms);
    let deadline = (cfg.duration > 0.0).then(|| started + Duration::from_secs_f64(cfg.duration));
    let mut prev = Previous {
        workers: t.counters.iter().map(|c| c.snapshot()).collect(),
        graph: GraphStats::sum(&graph_snapshots(t.graphs)),
        service: new_latency_histogram(),
    };
    let mut next_tick = started + interval;
    loop {
        // Short sleeps keep the reaction to a signal or the deadline within a few ms.
        let now = Instant::now();
        if signal::stop_requested() {
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
        let line = t.interval(&mut prev, now);
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

/// The readings an interval is the difference from, and a histogram to collect into.
struct Previous {
    workers: Vec<WorkerSnapshot>,
    graph: GraphStats,
    service: Histogram<u64>,
}

impl Telemetry<'_> {
    /// The interval line from the last tick to `now`.
    fn interval(&mut self, prev: &mut Previous, now: Instant) -> Interval {
        let dt = now.duration_since(self.last_tick).as_secs_f64().max(1e-9);
        let offset = self.last_tick.duration_since(self.started).as_secs_f64();
        self.last_tick = now;
        let mut line = Interval {
            kind: "interval",
            shared: ServeInterval {
                elapsed_s: now.duration_since(self.started).as_secs_f64(),
                tx_pps: 0.0,
            },
            rx_pps: 0.0,
            drops: 0,
            workers: Vec::with_capacity(self.counters.len()),
            vector_avg: None,
            drops_by_reason: Default::default(),
            nodes: Vec::new(),
            service_ns: None,
            // Once per interval on the control thread: it walks every lcore's cache.
            mempool_in_use: self.pool.in_use(),
        };
        let tx_drops = self.worker_intervals(&mut line, &mut prev.workers, dt);
        let mut graph_delta = None;
        if !self.graphs.is_empty() {
            let cur = GraphStats::sum(&graph_snapshots(self.graphs));
            let d = cur.delta(&prev.graph);
            prev.graph = cur;
            line.vector_avg = Some(entry_vector_avg(&d));
            line.nodes = node_lines(&d);
            graph_delta = Some(d);
        }
        line.drops_by_reason = drops_by_reason(graph_delta.as_ref(), tx_drops);
        line.drops = line.drops_by_reason.values().sum();
        if !self.collectors.is_empty() {
            line.service_ns = Some(self.service_interval(&mut prev.service, offset, dt));
        }
        line
    }

    /// Fills the per-worker rates of `line` and returns the tx drops of the interval.
    fn worker_intervals(&self, line: &mut Interval, prev: &mut [WorkerSnapshot], dt: f64) -> u64 {
        let mut tx_drops = 0;
        for (i, c) in self.counters.iter().enumerate() {
            let cur = c.snapshot();
            let d = cur.delta(&prev[i]);
            prev[i] = cur;
            let a = &self.assignments[i];
            let w = WorkerInterval {
                worker: i,
                lcore: a.lcore,
                port: self.names[a.rx_port].clone(),
                queue: a.queue,
                rx_pps: d.rx as f64 / dt,
                tx_pps: d.tx as f64 / dt,
                drops: d.tx_drops,
            };
            line.rx_pps += w.rx_pps;
            line.shared.tx_pps += w.tx_pps;
            tx_drops += w.drops;
            line.workers.push(w);
        }
        tx_drops
    }

    /// Collects the service times the workers handed over this interval into `service`, adds
    /// them to the run's total and the hlog, and summarises them.
    fn service_interval(
        &mut self,
        service: &mut Histogram<u64>,
        offset: f64,
        dt: f64,
    ) -> ServiceLine {
        service.reset();
        for c in self.collectors {
            c.collect(service);
        }
        let _ = self.total_service.add(&*service);
        if let Some(w) = self.hlog.as_mut() {
            if let Err(e) = w.write_interval(None, offset, dt, service) {
                eprintln!("bypass serve: hlog write failed, no more intervals: {e}");
                self.hlog = None;
            }
        }
        ServiceLine {
            count: service.len(),
            p50_ns: service.value_at_quantile(0.5),
            p99_ns: service.value_at_quantile(0.99),
            p999_ns: service.value_at_quantile(0.999),
            max_ns: service.max(),
        }
    }
}
