//! What the nodes share besides the frame views: the source-address policy
//! and the TSC conversions of `spin` and `server_ns`.

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

const NS_PER_SEC: u128 = 1_000_000_000;

/// TSC ticks to nanoseconds, saturating; 0 when the frequency is unknown.
#[inline]
pub(super) fn ticks_to_ns(ticks: u64, tsc_hz: u64) -> u64 {
    if tsc_hz == 0 {
        return 0;
    }
    let ns = u128::from(ticks) * NS_PER_SEC / u128::from(tsc_hz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Nanoseconds to TSC ticks, rounded up so a spin is never shorter than
/// asked.
#[inline]
pub(super) fn ns_to_ticks(ns: u64, tsc_hz: u64) -> u64 {
    let t = (u128::from(ns) * u128::from(tsc_hz)).div_ceil(NS_PER_SEC);
    u64::try_from(t).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_conversions() {
        assert_eq!(ticks_to_ns(3_000, 3_000_000_000), 1_000);
        assert_eq!(ticks_to_ns(5, 0), 0);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ns_to_ticks(1_000, 3_000_000_000), 3_000);
        assert_eq!(ns_to_ticks(1, 3_000_000_000), 3);
        assert_eq!(
            ns_to_ticks(1, 1),
            1,
            "rounded up, never zero for a non-zero spin"
        );
    }

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
