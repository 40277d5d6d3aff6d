//! The memseg file descriptors a zero-copy net_memif client loses.
//!
//! A zero-copy client shares its hugepage memory: `memif_region_init_zc()` takes each memseg
//! list's fd from `rte_memseg_get_fd()` (the EAL's own descriptor, not a dup), sends it to the
//! server, and `memif_connect()` then closes it ("close memseg file", drivers/net/memif/
//! rte_eth_memif.c, DPDK 22.11). The EAL still records the number, and `rte_eal_cleanup()`
//! closes it again at exit: by then the number belongs to whatever file the process opened
//! next (seen: the client's interval-histogram spill file, which then fails with EBADF). The
//! guard puts a /dev/null stand-in on every such number while it is free, so nothing else
//! can take it and the EAL's late close hits the stand-in.

use std::os::raw::{c_int, c_void};

/// Whether an EAL argument asks for a net_memif port in zero-copy mode (`zero-copy=yes`), the
/// mode whose client shares its hugepage files and loses their fds to the PMD.
pub fn is_zero_copy_memif_arg(arg: &str) -> bool {
    arg.contains("net_memif") && arg.split(',').any(|kv| kv == "zero-copy=yes")
}

use dpdk_sys as sys;

unsafe extern "C" fn collect_fd(
    _msl: *const sys::rte_memseg_list,
    ms: *const sys::rte_memseg,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: `arg` is the `Vec<c_int>` that `closed_memseg_fds` passes to the walk, alive and
    // not aliased for the walk's duration; `ms` is a memseg the walk hands us, and the walk
    // holds the memory lock, hence the thread-unsafe getter.
    unsafe {
        let fds = &mut *(arg as *mut Vec<c_int>);
        let fd = sys::rte_memseg_get_fd_thread_unsafe(ms);
        if fd >= 0 && !fds.contains(&fd) {
            fds.push(fd);
        }
    }
    0
}

/// Every memseg fd the EAL records that is no longer open in this process.
fn closed_memseg_fds() -> Vec<c_int> {
    let mut fds: Vec<c_int> = Vec::new();
    // SAFETY: the callback only reads the memseg it is given and appends to `fds`, which
    // outlives the call; the EAL is initialised (callers hold an `Eal`).
    unsafe {
        sys::rte_memseg_walk(Some(collect_fd), &mut fds as *mut Vec<c_int> as *mut c_void);
    }
    fds.retain(|&fd| {
        // SAFETY: F_GETFD only reads the descriptor's flags; any number is a valid argument.
        let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EBADF)
    });
    fds
}

/// Puts a /dev/null stand-in on each memseg fd number the memif PMD closed (see the module
/// note). Call once the zero-copy port's link is up, before the process opens other files.
/// Returns how many numbers it reserved.
pub fn reserve_closed_memseg_fds() -> std::io::Result<usize> {
    let fds = closed_memseg_fds();
    for &fd in &fds {
        // SAFETY: opening /dev/null with a NUL-terminated path; the result is checked.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if null < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if null == fd {
            // The lowest free number is the lost one itself: the stand-in is in place.
            continue;
        }
        // SAFETY: both are descriptors of this process: `null` just opened, `fd` a free
        // number; dup3 makes `fd` a second handle on /dev/null, then the first is closed.
        let r = unsafe { libc::dup3(null, fd, libc::O_CLOEXEC) };
        let err = std::io::Error::last_os_error();
        // SAFETY: `null` is ours and closed once.
        unsafe { libc::close(null) };
        if r < 0 {
            return Err(err);
        }
    }
    Ok(fds.len())
}
