//! The lab's contracts with the programs it runs as processes: per program a typed command
//! builder (settings -> argv) and its JSON report as a type holding the fields the lab reads.
//! A leaf below the programs and the lab (options, stats and serde only). The programs write
//! their reports by serializing these types (their own structs embed them with
//! `#[serde(flatten)]` and add what the lab does not read), so a renamed report field changes
//! writer and reader at once or breaks the build, never a lab report. The tests parse each
//! builder's argv with the program's own clap parser and read each report from the program's
//! own writer.

#![forbid(unsafe_code)]

pub mod load;
pub mod platform;
pub mod relay;
pub mod serve;
#[cfg(test)]
mod tests;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

/// A JSON document exactly as a program wrote it, kept whole for results.json (the lab reads
/// typed fields from [`Kept::typed`], never from this).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Verbatim(serde_json::Value);

impl Verbatim {
    /// A document the lab writes itself (sockperf's figures), in the same slot.
    pub fn of(v: &impl Serialize) -> Result<Verbatim, String> {
        serde_json::to_value(v)
            .map(Verbatim)
            .map_err(|e| e.to_string())
    }
}

/// A report read twice from one text: the typed fields the lab uses, and the document whole.
#[derive(Debug, Clone)]
pub struct Kept<T> {
    pub typed: T,
    pub verbatim: Verbatim,
}

impl<T: DeserializeOwned> Kept<T> {
    fn from_value(v: serde_json::Value) -> Result<Kept<T>, serde_json::Error> {
        Ok(Kept {
            typed: T::deserialize(&v)?,
            verbatim: Verbatim(v),
        })
    }

    /// Parses a JSON text (a file, or one stdout line).
    pub fn parse(text: &str) -> Result<Kept<T>, serde_json::Error> {
        Kept::from_value(serde_json::from_str(text)?)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Kept<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Kept::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// The `"type"` every JSON-lines program tags its objects with.
#[derive(Deserialize)]
struct Tagged {
    #[serde(rename = "type")]
    kind: String,
}

/// The last stdout line tagged `"type": "final"` (a server's final report), read as `T`;
/// None when there is none, Err when it does not match the contract.
pub fn last_final<T: DeserializeOwned>(lines: &[String]) -> Option<Result<Kept<T>, String>> {
    let line = lines
        .iter()
        .rev()
        .find(|l| serde_json::from_str::<Tagged>(l).is_ok_and(|t| t.kind == "final"))?;
    Some(Kept::parse(line).map_err(|e| format!("final report: {e}")))
}

/// Every stdout line tagged `"type": kind`, read as `T` (lines of other types are skipped).
pub fn lines_of<T: DeserializeOwned>(lines: &[String], kind: &str) -> Result<Vec<T>, String> {
    lines
        .iter()
        .filter(|l| serde_json::from_str::<Tagged>(l).is_ok_and(|t| t.kind == kind))
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{kind} line: {e}")))
        .collect()
}

/// Builds an argv: flags and their values as the programs' clap parsers spell them.
#[derive(Debug, Default)]
struct Argv(Vec<String>);

impl Argv {
    fn new(sub: &str) -> Argv {
        Argv(vec![sub.to_string()])
    }

    fn flag(&mut self, name: &str) -> &mut Argv {
        self.0.push(name.to_string());
        self
    }

    fn opt(&mut self, name: &str, value: impl ToString) -> &mut Argv {
        self.0.push(name.to_string());
        self.0.push(value.to_string());
        self
    }

    fn path(&mut self, name: &str, p: &std::path::Path) -> &mut Argv {
        self.opt(name, p.to_string_lossy())
    }

    /// EAL arguments after `--`, when there are any.
    fn eal(&mut self, eal: &[String]) -> &mut Argv {
        if !eal.is_empty() {
            self.0.push("--".into());
            self.0.extend(eal.iter().cloned());
        }
        self
    }

    fn done(&mut self) -> Vec<String> {
        std::mem::take(&mut self.0)
    }
}
