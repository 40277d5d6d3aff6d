//! Drift guards: every builder's argv goes through its program's own clap parser (so every
//! flag and value the lab writes exists), and every report type reads a report written by its
//! program's own writer (so every field the lab reads is still written, under that name).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser};

use super::load::*;
use super::platform::*;
use super::serve::*;
use super::{last_final, lines_of, Kept};
use crate::options::{Backend, PollMode, Proto, WaitMode};
use crate::stats::new_latency_histogram;

/// A program's clap arguments as a parser of their own; `argv[0]` is the subcommand name.
#[derive(Parser)]
struct Cli<A: Args> {
    #[command(flatten)]
    args: A,
}

fn parse<A: Args>(argv: &[String]) -> A {
    match Cli::<A>::try_parse_from(argv) {
        Ok(c) => c.args,
        Err(e) => panic!("{argv:?} is refused by the program's parser: {e}"),
    }
}

fn server() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 18, 3, 1), 7777)
}

fn load_command(target: LoadTarget, offered: Offered) -> LoadCommand {
    LoadCommand {
        target,
        offered,
        size: 64,
        duration_s: 1.5,
        warmup_s: 0.25,
        json: "/tmp/x.load.json".into(),
        hgrm: "/tmp/x.hgrm".into(),
        hlog: Some("/tmp/x.hlog".into()),
        checksum: None,
        shape: RequestShape::default(),
        eal: Vec::new(),
    }
}

#[test]
fn load_argv_is_what_bypass_load_parses() {
    use crate::load::{LoadArgs, Transport};
    let udp = load_command(
        LoadTarget::Socket {
            proto: Proto::Udp,
            server: server(),
        },
        Offered::PingPong {
            wait: Some(WaitMode::Busy),
        },
    );
    let a: LoadArgs = parse(&udp.argv());
    assert_eq!(a.transport, Transport::Udp);
    assert_eq!(a.server, Some(server().into()));
    assert_eq!(a.wait, Some(crate::load::WaitMode::Busy));
    assert_eq!((a.size, a.duration, a.warmup), (Some(64), Some(1.5), 0.25));
    assert_eq!(a.json, Some(PathBuf::from("/tmp/x.load.json")));
    assert_eq!(a.hgrm, Some(PathBuf::from("/tmp/x.hgrm")));
    assert_eq!(a.hlog, Some(PathBuf::from("/tmp/x.hlog")));
    a.to_config().expect("a valid ping-pong");

    let mut tcp = load_command(
        LoadTarget::Socket {
            proto: Proto::Tcp,
            server: server(),
        },
        Offered::Rate(2500.0),
    );
    tcp.hlog = None;
    let a: LoadArgs = parse(&tcp.argv());
    assert_eq!(
        (a.transport, a.rate, a.wait),
        (Transport::Tcp, Some(2500.0), None)
    );
    assert_eq!(a.hlog, None);
    a.to_config().expect("a valid open loop");

    let unix = load_command(
        LoadTarget::Unix {
            path: "/run/x.sock".into(),
        },
        Offered::Rates("1000:2000:1000".into()),
    );
    let a: LoadArgs = parse(&unix.argv());
    assert_eq!(a.transport, Transport::Unix);
    assert_eq!(a.server_path, Some(PathBuf::from("/run/x.sock")));
    assert_eq!(a.rates.as_deref(), Some("1000:2000:1000"));
    a.to_config().expect("a valid sweep");

    let mut dpdk = load_command(
        LoadTarget::Dpdk {
            server: server(),
            client_ip: Ipv4Addr::new(198, 18, 3, 2),
        },
        Offered::PingPong { wait: None },
    );
    dpdk.eal = vec!["-l".into(), "0".into(), "--no-pci".into()];
    let a: LoadArgs = parse(&dpdk.argv());
    assert_eq!(a.transport, Transport::Dpdk);
    assert_eq!(a.client_ip, Some(Ipv4Addr::new(198, 18, 3, 2)));
    assert_eq!(a.eal, dpdk.eal);
    assert_eq!(a.checksum, None, "nothing passed: the client's auto");
    dpdk.checksum = Some(crate::options::ChecksumPolicy::Verify);
    let a: LoadArgs = parse(&dpdk.argv());
    assert_eq!(a.checksum, Some(crate::options::ChecksumPolicy::Verify));
    assert_eq!(a.eal, dpdk.eal);
}

