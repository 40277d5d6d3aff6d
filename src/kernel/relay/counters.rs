//! The relay's counters: messages read and written on both sides, requests forwarded, replies
//! returned, and every message that went no further, by reason. One thread owns them.

use crate::drops::drop_reasons;
use crate::kernel::counters::DropReason;

drop_reasons! {
    /// Why a message read by the relay was not passed on (or a forwarded request will never
    /// be answered). Every message read ends as a forward, a return or one of these.
    RelayDrop {
        /// A datagram shorter than the 32-byte header; streams: a connection ended inside
        /// a message.
        Truncated => "truncated",
        BadMagic => "bad-magic",
        BadVersion => "bad-version",
        /// A datagram whose header `length` is larger than it holds.
        BadLength => "bad-length",
        /// Streams: a message longer than 65536 bytes; the connection is closed.
        Oversize => "oversize",
        /// From a client: a response, error or unknown kind (only requests go upstream).
        NotRequest => "not-request",
        /// From an upstream: a request or unknown kind (only replies go back).
        NotReply => "not-reply",
        /// Every slot of the mapping table was live.
        TableFull => "table-full",
        /// A reply naming no live slot, a reused slot (old generation), or a slot whose
        /// request went to another upstream.
        UnknownMapping => "unknown-mapping",
        /// A forwarded request unanswered for `--expiry-ms`: its slot was freed.
        Expired => "expired",
        /// A stream upstream that could not be connected or reconnected.
        UpstreamDown => "upstream-down",
        /// A forwarded request lost with its upstream connection (closed or reset).
        UpstreamReset => "upstream-reset",
        /// A reply for a stream client whose connection had closed.
        ClientGone => "client-gone",
        /// A connection's bounded write buffer was full.
        Backpressure => "backpressure",
        /// A send failed for another reason.
        SendError => "send-error",
    }
}

impl RelayDrop {
    /// The relay's name for a framing verdict of [`crate::kernel::framing`].
    pub fn from_framing(r: DropReason) -> RelayDrop {
        match r {
            DropReason::BadMagic => RelayDrop::BadMagic,
            DropReason::BadVersion => RelayDrop::BadVersion,
            DropReason::Oversize => RelayDrop::Oversize,
            DropReason::BadLength => RelayDrop::BadLength,
            _ => RelayDrop::Truncated,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Messages read, both sides.
    pub rx: u64,
    /// Messages written, both sides.
    pub tx: u64,
    pub forwarded: u64,
    pub returned: u64,
    /// Stream connections accepted from clients.
    pub connections: u64,
    /// Stream upstream connections (re)opened after the first.
    pub reconnects: u64,
    pub drops: [u64; RelayDrop::COUNT],
}

impl RelayCounters {
    #[inline]
    pub fn drop(&mut self, r: RelayDrop) {
        self.drops[usize::from(r)] += 1;
    }

    #[inline]
    pub fn drop_n(&mut self, r: RelayDrop, n: u64) {
        self.drops[usize::from(r)] += n;
    }

    pub fn get(&self, r: RelayDrop) -> u64 {
        self.drops[usize::from(r)]
    }

    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_framing_maps_by_name() {
        let mut names: Vec<_> = RelayDrop::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RelayDrop::COUNT);
        for r in [
            DropReason::BadMagic,
            DropReason::BadVersion,
            DropReason::Oversize,
        ] {
            assert_eq!(RelayDrop::from_framing(r).name(), r.name());
        }
        let mut c = RelayCounters::default();
        c.drop(RelayDrop::TableFull);
        c.drop_n(RelayDrop::Expired, 2);
        assert_eq!((c.get(RelayDrop::Expired), c.dropped()), (2, 3));
    }
}
