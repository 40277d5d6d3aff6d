//! The `chain` path kind's scenario keys and what they resolve to: which hops (fast-path
//! `rpc-relay` instances or `bypass kernel-relay` processes), the depths swept, where each hop
//! runs and which address or port it listens on. A chain path becomes one latency path per
//! depth (`<name>-d<N>`), so every depth takes part in the interleaved rounds like any path.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::lab::scenario::{in_lab_range, ResolvedPath, ScenarioError, TopologySpec};

/// What a hop of a chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HopKind {
    /// An `rpc-relay` of the fast path: every hop inside the one fast-path process.
    Fastpath,
    /// A `bypass kernel-relay` process (epoll over kernel sockets): the sidecar baseline.
    Kernel,
}

impl HopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HopKind::Fastpath => "fastpath",
            HopKind::Kernel => "kernel",
        }
    }
}

/// `depths = [0, 1, 2]` or `depths = "0:5"` (both ends included).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Depths {
    List(Vec<u32>),
    Range(String),
}

/// The deepest chain a scenario may ask for: every depth costs `repeats` rounds.
pub const MAX_CHAIN_DEPTH: u32 = 16;

/// One depth of a chain path, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainPlan {
    /// The chain path's name in the scenario (each depth's path is `<chain>-d<depth>`).
    pub chain: String,
    pub hop: HopKind,
    pub depth: u32,
    /// Every depth the chain measures (the report's rows and slopes run over them).
    pub depths: Vec<u32>,
    /// CPU of hop k at index k-1 (hop 1 is the client's neighbour); `depth` entries.
    pub hop_cpus: Vec<usize>,
    /// Fast-path hops: the address relay k answers for (port 7777), `depth` entries.
    pub relay_ips: Vec<Ipv4Addr>,
}

fn err(field: &str, msg: impl Into<String>) -> ScenarioError {
    ScenarioError {
        field: field.to_string(),
        msg: msg.into(),
    }
}

/// The depths of `depths`, strictly increasing, with 0 (the bare server every depth is
/// measured against) and at least one more.
pub fn parse_depths(d: Option<&Depths>, field: &str) -> Result<Vec<u32>, ScenarioError> {
    let d = d.ok_or_else(|| err(field, "a chain needs depths, e.g. [0, 1, 2] or \"0:5\""))?;
    let list = match d {
        Depths::List(v) => v.clone(),
        Depths::Range(s) => {
            let (a, b) = s
                .split_once(':')
                .and_then(|(a, b)| {
                    Some((a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?))
                })
                .ok_or_else(|| {
                    err(
                        field,
                        format!("{s:?}: write \"A:B\" (depths A to B, both included)"),
                    )
                })?;
            if a > b {
                return Err(err(field, format!("{s:?}: A is above B")));
            }
            (a..=b).collect()
        }
    };
    if list.windows(2).any(|w| w[0] >= w[1]) {
        return Err(err(
            field,
            "depths must be strictly increasing (no repeats)",
        ));
    }
    if list.first() != Some(&0) || list.len() < 2 {
        return Err(err(
            field,
            "depths start at 0 (the bare server, the reference every hop is measured against) and name at least one more",
        ));
    }
    if let Some(&m) = list.last().filter(|&&m| m > MAX_CHAIN_DEPTH) {
        return Err(err(field, format!("depth {m}: at most {MAX_CHAIN_DEPTH}")));
    }
    Ok(list)
}

/// `n` addresses for fast-path relays in the server's subnet, after the server's address
/// (wrapping), skipping the client's, the network and the broadcast address.
pub fn relay_ips(topo: &TopologySpec, n: usize) -> Result<Vec<Ipv4Addr>, String> {
    let bits = 32 - u32::from(topo.prefix_len);
    let size = 1u64 << bits;
    let mask = u32::MAX << bits;
    let net = u32::from(topo.server_ip) & mask;
    let start = u64::from(u32::from(topo.server_ip) - net);
    let mut out = Vec::with_capacity(n);
    for i in 1..size {
        if out.len() == n {
            break;
        }
        let host = (start + i) % size;
        if host == 0 || host == size - 1 {
            continue;
        }
        let ip = Ipv4Addr::from(net | host as u32);
        if Some(ip) == topo.client_ip || !in_lab_range(ip) {
            continue;
        }
        out.push(ip);
    }
    if out.len() < n {
        return Err(format!(
            "{n} relays need {n} addresses beside the server's and the client's in {}/{}; it has {}",
            topo.server_ip,
            topo.prefix_len,
            out.len()
        ));
    }
    Ok(out)
}