#[test]
fn kernel_serve_argv_is_what_kernel_serve_parses() {
    use crate::kernel::{KernelServeArgs, Listen};
    let udp = KernelServeCommand {
        proto: Proto::Udp,
        listen: KernelListen::Bind(server()),
        backend: Backend::Batch,
        cpu: 1,
        duration_s: 75.0,
        sockperf_port: Some(11111),
        service: ServiceArg::default(),
    };
    let c = parse::<KernelServeArgs>(&udp.argv()).to_config().unwrap();
    assert_eq!(c.proto, crate::kernel::Proto::Udp);
    assert_eq!(c.backend, crate::kernel::Backend::Batch);
    assert_eq!(c.listen, Listen::Inet(server().into()));
    assert_eq!((c.cpus, c.sockperf_port), (vec![1], Some(11111)));
    assert_eq!(c.duration, Some(Duration::from_secs(75)));
    assert!(c.json);
    let unix = KernelServeCommand {
        proto: Proto::Unix,
        listen: KernelListen::Path("/run/k.sock".into()),
        backend: Backend::Busy,
        cpu: 0,
        duration_s: 2.5,
        sockperf_port: None,
        service: ServiceArg::default(),
    };
    let c = parse::<KernelServeArgs>(&unix.argv()).to_config().unwrap();
    assert_eq!(c.listen, Listen::Path("/run/k.sock".into()));
    assert_eq!(c.backend, crate::kernel::Backend::Busy);
}

#[test]
fn platform_argvs_are_what_floor_noise_and_syscalls_parse() {
    use crate::noise::{FloorArgs, NoiseArgs, SyscallsArgs};
    let floor = FloorCommand {
        cpus: (0, 1),
        duration_s: 1.0,
        mode: FloorMode::Line,
        size: 48,
        hlog: "/tmp/f.hlog".into(),
        hgrm: "/tmp/f.hgrm".into(),
    };
    let a: FloorArgs = parse(&floor.argv());
    assert_eq!(a.cpus, "0,1");
    assert_eq!((a.duration, a.size, a.json), (1.0, 48, true));
    assert_eq!(a.mode, crate::noise::FloorMode::Line);
    assert_eq!(a.hlog, Some(PathBuf::from("/tmp/f.hlog")));
    assert_eq!(a.hgrm, Some(PathBuf::from("/tmp/f.hgrm")));
    a.to_config().unwrap();

    let noise = NoiseCommand {
        cpus: vec![0, 1],
        duration_s: 0.25,
        model_rates: vec![1000.0, 2500.5],
    };
    let a: NoiseArgs = parse(&noise.argv());
    assert_eq!((a.cpus.as_str(), a.duration, a.json), ("0,1", 0.25, true));
    assert_eq!(a.model_rates, "1000,2500.5");
    assert_eq!(a.to_config().unwrap().model_rates, [1000.0, 2500.5]);
    let quiet = NoiseCommand {
        model_rates: Vec::new(),
        ..noise
    };
    parse::<NoiseArgs>(&quiet.argv());

    let a: SyscallsArgs = parse(&SyscallsCommand { cpu: 0 }.argv());
    assert_eq!((a.cpu, a.json), (0, true));
}

#[test]
fn serve_argv_spells_its_flags() {
    // `bypass serve`'s parser lives in the binary: tests/lab.rs hands this argv to it.
    let cmd = ServeCommand {
        ip: Ipv4Addr::new(198, 18, 102, 1),
        poll_mode: PollMode::Adaptive,
        duration_s: 12.5,
        interval_ms: Some(500),
        mac: Some(crate::wire::MacAddress([2, 0, 0, 0, 0, 1])),
        burst: Some(32),
        checksum: Some(crate::options::ChecksumPolicy::Trust),
        joined: false,
        relays: Vec::new(),
        service: ServiceArg::default(),
        eal: vec!["-l".into(), "0,1".into()],
    };
    assert_eq!(
        cmd.argv().join(" "),
        "serve --mode rpc --ip 198.18.102.1 --poll-mode adaptive --json --duration 12.5 \
         --interval-ms 500 --mac 02:00:00:00:00:01 --burst 32 --checksum trust -- -l 0,1"
    );
}

