//! A fixed-capacity array of packets that rx fills in place and tx drains from the front.

use std::ptr;

use dpdk_sys as sys;

use super::mbuf::Mbuf;

/// Up to `N` owned packets, stored as the `rte_mbuf *` array the burst calls take, so rx and
/// tx need no copying. The first `len` slots are owned packets; the rest are garbage.
pub struct Burst<const N: usize> {
    ptrs: [*mut sys::rte_mbuf; N],
    len: usize,
}

// SAFETY: the burst owns its packets exclusively, as Mbuf does, so it may move between threads.
unsafe impl<const N: usize> Send for Burst<N> {}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Burst<N> {
    pub const fn new() -> Self {
        Burst {
            ptrs: [ptr::null_mut(); N],
            len: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == N
    }

    #[inline]
    pub const fn capacity(&self) -> usize {
        N
    }

    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over a non-null rte_mbuf pointer, and the first
        // `len` slots hold owned, non-null packets.
        unsafe { std::slice::from_raw_parts(self.ptrs.as_ptr() as *const Mbuf, self.len) }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice; &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptrs.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Adds a packet at the end; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw().as_ptr();
        self.len += 1;
        Ok(())
    }

    /// Takes the last packet out.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` held an owned non-null packet, now no longer counted as ours.
        Some(unsafe { Mbuf::from_raw(ptr::NonNull::new_unchecked(self.ptrs[self.len])) })
    }

    /// Moves every packet out, in order, leaving the burst empty.
    #[inline]
    pub fn drain_to(&mut self, mut f: impl FnMut(Mbuf)) {
        // Emptied first: should `f` panic, the rest leak rather than being freed twice.
        let n = std::mem::take(&mut self.len);
        for &p in &self.ptrs[..n] {
            // SAFETY: slots below the old `len` hold owned non-null packets, each taken once.
            f(unsafe { Mbuf::from_raw(ptr::NonNull::new_unchecked(p)) });
        }
    }

    /// Frees every packet, in one bulk call.
    #[inline]
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: the first `len` pointers are owned packets, freed exactly once here.
            unsafe { sys::rte_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// The free tail of the array, for rx to fill.
    #[inline]
    pub(crate) fn spare_ptr(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        // SAFETY: len <= N, so the pointer stays within (or one past) the array.
        (
            unsafe { self.ptrs.as_mut_ptr().add(self.len) },
            N - self.len,
        )
    }

    /// Records that rx wrote `n` packets into the spare tail.
    #[inline]
    pub(crate) fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= N);
        self.len += n;
    }

    #[inline]
    pub(crate) fn raw_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        self.ptrs.as_mut_ptr()
    }

    /// Forgets the first `n` packets (the NIC took them) and moves the rest to the front.
    #[inline]
    pub(crate) fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        if n > 0 && rest > 0 {
            self.ptrs.copy_within(n..self.len, 0);
        }
        self.len = rest;
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}
