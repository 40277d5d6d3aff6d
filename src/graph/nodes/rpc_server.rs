//! `rpc-server`: serves bypass RPC v1 (docs/protocol.md) by rewriting each
//! valid request into its response or error in place.
//!
//! One pass per vector: the TSC is read once when the node starts on a
//! vector (the engine's reading for the cycle counters) and every reply is stamped with that `server_ns` while it is
//! rewritten. The replies leave together when the dispatch ends anyway, so
//! a per-packet TSC read would cost cycles without being more accurate.
//! Only when a `spin` ran in the vector is the clock read again after the
//! pass and the replies restamped (a second pass), so spin replies include
//! their spin.

use crate::graph::{now_tsc, Node, NodeCtx, PacketBuf, DROP, TX};
use crate::wire::rpc::{self, RpcHeader, RpcKind, RpcMethod, RpcStatus};

use crate::wire::checksum;

use super::kit::{drop_reasons, packet_loop, NodeConfig, PROP_PLAIN_UDP, RPC_SERVER};
use super::util::{
    be16, head_mut, ipv4_set_total_len, is_plain_udp, is_plain_udp_head, ns_to_ticks, ticks_to_ns,
    udp_set_len_recompute, udp_set_u32, ETH_LEN, IP_CSUM, IP_SRC, IP_TTL_PROTO, REPLY_TTL,
    UDP_CSUM, UDP_LEN, UDP_OFF, UDP_PAYLOAD_OFF,
};

const NEXTS: &[&str] = &[DROP, TX];
const NEXT_TX: u16 = 1;

const RPC_OFF: usize = UDP_PAYLOAD_OFF;
/// The version/kind byte pair, rewritten as one checksummed word.
const VERSION_KIND: usize = RPC_OFF + 2;
const METHOD: usize = RPC_OFF + 4;
const STATUS: usize = RPC_OFF + 6;
const SERVER_NS: usize = RPC_OFF + 24;
const LENGTH: usize = RPC_OFF + 28;
/// An error reply: headers only.
const ERROR_FRAME_LEN: usize = RPC_OFF + rpc::HEADER_LEN;

drop_reasons! {
    /// Why `rpc-server` dropped a datagram instead of answering it.
    RpcDrop {
        /// Not a plain Ethernet/IPv4/UDP frame; only reachable when the
        /// node is fed without `udp-input` in front of it.
        Malformed => "malformed",
        /// Datagram shorter than the RPC header.
        Truncated => "truncated",
        BadMagic => "bad-magic",
        BadVersion => "bad-version",
        /// A response or error (answering those would let two servers
        /// bounce a message forever), or an unknown kind.
        NotRequest => "not-request",
        /// Header `length` larger than the datagram holds.
        BadLength => "bad-length",
    }
}

pub struct RpcServer {
    spin_max_ns: u32,
}

impl RpcServer {
    pub fn new(cfg: &NodeConfig) -> Self {
        Self {
            spin_max_ns: cfg.spin_max_ns,
        }
    }

    /// What to answer a valid request with; spins if asked to.
    #[inline]
    fn execute(
        &self,
        method: RpcMethod,
        payload: &[u8],
        tsc_hz: u64,
        spun: &mut bool,
    ) -> RpcStatus {
        match rpc::plan_request(method, payload, self.spin_max_ns) {
            Ok(ns) => {
                spin(ns, tsc_hz);
                *spun |= ns != 0;
                RpcStatus::Ok
            }
            Err(status) => status,
        }
    }

