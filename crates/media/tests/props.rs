//! Property tests: no input makes the SDP parser or the relay panic, and the relay's
//! in-place RTP peek agrees with the webrtc-rs `rtp` parser.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hark_media::packet::{parse_rtp, peek_rtp};
use hark_media::sdp::{Sdp, SupportedCodec};
use hark_media::{MediaRelay, PacketKind, RelayAction, RelayConfig, Side};
use proptest::prelude::*;

/// Lines that look like SDP, in any order, with junk mixed in.
fn sdp_like() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("v=0".to_owned()),
        Just("o=- 1 1 IN IP4 10.0.0.1".to_owned()),
        Just("s=-".to_owned()),
        Just("t=0 0".to_owned()),
        Just("c=IN IP4 10.0.0.1".to_owned()),
        Just("c=IN IP4 0.0.0.0".to_owned()),
        Just("c=IN IP6 ::1".to_owned()),
        Just("a=sendonly".to_owned()),
        Just("a=rtcp:4001".to_owned()),
        Just("a=rtcp-mux".to_owned()),
        Just("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x".to_owned()),
        Just("a=rtpmap:96 opus/48000/2".to_owned()),
        Just("a=rtpmap:101 telephone-event/8000".to_owned()),
        Just("a=fmtp:101 0-15".to_owned()),
        Just("m=audio 4000 RTP/AVP 0 8 96 101".to_owned()),
        Just("m=audio 0 RTP/AVP 0".to_owned()),
        Just("m=video 4002 RTP/AVP 97".to_owned()),
        Just("a=rtpmap:97 H264/90000".to_owned()),
        Just("m=audio 4000 RTP/SAVP 0".to_owned()),
        Just("b=AS:64".to_owned()),
        "[a-z]=[ -~]{0,30}",
        "[ -~]{0,40}",
    ];
    prop::collection::vec(line, 0..24).prop_map(|lines| {
        let mut s = String::from("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n");
        for l in lines {
            s.push_str(&l);
            s.push_str("\r\n");
        }
        s
    })
}

/// Exercises everything a B2BUA would do with a parsed description.
fn use_sdp(body: &[u8]) {
    let Ok(mut sdp) = Sdp::parse(body) else {
        return;
    };
    let _ = sdp.media();
    let _ = sdp.is_hold();
    let _ = sdp.direction();
    let _ = sdp.audio_addrs();
    for i in 0..20 {
        let _ = sdp.rtp_addr(i);
        let _ = sdp.rtcp_addr(i);
    }
    if sdp.filter_codecs(SupportedCodec::ALL).is_ok() {
        let ports: Vec<u16> = (0..sdp.active_sections() as u16)
            .map(|i| 30000 + 2 * i)
            .collect();
        sdp.anchor(IpAddr::V4(Ipv4Addr::LOCALHOST), &ports).unwrap();
        let out = sdp.to_bytes();
        // What we send must parse again.
        let again = Sdp::parse(&out).unwrap();
        assert_eq!(again.to_bytes(), out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sdp_parse_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..600)) {
        use_sdp(&body);
    }

    #[test]
    fn sdp_parse_never_panics_on_sdp_like_text(body in sdp_like()) {
        use_sdp(body.as_bytes());
    }

    #[test]
    fn relay_never_panics(
        packets in prop::collection::vec(
            (any::<bool>(), any::<bool>(), 0u8..4, prop::collection::vec(any::<u8>(), 0..80), 0u64..5000),
            0..64,
        ),
        remote_a in any::<bool>(),
        remote_b in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut r = MediaRelay::new(t0, RelayConfig { silence_timeout: Duration::from_secs(1) });
        let host = |h: u8, port: u16| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, h)), port);
        if remote_a { r.set_remote(Side::A, Some(host(1, 4000)), None); }
        if remote_b { r.set_remote(Side::B, Some(host(2, 5000)), None); }
        for (side_a, rtcp, src, mut bytes, ms) in packets {
            // Make about half the packets plausible RTP/RTCP headers.
            if bytes.len() >= 12 && ms % 2 == 0 {
                bytes[0] = 0x80 | (bytes[0] & 0x3f);
            }
            let side = if side_a { Side::A } else { Side::B };
            let kind = if rtcp { PacketKind::Rtcp } else { PacketKind::Rtp };
            let now = t0 + Duration::from_millis(ms);
            let from = host(src % 3, 4000 + u16::from(src));
            match r.handle_packet(now, side, kind, from, &bytes) {
                RelayAction::Forward { out_side, .. } => prop_assert_eq!(out_side, side.other()),
                RelayAction::Drop(_) => {}
            }
            r.handle_timeout(now);
            while r.poll_event().is_some() {}
            let _ = r.poll_timeout();
        }
        let s = r.stats();
        let accepted = s.a.rtp_packets_in + s.a.rtcp_packets_in + s.b.rtp_packets_in + s.b.rtcp_packets_in;
        prop_assert!(s.a.packets_out + s.b.packets_out <= accepted);
    }

    #[test]
    fn rtp_peek_agrees_with_the_rtp_crate(bytes in prop::collection::vec(any::<u8>(), 0..64), v2 in any::<bool>()) {
        let mut bytes = bytes;
        if v2 && !bytes.is_empty() {
            bytes[0] = 0x80 | (bytes[0] & 0x3f);
        }
        if let (Some(view), Ok(p)) = (peek_rtp(&bytes), parse_rtp(&bytes)) {
            prop_assert_eq!(view.seq.0, p.header.sequence_number);
            prop_assert_eq!(view.ssrc.0, p.header.ssrc);
            prop_assert_eq!(view.timestamp, p.header.timestamp);
            prop_assert_eq!(view.payload_type, p.header.payload_type);
            prop_assert_eq!(view.payload_len, p.payload.len());
        }
    }
}
