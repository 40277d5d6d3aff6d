//! Per-thread counters of the kernel servers: messages in, replies out, and every message
//! that got no reply, by reason. Each thread owns its block (no sharing, no atomics) and
//! hands it back when it ends; the final report sums them.

use crate::drops::drop_reasons;

drop_reasons! {
    /// Why a received message was not answered. Every received message ends either as a
    /// sent reply (`tx`) or under exactly one of these, so `rx == tx + drops`. The names are
    /// the fast path's where the reason is the same.
    DropReason {
        /// UDP: a datagram shorter than the 32-byte header. Streams: the connection ended
        /// (the peer closed or reset it, or the server stopped) inside a message.
        Truncated => "truncated",
        BadMagic => "bad-magic",
        BadVersion => "bad-version",
        /// A response, an error or an unknown kind: answering those would let two servers
        /// bounce a message forever.
        NotRequest => "not-request",
        /// UDP: the header's `length` is larger than the datagram holds.
        BadLength => "bad-length",
        /// Streams: a message longer than 65536 bytes in total; the connection is closed.
        Oversize => "oversize",
        /// sockperf: shorter than its 14-byte header.
        SockperfMalformed => "sockperf-malformed",
        /// sockperf: no pong-request bit (throughput or warm-up traffic); consumed as intended.
        SockperfNoReplyWanted => "sockperf-no-reply-wanted",
        /// sockperf: the client bit is clear, i.e. a server's answer.
        SockperfNotClient => "sockperf-not-client",
        /// Streams: the peer went away before its replies could be written.
        PeerClosed => "peer-closed",
        /// Streams: the peer took no byte of its replies for `--stall-timeout`; the
        /// connection is closed.
        Stalled => "stalled",
        /// The reply could not be sent for another reason.
        SendError => "send-error",
    }
}

/// Which reasons each kind of server can count: its report lists these, even when 0.
impl DropReason {
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
        DropReason::Stalled,
        DropReason::SendError,
    ];
}

drop_reasons! {
    /// Why a stream connection ended. Every accepted connection ends under exactly one of
    /// these, so `connections == sum of closed`.
    CloseReason {
        /// The peer closed its end (between messages, or inside one: see `truncated`).
        Eof => "eof",
        /// The peer reset the connection, or a read or write on it failed.
        Reset => "reset",
        /// The framing was lost: bad magic, bad version or an oversize message.
        Framing => "framing",
        /// The peer left its replies unread for `--stall-timeout`.
        Stalled => "stalled",
        /// The thread already held `--max-connections`: closed as soon as accepted.
        Refused => "refused",
        /// Still open when the server stopped.
        Stopped => "stopped",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages received (datagrams, or framed messages on a stream).
    pub rx: u64,
    /// Replies sent.
    pub tx: u64,
    /// Messages not answered, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
    /// Streams: connections ended, indexed by `CloseReason as usize`.
    pub closed: [u64; CloseReason::COUNT],
}

impl Counters {
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops[usize::from(r)] += 1;
    }

    #[inline]
    pub fn drop_n(&mut self, r: DropReason, n: u64) {
        self.drops[usize::from(r)] += n;
    }

    pub fn get(&self, r: DropReason) -> u64 {
        self.drops[usize::from(r)]
    }

    /// Messages dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }

    pub fn close(&mut self, r: CloseReason) {
        self.closed[usize::from(r)] += 1;
    }

    pub fn closed_by(&self, r: CloseReason) -> u64 {
        self.closed[usize::from(r)]
    }

    pub fn add(&mut self, o: &Counters) {
        self.rx += o.rx;
        self.tx += o.tx;
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.closed.iter_mut().zip(o.closed.iter()) {
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
        assert_eq!(names.len(), DropReason::COUNT);
        // The report's keys, which the lab and tests/kernel_serve.rs read.
        assert_eq!(
            DropReason::NAMES,
            [
                "truncated",
                "bad-magic",
                "bad-version",
                "not-request",
                "bad-length",
                "oversize",
                "sockperf-malformed",
                "sockperf-no-reply-wanted",
                "sockperf-not-client",
                "peer-closed",
                "stalled",
                "send-error",
            ]
        );
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
        a.close(CloseReason::Stalled);
        let mut b = a.clone();
        b.add(&a);
        assert_eq!((b.rx, b.tx, b.dropped()), (6, 2, 4));
        assert_eq!(b.get(DropReason::BadMagic), 2);
        assert_eq!(b.closed_by(CloseReason::Stalled), 2);
    }
}
