//! The spinning probe: one pinned thread per CPU reads the clock back to back and keeps every
//! gap between consecutive reads above a threshold (time the CPU was taken from it), in a
//! histogram and in a bounded, preallocated log the platform model replays.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::os::Clock;
use crate::stats::new_latency_histogram;

use super::cpus;
use super::NoiseError;

/// Gaps kept per CPU for the model; more are counted in [`GapLog::overflow`].
pub const GAP_LOG_CAPACITY: usize = 1 << 20;
/// Lead time between the last thread pinned and the common start instant, so every thread is
/// spinning when the window opens.
const START_LEAD: Duration = Duration::from_millis(20);

/// One stall: the clock read before it, and how long until the next read (ns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gap {
    pub start_ns: u64,
    pub len_ns: u64,
}

impl Gap {
    pub fn end_ns(&self) -> u64 {
        self.start_ns + self.len_ns
    }
}

/// A fixed-capacity gap log, filled in time order. Its storage is written once at creation so
/// the probe never takes a page fault (itself a gap) or allocates while it spins.
#[derive(Debug, Clone)]
pub struct GapLog {
    slots: Vec<Gap>,
    len: usize,
    /// Gaps that did not fit (still in the histogram and the totals).
    pub overflow: u64,
}

impl GapLog {
    pub fn with_capacity(cap: usize) -> GapLog {
        GapLog {
            slots: vec![Gap::default(); cap],
            len: 0,
            overflow: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, g: Gap) {
        match self.slots.get_mut(self.len) {
            Some(slot) => {
                *slot = g;
                self.len += 1;
            }
            None => self.overflow += 1,
        }
    }

    pub fn gaps(&self) -> &[Gap] {
        &self.slots[..self.len]
    }
}

/// What one CPU's probe saw.
#[derive(Debug, Clone)]
pub struct CpuProbe {
    pub cpu: usize,
    /// Gap lengths, ns.
    pub hist: Histogram<u64>,
    pub log: GapLog,
    /// Sum of all gaps, ns (including overflowed ones).
    pub lost_ns: u64,
    /// Length of the window actually spun, ns.
    pub window_ns: u64,
}

/// The whole probe: one [`CpuProbe`] per CPU over a common window.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    pub start_ns: u64,
    pub duration_ns: u64,
    pub cpus: Vec<CpuProbe>,
}

/// The common start instant, handed out between two barrier waits: the first says every
/// thread is pinned, the second that the instant is published.
struct StartGate {
    barrier: Barrier,
    start_ns: AtomicU64,
}

impl StartGate {
    fn wait(&self) -> u64 {
        self.barrier.wait();
        self.barrier.wait();
        self.start_ns.load(Ordering::Acquire)
    }

    /// Returns the start instant: `lead` after every thread is pinned.
    fn open(&self, clock: &Clock, lead: Duration) -> u64 {
        self.barrier.wait();
        let start_ns = clock.now_ns() + lead.as_nanos() as u64;
        self.start_ns.store(start_ns, Ordering::Release);
        self.barrier.wait();
        start_ns
    }
}

/// Spins from `start` to `end` (clock ns), recording gaps longer than `threshold`.
fn spin(clock: &Clock, start: u64, end: u64, threshold: u64, p: &mut CpuProbe) {
    let mut prev = clock.now_ns();
    while prev < start {
        prev = clock.now_ns();
    }
    let first = prev;
    loop {
        let now = clock.now_ns();
        let d = now.saturating_sub(prev);
        if d > threshold {
            p.hist.saturating_record(d);
            p.log.push(Gap {
                start_ns: prev,
                len_ns: d,
            });
            p.lost_ns += d;
        }
        prev = now;
        if now >= end || crate::os::signal::stop_requested() {
            break;
        }
    }
    p.window_ns = prev - first;
}

/// Probes `cpus` together for `duration`, one pinned thread each, all starting at one instant.
pub fn run(
    clock: Clock,
    cpus: &[usize],
    duration: Duration,
    threshold_ns: u64,
) -> Result<ProbeRun, NoiseError> {
    let gate = Arc::new(StartGate {
        barrier: Barrier::new(cpus.len() + 1),
        start_ns: AtomicU64::new(0),
    });
    let duration_ns = duration.as_nanos() as u64;
    let mut handles = Vec::new();
    for &cpu in cpus {
        let gate = Arc::clone(&gate);
        let mut p = CpuProbe {
            cpu,
            hist: new_latency_histogram(),
            log: GapLog::with_capacity(GAP_LOG_CAPACITY),
            lost_ns: 0,
            window_ns: 0,
        };
        handles.push(thread::spawn(move || {
            let pinned = cpus::pin(cpu);
            let start = gate.wait();
            pinned?;
            spin(&clock, start, start + duration_ns, threshold_ns, &mut p);
            Ok::<CpuProbe, NoiseError>(p)
        }));
    }
    let start_ns = gate.open(&clock, START_LEAD);
    let mut out = Vec::new();
    for h in handles {
        let p = h
            .join()
            .map_err(|_| NoiseError::Io("a probe thread panicked".into()))??;
        out.push(p);
    }
    Ok(ProbeRun {
        start_ns,
        duration_ns,
        cpus: out,
    })
}
