//! The `config_toml` checks, shared (by `#[path]`) between the fuzz target
//! and tests/fuzz_corpus.rs: arbitrary bytes, read as UTF-8 (lossily, so
//! every input reaches the parser), through both TOML readers, the serve
//! config's and the lab scenario's, and on through what each does next
//! with a parsed file (`validate`, `resolve_with_cpus`). Each step must
//! come back Ok or with an error that says something; a panic or an empty
//! message is a failure.

use bypass::lab::scenario::{Scenario, ScenarioError};
use bypass::options::FieldError;
use bypass::server::config::ServeConfig;

/// The CPU count the scenario is resolved against: fixed, so a run does
/// not depend on the machine it is on.
const CPUS: usize = 4;

/// Every check on `data`.
pub fn check_config_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    serve(&text);
    scenario(&text);
}

fn serve(text: &str) {
    match ServeConfig::from_toml(text) {
        Ok(c) => {
            if let Err(e) = c.validate() {
                field_error("validate", &e);
            }
        }
        Err(e) => field_error("from_toml", &e),
    }
}

fn field_error(step: &str, e: &FieldError) {
    assert!(
        !e.field.is_empty(),
        "serve {step}: an error naming no field: {e:?}"
    );
    assert!(
        !e.message.trim().is_empty(),
        "serve {step}: an empty message: {e:?}"
    );
}

fn scenario(text: &str) {
    match Scenario::from_toml(text) {
        Ok(s) => {
            if let Err(e) = s.resolve_with_cpus(CPUS) {
                scenario_error("resolve", &e);
            }
        }
        Err(e) => scenario_error("from_toml", &e),
    }
}

fn scenario_error(step: &str, e: &ScenarioError) {
    assert!(
        !e.msg.trim().is_empty(),
        "scenario {step}: an empty message: {e:?}"
    );
    assert!(
        !e.to_string().trim().is_empty(),
        "scenario {step}: says nothing"
    );
}
