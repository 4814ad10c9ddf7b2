//! The 400 we send for an unparsable request echoes the peer's header values. Whatever
//! the input, the reply must be one well-formed response with no smuggled lines.

#![no_main]

use hark_sip::parse::bad_request_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte says how much of the input is the reason phrase (our parse error's
    // text in production, but it must be safe whatever it is).
    let Some((&n, rest)) = data.split_first() else { return };
    let (reason, request) = rest.split_at(usize::from(n).min(rest.len()));
    let reason = String::from_utf8_lossy(reason);
    let Some(reply) = bad_request_reply(request, &reason) else { return };

    let text = std::str::from_utf8(&reply).expect("the reply is UTF-8");
    assert!(text.starts_with("SIP/2.0 400 "), "{text:?}");
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text:?}");
    let head = &text[..text.len() - 4];
    for line in head.split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "a bare CR or LF in {line:?}");
        assert!(!line.is_empty(), "an empty line ends the headers early: {text:?}");
    }
    let names: Vec<&str> = head.split("\r\n").skip(1).filter_map(|l| l.split_once(':').map(|(n, _)| n)).collect();
    for name in &names {
        assert!(["Via", "From", "To", "Call-ID", "CSeq", "Content-Length"].contains(name), "echoed {name:?}");
    }
    // A Via is the least a reply needs to be routed back.
    assert!(names.contains(&"Via"), "Via missing from {text:?}");
});
