//! `rpc-server`: serves bypass RPC v1 (docs/protocol.md) by rewriting each
//! valid request into its response or error in place.
//!
//! One pass per vector: the TSC is read once when the node starts on a
//! vector (the engine's reading for the cycle counters) and every reply is stamped with that `server_ns` while it is
//! rewritten. The replies leave together when the dispatch ends anyway, so
//! a per-packet TSC read would cost cycles without being more accurate.
//! Only when a `spin`, a service hold or a `transcode` ran in the vector is
//! the clock read again after the pass and the replies restamped (a second
//! pass), so their replies include that work.

use crate::graph::{now_tsc, Node, NodeCtx, PacketBuf, DROP, TX};
use crate::wire::frame::UDP_HEADERS_LEN;
use crate::wire::rpc::{self, RpcHeader, RpcKind, RpcMethod, RpcStatus};
use crate::wire::{UdpFrame, UdpPacket};

use super::kit::{drop_reasons, packet_loop, NodeConfig, PROP_PLAIN_UDP, RPC_SERVER};
use crate::codec::{TranscodeError, Transcoder};
use crate::os::tsc::{ns_to_ticks, TickScale};
use crate::service::ServiceTime;
use std::sync::atomic::{AtomicU64, Ordering};

/// Servers built so far in this process: the seed index of the next one's draws.
static SERVERS_BUILT: AtomicU64 = AtomicU64::new(0);

const NEXTS: &[&str] = &[DROP, TX];
const NEXT_TX: u16 = 1;

/// An error reply: headers only. Also the head every request is read and
/// rewritten through, so that every offset in it is checked at compile
/// time.
const ERROR_FRAME_LEN: usize = UDP_HEADERS_LEN + rpc::HEADER_LEN;
// The version and kind bytes are rewritten as one checksummed word.
const _: () = assert!(rpc::field::KIND == rpc::field::VERSION + 1);

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
        /// A `transcode` in a codec this server will not decode without allocating
        /// (protobuf: docs/codecs.md).
        CodecRefused => "codec-refused",
    }
}

pub struct RpcServer {
    spin_max_ns: u32,
    /// Held for every request answered Ok; this worker's own draws. Always spun: a worker
    /// that slept would stop polling, so `ServeConfig::validate` refuses `hold=sleep`.
    service: Option<ServiceTime>,
    /// `transcode` in the codecs that need no allocation (JSON, FlatBuffers), with scratch
    /// space allocated once, here.
    transcoder: Transcoder,
    /// The graph's TSC frequency and its multiply-shift: the stamp runs once per vector, and
    /// `ticks_to_ns`'s 128-bit division was a visible share of a one-packet dispatch.
    scale: (u64, TickScale),
}

impl RpcServer {
    pub fn new(cfg: &NodeConfig) -> Self {
        Self {
            spin_max_ns: cfg.spin_max_ns,
            service: cfg.service.map(|m| {
                // Each worker's graph builds its own server: a count keeps their draws apart.
                let n = SERVERS_BUILT.fetch_add(1, Ordering::Relaxed);
                ServiceTime::new(m, ServiceTime::seed_for(u64::from(cfg.rpc_port) << 16 | n))
            }),
            transcoder: Transcoder::allocation_free(),
            scale: (0, TickScale::from_hz(0)),
        }
    }

    /// What to answer a valid request with; spins if asked to.
    #[inline]
    fn execute(
        &mut self,
        method: RpcMethod,
        payload: &[u8],
        tsc_hz: u64,
        late: &mut bool,
    ) -> RpcStatus {
        match rpc::plan_request(method, payload, self.spin_max_ns) {
            Ok(ns) => {
                let ns = ns.saturating_add(self.service.as_mut().map_or(0, ServiceTime::draw_ns));
                spin(ns, tsc_hz);
                *late |= ns != 0;
                RpcStatus::Ok
            }
            Err(status) => status,
        }
    }

