//! Graph construction (name resolution, cycle check, topological order)
//! and the allocation-free dispatch loop.

use std::collections::HashMap;
use std::fmt;
use std::mem;
use std::sync::Arc;

use super::buf::PacketBuf;
use super::counters::{GraphCounters, GraphStats};
use super::node::{now_tsc, Node, NodeCtx};
use super::vector::{PacketVector, VECTOR_SIZE};

/// Built-in sink that frees packets. Drops are attributed to the sending
/// node's reason via [`NodeCtx::drop`]; this sink's own reasons catch
/// engine-detected problems ("unattributed", "bad-next").
pub const DROP: &str = "drop";
/// Built-in sink that moves packets into the caller's output vector.
pub const TX: &str = "tx";
/// Reason on the `tx` sink: the output vector was full, so the packet was
/// dropped. Retrying would need unbounded buffering, and the NIC TX ring is
/// about to be full anyway when this happens.
pub const TX_FULL: &str = "tx-full";

const DROP_REASONS: &[&str] = &["unattributed", "bad-next"];
const UNATTRIBUTED: usize = 0;
const BAD_NEXT: usize = 1;
const TX_REASONS: &[&str] = &[TX_FULL];

/// Why a graph could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    DuplicateName(&'static str),
    ReservedName(&'static str),
    UnknownEntry(String),
    UnknownNext {
        node: &'static str,
        next: &'static str,
    },
    /// Node names along the cycle, first repeated at the end.
    Cycle(Vec<&'static str>),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateName(n) => write!(f, "node name {n:?} is used twice"),
            Self::ReservedName(n) => write!(f, "node name {n:?} is reserved for a built-in sink"),
            Self::UnknownEntry(n) => write!(f, "entry node {n:?} is not in the graph"),
            Self::UnknownNext { node, next } => {
                write!(
                    f,
                    "node {node:?} names next node {next:?}, which does not exist"
                )
            }
            Self::Cycle(path) => write!(f, "graph has a cycle: {}", path.join(" -> ")),
        }
    }
}

impl std::error::Error for BuildError {}

/// Handle for [`Graph::enqueue`], resolved once by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeId(usize);

#[derive(Clone, Copy)]
enum Target {
    Node(usize),
    Drop,
    Tx,
}

struct Slot<P> {
    node: Box<dyn Node<P>>,
    edges: Box<[Target]>,
    /// Per edge, what the node guarantees about every packet it sends
    /// there ([`Node::edge_props`], padded with 0).
    edge_props: Box<[u32]>,
    pending: PacketVector<P>,
    /// AND of the edge properties of every packet in `pending`: what holds
    /// for all of them when the node runs. Reset by the first delivery
    /// into an empty vector.
    pending_props: u32,
    nexts: Box<[u16]>,
    drops: Box<[u64]>,
    last_round: u64,
}

/// Per-vector tally of what went to the built-in sinks, so their counters
/// are touched once per vector rather than once per packet.
#[derive(Default)]
struct SinkTally {
    dropped: u64,
    bad_next: u64,
    tx: u64,
    tx_full: u64,
}

/// A built, immutable-shape graph owned by one worker thread.
pub struct Graph<P: PacketBuf> {
    /// Topological order: a node only ever feeds nodes at higher indices,
    /// so a single ascending pass drains every pending vector.
    slots: Vec<Slot<P>>,
    /// Bit `i % 64` of word `i / 64` is set while slot `i` has pending
    /// packets: dispatch visits only those, lowest first (topological
    /// order), instead of testing every slot's vector. A vector of one
    /// passes 4 of the server graph's 7 nodes.
    pending: Box<[u64]>,
    entry: usize,
    counters: Arc<GraphCounters>,
    sink_round: [u64; 2],
    /// Incremented after each dispatch; lets `calls` count dispatches
    /// rather than flushes.
    round: u64,
    rx_tsc: u64,
    tsc_hz: u64,
    /// In a timed dispatch, the TSC at the end of the last node call (or
    /// the start of the dispatch): the start of the next call. One read per
    /// call instead of two; the few cycles of routing between calls go to
    /// the next node.
    last_tsc: u64,
    /// Node calls are timed in one dispatch of every `time_every`.
    time_every: u32,
    /// Dispatches to go until the next timed one (0: this one is timed).
    untimed_left: u32,
    /// Whether the current dispatch's node calls read the TSC.
    timed: bool,
}

