//! The `dpdk` transport: the client owns an EAL port of its own (any vdev or PCI device),
//! wraps each RPC message in Ethernet/IPv4/UDP in a fresh mbuf, and unwraps replies polled
//! from the rx ring. The measuring loop runs on the thread that initialised the EAL, i.e. the
//! main lcore pinned by `-l`/`--lcores`, so client and fast path can share a machine: the
//! server's worker on one core, the client on the other.
//!
//! Per message: one mbuf from the pool and one tx burst out; each rx burst is stamped when the
//! poll returns, before any checksum is summed (under the `offload` policy the NIC's flags
//! are read within the poll, before the stamp), and its replies are handed to the engine in place
//! (no copy), all with that stamp; the burst is freed in bulk. No allocation besides the mbuf, no syscall (the PMD
//! may make one: net_tap writes to a file descriptor).

use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use crate::dpdk::{self, Eal, Mbuf, Mempool, Port, PortConfig, RxCksum, RxQueue, TxQueue};
use crate::drops::drop_reasons;
use crate::options::{ChecksumCaps, ChecksumChoice, ChecksumPolicy};
use crate::wire::frame::{MAX_UDP_PAYLOAD, UDP_HEADERS_LEN};
use crate::wire::{
    arp::emit_arp_frame, emit_udp_frame, ArpOperation, ArpPacket, EtherType, EthernetFrame,
    IpProtocol, Ipv4Address, Ipv4Packet, MacAddress, UdpEndpoints, UdpPacket,
};

use super::config::{bad, LoadConfig, MAX_MESSAGE};
use super::transport::RpcTransport;
use super::LoadError;
use crate::os::Clock;

const POOL_SIZE: u32 = 4095;
const POOL_CACHE: u32 = 64;
const DATA_ROOM: u16 = 2048;
const RING_DESC: u16 = 512;
const RX_BURST: usize = 32;
/// Tx attempts per message while the ring is full, before the send fails.
const TX_TRIES: u32 = 1024;
const LINK_WAIT: Duration = Duration::from_secs(10);
const ARP_WAIT: Duration = Duration::from_secs(3);
const ARP_RETRY: Duration = Duration::from_millis(300);
/// Ethernet minimum without FCS: ARP frames are padded to it.
const MIN_FRAME: usize = crate::wire::arp::MIN_FRAME;

drop_reasons! {
    /// Why a received frame was not a reply. Every reason is a counter, named in the
    /// transport's closing `dpdk:` line.
    Discard {
        /// Too short or inconsistent lengths at some layer.
        Malformed => "malformed",
        /// Not addressed to our MAC (or broadcast, for ARP).
        WrongMac => "wrong-mac",
        /// Neither IPv4 nor ARP (IPv6, VLAN-tagged, ...).
        NotIpv4 => "not-ipv4",
        /// ARP that is not a request for our address or a reply to us.
        ArpOther => "arp-other",
        BadIpChecksum => "bad-ip-checksum",
        /// Not from the server's address to ours.
        WrongIp => "wrong-ip",
        Fragment => "fragment",
        NotUdp => "not-udp",
        BadUdpChecksum => "bad-udp-checksum",
        /// Not from the server's port to ours.
        WrongPort => "wrong-port",
        /// An RPC message longer than the caller's buffer.
        TooLong => "too-long",
        /// A reply that came while the server's MAC was still being resolved (nothing was
        /// sent).
        BeforeArp => "before-arp",
    }
}

/// What one received frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// An RPC message at `start..start + len` of the frame.
    Rpc {
        start: usize,
        len: usize,
    },
    /// Who-has our address, asked by `mac`/`ip`.
    ArpRequest {
        mac: MacAddress,
        ip: Ipv4Address,
    },
    /// `ip` is at `mac`, told to us.
    ArpReply {
        mac: MacAddress,
        ip: Ipv4Address,
    },
    Drop(Discard),
}

/// How far a reply's checksums are summed in software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sums {
    Verify,
    /// The peer is a local process (trust), or the NIC found every frame of this burst
    /// good (offload).
    Skip,
}

