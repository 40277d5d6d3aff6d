//! The fast path and the DPDK client joined by net_memif: two processes sharing memory over a
//! unix socket, kernel on neither end. The server (role=server) owns the socket; the client is
//! `bypass load --transport dpdk` with the client role, its main lcore on the client CPU.

use std::net::SocketAddrV4;

use super::client::{run_load, Target};
use super::fastpath::start_server;
use super::kernel::RPC_PORT;
use super::{stop_server, Ctx, PathError};
use crate::contract::load::LoadTarget;
use crate::contract::serve::ServeFinal;
use crate::lab::results::PathResult;
use crate::lab::scenario::ResolvedPath;
use crate::lab::topology::{DpdkPrefix, Topology};

/// The memif `--vdev` of the server and of the DPDK client on the topology's socket.
pub fn devices(ctx: &Ctx, topo: &Topology) -> (String, String) {
    let sock = &topo.server_dev;
    // A socket file (not the abstract namespace) so both processes find it by path.
    let dev =
        |role: &str| format!("--vdev=net_memif0,role={role},socket={sock},socket-abstract=no");
    // Only a client can be zero-copy (the 22.11 PMD ignores it on a server).
    let client = if topo.spec.memif_zero_copy(ctx.plan.placement.hugepages) {
        format!("{},zero-copy=yes", dev("client"))
    } else {
        dev("client")
    };
    (dev("server"), client)
}

pub fn run(
    ctx: &Ctx,
    path: &ResolvedPath,
    topo: &Topology,
    res: &mut PathResult,
) -> Result<(), PathError> {
    let (server_dev, client_dev) = devices(ctx, topo);
    let prefix = DpdkPrefix::new("mfs");
    let mut server = start_server(ctx, path, topo, &[server_dev], &prefix, res)?;
    let target = Target {
        to: LoadTarget::Dpdk {
            server: SocketAddrV4::new(topo.spec.server_ip, RPC_PORT),
            client_ip: topo.client_ip()?,
        },
        devices: vec![client_dev],
        replicas: Vec::new(),
    };
    let measured = run_load(ctx, path, &topo.server_ns, &target, res);
    let fin = stop_server::<ServeFinal>(&mut server);
    measured?;
    res.keep_fastpath_report(fin);
    Ok(())
}
