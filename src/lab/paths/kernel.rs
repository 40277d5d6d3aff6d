//! A kernel-stack baseline path: `bypass kernel-serve` (udp, tcp or unix; blocking, busy or
//! batch) in the server namespace, pinned to the server CPU, measured by `bypass load` or by
//! sockperf against its sockperf port.

use std::net::SocketAddrV4;
use std::time::Duration;

use super::client::{measure_with_cross_check, run_load, run_sockperf, Target};
use super::{server_cap_secs, shell_line, stop_server, Ctx, PathError};
use crate::contract::load::LoadTarget;
use crate::contract::serve::{KernelListen, KernelServeCommand, KernelServeFinal};
use crate::lab::proc::Proc;
use crate::lab::results::PathResult;
use crate::lab::scenario::{Client, ResolvedPath, TopologyKind};
use crate::lab::topology::Topology;
use crate::options::Proto;

pub const RPC_PORT: u16 = 7777;
pub const SOCKPERF_PORT: u16 = 11111;

pub fn run(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let ip = topo.spec.server_ip.to_string();
    let addr = SocketAddrV4::new(topo.spec.server_ip, RPC_PORT);
    let sock = ctx
        .run_dir
        .join(format!("{}.sock", path.name))
        .to_string_lossy()
        .into_owned();
    let cmd = KernelServeCommand {
        proto: path.proto,
        listen: match path.proto {
            Proto::Unix => KernelListen::Path(sock.clone()),
            Proto::Udp | Proto::Tcp => KernelListen::Bind(addr),
        },
        backend: path.backend,
        cpu: path.server_cpu,
        duration_s: server_cap_secs(path),
        sockperf_port: (path.proto == Proto::Udp).then_some(SOCKPERF_PORT),
        service: path.service.clone(),
    };
    let mut argv = topo.server_ns.prefix();
    argv.push(ctx.bin.to_string_lossy().into_owned());
    argv.extend(cmd.argv());
    res.commands.push(shell_line(&argv));
    let mut server = Proc::spawn("bypass kernel-serve", &argv)?;
    server.wait_line(Duration::from_secs(15), |l| l.starts_with("ready"))?;
    if topo.spec.kind == TopologyKind::Veth {
        topo.wait_reachable(Duration::from_secs(10))?;
    }
    let ns = topo.client_ns();
    let stem = ctx.stem(path);
    let measured = match (path.client, path.proto) {
        (Client::Sockperf, _) => run_sockperf(ctx, path, ns, (&ip, SOCKPERF_PORT), &stem, res),
        (_, Proto::Unix) => {
            let target = Target::socket(LoadTarget::Unix {
                path: sock.clone().into(),
            });
            run_load(ctx, path, ns, &target, res)
        }
        (_, proto) => {
            let mut target = Target::socket(LoadTarget::Socket {
                proto,
                server: addr,
            });
            // Replicas listen on consecutive ports from the first.
            let n = path.service.replicas.unwrap_or(1);
            if n > 1 {
                target.replicas = (0..n)
                    .map(|r| SocketAddrV4::new(topo.spec.server_ip, RPC_PORT + r))
                    .collect();
            }
            let ours = |res: &mut PathResult| run_load(ctx, path, ns, &target, res);
            measure_with_cross_check(ctx, path, ns, (&ip, SOCKPERF_PORT), ours, res)
        }
    };
    // Stop the server whatever the client did, and keep its report either way.
    let fin = stop_server::<KernelServeFinal>(&mut server);
    let _ = std::fs::remove_file(&sock);
    measured?;
    res.keep_server_report(fin);
    Ok(())
}
