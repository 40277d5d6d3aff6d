//! The fixed cost of one `Graph::dispatch` of the server graph, without DPDK: the graph is
//! built on the byte-buffer [`VecBuf`] and fed valid RPC echo requests, vectors of 1 (the
//! ping-pong case) and of 32 (for comparison), and the per-burst calls the rpc worker makes
//! around it (latency record, histogram hand-over check, counter publish) are timed too.
//!
//! ```sh
//! flock /tmp/bypass-heavy.lock cargo run --release --example graph_dispatch -- --cpu 1
//! # options: --iters N (dispatches per run, 200000) --runs R (7) --sizes 1,32 --cpu C
//! #          --gap-ns G: spin G ns between dispatches, as a worker polls between ping-pongs
//! #          --time-every N: time node calls in 1 dispatch of N (the rpc worker's 16; 1: all)
//! ```
//!
//! Prints, per vector size, the median over the runs of ns per dispatch and per packet, and
//! the graph's own cycles per node. Each dispatch is timed alone with a TSC pair (the cost
//! of an empty pair is measured and subtracted), so restoring the requests the graph turned
//! into replies is not counted. Not a test: it asserts no timing, only that every request
//! came back as a reply and that the counters agree.

use std::hint::black_box;
use std::process::ExitCode;

use bypass::graph::nodes::{build_server_graph, NodeConfig, RPC_SERVER};
use bypass::graph::{Graph, PacketBuf, PacketVector, VecBuf, TX};
use bypass::os::clock::Clock;
use bypass::os::tsc;
use bypass::server::counters::{WorkerCounters, WorkerSnapshot};
use bypass::server::latency;
use bypass::server::rpc::TIMED_DISPATCH_EVERY;
use bypass::wire::frame::rpc_echo_requests;
use bypass::wire::{Ipv4Address, MacAddress, UdpEndpoints};

const USAGE: &str =
    "usage: graph_dispatch [--iters N] [--runs R] [--sizes 1,32] [--cpu C] [--gap-ns G] [--time-every N]";

const OUR_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x01]);
const OUR_IP: Ipv4Address = Ipv4Address([198, 18, 0, 1]);

