//! An owned packet buffer.

use std::ptr::NonNull;

use dpdk_sys as sys;

/// A PMD's rx verdict on one checksum (DPDK's two-bit field per layer in `ol_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxCksum {
    /// No information.
    Unknown,
    Bad,
    Good,
    /// The checksum in the packet is not correct but the data's integrity was verified
    /// (e.g. a virtio peer that left it to an offload).
    None,
}

impl RxCksum {
    #[inline(always)]
    fn from_flags(ol_flags: u64, mask: u32, bad: u32, good: u32) -> RxCksum {
        let f = ol_flags & u64::from(mask);
        if f == 0 {
            RxCksum::Unknown
        } else if f == u64::from(mask) {
            RxCksum::None
        } else if f == u64::from(good) {
            RxCksum::Good
        } else {
            debug_assert_eq!(f, u64::from(bad));
            RxCksum::Bad
        }
    }
}

/// One single-segment packet, owned: it returns to its pool when dropped.
///
/// `repr(transparent)` over a non-null pointer, so a slice of `Mbuf` has the layout of the
/// `rte_mbuf *` arrays that rx/tx burst take.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<sys::rte_mbuf>,
}

// SAFETY: an mbuf is owned by exactly one Mbuf; moving that ownership to another thread is how
// DPDK pipelines work. It is not Sync: &Mbuf gives read access only, but nothing needs sharing.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must point to a valid, single-segment mbuf that nothing else owns or frees.
    #[inline]
    pub unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Self {
        Mbuf { raw }
    }

    #[inline]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.raw.as_ptr()
    }

    #[inline]
    fn hdr(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for the lifetime of self.
        unsafe { self.raw.as_ref() }
    }

    /// Bytes of packet data in this (single) segment.
    #[inline]
    pub fn len(&self) -> usize {
        self.hdr().data_len as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        let h = self.hdr();
        // rte_pktmbuf_mtod is a macro: buf_addr + data_off.
        // SAFETY: data_off is within the buffer by DPDK's invariants.
        unsafe { (h.buf_addr as *mut u8).add(h.data_off as usize) }
    }

    /// Starts loading the first `lines` cache lines of the packet data. A peer that wrote
    /// the packet from another core (a zero-copy memif peer writes straight into our buffer)
    /// leaves each line in its cache: touched in order, they would arrive one miss after
    /// another; prefetched together, the misses overlap.
    #[inline]
    #[cfg(target_arch = "x86_64")]
    pub fn prefetch_data(&self, lines: usize) {
        let p = self.data_ptr();
        for i in 0..lines.min(self.len().div_ceil(64)) {
            // SAFETY: the address is inside this mbuf's data (i * 64 < len); a prefetch only
            // hints the cache and cannot fault.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.add(i * 64) as *const i8
                )
            };
        }
    }

    /// Elsewhere the loads go in order.
    #[inline]
    #[cfg(not(target_arch = "x86_64"))]
    pub fn prefetch_data(&self, _lines: usize) {}

    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: [data_ptr, data_ptr + data_len) is initialised packet memory we own.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.len()) }
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), self.len()) }
    }

    /// Extends the packet by `n` bytes at the end and returns them, or None without room.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: the mbuf is valid and owned; a null return means no room and changes nothing.
        let p = unsafe { sys::rte_pktmbuf_append(self.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: DPDK returned a pointer to `n` bytes inside this mbuf's buffer.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }

    /// The mbuf's port field. PMDs set it to the rx port (not all of them: net_ring leaves
    /// what the sender had), so the server's joined worker writes it itself and uses it as the
    /// packet's egress.
    #[inline]
    pub fn port(&self) -> u16 {
        self.hdr().port
    }

    #[inline]
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: we own a valid mbuf and hold &mut self; port is plain data.
        unsafe { self.raw.as_mut() }.port = port;
    }

    /// Removes `n` bytes from the end; false (and unchanged) when the packet is shorter.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: the mbuf is valid and owned; DPDK refuses (returns -1) if n > data_len.
        unsafe { sys::rte_pktmbuf_trim(self.as_ptr(), n16) == 0 }
    }

    /// Sets the packet to exactly `bytes`, for building frames; false if they do not fit.
    pub fn set_data(&mut self, bytes: &[u8]) -> bool {
        let cur = self.len();
        if !self.trim(cur) {
            return false;
        }
        match self.append(bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    /// The PMD's verdict on the IPv4 header checksum (`RTE_MBUF_F_RX_IP_CKSUM_*`); only
    /// meaningful on a port with rx IPv4 checksum offload enabled.
    #[inline]
    pub fn rx_ip_cksum(&self) -> RxCksum {
        RxCksum::from_flags(
            self.hdr().ol_flags,
            sys::RTE_MBUF_F_RX_IP_CKSUM_MASK,
            sys::RTE_MBUF_F_RX_IP_CKSUM_BAD,
            sys::RTE_MBUF_F_RX_IP_CKSUM_GOOD,
        )
    }

    /// The PMD's verdict on the L4 checksum (`RTE_MBUF_F_RX_L4_CKSUM_*`); only meaningful on
    /// a port with rx UDP checksum offload enabled.
    #[inline]
    pub fn rx_l4_cksum(&self) -> RxCksum {
        RxCksum::from_flags(
            self.hdr().ol_flags,
            sys::RTE_MBUF_F_RX_L4_CKSUM_MASK,
            sys::RTE_MBUF_F_RX_L4_CKSUM_BAD,
            sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD,
        )
    }

    /// Sets the rx checksum flags, as a PMD with rx offload would (tests of what reads them).
    pub fn set_rx_cksum(&mut self, ip: RxCksum, l4: RxCksum) {
        use sys::{
            RTE_MBUF_F_RX_IP_CKSUM_BAD as IP_BAD, RTE_MBUF_F_RX_IP_CKSUM_GOOD as IP_GOOD,
            RTE_MBUF_F_RX_IP_CKSUM_MASK as IP_MASK, RTE_MBUF_F_RX_IP_CKSUM_NONE as IP_NONE,
            RTE_MBUF_F_RX_L4_CKSUM_BAD as L4_BAD, RTE_MBUF_F_RX_L4_CKSUM_GOOD as L4_GOOD,
            RTE_MBUF_F_RX_L4_CKSUM_MASK as L4_MASK, RTE_MBUF_F_RX_L4_CKSUM_NONE as L4_NONE,
        };
        let bits = |c, bad, good, none| match c {
            RxCksum::Unknown => 0,
            RxCksum::Bad => bad,
            RxCksum::Good => good,
            RxCksum::None => none,
        };
        let set = bits(ip, IP_BAD, IP_GOOD, IP_NONE) | bits(l4, L4_BAD, L4_GOOD, L4_NONE);
        // SAFETY: we own a valid mbuf and hold &mut self; ol_flags is plain data.
        let h = unsafe { self.raw.as_mut() };
        h.ol_flags = (h.ol_flags & !u64::from(IP_MASK | L4_MASK)) | u64::from(set);
    }
}

impl Mbuf {
    /// Frees every packet of `pkts` in one bulk call (cheaper than dropping them one by one)
    /// and leaves it empty, its capacity kept.
    #[inline]
    pub fn free_all(pkts: &mut Vec<Mbuf>) {
        let n = pkts.len();
        let Ok(n32) = u32::try_from(n) else {
            pkts.clear();
            return;
        };
        if n == 0 {
            return;
        }
        // SAFETY: set_len(0) first, so the Vec no longer owns the packets; Mbuf is
        // repr(transparent) over the pointer, so the buffer is the `rte_mbuf *` array
        // free_bulk takes, and each of the `n` packets is freed exactly once, here.
        unsafe {
            pkts.set_len(0);
            sys::rte_pktmbuf_free_bulk(pkts.as_mut_ptr().cast(), n32);
        }
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and it is not used after this.
        unsafe { sys::rte_pktmbuf_free(self.raw.as_ptr()) };
    }
}
