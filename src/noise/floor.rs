//! `bypass floor`: the physical limit of IPC on this machine. Two pinned threads ping-pong a
//! small message through shared memory, one cache-line mailbox (`line`) or a single-producer
//! single-consumer ring of slots (`ring`) each way; the initiator times each round trip with the
//! programs' clock into the same histogram type every path uses.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::contract::load::SummaryFigures;
use crate::contract::platform::{FloorReport, FloorSummary, FloorTag};
use crate::os::Clock;
use crate::stats::{new_latency_histogram, write_percentile_distribution, HlogWriter, Summary};

use super::args::{FloorArgs, FloorConfig, FloorMode, MAX_LINE_SIZE, MAX_RING_SIZE};
use super::cpus;
use super::output::{print_json, write_file};
use super::NoiseError;

/// Round trips before this are not recorded (caches, TLB, the frequency governor).
pub const WARMUP: Duration = Duration::from_millis(200);
/// Slots in each ring.
pub const RING_SLOTS: usize = 16;
const RING_WORDS: usize = MAX_RING_SIZE / 8;
const LINE_WORDS: usize = MAX_LINE_SIZE / 8;
/// A reply later than this after the end of the run means the responder is gone.
const REPLY_GRACE_NS: u64 = 1_000_000_000;

/// Keeps a value on its own cache line so the two sides never share one by accident.
#[repr(align(64))]
struct Padded<T>(T);

fn zeroed<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// One direction of the exchange. Each side keeps its own cursor (what it last consumed).
trait Mailbox: Send + Sync {
    /// False when there is no room (a ring full of unread messages).
    fn send(&self, msg: &[u64]) -> bool;
    fn try_recv(&self, cursor: &mut u64, out: &mut [u64]) -> bool;
}

/// A sequence word and 7 payload words in one cache line: the receiver polls the line the
/// sender writes, nothing else moves.
#[repr(align(64))]
struct Line {
    seq: AtomicU64,
    words: [AtomicU64; LINE_WORDS],
}

impl Mailbox for Line {
    fn send(&self, msg: &[u64]) -> bool {
        for (w, v) in self.words.iter().zip(msg) {
            w.store(*v, Ordering::Relaxed);
        }
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Release);
        true
    }

    fn try_recv(&self, cursor: &mut u64, out: &mut [u64]) -> bool {
        if self.seq.load(Ordering::Acquire) == *cursor {
            return false;
        }
        for (o, w) in out.iter_mut().zip(&self.words) {
            *o = w.load(Ordering::Relaxed);
        }
        *cursor += 1;
        true
    }
}

#[repr(align(64))]
struct Slot([AtomicU64; RING_WORDS]);

/// A single-producer single-consumer ring: the producer publishes `head`, the consumer
/// `tail`, each on its own line; slots are cache-line aligned.
struct Ring {
    head: Padded<AtomicU64>,
    tail: Padded<AtomicU64>,
    slots: [Slot; RING_SLOTS],
}

impl Ring {
    fn new() -> Ring {
        Ring {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            slots: std::array::from_fn(|_| Slot(zeroed())),
        }
    }
}

impl Mailbox for Ring {
    fn send(&self, msg: &[u64]) -> bool {
        let h = self.head.0.load(Ordering::Relaxed);
        if h - self.tail.0.load(Ordering::Acquire) == RING_SLOTS as u64 {
            return false;
        }
        let slot = &self.slots[h as usize % RING_SLOTS].0;
        for (w, v) in slot.iter().zip(msg) {
            w.store(*v, Ordering::Relaxed);
        }
        self.head.0.store(h + 1, Ordering::Release);
        true
    }

    fn try_recv(&self, cursor: &mut u64, out: &mut [u64]) -> bool {
        if self.head.0.load(Ordering::Acquire) == *cursor {
            return false;
        }
        let slot = &self.slots[*cursor as usize % RING_SLOTS].0;
        for (o, w) in out.iter_mut().zip(slot) {
            *o = w.load(Ordering::Relaxed);
        }
        *cursor += 1;
        self.tail.0.store(*cursor, Ordering::Release);
        true
    }
}

/// Buffer slots of a descriptor ring, as in memif's default (`rsize=10`).
const DESC_SLOTS: usize = 1024;
/// Words per buffer: memif's default 2048-byte buffers.
const BUF_WORDS: usize = 256;

/// One descriptor: where the message is and how long; four to a cache line, as memif's
/// 16-byte `memif_desc_t`.
struct Desc {
    words: AtomicU64,
    offset: AtomicU64,
}

