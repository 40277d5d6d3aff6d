//! The platform beside the paths: the noise probe (`bypass noise`) taken before every
//! path-round and once at the end, its model of what an open-loop client would see from the
//! platform alone, and the syscall tax (`bypass syscalls`), parsed from their JSON.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::proc::{Proc, Waited};
pub use crate::contract::platform::{CpuNoise, ModelRow};
use crate::contract::platform::{
    NoiseCommand, NoiseReport, Spread, SyscallsCommand, SyscallsReport,
};

/// One `bypass noise` run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Probe {
    /// "before <path> round <k>" or "end".
    pub label: String,
    pub path: Option<String>,
    pub round: Option<u32>,
    pub duration_s: f64,
    pub cpus: Vec<CpuNoise>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model: Vec<ModelRow>,
    /// Seconds since the lab started.
    pub at_s: f64,
}

impl Probe {
    /// The worst CPU's lost time, percent.
    pub fn max_lost_pct(&self) -> f64 {
        self.cpus.iter().map(|c| c.lost_pct).fold(0.0, f64::max)
    }
}

/// ns per call: the median batch and the range over batches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PerCall {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The syscall tax row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Syscalls {
    pub cpu: usize,
    pub getppid_ns: PerCall,
    pub udp_send_recv_ns: PerCall,
    pub unix_send_recv_ns: PerCall,
    pub command: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Platform {
    /// Probe seconds (0: no probes) and the noisy threshold, as the scenario set them.
    pub probe_s: f64,
    pub noisy_lost_pct: f64,
    pub probes: Vec<Probe>,
    /// Index of the probe taken after the last path.
    pub end_probe: Option<usize>,
    pub syscalls: Option<Syscalls>,
    /// Why a probe or the syscall row is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Reads `bypass noise --json` (unknown keys ignored).
pub fn parse_noise(text: &str) -> Result<(Vec<CpuNoise>, Vec<ModelRow>), String> {
    let r: NoiseReport =
        serde_json::from_str(text).map_err(|e| format!("not a noise report ({e}): {text}"))?;
    Ok((r.cpus, r.model))
}

/// Reads `bypass syscalls --json`; a missing figure is refused by name.
pub fn parse_syscalls(text: &str) -> Result<Syscalls, String> {
    let r: SyscallsReport =
        serde_json::from_str(text).map_err(|e| format!("not a syscalls report ({e}): {text}"))?;
    let per = |k: &str, s: &Spread| -> Result<PerCall, String> {
        let g =
            |f: &str, v: Option<f64>| v.ok_or_else(|| format!("syscalls report: {k}.{f} missing"));
        Ok(PerCall {
            median: g("median", s.median)?,
            min: g("min", s.min)?,
            max: g("max", s.max)?,
        })
    };
    Ok(Syscalls {
        cpu: r.cpu,
        getppid_ns: per("getppid_ns", &r.getppid_ns)?,
        udp_send_recv_ns: per("udp_send_recv_ns", &r.udp_send_recv_ns)?,
        unix_send_recv_ns: per("unix_send_recv_ns", &r.unix_send_recv_ns)?,
        command: String::new(),
    })
}

/// Runs a program that prints one JSON object on stdout, bounded in time; returns the text.
fn run_json(what: &str, argv: &[String], limit: Duration) -> Result<String, String> {
    let mut p = Proc::spawn(what, argv)?;
    match p.wait(limit) {
        Waited::Exited(0) => {}
        Waited::Interrupted => return Err("interrupted".into()),
        w => return Err(format!("{what} ended {w:?}: {}", p.stderr_tail(4))),
    }
    Ok(p.stdout.join("\n"))
}

/// Reads a program's JSON report as its contract type.
pub fn read_report<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} printed no JSON report ({e}): {text}"))
}

