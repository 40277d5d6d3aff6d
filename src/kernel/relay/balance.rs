//! Which upstream a request goes to: in turn (round robin), or by a hash of its flow (the UDP
//! client's address and port, or the stream connection) so one flow always meets the same
//! upstream, as a mesh proxy's consistent balancing does.

use std::net::SocketAddr;

use crate::options::Balance;

#[derive(Debug, Clone)]
pub struct Picker {
    balance: Balance,
    n: usize,
    next: usize,
}

impl Picker {
    /// A picker over `n` (>= 1) upstreams.
    pub fn new(balance: Balance, n: usize) -> Picker {
        Picker {
            balance,
            n: n.max(1),
            next: 0,
        }
    }

    /// The upstream for a request of flow `flow` (see [`flow_of_addr`], [`flow_of_conn`]).
    #[inline]
    pub fn pick(&mut self, flow: u64) -> usize {
        match self.balance {
            Balance::RoundRobin => {
                let i = self.next;
                self.next = (i + 1) % self.n;
                i
            }
            Balance::Hash => (mix(flow) % self.n as u64) as usize,
        }
    }
}

/// The flow key of a UDP client: its address and port.
#[inline]
pub fn flow_of_addr(a: &SocketAddr) -> u64 {
    let ip = match a {
        SocketAddr::V4(v) => u64::from(u32::from(*v.ip())),
        SocketAddr::V6(v) => {
            let o = u128::from(*v.ip());
            (o as u64) ^ ((o >> 64) as u64)
        }
    };
    (ip << 16) | u64::from(a.port())
}

/// The flow key of a stream client: its connection (slot and generation).
#[inline]
pub fn flow_of_conn(conn: u32, gen: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(conn)
}

/// splitmix64's finaliser: neighbouring ports land on unrelated upstreams.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_takes_each_in_turn() {
        let mut p = Picker::new(Balance::RoundRobin, 3);
        let got: Vec<usize> = (0..7).map(|_| p.pick(42)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn hash_sticks_per_flow_and_spreads_flows() {
        let mut p = Picker::new(Balance::Hash, 3);
        let mut seen = [0u32; 3];
        for port in 1000..1300u16 {
            let a: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let f = flow_of_addr(&a);
            let first = p.pick(f);
            for _ in 0..3 {
                assert_eq!(p.pick(f), first, "flow {a} moved");
            }
            seen[first] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(p.pick(flow_of_conn(3, 1)), p.pick(flow_of_conn(3, 1)));
    }
}
