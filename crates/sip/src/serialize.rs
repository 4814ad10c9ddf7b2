//! Messages to bytes. rsip's Display turns bodies into lossy UTF-8 and keeps whatever
//! Content-Length the message carries; on the wire we need raw bodies and a true length.

use rsip::{Header, SipMessage};
use std::fmt::Write;

/// Encodes a message; any Content-Length header is replaced by the body's true length.
pub fn encode(msg: &SipMessage) -> Vec<u8> {
    let mut head = String::with_capacity(512);
    let (headers, body) = match msg {
        SipMessage::Request(r) => {
            let _ = write!(head, "{} {} {}\r\n", r.method, r.uri, r.version);
            (&r.headers, &r.body)
        }
        SipMessage::Response(r) => {
            let _ = write!(head, "{} {}\r\n", r.version, r.status_code);
            (&r.headers, &r.body)
        }
    };
    for h in headers.iter() {
        if matches!(h, Header::ContentLength(_)) {
            continue;
        }
        let _ = write!(head, "{h}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}
