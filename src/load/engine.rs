//! The measuring loop: sends requests, matches replies to in-flight slots,
//! expires lost requests, records latencies. Single-threaded; nothing on the
//! per-request path allocates.
//!
//! Honest accounting (issue 9): a lost request enters the histograms at the timeout (a
//! censored sample: "at least the timeout"); open-loop requests due before the end of the
//! sending phase are sent even when a stall spans the end, or, past one timeout of catching
//! up, charged as unsent at their age; every open-loop send records its lag behind the
//! schedule; a closed-loop request past its slot deadline frees its window slot.

use std::io::ErrorKind;
use std::time::SystemTime;

use hdrhistogram::Histogram;

use crate::options::WaitMode;
use crate::stats::{new_latency_histogram, HIGHEST_TRACKABLE_NS};
use crate::wire::rpc::{RpcHeader, RpcKind, RpcMethod, RpcRepr, HEADER_LEN};

use super::config::{LoadConfig, LoadModel, RequestMethod};
use super::fanout::Hedger;
use super::report::{CodecRun, Counters, FanoutRun, IntervalHistograms, IntervalRow, Report};
use super::schedule::Schedule;
use super::transport::RpcTransport;
use super::LoadError;
use crate::codec::ClientCodec;
use crate::os::Clock;

const NS_PER_SEC: u64 = 1_000_000_000;
/// Busy mode: replies drained per loop turn before sending is reconsidered.
const RECV_BATCH: usize = 64;
/// Busy closed loop with a full window: empty polls in a row before the loop's own checks.
const SPIN_POLLS: u32 = 1024;
/// Unsent requests charged one by one at the end; beyond this the rest are charged in bulk.
const CHARGE_ONE_BY_ONE: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Empty,
    InFlight,
    Received,
    Lost,
}

/// One request, indexed by `request_id & mask`. Resolved slots keep their id
/// so a later reply is classified as a duplicate or late.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    state: SlotState,
    measured: bool,
    /// Closed loop: past its slot deadline, no longer holding a window slot.
    overdue: bool,
    intended_ns: u64,
    sent_ns: u64,
    /// The replica the first copy went to.
    replica: u16,
    /// When its hedge went out (its `client_ts`); 0: not hedged.
    hedge_ns: u64,
    /// Replies seen: [`FIRST`], [`HEDGE`].
    seen: u8,
}

const FIRST: u8 = 1;
const HEDGE: u8 = 2;

const EMPTY: Slot = Slot {
    id: u64::MAX,
    state: SlotState::Empty,
    measured: false,
    overdue: false,
    intended_ns: 0,
    sent_ns: 0,
    replica: 0,
    hedge_ns: 0,
    seen: 0,
};

/// A logical request of a fan-out or hedged run: its K sub-requests are slots `id x K ..
/// id x K + K - 1`. It resolves when the last of them does, as slow as the slowest.
#[derive(Debug, Clone, Copy)]
struct Logical {
    id: u64,
    remaining: u32,
    measured: bool,
    lost: bool,
    error: bool,
    intended_ns: u64,
    sent_ns: u64,
    /// The slowest answered sub-request: its reply time and server residence.
    last_reply_ns: u64,
    server_ns: u64,
}

const NO_LOGICAL: Logical = Logical {
    id: u64::MAX,
    remaining: 0,
    measured: false,
    lost: false,
    error: false,
    intended_ns: 0,
    sent_ns: 0,
    last_reply_ns: 0,
    server_ns: 0,
};

/// How one sub-request ended.
#[derive(Debug, Clone, Copy)]
enum SubEnd {
    Answered { at: u64, server_ns: u64 },
    Error,
    Lost,
}

/// The fan-out and hedging state (None for plain requests: the engine is then exactly the
/// one-request-per-slot loop).
struct Fan {
    /// K.
    k: u64,
    replicas: u64,
    logical: Vec<Logical>,
    next_logical: u64,
    /// Every measured sub-request's round trip from its intended send, to its first reply
    /// (hedges included); lost ones at the timeout.
    sub: Histogram<u64>,
    /// Measured first copies sent.
    firsts: u64,
    hedger: Option<Hedger>,
    /// Lowest slot id that may still need a hedge.
    oldest_unhedged: u64,
    /// Hedged sub-requests answered once, whose other copy's reply may still come: the run
    /// waits for them (up to its hard end) so wasted replies are counted whole.
    awaiting: u64,
}

/// One reply's figures, recorded into the histograms after the next request is out (off the
/// round trip the client measures).
#[derive(Debug, Clone, Copy)]
struct Sample {
    corrected: u64,
    uncorrected: u64,
    server: u64,
}

