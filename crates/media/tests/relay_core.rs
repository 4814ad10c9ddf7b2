//! The sans-IO relay in simulated time: latching, foreign sources, early media, re-latch
//! on new SDP, RTCP and RFC 4733 relay, silence with hold.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hark_media::packet::TelephoneEvent;
use hark_media::{
    DropReason, ExtSeq, MediaRelay, PacketKind, RelayAction, RelayConfig, RelayEvent, Side, Ssrc,
};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A minimal RTCP receiver report (no report blocks).
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

const CALLER_RTP: &str = "192.0.2.10:4000";
const CALLER_RTCP: &str = "192.0.2.10:4001";
const CALLEE_RTP: &str = "198.51.100.20:5000";
const CALLEE_RTCP: &str = "198.51.100.20:5001";

fn relay(t0: Instant) -> MediaRelay {
    let mut r = MediaRelay::new(
        t0,
        RelayConfig {
            silence_timeout: Duration::from_secs(30),
        },
    );
    r.set_remote(Side::A, Some(addr(CALLER_RTP)), Some(addr(CALLER_RTCP)));
    r.set_remote(Side::B, Some(addr(CALLEE_RTP)), None);
    r
}

fn forward(out_side: Side, kind: PacketKind, to: &str) -> RelayAction {
    RelayAction::Forward {
        out_side,
        kind,
        to: addr(to),
    }
}

#[test]
fn forwards_both_ways_and_latches_the_real_source() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let pkt = rtp(0, 1, 160, 0xaaaa, &[0xff; 160]);

    // The caller is behind NAT: same IP, another port. It latches.
    let nat = addr("192.0.2.10:61000");
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, nat, &pkt),
        forward(Side::B, PacketKind::Rtp, CALLEE_RTP)
    );
    assert_eq!(
        r.poll_event(),
        Some(RelayEvent::Latched {
            side: Side::A,
            kind: PacketKind::Rtp,
            from: nat
        })
    );
    // The callee's packets now go to where the caller sends from, not its SDP port.
    let back = rtp(0, 7, 160, 0xbbbb, &[0x7f; 160]);
    assert_eq!(
        r.handle_packet(t0, Side::B, PacketKind::Rtp, addr(CALLEE_RTP), &back),
        RelayAction::Forward {
            out_side: Side::A,
            kind: PacketKind::Rtp,
            to: nat
        }
    );
    let stats = r.stats();
    assert_eq!(stats.a.rtp_packets_in, 1);
    assert_eq!(stats.a.rtp_bytes_in, pkt.len() as u64);
    assert_eq!(stats.a.packets_out, 1);
    assert_eq!(stats.b.packets_out, 1);
    assert_eq!(stats.a.ssrc, Some(Ssrc(0xaaaa)));
    assert_eq!(stats.b.ssrc, Some(Ssrc(0xbbbb)));
    assert_eq!(stats.a.latched_rtp, Some(nat));
    assert_eq!(stats.a.last_rtp_at, Some(t0));
}

#[test]
fn foreign_source_after_latch_is_dropped_and_counted() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let pkt = rtp(8, 1, 0, 1, &[0xd5; 160]);
    r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt);
    // Same IP, other port: after latching this is foreign too.
    for from in ["192.0.2.10:4002", "203.0.113.66:4000", "203.0.113.66:9999"] {
        assert_eq!(
            r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(from), &pkt),
            RelayAction::Drop(DropReason::ForeignSource),
            "{from}"
        );
    }
    assert_eq!(r.stats().a.dropped_foreign, 3);
    assert_eq!(
        r.stats().a.rtp_packets_in,
        1,
        "dropped packets are not counted in"
    );
    assert_eq!(r.stats().b.packets_out, 1);
}

#[test]
fn unknown_ip_cannot_latch_before_the_peer_does() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let pkt = rtp(0, 1, 0, 1, &[0; 20]);
    assert_eq!(
        r.handle_packet(
            t0,
            Side::A,
            PacketKind::Rtp,
            addr("203.0.113.66:4000"),
            &pkt
        ),
        RelayAction::Drop(DropReason::ForeignSource)
    );
    assert_eq!(r.stats().a.latched_rtp, None);
    // The real caller still latches afterwards.
    assert!(matches!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt),
        RelayAction::Forward { .. }
    ));
}

