//! Offsets and in-place rewrite steps shared by the reply nodes.
//!
//! Replies are built by editing the request, so the checksum fixes here are
//! incremental (RFC 1624) wherever the covered length does not change:
//! swapping two addresses (or two ports) covered by the same checksum
//! leaves the ones'-complement sum unchanged, so only the fields whose
//! value really changes are ever re-summed.

use crate::wire::checksum;
use crate::wire::{IpProtocol, Ipv4Address, Ipv4Packet, UdpPacket};

pub(super) const ETH_LEN: usize = 14;
pub(super) const IP_OFF: usize = ETH_LEN;
/// `ip4-input` drops packets with options, so every IPv4 header past it is
/// exactly this long.
pub(super) const IP_LEN: usize = 20;
pub(super) const UDP_OFF: usize = IP_OFF + IP_LEN;
pub(super) const UDP_LEN: usize = 8;
pub(super) const UDP_PAYLOAD_OFF: usize = UDP_OFF + UDP_LEN;
/// TTL of every reply: the request's remaining TTL says nothing about the
/// return path, so start afresh like an originating host does.
pub(super) const REPLY_TTL: u8 = 64;

pub(super) const IP_TTL_PROTO: usize = IP_OFF + 8;
pub(super) const IP_CSUM: usize = IP_OFF + 10;
pub(super) const IP_TOTAL_LEN: usize = IP_OFF + 2;
pub(super) const IP_SRC: usize = IP_OFF + 12;
pub(super) const UDP_CSUM: usize = UDP_OFF + 6;
pub(super) const UDP_LEN_FIELD: usize = UDP_OFF + 4;

/// The first `N` bytes as a fixed-size array, or None if the buffer is
/// shorter. Nodes index the returned array by constant offsets, which the
/// compiler checks at compile time instead of once per access.
#[inline(always)]
pub(super) fn head<const N: usize>(data: &[u8]) -> Option<&[u8; N]> {
    data.get(..N)?.try_into().ok()
}

/// [`head`] for writing.
#[inline(always)]
pub(super) fn head_mut<const N: usize>(data: &mut [u8]) -> Option<&mut [u8; N]> {
    data.get_mut(..N)?.try_into().ok()
}

/// Big-endian u16 at a constant offset of a fixed-size header.
#[inline(always)]
pub(super) fn be16<const N: usize>(h: &[u8; N], off: usize) -> u16 {
    u16::from_be_bytes([h[off], h[off + 1]])
}

/// Ethernet + option-less IPv4 + UDP, each length field ending exactly at
/// the end of the `len`-byte buffer whose first 42 bytes are `h`: the
/// frame layout `ip4-input` and `udp-input` let through. Equivalent to
/// [`is_plain_udp`] for buffers of at least 42 bytes, in four compares.
#[inline(always)]
pub(super) fn is_plain_udp_head<const N: usize>(h: &[u8; N], len: usize) -> bool {
    const { assert!(N >= UDP_PAYLOAD_OFF) };
    h[IP_OFF] == 0x45
        && h[IP_TTL_PROTO + 1] == u8::from(IpProtocol::Udp)
        && ETH_LEN + usize::from(be16(h, IP_TOTAL_LEN)) == len
        && UDP_OFF + usize::from(be16(h, UDP_LEN_FIELD)) == len
}

/// Sum of the IPv4 addresses and the whole UDP datagram of a plain UDP
/// frame plus the rest of the pseudo-header: 0xffff when a non-zero UDP
/// checksum verifies. The addresses sit right before the UDP header, so
/// one pass over `data[IP_SRC..]` covers them and the datagram.
#[inline(always)]
pub(super) fn udp_verify_sum(data: &[u8], udp_len: u16) -> u16 {
    let covered = data.get(IP_SRC..).unwrap_or(&[]);
    checksum::Accumulator::default()
        .add_u16(u16::from(u8::from(IpProtocol::Udp)))
        .add_u16(udp_len)
        .add_bytes(covered)
        .finish()
}

#[inline]
pub(super) fn read_u16_at(data: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([data[off], data[off + 1]])
}

