//! Request -> reply, shared by every kernel backend: the rules of the fast path's
//! `rpc-server` and `sockperf-echo` nodes, applied to a message already taken off a socket.
//! Replies are built in place in the request's buffer (a reply is never larger than its
//! request, docs/protocol.md), so nothing here allocates. Each thread owns its handler: the
//! service-time draws are that thread's own sequence. A model with `hold=sleep` sleeps its
//! draw (one syscall per held request: this is the kernel baseline, and a waiting service
//! leaving the CPU to other replicas is the point); the thread sets its timer slack for it
//! ([`crate::os::process::set_timer_slack_ns`], in `kernel::spawn`).

use std::time::{Duration, Instant};

use crate::codec::Transcoder;
use crate::service::{Hold, ServiceModel, ServiceTime};
use crate::wire::rpc::{self, RpcHeader, RpcKind, RpcMethod, RpcStatus};
use crate::wire::SockperfHeader;

use super::counters::DropReason;

/// Which protocol a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rpc,
    Sockperf,
}

pub struct Handler {
    spin_max_ns: u32,
    /// Held for every request answered Ok, on top of what `spin` asks for.
    service: Option<ServiceTime>,
    /// `transcode`'s codecs and their preallocated scratch (every codec: a kernel server may
    /// allocate, unlike the fast path).
    transcoder: Transcoder,
}

impl Handler {
    pub fn new(spin_max_ns: u32) -> Handler {
        Handler::with_service(spin_max_ns, None, 0)
    }

    /// A handler that holds every request it answers Ok for a draw from `model`.
    pub fn with_service(spin_max_ns: u32, model: Option<ServiceModel>, seed: u64) -> Handler {
        Handler {
            spin_max_ns,
            service: model.map(|m| ServiceTime::new(m, seed)),
            transcoder: Transcoder::new(),
        }
    }

    /// This handler for worker `index`: the same model on a sequence of its own.
    pub fn for_thread(&self, index: u64) -> Handler {
        Handler {
            spin_max_ns: self.spin_max_ns,
            service: self
                .service
                .map(|s| ServiceTime::new(*s.model(), ServiceTime::seed_for(index))),
            transcoder: Transcoder::new(),
        }
    }

    /// Turns the message in `msg` into its reply, in place; returns the reply's length.
    #[inline]
    pub fn answer(&mut self, proto: Protocol, msg: &mut [u8]) -> Result<usize, DropReason> {
        match proto {
            Protocol::Rpc => self.answer_rpc(msg),
            Protocol::Sockperf => answer_sockperf(msg),
        }
    }

    /// RPC v1: a response is the whole message (trailing bytes of a datagram included), an
    /// error is the 32-byte header alone. `server_ns` keeps the request's (the residence of
    /// the relays it passed, docs/protocol.md), for [`stamp`] to add this server's to.
    #[inline]
    pub fn answer_rpc(&mut self, msg: &mut [u8]) -> Result<usize, DropReason> {
        if msg.len() < rpc::HEADER_LEN {
            return Err(DropReason::Truncated);
        }
        let h = RpcHeader::new_unchecked(&msg[..]);
        if h.magic() != rpc::MAGIC {
            return Err(DropReason::BadMagic);
        }
        if h.version() != rpc::VERSION {
            return Err(DropReason::BadVersion);
        }
        if h.kind() != RpcKind::Request {
            return Err(DropReason::NotRequest);
        }
        if h.length() as usize > msg.len() - rpc::HEADER_LEN {
            return Err(DropReason::BadLength);
        }
        let method = h.method();
        let status = self.execute(method, h.payload());
        if status == RpcStatus::Ok && method == RpcMethod::Transcode {
            return Ok(self.transcode(msg));
        }
        let mut h = RpcHeader::new_unchecked(&mut msg[..]);
        h.set_status(status);
        if status == RpcStatus::Ok {
            h.set_kind(RpcKind::Response);
            Ok(msg.len())
        } else {
            h.set_kind(RpcKind::Error);
            h.set_length(0);
            Ok(rpc::HEADER_LEN)
        }
    }

