//! The ownership bookkeeping of the one packet array: a caller-owned `Vec` whose capacity is
//! fixed when it is made. rx appends into its spare capacity and tx takes from its front;
//! both go through the two functions here, so `set_len` and the moving-down of unsent
//! packets live in one place and are tested on plain values, without EAL.
//!
//! Why a `Vec` rather than a type of our own: the graph's `PacketVector` is already a
//! fixed-capacity `Vec`, `Mbuf` is `repr(transparent)` over the pointer the burst calls take,
//! and `graph` may not name anything in `dpdk`. A shared fixed-capacity type would need
//! `unsafe` outside src/dpdk and src/os, or would have to hand its `Vec` to dpdk anyway.

use std::ptr;

/// Appends `x` if `v` has spare capacity, else gives it back: pushing past the capacity
/// would reallocate, and the packet path never allocates.
#[inline]
pub fn push_within<T>(v: &mut Vec<T>, x: T) -> Result<(), T> {
    if v.len() == v.capacity() {
        return Err(x);
    }
    v.push(x);
    Ok(())
}

/// Lets `fill` write up to `min(max, spare capacity)` values after the last one of `v` and
/// keeps the number it reports (clamped to the room it was given). Never grows `v`.
///
/// # Safety
/// `fill(ptr, room)` must initialise the first `n <= room` slots at `ptr` with values that
/// nothing else owns or drops, and return `n`.
#[inline]
pub(crate) unsafe fn append_raw<T>(
    v: &mut Vec<T>,
    max: usize,
    fill: impl FnOnce(*mut T, usize) -> usize,
) -> usize {
    let len = v.len();
    let room = (v.capacity() - len).min(max);
    if room == 0 {
        return 0;
    }
    // SAFETY: `len <= capacity`, so the pointer stays inside (or one past) the allocation.
    let n = fill(unsafe { v.as_mut_ptr().add(len) }, room).min(room);
    // SAFETY: the caller's contract: `fill` initialised these `n <= room` spare slots.
    unsafe { v.set_len(len + n) };
    n
}

/// Lets `take` take ownership of the first `n` values of `v` (it is shown all of them and
/// reports `n`, clamped to their number), forgets those and moves the rest, in order, to the
/// front. Returns `n`.
///
/// # Safety
/// `take(ptr, len)` must take ownership of exactly the first `n` values at `ptr` (so that
/// forgetting them neither leaks nor frees anything twice), leave the others untouched, and
/// return `n`.
#[inline]
pub(crate) unsafe fn take_front_raw<T>(
    v: &mut Vec<T>,
    take: impl FnOnce(*mut T, usize) -> usize,
) -> usize {
    let len = v.len();
    if len == 0 {
        return 0;
    }
    let p = v.as_mut_ptr();
    let n = take(p, len).min(len);
    if n == 0 {
        return 0;
    }
    // SAFETY: set_len(0) first, so should anything below unwind, nothing is dropped twice;
    // the `len - n` live values move bitwise (as a Vec move does) within the allocation, and
    // the first `n` now belong elsewhere by the caller's contract.
    unsafe {
        v.set_len(0);
        if n < len {
            ptr::copy(p.add(n), p, len - n);
        }
        v.set_len(len - n);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// A stand-in for a PMD's rx: writes `count` clones of `token` (at most `room`).
    fn rx_like(token: &Rc<u32>, count: usize) -> impl FnOnce(*mut Rc<u32>, usize) -> usize + '_ {
        move |dst, room| {
            let n = count.min(room);
            for i in 0..n {
                // SAFETY: `dst` has `room >= n` writable slots.
                unsafe { dst.add(i).write(Rc::clone(token)) };
            }
            n
        }
    }

    #[test]
    fn append_fills_the_spare_capacity_and_never_grows() {
        let token = Rc::new(7);
        let mut v = Vec::with_capacity(8);
        let cap = v.capacity();
        v.push(Rc::clone(&token));
        // SAFETY: rx_like initialises exactly the slots it reports.
        let n = unsafe { append_raw(&mut v, 3, rx_like(&token, 10)) };
        assert_eq!((n, v.len()), (3, 4), "max bounds what is offered");
        // SAFETY: as above.
        let n = unsafe { append_raw(&mut v, usize::MAX, rx_like(&token, 10)) };
        assert_eq!(
            (n, v.len(), v.capacity()),
            (cap - 4, cap, cap),
            "capacity bounds it, never grown"
        );
        // SAFETY: as above.
        let n = unsafe { append_raw(&mut v, usize::MAX, |_, _| panic!("no room offered")) };
        assert_eq!(n, 0);
        assert_eq!(Rc::strong_count(&token), cap + 1);
        drop(v);
        assert_eq!(Rc::strong_count(&token), 1, "each dropped exactly once");
    }

    #[test]
    fn take_front_forgets_the_taken_and_keeps_the_rest_in_order() {
        let mut v: Vec<Rc<u32>> = (0..6).map(Rc::new).collect();
        let watch: Vec<Rc<u32>> = v.iter().map(Rc::clone).collect();
        let mut taken = Vec::new();
        // Take the first two, as a tx burst the NIC half accepts.
        // SAFETY: the closure moves exactly the first two values out and reports 2.
        let n = unsafe {
            take_front_raw(&mut v, |p, len| {
                assert_eq!(len, 6);
                for i in 0..2 {
                    taken.push(ptr::read(p.add(i)));
                }
                2
            })
        };
        assert_eq!(n, 2);
        assert_eq!(v.iter().map(|r| **r).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        for w in &watch {
            assert_eq!(Rc::strong_count(w), 2, "nothing dropped or duplicated");
        }
        drop(taken);
        assert_eq!(Rc::strong_count(&watch[0]), 1);
        assert_eq!(Rc::strong_count(&watch[2]), 2);
        // Nothing taken: unchanged. Everything taken: empty, capacity kept.
        // SAFETY: takes nothing.
        assert_eq!(unsafe { take_front_raw(&mut v, |_, _| 0) }, 0);
        assert_eq!(v.len(), 4);
        let cap = v.capacity();
        let mut all = Vec::new();
        // SAFETY: moves all four out and reports more, which is clamped to four.
        let n = unsafe {
            take_front_raw(&mut v, |p, len| {
                for i in 0..len {
                    all.push(ptr::read(p.add(i)));
                }
                usize::MAX
            })
        };
        assert_eq!((n, v.len(), v.capacity()), (4, 0, cap));
        drop(all);
        assert!(watch.iter().all(|w| Rc::strong_count(w) == 1));
        // SAFETY: an empty array shows the closure nothing.
        assert_eq!(unsafe { take_front_raw(&mut v, |_, _| panic!("empty")) }, 0);
    }

    #[test]
    fn push_within_refuses_past_the_capacity() {
        let mut v = Vec::with_capacity(2);
        assert_eq!(push_within(&mut v, 1), Ok(()));
        assert_eq!(push_within(&mut v, 2), Ok(()));
        assert_eq!(
            push_within(&mut v, 3),
            Err(3),
            "a full array gives the value back"
        );
        assert_eq!((v.len(), v.capacity()), (2, 2));
    }
}