/// A run of `bypass load` as its engine reports it, with a few samples.
fn load_report(rate: Option<f64>) -> crate::load::Report {
    use crate::load::{Clock, Counters, LoadArgs, Report};
    let mut argv = vec!["load".to_string(), "--server".into(), server().to_string()];
    if let Some(r) = rate {
        argv.extend(["--rate".into(), r.to_string()]);
    }
    let config = parse::<LoadArgs>(&argv).to_config().unwrap();
    let mut h = new_latency_histogram();
    for v in [20_000, 25_000, 90_000] {
        h.record(v).unwrap();
    }
    Report {
        fanout: None,
        codec: None,
        config,
        checksum: None,
        time_source: "monotonic".into(),
        clock: Clock::monotonic(),
        start_time: SystemTime::UNIX_EPOCH,
        target_rate: rate,
        achieved_rate: rate.unwrap_or(3.0),
        measured_secs: 1.0,
        counters: Counters {
            sent: 4,
            received: 3,
            lost: 1,
            ..Counters::default()
        },
        corrected: h.clone(),
        uncorrected: h.clone(),
        server: h.clone(),
        wire: h.clone(),
        send_lag: rate.map(|_| h.clone()),
        intervals: Vec::new(),
        interval_histograms: Default::default(),
    }
}

#[test]
fn load_reports_read_what_bypass_load_writes() {
    let closed = load_report(None);
    let mut text = Vec::new();
    closed.write_json(&mut text).unwrap();
    let r: LoadReport = serde_json::from_slice(&text).unwrap();
    let s = &r.summary.typed;
    assert_eq!((s.latency.count, s.sent, s.received, s.lost), (3, 4, 3, 1));
    assert_eq!(s.latency.p50_ns, closed.summary().p50);
    assert_eq!(s.latency.max_ns, closed.summary().max);
    assert_eq!(s.achieved_rate, Some(3.0));
    assert_eq!((s.target_rate, &s.send_lag), (None, &None), "closed loop");
    assert_eq!(s.lost_recorded_at_ns, Some(1_000_000_000));
    assert!(s.uncorrected.is_some());
    let whole: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(
        r.summary.verbatim,
        super::Verbatim(whole["summary"].clone())
    );

    let points = [load_report(Some(1000.0)), load_report(Some(2000.0))];
    let text = crate::load::sweep::to_json(&points, "1000:2000:1000").to_string();
    let r: LoadSweepReport = serde_json::from_str(&text).unwrap();
    let rates: Vec<Option<f64>> = r.sweep.iter().map(|p| p.target_rate).collect();
    assert_eq!(rates, [Some(1000.0), Some(2000.0)]);
    let lag = r.sweep[0]
        .send_lag
        .as_ref()
        .expect("open loop has a send lag");
    assert_eq!(
        lag.max_ns,
        points[0].send_lag_summary().unwrap().read.max_ns
    );
    assert!(lag.max_ns >= 90_000);
}

#[test]
fn kernel_serve_final_reads_what_kernel_serve_writes() {
    use crate::kernel::{Counters, DropReason, FinalReport, ThreadReport};
    let mut c = Counters {
        rx: 5,
        tx: 3,
        ..Counters::default()
    };
    c.drop_n(DropReason::BadMagic, 2);
    let r = FinalReport {
        service: Some("bimodal:20us,1%:1ms".into()),
        proto: crate::kernel::Proto::Udp,
        backend: crate::kernel::Backend::Busy,
        threads: 1,
        elapsed: Duration::from_millis(1500),
        connections: 0,
        reasons: DropReason::UDP.to_vec(),
        per_thread: vec![ThreadReport {
            thread: 0,
            cpu: Some(1),
            counters: c,
        }],
    };
    let lines = vec!["ready".to_string(), r.to_json()];
    let k = last_final::<KernelServeFinal>(&lines).unwrap().unwrap();
    assert_eq!(
        (k.typed.proto, k.typed.backend),
        (Proto::Udp, Backend::Busy)
    );
    assert_eq!((k.typed.rx, k.typed.tx), (5, 3));
    assert_eq!(k.typed.drops[DropReason::BadMagic.name()], 2);
}

