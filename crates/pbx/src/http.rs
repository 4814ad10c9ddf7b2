//! The HTTP side of `serve`: /healthz and Prometheus /metrics from the start; the admin
//! API and web console will join them here.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Numbers the SIP loop publishes for /metrics. Written by one task, read by HTTP.
#[derive(Debug, Default)]
pub struct Metrics {
    pub ready: AtomicBool,
    pub registrations: AtomicU64,
    pub requests: AtomicU64,
    pub malformed: AtomicU64,
    pub auth_failures: AtomicU64,
    pub bans: AtomicU64,
    pub banned_requests: AtomicU64,
    pub registers_ok: AtomicU64,
    pub calls_active: AtomicU64,
    pub recordings_active: AtomicU64,
    /// Trunks whose carrier holds our registration (`PbxCore::trunks_registered`).
    pub trunks_registered: AtomicU64,
    /// Relay totals, added when each call's relay stops.
    pub rtp_packets_in: AtomicU64,
    pub rtp_packets_out: AtomicU64,
    pub rtp_dropped: AtomicU64,
    pub rtp_lost: AtomicU64,
    pub rtp_send_errors: AtomicU64,
}

impl Metrics {
    fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        metric("hark_registrations", "gauge", "Live registration bindings.", get(&self.registrations));
        metric("hark_calls_active", "gauge", "Calls in progress.", get(&self.calls_active));
        metric("hark_recordings_active", "gauge", "Recordings being written.", get(&self.recordings_active));
        metric("hark_trunks_registered", "gauge", "Trunks registered to their carrier.", get(&self.trunks_registered));
        metric("hark_sip_requests_total", "counter", "SIP requests received (new transactions and retransmissions).", get(&self.requests));
        metric("hark_sip_malformed_total", "counter", "Messages that failed to parse.", get(&self.malformed));
        metric("hark_auth_failures_total", "counter", "Failed digest authentications.", get(&self.auth_failures));
        metric("hark_auth_bans_total", "counter", "Source addresses banned after repeated failures.", get(&self.bans));
        metric("hark_auth_banned_requests_total", "counter", "Requests refused from banned addresses.", get(&self.banned_requests));
        metric("hark_registers_ok_total", "counter", "Successful REGISTER requests.", get(&self.registers_ok));
        metric("hark_relay_rtp_packets_in_total", "counter", "RTP packets received by call relays (finished calls).", get(&self.rtp_packets_in));
        metric("hark_relay_packets_out_total", "counter", "RTP and RTCP packets forwarded by call relays (finished calls).", get(&self.rtp_packets_out));
        metric("hark_relay_dropped_total", "counter", "Packets dropped by call relays: foreign source, malformed, no destination (finished calls).", get(&self.rtp_dropped));
        metric("hark_relay_rtp_lost_total", "counter", "RTP packets missing by sequence number on arrival at the relays (finished calls).", get(&self.rtp_lost));
        metric("hark_relay_send_errors_total", "counter", "Relay sends the kernel refused (finished calls).", get(&self.rtp_send_errors));
        out
    }
}

pub fn router(metrics: Arc<Metrics>) -> Router {
    let health = metrics.clone();
    Router::new()
        .route(
            "/healthz",
            get(move || async move {
                if health.ready.load(Ordering::Relaxed) {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
                }
            }),
        )
        .route(
            "/metrics",
            get(move || async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()).into_response()
            }),
        )
}
