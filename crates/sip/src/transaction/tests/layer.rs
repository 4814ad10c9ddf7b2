//! Matching across transactions (§17.1.3, §17.2.3), CANCEL (§9.2), the TU-facing errors,
//! and the timer heap under many transactions.

use super::support::*;
use crate::ids::{Branch, Tag};
use crate::message::{SipHeaders, response_to};
use crate::transaction::{Incoming, StatelessMessage, TxError, TxEvent, TxState};
use bytes::Bytes;
use rsip::{Method, SipMessage, StatusCode};
use std::time::Instant;

const BRANCH: &str = "z9hG4bKcancel1";

#[test]
fn cancel_of_a_pending_invite_is_answered_200_and_reported() {
    let t0 = Instant::now();
    let mut layer = layer();
    let Some(Incoming::Request {
        id: invite, req, ..
    }) = layer.handle_request(t0, request("INVITE", BRANCH), udp(PHONE))
    else {
        panic!()
    };
    layer
        .send_response(
            t0,
            &invite,
            response_to(&req, StatusCode::Ringing, Some(&Tag::new("uas"))),
        )
        .unwrap();
    drain(&mut layer);

    match layer.handle_request(t0 + secs(1), request("CANCEL", BRANCH), udp(PHONE)) {
        Some(Incoming::Cancel {
            invite: target,
            req,
            from,
        }) => {
            assert_eq!(target, invite);
            assert_eq!(req.method, Method::Cancel);
            assert_eq!(from, udp(PHONE));
        }
        other => panic!("expected Cancel, got {other:?}"),
    }
    let sent = drain(&mut layer);
    assert_eq!(sent.len(), 1);
    assert_eq!(start_line(&sent[0]), "SIP/2.0 200 OK");
    let SipMessage::Response(ok) = parse(&sent[0].bytes) else {
        panic!()
    };
    assert_eq!(ok.cseq().unwrap(), (1, Method::Cancel));
    assert_eq!(
        ok.to_tag().unwrap(),
        Some(Tag::new("uas")),
        "the To tag of the INVITE's responses"
    );

    // A retransmitted CANCEL gets the same 200 and is not reported again.
    assert!(
        layer
            .handle_request(t0 + secs(2), request("CANCEL", BRANCH), udp(PHONE))
            .is_none()
    );
    assert_eq!(drain(&mut layer)[0].bytes, sent[0].bytes);

    // The TU ends the INVITE with 487; its ACK is absorbed.
    layer
        .send_response(
            t0 + secs(1),
            &invite,
            response_to(&req, StatusCode::RequestTerminated, Some(&Tag::new("uas"))),
        )
        .unwrap();
    assert!(start_line(&drain(&mut layer)[0]).starts_with("SIP/2.0 487 "));
    let ack = req_text_ack(BRANCH, "uas");
    assert!(
        layer
            .handle_request(t0 + secs(2), ack, udp(PHONE))
            .is_none()
    );
    assert_eq!(layer.server_state(&invite), Some(TxState::Confirmed));
}

fn req_text_ack(branch: &str, to_tag: &str) -> rsip::Request {
    req(&request_text(
        "ACK",
        &format!("SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport"),
        1,
        Some(to_tag),
    ))
}

#[test]
fn unmatched_cancel_gets_481_and_nothing_for_the_tu() {
    let t0 = Instant::now();
    let mut layer = layer();
    assert!(
        layer
            .handle_request(t0, request("CANCEL", "z9hG4bKnothing"), udp(PHONE))
            .is_none()
    );
    let sent = drain(&mut layer);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        start_line(&sent[0]),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    assert_eq!(sent[0].peer, udp(PHONE));
    // A CANCEL from another sent-by does not match the INVITE either.
    layer.handle_request(t0, request("INVITE", BRANCH), udp(PHONE));
    drain(&mut layer);
    let foreign = req(&request_text(
        "CANCEL",
        &format!("SIP/2.0/UDP 192.0.2.99:5060;branch={BRANCH}"),
        1,
        None,
    ));
    assert!(
        layer
            .handle_request(t0, foreign, udp("192.0.2.99:5060"))
            .is_none()
    );
    assert!(start_line(&drain(&mut layer)[0]).starts_with("SIP/2.0 481"));
}

