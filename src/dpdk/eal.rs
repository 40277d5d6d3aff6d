//! The DPDK Environment Abstraction Layer: one per process, initialised from an argument list.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

use dpdk_sys as sys;

use super::error::{DpdkError, Result};

/// Set on the first init and never cleared: DPDK cannot be initialised twice in one process,
/// not even after `rte_eal_cleanup`.
static EAL_CLAIMED: AtomicBool = AtomicBool::new(false);

/// The initialised EAL. Dropping it waits for every worker lcore and releases DPDK's resources.
pub struct Eal {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Eal {
    /// Initialises DPDK with `args` (the program name first, as in `argv`).
    ///
    /// DPDK's log goes to stderr so that stdout stays clean for the program's own output.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal> {
        if EAL_CLAIMED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialized);
        }
        let owned: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_ref()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| DpdkError::Invalid("an EAL argument contains a NUL byte".into()))?;
        // rte_eal_init may permute argv, so it gets a scratch array of pointers while the
        // strings themselves stay owned here until it returns.
        let mut argv: Vec<*mut c_char> = owned.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        argv.push(std::ptr::null_mut());

        // SAFETY: fdopen on fd 2 with a valid mode string; the stream lives for the process.
        let stderr = unsafe { libc::fdopen(2, c"w".as_ptr()) };
        if !stderr.is_null() {
            // SAFETY: the FILE pointer is valid and never closed; DPDK only writes to it.
            unsafe { sys::rte_openlog_stream(stderr as *mut sys::FILE) };
        }

        // SAFETY: argv holds argc valid NUL-terminated strings and a terminating null pointer,
        // all alive for the duration of the call.
        let ret = unsafe { sys::rte_eal_init(owned.len() as c_int, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::last("rte_eal_init"));
        }
        Ok(Eal {
            _not_send: std::marker::PhantomData,
        })
    }

    /// The TSC frequency DPDK calibrated at init, in Hz.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: valid after rte_eal_init, which `self` proves happened.
        unsafe { sys::rte_get_tsc_hz() }
    }

    /// The lcore id of the calling thread (the main lcore for the thread that called init).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: valid after rte_eal_init.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Worker lcores (every enabled lcore but the main one), in id order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: iterating lcores is valid after rte_eal_init; RTE_MAX_LCORE ends the walk.
        let mut id = unsafe { sys::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < sys::RTE_MAX_LCORE {
            out.push(id);
            // SAFETY: as above.
            id = unsafe { sys::rte_get_next_lcore(id, 1, 0) };
        }
        out
    }

    /// The CPU an lcore runs on, when it is pinned to exactly one.
    pub fn lcore_cpu(&self, lcore: u32) -> Option<usize> {
        // SAFETY: valid after rte_eal_init for any lcore id; returns -1 for unknown lcores.
        let cpu = unsafe { sys::rte_lcore_to_cpu_id(lcore as c_int) };
        (cpu >= 0).then_some(cpu as usize)
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: valid after rte_eal_init; the string is the EAL's own, copied at once.
        let dir = unsafe { CStr::from_ptr(sys::rte_eal_get_runtime_dir()) }
            .to_str()
            .ok()
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from);
        // SAFETY: the EAL was initialised by `init`; waiting for lcores first makes cleanup
        // safe even if a worker is still returning.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        // The cleanup detaches memory the interrupt thread walks if anything wakes it, and
        // 22.11 does not stop that thread first: hold it for good (src/dpdk/intr.rs).
        if let Some(p) = super::intr::park() {
            p.forever();
        }
        // SAFETY: as above; every worker has returned.
        unsafe { sys::rte_eal_cleanup() };
        // DPDK 22.11's cleanup leaves its runtime folder (/var/run/dpdk/<prefix>) behind,
        // empty. remove_dir takes only an empty one: a folder another process of the same
        // prefix still uses stays.
        if let Some(d) = dir {
            let _ = std::fs::remove_dir(d);
        }
    }
}
