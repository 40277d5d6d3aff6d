//! Lock-free statistics written by one worker and read by the control
//! thread.
//!
//! There is exactly one writer per [`GraphCounters`] (the worker owning the
//! [`Graph`](super::Graph)), so updates are a Relaxed load + store instead
//! of a locked read-modify-write. Readers may see a slightly stale or
//! mutually inconsistent set of values, which is fine for reporting.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const CELLS_PER_LINE: usize = 8;
const CALLS: usize = 0;
const VECTORS: usize = 1;
const PACKETS: usize = 2;
const CYCLES: usize = 3;
const TIMED_PACKETS: usize = 4;
const FIRST_DROP: usize = 5;

/// One cache line of counters, so a worker's counters never share a line
/// with anything else another core writes.
#[repr(align(64))]
struct Line([AtomicU64; CELLS_PER_LINE]);

/// Counters of one graph instance, shared with readers through an `Arc`.
///
/// Each node owns a run of cells starting on a cache line: calls, vectors,
/// packets, cycles, timed packets, then one cell per declared drop reason.
pub struct GraphCounters {
    names: Box<[&'static str]>,
    reasons: Box<[&'static [&'static str]]>,
    base: Box<[usize]>,
    lines: Box<[Line]>,
}

impl GraphCounters {
    /// Lay out counters for `nodes` as (name, drop reasons), in report
    /// order.
    pub(super) fn new(nodes: &[(&'static str, &'static [&'static str])]) -> Self {
        let mut base = Vec::with_capacity(nodes.len());
        let mut cells = 0;
        for (_, reasons) in nodes {
            base.push(cells);
            cells += (FIRST_DROP + reasons.len()).div_ceil(CELLS_PER_LINE) * CELLS_PER_LINE;
        }
        let lines = (0..cells / CELLS_PER_LINE)
            .map(|_| Line(Default::default()))
            .collect();
        Self {
            names: nodes.iter().map(|n| n.0).collect(),
            reasons: nodes.iter().map(|n| n.1).collect(),
            base: base.into(),
            lines,
        }
    }

    #[inline]
    fn cell(&self, node: usize, off: usize) -> &AtomicU64 {
        let i = self.base[node] + off;
        &self.lines[i / CELLS_PER_LINE].0[i % CELLS_PER_LINE]
    }

    /// Single-writer add: no other thread stores to these cells.
    #[inline]
    fn add(&self, node: usize, off: usize, n: u64) {
        let c = self.cell(node, off);
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Account one vector handled by `node`; `new_call` marks the first
    /// vector the node handles in the current dispatch.
    ///
    /// Inlined, on the node's first line only and without branches: the
    /// graph calls this once per node call, so with vectors of one (ping-pong)
    /// an out-of-line call with its index arithmetic per cell cost about as
    /// much as a small node's own work (graph_dispatch example, perf).
    /// `cycles` were spent on the vector if `timed` (else none were
    /// measured, see [`Graph::time_one_in`](super::Graph::time_one_in)).
    #[inline(always)]
    pub(super) fn record(
        &self,
        node: usize,
        new_call: bool,
        packets: u64,
        cycles: u64,
        timed: bool,
    ) {
        let line = &self.lines[self.base[node] / CELLS_PER_LINE].0;
        let bump = |c: &AtomicU64, n: u64| c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
        bump(&line[CALLS], u64::from(new_call));
        bump(&line[VECTORS], 1);
        bump(&line[PACKETS], packets);
        bump(&line[CYCLES], cycles);
        bump(&line[TIMED_PACKETS], if timed { packets } else { 0 });
    }

    #[inline]
    pub(super) fn add_drops(&self, node: usize, reason: usize, n: u64) {
        debug_assert!(reason < self.reasons[node].len());
        self.add(node, FIRST_DROP + reason, n);
    }

    /// Read everything into a plain struct. Allocates; control thread only.
    pub fn snapshot(&self) -> GraphStats {
        let get = |node, off| self.cell(node, off).load(Relaxed);
        let nodes = (0..self.names.len())
            .map(|n| NodeStats {
                name: self.names[n],
                calls: get(n, CALLS),
                vectors: get(n, VECTORS),
                packets: get(n, PACKETS),
                cycles: get(n, CYCLES),
                timed_packets: get(n, TIMED_PACKETS),
                drops: self.reasons[n]
                    .iter()
                    .enumerate()
                    .map(|(r, &name)| (name, get(n, FIRST_DROP + r)))
                    .collect(),
            })
            .collect();
        GraphStats { nodes }
    }
}

/// Point-in-time counters of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub name: &'static str,
    /// Dispatches in which the node ran at least once.
    pub calls: u64,
    /// Vectors handled; exceeds `calls` when a full pending vector forced
    /// an early flush within one dispatch.
    pub vectors: u64,
    pub packets: u64,
    /// TSC cycles spent in `process` in timed calls (zero for the built-in
    /// sinks); all calls unless the graph times one dispatch in N.
    pub cycles: u64,
    /// Packets of the timed calls: what `cycles` was spent on.
    pub timed_packets: u64,
    /// (reason, count) in declaration order.
    pub drops: Vec<(&'static str, u64)>,
}

impl NodeStats {
    /// Average packets per vector; the key health metric of a vector
    /// engine (small vectors mean per-call overhead dominates).
    pub fn avg_vector_size(&self) -> f64 {
        ratio(self.packets, self.vectors)
    }

    /// Over the timed calls, so sampling leaves the figure unbiased.
    pub fn cycles_per_packet(&self) -> f64 {
        ratio(self.cycles, self.timed_packets)
    }

    pub fn drop_count(&self, reason: &str) -> u64 {
        self.drops
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |d| d.1)
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|d| d.1).sum()
    }

    fn combine(&mut self, other: &NodeStats, f: impl Fn(u64, u64) -> u64) {
        self.calls = f(self.calls, other.calls);
        self.vectors = f(self.vectors, other.vectors);
        self.packets = f(self.packets, other.packets);
        self.cycles = f(self.cycles, other.cycles);
        self.timed_packets = f(self.timed_packets, other.timed_packets);
        for &(reason, n) in &other.drops {
            match self.drops.iter_mut().find(|(r, _)| *r == reason) {
                Some(d) => d.1 = f(d.1, n),
                None => self.drops.push((reason, f(0, n))),
            }
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Snapshot of a whole graph (or the sum over several workers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphStats {
    pub nodes: Vec<NodeStats>,
}

impl GraphStats {
    pub fn node(&self, name: &str) -> Option<&NodeStats> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Drops of `node` under `reason`; 0 if either is unknown.
    pub fn drops(&self, node: &str, reason: &str) -> u64 {
        self.node(node).map_or(0, |n| n.drop_count(reason))
    }

    pub fn total_drops(&self) -> u64 {
        self.nodes.iter().map(NodeStats::total_drops).sum()
    }

    /// Add another worker's snapshot, matching nodes and reasons by name
    /// so workers with differing graphs still merge sensibly.
    pub fn merge(&mut self, other: &GraphStats) {
        for o in &other.nodes {
            match self.nodes.iter_mut().find(|n| n.name == o.name) {
                Some(n) => n.combine(o, u64::wrapping_add),
                None => self.nodes.push(o.clone()),
            }
        }
    }

    /// Sum of several workers' snapshots.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a GraphStats>) -> GraphStats {
        let mut total = GraphStats::default();
        for s in all {
            total.merge(s);
        }
        total
    }

    /// `self - earlier`, e.g. counts per second when sampled once a second.
    /// Saturates at zero so a worker restart cannot produce huge rates.
    pub fn delta(&self, earlier: &GraphStats) -> GraphStats {
        let mut d = self.clone();
        for n in &mut d.nodes {
            if let Some(e) = earlier.node(n.name) {
                let mut neg = e.clone();
                neg.drops
                    .retain(|(r, _)| n.drops.iter().any(|(x, _)| x == r));
                n.combine(&neg, u64::saturating_sub);
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(name: &'static str, base: u64, drops: &[(&'static str, u64)]) -> NodeStats {
        NodeStats {
            name,
            calls: base,
            vectors: base * 2,
            packets: base * 20,
            cycles: base * 1000,
            timed_packets: base * 10,
            drops: drops.to_vec(),
        }
    }

    #[test]
    fn layout_starts_each_node_on_a_cache_line() {
        let c = GraphCounters::new(&[("a", &["x"; 5]), ("b", &[]), ("c", &["y"])]);
        assert_eq!(&*c.base, &[0, 16, 24]);
        assert_eq!(c.lines.len(), 4);
        assert_eq!(core::mem::align_of::<Line>(), 64);
        c.record(1, true, 10, 99, true);
        c.record(1, false, 6, 0, false);
        c.record(1, false, 5, 1, true);
        c.add_drops(0, 4, 3);
        c.add_drops(2, 0, 1);
        let s = c.snapshot();
        let b = s.node("b").unwrap();
        assert_eq!((b.calls, b.vectors, b.packets, b.cycles), (1, 3, 21, 100));
        assert_eq!(b.timed_packets, 15);
        assert_eq!(b.avg_vector_size(), 7.0);
        // Per packet over the timed calls only: the untimed one measured nothing.
        assert_eq!(b.cycles_per_packet(), 100.0 / 15.0);
        assert_eq!(s.nodes[0].drops[4], ("x", 3));
        assert_eq!(s.drops("c", "y"), 1);
        assert_eq!(s.total_drops(), 4);
    }

    #[test]
    fn readable_from_another_thread() {
        let c = std::sync::Arc::new(GraphCounters::new(&[("a", &["r"])]));
        c.record(0, true, 5, 0, true);
        let r = std::sync::Arc::clone(&c);
        let s = std::thread::spawn(move || r.snapshot()).join().unwrap();
        assert_eq!(s.nodes[0].packets, 5);
    }

    #[test]
    fn merge_sums_by_name() {
        let w0 = GraphStats {
            nodes: vec![stats("a", 1, &[("r1", 2)]), stats("b", 2, &[])],
        };
        let w1 = GraphStats {
            nodes: vec![stats("b", 3, &[]), stats("a", 4, &[("r1", 5), ("r2", 1)])],
        };
        let w2 = GraphStats {
            nodes: vec![stats("z", 1, &[("q", 9)])],
        };
        let t = GraphStats::sum([&w0, &w1, &w2]);
        assert_eq!(
            t.node("a").unwrap(),
            &stats("a", 5, &[("r1", 7), ("r2", 1)])
        );
        assert_eq!(t.node("b").unwrap(), &stats("b", 5, &[]));
        assert_eq!(t.drops("z", "q"), 9);
        assert_eq!(t.total_drops(), 17);
        assert_eq!(t.node("a").unwrap().avg_vector_size(), 10.0);
        assert_eq!(t.node("a").unwrap().cycles_per_packet(), 100.0);
    }

    #[test]
    fn delta_subtracts_and_saturates() {
        let before = GraphStats {
            nodes: vec![stats("a", 2, &[("r", 3)]), stats("gone", 1, &[])],
        };
        let after = GraphStats {
            nodes: vec![stats("a", 5, &[("r", 10)]), stats("new", 1, &[("n", 4)])],
        };
        let d = after.delta(&before);
        assert_eq!(d.node("a").unwrap(), &stats("a", 3, &[("r", 7)]));
        assert_eq!(d.node("new").unwrap(), &stats("new", 1, &[("n", 4)]));
        assert!(d.node("gone").is_none());
        // Restarted worker: counters went backwards.
        let d = before.delta(&after);
        assert_eq!(d.node("a").unwrap(), &stats("a", 0, &[("r", 0)]));
        assert_eq!(NodeStats::default().avg_vector_size(), 0.0);
    }
}