#[test]
fn allow_ip_lets_a_natted_peer_latch() {
    let t0 = Instant::now();
    let mut r = MediaRelay::new(t0, RelayConfig::default());
    // The caller wrote its private address; it really sends from its public one.
    r.set_remote(Side::A, Some(addr("10.1.1.5:4000")), None);
    r.set_remote(Side::B, Some(addr(CALLEE_RTP)), None);
    let public = addr("203.0.113.9:33333");
    let pkt = rtp(0, 1, 0, 1, &[0; 20]);
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, public, &pkt),
        RelayAction::Drop(DropReason::ForeignSource)
    );
    r.allow_ip(Side::A, Some(public.ip()));
    assert!(matches!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, public, &pkt),
        RelayAction::Forward { .. }
    ));
    // RTCP from the IP RTP latched to may latch too.
    assert!(matches!(
        r.handle_packet(
            t0,
            Side::A,
            PacketKind::Rtcp,
            addr("203.0.113.9:33334"),
            &rtcp_rr(1)
        ),
        RelayAction::Forward { .. }
    ));
}

#[test]
fn early_media_flows_to_the_caller_before_answer() {
    let t0 = Instant::now();
    let mut r = MediaRelay::new(t0, RelayConfig::default());
    // INVITE from the caller: only side A is known.
    r.set_remote(Side::A, Some(addr(CALLER_RTP)), None);
    let ringback = rtp(0, 100, 0, 0xcafe, &[0x55; 160]);
    // The callee's early packets before its 183 arrived: not latchable yet.
    assert_eq!(
        r.handle_packet(t0, Side::B, PacketKind::Rtp, addr(CALLEE_RTP), &ringback),
        RelayAction::Drop(DropReason::ForeignSource)
    );
    // The caller talks before the answer: nowhere to send yet.
    let hello = rtp(0, 1, 0, 1, &[0; 160]);
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &hello),
        RelayAction::Drop(DropReason::NoDestination)
    );
    assert_eq!(r.stats().a.dropped_no_destination, 1);
    // 183 Session Progress with SDP: early media flows A-ward.
    r.set_remote(Side::B, Some(addr(CALLEE_RTP)), None);
    assert_eq!(
        r.handle_packet(t0, Side::B, PacketKind::Rtp, addr(CALLEE_RTP), &ringback),
        forward(Side::A, PacketKind::Rtp, CALLER_RTP)
    );
}

#[test]
fn early_media_from_the_callee_address_before_its_sdp() {
    let t0 = Instant::now();
    let mut r = MediaRelay::new(t0, RelayConfig::default());
    r.set_remote(Side::A, Some(addr(CALLER_RTP)), None);
    r.allow_ip(Side::B, Some(addr(CALLEE_RTP).ip()));
    let ringback = rtp(0, 100, 0, 0xcafe, &[0x55; 160]);
    assert_eq!(
        r.handle_packet(
            t0,
            Side::B,
            PacketKind::Rtp,
            addr("198.51.100.20:5010"),
            &ringback
        ),
        forward(Side::A, PacketKind::Rtp, CALLER_RTP)
    );
}

#[test]
fn new_sdp_resets_the_latch() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let pkt = rtp(0, 1, 0, 1, &[0; 20]);
    r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt);
    let moved = addr("192.0.2.77:6000");
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, moved, &pkt),
        RelayAction::Drop(DropReason::ForeignSource)
    );
    // re-INVITE: the caller moved (e.g. a transfer to another device).
    r.set_remote(Side::A, Some(moved), None);
    assert_eq!(r.stats().a.latched_rtp, None);
    assert_eq!(r.destination(Side::A, PacketKind::Rtp), Some(moved));
    assert!(matches!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, moved, &pkt),
        RelayAction::Forward { .. }
    ));
    // The old address is foreign now.
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt),
        RelayAction::Drop(DropReason::ForeignSource)
    );
}