#[inline]
pub(super) fn write_u16_at(data: &mut [u8], off: usize, v: u16) {
    data[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Ethernet + option-less IPv4 whose `total_len` ends exactly at the end of
/// the buffer (`ip4-input` trims padding), i.e. the layout every node after
/// `ip4-input` indexes by fixed offsets.
#[inline]
pub(super) fn is_plain_ipv4(data: &[u8]) -> bool {
    match data.get(IP_OFF..).map(Ipv4Packet::new_checked) {
        Some(Ok(ip)) => {
            ip.header_len() == IP_LEN && ETH_LEN + usize::from(ip.total_len()) == data.len()
        }
        _ => false,
    }
}

/// [`is_plain_ipv4`] carrying UDP whose length field matches the IPv4
/// payload exactly.
#[inline]
pub(super) fn is_plain_udp(data: &[u8]) -> bool {
    is_plain_ipv4(data)
        && Ipv4Packet::new_unchecked(&data[IP_OFF..]).protocol() == IpProtocol::Udp
        && match UdpPacket::new_checked(&data[UDP_OFF..]) {
            Ok(udp) => UDP_OFF + usize::from(udp.len()) == data.len(),
            Err(_) => false,
        }
}

/// Addresses a frame back to where it came from. The caller has checked the
/// destination was our unicast MAC, so the new source is ours.
#[inline]
pub(super) fn swap_macs(data: &mut [u8]) {
    let (dst, rest) = data.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
}

/// Swaps the IPv4 addresses and resets the TTL. The swap leaves the header
/// checksum valid; only the TTL word is folded in. Needs [`is_plain_ipv4`].
#[inline]
pub(super) fn ipv4_reverse(data: &mut [u8]) {
    let (src, dst) = data[IP_SRC..IP_SRC + 8].split_at_mut(4);
    src.swap_with_slice(dst);
    let old = read_u16_at(data, IP_TTL_PROTO);
    let new = (u16::from(REPLY_TTL) << 8) | (old & 0xff);
    let c = checksum::update(read_u16_at(data, IP_CSUM), old, new);
    write_u16_at(data, IP_TTL_PROTO, new);
    write_u16_at(data, IP_CSUM, c);
}

/// Rewrites the IPv4 total length after the frame was shortened, keeping
/// the header checksum valid.
#[inline]
pub(super) fn ipv4_set_total_len(data: &mut [u8], total_len: u16) {
    let old = read_u16_at(data, IP_TOTAL_LEN);
    let c = checksum::update(read_u16_at(data, IP_CSUM), old, total_len);
    write_u16_at(data, IP_TOTAL_LEN, total_len);
    write_u16_at(data, IP_CSUM, c);
}

/// Swaps UDP source and destination ports; the checksum covers both, so it
/// stays valid. Needs [`is_plain_udp`].
#[inline]
pub(super) fn udp_swap_ports(data: &mut [u8]) {
    let (src, dst) = data[UDP_OFF..UDP_OFF + 4].split_at_mut(2);
    src.swap_with_slice(dst);
}

/// Replaces the 16-bit word at `off` (an even distance from the UDP header,
/// as every field the nodes rewrite is) and folds the change into the UDP
/// checksum. A zero checksum means "not computed" and stays zero; a
/// computed zero must go out as 0xffff, since 0 would mean "none".
#[inline]
pub(super) fn udp_set_u16(data: &mut [u8], off: usize, new: u16) {
    debug_assert!((off - UDP_OFF).is_multiple_of(2));
    let old = read_u16_at(data, off);
    write_u16_at(data, off, new);
    let csum = read_u16_at(data, UDP_CSUM);
    if csum != 0 && old != new {
        let c = checksum::update(csum, old, new);
        write_u16_at(data, UDP_CSUM, if c == 0 { 0xffff } else { c });
    }
}

/// [`udp_set_u16`] for a 32-bit field.
#[inline]
pub(super) fn udp_set_u32(data: &mut [u8], off: usize, new: u32) {
    udp_set_u16(data, off, (new >> 16) as u16);
    udp_set_u16(data, off + 2, new as u16);
}

/// Sets the UDP length after the frame was shortened and recomputes the
/// checksum in full (unless it was 0): the datagram is short by then, and a
/// length change touches the pseudo-header too. Needs the IPv4 addresses in
/// their final order.
#[inline]
pub(super) fn udp_set_len_recompute(data: &mut [u8], udp_len: u16) {
    write_u16_at(data, UDP_LEN_FIELD, udp_len);
    if read_u16_at(data, UDP_CSUM) == 0 {
        return;
    }
    let ip = Ipv4Packet::new_unchecked(&data[IP_OFF..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    UdpPacket::new_unchecked(&mut data[UDP_OFF..]).fill_checksum(src, dst);
}

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