#[test]
fn cancel_after_the_final_is_answered_but_not_reported() {
    let t0 = Instant::now();
    let mut layer = layer();
    let Some(Incoming::Request { id, req, .. }) =
        layer.handle_request(t0, request("INVITE", BRANCH), udp(PHONE))
    else {
        panic!()
    };
    layer
        .send_response(
            t0,
            &id,
            response_to(&req, StatusCode::BusyHere, Some(&Tag::new("u"))),
        )
        .unwrap();
    drain(&mut layer);
    assert!(
        layer
            .handle_request(t0 + ms(10), request("CANCEL", BRANCH), udp(PHONE))
            .is_none()
    );
    assert_eq!(start_line(&drain(&mut layer)[0]), "SIP/2.0 200 OK");
}

#[test]
fn branch_sent_by_and_method_all_take_part_in_server_matching() {
    let t0 = Instant::now();
    let mut layer = layer();
    let a = layer.handle_request(t0, request("OPTIONS", "z9hG4bKsame"), udp(PHONE));
    let b = layer.handle_request(t0, request("MESSAGE", "z9hG4bKsame"), udp(PHONE));
    let other_host = req(&request_text(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.11:5060;branch=z9hG4bKsame",
        1,
        None,
    ));
    let c = layer.handle_request(t0, other_host, udp("192.0.2.11:5060"));
    let other_port = req(&request_text(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKsame",
        1,
        None,
    ));
    let d = layer.handle_request(t0, other_port, udp("192.0.2.10:5062"));
    for x in [&a, &b, &c, &d] {
        assert!(matches!(x, Some(Incoming::Request { .. })), "{x:?}");
    }
    assert_eq!(layer.server_transactions(), 4);
    // Case does not matter in the branch token (after the cookie) or the host.
    let shouted = req(&request_text(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKSAME",
        1,
        None,
    ));
    assert!(
        layer.handle_request(t0, shouted, udp(PHONE)).is_none(),
        "a retransmission"
    );
}

#[test]
fn responses_match_by_branch_and_cseq_method() {
    let t0 = Instant::now();
    let mut layer = layer();
    let invite = layer
        .send_request(t0, request("INVITE", BRANCH), udp(SERVER))
        .unwrap();
    let cancel = layer
        .send_request(t0 + secs(1), request("CANCEL", BRANCH), udp(SERVER))
        .unwrap();
    assert_ne!(invite, cancel);
    let ev = layer
        .handle_response(
            t0 + secs(1),
            response(200, "OK", BRANCH, "CANCEL", Some("t")),
            udp(SERVER),
        )
        .unwrap();
    assert_eq!(ev.id, cancel);
    let ev = layer
        .handle_response(
            t0 + secs(1),
            response(487, "Request Terminated", BRANCH, "INVITE", Some("t")),
            udp(SERVER),
        )
        .unwrap();
    assert_eq!(ev.id, invite);
    assert!(
        layer
            .handle_response(
                t0,
                response(200, "OK", "z9hG4bKunknown", "OPTIONS", None),
                udp(SERVER)
            )
            .is_none()
    );
    assert!(
        layer
            .handle_response(
                t0,
                response(200, "OK", BRANCH, "OPTIONS", None),
                udp(SERVER)
            )
            .is_none()
    );
}

#[test]
fn send_request_refuses_acks_missing_branches_and_duplicates() {
    let t0 = Instant::now();
    let mut layer = layer();
    let ack = req_text_ack(BRANCH, "x");
    assert_eq!(
        layer.send_request(t0, ack, udp(SERVER)),
        Err(TxError::AckIsStateless)
    );
    let no_branch = req(&request_text(
        "OPTIONS",
        "SIP/2.0/UDP 192.0.2.10:5060",
        1,
        None,
    ));
    assert_eq!(
        layer.send_request(t0, no_branch, udp(SERVER)),
        Err(TxError::MissingBranch)
    );
    let branch = Branch::random();
    layer
        .send_request(t0, request("OPTIONS", branch.as_str()), udp(SERVER))
        .unwrap();
    assert_eq!(
        layer.send_request(t0, request("OPTIONS", branch.as_str()), udp(SERVER)),
        Err(TxError::DuplicateBranch)
    );
    assert_eq!(drain(&mut layer).len(), 1);
}

#[test]
fn stateless_sends_take_messages_or_bytes() {
    let mut layer = layer();
    let ack = req_text_ack("z9hG4bK2xxack", "t");
    layer.send_stateless(ack.clone(), udp(SERVER));
    let encoded = Bytes::from(crate::serialize::encode(&SipMessage::Request(ack)));
    layer.send_stateless(StatelessMessage::from(encoded.clone()), tcp(SERVER));
    let sent = drain(&mut layer);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].bytes, encoded);
    assert_eq!((sent[1].peer, &sent[1].bytes), (tcp(SERVER), &encoded));
    assert_eq!(layer.poll_timeout(), None, "no transaction, no timer");
}

