//! The frame views against the layer views they are derived from: the
//! checks accept exactly what a layer-by-layer parse accepts, and every
//! reply step leaves checksums that a full recompute agrees with.

use super::super::test_util::{client_to_server as endpoints, XorShift};
use super::super::{rpc, RpcMethod, RpcRepr};
use super::*;
use crate::wire::MacAddress;

fn udp_frame(ep: &UdpEndpoints, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; UDP_HEADERS_LEN + payload.len()];
    emit_udp_frame(&mut f, ep, payload).unwrap();
    f
}

fn rpc_frame(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; UDP_HEADERS_LEN + rpc::HEADER_LEN + payload.len()];
    let repr = RpcRepr::request(RpcMethod::Echo, 7, 1_000_000_007, 0);
    emit_request_frame(&mut f, &endpoints(), &repr, payload).unwrap();
    f
}

fn refill_ip_csum(f: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut f[field::IP..field::UDP]).fill_checksum();
}

fn refill_udp_csum(f: &mut [u8]) {
    let ip = Ipv4Packet::new_unchecked(&f[field::IP..]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    UdpPacket::new_unchecked(&mut f[field::UDP..]).fill_checksum(src, dst);
}

/// The plain-IPv4 check as the nodes wrote it before the frame views,
/// through the layer views one by one.
fn reference_plain_ipv4(data: &[u8]) -> bool {
    match data.get(field::IP..).map(Ipv4Packet::new_checked) {
        Some(Ok(ip)) => {
            ip.header_len() == field::UDP - field::IP
                && field::IP + usize::from(ip.total_len()) == data.len()
        }
        _ => false,
    }
}

/// [`reference_plain_ipv4`] carrying UDP whose length ends the buffer.
fn reference_plain_udp(data: &[u8]) -> bool {
    reference_plain_ipv4(data)
        && Ipv4Packet::new_unchecked(&data[field::IP..]).protocol() == IpProtocol::Udp
        && match UdpPacket::new_checked(&data[field::UDP..]) {
            Ok(udp) => field::UDP + usize::from(udp.len()) == data.len(),
            Err(_) => false,
        }
}

fn assert_checksums_ok(f: &[u8]) {
    let frame = UdpFrame::new_checked(f).unwrap();
    assert!(frame.ip().verify_checksum(), "IPv4 header checksum");
    let udp = frame.udp();
    assert!(udp.verify_checksum(frame.ip().src_addr(), frame.ip().dst_addr()));
    assert!(frame.verify_udp_checksum());
}

#[test]
fn layout_is_the_layers_laid_end_to_end() {
    assert_eq!((field::IP, field::UDP, field::PAYLOAD), (14, 34, 42));
    assert_eq!(UDP_HEADERS_LEN, UdpFrame::<&[u8]>::HEADER_LEN);
    assert_eq!(Ipv4Frame::<&[u8]>::HEADER_LEN, 34);
    assert_eq!(MAX_UDP_PAYLOAD, 65_507);
    assert_eq!(super::super::ipv4::VER_IHL_PLAIN, 0x45);
}

#[test]
fn checks_agree_with_the_layer_by_layer_parse() {
    let mut rng = XorShift(0x5eed);
    let good = rpc_frame(b"0123456789");
    // Bytes whose mutation changes the verdict: version/IHL, both lengths,
    // protocol; plus random ones.
    let hot = [14, 16, 17, 23, 38, 39];
    for round in 0..crate::test_rounds(20_000) {
        let mut f = good.clone();
        for _ in 0..1 + rng.below(3) {
            let i = if round % 2 == 0 {
                hot[rng.below(hot.len())]
            } else {
                rng.below(f.len())
            };
            f[i] = rng.next_u64() as u8;
        }
        if rng.below(4) == 0 {
            f.truncate(rng.below(f.len() + 1));
        }
        let (ip, udp) = (reference_plain_ipv4(&f), reference_plain_udp(&f));
        assert_eq!(Ipv4Frame::new_checked(&f[..]).is_ok(), ip, "{f:02x?}");
        assert_eq!(UdpFrame::new_checked(&f[..]).is_ok(), udp, "{f:02x?}");
        if ip && f[field::IP_PROTOCOL] == u8::from(IpProtocol::Udp) {
            assert_eq!(UdpFrame::new_checked_udp(&f[..]).is_ok(), udp, "{f:02x?}");
        }
    }
}

#[test]
fn rejects_with_a_reason() {
    let good = rpc_frame(b"abc");
    assert!(UdpFrame::new_checked(&good[..]).is_ok());
    let verdict = |f: &[u8]| UdpFrame::new_checked(f).err();

    for len in [0, 13, 33, 41] {
        assert_eq!(verdict(&good[..len]), Some(WireError::Truncated), "{len}");
    }
    // Cut anywhere past the headers: the lengths no longer end the buffer.
    assert_eq!(verdict(&good[..good.len() - 1]), Some(WireError::BadLength));
    let mut v6 = good.clone();
    v6[field::IP_VER_IHL] = 0x65;
    assert_eq!(verdict(&v6), Some(WireError::BadVersion));
    let mut ihl4 = good.clone();
    ihl4[field::IP_VER_IHL] = 0x44;
    assert_eq!(verdict(&ihl4), Some(WireError::BadHeaderLen));

    // The same datagram behind a 4-byte NOP/EOL option block.
    let mut opts = good[..field::UDP].to_vec();
    opts.extend_from_slice(&[1, 1, 1, 0]);
    opts.extend_from_slice(&good[field::UDP..]);
    opts[field::IP_VER_IHL] = 0x46;
    let total = (opts.len() - field::IP) as u16;
    opts[field::IP_TOTAL_LEN].copy_from_slice(&total.to_be_bytes());
    assert_eq!(verdict(&opts), Some(WireError::Unsupported));
    assert!(Ipv4Frame::new_checked(&opts[..]).is_err());

    let mut tcp = good.clone();
    tcp[field::IP_PROTOCOL] = 6;
    assert_eq!(verdict(&tcp), Some(WireError::Unsupported));
    assert!(Ipv4Frame::new_checked(&tcp[..]).is_ok());

    let mut padded = good.clone();
    padded.resize(good.len() + 4, 0);
    assert_eq!(verdict(&padded), Some(WireError::BadLength));
    let mut short_udp = good.clone();
    short_udp[field::UDP_LENGTH].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(verdict(&short_udp), Some(WireError::BadLength));
    assert_eq!(
        UdpFrame::new_checked_udp(&short_udp[..]).err(),
        Some(WireError::BadLength)
    );
}

#[test]
fn fragments_pass_the_layout_check() {
    // Fragments are refused by ip4-input's policy, not by the layout: a
    // first fragment (MF) has exactly the common layout.
    let mut f = rpc_frame(b"abc");
    f[field::IP + 6] = 0x20;
    refill_ip_csum(&mut f);
    assert!(UdpFrame::new_checked(&f[..]).is_ok());
    assert!(Ipv4Frame::new_checked(&f[..]).is_ok());
    assert!(f.len() > 60, "not padded, so the length check still holds");
}

#[test]
fn reverse_addresses_a_reply_with_valid_checksums() {
    let payload = b"hello, world";
    let mut f = udp_frame(&endpoints(), payload);
    f[field::IP_TTL] = 3;
    refill_ip_csum(&mut f);
    UdpFrame::new_checked(&mut f[..]).unwrap().reverse();
    assert_eq!(f, udp_frame(&endpoints().reversed(), payload));
    assert_checksums_ok(&f);
    assert_eq!(
        UdpFrame::new_checked(&f[..]).unwrap().endpoints(),
        endpoints().reversed()
    );
}

#[test]
fn ipv4_frame_reverse_leaves_the_payload() {
    let payload = [0x08, 0, 0xf7, 0xff, 0, 0, 0, 0];
    let mut f = udp_frame(&endpoints(), b"");
    f[field::UDP..].copy_from_slice(&payload);
    f[field::IP_PROTOCOL] = 1;
    refill_ip_csum(&mut f);
    let mut frame = Ipv4Frame::new_checked(&mut f[..]).unwrap();
    assert_eq!(frame.protocol(), IpProtocol::Icmp);
    frame.reverse();
    assert_eq!(frame.payload_mut(), &payload);
    let ip = frame.ip();
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.src_addr(), ip.dst_addr()),
        (endpoints().dst_ip, endpoints().src_ip)
    );
    assert_eq!(ip.ttl(), TTL);
    let eth = super::super::EthernetFrame::new_checked(&f[..]).unwrap();
    assert_eq!(
        (eth.src_addr(), eth.dst_addr()),
        (endpoints().dst_mac, endpoints().src_mac)
    );
}

