//! Requests built in a dialog: Request-URI and Route by loose and strict routing, CSeq,
//! tags, Contact, and the ACK for a 2xx.

use super::*;
use crate::dialog::{Dialog, DialogError, DialogState};
use crate::ids::Tag;
use crate::message::SipHeaders;
use rsip::Method;

fn alices_dialog(record_route: &str) -> Dialog {
    let ok = response_to_invite("200 OK", &format!("{record_route}Contact: <sip:bob@198.51.100.20:5070>\r\n"));
    Dialog::uac(&req(INVITE), &ok).unwrap()
}

#[test]
fn loose_routing_keeps_the_target_in_the_request_uri() {
    let mut d = alices_dialog(RECORD_ROUTE);
    let bye = d.create_request(Method::Bye, via("z9hG4bKbye1")).unwrap();
    assert_eq!(bye.uri, uri("sip:bob@198.51.100.20:5070"));
    assert_eq!(values(&bye, "Route"), ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
    assert_eq!(values(&bye, "Max-Forwards"), ["70"]);
    assert_eq!(bye.call_id().unwrap(), crate::CallId::new("call-1@192.0.2.10"));
    assert_eq!(bye.from_tag().unwrap(), Some(Tag::new("alice-tag")));
    assert_eq!(bye.to_tag().unwrap(), Some(Tag::new("bob-tag")));
    assert_eq!(bye.cseq().unwrap(), (315, Method::Bye));
    assert_eq!(bye.branch().unwrap(), Some(crate::Branch::new("z9hG4bKbye1")));
    assert!(values(&bye, "Contact").is_empty(), "BYE carries no Contact");
    // The display name survives in From.
    assert!(values(&bye, "From")[0].contains("Alice"), "{:?}", values(&bye, "From"));
}

#[test]
fn strict_routing_puts_the_first_hop_in_the_request_uri() {
    let mut d = alices_dialog("Record-Route: <sip:p2.example;lr>, <sip:p1.example;transport=tcp;method=INVITE>\r\n");
    let info = d.create_request(Method::Info, via("z9hG4bKinfo")).unwrap();
    // p1 is a strict router: it becomes the Request-URI, without the parameters a
    // Request-URI may not carry; the remote target goes last in Route.
    assert_eq!(info.uri, uri("sip:p1.example;transport=tcp"));
    assert_eq!(values(&info, "Route"), ["<sip:p2.example;lr>", "<sip:bob@198.51.100.20:5070>"]);
}

#[test]
fn without_a_route_set_requests_go_straight_to_the_target() {
    let mut d = alices_dialog("");
    let info = d.create_request(Method::Info, via("z9hG4bKinfo")).unwrap();
    assert_eq!(info.uri, uri("sip:bob@198.51.100.20:5070"));
    assert!(values(&info, "Route").is_empty());
}

#[test]
fn each_request_takes_the_next_cseq_and_target_refreshes_carry_contact() {
    let mut d = alices_dialog(RECORD_ROUTE);
    let reinvite = d.create_request(Method::Invite, via("z9hG4bK1")).unwrap();
    let update = d.create_request(Method::Update, via("z9hG4bK2")).unwrap();
    assert_eq!(reinvite.cseq().unwrap(), (315, Method::Invite));
    assert_eq!(update.cseq().unwrap(), (316, Method::Update));
    assert_eq!(d.local_cseq(), 317);
    assert_eq!(values(&reinvite, "Contact"), ["<sip:alice@192.0.2.10:5060>"]);

    // A new local address shows in the next target refresh.
    d.set_local_contact(rsip::typed::Contact::from(uri("sip:alice@192.0.2.99:5060")));
    let refresh = d.create_request(Method::Invite, via("z9hG4bK3")).unwrap();
    assert_eq!(values(&refresh, "Contact"), ["<sip:alice@192.0.2.99:5060>"]);
}

#[test]
fn the_ack_for_a_2xx_reuses_the_invite_cseq_and_takes_none() {
    let mut d = alices_dialog(RECORD_ROUTE);
    let ack = d.ack_for_2xx(314, via("z9hG4bKack"));
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.cseq().unwrap(), (314, Method::Ack));
    assert_eq!(ack.uri, uri("sip:bob@198.51.100.20:5070"));
    assert_eq!(values(&ack, "Route"), ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
    assert_eq!(ack.to_tag().unwrap(), Some(Tag::new("bob-tag")));
    assert_eq!(d.local_cseq(), 315);
    assert_eq!(d.create_request(Method::Ack, via("z9hG4bKx")), Err(DialogError::NoNewCSeq(Method::Ack)));
    assert_eq!(d.create_request(Method::Cancel, via("z9hG4bKx")), Err(DialogError::NoNewCSeq(Method::Cancel)));
    // Even a dialog ended early still acknowledges a late 2xx.
    d.terminate();
    assert_eq!(d.ack_for_2xx(314, via("z9hG4bKack2")).cseq().unwrap(), (314, Method::Ack));
}

#[test]
fn a_request_built_by_one_side_is_accepted_by_the_other_after_the_wire() {
    let mut alice = alices_dialog(RECORD_ROUTE);
    let mut bob = Dialog::uas(
        &req(INVITE_AT_BOB),
        &Tag::new("bob-tag"),
        rsip::typed::Contact::from(uri("sip:bob@198.51.100.20:5070")),
    )
    .unwrap();
    bob.confirm();

    let reinvite = alice.create_request(Method::Invite, via("z9hG4bKre")).unwrap();
    let wire = crate::encode(&reinvite.into());
    let received = match crate::parse_datagram(&wire, &crate::Limits::default()).unwrap() {
        rsip::SipMessage::Request(r) => r,
        rsip::SipMessage::Response(_) => unreachable!(),
    };
    bob.handle_request(&received).unwrap();
    assert_eq!(bob.remote_cseq(), Some(315));

    // Bob's own first request: his CSeq space starts at 1, his tag in From.
    let bye = bob.create_request(Method::Bye, via("z9hG4bKbb")).unwrap();
    assert_eq!(bye.cseq().unwrap(), (1, Method::Bye));
    assert_eq!(bye.uri, uri("sip:alice@192.0.2.10:5060"));
    assert_eq!(values(&bye, "Route"), ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]);
    let wire = crate::encode(&bye.into());
    let received = match crate::parse_datagram(&wire, &crate::Limits::default()).unwrap() {
        rsip::SipMessage::Request(r) => r,
        rsip::SipMessage::Response(_) => unreachable!(),
    };
    alice.handle_request(&received).unwrap();
    assert_eq!(alice.state(), DialogState::Terminated);
}

#[test]
fn a_re_invite_on_the_wire() {
    let mut d = alices_dialog(RECORD_ROUTE);
    let reinvite = d.create_request(Method::Invite, via("z9hG4bKre")).unwrap();
    let wire = String::from_utf8(crate::encode(&reinvite.into())).unwrap();
    assert_eq!(
        wire,
        "INVITE sip:bob@198.51.100.20:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKre;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:p1.example;lr>\r\n\
Route: <sip:p2.example;lr>\r\n\
From: \"Alice\" <sip:alice@atlanta.example>;tag=alice-tag\r\n\
To: <sip:bob@biloxi.example>;tag=bob-tag\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 315 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Content-Length: 0\r\n\r\n"
    );
}

#[test]
fn old_style_lr_on_counts_as_loose() {
    let mut d = alices_dialog("Record-Route: <sip:ser.example;lr=on;ftag=abc>\r\n");
    let bye = d.create_request(Method::Bye, via("z9hG4bKbye")).unwrap();
    assert_eq!(bye.uri, uri("sip:bob@198.51.100.20:5070"));
    assert_eq!(values(&bye, "Route"), ["<sip:ser.example;lr=on;ftag=abc>"]);
}
