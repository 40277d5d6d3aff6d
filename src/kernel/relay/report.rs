//! The final report of `kernel-relay`: human text, or one JSON line
//! {"type":"final","proto":..,"upstream_proto":..,"backend":..,"threads":1,"rx":N,"tx":N,
//!  "forwarded":N,"returned":N,"drops":{..}, ...} whose part up to `drops` is
//! `contract::relay::KernelRelayFinal`, embedded here as kernel-serve embeds its own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::contract::relay::KernelRelayFinal;
use crate::options::{Backend, Balance, Proto};

use super::counters::{RelayCounters, RelayDrop};

#[derive(Debug, Clone)]
pub struct RelayReport {
    pub listen: String,
    pub upstreams: Vec<String>,
    pub proto: Proto,
    pub upstream_proto: Proto,
    pub backend: Backend,
    pub balance: Balance,
    pub cpu: Option<usize>,
    pub table: usize,
    pub pool: usize,
    pub elapsed: Duration,
    pub counters: RelayCounters,
    pub live_at_stop: usize,
    /// Client connections closed at once because [`super::event_loop::MAX_CLIENTS`] were open.
    pub refused: u64,
}

#[derive(Serialize)]
struct FinalJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    shared: KernelRelayFinal,
    listen: &'a str,
    upstreams: &'a [String],
    balance: Balance,
    cpu: Option<usize>,
    table: usize,
    pool: usize,
    /// Requests forwarded but neither answered nor dropped when the relay stopped.
    live_at_stop: usize,
    connections: u64,
    refused: u64,
    reconnects: u64,
    elapsed_s: f64,
}

impl RelayReport {
    fn drops(&self) -> BTreeMap<String, u64> {
        RelayDrop::ALL
            .iter()
            .map(|r| (r.name().to_string(), self.counters.get(*r)))
            .collect()
    }

    pub fn to_json(&self) -> String {
        let c = &self.counters;
        let doc = FinalJson {
            kind: "final",
            shared: KernelRelayFinal {
                proto: self.proto,
                upstream_proto: self.upstream_proto,
                backend: self.backend,
                threads: 1,
                rx: c.rx,
                tx: c.tx,
                forwarded: c.forwarded,
                returned: c.returned,
                drops: self.drops(),
            },
            listen: &self.listen,
            upstreams: &self.upstreams,
            balance: self.balance,
            cpu: self.cpu,
            table: self.table,
            pool: self.pool,
            live_at_stop: self.live_at_stop,
            connections: c.connections,
            refused: self.refused,
            reconnects: c.reconnects,
            elapsed_s: self.elapsed.as_secs_f64(),
        };
        serde_json::to_string(&doc).expect("plain data serialises")
    }

    pub fn human(&self) -> String {
        let c = &self.counters;
        let mut s = String::new();
        let cpu = self.cpu.map_or("unpinned".into(), |c| format!("cpu {c}"));
        let _ = writeln!(
            s,
            "kernel-relay {} -> {} ({}, {}, {cpu}): {:.3} s",
            self.listen,
            self.upstreams.join(", "),
            self.backend,
            self.balance,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  rx {} tx {} forwarded {} returned {} dropped {} live at stop {}",
            c.rx,
            c.tx,
            c.forwarded,
            c.returned,
            c.dropped(),
            self.live_at_stop
        );
        let d: Vec<String> = RelayDrop::ALL
            .iter()
            .filter(|r| c.get(**r) > 0)
            .map(|r| format!("{} {}", r.name(), c.get(*r)))
            .collect();
        if !d.is_empty() {
            let _ = writeln!(s, "  drops: {}", d.join(", "));
        }
        if self.proto != Proto::Udp || self.upstream_proto != Proto::Udp {
            let _ = writeln!(
                s,
                "  client connections {} (refused {}), upstream reconnects {}",
                c.connections, self.refused, c.reconnects
            );
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> RelayReport {
        let mut c = RelayCounters {
            rx: 9,
            tx: 6,
            forwarded: 4,
            returned: 2,
            ..RelayCounters::default()
        };
        c.drop_n(RelayDrop::TableFull, 2);
        c.drop(RelayDrop::UnknownMapping);
        RelayReport {
            listen: "unix:/tmp/r.sock".into(),
            upstreams: vec!["tcp:127.0.0.1:7".into()],
            proto: Proto::Unix,
            upstream_proto: Proto::Tcp,
            backend: Backend::Busy,
            balance: Balance::Hash,
            cpu: Some(1),
            table: 8,
            pool: 2,
            elapsed: Duration::from_millis(1500),
            counters: c,
            live_at_stop: 1,
            refused: 0,
        }
    }

    #[test]
    fn json_and_text_agree() {
        let r = sample();
        let line = r.to_json();
        assert!(
            line.starts_with(r#"{"type":"final","proto":"unix","upstream_proto":"tcp","backend":"busy","threads":1,"rx":9,"tx":6,"forwarded":4,"returned":2,"drops":{"#),
            "{line}"
        );
        let j: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(j["drops"]["table-full"], 2);
        assert_eq!(j["drops"]["client-gone"], 0, "every reason listed");
        assert_eq!(
            (j["pool"].as_u64(), j["live_at_stop"].as_u64()),
            (Some(2), Some(1))
        );
        let text = r.human();
        assert!(
            text.contains("rx 9 tx 6 forwarded 4 returned 2 dropped 3 live at stop 1"),
            "{text}"
        );
        assert!(
            text.contains("drops: table-full 2, unknown-mapping 1"),
            "{text}"
        );
    }
}