/// Our addressing (`ep`, the request direction: we are `src`) and what [`classify`] checks
/// of replies' checksums: the port's resolved policy, and under offload what the NIC said
/// of the current burst ([`offload_verdicts`]).
#[derive(Debug, Clone)]
struct Peer {
    ep: UdpEndpoints,
    policy: ChecksumPolicy,
    sums: Sums,
    /// `--servers`: the replicas' ports on the server's address (empty: `ep.dst_port` alone).
    /// Each send aims `ep` at one of them; replies are accepted from any.
    replica_ports: Vec<u16>,
}

impl Peer {
    fn new(ep: UdpEndpoints, policy: ChecksumPolicy) -> Peer {
        let sums = match policy {
            ChecksumPolicy::Trust => Sums::Skip,
            _ => Sums::Verify,
        };
        Peer {
            ep,
            policy,
            sums,
            replica_ports: Vec::new(),
        }
    }
}

/// Under offload: drops (and counts) the frames the NIC found bad, so none of them reaches
/// [`classify`], and says whether the NIC found both checksums of every frame left good.
/// A burst with any frame it has no verdict on (ARP, or a PMD that left one unchecked) is
/// summed in software whole: one flag per burst keeps `classify`'s signature, and a good
/// frame summed again is only slower.
fn offload_verdicts(burst: &mut Vec<Mbuf>, stats: &mut Stats) -> Sums {
    let mut all_good = true;
    burst.retain(|m| match nic_verdict(m.rx_ip_cksum(), m.rx_l4_cksum()) {
        Ok(good) => {
            all_good &= good;
            true
        }
        Err(why) => {
            stats.drop(why);
            false
        }
    });
    if all_good {
        Sums::Skip
    } else {
        Sums::Verify
    }
}

/// One frame's NIC verdicts: the reason it is dropped when either checksum is bad (the IPv4
/// header's first, as `classify` checks it first), else whether both are good. NONE (the
/// bytes are not right, the data was checked) is no verdict here: software decides.
fn nic_verdict(ip: RxCksum, l4: RxCksum) -> Result<bool, Discard> {
    if ip == RxCksum::Bad {
        return Err(Discard::BadIpChecksum);
    }
    if l4 == RxCksum::Bad {
        return Err(Discard::BadUdpChecksum);
    }
    Ok(ip == RxCksum::Good && l4 == RxCksum::Good)
}

/// Sorts a frame against our addressing (`ep` is the request direction: we are `src`),
/// summing its checksums as `peer.sums` says. Never panics on any input.
fn classify(frame: &[u8], peer: &Peer) -> Frame {
    let ep = &peer.ep;
    let verify = peer.sums == Sums::Verify;
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return Frame::Drop(Discard::Malformed);
    };
    let to_us = eth.dst_addr() == ep.src_mac;
    match eth.ethertype() {
        EtherType::Arp => {
            if !to_us && !eth.dst_addr().is_broadcast() {
                return Frame::Drop(Discard::WrongMac);
            }
            let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
                return Frame::Drop(Discard::Malformed);
            };
            if arp.target_proto_addr() != ep.src_ip {
                return Frame::Drop(Discard::ArpOther);
            }
            let (mac, ip) = (arp.sender_hw_addr(), arp.sender_proto_addr());
            if !mac.is_unicast() || mac.is_unspecified() {
                return Frame::Drop(Discard::ArpOther);
            }
            match arp.operation() {
                ArpOperation::Request => Frame::ArpRequest { mac, ip },
                ArpOperation::Reply if to_us => Frame::ArpReply { mac, ip },
                _ => Frame::Drop(Discard::ArpOther),
            }
        }
        EtherType::Ipv4 => {
            if !to_us {
                return Frame::Drop(Discard::WrongMac);
            }
            let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
                return Frame::Drop(Discard::Malformed);
            };
            if verify && !ip.verify_checksum() {
                return Frame::Drop(Discard::BadIpChecksum);
            }
            if ip.dst_addr() != ep.src_ip || ip.src_addr() != ep.dst_ip {
                return Frame::Drop(Discard::WrongIp);
            }
            if ip.is_fragment() {
                return Frame::Drop(Discard::Fragment);
            }
            if ip.protocol() != IpProtocol::Udp {
                return Frame::Drop(Discard::NotUdp);
            }
            let Ok(udp) = UdpPacket::new_checked(ip.payload()) else {
                return Frame::Drop(Discard::Malformed);
            };
            let from_server =
                udp.src_port() == ep.dst_port || peer.replica_ports.contains(&udp.src_port());
            if udp.dst_port() != ep.src_port || !from_server {
                return Frame::Drop(Discard::WrongPort);
            }
            if verify && !udp.verify_checksum(ip.src_addr(), ip.dst_addr()) {
                return Frame::Drop(Discard::BadUdpChecksum);
            }
            let len = udp.payload().len();
            let start = EthernetFrame::<&[u8]>::HEADER_LEN
                + ip.header_len()
                + UdpPacket::<&[u8]>::HEADER_LEN;
            Frame::Rpc { start, len }
        }
        _ => {
            if !to_us {
                Frame::Drop(Discard::WrongMac)
            } else {
                Frame::Drop(Discard::NotIpv4)
            }
        }
    }
}

