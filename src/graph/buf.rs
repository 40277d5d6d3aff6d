//! The packet abstraction the graph is generic over.

/// What the NIC said of one checksum of a received packet (DPDK's rx offload flags), for a
/// port whose checksum policy is `offload`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxVerdict {
    /// Not checked, or checked without a verdict on the bytes (DPDK's UNKNOWN and NONE):
    /// software decides.
    #[default]
    Unknown,
    Good,
    Bad,
}

/// What a node needs from a packet buffer. Single-segment buffers only.
pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    fn len(&self) -> usize {
        self.data().len()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Remove `n` bytes from the end; false (and unchanged) if n > len.
    fn trim(&mut self, n: usize) -> bool;
    /// The packet's egress: an index into its worker's list of ports. A worker that polls
    /// several ports (the server's joined topology) sets it to the rx port before the graph
    /// runs, so in-place replies leave where their request came in, and `rpc-relay` changes it
    /// when it forwards elsewhere. Single-port workers never read it; buffers only used there
    /// may keep these defaults.
    #[inline]
    fn port(&self) -> u16 {
        0
    }
    #[inline]
    fn set_port(&mut self, _port: u16) {}
    /// The NIC's verdict on the IPv4 header checksum. Read only on `offload` ports.
    #[inline]
    fn rx_ip_checksum(&self) -> RxVerdict {
        RxVerdict::Unknown
    }
    /// The NIC's verdict on the L4 (UDP) checksum. Read only on `offload` ports.
    #[inline]
    fn rx_l4_checksum(&self) -> RxVerdict {
        RxVerdict::Unknown
    }
}

/// Heap-backed packet for tests, golden files and offline benches.
///
/// Capacity is fixed at construction to mimic an mbuf's data room, so code
/// that would overflow a real buffer fails here too instead of silently
/// growing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    bytes: Vec<u8>,
    cap: usize,
    /// The NIC verdicts (IPv4 header, L4) a test hands the graph, as an mbuf's flags would.
    rx_checksums: (RxVerdict, RxVerdict),
    /// [`PacketBuf::port`].
    port: u16,
}

impl VecBuf {
    /// Default data room of a DPDK mbuf (RTE_MBUF_DEFAULT_DATAROOM).
    pub const DEFAULT_CAPACITY: usize = 2048;

    pub fn with_capacity(cap: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(cap),
            cap,
            rx_checksums: (RxVerdict::Unknown, RxVerdict::Unknown),
            port: 0,
        }
    }

    /// A buffer holding `data`, with [`Self::DEFAULT_CAPACITY`] or
    /// `data.len()`, whichever is larger.
    pub fn from_slice(data: &[u8]) -> Self {
        let mut b = Self::with_capacity(data.len().max(Self::DEFAULT_CAPACITY));
        b.bytes.extend_from_slice(data);
        b
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Sets what [`PacketBuf::rx_ip_checksum`] and [`PacketBuf::rx_l4_checksum`] return.
    pub fn set_rx_checksums(&mut self, ip: RxVerdict, l4: RxVerdict) {
        self.rx_checksums = (ip, l4);
    }

    /// Append bytes at the tail; false (and unchanged) if they do not fit.
    pub fn append(&mut self, data: &[u8]) -> bool {
        if data.len() > self.cap - self.bytes.len() {
            return false;
        }
        self.bytes.extend_from_slice(data);
        true
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.bytes
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn trim(&mut self, n: usize) -> bool {
        match self.bytes.len().checked_sub(n) {
            Some(keep) => {
                self.bytes.truncate(keep);
                true
            }
            None => false,
        }
    }

    fn rx_ip_checksum(&self) -> RxVerdict {
        self.rx_checksums.0
    }

    fn rx_l4_checksum(&self) -> RxVerdict {
        self.rx_checksums.1
    }

    fn port(&self) -> u16 {
        self.port
    }

    fn set_port(&mut self, port: u16) {
        self.port = port;
    }
}

/// Hint the CPU to pull the packet's first cache line into L1, typically a
/// few packets ahead of the one being parsed.
#[inline(always)]
pub fn prefetch<P: PacketBuf>(p: &P) {
    crate::os::cpu::prefetch(p.data());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vecbuf_trim_and_capacity() {
        let mut b = VecBuf::with_capacity(4);
        assert!(b.append(&[1, 2, 3]));
        assert!(!b.append(&[4, 5]), "exceeds fixed capacity");
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(!b.trim(4));
        assert_eq!(b.len(), 3);
        assert!(b.trim(2));
        assert_eq!(b.data(), &[1]);
        b.data_mut()[0] = 9;
        assert_eq!(b.data(), &[9]);
        assert!(b.trim(1));
        assert!(b.is_empty());
        prefetch(&b); // empty buffer must still be safe to prefetch
        assert_eq!(VecBuf::from_slice(&[7; 3]).capacity(), 2048);
    }
}
