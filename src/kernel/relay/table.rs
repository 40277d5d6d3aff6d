//! The mapping table: a fixed number of slots allocated at start, one per request in flight.
//! A forwarded request carries a relay id naming its slot (index in the low 32 bits, the
//! slot's generation in the high 32), so a reply finds its client in O(1) and a late reply to
//! a slot freed and reused since is refused by its generation. Live slots are also linked in
//! the order they were taken: with one expiry for all, that is the order they expire in, so
//! expiring looks at the oldest only and never scans.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Who a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A UDP peer: the reply goes back to this address.
    Udp(SocketAddr),
    /// A stream connection: its slot in the relay's connection list and that slot's
    /// generation (a closed and reused connection slot is another client).
    Stream { conn: u32, gen: u32 },
}

/// What a slot remembers of one forwarded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub client: Client,
    /// The client's own request id, restored in the reply.
    pub request_id: u64,
    /// The upstream it went to, and (stream upstreams) which pooled connection.
    pub upstream: u16,
    pub conn: u16,
}

const NIL: u32 = u32::MAX;
/// Slots a table may have: indices stay below the id's 32-bit field and NIL.
pub const MAX_SLOTS: usize = 1 << 24;

#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: Entry,
    gen: u32,
    live: bool,
    taken_at: Instant,
    prev: u32,
    next: u32,
}

/// Why a reply found no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown;

pub struct Table {
    slots: Vec<Slot>,
    /// Indices of free slots (a stack: a freed slot is reused soonest, while it is cached).
    free: Vec<u32>,
    /// Oldest and newest live slot.
    head: u32,
    tail: u32,
    live: usize,
    expiry: Duration,
}

/// The id a forwarded request carries for slot `index` at generation `gen`.
#[inline]
pub fn relay_id(index: u32, gen: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(index)
}