/// The current one-second interval.
struct Interval {
    index: u64,
    sent: u64,
    received: u64,
    lost: u64,
    hist: Histogram<u64>,
}

struct Engine<'a> {
    cfg: &'a LoadConfig,
    clock: Clock,
    /// `None` only while `receive` has it out.
    transport: Option<Box<dyn RpcTransport>>,
    /// The method's number on the wire. Kept as the number, not the enum: the optimised enum
    /// compare reads the payload bytes of a payload-less variant, which valgrind reports as a
    /// jump on uninitialised memory on every reply (scripts/valgrind.sh).
    wire_method: u16,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
    slots: Vec<Slot>,
    mask: u64,
    next_id: u64,
    /// Lowest id that may still be in flight.
    oldest: u64,
    /// Lowest id that may still hold its window slot (closed loop).
    oldest_active: u64,
    in_flight: u64,
    /// In flight but past the slot deadline (closed loop): not counted against the window.
    overdue: u64,
    /// Closed loop: a request older than this gives its window slot up.
    slot_deadline_ns: Option<u64>,
    last_send_ns: u64,
    highest_reply: Option<u64>,
    measure_start: u64,
    timeout_ns: u64,
    counters: Counters,
    corrected: Histogram<u64>,
    uncorrected: Histogram<u64>,
    server: Histogram<u64>,
    wire: Histogram<u64>,
    /// Open loop: actual minus intended send time of each measured request.
    send_lag: Histogram<u64>,
    interval: Interval,
    rows: Vec<IntervalRow>,
    interval_hists: IntervalHistograms,
    /// Replies answered but not yet in the histograms; at most [`RECV_BATCH`] (allocated once).
    pending: Vec<Sample>,
    /// Closed loop: the window (in sub-requests). A reply that frees a window slot ends the
    /// receive batch, so the next request goes out at once instead of after one more (empty)
    /// poll.
    window: Option<u64>,
    fan: Option<Fan>,
    /// `transcode`: the client's codec and the time it spends in it.
    codec: Option<Codecs>,
}

/// The client's codec work: each request encoded as it is sent (inside the round trip,
/// which starts at the send stamp), each reply decoded and checked after its arrival stamp
/// (outside it).
struct Codecs {
    client: ClientCodec,
    encode: Histogram<u64>,
    decode: Histogram<u64>,
    bad_replies: u64,
}

/// Runs one measurement over `transport`.
pub fn run(
    cfg: &LoadConfig,
    clock: Clock,
    transport: Box<dyn RpcTransport>,
) -> Result<Report, LoadError> {
    cfg.validate()?;
    let k = u64::from(cfg.shape.fanout);
    // Room for K sub-requests per logical request the plain ring would hold.
    let slots = (cfg.slots()? * k as usize).next_power_of_two();
    let fan = (!cfg.shape.is_plain()).then(|| Fan {
        k,
        replicas: cfg.replica_addrs().len().max(1) as u64,
        logical: vec![NO_LOGICAL; slots],
        next_logical: 0,
        sub: new_latency_histogram(),
        firsts: 0,
        hedger: cfg.shape.hedge.map(Hedger::new),
        oldest_unhedged: 0,
        awaiting: 0,
    });
    let mut send_buf = vec![0u8; HEADER_LEN + cfg.payload_len];
    let wire_method = match cfg.method {
        RequestMethod::Echo => {
            for (i, b) in send_buf[HEADER_LEN..].iter_mut().enumerate() {
                *b = i as u8;
            }
            RpcMethod::Echo
        }
        RequestMethod::Spin { ns } => {
            send_buf[HEADER_LEN..].copy_from_slice(&ns.to_be_bytes());
            RpcMethod::Spin
        }
        RequestMethod::Transcode { .. } => RpcMethod::Transcode,
    };
    let codec = match cfg.method {
        RequestMethod::Transcode { codec, size } => Some(Codecs {
            client: ClientCodec::new(codec, size),
            encode: new_latency_histogram(),
            decode: new_latency_histogram(),
            bad_replies: 0,
        }),
        _ => None,
    };
    let mut e = Engine {
        cfg,
        clock,
        transport: Some(transport),
        wire_method: u16::from(wire_method),
        send_buf,
        recv_buf: vec![0u8; 65_536],
        slots: vec![EMPTY; slots],
        mask: slots as u64 - 1,
        next_id: 0,
        oldest: 0,
        oldest_active: 0,
        in_flight: 0,
        overdue: 0,
        slot_deadline_ns: match cfg.load {
            LoadModel::Closed { .. } => Some(cfg.effective_slot_deadline().as_nanos() as u64),
            LoadModel::Open { .. } => None,
        },
        last_send_ns: 0,
        highest_reply: None,
        measure_start: 0,
        timeout_ns: cfg.timeout.as_nanos() as u64,
        counters: Counters::default(),
        corrected: new_latency_histogram(),
        uncorrected: new_latency_histogram(),
        server: new_latency_histogram(),
        wire: new_latency_histogram(),
        send_lag: new_latency_histogram(),
        interval: Interval {
            index: 0,
            sent: 0,
            received: 0,
            lost: 0,
            hist: new_latency_histogram(),
        },
        rows: Vec::new(),
        interval_hists: IntervalHistograms::default(),
        pending: Vec::with_capacity(RECV_BATCH),
        window: match cfg.load {
            LoadModel::Closed { window } => Some(u64::from(window) * k),
            LoadModel::Open { .. } => None,
        },
        fan,
        codec,
    };
    e.run()
}

