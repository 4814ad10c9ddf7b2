use super::*;
use rsip::SipMessage;

const REGISTER: &str = "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\nFrom: <sip:101@pbx.test>;tag=a\r\nTo: <sip:101@pbx.test>\r\nCall-ID: reg-1\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:101@127.0.0.1:5070>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n";

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn parses_a_register() {
    let msg = parse_datagram(REGISTER.as_bytes(), &limits()).unwrap();
    assert!(matches!(msg, SipMessage::Request(ref r) if r.method == rsip::Method::Register));
}

#[test]
fn compact_forms_folding_and_lists_are_normalised() {
    let text = "INVITE sip:b@x SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1, SIP/2.0/UDP 5.6.7.8;branch=z9hG4bK2\r\nf: <sip:a@x>;tag=1\r\nt: <sip:b@x>\r\ni: abc\r\nSubject: a\r\n  folded\r\nCSeq: 1 INVITE\r\nm: <sip:a@1.2.3.4>\r\nl: 0\r\n\r\n";
    let msg = parse_datagram(text.as_bytes(), &limits()).unwrap();
    let vias = msg.headers().iter().filter(|h| matches!(h, rsip::Header::Via(_))).count();
    assert_eq!(vias, 2);
    let subject = msg.headers().iter().find_map(|h| match h {
        rsip::Header::Subject(s) => Some(s.value().to_owned()),
        _ => None,
    });
    assert_eq!(subject.as_deref(), Some("a folded"));
}

use rsip::message::HasHeaders;

#[test]
fn shorter_content_length_truncates_the_datagram_body() {
    let text = REGISTER.replace("Content-Length: 0\r\n\r\n", "Content-Length: 3\r\n\r\nabcdef");
    let msg = parse_datagram(text.as_bytes(), &limits()).unwrap();
    assert_eq!(msg.body(), b"abc");
}

#[test]
fn longer_content_length_is_an_error() {
    let text = REGISTER.replace("Content-Length: 0\r\n\r\n", "Content-Length: 30\r\n\r\nabc");
    assert_eq!(
        parse_datagram(text.as_bytes(), &limits()),
        Err(ParseError::ContentLengthTooLong { declared: 30, available: 3 })
    );
}

#[test]
fn missing_content_length_on_udp_takes_the_rest() {
    let text = REGISTER.replace("Content-Length: 0\r\n\r\n", "\r\nxyz");
    assert_eq!(parse_datagram(text.as_bytes(), &limits()).unwrap().body(), b"xyz");
}

#[test]
fn limits_are_enforced() {
    let big = "x".repeat(70_000);
    assert!(matches!(parse_datagram(big.as_bytes(), &limits()), Err(ParseError::TooLarge { .. })));
    let long = REGISTER.replace("Expires: 3600", &format!("X-Long: {}", "a".repeat(9_000)));
    assert!(matches!(parse_datagram(long.as_bytes(), &limits()), Err(ParseError::LineTooLong { .. })));
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let text = REGISTER.replace("Expires: 3600\r\n", &many);
    assert!(matches!(parse_datagram(text.as_bytes(), &limits()), Err(ParseError::TooManyHeaders { .. })));
}

