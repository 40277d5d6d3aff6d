//! Errors from DPDK calls, carrying the call that failed and DPDK's own message.

use std::ffi::CStr;
use std::fmt;

use dpdk_sys as sys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpdkError {
    /// A DPDK call returned an error code (a positive errno value).
    Call { op: &'static str, errno: i32 },
    /// `Eal::init` was called while an EAL already exists (or existed) in this process.
    AlreadyInitialized,
    /// Something the caller asked for does not exist or does not fit.
    Invalid(String),
}

impl DpdkError {
    /// Builds an error from a DPDK return value that is `-errno`.
    pub fn from_ret(op: &'static str, ret: i32) -> Self {
        DpdkError::Call {
            op,
            errno: ret.abs(),
        }
    }

    /// Builds an error from the calling thread's `rte_errno`.
    pub fn last(op: &'static str) -> Self {
        // SAFETY: reads a thread-local integer through a C shim; no preconditions.
        let errno = unsafe { sys::dpdk_sys_errno() };
        DpdkError::Call { op, errno }
    }
}

fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    let s = unsafe { CStr::from_ptr(sys::rte_strerror(errno)) };
    s.to_string_lossy().into_owned()
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::Call { op, errno } => {
                write!(f, "{op} failed: {} (errno {errno})", strerror(*errno))
            }
            DpdkError::AlreadyInitialized => {
                write!(f, "the DPDK EAL is already initialised in this process")
            }
            DpdkError::Invalid(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for DpdkError {}

pub type Result<T> = std::result::Result<T, DpdkError>;