impl<P: PacketBuf> Graph<P> {
    /// Resolve edges by name, refuse cycles, order nodes topologically and
    /// preallocate every vector. The only allocating step of the graph.
    pub fn new(nodes: Vec<Box<dyn Node<P>>>, entry: &str, tsc_hz: u64) -> Result<Self, BuildError> {
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let name = n.name();
            if name == DROP || name == TX {
                return Err(BuildError::ReservedName(name));
            }
            if index.insert(name, i).is_some() {
                return Err(BuildError::DuplicateName(name));
            }
        }
        let entry = *index
            .get(entry)
            .ok_or_else(|| BuildError::UnknownEntry(entry.to_owned()))?;
        let mut succ = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for &next in n.next_nodes() {
                if next == DROP || next == TX {
                    continue;
                }
                let j = *index.get(next).ok_or(BuildError::UnknownNext {
                    node: n.name(),
                    next,
                })?;
                succ[i].push(j);
            }
        }
        let names: Vec<_> = nodes.iter().map(|n| n.name()).collect();
        let order = topo_order(&succ, &names)?;
        let mut pos = vec![0; nodes.len()];
        for (p, &i) in order.iter().enumerate() {
            pos[i] = p;
        }

        let mut nodes: Vec<Option<Box<dyn Node<P>>>> = nodes.into_iter().map(Some).collect();
        let mut slots = Vec::with_capacity(order.len());
        for &i in &order {
            let node = nodes[i]
                .take()
                .expect("topological order visits each node once");
            let edges = node
                .next_nodes()
                .iter()
                .map(|&next| match next {
                    DROP => Target::Drop,
                    TX => Target::Tx,
                    _ => Target::Node(pos[index[next]]),
                })
                .collect();
            let props = node.edge_props();
            let edge_props = (0..node.next_nodes().len())
                .map(|k| props.get(k).copied().unwrap_or(0))
                .collect();
            slots.push(Slot {
                edge_props,
                pending_props: 0,
                drops: vec![0; node.drop_reasons().len()].into(),
                node,
                edges,
                pending: PacketVector::new(),
                nexts: vec![0; VECTOR_SIZE].into(),
                last_round: 0,
            });
        }

        let mut layout: Vec<_> = slots
            .iter()
            .map(|s| (s.node.name(), s.node.drop_reasons()))
            .collect();
        layout.push((DROP, DROP_REASONS));
        layout.push((TX, TX_REASONS));
        Ok(Self {
            entry: pos[entry],
            pending: vec![0; slots.len().div_ceil(64)].into(),
            slots,
            counters: Arc::new(GraphCounters::new(&layout)),
            sink_round: [0; 2],
            round: 1,
            rx_tsc: 0,
            tsc_hz,
            last_tsc: 0,
            time_every: 1,
            untimed_left: 0,
            timed: true,
        })
    }

    /// Read the TSC around node calls in one dispatch of every `n` (at least
    /// 1, the default: every call). The per-node cycles then come from the
    /// timed dispatches ([`NodeStats::timed_packets`](super::NodeStats)),
    /// while every count stays exact. Those reads are the largest fixed
    /// cost of a small vector: on the server graph one per node, and with
    /// a vector of one, 4 of them took ~45 ns of a ~125 ns dispatch
    /// (graph_dispatch example, 2.6 GHz Xeon VM).
    pub fn time_one_in(&mut self, n: u32) {
        self.time_every = n.max(1);
        self.untimed_left = 0;
    }

    /// Counters for the control thread; reading them takes no lock.
    pub fn counters(&self) -> Arc<GraphCounters> {
        Arc::clone(&self.counters)
    }

    pub fn stats(&self) -> GraphStats {
        self.counters.snapshot()
    }

    pub fn entry_name(&self) -> &'static str {
        self.slots[self.entry].node.name()
    }

    /// Node names in execution (topological) order.
    pub fn node_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.slots.iter().map(|s| s.node.name())
    }

    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.slots
            .iter()
            .position(|s| s.node.name() == name)
            .map(NodeId)
    }

    /// Queue a packet that did not come from the rx burst (timer-driven
    /// retransmits, application sends) at `node`; it is processed by the
    /// next [`Self::dispatch`]. If that node's vector is already full it is
    /// run right away, which may emit packets into `out`.
    pub fn enqueue(&mut self, node: NodeId, pkt: P, out: &mut PacketVector<P>) {
        self.last_tsc = now_tsc();
        // Nothing is known about a packet from outside the graph.
        self.deliver_one(node.0, pkt, 0, out);
    }

    /// Run the entry node on `input` (left empty), then every node with
    /// pending packets, in topological order, until all vectors are
    /// drained. Packets reaching `tx` are appended to `out`; those that do
    /// not fit are dropped and counted as `tx`/[`TX_FULL`].
    pub fn dispatch(
        &mut self,
        input: &mut PacketVector<P>,
        rx_tsc: u64,
        out: &mut PacketVector<P>,
    ) {
        self.rx_tsc = rx_tsc;
        self.timed = self.untimed_left == 0;
        self.untimed_left = match self.untimed_left {
            0 => self.time_every - 1,
            n => n - 1,
        };
        if self.timed {
            self.last_tsc = now_tsc();
        }
        if !input.is_empty() {
            self.deliver_vector(self.entry, input, 0, out);
        }
        // Nodes only feed higher slots, so the lowest pending slot can never
        // be fed again by what runs after it: taking the lowest set bit each
        // time runs every node once, in topological order. Each word is
        // re-read after a run, which may have set higher bits in it.
        for w in 0..self.pending.len() {
            while self.pending[w] != 0 {
                let i = w * 64 + self.pending[w].trailing_zeros() as usize;
                self.run(i, out);
            }
        }
        self.round += 1;
    }

    #[inline(always)]
    fn mark_pending(&mut self, i: usize) {
        self.pending[i / 64] |= 1 << (i % 64);
    }

    /// Process node `i`'s pending vector in place and route the result.
    /// Routing only goes to higher indices (recursively, via a flush of a
    /// full successor), so slot `i` is never touched meanwhile.
    ///
    /// The vector stays in its slot rather than being moved out for the
    /// call and back: those 24-byte moves through the stack cost a
    /// store-forwarding stall per node call (perf annotate on the
    /// graph_dispatch example), which a vector of one cannot amortise.
    fn run(&mut self, i: usize, out: &mut PacketVector<P>) {
        self.pending[i / 64] &= !(1 << (i % 64));
        let (rx_tsc, tsc_hz, round, timed) = (self.rx_tsc, self.tsc_hz, self.round, self.timed);
        let start = self.last_tsc;
        let slot = &mut self.slots[i];
        let n = slot.pending.len();
        debug_assert!(n != 0, "slot {i} marked pending with no packets");
        let new_call = slot.last_round != round;
        slot.last_round = round;

        // `slot.drops` is all zeros here: it is only written through the
        // context, and emptied below whenever the context counted a drop.
        let mut ctx = if timed {
            NodeCtx::with_start(&mut slot.drops, rx_tsc, tsc_hz, start, slot.pending_props)
        } else {
            NodeCtx::with_props(&mut slot.drops, rx_tsc, tsc_hz, slot.pending_props)
        };
        slot.node
            .process(&mut ctx, slot.pending.as_mut_slice(), &mut slot.nexts[..n]);
        let dropped = ctx.dropped();
        let cycles = if timed {
            let end = now_tsc();
            self.last_tsc = end;
            end.wrapping_sub(start)
        } else {
            0
        };

        self.counters.record(i, new_call, n as u64, cycles, timed);
        if dropped != 0 {
            for (reason, count) in slot.drops.iter_mut().enumerate() {
                if *count != 0 {
                    self.counters.add_drops(i, reason, mem::take(count));
                }
            }
        }
        self.route(i, dropped, out);
        debug_assert!(self.slots[i].pending.is_empty());
    }

    #[inline]
    fn target(&self, from: usize, k: usize) -> Option<Target> {
        let slot = &self.slots[from];
        slot.edges.get(usize::from(slot.nexts[k])).copied()
    }

    /// What node `from` guarantees about its `k`-th packet of this call.
    #[inline]
    fn props(&self, from: usize, k: usize) -> u32 {
        let slot = &self.slots[from];
        slot.edge_props
            .get(usize::from(slot.nexts[k]))
            .copied()
            .unwrap_or(0)
    }

    /// Send node `from`'s processed vector where its `nexts` say, leaving
    /// the vector empty.
    fn route(&mut self, from: usize, attributed: u64, out: &mut PacketVector<P>) {
        let mut t = SinkTally::default();
        let slot = &self.slots[from];
        let n = slot.pending.len();
        let nexts = &slot.nexts[..n];
        // An OR over all differences rather than an early-exit `all`: no
        // branch per packet, and the compiler turns it into a few SIMD ops.
        let first = nexts.first().copied().unwrap_or(0);
        if nexts.iter().fold(0, |acc, &x| acc | (x ^ first)) == 0 {
            // Home run: the whole vector goes one way, hand it over in O(1).
            match self.target(from, 0) {
                Some(Target::Node(j)) => {
                    let props = self.props(from, 0);
                    self.pass_vector(from, j, props, out)
                }
                Some(Target::Drop) => {
                    t.dropped = n as u64;
                    self.slots[from].pending.clear();
                }
                Some(Target::Tx) => {
                    t.tx = n as u64;
                    let v = &mut self.slots[from].pending;
                    if out.is_empty() {
                        out.swap(v);
                    } else {
                        v.move_into(out);
                        t.tx_full = v.len() as u64;
                        v.clear();
                    }
                }
                None => {
                    t.bad_next = n as u64;
                    self.slots[from].pending.clear();
                }
            }
        } else {
            // Scattering may run successors whose vectors fill up, which
            // needs `&mut self`: take the vector out meanwhile (nothing
            // delivers into `from` while it runs: the graph is acyclic).
            let mut v = mem::replace(&mut self.slots[from].pending, PacketVector::placeholder());
            for (k, pkt) in v.drain().enumerate() {
                match self.target(from, k) {
                    Some(Target::Node(j)) => {
                        let props = self.props(from, k);
                        self.deliver_one(j, pkt, props, out)
                    }
                    Some(Target::Drop) => t.dropped += 1,
                    Some(Target::Tx) => {
                        t.tx += 1;
                        if out.push(pkt).is_err() {
                            t.tx_full += 1;
                        }
                    }
                    None => t.bad_next += 1,
                }
            }
            self.slots[from].pending = v;
        }
        self.account_sinks(from, attributed, &t);
    }

    /// Move node `from`'s whole vector to its successor `j` (`j > from`),
    /// running `j` first if its pending packets and these together would
    /// not fit. `props` holds for every packet moved.
    fn pass_vector(&mut self, from: usize, j: usize, props: u32, out: &mut PacketVector<P>) {
        debug_assert!(from < j, "edges point forward in topological order");
        if self.slots[j].pending.room() < self.slots[from].pending.len() {
            self.run(j, out);
        }
        self.mark_pending(j);
        let (lo, hi) = self.slots.split_at_mut(j);
        let (src, dst) = (&mut lo[from], &mut hi[0]);
        if dst.pending.is_empty() {
            dst.pending_props = props;
            dst.pending.swap(&mut src.pending);
        } else {
            dst.pending_props &= props;
            src.pending.move_into(&mut dst.pending);
        }
    }

    fn account_sinks(&mut self, from: usize, attributed: u64, t: &SinkTally) {
        let drop_ctr = self.slots.len();
        let tx_ctr = drop_ctr + 1;
        debug_assert!(
            attributed <= t.dropped,
            "node {:?} counted {attributed} drops but sent {} packets to \"drop\"",
            self.slots[from].node.name(),
            t.dropped
        );
        let to_drop = t.dropped + t.bad_next;
        if to_drop != 0 {
            let new_call = mem::replace(&mut self.sink_round[0], self.round) != self.round;
            self.counters.record(drop_ctr, new_call, to_drop, 0, false);
            // Keep in == out + drops exact even if a node forgets ctx.drop.
            if t.dropped > attributed {
                self.counters
                    .add_drops(drop_ctr, UNATTRIBUTED, t.dropped - attributed);
            }
            if t.bad_next != 0 {
                self.counters.add_drops(drop_ctr, BAD_NEXT, t.bad_next);
            }
        }
        if t.tx != 0 {
            let new_call = mem::replace(&mut self.sink_round[1], self.round) != self.round;
            self.counters.record(tx_ctr, new_call, t.tx, 0, false);
            if t.tx_full != 0 {
                self.counters.add_drops(tx_ctr, 0, t.tx_full);
            }
        }
    }

    /// Move a whole vector from outside the graph (the rx input) to node
    /// `j`, running `j` first if its pending packets and `v` together would
    /// not fit. `props` holds for every packet of `v`.
    fn deliver_vector(
        &mut self,
        j: usize,
        v: &mut PacketVector<P>,
        props: u32,
        out: &mut PacketVector<P>,
    ) {
        if self.slots[j].pending.room() < v.len() {
            self.run(j, out);
        }
        self.mark_pending(j);
        let slot = &mut self.slots[j];
        if slot.pending.is_empty() {
            slot.pending_props = props;
            slot.pending.swap(v);
        } else {
            slot.pending_props &= props;
            v.move_into(&mut slot.pending);
        }
    }

    fn deliver_one(&mut self, j: usize, pkt: P, props: u32, out: &mut PacketVector<P>) {
        if self.slots[j].pending.is_full() {
            self.run(j, out);
        }
        self.mark_pending(j);
        let slot = &mut self.slots[j];
        if slot.pending.is_empty() {
            slot.pending_props = props;
        } else {
            slot.pending_props &= props;
        }
        let pushed = slot.pending.push(pkt);
        debug_assert!(pushed.is_ok(), "a just-flushed vector has room");
    }
}

