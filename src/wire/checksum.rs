//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried as *folded, uncomplemented* 16-bit values so that partial
//! sums over separate pieces (pseudo-header, header, payload) can be
//! [`combine`]d; only the final step complements. A region whose stored
//! checksum is correct sums to `0xffff`.

use super::ipv4::Ipv4Address;

/// Folds carries back into the low 16 bits (end-around carry).
///
/// Two fixed steps instead of a loop: 64 to 32 bits with one carrying add,
/// then 32 to 16 by adding the word to itself rotated by 16 bits, whose
/// upper half is then the end-around sum of both halves. The result is 0
/// only for a 0 input, as with a fold loop.
#[inline(always)]
fn fold(sum: u64) -> u16 {
    let (lo, carry) = (sum as u32).overflowing_add((sum >> 32) as u32);
    // An overflowing add leaves at most 2^32 - 2, so adding the carry
    // cannot overflow again.
    let s = lo + u32::from(carry);
    (s.wrapping_add(s.rotate_left(16)) >> 16) as u16
}

/// Adds `w` to `acc` with end-around carry: ones'-complement addition on
/// 64-bit words, which is the 16-bit ones'-complement sum since
/// 2^16 ≡ 1 (mod 2^16 - 1).
#[inline(always)]
fn add_carry(acc: u64, w: u64) -> u64 {
    let (s, carry) = acc.overflowing_add(w);
    s + u64::from(carry)
}

/// A running ones'-complement sum in native byte order, folded once at the
/// end: callers that sum several pieces (pseudo-header fields and a
/// datagram) pay for one fold and one byte swap instead of one per piece.
///
/// The ones'-complement sum is byte-order independent (RFC 1071 section
/// 2(B)), so native-endian 64-bit words summed with end-around carry and
/// byte-swapped once give the big-endian 16-bit word sum, with an eighth
/// of the additions and no per-word swaps.
#[derive(Clone, Copy, Debug, Default)]
pub struct Accumulator(u64);

impl Accumulator {
    /// Adds `data` as big-endian 16-bit words; an odd trailing byte is
    /// padded with a zero on the right, as RFC 1071 specifies. Pieces
    /// after an odd-length one would be misaligned: only the last piece
    /// may have an odd length.
    #[inline(always)]
    pub fn add_bytes(self, data: &[u8]) -> Self {
        let mut acc = self.0;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            // The chunk is exactly 8 bytes, so the conversion cannot fail.
            acc = add_carry(acc, u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])));
        }
        let mut rest = words.remainder();
        if rest.len() >= 4 {
            let w = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]);
            acc = add_carry(acc, u64::from(w));
            rest = &rest[4..];
        }
        if rest.len() >= 2 {
            acc = add_carry(acc, u64::from(u16::from_ne_bytes([rest[0], rest[1]])));
            rest = &rest[2..];
        }
        if let [last] = rest {
            // In big-endian word order the odd byte is the high half of a
            // zero-padded word; in native order that is the same two bytes.
            acc = add_carry(acc, u64::from(u16::from_ne_bytes([*last, 0])));
        }
        Self(acc)
    }

    /// Adds one 16-bit value, e.g. a pseudo-header field.
    #[inline(always)]
    pub fn add_u16(self, v: u16) -> Self {
        Self(add_carry(
            self.0,
            u64::from(u16::from_ne_bytes(v.to_be_bytes())),
        ))
    }

    /// The folded big-endian sum, as [`data_sum`] returns it.
    #[inline(always)]
    pub fn finish(self) -> u16 {
        u16::from_be(fold(self.0))
    }
}

/// Ones'-complement sum of `data` as big-endian 16-bit words, folded (see
/// [`Accumulator`] for how).
#[inline]
pub fn data_sum(data: &[u8]) -> u16 {
    Accumulator::default().add_bytes(data).finish()
}

/// Ones'-complement sum of several partial sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The value to store in a checksum field covering `data` (whose checksum
/// field must be zero while computing).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !data_sum(data)
}