#[test]
fn payload_words_fold_into_the_checksum() {
    let mut rng = XorShift(3);
    for _ in 0..crate::test_rounds(2_000) {
        let mut payload = [0u8; 40];
        rng.fill(&mut payload);
        let mut f = udp_frame(&endpoints(), &payload);
        let at = [2 * rng.below(10), 20, 24 + 2 * rng.below(4)];
        let new = [rng.next_u64() as u16, 0, rng.next_u64() as u16];
        let v = rng.next_u64() as u32;
        let mut frame = UdpFrame::new_checked(&mut f[..]).unwrap();
        frame.set_payload_u16s(at, new);
        frame.set_payload_u32(32, v);
        assert_checksums_ok(&f);
        for (a, n) in at.iter().zip(new).skip(1) {
            assert_eq!(&f[field::PAYLOAD + a..][..2], n.to_be_bytes());
        }
        assert_eq!(&f[field::PAYLOAD + 32..][..4], v.to_be_bytes());
        // Incremental agrees with a full recompute bit for bit, 0xffff
        // standing in for a computed zero.
        let got = f[field::UDP_CHECKSUM].to_vec();
        refill_udp_csum(&mut f);
        assert_eq!(got, &f[field::UDP_CHECKSUM]);
    }
}

#[test]
fn zero_checksum_stays_zero() {
    let mut f = udp_frame(&endpoints(), &[0x11; 32]);
    f[field::UDP_CHECKSUM].fill(0);
    let mut frame = UdpFrame::new_checked(&mut f[..]).unwrap();
    frame.set_payload_u32(4, 0xdead_beef);
    frame.reverse();
    frame.set_payload_len(8);
    f.truncate(UDP_HEADERS_LEN + 8);
    assert_eq!(&f[field::UDP_CHECKSUM], &[0, 0]);
    assert!(UdpFrame::new_checked(&f[..]).unwrap().verify_udp_checksum());
}

