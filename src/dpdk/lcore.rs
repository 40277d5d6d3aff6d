//! Running code on EAL lcores, and registering threads the program makes itself.

use std::any::Any;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use super::error::{DpdkError, Result};

type Outcome<T> = std::thread::Result<T>;

/// A function running on a worker lcore; `join` waits for it and returns its result.
pub struct LcoreJoin<T> {
    lcore: u32,
    slot: Arc<Mutex<Option<Outcome<T>>>>,
}

type Job = Box<dyn FnOnce() + Send>;

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `launch`, handed to exactly one lcore.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    job();
    0
}

/// Runs `f` on worker lcore `lcore`. A panic inside `f` is caught and returned by `join`
/// rather than unwinding across the C frame.
pub fn launch<F, T>(lcore: u32, f: F) -> Result<LcoreJoin<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot: Arc<Mutex<Option<Outcome<T>>>> = Arc::new(Mutex::new(None));
    let out = Arc::clone(&slot);
    let job: Job = Box::new(move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    });
    let arg = Box::into_raw(Box::new(job));
    // SAFETY: trampoline matches lcore_function_t and takes ownership of `arg` if launched.
    let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg as *mut c_void, lcore) };
    if ret != 0 {
        // SAFETY: the launch failed, so nobody else took `arg`; reclaim and drop it.
        drop(unsafe { Box::from_raw(arg) });
        return Err(DpdkError::from_ret("rte_eal_remote_launch", ret));
    }
    Ok(LcoreJoin { lcore, slot })
}

impl<T> LcoreJoin<T> {
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Waits for the function to return. Err carries a caught panic's payload.
    pub fn join(self) -> std::result::Result<T, Box<dyn Any + Send>> {
        // SAFETY: the lcore was launched by `launch`; waiting is always valid.
        unsafe { sys::rte_eal_wait_lcore(self.lcore) };
        let r = self
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| Err(Box::new("lcore function did not report a result")));
        r
    }
}

/// The calling thread's lcore id, or None for a thread DPDK does not know.
pub fn current_lcore() -> Option<u32> {
    // SAFETY: reads a thread-local; no preconditions.
    let id = unsafe { sys::rte_lcore_id() };
    (id != u32::MAX).then_some(id)
}

/// Registers a thread the program created as a DPDK lcore, so it gets a per-lcore mempool
/// cache. Returns the lcore id; unregister before the thread ends.
pub fn register_thread() -> Result<u32> {
    // SAFETY: no preconditions beyond an initialised EAL.
    if unsafe { sys::rte_thread_register() } != 0 {
        return Err(DpdkError::last("rte_thread_register"));
    }
    current_lcore().ok_or_else(|| DpdkError::Invalid("registered thread has no lcore id".into()))
}

pub fn unregister_thread() {
    // SAFETY: unregistering a registered (or unregistered) thread is allowed.
    unsafe { sys::rte_thread_unregister() };
}