    /// Answers one request in place, stamping `server_ns`. Sets `*late`
    /// when work ran after the vector's clock reading (a spin, a service hold,
    /// a transcode), so the caller knows `server_ns` is stale.
    /// `PLAIN`: the vector carries [`PROP_PLAIN_UDP`], so the frame layout
    /// need not be checked again.
    #[inline]
    fn serve<const PLAIN: bool, P: PacketBuf>(
        &mut self,
        p: &mut P,
        tsc_hz: u64,
        server_ns: u32,
        late: &mut bool,
    ) -> Result<u16, RpcDrop> {
        let data = p.data_mut();
        let len = data.len();
        if !PLAIN && UdpFrame::new_checked(&*data).is_err() {
            return Err(RpcDrop::Malformed);
        }
        let method = Self::check_request(data)?;
        let status = match method {
            // The common case needs no payload view; a model holds echoes too.
            RpcMethod::Echo if self.service.is_none() => RpcStatus::Ok,
            RpcMethod::Transcode => {
                let req = RpcHeader::new_unchecked(&data[UDP_HEADERS_LEN..]);
                match self.execute(RpcMethod::Transcode, req.payload(), tsc_hz, late) {
                    RpcStatus::Ok => {
                        // Decoding and encoding are the server's work: its residence.
                        *late = true;
                        return self.transcode(p, server_ns);
                    }
                    status => status,
                }
            }
            method => {
                let req = RpcHeader::new_unchecked(&data[UDP_HEADERS_LEN..]);
                self.execute(method, req.payload(), tsc_hz, late)
            }
        };
        let Some(h) = data.first_chunk_mut::<ERROR_FRAME_LEN>() else {
            return Err(RpcDrop::Truncated);
        };
        // A request carries the residence of the relays it passed (0 from a client): the
        // reply carries that and ours (docs/protocol.md, `server_ns`).
        let server_ns = RpcHeader::new_unchecked(&h[UDP_HEADERS_LEN..])
            .server_ns()
            .saturating_add(server_ns);
        let mut frame = UdpFrame::new_unchecked(h);
        frame.reverse();
        if status == RpcStatus::Ok {
            // Same length as the request: every change is folded into the
            // UDP checksum at once, the payload is never re-summed.
            let version_kind = u16::from_be_bytes([rpc::VERSION, RpcKind::Response.into()]);
            let server_ns_at = rpc::field::SERVER_NS.start;
            frame.set_payload_u16s(
                [
                    rpc::field::VERSION,
                    rpc::field::STATUS.start,
                    server_ns_at,
                    server_ns_at + 2,
                ],
                [
                    version_kind,
                    RpcStatus::Ok.into(),
                    (server_ns >> 16) as u16,
                    server_ns as u16,
                ],
            );
        } else {
            let mut reply = RpcHeader::new_unchecked(frame.payload_mut());
            reply.set_kind(RpcKind::Error);
            reply.set_status(status);
            reply.set_server_ns(server_ns);
            reply.set_length(0);
            p.trim(len - ERROR_FRAME_LEN);
            UdpFrame::new_unchecked(p.data_mut()).set_payload_len(rpc::HEADER_LEN as u16);
        }
        Ok(NEXT_TX)
    }

    /// `transcode` in place: the reply message over the request's, within the request's own
    /// size (a reply is never larger than its request); the frame is then cut to the reply
    /// and its lengths and checksums set. A malformed message gets status 3; a codec that
    /// would allocate is a counted drop.
    #[inline]
    fn transcode<P: PacketBuf>(&mut self, p: &mut P, server_ns: u32) -> Result<u16, RpcDrop> {
        let data = p.data_mut();
        let len = data.len();
        // The reply may fill the request's datagram, not the Ethernet padding after it.
        let dgram = usize::from(UdpFrame::new_unchecked(&*data).udp().len());
        let room = dgram.saturating_sub(UdpPacket::<&[u8]>::HEADER_LEN + rpc::HEADER_LEN);
        let Some((head, body)) = data.split_first_chunk_mut::<ERROR_FRAME_LEN>() else {
            return Err(RpcDrop::Truncated);
        };
        let end = room.min(body.len());
        let body = &mut body[..end];
        let req_len = RpcHeader::new_unchecked(&head[UDP_HEADERS_LEN..]).length() as usize;
        let (status, reply_len) = match self.transcoder.transcode(body, req_len) {
            Ok(n) => (RpcStatus::Ok, n),
            Err(TranscodeError::Refused(_)) => return Err(RpcDrop::CodecRefused),
            Err(_) => (RpcStatus::BadArgument, 0),
        };
        let mut frame = UdpFrame::new_unchecked(&mut head[..]);
        frame.reverse();
        let mut reply = RpcHeader::new_unchecked(frame.payload_mut());
        let server_ns = reply.server_ns().saturating_add(server_ns);
        reply.set_kind(if status == RpcStatus::Ok {
            RpcKind::Response
        } else {
            RpcKind::Error
        });
        reply.set_status(status);
        reply.set_server_ns(server_ns);
        reply.set_length(reply_len as u32);
        p.trim(len - ERROR_FRAME_LEN - reply_len);
        // Sums the new payload again when the request carried a UDP checksum.
        UdpFrame::new_unchecked(p.data_mut()).set_payload_len((rpc::HEADER_LEN + reply_len) as u16);
        Ok(NEXT_TX)
    }

