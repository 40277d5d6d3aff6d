//! Signals: a process-wide stop request set by SIGINT / SIGTERM (or by the program itself),
//! and keeping the real-time signals a PMD raises off a thread that must stay responsive.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
/// Once set (>= 0, by [`exit_on_stop`]), the exit status a stop signal ends the process with.
static EXIT_ON_STOP: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Atomics and _exit only: both async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
    let code = EXIT_ON_STOP.load(Ordering::SeqCst);
    if code >= 0 {
        // SAFETY: _exit is async-signal-safe; exit_on_stop's caller has nothing left to
        // clean up, which is the one case this is reached in.
        unsafe { libc::_exit(code) };
    }
}

/// From now on a stop signal ends the process at once with exit status `code`, for a program
/// that has finished and cleaned up but not yet exited (the lab after its report): a signal
/// there used to land after its last check and be lost (exit 0). Returns whether a stop was
/// requested before; after this returns, none can be missed.
pub fn exit_on_stop(code: u8) -> bool {
    EXIT_ON_STOP.store(i32::from(code), Ordering::SeqCst);
    STOP.load(Ordering::SeqCst)
}

/// Routes SIGINT and SIGTERM to the stop request instead of killing the process, so every
/// program can stop its workers, drain its queues and print its final report.
pub fn install_stop_handlers() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a valid handler address and an empty mask is a
        // well-formed argument; the handler only touches an atomic.
        let ret = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_stop_signal as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// True once a stop signal arrived or [`request_stop`] was called. One relaxed load: cheap
/// enough for every turn of a poll loop.
#[inline]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Blocks SIGRTMIN..=SIGRTMAX on the calling thread, so the kernel delivers those
/// process-directed signals to another thread. net_tap asks for one per received packet:
/// under load they interrupted the main thread tens of thousands of times a second.
/// SIGINT and SIGTERM are not in that range. The error is pthread_sigmask's.
pub fn block_realtime_signals_on_this_thread() -> io::Result<()> {
    // SAFETY: sigset_t is plain data that sigemptyset initialises before use; sigaddset and
    // pthread_sigmask only read and write the set and this thread's mask.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_signals_block_on_a_thread_of_its_own() {
        std::thread::spawn(|| {
            block_realtime_signals_on_this_thread().unwrap();
            // SAFETY: sigset_t is plain data; a zeroed one is valid output space.
            let mut cur: libc::sigset_t = unsafe { std::mem::zeroed() };
            // SAFETY: a null new set only reads the current mask into `cur`.
            let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur) };
            assert_eq!(rc, 0);
            // SAFETY: `cur` was filled by pthread_sigmask.
            assert_eq!(unsafe { libc::sigismember(&cur, libc::SIGRTMIN()) }, 1);
            // SAFETY: as above.
            assert_eq!(unsafe { libc::sigismember(&cur, libc::SIGINT) }, 0);
        })
        .join()
        .unwrap();
    }
}
