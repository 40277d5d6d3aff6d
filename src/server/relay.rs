//! The fast path's relays as `bypass serve` is told them: `[[relay]]` tables in the TOML file
//! or `--relay LISTEN=UPSTREAM[,UPSTREAM..][@PORT]` flags, checked once (errors name
//! `relay[i].<key>`), then made into the `rpc-relay` node's specs once the ports are up and
//! every upstream's MAC is known.

#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::net::SocketAddrV4;

use serde::Deserialize;

use crate::graph::nodes::{RelayIps, RelaySpec, Upstream, MAX_RELAYS};
use crate::options::{Balance, FieldError};
use crate::wire::{Ipv4Address, MacAddress};

pub const DEFAULT_TABLE: u32 = 1024;
/// The first relay source port: IANA's dynamic range, where no service listens.
pub const DEFAULT_FIRST_PORT: u16 = 49152;
pub const DEFAULT_EXPIRY_MS: u64 = 1000;
/// Most slots a relay's table may have; its mapping ports must fit below 65536 too.
pub const MAX_TABLE: u32 = 16384;
pub const MAX_UPSTREAMS: usize = 16;

/// One relay. Field names are the TOML keys of a `[[relay]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `ip:port` the relay answers for; the ip is one of the fast path's own addresses.
    pub listen: SocketAddrV4,
    pub upstream: Vec<SocketAddrV4>,
    /// The port the upstreams are reached on, by name or number; absent: the port each
    /// request came in on. Another port needs `topology = "joined"`.
    #[serde(default)]
    pub via: Option<String>,
    #[serde(default)]
    pub balance: Balance,
    /// Flow slots, one mapping port each: `first_port .. first_port + table`.
    #[serde(default = "default_table")]
    pub table: u32,
    #[serde(default = "default_first_port")]
    pub first_port: u16,
    /// A flow with no request or reply for this long is forgotten.
    #[serde(default = "default_expiry_ms")]
    pub expiry_ms: u64,
    /// The upstreams' MAC (all of them); absent: ours for an address of this process, else
    /// asked by ARP on the via port at start.
    #[serde(default)]
    pub upstream_mac: Option<String>,
}

fn default_table() -> u32 {
    DEFAULT_TABLE
}

fn default_first_port() -> u16 {
    DEFAULT_FIRST_PORT
}

fn default_expiry_ms() -> u64 {
    DEFAULT_EXPIRY_MS
}

impl RelayConfig {
    /// `LISTEN=UPSTREAM[,UPSTREAM..][@PORT]`, the other keys at their defaults.
    pub fn parse_flag(text: &str) -> Result<RelayConfig, String> {
        let form = "expected LISTEN=UPSTREAM[,UPSTREAM..][@PORT], e.g. 198.18.4.11:7777=198.18.4.1:7777@net_ring0";
        let (listen, rest) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: {form}"))?;
        let (ups, via) = match rest.split_once('@') {
            Some((u, v)) if !v.is_empty() => (u, Some(v.to_string())),
            Some(_) => return Err(format!("{text:?}: no port after '@'")),
            None => (rest, None),
        };
        let addr = |s: &str| {
            s.trim()
                .parse::<SocketAddrV4>()
                .map_err(|e| format!("{s:?} is not an IPv4 address:port ({e}); {form}"))
        };
        Ok(RelayConfig {
            listen: addr(listen)?,
            upstream: ups.split(',').map(addr).collect::<Result<_, _>>()?,
            via,
            balance: Balance::default(),
            table: DEFAULT_TABLE,
            first_port: DEFAULT_FIRST_PORT,
            expiry_ms: DEFAULT_EXPIRY_MS,
            upstream_mac: None,
        })
    }

    fn mapping_ports(&self) -> std::ops::Range<u32> {
        u32::from(self.first_port)..u32::from(self.first_port) + self.table
    }

    /// The upstream MAC given, parsed (`field` names it in the error).
    pub fn upstream_mac(&self, field: &str) -> Result<Option<MacAddress>, FieldError> {
        self.upstream_mac
            .as_deref()
            .map(|m| {
                m.parse()
                    .map_err(|e| FieldError::new(field, format!("{m:?}: {e}")))
            })
            .transpose()
    }
}

/// What the relays need from the rest of the configuration to be checked.
pub struct Around {
    pub ip: Option<Ipv4Address>,
    pub rpc: bool,
    pub joined: bool,
    pub queues: u16,
}