#[test]
fn serve_lines_read_what_bypass_serve_writes() {
    use crate::options::{ChecksumChoice, ChecksumPolicy};
    use crate::server::report::{Final, Interval, MempoolTotal, PortTotal, ServePort};
    let interval = Interval {
        kind: "interval",
        shared: ServeInterval {
            elapsed_s: 2.0,
            tx_pps: 9.5,
        },
        rx_pps: 10.0,
        drops: 0,
        workers: Vec::new(),
        vector_avg: None,
        drops_by_reason: BTreeMap::new(),
        nodes: Vec::new(),
        service_ns: None,
        mempool_in_use: 0,
    };
    let fin = Final {
        kind: "final",
        mode: "rpc".into(),
        stop_reason: "duration",
        elapsed_s: 3.0,
        shared: ServeFinal {
            rx: 100,
            tx: 99,
            drops_by_reason: BTreeMap::from([("ip4-input/bad-checksum".to_string(), 1)]),
            ports: vec![PortTotal {
                port: ServePort {
                    name: "net_memif0".into(),
                    driver: "net_memif".into(),
                    checksum: Some(ChecksumChoice {
                        requested: ChecksumPolicy::Auto,
                        resolved: ChecksumPolicy::Trust,
                        why: "auto: net_memif peer is a local process".into(),
                    }),
                },
                mac: "02:00:00:00:00:01".into(),
                link: crate::dpdk::LinkStatus {
                    up: true,
                    speed_mbps: 0,
                    full_duplex: true,
                },
                stats: Default::default(),
                tx_first: 0,
                drained: 0,
            }],
            relays: Vec::new(),
            service: None,
        },
        drops: 1,
        rx_pps: 33.0,
        tx_pps: 33.0,
        workers: Vec::new(),
        vector_avg: Some(1.0),
        nodes: Vec::new(),
        service_ns: None,
        mempool: MempoolTotal {
            capacity: 8191,
            in_use: 0,
        },
        dpdk_version: "22.11",
        git_rev: "abc",
    };
    let lines = vec![
        "EAL: a log line".to_string(),
        serde_json::to_string(&interval).unwrap(),
        serde_json::to_string(&fin).unwrap(),
    ];
    let i = lines_of::<ServeInterval>(&lines, "interval").unwrap();
    assert_eq!((i[0].elapsed_s, i[0].tx_pps), (2.0, 9.5));
    let f = last_final::<ServeFinal>(&lines).unwrap().unwrap();
    assert_eq!((f.typed.rx, f.typed.tx), (100, 99));
    assert_eq!(f.typed.drops_by_reason["ip4-input/bad-checksum"], 1);
    let port = &f.typed.ports[0];
    assert_eq!(
        (port.name.as_str(), port.driver.as_str()),
        ("net_memif0", "net_memif")
    );
    let c = port.checksum.as_ref().expect("the policy is read");
    assert_eq!(
        (c.requested, c.resolved),
        (ChecksumPolicy::Auto, ChecksumPolicy::Trust)
    );
    assert_eq!(c.why, "auto: net_memif peer is a local process");
    // The port's other figures reach results.json whole.
    assert_eq!(f.verbatim.0["ports"][0]["mac"], "02:00:00:00:00:01");
    assert!(last_final::<ServeFinal>(&lines[..2]).is_none());
}

