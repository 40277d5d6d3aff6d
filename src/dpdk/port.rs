//! Ethernet ports: configuration, queues, start/stop, MAC, link and statistics.

use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;

use dpdk_sys as sys;

use super::array;
use super::error::{DpdkError, Result};
use super::intr;
use super::mbuf::Mbuf;
use super::mempool::Mempool;
use super::quiesce::{self, QuiesceGuard};

/// How to set a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    pub rx_queues: u16,
    pub tx_queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Spread flows over rx queues by RSS when there are several and the PMD can.
    pub rss: bool,
    pub promiscuous: bool,
    /// Enable rx IPv4 and UDP checksum offload, so each mbuf carries the NIC's verdicts
    /// ([`Mbuf::rx_ip_cksum`]); refused when the PMD does not offer both.
    pub rx_checksum_offload: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            rss: true,
            promiscuous: true,
            rx_checksum_offload: false,
        }
    }
}

/// Counters the PMD keeps for a port (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Packets the NIC dropped because the rx ring was full.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// Rx failures because the mempool was empty.
    pub rx_nombuf: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LinkStatus {
    pub up: bool,
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// An rx queue handle. Handed out once per queue, `Send` but not `Sync`: exactly one worker
/// polls a queue, which is what makes lock-free rx correct.
pub struct RxQueue {
    port: u16,
    queue: u16,
    /// On net_memif: marks every burst, so the interrupt thread's unmap waits for it.
    guard: Option<QuiesceGuard>,
    _not_sync: PhantomData<Cell<()>>,
}

/// A tx queue handle, with the same single-owner rule as `RxQueue`.
pub struct TxQueue {
    port: u16,
    queue: u16,
    guard: Option<QuiesceGuard>,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives into the spare capacity of `pkts` (never growing it), after the packets it
    /// already holds; returns how many arrived.
    #[inline]
    pub fn rx(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        self.rx_up_to(pkts, usize::MAX)
    }

    /// [`Self::rx`] of at most `max` packets.
    #[inline]
    pub fn rx_up_to(&mut self, pkts: &mut Vec<Mbuf>, max: usize) -> usize {
        let (port, queue) = (self.port, self.queue);
        // SAFETY: Mbuf is repr(transparent) over a non-null rte_mbuf pointer, so the spare
        // slots have the layout of the `rte_mbuf *` array rx_burst fills; it writes at most
        // `room` of them, each a valid mbuf whose ownership passes to us, and returns that
        // count. This handle is the queue's only poller.
        guarded(&self.guard, || unsafe {
            array::append_raw(pkts, max.min(u16::MAX as usize), |dst, room| {
                sys::rte_eth_rx_burst(port, queue, dst.cast(), room as u16) as usize
            })
        })
    }
}

impl TxQueue {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Hands the NIC as many packets from the front of `pkts` as it accepts, and returns
    /// that number. The packets it did not take stay in `pkts`, in order, still ours.
    #[inline]
    pub fn tx(&mut self, pkts: &mut Vec<Mbuf>) -> usize {
        let (port, queue) = (self.port, self.queue);
        // SAFETY: as in rx, the packets have the layout of an `rte_mbuf *` array; tx_burst
        // reads (and a PMD may rewrite) the first `len` entries and takes ownership of
        // exactly the first `sent`, the count it returns, which take_front_raw then forgets.
        guarded(&self.guard, || unsafe {
            array::take_front_raw(pkts, |p, len| {
                let len = len.min(u16::MAX as usize) as u16;
                sys::rte_eth_tx_burst(port, queue, p.cast(), len) as usize
            })
        })
    }
}

/// Runs one burst call inside the queue's quiescence marks, if it has them.
#[inline(always)]
fn guarded<R>(guard: &Option<QuiesceGuard>, burst: impl FnOnce() -> R) -> R {
    let Some(g) = guard else {
        return burst();
    };
    g.enter();
    let r = burst();
    g.leave();
    r
}

/// Quiescence marks for each of `n` queues of a port on `driver`: only net_memif unmaps
/// memory under a running burst (docs/memif.md).
fn queue_guards(driver: &str, n: u16) -> Result<Vec<Option<QuiesceGuard>>> {
    if driver != "net_memif" {
        return Ok((0..n).map(|_| None).collect());
    }
    if !quiesce::interposed() {
        eprintln!(
            "bypass: warning: this executable does not export munmap, so a net_memif peer \
             leaving may crash it (docs/memif.md)"
        );
    }
    (0..n)
        .map(|_| {
            QuiesceGuard::new().map(Some).ok_or_else(|| {
                DpdkError::Invalid("too many net_memif queues in one process".into())
            })
        })
        .collect()
}

/// The rx checksum offloads a port's PMD offers (`rte_eth_dev_info` rx_offload_capa).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChecksumOffloads {
    pub rx_ipv4: bool,
    pub rx_udp: bool,
}

