//! Server INVITE transactions (§17.2.1, RFC 6026).

use super::support::*;
use crate::ids::Tag;
use crate::message::{SipHeaders, response_to};
use crate::transaction::{Incoming, ServerTxId, TransactionLayer, TxError, TxEvent, TxState};
use crate::transport::Peer;
use rsip::{Request, SipMessage, StatusCode};
use std::time::Instant;

const BRANCH: &str = "z9hG4bKsrvinv1";

fn via(branch: &str) -> String {
    format!("SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport")
}

/// An INVITE arrives from the phone; returns its transaction and the request the TU got.
fn incoming_invite(
    layer: &mut TransactionLayer,
    now: Instant,
    from: Peer,
) -> (ServerTxId, Request) {
    match layer.handle_request(now, request("INVITE", BRANCH), from) {
        Some(Incoming::Request { id, req, from: f }) => {
            assert_eq!(f, from);
            (id, req)
        }
        other => panic!("expected a new request, got {other:?}"),
    }
}

fn ack(branch: &str, to_tag: &str) -> Request {
    req(&request_text("ACK", &via(branch), 1, Some(to_tag)))
}

#[test]
fn a_new_invite_gets_100_trying_at_once_and_goes_to_the_tu() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    assert_eq!(layer.server_state(&id), Some(TxState::Proceeding));
    let sent = drain(&mut layer);
    assert_eq!(sent.len(), 1);
    assert_eq!(start_line(&sent[0]), "SIP/2.0 100 Trying");
    assert_eq!(sent[0].peer, udp(PHONE));
    let SipMessage::Response(trying) = parse(&sent[0].bytes) else {
        panic!()
    };
    assert_eq!(
        trying.to_tag().unwrap(),
        None,
        "100 Trying carries no To tag"
    );
    // The TU sees the request as stamped (rport filled in).
    assert!(
        req.via_header_value().contains("rport=5060"),
        "{}",
        req.via_header_value()
    );
    assert_eq!(layer.poll_timeout(), None, "Proceeding runs no timer");
}

trait ViaValue {
    fn via_header_value(&self) -> String;
}

impl ViaValue for Request {
    fn via_header_value(&self) -> String {
        use rsip::headers::UntypedHeader;
        use rsip::message::HeadersExt;
        self.via_header().unwrap().value().to_owned()
    }
}

#[test]
fn responses_go_to_the_nat_address_from_rport() {
    let t0 = Instant::now();
    let mut layer = layer();
    let nat = udp("203.0.113.7:40000");
    let (id, req) = incoming_invite(&mut layer, t0, nat);
    assert_eq!(drain(&mut layer)[0].peer, nat);
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::Ringing, Some(&Tag::new("u1"))),
        )
        .unwrap();
    assert_eq!(drain(&mut layer)[0].peer, nat);
}

#[test]
fn retransmitted_invite_gets_the_latest_provisional_again() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    let trying = drain(&mut layer);
    assert!(
        layer
            .handle_request(t0 + ms(500), request("INVITE", BRANCH), udp(PHONE))
            .is_none()
    );
    assert_eq!(drain(&mut layer)[0].bytes, trying[0].bytes);

    layer
        .send_response(
            t0 + secs(1),
            &id,
            response_to(&req, StatusCode::Ringing, Some(&Tag::new("u1"))),
        )
        .unwrap();
    let ringing = drain(&mut layer);
    assert_eq!(start_line(&ringing[0]), "SIP/2.0 180 Ringing");
    assert!(
        layer
            .handle_request(t0 + secs(2), request("INVITE", BRANCH), udp(PHONE))
            .is_none()
    );
    assert_eq!(drain(&mut layer)[0].bytes, ringing[0].bytes);
}

#[test]
fn non_2xx_final_is_retransmitted_on_timer_g_capped_at_t2_until_timer_h() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    drain(&mut layer);
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u1"))),
        )
        .unwrap();
    let busy = drain(&mut layer);
    assert!(start_line(&busy[0]).starts_with("SIP/2.0 486 "));
    assert_eq!(layer.server_state(&id), Some(TxState::Completed));

    let trace = run_until(&mut layer, t0, secs(100));
    assert_eq!(
        trace.sent_at(),
        at_ms(&[
            500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ])
    );
    assert!(
        trace
            .sent
            .iter()
            .all(|(_, t)| t.bytes == busy[0].bytes && t.peer == udp(PHONE))
    );
    assert_eq!(
        trace.events,
        vec![(secs(32), TxEvent::ServerTimeout { id })]
    );
    assert_eq!(layer.server_state(&id), None);
}

#[test]
fn invite_retransmission_in_completed_gets_the_final_again() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::NotFound, Some(&Tag::new("u1"))),
        )
        .unwrap();
    let sent = drain(&mut layer);
    assert!(
        layer
            .handle_request(t0 + ms(100), request("INVITE", BRANCH), udp(PHONE))
            .is_none()
    );
    let again = drain(&mut layer);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].bytes, sent.last().unwrap().bytes);
}

