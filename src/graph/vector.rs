//! Fixed-capacity packet vector, the unit of work passed between nodes.

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

    /// The packets as the fixed-capacity `Vec` they live in, for bulk I/O that appends into
    /// its spare capacity and takes from its front (the dpdk rx/tx calls). Its capacity is
    /// [`VECTOR_SIZE`]: a caller that pushes past it makes the vector allocate, so push
    /// through [`Self::push`] instead.
    #[inline]
    pub fn as_mut_vec(&mut self) -> &mut Vec<P> {
        &mut self.pkts
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
    fn the_inner_vec_has_the_vector_capacity() {
        let mut v = PacketVector::new();
        v.push(1u8).unwrap();
        let inner = v.as_mut_vec();
        assert_eq!((inner.len(), inner.capacity()), (1, VECTOR_SIZE));
        inner.push(2);
        assert_eq!(v.as_slice(), &[1, 2]);
        assert_eq!(v.room(), VECTOR_SIZE - 2);
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
