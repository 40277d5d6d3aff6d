//! Per-thread counters of the kernel servers: messages in, replies out, and every message
//! that got no reply, by reason. Each thread owns its block (no sharing, no atomics) and
//! hands it back when it ends; the final report sums them.

/// Why a received message was not answered. Every received message ends either as a
/// sent reply (`tx`) or under exactly one of these, so `rx == tx + drops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// UDP: a datagram shorter than the 32-byte header. Streams: the peer closed with
    /// part of a message unread.
    Truncated,
    BadMagic,
    BadVersion,
    /// A response, an error or an unknown kind: answering those would let two servers
    /// bounce a message forever.
    NotRequest,
    /// UDP: the header's `length` is larger than the datagram holds.
    BadLength,
    /// Streams: a message longer than 65536 bytes in total; the connection is closed.
    Oversize,
    /// sockperf: shorter than its 14-byte header.
    SockperfMalformed,
    /// sockperf: no pong-request bit (throughput or warm-up traffic); consumed as intended.
    SockperfNoReplyWanted,
    /// sockperf: the client bit is clear, i.e. a server's answer.
    SockperfNotClient,
    /// Streams: the peer went away before its replies could be written.
    PeerClosed,
    /// The reply could not be sent for another reason.
    SendError,
}

pub const REASONS: usize = 11;

impl DropReason {
    pub const ALL: [DropReason; REASONS] = [
        DropReason::Truncated,
        DropReason::BadMagic,
        DropReason::BadVersion,
        DropReason::NotRequest,
        DropReason::BadLength,
        DropReason::Oversize,
        DropReason::SockperfMalformed,
        DropReason::SockperfNoReplyWanted,
        DropReason::SockperfNotClient,
        DropReason::PeerClosed,
        DropReason::SendError,
    ];

    /// The reasons a UDP server can count (the sockperf ones only when it serves sockperf).
    pub const UDP: &'static [DropReason] = &[
        DropReason::Truncated,
        DropReason::BadMagic,
        DropReason::BadVersion,
        DropReason::NotRequest,
        DropReason::BadLength,
        DropReason::SendError,
    ];
    pub const SOCKPERF: &'static [DropReason] = &[
        DropReason::SockperfMalformed,
        DropReason::SockperfNoReplyWanted,
        DropReason::SockperfNotClient,
    ];
    /// The reasons a TCP or unix stream server can count.
    pub const STREAM: &'static [DropReason] = &[
        DropReason::Truncated,
        DropReason::BadMagic,
        DropReason::BadVersion,
        DropReason::NotRequest,
        DropReason::Oversize,
        DropReason::PeerClosed,
        DropReason::SendError,
    ];

    /// The name used in reports (the fast path's names where the reason is the same).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadMagic => "bad-magic",
            DropReason::BadVersion => "bad-version",
            DropReason::NotRequest => "not-request",
            DropReason::BadLength => "bad-length",
            DropReason::Oversize => "oversize",
            DropReason::SockperfMalformed => "sockperf-malformed",
            DropReason::SockperfNoReplyWanted => "sockperf-no-reply-wanted",
            DropReason::SockperfNotClient => "sockperf-not-client",
            DropReason::PeerClosed => "peer-closed",
            DropReason::SendError => "send-error",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages received (datagrams, or framed messages on a stream).
    pub rx: u64,
    /// Replies sent.
    pub tx: u64,
    /// Messages not answered, indexed by `DropReason as usize`.
    pub drops: [u64; REASONS],
}

impl Counters {
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    #[inline]
    pub fn drop_n(&mut self, r: DropReason, n: u64) {
        self.drops[r as usize] += n;
    }

    pub fn get(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }

    /// Messages dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub fn add(&mut self, o: &Counters) {
        self.rx += o.rx;
        self.tx += o.tx;
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_order_with_unique_names() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), REASONS);
    }

    #[test]
    fn add_sums_everything() {
        let mut a = Counters {
            rx: 3,
            tx: 1,
            ..Counters::default()
        };
        a.drop(DropReason::BadMagic);
        a.drop_n(DropReason::Oversize, 1);
        let mut b = a.clone();
        b.add(&a);
        assert_eq!((b.rx, b.tx, b.dropped()), (6, 2, 4));
        assert_eq!(b.get(DropReason::BadMagic), 2);
    }
}