    /// Answers one request in place, stamping `server_ns`. Sets `*spun`
    /// when a spin ran, so the caller knows `server_ns` is stale.
    /// `PLAIN`: the vector carries [`PROP_PLAIN_UDP`], so the frame layout
    /// need not be checked again.
    #[inline]
    fn serve<const PLAIN: bool, P: PacketBuf>(
        &self,
        p: &mut P,
        tsc_hz: u64,
        server_ns: u32,
        spun: &mut bool,
    ) -> Result<u16, RpcDrop> {
        let data = p.data_mut();
        let len = data.len();
        let Some(h) = head_mut::<ERROR_FRAME_LEN>(data) else {
            return Err(if PLAIN || is_plain_udp(data) {
                RpcDrop::Truncated
            } else {
                RpcDrop::Malformed
            });
        };
        if !PLAIN && !is_plain_udp_head(h, len) {
            return Err(RpcDrop::Malformed);
        }
        if be16(h, RPC_OFF) != rpc::MAGIC {
            return Err(RpcDrop::BadMagic);
        }
        let old_version_kind = be16(h, VERSION_KIND);
        if (old_version_kind >> 8) as u8 != rpc::VERSION {
            return Err(RpcDrop::BadVersion);
        }
        if RpcKind::from(old_version_kind as u8) != RpcKind::Request {
            return Err(RpcDrop::NotRequest);
        }
        let length = u32::from_be_bytes([h[LENGTH], h[LENGTH + 1], h[LENGTH + 2], h[LENGTH + 3]]);
        if length as usize > len - ERROR_FRAME_LEN {
            return Err(RpcDrop::BadLength);
        }
        let status = match RpcMethod::from(be16(h, METHOD)) {
            RpcMethod::Echo => RpcStatus::Ok,
            method => {
                let req = RpcHeader::new_unchecked(&data[RPC_OFF..]);
                self.execute(method, req.payload(), tsc_hz, spun)
            }
        };
        let Some(h) = head_mut::<ERROR_FRAME_LEN>(data) else {
            return Err(RpcDrop::Truncated);
        };

        reverse_headers(h);
        let version = u16::from(rpc::VERSION) << 8;
        if status == RpcStatus::Ok {
            // Same length as the request: every change is folded into the
            // UDP checksum at once, the payload is never re-summed. Whole
            // native-endian words: version/kind with the (unchanged)
            // method, status with the first half of the (unchanged)
            // request id, and server_ns.
            let new_version_kind = version | u16::from(u8::from(RpcKind::Response));
            let old = [ne32(h, VERSION_KIND), ne32(h, STATUS), ne32(h, SERVER_NS)];
            let new = [
                with_be16(old[0], new_version_kind),
                with_be16(old[1], RpcStatus::Ok.into()),
                u32::from_ne_bytes(server_ns.to_be_bytes()),
            ];
            put_ne32(h, VERSION_KIND, new[0]);
            put_ne32(h, STATUS, new[1]);
            put_ne32(h, SERVER_NS, new[2]);
            let csum = u16::from_ne_bytes([h[UDP_CSUM], h[UDP_CSUM + 1]]);
            if csum != 0 {
                // 0 and 0xffff read the same in either byte order.
                let c = checksum::update_ne32(csum, &old, &new);
                let c = if c == 0 { 0xffff } else { c };
                h[UDP_CSUM..UDP_CSUM + 2].copy_from_slice(&c.to_ne_bytes());
            }
        } else {
            put16(
                h,
                VERSION_KIND,
                version | u16::from(u8::from(RpcKind::Error)),
            );
            put16(h, STATUS, status.into());
            h[SERVER_NS..SERVER_NS + 4].copy_from_slice(&server_ns.to_be_bytes());
            h[LENGTH..LENGTH + 4].fill(0);
            let excess = len - ERROR_FRAME_LEN;
            p.trim(excess);
            let data = p.data_mut();
            ipv4_set_total_len(data, (ERROR_FRAME_LEN - ETH_LEN) as u16);
            udp_set_len_recompute(data, (UDP_LEN + rpc::HEADER_LEN) as u16);
        }
        Ok(NEXT_TX)
    }
}