#[test]
fn platform_reports_read_what_floor_noise_and_syscalls_write() {
    use crate::noise::floor::{to_json, FloorRun};
    use crate::noise::FloorArgs;
    let cfg = parse::<FloorArgs>(
        &FloorCommand {
            cpus: (0, 1),
            duration_s: 1.0,
            mode: FloorMode::Ring,
            size: 32,
            hlog: "/tmp/f.hlog".into(),
            hgrm: "/tmp/f.hgrm".into(),
        }
        .argv(),
    )
    .to_config()
    .unwrap();
    let mut hist = new_latency_histogram();
    hist.record(800).unwrap();
    let run = FloorRun {
        hist,
        sent: 2,
        received: 1,
        invalid: 0,
        measured_secs: 0.5,
    };
    let text = serde_json::to_string(&to_json(&cfg, &run, "tsc")).unwrap();
    let f = Kept::<FloorReport>::parse(&text).unwrap();
    let s = &f.typed.summary;
    assert_eq!((s.latency.count, s.sent, s.received, s.lost), (1, 2, 1, 1));
    assert_eq!(s.measured_secs, 0.5);

    use crate::noise::report::{CpuReport, NoiseReport as Written};
    let noise = Written {
        shared: NoiseReport {
            kind: NoiseTag::Noise,
            cpus: vec![CpuReport {
                noise: CpuNoise {
                    cpu: 1,
                    lost_pct: 2.5,
                    gaps_per_s: 40.0,
                    gap_p50_ns: 1500,
                    gap_p99_ns: 4000,
                    gap_p999_ns: 9000,
                    gap_max_ns: 12_000,
                    over_100us: 0,
                    over_1ms: 0,
                    other_tasks_seen: 3,
                },
                gaps: 10,
                over_10us: 1,
                lost_ns: 6_000_000,
                log_overflow: 0,
                other_tasks: Vec::new(),
                hgrm: None,
            }],
            model: vec![crate::noise::platform_model(&[], 0, 250_000_000, 1000.0)],
        },
        duration_s: 0.25,
        threshold_ns: 1000,
        time_source: "tsc".into(),
    };
    let r: NoiseReport = serde_json::from_str(&serde_json::to_string(&noise).unwrap()).unwrap();
    assert_eq!(r.cpus[0].cpu, 1);
    assert_eq!((r.cpus[0].lost_pct, r.cpus[0].gap_max_ns), (2.5, 12_000));
    assert_eq!(r.cpus[0].other_tasks_seen, 3);
    assert_eq!(r.model.len(), 1);
    assert_eq!(r.model[0].rate, 1000.0);

    use crate::noise::syscalls::{Spread as Written1, SyscallsReport as Written2};
    let per = |m| Written1 {
        median: m,
        min: m - 1.0,
        max: m + 1.0,
    };
    let sys = Written2 {
        shared: SyscallsReport {
            kind: SyscallsTag::Syscalls,
            cpu: 0,
            getppid_ns: per(230.0),
            udp_send_recv_ns: per(3700.0),
            unix_send_recv_ns: per(2200.0),
        },
        iterations: 7,
        batches: 7,
        time_source: "tsc".into(),
    };
    let r: SyscallsReport = serde_json::from_str(&serde_json::to_string(&sys).unwrap()).unwrap();
    assert_eq!(r.udp_send_recv_ns.median, Some(3700.0));
    assert_eq!(r.unix_send_recv_ns.min, Some(2199.0));
    assert_eq!(r.getppid_ns.max, Some(231.0));
}

#[test]
fn kernel_relay_argv_is_what_kernel_relay_parses() {
    use super::relay::{KernelRelayCommand, RelayEnd};
    use crate::kernel::KernelRelayArgs;
    use crate::options::Balance;
    let cmd = KernelRelayCommand {
        listen: RelayEnd::Unix("/run/relay.sock".into()),
        upstreams: vec![
            RelayEnd::Tcp(server()),
            RelayEnd::Tcp(SocketAddrV4::new(Ipv4Addr::new(198, 18, 3, 2), 7778)),
        ],
        balance: Balance::Hash,
        backend: Backend::Busy,
        cpu: 1,
        duration_s: 12.5,
    };
    let c = parse::<KernelRelayArgs>(&cmd.argv()).to_config().unwrap();
    assert_eq!(
        (c.listen, c.upstreams),
        (cmd.listen.clone(), cmd.upstreams.clone())
    );
    assert_eq!(
        (c.balance, c.backend, c.cpu),
        (Balance::Hash, Backend::Busy, Some(1))
    );
    assert_eq!(
        (c.duration, c.json),
        (Some(Duration::from_millis(12_500)), true)
    );
    let udp = KernelRelayCommand {
        listen: RelayEnd::Udp(server()),
        upstreams: vec![RelayEnd::Udp(server())],
        balance: Balance::RoundRobin,
        backend: Backend::Blocking,
        cpu: 0,
        duration_s: 3.0,
    };
    let c = parse::<KernelRelayArgs>(&udp.argv()).to_config().unwrap();
    assert_eq!(
        (c.listen, c.balance),
        (udp.listen.clone(), Balance::RoundRobin)
    );
}

#[test]
fn kernel_relay_final_reads_what_kernel_relay_writes() {
    use super::relay::KernelRelayFinal;
    let r = crate::kernel::relay::report::tests::sample();
    let lines = vec!["ready unix /tmp/r.sock".to_string(), r.to_json()];
    let k = last_final::<KernelRelayFinal>(&lines).unwrap().unwrap();
    assert_eq!(
        (k.typed.proto, k.typed.upstream_proto, k.typed.backend),
        (Proto::Unix, Proto::Tcp, Backend::Busy)
    );
    assert_eq!((k.typed.rx, k.typed.tx, k.typed.threads), (9, 6, 1));
    assert_eq!((k.typed.forwarded, k.typed.returned), (4, 2));
    assert_eq!(k.typed.drops["table-full"], 2);
    assert_eq!(k.typed.drops["unknown-mapping"], 1);
}
