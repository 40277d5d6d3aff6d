//! What the nodes share besides the frame views and the kit: the
//! source-address policy (the TSC conversions are os::tsc's).

use crate::wire::Ipv4Address;

/// Sources we never answer: nothing legitimate sends from them, and a reply
/// to a forged one would go to a group, to ourselves, or nowhere.
#[inline]
pub(super) fn is_bad_source_ip(a: Ipv4Address) -> bool {
    let first = a.0[0];
    a.is_unspecified()
        || first == 127 // loopback never appears on a wire
        || a.is_multicast()
        || first >= 240 // class E, including limited broadcast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_sources() {
        for bad in [
            [0, 0, 0, 0],
            [127, 0, 0, 1],
            [224, 0, 0, 1],
            [239, 1, 2, 3],
            [240, 0, 0, 1],
            [255; 4],
        ] {
            assert!(is_bad_source_ip(Ipv4Address(bad)), "{bad:?}");
        }
        for ok in [
            [198, 18, 0, 2],
            [10, 0, 0, 1],
            [1, 1, 1, 1],
            [223, 255, 255, 254],
        ] {
            assert!(!is_bad_source_ip(Ipv4Address(ok)), "{ok:?}");
        }
    }
}
