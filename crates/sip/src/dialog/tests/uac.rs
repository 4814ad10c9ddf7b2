//! The caller's side: dialogs made from our INVITE and the responses to it.

use super::*;
use crate::dialog::{Dialog, DialogError, DialogId, DialogState};
use crate::ids::{CallId, Tag};

#[test]
fn a_200_makes_a_confirmed_dialog_with_the_record_route_reversed() {
    let d = Dialog::uac(&req(INVITE), &ok_with_routes()).unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(
        d.id(),
        &DialogId {
            call_id: CallId::new("call-1@192.0.2.10"),
            local_tag: Tag::new("alice-tag"),
            remote_tag: Tag::new("bob-tag"),
        }
    );
    assert_eq!(d.route_set(), &[uri("sip:p1.example;lr"), uri("sip:p2.example;lr")]);
    assert_eq!(d.remote_target(), &uri("sip:bob@198.51.100.20:5070"));
    assert_eq!(d.local_uri(), &uri("sip:alice@atlanta.example"));
    assert_eq!(d.remote_uri(), &uri("sip:bob@biloxi.example"));
    assert_eq!(d.local_cseq(), 315, "the next request follows the INVITE's 314");
    assert_eq!(d.remote_cseq(), None);
    assert_eq!(d.local_contact().uri, uri("sip:alice@192.0.2.10:5060"));
    assert!(!d.is_secure());
}

#[test]
fn a_tagged_180_makes_an_early_dialog_that_the_200_confirms() {
    // The 180 has no Contact and no Record-Route: the target falls back to the
    // INVITE's Request-URI until the 200 names one, and the 200 fixes the route set.
    let ringing = response_to_invite("180 Ringing", "");
    let mut d = Dialog::uac(&req(INVITE), &ringing).unwrap();
    assert_eq!(d.state(), DialogState::Early);
    assert_eq!(d.remote_target(), &uri("sip:bob@biloxi.example"));
    assert!(d.route_set().is_empty());

    d.handle_response(&ok_with_routes()).unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.remote_target(), &uri("sip:bob@198.51.100.20:5070"));
    assert_eq!(d.route_set(), &[uri("sip:p1.example;lr"), uri("sip:p2.example;lr")]);
}

#[test]
fn responses_that_cannot_make_a_dialog_are_refused() {
    let invite = req(INVITE);
    let trying = resp(&INVITE_RESPONSE_WITHOUT_TAG.replace("STATUS", "100 Trying"));
    assert_eq!(Dialog::uac(&invite, &trying), Err(DialogError::NotDialogCreatingResponse(100)));
    let busy = response_to_invite("486 Busy Here", "");
    assert_eq!(Dialog::uac(&invite, &busy), Err(DialogError::NotDialogCreatingResponse(486)));
    let untagged = resp(&INVITE_RESPONSE_WITHOUT_TAG.replace("STATUS", "180 Ringing"));
    assert_eq!(Dialog::uac(&invite, &untagged), Err(DialogError::MissingTag("To")));
    let no_contact = response_to_invite("200 OK", "");
    assert_eq!(Dialog::uac(&invite, &no_contact), Err(DialogError::MissingContact));
}

const INVITE_RESPONSE_WITHOUT_TAG: &str = "SIP/2.0 STATUS\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport\r\n\
From: <sip:alice@atlanta.example>;tag=alice-tag\r\n\
To: <sip:bob@biloxi.example>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 314 INVITE\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn a_response_to_another_request_is_refused() {
    let ok = ok_with_routes();
    let other_call = req(&INVITE.replace("call-1@", "call-2@"));
    assert_eq!(Dialog::uac(&other_call, &ok), Err(DialogError::ResponseMismatch));
    let other_cseq = req(&INVITE.replace("CSeq: 314", "CSeq: 315"));
    assert_eq!(Dialog::uac(&other_cseq, &ok), Err(DialogError::ResponseMismatch));
    let options = req(&INVITE.replace("INVITE", "OPTIONS"));
    assert_eq!(Dialog::uac(&options, &ok), Err(DialogError::NotDialogCreatingMethod(rsip::Method::Options)));
}

