//! Client non-INVITE transactions (§17.1.2).

use super::support::*;
use crate::transaction::client_non_invite::ClientNonInvite;
use crate::transaction::{TimerConfig, TxEvent, TxState};
use std::time::{Duration, Instant};

const BRANCH: &str = "z9hG4bKoptions1";

#[test]
fn timer_e_doubles_capped_at_t2_until_timer_f() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("OPTIONS", BRANCH), udp(SERVER))
        .unwrap();
    assert_eq!(drain(&mut layer).len(), 1);
    let trace = run_until(&mut layer, t0, secs(100));
    assert_eq!(
        trace.sent_at(),
        at_ms(&[
            500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500
        ])
    );
    assert_eq!(
        trace.events,
        vec![(secs(32), TxEvent::ClientTimeout { id })]
    );
    assert_eq!(layer.client_transactions(), 0);
}

#[test]
fn timer_e_fires_at_t2_once_proceeding() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("OPTIONS", BRANCH), udp(SERVER))
        .unwrap();
    drain(&mut layer);
    let ev = layer.handle_response(
        t0 + ms(200),
        response(100, "Trying", BRANCH, "OPTIONS", None),
        udp(SERVER),
    );
    assert!(ev.is_some(), "provisionals go to the TU");
    assert_eq!(layer.client_state(&id), Some(TxState::Proceeding));
    let trace = run_until(&mut layer, t0, secs(100));
    // The pending E (0.5 s) still fires, then every T2.
    assert_eq!(
        trace.sent_at(),
        at_ms(&[500, 4_500, 8_500, 12_500, 16_500, 20_500, 24_500, 28_500])
    );
    assert_eq!(
        trace.events,
        vec![(secs(32), TxEvent::ClientTimeout { id })]
    );
}

#[test]
fn the_machine_alone_caps_e_at_a_custom_t2() {
    let cfg = TimerConfig {
        t1: ms(100),
        t2: ms(300),
        t4: secs(1),
    };
    let t0 = Instant::now();
    let (mut tx, _) = ClientNonInvite::new(t0, &cfg, false, request("OPTIONS", BRANCH));
    let mut sent = Vec::new();
    let mut end = Duration::ZERO;
    while let Some(at) = tx.next_deadline() {
        if tx.on_timer(at, &cfg).transmit.is_some() {
            sent.push(at - t0);
        }
        end = at - t0;
    }
    assert_eq!(&sent[..5], &at_ms(&[100, 300, 600, 900, 1_200])[..]);
    assert_eq!(end, ms(6_400), "F = 64*T1");
    assert_eq!(tx.state(), TxState::Terminated);
}

#[test]
fn final_completes_and_timer_k_absorbs_retransmissions() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("OPTIONS", BRANCH), udp(SERVER))
        .unwrap();
    drain(&mut layer);
    let ok = response(200, "OK", BRANCH, "OPTIONS", Some("s1"));
    let ev = layer
        .handle_response(t0 + secs(1), ok.clone(), udp(SERVER))
        .expect("final goes to the TU");
    assert_eq!(ev.id, id);
    assert_eq!(layer.client_state(&id), Some(TxState::Completed));
    assert!(
        layer
            .handle_response(t0 + secs(2), ok.clone(), udp(SERVER))
            .is_none(),
        "absorbed"
    );
    assert!(
        layer
            .handle_response(
                t0 + secs(2),
                response(100, "Trying", BRANCH, "OPTIONS", None),
                udp(SERVER)
            )
            .is_none()
    );
    assert!(drain(&mut layer).is_empty());

    let trace = run_until(&mut layer, t0, secs(100));
    assert!(
        trace.sent.is_empty() && trace.events.is_empty(),
        "{trace:?}"
    );
    assert_eq!(layer.client_state(&id), None);
}

#[test]
fn timer_k_is_t4_on_udp() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("OPTIONS", BRANCH), udp(SERVER))
        .unwrap();
    layer.handle_response(
        t0 + secs(1),
        response(404, "Not Found", BRANCH, "OPTIONS", Some("s1")),
        udp(SERVER),
    );
    layer.handle_timeout(t0 + secs(6) - ms(1));
    assert_eq!(layer.client_state(&id), Some(TxState::Completed));
    layer.handle_timeout(t0 + secs(6));
    assert_eq!(layer.client_state(&id), None);
}

#[test]
fn reliable_transport_never_retransmits_and_timer_k_is_zero() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("OPTIONS", BRANCH), tcp(SERVER))
        .unwrap();
    drain(&mut layer);
    assert_eq!(layer.poll_timeout(), Some(t0 + secs(32)), "only Timer F");
    let ev = layer.handle_response(
        t0 + secs(1),
        response(200, "OK", BRANCH, "OPTIONS", Some("s1")),
        tcp(SERVER),
    );
    assert!(ev.is_some());
    assert_eq!(layer.client_state(&id), None, "K = 0");
    assert_eq!(layer.poll_timeout(), None);
}

#[test]
fn reliable_transport_still_times_out() {
    let t0 = Instant::now();
    let mut layer = layer();
    let id = layer
        .send_request(t0, request("MESSAGE", BRANCH), tcp(SERVER))
        .unwrap();
    drain(&mut layer);
    let trace = run_until(&mut layer, t0, secs(100));
    assert!(trace.sent.is_empty());
    assert_eq!(
        trace.events,
        vec![(secs(32), TxEvent::ClientTimeout { id })]
    );
}
