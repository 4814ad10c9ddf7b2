//! Transfers (RFC 3515 REFER, RFC 3891 Replaces), done by the PBX itself: a phone's
//! REFER ends at the B2BUA, which calls the target and re-bridges the legs, so the party
//! being transferred never sees a REFER and its relay port stays where it was.
//!
//! - Blind: REFER with `Refer-To: <sip:TARGET@…>`. 202, NOTIFY `100 Trying`, an INVITE
//!   to the target offering the transferee's codecs on the transferor's relay port; on
//!   its answer the target takes the transferor's leg (NOTIFY `200 OK`, BYE to the
//!   transferor, re-INVITE of the transferee so it leaves hold); on a failure the call
//!   stays as it was (NOTIFY with the failure).
//! - Attended: `Refer-To: <sip:Y@…?Replaces=CALLID;to-tag=…;from-tag=…>` names the
//!   transferor's other call. The transferee's leg moves into that call in place of the
//!   transferor's, is re-INVITEd to that call's relay, and the first call ends.
//!
//! After either, the recording policy is decided again for the new parties (rule 5).

use super::call::{CallState, LegSide, PartyLog, PartyRole, Transfer};
use super::cdr::HangupBy;
use super::route::Target;
use super::{media, CallKey};
use crate::core::{CoreEvent, PbxCore};
use crate::registrar::UserKey;
use hark_sip::dialog::{top_via, Dialog};
use hark_sip::rsip::headers::{ToTypedHeader, UntypedHeader};
use hark_sip::rsip::{self, Header, Method, Request, Response};
use hark_sip::transaction::ServerTxId;
use hark_sip::{Branch, NameAddr, Tag};
use std::time::Instant;

/// The dialog a Replaces value names (RFC 3891 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
}

impl Replaces {
    /// `CALLID;to-tag=T;from-tag=F` (parameters in any order, other ones ignored).
    pub(crate) fn parse(value: &str) -> Option<Replaces> {
        let mut parts = value.split(';').map(str::trim);
        let call_id = parts.next().filter(|c| !c.is_empty())?.to_owned();
        let (mut to_tag, mut from_tag) = (None, None);
        for p in parts {
            match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("to-tag") => to_tag = Some(v.trim().to_owned()),
                Some((k, v)) if k.trim().eq_ignore_ascii_case("from-tag") => from_tag = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        Some(Replaces { call_id, to_tag: to_tag?, from_tag: from_tag? })
    }
}

/// The Replaces header a Refer-To URI carries in its `?` part, percent-decoded.
pub(crate) fn replaces_in_uri(uri: &str) -> Option<Replaces> {
    let (_, headers) = uri.split_once('?')?;
    headers
        .split('&')
        .find_map(|h| h.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case("Replaces")).map(|(_, v)| v))
        .and_then(|v| Replaces::parse(&percent_decode(v)))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The Replaces header of an INVITE (RFC 3891), parsed; `Some(None)`-like failures are
/// reported as an unparsable value by the caller.
pub(crate) fn replaces_header(req: &Request) -> Option<Option<Replaces>> {
    req.headers.iter().find_map(|h| match h {
        Header::Other(name, value) if name.eq_ignore_ascii_case("Replaces") => Some(Replaces::parse(value)),
        _ => None,
    })
}

/// The Refer-To value of a REFER (long or compact name).
fn refer_to(req: &Request) -> Option<String> {
    req.headers.iter().find_map(|h| match h {
        Header::Other(name, value) if name.eq_ignore_ascii_case("Refer-To") || name == "r" => Some(value.clone()),
        _ => None,
    })
}

impl PbxCore {
    /// A REFER from the party on `side` of an answered call.
    pub(crate) fn on_refer(&mut self, now: Instant, key: CallKey, side: LegSide, id: ServerTxId, req: Request) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        if call.state != CallState::Answered || call.transfer.is_some() {
            return self.reply(now, &id, &req, 491, "Request Pending", vec![]);
        }
        let Some(value) = refer_to(&req) else {
            return self.reply(now, &id, &req, 400, "Bad Request (no Refer-To)", vec![]);
        };
        let Ok(target) = NameAddr::parse(&value) else {
            return self.reply(now, &id, &req, 400, "Bad Request (malformed Refer-To)", vec![]);
        };
        if let Some(replaces) = replaces_in_uri(target.uri) {
            return self.on_attended_refer(now, key, side, id, req, replaces);
        }
        let tenant_id = call.tenant_id;
        let host = target.uri_hostport();
        if self.directory.tenant_for_host(host).is_some_and(|t| t.id != tenant_id) {
            return self.reply(now, &id, &req, 403, "Forbidden (another tenant)", vec![]);
        }
        let Some(dest) = target.uri_user().and_then(|u| self.route(tenant_id, u)) else {
            return self.reply(now, &id, &req, 403, "Forbidden (no route to the transfer target)", vec![]);
        };
        if let Target::Extension(k) = &dest
            && self.location.bindings(k).is_empty()
        {
            return self.reply(now, &id, &req, 480, "Temporarily Unavailable (target not registered)", vec![]);
        }
        self.reply(now, &id, &req, 202, "Accepted", vec![]);
        self.notify_refer(now, key, side, "SIP/2.0 100 Trying", false);
        if !self.call_transfer_target(now, key, side, dest) {
            self.notify_refer(now, key, side, "SIP/2.0 503 Service Unavailable", true);
        }
    }

