//! The server graph's invariants, as one checker shared by the `server_graph`
//! fuzz target (fuzz/) and its corpus replay (tests/fuzz_corpus.rs), so the
//! long fuzz runs and the seconds-long CI replay assert exactly the same
//! things: every packet sent or dropped under exactly one counted reason, no
//! reply longer than its request, every reply's checksums valid, and no
//! reply addressed to a broadcast, multicast or zero destination.
//!
//! Test and fuzz support only: it allocates freely and is never on the
//! packet path. [`GraphChecker`] keeps one graph across inputs, which is
//! what makes the fuzz target fast.

use core::fmt;

use crate::graph::{
    now_tsc, BuildError, Graph, GraphStats, PacketBuf, PacketVector, VecBuf, DROP, TX, TX_FULL,
    VECTOR_SIZE,
};
use crate::wire::{
    ArpPacket, EtherType, EthernetFrame, IcmpEchoPacket, IpProtocol, Ipv4Address, Ipv4Packet,
    MacAddress, UdpPacket,
};

use super::{build_server_graph, NodeConfig, ETHERNET_INPUT};

/// The server's addresses in the checks (the node tests' own).
pub const CHECK_MAC: MacAddress = MacAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const CHECK_IP: Ipv4Address = Ipv4Address([198, 18, 0, 1]);
/// One tick per nanosecond: the checks look at no timing, and this keeps
/// `spin` bounded by `spin_max_ns` of real time on any host.
const CHECK_HZ: u64 = 1_000_000_000;

/// The configuration the checks run: defaults, except that a `spin` longer
/// than 10 µs is refused, so a fuzzer that finds `spin` does not spend its
/// time spinning.
pub fn check_config() -> NodeConfig {
    NodeConfig {
        spin_max_ns: 10_000,
        ..NodeConfig::new(CHECK_MAC, CHECK_IP)
    }
}

/// A broken invariant, said in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err(Violation(format!($($msg)*)));
        }
    };
}

/// What one pass of frames through a fresh server graph produced.
pub struct GraphRun {
    pub replies: Vec<Vec<u8>>,
    pub stats: GraphStats,
}

/// Runs `frames` through a fresh server graph built from `cfg`, one
/// dispatch per [`VECTOR_SIZE`] frames, as the rx loop would.
pub fn run_server_graph(cfg: &NodeConfig, frames: &[&[u8]]) -> Result<GraphRun, BuildError> {
    let mut g = build_server_graph::<VecBuf>(cfg, CHECK_HZ)?;
    let replies = dispatch_all(&mut g, frames);
    Ok(GraphRun {
        replies,
        stats: g.stats(),
    })
}

/// Feeds `frames` to `g`, one dispatch per [`VECTOR_SIZE`] frames, as the
/// rx loop would, and returns what came out on `tx`.
fn dispatch_all(g: &mut Graph<VecBuf>, frames: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    for chunk in frames.chunks(VECTOR_SIZE) {
        let mut input = PacketVector::new();
        for f in chunk {
            // A chunk never exceeds VECTOR_SIZE, so push cannot fail.
            let _ = input.push(VecBuf::from_slice(f));
        }
        let mut out = PacketVector::new();
        g.dispatch(&mut input, now_tsc(), &mut out);
        replies.extend(out.drain().map(|p| p.data().to_vec()));
    }
    replies
}

/// Runs `frames` through the server graph of [`check_config`] and checks
/// every invariant of the result.
pub fn check_server_graph(frames: &[&[u8]]) -> Result<(), Violation> {
    let run = run_server_graph(&check_config(), frames)
        .map_err(|e| Violation(format!("graph does not build: {e}")))?;
    check_run(frames, &run)
}

/// One server graph of [`check_config`], built once and run on input after
/// input: building one costs far more than running a frame through it, so
/// the fuzz target keeps one. The nodes hold only their configuration and
/// every dispatch drains every vector, so nothing carries over from one
/// input to the next but the counters, and those are read as the
/// difference across the input: each run's stats are exactly a fresh
/// graph's (the conservation check would see a packet left behind).
pub struct GraphChecker {
    graph: Graph<VecBuf>,
    /// The counters after the last input: one snapshot per input, not two.
    last: GraphStats,
}

impl GraphChecker {
    pub fn new() -> Result<Self, BuildError> {
        let graph = build_server_graph::<VecBuf>(&check_config(), CHECK_HZ)?;
        let last = graph.stats();
        Ok(Self { graph, last })
    }

    /// What `frames` produce, with the counters of this input alone.
    pub fn run(&mut self, frames: &[&[u8]]) -> GraphRun {
        let replies = dispatch_all(&mut self.graph, frames);
        let now = self.graph.stats();
        let stats = diff(&now, &self.last);
        self.last = now;
        GraphRun { replies, stats }
    }