/// Partial sum of the IPv4 pseudo-header that UDP and TCP checksums cover.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Address, dst: Ipv4Address, protocol: u8, length: u16) -> u16 {
    let [s0, s1, s2, s3] = src.0;
    let [d0, d1, d2, d3] = dst.0;
    let acc = u64::from(u16::from_be_bytes([s0, s1]))
        + u64::from(u16::from_be_bytes([s2, s3]))
        + u64::from(u16::from_be_bytes([d0, d1]))
        + u64::from(u16::from_be_bytes([d2, d3]))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// Partial sum of the IPv4 pseudo-header for UDP (protocol 17).
#[inline]
pub fn udp_pseudo_header(src: Ipv4Address, dst: Ipv4Address, udp_len: u16) -> u16 {
    pseudo_header_v4(src, dst, super::ipv4::IpProtocol::Udp.into(), udp_len)
}

/// New checksum after one 16-bit word covered by `old_csum` changed from
/// `old_word` to `new_word`, without touching the rest of the data.
///
/// Uses RFC 1624 equation 3, `HC' = ~(~HC + ~m + m')`: unlike the older
/// RFC 1141 form it cannot yield the `-0` encoding, so for non-zero data it
/// agrees bit for bit with a full recompute.
#[inline]
pub fn update(old_csum: u16, old_word: u16, new_word: u16) -> u16 {
    !fold(u64::from(!old_csum) + u64::from(!old_word) + u64::from(new_word))
}

/// [`update`] for a 32-bit field (e.g. an IPv4 address or a u32 counter)
/// that starts on a 16-bit boundary.
#[inline]
pub fn update_u32(old_csum: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!old_csum)
        + u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from((new >> 16) as u16)
        + u64::from(new as u16);
    !fold(acc)
}

