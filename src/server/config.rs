//! `bypass serve` settings: a TOML file, then the command line's overrides
//! ([`ServeConfig::from_args`]), then validation that names the offending field, once.

#![forbid(unsafe_code)]

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::args::ServeArgs;
pub use super::args::{Mode, Topology};
use super::relay::{self, RelayConfig};
use crate::options::FieldError;
pub use crate::options::{ChecksumPolicy, PollMode};
use crate::service::{Hold, ServiceModel};
use crate::wire::{Ipv4Address, MacAddress};

/// A refused setting; the field is the TOML key (or `--config`).
pub type ConfigError = FieldError;

/// Everything `bypass serve` can be told. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub mode: Mode,
    pub topology: Topology,
    /// Port names (as given to --vdev, or PCI addresses) or numbers; empty = every port.
    pub ports: Vec<String>,
    /// Rx (and tx) queues per port; one worker lcore per (port, queue).
    pub queues: u16,
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// Packets per rx burst.
    pub burst: u16,
    /// Most packets handed to the graph at once: rx bursts are gathered until a burst comes
    /// back short or the vector is full (rpc mode).
    pub vector: u16,
    /// The IPv4 address the fast path answers for (rpc mode; required there).
    #[serde(deserialize_with = "ip_key")]
    pub ip: Option<Ipv4Address>,
    /// The MAC address answered for; default the port's own.
    #[serde(deserialize_with = "mac_key")]
    pub mac: Option<MacAddress>,
    pub rpc_port: u16,
    pub sockperf_port: u16,
    /// The service-time model every request is held for (None: answered at once).
    #[serde(deserialize_with = "service_key")]
    pub service: Option<ServiceModel>,
    /// RPC replicas on consecutive ports from `rpc_port`.
    pub replicas: u16,
    /// Longest `spin` a request may ask for, in ns; longer ones are refused with status 3.
    pub spin_max_ns: u32,
    /// How far received IPv4 and UDP checksums are checked (rpc mode): one request,
    /// resolved for each port by its driver and offloads.
    pub checksum: ChecksumPolicy,
    /// Write the service-time histograms to this HdrHistogram interval log (rpc mode).
    pub hlog: Option<String>,
    /// Buffers in the packet pool.
    pub mbufs: u32,
    pub mempool_cache: u32,
    pub poll_mode: PollMode,
    /// Empty polls in a row before an adaptive worker sleeps.
    pub idle_polls: u32,
    /// How long an adaptive worker sleeps, in microseconds.
    pub idle_sleep_us: u32,
    /// Times a worker retries the packets a full tx queue refused before dropping them.
    pub tx_retries: u32,
    /// Packets each port transmits at start, to prime loopback topologies (testpmd --tx-first).
    pub tx_first: u32,
    /// Seconds to run; 0 runs until SIGINT or SIGTERM.
    pub duration: f64,
    /// Milliseconds between report lines.
    pub interval_ms: u64,
    /// JSON lines on stdout instead of human text.
    pub json: bool,
    /// EAL arguments used when none are given after `--` on the command line.
    pub eal: Vec<String>,
    /// `[[relay]]` tables: the fast path's relays (rpc mode).
    #[serde(rename = "relay")]
    pub relays: Vec<RelayConfig>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            mode: Mode::Io,
            topology: Topology::Loop,
            ports: Vec::new(),
            queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            burst: 32,
            vector: 256,
            ip: None,
            mac: None,
            rpc_port: 7777,
            sockperf_port: 11111,
            service: None,
            replicas: 1,
            spin_max_ns: 1_000_000,
            checksum: ChecksumPolicy::Auto,
            hlog: None,
            mbufs: 8191,
            mempool_cache: 256,
            poll_mode: PollMode::Busy,
            idle_polls: 1024,
            idle_sleep_us: 20,
            tx_retries: 4,
            tx_first: 0,
            duration: 0.0,
            interval_ms: 1000,
            json: false,
            eal: Vec::new(),
            relays: Vec::new(),
        }
    }
}

fn bad(field: &str, message: impl Into<String>) -> ConfigError {
    FieldError::new(field, message)
}

/// Reads an optional address from its text; the error names `key` so that
/// [`ServeConfig::from_toml`] can say which key it was.
fn address<'de, D, T>(d: D, key: &str) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("`{key}`: {text:?}: {e}"))),
    }
}

fn ip_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv4Address>, D::Error> {
    address(d, "ip")
}

