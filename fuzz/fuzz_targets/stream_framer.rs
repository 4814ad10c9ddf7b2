//! A TCP byte stream cut into arbitrary segments: the framer must not panic, must not
//! hold more than a message's worth of bytes, and must frame the same messages however
//! the stream was segmented.

#![no_main]

use hark_sip::parse::{StreamFramer, StreamItem};
use hark_sip::rsip::SipMessage;
use hark_sip::Limits;
use libfuzzer_sys::fuzz_target;

/// Small limits, so the fuzzer reaches the oversize paths with small inputs.
const LIMITS: Limits = Limits { max_message_bytes: 2_048, max_headers: 32, max_line_bytes: 512 };

fn drain(framer: &mut StreamFramer, messages: &mut Vec<SipMessage>) {
    while let Some(item) = framer.next_item() {
        if let StreamItem::Message(msg) = item {
            messages.push(msg);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the segment sizes (1..=64, cycling); the rest is the stream.
    let Some((&n, rest)) = data.split_first() else { return };
    let sizes: Vec<usize> = rest.iter().take(usize::from(n % 8) + 1).map(|b| usize::from(b % 64) + 1).collect();
    let stream = &rest[sizes.len().min(rest.len())..];

    let mut chunked = StreamFramer::new(LIMITS);
    let mut chunked_messages = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= stream.len() {
            break;
        }
        let end = (at + size).min(stream.len());
        chunked.push(&stream[at..end]);
        at = end;
        drain(&mut chunked, &mut chunked_messages);
        assert!(chunked.buffered() <= LIMITS.max_message_bytes + 64, "framer holds {} bytes", chunked.buffered());
    }

    // Segmentation independence holds while nothing hits the size limit: past it the
    // framer drops what it holds, and where that happens depends on the segments.
    if stream.len() <= LIMITS.max_message_bytes {
        let mut whole = StreamFramer::new(LIMITS);
        let mut whole_messages = Vec::new();
        whole.push(stream);
        drain(&mut whole, &mut whole_messages);
        assert_eq!(chunked_messages, whole_messages, "segmentation changed the framed messages");
        assert_eq!(chunked.buffered(), whole.buffered(), "segmentation changed what is left buffered");
    }
});