/// What the transport saw, reported on stderr when it closes.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    rx_frames: u64,
    tx_frames: u64,
    replies: u64,
    arp_requests_answered: u64,
    arp_replies_received: u64,
    /// Sends that failed: the pool was empty, or the ring stayed full for [`TX_TRIES`] tries.
    tx_no_mbuf: u64,
    tx_ring_full: u64,
    drops: [u64; Discard::COUNT],
}

impl Stats {
    fn drop(&mut self, why: Discard) {
        self.drops[usize::from(why)] += 1;
    }

    fn json(&self, port: &str, checksum: &ChecksumChoice, pool: &Mempool) -> String {
        let drops: serde_json::Map<String, serde_json::Value> = Discard::ALL
            .iter()
            .map(|&d| (d.name().to_string(), self.drops[usize::from(d)].into()))
            .collect();
        serde_json::json!({
            "port": port,
            "rx_frames": self.rx_frames,
            "tx_frames": self.tx_frames,
            "replies": self.replies,
            "arp_requests_answered": self.arp_requests_answered,
            "arp_replies_received": self.arp_replies_received,
            "tx_no_mbuf": self.tx_no_mbuf,
            "tx_ring_full": self.tx_ring_full,
            "drops": drops,
            "checksum": checksum,
            "mempool": {"capacity": pool.capacity(), "in_use": pool.in_use()},
        })
        .to_string()
    }
}

/// An EAL port speaking UDP to one server. Fields drop in order after [`Drop::drop`]: the
/// pool before the EAL it lives in.
pub struct DpdkTransport {
    /// Requests go from `src` to `dst`; replies are checked against it, their checksums as
    /// the port's policy says.
    peer: Peer,
    /// The port's checksum policy as asked for, resolved, and why.
    checksum: ChecksumChoice,
    rx: RxQueue,
    tx: TxQueue,
    /// Frames received and not yet looked at: `rx_next..len`. Freed in bulk when used up.
    rx_burst: Vec<Mbuf>,
    rx_next: usize,
    /// When the current burst arrived (`recv_with`'s clock, ns).
    rx_stamp: u64,
    tx_burst: Vec<Mbuf>,
    stats: Stats,
    /// A zero-copy net_memif client: its rx ring holds pool buffers the PMD never gives back.
    zero_copy: bool,
    port_name: String,
    /// Always `Some` until drop, which closes the port before counting buffers out.
    port: Option<Port>,
    pool: Mempool,
    _eal: Eal,
}

fn setup_err(what: impl std::fmt::Display) -> LoadError {
    LoadError::Io(format!("dpdk: {what}"))
}