    /// [`check_server_graph`] on the reused graph.
    pub fn check(&mut self, frames: &[&[u8]]) -> Result<(), Violation> {
        let run = self.run(frames);
        check_run(frames, &run)
    }
}

/// `now - before` for two snapshots of one graph: the same nodes and
/// reasons in the same order, so it subtracts by position, which
/// [`GraphStats::delta`] (matching by name, for any two graphs) does far
/// more slowly. The counters wrap, so the difference does too.
fn diff(now: &GraphStats, before: &GraphStats) -> GraphStats {
    let mut d = now.clone();
    for (n, b) in d.nodes.iter_mut().zip(&before.nodes) {
        debug_assert_eq!(n.name, b.name);
        n.calls = n.calls.wrapping_sub(b.calls);
        n.vectors = n.vectors.wrapping_sub(b.vectors);
        n.packets = n.packets.wrapping_sub(b.packets);
        n.cycles = n.cycles.wrapping_sub(b.cycles);
        n.timed_packets = n.timed_packets.wrapping_sub(b.timed_packets);
        for (r, br) in n.drops.iter_mut().zip(&b.drops) {
            r.1 = r.1.wrapping_sub(br.1);
        }
    }
    d
}

/// The invariants of `run`, the result of `frames`.
pub fn check_run(frames: &[&[u8]], run: &GraphRun) -> Result<(), Violation> {
    check_conservation(frames.len(), run.replies.len(), &run.stats)?;
    check_lengths(frames, &run.replies)?;
    for (i, r) in run.replies.iter().enumerate() {
        check_reply(r).map_err(|v| Violation(format!("reply {i}: {v}")))?;
    }
    Ok(())
}

/// Every packet in is either sent or dropped under one counted reason.
fn check_conservation(n_in: usize, n_tx: usize, stats: &GraphStats) -> Result<(), Violation> {
    let (n_in, n_tx) = (n_in as u64, n_tx as u64);
    let packets = |node| stats.node(node).map_or(0, |s| s.packets);
    ensure!(
        packets(ETHERNET_INPUT) == n_in,
        "{ETHERNET_INPUT} saw {} packets of {n_in}",
        packets(ETHERNET_INPUT)
    );
    ensure!(
        packets(TX) == n_tx,
        "tx counted {} packets, {n_tx} came out",
        packets(TX)
    );
    ensure!(stats.drops(TX, TX_FULL) == 0, "tx full with one vector out");
    let unattributed = stats.node(DROP).map_or(0, |s| s.total_drops());
    ensure!(unattributed == 0, "{unattributed} drops without a reason");
    let drops = stats.total_drops();
    ensure!(
        drops + n_tx == n_in,
        "{drops} counted drops + {n_tx} sent != {n_in} in"
    );
    ensure!(
        packets(DROP) == drops,
        "drop node saw {} packets, reasons count {drops}",
        packets(DROP)
    );
    Ok(())
}

/// No reply is longer than its request. Replies are not tagged with their
/// request, so for a vector this checks that some one-to-one matching
/// exists: the k-th longest reply is no longer than the k-th longest
/// request (for one frame, that is exact).
fn check_lengths(frames: &[&[u8]], replies: &[Vec<u8>]) -> Result<(), Violation> {
    let mut req: Vec<usize> = frames.iter().map(|f| f.len()).collect();
    let mut rep: Vec<usize> = replies.iter().map(Vec::len).collect();
    req.sort_unstable_by(|a, b| b.cmp(a));
    rep.sort_unstable_by(|a, b| b.cmp(a));
    for (k, (r, q)) in rep.iter().zip(&req).enumerate() {
        ensure!(
            r <= q,
            "the {k}-th longest reply ({r} bytes) is longer than the {k}-th longest request ({q})"
        );
    }
    Ok(())
}

/// One reply: checksums valid, addressed to a unicast, non-zero peer.
pub fn check_reply(f: &[u8]) -> Result<(), Violation> {
    let eth = EthernetFrame::new_checked(f).map_err(|e| Violation(format!("ethernet: {e}")))?;
    let dst = eth.dst_addr();
    ensure!(
        !dst.is_broadcast() && !dst.is_multicast() && !dst.is_unspecified(),
        "sent to MAC {dst}"
    );
    match eth.ethertype() {
        EtherType::Ipv4 => check_ipv4_reply(eth.payload()),
        EtherType::Arp => {
            let arp = ArpPacket::new_checked(eth.payload())
                .map_err(|e| Violation(format!("arp: {e}")))?;
            let to = arp.target_proto_addr();
            ensure!(
                !to.is_broadcast() && !to.is_multicast() && !to.is_unspecified(),
                "ARP reply to {to}"
            );
            Ok(())
        }
        other => Err(Violation(format!("reply of ethertype {other:?}"))),
    }
}

