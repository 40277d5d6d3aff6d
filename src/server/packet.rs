//! Where graph and dpdk meet: the graph's packet-buffer trait for DPDK's `Mbuf`, so the
//! server's graph runs on mbufs while `graph` never names a DPDK type and `dpdk` never
//! imports the graph.

use crate::dpdk::{Mbuf, RxCksum};
use crate::graph::{PacketBuf, RxVerdict};

/// NONE (the bytes are wrong but the data was checked, e.g. a virtio peer that left the sum
/// to an offload) counts as no verdict: the reply's checksum is updated incrementally from
/// the request's, so a request whose checksum is wrong would leave with a wrong one.
#[inline(always)]
fn verdict(c: RxCksum) -> RxVerdict {
    match c {
        RxCksum::Good => RxVerdict::Good,
        RxCksum::Bad => RxVerdict::Bad,
        RxCksum::Unknown | RxCksum::None => RxVerdict::Unknown,
    }
}

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

    #[inline]
    fn port(&self) -> u16 {
        Mbuf::port(self)
    }

    #[inline]
    fn set_port(&mut self, port: u16) {
        Mbuf::set_port(self, port)
    }

    #[inline]
    fn rx_ip_checksum(&self) -> RxVerdict {
        verdict(self.rx_ip_cksum())
    }

    #[inline]
    fn rx_l4_checksum(&self) -> RxVerdict {
        verdict(self.rx_l4_cksum())
    }
}
