//! Packet buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;

use dpdk_sys as sys;

use super::error::{DpdkError, Result};
use super::mbuf::Mbuf;

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
///
/// Every `Mbuf` taken from the pool must be dropped before the pool: if any is still out when the
/// pool drops, the pool is deliberately leaked rather than freed under a live packet.
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
    capacity: u32,
}

// SAFETY: a DPDK mempool is designed for concurrent use from every lcore.
unsafe impl Send for Mempool {}
// SAFETY: as above; all operations through &Mempool are thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `capacity` buffers with `data_room` bytes of packet room each (plus
    /// DPDK's headroom) and a per-lcore cache of `cache` buffers, on `socket` (-1: any).
    pub fn new(name: &str, capacity: u32, cache: u32, data_room: u16, socket: i32) -> Result<Self> {
        if name.len() >= sys::RTE_MEMPOOL_NAMESIZE as usize {
            return Err(DpdkError::Invalid(format!(
                "mempool name {name:?} is longer than {} bytes",
                sys::RTE_MEMPOOL_NAMESIZE - 1
            )));
        }
        if cache > sys::RTE_MEMPOOL_CACHE_MAX_SIZE {
            return Err(DpdkError::Invalid(format!(
                "mempool cache {cache} is above DPDK's maximum {}",
                sys::RTE_MEMPOOL_CACHE_MAX_SIZE
            )));
        }
        let cname = CString::new(name)
            .map_err(|_| DpdkError::Invalid("mempool name contains a NUL byte".into()))?;
        let room = data_room as u32 + sys::RTE_PKTMBUF_HEADROOM;
        if room > u16::MAX as u32 {
            return Err(DpdkError::Invalid(format!(
                "mbuf data room {data_room} plus headroom does not fit in 16 bits"
            )));
        }
        // SAFETY: the name is a valid C string; the numeric arguments were range-checked.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(cname.as_ptr(), capacity, cache, 0, room as u16, socket)
        };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::last("rte_pktmbuf_pool_create"))?;
        Ok(Mempool { raw, capacity })
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Buffers in the pool, including those parked in per-lcore caches.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for the lifetime of self.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Buffers taken out and not yet returned (held by the program, a NIC ring or a PMD).
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid for the lifetime of self.
        unsafe { sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// Takes one empty buffer, or None when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a non-null result is a fresh mbuf we now own.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        NonNull::new(m).map(|m| unsafe {
            // SAFETY: `m` was just allocated and is owned by nobody else.
            Mbuf::from_raw(m)
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        if self.in_use() > 0 {
            // Freeing the pool now would leave live packets pointing into freed memory.
            eprintln!(
                "bypass: mempool dropped with {} buffers still in use; leaving it allocated",
                self.in_use()
            );
            return;
        }
        // SAFETY: no buffer of this pool is alive, and the pool is not used after this.
        unsafe { sys::rte_mempool_free(self.raw.as_ptr()) };
    }
}