    /// `transcode`, in place: the reply message over the request's, within the request's own
    /// size (a reply is never larger than its request, so a request shorter than its reply
    /// is refused with status 3, like a malformed message).
    fn transcode(&mut self, msg: &mut [u8]) -> usize {
        let len = RpcHeader::new_unchecked(&msg[..]).length() as usize;
        let (head, body) = msg.split_at_mut(rpc::HEADER_LEN);
        let result = self.transcoder.transcode(body, len);
        let mut h = RpcHeader::new_unchecked(head);
        match result {
            Ok(n) => {
                h.set_status(RpcStatus::Ok);
                h.set_kind(RpcKind::Response);
                h.set_length(n as u32);
                rpc::HEADER_LEN + n
            }
            Err(_) => {
                h.set_status(RpcStatus::BadArgument);
                h.set_kind(RpcKind::Error);
                h.set_length(0);
                rpc::HEADER_LEN
            }
        }
    }

    /// What to answer a valid request with; spins if asked to.
    #[inline]
    fn execute(&mut self, method: RpcMethod, payload: &[u8]) -> RpcStatus {
        match rpc::plan_request(method, payload, self.spin_max_ns) {
            Ok(ns) => {
                match self.service.as_mut() {
                    None => spin(ns),
                    Some(s) => {
                        let held = s.draw_ns();
                        match s.model().hold {
                            Hold::Spin => spin(ns.saturating_add(held)),
                            // `spin` asks for CPU time, so it spins whatever the model does;
                            // only the model's wait sleeps.
                            Hold::Sleep => {
                                spin(ns);
                                sleep(held);
                            }
                        }
                    }
                }
                RpcStatus::Ok
            }
            Err(status) => status,
        }
    }
}

/// sockperf ping-pong: a message with the pong-request bit goes back with the client bit
/// cleared; anything else is consumed without an answer.
#[inline]
pub fn answer_sockperf(msg: &mut [u8]) -> Result<usize, DropReason> {
    let len = msg.len();
    let Ok(mut h) = SockperfHeader::new_checked(msg) else {
        return Err(DropReason::SockperfMalformed);
    };
    if !h.wants_reply() {
        return Err(DropReason::SockperfNoReplyWanted);
    }
    if !h.is_client() {
        return Err(DropReason::SockperfNotClient);
    }
    h.make_reply();
    Ok(len)
}

/// Adds `server_ns` (this hop's residence) to the `server_ns` a message already carries,
/// saturating: a reply built by [`Handler::answer_rpc`] keeps its request's, which relays in
/// front of this server filled in, so the client sees the residence of the whole chain.
#[inline]
pub fn stamp(msg: &mut [u8], server_ns: u32) {
    if msg.len() >= rpc::HEADER_LEN {
        let mut h = RpcHeader::new_unchecked(msg);
        let total = h.server_ns().saturating_add(server_ns);
        h.set_server_ns(total);
    }
}

/// Nanoseconds since `t`, saturating at `u32::MAX` as the protocol says.
#[inline]
pub fn elapsed_ns(t: Instant) -> u32 {
    u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX)
}

/// Busy-waits `ns` nanoseconds: no sleep or yield, the method models a request that holds
/// the core. `Instant` reads the vDSO clock, no syscall.
#[inline]
fn spin(ns: u32) {
    if ns == 0 {
        return;
    }
    let start = Instant::now();
    let d = Duration::from_nanos(u64::from(ns));
    while start.elapsed() < d {
        core::hint::spin_loop();
    }
}