/// A descriptor ring the way net_memif lays one out: the producer's `head` and the
/// consumer's `tail` on lines of their own, the descriptors in an array, the message in a
/// buffer the descriptor points to. The consumer's reads depend on each other (head, then
/// the descriptor, then the buffer at its offset), and the producer reads `tail` before it
/// writes, as `eth_memif_tx` does.
struct DescRing {
    head: Padded<AtomicU64>,
    tail: Padded<AtomicU64>,
    desc: Box<[Desc]>,
    bufs: Box<[AtomicU64]>,
}

impl DescRing {
    fn new() -> DescRing {
        DescRing {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            desc: (0..DESC_SLOTS)
                .map(|_| Desc {
                    words: AtomicU64::new(0),
                    offset: AtomicU64::new(0),
                })
                .collect(),
            bufs: (0..DESC_SLOTS * BUF_WORDS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl Mailbox for DescRing {
    fn send(&self, msg: &[u64]) -> bool {
        let h = self.head.0.load(Ordering::Relaxed);
        if h - self.tail.0.load(Ordering::Acquire) == DESC_SLOTS as u64 {
            return false;
        }
        let slot = h as usize % DESC_SLOTS;
        let base = slot * BUF_WORDS;
        for (w, v) in self.bufs[base..base + msg.len()].iter().zip(msg) {
            w.store(*v, Ordering::Relaxed);
        }
        let d = &self.desc[slot];
        d.offset.store(base as u64, Ordering::Relaxed);
        d.words.store(msg.len() as u64, Ordering::Relaxed);
        self.head.0.store(h + 1, Ordering::Release);
        true
    }

    fn try_recv(&self, cursor: &mut u64, out: &mut [u64]) -> bool {
        if self.head.0.load(Ordering::Acquire) == *cursor {
            return false;
        }
        let d = &self.desc[*cursor as usize % DESC_SLOTS];
        let n = (d.words.load(Ordering::Relaxed) as usize).min(out.len());
        // The offset is the producer's and always in range; a bad one reads nothing.
        let base = d.offset.load(Ordering::Relaxed) as usize;
        if let Some(buf) = self.bufs.get(base..base + n) {
            for (o, w) in out.iter_mut().zip(buf) {
                *o = w.load(Ordering::Relaxed);
            }
        }
        *cursor += 1;
        self.tail.0.store(*cursor, Ordering::Release);
        true
    }
}

/// Both directions and the stop flag the initiator raises when it is done.
struct Shared<M> {
    request: M,
    reply: M,
    stop: Padded<AtomicBool>,
}

/// What the initiator measured.
#[derive(Debug, Clone)]
pub struct FloorRun {
    pub hist: Histogram<u64>,
    pub sent: u64,
    pub received: u64,
    /// Replies whose payload was not the request's (a broken exchange, never expected).
    pub invalid: u64,
    pub measured_secs: f64,
}

/// Raises the stop flag however the initiator leaves, so the responder always ends.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

fn respond<M: Mailbox>(sh: &Shared<M>, words: usize) {
    let mut buf = [0u64; RING_WORDS];
    let mut cursor = 0;
    while !sh.stop.0.load(Ordering::Acquire) {
        if sh.request.try_recv(&mut cursor, &mut buf[..words]) {
            while !sh.reply.send(&buf[..words]) {
                std::hint::spin_loop();
            }
        }
    }
}

fn payload(seq: u64, msg: &mut [u64]) {
    for (i, w) in msg.iter_mut().enumerate() {
        *w = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i as u64;
    }
}

/// Waits for one reply; false if the run must end first (a stop request, a responder that
/// could not start, or no reply long after the end). The clock is read only every 4096 empty polls.
fn await_reply<M: Mailbox>(
    sh: &Shared<M>,
    clock: &Clock,
    cursor: &mut u64,
    out: &mut [u64],
    give_up: u64,
) -> bool {
    let mut polls = 0u32;
    while !sh.reply.try_recv(cursor, out) {
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(4096)
            && (crate::os::signal::stop_requested()
                || sh.stop.0.load(Ordering::Acquire)
                || clock.now_ns() > give_up)
        {
            return false;
        }
    }
    true
}

fn initiate<M: Mailbox>(
    sh: &Shared<M>,
    clock: &Clock,
    cfg: &FloorConfig,
    words: usize,
) -> FloorRun {
    let _stop = StopOnDrop(&sh.stop.0);
    let mut run = FloorRun {
        hist: new_latency_histogram(),
        sent: 0,
        received: 0,
        invalid: 0,
        measured_secs: 0.0,
    };
    let (mut msg, mut back) = ([0u64; RING_WORDS], [0u64; RING_WORDS]);
    let (msg, back) = (&mut msg[..words], &mut back[..words]);
    let measure_from = clock.now_ns() + WARMUP.as_nanos() as u64;
    let end = measure_from + cfg.duration.as_nanos() as u64;
    let (mut cursor, mut seq, mut last) = (0u64, 0u64, measure_from);
    while run.sent < cfg.count && !crate::os::signal::stop_requested() {
        seq += 1;
        payload(seq, msg);
        let t0 = clock.now_ns();
        if t0 >= end {
            break;
        }
        while !sh.request.send(msg) {
            std::hint::spin_loop();
        }
        if !await_reply(sh, clock, &mut cursor, back, end + REPLY_GRACE_NS) {
            break;
        }
        let t1 = clock.now_ns();
        if t0 >= measure_from {
            run.sent += 1;
            run.received += 1;
            run.hist.saturating_record(t1 - t0);
            run.invalid += u64::from(back != &*msg);
            last = t1;
        }
    }
    run.measured_secs = last.saturating_sub(measure_from) as f64 / 1e9;
    run
}

fn exchange<M: Mailbox + 'static>(
    shared: Shared<M>,
    clock: Clock,
    cfg: &FloorConfig,
) -> Result<FloorRun, NoiseError> {
    let words = cfg.size.div_ceil(8);
    let sh = Arc::new(shared);
    let responder = {
        let sh = Arc::clone(&sh);
        let cpu = cfg.responder_cpu;
        thread::spawn(move || {
            let pinned = cpus::pin(cpu);
            match pinned {
                Ok(()) => respond(&sh, words),
                // Nobody will answer: tell the initiator instead of letting it wait out the run.
                Err(_) => sh.stop.0.store(true, Ordering::Release),
            }
            pinned
        })
    };
    let cfg2 = cfg.clone();
    let sh2 = Arc::clone(&sh);
    let initiator = thread::spawn(move || {
        let _stop = StopOnDrop(&sh2.stop.0);
        cpus::pin(cfg2.initiator_cpu)?;
        Ok::<FloorRun, NoiseError>(initiate(&sh2, &clock, &cfg2, words))
    });
    let run = initiator
        .join()
        .map_err(|_| NoiseError::Io("the initiator thread panicked".into()))?;
    responder
        .join()
        .map_err(|_| NoiseError::Io("the responder thread panicked".into()))??;
    run
}

/// Runs the ping-pong `cfg` asks for.
pub fn measure(cfg: &FloorConfig, clock: Clock) -> Result<FloorRun, NoiseError> {
    let stop = Padded(AtomicBool::new(false));
    match cfg.mode {
        FloorMode::Line => {
            let line = || Line {
                seq: AtomicU64::new(0),
                words: zeroed(),
            };
            let sh = Shared {
                request: line(),
                reply: line(),
                stop,
            };
            exchange(sh, clock, cfg)
        }
        FloorMode::Ring => {
            let sh = Shared {
                request: Ring::new(),
                reply: Ring::new(),
                stop,
            };
            exchange(sh, clock, cfg)
        }
        FloorMode::Descriptors => {
            let sh = Shared {
                request: DescRing::new(),
                reply: DescRing::new(),
                stop,
            };
            exchange(sh, clock, cfg)
        }
    }
}

/// The `--json` object: the lab's [`FloorReport`] and what else the floor says.
#[derive(Debug, Clone, Serialize)]
pub struct FloorJson {
    #[serde(flatten)]
    pub shared: FloorReport<FloorSummaryJson>,
    pub mode: &'static str,
    pub size: usize,
    /// The initiator's CPU, then the responder's.
    pub cpus: [usize; 2],
    pub time_source: String,
}

/// The `summary`, shaped like `bypass load --json`'s: the lab's [`FloorSummary`] with every
/// figure, and the floor's own count of broken replies.
#[derive(Debug, Clone, Serialize)]
pub struct FloorSummaryJson {
    #[serde(flatten)]
    pub shared: FloorSummary<SummaryFigures>,
    pub invalid: u64,
}

/// The `--json` object of a finished run.
pub fn to_json(cfg: &FloorConfig, run: &FloorRun, time_source: &str) -> FloorJson {
    let summary = FloorSummary {
        latency: SummaryFigures::from(&Summary::from_histogram(&run.hist)),
        sent: run.sent,
        received: run.received,
        lost: run.sent - run.received,
        measured_secs: run.measured_secs,
    };
    FloorJson {
        shared: FloorReport {
            kind: FloorTag::Floor,
            summary: FloorSummaryJson {
                shared: summary,
                invalid: run.invalid,
            },
        },
        mode: cfg.mode.name(),
        size: cfg.size,
        cpus: [cfg.initiator_cpu, cfg.responder_cpu],
        time_source: time_source.to_string(),
    }
}

fn describe(cfg: &FloorConfig) -> String {
    format!(
        "{} mode, {} B, cpu {} (initiator) <-> cpu {} (responder)",
        cfg.mode.name(),
        cfg.size,
        cfg.initiator_cpu,
        cfg.responder_cpu
    )
}

fn write_outputs(
    args: &FloorArgs,
    cfg: &FloorConfig,
    run: &FloorRun,
    started: SystemTime,
    time_source: &str,
) -> Result<(), NoiseError> {
    if let Some(p) = &args.hgrm {
        write_file(p, |w| {
            write_percentile_distribution(&run.hist, w, 5, 1000.0)
        })?;
    }
    if let Some(p) = &args.hlog {
        write_file(p, |w| {
            let mut log = HlogWriter::new(w, started)?;
            log.write_comment(&format!(
                "bypass floor: {}; round trip, ns; time source: {time_source}",
                describe(cfg)
            ))?;
            log.write_interval(None, WARMUP.as_secs_f64(), run.measured_secs, &run.hist)?;
            log.flush()
        })?;
    }
    Ok(())
}

/// The `bypass floor` command.
pub fn run(args: &FloorArgs) -> Result<(), NoiseError> {
    let cfg = args.to_config()?;
    crate::os::signal::install_stop_handlers()
        .map_err(|e| NoiseError::Io(format!("signals: {e}")))?;
    let clock = Clock::new();
    let started = SystemTime::now();
    let run = measure(&cfg, clock)?;
    let time_source = clock.describe();
    write_outputs(args, &cfg, &run, started, &time_source)?;
    if run.invalid > 0 {
        return Err(NoiseError::Io(format!(
            "{} replies did not carry their request's payload",
            run.invalid
        )));
    }
    if args.json {
        return print_json(&to_json(&cfg, &run, &time_source));
    }
    println!("bypass floor: {}", describe(&cfg));
    println!("time source: {time_source}");
    println!(
        "measured: {:.3} s after {:.1} s warmup, {} round trips\n",
        run.measured_secs,
        WARMUP.as_secs_f64(),
        run.received
    );
    print!("{}", Summary::from_histogram(&run.hist).to_table());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message comes out as it went in, in order, across many wraps of each layout; a
    /// full ring refuses the next message until one is consumed.
    fn exchanges_in_order<M: Mailbox>(m: &M, slots: usize) {
        let mut cursor = 0;
        let mut out = [0u64; RING_WORDS];
        for seq in 0..(3 * slots as u64 + 5) {
            let mut msg = [0u64; 4];
            payload(seq, &mut msg);
            assert!(m.send(&msg));
            assert!(m.try_recv(&mut cursor, &mut out[..4]));
            assert_eq!(out[..4], msg, "message {seq}");
            assert!(
                !m.try_recv(&mut cursor, &mut out[..4]),
                "nothing else queued"
            );
        }
        for _ in 0..slots {
            assert!(m.send(&[1, 2]));
        }
        assert!(!m.send(&[3]), "a full ring refuses");
        assert!(m.try_recv(&mut cursor, &mut out[..2]));
        assert_eq!(out[..2], [1, 2]);
        assert!(m.send(&[3]));
    }

    #[test]
    fn rings_pass_messages_in_order_and_refuse_when_full() {
        exchanges_in_order(&Ring::new(), RING_SLOTS);
        exchanges_in_order(&DescRing::new(), DESC_SLOTS);
    }

    #[test]
    fn a_descriptor_points_into_its_own_buffer() {
        let r = DescRing::new();
        let mut cursor = 0;
        let mut out = [0u64; RING_WORDS];
        for seq in 0..3u64 {
            assert!(r.send(&[seq; RING_WORDS]));
            let d = &r.desc[seq as usize];
            assert_eq!(d.offset.load(Ordering::Relaxed), seq * BUF_WORDS as u64);
            assert_eq!(d.words.load(Ordering::Relaxed), RING_WORDS as u64);
            assert!(r.try_recv(&mut cursor, &mut out));
            assert_eq!(out, [seq; RING_WORDS]);
        }
    }
}
