//! Fixed-capacity packet vector, the unit of work passed between nodes.

use core::mem::MaybeUninit;

/// Maximum packets per vector (and per node call).
pub const VECTOR_SIZE: usize = 256;

/// Up to [`VECTOR_SIZE`] packets in arrival order.
///
/// The backing storage is allocated once at construction and never grown:
/// `push` refuses a packet rather than reallocate, so the dispatch loop is
/// allocation-free. Dropping or clearing the vector drops its packets.
#[derive(Debug)]
pub struct PacketVector<P> {
    pkts: Vec<P>,
}

impl<P> Default for PacketVector<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P> PacketVector<P> {
    pub fn new() -> Self {
        Self {
            pkts: Vec::with_capacity(VECTOR_SIZE),
        }
    }

    /// An unallocated stand-in held by a node's slot while its real vector
    /// is out being processed. Only the engine uses it, and only for slots
    /// that nothing can push into meanwhile (the graph is acyclic).
    pub(super) fn placeholder() -> Self {
        Self { pkts: Vec::new() }
    }

    /// Append a packet, handing it back if the vector is full.
    #[inline]
    pub fn push(&mut self, p: P) -> Result<(), P> {
        if self.pkts.len() >= VECTOR_SIZE {
            return Err(p);
        }
        self.pkts.push(p);
        Ok(())
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.pkts.len() >= VECTOR_SIZE
    }

    /// Free slots left.
    #[inline]
    pub fn room(&self) -> usize {
        VECTOR_SIZE.saturating_sub(self.pkts.len())
    }

    pub fn as_slice(&self) -> &[P] {
        &self.pkts
    }

    pub fn as_mut_slice(&mut self) -> &mut [P] {
        &mut self.pkts
    }

    pub fn iter(&self) -> core::slice::Iter<'_, P> {
        self.pkts.iter()
    }

    /// Remove all packets in order, keeping the storage.
    pub fn drain(&mut self) -> std::vec::Drain<'_, P> {
        self.pkts.drain(..)
    }

    /// Move as many packets as fit into `dst`, oldest first; returns how
    /// many moved. Leftovers stay here in order.
    pub fn move_into(&mut self, dst: &mut PacketVector<P>) -> usize {
        let n = self.len().min(dst.room());
        dst.pkts.extend(self.pkts.drain(..n));
        n
    }

    /// The free slots, for a producer that writes packets in bulk (an rx
    /// burst straight into the vector). Mark what it wrote with
    /// [`Self::commit`].
    #[inline]
    pub fn spare_mut(&mut self) -> &mut [MaybeUninit<P>] {
        let room = self.room();
        let spare = self.pkts.spare_capacity_mut();
        let room = room.min(spare.len());
        &mut spare[..room]
    }

    /// Takes the first `n` slots of [`Self::spare_mut`] as packets.
    ///
    /// # Safety
    /// Those `n` slots must hold initialised packets that nothing else owns.
    #[inline]
    pub unsafe fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.room());
        // SAFETY: the caller initialised the n slots after len, which are
        // within the capacity because spare_mut never offers more.
        unsafe { self.pkts.set_len(self.pkts.len() + n) };
    }

    /// Removes the first `n` packets without dropping them and moves the
    /// rest to the front: for a consumer that took them over in bulk (a tx
    /// burst reading the vector in place).
    ///
    /// # Safety
    /// Ownership of the first `n` packets must already have passed
    /// elsewhere, so that not dropping them here neither leaks nor frees
    /// anything twice.
    #[inline]
    pub unsafe fn forget_front(&mut self, n: usize) {
        let len = self.pkts.len();
        let n = n.min(len);
        let ptr = self.pkts.as_mut_ptr();
        // SAFETY: set_len(0) first, so a panic cannot drop anything twice;
        // the copy moves the len - n live packets (bitwise, as a Vec move
        // does) within the allocation; the first n are given up as the
        // caller guarantees.
        unsafe {
            self.pkts.set_len(0);
            core::ptr::copy(ptr.add(n), ptr, len - n);
            self.pkts.set_len(len - n);
        }
    }

    /// Drop every packet (their `Drop` frees the underlying buffers).
    pub fn clear(&mut self) {
        self.pkts.clear();
    }

    /// Exchange contents with `other` in O(1): the whole-vector hand-off.
    #[inline]
    pub fn swap(&mut self, other: &mut PacketVector<P>) {
        core::mem::swap(&mut self.pkts, &mut other.pkts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_until_full_then_refuse() {
        let mut v = PacketVector::new();
        for i in 0..VECTOR_SIZE {
            assert!(v.push(i).is_ok());
        }
        assert!(v.is_full());
        assert_eq!(v.push(999), Err(999));
        assert_eq!(v.len(), VECTOR_SIZE);
        assert_eq!(v.pkts.capacity(), VECTOR_SIZE, "never grown");
    }

    #[test]
    fn move_into_respects_room_and_order() {
        let mut a = PacketVector::new();
        let mut b = PacketVector::new();
        for i in 0..10 {
            a.push(i).unwrap();
        }
        for i in 0..VECTOR_SIZE - 4 {
            b.push(1000 + i).unwrap();
        }
        assert_eq!(a.move_into(&mut b), 4);
        assert_eq!(a.as_slice(), &[4, 5, 6, 7, 8, 9]);
        assert_eq!(&b.as_slice()[VECTOR_SIZE - 4..], &[0, 1, 2, 3]);
        assert_eq!(a.drain().collect::<Vec<_>>(), vec![4, 5, 6, 7, 8, 9]);
        assert!(a.is_empty());
    }

    #[test]
    fn bulk_fill_and_forget_front() {
        use std::rc::Rc;
        let token = Rc::new(());
        let mut v = PacketVector::new();
        v.push(Rc::clone(&token)).unwrap();
        let spare = v.spare_mut();
        assert_eq!(spare.len(), VECTOR_SIZE - 1);
        for slot in &mut spare[..3] {
            slot.write(Rc::clone(&token));
        }
        // SAFETY: three slots were just written.
        unsafe { v.commit(3) };
        assert_eq!(v.len(), 4);
        assert_eq!(Rc::strong_count(&token), 5);
        // Hand the first two over, as a tx burst would.
        let taken: Vec<_> = v.as_slice()[..2]
            .iter()
            // SAFETY: the copies are the owners from now on; forget_front
            // below stops the vector from dropping them too.
            .map(|p| unsafe { core::ptr::read(p) })
            .collect();
        // SAFETY: ownership of the first two moved into `taken`.
        unsafe { v.forget_front(2) };
        assert_eq!(v.len(), 2);
        assert_eq!(Rc::strong_count(&token), 5, "nothing dropped or duplicated");
        drop(taken);
        v.clear();
        assert_eq!(Rc::strong_count(&token), 1);
        assert_eq!(v.spare_mut().len(), VECTOR_SIZE);
    }

    #[test]
    fn swap_is_whole_vector_exchange() {
        let mut a = PacketVector::new();
        let mut b = PacketVector::new();
        a.push(1u8).unwrap();
        a.push(2).unwrap();
        a.swap(&mut b);
        assert!(a.is_empty());
        assert_eq!(b.as_slice(), &[1, 2]);
        assert_eq!(a.pkts.capacity(), VECTOR_SIZE);
        b.as_mut_slice()[0] = 7;
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![7, 2]);
        b.clear();
        assert!(b.is_empty());
    }
}
