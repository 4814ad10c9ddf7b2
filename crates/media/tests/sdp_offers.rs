//! SDP: real-world offers parse, filter and anchor; malformed ones give typed errors.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use hark_media::sdp::{Direction, MediaKind, Sdp, SdpError, SdpErrorClass, SupportedCodec};

fn crlf(s: &str) -> String {
    s.lines().map(|l| format!("{l}\r\n")).collect()
}

/// baresip 1.x/2.x with audio (opus, G722, G.711, telephone-event) and avcodec video.
const BARESIP: &str = "v=0
o=- 1735171412 2912834087 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
a=tool:baresip 1.0.0
m=audio 10000 RTP/AVP 96 9 0 8 101
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-rsize
a=sendrecv
a=label:1
a=ssrc:2856423186 cname:7f1c1f2e-5b7a-4b21-8ad2-d1b2b1d8d2c0
a=ptime:20
m=video 10002 RTP/AVP 100 101
b=AS:1024
a=rtpmap:100 H264/90000
a=fmtp:100 packetization-mode=0;profile-level-id=42e01f
a=rtpmap:101 VP8/90000
a=rtcp-fb:* nack
a=rtcp-fb:* nack pli
a=rtcp-fb:100 ccm fir
a=rtcp-fb:101 goog-remb
a=sendrecv
a=label:2
";

/// Captured from the Debian baresip 1.0.0 package's INVITE (g711, g722, opus modules).
const BARESIP_CAPTURED: &str = "v=0\r
o=- 2661962953 34500383 IN IP4 127.0.0.1\r
s=-\r
c=IN IP4 127.0.0.1\r
t=0 0\r
a=tool:baresip 1.0.0\r
m=audio 15730 RTP/AVP 0 8 9 96 101\r
a=rtpmap:0 PCMU/8000\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:9 G722/8000\r
a=rtpmap:96 opus/48000/2\r
a=fmtp:96 stereo=1;sprop-stereo=1\r
a=rtpmap:101 telephone-event/8000\r
a=fmtp:101 0-15\r
a=sendrecv\r
a=label:1\r
a=rtcp-rsize\r
a=ssrc:3225814813 cname:sip:100@127.0.0.1\r
a=minptime:20\r
a=ptime:20\r
";

/// linphonec with ICE, several speex rates, per-rate telephone-events, and a=rtcp.
const LINPHONE: &str = "v=0
o=1001 3226 1234 IN IP4 192.168.1.20
s=Talk
c=IN IP4 192.168.1.20
t=0 0
a=ice-pwd:31ec21eb38b2ec6d36e8dc7b
a=ice-ufrag:0b8a2e93
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp:7079
a=candidate:1 1 UDP 2130706431 192.168.1.20 7078 typ host
a=candidate:1 2 UDP 2130706430 192.168.1.20 7079 typ host
a=candidate:2 1 UDP 1694498815 203.0.113.7 40000 typ srflx raddr 192.168.1.20 rport 7078
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
";

/// sipp's uac_pcap scenario SDP (PCMA + events), LF-only line ends.
const SIPP_PCAP: &str = "v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-11,16
";

/// A phone putting the peer on hold, RFC 3264 style.
const HOLD_SENDONLY: &str = "v=0
o=- 10 11 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 4000 RTP/AVP 0 101
a=rtpmap:101 telephone-event/8000
a=sendonly
";

/// Old RFC 2543-style hold: c=0.0.0.0, session-level inactive.
const HOLD_ZERO: &str = "v=0
o=- 10 12 IN IP4 10.0.0.5
s=-
c=IN IP4 0.0.0.0
t=0 0
a=inactive
m=audio 4000 RTP/AVP 0
";

/// SDES-SRTP only.
const SRTP_ONLY: &str = "v=0
o=- 1 1 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 4000 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
";

/// A WebRTC-ish offer: DTLS-SRTP, BUNDLE, rtcp-mux.
const WEBRTC: &str = "v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=msid-semantic: WMS
m=audio 9 UDP/TLS/RTP/SAVPF 111 0
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=ice-ufrag:abcd
a=ice-pwd:abcdefghijklmnopqrstuvwx
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF
a=setup:actpass
a=mid:0
a=sendrecv
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtpmap:0 PCMU/8000
";

