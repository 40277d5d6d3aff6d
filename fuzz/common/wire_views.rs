//! The `wire_views` checks, shared (by `#[path]`) between the fuzz target
//! and tests/fuzz_corpus.rs so the corpus replay asserts what the fuzzer
//! does: every view's `new_checked` and every accessor on arbitrary bytes,
//! the in-place reply steps on copies, and parse -> emit -> parse round
//! trips for the RPC header (`RpcRepr`) and the UDP frame (`UdpEndpoints`
//! plus payload). Panics on a broken round trip, as a fuzz target must.

use bypass::wire::frame::UDP_HEADERS_LEN;
use bypass::wire::{
    emit_request_frame, emit_udp_frame, ArpOperation, ArpPacket, EtherType, EthernetFrame,
    IcmpEchoPacket, IpProtocol, Ipv4Address, Ipv4Frame, Ipv4Packet, MacAddress, RpcHeader, RpcKind,
    RpcMethod, RpcRepr, RpcStatus, SockperfHeader, UdpFrame, UdpPacket,
};

/// Every check on `data`, read as each layer in turn.
pub fn check_wire_views(data: &[u8]) {
    ethernet(data);
    ipv4(data);
    arp(data);
    icmp(data);
    udp(data);
    rpc(data);
    sockperf(data);
    frames(data);
    enums(data);
}

fn ethernet(data: &[u8]) {
    let Ok(f) = EthernetFrame::new_checked(data) else {
        return;
    };
    let (dst, src, ty) = (f.dst_addr(), f.src_addr(), f.ethertype());
    let _ = (dst.is_unicast(), dst.is_local(), src.to_string());
    let payload = f.payload();
    match ty {
        EtherType::Ipv4 => ipv4(payload),
        EtherType::Arp => arp(payload),
        _ => {}
    }
    let mut copy = data.to_vec();
    let mut e = EthernetFrame::new_unchecked(&mut copy[..]);
    e.set_dst_addr(src);
    e.set_src_addr(dst);
    e.set_ethertype(ty);
    let back = EthernetFrame::new_checked(&copy[..]).expect("same length still checks");
    assert_eq!((back.dst_addr(), back.src_addr()), (src, dst));
    assert_eq!(u16::from(back.ethertype()), u16::from(ty));
}

fn ipv4(data: &[u8]) {
    let Ok(ip) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (ip.version(), ip.header_len(), ip.total_len(), ip.ident());
    let _ = (
        ip.dont_frag(),
        ip.more_frags(),
        ip.frag_offset(),
        ip.is_fragment(),
    );
    let _ = (ip.has_options(), ip.ttl(), ip.protocol(), ip.checksum());
    let _ = (ip.src_addr().to_string(), ip.dst_addr(), ip.dscp_ecn());
    let _ = ip.verify_checksum();
    match ip.protocol() {
        IpProtocol::Udp => {
            if let Ok(u) = UdpPacket::new_checked(ip.payload()) {
                let _ = u.verify_checksum(ip.src_addr(), ip.dst_addr());
            }
        }
        IpProtocol::Icmp => icmp(ip.payload()),
        _ => {}
    }
    let mut copy = data.to_vec();
    let mut w = Ipv4Packet::new_unchecked(&mut copy[..]);
    w.fill_checksum();
    let _ = w.payload_mut().len();
    assert!(
        Ipv4Packet::new_checked(&copy[..]).is_ok_and(|p| p.verify_checksum()),
        "a filled IPv4 checksum verifies"
    );
}

fn arp(data: &[u8]) {
    let Ok(a) = ArpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        a.hardware_type(),
        a.protocol_type(),
        a.hw_len(),
        a.proto_len(),
    );
    let _ = (a.operation(), a.sender_hw_addr(), a.sender_proto_addr());
    let _ = (a.target_hw_addr(), a.target_proto_addr());
    let mut copy = data.to_vec();
    let mut w = ArpPacket::new_unchecked(&mut copy[..]);
    w.make_reply(MacAddress([2, 0, 0, 0, 0, 1]));
    let r = ArpPacket::new_checked(&copy[..]).expect("a reply still checks");
    assert_eq!(r.operation(), ArpOperation::Reply);
    assert_eq!(r.target_hw_addr(), a.sender_hw_addr());
}

fn icmp(data: &[u8]) {
    let Ok(i) = IcmpEchoPacket::new_checked(data) else {
        return;
    };
    let _ = (i.kind(), i.code(), i.checksum(), i.ident(), i.seq_no());
    let _ = (i.payload().len(), i.verify_checksum());
    let mut copy = data.to_vec();
    let mut w = IcmpEchoPacket::new_unchecked(&mut copy[..]);
    w.fill_checksum();
    assert!(w.verify_checksum(), "a filled ICMP checksum verifies");
    w.make_reply();
    let _ = w.payload_mut().len();
}