/// Reverse DFS post-order; reports the first cycle found by name.
fn topo_order(succ: &[Vec<usize>], names: &[&'static str]) -> Result<Vec<usize>, BuildError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    struct Dfs<'a> {
        succ: &'a [Vec<usize>],
        names: &'a [&'static str],
        mark: Vec<Mark>,
        path: Vec<usize>,
        post: Vec<usize>,
    }
    impl Dfs<'_> {
        fn visit(&mut self, u: usize) -> Result<(), BuildError> {
            self.mark[u] = Mark::OnPath;
            self.path.push(u);
            for &v in &self.succ[u] {
                match self.mark[v] {
                    Mark::New => self.visit(v)?,
                    Mark::OnPath => {
                        let at = self.path.iter().rposition(|&x| x == v).unwrap_or(0);
                        let mut cycle: Vec<_> =
                            self.path[at..].iter().map(|&x| self.names[x]).collect();
                        cycle.push(self.names[v]);
                        return Err(BuildError::Cycle(cycle));
                    }
                    Mark::Done => {}
                }
            }
            self.path.pop();
            self.mark[u] = Mark::Done;
            self.post.push(u);
            Ok(())
        }
    }
    let mut dfs = Dfs {
        succ,
        names,
        mark: vec![Mark::New; succ.len()],
        path: Vec::new(),
        post: Vec::with_capacity(succ.len()),
    };
    for u in 0..succ.len() {
        if dfs.mark[u] == Mark::New {
            dfs.visit(u)?;
        }
    }
    dfs.post.reverse();
    Ok(dfs.post)
}