#[test]
fn a_forked_response_with_another_to_tag_is_not_this_dialog() {
    let mut d = Dialog::uac(&req(INVITE), &response_to_invite("180 Ringing", "")).unwrap();
    let text = crate::encode(&ok_with_routes().into());
    let forked = resp(&String::from_utf8(text).unwrap().replace("bob-tag", "carol-tag"));
    assert!(!d.matches(&forked.clone().into()));
    assert_eq!(d.handle_response(&forked), Err(DialogError::NotThisDialog));
    assert_eq!(d.state(), DialogState::Early);
    // The fork is a dialog of its own.
    let fork = Dialog::uac(&req(INVITE), &forked).unwrap();
    assert_eq!(fork.id().remote_tag, Tag::new("carol-tag"));
}

#[test]
fn a_failed_invite_ends_the_early_dialog() {
    let mut d = Dialog::uac(&req(INVITE), &response_to_invite("183 Session Progress", "")).unwrap();
    d.handle_response(&response_to_invite("603 Decline", "")).unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
}

/// A response to an in-dialog request Alice sent, as she receives it.
fn in_dialog_response(status: &str, cseq: u32, method: &str) -> rsip::Response {
    resp(&format!(
        "SIP/2.0 {status}\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKx\r\n\
From: <sip:alice@atlanta.example>;tag=alice-tag\r\n\
To: <sip:bob@biloxi.example>;tag=bob-tag\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:bob@203.0.113.7:5080>\r\n\
Content-Length: 0\r\n\r\n"
    ))
}

#[test]
fn a_2xx_to_a_target_refresh_moves_the_target_and_others_do_not() {
    let mut d = Dialog::uac(&req(INVITE), &ok_with_routes()).unwrap();
    d.handle_response(&in_dialog_response("200 OK", 315, "INFO")).unwrap();
    assert_eq!(d.remote_target(), &uri("sip:bob@198.51.100.20:5070"), "INFO refreshes nothing");
    d.handle_response(&in_dialog_response("200 OK", 316, "INVITE")).unwrap();
    assert_eq!(d.remote_target(), &uri("sip:bob@203.0.113.7:5080"));
    // A re-INVITE's 2xx does not touch the route set fixed by the first 2xx.
    assert_eq!(d.route_set().len(), 2);
    assert_eq!(d.state(), DialogState::Confirmed);
}

#[test]
fn bye_answers_and_481_end_the_dialog_but_a_challenge_does_not() {
    let mut d = Dialog::uac(&req(INVITE), &ok_with_routes()).unwrap();
    d.handle_response(&in_dialog_response("401 Unauthorized", 315, "BYE")).unwrap();
    assert_eq!(d.state(), DialogState::Confirmed, "the BYE is retried with credentials");
    d.handle_response(&in_dialog_response("200 OK", 316, "BYE")).unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
    assert_eq!(d.create_request(rsip::Method::Bye, via("z9hG4bKb")), Err(DialogError::Terminated));

    let mut d = Dialog::uac(&req(INVITE), &ok_with_routes()).unwrap();
    d.handle_response(&in_dialog_response("481 Call/Transaction Does Not Exist", 315, "INFO")).unwrap();
    assert_eq!(d.state(), DialogState::Terminated);
}

#[test]
fn sips_over_tls_makes_a_secure_dialog() {
    let invite = req(&INVITE
        .replace("INVITE sip:bob", "INVITE sips:bob")
        .replace("SIP/2.0/UDP 192.0.2.10:5060", "SIP/2.0/TLS 192.0.2.10:5061"));
    assert!(Dialog::uac(&invite, &ok_with_routes()).unwrap().is_secure());
    // SIPS alone, over UDP, is not.
    let over_udp = req(&INVITE.replace("INVITE sip:bob", "INVITE sips:bob"));
    assert!(!Dialog::uac(&over_udp, &ok_with_routes()).unwrap().is_secure());
}
