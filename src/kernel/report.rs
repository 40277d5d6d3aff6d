//! The final report of `kernel-serve`: human text, or one JSON line, whose keys are the
//! contract the lab and tests/kernel_serve.rs read:
//! {"type":"final","proto":..,"backend":..,"threads":N,"rx":N,"tx":N,"drops":{..},
//!  "connections":N, ...} plus the elapsed time and the same counters per thread. The part up
//! to `drops` is `contract::serve::KernelServeFinal`, embedded here.

use std::fmt::Write as _;
use std::time::Duration;

use std::collections::BTreeMap;

use serde::Serialize;

use super::counters::{CloseReason, Counters, DropReason};
use crate::contract::serve::KernelServeFinal;
use crate::options::{Backend, Proto};

/// One worker's counters (a udp worker's sockperf socket counts into the same worker).
#[derive(Debug, Clone)]
pub struct ThreadReport {
    pub thread: usize,
    pub cpu: Option<usize>,
    pub counters: Counters,
}

#[derive(Serialize)]
struct ThreadJson {
    thread: usize,
    cpu: Option<usize>,
    rx: u64,
    tx: u64,
    drops: BTreeMap<&'static str, u64>,
}

/// The final line: the lab's [`KernelServeFinal`] (proto .. drops) and the rest.
#[derive(Serialize)]
struct FinalJson {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    shared: KernelServeFinal,
    connections: u64,
    /// tcp/unix: how the accepted connections ended, by [`CloseReason`].
    #[serde(skip_serializing_if = "Option::is_none")]
    closed: Option<BTreeMap<&'static str, u64>>,
    elapsed_s: f64,
    per_thread: Vec<ThreadJson>,
}

#[derive(Debug, Clone)]
pub struct FinalReport {
    pub proto: Proto,
    pub backend: Backend,
    pub threads: usize,
    pub elapsed: Duration,
    /// Connections accepted (tcp/unix; 0 for udp).
    pub connections: u64,
    /// The drop reasons this server can count, all listed even when 0.
    pub reasons: Vec<DropReason>,
    pub per_thread: Vec<ThreadReport>,
    /// The service-time model in force, in the `--service` grammar (None: none).
    pub service: Option<String>,
}

impl FinalReport {
    pub fn totals(&self) -> Counters {
        let mut t = Counters::default();
        for th in &self.per_thread {
            t.add(&th.counters);
        }
        t
    }