/// Turns the request's Ethernet, IPv4 and UDP headers around in place:
/// addresses and ports swapped (which leaves both checksums valid), TTL
/// reset with an incremental header-checksum fix. Needs a plain UDP frame.
#[inline(always)]
fn reverse_headers(h: &mut [u8; ERROR_FRAME_LEN]) {
    // Whole-word loads and stores: a swap through a byte array on the
    // stack stalls on store-to-load forwarding, which cost more than the
    // rest of the rewrite together.
    let dst = u64::from_le_bytes(word(h, 0)) & 0xffff_ffff_ffff;
    let src = u64::from_le_bytes(word(h, 4)) >> 16;
    h[..8].copy_from_slice(&(src | (dst << 48)).to_le_bytes());
    h[8..12].copy_from_slice(&((dst >> 16) as u32).to_le_bytes());

    // Rotating the two halves of a word swaps them in either byte order.
    let ips = u64::from_ne_bytes(word(h, IP_SRC)).rotate_left(32);
    h[IP_SRC..IP_SRC + 8].copy_from_slice(&ips.to_ne_bytes());

    let old = u16::from_ne_bytes([h[IP_TTL_PROTO], h[IP_TTL_PROTO + 1]]);
    let new = u16::from_ne_bytes([REPLY_TTL, h[IP_TTL_PROTO + 1]]);
    let csum = u16::from_ne_bytes([h[IP_CSUM], h[IP_CSUM + 1]]);
    let c = checksum::update_ne32(csum, &[u32::from(old)], &[u32::from(new)]);
    h[IP_TTL_PROTO..IP_TTL_PROTO + 2].copy_from_slice(&new.to_ne_bytes());
    h[IP_CSUM..IP_CSUM + 2].copy_from_slice(&c.to_ne_bytes());

    let ports = u32::from_ne_bytes([h[UDP_OFF], h[UDP_OFF + 1], h[UDP_OFF + 2], h[UDP_OFF + 3]]);
    h[UDP_OFF..UDP_OFF + 4].copy_from_slice(&ports.rotate_left(16).to_ne_bytes());
}

/// The 8 bytes at `off` of a fixed-size header.
#[inline(always)]
fn word<const N: usize>(h: &[u8; N], off: usize) -> [u8; 8] {
    let mut w = [0; 8];
    w.copy_from_slice(&h[off..off + 8]);
    w
}

/// Native-endian u32 at a constant (even) offset, for checksum updates.
#[inline(always)]
fn ne32<const N: usize>(h: &[u8; N], off: usize) -> u32 {
    u32::from_ne_bytes([h[off], h[off + 1], h[off + 2], h[off + 3]])
}

