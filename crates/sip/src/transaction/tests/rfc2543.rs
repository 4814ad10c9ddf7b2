//! §17.2.3's fallback matching for requests whose branch lacks the magic cookie.

use super::support::*;
use crate::ids::Tag;
use crate::message::response_to;
use crate::transaction::{Incoming, TxState};
use rsip::{Request, StatusCode};
use std::time::Instant;

const OLD_VIA: &str = "SIP/2.0/UDP 192.0.2.10:5060";

fn old(method: &str, cseq: u32, to_tag: Option<&str>) -> Request {
    req(&request_text(method, OLD_VIA, cseq, to_tag))
}

#[test]
fn invite_retransmission_and_the_ack_of_a_non_2xx_match_without_a_branch() {
    let t0 = Instant::now();
    let mut layer = layer();
    let Some(Incoming::Request { id, req, .. }) =
        layer.handle_request(t0, old("INVITE", 1, None), udp(PHONE))
    else {
        panic!()
    };
    let trying = drain(&mut layer);
    assert!(
        layer
            .handle_request(t0 + ms(500), old("INVITE", 1, None), udp(PHONE))
            .is_none()
    );
    assert_eq!(drain(&mut layer)[0].bytes, trying[0].bytes);

    layer
        .send_response(
            t0 + secs(1),
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u1"))),
        )
        .unwrap();
    drain(&mut layer);
    assert!(
        layer
            .handle_request(t0 + secs(1), old("ACK", 1, Some("u1")), udp(PHONE))
            .is_none()
    );
    assert_eq!(layer.server_state(&id), Some(TxState::Confirmed));

    // A new INVITE in the same call (another CSeq) is a new transaction.
    assert!(matches!(
        layer.handle_request(t0 + secs(2), old("INVITE", 2, Some("u1")), udp(PHONE)),
        Some(Incoming::Request { .. })
    ));
}

#[test]
fn a_branch_without_the_cookie_takes_part_in_the_via_comparison() {
    let t0 = Instant::now();
    let mut layer = layer();
    let with = |b: &str| {
        req(&request_text(
            "OPTIONS",
            &format!("{OLD_VIA};branch={b}"),
            1,
            None,
        ))
    };
    assert!(layer.handle_request(t0, with("1"), udp(PHONE)).is_some());
    assert!(
        layer.handle_request(t0, with("1"), udp(PHONE)).is_none(),
        "retransmission"
    );
    assert!(
        layer.handle_request(t0, with("2"), udp(PHONE)).is_some(),
        "another top Via"
    );
}

#[test]
fn non_invite_matching_includes_cseq_method_and_to_tag() {
    let t0 = Instant::now();
    let mut layer = layer();
    assert!(
        layer
            .handle_request(t0, old("OPTIONS", 7, None), udp(PHONE))
            .is_some()
    );
    assert!(
        layer
            .handle_request(t0 + ms(500), old("OPTIONS", 7, None), udp(PHONE))
            .is_none()
    );
    assert!(
        layer
            .handle_request(t0, old("OPTIONS", 8, None), udp(PHONE))
            .is_some(),
        "other CSeq"
    );
    assert!(
        layer
            .handle_request(t0, old("MESSAGE", 7, None), udp(PHONE))
            .is_some(),
        "other method"
    );
    assert!(
        layer
            .handle_request(t0, old("OPTIONS", 7, Some("x")), udp(PHONE))
            .is_some(),
        "other To tag"
    );
    assert_eq!(layer.server_transactions(), 4);
}

#[test]
fn cancel_matches_the_pending_invite_and_a_2xx_ack_goes_to_the_tu() {
    let t0 = Instant::now();
    let mut layer = layer();
    let Some(Incoming::Request { id, req, .. }) =
        layer.handle_request(t0, old("INVITE", 3, None), udp(PHONE))
    else {
        panic!()
    };
    drain(&mut layer);
    match layer.handle_request(t0 + secs(1), old("CANCEL", 3, None), udp(PHONE)) {
        Some(Incoming::Cancel { invite, .. }) => assert_eq!(invite, id),
        other => panic!("expected Cancel, got {other:?}"),
    }
    assert_eq!(start_line(&drain(&mut layer)[0]), "SIP/2.0 200 OK");
    assert!(
        layer
            .handle_request(t0 + secs(1), old("CANCEL", 4, None), udp(PHONE))
            .is_none()
    );
    assert!(start_line(&drain(&mut layer)[0]).starts_with("SIP/2.0 481"));

    // Suppose the TU answered 200 anyway: in Accepted the matching ACK is the TU's.
    layer
        .send_response(
            t0 + secs(1),
            &id,
            response_to(&req, StatusCode::OK, Some(&Tag::new("u9"))),
        )
        .unwrap();
    let ack = layer.handle_request(t0 + secs(2), old("ACK", 3, Some("u9")), udp(PHONE));
    assert!(matches!(ack, Some(Incoming::Ack { .. })), "{ack:?}");
}
