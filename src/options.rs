//! The vocabulary every program shares: poll and wait modes, socket protocols and backends,
//! rate sweeps, and the "invalid field" error that exits 2. One definition each, below serve,
//! load, kernel-serve, noise and the lab, so a name means the same thing on a command line, in
//! a TOML file and in a report, and a value refused by one is refused by all.

#![forbid(unsafe_code)]

use std::fmt;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

/// The exit code of a refused setting (a bad flag, TOML key or scenario field), apart from 1
/// (the run itself failed).
pub const EXIT_INVALID: u8 = 2;

/// A refused setting: the field (flag, TOML key or dotted scenario path) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(EXIT_INVALID)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Gives an enum its lower-case name for argv, reports and `Display`, from one table.
macro_rules! named {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The name used on command lines, in TOML files and in reports.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// How a fast-path worker waits for packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PollMode {
    /// Spin on the rx queue without pause: lowest latency, owns the core.
    Busy,
    /// After a run of empty polls, sleep briefly: for tests and shared machines.
    Adaptive,
}
named!(PollMode { Busy => "busy", Adaptive => "adaptive" });

/// How a socket client waits for a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum WaitMode {
    /// Blocking `recv` (closed loop only): the thread sleeps until a reply.
    Blocking,
    /// Non-blocking socket, spinning on `recv`.
    Busy,
}
named!(WaitMode { Blocking => "blocking", Busy => "busy" });

/// A kernel socket protocol carrying the RPC framing of docs/protocol.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    Udp,
    Tcp,
    Unix,
}
named!(Proto { Udp => "udp", Tcp => "tcp", Unix => "unix" });

/// How a kernel-stack server waits and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Blocking receive (100 ms timeout to notice a stop request).
    Blocking,
    /// Non-blocking sockets polled in a loop; SO_BUSY_POLL where allowed.
    Busy,
    /// recvmmsg/sendmmsg, a batch of messages per call (udp only).
    Batch,
}
named!(Backend { Blocking => "blocking", Busy => "busy", Batch => "batch" });

/// How a relay with several upstreams picks one for a request (the fast path's `rpc-relay`
/// and `bypass kernel-relay` alike).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each request to the next upstream in turn.
    #[default]
    RoundRobin,
    /// By a hash of the client's address and port: one client flow, one upstream.
    Hash,
}
named!(Balance { RoundRobin => "round-robin", Hash => "hash" });

/// A message codec of the `transcode` method (docs/protocol.md): the server decodes the
/// request's message, builds the reply and encodes it back in the same codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Codec {
    /// serde_json text.
    Json,
    /// Protocol Buffers (prost).
    Protobuf,
    /// FlatBuffers: read in place, no decode step.
    Flatbuffers,
}
named!(Codec { Json => "json", Protobuf => "protobuf", Flatbuffers => "flatbuffers" });

/// How big a `transcode` message is: the same schema with more list items and longer strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum MessageSize {
    Small,
    Medium,
    Large,
}
named!(MessageSize { Small => "small", Medium => "medium", Large => "large" });

/// How far a DPDK port's received checksums are checked in software (`--checksum`, TOML
/// `checksum`): asked for once, resolved per port by [`ChecksumPolicy::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ChecksumPolicy {
    /// Trust a local peer (net_memif, net_ring), use the NIC's verdicts where it offers rx
    /// IPv4 and UDP checksum offload, verify in software otherwise.
    Auto,
    /// Verify the IPv4 header and UDP checksums of every frame in software.
    Verify,
    /// Check no checksum on rx: the peer is a local process that cannot corrupt a frame.
    Trust,
    /// Enable the NIC's rx checksum offload and act on its per-packet verdict (good: no
    /// software check; bad: dropped; unknown: verified in software).
    Offload,
}
named!(ChecksumPolicy { Auto => "auto", Verify => "verify", Trust => "trust", Offload => "offload" });

/// What a port offers for rx checksums (from its `rte_eth_dev_info` rx_offload_capa). Tx
/// offload is not asked about: replies' checksums stay in software (docs/memif.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChecksumCaps {
    pub rx_ipv4: bool,
    pub rx_udp: bool,
}

