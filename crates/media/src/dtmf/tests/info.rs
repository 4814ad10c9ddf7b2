//! SIP INFO bodies, as a table.

use crate::dtmf::{DtmfError, parse_info_body};

const RELAY: &str = "application/dtmf-relay";
const DTMF: &str = "application/dtmf";

type Case = (&'static str, &'static [u8], Result<Option<char>, DtmfError>);

#[test]
fn dtmf_info_body_table() {
    let bad = |s: &str| Err(DtmfError::InvalidSignal(s.to_owned()));
    let cases: Vec<Case> = vec![
        (RELAY, b"Signal=5\r\nDuration=160\r\n", Ok(Some('5'))),
        (RELAY, b"Signal=5\nDuration=160", Ok(Some('5'))),
        (RELAY, b"Signal= *\r\nDuration= 250\r\n", Ok(Some('*'))),
        (RELAY, b"signal=#\r\n", Ok(Some('#'))),
        (RELAY, b"SIGNAL = 0\r\n", Ok(Some('0'))),
        (RELAY, b"Signal=10\r\nDuration=160\r\n", Ok(Some('*'))),
        (RELAY, b"Signal=11\r\n", Ok(Some('#'))),
        (RELAY, b"Signal=12\r\n", Ok(Some('A'))),
        (RELAY, b"Signal=d\r\n", Ok(Some('D'))),
        (RELAY, b"Duration=160\r\nSignal=9\r\n", Ok(Some('9'))),
        (RELAY, b"Signal=4\r\nSignal=8\r\n", Ok(Some('4'))),
        (RELAY, b"junk line\r\nSignal=7\r\n", Ok(Some('7'))),
        (RELAY, b"Signal=16\r\nDuration=2000\r\n", Ok(None)),
        (RELAY, b"Signal=!\r\n", Ok(None)),
        (RELAY, b"Duration=160\r\n", Err(DtmfError::MissingSignal)),
        (RELAY, b"", Err(DtmfError::MissingSignal)),
        (RELAY, b"Signal=\r\n", bad("")),
        (RELAY, b"Signal=x\r\n", bad("x")),
        (RELAY, b"Signal=17\r\n", bad("17")),
        (RELAY, b"Signal=55\r\n", bad("55")),
        (RELAY, b"Signal=-1\r\n", bad("-1")),
        (RELAY, b"Signal=\xff\r\n", Err(DtmfError::NotUtf8)),
        ("Application/DTMF-Relay", b"Signal=3", Ok(Some('3'))),
        (
            "application/dtmf-relay; charset=utf-8",
            b"Signal=3",
            Ok(Some('3')),
        ),
        (" application/dtmf-relay ", b"Signal=3", Ok(Some('3'))),
        (DTMF, b"5", Ok(Some('5'))),
        (DTMF, b" * \r\n", Ok(Some('*'))),
        (DTMF, b"#", Ok(Some('#'))),
        (DTMF, b"10", Ok(Some('*'))),
        (DTMF, b"11\r\n", Ok(Some('#'))),
        (DTMF, b"b", Ok(Some('B'))),
        (DTMF, b"16", Ok(None)),
        (DTMF, b"", Err(DtmfError::EmptyBody)),
        (DTMF, b" \r\n", Err(DtmfError::EmptyBody)),
        (DTMF, b"12 3", bad("12 3")),
        (DTMF, b"Signal=5", bad("Signal=5")),
        ("APPLICATION/DTMF", b"1", Ok(Some('1'))),
        (
            "application/dtmf-relayx",
            b"Signal=1",
            Err(DtmfError::UnsupportedContentType),
        ),
        (
            "application/sdp",
            b"v=0",
            Err(DtmfError::UnsupportedContentType),
        ),
        ("text/plain", b"5", Err(DtmfError::UnsupportedContentType)),
        (
            "application/x-media-control",
            b"pause-audio-recording",
            Err(DtmfError::UnsupportedContentType),
        ),
        ("", b"5", Err(DtmfError::UnsupportedContentType)),
    ];
    for (content_type, body, want) in cases {
        assert_eq!(
            parse_info_body(content_type, body),
            want,
            "{content_type:?} {:?}",
            String::from_utf8_lossy(body)
        );
    }
}
