//! Hand-written SIP texts and helpers to drive a layer through simulated time.

use crate::parse::{Limits, parse_datagram};
use crate::transaction::{TimerConfig, TransactionLayer, TxEvent};
use crate::transport::{Peer, Transmit, Transport};
use rsip::{Request, Response, SipMessage};
use std::time::{Duration, Instant};

/// The UAC/phone side of every test.
pub const PHONE: &str = "192.0.2.10:5060";
/// The far side of client transactions.
pub const SERVER: &str = "192.0.2.20:5060";

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn udp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: addr.parse().unwrap(),
    }
}

pub fn tcp(addr: &str) -> Peer {
    Peer {
        transport: Transport::Tcp,
        addr: addr.parse().unwrap(),
    }
}

pub fn layer() -> TransactionLayer {
    TransactionLayer::new(TimerConfig::default())
}

pub fn parse(bytes: &[u8]) -> SipMessage {
    parse_datagram(bytes, &Limits::default())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

pub fn req(text: &str) -> Request {
    match parse(text.as_bytes()) {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

pub fn resp(text: &str) -> Response {
    match parse(text.as_bytes()) {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("not a response"),
    }
}

/// A request as the phone sends it. `via` is the whole top Via value; `to_tag` is for ACKs
/// of non-2xx finals and in-dialog requests.
pub fn request_text(method: &str, via: &str, cseq: u32, to_tag: Option<&str>) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let (extra, body) = if method == "INVITE" {
        (
            "Contact: <sip:alice@192.0.2.10:5060>\r\nContent-Type: application/sdp\r\n",
            "v=0\r\n",
        )
    } else {
        ("", "")
    };
    format!(
        "{method} sip:bob@pbx.test SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         Route: <sip:proxy1.test;lr>\r\n\
         Route: <sip:proxy2.test;lr>\r\n\
         From: \"Alice\" <sip:alice@pbx.test>;tag=alice1\r\n\
         To: <sip:bob@pbx.test>{to_tag}\r\n\
         Call-ID: call-1@192.0.2.10\r\n\
         CSeq: {cseq} {method}\r\n\
         {extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A request with an RFC 3261 branch, from the phone over UDP with rport.
pub fn request(method: &str, branch: &str) -> Request {
    req(&request_text(
        method,
        &format!("SIP/2.0/UDP 192.0.2.10:5060;branch={branch};rport"),
        1,
        None,
    ))
}

/// A response as the far end sends it to one of our client transactions.
pub fn response_text(
    code: u16,
    reason: &str,
    branch: &str,
    method: &str,
    to_tag: Option<&str>,
) -> String {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SIP/2.0 {code} {reason}\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\n\
         From: \"Alice\" <sip:alice@pbx.test>;tag=alice1\r\n\
         To: <sip:bob@pbx.test>{to_tag}\r\n\
         Call-ID: call-1@192.0.2.10\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

pub fn response(
    code: u16,
    reason: &str,
    branch: &str,
    method: &str,
    to_tag: Option<&str>,
) -> Response {
    resp(&response_text(code, reason, branch, method, to_tag))
}

/// Everything queued for sending.
pub fn drain(layer: &mut TransactionLayer) -> Vec<Transmit> {
    std::iter::from_fn(|| layer.poll_transmit()).collect()
}

pub fn events(layer: &mut TransactionLayer) -> Vec<TxEvent> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

/// The start line of a transmitted message.
pub fn start_line(t: &Transmit) -> String {
    let text = String::from_utf8_lossy(&t.bytes);
    text.split("\r\n").next().unwrap_or_default().to_owned()
}

/// What the layer did, by offset from the test's start.
#[derive(Debug, Default)]
pub struct Trace {
    pub sent: Vec<(Duration, Transmit)>,
    pub events: Vec<(Duration, TxEvent)>,
}

impl Trace {
    pub fn sent_at(&self) -> Vec<Duration> {
        self.sent.iter().map(|(at, _)| *at).collect()
    }
}

/// Drives the layer's timers, as a driver would, until `t0 + end`, recording what it sends
/// and reports. Every timer fires exactly at its deadline.
pub fn run_until(layer: &mut TransactionLayer, t0: Instant, end: Duration) -> Trace {
    let mut trace = Trace::default();
    while let Some(at) = layer.poll_timeout() {
        if at > t0 + end {
            break;
        }
        layer.handle_timeout(at);
        trace
            .sent
            .extend(drain(layer).into_iter().map(|t| (at - t0, t)));
        trace
            .events
            .extend(events(layer).into_iter().map(|e| (at - t0, e)));
    }
    trace
}

/// Offsets in milliseconds, for readable schedules.
pub fn at_ms(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&n| ms(n)).collect()
}
