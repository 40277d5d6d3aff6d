//! The node trait and the per-call context handed to it.

use super::buf::PacketBuf;

/// One processing stage. Nodes are run on whole vectors so that the fixed
/// per-call costs (virtual call, counter updates, cycle reads) are
/// amortised over up to [`VECTOR_SIZE`](super::VECTOR_SIZE) packets.
pub trait Node<P: PacketBuf> {
    /// Unique name within the graph; `"drop"` and `"tx"` are reserved.
    fn name(&self) -> &'static str;

    /// Outgoing edges by node name. The `u16` a node writes into `nexts`
    /// indexes this list. Use [`DROP`](super::DROP) / [`TX`](super::TX) for
    /// the built-in sinks.
    fn next_nodes(&self) -> &'static [&'static str];

    /// Reasons this node may drop a packet for; `ctx.drop(i)` indexes it.
    fn drop_reasons(&self) -> &'static [&'static str] {
        &[]
    }

    /// Per next edge (indexed like [`Self::next_nodes`]), a bit set of
    /// properties this node guarantees for every packet it sends there,
    /// e.g. "headers validated, layout fixed". The bits mean what the nodes
    /// of a graph agree on; the engine only ANDs them over the packets of a
    /// vector and hands the result to the receiving node as
    /// [`NodeCtx::guaranteed`], so that node can skip re-checking what the
    /// node before it verified. Packets queued from outside the graph
    /// carry no properties. Missing entries mean none.
    fn edge_props(&self) -> &'static [u32] {
        &[]
    }

    /// Handle `pkts` (in place) and write one next-edge index per packet
    /// into `nexts` (same length as `pkts`). A dropped packet must be
    /// counted with `ctx.drop*` and sent to the `"drop"` edge.
    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]);
}

/// Per-call context: drop counters of the node being run plus the burst
/// timing every protocol node needs for timeouts and latency stamps.
pub struct NodeCtx<'a> {
    drops: &'a mut [u64],
    /// Sum of `drops` added in this call, so the engine can skip reading
    /// (and re-zeroing) every reason's slot after the common drop-free call.
    dropped: u64,
    rx_tsc: u64,
    tsc_hz: u64,
    /// TSC when this call started, if the caller read it anyway.
    start_tsc: Option<u64>,
    /// Edge properties common to every packet of this call.
    props: u32,
}

impl<'a> NodeCtx<'a> {
    /// `drops` has one slot per declared drop reason. The engine builds
    /// this; it is public so node authors can unit-test nodes directly.
    pub fn new(drops: &'a mut [u64], rx_tsc: u64, tsc_hz: u64) -> Self {
        Self {
            drops,
            dropped: 0,
            rx_tsc,
            tsc_hz,
            start_tsc: None,
            props: 0,
        }
    }

    /// [`Self::new`] for a call whose start the engine has just read off
    /// the TSC, so the node need not read it again, and whose packets all
    /// carry the edge properties `props` (see [`Node::edge_props`]).
    pub(super) fn with_start(
        drops: &'a mut [u64],
        rx_tsc: u64,
        tsc_hz: u64,
        start: u64,
        props: u32,
    ) -> Self {
        Self {
            start_tsc: Some(start),
            props,
            ..Self::new(drops, rx_tsc, tsc_hz)
        }
    }

    /// [`Self::with_start`] for a call the engine does not time: the node
    /// reads the clock itself if it needs the start.
    pub(super) fn with_props(drops: &'a mut [u64], rx_tsc: u64, tsc_hz: u64, props: u32) -> Self {
        Self {
            props,
            ..Self::new(drops, rx_tsc, tsc_hz)
        }
    }

    /// True if every packet of this call carries all the edge properties
    /// in `mask` (see [`Node::edge_props`]); always false for a context
    /// made with [`Self::new`].
    #[inline]
    pub fn guaranteed(&self, mask: u32) -> bool {
        mask != 0 && self.props & mask == mask
    }

    /// Count one dropped packet under the node-local `reason` index.
    #[inline]
    pub fn drop(&mut self, reason: usize) {
        self.drop_n(reason, 1);
    }

    /// Count `n` drops at once, for nodes that classify a whole vector.
    /// An undeclared reason is not counted here; the engine then reports
    /// the packets as "unattributed" drops instead of losing track of them.
    #[inline]
    pub fn drop_n(&mut self, reason: usize, n: u64) {
        debug_assert!(reason < self.drops.len(), "undeclared drop reason {reason}");
        if let Some(c) = self.drops.get_mut(reason) {
            *c += n;
            self.dropped += n;
        }
    }

    /// Drops counted in this call over all reasons.
    #[inline]
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Drops counted so far in this call, per reason.
    pub fn drops(&self) -> &[u64] {
        self.drops
    }

    /// TSC when the current burst was received.
    #[inline]
    pub fn rx_tsc(&self) -> u64 {
        self.rx_tsc
    }

    /// TSC ticks per second.
    #[inline]
    pub fn tsc_hz(&self) -> u64 {
        self.tsc_hz
    }

    #[inline]
    pub fn now_tsc(&self) -> u64 {
        now_tsc()
    }

    /// TSC when this node call started: the engine's reading if it took
    /// one (it reads the TSC between calls for the cycle counters anyway),
    /// else a fresh one.
    #[inline]
    pub fn start_tsc(&self) -> u64 {
        self.start_tsc.unwrap_or_else(now_tsc)
    }
}

/// Current TSC value ([`crate::os::tsc::read`]). Off x86_64 this is nanoseconds since first
/// use, so callers there should pass `tsc_hz = 1_000_000_000`.
#[inline(always)]
pub fn now_tsc() -> u64 {
    crate::os::tsc::read()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctx_counts_drops() {
        let mut d = [0u64; 2];
        let mut ctx = NodeCtx::new(&mut d, 5, 10);
        ctx.drop(1);
        ctx.drop_n(0, 7);
        ctx.drop(1);
        assert_eq!(ctx.drops(), &[7, 2]);
        assert_eq!(ctx.dropped(), 9);
        assert_eq!((ctx.rx_tsc(), ctx.tsc_hz()), (5, 10));
        let a = ctx.now_tsc();
        assert!(now_tsc() >= a);
    }
}
