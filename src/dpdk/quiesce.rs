//! Keeps DPDK's interrupt thread from unmapping net_memif's shared memory while a datapath
//! thread is inside that PMD's rx or tx burst (docs/memif.md, "A peer that leaves").
//!
//! When the peer goes, `memif_disconnect()` runs on the EAL interrupt thread: it clears the
//! "connected" flag, then `memif_free_regions()` munmaps the rings and buffers. The bursts
//! test that flag once at entry, so a worker already past the test copies from or to memory
//! that has just gone: SIGSEGV. DPDK 22.11 offers no hook between the two steps (no LSC event,
//! no lock), but the unmap is a call to `munmap` through the PLT, and a symbol the executable
//! exports wins over libc's. So this module defines `munmap`: on the interrupt thread it first
//! waits until every guarded queue is outside its burst, then unmaps. Any burst that starts
//! after the wait reads the cleared flag and returns 0 without touching a region.
//!
//! The datapath side costs two plain stores per burst call: a queue's slot counter is odd
//! while it is inside the PMD. The store-then-load pattern on each side (the worker stores its
//! counter, then the PMD loads the flag; the interrupt thread stores the flag, then loads the
//! counters) needs a full fence on both; `membarrier(PRIVATE_EXPEDITED)` on the rare side
//! issues the worker's fence for it. Without membarrier the worker fences itself.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// More guarded queues than any memif setup here uses (two per queue pair).
const SLOTS: usize = 128;
/// How long the unmap waits for one burst to finish. A burst takes microseconds; only a
/// stopped worker (a debugger, SIGSTOP) holds one longer, and then the unmap goes ahead.
const WAIT_LIMIT: Duration = Duration::from_secs(1);
/// DPDK 22.11 names its interrupt thread so (lib/eal/linux/eal_interrupts.c).
const INTR_THREAD: &[u8] = b"eal-intr-thread";

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: c_int = 1 << 4;

#[repr(align(64))]
struct Slot {
    taken: AtomicBool,
    /// Odd while the owning queue is inside a burst. One writer: the queue's owner.
    epoch: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    taken: AtomicBool::new(false),
    epoch: AtomicU64::new(0),
};
static TABLE: [Slot; SLOTS] = [FREE; SLOTS];

/// 0: no guard made yet; 1: membarrier does the worker's fence; 2: workers fence themselves.
static MODE: AtomicU8 = AtomicU8::new(0);
static MODE_ONCE: Once = Once::new();
const MODE_MEMBARRIER: u8 = 1;
const MODE_FENCE: u8 = 2;

fn membarrier(cmd: c_int) -> bool {
    // SAFETY: membarrier takes two integers and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0, 0) == 0 }
}

/// A queue's slot: entered and left around every burst call of a guarded queue.
pub struct QuiesceGuard {
    slot: &'static Slot,
    fence: bool,
}

impl QuiesceGuard {
    /// Takes a free slot, or None when all [`SLOTS`] are taken.
    pub fn new() -> Option<QuiesceGuard> {
        MODE_ONCE.call_once(|| {
            let m = if membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) {
                MODE_MEMBARRIER
            } else {
                MODE_FENCE
            };
            MODE.store(m, Ordering::SeqCst);
        });
        let slot = TABLE.iter().find(|s| {
            s.taken
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })?;
        Some(QuiesceGuard {
            slot,
            fence: MODE.load(Ordering::SeqCst) == MODE_FENCE,
        })
    }

    /// Marks the queue inside the PMD. Must be paired with [`Self::leave`].
    #[inline]
    pub fn enter(&self) {
        let e = &self.slot.epoch;
        e.store(e.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if self.fence {
            fence(Ordering::SeqCst);
        } else {
            compiler_fence(Ordering::SeqCst);
        }
    }

    #[inline]
    pub fn leave(&self) {
        let e = &self.slot.epoch;
        e.store(e.load(Ordering::Relaxed) + 1, Ordering::Release);
    }
}

impl Drop for QuiesceGuard {
    fn drop(&mut self) {
        self.slot.taken.store(false, Ordering::Release);
    }
}

/// Waits until no guarded queue is inside a burst it started before this call.
fn wait_quiescent() {
    match MODE.load(Ordering::SeqCst) {
        0 => return,
        MODE_MEMBARRIER if membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) => {}
        _ => fence(Ordering::SeqCst),
    }
    for s in &TABLE {
        let seen = s.epoch.load(Ordering::Acquire);
        if seen % 2 == 0 {
            continue;
        }
        let start = Instant::now();
        while s.epoch.load(Ordering::Acquire) == seen && start.elapsed() < WAIT_LIMIT {
            std::thread::yield_now();
        }
    }
}

fn on_interrupt_thread() -> bool {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (NUL included) into the buffer.
    let ok = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) } == 0;
    ok && name.starts_with(INTR_THREAD)
}

/// The process's `munmap`: exported from the executable (build.rs), so the memif PMD's call
/// binds here instead of libc. Behaves as libc's (the same system call, errno on failure).
///
/// # Safety
/// As `munmap(2)`: the caller owns the mapping it removes.
#[no_mangle]
pub unsafe extern "C" fn munmap(addr: *mut c_void, len: libc::size_t) -> c_int {
    if on_interrupt_thread() {
        wait_quiescent();
    }
    // SAFETY: the caller's munmap request, passed on unchanged; syscall sets errno.
    unsafe { libc::syscall(libc::SYS_munmap, addr, len) as c_int }
}

/// Whether the executable's dynamic symbol table offers this module's `munmap` to the
/// shared libraries (true in `bypass`, whose link exports it; false in a test harness).
pub fn interposed() -> bool {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks a symbol up.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"munmap".as_ptr()) };
    found == munmap as *mut c_void
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// One test at a time: one of them takes every slot.
    static TABLE_LOCK: Mutex<()> = Mutex::new(());

    #[test]
    fn slots_are_taken_and_given_back() {
        let _l = TABLE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let a = QuiesceGuard::new().unwrap();
        let b = QuiesceGuard::new().unwrap();
        assert!(!std::ptr::eq(a.slot, b.slot));
        let pa = a.slot as *const Slot;
        drop(a);
        let taken: Vec<QuiesceGuard> = std::iter::from_fn(QuiesceGuard::new).collect();
        assert!(taken.iter().any(|g| std::ptr::eq(g.slot, pa)));
        assert!(QuiesceGuard::new().is_none(), "the table is full");
    }

    #[test]
    fn the_unmap_waits_for_a_burst_in_progress() {
        let _l = TABLE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let g = Arc::new(QuiesceGuard::new().unwrap());
        g.enter();
        let left = Arc::new(AtomicBool::new(false));
        let (g2, left2) = (Arc::clone(&g), Arc::clone(&left));
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            left2.store(true, Ordering::SeqCst);
            g2.leave();
        });
        wait_quiescent();
        assert!(
            left.load(Ordering::SeqCst),
            "returned while a burst was inside"
        );
        h.join().unwrap();
        // Outside a burst there is nothing to wait for.
        wait_quiescent();
    }

    #[test]
    fn munmap_still_unmaps() {
        // SAFETY: a fresh anonymous private mapping of one page, unmapped once.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            let misaligned = p.cast::<u8>().wrapping_add(1).cast();
            assert_eq!(munmap(misaligned, 4096), -1, "EINVAL, as libc's");
            assert_eq!(*libc::__errno_location(), libc::EINVAL);
            assert_eq!(munmap(p, 4096), 0);
        }
    }
}
