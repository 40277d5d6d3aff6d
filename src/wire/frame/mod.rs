//! The common frame of the fast path at fixed offsets: Ethernet + IPv4
//! without options ([`Ipv4Frame`]) and, on top, UDP ([`UdpFrame`]); plus
//! the whole-frame emitters and the request-traffic generator built on the
//! same layout.
//!
//! The offsets in `frame::field` are derived from each layer's own `field`
//! module, so the layout is written once, in the layer views; the frame
//! views only add which layout is the common one and the in-place reply
//! steps (turn around, rewrite payload words, shorten) that the server
//! nodes apply to a request to make its answer. Everything the views index
//! is a constant offset, so over a fixed-size head (`&mut [u8; N]`) or a
//! buffer whose length `new_checked` has just bounded, the compiler drops
//! every bounds check.

use super::checksum;
use super::ipv4::{IpProtocol, Ipv4Address, Ipv4Packet, VER_IHL_PLAIN};
use super::udp::UdpPacket;
use super::{read_u16, WireError};

mod emit;
#[cfg(test)]
mod tests;
mod traffic;

pub use emit::{emit_request_frame, emit_udp_frame, UdpEndpoints};
pub use traffic::rpc_echo_requests;

/// Offsets in the common frame, each a layer's own field moved by the
/// headers before it.
pub(crate) mod field {
    use crate::wire::{ethernet::field as eth, ipv4::field as ip, udp::field as udp};
    use core::ops::Range;

    const fn at(base: usize, r: Range<usize>) -> Range<usize> {
        base + r.start..base + r.end
    }

    pub const ETH_DST: Range<usize> = eth::DST;
    pub const ETH_SRC: Range<usize> = eth::SRC;
    pub const IP: usize = eth::PAYLOAD.start;
    pub const IP_VER_IHL: usize = IP + ip::VER_IHL;
    pub const IP_TOTAL_LEN: Range<usize> = at(IP, ip::TOTAL_LEN);
    pub const IP_TTL: usize = IP + ip::TTL;
    pub const IP_PROTOCOL: usize = IP + ip::PROTOCOL;
    pub const IP_CHECKSUM: Range<usize> = at(IP, ip::CHECKSUM);
    pub const IP_SRC: Range<usize> = at(IP, ip::SRC);
    pub const IP_DST: Range<usize> = at(IP, ip::DST);
    /// Right after an option-less IPv4 header.
    pub const UDP: usize = IP + ip::DST.end;
    pub const UDP_SRC_PORT: Range<usize> = at(UDP, udp::SRC_PORT);
    pub const UDP_DST_PORT: Range<usize> = at(UDP, udp::DST_PORT);
    pub const UDP_LENGTH: Range<usize> = at(UDP, udp::LENGTH);
    pub const UDP_CHECKSUM: Range<usize> = at(UDP, udp::CHECKSUM);
    pub const PAYLOAD: usize = UDP + udp::CHECKSUM.end;
}

/// Bytes of Ethernet, IPv4 (no options) and UDP headers before the payload.
pub const UDP_HEADERS_LEN: usize = field::PAYLOAD;

/// Largest UDP payload that fits the 16-bit IPv4 total length.
pub const MAX_UDP_PAYLOAD: usize = u16::MAX as usize - (field::PAYLOAD - field::IP);

/// TTL of every frame this crate sends, emitted or answered: a request's
/// remaining TTL says nothing about the return path, so a reply starts
/// afresh like an originating host does.
pub const TTL: u8 = 64;

/// Ethernet + option-less IPv4 ending exactly at `len`, read from a head
/// of at least the two headers.
#[inline(always)]
fn ipv4_fits<const N: usize>(h: &[u8; N], len: usize) -> bool {
    const { assert!(N >= field::UDP) };
    h[field::IP_VER_IHL] == VER_IHL_PLAIN
        && field::IP + usize::from(read_u16(&h[field::IP_TOTAL_LEN])) == len
}