impl DpdkTransport {
    /// Initialises the EAL, sets the port up, waits for its link and resolves the server's MAC.
    /// `cfg` has been through [`LoadConfig::validate`].
    pub fn open(cfg: &LoadConfig) -> Result<DpdkTransport, LoadError> {
        let o = cfg
            .dpdk
            .as_ref()
            .ok_or_else(|| bad("--client-ip", "--transport dpdk needs --client-ip IP"))?;
        let server_addr = cfg.server_addr()?;
        let server_ip = cfg.server_ipv4()?;
        let mut argv = vec!["bypass-load".to_string()];
        argv.extend(o.eal.iter().cloned());
        let eal = Eal::init(&argv).map_err(setup_err)?;
        let port_id = match &o.port {
            Some(p) => dpdk::find_port(p).map_err(|e| bad("--dpdk-port", e.to_string()))?,
            None => match dpdk::port_count() {
                0 => {
                    return Err(setup_err(
                        "no ports: add a device to the EAL arguments, e.g. --vdev=net_tap0",
                    ))
                }
                1 => 0,
                n => {
                    return Err(bad(
                        "--dpdk-port",
                        format!("the EAL has {n} ports; say which one the client uses"),
                    ))
                }
            },
        };
        let dev = dpdk::device_info(port_id).map_err(setup_err)?;
        let caps = ChecksumCaps {
            rx_ipv4: dev.checksum.rx_ipv4,
            rx_udp: dev.checksum.rx_udp,
        };
        let checksum = o
            .checksum
            .resolve("--checksum", &dev.name, &dev.driver, caps)
            .map_err(LoadError::Invalid)?;
        let pool = Mempool::new("bypass_load_pool", POOL_SIZE, POOL_CACHE, DATA_ROOM, -1)
            .map_err(setup_err)?;
        // Requests are built whole in software (emit_udp_frame fills both checksums): tx
        // offload would add per-packet flags and lengths to save one 20-byte header sum.
        let pcfg = PortConfig {
            rx_desc: RING_DESC,
            tx_desc: RING_DESC,
            rss: false,
            rx_checksum_offload: checksum.resolved == ChecksumPolicy::Offload,
            ..PortConfig::default()
        };
        let mut port = Port::configure(port_id, &pcfg, &pool).map_err(setup_err)?;
        let (Some(rx), Some(tx)) = (port.take_rx(0), port.take_tx(0)) else {
            return Err(setup_err("queue 0 missing after configure"));
        };
        let port_name = port.name().to_string();
        if let Err(e) = port.start() {
            let hint = if port.driver() == "net_memif" {
                " (a net_memif client needs its server running: is the socket path right?)"
            } else {
                ""
            };
            return Err(setup_err(format!("starting {port_name}: {e}{hint}")));
        }
        let start = Instant::now();
        while !port.link().up {
            if start.elapsed() > LINK_WAIT {
                return Err(setup_err(format!(
                    "the link of {port_name} did not come up within {} s (is the peer running? a net_memif client needs its server)",
                    LINK_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let zero_copy =
            port.driver() == "net_memif" && o.eal.iter().any(|a| dpdk::is_zero_copy_memif_arg(a));
        if zero_copy {
            dpdk::reserve_closed_memseg_fds()
                .map_err(|e| setup_err(format!("guarding the memseg fds of {port_name}: {e}")))?;
        }
        let client_port = 49_152 + (std::process::id() % 16_384) as u16;
        let ep = UdpEndpoints {
            src_mac: MacAddress(port.mac()),
            dst_mac: o.server_mac.unwrap_or(MacAddress::BROADCAST),
            src_ip: o.client_ip.into(),
            dst_ip: server_ip.into(),
            src_port: client_port,
            dst_port: server_addr.port(),
        };
        let mut t = DpdkTransport {
            peer: Peer::new(ep, checksum.resolved),
            checksum,
            rx,
            tx,
            rx_burst: Vec::with_capacity(RX_BURST),
            rx_next: 0,
            rx_stamp: 0,
            tx_burst: Vec::with_capacity(1),
            stats: Stats::default(),
            zero_copy,
            port_name,
            port: Some(port),
            pool,
            _eal: eal,
        };
        let replicas = cfg.replica_addrs();
        if replicas.len() > 1 {
            t.peer.replica_ports = replicas.iter().map(|a| a.port()).collect();
        }
        let how = match o.server_mac {
            Some(_) => "--server-mac",
            None => {
                t.peer.ep.dst_mac = t.resolve()?;
                "ARP"
            }
        };
        eprintln!(
            "bypass load: dpdk port {} ({}), {} {}:{} -> {} {}:{} (server MAC by {how}), checksums {}",
            t.port_name,
            t.port.as_ref().map_or("", |p| p.driver()),
            t.peer.ep.src_mac,
            t.peer.ep.src_ip,
            t.peer.ep.src_port,
            t.peer.ep.dst_mac,
            t.peer.ep.dst_ip,
            t.peer.ep.dst_port,
            t.checksum,
        );
        Ok(t)
    }

    /// Asks who has the server's address until it answers or [`ARP_WAIT`] passes, answering
    /// ARP requests for our own address meanwhile.
    fn resolve(&mut self) -> Result<MacAddress, LoadError> {
        let start = Instant::now();
        let mut next_ask = start;
        loop {
            let now = Instant::now();
            if now.duration_since(start) >= ARP_WAIT {
                return Err(LoadError::Io(format!(
                    "dpdk: no ARP reply from {} within {} s on {}; give the server's MAC with --server-mac",
                    self.peer.ep.dst_ip,
                    ARP_WAIT.as_secs(),
                    self.port_name
                )));
            }
            if now >= next_ask {
                let me = (self.peer.ep.src_mac, self.peer.ep.src_ip);
                let them = (MacAddress::UNSPECIFIED, self.peer.ep.dst_ip);
                // A failed ask is retried at the next turn.
                let _ = self.send_arp(ArpOperation::Request, MacAddress::BROADCAST, me, them);
                next_ask = now + ARP_RETRY;
            }
            if self.rx_next == self.rx_burst.len() {
                self.refill();
                if self.rx_burst.is_empty() {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
            }
            let i = self.rx_next;
            self.rx_next += 1;
            match classify(self.rx_burst.as_slice()[i].data(), &self.peer) {
                Frame::ArpReply { mac, ip } => {
                    self.stats.arp_replies_received += 1;
                    if ip == self.peer.ep.dst_ip {
                        return Ok(mac);
                    }
                }
                Frame::ArpRequest { mac, ip } => {
                    self.answer_arp(mac, ip);
                    // The server asking for us tells us where it is, too.
                    if ip == self.peer.ep.dst_ip {
                        return Ok(mac);
                    }
                }
                Frame::Rpc { .. } => self.stats.drop(Discard::BeforeArp),
                Frame::Drop(why) => self.stats.drop(why),
            }
        }
    }

    /// Frees the used-up burst and polls for a new one.
    #[inline]
    fn refill(&mut self) -> usize {
        Mbuf::free_all(&mut self.rx_burst);
        self.rx_next = 0;
        let n = self.rx.rx(&mut self.rx_burst);
        self.stats.rx_frames += n as u64;
        if self.peer.policy != ChecksumPolicy::Offload || n == 0 {
            return n;
        }
        self.peer.sums = offload_verdicts(&mut self.rx_burst, &mut self.stats);
        self.rx_burst.len()
    }

    /// Hands one packet to the port, retrying a bounded number of times while the ring is full.
    #[inline]
    fn transmit(&mut self, m: Mbuf) -> io::Result<()> {
        if let Err(m) = dpdk::push_within(&mut self.tx_burst, m) {
            // Cannot happen: the one-slot burst is emptied before every return.
            drop(m);
            return Err(ErrorKind::Other.into());
        }
        for _ in 0..TX_TRIES {
            if self.tx.tx(&mut self.tx_burst) == 1 {
                self.stats.tx_frames += 1;
                return Ok(());
            }
            std::hint::spin_loop();
        }
        self.tx_burst.clear();
        self.stats.tx_ring_full += 1;
        Err(ErrorKind::WouldBlock.into())
    }

    fn alloc(&mut self) -> io::Result<Mbuf> {
        match self.pool.alloc() {
            Some(m) => Ok(m),
            None => {
                self.stats.tx_no_mbuf += 1;
                Err(ErrorKind::OutOfMemory.into())
            }
        }
    }

    fn send_arp(
        &mut self,
        op: ArpOperation,
        eth_dst: MacAddress,
        src: (MacAddress, Ipv4Address),
        dst: (MacAddress, Ipv4Address),
    ) -> io::Result<()> {
        let mut m = self.alloc()?;
        let Some(buf) = m.append(MIN_FRAME) else {
            return Err(ErrorKind::OutOfMemory.into());
        };
        emit_arp_frame(buf, op, eth_dst, src, dst);
        self.transmit(m)
    }

    /// Tells `mac`/`ip` that our address is at our MAC (a kernel peer asks before it answers).
    fn answer_arp(&mut self, mac: MacAddress, ip: Ipv4Address) {
        let me = (self.peer.ep.src_mac, self.peer.ep.src_ip);
        if self
            .send_arp(ArpOperation::Reply, mac, me, (mac, ip))
            .is_ok()
        {
            self.stats.arp_requests_answered += 1;
        }
    }
}

impl RpcTransport for DpdkTransport {
    fn checksum(&self) -> Option<&ChecksumChoice> {
        Some(&self.checksum)
    }

    #[inline]
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if msg.len() > MAX_MESSAGE.min(MAX_UDP_PAYLOAD) {
            return Err(ErrorKind::InvalidInput.into());
        }
        let mut m = self.alloc()?;
        let Some(buf) = m.append(UDP_HEADERS_LEN + msg.len()) else {
            return Err(ErrorKind::OutOfMemory.into());
        };
        // The length was checked above, so the frame fits exactly.
        if emit_udp_frame(buf, &self.peer.ep, msg).is_err() {
            return Err(ErrorKind::InvalidInput.into());
        }
        self.transmit(m)
    }

    #[inline]
    fn send_to(&mut self, replica: usize, msg: &[u8]) -> io::Result<()> {
        if let Some(&port) = self.peer.replica_ports.get(replica) {
            self.peer.ep.dst_port = port;
        }
        self.send(msg)
    }

    #[inline]
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let (start, len) = self.next_reply(None)?;
            let Some(dst) = buf.get_mut(..len) else {
                self.stats.drop(Discard::TooLong);
                continue;
            };
            let frame = self.rx_burst.as_slice()[self.rx_next - 1].data();
            dst.copy_from_slice(&frame[start..start + len]);
            return Ok(len);
        }
    }

    /// The reply is handed over in its mbuf (no copy), stamped with its burst's arrival.
    #[inline]
    fn recv_with(
        &mut self,
        _buf: &mut [u8],
        clock: &Clock,
        f: &mut dyn FnMut(&[u8], u64),
    ) -> io::Result<()> {
        let (start, len) = self.next_reply(Some(clock))?;
        let frame = self.rx_burst.as_slice()[self.rx_next - 1].data();
        f(&frame[start..start + len], self.rx_stamp);
        Ok(())
    }
}

impl DpdkTransport {
    /// Finds the next RPC reply in the current burst, polling at most one new burst, and
    /// returns where it lies in frame `rx_next - 1`. A new burst is stamped on `clock` the
    /// moment the poll returns, before any frame of it is looked at.
    #[inline]
    fn next_reply(&mut self, clock: Option<&Clock>) -> io::Result<(usize, usize)> {
        let mut polled = false;
        loop {
            if self.rx_next == self.rx_burst.len() {
                // At most one poll per call, so a stream of junk cannot hold the caller here.
                if polled || self.refill() == 0 {
                    return Err(ErrorKind::WouldBlock.into());
                }
                self.rx_stamp = clock.map_or(0, Clock::now_ns_ordered);
                polled = true;
                // A reply's headers and RPC header span two lines (docs/memif.md).
                for m in self.rx_burst.as_slice() {
                    m.prefetch_data(2);
                }
            }
            let i = self.rx_next;
            self.rx_next += 1;
            match classify(self.rx_burst.as_slice()[i].data(), &self.peer) {
                Frame::Rpc { start, len } => {
                    self.stats.replies += 1;
                    return Ok((start, len));
                }
                Frame::ArpRequest { mac, ip } => self.answer_arp(mac, ip),
                Frame::ArpReply { .. } => self.stats.arp_replies_received += 1,
                Frame::Drop(why) => self.stats.drop(why),
            }
        }
    }
}

impl std::ops::Drop for DpdkTransport {
    fn drop(&mut self) {
        self.rx_burst.clear();
        self.tx_burst.clear();
        // Closing the port returns what its rings held (net_tap keeps its rx ring filled), so
        // the count of buffers still out comes after it.
        if let Some(mut port) = self.port.take() {
            if let Err(e) = port.stop() {
                eprintln!("bypass load: dpdk: stopping {}: {e}", self.port_name);
            }
            drop(port);
        }
        eprintln!(
            "dpdk: {}",
            self.stats.json(&self.port_name, &self.checksum, &self.pool)
        );
        if self.zero_copy && self.pool.in_use() > 0 {
            eprintln!(
                "bypass load: dpdk: the {} buffers still in use are the zero-copy rx ring's: net_memif (DPDK 22.11) posts them to the peer and does not free them when the port closes; they go with the process",
                self.pool.in_use()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::emit_request_frame;
    use crate::wire::rpc::HEADER_LEN;
    use crate::wire::rpc::{RpcMethod, RpcRepr};

    fn ep() -> UdpEndpoints {
        UdpEndpoints {
            src_mac: MacAddress([2, 0, 0, 0, 0, 2]),
            dst_mac: MacAddress([2, 0, 0, 0, 0, 1]),
            src_ip: Ipv4Address([198, 18, 0, 2]),
            dst_ip: Ipv4Address([198, 18, 0, 1]),
            src_port: 50_000,
            dst_port: 7777,
        }
    }

    fn verify() -> Peer {
        Peer::new(ep(), ChecksumPolicy::Verify)
    }

    fn reply(payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let repr = RpcRepr::request(RpcMethod::Echo, 7, 9, payload.len() as u32);
        let n = emit_request_frame(&mut buf, &ep().reversed(), &repr, payload).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn reason_names_line_up_with_counters() {
        for (i, d) in Discard::ALL.iter().enumerate() {
            assert_eq!(usize::from(*d), i);
            assert_eq!(d.name(), Discard::NAMES[i]);
        }
        // The counter names of the closing `dpdk:` line, which readers of stderr key on.
        assert_eq!(
            Discard::NAMES,
            [
                "malformed",
                "wrong-mac",
                "not-ipv4",
                "arp-other",
                "bad-ip-checksum",
                "wrong-ip",
                "fragment",
                "not-udp",
                "bad-udp-checksum",
                "wrong-port",
                "too-long",
                "before-arp",
            ]
        );
    }

    #[test]
    fn reply_is_found_at_its_offset() {
        let f = reply(b"abcdef");
        assert_eq!(
            classify(&f, &verify()),
            Frame::Rpc {
                start: UDP_HEADERS_LEN,
                len: HEADER_LEN + 6
            }
        );
        // Ethernet padding after the datagram is not part of the message.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0u8; 20]);
        assert_eq!(classify(&padded, &verify()), classify(&f, &verify()));
    }

    #[test]
    fn every_reason_is_counted() {
        let good = reply(b"x");
        let case = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut f = good.clone();
            edit(&mut f);
            classify(&f, &verify())
        };
        assert_eq!(case(&|f| f[0] = 0x04), Frame::Drop(Discard::WrongMac));
        assert_eq!(
            case(&|f| f[0..6].fill(0xff)),
            Frame::Drop(Discard::WrongMac)
        );
        assert_eq!(case(&|f| f[12] = 0x86), Frame::Drop(Discard::NotIpv4));
        assert_eq!(
            case(&|f| f[14 + 10] ^= 1),
            Frame::Drop(Discard::BadIpChecksum)
        );
        // Changing an address fixes up nothing: fix the IP checksum so the address check runs.
        let readdress = |f: &mut Vec<u8>, at: usize| {
            f[at] ^= 1;
            let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
            ip.fill_checksum();
        };
        assert_eq!(
            case(&|f| readdress(f, 14 + 15)),
            Frame::Drop(Discard::WrongIp)
        );
        assert_eq!(
            case(&|f| readdress(f, 14 + 19)),
            Frame::Drop(Discard::WrongIp)
        );
        assert_eq!(
            case(&|f| readdress(f, 14 + 9)),
            Frame::Drop(Discard::NotUdp)
        );
        assert_eq!(
            case(&|f| readdress(f, 14 + 7)),
            Frame::Drop(Discard::Fragment)
        );
        assert_eq!(case(&|f| f[34 + 3] ^= 1), Frame::Drop(Discard::WrongPort));
        assert_eq!(case(&|f| f[34 + 1] ^= 1), Frame::Drop(Discard::WrongPort));
        assert_eq!(case(&|f| f[50] ^= 1), Frame::Drop(Discard::BadUdpChecksum));
        // A zero UDP checksum means "none" over IPv4 and is accepted.
        assert!(matches!(case(&|f| f[40..42].fill(0)), Frame::Rpc { .. }));
        for n in 0..good.len() - 1 {
            assert!(
                matches!(
                    classify(&good[..n], &verify()),
                    Frame::Drop(Discard::Malformed)
                ),
                "truncated to {n}"
            );
        }
    }

    #[test]
    fn arp_for_us_and_not() {
        let them = (MacAddress([2, 0, 0, 0, 0, 1]), Ipv4Address([198, 18, 0, 1]));
        let mut f = [0u8; MIN_FRAME];
        let us = (MacAddress::UNSPECIFIED, ep().src_ip);
        emit_arp_frame(
            &mut f,
            ArpOperation::Request,
            MacAddress::BROADCAST,
            them,
            us,
        );
        assert_eq!(
            classify(&f, &verify()),
            Frame::ArpRequest {
                mac: them.0,
                ip: them.1
            }
        );
        let other = (MacAddress::UNSPECIFIED, Ipv4Address([198, 18, 0, 9]));
        emit_arp_frame(
            &mut f,
            ArpOperation::Request,
            MacAddress::BROADCAST,
            them,
            other,
        );
        assert_eq!(classify(&f, &verify()), Frame::Drop(Discard::ArpOther));
        let us = (ep().src_mac, ep().src_ip);
        emit_arp_frame(&mut f, ArpOperation::Reply, ep().src_mac, them, us);
        assert_eq!(
            classify(&f, &verify()),
            Frame::ArpReply {
                mac: them.0,
                ip: them.1
            }
        );
        // A broadcast reply is not ours to learn from.
        emit_arp_frame(&mut f, ArpOperation::Reply, MacAddress::BROADCAST, them, us);
        assert_eq!(classify(&f, &verify()), Frame::Drop(Discard::ArpOther));
        let p = ArpPacket::new_checked(&f[14..]).unwrap();
        assert_eq!(p.sender_proto_addr(), them.1);
    }

    #[test]
    fn checksums_are_summed_as_the_policy_says() {
        let good = reply(b"x");
        let mut bad_ip = good.clone();
        bad_ip[14 + 10] ^= 1;
        let mut bad_udp = good.clone();
        bad_udp[50] ^= 1;
        // auto and offload start out verifying: under offload, a burst is skipped only once
        // the NIC has found every frame of it good.
        for policy in [
            ChecksumPolicy::Verify,
            ChecksumPolicy::Offload,
            ChecksumPolicy::Auto,
        ] {
            let p = Peer::new(ep(), policy);
            assert_eq!(classify(&bad_ip, &p), Frame::Drop(Discard::BadIpChecksum));
            assert_eq!(classify(&bad_udp, &p), Frame::Drop(Discard::BadUdpChecksum));
        }
        let trust = Peer::new(ep(), ChecksumPolicy::Trust);
        let offload_good = Peer {
            sums: Sums::Skip,
            ..Peer::new(ep(), ChecksumPolicy::Offload)
        };
        for p in [trust, offload_good] {
            for f in [&bad_ip, &bad_udp, &good] {
                assert!(matches!(classify(f, &p), Frame::Rpc { .. }), "{p:?}");
            }
            // Skipping the sums skips nothing else.
            let mut wrong_port = good.clone();
            wrong_port[34 + 1] ^= 1;
            assert_eq!(classify(&wrong_port, &p), Frame::Drop(Discard::WrongPort));
        }
    }

    #[test]
    fn nic_verdicts_drop_bad_and_skip_only_both_good() {
        use RxCksum::{Bad, Good, None, Unknown};
        assert_eq!(nic_verdict(Bad, Good), Err(Discard::BadIpChecksum));
        assert_eq!(nic_verdict(Bad, Bad), Err(Discard::BadIpChecksum));
        assert_eq!(nic_verdict(Good, Bad), Err(Discard::BadUdpChecksum));
        assert_eq!(nic_verdict(Unknown, Bad), Err(Discard::BadUdpChecksum));
        assert_eq!(nic_verdict(Good, Good), Ok(true));
        for (ip, l4) in [(Good, Unknown), (Unknown, Good), (None, Good), (Good, None)] {
            assert_eq!(nic_verdict(ip, l4), Ok(false), "{ip:?} {l4:?}");
        }
    }
}