impl ChecksumOffloads {
    fn of(info: &sys::rte_eth_dev_info) -> ChecksumOffloads {
        let has = |capa: u64, bit: u32| capa & u64::from(bit) != 0;
        ChecksumOffloads {
            rx_ipv4: has(info.rx_offload_capa, sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM),
            rx_udp: has(info.rx_offload_capa, sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM),
        }
    }
}

/// What a port is, before it is configured: enough to choose how to configure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub driver: String,
    pub checksum: ChecksumOffloads,
}

fn dev_info(id: u16) -> Result<(sys::rte_eth_dev_info, String)> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: out-pointer to a zeroed struct; an invalid id returns an error.
    let ret = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
    if ret != 0 {
        return Err(DpdkError::from_ret("rte_eth_dev_info_get", ret));
    }
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: DPDK returns a static NUL-terminated driver name.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    Ok((info, driver))
}

/// The name, driver and checksum offloads of port `id`.
pub fn device_info(id: u16) -> Result<DeviceInfo> {
    let name = port_name(id)?;
    let (info, driver) = dev_info(id)?;
    Ok(DeviceInfo {
        name,
        driver,
        checksum: ChecksumOffloads::of(&info),
    })
}

/// A configured port. Stopped and closed on drop.
pub struct Port {
    id: u16,
    name: String,
    driver: String,
    rx: Vec<Option<RxQueue>>,
    tx: Vec<Option<TxQueue>>,
    rss_active: bool,
    started: bool,
}

/// Number of ports the EAL probed.
pub fn port_count() -> u16 {
    // SAFETY: valid after EAL init; returns 0 before.
    unsafe { sys::rte_eth_dev_count_avail() }
}

/// The device name of a port (for a vdev, the name given in --vdev).
pub fn port_name(id: u16) -> Result<String> {
    let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: buf has RTE_ETH_NAME_MAX_LEN bytes as the API requires.
    let ret = unsafe { sys::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr()) };
    if ret != 0 {
        return Err(DpdkError::Invalid(format!("port {id} does not exist")));
    }
    // SAFETY: DPDK wrote a NUL-terminated string into buf.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

/// Finds a port by its device name (as in --vdev or a PCI address) or by its number.
pub fn find_port(name_or_id: &str) -> Result<u16> {
    let cname = CString::new(name_or_id)
        .map_err(|_| DpdkError::Invalid("port name contains a NUL byte".into()))?;
    let mut id = 0u16;
    // SAFETY: valid C string and out-pointer.
    if unsafe { sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) } == 0 {
        return Ok(id);
    }
    if let Ok(n) = name_or_id.parse::<u16>() {
        if n < port_count() {
            return Ok(n);
        }
    }
    let known: Vec<String> = (0..port_count())
        .filter_map(|p| port_name(p).ok())
        .collect();
    Err(DpdkError::Invalid(format!(
        "no port named {name_or_id:?} (ports: {})",
        if known.is_empty() {
            "none: give one with --vdev or a PCI device after --".to_string()
        } else {
            known.join(", ")
        }
    )))
}