#[test]
fn rtcp_is_relayed_and_latched_separately() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let rr = rtcp_rr(0x1234);
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtcp, addr(CALLER_RTCP), &rr),
        forward(Side::B, PacketKind::Rtcp, CALLEE_RTCP)
    );
    assert_eq!(
        r.handle_packet(t0, Side::B, PacketKind::Rtcp, addr(CALLEE_RTCP), &rr),
        forward(Side::A, PacketKind::Rtcp, CALLER_RTCP)
    );
    assert_eq!(r.stats().a.rtcp_packets_in, 1);
    assert_eq!(r.stats().a.latched_rtcp, Some(addr(CALLER_RTCP)));
    assert_eq!(r.stats().a.latched_rtp, None, "RTCP does not latch RTP");
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtcp, addr("192.0.2.10:4999"), &rr),
        RelayAction::Drop(DropReason::ForeignSource)
    );
    // RTCP multiplexed on the RTP port (RFC 5761) goes out as RTCP.
    assert_eq!(
        r.handle_packet(t0, Side::B, PacketKind::Rtp, addr(CALLEE_RTP), &rr),
        RelayAction::Drop(DropReason::ForeignSource),
        "the callee's RTCP latched to port 5001"
    );
}

#[test]
fn rtcp_on_the_rtp_port_is_forwarded_as_rtcp() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &rtcp_rr(9)),
        forward(Side::B, PacketKind::Rtcp, CALLEE_RTCP)
    );
}

#[test]
fn telephone_events_are_forwarded_like_rtp() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let ev = TelephoneEvent {
        event: 10,
        end: false,
        volume: 10,
        duration: 160,
    };
    let pkt = rtp(101, 50, 8000, 0x77, &ev.to_bytes());
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt),
        forward(Side::B, PacketKind::Rtp, CALLEE_RTP)
    );
}

#[test]
fn malformed_packets_are_dropped() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    for junk in [&b""[..], b"\x80", &[0x40; 40], &[0x80; 5], b"hello, world!"] {
        assert_eq!(
            r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), junk),
            RelayAction::Drop(DropReason::Malformed)
        );
    }
    assert_eq!(
        r.handle_packet(
            t0,
            Side::A,
            PacketKind::Rtcp,
            addr(CALLER_RTCP),
            &[0x80, 201, 0, 9, 0, 0, 0, 0]
        ),
        RelayAction::Drop(DropReason::Malformed),
        "length beyond the datagram"
    );
    assert_eq!(r.stats().a.dropped_malformed, 6);
    assert_eq!(r.stats().a.latched_rtp, None, "junk does not latch");
}

#[test]
fn hold_with_zero_address_has_no_destination() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    // The callee sent c=0.0.0.0: no address.
    r.set_remote(Side::B, None, None);
    let pkt = rtp(0, 1, 0, 1, &[0; 20]);
    assert_eq!(
        r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt),
        RelayAction::Drop(DropReason::NoDestination)
    );
}

#[test]
fn sequence_numbers_extend_over_wrap_and_track_loss() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let mut seq: u16 = 65530;
    for i in 0..20u32 {
        if i == 10 {
            seq = seq.wrapping_add(1); // lose one
        }
        let pkt = rtp(0, seq, i * 160, 0x42, &[0; 160]);
        r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt);
        seq = seq.wrapping_add(1);
    }
    let a = r.stats().a;
    assert_eq!(a.highest_seq, Some(ExtSeq(65530 + 20)));
    assert_eq!(a.lost(), 1);
    // A new SSRC restarts the stream counters.
    let pkt = rtp(0, 3, 0, 0x43, &[0; 160]);
    r.handle_packet(t0, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt);
    let a = r.stats().a;
    assert_eq!(a.ssrc_changes, 1);
    assert_eq!(a.highest_seq, Some(ExtSeq(3)));
    assert_eq!(a.lost(), 0);
}

