//! The sans-IO engine in simulated time: a hand-played server on the other side of
//! `handle_input`/`poll_transmit`, time passed in, no sockets and no sleeps.

use hark_phone::{
    Account, CallHandle, Command, ControlMode, EndReason, Phone, PhoneConfig, PhoneEvent, RegistrationFailure, Operation,
};
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{self, Header, Request, SipMessage};
use hark_sip::transport::{Peer, Transport};
use hark_sip::{SipHeaders, Tag, parse_datagram, response_to, status};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SERVER: &str = "127.0.0.1:5060";
const LOCAL: &str = "127.0.0.1:5070";

fn server() -> SocketAddr {
    SERVER.parse().unwrap()
}

fn config(control: ControlMode, register: bool) -> PhoneConfig {
    let mut c = PhoneConfig::new(Account {
        server: server(),
        user: "101".into(),
        password: "secret".into(),
        domain: "pbx.test".into(),
        transport: Transport::Udp,
    });
    c.register = register;
    c.control = control;
    c
}

struct Harness {
    phone: Phone,
    now: Instant,
}

impl Harness {
    fn new(control: ControlMode, register: bool) -> Self {
        let now = Instant::now();
        let phone = Phone::new(now, config(control, register), LOCAL.parse().unwrap(), "127.0.0.1".parse().unwrap());
        Self { phone, now }
    }

    /// Everything the phone sent, parsed.
    fn sent(&mut self) -> Vec<SipMessage> {
        let mut out = Vec::new();
        while let Some(t) = self.phone.poll_transmit() {
            assert_eq!(t.peer.addr, server());
            out.push(parse_datagram(&t.bytes, &Default::default()).expect("the phone sends parsable SIP"));
        }
        out
    }

    fn requests(&mut self, method: rsip::Method) -> Vec<Request> {
        self.sent()
            .into_iter()
            .filter_map(|m| match m {
                SipMessage::Request(r) if r.method == method => Some(r),
                _ => None,
            })
            .collect()
    }

    fn one(&mut self, method: rsip::Method) -> Request {
        let mut r = self.requests(method);
        assert_eq!(r.len(), 1, "expected one {method}");
        r.remove(0)
    }

    fn events(&mut self) -> Vec<PhoneEvent> {
        std::iter::from_fn(|| self.phone.poll_event()).collect()
    }

    fn deliver(&mut self, msg: impl Into<SipMessage>) {
        let bytes = hark_sip::encode(&msg.into());
        self.phone.handle_input(self.now, Peer::udp(server()), &bytes);
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(t) = self.phone.next_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.phone.handle_timeout(self.now);
        }
        self.now = until;
        self.phone.handle_timeout(self.now);
    }
}

fn reply(req: &Request, code: u16, headers: &[(&str, &str)]) -> rsip::Response {
    let mut r = response_to(req, status(code, hark_sip::serialize::reason_phrase(code)), Some(&Tag::new("srv")));
    for (name, value) in headers {
        let h = match *name {
            "WWW-Authenticate" => Header::WwwAuthenticate(rsip::headers::WwwAuthenticate::new(*value)),
            "Proxy-Authenticate" => Header::ProxyAuthenticate(rsip::headers::ProxyAuthenticate::new(*value)),
            "Contact" => Header::Contact(rsip::headers::Contact::new(*value)),
            "Content-Type" => Header::ContentType(rsip::headers::ContentType::new(*value)),
            other => Header::Other(other.into(), (*value).into()),
        };
        r.headers.push(h);
    }
    r
}

const CHALLENGE: &str = r#"Digest realm="pbx.test", nonce="abc123", algorithm=MD5, qop="auth""#;

fn has_header(req: &Request, pick: fn(&Header) -> bool) -> bool {
    req.headers.iter().any(pick)
}

