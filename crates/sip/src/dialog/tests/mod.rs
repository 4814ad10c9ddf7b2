//! Dialog tests. Every message is parsed from SIP text, as it would arrive on the wire.

mod routing;
mod uac;
mod uas;

use crate::parse::{parse_datagram, Limits};
use rsip::{Request, Response, SipMessage};

fn parse(text: &str) -> SipMessage {
    parse_datagram(text.as_bytes(), &Limits::default()).expect("test message parses")
}

fn req(text: &str) -> Request {
    match parse(text) {
        SipMessage::Request(r) => r,
        SipMessage::Response(_) => panic!("not a request"),
    }
}

fn resp(text: &str) -> Response {
    match parse(text) {
        SipMessage::Response(r) => r,
        SipMessage::Request(_) => panic!("not a response"),
    }
}

/// The INVITE Alice (us, as UAC) sent to Bob through proxies p1 then p2.
const INVITE: &str = "INVITE sip:bob@biloxi.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@atlanta.example>;tag=alice-tag\r\n\
To: <sip:bob@biloxi.example>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 314 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Content-Length: 0\r\n\r\n";

/// The proxies record-routed: p2 (nearest Bob) prepended its entry after p1.
const RECORD_ROUTE: &str = "Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n";

/// A response to INVITE with Bob's tag, a Contact and the Record-Route above.
fn response_to_invite(status: &str, extra: &str) -> Response {
    resp(&format!(
        "SIP/2.0 {status}\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport\r\n\
From: \"Alice\" <sip:alice@atlanta.example>;tag=alice-tag\r\n\
To: <sip:bob@biloxi.example>;tag=bob-tag\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 314 INVITE\r\n\
{extra}\
Content-Length: 0\r\n\r\n"
    ))
}

fn ok_with_routes() -> Response {
    response_to_invite("200 OK", &format!("{RECORD_ROUTE}Contact: <sip:bob@198.51.100.20:5070>\r\n"))
}

/// The same INVITE as Bob (us, as UAS) receives it: p2 and p1 have each added a Via.
const INVITE_AT_BOB: &str = "INVITE sip:bob@198.51.100.20:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP p2.example;branch=z9hG4bKp2\r\n\
Via: SIP/2.0/UDP p1.example;branch=z9hG4bKp1\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport\r\n\
Max-Forwards: 68\r\n\
Record-Route: <sip:p2.example;lr>\r\n\
Record-Route: <sip:p1.example;lr>\r\n\
From: \"Alice\" <sip:alice@atlanta.example>;tag=alice-tag\r\n\
To: <sip:bob@biloxi.example>\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: 314 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5060>\r\n\
Content-Length: 0\r\n\r\n";

/// A request Alice sends Bob inside the dialog, as Bob receives it.
fn in_dialog_at_bob(method: &str, cseq: u32, extra: &str) -> Request {
    req(&format!(
        "{method} sip:bob@198.51.100.20:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{method}{cseq}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@atlanta.example>;tag=alice-tag\r\n\
To: <sip:bob@biloxi.example>;tag=bob-tag\r\n\
Call-ID: call-1@192.0.2.10\r\n\
CSeq: {cseq} {method}\r\n\
{extra}\
Content-Length: 0\r\n\r\n"
    ))
}

fn via(branch: &str) -> rsip::typed::Via {
    super::top_via(
        crate::transport::Transport::Udp,
        "192.0.2.10:5060".parse::<std::net::SocketAddr>().unwrap(),
        &crate::Branch::new(branch),
    )
}

fn uri(text: &str) -> rsip::Uri {
    rsip::Uri::try_from(text).unwrap()
}

/// Header values of one kind, as they go on the wire.
fn values(req: &Request, name: &str) -> Vec<String> {
    req.headers
        .iter()
        .map(|h| h.to_string())
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
        .collect()
}
