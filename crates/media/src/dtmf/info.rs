//! DTMF in SIP INFO bodies.
//!
//! - `application/dtmf-relay`: lines of `key=value`; the `Signal` key (any case, spaces
//!   around `=` allowed) gives the key, e.g. `Signal=5\r\nDuration=160`. Other keys
//!   (Duration) are ignored; the first `Signal` line wins; lines without `=` are skipped.
//! - `application/dtmf`: the whole body, trimmed, is the key.
//!
//! A signal is one key character (`0`–`9`, `*`, `#`, `A`–`D`, any case) or an RFC 4733
//! event number, as some phones send: `10` is `*`, `11` is `#`, `12`–`15` are `A`–`D`.
//! Flash (`16` or `!`) is a valid signal but no digit: `Ok(None)`.
//!
//! Other content types are an error, [`DtmfError::UnsupportedContentType`], not
//! `Ok(None)`: the caller can then tell "no digit in a valid body" (answer 200) from
//! "not a DTMF INFO at all" (hand it to other INFO handlers, or answer 415), and every
//! other error is a malformed body (400).

use super::{DtmfError, digit_of_event, normalize_digit};

/// Flash, as an RFC 4733 event number.
const FLASH: u8 = 16;

/// The digit carried by a SIP INFO body; see the module docs for the formats.
/// `content_type` is the header value; parameters after `;` are ignored.
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Result<Option<char>, DtmfError> {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let relay = media_type.eq_ignore_ascii_case("application/dtmf-relay");
    if !relay && !media_type.eq_ignore_ascii_case("application/dtmf") {
        return Err(DtmfError::UnsupportedContentType);
    }
    let text = std::str::from_utf8(body).map_err(|_| DtmfError::NotUtf8)?;
    if !relay {
        let signal = text.trim();
        if signal.is_empty() {
            return Err(DtmfError::EmptyBody);
        }
        return parse_signal(signal);
    }
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("signal"))
        .map(|(_, value)| parse_signal(value.trim()))
        .unwrap_or(Err(DtmfError::MissingSignal))
}

/// One key character or an event number.
fn parse_signal(value: &str) -> Result<Option<char>, DtmfError> {
    let mut chars = value.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if let Some(d) = normalize_digit(c) {
            return Ok(Some(d));
        }
        if c == '!' {
            return Ok(None);
        }
    }
    match value.parse::<u8>() {
        Ok(FLASH) => Ok(None),
        Ok(code) => digit_of_event(code)
            .map(Some)
            .ok_or_else(|| DtmfError::InvalidSignal(value.to_owned())),
        Err(_) => Err(DtmfError::InvalidSignal(value.to_owned())),
    }
}