#[test]
fn registers_with_digest_and_refreshes_before_expiry() {
    let mut h = Harness::new(ControlMode::InDialog, true);
    let first = h.one(rsip::Method::Register);
    assert!(!has_header(&first, |h| matches!(h, Header::Authorization(_))));
    h.deliver(reply(&first, 401, &[("WWW-Authenticate", CHALLENGE)]));
    let second = h.one(rsip::Method::Register);
    assert!(has_header(&second, |h| matches!(h, Header::Authorization(_))));
    assert_eq!(second.cseq().unwrap().0, first.cseq().unwrap().0 + 1);
    assert_eq!(second.call_id().unwrap(), first.call_id().unwrap());
    h.deliver(reply(&second, 200, &[("Contact", "<sip:101@127.0.0.1:5070>;expires=60")]));
    assert_eq!(h.events(), vec![PhoneEvent::Registered { expires: 60 }]);
    h.advance(Duration::from_secs(29));
    assert!(h.requests(rsip::Method::Register).is_empty(), "no refresh before half the expiry");
    h.advance(Duration::from_millis(1200));
    // The refresh at 30 s, and its UDP retransmission 500 ms later.
    let refresh = h.requests(rsip::Method::Register).remove(0);
    assert_eq!(refresh.call_id().unwrap(), first.call_id().unwrap());
}

#[test]
fn a_wrong_password_fails_once_without_retrying() {
    let mut h = Harness::new(ControlMode::InDialog, true);
    let first = h.one(rsip::Method::Register);
    h.deliver(reply(&first, 401, &[("WWW-Authenticate", CHALLENGE)]));
    let second = h.one(rsip::Method::Register);
    h.deliver(reply(&second, 401, &[("WWW-Authenticate", CHALLENGE)]));
    let events = h.events();
    assert!(
        matches!(
            events.as_slice(),
            [PhoneEvent::RegistrationFailed { failure: RegistrationFailure::BadCredentials { code: 401, .. }, retry_in_ms: None }]
        ),
        "{events:?}"
    );
    h.advance(Duration::from_secs(600));
    assert!(h.requests(rsip::Method::Register).is_empty(), "wrong credentials are not retried");
}

#[test]
fn an_unanswered_registration_backs_off_doubling() {
    let mut h = Harness::new(ControlMode::InDialog, true);
    h.sent();
    let mut retries = Vec::new();
    for _ in 0..3 {
        // Timer F (32 s) runs out, then the back-off passes before the next round.
        h.advance(Duration::from_secs(45));
        for ev in h.events() {
            if let PhoneEvent::RegistrationFailed { failure: RegistrationFailure::Timeout, retry_in_ms } = ev {
                retries.push(retry_in_ms);
            }
        }
        h.sent();
    }
    assert_eq!(retries, vec![Some(2000), Some(4000), Some(8000)]);
}

/// Dials 102, answers the INVITE's 407, then 200 with the PBX's headers. Returns the
/// call and the INVITE that got the 200.
fn established_call(h: &mut Harness) -> (CallHandle, Request) {
    established_call_to(h, "102")
}

fn established_call_to(h: &mut Harness, ext: &str) -> (CallHandle, Request) {
    let call = h.phone.handle_command(h.now, Command::Dial { target: ext.into(), rtp_port: 40000 }).unwrap().unwrap();
    let invite = h.one(rsip::Method::Invite);
    assert_eq!(invite.uri.to_string(), format!("sip:{ext}@pbx.test"));
    h.deliver(reply(&invite, 407, &[("Proxy-Authenticate", CHALLENGE)]));
    // (The transaction ACKs the 407 by itself; `one` skips that ACK.)
    let invite2 = h.one(rsip::Method::Invite);
    assert!(has_header(&invite2, |h| matches!(h, Header::ProxyAuthorization(_))));
    assert_eq!(invite2.cseq().unwrap().0, 2);
    let sdp = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
    let mut ok = reply(
        &invite2,
        200,
        &[
            ("Contact", "<sip:pbx@127.0.0.1:5060>"),
            ("X-Session-Id", "S-42"),
            ("X-Recording-State", "audio"),
            ("Content-Type", "application/sdp"),
        ],
    );
    ok.body = sdp.as_bytes().to_vec();
    h.deliver(ok.clone());
    let ack = h.one(rsip::Method::Ack);
    assert_eq!(ack.cseq().unwrap().0, 2);
    // A retransmitted 2xx gets the same ACK again.
    h.deliver(ok);
    h.one(rsip::Method::Ack);
    (call, invite2)
}

