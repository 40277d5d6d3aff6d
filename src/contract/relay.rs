//! `bypass kernel-relay --json`, the kernel-socket sidecar baseline: its command line and the
//! final report line the lab reads.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddrV4;

use serde::{Deserialize, Serialize};

use super::Argv;
use crate::options::{Backend, Balance, Proto};

/// One end of a kernel relay, spelt `udp:IP:PORT`, `tcp:IP:PORT` or `unix:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayEnd {
    Udp(SocketAddrV4),
    Tcp(SocketAddrV4),
    Unix(String),
}

impl RelayEnd {
    pub fn proto(&self) -> Proto {
        match self {
            RelayEnd::Udp(_) => Proto::Udp,
            RelayEnd::Tcp(_) => Proto::Tcp,
            RelayEnd::Unix(_) => Proto::Unix,
        }
    }
}

impl fmt::Display for RelayEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayEnd::Udp(a) => write!(f, "udp:{a}"),
            RelayEnd::Tcp(a) => write!(f, "tcp:{a}"),
            RelayEnd::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

/// `bypass kernel-relay --json`, one thread pinned to `cpu`, stopping after `duration_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelRelayCommand {
    pub listen: RelayEnd,
    pub upstreams: Vec<RelayEnd>,
    pub balance: Balance,
    /// blocking (epoll_wait sleeps) or busy (epoll_wait with a zero timeout, spinning).
    pub backend: Backend,
    pub cpu: usize,
    pub duration_s: f64,
}

impl KernelRelayCommand {
    /// The arguments after the binary, starting with `kernel-relay`.
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::new("kernel-relay");
        a.opt("--listen", &self.listen);
        for u in &self.upstreams {
            a.opt("--upstream", u);
        }
        a.opt("--balance", self.balance)
            .opt("--backend", self.backend)
            .opt("--cpus", self.cpu)
            .flag("--json")
            .opt("--duration", self.duration_s);
        a.done()
    }
}

/// The final line of `bypass kernel-relay --json` (`"type": "final"`): the part the lab
/// reads, in the shape of [`super::serve::KernelServeFinal`] plus the relay's own counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelRelayFinal {
    /// The listening side's protocol.
    pub proto: Proto,
    pub upstream_proto: Proto,
    pub backend: Backend,
    #[serde(default)]
    pub threads: usize,
    /// Messages read, both sides.
    pub rx: u64,
    /// Messages written, both sides.
    pub tx: u64,
    /// Requests sent on to an upstream.
    pub forwarded: u64,
    /// Replies mapped back to their client.
    pub returned: u64,
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}