impl Table {
    /// A table of `n` slots (1..=[`MAX_SLOTS`]) whose entries expire after `expiry`.
    pub fn new(n: usize, expiry: Duration) -> Table {
        assert!((1..=MAX_SLOTS).contains(&n), "table size checked by config");
        let blank = Slot {
            entry: Entry {
                client: Client::Stream { conn: 0, gen: 0 },
                request_id: 0,
                upstream: 0,
                conn: 0,
            },
            gen: 0,
            live: false,
            taken_at: Instant::now(),
            prev: NIL,
            next: NIL,
        };
        Table {
            slots: vec![blank; n],
            free: (0..n as u32).rev().collect(),
            head: NIL,
            tail: NIL,
            live: 0,
            expiry,
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    /// Takes a free slot for `e`; returns its relay id, or None when every slot is live.
    #[inline]
    pub fn insert(&mut self, e: Entry, now: Instant) -> Option<u64> {
        let i = self.free.pop()?;
        let tail = self.tail;
        let s = &mut self.slots[i as usize];
        *s = Slot {
            entry: e,
            live: true,
            taken_at: now,
            prev: tail,
            next: NIL,
            ..*s
        };
        let gen = s.gen;
        match tail {
            NIL => self.head = i,
            t => self.slots[t as usize].next = i,
        }
        self.tail = i;
        self.live += 1;
        Some(relay_id(i, gen))
    }

    /// The entry a reply from `upstream` with relay id `id` maps to, freeing its slot.
    #[inline]
    pub fn take(&mut self, id: u64, upstream: u16) -> Result<Entry, Unknown> {
        let (i, gen) = ((id & 0xffff_ffff) as usize, (id >> 32) as u32);
        match self.slots.get(i) {
            Some(s) if s.live && s.gen == gen && s.entry.upstream == upstream => {
                let e = s.entry;
                self.free_slot(i as u32);
                Ok(e)
            }
            _ => Err(Unknown),
        }
    }

    /// Frees every slot older than the expiry; returns how many.
    #[inline]
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut n = 0;
        while self.head != NIL {
            let h = self.head;
            if now.saturating_duration_since(self.slots[h as usize].taken_at) < self.expiry {
                break;
            }
            self.free_slot(h);
            n += 1;
        }
        n
    }

    /// Frees every live slot whose entry matches; returns how many. A walk of the live
    /// slots, for the rare loss of an upstream connection.
    pub fn remove_where(&mut self, pred: impl Fn(&Entry) -> bool) -> u64 {
        let mut n = 0;
        let mut i = self.head;
        while i != NIL {
            let next = self.slots[i as usize].next;
            if pred(&self.slots[i as usize].entry) {
                self.free_slot(i);
                n += 1;
            }
            i = next;
        }
        n
    }

    fn free_slot(&mut self, i: u32) {
        let (prev, next) = {
            let s = &mut self.slots[i as usize];
            s.live = false;
            // A late reply naming the old generation is refused from now on.
            s.gen = s.gen.wrapping_add(1);
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
        self.free.push(i);
        self.live -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, upstream: u16) -> Entry {
        Entry {
            client: Client::Udp("127.0.0.1:9".parse().unwrap()),
            request_id: id,
            upstream,
            conn: 0,
        }
    }

    #[test]
    fn full_table_refuses_then_frees() {
        let now = Instant::now();
        let mut t = Table::new(2, Duration::from_secs(1));
        let a = t.insert(entry(10, 0), now).unwrap();
        let b = t.insert(entry(11, 1), now).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.insert(entry(12, 0), now), None, "every slot live");
        assert_eq!(t.take(b, 1).unwrap().request_id, 11);
        assert_eq!(t.live(), 1);
        assert!(t.insert(entry(12, 0), now).is_some());
    }

    #[test]
    fn generation_refuses_a_late_reply_to_a_reused_slot() {
        let now = Instant::now();
        let mut t = Table::new(1, Duration::from_secs(1));
        let old = t.insert(entry(1, 0), now).unwrap();
        assert_eq!(t.take(old, 0).unwrap().request_id, 1);
        let new = t.insert(entry(2, 0), now).unwrap();
        assert_eq!(old & 0xffff_ffff, new & 0xffff_ffff, "the same slot");
        assert_eq!(t.take(old, 0), Err(Unknown), "old generation");
        assert_eq!(t.take(new, 0).unwrap().request_id, 2);
        assert_eq!(t.take(new, 0), Err(Unknown), "answered twice");
    }

    #[test]
    fn unknown_and_wrong_upstream_are_refused() {
        let now = Instant::now();
        let mut t = Table::new(4, Duration::from_secs(1));
        let a = t.insert(entry(1, 2), now).unwrap();
        assert_eq!(t.take(relay_id(3, 0), 2), Err(Unknown), "never taken");
        assert_eq!(t.take(relay_id(99, 0), 2), Err(Unknown), "out of range");
        assert_eq!(t.take(a, 1), Err(Unknown), "another upstream");
        assert_eq!(t.take(a, 2).unwrap().request_id, 1);
    }

    #[test]
    fn expiry_frees_the_oldest_first() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Table::new(3, ms(100));
        let a = t.insert(entry(1, 0), t0).unwrap();
        let b = t.insert(entry(2, 0), t0 + ms(50)).unwrap();
        let c = t.insert(entry(3, 0), t0 + ms(60)).unwrap();
        assert_eq!(t.take(b, 0).unwrap().request_id, 2, "unlinked mid-list");
        assert_eq!(t.expire(t0 + ms(99)), 0);
        assert_eq!(t.expire(t0 + ms(100)), 1);
        assert_eq!(t.take(a, 0), Err(Unknown), "expired");
        assert_eq!(t.expire(t0 + ms(159)), 0);
        assert_eq!(t.expire(t0 + ms(160)), 1);
        assert_eq!((t.take(c, 0), t.live()), (Err(Unknown), 0));
        assert!(t.insert(entry(4, 0), t0).is_some());
    }

    #[test]
    fn remove_where_drops_one_upstream_connection() {
        let now = Instant::now();
        let mut t = Table::new(4, Duration::from_secs(1));
        for (i, up) in [0u16, 1, 0, 1].into_iter().enumerate() {
            t.insert(entry(i as u64, up), now).unwrap();
        }
        assert_eq!(t.remove_where(|e| e.upstream == 1), 2);
        assert_eq!(t.live(), 2);
        assert_eq!(t.expire(now + Duration::from_secs(1)), 2);
    }
}
