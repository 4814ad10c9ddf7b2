//! Any datagram either fails with a typed error or parses into a message that survives
//! our own encoding: encode → parse gives the same message back, and encoding is then a
//! fixed point. A proxy that re-encodes what it parsed must not change it.

#![no_main]

use hark_sip::rsip::message::HasHeaders;
use hark_sip::rsip::{Header, SipMessage};
use hark_sip::{encode, parse_datagram, Limits};
use libfuzzer_sys::fuzz_target;

/// Encoding expands compact names and splits header lists, so the re-encoded form may be
/// longer than the limits the original passed; the round trip is about content.
const ROOMY: Limits = Limits { max_message_bytes: usize::MAX, max_headers: usize::MAX, max_line_bytes: usize::MAX };

/// encode() rewrites Content-Length to the body's true length (and adds one when absent).
fn without_content_length(mut msg: SipMessage) -> SipMessage {
    msg.headers_mut().retain(|h| !matches!(h, Header::ContentLength(_)));
    msg
}

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = parse_datagram(data, &Limits::default()) else { return };
    let wire = encode(&msg);
    let again = match parse_datagram(&wire, &ROOMY) {
        Ok(again) => again,
        Err(e) => panic!("our own encoding does not parse: {e}\n--- encoded ---\n{}", String::from_utf8_lossy(&wire)),
    };
    assert_eq!(
        without_content_length(again.clone()),
        without_content_length(msg),
        "the round trip changed the message\n--- encoded ---\n{}",
        String::from_utf8_lossy(&wire)
    );
    assert_eq!(encode(&again), wire, "encoding is not a fixed point");
});