fn relay_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))
}

#[test]
fn baresip_offer_parses() {
    let sdp = Sdp::parse(crlf(BARESIP).as_bytes()).unwrap();
    let media = sdp.media();
    assert_eq!(media.len(), 2);
    let audio = &media[0];
    assert_eq!(audio.kind, MediaKind::Audio);
    assert_eq!(audio.port, 10000);
    assert_eq!(audio.connection, Some(relay_ip()));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert_eq!(audio.rtcp_port, Some(10001));
    assert_eq!(audio.ptime, Some(20));
    let pts: Vec<u8> = audio.formats.iter().map(|f| f.pt).collect();
    assert_eq!(pts, [96, 9, 0, 8, 101]);
    let opus = audio.format(96).unwrap();
    assert_eq!(
        (opus.name.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48000, 2)
    );
    assert_eq!(opus.fmtp.as_deref(), Some("stereo=1;sprop-stereo=1"));
    assert_eq!(opus.codec(), Some(SupportedCodec::Opus));
    assert_eq!(audio.format(9).unwrap().codec(), Some(SupportedCodec::G722));
    assert_eq!(audio.telephone_event_pt(8000), Some(101));
    assert_eq!(media[1].kind, MediaKind::Video);
    assert_eq!(
        sdp.audio_addrs(),
        Some((
            SocketAddr::new(relay_ip(), 10000),
            SocketAddr::new(relay_ip(), 10001)
        ))
    );
    assert_eq!(sdp.rtp_addr(1), Some(SocketAddr::new(relay_ip(), 10002)));
    assert!(!sdp.is_hold());
    assert_eq!(sdp.direction(), Direction::SendRecv);
}

#[test]
fn captured_baresip_offer_round_trips_unchanged_by_filtering() {
    let mut sdp = Sdp::parse(BARESIP_CAPTURED.as_bytes()).unwrap();
    let before = sdp.to_bytes();
    assert_eq!(
        before,
        BARESIP_CAPTURED.as_bytes(),
        "parse + print is lossless"
    );
    sdp.filter_codecs(SupportedCodec::ALL).unwrap();
    assert_eq!(sdp.to_bytes(), before, "everything baresip offers is kept");
    sdp.anchor(relay_ip(), &[40000]).unwrap();
    let text = sdp.to_string();
    assert!(
        text.contains("o=- 2661962953 34500384 IN IP4 127.0.0.1\r\n"),
        "{text}"
    );
    assert!(
        text.contains("m=audio 40000 RTP/AVP 0 8 9 96 101\r\n"),
        "{text}"
    );
    assert!(
        text.contains("a=ssrc:3225814813 cname:sip:100@127.0.0.1\r\n"),
        "{text}"
    );
}

#[test]
fn baresip_filter_keeps_h264_and_audio() {
    let mut sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
    sdp.filter_codecs(SupportedCodec::ALL).unwrap();
    let media = sdp.media();
    let pts: Vec<u8> = media[0].formats.iter().map(|f| f.pt).collect();
    assert_eq!(pts, [96, 9, 0, 8, 101]);
    let video: Vec<u8> = media[1].formats.iter().map(|f| f.pt).collect();
    assert_eq!(video, [100]);
    let text = sdp.to_string();
    assert!(!text.contains("VP8"), "{text}");
    assert!(!text.contains("goog-remb"), "{text}");
    assert!(text.contains("a=rtcp-fb:100 ccm fir"), "{text}");
    assert!(text.contains("a=rtcp-fb:* nack pli"), "{text}");
}

