//! Runs a port's stop or close on the EAL interrupt thread and waits for it.
//!
//! net_memif handles a peer's disconnect on that thread (`memif_disconnect()`), and its
//! stop runs the same function on the caller's thread, with nothing to keep the two apart:
//! a server stopped while a client leaves frees the same regions twice (docs/memif.md). An
//! alarm callback runs on the interrupt thread, so a stop or close sent there is ordered
//! after the disconnect it would race with.

use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

use dpdk_sys as sys;

/// The interrupt thread answers within microseconds; past this the caller does it itself.
const JOB_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortOp {
    Stop,
    Close,
}

struct Job {
    port: u16,
    op: PortOp,
    done: AtomicBool,
    ret: AtomicI32,
}

/// # Safety
/// As `rte_eth_dev_stop` / `rte_eth_dev_close` on a valid port: for close, no queue of the
/// port is used afterwards.
pub unsafe fn port_op(port: u16, op: PortOp) -> c_int {
    match op {
        // SAFETY: the caller's contract.
        PortOp::Stop => unsafe { sys::rte_eth_dev_stop(port) },
        // SAFETY: the caller's contract.
        PortOp::Close => unsafe { sys::rte_eth_dev_close(port) },
    }
}

unsafe extern "C" fn run_job(arg: *mut c_void) {
    // SAFETY: `arg` is the `Job` that `run` keeps alive until this has returned or its
    // alarm is cancelled.
    let job = unsafe { &*(arg as *const Job) };
    // SAFETY: `run`'s caller gave the port's contract.
    job.ret
        .store(unsafe { port_op(job.port, job.op) }, Ordering::Relaxed);
    job.done.store(true, Ordering::Release);
}

/// Does `op` to `port` on the interrupt thread and returns its result; on this thread if the
/// alarm cannot be set or does not run within [`JOB_LIMIT`].
///
/// # Safety
/// As [`port_op`].
pub unsafe fn run(port: u16, op: PortOp) -> c_int {
    let job = Job {
        port,
        op,
        done: AtomicBool::new(false),
        ret: AtomicI32::new(0),
    };
    let arg = &job as *const Job as *mut c_void;
    // SAFETY: the callback and its argument stay valid until the alarm has run or been
    // cancelled below.
    if unsafe { sys::rte_eal_alarm_set(1, Some(run_job), arg) } != 0 {
        // SAFETY: the caller's contract.
        return unsafe { port_op(port, op) };
    }
    let start = Instant::now();
    while !job.done.load(Ordering::Acquire) && start.elapsed() < JOB_LIMIT {
        std::thread::sleep(Duration::from_micros(100));
    }
    // SAFETY: cancel waits for a callback that is running, so once it returns the alarm has
    // run to its end or never will, and `job` may go.
    unsafe { sys::rte_eal_alarm_cancel(Some(run_job), arg) };
    if job.done.load(Ordering::Acquire) {
        job.ret.load(Ordering::Relaxed)
    } else {
        // SAFETY: the caller's contract.
        unsafe { port_op(port, op) }
    }
}
