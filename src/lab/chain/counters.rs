//! Every relay's own count against the client's: a chain whose hops forwarded or returned
//! more, or fewer, than the client sent and received is a failed round, not a footnote (a
//! relay that answers by itself, or loses requests the client blames on the server, would
//! otherwise pass for latency).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::relay::KernelRelayFinal;
use crate::contract::serve::RelayLine;

/// What one relay of a chain did over a round, from its final line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopCount {
    /// 1 is the client's neighbour, N the server's.
    pub hop: u32,
    pub listen: String,
    /// Requests sent on to the next hop (or the server).
    pub forwarded: u64,
    /// Replies mapped back towards the client.
    pub returned: u64,
    /// The relay's drops by reason (only reasons that occurred).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub drops: BTreeMap<String, u64>,
}

impl HopCount {
    pub fn from_fastpath(hop: u32, l: &RelayLine) -> HopCount {
        HopCount {
            hop,
            listen: l.listen.clone(),
            forwarded: l.forwarded,
            returned: l.returned,
            drops: l.drops.clone(),
        }
    }

    pub fn from_kernel(hop: u32, listen: String, f: &KernelRelayFinal) -> HopCount {
        HopCount {
            hop,
            listen,
            forwarded: f.forwarded,
            returned: f.returned,
            drops: f.drops.clone(),
        }
    }
}

/// The client's side of a round: measured sent / received / lost and the warmup requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCounts {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub warmup_sent: u64,
}

/// Checks the hops' counts against the client's and each other's. Always: no hop forwards
/// more than the client sent (warmup included) or returns more than it forwarded, none
/// returns fewer replies than the client received, and along the chain requests are only
/// lost, never made (forwarded falls from hop 1 to N, returned rises from hop 1 to N). When
/// the client lost nothing and no relay dropped anything, every hop forwarded and returned
/// the very same number, at least every measured request.
pub fn check(client: &ClientCounts, hops: &[HopCount]) -> Result<(), String> {
    let total = client.sent + client.warmup_sent;
    for h in hops {
        let k = h.hop;
        if h.forwarded > total {
            return Err(format!(
                "hop {k} forwarded {} requests, more than the client sent ({total} with warmup)",
                h.forwarded
            ));
        }
        if h.returned > h.forwarded {
            return Err(format!(
                "hop {k} returned {} replies for {} requests it forwarded",
                h.returned, h.forwarded
            ));
        }
        if h.returned < client.received {
            return Err(format!(
                "hop {k} returned {} replies, fewer than the client received ({})",
                h.returned, client.received
            ));
        }
    }
    for w in hops.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.forwarded > a.forwarded || b.returned < a.returned {
            return Err(format!(
                "hop {} forwarded {} / returned {} but hop {} forwarded {} / returned {}: counts along the chain disagree",
                a.hop, a.forwarded, a.returned, b.hop, b.forwarded, b.returned
            ));
        }
    }
    let clean = client.lost == 0 && hops.iter().all(|h| h.drops.is_empty());
    if let (true, Some(first)) = (clean, hops.first()) {
        let n = first.forwarded;
        if let Some(h) = hops.iter().find(|h| h.forwarded != n || h.returned != n) {
            return Err(format!(
                "nothing was lost, yet hop {} forwarded {} and returned {} where hop 1 forwarded {n}",
                h.hop, h.forwarded, h.returned
            ));
        }
        if n < client.sent {
            return Err(format!(
                "the relays forwarded {n} requests, fewer than the client's {} measured ones",
                client.sent
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(k: u32, f: u64, r: u64) -> HopCount {
        HopCount {
            hop: k,
            listen: format!("198.18.4.{}:7777", k + 2),
            forwarded: f,
            returned: r,
            drops: BTreeMap::new(),
        }
    }

    const CLIENT: ClientCounts = ClientCounts {
        sent: 1000,
        received: 1000,
        lost: 0,
        warmup_sent: 200,
    };

    #[test]
    fn matching_counts_pass_with_warmup_included() {
        let hops = [hop(1, 1200, 1200), hop(2, 1200, 1200), hop(3, 1200, 1200)];
        check(&CLIENT, &hops).unwrap();
        check(&CLIENT, &[]).unwrap();
    }

    #[test]
    fn counts_that_disagree_fail_naming_the_hop() {
        let more = check(&CLIENT, &[hop(1, 1201, 1201)]).unwrap_err();
        assert!(
            more.contains("hop 1 forwarded 1201") && more.contains("1200 with warmup"),
            "{more}"
        );
        let fewer = check(&CLIENT, &[hop(1, 1200, 999)]).unwrap_err();
        assert!(
            fewer.contains("fewer than the client received (1000)"),
            "{fewer}"
        );
        let unequal = check(&CLIENT, &[hop(1, 1200, 1200), hop(2, 1200, 1199)]).unwrap_err();
        assert!(unequal.contains("disagree"), "{unequal}");
        // A warmup request may be unanswered without the measured counters showing it.
        check(&CLIENT, &[hop(1, 1100, 1100), hop(2, 1100, 1100)]).unwrap();
        let lost_silently = check(&CLIENT, &[hop(1, 1200, 1200), hop(2, 1199, 1200)]).unwrap_err();
        assert!(
            lost_silently.contains("hop 2 returned 1200 replies for 1199"),
            "{lost_silently}"
        );
        let made_up = check(&CLIENT, &[hop(1, 1199, 1199), hop(2, 1200, 1199)]).unwrap_err();
        assert!(made_up.contains("disagree"), "{made_up}");
        let too_few = check(&CLIENT, &[hop(1, 999, 999)]).unwrap_err();
        assert!(
            too_few.contains("fewer than the client received"),
            "{too_few}"
        );
    }

    #[test]
    fn loss_relaxes_equality_but_not_the_bounds() {
        let lossy = ClientCounts {
            received: 990,
            lost: 10,
            ..CLIENT
        };
        // Lost between hop 2 and the server: hop 2 forwarded them, nobody returned them.
        check(&lossy, &[hop(1, 1200, 1190), hop(2, 1200, 1190)]).unwrap();
        let mut dropped = hop(2, 1195, 1190);
        dropped.drops.insert("table-full".into(), 5);
        check(&lossy, &[hop(1, 1200, 1190), dropped]).unwrap();
        let e = check(&lossy, &[hop(1, 989, 989)]).unwrap_err();
        assert!(e.contains("fewer than the client received (990)"), "{e}");
        let e = check(&lossy, &[hop(1, 1200, 1190), hop(2, 1200, 1189)]).unwrap_err();
        assert!(e.contains("disagree"), "{e}");
    }
}
