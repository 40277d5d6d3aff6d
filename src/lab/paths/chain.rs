//! A chain path's depth: client -> hop 1 -> .. -> hop N -> server. Fast-path hops are
//! `--relay` instances of one `bypass serve --topology joined` on memif (port 0, the client's)
//! and net_ring0 (port 1, a loopback joining the hops), all polled by its one worker: the
//! co-located case. Kernel hops are `bypass kernel-relay` processes on loopback, each on its
//! own port (7777 + k) or unix socket, in front of `bypass kernel-serve`. Afterwards every
//! relay's counts are checked against the client's (chain::counters).

use std::net::SocketAddrV4;
use std::time::Duration;

use super::client::{run_load, Target};
use super::fastpath::{serve_argv, serve_command};
use super::kernel::RPC_PORT;
use super::{server_cap_secs, shell_line, stop_server, Ctx, PathError};
use crate::contract::load::LoadTarget;
use crate::contract::relay::{KernelRelayCommand, KernelRelayFinal, RelayEnd};
use crate::contract::serve::{
    KernelListen, KernelServeCommand, KernelServeFinal, RelayArg, ServeCommand, ServeFinal,
    ServiceArg,
};
use crate::lab::chain::counters::{self, ClientCounts, HopCount};
use crate::lab::proc::Proc;
use crate::lab::results::PathResult;
use crate::lab::scenario::{ChainPlan, HopKind, ResolvedPath};
use crate::lab::topology::{DpdkPrefix, Topology};
use crate::options::{Balance, Proto};

/// The port name of the ring that joins fast-path hops (`--vdev=net_ring0`).
pub const RING: &str = "net_ring0";

pub fn run(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let plan = path
        .chain
        .as_ref()
        .ok_or("a chain path without its chain plan")?;
    match plan.hop {
        HopKind::Fastpath => run_fastpath(ctx, path, plan, topo, res),
        HopKind::Kernel => run_kernel(ctx, path, plan, topo, res),
    }
}

/// The fast path's `--relay` list: relay k forwards to relay k+1, the last to the server,
/// every hop through the ring.
pub fn fastpath_relays(plan: &ChainPlan, server: SocketAddrV4) -> Vec<RelayArg> {
    let at = |i: usize| SocketAddrV4::new(plan.relay_ips[i], RPC_PORT);
    (0..plan.relay_ips.len())
        .map(|i| RelayArg {
            listen: at(i),
            upstreams: vec![if i + 1 < plan.relay_ips.len() {
                at(i + 1)
            } else {
                server
            }],
            via: Some(RING.into()),
        })
        .collect()
}

fn run_fastpath(
    ctx: &Ctx,
    path: &ResolvedPath,
    plan: &ChainPlan,
    topo: &Topology,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let (server_dev, client_dev) = super::memif::devices(ctx, topo);
    // Depth 0 runs the same process with the ring and no relay, so the depths differ by
    // their relays alone.
    let devices = [server_dev, format!("--vdev={RING}")];
    let server = SocketAddrV4::new(topo.spec.server_ip, RPC_PORT);
    let prefix = DpdkPrefix::new("chs");
    let cmd = ServeCommand {
        interval_ms: Some(500),
        joined: true,
        relays: fastpath_relays(plan, server),
        ..serve_command(ctx, path, topo, server_cap_secs(path), &prefix, &devices)
    };
    let argv = serve_argv(ctx, topo, &cmd);
    res.commands.push(shell_line(&argv));
    let mut proc = Proc::spawn("bypass serve", &argv)?;
    proc.wait_line(Duration::from_secs(30), |l| l.contains("\"interval\""))?;
    let first = cmd.relays.first().map_or(server, |r| r.listen);
    let target = Target {
        to: LoadTarget::Dpdk {
            server: first,
            client_ip: topo.client_ip()?,
        },
        devices: vec![client_dev],
        replicas: Vec::new(),
    };
    let measured = run_load(ctx, path, &topo.server_ns, &target, res);
    let fin = stop_server::<ServeFinal>(&mut proc);
    measured?;
    let hops = fin.as_ref().map(|k| {
        k.typed
            .relays
            .iter()
            .zip(1..)
            .map(|(l, k)| HopCount::from_fastpath(k, l))
            .collect::<Vec<_>>()
    });
    let hops = match hops {
        Ok(h) => h,
        Err(e) if plan.depth > 0 => return Err(format!("no relay counters: {e}").into()),
        Err(_) => Vec::new(),
    };
    res.keep_fastpath_report(fin);
    check_hops(plan, hops, res)
}

/// Where kernel hop k listens (k = N + 1 is the server): loopback port 7777 + k for udp and
/// tcp (the server on 7777), a socket file each for unix.
pub fn kernel_end(ctx: &Ctx, path: &ResolvedPath, topo: &Topology, k: u32, n: u32) -> RelayEnd {
    let port = if k > n { RPC_PORT } else { RPC_PORT + k as u16 };
    let addr = SocketAddrV4::new(topo.spec.server_ip, port);
    match path.proto {
        Proto::Udp => RelayEnd::Udp(addr),
        Proto::Tcp => RelayEnd::Tcp(addr),
        Proto::Unix => {
            let file = if k > n {
                format!("{}.sock", path.name)
            } else {
                format!("{}-hop{k}.sock", path.name)
            };
            RelayEnd::Unix(ctx.run_dir.join(file).to_string_lossy().into_owned())
        }
    }
}

