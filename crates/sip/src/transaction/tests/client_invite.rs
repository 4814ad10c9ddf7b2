//! Client INVITE transactions (§17.1.1, RFC 6026).

use super::support::*;
use crate::message::SipHeaders;
use crate::transaction::client_invite::ClientInvite;
use crate::transaction::{TimerConfig, TxEvent, TxState};
use rsip::message::HeadersExt;
use rsip::{Header, Method, SipMessage};
use std::time::Instant;

const BRANCH: &str = "z9hG4bKinvite1";

#[test]
fn timer_a_doubles_until_timer_b_gives_up_at_64_t1() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("INVITE", BRANCH), udp(SERVER))
        .unwrap();
    let first = drain(&mut layer);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].peer, udp(SERVER));
    assert_eq!(start_line(&first[0]), "INVITE sip:bob@pbx.test SIP/2.0");

    let trace = run_until(&mut layer, t0, secs(100));
    assert_eq!(
        trace.sent_at(),
        at_ms(&[500, 1_500, 3_500, 7_500, 15_500, 31_500])
    );
    assert!(
        trace.sent.iter().all(|(_, t)| t.bytes == first[0].bytes),
        "retransmissions are the same bytes"
    );
    assert_eq!(
        trace.events,
        vec![(secs(32), TxEvent::ClientTimeout { id })]
    );
    assert_eq!(layer.client_state(&id), None);
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn the_machine_alone_runs_the_same_schedule() {
    let cfg = TimerConfig::default();
    let t0 = Instant::now();
    let (mut tx, _) = ClientInvite::new(t0, &cfg, false, request("INVITE", BRANCH)).unwrap();
    let (mut sent, mut timed_out) = (Vec::new(), None);
    while let Some(at) = tx.next_deadline() {
        let out = tx.on_timer(at);
        if out.transmit.is_some() {
            sent.push(at - t0);
        }
        if out.timed_out {
            timed_out = Some(at - t0);
        }
    }
    assert_eq!(sent, at_ms(&[500, 1_500, 3_500, 7_500, 15_500, 31_500]));
    assert_eq!(timed_out, Some(secs(32)));
    assert_eq!(tx.state(), TxState::Terminated);
}

#[test]
fn reliable_transport_runs_no_timer_a_but_still_timer_b() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("INVITE", BRANCH), tcp(SERVER))
        .unwrap();
    assert_eq!(drain(&mut layer).len(), 1);
    let trace = run_until(&mut layer, t0, secs(100));
    assert!(trace.sent.is_empty(), "{:?}", trace.sent);
    assert_eq!(
        trace.events,
        vec![(secs(32), TxEvent::ClientTimeout { id })]
    );
}

#[test]
fn provisional_stops_retransmission_and_timer_b() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("INVITE", BRANCH), udp(SERVER))
        .unwrap();
    drain(&mut layer);
    let trace = run_until(&mut layer, t0, ms(600));
    assert_eq!(trace.sent_at(), at_ms(&[500]));

    let ev = layer.handle_response(
        t0 + secs(1),
        response(180, "Ringing", BRANCH, "INVITE", Some("b1")),
        udp(SERVER),
    );
    let ev = ev.expect("provisional goes to the TU");
    assert_eq!((ev.id, ev.response.status_code.code()), (id, 180));
    assert_eq!(layer.client_state(&id), Some(TxState::Proceeding));
    let again = layer.handle_response(
        t0 + secs(2),
        response(180, "Ringing", BRANCH, "INVITE", Some("b1")),
        udp(SERVER),
    );
    assert!(
        again.is_some(),
        "every provisional goes to the TU in Proceeding"
    );

    let trace = run_until(&mut layer, t0, secs(600));
    assert!(
        trace.sent.is_empty() && trace.events.is_empty(),
        "{trace:?}"
    );
    assert_eq!(layer.client_state(&id), Some(TxState::Proceeding));
}

#[test]
fn non_2xx_final_is_acked_by_the_transaction_per_17_1_1_3() {
    let t0 = Instant::now();
    let mut layer = layer();
    let invite = request("INVITE", BRANCH);
    let id = layer.send_request(t0, invite.clone(), udp(SERVER)).unwrap();
    drain(&mut layer);
    layer.handle_response(
        t0 + ms(100),
        response(180, "Ringing", BRANCH, "INVITE", Some("b1")),
        udp(SERVER),
    );

    let busy = response(486, "Busy Here", BRANCH, "INVITE", Some("b1"));
    let ev = layer
        .handle_response(t0 + secs(2), busy.clone(), udp(SERVER))
        .expect("final goes to the TU");
    assert_eq!(ev.response.status_code.code(), 486);
    let sent = drain(&mut layer);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].peer,
        udp(SERVER),
        "the ACK goes where the INVITE went"
    );

    let SipMessage::Request(ack) = parse(&sent[0].bytes) else {
        panic!("ACK is a request")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, invite.uri, "same Request-URI");
    assert_eq!(ack.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(ack.from_header().unwrap(), invite.from_header().unwrap());
    assert_eq!(
        ack.to_header().unwrap(),
        busy.to_header().unwrap(),
        "To from the response, with its tag"
    );
    assert_eq!(ack.to_tag().unwrap().unwrap().as_str(), "b1");
    assert_eq!(ack.cseq().unwrap(), (1, Method::Ack));
    let vias: Vec<_> = ack
        .headers
        .iter()
        .filter(|h| matches!(h, Header::Via(_)))
        .collect();
    assert_eq!(vias.len(), 1, "only the INVITE's top Via");
    assert_eq!(ack.branch().unwrap().unwrap().as_str(), BRANCH);
    let routes: Vec<String> = ack
        .headers
        .iter()
        .filter(|h| matches!(h, Header::Route(_)))
        .map(|h| h.to_string())
        .collect();
    let invite_routes: Vec<String> = invite
        .headers
        .iter()
        .filter(|h| matches!(h, Header::Route(_)))
        .map(|h| h.to_string())
        .collect();
    assert_eq!(routes, invite_routes);
    assert_eq!(routes.len(), 2);
    assert!(ack.body.is_empty());
    assert!(
        !ack.headers
            .iter()
            .any(|h| matches!(h, Header::Contact(_) | Header::ContentType(_)))
    );

    // A retransmitted final is re-ACKed with the same bytes, not passed up again.
    assert_eq!(layer.client_state(&id), Some(TxState::Completed));
    assert!(
        layer
            .handle_response(t0 + secs(3), busy.clone(), udp(SERVER))
            .is_none()
    );
    let resent = drain(&mut layer);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].bytes, sent[0].bytes);

    // Timer D: 32 s after the final on UDP, quietly.
    let trace = run_until(&mut layer, t0, secs(100));
    assert!(
        trace.sent.is_empty() && trace.events.is_empty(),
        "{trace:?}"
    );
    assert_eq!(layer.client_transactions(), 0);
    assert!(
        layer
            .handle_response(t0 + secs(40), busy, udp(SERVER))
            .is_none(),
        "stray after Timer D"
    );
}

