//! DTMF tests: in-band detection (digits, timing, twist, levels, codecs, rates), false
//! positives on non-DTMF audio, RFC 4733 events, SIP INFO bodies, feature codes, and
//! properties (no input panics).

mod features;
mod inband;
mod inband_limits;
mod info;
mod no_false_digits;
mod props;
mod rfc4733;
mod signals;