    /// Sends the INVITE to a blind transfer's target; false if it could not be sent.
    fn call_transfer_target(&mut self, now: Instant, key: CallKey, side: LegSide, dest: Target) -> bool {
        let Some(call) = self.calls.calls.get(&key) else { return false };
        let stays = side.other();
        // The transferee's codecs, on the relay port the transferor used.
        let Some(ports) = &call.relay else { return false };
        let Ok(offer) = media::anchor(call.sdp(stays), self.local.ip, &ports.facing(side)) else { return false };
        let from_tag = Tag::random();
        let addressing = self.addressing(call.tenant_id, call.party(stays), call.is_external(stays), None, &dest, &from_tag);
        let (target, trunk) = match &dest {
            Target::Extension(k) => (k.clone(), None),
            Target::Trunk { trunk_id, number } => (UserKey { tenant_id: call.tenant_id, extension: number.clone() }, Some(*trunk_id)),
        };
        // One INVITE, to the first contact (a blind transfer does not fork).
        let Some(a) = addressing.first() else { return false };
        let call_id = hark_sip::CallId::random();
        let Some(invite) = self.build_invite(key, a, &call_id, 1, &offer) else { return false };
        let Ok(tx) = self.tx.send_request(now, invite.clone(), a.peer) else { return false };
        self.calls.by_client_tx.insert(tx, key);
        let Some(call) = self.calls.calls.get_mut(&key) else { return false };
        tracing::info!(session = %call.session, from = %call.party(side).extension, to = %target.extension, "blind transfer");
        let deadline = now + self.config.calls.ring_timeout;
        call.transfer = Some(Transfer { side, target, target_trunk: trunk, tx, request: invite, peer: a.peer, authenticated: false, deadline });
        self.calls.schedule(deadline, key, super::TimerKind::TransferRing);
        true
    }