#[test]
fn an_outgoing_call_answers_407_acks_the_200_and_reads_the_session() {
    let mut h = Harness::new(ControlMode::InDialog, false);
    let (call, _) = established_call(&mut h);
    let events = h.events();
    assert!(events.contains(&PhoneEvent::Answered { call }));
    assert!(events.contains(&PhoneEvent::SessionId { call, session_id: "S-42".into() }));
    assert!(events.iter().any(|e| matches!(e, PhoneEvent::Media { params, .. } if params.remote == Some("127.0.0.1:20000".parse().unwrap()) && params.telephone_event_pt == Some(101))));
    h.phone.handle_command(h.now, Command::Hangup { call }).unwrap();
    let bye = h.one(rsip::Method::Bye);
    h.deliver(reply(&bye, 200, &[]));
    assert_eq!(h.events(), vec![PhoneEvent::Ended { call, reason: EndReason::LocalHangup }]);
    // Once its transactions are over, the ended call is forgotten.
    assert_eq!(h.phone.call_count(), 1);
    h.advance(Duration::from_secs(40));
    assert_eq!(h.phone.call_count(), 0);
}

#[test]
fn early_media_in_a_183_starts_the_media_before_the_answer() {
    let mut h = Harness::new(ControlMode::InDialog, false);
    let call = h.phone.handle_command(h.now, Command::Dial { target: "102".into(), rtp_port: 40000 }).unwrap().unwrap();
    let invite = h.one(rsip::Method::Invite);
    let sdp = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20010 RTP/AVP 8\r\n";
    let mut progress = reply(&invite, 183, &[("Content-Type", "application/sdp")]);
    progress.body = sdp.as_bytes().to_vec();
    h.deliver(progress);
    let events = h.events();
    assert!(events.contains(&PhoneEvent::Ringing { call, code: 183 }), "{events:?}");
    assert!(
        events.iter().any(|e| matches!(e, PhoneEvent::Media { params, .. } if params.payload_type == 8 && params.remote == Some("127.0.0.1:20010".parse().unwrap()))),
        "{events:?}"
    );
}