#[test]
fn ack_is_absorbed_and_confirmed_waits_timer_i() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u1"))),
        )
        .unwrap();
    drain(&mut layer);
    let trace = run_until(&mut layer, t0, ms(600));
    assert_eq!(trace.sent_at(), at_ms(&[500]));

    assert!(
        layer
            .handle_request(t0 + secs(1), ack(BRANCH, "u1"), udp(PHONE))
            .is_none(),
        "absorbed"
    );
    assert_eq!(layer.server_state(&id), Some(TxState::Confirmed));
    assert!(
        layer
            .handle_request(t0 + secs(2), ack(BRANCH, "u1"), udp(PHONE))
            .is_none(),
        "ACK retransmission"
    );
    assert!(
        layer
            .handle_request(t0 + secs(2), request("INVITE", BRANCH), udp(PHONE))
            .is_none()
    );
    assert!(drain(&mut layer).is_empty(), "Confirmed sends nothing");

    let trace = run_until(&mut layer, t0, secs(100));
    assert!(
        trace.sent.is_empty() && trace.events.is_empty(),
        "no Timer G or H after the ACK: {trace:?}"
    );
    assert_eq!(layer.server_state(&id), None);
}

#[test]
fn timer_i_is_t4_on_udp() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u1"))),
        )
        .unwrap();
    layer.handle_request(t0 + secs(1), ack(BRANCH, "u1"), udp(PHONE));
    assert_eq!(layer.poll_timeout(), Some(t0 + secs(6)));
    layer.handle_timeout(t0 + secs(6));
    assert_eq!(layer.server_state(&id), None);
}

#[test]
fn reliable_transport_runs_no_timer_g_keeps_h_and_ends_at_the_ack() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, tcp(PHONE));
    assert_eq!(
        drain(&mut layer)[0].peer,
        tcp(PHONE),
        "TCP answers on the same connection"
    );
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u1"))),
        )
        .unwrap();
    assert_eq!(drain(&mut layer).len(), 1);
    assert_eq!(layer.poll_timeout(), Some(t0 + secs(32)), "Timer H only");
    assert!(
        layer
            .handle_request(t0 + secs(1), ack(BRANCH, "u1"), tcp(PHONE))
            .is_none()
    );
    assert_eq!(layer.server_state(&id), None, "Timer I = 0");

    let (id, req) = incoming_invite(&mut layer, t0 + secs(2), tcp(PHONE));
    layer
        .send_response(
            t0 + secs(2),
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u2"))),
        )
        .unwrap();
    drain(&mut layer);
    let trace = run_until(&mut layer, t0, secs(100));
    assert!(trace.sent.is_empty());
    assert_eq!(
        trace.events,
        vec![(secs(34), TxEvent::ServerTimeout { id })]
    );
}

#[test]
fn two_xx_moves_to_accepted_where_the_tu_retransmits_and_gets_the_ack() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    drain(&mut layer);
    let ok = response_to(&req, StatusCode::OK, Some(&Tag::new("u1")));
    layer.send_response(t0, &id, ok.clone()).unwrap();
    assert_eq!(drain(&mut layer).len(), 1);
    assert_eq!(layer.server_state(&id), Some(TxState::Accepted));

    // INVITE retransmissions are absorbed: the TU owns 2xx retransmission.
    assert!(
        layer
            .handle_request(t0 + ms(100), request("INVITE", BRANCH), udp(PHONE))
            .is_none()
    );
    assert!(drain(&mut layer).is_empty());
    // The TU's own 2xx retransmission passes; a late non-2xx does not.
    layer.send_response(t0 + ms(500), &id, ok.clone()).unwrap();
    assert_eq!(drain(&mut layer).len(), 1);
    let err = layer.send_response(
        t0 + ms(500),
        &id,
        response_to(&req, StatusCode::BusyHere, None),
    );
    assert_eq!(err, Err(TxError::FinalAlreadySent { status: 486 }));

    // The 2xx ACK (a new branch) is the TU's.
    let two_xx_ack = ack("z9hG4bKack2xx", "u1");
    match layer.handle_request(t0 + secs(1), two_xx_ack, udp(PHONE)) {
        Some(Incoming::Ack { req, from }) => {
            assert_eq!(from, udp(PHONE));
            assert_eq!(req.branch().unwrap().unwrap().as_str(), "z9hG4bKack2xx");
        }
        other => panic!("expected the ACK for the TU, got {other:?}"),
    }
    // An ACK that does match the transaction in Accepted is the TU's too (RFC 6026).
    assert!(matches!(
        layer.handle_request(t0 + secs(1), ack(BRANCH, "u1"), udp(PHONE)),
        Some(Incoming::Ack { .. })
    ));

    // Timer L: 64*T1, quietly.
    let trace = run_until(&mut layer, t0, secs(100));
    assert!(trace.sent.is_empty() && trace.events.is_empty());
    assert_eq!(layer.server_state(&id), None);
    assert_eq!(
        layer.send_response(t0 + secs(40), &id, ok),
        Err(TxError::UnknownTransaction)
    );
}

#[test]
fn no_second_final_in_completed() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming_invite(&mut layer, t0, udp(PHONE));
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u1"))),
        )
        .unwrap();
    let err = layer.send_response(
        t0,
        &id,
        response_to(&req, StatusCode::OK, Some(&Tag::new("u1"))),
    );
    assert_eq!(err, Err(TxError::FinalAlreadySent { status: 200 }));
    let err = layer.send_response(
        t0,
        &id,
        response_to(&req, StatusCode::Ringing, Some(&Tag::new("u1"))),
    );
    assert_eq!(err, Err(TxError::FinalAlreadySent { status: 180 }));
}