#[test]
fn timer_d_is_32_seconds_on_udp() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("INVITE", BRANCH), udp(SERVER))
        .unwrap();
    layer.handle_response(
        t0 + ms(200),
        response(503, "Unavailable", BRANCH, "INVITE", Some("x")),
        udp(SERVER),
    );
    assert_eq!(layer.poll_timeout(), Some(t0 + ms(200) + secs(32)));
    layer.handle_timeout(t0 + ms(200) + secs(32) - ms(1));
    assert_eq!(layer.client_state(&id), Some(TxState::Completed));
    layer.handle_timeout(t0 + ms(200) + secs(32));
    assert_eq!(layer.client_state(&id), None);
}

#[test]
fn reliable_transport_acks_and_ends_at_once() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("INVITE", BRANCH), tcp(SERVER))
        .unwrap();
    drain(&mut layer);
    let ev = layer.handle_response(
        t0 + ms(50),
        response(404, "Not Found", BRANCH, "INVITE", Some("x")),
        tcp(SERVER),
    );
    assert!(ev.is_some());
    let sent = drain(&mut layer);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].peer, tcp(SERVER));
    assert!(start_line(&sent[0]).starts_with("ACK "));
    assert_eq!(
        layer.client_state(&id),
        None,
        "Timer D is zero on reliable transports"
    );
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn two_xx_goes_to_the_tu_each_time_in_accepted_until_timer_m() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("INVITE", BRANCH), udp(SERVER))
        .unwrap();
    drain(&mut layer);
    let ok = response(200, "OK", BRANCH, "INVITE", Some("b1"));
    let ev = layer
        .handle_response(t0 + secs(1), ok.clone(), udp(SERVER))
        .expect("2xx goes to the TU");
    assert_eq!(ev.id, id);
    assert!(
        drain(&mut layer).is_empty(),
        "the TU, not the transaction, ACKs a 2xx"
    );
    assert_eq!(layer.client_state(&id), Some(TxState::Accepted));

    assert!(
        layer
            .handle_response(t0 + secs(2), ok.clone(), udp(SERVER))
            .is_some(),
        "retransmission"
    );
    let fork = response(200, "OK", BRANCH, "INVITE", Some("b2"));
    assert!(
        layer
            .handle_response(t0 + secs(3), fork, udp(SERVER))
            .is_some(),
        "forked 2xx"
    );
    assert!(
        layer
            .handle_response(
                t0 + secs(3),
                response(180, "Ringing", BRANCH, "INVITE", Some("b3")),
                udp(SERVER)
            )
            .is_none()
    );
    assert!(
        layer
            .handle_response(
                t0 + secs(3),
                response(486, "Busy", BRANCH, "INVITE", Some("b3")),
                udp(SERVER)
            )
            .is_none()
    );
    assert!(drain(&mut layer).is_empty());

    let trace = run_until(&mut layer, t0, secs(100));
    assert!(trace.sent.is_empty() && trace.events.is_empty());
    assert_eq!(layer.client_state(&id), None, "Timer M ended it");
    assert!(
        layer
            .handle_response(t0 + secs(40), ok, udp(SERVER))
            .is_none()
    );
}

#[test]
fn timer_m_is_64_t1_after_the_first_2xx() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("INVITE", BRANCH), tcp(SERVER))
        .unwrap();
    layer.handle_response(
        t0 + secs(5),
        response(200, "OK", BRANCH, "INVITE", Some("b1")),
        tcp(SERVER),
    );
    assert_eq!(layer.poll_timeout(), Some(t0 + secs(37)));
    layer.handle_timeout(t0 + secs(37));
    assert_eq!(layer.client_state(&id), None);
}

#[test]
fn a_final_in_calling_stops_timer_a() {
    let t0 = Instant::now();
    let mut layer = layer();
    layer
        .send_request(t0, request("INVITE", BRANCH), udp(SERVER))
        .unwrap();
    drain(&mut layer);
    layer.handle_response(
        t0 + ms(700),
        response(603, "Decline", BRANCH, "INVITE", Some("d")),
        udp(SERVER),
    );
    assert_eq!(drain(&mut layer).len(), 1, "the ACK");
    let trace = run_until(&mut layer, t0, secs(100));
    assert!(
        trace.sent.is_empty(),
        "no INVITE retransmission after the final: {trace:?}"
    );
}
