//! The lab's network: namespaces, veth pairs, tap and loopback addresses, all named with the
//! lab's prefix and pid, all removed on drop (pass, failure or Ctrl-C). Deleting a namespace
//! deletes the veth ends and taps inside it; a real NIC moved into one is handed back first.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::proc;
use super::scenario::{TopologyKind, TopologySpec};

/// The prefix of every name the lab creates (namespaces, interfaces, DPDK file prefixes):
/// "bplab" + pid, so parallel labs never collide and leftovers are attributable.
pub fn lab_tag() -> String {
    format!("bplab{}", std::process::id())
}

/// Interface names are at most 15 bytes: "bl" + pid + topology index + role.
fn iface_name(topo: usize, role: &str) -> String {
    format!("bl{}t{topo}{role}", std::process::id())
}

/// A network namespace the lab made; deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: String) -> Result<Netns, String> {
        proc::run("ip", &["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n <ns> ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        proc::run("ip", &a)
    }

    /// Runs a short program inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["netns", "exec", self.name.as_str()];
        a.extend_from_slice(args);
        proc::run("ip", &a)
    }

    /// The argv prefix that runs a program inside this namespace.
    pub fn prefix(&self) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.name.clone(),
        ]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = proc::run("ip", &["netns", "del", &self.name]);
    }
}

/// One built topology.
pub struct Topology {
    pub spec: TopologySpec,
    /// Where the server runs.
    pub server_ns: Netns,
    /// Where the client runs, when it is not the server's namespace.
    pub client_ns: Option<Netns>,
    /// veth: the server end; tap: the interface net_tap will create; memif: the socket path.
    pub server_dev: String,
    /// veth: the client end; nic: the moved kernel interface.
    pub client_dev: Option<String>,
}

impl Topology {
    pub fn build(spec: &TopologySpec, index: usize, run_dir: &Path) -> Result<Topology, String> {
        let tag = lab_tag();
        let server_ns = Netns::create(format!("{tag}-t{index}s"))?;
        let mut t = Topology {
            spec: spec.clone(),
            server_ns,
            client_ns: None,
            server_dev: String::new(),
            client_dev: None,
        };
        let cidr = |ip: Ipv4Addr| format!("{ip}/{}", spec.prefix_len);
        match spec.kind {
            TopologyKind::Veth => {
                let client_ns = Netns::create(format!("{tag}-t{index}c"))?;
                let (s, c) = (iface_name(index, "s"), iface_name(index, "c"));
                t.client_ns = Some(client_ns);
                // Created inside the server namespace, so a failure below leaves nothing
                // behind in the root namespace.
                t.server_ns
                    .ip(&["link", "add", &s, "type", "veth", "peer", "name", &c])?;
                let cns = t.client_ns.as_ref().expect("just set");
                t.server_ns.ip(&["link", "set", &c, "netns", &cns.name])?;
                t.server_ns
                    .ip(&["addr", "add", &cidr(spec.server_ip), "dev", &s])?;
                t.server_ns.ip(&["link", "set", &s, "up"])?;
                let client_ip = spec.client_ip.ok_or("veth needs client_ip")?;
                cns.ip(&["addr", "add", &cidr(client_ip), "dev", &c])?;
                cns.ip(&["link", "set", &c, "up"])?;
                // veth leaves UDP checksums to an offload that never happens on the way into
                // AF_XDP, and the fast path rightly drops those: the client computes them.
                cns.exec(&["ethtool", "-K", &c, "tx", "off"])?;
                t.server_dev = s;
                t.client_dev = Some(c);
            }
            TopologyKind::Tap => {
                t.server_dev = iface_name(index, "tap");
            }
            TopologyKind::Loopback => {
                t.server_ns.ip(&[
                    "addr",
                    "add",
                    &format!("{}/32", spec.server_ip),
                    "dev",
                    "lo",
                ])?;
            }
            TopologyKind::Memif => {
                t.server_dev = run_dir
                    .join(format!("memif-t{index}.sock"))
                    .to_string_lossy()
                    .into_owned();
            }
            TopologyKind::Pcap => {}
            TopologyKind::Nic => {
                if let Some(ifc) = &spec.client_iface {
                    let client_ns = Netns::create(format!("{tag}-t{index}c"))?;
                    proc::run("ip", &["link", "set", ifc, "netns", &client_ns.name])?;
                    t.client_dev = Some(ifc.clone());
                    let client_ip = spec.client_ip.ok_or("nic client needs client_ip")?;
                    client_ns.ip(&["addr", "add", &cidr(client_ip), "dev", ifc])?;
                    client_ns.ip(&["link", "set", ifc, "up"])?;
                    t.client_ns = Some(client_ns);
                }
            }
        }
        Ok(t)
    }