/// The argv of `bypass <sub> ..`.
fn with_bin(bin: &std::path::Path, args: Vec<String>) -> Vec<String> {
    let mut argv = vec![bin.to_string_lossy().into_owned()];
    argv.extend(args);
    argv
}

/// `bypass noise --cpus LIST --duration S --json [--model-rates R,..]`.
pub fn probe(
    bin: &std::path::Path,
    cpus: &[usize],
    secs: f64,
    model_rates: &[f64],
) -> Result<(Vec<CpuNoise>, Vec<ModelRow>), String> {
    let cmd = NoiseCommand {
        cpus: cpus.to_vec(),
        duration_s: secs,
        model_rates: model_rates.to_vec(),
    };
    let argv = with_bin(bin, cmd.argv());
    let text = run_json("bypass noise", &argv, Duration::from_secs_f64(secs + 20.0))?;
    parse_noise(&text)
}

/// `bypass syscalls --cpu C --json`.
pub fn syscalls(bin: &std::path::Path, cpu: usize) -> Result<Syscalls, String> {
    let argv = with_bin(bin, SyscallsCommand { cpu }.argv());
    let text = run_json("bypass syscalls", &argv, Duration::from_secs(60))?;
    let mut s = parse_syscalls(&text)?;
    s.command = super::paths::shell_line(&argv);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_noise_contract() {
        let v = json!({"type":"noise","duration_s":1.0,"threshold_ns":1000,"time_source":"tsc",
            "cpus":[{"cpu":0,"lost_pct":2.1,"gaps":123,"gaps_per_s":123.0,"gap_p50_ns":1500,
                     "gap_p99_ns":40000,"gap_p999_ns":900000,"gap_max_ns":1200000,"over_10us":9,
                     "over_100us":3,"over_1ms":1,"log_overflow":0,"other_tasks_seen":3,
                     "other_tasks":[{"pid":1,"tid":1,"comm":"x","ran_ns":1234}],"hgrm":null},
                    {"cpu":1,"lost_pct":0.4,"gaps_per_s":10.0}],
            "model":[{"rate":10000.0,"sends":10000,"in_gap_1us":0.01,"in_gap_10us":0.002,
                      "in_gap_100us":0.0005,"delay_p50_ns":0,"delay_p99_ns":3000,
                      "delay_p999_ns":400000,"delay_max_ns":1100000}]});
        let (cpus, model) = parse_noise(&v.to_string()).unwrap();
        assert_eq!(cpus.len(), 2);
        assert_eq!(cpus[0].gap_max_ns, 1_200_000);
        assert_eq!(cpus[0].other_tasks_seen, 3);
        assert_eq!(cpus[1].cpu, 1);
        assert_eq!(model[0].delay_p999_ns, 400_000);
        let p = Probe {
            cpus,
            ..Probe::default()
        };
        assert_eq!(p.max_lost_pct(), 2.1);
        assert!(parse_noise(&json!({"type":"floor"}).to_string()).is_err());
        assert!(
            parse_noise(&json!({"type":"noise"}).to_string()).is_err(),
            "a noise report without cpus"
        );
    }

    #[test]
    fn parses_the_syscalls_contract() {
        let v = json!({"type":"syscalls","cpu":0,"iterations":70000,"batches":7,
            "getppid_ns":{"median":232.0,"min":220.5,"max":260.0},
            "udp_send_recv_ns":{"median":3700.0,"min":3500.0,"max":4100.0},
            "unix_send_recv_ns":{"median":2200.0,"min":2100.0,"max":2500.0}});
        let s = parse_syscalls(&v.to_string()).unwrap();
        assert_eq!(s.getppid_ns.median, 232.0);
        assert_eq!(s.unix_send_recv_ns.max, 2500.0);
        let mut broken = v.clone();
        broken["udp_send_recv_ns"] = json!({"median": 1.0});
        let e = parse_syscalls(&broken.to_string()).unwrap_err();
        assert!(e.contains("udp_send_recv_ns.min"), "{e}");
    }
}
