//! Processes and the calling thread: signalling a child, whether we run as root, moving
//! the calling thread into a network namespace (the lab's and the tests' topologies), and
//! the calling thread's timer slack (kernel-serve's sleeping service times).

use std::io;
use std::os::fd::AsRawFd;

use super::socket::cvt;

/// The signals the programs and tests send to their children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: a clean stop with a final report.
    Int,
    /// SIGTERM: the same clean stop, as a service manager asks for it.
    Term,
    /// SIGKILL: no chance to clean up.
    Kill,
    /// SIGSTOP: freeze the process (a stall, as a test provokes one).
    Stop,
    /// SIGCONT: thaw it.
    Cont,
}

impl Signal {
    /// The C number, e.g. 2 for `Int`.
    pub fn number(self) -> libc::c_int {
        match self {
            Signal::Int => libc::SIGINT,
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }
}

/// Sends `sig` to process `pid` (e.g. `Child::id()`). The caller should own the process
/// and not have reaped it yet, so the pid cannot name another process.
pub fn signal(pid: u32, sig: Signal) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill takes no pointers; a positive pid names one process, never a group.
    cvt(unsafe { libc::kill(pid, sig.number()) }).map(|_| ())
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Moves the calling thread into the network namespace `ns` (an open /var/run/netns/<name>
/// or /proc/<pid>/ns/net); sockets it opens afterwards live there.
pub fn enter_net_namespace(ns: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: setns takes no pointers; an fd of another kind fails with EINVAL.
    cvt(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(|_| ())
}

/// Sets the calling thread's timer slack to `ns` (at least 1: 0 would restore the default).
/// The default 50 us lets the kernel defer a wake-up by that much to batch timers, which
/// would round every short sleep up by a latency the sleeping thread did not ask for.
pub fn set_timer_slack_ns(ns: u64) -> io::Result<()> {
    let ns = libc::c_ulong::try_from(ns.max(1))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "slack out of range"))?;
    // SAFETY: PR_SET_TIMERSLACK takes its value by integer and no pointer; it changes only
    // the calling thread's timer slack.
    cvt(unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) }).map(|_| ())
}

/// The calling thread's timer slack, in ns.
pub fn timer_slack_ns() -> io::Result<u64> {
    // SAFETY: PR_GET_TIMERSLACK takes no pointer and returns the slack as its result.
    let r = cvt(unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) })?;
    Ok(r as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_signalled_child_dies_of_it() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        signal(child.id(), Signal::Term).unwrap();
        let st = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn timer_slack_is_set_and_inherited() {
        // Each test runs on a thread of its own, so no other test sees this slack.
        set_timer_slack_ns(1).unwrap();
        assert_eq!(timer_slack_ns().unwrap(), 1);
        let child = std::thread::spawn(timer_slack_ns).join().unwrap().unwrap();
        assert_eq!(child, 1, "a thread starts with its creator's slack");
        set_timer_slack_ns(0).unwrap();
        assert_eq!(
            timer_slack_ns().unwrap(),
            1,
            "0 is raised to 1, not the default"
        );
    }

    #[test]
    fn out_of_range_pid_and_wrong_fd_are_errors() {
        assert!(signal(u32::MAX, Signal::Int).is_err());
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(enter_net_namespace(&f).is_err());
    }
}
