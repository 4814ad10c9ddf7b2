//! The B2BUA driven in simulated time with SIP text: two phones, A (101) and B (102),
//! registered; A calls B through the core.

use super::*;
use crate::auth_guard::GuardConfig;
use crate::core::{CoreConfig, CoreEvent, PbxCore};
use crate::directory::{Directory, TenantInfo, UserAuth};
use crate::registrar::{Binding, Location, RegistrarConfig, UserKey};
use hark_sip::auth::{ha1, Algorithm, DigestClient};
use hark_sip::parse::parse_datagram;
use hark_sip::rsip::{Request, Response, SipMessage};
use hark_sip::transaction::TimerConfig;
use hark_sip::transport::{Inbound, Peer, Transmit};
use hark_sip::{CallId, Limits, SipHeaders};
use std::net::SocketAddr;

const A: &str = "192.0.2.10:5062";
const B: &str = "192.0.2.20:5064";
const PBX_IP: &str = "198.51.100.1";

fn peer(addr: &str) -> Peer {
    Peer::udp(addr.parse().unwrap())
}

fn sdp(ip: &str, port: u16) -> String {
    format!("v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
}

struct Office {
    core: PbxCore,
    now: Instant,
}

impl Office {
    fn new(ring: Duration) -> Self {
        let now = Instant::now();
        let mut dir = Directory::default();
        dir.add_tenant(TenantInfo { id: 1, name: "office".into(), domain: "pbx.test".into() }, true);
        dir.add_tenant(TenantInfo { id: 2, name: "other".into(), domain: "other.test".into() }, false);
        for (t, ext, domain) in [(1, "101", "pbx.test"), (1, "102", "pbx.test"), (1, "103", "pbx.test"), (2, "201", "other.test")] {
            dir.add_user(
                UserKey { tenant_id: t, extension: ext.into() },
                UserAuth { ha1_md5: ha1(Algorithm::Md5, ext, domain, "pw"), ha1_sha256: ha1(Algorithm::Sha256, ext, domain, "pw") },
            );
        }
        let mut loc = Location::default();
        for (ext, addr) in [("101", A), ("102", B)] {
            loc.upsert(
                &UserKey { tenant_id: 1, extension: ext.into() },
                Binding {
                    contact: format!("sip:{ext}@{addr}"),
                    expires_at: now + Duration::from_secs(3600),
                    q: None,
                    call_id: CallId::new("reg"),
                    cseq: 1,
                    source: peer(addr),
                    user_agent: None,
                    instance: None,
                },
            );
        }
        let config = CoreConfig {
            registrar: RegistrarConfig::default(),
            guard: GuardConfig::default(),
            nonce_lifetime: Duration::from_secs(300),
            nonce_secret: [3; 32],
            digest_algorithms: vec![Algorithm::Md5],
            timers: TimerConfig::default(),
            calls: CallConfig { ring_timeout: ring },
        };
        let mut core = PbxCore::new(config, dir, loc, now);
        core.set_local(LocalAddrs { ip: PBX_IP.parse().unwrap(), udp_port: 5060, tcp_port: 5060 });
        Office { core, now }
    }

    fn send(&mut self, from: &str, text: &str) {
        let msg = parse_datagram(text.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{e}: {text}"));
        self.core.handle_inbound(self.now, Inbound::Message { peer: peer(from), msg });
    }

    fn out(&mut self) -> Vec<(SocketAddr, SipMessage)> {
        let mut v = Vec::new();
        while let Some(Transmit { peer, bytes }) = self.core.poll_transmit() {
            v.push((peer.addr, parse_datagram(&bytes, &Limits::default()).unwrap()));
        }
        v
    }

    fn events(&mut self) -> Vec<CoreEvent> {
        std::iter::from_fn(|| self.core.poll_event()).collect()
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
    }

    /// A's INVITE to `target`, answered with its 407 and sent again with credentials.
    fn invite(&mut self, target: &str, body: &str) -> Vec<(SocketAddr, SipMessage)> {
        let invite = |cseq: u32, auth: &str| {
            format!(
                "INVITE sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKa{cseq};rport\r\nFrom: \"Alice\" <sip:101@pbx.test>;tag=atag\r\nTo: <sip:{target}>\r\nCall-ID: a-call\r\nCSeq: {cseq} INVITE\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        self.send(A, &invite(1, ""));
        let out = self.out();
        let challenge = out.iter().find_map(|(_, m)| match m {
            SipMessage::Response(r) if r.status_code.code() == 407 => Some(r.clone()),
            _ => None,
        });
        let challenge = challenge.unwrap_or_else(|| panic!("no 407: {out:?}"));
        let values: Vec<String> = challenge
            .headers
            .iter()
            .filter_map(|h| match h {
                hark_sip::rsip::Header::ProxyAuthenticate(p) => Some(hark_sip::rsip::headers::UntypedHeader::value(p).to_owned()),
                _ => None,
            })
            .collect();
        let mut client = DigestClient::new("101", "pw");
        let realm = client.on_challenges(values.iter().map(String::as_str)).unwrap().remove(0);
        let creds = client.authorize(&realm, "INVITE", &format!("sip:{target}")).unwrap();
        // ACK the 407 (the transaction layer absorbs it).
        self.send(A, &format!("ACK sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKa1;rport\r\nFrom: \"Alice\" <sip:101@pbx.test>;tag=atag\r\nTo: <sip:{target}>;tag={}\r\nCall-ID: a-call\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", challenge.to_tag().unwrap().unwrap()));
        self.send(A, &invite(2, &format!("Proxy-Authorization: {}\r\n", creds.to_header_value())));
        self.out()
    }

    /// Starts the relay the core asked for, with A-side port 40000 and B-side 40002.
    fn start_relay(&mut self) -> CallKey {
        let key = self
            .events()
            .into_iter()
            .find_map(|e| match e {
                CoreEvent::RelayStart { call, streams, .. } => {
                    assert_eq!(streams, 1);
                    Some(call)
                }
                _ => None,
            })
            .expect("RelayStart");
        self.core.handle_relay_started(self.now, key, Ok(RelayPorts { streams: vec![(40000, 40002)] }));
        key
    }
}

fn requests(out: &[(SocketAddr, SipMessage)], method: hark_sip::rsip::Method) -> Vec<(SocketAddr, Request)> {
    out.iter()
        .filter_map(|(a, m)| match m {
            SipMessage::Request(r) if r.method == method => Some((*a, r.clone())),
            _ => None,
        })
        .collect()
}

fn responses(out: &[(SocketAddr, SipMessage)]) -> Vec<(SocketAddr, Response)> {
    out.iter()
        .filter_map(|(a, m)| match m {
            SipMessage::Response(r) => Some((*a, r.clone())),
            _ => None,
        })
        .collect()
}

fn reply_to(req: &Request, code: u16, tag: &str, extra: &str, body: &str) -> String {
    let mut text = String::from_utf8(hark_sip::encode(&hark_sip::response_to(req, hark_sip::status(code, "X"), Some(&hark_sip::Tag::new(tag))).into())).unwrap();
    text.truncate(text.len() - "Content-Length: 0\r\n\r\n".len());
    format!("{text}Contact: <sip:102@{B}>\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())
}

fn cdr(events: &[CoreEvent]) -> CallRecord {
    events.iter().find_map(|e| match e {
        CoreEvent::Cdr(r) => Some(r.clone()),
        _ => None,
    }).expect("a CDR")
}

#[test]
fn a_call_is_forked_answered_and_hung_up_with_session_ids_and_a_cdr() {
    let mut o = Office::new(Duration::from_secs(30));
    o.invite("102@pbx.test", &sdp("192.0.2.10", 4000));
    let key = o.start_relay();
    let out = o.out();
    let invites = requests(&out, hark_sip::rsip::Method::Invite);
    assert_eq!(invites.len(), 1);
    let (to, b_invite) = &invites[0];
    assert_eq!(to.to_string(), B);
    let session = b_invite.other_header("X-Session-Id").expect("X-Session-Id on the callee's INVITE").to_owned();
    assert_eq!(b_invite.other_header("X-Recording-State"), Some("off"));
    let body = String::from_utf8_lossy(&b_invite.body);
    assert!(body.contains(&format!("c=IN IP4 {PBX_IP}")) && body.contains("m=audio 40002 "), "anchored on the B side: {body}");
    assert!(o.events().iter().any(|e| matches!(e, CoreEvent::RelayUpdate { side: LegSide::A, rtp: Some(a), .. } if a.port() == 4000)));

    o.send(B, &reply_to(b_invite, 180, "btag", "", ""));
    let ringing = responses(&o.out());
    assert!(ringing.iter().any(|(a, r)| a.to_string() == A && r.status_code.code() == 180), "{ringing:?}");

    o.send(B, &reply_to(b_invite, 200, "btag", "Content-Type: application/sdp\r\n", &sdp("192.0.2.20", 5000)));
    let out = o.out();
    assert_eq!(requests(&out, hark_sip::rsip::Method::Ack).len(), 1, "B's 200 is ACKed");
    let ok = responses(&out).into_iter().find(|(a, r)| a.to_string() == A && r.status_code.code() == 200).expect("200 to A").1;
    assert_eq!(ok.other_header("X-Session-Id"), Some(session.as_str()), "the same id in the caller's 200");
    assert!(String::from_utf8_lossy(&ok.body).contains("m=audio 40000 "), "anchored on the A side");
    assert!(o.events().iter().any(|e| matches!(e, CoreEvent::RelayUpdate { side: LegSide::B, rtp: Some(b), .. } if b.port() == 5000)));
    assert_eq!(o.core.active_calls(), 1);

    // The 200 is retransmitted until A's ACK.
    o.advance(Duration::from_millis(600));
    assert!(responses(&o.out()).iter().any(|(_, r)| r.status_code.code() == 200), "200 retransmitted");
    let a_tag = ok.to_tag().unwrap().unwrap();
    o.send(A, &format!("ACK sip:hark@{PBX_IP}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKack;rport\r\nFrom: \"Alice\" <sip:101@pbx.test>;tag=atag\r\nTo: <sip:102@pbx.test>;tag={a_tag}\r\nCall-ID: a-call\r\nCSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    o.advance(Duration::from_secs(2));
    assert!(responses(&o.out()).is_empty(), "no retransmission after the ACK");

    // A hangs up: 200 to A, BYE to B, CDR, relay stopped.
    o.send(A, &format!("BYE sip:hark@{PBX_IP}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKbye;rport\r\nFrom: \"Alice\" <sip:101@pbx.test>;tag=atag\r\nTo: <sip:102@pbx.test>;tag={a_tag}\r\nCall-ID: a-call\r\nCSeq: 3 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    let out = o.out();
    assert!(responses(&out).iter().any(|(a, r)| a.to_string() == A && r.status_code.code() == 200));
    let byes = requests(&out, hark_sip::rsip::Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].0.to_string(), B);
    assert_eq!(byes[0].1.to_tag().unwrap().unwrap().as_str(), "btag");
    let events = o.events();
    assert!(events.iter().any(|e| matches!(e, CoreEvent::RelayStop { call } if *call == key)));
    let record = cdr(&events);
    assert_eq!((record.disposition, record.hangup_by), (Disposition::Answered, HangupBy::Caller));
    assert_eq!((record.caller.as_str(), record.callee.as_str(), record.session_id.as_str()), ("101", "102", session.as_str()));
    assert!(record.answered_at.is_some());
    assert_eq!(o.core.active_calls(), 0);
    assert_no_leftovers(&o);
}

/// A finished call leaves nothing in the B2BUA's indexes.
fn assert_no_leftovers(o: &Office) {
    let c = &o.core.calls;
    assert!(c.calls.is_empty() && c.by_a_tx.is_empty() && c.by_client_tx.is_empty() && c.by_dialog.is_empty(), "{c:?}");
}

#[test]
fn busy_callee_gives_486_and_a_busy_cdr() {
    let mut o = Office::new(Duration::from_secs(30));
    o.invite("102@pbx.test", &sdp("192.0.2.10", 4000));
    o.start_relay();
    let (_, b_invite) = requests(&o.out(), hark_sip::rsip::Method::Invite).remove(0);
    o.send(B, &reply_to(&b_invite, 486, "btag", "", ""));
    let out = o.out();
    assert!(responses(&out).iter().any(|(a, r)| a.to_string() == A && r.status_code.code() == 486), "{out:?}");
    let record = cdr(&o.events());
    assert_eq!((record.disposition, record.hangup_by), (Disposition::Busy, HangupBy::Callee));
    assert_no_leftovers(&o);
}

#[test]
fn nobody_answers_in_time_480_and_the_phones_are_cancelled() {
    let mut o = Office::new(Duration::from_secs(5));
    o.invite("102@pbx.test", &sdp("192.0.2.10", 4000));
    o.start_relay();
    o.out();
    o.advance(Duration::from_secs(6));
    let out = o.out();
    assert_eq!(requests(&out, hark_sip::rsip::Method::Cancel).len(), 1, "{out:?}");
    assert!(responses(&out).iter().any(|(a, r)| a.to_string() == A && r.status_code.code() == 480));
    assert_eq!(cdr(&o.events()).disposition, Disposition::NoAnswer);
    assert_no_leftovers(&o);
}

#[test]
fn caller_cancel_gives_487_and_cancels_the_callee() {
    let mut o = Office::new(Duration::from_secs(30));
    o.invite("102@pbx.test", &sdp("192.0.2.10", 4000));
    o.start_relay();
    o.out();
    o.send(A, &format!("CANCEL sip:102@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKa2;rport\r\nFrom: \"Alice\" <sip:101@pbx.test>;tag=atag\r\nTo: <sip:102@pbx.test>\r\nCall-ID: a-call\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    let out = o.out();
    let codes: Vec<u16> = responses(&out).iter().filter(|(a, _)| a.to_string() == A).map(|(_, r)| r.status_code.code()).collect();
    assert!(codes.contains(&200) && codes.contains(&487), "{codes:?}");
    assert_eq!(requests(&out, hark_sip::rsip::Method::Cancel).len(), 1);
    let record = cdr(&o.events());
    assert_eq!((record.disposition, record.hangup_by), (Disposition::Cancelled, HangupBy::Caller));
}

#[test]
fn unknown_unregistered_and_other_tenant_targets_are_refused() {
    for (target, code) in [("999@pbx.test", 404), ("103@pbx.test", 480)] {
        let mut o = Office::new(Duration::from_secs(30));
        let out = o.invite(target, &sdp("192.0.2.10", 4000));
        assert!(responses(&out).iter().any(|(_, r)| r.status_code.code() == code), "{target}: {out:?}");
    }
    let mut o = Office::new(Duration::from_secs(30));
    let out = o.invite("201@other.test", &sdp("192.0.2.10", 4000));
    assert!(responses(&out).iter().any(|(_, r)| r.status_code.code() == 404), "{out:?}");
}

#[test]
fn broken_or_unacceptable_sdp_is_refused_with_a_reason() {
    let mut o = Office::new(Duration::from_secs(30));
    let out = o.invite("102@pbx.test", "this is not sdp");
    assert!(responses(&out).iter().any(|(_, r)| r.status_code.code() == 400), "{out:?}");
    let mut o = Office::new(Duration::from_secs(30));
    let g729 = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    let out = o.invite("102@pbx.test", g729);
    assert!(responses(&out).iter().any(|(_, r)| r.status_code.code() == 488), "{out:?}");
}

#[test]
fn hold_reinvite_is_carried_to_the_other_leg() {
    let mut o = Office::new(Duration::from_secs(30));
    o.invite("102@pbx.test", &sdp("192.0.2.10", 4000));
    o.start_relay();
    let (_, b_invite) = requests(&o.out(), hark_sip::rsip::Method::Invite).remove(0);
    o.send(B, &reply_to(&b_invite, 200, "btag", "Content-Type: application/sdp\r\n", &sdp("192.0.2.20", 5000)));
    let ok = responses(&o.out()).into_iter().find(|(_, r)| r.status_code.code() == 200).unwrap().1;
    let a_tag = ok.to_tag().unwrap().unwrap();
    o.events();
    let hold = sdp("192.0.2.10", 4000).replace("a=sendrecv", "a=sendonly");
    o.send(A, &format!("INVITE sip:hark@{PBX_IP}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKre;rport\r\nFrom: \"Alice\" <sip:101@pbx.test>;tag=atag\r\nTo: <sip:102@pbx.test>;tag={a_tag}\r\nCall-ID: a-call\r\nCSeq: 3 INVITE\r\nContact: <sip:101@{A}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{hold}", hold.len()));
    let out = o.out();
    let reinvites = requests(&out, hark_sip::rsip::Method::Invite);
    assert_eq!(reinvites.len(), 1, "{out:?}");
    let (to, reinvite) = &reinvites[0];
    assert_eq!(to.to_string(), B);
    assert!(String::from_utf8_lossy(&reinvite.body).contains("a=sendonly"));
    assert!(o.events().iter().any(|e| matches!(e, CoreEvent::RelayUpdate { side: LegSide::A, hold: true, .. })));
    let recv_only = sdp("192.0.2.20", 5000).replace("a=sendrecv", "a=recvonly");
    o.send(B, &reply_to(reinvite, 200, "btag", "Content-Type: application/sdp\r\n", &recv_only));
    let out = o.out();
    assert_eq!(requests(&out, hark_sip::rsip::Method::Ack).len(), 1, "B's 200 to the re-INVITE is ACKed");
    let to_a = responses(&out).into_iter().find(|(a, _)| a.to_string() == A).expect("answer to A").1;
    assert_eq!(to_a.status_code.code(), 200);
    assert!(String::from_utf8_lossy(&to_a.body).contains("a=recvonly") && String::from_utf8_lossy(&to_a.body).contains("m=audio 40000 "));
}

#[test]
fn early_media_183_is_anchored_and_steers_the_relay() {
    let mut o = Office::new(Duration::from_secs(30));
    o.invite("102@pbx.test", &sdp("192.0.2.10", 4000));
    o.start_relay();
    let (_, b_invite) = requests(&o.out(), hark_sip::rsip::Method::Invite).remove(0);
    o.events();
    o.send(B, &reply_to(&b_invite, 183, "btag", "Content-Type: application/sdp\r\n", &sdp("192.0.2.20", 5000)));
    let progress = responses(&o.out()).into_iter().find(|(a, r)| a.to_string() == A && r.status_code.code() == 183).expect("183 to A").1;
    let body = String::from_utf8_lossy(&progress.body).into_owned();
    assert!(body.contains(&format!("c=IN IP4 {PBX_IP}")) && body.contains("m=audio 40000 "), "early media anchored on the A side: {body}");
    assert!(o.events().iter().any(|e| matches!(e, CoreEvent::RelayUpdate { side: LegSide::B, rtp: Some(b), .. } if b.port() == 5000)), "the relay sends A's way from B's early media");
}

#[test]
fn a_late_answer_after_the_caller_cancelled_is_acked_and_hung_up() {
    let mut o = Office::new(Duration::from_secs(30));
    o.invite("102@pbx.test", &sdp("192.0.2.10", 4000));
    o.start_relay();
    let (_, b_invite) = requests(&o.out(), hark_sip::rsip::Method::Invite).remove(0);
    o.send(A, &format!("CANCEL sip:102@pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bKa2;rport\r\nFrom: \"Alice\" <sip:101@pbx.test>;tag=atag\r\nTo: <sip:102@pbx.test>\r\nCall-ID: a-call\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"));
    o.out();
    // The callee's phone answered as the CANCEL crossed it.
    let ok = reply_to(&b_invite, 200, "btag", "Content-Type: application/sdp\r\n", &sdp("192.0.2.20", 5000));
    o.send(B, &ok);
    let out = o.out();
    let acks = requests(&out, hark_sip::rsip::Method::Ack);
    let byes = requests(&out, hark_sip::rsip::Method::Bye);
    assert_eq!((acks.len(), byes.len()), (1, 1), "{out:?}");
    assert_eq!(byes[0].0.to_string(), B);
    assert_eq!(byes[0].1.to_tag().unwrap().unwrap().as_str(), "btag");
    assert_eq!(byes[0].1.uri.to_string(), format!("sip:102@{B}"), "to the answer's Contact");
    // Its retransmission gets the ACK again, not a second BYE.
    o.send(B, &ok);
    let out = o.out();
    assert_eq!(requests(&out, hark_sip::rsip::Method::Bye).len(), 0, "{out:?}");
}