/// Where the hops of a chain of `depth` run, one line for the report.
pub fn placement_text(
    hop: HopKind,
    server_cpu: usize,
    client_cpu: usize,
    hop_cpus: &[usize],
) -> String {
    match hop {
        HopKind::Fastpath => format!(
            "co-located: one fast-path process holds the server and every relay; its one worker on CPU {server_cpu} polls the memif port and net_ring0, which joins the hops; control lcore and the DPDK client on CPU {client_cpu}"
        ),
        HopKind::Kernel => {
            let mut cpus: Vec<usize> = hop_cpus.to_vec();
            cpus.sort_unstable();
            cpus.dedup();
            let hops = match cpus.as_slice() {
                [] => String::new(),
                [c] => format!(", every relay on CPU {c}"),
                _ => format!(", relays on CPUs {:?} (hop 1 first)", hop_cpus),
            };
            format!("kernel-serve on CPU {server_cpu}{hops}; the client on CPU {client_cpu}; loopback between them")
        }
    }
}

/// The one-line description of a chain's depth `d`.
pub fn describe_depth(hop: HopKind, d: u32, base: &ResolvedPath) -> String {
    let (client, server) = match hop {
        HopKind::Fastpath => (
            "bypass load over DPDK (memif)".to_string(),
            format!(
                "the fast path on net_memif ({} poll)",
                base.poll_mode.as_str()
            ),
        ),
        HopKind::Kernel => (
            format!("bypass load ({} wait, kernel sockets)", base.wait.as_str()),
            format!(
                "kernel {} server ({} backend) on loopback",
                base.proto.as_str(),
                base.backend.as_str()
            ),
        ),
    };
    let hops = match (hop, d) {
        (_, 0) => "no relay (depth 0, the reference)".to_string(),
        (HopKind::Fastpath, n) => format!(
            "{n} fast-path rpc-relay{} in the server's process, joined by net_ring0",
            if n == 1 { "" } else { "s" }
        ),
        (HopKind::Kernel, n) => format!(
            "{n} bypass kernel-relay{} ({} {}, epoll)",
            if n == 1 { "" } else { "s" },
            base.proto.as_str(),
            base.backend.as_str()
        ),
    };
    format!("round trip: {client} -> {hops} -> {server}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_as_a_list_or_a_range() {
        let f = "path[0].depths";
        assert_eq!(
            parse_depths(Some(&Depths::List(vec![0, 1, 3])), f).unwrap(),
            [0, 1, 3]
        );
        assert_eq!(
            parse_depths(Some(&Depths::Range("0:5".into())), f).unwrap(),
            [0, 1, 2, 3, 4, 5]
        );
        for bad in [
            Depths::List(vec![1, 2]),
            Depths::List(vec![0]),
            Depths::List(vec![0, 2, 2]),
            Depths::List(vec![0, 3, 1]),
            Depths::List(vec![0, 17]),
            Depths::Range("0-5".into()),
            Depths::Range("3:1".into()),
            Depths::Range("0:x".into()),
        ] {
            let e = parse_depths(Some(&bad), f).unwrap_err();
            assert_eq!(e.field, f, "{bad:?}");
        }
        assert!(parse_depths(None, f)
            .unwrap_err()
            .msg
            .contains("needs depths"));
    }

    fn topo(server: &str, client: Option<&str>, prefix_len: u8) -> TopologySpec {
        TopologySpec {
            name: "t".into(),
            kind: crate::lab::scenario::TopologyKind::Memif,
            server_ip: server.parse().unwrap(),
            client_ip: client.map(|c| c.parse().unwrap()),
            prefix_len,
            server_eal: Vec::new(),
            client_iface: None,
            client_eal: Vec::new(),
            zero_copy: None,
        }
    }

    #[test]
    fn relay_addresses_skip_the_client_and_wrap_in_the_subnet() {
        let t = topo("198.18.4.1", Some("198.18.4.2"), 24);
        let ips = relay_ips(&t, 3).unwrap();
        assert_eq!(
            ips,
            ["198.18.4.3", "198.18.4.4", "198.18.4.5"].map(|s| s.parse::<Ipv4Addr>().unwrap())
        );
        // A /30 has two hosts: server and client; no room for a relay.
        let small = topo("198.18.4.1", Some("198.18.4.2"), 30);
        assert!(relay_ips(&small, 1).unwrap_err().contains("has 0"));
        // Wraps past the broadcast address, skipping it and the network address.
        let top = topo("198.18.4.253", Some("198.18.4.1"), 24);
        let ips = relay_ips(&top, 3).unwrap();
        assert_eq!(
            ips,
            ["198.18.4.254", "198.18.4.2", "198.18.4.3"].map(|s| s.parse::<Ipv4Addr>().unwrap())
        );
    }

    #[test]
    fn placement_says_where_each_chain_ran() {
        let f = placement_text(HopKind::Fastpath, 1, 0, &[]);
        assert!(f.starts_with("co-located") && f.contains("CPU 1"), "{f}");
        let k = placement_text(HopKind::Kernel, 1, 0, &[1, 1, 1]);
        assert_eq!(k, "kernel-serve on CPU 1, every relay on CPU 1; the client on CPU 0; loopback between them");
        let spread = placement_text(HopKind::Kernel, 1, 0, &[2, 3]);
        assert!(spread.contains("relays on CPUs [2, 3]"), "{spread}");
    }
}
