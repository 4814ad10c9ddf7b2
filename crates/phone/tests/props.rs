//! Nothing panics on input: arbitrary datagrams into the engine and the media session,
//! mutated real messages into the engine, and any order of RTP through the jitter buffer.

use hark_phone::media::{JitterBuffer, MediaSession, Playout};
use hark_phone::{Account, AudioCodec, MediaParams, Phone, PhoneConfig};
use hark_sip::transport::{Peer, Transport};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn phone() -> (Phone, Instant) {
    let now = Instant::now();
    let config = PhoneConfig::new(Account {
        server: "127.0.0.1:5060".parse().unwrap(),
        user: "101".into(),
        password: "pw".into(),
        domain: "pbx.test".into(),
        transport: Transport::Udp,
    });
    (Phone::new(now, config, "127.0.0.1:5070".parse().unwrap(), "127.0.0.1".parse().unwrap()), now)
}

const INVITE: &str = "INVITE sip:101@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp1\r\n\
Max-Forwards: 70\r\nFrom: <sip:102@pbx.test>;tag=a\r\nTo: <sip:101@pbx.test>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
Contact: <sip:p@127.0.0.1:5060>\r\nX-Session-Id: s\r\nX-Recording-State: audio\r\nContent-Type: application/sdp\r\n\
Content-Length: 93\r\n\r\nv=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n";

#[test]
fn the_unmutated_invite_rings() {
    let (mut p, now) = phone();
    p.handle_input(now, Peer::udp("127.0.0.1:5060".parse().unwrap()), INVITE.as_bytes());
    let events: Vec<_> = std::iter::from_fn(|| p.poll_event()).collect();
    assert!(events.iter().any(|e| matches!(e, hark_phone::PhoneEvent::IncomingCall { .. })), "{events:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_datagrams_never_panic_the_engine(datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..8)) {
        let (mut p, now) = phone();
        for (i, d) in datagrams.iter().enumerate() {
            p.handle_input(now + Duration::from_millis(i as u64), Peer::udp("127.0.0.1:5060".parse().unwrap()), d);
            while p.poll_transmit().is_some() {}
            while p.poll_event().is_some() {}
        }
        p.handle_timeout(now + Duration::from_secs(40));
    }

    #[test]
    fn mutated_invites_never_panic_the_engine(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let (mut p, now) = phone();
        let mut bytes = INVITE.as_bytes().to_vec();
        if pos < bytes.len() {
            bytes[pos] = byte;
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        p.handle_input(now, Peer::udp("127.0.0.1:5060".parse().unwrap()), &bytes);
        while let Some(ev) = p.poll_event() {
            if let hark_phone::PhoneEvent::IncomingCall { call, .. } = ev {
                let _ = p.handle_command(now, hark_phone::Command::Answer { call, rtp_port: 40000 });
            }
        }
        while p.poll_transmit().is_some() {}
        p.handle_timeout(now + Duration::from_secs(1));
    }

    #[test]
    fn arbitrary_rtcp_never_panics_the_reports(datagrams in prop::collection::vec(
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            // Version 2 headers of SR (200) .. APP (204): the parser goes deeper.
            (200u8..=204, 0u8..32, prop::collection::vec(any::<u8>(), 0..120)).prop_map(|(pt, rc, rest)| {
                let mut v = vec![0x80 | rc, pt];
                v.extend(rest);
                v
            }),
        ], 1..10)) {
        let t0 = std::time::Instant::now();
        let mut rtcp = hark_phone::media::Rtcp::new("p@h".into(), t0);
        for d in &datagrams {
            rtcp.receive(d, 1, t0);
        }
        let _ = rtcp.poll_report(t0 + Duration::from_secs(10), Default::default());
    }

    #[test]
    fn arbitrary_rtp_never_panics_and_every_tick_is_one_frame(packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..40)) {
        for codec in [AudioCodec::Pcmu, AudioCodec::G722, AudioCodec::Opus] {
            let mut m = MediaSession::new(MediaParams {
                remote: None, codec, payload_type: if codec == AudioCodec::Opus { 111 } else { 0 },
                telephone_event_pt: Some(101), send: true, receive: true,
            }).unwrap();
            let mut out = Vec::new();
            for p in &packets {
                m.receive(p);
                let before = out.len();
                m.play_frame(&mut out);
                prop_assert_eq!(out.len() - before, m.frame_len());
            }
        }
    }

    #[test]
    fn the_jitter_buffer_plays_in_order_whatever_the_arrival_order(order in Just((0u16..30).collect::<Vec<_>>()).prop_shuffle(), drop in prop::collection::vec(any::<bool>(), 30)) {
        let mut j = JitterBuffer::new(3, 64);
        for s in &order {
            if !drop[*s as usize] {
                j.push(1, 1000u16.wrapping_add(*s), 0, &[*s as u8]);
            }
        }
        let mut last = None;
        for _ in 0..40 {
            if let Playout::Packet { payload, .. } = j.pop() {
                prop_assert!(last.is_none_or(|l| payload[0] > l));
                last = Some(payload[0]);
            }
        }
    }
}
