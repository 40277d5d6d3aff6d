//! Parks the EAL interrupt thread: a callback of ours, run on that thread, holds it until
//! released, so the caller knows the thread has finished whatever it was handling and will
//! start nothing new meanwhile.
//!
//! Two teardown races in DPDK 22.11 need this (docs/memif.md). net_memif's stop runs
//! `memif_disconnect()` on the caller's thread while the interrupt thread may be running the
//! same function for a peer that just left: both free the same regions. And
//! `rte_eal_cleanup()` detaches the EAL's memory without stopping the interrupt thread, which
//! crashes if it is awake then (walking its sources after a peer's disconnect or an
//! unregister). A port stop parks the thread for its duration; the EAL's drop parks it for
//! good, and it ends with the process.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use dpdk_sys as sys;

/// The thread answers within microseconds unless it is stuck; then the caller goes on.
const PARK_LIMIT: Duration = Duration::from_secs(1);

struct Park {
    efd: c_int,
    parked: AtomicBool,
    release: AtomicBool,
}

// SAFETY: only the EAL calls this, on its interrupt thread, with the argument registered
// beside it in `park` (a `Park` kept alive while registered).
unsafe extern "C" fn hold(arg: *mut c_void) {
    // SAFETY: `arg` is the `Park` that `Parked` keeps alive until this callback is
    // unregistered (or forever, once leaked).
    let p = unsafe { &*(arg as *const Park) };
    let mut v = 0u64;
    // SAFETY: reads the eventfd's 8-byte counter into `v`, so its readiness clears and the
    // thread does not come back here after returning.
    unsafe { libc::read(p.efd, (&mut v as *mut u64).cast(), 8) };
    p.parked.store(true, Ordering::Release);
    let mut turns = 0u32;
    while !p.release.load(Ordering::Acquire) {
        // Quick to release at first; parked for good, a slow poll.
        let nap = if turns < 1000 { 100 } else { 10_000 };
        std::thread::sleep(Duration::from_micros(nap));
        turns = turns.saturating_add(1);
    }
}

/// The interrupt thread, held in [`hold`] until this drops.
pub struct Parked {
    park: Box<Park>,
    handle: *mut sys::rte_intr_handle,
}

/// Parks the interrupt thread, waiting up to [`PARK_LIMIT`] for it to get there; None if it
/// could not be asked or did not come (the caller then goes on without).
pub fn park() -> Option<Parked> {
    // SAFETY: eventfd takes two integers.
    let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if efd < 0 {
        return None;
    }
    // SAFETY: a private (libc-allocated) handle, not in EAL memory the cleanup detaches.
    let handle = unsafe { sys::rte_intr_instance_alloc(sys::RTE_INTR_INSTANCE_F_PRIVATE) };
    if handle.is_null() {
        // SAFETY: our own fd, closed once.
        unsafe { libc::close(efd) };
        return None;
    }
    let parked = Parked {
        park: Box::new(Park {
            efd,
            parked: AtomicBool::new(false),
            release: AtomicBool::new(false),
        }),
        handle,
    };
    let arg = &*parked.park as *const Park as *mut c_void;
    // SAFETY: a live handle given our eventfd; the callback's argument lives as long as the
    // registration (Parked's drop unregisters before freeing it).
    let ok = unsafe {
        sys::rte_intr_fd_set(handle, efd) == 0
            && sys::rte_intr_type_set(handle, sys::rte_intr_handle_type_RTE_INTR_HANDLE_EXT) == 0
            && sys::rte_intr_callback_register(handle, Some(hold), arg) == 0
    };
    if !ok {
        return None;
    }
    let one = 1u64;
    // SAFETY: writes 8 bytes from `one` to our eventfd, which wakes the thread into `hold`.
    unsafe { libc::write(efd, (&one as *const u64).cast(), 8) };
    let start = Instant::now();
    while !parked.park.parked.load(Ordering::Acquire) {
        if start.elapsed() > PARK_LIMIT {
            return None;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    Some(parked)
}

impl Parked {
    /// Leaves the thread parked until the process ends: for the EAL's teardown, after which
    /// the thread must not run again.
    pub fn forever(self) {
        // Kept where a leak checker sees it (still reachable, not lost): it is held on
        // purpose until the process ends.
        #[used]
        static FOREVER: AtomicPtr<Parked> = AtomicPtr::new(std::ptr::null_mut());
        FOREVER.store(Box::into_raw(Box::new(self)), Ordering::Release);
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.park.release.store(true, Ordering::Release);
        let arg = &*self.park as *const Park as *mut c_void;
        let start = Instant::now();
        loop {
            // SAFETY: unregisters our own callback; -EAGAIN while it is still running.
            let ret = unsafe { sys::rte_intr_callback_unregister(self.handle, Some(hold), arg) };
            if ret != -libc::EAGAIN {
                break;
            }
            if start.elapsed() > PARK_LIMIT {
                // Still inside `hold`: leave it the memory it points at.
                let park = std::mem::replace(&mut self.park, Box::new(dummy()));
                std::mem::forget(park);
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        // SAFETY: unregistered (or never registered), so nothing uses the handle or fd now.
        unsafe {
            sys::rte_intr_instance_free(self.handle);
            libc::close(self.park.efd);
        }
    }
}

fn dummy() -> Park {
    Park {
        efd: -1,
        parked: AtomicBool::new(true),
        release: AtomicBool::new(true),
    }
}