impl Port {
    /// Configures port `id` with the queues of `cfg`, taking rx buffers from `pool`.
    pub fn configure(id: u16, cfg: &PortConfig, pool: &Mempool) -> Result<Port> {
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            return Err(DpdkError::Invalid(format!(
                "port {id}: need at least one rx and one tx queue"
            )));
        }
        let name = port_name(id)?;
        let (info, driver) = dev_info(id)?;
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(DpdkError::Invalid(format!(
                "port {name}: asked for {} rx / {} tx queues, the {driver} PMD allows {} / {}",
                cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
            )));
        }

        let mut conf = sys::rte_eth_conf::default();
        let rss_hf = info.flow_type_rss_offloads
            & (sys::RTE_ETH_RSS_IP as u64 | sys::RTE_ETH_RSS_UDP as u64);
        let rss_active = cfg.rss && cfg.rx_queues > 1 && rss_hf != 0;
        if rss_active {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
        }
        if cfg.rx_checksum_offload {
            let offers = ChecksumOffloads::of(&info);
            if !(offers.rx_ipv4 && offers.rx_udp) {
                return Err(DpdkError::Invalid(format!(
                    "port {name}: rx checksum offload asked for, the {driver} PMD offers \
                     ipv4 {} / udp {}",
                    offers.rx_ipv4, offers.rx_udp
                )));
            }
            conf.rxmode.offloads |=
                u64::from(sys::RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | sys::RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
        }
        // SAFETY: valid port id and a fully initialised configuration.
        let ret = unsafe { sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf) };
        if ret != 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_configure", ret));
        }

        let mut rx_desc = cfg.rx_desc;
        let mut tx_desc = cfg.tx_desc;
        // SAFETY: valid port and in/out pointers; clamps to what the PMD supports.
        let ret = unsafe { sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc) };
        if ret != 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        // SAFETY: valid port id.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..cfg.rx_queues {
            // SAFETY: configured port, queue index in range, a live mempool; a null rxconf
            // means the PMD's defaults.
            let ret = unsafe {
                sys::rte_eth_rx_queue_setup(id, q, rx_desc, socket, std::ptr::null(), pool.as_ptr())
            };
            if ret != 0 {
                return Err(DpdkError::from_ret("rte_eth_rx_queue_setup", ret));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: configured port, queue index in range; null txconf means defaults.
            let ret =
                unsafe { sys::rte_eth_tx_queue_setup(id, q, tx_desc, socket, std::ptr::null()) };
            if ret != 0 {
                return Err(DpdkError::from_ret("rte_eth_tx_queue_setup", ret));
            }
        }
        if cfg.promiscuous {
            // Not every PMD supports it (and a vdev needs none); failure is not fatal.
            // SAFETY: valid port id.
            unsafe { sys::rte_eth_promiscuous_enable(id) };
        }
        let rx = (0..cfg.rx_queues)
            .zip(queue_guards(&driver, cfg.rx_queues)?)
            .map(|(queue, guard)| {
                Some(RxQueue {
                    port: id,
                    queue,
                    guard,
                    _not_sync: PhantomData,
                })
            })
            .collect();
        let tx = (0..cfg.tx_queues)
            .zip(queue_guards(&driver, cfg.tx_queues)?)
            .map(|(queue, guard)| {
                Some(TxQueue {
                    port: id,
                    queue,
                    guard,
                    _not_sync: PhantomData,
                })
            })
            .collect();
        Ok(Port {
            id,
            name,
            driver,
            rx,
            tx,
            rss_active,
            started: false,
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn driver(&self) -> &str {
        &self.driver
    }

    pub fn rss_active(&self) -> bool {
        self.rss_active
    }

    pub fn rx_queue_count(&self) -> u16 {
        self.rx.len() as u16
    }

    /// Takes the handle of rx queue `q`; None if out of range or already taken.
    pub fn take_rx(&mut self, q: u16) -> Option<RxQueue> {
        self.rx.get_mut(q as usize)?.take()
    }

    /// Takes the handle of tx queue `q`; None if out of range or already taken.
    pub fn take_tx(&mut self, q: u16) -> Option<TxQueue> {
        self.tx.get_mut(q as usize)?.take()
    }

    /// Gives a queue handle back (so the port can drain it at shutdown).
    pub fn return_rx(&mut self, q: RxQueue) {
        let i = q.queue as usize;
        if q.port == self.id && i < self.rx.len() {
            self.rx[i] = Some(q);
        }
    }

    /// Gives a tx queue handle back.
    pub fn return_tx(&mut self, q: TxQueue) {
        let i = q.queue as usize;
        if q.port == self.id && i < self.tx.len() {
            self.tx[i] = Some(q);
        }
    }

    /// Frees packets waiting in the rx queues whose handles the port holds, while buffers of
    /// `pool` are still out, at most `limit` packets; returns how many it freed. Rings
    /// (net_ring) keep packets across stop, so a clean exit drains them; a source that never
    /// runs dry (net_null) has nothing out and is left alone.
    pub fn drain_rx(&mut self, pool: &Mempool, limit: u64) -> u64 {
        let mut total = 0;
        let mut pkts = Vec::with_capacity(64);
        for q in self.rx.iter_mut().flatten() {
            while total < limit && pool.in_use() > 0 {
                let n = q.rx(&mut pkts);
                Mbuf::free_all(&mut pkts);
                total += n as u64;
                if n == 0 {
                    break;
                }
            }
        }
        total
    }

    pub fn start(&mut self) -> Result<()> {
        // SAFETY: the port was configured with all its queues.
        let ret = unsafe { sys::rte_eth_dev_start(self.id) };
        if ret != 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_start", ret));
        }
        self.started = true;
        Ok(())
    }

    pub fn stop(&mut self) -> Result<()> {
        match self.stop_code() {
            0 => Ok(()),
            ret => Err(DpdkError::from_ret("rte_eth_dev_stop", ret)),
        }
    }

    /// [`Self::stop`] as DPDK's return code, for drop: no `Result` is built and dropped there,
    /// whose optimised drop glue valgrind reports as a jump on uninitialised memory.
    fn stop_code(&mut self) -> i32 {
        if !self.started {
            return 0;
        }
        // net_memif's stop must not meet the interrupt thread's handling of a peer that
        // leaves (src/dpdk/intr.rs): hold that thread while it runs.
        let _parked = if self.driver == "net_memif" {
            intr::park()
        } else {
            None
        };
        self.started = false;
        // SAFETY: valid started port.
        unsafe { sys::rte_eth_dev_stop(self.id) }
    }

    pub fn mac(&self) -> [u8; 6] {
        let mut addr = sys::rte_ether_addr::default();
        // SAFETY: valid port id and out-pointer.
        unsafe { sys::rte_eth_macaddr_get(self.id, &mut addr) };
        addr.addr_bytes
    }

    pub fn link(&self) -> LinkStatus {
        let mut link = sys::rte_eth_link::default();
        // SAFETY: valid port id and out-pointer; nowait never blocks.
        unsafe { sys::rte_eth_link_get_nowait(self.id, &mut link) };
        LinkStatus {
            up: link.link_status() != 0,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        }
    }

    pub fn stats(&self) -> Result<PortStats> {
        stats(self.id)
    }

    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        xstats(self.id)
    }
}

