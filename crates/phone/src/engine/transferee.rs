//! Being transferred (RFC 3515, RFC 5589): the peer's REFER is accepted (202) and
//! queued for the owner (`Phone::poll_transfer_request`); when the owner follows it, the
//! new call's progress goes back to the referrer as NOTIFYs with a message/sipfrag body.

use super::Phone;
use super::build::other_header;
use crate::call::{CallState, Pending};
use crate::error::PhoneError;
use crate::event::CallHandle;
use hark_sip::NameAddr;
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{Header, Method, Request};
use hark_sip::transaction::ServerTxId;
use std::time::Instant;

/// The URI of a Refer-To value (`<sip:…?Replaces=…>` or a bare URI). Header
/// parameters of the URI (`?Replaces=…`) are kept: the new INVITE needs them.
fn refer_target(value: &str) -> Option<String> {
    let uri = match NameAddr::parse(value) {
        Ok(n) => n.uri.to_owned(),
        Err(_) => value.trim().to_owned(),
    };
    (uri.starts_with("sip:") || uri.starts_with("sips:")).then_some(uri)
}

/// Splits `sip:user@host?Replaces=…` into the URI and its Replaces value (unescaped).
pub(super) fn split_replaces(uri: &str) -> (String, Option<String>) {
    let Some((base, headers)) = uri.split_once('?') else { return (uri.to_owned(), None) };
    let replaces = headers.split('&').find_map(|h| {
        let (name, value) = h.split_once('=')?;
        name.eq_ignore_ascii_case("Replaces").then(|| unescape(value))
    });
    (base.to_owned(), replaces)
}

fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Phone {
    pub(super) fn on_refer(&mut self, now: Instant, handle: CallHandle, id: ServerTxId, req: &Request) {
        let Some(target) = other_header(&req.headers, "Refer-To").and_then(refer_target) else {
            return self.reply(now, &id, req, 400, "Missing or bad Refer-To");
        };
        self.reply(now, &id, req, 202, "Accepted");
        if let Some(call) = self.calls.get_mut(&handle) {
            call.transfer_request = Some(target.clone());
        }
        self.notify_transfer(now, handle, 100, "Trying", false);
        self.transfer_requests.push_back((handle, target));
    }

    /// Calls the target the peer of `handle` referred us to.
    pub fn accept_transfer(&mut self, now: Instant, handle: CallHandle, rtp_port: u16) -> Result<CallHandle, PhoneError> {
        let call = self.call_mut(handle)?;
        let target = call.transfer_request.take().ok_or(PhoneError::WrongState("no transfer was requested"))?;
        let (uri, replaces) = split_replaces(&target);
        let new = self.dial_with(now, &uri, rtp_port, replaces.as_deref())?;
        if let Some(c) = self.calls.get_mut(&new) {
            c.transfer_of = Some(handle);
        }
        Ok(new)
    }

    /// A call placed for a transfer got its final answer: tell the referrer.
    pub(super) fn report_transfer_outcome(&mut self, now: Instant, handle: CallHandle, code: u16, reason: &str) {
        let Some(referrer) = self.calls.get_mut(&handle).and_then(|c| c.transfer_of.take()) else { return };
        self.notify_transfer(now, referrer, code, reason, true);
    }

    /// A NOTIFY in the referring call's dialog (RFC 3515 §2.4.4): Event: refer, the
    /// status line as message/sipfrag.
    fn notify_transfer(&mut self, now: Instant, referrer: CallHandle, code: u16, reason: &str, last: bool) {
        if self.calls.get(&referrer).is_none_or(|c| c.state != CallState::Confirmed) {
            return;
        }
        let body = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
        let state = if last { "terminated;reason=noresource" } else { "active;expires=60" };
        let sent = self.send_in_dialog(
            now,
            referrer,
            Method::Notify,
            |req| {
                req.headers.push(Header::Event(hark_sip::rsip::headers::Event::new("refer")));
                req.headers.push(Header::SubscriptionState(hark_sip::rsip::headers::SubscriptionState::new(state)));
                Self::set_body(req, "message/sipfrag;version=2.0", body);
            },
            |_| Pending::Notify,
        );
        if let Err(e) = sent {
            tracing::debug!(error = %e, "transfer NOTIFY not sent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refer_to_values_keep_their_replaces() {
        assert_eq!(refer_target("<sip:103@pbx.test>").as_deref(), Some("sip:103@pbx.test"));
        assert_eq!(refer_target("sip:103@pbx.test").as_deref(), Some("sip:103@pbx.test"));
        assert_eq!(refer_target("<mailto:x@y>"), None);
        let (uri, replaces) = split_replaces("sip:103@pbx.test?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2");
        assert_eq!(uri, "sip:103@pbx.test");
        assert_eq!(replaces.as_deref(), Some("abc@h;to-tag=1;from-tag=2"));
        assert_eq!(split_replaces("sip:a@b").1, None);
        assert_eq!(unescape("%zz%4"), "%zz%4");
    }
}
