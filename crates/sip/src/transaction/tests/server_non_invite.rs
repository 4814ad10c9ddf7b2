//! Server non-INVITE transactions (§17.2.2) and where their responses go (§18.2.2).

use super::support::*;
use crate::ids::Tag;
use crate::message::response_to;
use crate::transaction::{Incoming, ServerTxId, TransactionLayer, TxError, TxState};
use crate::transport::Peer;
use rsip::{Request, StatusCode};
use std::time::Instant;

const BRANCH: &str = "z9hG4bKreg1";

fn register(branch: &str) -> Request {
    request("REGISTER", branch)
}

fn incoming(
    layer: &mut TransactionLayer,
    now: Instant,
    req: Request,
    from: Peer,
) -> (ServerTxId, Request) {
    match layer.handle_request(now, req, from) {
        Some(Incoming::Request { id, req, .. }) => (id, req),
        other => panic!("expected a new request, got {other:?}"),
    }
}

#[test]
fn retransmissions_are_absorbed_in_trying_and_answered_with_the_final_until_timer_j() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming(&mut layer, t0, register(BRANCH), udp(PHONE));
    assert!(
        drain(&mut layer).is_empty(),
        "no automatic 100 for non-INVITE"
    );
    assert_eq!(layer.server_state(&id), Some(TxState::Trying));
    assert!(
        layer
            .handle_request(t0 + ms(500), register(BRANCH), udp(PHONE))
            .is_none()
    );
    assert!(drain(&mut layer).is_empty(), "Trying absorbs silently");

    layer
        .send_response(
            t0 + ms(600),
            &id,
            response_to(&req, StatusCode::OK, Some(&Tag::new("r1"))),
        )
        .unwrap();
    let ok = drain(&mut layer);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].peer, udp(PHONE));
    assert_eq!(layer.server_state(&id), Some(TxState::Completed));
    for n in 1..=3 {
        assert!(
            layer
                .handle_request(t0 + secs(n), register(BRANCH), udp(PHONE))
                .is_none()
        );
        assert_eq!(drain(&mut layer)[0].bytes, ok[0].bytes);
    }
    let err = layer.send_response(
        t0 + secs(4),
        &id,
        response_to(&req, StatusCode::OK, Some(&Tag::new("r1"))),
    );
    assert_eq!(err, Err(TxError::FinalAlreadySent { status: 200 }));

    // Timer J = 64*T1 after the final (not after the request).
    let trace = run_until(&mut layer, t0, secs(32) + ms(599));
    assert!(trace.sent.is_empty() && trace.events.is_empty());
    assert_eq!(layer.server_state(&id), Some(TxState::Completed));
    layer.handle_timeout(t0 + secs(32) + ms(600));
    assert_eq!(layer.server_state(&id), None);
    assert_eq!(layer.poll_timeout(), None);

    // After Timer J the same request is new again.
    let (id2, _) = incoming(&mut layer, t0 + secs(40), register(BRANCH), udp(PHONE));
    assert_ne!(id, id2);
}

#[test]
fn a_provisional_is_resent_on_retransmission_in_proceeding() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming(&mut layer, t0, request("MESSAGE", BRANCH), udp(PHONE));
    layer
        .send_response(t0, &id, response_to(&req, StatusCode::Trying, None))
        .unwrap();
    let trying = drain(&mut layer);
    assert_eq!(layer.server_state(&id), Some(TxState::Proceeding));
    assert!(
        layer
            .handle_request(t0 + ms(500), request("MESSAGE", BRANCH), udp(PHONE))
            .is_none()
    );
    assert_eq!(drain(&mut layer)[0].bytes, trying[0].bytes);
}

#[test]
fn reliable_transport_ends_at_the_final() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, req) = incoming(&mut layer, t0, register(BRANCH), tcp(PHONE));
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::OK, Some(&Tag::new("r1"))),
        )
        .unwrap();
    assert_eq!(drain(&mut layer)[0].peer, tcp(PHONE));
    assert_eq!(layer.server_state(&id), None, "Timer J = 0");
    assert_eq!(layer.server_transactions(), 0);
}

#[test]
fn an_unanswered_request_is_dropped_after_64_t1() {
    let t0 = Instant::now();
    let mut layer = layer();
    let (id, _) = incoming(&mut layer, t0, register(BRANCH), udp(PHONE));
    let trace = run_until(&mut layer, t0, secs(100));
    assert!(trace.sent.is_empty() && trace.events.is_empty());
    assert_eq!(layer.server_state(&id), None);
}

#[test]
fn udp_responses_follow_received_and_sent_by_port_without_rport() {
    let t0 = Instant::now();
    let mut layer = layer();
    let via = "SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKnat";
    let (id, req) = incoming(
        &mut layer,
        t0,
        req_via("OPTIONS", via),
        udp("198.51.100.9:61000"),
    );
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::OK, Some(&Tag::new("o"))),
        )
        .unwrap();
    assert_eq!(drain(&mut layer)[0].peer, udp("198.51.100.9:5070"));
}

#[test]
fn udp_responses_to_a_named_sent_by_go_to_the_source_with_rport() {
    let t0 = Instant::now();
    let mut layer = layer();
    let via = "SIP/2.0/UDP phone.example.test;branch=z9hG4bKnamed;rport";
    let (id, req) = incoming(
        &mut layer,
        t0,
        req_via("OPTIONS", via),
        udp("198.51.100.9:61000"),
    );
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::OK, Some(&Tag::new("o"))),
        )
        .unwrap();
    assert_eq!(drain(&mut layer)[0].peer, udp("198.51.100.9:61000"));
}

fn req_via(method: &str, via: &str) -> Request {
    req(&request_text(method, via, 1, None))
}