/// Checks the relays against each other and the server; the first problem names its field.
pub fn validate(relays: &[RelayConfig], around: &Around) -> Result<(), FieldError> {
    if relays.is_empty() {
        return Ok(());
    }
    let bad = |i: usize, key: &str, msg: String| FieldError::new(format!("relay[{i}].{key}"), msg);
    if !around.rpc {
        return Err(FieldError::new("relay", "relays need mode = \"rpc\""));
    }
    if relays.len() > MAX_RELAYS {
        return Err(FieldError::new(
            "relay",
            format!("{} relays; at most {MAX_RELAYS}", relays.len()),
        ));
    }
    if around.queues != 1 {
        return Err(FieldError::new(
            "queues",
            "relays need queues = 1: a reply must reach the worker that holds its flow, which RSS does not promise",
        ));
    }
    let mut seen = HashSet::new();
    for (i, r) in relays.iter().enumerate() {
        let ip = Ipv4Address(r.listen.ip().octets());
        if Some(ip) == around.ip {
            return Err(bad(
                i,
                "listen",
                format!(
                    "{} is the server's own address; a relay needs one of its own",
                    r.listen.ip()
                ),
            ));
        }
        if !seen.insert(ip) {
            return Err(bad(
                i,
                "listen",
                format!("{} is another relay's address", r.listen.ip()),
            ));
        }
        if r.listen.port() == 0 {
            return Err(bad(i, "listen", "port 0".into()));
        }
        if r.upstream.is_empty() || r.upstream.len() > MAX_UPSTREAMS {
            return Err(bad(
                i,
                "upstream",
                format!("{} upstreams; 1..={MAX_UPSTREAMS}", r.upstream.len()),
            ));
        }
        if let Some(u) = r
            .upstream
            .iter()
            .find(|u| u.port() == 0 || u.ip().is_unspecified())
        {
            return Err(bad(i, "upstream", format!("{u} is no address to send to")));
        }
        if r.upstream.contains(&r.listen) {
            return Err(bad(
                i,
                "upstream",
                format!("{} is the relay itself", r.listen),
            ));
        }
        if !(1..=MAX_TABLE).contains(&r.table) {
            return Err(bad(
                i,
                "table",
                format!("{} is not in 1..={MAX_TABLE}", r.table),
            ));
        }
        if r.mapping_ports().end > 65536 || r.first_port == 0 {
            return Err(bad(
                i,
                "first_port",
                format!(
                    "{} + table {} does not fit in 1..=65535",
                    r.first_port, r.table
                ),
            ));
        }
        if r.mapping_ports().contains(&u32::from(r.listen.port())) {
            return Err(bad(
                i,
                "first_port",
                format!(
                    "the mapping ports {}..{} hold the listen port {}",
                    r.first_port,
                    r.mapping_ports().end,
                    r.listen.port()
                ),
            ));
        }
        if !(1..=3_600_000).contains(&r.expiry_ms) {
            return Err(bad(
                i,
                "expiry_ms",
                format!("{} is not in 1..=3600000", r.expiry_ms),
            ));
        }
        if r.via.is_some() && !around.joined {
            return Err(bad(
                i,
                "via",
                "another port needs topology = \"joined\" (one worker polling every port)".into(),
            ));
        }
        r.upstream_mac(&format!("relay[{i}].upstream_mac"))?;
    }
    Ok(())
}

/// The relays' addresses, for the graph's [`crate::graph::nodes::NodeConfig`].
pub fn relay_ips(relays: &[RelayConfig]) -> RelayIps {
    let mut ips = RelayIps::default();
    for r in relays {
        // validate() allowed at most MAX_RELAYS.
        let _ = ips.push(Ipv4Address(r.listen.ip().octets()));
    }
    ips
}

