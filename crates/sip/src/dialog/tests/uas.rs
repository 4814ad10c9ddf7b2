//! The callee's side: dialogs made from an INVITE we answer, and the requests the
//! caller then sends in them.

use super::*;
use crate::dialog::{Dialog, DialogError, DialogState};
use crate::ids::{CallId, Tag};
use rsip::Method;

fn bob_contact() -> rsip::typed::Contact {
    rsip::typed::Contact::from(uri("sip:bob@198.51.100.20:5070"))
}

fn bobs_dialog() -> Dialog {
    Dialog::uas(&req(INVITE_AT_BOB), &Tag::new("bob-tag"), bob_contact()).unwrap()
}

#[test]
fn the_uas_keeps_the_record_route_order_and_the_callers_contact() {
    let d = bobs_dialog();
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(d.id().call_id, CallId::new("call-1@192.0.2.10"));
    assert_eq!(d.id().local_tag, Tag::new("bob-tag"));
    assert_eq!(d.id().remote_tag, Tag::new("alice-tag"));
    assert_eq!(d.route_set(), &[uri("sip:p2.example;lr"), uri("sip:p1.example;lr")]);
    assert_eq!(d.remote_target(), &uri("sip:alice@192.0.2.10:5060"));
    assert_eq!(d.local_uri(), &uri("sip:bob@biloxi.example"));
    assert_eq!(d.remote_uri(), &uri("sip:alice@atlanta.example"));
    assert_eq!(d.remote_cseq(), Some(314));
    assert_eq!(d.local_cseq(), 1);
}

#[test]
fn the_uas_confirms_on_its_2xx() {
    let mut d = bobs_dialog();
    d.confirm();
    assert_eq!(d.state(), DialogState::Confirmed);
}

#[test]
fn requests_that_cannot_create_a_uas_dialog_are_refused() {
    let tag = Tag::new("bob-tag");
    let tagged = req(&INVITE_AT_BOB.replace("To: <sip:bob@biloxi.example>", "To: <sip:bob@biloxi.example>;tag=x"));
    assert_eq!(Dialog::uas(&tagged, &tag, bob_contact()), Err(DialogError::AlreadyInDialog));
    let no_contact = req(&INVITE_AT_BOB.replace("Contact: <sip:alice@192.0.2.10:5060>\r\n", ""));
    assert_eq!(Dialog::uas(&no_contact, &tag, bob_contact()), Err(DialogError::MissingContact));
    let no_from_tag = req(&INVITE_AT_BOB.replace(";tag=alice-tag", ""));
    assert_eq!(Dialog::uas(&no_from_tag, &tag, bob_contact()), Err(DialogError::MissingTag("From")));
    let message = req(&INVITE_AT_BOB.replace("INVITE", "MESSAGE"));
    assert_eq!(Dialog::uas(&message, &tag, bob_contact()), Err(DialogError::NotDialogCreatingMethod(Method::Message)));
}

#[test]
fn a_request_older_than_the_last_is_refused_and_changes_nothing() {
    let mut d = bobs_dialog();
    d.confirm();
    d.handle_request(&in_dialog_at_bob("INFO", 316, "")).unwrap();
    assert_eq!(d.remote_cseq(), Some(316));
    let before = d.clone();
    let late = in_dialog_at_bob("INVITE", 315, "Contact: <sip:alice@203.0.113.1>\r\n");
    assert_eq!(d.handle_request(&late), Err(DialogError::CSeqOutOfOrder { received: 315, last: 316 }));
    assert_eq!(d, before);
    // The ACK of an older re-INVITE is not out of order: it reuses that INVITE's CSeq.
    d.handle_request(&in_dialog_at_bob("ACK", 315, "")).unwrap();
    assert_eq!(d.remote_cseq(), Some(316));
    // Gaps are fine: only order matters.
    d.handle_request(&in_dialog_at_bob("INFO", 400, "")).unwrap();
    assert_eq!(d.remote_cseq(), Some(400));
}

#[test]
fn the_first_in_dialog_request_of_a_uac_sets_the_remote_cseq() {
    let mut d = Dialog::uac(&req(INVITE), &ok_with_routes()).unwrap();
    assert_eq!(d.remote_cseq(), None);
    // Bob's own CSeq space starts anywhere, even below Alice's.
    let from_bob = req("BYE sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.20:5070;branch=z9hG4bKbye\r\n\
From: <sip:bob@biloxi.example>;tag=bob-tag\r\n\
To: <sip:alice@atlanta.example>;tag=alice-tag\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 7 BYE\r\n\
Content-Length: 0\r\n\r\n");
    assert!(d.matches(&from_bob.clone().into()));
    d.handle_request(&from_bob).unwrap();
    assert_eq!(d.remote_cseq(), Some(7));
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn re_invite_and_update_refresh_the_target_and_info_does_not() {
    let mut d = bobs_dialog();
    d.confirm();
    d.handle_request(&in_dialog_at_bob("INFO", 315, "Contact: <sip:alice@203.0.113.1>\r\n")).unwrap();
    assert_eq!(d.remote_target(), &uri("sip:alice@192.0.2.10:5060"));
    d.handle_request(&in_dialog_at_bob("INVITE", 316, "Contact: <sip:alice@203.0.113.2:5062>\r\n")).unwrap();
    assert_eq!(d.remote_target(), &uri("sip:alice@203.0.113.2:5062"));
    d.handle_request(&in_dialog_at_bob("UPDATE", 317, "Contact: <sip:alice@203.0.113.3>;expires=60\r\n")).unwrap();
    assert_eq!(d.remote_target(), &uri("sip:alice@203.0.113.3"));
    // A target refresh without Contact keeps the target.
    d.handle_request(&in_dialog_at_bob("UPDATE", 318, "")).unwrap();
    assert_eq!(d.remote_target(), &uri("sip:alice@203.0.113.3"));
    assert_eq!(d.route_set().len(), 2, "target refreshes never change the route set");
}

#[test]
fn bye_ends_the_dialog_and_later_requests_get_terminated() {
    let mut d = bobs_dialog();
    d.confirm();
    d.handle_request(&in_dialog_at_bob("BYE", 315, "")).unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(d.handle_request(&in_dialog_at_bob("INFO", 316, "")), Err(DialogError::Terminated));
}

#[test]
fn requests_of_other_dialogs_do_not_match() {
    let mut d = bobs_dialog();
    let other = req(&in_dialog_at_bob("INFO", 315, "").to_string().replace("alice-tag", "mallory-tag"));
    assert!(!d.matches(&other.clone().into()));
    assert_eq!(d.handle_request(&other), Err(DialogError::NotThisDialog));
    let untagged = req(&in_dialog_at_bob("INFO", 315, "").to_string().replace(";tag=bob-tag", ""));
    assert_eq!(d.handle_request(&untagged), Err(DialogError::MissingTag("To")));
    assert!(d.matches(&in_dialog_at_bob("INFO", 315, "").into()));
}
