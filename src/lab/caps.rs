//! What the `bypass` binary the lab drives can do: subcommands and `bypass load` transports
//! arrive from parallel work, and a path whose program is missing is skipped with that reason
//! rather than faked.

use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Default)]
pub struct Caps {
    pub kernel_serve: bool,
    /// `bypass load --transport` values.
    pub transports: Vec<String>,
    /// `bypass load --rates` (sweeps in one run).
    pub rates: bool,
    /// `bypass load --hlog` (lossless rounds; without it rounds merge from their .hgrm).
    pub hlog: bool,
    /// `bypass noise`, `bypass floor`, `bypass syscalls`: the platform measurements.
    pub noise: bool,
    pub floor: bool,
    pub syscalls: bool,
}

fn help(bin: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(bin)
        .args(args)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The possible values clap lists for `flag` in a help text.
fn possible_values(help: &str, flag: &str) -> Vec<String> {
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(flag));
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let mut section = vec![first.to_string()];
    section.extend(
        lines
            .take_while(|l| !l.trim_start().starts_with("--") && !l.trim_start().starts_with("-h"))
            .map(str::to_string),
    );
    let text = section.join("\n");
    // Short help: "[possible values: udp, tcp]"; long help: "- udp: ..." lines.
    if let Some(i) = text.find("[possible values:") {
        let rest = &text[i + "[possible values:".len()..];
        let end = rest.find(']').unwrap_or(rest.len());
        return rest[..end]
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
    }
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- "))
        .map(|l| l.split(':').next().unwrap_or("").trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

impl Caps {
    pub fn probe(bin: &Path) -> Caps {
        let load = help(bin, &["load"]).unwrap_or_default();
        Caps {
            kernel_serve: help(bin, &["kernel-serve"]).is_some(),
            transports: possible_values(&load, "--transport"),
            rates: load.contains("--rates"),
            hlog: load.contains("--hlog"),
            noise: help(bin, &["noise"]).is_some(),
            floor: help(bin, &["floor"]).is_some(),
            syscalls: help(bin, &["syscalls"]).is_some(),
        }
    }

    pub fn has_transport(&self, t: &str) -> bool {
        self.transports.iter().any(|x| x == t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_possible_values() {
        let short = "      --transport <TRANSPORT>  How [default: udp] [possible values: udp, tcp]\n      --wait <W>\n";
        assert_eq!(possible_values(short, "--transport"), ["udp", "tcp"]);
        let long = "      --transport <TRANSPORT>\n          How requests travel\n\n          Possible values:\n          - udp:  Kernel UDP socket\n          - dpdk: DPDK port\n\n          [default: udp]\n\n      --wait <WAIT>\n          - busy: spin\n";
        assert_eq!(possible_values(long, "--transport"), ["udp", "dpdk"]);
        assert!(possible_values(long, "--nope").is_empty());
    }
}
