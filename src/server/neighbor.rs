//! Asking a neighbour for its MAC before the workers start: a relay's upstream that is not an
//! address of this process, and has no configured MAC, is resolved once by ARP on the port it
//! is reached by. Once, at start: the table is then fixed, and the packet path never waits on
//! a resolution (a peer whose MAC changes needs a restart, or `upstream_mac`).

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use crate::dpdk::{Mbuf, Mempool, Port};
use crate::wire::arp::{emit_arp_frame, MIN_FRAME};
use crate::wire::{ArpOperation, ArpPacket, EtherType, EthernetFrame, Ipv4Address, MacAddress};

/// Between two requests: a kernel peer answers in microseconds; a request lost to a link
/// that is still coming up is sent again.
const RETRY: Duration = Duration::from_millis(100);

/// The MAC `target` answers with on `port`, asked as `me`; an error after `timeout`.
/// Frames other than the answer that arrive meanwhile are dropped: nothing is served yet.
pub fn resolve(
    port: &mut Port,
    pool: &Mempool,
    me: (MacAddress, Ipv4Address),
    target: Ipv4Address,
    timeout: Duration,
) -> Result<MacAddress, String> {
    let mut rx = port
        .take_rx(0)
        .ok_or_else(|| format!("{}: rx queue 0 is in use", port.name()))?;
    let mut tx = port
        .take_tx(0)
        .ok_or_else(|| format!("{}: tx queue 0 is in use", port.name()))?;
    let deadline = Instant::now() + timeout;
    let mut pkts: Vec<Mbuf> = Vec::with_capacity(32);
    let mut next_ask = Instant::now();
    let mut found = None;
    while found.is_none() && Instant::now() < deadline {
        if Instant::now() >= next_ask {
            let mut m = pool
                .alloc()
                .ok_or_else(|| "mempool exhausted while asking by ARP".to_string())?;
            if let Some(buf) = m.append(MIN_FRAME) {
                emit_arp_frame(
                    buf,
                    ArpOperation::Request,
                    MacAddress::BROADCAST,
                    me,
                    (MacAddress([0; 6]), target),
                );
                let mut out = vec![m];
                tx.tx(&mut out);
                Mbuf::free_all(&mut out);
            }
            next_ask += RETRY;
        }
        rx.rx(&mut pkts);
        found = pkts.iter().find_map(|p| answer(p.data(), target));
        Mbuf::free_all(&mut pkts);
        std::thread::sleep(Duration::from_millis(1));
    }
    port.return_rx(rx);
    port.return_tx(tx);
    found.ok_or_else(|| {
        format!(
            "no ARP answer from {target} on {} within {:.1} s (give upstream_mac, or check the address)",
            port.name(),
            timeout.as_secs_f64()
        )
    })
}

/// The sender MAC of an ARP message from `target` (its reply, or its own request: either
/// says where it is).
fn answer(frame: &[u8], target: Ipv4Address) -> Option<MacAddress> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EtherType::Arp {
        return None;
    }
    let arp = ArpPacket::new_checked(eth.payload()).ok()?;
    let mac = arp.sender_hw_addr();
    (arp.sender_proto_addr() == target && !mac.is_multicast() && !mac.is_unspecified())
        .then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_targets_arp_is_an_answer() {
        let peer = (MacAddress([2, 0, 0, 0, 0, 9]), Ipv4Address([198, 18, 4, 2]));
        let me = (
            MacAddress([2, 0, 0, 0, 0, 1]),
            Ipv4Address([198, 18, 4, 11]),
        );
        let mut f = [0u8; MIN_FRAME];
        emit_arp_frame(&mut f, ArpOperation::Reply, me.0, peer, me);
        assert_eq!(answer(&f, peer.1), Some(peer.0));
        assert_eq!(answer(&f, me.1), None, "from someone else");
        emit_arp_frame(
            &mut f,
            ArpOperation::Request,
            MacAddress::BROADCAST,
            peer,
            (MacAddress([0; 6]), me.1),
        );
        assert_eq!(
            answer(&f, peer.1),
            Some(peer.0),
            "its own request says it too"
        );
        assert_eq!(answer(&f[..20], peer.1), None);
        f[12] = 0x08;
        f[13] = 0x00;
        assert_eq!(answer(&f, peer.1), None, "not ARP");
    }
}
