//! DTMF digits for feature codes (SPEC §1: `*48` pauses and `*49` resumes recording).
//!
//! A phone signals a digit one of three ways, and each has its own front end here; all
//! of them end in a plain `char` (`0`–`9`, `*`, `#`, `A`–`D`) that goes into
//! [`FeatureCodes`]:
//!
//! - in-band tones in the audio: [`InbandDetector`] (Goertzel bank, ITU-T Q.24-style
//!   checks) on decoded PCM at 8–48 kHz;
//! - RFC 4733 telephone-events: [`Rfc4733Tracker`] turns the repeated start, update and
//!   triple end packets of one event into exactly one digit;
//! - SIP INFO: [`parse_info_body`] for `application/dtmf-relay` and `application/dtmf`.
//!
//! Everything is sans-IO: no clock is read; times are millisecond offsets the caller
//! chooses (the in-band detector counts its own samples). Nothing allocates per call
//! after construction, and no input panics.
//!
//! One call should take digits from one source: a phone that negotiated telephone-event
//! normally strips the tones from its audio, but when both arrive the PBX should prefer
//! RFC 4733 and leave the in-band detector off (or ignore it) for that call.

mod error;
mod features;
mod goertzel;
mod inband;
mod info;
mod rfc4733;
#[cfg(test)]
mod tests;

pub use error::DtmfError;
pub use features::{DEFAULT_INTER_DIGIT_TIMEOUT_MS, FeatureCode, FeatureCodes, MAX_CODE_LEN};
pub use inband::{DigitEvent, Digits, InbandConfig, InbandDetector};
pub use info::parse_info_body;
pub use rfc4733::Rfc4733Tracker;

/// The sixteen DTMF keys, by row (697, 770, 852, 941 Hz) and column (1209, 1336, 1477,
/// 1633 Hz).
pub const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// The canonical form of a DTMF key: `0`–`9`, `*`, `#`, and `A`–`D` (lower case
/// accepted). None for anything else.
pub fn normalize_digit(c: char) -> Option<char> {
    match c {
        '0'..='9' | '*' | '#' | 'A'..='D' => Some(c),
        'a'..='d' => Some(c.to_ascii_uppercase()),
        _ => None,
    }
}

/// The key of an RFC 4733 event code (0–9, 10 `*`, 11 `#`, 12–15 `A`–`D`). None for
/// other events (16 is flash).
pub fn digit_of_event(code: u8) -> Option<char> {
    crate::packet::TelephoneEvent {
        event: code,
        end: false,
        volume: 0,
        duration: 0,
    }
    .digit()
}
