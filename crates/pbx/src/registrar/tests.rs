use super::*;
use hark_sip::rsip::SipMessage;
use hark_sip::{parse_datagram, Limits};

fn register(contacts: &str, expires: Option<&str>, call_id: &str, cseq: u32) -> Request {
    let expires = expires.map(|e| format!("Expires: {e}\r\n")).unwrap_or_default();
    let text = format!(
        "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\r\nFrom: <sip:101@pbx.test>;tag=a\r\nTo: <sip:101@pbx.test>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n{contacts}{expires}Content-Length: 0\r\n\r\n"
    );
    match parse_datagram(text.as_bytes(), &Limits::default()).unwrap() {
        SipMessage::Request(r) => r,
        _ => unreachable!(),
    }
}

fn user() -> UserKey {
    UserKey { tenant_id: 1, extension: "101".into() }
}

fn peer() -> Peer {
    Peer::udp("127.0.0.1:5070".parse().unwrap())
}

#[test]
fn register_refresh_and_unregister() {
    let (mut loc, now, cfg) = (Location::default(), Instant::now(), RegistrarConfig::default());
    let req = register("Contact: <sip:101@127.0.0.1:5070>, <sip:101@127.0.0.1:5071>;expires=120\r\n", Some("600"), "c1", 1);
    let changes = apply_register(&mut loc, &user(), &req, peer(), now, &cfg).unwrap();
    assert_eq!(changes.len(), 2);
    assert_eq!(
        contacts_for_response(&loc, &user(), now),
        vec!["<sip:101@127.0.0.1:5070>;expires=600", "<sip:101@127.0.0.1:5071>;expires=120"]
    );
    let refresh = register("Contact: <sip:101@127.0.0.1:5070>\r\n", Some("600"), "c1", 2);
    apply_register(&mut loc, &user(), &refresh, peer(), now, &cfg).unwrap();
    assert_eq!(loc.len(), 2);
    let star = register("Contact: *\r\n", Some("0"), "c1", 3);
    assert_eq!(apply_register(&mut loc, &user(), &star, peer(), now, &cfg).unwrap().len(), 2);
    assert!(loc.is_empty());
}

#[test]
fn too_brief_intervals_get_423_and_change_nothing() {
    let (mut loc, now, cfg) = (Location::default(), Instant::now(), RegistrarConfig::default());
    let req = register("Contact: <sip:101@127.0.0.1:5070>, <sip:101@127.0.0.1:5071>;expires=10\r\n", Some("600"), "c1", 1);
    let err = apply_register(&mut loc, &user(), &req, peer(), now, &cfg).unwrap_err();
    assert_eq!(err, RegisterError::IntervalTooBrief { min_expires: 60 });
    assert_eq!(err.status_code(), 423);
    assert!(loc.is_empty(), "all or nothing");
}

#[test]
fn long_intervals_are_capped_and_zero_removes_one_contact() {
    let (mut loc, now, cfg) = (Location::default(), Instant::now(), RegistrarConfig::default());
    let req = register("Contact: <sip:101@h1>, <sip:101@h2>\r\n", Some("99999"), "c1", 1);
    apply_register(&mut loc, &user(), &req, peer(), now, &cfg).unwrap();
    assert_eq!(contacts_for_response(&loc, &user(), now)[0], "<sip:101@h1>;expires=3600");
    let remove = register("Contact: <sip:101@h1>;expires=0\r\n", None, "c1", 2);
    apply_register(&mut loc, &user(), &remove, peer(), now, &cfg).unwrap();
    assert_eq!(contacts_for_response(&loc, &user(), now), vec!["<sip:101@h2>;expires=3600"]);
}

#[test]
fn star_rules_out_of_order_and_limits() {
    let (mut loc, now, cfg) = (Location::default(), Instant::now(), RegistrarConfig::default());
    let bad_star = register("Contact: *\r\n", Some("60"), "c1", 1);
    assert!(matches!(apply_register(&mut loc, &user(), &bad_star, peer(), now, &cfg), Err(RegisterError::BadRequest(_))));
    apply_register(&mut loc, &user(), &register("Contact: <sip:101@h1>\r\n", None, "c1", 5), peer(), now, &cfg).unwrap();
    let old = register("Contact: <sip:101@h1>\r\n", None, "c1", 4);
    assert_eq!(apply_register(&mut loc, &user(), &old, peer(), now, &cfg), Err(RegisterError::OutOfOrder));
    let many: String = (0..11).map(|i| format!("Contact: <sip:101@h{i}x>\r\n")).collect();
    let req = register(&many, None, "c2", 1);
    assert_eq!(apply_register(&mut loc, &user(), &req, peer(), now, &cfg), Err(RegisterError::TooManyContacts));
    let garbage = register("Contact: <tel:1>\r\n", None, "c2", 2);
    assert!(matches!(apply_register(&mut loc, &user(), &garbage, peer(), now, &cfg), Err(RegisterError::BadRequest(_))));
}
