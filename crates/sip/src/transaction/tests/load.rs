//! The PBX's REGISTER load in simulated time: 600,000 server transactions alive at once,
//! each waiting out Timer J. Ignored by default; measure it in release with
//! `cargo test -p hark-sip --release transaction::tests::load -- --ignored --nocapture`.

use super::support::*;
use crate::ids::Tag;
use crate::message::response_to;
use crate::transaction::Incoming;
use rsip::headers::UntypedHeader;
use rsip::{Header, StatusCode};
use std::time::{Duration, Instant};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "load measurement; run in release"]
fn six_hundred_thousand_register_transactions_at_20k_per_second() {
    const N: u64 = 600_000;
    let template = request("REGISTER", "z9hG4bKload");
    let tag = Tag::new("reg");
    let t0 = Instant::now();
    let mut layer = layer();
    let rss_before = rss_kib();
    let wall = std::time::Instant::now();
    for i in 0..N {
        let now = t0 + Duration::from_micros(i * 50);
        layer.handle_timeout(now);
        let mut req = template.clone();
        for h in req.headers.iter_mut() {
            if let Header::Via(v) = h {
                *v = rsip::headers::Via::new(format!(
                    "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKload{i};rport"
                ));
            }
        }
        let Some(Incoming::Request { id, req, .. }) = layer.handle_request(now, req, udp(PHONE))
        else {
            panic!("request {i} was not new")
        };
        layer
            .send_response(now, &id, response_to(&req, StatusCode::OK, Some(&tag)))
            .unwrap();
        while layer.poll_transmit().is_some() {}
    }
    let elapsed = wall.elapsed();
    let live = layer.server_transactions();
    assert_eq!(live as u64, N, "all alive within Timer J");
    if let (Some(before), Some(after)) = (rss_before, rss_kib()) {
        println!("{} bytes per live transaction", (after - before) * 1024 / N);
    }
    println!(
        "{N} requests in {elapsed:?}: {:.0}/s including the TU's response building",
        N as f64 / elapsed.as_secs_f64()
    );
    let wall = std::time::Instant::now();
    while let Some(at) = layer.poll_timeout() {
        layer.handle_timeout(at);
    }
    println!("Timer J for all in {:?}", wall.elapsed());
    assert_eq!(layer.server_transactions(), 0);
}