/// A UDP length field ending exactly at `len`.
#[inline(always)]
fn udp_fits<const N: usize>(h: &[u8; N], len: usize) -> bool {
    const { assert!(N >= field::PAYLOAD) };
    field::UDP + usize::from(read_u16(&h[field::UDP_LENGTH])) == len
}

/// Why `b` is not an [`Ipv4Frame`] (or, with `udp`, a [`UdpFrame`]); only
/// asked once a frame has failed the fast compares.
#[cold]
fn misfit(b: &[u8], udp: bool) -> WireError {
    let need = if udp { field::PAYLOAD } else { field::UDP };
    if b.len() < need {
        return WireError::Truncated;
    }
    let ihl_words = usize::from(b[field::IP_VER_IHL] & 0x0f);
    let header_words = (field::UDP - field::IP) / 4;
    if b[field::IP_VER_IHL] >> 4 != 4 {
        WireError::BadVersion
    } else if ihl_words < header_words {
        WireError::BadHeaderLen
    } else if ihl_words > header_words
        || (udp && IpProtocol::from(b[field::IP_PROTOCOL]) != IpProtocol::Udp)
    {
        // Options, or another protocol: well-formed, just not this layout.
        WireError::Unsupported
    } else {
        WireError::BadLength
    }
}

/// Whole-word loads of the 8 bytes at `off`: byte-wise swaps through the
/// stack stall on store-to-load forwarding, which cost the rpc reply more
/// than the rest of its rewrite together.
#[inline(always)]
fn word<const N: usize>(h: &[u8; N], off: usize) -> [u8; 8] {
    let mut w = [0; 8];
    w.copy_from_slice(&h[off..off + 8]);
    w
}

/// Swaps the MAC addresses and the IPv4 addresses and resets the TTL to
/// [`TTL`]. Swapping two addresses under one checksum leaves it valid, so
/// only the TTL word is folded into the header checksum (RFC 1624).
#[inline(always)]
fn reverse_eth_ipv4<const N: usize>(h: &mut [u8; N]) {
    const {
        assert!(N >= field::UDP);
        // The word moves below rely on these neighbours.
        assert!(field::ETH_DST.start == 0 && field::ETH_SRC.start == 6);
        assert!(field::ETH_SRC.end == 12 && field::IP_DST.start == field::IP_SRC.end);
        assert!(field::IP_PROTOCOL == field::IP_TTL + 1 && field::IP_TTL.is_multiple_of(2));
    };
    let dst = u64::from_le_bytes(word(h, field::ETH_DST.start)) & 0xffff_ffff_ffff;
    let src = u64::from_le_bytes(word(h, field::ETH_SRC.start - 2)) >> 16;
    h[..8].copy_from_slice(&(src | (dst << 48)).to_le_bytes());
    h[8..field::ETH_SRC.end].copy_from_slice(&((dst >> 16) as u32).to_le_bytes());

    // Rotating the two halves of a word swaps them in either byte order.
    let ips = u64::from_ne_bytes(word(h, field::IP_SRC.start)).rotate_left(32);
    h[field::IP_SRC.start..field::IP_DST.end].copy_from_slice(&ips.to_ne_bytes());

    let ttl = field::IP_TTL;
    let old = u16::from_ne_bytes([h[ttl], h[ttl + 1]]);
    let new = u16::from_ne_bytes([TTL, h[ttl + 1]]);
    let c = field::IP_CHECKSUM.start;
    let csum = u16::from_ne_bytes([h[c], h[c + 1]]);
    let csum = checksum::update_ne32(csum, &[u32::from(old)], &[u32::from(new)]);
    h[ttl..ttl + 2].copy_from_slice(&new.to_ne_bytes());
    h[c..c + 2].copy_from_slice(&csum.to_ne_bytes());
}

