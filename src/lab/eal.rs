//! EAL arguments for the DPDK programs the lab starts: the placement (main lcore on the client
//! CPU, the worker on the server CPU), hugepages with --huge-unlink (or --no-huge), a unique
//! file prefix, and the devices. A zero-copy memif client keeps its hugepage files (it hands
//! their descriptors to the server); the prefix's guard removes them.

use super::topology::DpdkPrefix;
use crate::dpdk::is_zero_copy_memif_arg;

/// EAL arguments for a process with lcores `cpus` (the first is the main lcore).
pub fn args(
    cpus: &[usize],
    hugepages: bool,
    prefix: &DpdkPrefix,
    devices: &[String],
) -> Vec<String> {
    let list: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    let mut v = vec![
        "-l".to_string(),
        list.join(","),
        "--main-lcore".into(),
        cpus[0].to_string(),
        format!("--file-prefix={}", prefix.name),
        "--no-telemetry".into(),
    ];
    if hugepages && devices.iter().any(|d| is_zero_copy_memif_arg(d)) {
        // The PMD shares memory by the fd of each memseg list's one file: unlinked files
        // (--huge-unlink) cannot be shared, and EAL refuses the two options together.
        v.push("--single-file-segments".into());
    } else if hugepages {
        // The files are unlinked as soon as they are mapped: nothing is left on a crash.
        v.push("--huge-unlink".into());
    } else {
        v.extend(["--no-huge".into(), "-m".into(), "512".into()]);
    }
    // Virtual devices only: do not probe (and take) the machine's PCI NICs.
    if !devices
        .iter()
        .any(|d| d == "-a" || d.starts_with("--allow") || d.starts_with("-a"))
    {
        v.push("--no-pci".into());
    }
    v.extend(devices.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_devices_keep_pci_probing() {
        let p = DpdkPrefix {
            name: "bplab-unit-test-never-created".into(),
        };
        let a = args(&[0, 1], true, &p, &["--vdev=net_tap0".into()]);
        assert!(a.contains(&"--no-pci".to_string()));
        assert!(a.contains(&"--huge-unlink".to_string()));
        assert_eq!(&a[..4], ["-l", "0,1", "--main-lcore", "0"]);
        let b = args(&[2, 3], false, &p, &["-a".into(), "0000:03:00.0".into()]);
        assert!(!b.contains(&"--no-pci".to_string()));
        assert!(b.contains(&"--no-huge".to_string()));
        let zc = "--vdev=net_memif0,role=client,socket=/tmp/s,zero-copy=yes".to_string();
        let c = args(&[0], true, &p, std::slice::from_ref(&zc));
        assert!(c.contains(&"--single-file-segments".to_string()));
        assert!(!c.contains(&"--huge-unlink".to_string()));
        let copy = zc.replace(",zero-copy=yes", "");
        let d = args(&[0], true, &p, &[copy]);
        assert!(d.contains(&"--huge-unlink".to_string()));
        std::mem::forget(p);
        // (forget: the Drop guard would sweep /var/run/dpdk for a prefix nobody made)
    }
}