fn load_target(end: &RelayEnd) -> LoadTarget {
    match end {
        RelayEnd::Udp(a) => LoadTarget::Socket {
            proto: Proto::Udp,
            server: *a,
        },
        RelayEnd::Tcp(a) => LoadTarget::Socket {
            proto: Proto::Tcp,
            server: *a,
        },
        RelayEnd::Unix(p) => LoadTarget::Unix { path: p.into() },
    }
}

/// Starts one program of the kernel chain in the server namespace and waits for its ready line.
fn spawn_ready(
    ctx: &Ctx,
    topo: &Topology,
    what: &str,
    args: Vec<String>,
    res: &mut PathResult,
) -> Result<Proc, PathError> {
    let mut argv = topo.server_ns.prefix();
    argv.push(ctx.bin.to_string_lossy().into_owned());
    argv.extend(args);
    res.commands.push(shell_line(&argv));
    let mut p = Proc::spawn(what, &argv)?;
    p.wait_line(Duration::from_secs(15), |l| l.starts_with("ready"))?;
    Ok(p)
}

fn run_kernel(
    ctx: &Ctx,
    path: &ResolvedPath,
    plan: &ChainPlan,
    topo: &Topology,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let n = plan.depth;
    let end = |k: u32| kernel_end(ctx, path, topo, k, n);
    let server_end = end(n + 1);
    let serve = KernelServeCommand {
        proto: path.proto,
        listen: match &server_end {
            RelayEnd::Unix(p) => KernelListen::Path(p.clone()),
            RelayEnd::Udp(a) | RelayEnd::Tcp(a) => KernelListen::Bind(*a),
        },
        backend: path.backend,
        cpu: path.server_cpu,
        duration_s: server_cap_secs(path),
        sockperf_port: None,
        service: ServiceArg::default(),
    };
    let mut server = spawn_ready(ctx, topo, "bypass kernel-serve", serve.argv(), res)?;
    // Upstream first, so each relay finds its upstream listening (tcp pools connect early).
    let mut relays: Vec<Proc> = Vec::new();
    let started = (1..=n).rev().try_for_each(|k| {
        let cmd = KernelRelayCommand {
            listen: end(k),
            upstreams: vec![end(k + 1)],
            balance: Balance::RoundRobin,
            backend: path.backend,
            cpu: plan.hop_cpus[k as usize - 1],
            duration_s: server_cap_secs(path),
        };
        relays.insert(
            0,
            spawn_ready(ctx, topo, "bypass kernel-relay", cmd.argv(), res)?,
        );
        Ok::<(), PathError>(())
    });
    let measured = started.and_then(|()| {
        let first = if n == 0 { server_end.clone() } else { end(1) };
        let target = Target::socket(load_target(&first));
        run_load(ctx, path, topo.client_ns(), &target, res)
    });
    // Front to back, so no relay is left forwarding to a stopped upstream; every report kept.
    let finals: Vec<_> = relays
        .iter_mut()
        .map(stop_server::<KernelRelayFinal>)
        .collect();
    let fin = stop_server::<KernelServeFinal>(&mut server);
    remove_sockets(path, &(1..=n + 1).map(end).collect::<Vec<_>>());
    measured?;
    let mut hops = Vec::new();
    for (k, f) in (1..).zip(finals) {
        let f = f.map_err(|e| format!("hop {k}: no relay counters: {e}"))?;
        hops.push(HopCount::from_kernel(k, end(k).to_string(), &f.typed));
    }
    res.keep_server_report(fin);
    check_hops(plan, hops, res)
}

fn remove_sockets(path: &ResolvedPath, ends: &[RelayEnd]) {
    if path.proto != Proto::Unix {
        return;
    }
    for e in ends {
        if let RelayEnd::Unix(p) = e {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Keeps the round's hop counts and fails it when they disagree with the client's.
fn check_hops(
    plan: &ChainPlan,
    hops: Vec<HopCount>,
    res: &mut PathResult,
) -> Result<(), PathError> {
    if hops.len() != plan.depth as usize {
        res.counts_disagree = true;
        return Err(format!(
            "{} relay lines for a chain {} hops deep",
            hops.len(),
            plan.depth
        )
        .into());
    }
    let loss = res.loss.clone().unwrap_or_default();
    let client = ClientCounts {
        sent: loss.sent,
        received: loss.received,
        lost: loss.lost,
        warmup_sent: res.warmup_sent,
    };
    res.hops = hops;
    if let Err(e) = counters::check(&client, &res.hops) {
        res.counts_disagree = true;
        return Err(format!("relay counts disagree with the client's: {e}").into());
    }
    Ok(())
}
