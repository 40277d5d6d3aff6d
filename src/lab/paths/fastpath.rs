//! The fast path on a port the kernel client can reach: net_af_xdp on the server end of a
//! veth pair, net_tap (whose interface is the client's), or the real devices of a nic
//! topology. `bypass serve --mode rpc` runs in the server namespace with its worker on the
//! server CPU; the client is `bypass load`, sockperf, or (nic) `bypass load` over DPDK.

use std::net::SocketAddrV4;
use std::time::Duration;

use super::client::{measure_with_cross_check, run_load, run_sockperf, Target};
use super::kernel::{RPC_PORT, SOCKPERF_PORT};
use super::{server_cap_secs, shell_line, stop_server, Ctx, PathError};
use crate::contract::load::LoadTarget;
use crate::contract::serve::{ServeCommand, ServeFinal, ServiceArg};
use crate::lab::eal;
use crate::lab::proc::Proc;
use crate::lab::results::PathResult;
use crate::lab::scenario::{Client, ResolvedPath, TopologyKind};
use crate::lab::topology::{DpdkPrefix, Topology};
use crate::options::Proto;

/// `bypass serve --mode rpc --json` for this path on this topology: answering for its server
/// address, worker on the server CPU and control lcore on the client CPU, stopping by itself
/// after `duration_s`, on `devices`; the caller sets the other options.
pub fn serve_command(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    duration_s: f64,
    prefix: &DpdkPrefix,
    devices: &[String],
) -> ServeCommand {
    ServeCommand {
        ip: topo.spec.server_ip,
        poll_mode: path.poll_mode,
        duration_s,
        interval_ms: None,
        mac: None,
        burst: None,
        checksum: path.checksum,
        joined: false,
        relays: Vec::new(),
        service: ServiceArg::default(),
        eal: eal::args(
            &[path.client_cpu, path.server_cpu],
            ctx.plan.placement.hugepages,
            prefix,
            devices,
        ),
    }
}

/// The full command line of `cmd` in the topology's server namespace.
pub fn serve_argv(ctx: &Ctx, topo: &Topology, cmd: &ServeCommand) -> Vec<String> {
    let mut argv = topo.server_ns.prefix();
    argv.push(ctx.bin.to_string_lossy().into_owned());
    argv.extend(cmd.argv());
    argv
}

/// Starts `bypass serve --mode rpc` with `devices` in the topology's server namespace and
/// waits for its first report line (workers running).
pub fn start_server(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    devices: &[String],
    prefix: &DpdkPrefix,
    res: &mut PathResult,
) -> Result<Proc, PathError> {
    let cmd = ServeCommand {
        interval_ms: Some(500),
        ..serve_command(ctx, path, topo, server_cap_secs(path), prefix, devices)
    };
    let argv = serve_argv(ctx, topo, &cmd);
    res.commands.push(shell_line(&argv));
    let mut server = Proc::spawn("bypass serve", &argv)?;
    server.wait_line(Duration::from_secs(30), |l| l.contains("\"interval\""))?;
    Ok(server)
}

pub fn run(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let devices: Vec<String> = match topo.spec.kind {
        TopologyKind::Veth => vec![format!("--vdev=net_af_xdp0,iface={}", topo.server_dev)],
        TopologyKind::Tap => vec![format!("--vdev=net_tap0,iface={}", topo.server_dev)],
        TopologyKind::Nic => topo.spec.server_eal.clone(),
        k => {
            return Err(PathError::Failed(format!(
                "no fast path on a {} topology",
                k.as_str()
            )))
        }
    };
    let prefix = DpdkPrefix::new("fp");
    let mut server = start_server(ctx, path, topo, &devices, &prefix, res)?;
    let ip = topo.spec.server_ip.to_string();
    let addr = SocketAddrV4::new(topo.spec.server_ip, RPC_PORT);
    let measured = (|| -> Result<(), PathError> {
        if topo.spec.kind == TopologyKind::Tap {
            // net_tap made its interface in the server namespace; it is the client's side.
            topo.configure_tap(Duration::from_secs(20))?;
        }
        match path.client {
            Client::Sockperf => {
                topo.wait_reachable(Duration::from_secs(15))?;
                let stem = ctx.stem(path);
                run_sockperf(
                    ctx,
                    path,
                    topo.client_ns(),
                    (&ip, SOCKPERF_PORT),
                    &stem,
                    res,
                )
            }
            Client::LoadDpdk => {
                let target = Target {
                    to: LoadTarget::Dpdk {
                        server: addr,
                        client_ip: topo.client_ip()?,
                    },
                    devices: topo.spec.client_eal.clone(),
                    replicas: Vec::new(),
                };
                run_load(ctx, path, &topo.server_ns, &target, res)
            }
            _ => {
                topo.wait_reachable(Duration::from_secs(15))?;
                let target = Target::socket(LoadTarget::Socket {
                    proto: Proto::Udp,
                    server: addr,
                });
                let ns = topo.client_ns();
                let ours = |res: &mut PathResult| run_load(ctx, path, ns, &target, res);
                measure_with_cross_check(ctx, path, ns, (&ip, SOCKPERF_PORT), ours, res)
            }
        }
    })();
    let fin = stop_server::<ServeFinal>(&mut server);
    measured?;
    res.keep_fastpath_report(fin);
    Ok(())
}
