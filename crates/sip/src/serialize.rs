//! Messages to bytes. rsip's Display turns bodies into lossy UTF-8 and keeps whatever
//! Content-Length the message carries; on the wire we need raw bodies and a true length.

use rsip::{Header, SipMessage, StatusCode};
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
            // rsip prints its named codes as e.g. "486 BusyHere": use the RFC phrase.
            match &r.status_code {
                StatusCode::Other(code, reason) => {
                    let _ = write!(head, "{} {code} {reason}\r\n", r.version);
                }
                named => {
                    let code = named.code();
                    let _ = write!(head, "{} {code} {}\r\n", r.version, reason_phrase(code));
                }
            }
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

/// The RFC 3261 §21 (and common extension) reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        469 => "Bad Info Package",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_codes_get_rfc_reason_phrases() {
        let resp = rsip::Response {
            status_code: StatusCode::BusyHere,
            version: rsip::Version::V2,
            headers: Default::default(),
            body: vec![],
        };
        let wire = String::from_utf8(encode(&resp.into())).unwrap();
        assert!(wire.starts_with("SIP/2.0 486 Busy Here\r\n"), "{wire}");
    }
}