impl ChecksumCaps {
    /// Both rx verdicts the fast path needs: the IPv4 header and UDP.
    pub fn rx(&self) -> bool {
        self.rx_ipv4 && self.rx_udp
    }
}

/// A port's checksum policy as asked for, as resolved, and why (shown in every report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksumChoice {
    pub requested: ChecksumPolicy,
    /// Never `auto`.
    pub resolved: ChecksumPolicy,
    pub why: String,
}

impl fmt::Display for ChecksumChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.resolved, self.why)
    }
}

/// Drivers whose peer is a process on this machine copying frames through memory: nothing on
/// the way can corrupt one, so checking its checksums only repeats the sender's work.
const LOCAL_PEER_DRIVERS: &[&str] = &["net_memif", "net_ring"];

impl ChecksumPolicy {
    /// The policy for port `port` (driver `driver`, offering `caps`). `field` names the
    /// setting in the error: an `offload` the port cannot do is refused, never downgraded.
    pub fn resolve(
        self,
        field: &str,
        port: &str,
        driver: &str,
        caps: ChecksumCaps,
    ) -> Result<ChecksumChoice, FieldError> {
        let choice = |resolved, why: String| ChecksumChoice {
            requested: self,
            resolved,
            why,
        };
        Ok(match self {
            ChecksumPolicy::Verify => choice(self, "requested".into()),
            ChecksumPolicy::Trust => choice(self, "requested".into()),
            ChecksumPolicy::Offload if caps.rx() => choice(
                self,
                format!("requested; {driver} offers rx IPv4+UDP checksum offload"),
            ),
            ChecksumPolicy::Offload => {
                return Err(FieldError::new(
                    field,
                    format!(
                        "offload asked for on port {port}, whose {driver} PMD does not offer \
                         rx IPv4 and UDP checksum offload (rx_offload_capa: ipv4 {}, udp {}); \
                         use verify, trust or auto",
                        caps.rx_ipv4, caps.rx_udp
                    ),
                ))
            }
            ChecksumPolicy::Auto if LOCAL_PEER_DRIVERS.contains(&driver) => choice(
                ChecksumPolicy::Trust,
                format!("auto: {driver} peer is a local process"),
            ),
            ChecksumPolicy::Auto if caps.rx() => choice(
                ChecksumPolicy::Offload,
                format!("auto: {driver} offers rx IPv4+UDP checksum offload"),
            ),
            ChecksumPolicy::Auto => choice(
                ChecksumPolicy::Verify,
                format!("auto: {driver} offers no rx checksum offload, peer not local"),
            ),
        })
    }
}

/// Most points one sweep may have.
pub const MAX_SWEEP_POINTS: usize = 1000;

/// Relative slack when counting steps, so float error in (B - A) / STEP neither loses the
/// end point (0.1:0.3:0.1) nor adds one past it.
const STEP_SLACK: f64 = 1e-9;

/// The target rates of a sweep, `A:B:STEP` in requests/s: A, A+STEP, ... up to B inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct RateSweep {
    points: Vec<f64>,
}