/// Ethernet + IPv4 without options whose `total_len` ends the buffer: the
/// layout every frame past `ip4-input` has (it refuses options and trims
/// padding).
#[derive(Debug, Clone)]
pub struct Ipv4Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Frame<T> {
    pub const HEADER_LEN: usize = field::UDP;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Frame { buffer }
    }

    /// At least both headers, version 4 with IHL 5, and `total_len` ending
    /// exactly at the end of the buffer. The ethertype and the header
    /// checksum are `ethernet-input`'s and `ip4-input`'s business.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        match b.first_chunk::<{ field::UDP }>() {
            Some(h) if ipv4_fits(h, b.len()) => Ok(Ipv4Frame { buffer }),
            _ => Err(misfit(b, false)),
        }
    }

    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        self.buffer.as_ref()[field::IP_PROTOCOL].into()
    }

    /// The IPv4 header and payload.
    #[inline]
    pub fn ip(&self) -> Ipv4Packet<&[u8]> {
        Ipv4Packet::new_unchecked(&self.buffer.as_ref()[field::IP..])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Frame<T> {
    /// Everything after the IPv4 header.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::UDP..]
    }

    /// Addresses the frame back to its sender: MACs and IPv4 addresses
    /// swapped, TTL reset to [`TTL`], header checksum kept valid. The
    /// caller has checked the destination was our unicast MAC, so the new
    /// source is ours.
    #[inline]
    pub fn reverse(&mut self) {
        if let Some(h) = self.buffer.as_mut().first_chunk_mut::<{ field::UDP }>() {
            reverse_eth_ipv4(h);
        }
    }
}

