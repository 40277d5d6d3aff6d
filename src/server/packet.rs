//! Where graph and dpdk meet: the graph's packet-buffer trait for DPDK's `Mbuf`, so the
//! server's graph runs on mbufs while `graph` never names a DPDK type and `dpdk` never
//! imports the graph.

use crate::dpdk::Mbuf;
use crate::graph::PacketBuf;

impl PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }

    #[inline]
    fn len(&self) -> usize {
        Mbuf::len(self)
    }

    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
}
