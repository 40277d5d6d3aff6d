//! `bypass load`: its command line and its `--json` report (`{"summary": ..}`, or
//! `{"sweep": [..]}` with `--rates`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Argv, Kept};
use crate::options::{ChecksumChoice, ChecksumPolicy, Codec, MessageSize, Proto, WaitMode};
use crate::stats::Summary;

/// Where `bypass load` sends.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadTarget {
    /// udp or tcp to IP:PORT.
    Socket { proto: Proto, server: SocketAddrV4 },
    /// A unix-domain stream socket.
    Unix { path: PathBuf },
    /// The client's own DPDK port, with this address (its EAL arguments go in `eal`).
    Dpdk {
        server: SocketAddrV4,
        client_ip: Ipv4Addr,
    },
}

/// What one run offers.
#[derive(Debug, Clone, PartialEq)]
pub enum Offered {
    /// Closed loop, one request in flight; `wait` None leaves the client's default (DPDK
    /// polls its port whatever the wait mode).
    PingPong { wait: Option<WaitMode> },
    /// Open loop at one rate, requests/s.
    Rate(f64),
    /// `--rates A:B:STEP`: one measurement per point, one .hgrm per point.
    Rates(String),
}

/// One `bypass load` run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadCommand {
    pub target: LoadTarget,
    pub offered: Offered,
    pub size: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub json: PathBuf,
    pub hgrm: PathBuf,
    pub hlog: Option<PathBuf>,
    /// The rx checksum policy (DPDK target only; None: the client's default, auto).
    pub checksum: Option<ChecksumPolicy>,
    /// Replicas, fan-out, hedging and the method (default: plain echo to `target`).
    pub shape: RequestShape,
    /// EAL arguments (DPDK target only).
    pub eal: Vec<String>,
}

/// What one logical request is (issue 14): `--servers`, `--fanout`, `--hedge-after`, and the
/// `transcode` method with its codec and message size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestShape {
    /// `--servers A,B,..`: the replicas (udp, tcp, dpdk: IP:PORT; empty: the target alone).
    pub servers: Vec<SocketAddrV4>,
    /// `--fanout K`: sub-requests per logical request (None: 1).
    pub fanout: Option<u32>,
    /// `--hedge-after DURATION|pNN`, as written (e.g. "500us", "p95").
    pub hedge_after: Option<String>,
    /// `--method transcode --codec C --message M` (None: echo).
    pub transcode: Option<(Codec, MessageSize)>,
}

impl RequestShape {
    fn push(&self, a: &mut Argv) {
        if !self.servers.is_empty() {
            let list: Vec<String> = self.servers.iter().map(|s| s.to_string()).collect();
            a.opt("--servers", list.join(","));
        }
        if let Some(k) = self.fanout {
            a.opt("--fanout", k);
        }
        if let Some(h) = &self.hedge_after {
            a.opt("--hedge-after", h);
        }
        if let Some((codec, message)) = self.transcode {
            a.opt("--method", "transcode")
                .opt("--codec", codec)
                .opt("--message", message);
        }
    }
}

impl LoadCommand {
    /// The arguments after the binary, starting with `load`.
    pub fn argv(&self) -> Vec<String> {
        let mut a = Argv::new("load");
        match &self.target {
            LoadTarget::Socket { proto, server } => {
                a.opt("--transport", proto).opt("--server", server);
            }
            LoadTarget::Unix { path } => {
                a.opt("--transport", Proto::Unix)
                    .path("--server-path", path);
            }
            LoadTarget::Dpdk { server, client_ip } => {
                a.opt("--transport", "dpdk")
                    .opt("--server", server)
                    .opt("--client-ip", client_ip);
            }
        }
        match &self.offered {
            Offered::Rate(r) => a.opt("--rate", r),
            Offered::Rates(spec) => a.opt("--rates", spec),
            Offered::PingPong { wait: Some(w) } => a.opt("--wait", w),
            Offered::PingPong { wait: None } => &mut a,
        };
        // A transcode request's size is its message's (--message).
        if self.shape.transcode.is_none() {
            a.opt("--size", self.size);
        }
        a.opt("--duration", self.duration_s)
            .opt("--warmup", self.warmup_s)
            .path("--json", &self.json)
            .path("--hgrm", &self.hgrm);
        if let Some(h) = &self.hlog {
            a.path("--hlog", h);
        }
        if let Some(c) = self.checksum {
            a.opt("--checksum", c);
        }
        self.shape.push(&mut a);
        a.eal(&self.eal).done()
    }
}

/// Round-trip percentiles, ns: the figures of a [`SummaryFigures`] the lab reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// Every figure of a `stats::Summary` as the programs write it (`count`, `min_ns` ..
/// `max_ns`): the lab's [`Percentiles`] and the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryFigures {
    #[serde(flatten)]
    pub read: Percentiles,
    pub stddev_ns: f64,
    pub p9999_ns: u64,
    pub p99999_ns: u64,
}