#[test]
fn hostile_and_broken_input_gets_typed_errors() {
    type Case = (Vec<u8>, fn(&ParseError) -> bool);
    let cases: Vec<Case> = vec![
        (b"".to_vec(), |e| *e == ParseError::Empty),
        (b"\r\n\r\n".to_vec(), |e| *e == ParseError::Empty),
        (REGISTER.replace("Call-ID: reg-1\r\n", "").into_bytes(), |e| *e == ParseError::MissingHeader("Call-ID")),
        (REGISTER.replace("Via: ", "Vxa: ").into_bytes(), |e| *e == ParseError::MissingHeader("Via")),
        (REGISTER.replace("CSeq: 1 REGISTER", "CSeq: 1 INVITE").into_bytes(), |e| *e == ParseError::CSeqMethodMismatch),
        (REGISTER.replace("CSeq: 1 REGISTER", "CSeq: x").into_bytes(), |e| *e == ParseError::BadHeader("CSeq")),
        (REGISTER.replace("Content-Length: 0", "Content-Length: -1").into_bytes(), |e| *e == ParseError::BadContentLength),
        (REGISTER.replace("Expires: 3600", "Expires: 1\rX-Injected: yes").into_bytes(), |e| *e == ParseError::BadHeaderLine),
        (REGISTER.replace("Expires: 3600", "Expires: 1\nX-Injected: yes").into_bytes(), |e| *e == ParseError::BadHeaderLine),
        (REGISTER.as_bytes()[..60].to_vec(), |e| *e == ParseError::NoHeaderEnd),
        ({
            let mut v = REGISTER.as_bytes().to_vec();
            v[100] = 0xff;
            v
        }, |e| *e == ParseError::NotUtf8),
        (b"HELLO\r\n\r\n".to_vec(), |e| *e == ParseError::BadStartLine),
    ];
    for (input, expected) in cases {
        let err = parse_datagram(&input, &limits()).expect_err(&String::from_utf8_lossy(&input));
        assert!(expected(&err), "{err:?} for {:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn status_codes_are_three_digits_and_blank_folds_vanish() {
    let resp = "SIP/2.0 038 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
    assert_eq!(parse_datagram(resp.as_bytes(), &limits()), Err(ParseError::BadStartLine));
    assert_eq!(parse_datagram(resp.replace("038", "700").as_bytes(), &limits()), Err(ParseError::BadStartLine));
    assert!(parse_datagram(resp.replace("038", "180").as_bytes(), &limits()).is_ok());
    let folded = REGISTER.replace("Expires: 3600", "Subject: a\r\n \t");
    let msg = parse_datagram(folded.as_bytes(), &limits()).unwrap();
    assert!(crate::serialize::encode(&msg).windows(12).any(|w| w == b"Subject: a\r\n"));
}

#[test]
fn a_ping_split_across_segments_is_still_a_ping() {
    let mut f = StreamFramer::new(limits());
    for b in b"\r\n\r" {
        f.push(&[*b]);
        assert_eq!(f.next_item(), None);
    }
    f.push(b"\n");
    assert_eq!(f.next_item(), Some(StreamItem::Ping));
    assert_eq!(f.buffered(), 0);
}

#[test]
fn bad_request_reply_echoes_the_dialog_headers() {
    let broken = REGISTER.replace("Content-Length: 0", "Content-Length: abc");
    let reply = String::from_utf8(bad_request_reply(broken.as_bytes(), "Bad Content-Length").unwrap()).unwrap();
    assert!(reply.starts_with("SIP/2.0 400 Bad Content-Length\r\n"));
    assert!(reply.contains("Call-ID: reg-1\r\n") && reply.contains("CSeq: 1 REGISTER\r\n"));
    // Responses and ACKs are never answered.
    assert!(bad_request_reply(b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", "x").is_none());
    assert!(bad_request_reply(REGISTER.replace("REGISTER sip", "ACK sip").as_bytes(), "x").is_none());
}

#[test]
fn stream_framer_frames_resyncs_and_answers_pings() {
    let mut f = StreamFramer::new(limits());
    f.push(b"\r\n\r\n");
    assert_eq!(f.next_item(), Some(StreamItem::Ping));
    // A message split across reads, garbage, then another message.
    let (a, b) = REGISTER.as_bytes().split_at(50);
    f.push(a);
    assert_eq!(f.next_item(), None);
    f.push(b);
    assert!(matches!(f.next_item(), Some(StreamItem::Message(_))));
    f.push(b"garbage line\r\n\r\n");
    f.push(REGISTER.as_bytes());
    assert!(matches!(f.next_item(), Some(StreamItem::Error { .. })));
    assert!(matches!(f.next_item(), Some(StreamItem::Message(_))));
    assert_eq!(f.next_item(), None);
    assert_eq!(f.buffered(), 0);
}

#[test]
fn stream_framer_closes_on_unframeable_input() {
    // No Content-Length: the stream cannot be framed; nothing after it is read.
    let mut f = StreamFramer::new(limits());
    f.push(REGISTER.replace("Content-Length: 0\r\n", "").as_bytes());
    f.push(REGISTER.as_bytes());
    assert!(matches!(f.next_item(), Some(StreamItem::Fatal { error: ParseError::MissingContentLength, .. })));
    assert_eq!(f.next_item(), None, "poisoned");
    // A non-numeric Content-Length could hide a request in its "body".
    let mut f = StreamFramer::new(limits());
    f.push(REGISTER.replace("Content-Length: 0", "Content-Length: abc").as_bytes());
    assert!(matches!(f.next_item(), Some(StreamItem::Fatal { error: ParseError::BadContentLength, .. })));
    // Too large, declared or streamed without an end.
    let mut f = StreamFramer::new(limits());
    f.push(REGISTER.replace("Content-Length: 0", "Content-Length: 100000").as_bytes());
    assert!(matches!(f.next_item(), Some(StreamItem::Fatal { error: ParseError::TooLarge { .. }, .. })));
    let mut f = StreamFramer::new(limits());
    f.push(&vec![b'a'; 70_000]);
    assert!(matches!(f.next_item(), Some(StreamItem::Fatal { error: ParseError::TooLarge { .. }, .. })));
    f.push(REGISTER.as_bytes());
    assert_eq!((f.next_item(), f.buffered()), (None, 0), "takes no more input");
}

#[test]
fn stream_framer_skips_a_bad_message_whose_length_is_known() {
    let mut f = StreamFramer::new(limits());
    let bad = REGISTER.replace("Expires: 3600", "no colon here").replace("Content-Length: 0\r\n\r\n", "Content-Length: 12\r\n\r\nINVITE sip:x");
    f.push(bad.as_bytes());
    f.push(REGISTER.as_bytes());
    assert!(matches!(f.next_item(), Some(StreamItem::Error { error: ParseError::BadHeaderLine, .. })));
    assert!(matches!(f.next_item(), Some(StreamItem::Message(_))), "the body was skipped, not parsed");
}

#[test]
fn error_replies_need_only_a_via() {
    let no_call_id = REGISTER.replace("Call-ID: reg-1\r\n", "");
    let reply = String::from_utf8(error_reply(no_call_id.as_bytes(), 400, "Missing Call-ID").unwrap()).unwrap();
    assert!(reply.starts_with("SIP/2.0 400 Missing Call-ID\r\nVia: "), "{reply}");
    assert!(!reply.contains("\r\nCall-ID:"), "{reply}");
    let no_via = REGISTER.replace("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n", "");
    assert!(error_reply(no_via.as_bytes(), 400, "x").is_none(), "nowhere to send it");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
        let _ = parse_datagram(&bytes, &limits());
        let _ = bad_request_reply(&bytes, "x");
        let mut f = StreamFramer::new(limits());
        f.push(&bytes);
        while f.next_item().is_some() {}
    }

    #[test]
    fn mutated_registers_never_panic(pos in 0usize..400, byte in proptest::num::u8::ANY) {
        let mut v = REGISTER.as_bytes().to_vec();
        let p = pos % v.len();
        v[p] = byte;
        let _ = parse_datagram(&v, &limits());
    }

    #[test]
    fn parse_serialize_parse_is_stable(
        user in "[a-z0-9]{1,12}",
        tag in "[a-zA-Z0-9]{1,16}",
        call_id in "[a-zA-Z0-9@.-]{1,32}",
        seq in 1u32..1_000_000,
        port in 1u16..65535,
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
    ) {
        let text = format!(
            "MESSAGE sip:{user}@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{tag};rport\r\nFrom: \"A, B\" <sip:{user}@pbx.test>;tag={tag}\r\nTo: <sip:{user}@pbx.test>\r\nCall-ID: {call_id}\r\nCSeq: {seq} MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(&body);
        let first = parse_datagram(&bytes, &limits()).unwrap();
        let wire = crate::serialize::encode(&first);
        let second = parse_datagram(&wire, &limits()).unwrap();
        proptest::prop_assert_eq!(&first, &second);
        proptest::prop_assert_eq!(crate::serialize::encode(&second), wire);
    }
}
