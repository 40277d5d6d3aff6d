//! The relay's mapping table: which client flow a relay source port stands for. Fixed size,
//! allocated when the graph is built; a slot's index is the relay source port's offset, so a
//! reply finds its flow by one index and no search (docs/protocol.md, "Relays").

use crate::wire::{Ipv4Address, MacAddress};

/// Slots tried for a new flow from its hash before the table counts as full for it: a short
/// linear probe, so a claim is a handful of compares and never a scan of the table.
pub const PROBE: usize = 8;

/// Where a reply goes back to: the client's addresses and the port (index in the worker's
/// list) its request came in on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Client {
    pub mac: MacAddress,
    pub ip: Ipv4Address,
    pub port: u16,
    pub ingress: u16,
}

impl Client {
    /// A 64-bit mix of the address and port (Fibonacci hashing): the table's probe start and
    /// the hash balancing rule, so one flow sticks to one slot and one upstream.
    #[inline]
    pub fn hash(&self) -> u64 {
        let key = (u64::from(u32::from_be_bytes(self.ip.0)) << 16) | u64::from(self.port);
        key.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    live: bool,
    client: Client,
    /// The upstream the flow was bound to when claimed (what hash balancing keeps).
    upstream: u16,
    /// TSC of the flow's last request or reply.
    last: u64,
}

/// A claimed flow: its slot and the upstream it is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub slot: usize,
    pub upstream: u16,
    /// True when the slot was free (or expired) and now holds this flow.
    pub new: bool,
}

pub struct FlowTable {
    slots: Box<[Slot]>,
    /// An entry untouched for longer than this (TSC ticks) is free again.
    expiry: u64,
}

impl FlowTable {
    /// `size` slots (at least 1), entries expiring `expiry_ticks` after their last use.
    pub fn new(size: usize, expiry_ticks: u64) -> FlowTable {
        FlowTable {
            slots: vec![Slot::default(); size.max(1)].into(),
            expiry: expiry_ticks,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    #[inline]
    fn alive(&self, s: &Slot, now: u64) -> bool {
        s.live && now.wrapping_sub(s.last) <= self.expiry
    }

    /// The flow of `client`: its live slot, or a free or expired one among the [`PROBE`]
    /// slots from its hash, bound to `pick(hash)`'s upstream. None when all of them hold other
    /// live flows: the caller drops the request as "table-full".
    #[inline]
    pub fn claim(
        &mut self,
        client: &Client,
        now: u64,
        pick: impl FnOnce(u64) -> u16,
    ) -> Option<Flow> {
        let n = self.slots.len();
        let hash = client.hash();
        let start = ((hash >> 32) as usize) % n;
        let mut free = None;
        for i in 0..PROBE.min(n) {
            let at = (start + i) % n;
            let s = &self.slots[at];
            if self.alive(s, now) {
                if s.client == *client {
                    let upstream = s.upstream;
                    self.slots[at].last = now;
                    return Some(Flow {
                        slot: at,
                        upstream,
                        new: false,
                    });
                }
            } else if free.is_none() {
                free = Some(at);
            }
        }
        let at = free?;
        let upstream = pick(hash);
        self.slots[at] = Slot {
            live: true,
            client: *client,
            upstream,
            last: now,
        };
        Some(Flow {
            slot: at,
            upstream,
            new: true,
        })
    }

    /// The client of the live flow in `slot`, its use refreshed; None for a slot out of
    /// range, never used or expired (a late reply).
    #[inline]
    pub fn reply_to(&mut self, slot: usize, now: u64) -> Option<Client> {
        let s = *self.slots.get(slot)?;
        if !self.alive(&s, now) {
            return None;
        }
        self.slots[slot].last = now;
        Some(s.client)
    }

    /// Live flows at `now` (a walk of the whole table: for reports and tests, not the packet
    /// path).
    pub fn live(&self, now: u64) -> usize {
        self.slots.iter().filter(|s| self.alive(s, now)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: u16) -> Client {
        Client {
            mac: MacAddress([2, 0, 0, 0, 0, 9]),
            ip: Ipv4Address([198, 18, 0, 2]),
            port: 40_000 + n,
            ingress: 0,
        }
    }

    #[test]
    fn one_flow_one_slot_until_it_expires() {
        let mut t = FlowTable::new(64, 100);
        let a = t.claim(&client(1), 10, |_| 3).unwrap();
        assert!(a.new);
        assert_eq!(a.upstream, 3);
        let again = t
            .claim(&client(1), 50, |_| panic!("bound already"))
            .unwrap();
        assert_eq!((again.slot, again.upstream, again.new), (a.slot, 3, false));
        assert_eq!(t.reply_to(a.slot, 120), Some(client(1)), "refreshed at 50");
        assert_eq!(t.reply_to(a.slot, 221), None, "expired 100 after 120");
        assert_eq!(t.live(221), 0);
        let b = t.claim(&client(1), 300, |_| 1).unwrap();
        assert!(b.new, "an expired flow is claimed afresh");
    }

    #[test]
    fn full_when_every_probed_slot_is_live() {
        // A table smaller than the probe: every client hashes into the same 4 slots.
        let mut t = FlowTable::new(4, u64::MAX);
        let slots: Vec<usize> = (0..4)
            .map(|n| t.claim(&client(n), 0, |_| 0).unwrap().slot)
            .collect();
        let mut sorted = slots.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2, 3]);
        assert_eq!(t.claim(&client(9), 1, |_| 0), None, "table full");
        assert_eq!(t.live(1), 4);
        // The existing flows still find their slots.
        assert_eq!(t.claim(&client(2), 2, |_| 0).unwrap().slot, slots[2]);
    }

    #[test]
    fn expired_slots_are_reused_when_full() {
        let mut t = FlowTable::new(2, 10);
        t.claim(&client(0), 0, |_| 0).unwrap();
        t.claim(&client(1), 0, |_| 0).unwrap();
        assert_eq!(t.claim(&client(2), 5, |_| 0), None);
        assert!(t.claim(&client(2), 11, |_| 0).unwrap().new);
    }

    #[test]
    fn unknown_slots_have_no_client() {
        let mut t = FlowTable::new(8, 10);
        assert_eq!(t.reply_to(3, 0), None, "never used");
        assert_eq!(t.reply_to(8, 0), None, "out of range");
        assert_eq!(t.reply_to(usize::MAX, 0), None);
    }

    #[test]
    fn other_ingress_is_another_flow() {
        let mut t = FlowTable::new(64, 100);
        let a = t.claim(&client(1), 0, |_| 0).unwrap();
        let mut c = client(1);
        c.ingress = 1;
        let b = t.claim(&c, 0, |_| 0).unwrap();
        assert_ne!(a.slot, b.slot);
        assert_eq!(t.claim(&c, 1, |_| 7).unwrap().slot, b.slot);
    }
}