/// Ethernet + IPv4 without options + UDP, each length ending exactly at
/// the end of the buffer: the frame `udp-input` hands to the UDP services.
///
/// A view over just a fixed-size head of such a frame (`&mut [u8; N]`,
/// `N >= HEADER_LEN`) is fine for the steps that touch only the headers
/// and the first payload bytes ([`reverse`](Self::reverse),
/// [`set_payload_u16s`](Self::set_payload_u16s)): that is how the rpc
/// server rewrites without a bounds check.
#[derive(Debug, Clone)]
pub struct UdpFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpFrame<T> {
    pub const HEADER_LEN: usize = field::PAYLOAD;

    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        UdpFrame { buffer }
    }

    /// [`Ipv4Frame::new_checked`], protocol UDP and a UDP length ending
    /// the buffer: four compares on the first 42 bytes. Everything a length
    /// check of each layer would find follows from these (a 20-byte header
    /// fits, `total_len >= 20`, UDP length >= 8).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        match b.first_chunk::<{ field::PAYLOAD }>() {
            Some(h)
                if ipv4_fits(h, b.len())
                    && h[field::IP_PROTOCOL] == u8::from(IpProtocol::Udp)
                    && udp_fits(h, b.len()) =>
            {
                Ok(UdpFrame { buffer })
            }
            _ => Err(misfit(b, true)),
        }
    }

    /// [`new_checked`](Self::new_checked) for a buffer already known to be
    /// an [`Ipv4Frame`] carrying UDP (what `ip4-input` guarantees on its
    /// edge to `udp-input`): only the UDP length is left to check.
    #[inline]
    pub fn new_checked_udp(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        match b.first_chunk::<{ field::PAYLOAD }>() {
            Some(h) if udp_fits(h, b.len()) => Ok(UdpFrame { buffer }),
            _ => Err(misfit(b, true)),
        }
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::UDP_SRC_PORT])
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::UDP_DST_PORT])
    }

    #[inline]
    pub fn udp_checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::UDP_CHECKSUM])
    }

    /// The IPv4 header and payload.
    #[inline]
    pub fn ip(&self) -> Ipv4Packet<&[u8]> {
        Ipv4Packet::new_unchecked(&self.buffer.as_ref()[field::IP..])
    }

    /// The UDP header and payload.
    #[inline]
    pub fn udp(&self) -> UdpPacket<&[u8]> {
        UdpPacket::new_unchecked(&self.buffer.as_ref()[field::UDP..])
    }

    /// Everything after the UDP header: the datagram's payload, since the
    /// length ends the buffer (or, in a head view, the head's share of it).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }

    /// Both ends' addresses, as the frame carries them.
    pub fn endpoints(&self) -> UdpEndpoints {
        let b = self.buffer.as_ref();
        let ip = self.ip();
        UdpEndpoints {
            src_mac: super::MacAddress::from_bytes(&b[field::ETH_SRC]),
            dst_mac: super::MacAddress::from_bytes(&b[field::ETH_DST]),
            src_ip: ip.src_addr(),
            dst_ip: ip.dst_addr(),
            src_port: self.src_port(),
            dst_port: self.dst_port(),
        }
    }

    /// True when the UDP checksum is 0 (none, allowed over IPv4) or
    /// verifies. The addresses sit right before the UDP header, so one pass
    /// from the source address to the end covers them and the datagram.
    #[inline]
    pub fn verify_udp_checksum(&self) -> bool {
        if self.udp_checksum() == 0 {
            return true;
        }
        let b = self.buffer.as_ref();
        let udp_len = read_u16(&b[field::UDP_LENGTH]);
        checksum::Accumulator::default()
            .add_u16(u16::from(u8::from(IpProtocol::Udp)))
            .add_u16(udp_len)
            .add_bytes(b.get(field::IP_SRC.start..).unwrap_or(&[]))
            .finish()
            == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpFrame<T> {
    /// The datagram's payload, as [`payload`](Self::payload).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }

    /// [`Ipv4Frame::reverse`], and the ports swapped: the UDP checksum
    /// covers both, so it stays valid.
    #[inline(always)]
    pub fn reverse(&mut self) {
        const { assert!(field::UDP_DST_PORT.start == field::UDP_SRC_PORT.end) };
        let Some(h) = self.buffer.as_mut().first_chunk_mut::<{ field::PAYLOAD }>() else {
            return;
        };
        reverse_eth_ipv4(h);
        let p = field::UDP_SRC_PORT.start;
        let ports = u32::from_ne_bytes([h[p], h[p + 1], h[p + 2], h[p + 3]]);
        h[p..p + 4].copy_from_slice(&ports.rotate_left(16).to_ne_bytes());
    }

    /// Readdresses the frame to `to` as a forwarding hop does (a relay, a NAT): both MACs,
    /// both IPv4 addresses and both ports replaced, the TTL set to `ttl` (the caller decides
    /// what a router would: decrement, drop at 0). The IPv4 header checksum and a non-zero
    /// UDP checksum are updated for exactly the words that changed (RFC 1624), so the payload
    /// is never summed. False (and the frame untouched) when it is shorter than the headers.
    #[inline]
    pub fn forward(&mut self, to: &UdpEndpoints, ttl: u8) -> bool {
        const {
            assert!(field::IP_DST.start == field::IP_SRC.end);
            assert!(field::UDP_DST_PORT.start == field::UDP_SRC_PORT.end);
            assert!(field::IP_TTL.is_multiple_of(2) && field::IP_SRC.start.is_multiple_of(2));
        };
        let Some(h) = self.buffer.as_mut().first_chunk_mut::<{ field::PAYLOAD }>() else {
            return false;
        };
        let ne =
            |h: &[u8; field::PAYLOAD], at: usize| u32::from(u16::from_ne_bytes([h[at], h[at + 1]]));
        // The words that change, in order: both addresses (4 words), both ports, the TTL.
        let ip = field::IP_SRC.start;
        let port = field::UDP_SRC_PORT.start;
        let at = [ip, ip + 2, ip + 4, ip + 6, port, port + 2, field::IP_TTL];
        let old = at.map(|a| ne(h, a));
        h[field::ETH_DST].copy_from_slice(&to.dst_mac.0);
        h[field::ETH_SRC].copy_from_slice(&to.src_mac.0);
        h[field::IP_SRC].copy_from_slice(&to.src_ip.0);
        h[field::IP_DST].copy_from_slice(&to.dst_ip.0);
        h[field::UDP_SRC_PORT].copy_from_slice(&to.src_port.to_be_bytes());
        h[field::UDP_DST_PORT].copy_from_slice(&to.dst_port.to_be_bytes());
        h[field::IP_TTL] = ttl;
        let new = at.map(|a| ne(h, a));

        let c = field::IP_CHECKSUM.start;
        let ip_words = |w: [u32; 7]| [w[0], w[1], w[2], w[3], w[6]];
        let csum = u16::from_ne_bytes([h[c], h[c + 1]]);
        let csum = checksum::update_ne32(csum, &ip_words(old), &ip_words(new));
        h[c..c + 2].copy_from_slice(&csum.to_ne_bytes());

        // The UDP checksum covers the addresses (pseudo-header) and the ports, not the TTL.
        let c = field::UDP_CHECKSUM.start;
        let csum = u16::from_ne_bytes([h[c], h[c + 1]]);
        if csum != 0 {
            let udp_words = |w: [u32; 7]| [w[0], w[1], w[2], w[3], w[4], w[5]];
            let s = checksum::update_ne32(csum, &udp_words(old), &udp_words(new));
            let s = if s == 0 { 0xffff } else { s };
            h[c..c + 2].copy_from_slice(&s.to_ne_bytes());
        }
        true
    }

    /// Writes the big-endian `new[i]` at payload offset `at[i]` (each an
    /// even distance from the UDP header, as every field the nodes rewrite
    /// is) and folds all the changes into the UDP checksum at once, in
    /// native byte order (see [`checksum::update_ne32`]). A zero checksum
    /// means "none" and stays zero; a computed zero goes out as 0xffff.
    #[inline(always)]
    pub fn set_payload_u16s<const N: usize>(&mut self, at: [usize; N], new: [u16; N]) {
        let b = self.buffer.as_mut();
        let mut old_words = [0u32; N];
        let mut new_words = [0u32; N];
        for i in 0..N {
            let off = field::PAYLOAD + at[i];
            debug_assert!(at[i].is_multiple_of(2));
            old_words[i] = u32::from(u16::from_ne_bytes([b[off], b[off + 1]]));
            let v = new[i].to_be_bytes();
            new_words[i] = u32::from(u16::from_ne_bytes(v));
            b[off..off + 2].copy_from_slice(&v);
        }
        let c = field::UDP_CHECKSUM.start;
        let csum = u16::from_ne_bytes([b[c], b[c + 1]]);
        if csum != 0 {
            // 0 and 0xffff read the same in either byte order.
            let s = checksum::update_ne32(csum, &old_words, &new_words);
            let s = if s == 0 { 0xffff } else { s };
            b[c..c + 2].copy_from_slice(&s.to_ne_bytes());
        }
    }

    /// [`set_payload_u16s`](Self::set_payload_u16s) for one 32-bit field.
    #[inline]
    pub fn set_payload_u32(&mut self, at: usize, v: u32) {
        self.set_payload_u16s([at, at + 2], [(v >> 16) as u16, v as u16]);
    }

    /// Sets both lengths after the buffer was cut to `HEADER_LEN +
    /// payload_len` bytes: the IPv4 total length with an incremental header
    /// checksum fix, the UDP length, and the UDP checksum recomputed in
    /// full (unless 0), since the datagram is short by then and the length
    /// is in the pseudo-header too. Needs the addresses in their final
    /// order.
    pub fn set_payload_len(&mut self, payload_len: u16) {
        let b = self.buffer.as_mut();
        let total_len = (field::PAYLOAD - field::IP) as u16 + payload_len;
        let old = read_u16(&b[field::IP_TOTAL_LEN]);
        let csum = checksum::update(read_u16(&b[field::IP_CHECKSUM]), old, total_len);
        b[field::IP_TOTAL_LEN].copy_from_slice(&total_len.to_be_bytes());
        b[field::IP_CHECKSUM].copy_from_slice(&csum.to_be_bytes());

        let mut udp = UdpPacket::new_unchecked(&mut b[field::UDP..]);
        udp.set_len((field::PAYLOAD - field::UDP) as u16 + payload_len);
        if udp.checksum() == 0 {
            return;
        }
        let (src, dst) = (
            Ipv4Address::from_bytes(&b[field::IP_SRC]),
            Ipv4Address::from_bytes(&b[field::IP_DST]),
        );
        UdpPacket::new_unchecked(&mut b[field::UDP..]).fill_checksum(src, dst);
    }
}