    fn drops_json(&self, c: &Counters) -> BTreeMap<&'static str, u64> {
        self.reasons.iter().map(|r| (r.name(), c.get(*r))).collect()
    }

    /// How the connections ended; `None` for udp, which has none.
    fn closed_json(&self, c: &Counters) -> Option<BTreeMap<&'static str, u64>> {
        (self.proto != Proto::Udp).then(|| {
            CloseReason::ALL
                .iter()
                .map(|r| (r.name(), c.closed_by(*r)))
                .collect()
        })
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        let t = self.totals();
        let doc = FinalJson {
            kind: "final",
            shared: KernelServeFinal {
                proto: self.proto,
                backend: self.backend,
                threads: self.threads,
                rx: t.rx,
                tx: t.tx,
                drops: self
                    .drops_json(&t)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                service: self.service.clone(),
            },
            connections: self.connections,
            closed: self.closed_json(&t),
            elapsed_s: self.elapsed.as_secs_f64(),
            per_thread: self
                .per_thread
                .iter()
                .map(|th| ThreadJson {
                    thread: th.thread,
                    cpu: th.cpu,
                    rx: th.counters.rx,
                    tx: th.counters.tx,
                    drops: self.drops_json(&th.counters),
                })
                .collect(),
        };
        serde_json::to_string(&doc).expect("plain data serialises")
    }

    pub fn human(&self) -> String {
        let t = self.totals();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "kernel-serve {} {}: {} thread(s), {:.3} s, {} connection(s)",
            self.proto,
            self.backend,
            self.threads,
            self.elapsed.as_secs_f64(),
            self.connections
        );
        if let Some(m) = &self.service {
            let _ = writeln!(s, "  service time: {m}");
        }
        let drops = |c: &Counters| {
            let v: Vec<String> = self
                .reasons
                .iter()
                .filter(|r| c.get(**r) > 0)
                .map(|r| format!("{} {}", r.name(), c.get(*r)))
                .collect();
            if v.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.join(", "))
            }
        };
        for th in &self.per_thread {
            let cpu = th
                .cpu
                .map_or("unpinned".to_string(), |c| format!("cpu {c}"));
            let c = &th.counters;
            let _ = writeln!(
                s,
                "  thread {} ({cpu}): rx {} tx {} dropped {}{}",
                th.thread,
                c.rx,
                c.tx,
                c.dropped(),
                drops(c)
            );
        }
        let _ = writeln!(
            s,
            "  total: rx {} tx {} dropped {}{}",
            t.rx,
            t.tx,
            t.dropped(),
            drops(&t)
        );
        if let Some(closed) = self.closed_json(&t) {
            let v: Vec<String> = closed.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(s, "  connections closed: {}", v.join(", "));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_agree() {
        let mut a = Counters {
            rx: 5,
            tx: 3,
            ..Counters::default()
        };
        a.drop_n(DropReason::BadMagic, 2);
        let b = Counters {
            rx: 4,
            tx: 4,
            ..Counters::default()
        };
        let r = FinalReport {
            service: None,
            proto: Proto::Udp,
            backend: Backend::Busy,
            threads: 2,
            elapsed: Duration::from_millis(1500),
            connections: 0,
            reasons: DropReason::UDP.to_vec(),
            per_thread: vec![
                ThreadReport {
                    thread: 0,
                    cpu: Some(1),
                    counters: a,
                },
                ThreadReport {
                    thread: 1,
                    cpu: None,
                    counters: b,
                },
            ],
        };
        let line = r.to_json();
        assert!(line.starts_with(r#"{"type":"final","proto":"udp","backend":"busy","threads":2,"rx":9,"tx":7,"drops":{"#), "{line}");
        let j: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(j["type"], "final");
        assert_eq!(
            (j["proto"].as_str(), j["backend"].as_str()),
            (Some("udp"), Some("busy"))
        );
        assert_eq!((j["rx"].as_u64(), j["tx"].as_u64()), (Some(9), Some(7)));
        assert_eq!(j["drops"]["bad-magic"], 2);
        assert_eq!(j["drops"]["send-error"], 0);
        assert!(j["drops"].get("oversize").is_none());
        assert_eq!(j["per_thread"][1]["rx"], 4);
        assert_eq!(j["per_thread"][0]["cpu"], 1);
        assert!(j["per_thread"][1]["cpu"].is_null());
        let text = r.human();
        assert!(
            text.contains("total: rx 9 tx 7 dropped 2 (bad-magic 2)"),
            "{text}"
        );
        assert!(text.contains("thread 0 (cpu 1)"), "{text}");
        assert!(j.get("closed").is_none(), "udp has no connections");
        assert!(!text.contains("connections closed"), "{text}");
    }

    #[test]
    fn streams_report_how_connections_ended() {
        let mut c = Counters::default();
        c.close(CloseReason::Eof);
        c.close(CloseReason::Eof);
        c.close(CloseReason::Refused);
        let r = FinalReport {
            service: None,
            proto: Proto::Tcp,
            backend: Backend::Blocking,
            threads: 1,
            elapsed: Duration::from_secs(1),
            connections: 3,
            reasons: DropReason::STREAM.to_vec(),
            per_thread: vec![ThreadReport {
                thread: 0,
                cpu: None,
                counters: c,
            }],
        };
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            (j["closed"]["eof"].as_u64(), j["closed"]["refused"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(j["closed"]["stalled"], 0);
        assert_eq!(j["drops"]["stalled"], 0);
        assert!(
            r.human()
                .contains("connections closed: eof 2, framing 0, refused 1"),
            "{}",
            r.human()
        );
    }
}