#[test]
fn silence_is_detected_once_and_resets_on_rtp() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let timeout = Duration::from_secs(30);
    assert_eq!(r.poll_timeout(), Some(t0 + timeout));
    let pkt = rtp(0, 1, 0, 1, &[0; 20]);
    let t1 = t0 + Duration::from_secs(10);
    r.handle_packet(t1, Side::A, PacketKind::Rtp, addr(CALLER_RTP), &pkt);
    r.poll_event(); // latched
    assert_eq!(r.poll_timeout(), Some(t1 + timeout));

    // Firing early (at the old deadline) reports nothing.
    r.handle_timeout(t0 + timeout);
    assert_eq!(r.poll_event(), None);
    assert!(!r.is_silent(t0 + timeout, timeout));

    let dead = t1 + timeout;
    assert!(r.is_silent(dead, timeout));
    r.handle_timeout(dead);
    assert_eq!(
        r.poll_event(),
        Some(RelayEvent::Silent {
            silent_for: timeout
        })
    );
    assert_eq!(r.poll_timeout(), None, "reported once");
    r.handle_timeout(dead + timeout);
    assert_eq!(r.poll_event(), None);

    // RTP comes back: armed again.
    let t2 = dead + Duration::from_secs(5);
    r.handle_packet(t2, Side::B, PacketKind::Rtp, addr(CALLEE_RTP), &pkt);
    assert_eq!(r.poll_timeout(), Some(t2 + timeout));
}

#[test]
fn rtcp_alone_does_not_keep_a_call_alive() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let timeout = Duration::from_secs(30);
    let t1 = t0 + Duration::from_secs(29);
    r.handle_packet(
        t1,
        Side::A,
        PacketKind::Rtcp,
        addr(CALLER_RTCP),
        &rtcp_rr(1),
    );
    assert!(r.is_silent(t0 + timeout, timeout));
}

#[test]
fn hold_is_not_dead_and_resume_restarts_the_clock() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let timeout = Duration::from_secs(30);
    r.set_hold(t0, Side::A, true);
    assert_eq!(r.poll_timeout(), None);
    let later = t0 + Duration::from_secs(3600);
    assert!(!r.is_silent(later, timeout));
    r.handle_timeout(later);
    assert_eq!(r.poll_event(), None);

    r.set_hold(later, Side::A, false);
    assert!(!r.is_silent(later + Duration::from_secs(29), timeout));
    assert_eq!(r.poll_timeout(), Some(later + timeout));
    assert!(r.is_silent(later + timeout, timeout));

    // Hold on the other side counts the same.
    r.set_hold(later, Side::B, true);
    assert!(!r.is_silent(later + timeout, timeout));
}

#[test]
fn events_do_not_pile_up_without_bound() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let pkt = rtp(0, 1, 0, 1, &[0; 20]);
    for i in 0..100u16 {
        r.set_remote(Side::A, Some(addr(CALLER_RTP)), None);
        let from = SocketAddr::new(addr(CALLER_RTP).ip(), 4000 + i);
        r.handle_packet(t0, Side::A, PacketKind::Rtp, from, &pkt);
    }
    let mut n = 0;
    while r.poll_event().is_some() {
        n += 1;
    }
    assert!(n <= 16, "{n}");
}

#[test]
fn a_party_that_left_by_transfer_cannot_take_the_side_back() {
    let t0 = Instant::now();
    let mut r = relay(t0);
    let pkt = rtp(8, 1, 0, 1, &[0xd5; 160]);
    // The transferor's phone latched side A...
    let old = addr("192.0.2.10:4000");
    r.handle_packet(t0, Side::A, PacketKind::Rtp, old, &pkt);
    // ... then the transfer: a new party (same IP here, another port) on a new SDP.
    r.new_party(Side::A);
    let new = addr("192.0.2.10:5000");
    r.set_remote(Side::A, Some(new), None);
    // The old phone keeps streaming for a moment: it must not grab the side.
    assert_eq!(r.handle_packet(t0, Side::A, PacketKind::Rtp, old, &pkt), RelayAction::Drop(DropReason::ForeignSource));
    assert_eq!(r.handle_packet(t0, Side::A, PacketKind::Rtp, new, &pkt), forward(Side::B, PacketKind::Rtp, CALLEE_RTP));
    // The callee's audio goes to the new party.
    let back = rtp(8, 7, 160, 2, &[0xd5; 160]);
    assert_eq!(
        r.handle_packet(t0, Side::B, PacketKind::Rtp, addr(CALLEE_RTP), &back),
        RelayAction::Forward { out_side: Side::A, kind: PacketKind::Rtp, to: new }
    );
    // A new SDP naming the old address exactly lets it in again (the same phone came back).
    r.new_party(Side::A);
    r.set_remote(Side::A, Some(old), None);
    assert_eq!(r.handle_packet(t0, Side::A, PacketKind::Rtp, old, &pkt), forward(Side::B, PacketKind::Rtp, CALLEE_RTP));
}