    /// The method of a valid request in a plain UDP frame, read through
    /// the fixed-size head.
    #[inline(always)]
    fn check_request(data: &[u8]) -> Result<RpcMethod, RpcDrop> {
        let Some(h) = data.first_chunk::<ERROR_FRAME_LEN>() else {
            return Err(RpcDrop::Truncated);
        };
        let frame = UdpFrame::new_unchecked(h);
        let req = RpcHeader::new_unchecked(frame.payload());
        if req.magic() != rpc::MAGIC {
            return Err(RpcDrop::BadMagic);
        }
        if req.version() != rpc::VERSION {
            return Err(RpcDrop::BadVersion);
        }
        if req.kind() != RpcKind::Request {
            return Err(RpcDrop::NotRequest);
        }
        if req.length() as usize > data.len() - ERROR_FRAME_LEN {
            return Err(RpcDrop::BadLength);
        }
        Ok(req.method())
    }
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
        if self.scale.0 != tsc_hz {
            self.scale = (tsc_hz, TickScale::from_hz(tsc_hz));
        }
        let scale = self.scale.1;
        let stamp = |now: u64, rx: u64| {
            u32::try_from(scale.ticks_to_ns(now.saturating_sub(rx))).unwrap_or(u32::MAX)
        };
        let server_ns = stamp(ctx.start_tsc(), ctx.rx_tsc());
        let mut late = false;
        // One branch per vector picks the loop; the verdicts are the same.
        if ctx.guaranteed(PROP_PLAIN_UDP) {
            packet_loop(ctx, pkts, nexts, |p| {
                self.serve::<true, P>(p, tsc_hz, server_ns, &mut late)
            });
        } else {
            packet_loop(ctx, pkts, nexts, |p| {
                self.serve::<false, P>(p, tsc_hz, server_ns, &mut late)
            });
        }
        if !late {
            return;
        }
        // Work ran after the clock was read: restamp every reply with a
        // reading taken after all of them, so a spin's or a transcode's reply
        // includes that work and the vector still carries one value.
        let later = stamp(ctx.now_tsc(), ctx.rx_tsc());
        for (p, _) in pkts
            .iter_mut()
            .zip(nexts.iter())
            .filter(|(_, n)| **n == NEXT_TX)
        {
            // Each reply holds its relays' residence plus the first stamp: swap the stamp.
            let mut frame = UdpFrame::new_unchecked(p.data_mut());
            let Some(held) = RpcHeader::new_checked(frame.payload())
                .ok()
                .map(|h| h.server_ns())
            else {
                continue;
            };
            let relays = held.saturating_sub(server_ns);
            frame.set_payload_u32(rpc::field::SERVER_NS.start, relays.saturating_add(later));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::wire::{RpcRepr, UdpEndpoints};

    /// Absolute offsets, for editing requests.
    const RPC_OFF: usize = UDP_HEADERS_LEN;
    const LENGTH: usize = RPC_OFF + rpc::field::LENGTH.start;

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
    fn echo_keeps_trailing_bytes_ignores_status_and_adds_to_server_ns() {
        // length 5 but 3 more bytes in the datagram; a status set by a sloppy client; a
        // server_ns a relay left (its residence), which the reply carries on.
        let mut req = rpc_request(RpcMethod::Echo, 9, b"helloXYZ");
        req[LENGTH + 3] = 5;
        req[RPC_OFF + rpc::field::STATUS.start + 1] = 7;
        req[RPC_OFF + rpc::field::SERVER_NS.start] = 0x55;
        refill_udp_csum(&mut req);
        let r = run(std::slice::from_ref(&req));
        let mut want = response(RpcMethod::Echo, 9, 0x5500_0000, b"helloXYZ");
        want[LENGTH + 3] = 5;
        refill_udp_csum(&mut want);
        assert_eq!(r.pkts[0].data(), &want[..]);
        assert_checksums_ok(r.pkts[0].data(), true);
        // Errors carry it too; the sum saturates.
        let mut bad = rpc_request(RpcMethod::Other(99), 1, b"");
        bad[RPC_OFF + rpc::field::SERVER_NS.start..][..4].copy_from_slice(&u32::MAX.to_be_bytes());
        refill_udp_csum(&mut bad);
        let r = run_node(&mut server(), std::slice::from_ref(&bad), 0);
        assert_eq!(server_ns(r.pkts[0].data()), u32::MAX);
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
    fn a_service_model_holds_echo_and_spin_and_keeps_the_reply() {
        let mut c = cfg();
        c.service = Some("fixed:20us".parse().unwrap());
        let frames = [
            rpc_request(RpcMethod::Echo, 3, b"abc"),
            spin_request(4, 1000),
        ];
        let before = now_tsc();
        let r = run_node(&mut RpcServer::new(&c), &frames, before);
        let after = now_tsc();
        assert_eq!(r.nexts, [NEXT_TX; 2]);
        // Both are held in one vector: 20 + 20 + 1 us at one tick per ns.
        assert!(
            after - before >= 41_000,
            "spun only {} ticks",
            after - before
        );
        let echo_ns = server_ns(r.pkts[0].data());
        let spin_ns = server_ns(r.pkts[1].data());
        assert!(echo_ns >= 20_000, "echo server_ns {echo_ns}");
        assert!(spin_ns >= 41_000, "spin server_ns {spin_ns}");
        assert_eq!(
            r.pkts[0].data(),
            &response(RpcMethod::Echo, 3, echo_ns, b"abc")[..]
        );
        assert_eq!(
            r.pkts[1].data(),
            &response(RpcMethod::Spin, 4, spin_ns, &1000u32.to_be_bytes())[..]
        );
    }

    #[test]
    fn transcode_answers_json_and_flatbuffers_in_place_and_refuses_protobuf() {
        use crate::codec::{ClientCodec, Codec, MessageSize};
        for codec in [Codec::Json, Codec::Flatbuffers] {
            for size in [MessageSize::Small, MessageSize::Medium, MessageSize::Large] {
                let mut cc = ClientCodec::new(codec, size);
                let id = 1234;
                let mut payload = vec![0; cc.request_len_for(id)];
                cc.encode_request(id, &mut payload);
                let r = run(&[rpc_request(RpcMethod::Transcode, id, &payload)]);
                assert_eq!(r.nexts, [NEXT_TX], "{codec} {size}");
                let out = r.pkts[0].data();
                assert_eq!(
                    out.len(),
                    ERROR_FRAME_LEN + cc.reply_len_for(id),
                    "{codec} {size}"
                );
                let h = RpcHeader::new_checked(&out[RPC_OFF..]).unwrap();
                assert_eq!((h.kind(), h.status()), (RpcKind::Response, RpcStatus::Ok));
                assert!(cc.check_reply(id, h.payload()), "{codec} {size}");
                assert_checksums_ok(out, true);
            }
        }
        let mut cc = ClientCodec::new(Codec::Protobuf, MessageSize::Small);
        let mut payload = vec![0; cc.request_len_for(5)];
        cc.encode_request(5, &mut payload);
        only_drop(
            rpc_request(RpcMethod::Transcode, 5, &payload),
            RpcDrop::CodecRefused,
        );
        // Malformed: status 3, trimmed to the header.
        for junk in [&b""[..], b"\x01{\"id\":", b"\x09abc"] {
            let r = run(&[rpc_request(RpcMethod::Transcode, 6, junk)]);
            assert_eq!(
                r.pkts[0].data(),
                &error(RpcMethod::Transcode, 6, RpcStatus::BadArgument, 0)[..]
            );
            assert_checksums_ok(r.pkts[0].data(), true);
        }
    }

    #[test]
    fn a_transcode_reply_includes_the_transcode_in_server_ns() {
        use crate::codec::{ClientCodec, Codec, MessageSize};
        // The vector's clock reading is its rx time, so a reply stamped only with that
        // reading carries 0, and one restamped after the work carries more.
        let at_rx = |frames: &[Vec<u8>]| {
            let mut node = server();
            let mut pkts: Vec<crate::graph::VecBuf> = frames
                .iter()
                .map(|f| crate::graph::VecBuf::from_slice(f))
                .collect();
            let mut nexts = vec![u16::MAX; pkts.len()];
            let mut drops = vec![0u64; RpcDrop::NAMES.len()];
            let rx = now_tsc();
            let mut ctx = NodeCtx::with_start(&mut drops, rx, HZ, rx, 0);
            node.process(&mut ctx, &mut pkts, &mut nexts);
            assert_eq!(nexts, vec![NEXT_TX; frames.len()]);
            pkts
        };
        let echo = rpc_request(RpcMethod::Echo, 1, b"abc");
        assert_eq!(server_ns(at_rx(std::slice::from_ref(&echo))[0].data()), 0);
        let mut cc = ClientCodec::new(Codec::Json, MessageSize::Large);
        let mut payload = vec![0; cc.request_len_for(2)];
        cc.encode_request(2, &mut payload);
        let out = at_rx(&[echo, rpc_request(RpcMethod::Transcode, 2, &payload)]);
        let (e, t) = (server_ns(out[0].data()), server_ns(out[1].data()));
        assert!(t > 0, "the transcode ran after the reading");
        assert_eq!(e, t, "one stamp per vector");
        for p in &out {
            assert_checksums_ok(p.data(), true);
        }
        let h = RpcHeader::new_checked(&out[1].data()[RPC_OFF..]).unwrap();
        assert!(cc.check_reply(2, h.payload()));
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