fn service_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ServiceModel>, D::Error> {
    address(d, "service")
}

fn mac_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MacAddress>, D::Error> {
    address(d, "mac")
}

/// The key of the `key = value` line holding byte `at` of `text`: where a bad value (an
/// unknown enum variant names only itself in toml's message) or an unknown key lies.
fn key_of_line(text: &str, at: usize) -> Option<String> {
    let start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plain.then(|| key.to_string())
}

/// Largest rx burst a worker accepts (the size of its packet array).
pub const MAX_BURST: usize = 256;
/// Largest vector the graph takes.
pub const MAX_VECTOR: usize = crate::graph::VECTOR_SIZE;

impl ServeConfig {
    /// The settings of `--config` (or the defaults), overridden by every flag given, checked.
    /// Returns them with the EAL arguments given after `--`.
    pub fn from_args(a: ServeArgs) -> Result<(ServeConfig, Vec<String>), ConfigError> {
        let mut c = match &a.config {
            Some(p) => ServeConfig::from_file(p)?,
            None => ServeConfig::default(),
        };
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = a.$f { c.$f = v; } )* };
        }
        macro_rules! over_opt {
            ($($f:ident),*) => { $( if a.$f.is_some() { c.$f = a.$f; } )* };
        }
        over_opt!(ip, mac, hlog, service);
        over!(
            vector,
            rpc_port,
            sockperf_port,
            replicas,
            spin_max_ns,
            checksum,
            mode,
            topology,
            ports,
            queues,
            rx_desc,
            tx_desc,
            burst,
            mbufs,
            poll_mode,
            tx_first,
            duration,
            interval_ms
        );
        c.json |= a.json;
        if !a.relays.is_empty() {
            c.relays = a
                .relays
                .iter()
                .map(|t| RelayConfig::parse_flag(t).map_err(|e| bad("--relay", e)))
                .collect::<Result<_, _>>()?;
            for r in c.relays.iter_mut() {
                r.balance = a.relay_balance.unwrap_or(r.balance);
                r.table = a.relay_table.unwrap_or(r.table);
                r.expiry_ms = a.relay_expiry_ms.unwrap_or(r.expiry_ms);
            }
        } else if a.relay_balance.is_some()
            || a.relay_table.is_some()
            || a.relay_expiry_ms.is_some()
        {
            return Err(bad("--relay", "--relay-balance, --relay-table and --relay-expiry-ms apply to --relay relays; give one"));
        }
        c.validate()?;
        Ok((c, a.eal))
    }

    /// Parses TOML text. Unknown keys and ill-typed values are errors that name the key.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        toml::from_str::<ServeConfig>(text).map_err(|e| {
            let field = e
                .span()
                .and_then(|at| key_of_line(text, at.start))
                .or_else(|| {
                    e.message()
                        .split('`')
                        .nth(1)
                        // A value holding a backtick makes the first `...` empty: no key there.
                        .filter(|k| !k.is_empty())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "(file)".into());
            bad(&field, e.to_string().trim().replace('\n', " "))
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad("--config", format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text)
            .map_err(|e| FieldError::new(e.field, format!("{} (in {})", e.message, path.display())))
    }

    /// Checks every value against what the program can do; the first problem is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queues == 0 || self.queues > 64 {
            return Err(bad("queues", format!("{} is not in 1..=64", self.queues)));
        }
        if self.burst == 0 || self.burst as usize > MAX_BURST {
            return Err(bad(
                "burst",
                format!("{} is not in 1..={MAX_BURST}", self.burst),
            ));
        }
        if self.vector < self.burst || self.vector as usize > MAX_VECTOR {
            return Err(bad(
                "vector",
                format!(
                    "{} must be at least burst ({}) and at most {MAX_VECTOR}",
                    self.vector, self.burst
                ),
            ));
        }
        if self.ip.is_none() && self.mode == Mode::Rpc {
            return Err(bad("ip", "rpc mode needs the IPv4 address to answer for"));
        }
        if self.rpc_port == 0 {
            return Err(bad("rpc_port", "must not be 0"));
        }
        if self.replicas == 0 || self.replicas > 64 {
            return Err(bad(
                "replicas",
                format!("{} is not in 1..=64", self.replicas),
            ));
        }
        let last = u32::from(self.rpc_port) + u32::from(self.replicas) - 1;
        if last > 65535 {
            return Err(bad(
                "replicas",
                format!(
                    "{} ports from rpc_port {} run past 65535",
                    self.replicas, self.rpc_port
                ),
            ));
        }
        if (u32::from(self.rpc_port)..=last).contains(&u32::from(self.sockperf_port)) {
            return Err(bad(
                "sockperf_port",
                format!(
                    "{} is one of the replicas' ports ({}..={last})",
                    self.sockperf_port, self.rpc_port
                ),
            ));
        }
        if self.sockperf_port == 0 || self.sockperf_port == self.rpc_port {
            return Err(bad(
                "sockperf_port",
                format!(
                    "{} must be non-zero and differ from rpc_port",
                    self.sockperf_port
                ),
            ));
        }
        if self.spin_max_ns > 1_000_000_000 {
            return Err(bad("spin_max_ns", "must be at most 1 s (1000000000)"));
        }
        if self.service.is_some_and(|m| m.hold == Hold::Sleep) {
            return Err(bad(
                "service",
                "hold=sleep (TOML `service`, flag --service) is kernel-serve's: a poll-mode worker \
                 never sleeps, since while it slept it would poll none of its queues and every \
                 request behind the held one would wait with it; the fast path holds by spinning \
                 (hold=spin, the default)",
            ));
        }
        for (name, v) in [("rx_desc", self.rx_desc), ("tx_desc", self.tx_desc)] {
            if !(32..=32768).contains(&v) {
                return Err(bad(name, format!("{v} is not in 32..=32768")));
            }
        }
        if self.mbufs < 512 {
            return Err(bad("mbufs", format!("{} is below 512", self.mbufs)));
        }
        if self.mempool_cache > 512 || self.mempool_cache as u64 * 3 / 2 > self.mbufs as u64 {
            return Err(bad(
                "mempool_cache",
                format!(
                    "{} must be at most 512 and at most two thirds of mbufs ({})",
                    self.mempool_cache, self.mbufs
                ),
            ));
        }
        if !self.duration.is_finite() || self.duration < 0.0 {
            return Err(bad(
                "duration",
                format!("{} is not a number of seconds >= 0", self.duration),
            ));
        }
        if !(10..=3_600_000).contains(&self.interval_ms) {
            return Err(bad(
                "interval_ms",
                format!("{} is not in 10..=3600000", self.interval_ms),
            ));
        }
        if self.idle_polls == 0 {
            return Err(bad("idle_polls", "must be at least 1"));
        }
        if self.idle_sleep_us > 100_000 {
            return Err(bad("idle_sleep_us", "must be at most 100000 (0.1 s)"));
        }
        if self.tx_first > self.mbufs / 2 {
            return Err(bad(
                "tx_first",
                format!(
                    "{} is more than half the pool ({})",
                    self.tx_first, self.mbufs
                ),
            ));
        }
        if self.topology == Topology::Paired
            && !self.ports.is_empty()
            && !self.ports.len().is_multiple_of(2)
        {
            return Err(bad(
                "ports",
                format!(
                    "the paired topology needs an even number of ports, got {}",
                    self.ports.len()
                ),
            ));
        }
        if self.topology == Topology::Joined && self.mode != Mode::Rpc {
            return Err(bad("topology", "joined needs mode = \"rpc\" (packets leave by the port the graph addresses them to)"));
        }
        relay::validate(
            &self.relays,
            &relay::Around {
                ip: self.ip,
                rpc: self.mode == Mode::Rpc,
                joined: self.topology == Topology::Joined,
                queues: self.queues,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(ServeConfig::from_toml("").unwrap(), ServeConfig::default());
        ServeConfig::default().validate().unwrap();
    }

    #[test]
    fn full_file_parses() {
        let c = ServeConfig::from_toml(
            r#"
            mode = "io"
            topology = "paired"
            ports = ["net_ring0", "net_ring1"]
            queues = 2
            burst = 64
            poll_mode = "adaptive"
            duration = 2.5
            eal = ["-l", "0,1"]
            "#,
        )
        .unwrap();
        assert_eq!(c.topology, Topology::Paired);
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.queues, 2);
        assert_eq!(c.poll_mode, PollMode::Adaptive);
        assert_eq!(c.duration, 2.5);
        c.validate().unwrap();
    }

    #[test]
    fn shipped_config_is_valid() {
        let c = ServeConfig::from_toml(include_str!("../../configs/serve-null.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(
            ServeConfig {
                eal: Vec::new(),
                ..c
            },
            ServeConfig::default(),
            "the commented file documents the defaults"
        );
    }

    #[test]
    fn shipped_chain_config_is_valid() {
        let c = ServeConfig::from_toml(include_str!("../../configs/serve-chain.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.topology, Topology::Joined);
        assert_eq!(c.relays.len(), 3);
        assert_eq!(c.relays[0].via.as_deref(), Some("net_ring0"));
        assert_eq!(c.relays[2].upstream, ["198.18.4.1:7777".parse().unwrap()]);
        let e = ServeConfig::from_toml(
            "[[relay]]\nlisten = \"198.18.4.11:7777\"\nupstream = []\ntabel = 3",
        )
        .unwrap_err();
        assert!(e.to_string().contains("tabel"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = ServeConfig::from_toml("bursty = 3").unwrap_err();
        assert_eq!(e.field, "bursty");
        assert!(e.to_string().contains("bursty"), "{e}");
    }

    #[test]
    fn addresses_are_typed_once_and_named_when_wrong() {
        let c = ServeConfig::from_toml("ip = \"198.18.0.1\"\nmac = \"02:00:00:00:00:01\"").unwrap();
        assert_eq!(c.ip, Some(Ipv4Address([198, 18, 0, 1])));
        assert_eq!(c.mac, Some(MacAddress([2, 0, 0, 0, 0, 1])));
        for (text, key) in [("ip = \"198.18.0\"", "ip"), ("mac = \"02:00\"", "mac")] {
            let e = ServeConfig::from_toml(text).unwrap_err();
            assert_eq!(e.field, key, "{e}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let a = Cli::try_parse_from([
            "serve",
            "--mode",
            "rpc",
            "--ip",
            "198.18.0.1",
            "--burst",
            "16",
        ])
        .unwrap()
        .serve;
        let (c, eal) = ServeConfig::from_args(a).unwrap();
        assert_eq!(
            (c.mode, c.burst, c.ip),
            (Mode::Rpc, 16, Some(Ipv4Address([198, 18, 0, 1])))
        );
        assert!(eal.is_empty());
        let a = Cli::try_parse_from(["serve", "--mode", "rpc"])
            .unwrap()
            .serve;
        assert_eq!(ServeConfig::from_args(a).unwrap_err().field, "ip");
        assert!(Cli::try_parse_from(["serve", "--ip", "198.18.0"]).is_err());
        let a = Cli::try_parse_from([
            "serve",
            "--mode",
            "rpc",
            "--ip",
            "198.18.0.1",
            "--service",
            "exp:20us,hold=sleep",
        ])
        .unwrap()
        .serve;
        let e = ServeConfig::from_args(a).unwrap_err();
        assert!(
            e.field == "service" && e.message.contains("--service"),
            "{e}"
        );
    }

    #[test]
    fn service_and_replicas_from_file_and_refused_when_wrong() {
        let c = ServeConfig::from_toml(
            "mode = \"rpc\"\nip = \"198.18.0.1\"\nservice = \"bimodal:20us,1%:1ms\"\nreplicas = 3",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.replicas, 3);
        assert_eq!(
            c.service.map(|m| m.to_string()).as_deref(),
            Some("bimodal:20us,1%:1ms")
        );
        let e = ServeConfig::from_toml("service = \"gauss:3us\"").unwrap_err();
        assert_eq!(e.field, "service", "{e}");
        // A sleeping hold parses (the grammar is shared with kernel-serve) but is refused.
        let sleeping = ServeConfig::from_toml(
            "mode = \"rpc\"\nip = \"198.18.0.1\"\nservice = \"fixed:20us,hold=sleep\"",
        )
        .unwrap();
        let e = sleeping.validate().unwrap_err();
        assert_eq!(e.field, "service", "{e}");
        assert!(
            e.message.contains("hold=sleep") && e.message.contains("never sleeps"),
            "{e}"
        );
        let spinning = ServeConfig::from_toml(
            "mode = \"rpc\"\nip = \"198.18.0.1\"\nservice = \"fixed:20us,hold=spin\"",
        )
        .unwrap();
        spinning.validate().unwrap();
        let with = |text: &str| {
            let c = ServeConfig::from_toml(&format!("mode = \"rpc\"\nip = \"198.18.0.1\"\n{text}"))
                .unwrap();
            c.validate().map_err(|e| e.field)
        };
        assert_eq!(with("replicas = 0"), Err("replicas".to_string()));
        assert_eq!(with("replicas = 65"), Err("replicas".to_string()));
        assert_eq!(
            with("rpc_port = 65535\nreplicas = 2"),
            Err("replicas".to_string())
        );
        assert_eq!(with("rpc_port = 65534\nreplicas = 2"), Ok(()));
        assert_eq!(
            with("rpc_port = 9000\nreplicas = 4\nsockperf_port = 9003"),
            Err("sockperf_port".to_string())
        );
        assert_eq!(
            with("rpc_port = 9000\nreplicas = 4\nsockperf_port = 9004"),
            Ok(())
        );
    }

    /// Found by the config_toml fuzz target: a backtick in a value left the field empty.
    /// The key now comes from the line the error points at.
    #[test]
    fn a_backtick_in_a_value_leaves_a_field_named() {
        let e = ServeConfig::from_toml("mode = \"`pc\"").unwrap_err();
        assert_eq!(e.field, "mode", "{e}");
        assert!(e.message.contains("unknown variant"), "{e}");
    }

    #[test]
    fn checksum_policy_from_file_and_flag() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        assert_eq!(ServeConfig::default().checksum, ChecksumPolicy::Auto);
        for (text, want) in [
            ("verify", ChecksumPolicy::Verify),
            ("trust", ChecksumPolicy::Trust),
            ("offload", ChecksumPolicy::Offload),
            ("auto", ChecksumPolicy::Auto),
        ] {
            let c = ServeConfig::from_toml(&format!("checksum = \"{text}\"")).unwrap();
            assert_eq!(c.checksum, want);
            let a = Cli::try_parse_from(["serve", "--checksum", text])
                .unwrap()
                .serve;
            assert_eq!(ServeConfig::from_args(a).unwrap().0.checksum, want);
        }
        let e = ServeConfig::from_toml("checksum = \"sometimes\"").unwrap_err();
        assert_eq!(e.field, "checksum", "{e}");
        assert!(e.message.contains("sometimes"), "{e}");
        let e = Cli::try_parse_from(["serve", "--checksum", "sometimes"])
            .map(|c| c.serve)
            .expect_err("refused");
        assert!(e.to_string().contains("--checksum"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = ServeConfig::from_toml("poll_mode = \"sometimes\"").unwrap_err();
        assert!(e.to_string().contains("sometimes"), "{e}");
        assert_eq!(e.field, "poll_mode", "{e}");
        // A multi-line value: the error's line has no key, the message names none either.
        let e = ServeConfig::from_toml("eal = [\n  \"-l\",\n  3,\n]").unwrap_err();
        assert!(!e.field.is_empty(), "{e}");
        let e = ServeConfig::from_toml("queues = \"two\"").unwrap_err();
        assert!(e.to_string().contains("queues"), "{e}");
    }

    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(&str, ServeConfig)> = vec![
            (
                "queues",
                ServeConfig {
                    queues: 0,
                    ..Default::default()
                },
            ),
            (
                "burst",
                ServeConfig {
                    burst: 0,
                    ..Default::default()
                },
            ),
            (
                "burst",
                ServeConfig {
                    burst: 1000,
                    ..Default::default()
                },
            ),
            (
                "rx_desc",
                ServeConfig {
                    rx_desc: 8,
                    ..Default::default()
                },
            ),
            (
                "mbufs",
                ServeConfig {
                    mbufs: 10,
                    ..Default::default()
                },
            ),
            (
                "mempool_cache",
                ServeConfig {
                    mempool_cache: 600,
                    ..Default::default()
                },
            ),
            (
                "duration",
                ServeConfig {
                    duration: -1.0,
                    ..Default::default()
                },
            ),
            (
                "duration",
                ServeConfig {
                    duration: f64::NAN,
                    ..Default::default()
                },
            ),
            (
                "interval_ms",
                ServeConfig {
                    interval_ms: 0,
                    ..Default::default()
                },
            ),
            (
                "tx_first",
                ServeConfig {
                    tx_first: 100_000,
                    ..Default::default()
                },
            ),
            (
                "ports",
                ServeConfig {
                    topology: Topology::Paired,
                    ports: vec!["a".into(), "b".into(), "c".into()],
                    ..Default::default()
                },
            ),
        ];
        for (field, cfg) in cases {
            let e = cfg.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }
}