#[test]
fn transport_error_ends_client_transactions_towards_that_peer() {
    let t0 = Instant::now();
    let mut layer = layer();
    let a = layer
        .send_request(t0, request("INVITE", "z9hG4bKte1"), tcp(SERVER))
        .unwrap();
    let b = layer
        .send_request(t0, request("OPTIONS", "z9hG4bKte2"), tcp(SERVER))
        .unwrap();
    let other = layer
        .send_request(t0, request("OPTIONS", "z9hG4bKte3"), tcp("192.0.2.30:5060"))
        .unwrap();
    layer.handle_transport_error(tcp(SERVER));
    assert_eq!(
        events(&mut layer),
        vec![
            TxEvent::TransportError { id: a },
            TxEvent::TransportError { id: b }
        ]
    );
    assert_eq!(
        (layer.client_state(&a), layer.client_state(&b)),
        (None, None)
    );
    assert_eq!(layer.client_state(&other), Some(TxState::Trying));
    assert_eq!(layer.poll_timeout(), Some(t0 + secs(32)));
}

/// Thousands of transactions of every kind with interleaved deadlines: `poll_timeout` must
/// be exactly the earliest deadline (found here by a scan), must never go backwards, and
/// lazy deletion must keep the heap near the number of transactions.
#[test]
fn poll_timeout_tracks_the_earliest_of_many_deadlines() {
    let t0 = Instant::now();
    let mut layer = layer();
    let n = 3_000u64;
    for i in 0..n {
        let now = t0 + ms(i * 7);
        layer.handle_timeout(now);
        drain(&mut layer);
        events(&mut layer);
        let branch = format!("z9hG4bKmany{i}");
        match i % 4 {
            0 => {
                let Some(Incoming::Request { id, req, .. }) =
                    layer.handle_request(now, request("REGISTER", &branch), udp(PHONE))
                else {
                    panic!()
                };
                if i % 8 == 0 {
                    layer
                        .send_response(
                            now,
                            &id,
                            response_to(&req, StatusCode::OK, Some(&Tag::new("r"))),
                        )
                        .unwrap();
                }
            }
            1 => {
                let Some(Incoming::Request { id, req, .. }) =
                    layer.handle_request(now, request("INVITE", &branch), udp(PHONE))
                else {
                    panic!()
                };
                layer
                    .send_response(
                        now,
                        &id,
                        response_to(&req, StatusCode::BusyHere, Some(&Tag::new("b"))),
                    )
                    .unwrap();
            }
            2 => {
                layer
                    .send_request(now, request("INVITE", &branch), udp(SERVER))
                    .unwrap();
            }
            _ => {
                layer
                    .send_request(now, request("OPTIONS", &branch), udp(SERVER))
                    .unwrap();
                if i % 7 == 0 {
                    layer.handle_response(
                        now,
                        response(200, "OK", &branch, "OPTIONS", Some("o")),
                        udp(SERVER),
                    );
                }
            }
        }
        drain(&mut layer);
    }
    let live = layer.server_transactions() + layer.client_transactions();
    assert!(
        layer.timer_entries() <= 2 * live,
        "{} heap entries for {live} transactions",
        layer.timer_entries()
    );

    let mut last = t0;
    let mut wakes = 0;
    while let Some(at) = layer.poll_timeout() {
        let earliest = layer
            .scan_earliest_deadline()
            .expect("a heap entry means a live transaction");
        assert_eq!(at, earliest);
        assert!(at >= last, "time went backwards");
        last = at;
        layer.handle_timeout(at);
        drain(&mut layer);
        events(&mut layer);
        wakes += 1;
    }
    assert_eq!(layer.server_transactions() + layer.client_transactions(), 0);
    assert_eq!(layer.scan_earliest_deadline(), None);
    assert!(last <= t0 + secs(21) + secs(33));
    assert!(wakes > 1_000, "{wakes}");
}

#[test]
fn handle_timeout_late_fires_each_due_timer_once() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("OPTIONS", "z9hG4bKlate"), udp(SERVER))
        .unwrap();
    drain(&mut layer);
    // The driver oversleeps by 10 s: one retransmission now, not a burst, then the schedule
    // resumes from now.
    layer.handle_timeout(t0 + secs(10));
    assert_eq!(drain(&mut layer).len(), 1);
    assert_eq!(layer.poll_timeout(), Some(t0 + secs(10) + ms(1_000)));
    layer.handle_timeout(t0 + secs(60));
    assert_eq!(events(&mut layer), vec![TxEvent::ClientTimeout { id }]);
    assert!(
        drain(&mut layer).is_empty(),
        "Timer F wins over a due Timer E"
    );
}