#[test]
fn linphone_offer_filter_and_anchor_round_trip() {
    let mut sdp = Sdp::parse(crlf(LINPHONE).as_bytes()).unwrap();
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.rtcp_port, Some(7079));
    assert_eq!(audio.format(18).unwrap().name, "G729");
    assert_eq!(audio.telephone_event_pt(48000), Some(101));
    sdp.filter_codecs(SupportedCodec::ALL).unwrap();
    let pts: Vec<u8> = sdp.audio().unwrap().formats.iter().map(|f| f.pt).collect();
    assert_eq!(pts, [96, 0, 8, 101, 99, 100], "speex and G729 go");

    let version = sdp.session_version();
    sdp.anchor(relay_ip(), &[30000]).unwrap();
    assert_eq!(sdp.session_version(), version + 1);
    let bytes = sdp.to_bytes();
    let text = String::from_utf8(bytes.clone()).unwrap();
    for gone in [
        "candidate",
        "ice-pwd",
        "ice-ufrag",
        "192.168.1.20",
        "speex",
        "annexb",
    ] {
        assert!(!text.contains(gone), "{gone} left in:\n{text}");
    }
    assert!(
        text.contains("o=1001 3226 1235 IN IP4 127.0.0.1\r\n"),
        "{text}"
    );
    assert!(text.contains("c=IN IP4 127.0.0.1\r\n"));
    assert!(
        text.contains("m=audio 30000 RTP/AVP 96 0 8 101 99 100\r\n"),
        "{text}"
    );
    assert!(text.contains("a=rtcp:30001\r\n"));
    assert!(
        text.contains("a=record:off\r\n"),
        "unrelated attributes stay"
    );

    // And what we send parses back to the same thing.
    let again = Sdp::parse(&bytes).unwrap();
    assert_eq!(again.to_bytes(), bytes);
    assert_eq!(
        again.audio_addrs(),
        Some((
            SocketAddr::new(relay_ip(), 30000),
            SocketAddr::new(relay_ip(), 30001)
        ))
    );
}

#[test]
fn sipp_pcap_offer() {
    let mut sdp = Sdp::parse(SIPP_PCAP.as_bytes()).unwrap();
    sdp.filter_codecs(SupportedCodec::ALL).unwrap();
    let audio = sdp.audio().unwrap();
    assert_eq!(audio.formats.len(), 2);
    assert_eq!(audio.format(8).unwrap().codec(), Some(SupportedCodec::Pcma));
    sdp.anchor(relay_ip(), &[20000]).unwrap();
    assert!(sdp.to_string().contains("m=audio 20000 RTP/AVP 8 101\r\n"));
}

#[test]
fn hold_detection() {
    let s = Sdp::parse(HOLD_SENDONLY.as_bytes()).unwrap();
    assert!(s.is_hold());
    assert_eq!(s.direction(), Direction::SendOnly);
    assert!(s.audio_addrs().is_some(), "sendonly still has an address");

    let z = Sdp::parse(HOLD_ZERO.as_bytes()).unwrap();
    assert!(z.is_hold());
    assert_eq!(
        z.direction(),
        Direction::Inactive,
        "session-level attribute applies"
    );
    assert_eq!(z.rtp_addr(0), None, "0.0.0.0 means no address");
    assert_eq!(z.rtcp_addr(0), None);

    let recv = Sdp::parse(HOLD_SENDONLY.replace("sendonly", "recvonly").as_bytes()).unwrap();
    assert!(!recv.is_hold(), "recvonly answers a hold, it does not hold");
}

#[test]
fn anchoring_a_zero_hold_keeps_it_a_hold() {
    let mut z = Sdp::parse(HOLD_ZERO.as_bytes()).unwrap();
    z.filter_codecs(SupportedCodec::ALL).unwrap();
    z.anchor(relay_ip(), &[30010]).unwrap();
    let text = z.to_string();
    assert!(text.contains("c=IN IP4 127.0.0.1\r\n"));
    assert!(
        text.contains("m=audio 30010 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n"),
        "{text}"
    );
    let again = Sdp::parse(text.as_bytes()).unwrap();
    assert!(again.is_hold());
    assert_eq!(again.rtp_addr(0), None);
}