    /// A response to a transfer target's INVITE.
    pub(crate) fn on_transfer_response(&mut self, now: Instant, key: CallKey, resp: Response) {
        let code = resp.status_code.code();
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let Some(t) = call.transfer.as_mut() else { return };
        match code {
            100..=199 => {}
            200..=299 => self.complete_transfer(now, key, resp),
            401 | 407 if !t.authenticated && t.target_trunk.is_some() => {
                let (trunk, invite, old) = (t.target_trunk, t.request.clone(), t.tx);
                match self.answer_trunk_challenge(now, trunk, &invite, &resp) {
                    Some((req, tx)) => {
                        self.calls.by_client_tx.remove(&old);
                        self.calls.by_client_tx.insert(tx, key);
                        if let Some(t) = self.calls.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) {
                            t.tx = tx;
                            t.request = req;
                            t.authenticated = true;
                        }
                    }
                    None => self.fail_transfer(now, key, code, &super::outcome::reason_of(&resp)),
                }
            }
            _ => self.fail_transfer(now, key, code, &super::outcome::reason_of(&resp)),
        }
    }

    /// The transfer target rang for the whole ring timeout: it is CANCELled.
    pub(crate) fn transfer_timed_out(&mut self, now: Instant, key: CallKey, at: Instant) {
        let Some(t) = self.calls.calls.get(&key).and_then(|c| c.transfer.as_ref()) else { return };
        if t.deadline != at {
            return;
        }
        if let Some(cancel) = super::outcome::cancel_for(&t.request) {
            let _ = self.tx.send_request(now, cancel, t.peer);
        }
        self.fail_transfer(now, key, 480, "Temporarily Unavailable (no answer)");
    }

    /// The target did not take the call: the original call goes on.
    pub(crate) fn fail_transfer(&mut self, now: Instant, key: CallKey, code: u16, reason: &str) {
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let Some(t) = call.transfer.take() else { return };
        self.calls.by_client_tx.remove(&t.tx);
        tracing::info!(code, reason, "transfer failed; the call stays up");
        self.notify_refer(now, key, t.side, &format!("SIP/2.0 {code} {reason}"), true);
    }

    /// The target answered: it takes the transferor's leg.
    fn complete_transfer(&mut self, now: Instant, key: CallKey, resp: Response) {
        let wall = self.wall(now);
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let Some(t) = call.transfer.take() else { return };
        self.calls.by_client_tx.remove(&t.tx);
        let Ok(dialog) = Dialog::uac(&t.request, &resp) else {
            return self.fail_transfer_after_answer(now, key, t);
        };
        let ack = dialog.ack_for_2xx(1, top_via(t.peer.transport, self.local.sent_by(t.peer.transport), &Branch::random()));
        self.tx.send_stateless(ack, t.peer);
        self.notify_refer(now, key, t.side, "SIP/2.0 200 OK", true);
        self.end_leg(now, key, t.side);
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.party_left(t.side, wall);
        call.cdr.parties.push(PartyLog { role: PartyRole::TransferTarget, party: t.target.extension.clone(), external: t.target_trunk.is_some(), joined_at: wall, left_at: None });
        let new_id = dialog.id().clone();
        call.take_over(t.side, dialog, t.peer, t.target, t.target_trunk, Some(resp.body.clone()));
        self.calls.by_dialog.insert(new_id, (key, t.side));
        self.events.push_back(CoreEvent::RelayNewParty { call: key, side: t.side });
        media::steer_relay(&mut self.events, key, t.side, &resp.body, t.peer.addr.ip());
        // The transferee may have been put on hold by the transferor: a fresh offer
        // with the target's media brings it back.
        let stays = t.side.other();
        self.reinvite(now, key, stays, &resp.body);
        self.reevaluate_policy(now, key, "transfer");
    }

    fn fail_transfer_after_answer(&mut self, now: Instant, key: CallKey, t: Transfer) {
        tracing::warn!("unusable 2xx from a transfer target");
        self.notify_refer(now, key, t.side, "SIP/2.0 502 Bad Gateway", true);
    }

    /// BYE to the party on `side` (it leaves the call; the call itself goes on), and
    /// forgets its dialog.
    pub(crate) fn end_leg(&mut self, now: Instant, key: CallKey, side: LegSide) {
        // Its answer is ours to swallow: the client tx stays indexed to the call.
        self.send_own_request(now, key, side, Method::Bye, vec![], vec![]);
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let dialog = match side {
            LegSide::A => call.a_dialog.take(),
            LegSide::B => call.b_dialog.take(),
        };
        if let Some(d) = dialog {
            self.calls.by_dialog.remove(d.id());
        }
    }

    /// The leg a Replaces names: its Call-ID, and both tags in either order (the phone
    /// may name the dialog from its side or from ours).
    fn replaced_leg(&self, replaces: &Replaces) -> Option<(CallKey, LegSide)> {
        self.calls.by_dialog.iter().find_map(|(d, &leg)| {
            let tags = [d.local_tag.as_str(), d.remote_tag.as_str()];
            (d.call_id.as_str() == replaces.call_id && tags.contains(&replaces.to_tag.as_str()) && tags.contains(&replaces.from_tag.as_str()))
                .then_some(leg)
        })
    }

    /// A NOTIFY of the implicit refer subscription (RFC 3515 §2.4.4) to `side`.
    pub(crate) fn notify_refer(&mut self, now: Instant, key: CallKey, side: LegSide, frag: &str, terminated: bool) {
        let state = if terminated { "terminated;reason=noresource" } else { "active;expires=60" };
        let extra = vec![
            Header::Event(rsip::headers::Event::new("refer")),
            Header::SubscriptionState(rsip::headers::SubscriptionState::new(state)),
            Header::ContentType(rsip::headers::ContentType::new("message/sipfrag;version=2.0")),
        ];
        self.send_own_request(now, key, side, Method::Notify, extra, format!("{frag}\r\n").into_bytes());
    }

    /// A re-INVITE of our own to `side`, offering `sdp` (the other party's description)
    /// anchored on that side's relay ports. Its 2xx is ACKed and steers the relay.
    pub(crate) fn reinvite(&mut self, now: Instant, key: CallKey, side: LegSide, sdp: &[u8]) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        let Some(ports) = &call.relay else { return };
        let Ok(mut offer) = media::reoffer(sdp, self.local.ip, &ports.facing(side)) else { return };
        // Whatever direction the other party answered with, this side may send again.
        let text = String::from_utf8_lossy(&offer).replace("a=sendonly", "a=sendrecv").replace("a=recvonly", "a=sendrecv").replace("a=inactive", "a=sendrecv");
        offer = text.into_bytes();
        let extra = vec![Header::ContentType(rsip::headers::ContentType::new("application/sdp"))];
        self.send_own_request(now, key, side, Method::Invite, extra, offer);
    }

    /// An INVITE with Replaces (RFC 3891): the authenticated caller `newcomer` takes the
    /// place of the leg the header names, in the same tenant (a phone completing an
    /// attended transfer or picking up a call itself). The replaced phone gets BYE, the
    /// remaining party a re-INVITE with the newcomer's media.
    pub(crate) fn on_invite_replaces(&mut self, now: Instant, id: ServerTxId, req: Request, from: hark_sip::transport::Peer, newcomer: UserKey, replaces: Option<Replaces>) {
        let Some(replaces) = replaces else {
            return self.reply(now, &id, &req, 400, "Bad Request (malformed Replaces)", vec![]);
        };
        let found = self.replaced_leg(&replaces);
        // RFC 3891 §3: 481 when the dialog is unknown (also for another tenant's call:
        // no existence leak).
        let Some((key, side)) = found.filter(|(k, _)| {
            self.calls.calls.get(k).is_some_and(|c| c.tenant_id == newcomer.tenant_id && c.state == CallState::Answered && c.transfer.is_none())
        }) else {
            return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist", vec![]);
        };
        let offer = match media::prepare_offer(&req) {
            Ok(o) => o.body,
            Err(reject) => return self.reply(now, &id, &req, reject.code, &reject.reason, vec![]),
        };
        let Some(call) = self.calls.calls.get(&key) else { return };
        let Some(ports) = &call.relay else { return };
        let Ok(answer) = media::answer_for_caller(call.sdp(side.other()), self.local.ip, &ports.facing(side)) else {
            return self.reply(now, &id, &req, 488, "Not Acceptable Here", vec![]);
        };
        let tag = Tag::random();
        let contact = self.local.contact(from.transport);
        let Some(dialog) = rsip::headers::Contact::new(contact.clone()).typed().ok().and_then(|c| Dialog::uas(&req, &tag, c).ok()) else {
            return self.reply(now, &id, &req, 400, "Bad Request (no dialog)", vec![]);
        };
        let mut dialog = dialog;
        dialog.confirm();
        let (session, state) = (call.session.to_string(), call.recording.to_header_value());
        let mut ok = hark_sip::response_to(&req, hark_sip::status(200, "OK"), Some(&tag));
        ok.headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        ok.headers.push(Header::Other(super::invite::X_SESSION_ID.into(), session));
        ok.headers.push(Header::Other(super::invite::X_RECORDING_STATE.into(), state));
        ok.headers.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
        ok.body = answer;
        let _ = self.tx.send_response(now, &id, ok);

        let wall = self.wall(now);
        tracing::info!(newcomer = %newcomer.extension, "INVITE with Replaces: a leg is replaced");
        self.end_leg(now, key, side);
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.party_left(side, wall);
        call.cdr.parties.push(PartyLog { role: PartyRole::TransferTarget, party: newcomer.extension.clone(), external: false, joined_at: wall, left_at: None });
        self.calls.by_dialog.insert(dialog.id().clone(), (key, side));
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.take_over(side, dialog, from, newcomer, None, Some(offer.clone()));
        self.events.push_back(CoreEvent::RelayNewParty { call: key, side });
        media::steer_relay(&mut self.events, key, side, &offer, from.addr.ip());
        self.reinvite(now, key, side.other(), &offer);
        self.reevaluate_policy(now, key, "replaces");
    }

    /// REFER with Replaces: the transferor (on `side` of `key`) joins the party it talks
    /// to here with the one of the call the Replaces names.
    fn on_attended_refer(&mut self, now: Instant, key: CallKey, side: LegSide, id: ServerTxId, req: Request, replaces: Replaces) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        let (tenant_id, transferor) = (call.tenant_id, call.party(side).clone());
        // The transferor's leg in its other call, matched by Call-ID and both tags.
        let other = self.replaced_leg(&replaces);
        let Some((key2, side2)) = other.filter(|(k, _)| *k != key) else {
            return self.reply(now, &id, &req, 403, "Forbidden (Replaces names no call of yours)", vec![]);
        };
        let Some(call2) = self.calls.calls.get(&key2) else { return };
        if call2.tenant_id != tenant_id || call2.party(side2) != &transferor || call2.state != CallState::Answered || call2.transfer.is_some() {
            return self.reply(now, &id, &req, 403, "Forbidden (Replaces names no call of yours)", vec![]);
        }
        self.reply(now, &id, &req, 202, "Accepted", vec![]);
        self.notify_refer(now, key, side, "SIP/2.0 100 Trying", false);
        let wall = self.wall(now);

        // The transferee leaves call 1 with its dialog.
        let moving = side.other();
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let (dialog, peer) = match moving {
            LegSide::A => (call.a_dialog.take(), Some(call.a_peer)),
            LegSide::B => (call.b_dialog.take(), call.b_peer),
        };
        let (Some(dialog), Some(peer)) = (dialog, peer) else { return };
        let (who, trunk) = (call.party(moving).clone(), call.trunks[moving as usize]);
        call.party_left(moving, wall);
        tracing::info!(session = %call.session, transferor = %transferor.extension, transferee = %who.extension, "attended transfer");

        // ... and takes the transferor's place in call 2.
        self.end_leg(now, key2, side2);
        let Some(call2) = self.calls.calls.get_mut(&key2) else { return };
        call2.party_left(side2, wall);
        call2.cdr.parties.push(PartyLog { role: PartyRole::TransferTarget, party: who.extension.clone(), external: trunk.is_some(), joined_at: wall, left_at: None });
        self.calls.by_dialog.insert(dialog.id().clone(), (key2, side2));
        let Some(call2) = self.calls.calls.get_mut(&key2) else { return };
        call2.take_over(side2, dialog, peer, who, trunk, None);
        self.events.push_back(CoreEvent::RelayNewParty { call: key2, side: side2 });
        // Its media moves to call 2's relay: a new offer with the remaining party's codecs.
        let remaining_sdp = call2.sdp(side2.other()).to_vec();
        self.reinvite(now, key2, side2, &remaining_sdp);
        self.reevaluate_policy(now, key2, "transfer");

        // Call 1 is over for everyone: the transferor is told and let go.
        self.notify_refer(now, key, side, "SIP/2.0 200 OK", true);
        let by = if side == LegSide::A { HangupBy::Caller } else { HangupBy::Callee };
        self.hang_up(now, key, None, by, "transferred");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_values_parse_in_any_order_and_percent_encoded() {
        let r = Replaces::parse("abc@host;to-tag=1;from-tag=2").unwrap();
        assert_eq!((r.call_id.as_str(), r.to_tag.as_str(), r.from_tag.as_str()), ("abc@host", "1", "2"));
        let r = Replaces::parse("abc; from-tag=2 ;to-tag=1;early-only").unwrap();
        assert_eq!((r.to_tag.as_str(), r.from_tag.as_str()), ("1", "2"));
        assert_eq!(Replaces::parse("abc;to-tag=1"), None);
        assert_eq!(Replaces::parse(";to-tag=1;from-tag=2"), None);
        let r = replaces_in_uri("sip:102@pbx.test?Replaces=xyz%40h%3Bto-tag%3Da%3Bfrom-tag%3Db&Foo=1").unwrap();
        assert_eq!((r.call_id.as_str(), r.to_tag.as_str(), r.from_tag.as_str()), ("xyz@h", "a", "b"));
        assert_eq!(replaces_in_uri("sip:102@pbx.test"), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
