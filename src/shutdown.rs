//! A process-wide stop request, set by SIGINT / SIGTERM or by the program itself.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: the one thing that is async-signal-safe and all we need.
    STOP.store(true, Ordering::SeqCst);
}

/// Routes SIGINT and SIGTERM to the stop flag instead of killing the process, so every
/// program can stop its workers, drain its queues and print its final report.
pub fn install_handlers() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a valid handler address and an empty mask is a
        // well-formed argument; the handler only touches an atomic.
        let ret = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[inline]
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

pub fn request() {
    STOP.store(true, Ordering::SeqCst);
}