/// Port counters by id, so a control thread can read them without owning the port.
pub fn stats(id: u16) -> Result<PortStats> {
    let mut s = sys::rte_eth_stats::default();
    // SAFETY: out-pointer to a zeroed struct; an invalid id returns an error.
    let ret = unsafe { sys::rte_eth_stats_get(id, &mut s) };
    if ret != 0 {
        return Err(DpdkError::from_ret("rte_eth_stats_get", ret));
    }
    Ok(PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    })
}

/// Extended statistics (name, value), as the PMD names them.
pub fn xstats(id: u16) -> Result<Vec<(String, u64)>> {
    // SAFETY: a null buffer with size 0 asks for the count.
    let n = unsafe { sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
    if n < 0 {
        return Err(DpdkError::from_ret("rte_eth_xstats_get_names", n));
    }
    let mut names = vec![sys::rte_eth_xstat_name::default(); n as usize];
    let mut vals = vec![sys::rte_eth_xstat::default(); n as usize];
    // SAFETY: both buffers have room for n entries.
    let got_names = unsafe { sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32) };
    // SAFETY: as above.
    let got_vals = unsafe { sys::rte_eth_xstats_get(id, vals.as_mut_ptr(), n as u32) };
    if got_names < 0 || got_vals < 0 {
        return Err(DpdkError::from_ret(
            "rte_eth_xstats_get",
            got_vals.min(got_names),
        ));
    }
    let count = got_names.min(got_vals) as usize;
    Ok(vals[..count]
        .iter()
        .filter_map(|v| {
            let name = names.get(v.id as usize)?;
            // SAFETY: DPDK writes NUL-terminated names into fixed arrays.
            let s = unsafe { CStr::from_ptr(name.name.as_ptr()) };
            Some((s.to_string_lossy().into_owned(), v.value))
        })
        .collect())
}

impl Drop for Port {
    fn drop(&mut self) {
        self.stop_code();
        // SAFETY: the port is stopped and no queue handle is used after the port drops
        // (workers are joined before ports are dropped).
        unsafe { sys::rte_eth_dev_close(self.id) };
    }
}