impl From<&Summary> for SummaryFigures {
    fn from(s: &Summary) -> SummaryFigures {
        SummaryFigures {
            read: Percentiles {
                count: s.count,
                min_ns: s.min,
                mean_ns: s.mean,
                p50_ns: s.p50,
                p90_ns: s.p90,
                p99_ns: s.p99,
                p999_ns: s.p999,
                max_ns: s.max,
            },
            stddev_ns: s.stddev,
            p9999_ns: s.p9999,
            p99999_ns: s.p99999,
        }
    }
}

/// The open-loop client's schedule lag: the figures the lab reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendLag {
    #[serde(default)]
    pub p99_ns: u64,
    #[serde(default)]
    pub max_ns: u64,
    #[serde(default)]
    pub late_1us_fraction: f64,
    #[serde(default)]
    pub behind: bool,
}

/// A run's `summary` object (one point of a sweep has the same shape): the fields the lab
/// reads, with `P` its percentiles and `L` its send lag. `bypass load` writes it with every
/// figure (its `P` embeds [`SummaryFigures`], its `L` this [`SendLag`]) inside a summary of
/// its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSummary<P = Percentiles, L = SendLag> {
    /// Corrected (from the intended send time): the primary figures.
    #[serde(flatten)]
    pub latency: P,
    #[serde(default = "Option::default")]
    pub uncorrected: Option<P>,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub received: u64,
    #[serde(default)]
    pub lost: u64,
    /// Requests sent during warmup (not measured): a relay in front of the server forwards
    /// these too, so the lab counts them when it checks a chain's counters.
    #[serde(default)]
    pub warmup_sent: u64,
    #[serde(default)]
    pub target_rate: Option<f64>,
    #[serde(default)]
    pub achieved_rate: Option<f64>,
    /// Open loop only (null in closed loop).
    #[serde(default = "Option::default")]
    pub send_lag: Option<L>,
    /// Lost requests are recorded at this value (the timeout).
    #[serde(default)]
    pub lost_recorded_at_ns: Option<u64>,
    /// The DPDK client's rx checksum policy: requested, resolved and why (absent for kernel
    /// sockets, whose checksums are the kernel's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ChecksumChoice>,
    /// With `--fanout` or `--hedge-after`: the sub-requests and the amplification (the
    /// run's own percentiles above are then the logical requests').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout: Option<FanoutFigures<P>>,
    /// With `--method transcode`: the client's own codec work, apart from the round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<CodecFigures<P>>,
}

/// A fan-out run's sub-requests, and the tail amplification measured against the
/// independent model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanoutFigures<P = Percentiles> {
    /// K: sub-requests per logical request.
    pub fanout: u32,
    /// Replicas the sub-requests went to.
    pub replicas: u32,
    /// Every sub-request's round trip from its own (intended) send, hedges included.
    pub sub: P,
    /// The threshold amplification is measured at: the sub-requests' p99, ns.
    pub threshold_ns: u64,
    /// Measured P(sub-request > threshold).
    pub p_sub: f64,
    /// Measured P(logical request > threshold).
    pub p_logical: f64,
    /// The independent model: 1 - (1 - p_sub)^K.
    pub p_model: f64,
    /// With `--hedge-after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeFigures>,
}

/// What hedging sent and what it bought.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HedgeFigures {
    /// `--hedge-after` as given ("500us", "p95").
    pub after: String,
    /// The threshold in force at the end of the run, ns (pNN: adapted from recent replies).
    pub threshold_ns: u64,
    /// Smallest and largest threshold used over the run, ns.
    pub threshold_min_ns: u64,
    pub threshold_max_ns: u64,
    /// Duplicate sub-requests sent.
    pub duplicates: u64,
    /// Duplicates per 100 first sub-requests: the extra load.
    pub duplicates_pct: f64,
    /// The losers: the copy of a hedged pair that did not answer first, counted when its
    /// reply arrives or, if its slot is reused before then, at the reuse (its reply is then
    /// also counted `late`).
    pub wasted: u64,
    /// Sub-requests whose duplicate answered first.
    pub won: u64,
}

/// The `transcode` client's own codec work, ns per message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecFigures<P = Percentiles> {
    pub codec: Codec,
    pub message: MessageSize,
    /// Encoded request and reply message bytes (the codec's, without the RPC header).
    pub request_bytes: u64,
    pub reply_bytes: u64,
    /// Encoding one request.
    pub encode: P,
    /// Decoding (and checking) one reply.
    pub decode: P,
    /// Replies whose message did not decode or was not the expected reply.
    pub bad_replies: u64,
}

/// `bypass load --json` of a single run (the writer's `S` is its own summary).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport<S = Kept<LoadSummary>> {
    pub summary: S,
}

/// `bypass load --rates .. --json`: one summary per point, in rate order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadSweepReport<S = LoadSummary> {
    pub sweep: Vec<S>,
}