    /// The namespace clients run in.
    /// The client's address; validation gives every topology with a client one.
    pub fn client_ip(&self) -> Result<std::net::Ipv4Addr, String> {
        self.spec
            .client_ip
            .ok_or_else(|| format!("topology {:?} has no client_ip", self.spec.name))
    }

    pub fn client_ns(&self) -> &Netns {
        self.client_ns.as_ref().unwrap_or(&self.server_ns)
    }

    /// Tap: once net_tap has created its interface in the server namespace, gives it the
    /// client's address (the kernel side of the tap is the client).
    pub fn configure_tap(&self, limit: Duration) -> Result<(), String> {
        let dev = &self.server_dev;
        let start = Instant::now();
        while self.server_ns.ip(&["link", "show", dev]).is_err() {
            if start.elapsed() > limit || crate::os::signal::stop_requested() {
                return Err(format!("{dev} never appeared in {}", self.server_ns.name));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let ip = self.spec.client_ip.ok_or("tap needs client_ip")?;
        // A second fast-path run on the same tap finds the address there already.
        let _ = self.server_ns.ip(&["addr", "flush", "dev", dev]);
        self.server_ns.ip(&[
            "addr",
            "add",
            &format!("{ip}/{}", self.spec.prefix_len),
            "dev",
            dev,
        ])?;
        self.server_ns.ip(&["link", "set", dev, "up"])?;
        Ok(())
    }

    /// Pings the server from the client side until it answers (ARP resolved, server up).
    pub fn wait_reachable(&self, limit: Duration) -> Result<(), String> {
        let ip = self.spec.server_ip.to_string();
        let start = Instant::now();
        loop {
            if self
                .client_ns()
                .exec(&["ping", "-c", "1", "-W", "1", "-q", &ip])
                .is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > limit || crate::os::signal::stop_requested() {
                return Err(format!(
                    "{ip} does not answer ping from {} after {:.0} s",
                    self.client_ns().name,
                    start.elapsed().as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // A real NIC goes back to the root namespace explicitly (namespace deletion would do
        // it too, but only once every process inside has exited).
        if let (TopologyKind::Nic, Some(ns), Some(dev)) =
            (self.spec.kind, &self.client_ns, &self.client_dev)
        {
            let _ = ns.ip(&["addr", "flush", "dev", dev]);
            let _ = ns.ip(&["link", "set", dev, "netns", "1"]);
        }
        if self.spec.kind == TopologyKind::Memif {
            let _ = std::fs::remove_file(&self.server_dev);
        }
        // server_ns and client_ns drop after this, deleting the namespaces.
    }
}

/// A DPDK --file-prefix whose runtime folder and hugepage files are removed on drop.
pub struct DpdkPrefix {
    pub name: String,
}

static PREFIX_N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl DpdkPrefix {
    pub fn new(what: &str) -> DpdkPrefix {
        let n = PREFIX_N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        DpdkPrefix {
            name: format!("{}-{what}{n}", lab_tag()),
        }
    }
}

/// Every hugetlbfs mount point (hugepage files live in one of them).
fn hugetlbfs_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[2] == "hugetlbfs").then(|| PathBuf::from(f[1]))
        })
        .collect()
}

/// Removes the runtime folder and hugepage files of every DPDK prefix starting with `start`
/// (files are named `<prefix>map_<n>`; the runtime folder is `<prefix>`).
pub fn remove_dpdk_files(start: &str) {
    remove_matching(|n| n.starts_with(start));
}

fn remove_matching(pred: impl Fn(&str) -> bool) {
    let mut dirs = hugetlbfs_mounts();
    dirs.push(PathBuf::from("/var/run/dpdk"));
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if pred(&e.file_name().to_string_lossy()) {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
}

impl Drop for DpdkPrefix {
    fn drop(&mut self) {
        let map = format!("{}map_", self.name);
        remove_matching(|n| n == self.name || n.starts_with(&map));
    }
}
