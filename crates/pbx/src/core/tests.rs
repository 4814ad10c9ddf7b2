//! The PBX core driven in simulated time: SIP text in, SIP text out.

use super::*;
use crate::directory::{TenantInfo, UserAuth};
use hark_sip::auth::{ha1, Algorithm, DigestClient};
use hark_sip::parse::parse_datagram;
use hark_sip::rsip::Response;
use hark_sip::Limits;
use std::net::SocketAddr;

const PHONE: &str = "192.0.2.10:5062";

fn directory() -> Directory {
    let mut d = Directory::default();
    d.add_tenant(TenantInfo { id: 1, name: "office".into(), domain: "pbx.test".into() }, true);
    d.add_tenant(TenantInfo { id: 2, name: "other".into(), domain: "other.test".into() }, false);
    for (tenant, domain) in [(1, "pbx.test"), (2, "other.test")] {
        d.add_user(
            UserKey { tenant_id: tenant, extension: "101".into() },
            UserAuth {
                ha1_md5: ha1(Algorithm::Md5, "101", domain, "secret"),
                ha1_sha256: ha1(Algorithm::Sha256, "101", domain, "secret"),
            },
        );
    }
    d
}

fn core(now: Instant) -> PbxCore {
    let config = CoreConfig {
        registrar: RegistrarConfig::default(),
        guard: GuardConfig { max_failures: 3, ..Default::default() },
        nonce_lifetime: Duration::from_secs(300),
        nonce_secret: [7; 32],
        digest_algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
        timers: TimerConfig::default(),
        calls: Default::default(),
    };
    PbxCore::new(config, directory(), Location::default(), now)
}

fn request(method: &str, ruri: &str, to: &str, cseq: u32, extra: &str) -> Inbound {
    let text = format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK{cseq}x;rport\r\nFrom: <{to}>;tag=ft\r\nTo: <{to}>\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    let msg = parse_datagram(text.as_bytes(), &Limits::default()).unwrap();
    Inbound::Message { peer: Peer::udp(PHONE.parse().unwrap()), msg }
}

fn responses(core: &mut PbxCore) -> Vec<Response> {
    let mut out = Vec::new();
    while let Some(t) = core.poll_transmit() {
        assert_eq!(t.peer.addr, PHONE.parse::<SocketAddr>().unwrap(), "answers go back where the request came from");
        match parse_datagram(&t.bytes, &Limits::default()).unwrap() {
            SipMessage::Response(r) => out.push(r),
            other => panic!("unexpected {other}"),
        }
    }
    out
}

fn header_values(r: &Response, name: &str) -> Vec<String> {
    r.headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value().to_owned())
        .collect()
}

trait NameValue {
    fn name(&self) -> String;
    fn value(&self) -> String;
}

impl NameValue for Header {
    fn name(&self) -> String {
        self.to_string().split(':').next().unwrap_or_default().trim().to_owned()
    }
    fn value(&self) -> String {
        self.to_string().split_once(':').map(|(_, v)| v.trim().to_owned()).unwrap_or_default()
    }
}

/// REGISTER, 401, the answer a real client computes, 200.
fn register(core: &mut PbxCore, now: Instant, password: &str, cseq: u32, contact: &str) -> Response {
    core.handle_inbound(now, request("REGISTER", "sip:pbx.test", "sip:101@pbx.test", cseq, &format!("Contact: {contact}\r\n")));
    let challenge = responses(core).pop().unwrap();
    assert_eq!(challenge.status_code.code(), 401);
    let offered = header_values(&challenge, "WWW-Authenticate");
    assert!(offered[0].contains("MD5") && offered[1].contains("SHA-256"), "MD5 first, then SHA-256: {offered:?}");
    let mut client = DigestClient::new("101", password);
    let realms = client.on_challenges(offered.iter().map(String::as_str)).unwrap();
    let creds = client.authorize(&realms[0], "REGISTER", "sip:pbx.test").unwrap();
    assert_eq!(creds.algorithm, Algorithm::Sha256, "a capable client still picks SHA-256");
    let auth = format!("Authorization: {}\r\nContact: {contact}\r\n", creds.to_header_value());
    core.handle_inbound(now, request("REGISTER", "sip:pbx.test", "sip:101@pbx.test", cseq + 1, &auth));
    responses(core).pop().unwrap()
}

#[test]
fn register_with_digest_then_bindings_expire() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let ok = register(&mut c, t0, "secret", 1, "<sip:101@192.0.2.10:5062>;expires=120");
    assert_eq!(ok.status_code.code(), 200);
    assert_eq!(header_values(&ok, "Contact"), vec!["<sip:101@192.0.2.10:5062>;expires=120"]);
    assert_eq!(c.registrations(), 1);
    assert!(matches!(c.poll_event(), Some(CoreEvent::Bindings(ch)) if ch.len() == 1));
    // The core asks to be woken for the expiry and drops the binding then.
    assert!(c.poll_timeout().is_some());
    c.handle_timeout(t0 + Duration::from_secs(121));
    assert_eq!(c.registrations(), 0);
    assert!(matches!(c.poll_event(), Some(CoreEvent::Bindings(ch)) if matches!(ch[0], BindingChange::Remove(..))));
}