fn check_ipv4_reply(b: &[u8]) -> Result<(), Violation> {
    let ip = Ipv4Packet::new_checked(b).map_err(|e| Violation(format!("ipv4: {e}")))?;
    ensure!(ip.verify_checksum(), "bad IPv4 header checksum");
    let dst = ip.dst_addr();
    ensure!(
        !dst.is_broadcast() && !dst.is_multicast() && !dst.is_unspecified(),
        "sent to IP {dst}"
    );
    match ip.protocol() {
        IpProtocol::Udp => {
            let udp =
                UdpPacket::new_checked(ip.payload()).map_err(|e| Violation(format!("udp: {e}")))?;
            ensure!(
                udp.checksum() == 0 || udp.verify_checksum(ip.src_addr(), dst),
                "bad UDP checksum {:#06x}",
                udp.checksum()
            );
        }
        IpProtocol::Icmp => {
            let icmp = IcmpEchoPacket::new_checked(ip.payload())
                .map_err(|e| Violation(format!("icmp: {e}")))?;
            ensure!(icmp.verify_checksum(), "bad ICMP checksum");
        }
        other => return Err(Violation(format!("reply of IP protocol {other:?}"))),
    }
    Ok(())
}

/// The `server_graph` fuzz input: byte 0 even, the rest is one frame; odd,
/// the rest is a vector of frames, each a big-endian `u16` length then
/// that many bytes (a length past the end takes what is left).
pub fn decode_frames(data: &[u8]) -> Vec<&[u8]> {
    let Some((&mode, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    if mode % 2 == 0 {
        return vec![rest];
    }
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        frames.push(&rest[2..2 + n]);
        rest = &rest[2 + n..];
    }
    frames
}

/// The inverse of [`decode_frames`], for writing seeds: one frame alone
/// as mode 0, several as a mode-1 vector. `None` if a frame is longer than
/// a `u16` length can say.
pub fn encode_frames(frames: &[&[u8]]) -> Option<Vec<u8>> {
    if let [one] = frames {
        return Some([&[0u8][..], one].concat());
    }
    let mut out = vec![1u8];
    for f in frames {
        out.extend_from_slice(&u16::try_from(f.len()).ok()?.to_be_bytes());
        out.extend_from_slice(f);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let a: &[u8] = b"abc";
        let b: &[u8] = b"";
        assert_eq!(decode_frames(&encode_frames(&[a]).unwrap()), [a]);
        assert_eq!(
            decode_frames(&encode_frames(&[a, b, a]).unwrap()),
            [a, b, a]
        );
        assert_eq!(decode_frames(&[1, 0, 9, 7]), [&[7u8][..]]);
        assert!(decode_frames(&[]).is_empty());
    }

    /// The reused graph reports, input by input, exactly what a fresh
    /// graph reports for that input alone (cycles and the RPC server time
    /// aside: they are time).
    #[test]
    fn reused_graph_counts_like_a_fresh_one() {
        use crate::graph::nodes::test_util::{icmp_echo_request, rpc_request};
        use crate::wire::RpcMethod;
        let (echo, ping) = (
            rpc_request(RpcMethod::Echo, 1, b"hi"),
            icmp_echo_request(b"x"),
        );
        let (junk, echo, ping): (&[u8], &[u8], &[u8]) = (&[0u8; 60], &echo, &ping);
        let many: Vec<&[u8]> = [echo, junk, ping].repeat(100);
        let inputs: [&[&[u8]]; 5] = [&[echo, b"\xff", junk], &[], &many, &[ping], &[b""]];
        let mut c = GraphChecker::new().unwrap();
        let zero_cycles = |mut s: GraphStats| {
            s.nodes.iter_mut().for_each(|n| n.cycles = 0);
            s
        };
        for frames in inputs {
            let fresh = run_server_graph(&check_config(), frames).unwrap();
            let reused = c.run(frames);
            // The bytes differ only in the RPC reply's server time.
            let lens = |r: &GraphRun| r.replies.iter().map(Vec::len).collect::<Vec<_>>();
            assert_eq!(lens(&reused), lens(&fresh));
            let answered = frames.iter().filter(|f| [echo, ping].contains(f)).count();
            assert_eq!(reused.replies.len(), answered);
            assert_eq!(zero_cycles(reused.stats), zero_cycles(fresh.stats));
            c.check(frames).unwrap();
        }
    }

    #[test]
    fn empty_and_junk_hold() {
        check_server_graph(&[]).unwrap();
        check_server_graph(&[b"", b"\xff\xff", &[0u8; 60]]).unwrap();
    }
}