#[test]
fn head_view_rewrites_like_the_whole_frame() {
    let mut whole = rpc_frame(&[0x5a; 100]);
    let mut head_of = whole.clone();
    let mut frame = UdpFrame::new_checked(&mut whole[..]).unwrap();
    frame.reverse();
    frame.set_payload_u16s([2, 6], [0x0101, 0]);
    let head: &mut [u8; UDP_HEADERS_LEN + rpc::HEADER_LEN] = head_of.first_chunk_mut().unwrap();
    let mut frame = UdpFrame::new_unchecked(head);
    frame.reverse();
    frame.set_payload_u16s([2, 6], [0x0101, 0]);
    assert_eq!(whole, head_of);
    assert_checksums_ok(&whole);
}

#[test]
fn shortened_frame_gets_consistent_lengths_and_checksums() {
    for keep in [0u16, 1, 32, 99] {
        let mut f = rpc_frame(&[0x77; 200]);
        f.truncate(UDP_HEADERS_LEN + usize::from(keep));
        let mut frame = UdpFrame::new_unchecked(&mut f[..]);
        frame.reverse();
        frame.set_payload_len(keep);
        assert_checksums_ok(&f);
        let frame = UdpFrame::new_checked(&f[..]).unwrap();
        assert_eq!(frame.payload().len(), usize::from(keep));
        assert_eq!(frame.endpoints(), endpoints().reversed());
    }
}

#[test]
fn forward_readdresses_with_checksums_a_full_recompute_agrees_with() {
    let mut rng = XorShift(0x5eed);
    for len in [0usize, 1, 7, 32, 333] {
        let mut payload = vec![0u8; len];
        rng.fill(&mut payload);
        let mut f = udp_frame(&endpoints(), &payload);
        let to = UdpEndpoints {
            src_mac: MacAddress([2, 0, 0, 0, 0, 0xaa]),
            dst_mac: MacAddress([2, 0, 0, 0, 0, 0xbb]),
            src_ip: Ipv4Address([198, 18, 9, 1]),
            dst_ip: Ipv4Address([198, 19, 200, 7]),
            src_port: 40_123,
            dst_port: 7777,
        };
        let ttl = f[field::IP_TTL] - 1;
        assert!(UdpFrame::new_unchecked(&mut f[..]).forward(&to, ttl));
        assert_checksums_ok(&f);
        // Byte for byte what emitting to `to` gives, but for the TTL (and so the header sum).
        let mut want = udp_frame(&to, &payload);
        want[field::IP_TTL] = ttl;
        refill_ip_csum(&mut want);
        assert_eq!(f, want, "payload {len}");
        assert_eq!(UdpFrame::new_checked(&f[..]).unwrap().endpoints(), to);
    }
    // A zero UDP checksum means none, and stays none.
    let mut f = udp_frame(&endpoints(), b"abc");
    f[field::UDP_CHECKSUM].fill(0);
    assert!(UdpFrame::new_unchecked(&mut f[..]).forward(&endpoints().reversed(), 9));
    assert_eq!(&f[field::UDP_CHECKSUM], &[0, 0]);
    // Too short: untouched.
    let mut short = [0u8; UDP_HEADERS_LEN - 1];
    assert!(!UdpFrame::new_unchecked(&mut short[..]).forward(&endpoints(), 1));
    assert!(short.iter().all(|&b| b == 0));
}