/// [`update`] for several changed words at once, in native byte order:
/// `old_csum`, `old[i]` and `new[i]` are read from (and the result is
/// stored back into) the packet with `from_ne_bytes`/`to_ne_bytes`, each
/// at an even offset; a 16-bit field goes in zero-extended. One fold for
/// all words and no byte swaps, with the same bytes as updating the
/// big-endian values word by word: the ones'-complement sum is associative
/// and byte-order independent, and a 32-bit word is the sum of its halves.
#[inline(always)]
pub fn update_ne32<const N: usize>(old_csum: u16, old: &[u32; N], new: &[u32; N]) -> u16 {
    let mut acc = u64::from(!old_csum);
    for i in 0..N {
        acc += u64::from(!old[i]) + u64::from(new[i]);
    }
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{hex, XorShift};
    use super::*;

    /// Straightforward RFC 1071 reference: one 16-bit word at a time.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u32::from(b));
            acc += hi | lo;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 worked example: the sum is 0xddf2.
        let data = hex("00 01 f2 03 f4 f5 f6 f7");
        assert_eq!(data_sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn empty_and_odd_lengths() {
        assert_eq!(data_sum(&[]), 0);
        assert_eq!(data_sum(&[0xab]), 0xab00);
        assert_eq!(data_sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn fast_sum_matches_reference() {
        let mut rng = XorShift(7);
        let mut buf = [0u8; 300];
        for _ in 0..crate::test_rounds(2000) {
            let len = rng.below(buf.len() + 1);
            rng.fill(&mut buf[..len]);
            assert_eq!(data_sum(&buf[..len]), reference_sum(&buf[..len]));
        }
        // Worst case for carries.
        let ones = [0xffu8; 1501];
        assert_eq!(data_sum(&ones), reference_sum(&ones));
    }

    #[test]
    fn combine_equals_sum_of_concatenation() {
        let mut rng = XorShift(11);
        let mut buf = [0u8; 64];
        for _ in 0..crate::test_rounds(500) {
            rng.fill(&mut buf);
            // Splits at even offsets only: a split at an odd offset shifts
            // the byte alignment of the second half.
            let cut = 2 * rng.below(33);
            let (a, b) = buf.split_at(cut);
            assert_eq!(combine(&[data_sum(a), data_sum(b)]), data_sum(&buf));
        }
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        let mut rng = XorShift(0xdead_beef);
        let mut buf = [0u8; 40];
        for _ in 0..crate::test_rounds(5000) {
            rng.fill(&mut buf);
            // A fixed non-zero word keeps the data sum away from zero, where
            // ones' complement has two encodings and equality is ambiguous.
            buf[0] = 0x45;
            let csum = checksum(&buf);

            let i = 2 + 2 * rng.below(18);
            let old = u16::from_be_bytes([buf[i], buf[i + 1]]);
            let new = rng.next_u64() as u16;
            buf[i..i + 2].copy_from_slice(&new.to_be_bytes());
            assert_eq!(update(csum, old, new), checksum(&buf));

            let csum = checksum(&buf);
            let j = 2 + 2 * rng.below(17);
            let old = u32::from_be_bytes([buf[j], buf[j + 1], buf[j + 2], buf[j + 3]]);
            let new = rng.next_u64() as u32;
            buf[j..j + 4].copy_from_slice(&new.to_be_bytes());
            assert_eq!(update_u32(csum, old, new), checksum(&buf));
        }
    }

    #[test]
    fn accumulator_pieces_equal_whole() {
        let mut rng = XorShift(23);
        let mut buf = [0u8; 96];
        for _ in 0..crate::test_rounds(500) {
            rng.fill(&mut buf);
            let len = rng.below(buf.len() + 1);
            let cut = 2 * rng.below(len / 2 + 1);
            let (a, b) = buf[..len].split_at(cut);
            let v = rng.next_u64() as u16;
            let pieces = Accumulator::default().add_bytes(a).add_u16(v).add_bytes(b);
            assert_eq!(pieces.finish(), combine(&[reference_sum(&buf[..len]), v]));
        }
        assert_eq!(Accumulator::default().finish(), 0);
        assert_eq!(Accumulator::default().add_u16(0x1234).finish(), 0x1234);
    }

    #[test]
    fn fold_keeps_nonzero_sums_nonzero() {
        for v in [
            1u64,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            u64::MAX,
            0x8000_0000_0000_0000,
        ] {
            let f = fold(v);
            assert_ne!(f, 0, "{v:#x}");
            assert_eq!(u64::from(f) % 0xffff, v % 0xffff, "{v:#x}");
        }
        assert_eq!(fold(0), 0);
    }

    #[test]
    fn native_multi_word_update_matches_full_recompute() {
        let ne32 = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let ne16 = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        let mut rng = XorShift(0x5eed);
        let mut buf = [0u8; 40];
        for _ in 0..crate::test_rounds(5000) {
            rng.fill(&mut buf);
            buf[0] = 0x45;
            buf[2..4].fill(0);
            let csum = checksum(&buf);
            buf[2..4].copy_from_slice(&csum.to_be_bytes());
            // Change two 32-bit words and one 16-bit word at even offsets
            // past the checksum field.
            let (i, j, k) = (
                4 + 2 * rng.below(4),
                14 + 2 * rng.below(4),
                26 + 2 * rng.below(6),
            );
            let old = [ne32(&buf, i), ne32(&buf, j), u32::from(ne16(&buf, k))];
            let a = rng.next_u64() as u32;
            let b = rng.next_u64() as u32;
            let c = rng.next_u64() as u16;
            buf[i..i + 4].copy_from_slice(&a.to_ne_bytes());
            buf[j..j + 4].copy_from_slice(&b.to_ne_bytes());
            buf[k..k + 2].copy_from_slice(&c.to_ne_bytes());
            let new = [a, b, u32::from(c)];
            let got = update_ne32(ne16(&buf, 2), &old, &new);
            buf[2..4].fill(0);
            assert_eq!(u16::from_be_bytes(got.to_ne_bytes()), checksum(&buf));
        }
    }

    #[test]
    fn pseudo_header_matches_byte_layout() {
        let src = Ipv4Address([198, 18, 0, 1]);
        let dst = Ipv4Address([10, 0, 0, 254]);
        let bytes = [198, 18, 0, 1, 10, 0, 0, 254, 0, 17, 0x01, 0x23];
        assert_eq!(udp_pseudo_header(src, dst, 0x0123), data_sum(&bytes));
    }
}