#[test]
fn wrong_passwords_are_rechallenged_then_banned() {
    let t0 = Instant::now();
    let mut c = core(t0);
    for i in 0..2 {
        let r = register(&mut c, t0, "wrong", 10 + i * 2, "<sip:101@192.0.2.10:5062>");
        assert_eq!(r.status_code.code(), 401, "a wrong answer gets a new challenge");
    }
    let r = register(&mut c, t0, "wrong", 20, "<sip:101@192.0.2.10:5062>");
    assert_eq!(r.status_code.code(), 403, "the third failure bans the address");
    // Banned: everything gets 403, even OPTIONS, and even the right password.
    c.handle_inbound(t0, request("OPTIONS", "sip:pbx.test", "sip:pbx.test", 30, ""));
    assert_eq!(responses(&mut c)[0].status_code.code(), 403);
    assert_eq!(c.stats().bans, 1);
    assert_eq!(c.registrations(), 0);
    // After the ban, the right password works.
    let later = t0 + Duration::from_secs(301);
    let ok = register(&mut c, later, "secret", 40, "<sip:101@192.0.2.10:5062>");
    assert_eq!(ok.status_code.code(), 200);
}

#[test]
fn unknown_users_look_like_wrong_passwords() {
    let t0 = Instant::now();
    let mut c = core(t0);
    c.handle_inbound(t0, request("REGISTER", "sip:pbx.test", "sip:999@pbx.test", 1, "Contact: <sip:999@192.0.2.10>\r\n"));
    let challenge = responses(&mut c).pop().unwrap();
    assert_eq!(challenge.status_code.code(), 401, "no enumeration: unknown users are challenged too");
}

#[test]
fn tenants_by_domain_and_ip_and_unknown_domains() {
    let t0 = Instant::now();
    let mut c = core(t0);
    c.handle_inbound(t0, request("REGISTER", "sip:evil.example", "sip:101@evil.example", 1, "Contact: <sip:101@192.0.2.10>\r\n"));
    assert_eq!(responses(&mut c)[0].status_code.code(), 404);
    c.handle_inbound(t0, request("REGISTER", "sip:203.0.113.5", "sip:101@203.0.113.5", 2, "Contact: <sip:101@192.0.2.10>\r\n"));
    let r = responses(&mut c).pop().unwrap();
    assert_eq!(r.status_code.code(), 401);
    assert!(header_values(&r, "WWW-Authenticate")[0].contains("realm=\"pbx.test\""), "IP literal → default tenant's realm");
}

#[test]
fn options_and_unsupported_methods() {
    let t0 = Instant::now();
    let mut c = core(t0);
    c.handle_inbound(t0, request("OPTIONS", "sip:pbx.test", "sip:pbx.test", 1, ""));
    let r = responses(&mut c).pop().unwrap();
    assert_eq!(r.status_code.code(), 200);
    assert!(header_values(&r, "Allow")[0].contains("REGISTER"));
    c.handle_inbound(t0, request("SUBSCRIBE", "sip:pbx.test", "sip:pbx.test", 2, ""));
    assert_eq!(responses(&mut c).pop().unwrap().status_code.code(), 501);
}

#[test]
fn retransmitted_register_is_answered_from_the_transaction() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let req = request("REGISTER", "sip:pbx.test", "sip:101@pbx.test", 1, "Contact: <sip:101@192.0.2.10>\r\n");
    let again = request("REGISTER", "sip:pbx.test", "sip:101@pbx.test", 1, "Contact: <sip:101@192.0.2.10>\r\n");
    c.handle_inbound(t0, req);
    let first = responses(&mut c);
    c.handle_inbound(t0 + Duration::from_millis(500), again);
    let second = responses(&mut c);
    assert_eq!(first, second, "the same 401 (same nonce), not a new challenge");
}

#[test]
fn malformed_requests_get_400_and_pings_get_pongs() {
    let t0 = Instant::now();
    let mut c = core(t0);
    let raw = b"REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKm\r\nFrom: <sip:101@pbx.test>;tag=1\r\nTo: <sip:101@pbx.test>\r\nCall-ID: m\r\nCSeq: 1 REGISTER\r\nContent-Length: zz\r\n\r\n".to_vec();
    let peer = Peer::udp(PHONE.parse().unwrap());
    let error = parse_datagram(&raw, &Limits::default()).unwrap_err();
    c.handle_inbound(t0, Inbound::Malformed { peer, error, raw, answered: false });
    let t = c.poll_transmit().unwrap();
    let line = String::from_utf8_lossy(&t.bytes).lines().next().unwrap_or_default().to_owned();
    assert_eq!(line, "SIP/2.0 400 Bad Request (invalid Content-Length)");
    c.handle_inbound(t0, Inbound::Ping { peer });
    assert_eq!(&c.poll_transmit().unwrap().bytes[..], b"\r\n");
}
