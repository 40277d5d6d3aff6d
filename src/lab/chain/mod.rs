//! Chains of relays in the lab (issue 13): the scenario keys of the `chain` path kind, the
//! per-hop arithmetic (slopes of latency against depth, tail amplification) and the check of
//! every relay's counters against the client's.

pub mod counters;
pub mod figures;
pub mod plan;