#[inline(always)]
fn put_ne32<const N: usize>(h: &mut [u8; N], off: usize, v: u32) {
    h[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

/// The native-endian word `w` with its first two bytes (in memory order)
/// replaced by the big-endian `v`.
#[inline(always)]
fn with_be16(w: u32, v: u16) -> u32 {
    let mut b = w.to_ne_bytes();
    b[..2].copy_from_slice(&v.to_be_bytes());
    u32::from_ne_bytes(b)
}

#[inline(always)]
fn put16<const N: usize>(h: &mut [u8; N], off: usize, v: u16) {
    h[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Busy-waits `ns` nanoseconds on the TSC. No sleep or yield: the point of
/// the method is to hold the core like a real request handler would.
#[inline]
fn spin(ns: u32, tsc_hz: u64) {
    if ns == 0 {
        return;
    }
    let deadline = now_tsc().saturating_add(ns_to_ticks(u64::from(ns), tsc_hz));
    while now_tsc() < deadline {
        core::hint::spin_loop();
    }
}

impl<P: PacketBuf> Node<P> for RpcServer {
    fn name(&self) -> &'static str {
        RPC_SERVER
    }

    fn next_nodes(&self) -> &'static [&'static str] {
        NEXTS
    }

    fn drop_reasons(&self) -> &'static [&'static str] {
        RpcDrop::NAMES
    }

    fn process(&mut self, ctx: &mut NodeCtx<'_>, pkts: &mut [P], nexts: &mut [u16]) {
        let tsc_hz = ctx.tsc_hz();
        let stamp = |now: u64, rx: u64| {
            u32::try_from(ticks_to_ns(now.saturating_sub(rx), tsc_hz)).unwrap_or(u32::MAX)
        };
        let server_ns = stamp(ctx.start_tsc(), ctx.rx_tsc());
        let mut spun = false;
        // One branch per vector picks the loop; the verdicts are the same.
        if ctx.guaranteed(PROP_PLAIN_UDP) {
            packet_loop(ctx, pkts, nexts, |p| {
                self.serve::<true, P>(p, tsc_hz, server_ns, &mut spun)
            });
        } else {
            packet_loop(ctx, pkts, nexts, |p| {
                self.serve::<false, P>(p, tsc_hz, server_ns, &mut spun)
            });
        }
        if !spun {
            return;
        }
        // A spin ran after the clock was read: restamp every reply with a
        // reading taken after all of them, so spin replies include their
        // spin and the vector still carries one value.
        let server_ns = stamp(ctx.now_tsc(), ctx.rx_tsc());
        for (p, _) in pkts
            .iter_mut()
            .zip(nexts.iter())
            .filter(|(_, n)| **n == NEXT_TX)
        {
            udp_set_u32(p.data_mut(), SERVER_NS, server_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::wire::{RpcRepr, UdpEndpoints};

    fn server() -> RpcServer {
        RpcServer::new(&cfg())
    }

    /// Runs with the rx stamp in the future, so `server_ns` is a
    /// deterministic 0.
    fn run(frames: &[Vec<u8>]) -> Run {
        run_node(&mut server(), frames, u64::MAX)
    }

    fn only_drop(f: Vec<u8>, reason: RpcDrop) {
        let r = run(&[f]);
        assert_eq!(r.nexts, [0], "{reason:?}");
        assert_eq!(r.drops[reason as usize], 1, "{reason:?}");
        assert_eq!(r.drops.iter().sum::<u64>(), 1);
    }

    fn back() -> UdpEndpoints {
        to_us(7777).reversed()
    }

    fn repr(method: RpcMethod, id: u64) -> RpcRepr {
        RpcRepr::request(method, id, 1_000_000_007 + id, 0)
    }

    fn response(method: RpcMethod, id: u64, server_ns: u32, payload: &[u8]) -> Vec<u8> {
        let r = RpcRepr {
            kind: RpcKind::Response,
            server_ns,
            ..repr(method, id)
        };
        rpc_frame_ep(&back(), &r, payload)
    }

    fn error(method: RpcMethod, id: u64, status: RpcStatus, server_ns: u32) -> Vec<u8> {
        let r = RpcRepr {
            kind: RpcKind::Error,
            status,
            server_ns,
            ..repr(method, id)
        };
        rpc_frame_ep(&back(), &r, b"")
    }

    fn server_ns(f: &[u8]) -> u32 {
        RpcHeader::new_checked(&f[RPC_OFF..]).unwrap().server_ns()
    }

    #[test]
    fn echo_byte_exact() {
        for payload in [&b""[..], b"hello", &[0xa5; 1400]] {
            let mut req = rpc_request(RpcMethod::Echo, 42, payload);
            // A TTL other than 64, to see it reset.
            req[22] = 3;
            refill_ip_csum(&mut req);
            let r = run(std::slice::from_ref(&req));
            assert_eq!(r.nexts, [NEXT_TX]);
            assert_eq!(
                r.pkts[0].data(),
                &response(RpcMethod::Echo, 42, 0, payload)[..]
            );
            assert_checksums_ok(r.pkts[0].data(), true);
            assert_eq!(r.pkts[0].len(), req.len());
        }
    }

    #[test]
    fn echo_keeps_trailing_bytes_and_ignores_request_server_fields() {
        // length 5 but 3 more bytes in the datagram; status/server_ns set
        // by a sloppy client.
        let mut req = rpc_request(RpcMethod::Echo, 9, b"helloXYZ");
        req[LENGTH + 3] = 5;
        req[STATUS + 1] = 7;
        req[SERVER_NS] = 0x55;
        refill_udp_csum(&mut req);
        let r = run(std::slice::from_ref(&req));
        let mut want = response(RpcMethod::Echo, 9, 0, b"helloXYZ");
        want[LENGTH + 3] = 5;
        refill_udp_csum(&mut want);
        assert_eq!(r.pkts[0].data(), &want[..]);
        assert_checksums_ok(r.pkts[0].data(), true);
    }

    #[test]
    fn spin_waits_then_echoes_its_argument() {
        let req = spin_request(5, 1000);
        let before = now_tsc();
        let r = run_node(&mut server(), std::slice::from_ref(&req), before);
        let after = now_tsc();
        assert_eq!(r.nexts, [NEXT_TX]);
        let out = r.pkts[0].data();
        // HZ is one tick per ns, so the 1000 ns spin is 1000 ticks.
        assert!(after - before >= 1000, "spun only {} ticks", after - before);
        let ns = server_ns(out);
        assert!(ns >= 1000, "server_ns {ns} must include the spin");
        assert_eq!(
            out,
            &response(RpcMethod::Spin, 5, ns, &1000u32.to_be_bytes())[..]
        );
        assert_checksums_ok(out, true);
        assert_eq!(out.len(), req.len());
    }

    #[test]
    fn spin_limits() {
        let mut c = cfg();
        c.spin_max_ns = 2000;
        let frames = [
            spin_request(1, 0),
            spin_request(2, 2000),
            spin_request(3, 2001),
            spin_request(4, u32::MAX),
        ];
        let r = run_node(&mut RpcServer::new(&c), &frames, u64::MAX);
        assert_eq!(r.nexts, [NEXT_TX; 4]);
        assert_eq!(
            r.pkts[0].data(),
            &response(RpcMethod::Spin, 1, 0, &0u32.to_be_bytes())[..]
        );
        assert_eq!(
            r.pkts[1].data(),
            &response(RpcMethod::Spin, 2, 0, &2000u32.to_be_bytes())[..]
        );
        assert_eq!(
            r.pkts[2].data(),
            &error(RpcMethod::Spin, 3, RpcStatus::BadArgument, 0)[..]
        );
        assert_eq!(
            r.pkts[3].data(),
            &error(RpcMethod::Spin, 4, RpcStatus::BadArgument, 0)[..]
        );
        for p in &r.pkts {
            assert_checksums_ok(p.data(), true);
        }
    }

    #[test]
    fn spin_over_default_max_is_refused_without_spinning() {
        let r = run(&[spin_request(8, 1_000_001)]);
        let out = r.pkts[0].data();
        assert_eq!(
            out,
            &error(RpcMethod::Spin, 8, RpcStatus::BadArgument, 0)[..]
        );
        assert_eq!(out.len(), 74);
    }

    #[test]
    fn spin_with_wrong_payload_length() {
        for payload in [&b""[..], b"\0\0\x03", b"\0\0\x03\xe8\0"] {
            let r = run(&[rpc_request(RpcMethod::Spin, 6, payload)]);
            assert_eq!(r.nexts, [NEXT_TX]);
            assert_eq!(
                r.pkts[0].data(),
                &error(RpcMethod::Spin, 6, RpcStatus::BadLength, 0)[..]
            );
            assert_checksums_ok(r.pkts[0].data(), true);
        }
    }

    #[test]
    fn unknown_method_gets_trimmed_error() {
        let method = RpcMethod::Other(7);
        let req = rpc_request(method, 77, &[0x33; 300]);
        let r = run(std::slice::from_ref(&req));
        assert_eq!(r.nexts, [NEXT_TX]);
        let out = r.pkts[0].data();
        assert_eq!(out, &error(method, 77, RpcStatus::UnknownMethod, 0)[..]);
        assert_checksums_ok(out, true);
        assert!(out.len() < req.len());
        let zero = rpc_request(RpcMethod::Other(0), 78, b"");
        let r = run(&[zero]);
        assert_eq!(
            r.pkts[0].data(),
            &error(RpcMethod::Other(0), 78, RpcStatus::UnknownMethod, 0)[..]
        );
    }

    #[test]
    fn zero_udp_checksum_stays_zero() {
        let mut echo = rpc_request(RpcMethod::Echo, 1, b"abc");
        let mut unknown = rpc_request(RpcMethod::Other(9), 2, b"abc");
        echo[40..42].fill(0);
        unknown[40..42].fill(0);
        // rx in the past, so server_ns is non-zero and must not fill it.
        let r = run_node(&mut server(), &[echo, unknown], 0);
        assert_eq!(r.nexts, [NEXT_TX, NEXT_TX]);
        for p in &r.pkts {
            assert_eq!(&p.data()[40..42], &[0, 0]);
            assert_checksums_ok(p.data(), false);
        }
        assert_ne!(server_ns(r.pkts[0].data()), 0);
    }

    #[test]
    fn server_ns_is_one_stamp_per_vector_and_saturates() {
        let frames: Vec<_> = (0..9)
            .map(|i| match i % 3 {
                0 => rpc_request(RpcMethod::Echo, i, b"e"),
                1 => rpc_request(RpcMethod::Other(5), i, b"u"),
                _ => spin_request(i, 10),
            })
            .collect();
        let rx = now_tsc();
        let r = run_node(&mut server(), &frames, rx);
        let stamps: Vec<u32> = r.pkts.iter().map(|p| server_ns(p.data())).collect();
        assert!(
            stamps.iter().all(|&s| s == stamps[0] && s >= 30),
            "{stamps:?}"
        );
        for p in &r.pkts {
            assert_checksums_ok(p.data(), true);
        }
        // 1 Hz: every tick since TSC 0 is a second, far beyond u32 ns.
        let r = run_node_hz(&mut server(), &frames[..1], 0, 1);
        assert_eq!(server_ns(r.pkts[0].data()), u32::MAX);
        assert_checksums_ok(r.pkts[0].data(), true);
    }

    #[test]
    fn invalid_requests_are_dropped() {
        let good = rpc_request(RpcMethod::Echo, 1, b"hello");
        let edit = |at: usize, v: u8| {
            let mut f = good.clone();
            f[at] = v;
            refill_udp_csum(&mut f);
            f
        };
        only_drop(edit(RPC_OFF, 0x52 ^ 0xff), RpcDrop::BadMagic);
        only_drop(edit(RPC_OFF + 1, 0x51), RpcDrop::BadMagic);
        only_drop(edit(RPC_OFF + 2, 0), RpcDrop::BadVersion);
        only_drop(edit(RPC_OFF + 2, 2), RpcDrop::BadVersion);
        for kind in [1, 2, 3, 0xff] {
            only_drop(edit(RPC_OFF + 3, kind), RpcDrop::NotRequest);
        }
        only_drop(edit(LENGTH + 3, 6), RpcDrop::BadLength);
        only_drop(edit(LENGTH, 0x80), RpcDrop::BadLength);
        // 31-byte datagram, and an empty one.
        only_drop(
            udp_frame(&to_us(7777), &good[RPC_OFF..RPC_OFF + 31]),
            RpcDrop::Truncated,
        );
        only_drop(udp_frame(&to_us(7777), b""), RpcDrop::Truncated);
        // Our own response coming back must not be answered.
        let resp = response(RpcMethod::Echo, 1, 0, b"hi");
        only_drop(resp, RpcDrop::NotRequest);
    }

    #[test]
    fn malformed_lower_layers() {
        let mut padded = rpc_request(RpcMethod::Echo, 1, b"");
        padded.extend_from_slice(&[0; 4]);
        only_drop(padded, RpcDrop::Malformed);
        only_drop(icmp_echo_request(&[0; 40]), RpcDrop::Malformed);
        only_drop(vec![0; 10], RpcDrop::Malformed);
    }
}