/// Sleeps at least `ns` nanoseconds, leaving the CPU to others: the wake-up latency comes
/// on top, and `server_ns` (measured around the whole answer) shows it.
#[inline]
fn sleep(ns: u32) {
    if ns != 0 {
        std::thread::sleep(Duration::from_nanos(u64::from(ns)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sockperf::{FLAG_CLIENT, FLAG_PONG_REQUEST, FLAG_WARMUP};
    use crate::wire::RpcRepr;

    fn request(method: RpcMethod, id: u64, payload: &[u8]) -> Vec<u8> {
        let r = RpcRepr::request(method, id, 1_000 + id, payload.len() as u32);
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
        v[rpc::HEADER_LEN..].copy_from_slice(payload);
        v
    }

    fn reply(
        kind: RpcKind,
        status: RpcStatus,
        method: RpcMethod,
        id: u64,
        payload: &[u8],
    ) -> Vec<u8> {
        let r = RpcRepr {
            kind,
            status,
            ..RpcRepr::request(method, id, 1_000 + id, payload.len() as u32)
        };
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut RpcHeader::new_unchecked(&mut v[..])).unwrap();
        v[rpc::HEADER_LEN..].copy_from_slice(payload);
        v
    }

    fn h() -> Handler {
        Handler::new(5_000)
    }

    #[test]
    fn echo_returns_the_message() {
        for payload in [&b""[..], b"x", &[0xa5; 1400]] {
            let mut m = request(RpcMethod::Echo, 7, payload);
            let n = h().answer(Protocol::Rpc, &mut m).unwrap();
            assert_eq!(n, m.len());
            let want = reply(
                RpcKind::Response,
                RpcStatus::Ok,
                RpcMethod::Echo,
                7,
                payload,
            );
            assert_eq!(m, want);
        }
    }

    #[test]
    fn trailing_bytes_and_sloppy_fields_and_relay_server_ns_kept() {
        let mut m = request(RpcMethod::Echo, 1, b"hiXY");
        m[31] = 2; // length 2, two trailing bytes
        m[7] = 9; // status
        m[27] = 0x55; // server_ns: relays' residence, kept for `stamp` to add to
        let n = h().answer_rpc(&mut m).unwrap();
        assert_eq!(n, 36);
        let mut want = reply(
            RpcKind::Response,
            RpcStatus::Ok,
            RpcMethod::Echo,
            1,
            b"hiXY",
        );
        want[31] = 2;
        want[27] = 0x55;
        assert_eq!(m, want);
    }

    #[test]
    fn spin_and_its_errors() {
        let mut m = request(RpcMethod::Spin, 2, &3_000u32.to_be_bytes());
        let t = Instant::now();
        assert_eq!(h().answer_rpc(&mut m), Ok(36));
        assert!(t.elapsed() >= Duration::from_nanos(3_000));
        let want = reply(
            RpcKind::Response,
            RpcStatus::Ok,
            RpcMethod::Spin,
            2,
            &3_000u32.to_be_bytes(),
        );
        assert_eq!(m, want);

        let mut m = request(RpcMethod::Spin, 3, &5_001u32.to_be_bytes());
        assert_eq!(h().answer_rpc(&mut m), Ok(32));
        let want = reply(
            RpcKind::Error,
            RpcStatus::BadArgument,
            RpcMethod::Spin,
            3,
            b"",
        );
        assert_eq!(&m[..32], &want[..]);

        for bad in [&b""[..], b"\0\0\x01", b"\0\0\0\x01\0"] {
            let mut m = request(RpcMethod::Spin, 4, bad);
            assert_eq!(h().answer_rpc(&mut m), Ok(32));
            let want = reply(
                RpcKind::Error,
                RpcStatus::BadLength,
                RpcMethod::Spin,
                4,
                b"",
            );
            assert_eq!(&m[..32], &want[..]);
        }
    }

    #[test]
    fn unknown_method_is_an_error_without_payload() {
        let mut m = request(RpcMethod::Other(9), 5, &[1; 100]);
        assert_eq!(h().answer_rpc(&mut m), Ok(32));
        let want = reply(
            RpcKind::Error,
            RpcStatus::UnknownMethod,
            RpcMethod::Other(9),
            5,
            b"",
        );
        assert_eq!(&m[..32], &want[..]);
    }

    #[test]
    fn invalid_messages_are_dropped() {
        let good = request(RpcMethod::Echo, 1, b"hello");
        let edit = |at: usize, v: u8| {
            let mut m = good.clone();
            m[at] = v;
            m
        };
        let cases = [
            (edit(0, 0), DropReason::BadMagic),
            (edit(2, 2), DropReason::BadVersion),
            (edit(3, 1), DropReason::NotRequest),
            (edit(3, 2), DropReason::NotRequest),
            (edit(3, 7), DropReason::NotRequest),
            (edit(31, 6), DropReason::BadLength),
            (good[..31].to_vec(), DropReason::Truncated),
            (Vec::new(), DropReason::Truncated),
        ];
        for (mut m, why) in cases {
            let before = m.clone();
            assert_eq!(h().answer_rpc(&mut m), Err(why));
            assert_eq!(m, before, "a dropped message is left untouched");
        }
    }

    #[test]
    fn stamp_adds_to_the_request_server_ns() {
        let mut m = request(RpcMethod::Echo, 1, b"");
        stamp(&mut m, 0x0102_0300);
        assert_eq!(&m[24..28], &[1, 2, 3, 0]);
        stamp(&mut m, 4);
        assert_eq!(&m[24..28], &[1, 2, 3, 4], "a second hop adds its own");
        stamp(&mut m, u32::MAX);
        assert_eq!(&m[24..28], &[0xff; 4], "saturates");
        stamp(&mut m[..10], 5); // too short: ignored, no panic
        assert!(elapsed_ns(Instant::now()) < u32::MAX);
    }

    fn sockperf(flags: u16, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        let mut s = SockperfHeader::new_unchecked(&mut v[..]);
        s.set_sequence_number(77);
        s.set_flags(flags);
        s.set_message_len(len as u32);
        v
    }

    #[test]
    fn sockperf_rules() {
        let mut m = sockperf(FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP, 64);
        assert_eq!(h().answer(Protocol::Sockperf, &mut m), Ok(64));
        assert_eq!(m, sockperf(FLAG_PONG_REQUEST | FLAG_WARMUP, 64));
        let mut m = sockperf(FLAG_CLIENT, 64);
        assert_eq!(
            answer_sockperf(&mut m),
            Err(DropReason::SockperfNoReplyWanted)
        );
        let mut m = sockperf(FLAG_PONG_REQUEST, 64);
        assert_eq!(answer_sockperf(&mut m), Err(DropReason::SockperfNotClient));
        let mut m = sockperf(FLAG_CLIENT | FLAG_PONG_REQUEST, 14);
        assert_eq!(
            answer_sockperf(&mut m[..13]),
            Err(DropReason::SockperfMalformed)
        );
    }

    #[test]
    fn a_service_model_holds_ok_requests_only() {
        let model = "fixed:300us".parse().unwrap();
        let mut h = Handler::with_service(5_000, Some(model), 1);
        let mut m = request(RpcMethod::Echo, 3, b"abc");
        let t = Instant::now();
        assert_eq!(h.answer_rpc(&mut m), Ok(35));
        assert!(
            t.elapsed() >= Duration::from_micros(300),
            "{:?}",
            t.elapsed()
        );
        // An error is answered at once: the model is the work of a request served, so an
        // error takes no draw.
        let exp = "exp:20us".parse().unwrap();
        let mut h = Handler::with_service(5_000, Some(exp), 1);
        let mut m = request(RpcMethod::Other(9), 4, b"");
        assert_eq!(h.answer_rpc(&mut m), Ok(32));
        let first = ServiceTime::new(exp, 1).draw_ns();
        assert_eq!(h.service.as_mut().unwrap().draw_ns(), first);
        // Threads draw their own sequences from the same model.
        let base = Handler::with_service(5_000, Some(exp), 1);
        let (mut a, mut b) = (base.for_thread(0), base.for_thread(1));
        let draws = |h: &mut Handler| -> Vec<u32> {
            let s = h.service.as_mut().unwrap();
            (0..50).map(|_| s.draw_ns()).collect()
        };
        assert_ne!(draws(&mut a), draws(&mut b));
    }

    /// This thread's CPU time so far, in ns (the first field of its schedstat).
    fn thread_cpu_ns() -> Option<u64> {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        s.split_whitespace().next()?.parse().ok()
    }

    #[test]
    fn a_sleeping_model_holds_without_the_cpu_and_spin_still_spins() {
        let model = "fixed:8ms,hold=sleep".parse().unwrap();
        let mut h = Handler::with_service(50_000_000, Some(model), 1);
        let mut m = request(RpcMethod::Echo, 3, b"abc");
        let (t, cpu) = (Instant::now(), thread_cpu_ns());
        assert_eq!(h.answer_rpc(&mut m), Ok(35));
        let held = t.elapsed();
        assert!(held >= Duration::from_millis(8), "{held:?}");
        // Another process on this CPU can only lower our CPU time, so the bound holds on
        // a busy machine; a spun 8 ms would be far above it on an idle one.
        if let (Some(a), Some(b)) = (cpu, thread_cpu_ns()) {
            let used = Duration::from_nanos(b - a);
            assert!(
                used < Duration::from_millis(3),
                "slept {held:?} on {used:?} of CPU"
            );
        }
        // `spin` is CPU time by definition: it is spun, then the model's draw slept.
        let mut m = request(RpcMethod::Spin, 4, &5_000_000u32.to_be_bytes());
        let t = Instant::now();
        assert_eq!(h.answer_rpc(&mut m), Ok(36));
        assert!(
            t.elapsed() >= Duration::from_millis(13),
            "{:?}",
            t.elapsed()
        );
    }
}