#[test]
fn no_common_codec_is_488() {
    let g729_only = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let mut sdp = Sdp::parse(g729_only.as_bytes()).unwrap();
    let before = sdp.to_bytes();
    let err = sdp.filter_codecs(SupportedCodec::ALL).unwrap_err();
    assert_eq!(err, SdpError::NoCommonCodec);
    assert_eq!(err.status_code(), 488);
    assert_eq!(err.class(), SdpErrorClass::NotAcceptable);
    assert_eq!(sdp.to_bytes(), before, "unchanged on error");

    // Only PCMU allowed, offer has PCMA: also no common codec.
    let mut pcma = Sdp::parse(SIPP_PCAP.as_bytes()).unwrap();
    assert_eq!(
        pcma.filter_codecs(&[SupportedCodec::Pcmu, SupportedCodec::TelephoneEvent]),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn no_audio_is_488() {
    let video_only = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    let mut sdp = Sdp::parse(video_only.as_bytes()).unwrap();
    assert_eq!(
        sdp.filter_codecs(SupportedCodec::ALL),
        Err(SdpError::NoAudio)
    );
    let none = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n";
    let mut sdp = Sdp::parse(none.as_bytes()).unwrap();
    assert_eq!(
        sdp.filter_codecs(SupportedCodec::ALL),
        Err(SdpError::NoAudio)
    );
}

#[test]
fn srtp_and_webrtc_are_refused_with_a_reason() {
    let mut srtp = Sdp::parse(SRTP_ONLY.as_bytes()).unwrap();
    let err = srtp.filter_codecs(SupportedCodec::ALL).unwrap_err();
    assert!(matches!(err, SdpError::UnsupportedTransport(_)));
    assert_eq!(err.status_code(), 488);
    assert!(err.reason_phrase().contains("SRTP"));

    let mut webrtc = Sdp::parse(WEBRTC.as_bytes()).unwrap();
    assert!(matches!(
        webrtc.filter_codecs(SupportedCodec::ALL),
        Err(SdpError::UnsupportedTransport(_))
    ));
}

#[test]
fn srtp_offered_beside_plain_rtp_keeps_the_plain_one() {
    let both = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\nm=audio 4002 RTP/AVP 0\r\nm=image 4004 udptl t38\r\n";
    let mut sdp = Sdp::parse(both.as_bytes()).unwrap();
    sdp.filter_codecs(SupportedCodec::ALL).unwrap();
    let media = sdp.media();
    assert_eq!(media[0].port, 0, "SRTP section rejected");
    assert_eq!(media[1].port, 4002);
    assert_eq!(media[2].port, 0, "T.38 rejected");
    assert_eq!(sdp.active_sections(), 1);
    assert_eq!(sdp.audio().unwrap().index, 1);
    // Only one port needed; rejected lines keep port 0 and their formats.
    sdp.anchor(relay_ip(), &[31000]).unwrap();
    let text = sdp.to_string();
    assert!(text.contains("m=audio 0 RTP/SAVP 0\r\n"), "{text}");
    assert!(text.contains("m=audio 31000 RTP/AVP 0\r\n"), "{text}");
    assert!(text.contains("m=image 0 udptl t38\r\n"), "{text}");
    assert!(!text.contains("crypto"), "{text}");
}

#[test]
fn rejected_video_gets_port_zero() {
    let vp8 = BARESIP.replace("a=rtpmap:100 H264/90000", "a=rtpmap:100 VP9/90000");
    let mut sdp = Sdp::parse(vp8.as_bytes()).unwrap();
    sdp.filter_codecs(SupportedCodec::ALL).unwrap();
    assert_eq!(sdp.media()[1].port, 0);
    assert_eq!(sdp.rtp_addr(1), None);
    assert_eq!(sdp.active_sections(), 1);
}

#[test]
fn anchor_needs_enough_ports() {
    let mut sdp = Sdp::parse(BARESIP.as_bytes()).unwrap();
    let err = sdp.anchor(relay_ip(), &[30000]).unwrap_err();
    assert_eq!(
        err,
        SdpError::NotEnoughPorts {
            needed: 2,
            given: 1
        }
    );
    assert_eq!(err.status_code(), 500);
    sdp.anchor(relay_ip(), &[30000, 30002]).unwrap();
    assert_eq!(sdp.rtp_addr(1), Some(SocketAddr::new(relay_ip(), 30002)));
}

#[test]
fn anchor_ipv6() {
    let mut sdp = Sdp::parse(SIPP_PCAP.as_bytes()).unwrap();
    let ip: IpAddr = "::1".parse().unwrap();
    sdp.anchor(ip, &[30000]).unwrap();
    let text = sdp.to_string();
    assert!(text.contains("c=IN IP6 ::1\r\n"), "{text}");
    assert_eq!(sdp.audio_addrs().unwrap().0, SocketAddr::new(ip, 30000));
}

#[test]
fn webrtc_anchor_strips_ice_dtls_bundle_mux() {
    let mut sdp = Sdp::parse(WEBRTC.as_bytes()).unwrap();
    sdp.anchor(relay_ip(), &[30000]).unwrap();
    let text = sdp.to_string();
    for gone in ["ice-", "fingerprint", "setup", "BUNDLE", "rtcp-mux"] {
        assert!(!text.contains(gone), "{gone} left in:\n{text}");
    }
    assert!(text.contains("a=rtcp:30001\r\n"), "{text}");
}

#[test]
fn misordered_lines_are_tolerated() {
    let messy = "v=0\no=- 1 1 IN IP4 10.0.0.1\nt=0 0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=ptime:20\nc=IN IP4 10.0.0.2\n\n";
    let sdp = Sdp::parse(messy.as_bytes()).unwrap();
    assert_eq!(
        sdp.audio_addrs().unwrap().0,
        "10.0.0.2:4000".parse::<SocketAddr>().unwrap(),
        "media-level c= wins"
    );
}

#[test]
fn malformed_sdps_give_400_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("", "no v= line"),
        ("hello world", "not type=value"),
        ("v=0\r\n", "no o= line"),
        ("o=- 1 1 IN IP4 1.2.3.4\r\n", "no v= line"),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio abc RTP/AVP 0\r\n",
            "",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
            "no c= line",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 200\r\n",
            "bad payload type",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n",
            "rtpmap",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:0\r\n",
            "a=rtcp",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio\r\n",
            "",
        ),
        ("v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n", ""),
        ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n", ""),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nq=what\r\n",
            "unknown line type",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP6 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
            "does not match",
        ),
    ];
    for (body, needle) in cases {
        let err = Sdp::parse(body.as_bytes()).unwrap_err();
        assert_eq!(err.class(), SdpErrorClass::Malformed, "{body:?} -> {err:?}");
        assert_eq!(err.status_code(), 400);
        let reason = err.reason_phrase();
        assert!(reason.starts_with("Malformed SDP: "), "{reason}");
        assert!(reason.contains(needle), "{body:?}: {reason}");
        assert!(!reason.contains('\r') && !reason.contains('\n'));
    }
    let not_utf8 = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=\xff\xfe\r\n";
    assert_eq!(
        Sdp::parse(not_utf8).unwrap_err(),
        SdpError::Malformed("body is not UTF-8".into())
    );
    let huge = vec![b'a'; 70_000];
    assert_eq!(Sdp::parse(&huge).unwrap_err().status_code(), 400);
}

#[test]
fn fqdn_connection_is_unsupported_not_malformed() {
    let fqdn = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 media.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
    let err = Sdp::parse(fqdn.as_bytes()).unwrap_err();
    assert!(matches!(err, SdpError::Unsupported(_)));
    assert_eq!(err.status_code(), 488);
}

#[test]
fn rtcp_attribute_with_address() {
    let s = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:5555 IN IP4 5.6.7.8\r\n";
    let sdp = Sdp::parse(s.as_bytes()).unwrap();
    assert_eq!(sdp.rtcp_addr(0), Some("5.6.7.8:5555".parse().unwrap()));
    assert_eq!(sdp.rtp_addr(0), Some("1.2.3.4:4000".parse().unwrap()));
}
