//! A kernel-stack baseline path: `bypass kernel-serve` (udp, tcp or unix; blocking, busy or
//! batch) in the server namespace, pinned to the server CPU, measured by `bypass load` or by
//! sockperf against its sockperf port.

use std::time::Duration;

use super::client::{measure_with_cross_check, run_load, run_sockperf, Target};
use super::{server_cap_secs, shell_line, stop_server, Ctx, PathError};
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
    let sock = ctx
        .run_dir
        .join(format!("{}.sock", path.name))
        .to_string_lossy()
        .into_owned();
    let mut argv = topo.server_ns.prefix();
    argv.extend([
        ctx.bin.to_string_lossy().into_owned(),
        "kernel-serve".into(),
        "--proto".into(),
        path.proto.as_str().into(),
    ]);
    match path.proto {
        Proto::Unix => argv.extend(["--path".into(), sock.clone()]),
        Proto::Udp | Proto::Tcp => argv.extend(["--bind".into(), format!("{ip}:{RPC_PORT}")]),
    }
    argv.extend([
        "--backend".into(),
        path.backend.as_str().into(),
        "--cpus".into(),
        path.server_cpu.to_string(),
        "--json".into(),
        "--duration".into(),
        format!("{}", server_cap_secs(path)),
    ]);
    if path.proto == Proto::Udp {
        argv.extend(["--sockperf-port".into(), SOCKPERF_PORT.to_string()]);
    }
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
        (_, Proto::Unix) => run_load(ctx, path, ns, &Target::Unix { path: sock.clone() }, res),
        (_, p) => {
            let transport = if p == Proto::Tcp { "tcp" } else { "udp" };
            let target = Target::Socket {
                transport,
                addr: format!("{ip}:{RPC_PORT}"),
            };
            let ours = |res: &mut PathResult| run_load(ctx, path, ns, &target, res);
            measure_with_cross_check(ctx, path, ns, (&ip, SOCKPERF_PORT), ours, res)
        }
    };
    // Stop the server whatever the client did, and keep its report either way.
    let fin = stop_server(&mut server);
    let _ = std::fs::remove_file(&sock);
    measured?;
    res.keep_server_report(fin);
    Ok(())
}