#[test]
fn the_recording_state_changes_only_on_the_pbxs_200_and_failures_carry_their_reason() {
    let mut h = Harness::new(ControlMode::InDialog, false);
    let (call, invite) = established_call(&mut h);
    h.events();
    h.phone.handle_command(h.now, Command::RecordingControl { call, op: Operation::PauseAudio }).unwrap();
    let msg = h.one(rsip::Method::Message);
    assert_eq!(msg.content_type().as_deref(), Some("application/x-media-control"));
    assert_eq!(msg.body, b"pause-audio-recording");
    assert_eq!(msg.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(msg.to_tag().unwrap(), Some(Tag::new("srv")));
    h.deliver(reply(&msg, 404, &[]));
    let events = h.events();
    assert!(
        matches!(events.as_slice(), [PhoneEvent::ControlFailed { reason, .. }] if reason == "404 Not Found"),
        "{events:?}"
    );
    h.phone.handle_command(h.now, Command::RecordingControl { call, op: Operation::PauseAudio }).unwrap();
    let msg = h.one(rsip::Method::Message);
    assert!(h.events().is_empty(), "nothing changes before the answer");
    h.deliver(reply(&msg, 200, &[]));
    let events = h.events();
    assert!(events.iter().any(|e| matches!(e, PhoneEvent::ControlSucceeded { .. })), "{events:?}");
    assert!(
        events.iter().any(|e| matches!(e, PhoneEvent::RecordingState { state, .. } if state.to_header_value() == "audio;paused")),
        "{events:?}"
    );
}

#[test]
fn out_of_dialog_control_sends_json_with_the_session_and_answers_407() {
    let mut h = Harness::new(ControlMode::OutOfDialog, false);
    let (call, invite) = established_call(&mut h);
    h.events();
    h.phone.handle_command(h.now, Command::RecordingControl { call, op: Operation::ResumeAudio }).unwrap();
    let msg = h.one(rsip::Method::Message);
    assert_ne!(msg.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(msg.content_type().as_deref(), Some("application/x-media-control+json"));
    let json: serde_json::Value = serde_json::from_slice(&msg.body).unwrap();
    assert_eq!(json, serde_json::json!({"operation": "resume-audio-recording", "session_id": "S-42"}));
    h.deliver(reply(&msg, 407, &[("Proxy-Authenticate", CHALLENGE)]));
    let retry = h.one(rsip::Method::Message);
    assert!(has_header(&retry, |h| matches!(h, Header::ProxyAuthorization(_))));
    assert_eq!(retry.cseq().unwrap().0, msg.cseq().unwrap().0 + 1);
    let wire = String::from_utf8(hark_sip::encode(&retry.clone().into())).unwrap();
    assert!(wire.contains(&format!("Content-Length: {}\r\n", retry.body.len())), "{wire}");
    h.deliver(reply(&retry, 200, &[]));
    assert!(h.events().iter().any(|e| matches!(e, PhoneEvent::ControlSucceeded { .. })));
}

#[test]
fn an_incoming_call_rings_answers_and_retransmits_its_200_until_the_ack() {
    let mut h = Harness::new(ControlMode::InDialog, false);
    let sdp = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20002 RTP/AVP 8 0\r\n";
    let invite = format!(
        "INVITE sip:101@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {SERVER};branch=z9hG4bKinv1\r\nMax-Forwards: 70\r\n\
         From: <sip:102@pbx.test>;tag=pbxtag\r\nTo: <sip:101@pbx.test>\r\nCall-ID: in-1\r\nCSeq: 7 INVITE\r\n\
         Contact: <sip:pbx@{SERVER}>\r\nX-Session-Id: S-9\r\nX-Recording-State: audio;paused\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    h.phone.handle_input(h.now, Peer::udp(server()), invite.as_bytes());
    let sent = h.sent();
    assert!(sent.iter().any(|m| matches!(m, SipMessage::Response(r) if r.status_code.code() == 180)));
    let events = h.events();
    let call = match events.first() {
        Some(PhoneEvent::IncomingCall { call, .. }) => *call,
        other => panic!("{other:?}"),
    };
    assert!(events.iter().any(|e| matches!(e, PhoneEvent::RecordingState { state, .. } if state.to_header_value() == "audio;paused")));
    h.phone.handle_command(h.now, Command::Answer { call, rtp_port: 41000 }).unwrap();
    let ok = |m: &SipMessage| matches!(m, SipMessage::Response(r) if r.status_code.code() == 200);
    assert_eq!(h.sent().iter().filter(|m| ok(m)).count(), 1);
    let events = h.events();
    assert!(events.iter().any(|e| matches!(e, PhoneEvent::Media { params, .. } if params.payload_type == 0 || params.payload_type == 8)));
    h.advance(Duration::from_millis(600));
    assert_eq!(h.sent().iter().filter(|m| ok(m)).count(), 1, "the 200 is sent again until the ACK");
    let ack = "ACK sip:101@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack1\r\nMax-Forwards: 70\r\n\
               From: <sip:102@pbx.test>;tag=pbxtag\r\nTo: <sip:101@pbx.test>;tag=TAG\r\nCall-ID: in-1\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n";
    let tag = h.phone_tag(call);
    h.phone.handle_input(h.now, Peer::udp(server()), ack.replace("TAG", &tag).as_bytes());
    h.advance(Duration::from_secs(5));
    assert_eq!(h.sent().iter().filter(|m| ok(m)).count(), 0, "the ACK stops the retransmissions");
}

impl Harness {
    /// Our To tag for an incoming call, read from the 200 we sent (re-sent on demand).
    fn phone_tag(&mut self, _call: CallHandle) -> String {
        self.advance(Duration::from_millis(1100));
        let resent = self.sent();
        resent
            .iter()
            .find_map(|m| match m {
                SipMessage::Response(r) if r.status_code.code() == 200 => r.to_tag().ok().flatten(),
                _ => None,
            })
            .map(|t| t.to_string())
            .expect("a retransmitted 200")
    }
}

#[test]
fn garbage_and_strays_never_panic() {
    let mut h = Harness::new(ControlMode::InDialog, true);
    for junk in [
        &b""[..],
        b"\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\nContent-Length: 99999\r\n\r\n",
        b"BYE sip:101@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: nope\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        &[0xff; 300],
    ] {
        h.phone.handle_input(h.now, Peer::udp(server()), junk);
    }
    // The stray BYE got a 481; nothing else happened.
    let sent = h.sent();
    assert!(sent.iter().any(|m| matches!(m, SipMessage::Response(r) if r.status_code.code() == 481)));
    assert!(h.phone.handle_command(h.now, Command::Hangup { call: CallHandle(99) }).is_err());
}

#[test]
fn attended_transfer_refers_with_replaces_and_an_incoming_replaces_names_the_call() {
    let mut h = Harness::new(ControlMode::InDialog, false);
    let (a, _) = established_call_to(&mut h, "102");
    let (b, invite_b) = established_call_to(&mut h, "103");
    h.events();
    h.phone.handle_command(h.now, Command::AttendedTransfer { call: a, target: b }).unwrap();
    let refer = h.one(rsip::Method::Refer);
    let refer_to = refer.other_header("Refer-To").unwrap().to_owned();
    let our_tag = invite_b.from_tag().unwrap().unwrap();
    let call_id = invite_b.call_id().unwrap();
    assert_eq!(
        refer_to,
        format!("<sip:103@pbx.test?Replaces={call_id}%3Bto-tag%3Dsrv%3Bfrom-tag%3D{our_tag}>"),
    );
    // The transferee's INVITE would reach the target; here we are asked to replace b.
    let sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20004 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:101@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {SERVER};branch=z9hG4bKrep1\r\nMax-Forwards: 70\r\n\
         From: <sip:104@pbx.test>;tag=t104\r\nTo: <sip:101@pbx.test>\r\nCall-ID: rep-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:104@{SERVER}>\r\nReplaces: {call_id};to-tag={our_tag};from-tag=srv\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    h.phone.handle_input(h.now, Peer::udp(server()), invite.as_bytes());
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(e, PhoneEvent::IncomingCall { replaces: Some(r), .. } if *r == b)),
        "{events:?}"
    );
}

#[test]
fn a_refer_from_the_peer_is_accepted_followed_and_its_outcome_notified() {
    let mut h = Harness::new(ControlMode::InDialog, false);
    let (call, invite) = established_call(&mut h);
    h.events();
    let our_tag = invite.from_tag().unwrap().unwrap();
    let refer = format!(
        "REFER sip:101@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {SERVER};branch=z9hG4bKref1\r\nMax-Forwards: 70\r\n\
         From: <sip:102@pbx.test>;tag=srv\r\nTo: <sip:101@pbx.test>;tag={our_tag}\r\nCall-ID: {}\r\nCSeq: 9 REFER\r\n\
         Contact: <sip:pbx@{SERVER}>\r\nRefer-To: <sip:103@pbx.test>\r\nContent-Length: 0\r\n\r\n",
        invite.call_id().unwrap()
    );
    h.phone.handle_input(h.now, Peer::udp(server()), refer.as_bytes());
    let sent = h.sent();
    assert!(sent.iter().any(|m| matches!(m, SipMessage::Response(r) if r.status_code.code() == 202)));
    let trying = sent
        .iter()
        .find_map(|m| match m {
            SipMessage::Request(r) if r.method == rsip::Method::Notify => Some(r.clone()),
            _ => None,
        })
        .expect("a NOTIFY 100 Trying");
    assert_eq!(String::from_utf8_lossy(&trying.body), "SIP/2.0 100 Trying\r\n");
    assert_eq!(h.phone.poll_transfer_request(), Some((call, "sip:103@pbx.test".to_string())));
    h.deliver(reply(&trying, 200, &[]));

    let new = h.phone.handle_command(h.now, Command::AcceptTransfer { call, rtp_port: 40002 }).unwrap().unwrap();
    assert_ne!(new, call);
    let invite2 = h.one(rsip::Method::Invite);
    assert_eq!(invite2.uri.to_string(), "sip:103@pbx.test");
    let mut ok = reply(&invite2, 200, &[("Contact", "<sip:pbx@127.0.0.1:5060>"), ("Content-Type", "application/sdp")]);
    ok.body = b"v=0\r\no=p 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20020 RTP/AVP 0\r\n".to_vec();
    h.deliver(ok);
    let notify = h.one(rsip::Method::Notify);
    assert_eq!(String::from_utf8_lossy(&notify.body), "SIP/2.0 200 OK\r\n");
    assert_eq!(notify.call_id().unwrap(), invite.call_id().unwrap(), "the NOTIFY goes in the referring dialog");
    let wire = String::from_utf8(hark_sip::encode(&notify.into())).unwrap();
    assert!(wire.contains("\r\nSubscription-State: terminated;reason=noresource\r\n"), "{wire}");
    assert!(wire.contains("\r\nEvent: refer\r\n"), "{wire}");
}

#[test]
fn a_delayed_offer_is_answered_with_our_offer_and_media_starts_on_the_ack() {
    let mut h = Harness::new(ControlMode::InDialog, false);
    let invite = format!(
        "INVITE sip:101@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {SERVER};branch=z9hG4bKlate1\r\nMax-Forwards: 70\r\n\
         From: <sip:102@pbx.test>;tag=late\r\nTo: <sip:101@pbx.test>\r\nCall-ID: late-1\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:pbx@{SERVER}>\r\nContent-Length: 0\r\n\r\n"
    );
    h.phone.handle_input(h.now, Peer::udp(server()), invite.as_bytes());
    let call = match h.events().first() {
        Some(PhoneEvent::IncomingCall { call, .. }) => *call,
        other => panic!("{other:?}"),
    };
    h.sent();
    h.phone.handle_command(h.now, Command::Answer { call, rtp_port: 41002 }).unwrap();
    let ok = h
        .sent()
        .into_iter()
        .find_map(|m| match m {
            SipMessage::Response(r) if r.status_code.code() == 200 => Some(r),
            _ => None,
        })
        .expect("a 200");
    let offer = String::from_utf8_lossy(&ok.body).into_owned();
    assert!(offer.contains("m=audio 41002 RTP/AVP 0 8 9 111 101"), "{offer}");
    assert!(!h.events().iter().any(|e| matches!(e, PhoneEvent::Media { .. })), "no media before the answer");
    let tag = ok.to_tag().unwrap().unwrap();
    let sdp = "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20030 RTP/AVP 8\r\n";
    let ack = format!(
        "ACK sip:101@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP {SERVER};branch=z9hG4bKlateack\r\nMax-Forwards: 70\r\n\
         From: <sip:102@pbx.test>;tag=late\r\nTo: <sip:101@pbx.test>;tag={tag}\r\nCall-ID: late-1\r\nCSeq: 1 ACK\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    h.phone.handle_input(h.now, Peer::udp(server()), ack.as_bytes());
    let events = h.events();
    assert!(
        events.iter().any(|e| matches!(e, PhoneEvent::Media { params, .. } if params.payload_type == 8 && params.remote == Some("127.0.0.1:20030".parse().unwrap()))),
        "{events:?}"
    );
}