impl Engine<'_> {
    fn run(&mut self) -> Result<Report, LoadError> {
        let cfg = self.cfg;
        let start_time = SystemTime::now();
        let t0 = self.clock.now_ns();
        self.measure_start = t0 + cfg.warmup.as_nanos() as u64;
        let send_end = self.measure_start + cfg.send_limit().as_nanos() as u64;
        let mut schedule = match cfg.load {
            LoadModel::Open { rate, arrival, .. } => Some(Schedule::new(rate, arrival, cfg.seed)),
            LoadModel::Closed { .. } => None,
        };
        // In sub-requests: a logical request goes out whole, K at once.
        let k = self.fan.as_ref().map_or(1, |f| f.k);
        let max_in_flight = match cfg.load {
            LoadModel::Closed { window } => u64::from(window) * k,
            LoadModel::Open { max_in_flight, .. } => max_in_flight
                .map_or(self.mask + 1, |m| u64::from(m) * k)
                .min(self.mask + 1),
        };
        // Open loop: requests due before send_end are still sent after it (a stall spanning
        // the end), for at most one timeout; what is left then is charged as unsent.
        let catch_up_end = send_end + self.timeout_ns;
        let mut sending_stopped: Option<u64> = None;
        let mut hard_end = u64::MAX;
        let mut now = t0;
        while now < hard_end {
            self.roll_intervals(now);
            self.expire(now);
            self.hedge(now);
            if sending_stopped.is_none() {
                let due_left = schedule
                    .as_ref()
                    .is_some_and(|s| t0 + s.peek_ns() < send_end);
                let done =
                    self.count_done() || (now >= send_end && !due_left) || now >= catch_up_end;
                if done {
                    if let Some(s) = schedule.as_mut() {
                        self.charge_unsent(s, t0, send_end, now);
                    }
                    let stop = now.min(send_end).max(self.last_send_ns);
                    sending_stopped = Some(stop);
                    // Everything sent is resolved one timeout after the last send.
                    hard_end = now + self.timeout_ns + 50_000_000;
                }
            }
            if sending_stopped.is_none() {
                match schedule.as_mut() {
                    None => self.send_closed(max_in_flight),
                    Some(s) => self.send_open(s, t0, send_end, max_in_flight, now),
                }
            } else if self.in_flight == 0 && self.fan.as_ref().is_none_or(|f| f.awaiting == 0) {
                break;
            }
            // The requests are out: the last replies' figures go in while the next arrive.
            self.record_pending();
            if self.in_flight > 0 || cfg.wait == WaitMode::Busy {
                self.receive(cfg.wait)?;
            }
            now = self.clock.now_ns();
        }
        self.record_pending();
        // Whatever is still outstanding at the hard stop is lost.
        let end = self.clock.now_ns();
        self.expire(u64::MAX);
        self.roll_intervals(end);
        self.close_interval(end, true);
        Ok(self.report(start_time, sending_stopped.unwrap_or(end)))
    }

    fn report(&mut self, start_time: SystemTime, sent_until: u64) -> Report {
        let cfg = self.cfg;
        let measured_ns = sent_until.saturating_sub(self.measure_start);
        let measured_secs = measured_ns as f64 / 1e9;
        let achieved_rate = if measured_secs > 0.0 {
            self.counters.sent as f64 / measured_secs
        } else {
            0.0
        };
        let take = |h: &mut Histogram<u64>| std::mem::replace(h, new_latency_histogram());
        let fanout = self.fan.as_mut().map(|f| FanoutRun {
            sub: take(&mut f.sub),
            hedge: f.hedger.as_ref().map(|h| h.figures(f.firsts)),
        });
        let codec = self.codec.as_mut().map(|c| CodecRun {
            codec: c.client.codec(),
            message: c.client.size(),
            request_bytes: c.client.request_len_for(1) as u64 - 1,
            reply_bytes: c.client.reply_len_for(1) as u64 - 1,
            encode: take(&mut c.encode),
            decode: take(&mut c.decode),
            bad_replies: c.bad_replies,
        });
        Report {
            fanout,
            codec,
            checksum: self.transport.as_ref().and_then(|t| t.checksum().cloned()),
            config: cfg.clone(),
            time_source: self.clock.describe(),
            clock: self.clock,
            start_time,
            target_rate: cfg.target_rate(),
            achieved_rate,
            measured_secs,
            counters: self.counters,
            corrected: take(&mut self.corrected),
            uncorrected: take(&mut self.uncorrected),
            server: take(&mut self.server),
            wire: take(&mut self.wire),
            send_lag: match cfg.load {
                LoadModel::Open { .. } => Some(take(&mut self.send_lag)),
                LoadModel::Closed { .. } => None,
            },
            intervals: std::mem::take(&mut self.rows),
            interval_histograms: std::mem::take(&mut self.interval_hists),
        }
    }

    /// Sub-requests per logical request.
    fn k(&self) -> u64 {
        self.fan.as_ref().map_or(1, |f| f.k)
    }

    /// Closed loop: fills the window (requests past their slot deadline do not count).
    fn send_closed(&mut self, window: u64) {
        let k = self.k();
        while self.in_flight - self.overdue + k <= window && !self.count_done() {
            let now = self.clock.now_ns();
            self.send(now, now);
        }
    }

    /// Open loop: sends every request due by `now` (and before `send_end`) that the
    /// in-flight cap allows, recording each one's lag behind its intended time.
    fn send_open(
        &mut self,
        s: &mut Schedule,
        t0: u64,
        send_end: u64,
        max_in_flight: u64,
        mut now: u64,
    ) {
        let k = self.k();
        while self.in_flight + k <= max_in_flight && !self.count_done() {
            let intended = t0 + s.peek_ns();
            if intended > now || intended >= send_end {
                break;
            }
            s.next_ns();
            now = self.clock.now_ns();
            if intended >= self.measure_start {
                let lag = (now.saturating_sub(intended)).min(HIGHEST_TRACKABLE_NS);
                let _ = self.send_lag.record(lag);
            }
            self.send(intended, now);
        }
    }

    /// The requests due before `send_end` that the catch-up could not send: counted as
    /// `unsent` and recorded in the corrected histogram at their age now (at least the
    /// timeout, since the catch-up lasted that long).
    fn charge_unsent(&mut self, s: &mut Schedule, t0: u64, send_end: u64, now: u64) {
        let limit = self.cfg.count.unwrap_or(u64::MAX);
        let mut charged = 0u64;
        while t0 + s.peek_ns() < send_end && self.counters.sent + self.counters.unsent < limit {
            let intended = t0 + s.next_ns();
            if intended < self.measure_start {
                continue;
            }
            let age = now.saturating_sub(intended).min(HIGHEST_TRACKABLE_NS);
            if charged == CHARGE_ONE_BY_ONE {
                // Absurd backlogs: the rest by the mean gap, all at this (the oldest left) age.
                let rest = ((send_end - intended) as f64 / s.mean_gap_ns()).ceil() as u64;
                let rest = rest.min(limit - self.counters.sent - self.counters.unsent);
                let _ = self.corrected.record_n(age, rest);
                self.counters.unsent += rest;
                return;
            }
            let _ = self.corrected.record(age);
            self.counters.unsent += 1;
            charged += 1;
        }
    }

    fn count_done(&self) -> bool {
        self.cfg.count.is_some_and(|c| self.counters.sent >= c)
    }

    /// Sends one logical request: one slot, or K sub-requests in a row.
    fn send(&mut self, intended_ns: u64, now: u64) {
        let measured = intended_ns >= self.measure_start;
        if measured {
            self.counters.sent += 1;
            self.interval.sent += 1;
        } else {
            self.counters.warmup_sent += 1;
        }
        let Some(f) = self.fan.as_mut() else {
            self.send_sub(0, intended_ns, now, measured);
            return;
        };
        let (k, replicas) = (f.k, f.replicas);
        let l = f.next_logical;
        f.next_logical += 1;
        let li = (l & self.mask) as usize;
        // Its slots are about to be taken, so an older logical request still here has had
        // every sub-request resolved (or is given up below as they wrap).
        f.logical[li] = Logical {
            id: l,
            remaining: k as u32,
            measured,
            intended_ns,
            sent_ns: now,
            ..NO_LOGICAL
        };
        if measured {
            f.firsts += k;
        }
        for j in 0..k {
            let replica = ((l * k + j) % replicas) as u16;
            let at = if j == 0 { now } else { self.clock.now_ns() };
            self.send_sub(replica, intended_ns, at, measured);
        }
    }

    /// Emits the header of request `id` with `client_ts` and sends it to `replica`.
    fn emit_and_send(&mut self, id: u64, client_ts: u64, replica: u16) {
        let len = match self.codec.as_mut() {
            None => self.cfg.payload_len,
            Some(c) => {
                let t0 = self.clock.now_ns();
                // The buffer holds the longest request (the widest id), so this never fails.
                let n = c
                    .client
                    .encode_request(id, &mut self.send_buf[HEADER_LEN..]);
                let t1 = self.clock.now_ns();
                let _ = c
                    .encode
                    .record(t1.saturating_sub(t0).clamp(1, HIGHEST_TRACKABLE_NS));
                n
            }
        };
        let repr = RpcRepr::request(RpcMethod::from(self.wire_method), id, client_ts, len as u32);
        let mut h = RpcHeader::new_unchecked(&mut self.send_buf[..]);
        repr.emit(&mut h)
            .expect("send buffer holds at least a header");
        let msg = &self.send_buf[..HEADER_LEN + len];
        let sent = match self.transport.as_mut() {
            Some(t) => t.send_to(usize::from(replica), msg),
            None => Err(ErrorKind::NotConnected.into()),
        };
        match sent {
            Ok(_) => {}
            // The request stays in flight and times out: loss never stalls the run.
            Err(_) => self.counters.send_errors += 1,
        }
    }

    /// Sends the next slot's request (a plain request or one sub-request).
    fn send_sub(&mut self, replica: u16, intended_ns: u64, now: u64, measured: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let idx = (id & self.mask) as usize;
        let old = self.slots[idx];
        if old.state == SlotState::InFlight {
            // The ring wrapped onto a request still outstanding: give it up.
            self.declare_lost(idx);
        } else if old.state == SlotState::Received && old.hedge_ns != 0 && old.seen != FIRST | HEDGE
        {
            // A hedged pair's loser not back yet: it can no longer be matched (it will count
            // as late), so its waste is counted now.
            if let Some(f) = self.fan.as_mut() {
                f.awaiting = f.awaiting.saturating_sub(1);
                if let Some(h) = f.hedger.as_mut().filter(|_| old.measured) {
                    h.wasted += 1;
                }
            }
        }
        self.last_send_ns = now;
        self.slots[idx] = Slot {
            id,
            state: SlotState::InFlight,
            measured,
            overdue: false,
            intended_ns,
            sent_ns: now,
            replica,
            hedge_ns: 0,
            seen: 0,
        };
        self.in_flight += 1;
        self.emit_and_send(id, now, replica);
    }

    /// Sends the duplicate of every sub-request unanswered past the hedging threshold, to the
    /// next replica. Slots go out in id order under one threshold, so they come due in id
    /// order: walk from the oldest not yet hedged, stop at the first not due.
    fn hedge(&mut self, now: u64) {
        let Some((after, replicas, start)) = self.fan.as_ref().and_then(|f| {
            f.hedger
                .as_ref()
                .map(|h| (h.threshold_ns(), f.replicas, f.oldest_unhedged))
        }) else {
            return;
        };
        let mut id = start.max(self.oldest);
        let mut duplicates = 0;
        while id < self.next_id {
            let idx = (id & self.mask) as usize;
            let slot = self.slots[idx];
            if slot.id == id && slot.state == SlotState::InFlight && slot.hedge_ns == 0 {
                if now < slot.sent_ns.saturating_add(after) {
                    break;
                }
                let replica = ((u64::from(slot.replica) + 1) % replicas) as u16;
                // Its own client_ts tells its reply from the first copy's.
                let at = self.clock.now_ns().max(slot.sent_ns + 1);
                self.slots[idx].hedge_ns = at;
                self.emit_and_send(id, at, replica);
                if slot.measured {
                    duplicates += 1;
                }
            }
            id += 1;
        }
        if let Some(f) = self.fan.as_mut() {
            f.oldest_unhedged = id;
            if let Some(h) = f.hedger.as_mut() {
                h.sent_duplicates(duplicates);
            }
        }
    }

    /// Gives a request up. A measured one enters the histograms at the timeout (plus its
    /// send lag in the corrected one): censored at the timeout, so losses, which cluster in
    /// the largest stalls, are not missing from the tail.
    fn declare_lost(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        slot.state = SlotState::Lost;
        let slot = *slot;
        self.release(slot);
        if self.fan.is_some() {
            self.sub_done(slot, SubEnd::Lost);
            return;
        }
        if slot.measured {
            self.counters.lost += 1;
            self.interval.lost += 1;
            let clamp = |v: u64| v.min(HIGHEST_TRACKABLE_NS);
            let lag = slot.sent_ns.saturating_sub(slot.intended_ns);
            let corrected = clamp(self.timeout_ns.saturating_add(lag));
            let _ = self.corrected.record(corrected);
            let _ = self.interval.hist.record(corrected);
            let _ = self.uncorrected.record(clamp(self.timeout_ns));
        }
    }

    /// A request stops being in flight (answered or lost).
    fn release(&mut self, slot: Slot) {
        self.in_flight -= 1;
        if slot.overdue {
            self.overdue -= 1;
        }
    }

    /// Requests are sent in id order, so they time out in id order: walk
    /// from the oldest and stop at the first one still within its timeout.
    /// Closed loop: likewise for the slot deadline, from the oldest still holding a slot.
    fn expire(&mut self, now: u64) {
        while self.oldest < self.next_id {
            let idx = (self.oldest & self.mask) as usize;
            let slot = self.slots[idx];
            if slot.id == self.oldest && slot.state == SlotState::InFlight {
                if now < slot.sent_ns.saturating_add(self.timeout_ns) {
                    break;
                }
                self.declare_lost(idx);
            }
            self.oldest += 1;
        }
        let Some(deadline) = self.slot_deadline_ns else {
            return;
        };
        self.oldest_active = self.oldest_active.max(self.oldest);
        while self.oldest_active < self.next_id {
            let idx = (self.oldest_active & self.mask) as usize;
            let slot = self.slots[idx];
            if slot.id == self.oldest_active && slot.state == SlotState::InFlight && !slot.overdue {
                if now < slot.sent_ns.saturating_add(deadline) {
                    break;
                }
                self.slots[idx].overdue = true;
                self.overdue += 1;
                if slot.measured {
                    self.counters.slots_given_up += 1;
                }
            }
            self.oldest_active += 1;
        }
    }

    fn receive(&mut self, wait: WaitMode) -> Result<(), LoadError> {
        let batch = match wait {
            WaitMode::Busy => RECV_BATCH,
            WaitMode::Blocking => 1,
        };
        // The transport hands each reply to `on_reply` in place (a DPDK mbuf is not copied);
        // both are moved out for the call so the callback may borrow the engine (two
        // pointer moves, no allocation).
        let Some(mut transport) = self.transport.take() else {
            return Ok(());
        };
        let mut buf = std::mem::take(&mut self.recv_buf);
        let clock = self.clock;
        let mut result = Ok(());
        let mut replies = 0;
        let mut empty_polls = 0;
        let hedging = self.fan.as_ref().is_some_and(|f| f.hedger.is_some());
        while replies < batch {
            // Blocking: one reply, then back to the loop to send the next request; anything
            // else queued is read without sleeping anyway.
            let got = transport.recv_with(&mut buf, &clock, &mut |msg, at| self.on_reply(msg, at));
            let Err(e) = got else {
                replies += 1;
                if self
                    .window
                    .is_some_and(|w| self.in_flight - self.overdue < w)
                {
                    break;
                }
                continue;
            };
            match e.kind() {
                // Busy, closed loop, window full: nothing to send until a reply comes, so poll
                // again at once rather than through the loop's clock and timeout checks (they
                // run at least every SPIN_POLLS polls): the reply is seen sooner.
                // (Not while hedging: a duplicate may fall due any moment.)
                ErrorKind::WouldBlock
                    if wait == WaitMode::Busy
                        && !hedging
                        && empty_polls < SPIN_POLLS
                        && self
                            .window
                            .is_some_and(|w| self.in_flight - self.overdue >= w) =>
                {
                    empty_polls += 1;
                    continue;
                }
                ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {}
                // ICMP port unreachable from an earlier send: the request
                // will time out; keep going.
                ErrorKind::ConnectionRefused => self.counters.send_errors += 1,
                _ => result = Err(LoadError::Io(format!("recv: {e}"))),
            }
            break;
        }
        self.transport = Some(transport);
        self.recv_buf = buf;
        result
    }

    fn on_reply(&mut self, msg: &[u8], now: u64) {
        let Ok(h) = RpcHeader::new_checked(msg) else {
            self.counters.invalid += 1;
            return;
        };
        let kind = h.kind();
        let id = h.request_id();
        if !matches!(kind, RpcKind::Response | RpcKind::Error) || id >= self.next_id {
            self.counters.invalid += 1;
            return;
        }
        let idx = (id & self.mask) as usize;
        let slot = self.slots[idx];
        if slot.id != id {
            // So old its slot was reused: it was given up long ago.
            self.counters.late += 1;
            return;
        }
        let ts = h.client_ts();
        let copy = if ts == slot.sent_ns {
            FIRST
        } else if slot.hedge_ns != 0 && ts == slot.hedge_ns {
            HEDGE
        } else {
            self.counters.invalid += 1;
            return;
        };
        if u16::from(h.method()) != self.wire_method {
            self.counters.invalid += 1;
            return;
        }
        match slot.state {
            SlotState::Empty => {
                self.counters.invalid += 1;
                return;
            }
            SlotState::Received => {
                if slot.seen & copy != 0 {
                    if slot.measured {
                        self.counters.duplicated += 1;
                    }
                    return;
                }
                // The loser of a hedged pair.
                self.slots[idx].seen |= copy;
                if let Some(f) = self.fan.as_mut() {
                    f.awaiting = f.awaiting.saturating_sub(1);
                }
                if let Some(h) = self.fan.as_mut().and_then(|f| f.hedger.as_mut()) {
                    if copy == FIRST {
                        h.first_copy_reply(now.saturating_sub(slot.sent_ns));
                    }
                    if slot.measured {
                        h.wasted += 1;
                    }
                }
                return;
            }
            SlotState::Lost => {
                if slot.measured {
                    self.counters.late += 1;
                }
                return;
            }
            SlotState::InFlight => {}
        }
        if let (Some(c), RpcKind::Response) = (self.codec.as_mut(), kind) {
            let t0 = self.clock.now_ns();
            let good = c.client.check_reply(id, h.payload());
            let t1 = self.clock.now_ns();
            let _ = c
                .decode
                .record(t1.saturating_sub(t0).clamp(1, HIGHEST_TRACKABLE_NS));
            if !good {
                c.bad_replies += 1;
                self.counters.invalid += 1;
                return;
            }
        } else if kind == RpcKind::Response && h.length() as usize != self.cfg.payload_len {
            // Leave it in flight: it times out unless a good reply follows.
            self.counters.invalid += 1;
            return;
        }
        let server_ns = u64::from(h.server_ns());
        self.slots[idx].state = SlotState::Received;
        self.slots[idx].seen |= copy;
        self.release(slot);
        if let Some(high) = self.highest_reply {
            if id < high && slot.measured {
                self.counters.reordered += 1;
            }
        }
        self.highest_reply = Some(self.highest_reply.map_or(id, |h| h.max(id)));
        if let Some(f) = self.fan.as_mut() {
            if slot.hedge_ns != 0 {
                f.awaiting += 1;
            }
        }
        if let Some(h) = self.fan.as_mut().and_then(|f| f.hedger.as_mut()) {
            if copy == FIRST {
                h.first_copy_reply(now.saturating_sub(slot.sent_ns));
            } else if slot.measured {
                h.won += 1;
            }
        }
        if self.fan.is_some() {
            let end = match kind {
                RpcKind::Error => SubEnd::Error,
                _ => SubEnd::Answered { at: now, server_ns },
            };
            self.sub_done(slot, end);
            return;
        }
        if !slot.measured {
            return;
        }
        if kind == RpcKind::Error {
            self.counters.errors += 1;
            return;
        }
        self.received(slot.intended_ns, slot.sent_ns, now, server_ns);
    }

    /// A measured request answered at `at`: counted, its figures held for the histograms.
    fn received(&mut self, intended_ns: u64, sent_ns: u64, at: u64, server_ns: u64) {
        self.counters.received += 1;
        self.interval.received += 1;
        if self.pending.len() == self.pending.capacity() {
            self.record_pending();
        }
        let clamp = |v: u64| v.min(HIGHEST_TRACKABLE_NS);
        self.pending.push(Sample {
            corrected: clamp(at.saturating_sub(intended_ns)),
            uncorrected: clamp(at.saturating_sub(sent_ns)),
            server: clamp(server_ns),
        });
    }

    /// A sub-request resolved: its logical request takes the slowest answer and resolves with
    /// its last sub-request (lost if any was lost, an error if any was one).
    fn sub_done(&mut self, slot: Slot, end: SubEnd) {
        let clamp = |v: u64| v.min(HIGHEST_TRACKABLE_NS);
        let timeout = self.timeout_ns;
        let mask = self.mask;
        let Some(f) = self.fan.as_mut() else {
            return;
        };
        let l = slot.id / f.k;
        let lg = &mut f.logical[(l & mask) as usize];
        if lg.id != l || lg.remaining == 0 {
            return;
        }
        match end {
            SubEnd::Answered { at, server_ns } => {
                if slot.measured {
                    let _ = f.sub.record(clamp(at.saturating_sub(slot.intended_ns)));
                }
                if at >= lg.last_reply_ns {
                    lg.last_reply_ns = at;
                    lg.server_ns = server_ns;
                }
            }
            SubEnd::Error => lg.error = true,
            SubEnd::Lost => {
                if slot.measured {
                    let lag = slot.sent_ns.saturating_sub(slot.intended_ns);
                    let _ = f.sub.record(clamp(timeout.saturating_add(lag)));
                }
                lg.lost = true;
            }
        }
        lg.remaining -= 1;
        if lg.remaining > 0 {
            return;
        }
        let lg = *lg;
        if !lg.measured {
            return;
        }
        if lg.lost {
            self.counters.lost += 1;
            self.interval.lost += 1;
            let lag = lg.sent_ns.saturating_sub(lg.intended_ns);
            let corrected = clamp(timeout.saturating_add(lag));
            let _ = self.corrected.record(corrected);
            let _ = self.interval.hist.record(corrected);
            let _ = self.uncorrected.record(clamp(timeout));
            return;
        }
        if lg.error {
            self.counters.errors += 1;
            return;
        }
        self.received(lg.intended_ns, lg.sent_ns, lg.last_reply_ns, lg.server_ns);
    }

    /// Records the replies' figures held back by [`Self::on_reply`]. Runs before the interval
    /// they were received in closes, so each lands in its own second.
    fn record_pending(&mut self) {
        for s in self.pending.drain(..) {
            // Values are clamped into range, so recording cannot fail.
            let _ = self.corrected.record(s.corrected);
            let _ = self.interval.hist.record(s.corrected);
            let _ = self.uncorrected.record(s.uncorrected);
            let _ = self.server.record(s.server);
            let _ = self.wire.record(s.uncorrected.saturating_sub(s.server));
        }
    }

    fn interval_start(&self, index: u64) -> u64 {
        self.measure_start + index * NS_PER_SEC
    }

    /// Closes every whole second that has ended by `now`.
    fn roll_intervals(&mut self, now: u64) {
        if now >= self.interval_start(self.interval.index + 1) {
            self.record_pending();
        }
        while now >= self.interval_start(self.interval.index + 1) {
            let end = self.interval_start(self.interval.index + 1);
            self.close_interval(end, false);
        }
    }

    fn close_interval(&mut self, end: u64, last: bool) {
        let start = self.interval_start(self.interval.index);
        if end <= start {
            return;
        }
        let length_ns = end - start;
        let iv = &mut self.interval;
        let empty = iv.sent == 0 && iv.received == 0 && iv.lost == 0;
        // A final sliver with nothing in it is not worth a row.
        if !(last && empty && length_ns < NS_PER_SEC / 10) {
            let length_secs = length_ns as f64 / 1e9;
            let h = &iv.hist;
            let at = |p: f64| {
                if h.is_empty() {
                    0
                } else {
                    h.value_at_percentile(p)
                }
            };
            self.rows.push(IntervalRow {
                t: (start - self.measure_start + length_ns) as f64 / 1e9,
                start_secs: (start - self.measure_start) as f64 / 1e9,
                length_secs,
                sent: iv.sent,
                received: iv.received,
                lost: iv.lost,
                rate: iv.sent as f64 / length_secs,
                p50_ns: at(50.0),
                p99_ns: at(99.0),
                p999_ns: at(99.9),
                max_ns: if h.is_empty() { 0 } else { h.max() },
            });
            self.interval_hists.push(&iv.hist);
        }
        iv.index += 1;
        iv.sent = 0;
        iv.received = 0;
        iv.lost = 0;
        iv.hist.reset();
    }
}