/// The node's specs: `via` resolved to an index in the worker's port list, each upstream's
/// MAC from `mac_of(relay, upstream)` (ours, configured, or asked by ARP).
pub fn specs(
    relays: &[RelayConfig],
    via_index: impl Fn(&str) -> Result<u16, String>,
    mut mac_of: impl FnMut(usize, &RelayConfig, SocketAddrV4) -> Result<MacAddress, String>,
) -> Result<Vec<RelaySpec>, String> {
    relays
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let via = r
                .via
                .as_deref()
                .map(&via_index)
                .transpose()
                .map_err(|e| format!("relay[{i}].via: {e}"))?;
            let upstreams = r
                .upstream
                .iter()
                .map(|&u| {
                    Ok(Upstream {
                        mac: mac_of(i, r, u)?,
                        ip: Ipv4Address(u.ip().octets()),
                        port: u.port(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(RelaySpec {
                ip: Ipv4Address(r.listen.ip().octets()),
                port: r.listen.port(),
                upstreams,
                via,
                balance: r.balance,
                table: r.table as usize,
                first_port: r.first_port,
                expiry_ns: r.expiry_ms * 1_000_000,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn around() -> Around {
        Around {
            ip: Some(Ipv4Address([198, 18, 4, 1])),
            rpc: true,
            joined: true,
            queues: 1,
        }
    }

    fn relay(text: &str) -> RelayConfig {
        RelayConfig::parse_flag(text).unwrap()
    }

    #[test]
    fn the_flag_form() {
        let r = relay("198.18.4.11:7777=198.18.4.12:7777,198.18.4.13:7000@net_ring0");
        assert_eq!(r.listen, "198.18.4.11:7777".parse().unwrap());
        assert_eq!(r.upstream.len(), 2);
        assert_eq!(r.via.as_deref(), Some("net_ring0"));
        assert_eq!(relay("198.18.4.11:7777=198.18.4.1:7777").via, None);
        for bad in [
            "198.18.4.11:7777",
            "x=198.18.4.1:7777",
            "198.18.4.11:7777=",
            "198.18.4.11:7777=198.18.4.1:7777@",
        ] {
            assert!(RelayConfig::parse_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let ok = relay("198.18.4.11:7777=198.18.4.1:7777@1");
        validate(std::slice::from_ref(&ok), &around()).unwrap();
        let field = |rs: &[RelayConfig], a: &Around| validate(rs, a).unwrap_err().field;
        let with = |f: &dyn Fn(&mut RelayConfig)| {
            let mut r = ok.clone();
            f(&mut r);
            vec![r]
        };
        assert_eq!(
            field(
                &with(&|r| r.listen = "198.18.4.1:7777".parse().unwrap()),
                &around()
            ),
            "relay[0].listen"
        );
        assert_eq!(
            field(&[ok.clone(), ok.clone()], &around()),
            "relay[1].listen"
        );
        assert_eq!(
            field(&with(&|r| r.upstream.clear()), &around()),
            "relay[0].upstream"
        );
        assert_eq!(
            field(&with(&|r| r.upstream = vec![r.listen]), &around()),
            "relay[0].upstream"
        );
        assert_eq!(field(&with(&|r| r.table = 0), &around()), "relay[0].table");
        assert_eq!(
            field(&with(&|r| r.first_port = 65000), &around()),
            "relay[0].first_port"
        );
        assert_eq!(
            field(&with(&|r| r.first_port = 7000), &around()),
            "relay[0].first_port"
        );
        assert_eq!(
            field(&with(&|r| r.expiry_ms = 0), &around()),
            "relay[0].expiry_ms"
        );
        assert_eq!(
            field(&with(&|r| r.upstream_mac = Some("zz".into())), &around()),
            "relay[0].upstream_mac"
        );
        let loopy = Around {
            joined: false,
            ..around()
        };
        assert_eq!(field(std::slice::from_ref(&ok), &loopy), "relay[0].via");
        let io = Around {
            rpc: false,
            ..around()
        };
        assert_eq!(field(std::slice::from_ref(&ok), &io), "relay");
        let queues = Around {
            queues: 2,
            ..around()
        };
        assert_eq!(field(std::slice::from_ref(&ok), &queues), "queues");
        let many: Vec<_> = (0..=MAX_RELAYS)
            .map(|i| relay(&format!("198.18.5.{}:7777=198.18.4.1:7777", i + 1)))
            .collect();
        assert_eq!(field(&many, &around()), "relay");
    }

    #[test]
    fn specs_resolve_via_and_macs() {
        let rs = [
            relay("198.18.4.11:7777=198.18.4.12:7777@net_ring0"),
            relay("198.18.4.12:7777=198.18.4.1:7777"),
        ];
        let mac = MacAddress([2, 0, 0, 0, 0, 7]);
        let specs = specs(
            &rs,
            |name| {
                if name == "net_ring0" {
                    Ok(1)
                } else {
                    Err(format!("no port {name}"))
                }
            },
            |_, _, _| Ok(mac),
        )
        .unwrap();
        assert_eq!(specs[0].via, Some(1));
        assert_eq!(specs[1].via, None);
        assert_eq!(specs[1].upstreams[0].ip, Ipv4Address([198, 18, 4, 1]));
        assert_eq!(specs[0].upstreams[0].mac, mac);
        assert_eq!(specs[0].expiry_ns, 1_000_000_000);
        let err = super::specs(&rs, |_| Err("no such port".into()), |_, _, _| Ok(mac)).unwrap_err();
        assert!(err.starts_with("relay[0].via"), "{err}");
        assert_eq!(relay_ips(&rs).as_slice().len(), 2);
    }
}