struct Opts {
    iters: u64,
    runs: usize,
    sizes: Vec<usize>,
    cpu: Option<usize>,
    gap_ns: u64,
    time_every: u32,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        iters: 200_000,
        runs: 7,
        sizes: vec![1, 32],
        cpu: None,
        gap_ns: 0,
        time_every: TIMED_DISPATCH_EVERY,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let bad = |what: &str, v: &str| format!("bad {what} {v:?}\n{USAGE}");
        match flag.as_str() {
            "--iters" => {
                let v = value()?;
                o.iters = v.parse().map_err(|_| bad("--iters", &v))?;
            }
            "--runs" => {
                let v = value()?;
                o.runs = v.parse().map_err(|_| bad("--runs", &v))?;
            }
            "--cpu" => {
                let v = value()?;
                o.cpu = Some(v.parse().map_err(|_| bad("--cpu", &v))?);
            }
            "--time-every" => {
                let v = value()?;
                o.time_every = v.parse().map_err(|_| bad("--time-every", &v))?;
            }
            "--gap-ns" => {
                let v = value()?;
                o.gap_ns = v.parse().map_err(|_| bad("--gap-ns", &v))?;
            }
            "--sizes" => {
                let v = value()?;
                o.sizes = v
                    .split(',')
                    .map(|s| s.parse().map_err(|_| bad("--sizes", &v)))
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if o.iters == 0 || o.runs == 0 {
        return Err("--iters and --runs must be at least 1".into());
    }
    if let Some(&s) = o
        .sizes
        .iter()
        .find(|&&s| s == 0 || s > bypass::graph::VECTOR_SIZE)
    {
        return Err(format!(
            "--sizes: {s} is outside 1..={}",
            bypass::graph::VECTOR_SIZE
        ));
    }
    Ok(o)
}

/// Median of an odd or even number of samples (the lower middle for even).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// Ticks an empty `read(); read()` pair measures, the floor subtracted from every timing.
fn tsc_pair_ticks() -> f64 {
    let runs: Vec<f64> = (0..7)
        .map(|_| {
            let mut sum = 0u64;
            for _ in 0..100_000 {
                let a = tsc::read();
                let b = tsc::read();
                sum += b.wrapping_sub(a);
            }
            sum as f64 / 100_000.0
        })
        .collect();
    median(runs)
}

struct Bench {
    graph: Graph<VecBuf>,
    templates: Vec<Vec<u8>>,
    pool: Vec<VecBuf>,
    input: PacketVector<VecBuf>,
    output: PacketVector<VecBuf>,
    dispatched: u64,
}

impl Bench {
    fn new(size: usize, hz: u64, time_every: u32) -> Result<Bench, String> {
        let cfg = NodeConfig::new(OUR_MAC, OUR_IP);
        let mut graph = build_server_graph::<VecBuf>(&cfg, hz).map_err(|e| e.to_string())?;
        graph.time_one_in(time_every);
        let ep = UdpEndpoints {
            src_mac: MacAddress([0x02, 0, 0, 0, 0, 0x02]),
            dst_mac: OUR_MAC,
            src_ip: Ipv4Address([198, 18, 0, 2]),
            dst_ip: OUR_IP,
            src_port: 40000,
            dst_port: cfg.rpc_port,
        };
        // 32-byte bodies: the size the lab's ping-pong runs send.
        let templates = rpc_echo_requests(ep, size, 32);
        let pool = templates.iter().map(|t| VecBuf::from_slice(t)).collect();
        Ok(Bench {
            graph,
            templates,
            pool,
            input: PacketVector::new(),
            output: PacketVector::new(),
            dispatched: 0,
        })
    }

    /// Ticks spent in `iters` dispatches, each timed alone.
    fn run(&mut self, iters: u64, gap_ticks: u64) -> Result<u64, String> {
        let mut ticks = 0u64;
        for _ in 0..iters {
            // No pause instruction: a busy worker polls flat out.
            let until = tsc::read() + gap_ticks;
            while tsc::read() < until {}
            // The graph answered in place last time: make every buffer a request again.
            for (mut b, t) in self.pool.drain(..).zip(&self.templates) {
                b.trim(b.len());
                b.append(t);
                let _ = self.input.push(b);
            }
            let t0 = tsc::read();
            self.graph.dispatch(&mut self.input, t0, &mut self.output);
            let t1 = tsc::read();
            ticks += t1.wrapping_sub(t0);
            if self.output.len() != self.templates.len() {
                return Err(format!(
                    "{} requests gave {} replies; drops {:?}",
                    self.templates.len(),
                    self.output.len(),
                    self.graph.stats().total_drops()
                ));
            }
            self.pool.extend(self.output.drain());
            black_box(&mut self.pool);
            self.dispatched += 1;
        }
        Ok(ticks)
    }

    /// The graph's counters must account for every request exactly.
    fn check_counters(&self) -> Result<(), String> {
        let s = self.graph.stats();
        let want = self.dispatched * self.templates.len() as u64;
        for name in [RPC_SERVER, TX] {
            let n = s.node(name).ok_or(format!("no node {name}"))?;
            if n.packets != want || n.calls != self.dispatched {
                return Err(format!(
                    "{name}: {} packets in {} calls, expected {want} in {}",
                    n.packets, n.calls, self.dispatched
                ));
            }
        }
        if s.total_drops() != 0 {
            return Err(format!("{} drops", s.total_drops()));
        }
        Ok(())
    }
}

/// The calls the rpc worker makes once per burst besides dispatch, in ticks per burst.
fn worker_bookkeeping(iters: u64, runs: usize, hz: u64) -> f64 {
    let (mut rec, col) = latency::pair(hz, 1_000_000_000);
    let counters = WorkerCounters::default();
    let mut s = WorkerSnapshot::default();
    let per_run: Vec<f64> = (0..runs)
        .map(|_| {
            let start = tsc::read();
            for i in 0..iters {
                s.polls += 1;
                s.rx += 1;
                let done = tsc::read();
                rec.record_ticks(black_box(500 + (i & 255)), 1);
                s.tx += 1;
                rec.maybe_publish(done);
                counters.publish(black_box(&s));
            }
            (tsc::read() - start) as f64 / iters as f64
        })
        .collect();
    let mut h = bypass::stats::new_latency_histogram();
    col.collect(&mut h);
    black_box(h);
    median(per_run)
}

fn run() -> Result<(), String> {
    let o = parse_opts()?;
    if let Some(cpu) = o.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            return Err(format!("--cpu: cannot pin to CPU {cpu}"));
        }
    }
    let clock = Clock::new();
    let mhz = clock
        .calibration()
        .ok_or("the TSC is not usable here; the figures would mean nothing")?
        .mhz;
    let hz = (mhz * 1e6) as u64;
    let ns = |ticks: f64| ticks * 1e3 / mhz;
    let pair = tsc_pair_ticks();
    println!(
        "tsc {mhz:.1} MHz, empty tsc pair {pair:.1} ticks (subtracted); {} runs x {} dispatches, {} ns apart, nodes timed in 1 of {}",
        o.runs, o.iters, o.gap_ns, o.time_every.max(1)
    );
    for &size in &o.sizes {
        let mut b = Bench::new(size, hz, o.time_every)?;
        let gap = o.gap_ns * hz / 1_000_000_000;
        b.run(o.iters / 10 + 1, gap)?; // warm caches and predictors
        let mut per = Vec::with_capacity(o.runs);
        for _ in 0..o.runs {
            let t = b.run(o.iters, gap)?;
            per.push(t as f64 / o.iters as f64 - pair);
        }
        b.check_counters()?;
        let lo = per.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = per.iter().copied().fold(0.0, f64::max);
        let med = median(per);
        println!(
            "vector {size:>3}: {:>7.1} ns/dispatch (runs {:.1}..{:.1}), {:>6.1} ns/packet, {:>6.0} cycles/dispatch",
            ns(med),
            ns(lo),
            ns(hi),
            ns(med) / size as f64,
            med,
        );
        let s = b.graph.stats();
        let nodes: Vec<String> = s
            .nodes
            .iter()
            .filter(|n| n.cycles != 0)
            .map(|n| format!("{} {:.0}", n.name, n.cycles_per_packet()))
            .collect();
        println!("            node cycles/packet: {}", nodes.join(", "));
    }
    let book = worker_bookkeeping(o.iters, o.runs, hz);
    println!(
        "worker per-burst calls (record_ticks, maybe_publish, counters.publish): {:.1} ns",
        ns(book)
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("graph_dispatch: {e}");
            ExitCode::FAILURE
        }
    }
}