fn udp(data: &[u8]) {
    let Ok(u) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        u.src_port(),
        u.dst_port(),
        u.len(),
        u.checksum(),
        u.payload().len(),
    );
    let (a, b) = (Ipv4Address([198, 18, 0, 2]), Ipv4Address::BROADCAST);
    let _ = u.verify_checksum(a, b);
    let mut copy = data.to_vec();
    let mut w = UdpPacket::new_unchecked(&mut copy[..]);
    w.fill_checksum(a, b);
    assert!(w.verify_checksum(a, b), "a filled UDP checksum verifies");
    let _ = w.payload_mut().len();
}

fn rpc(data: &[u8]) {
    let Ok(h) = RpcHeader::new_checked(data) else {
        return;
    };
    let _ = (h.magic(), h.version(), h.kind(), h.method(), h.status());
    let _ = (h.request_id(), h.client_ts(), h.server_ns(), h.length());
    let payload = h.payload();
    let Ok(repr) = RpcRepr::parse(&h) else {
        return;
    };
    let _ = bypass::wire::rpc::plan_request(repr.method, payload, 1_000_000);
    let mut buf = vec![0u8; repr.buffer_len().min(data.len())];
    let mut w = RpcHeader::new_unchecked(&mut buf[..]);
    repr.emit(&mut w)
        .expect("a parsed header fits its own buffer");
    let again = RpcHeader::new_unchecked(&buf[..]);
    assert_eq!(RpcRepr::parse(&again), Ok(repr), "RpcRepr round trip");
}

fn sockperf(data: &[u8]) {
    let Ok(s) = SockperfHeader::new_checked(data) else {
        return;
    };
    let _ = (
        s.sequence_number(),
        s.flags(),
        s.message_len(),
        s.wants_reply(),
    );
    let _ = (
        s.is_client(),
        s.is_pong_request(),
        s.is_warmup(),
        s.payload().len(),
    );
    let mut copy = data.to_vec();
    let mut w = SockperfHeader::new_unchecked(&mut copy[..]);
    w.make_reply();
    let _ = w.payload_mut().len();
}

/// The fixed-offset frame views, their reply steps, and the emitters.
fn frames(data: &[u8]) {
    if let Ok(f) = Ipv4Frame::new_checked(data) {
        let _ = (f.protocol(), f.ip().total_len());
        let mut copy = data.to_vec();
        let mut w = Ipv4Frame::new_unchecked(&mut copy[..]);
        w.reverse();
        let _ = w.payload_mut().len();
    }
    let _ = UdpFrame::new_checked_udp(data).map(|f| f.payload().len());
    let Ok(f) = UdpFrame::new_checked(data) else {
        return;
    };
    let _ = (
        f.src_port(),
        f.dst_port(),
        f.udp_checksum(),
        f.ip(),
        f.udp(),
    );
    let _ = f.verify_udp_checksum();
    let ep = f.endpoints();
    let payload = f.payload();

    let mut buf = vec![0u8; UDP_HEADERS_LEN + payload.len()];
    let n = emit_udp_frame(&mut buf, &ep, payload).expect("a parsed payload fits");
    let back = UdpFrame::new_checked(&buf[..n]).expect("an emitted frame checks");
    assert_eq!(back.endpoints(), ep, "UdpEndpoints round trip");
    assert_eq!(back.payload(), payload, "payload round trip");
    assert!(
        back.verify_udp_checksum(),
        "an emitted frame's UDP checksum verifies"
    );
    assert!(
        back.ip().verify_checksum(),
        "an emitted frame's IPv4 checksum verifies"
    );

    if let Ok(repr) = RpcHeader::new_checked(payload).and_then(|h| RpcRepr::parse(&h)) {
        let body = &payload[bypass::wire::rpc::HEADER_LEN..];
        let n = emit_request_frame(&mut buf, &ep, &repr, body).expect("same size as before");
        let back = UdpFrame::new_checked(&buf[..n]).expect("an emitted request checks");
        let h = RpcHeader::new_checked(back.payload()).expect("an emitted header checks");
        let want = RpcRepr {
            payload_len: body.len() as u32,
            ..repr
        };
        assert_eq!(RpcRepr::parse(&h), Ok(want), "request frame round trip");
    }

    let mut copy = data.to_vec();
    let mut w = UdpFrame::new_unchecked(&mut copy[..]);
    w.reverse();
    assert_eq!(w.endpoints(), ep.reversed(), "reverse swaps the endpoints");
}

/// The integer <-> enum conversions keep the number.
fn enums(data: &[u8]) {
    let w =
        |i: usize| u16::from_be_bytes([*data.get(i).unwrap_or(&0), *data.get(i + 1).unwrap_or(&0)]);
    let b = data.first().copied().unwrap_or(0);
    assert_eq!(u16::from(EtherType::from(w(0))), w(0));
    assert_eq!(u8::from(IpProtocol::from(b)), b);
    assert_eq!(u16::from(ArpOperation::from(w(2))), w(2));
    assert_eq!(u8::from(RpcKind::from(b)), b);
    assert_eq!(u16::from(RpcMethod::from(w(4))), w(4));
    assert_eq!(u16::from(RpcStatus::from(w(6))), w(6));
}