impl RateSweep {
    /// Parses `A:B:STEP` (positive finite numbers, A <= B, at most [`MAX_SWEEP_POINTS`]).
    /// The error is the message only; the caller names the field (`--rates`, `paths[2].rates`).
    pub fn parse(text: &str) -> Result<RateSweep, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let [a, b, step] = parts[..] else {
            return Err(format!(
                "expected A:B:STEP in requests/s (e.g. 1000:10000:1000), got {text:?}"
            ));
        };
        let number = |what: &str, v: &str| -> Result<f64, String> {
            let x: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{what} {v:?} is not a number"))?;
            if !x.is_finite() || x <= 0.0 {
                return Err(format!("{what} must be a finite number > 0, got {v}"));
            }
            Ok(x)
        };
        let (a, b, step) = (number("A", a)?, number("B", b)?, number("STEP", step)?);
        if a > b {
            return Err(format!("A ({a}) must not exceed B ({b})"));
        }
        let steps = ((b - a) / step * (1.0 + STEP_SLACK)).floor();
        if steps >= MAX_SWEEP_POINTS as f64 {
            return Err(format!(
                "{a}:{b}:{step} makes more than {MAX_SWEEP_POINTS} points; use a larger STEP"
            ));
        }
        let points = (0..=steps as usize)
            .map(|i| {
                // A + i*STEP rather than repeated addition, so error does not accumulate.
                let r = a + step * i as f64;
                if r > b || (b - r) <= b * STEP_SLACK {
                    b
                } else {
                    r
                }
            })
            .collect();
        Ok(RateSweep { points })
    }

    pub fn points(&self) -> &[f64] {
        &self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_display() {
        for p in [Proto::Udp, Proto::Tcp, Proto::Unix] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Proto>(&json).unwrap(), p);
        }
        assert_eq!(PollMode::Adaptive.as_str(), "adaptive");
        assert_eq!(WaitMode::Blocking.to_string(), "blocking");
        assert_eq!(Backend::Batch.to_string(), "batch");
    }

    #[test]
    fn sweep_keeps_its_end_point_and_refuses_bad_text() {
        assert_eq!(
            RateSweep::parse("0.1:0.3:0.1").unwrap().points().len(),
            3,
            "float error must not lose the end point"
        );
        assert_eq!(
            RateSweep::parse("1000:2500:1000").unwrap().points(),
            &[1000.0, 2000.0]
        );
        assert_eq!(RateSweep::parse("5:5:1").unwrap().points(), &[5.0]);
        for bad in [
            "1:2", "a:2:1", "0:2:1", "3:2:1", "1:1e9:1", "1:2:-1", "1:inf:1",
        ] {
            assert!(RateSweep::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn checksum_auto_resolves_by_driver_then_capability() {
        let none = ChecksumCaps::default();
        let rx = ChecksumCaps {
            rx_ipv4: true,
            rx_udp: true,
        };
        let auto = |driver, caps| {
            ChecksumPolicy::Auto
                .resolve("checksum", "p0", driver, caps)
                .unwrap()
        };
        for local in ["net_memif", "net_ring"] {
            let c = auto(local, rx);
            assert_eq!(
                (c.requested, c.resolved),
                (ChecksumPolicy::Auto, ChecksumPolicy::Trust)
            );
            assert_eq!(c.why, format!("auto: {local} peer is a local process"));
        }
        assert_eq!(auto("net_ice", rx).resolved, ChecksumPolicy::Offload);
        assert_eq!(auto("net_tap", none).resolved, ChecksumPolicy::Verify);
        // One rx bit of the two is not enough: udp-input would have no verdict to act on.
        for half in [
            ChecksumCaps {
                rx_udp: false,
                ..rx
            },
            ChecksumCaps {
                rx_ipv4: false,
                ..rx
            },
        ] {
            assert_eq!(auto("net_af_xdp", half).resolved, ChecksumPolicy::Verify);
        }
        let shown = auto("net_memif", none).to_string();
        assert_eq!(shown, "trust (auto: net_memif peer is a local process)");
    }

    #[test]
    fn checksum_requests_are_kept_and_offload_without_capability_is_refused() {
        let none = ChecksumCaps::default();
        for p in [ChecksumPolicy::Verify, ChecksumPolicy::Trust] {
            // A request is honoured even where auto would choose otherwise.
            let c = p.resolve("checksum", "p0", "net_memif", none).unwrap();
            assert_eq!((c.requested, c.resolved), (p, p));
        }
        let rx = ChecksumCaps {
            rx_ipv4: true,
            rx_udp: true,
        };
        let c = ChecksumPolicy::Offload
            .resolve("--checksum", "0000:03:00.0", "net_ice", rx)
            .unwrap();
        assert_eq!(c.resolved, ChecksumPolicy::Offload);
        let e = ChecksumPolicy::Offload
            .resolve("--checksum", "net_tap0", "net_tap", none)
            .unwrap_err();
        assert_eq!(e.field, "--checksum");
        assert!(
            e.message.contains("net_tap0") && e.message.contains("net_tap PMD"),
            "{e}"
        );
        let half = ChecksumCaps {
            rx_ipv4: true,
            ..none
        };
        assert!(ChecksumPolicy::Offload
            .resolve("checksum", "p", "net_x", half)
            .is_err());
    }

    #[test]
    fn field_error_names_the_field() {
        let e = FieldError::new("paths[1].rates", "expected A:B:STEP");
        assert_eq!(e.to_string(), "`paths[1].rates`: expected A:B:STEP");
    }
}
