//! Requests inside an answered call: BYE ends it, a re-INVITE (hold, resume, codec
//! change) is carried to the other leg with the SDP re-anchored, and other requests
//! (INFO, MESSAGE, UPDATE, NOTIFY) are relayed as they are, their answers relayed back.

use hark_sip::rsip::headers::UntypedHeader;
use super::call::{CallState, LegSide, Relayed};
use super::cdr::HangupBy;
use super::{media, CallKey};
use crate::core::PbxCore;
use hark_sip::dialog::{top_via, DialogId};
use hark_sip::rsip::{self, Header, Method, Request, Response};
use hark_sip::transaction::{ClientTxId, ServerTxId};
use hark_sip::transport::Peer;
use hark_sip::{response_to, status, Branch};
use std::time::Instant;

impl PbxCore {
    pub(crate) fn on_in_dialog(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        let found = DialogId::from_incoming_request(&req).ok().and_then(|d| self.calls.by_dialog.get(&d).copied());
        let Some((key, side)) = found else {
            return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist", vec![]);
        };
        let Some(call) = self.calls.calls.get_mut(&key) else {
            return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist", vec![]);
        };
        // A REFER moves the call elsewhere: only the leg's own phone may send it.
        if req.method == Method::Refer && call.peer(side).addr != from.addr {
            return self.reply(now, &id, &req, 403, "Forbidden (not a party of this call)", vec![]);
        }
        let dialog = match side {
            LegSide::A => call.a_dialog.as_mut(),
            LegSide::B => call.b_dialog.as_mut(),
        };
        let Some(dialog) = dialog else {
            return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist", vec![]);
        };
        if let Err(e) = dialog.handle_request(&req) {
            tracing::debug!(error = %e, "in-dialog request refused");
            return self.reply(now, &id, &req, 500, "Server Internal Error (CSeq out of order)", vec![]);
        }
        // The peer may have moved (NAT rebinding): answer and send where it is now.
        match side {
            LegSide::A => call.a_peer = from,
            LegSide::B => call.b_peer = Some(from),
        }
        match req.method {
            Method::Bye => {
                self.reply(now, &id, &req, 200, "OK", vec![]);
                let by = if side == LegSide::A { HangupBy::Caller } else { HangupBy::Callee };
                self.hang_up(now, key, Some(side), by, "BYE");
            }
            Method::Options => self.reply(now, &id, &req, 200, "OK", vec![Header::Allow(rsip::headers::Allow::new(crate::core::ALLOW))]),
            Method::Refer => self.on_refer(now, key, side, id, req),
            // Media control is for the PBX, never for the other party.
            Method::Message if self.on_message_in_dialog(now, key, side, &id, &req) => {}
            Method::Info => {
                self.on_info_digit(now, key, side, &req);
                self.relay_in_dialog(now, key, side, id, req)
            }
            Method::Invite | Method::Message | Method::Update | Method::Notify => {
                self.relay_in_dialog(now, key, side, id, req)
            }
            _ => self.reply(now, &id, &req, 405, "Method Not Allowed", vec![Header::Allow(rsip::headers::Allow::new(crate::core::ALLOW))]),
        }
    }

    /// Carries an in-dialog request to the other leg.
    fn relay_in_dialog(&mut self, now: Instant, key: CallKey, from_side: LegSide, id: ServerTxId, req: Request) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        if call.state != CallState::Answered {
            return self.reply(now, &id, &req, 491, "Request Pending", vec![]);
        }
        let invite_pending = call.in_dialog_tx.iter().any(|(_, _, r)| r.as_ref().is_some_and(|r| r.request.method == Method::Invite));
        if req.method == Method::Invite && invite_pending {
            // Glare (§14.2): one offer/answer at a time.
            return self.reply(now, &id, &req, 491, "Request Pending", vec![]);
        }
        let to_side = from_side.other();
        let mut body = req.body.clone();
        let mut content_type = req.headers.iter().find(|h| matches!(h, Header::ContentType(_))).cloned();
        if req.method == Method::Invite && !req.body.is_empty() {
            let Some(ports) = call.relay.clone() else { return };
            let ports_to = ports.facing(to_side);
            match media::reoffer(&req.body, self.local.ip, &ports_to) {
                Ok(sdp) => body = sdp,
                Err(reject) => return self.reply(now, &id, &req, reject.code, &reject.reason, vec![]),
            }
            content_type = Some(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
            let from_ip = call.peer(from_side).addr.ip();
            media::steer_relay(&mut self.events, key, from_side, &req.body, from_ip);
        }
        let local = self.local;
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let (dialog, peer) = call.leg_mut(to_side);
        let (Some(dialog), Some(peer)) = (dialog, peer) else {
            return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist", vec![]);
        };
        let via = top_via(peer.transport, local.sent_by(peer.transport), &Branch::random());
        let Ok(mut out) = dialog.create_request(req.method, via) else {
            return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist", vec![]);
        };
        for h in req.headers.iter() {
            // Headers the far end may need; the dialog ones are ours.
            if let Header::Other(name, _) = h
                && (name.eq_ignore_ascii_case("Event") || name.eq_ignore_ascii_case("Info-Package") || name.eq_ignore_ascii_case("Subscription-State")) {
                    out.headers.push(h.clone());
                }
            if matches!(h, Header::Event(_) | Header::SubscriptionState(_)) {
                out.headers.push(h.clone());
            }
        }
        if let Some(ct) = content_type {
            out.headers.push(ct);
        }
        out.body = body;
        match self.tx.send_request(now, out.clone(), peer) {
            Ok(tx) => {
                call.in_dialog_tx.push((tx, to_side, Some(Relayed { from_side, server_tx: id, request: req })));
                self.calls.by_client_tx.insert(tx, key);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not relay an in-dialog request");
                self.reply(now, &id, &req, 500, "Server Internal Error", vec![]);
            }
        }
    }

    /// ACKs a 2xx to a re-INVITE we sent to `side`; returns where that phone is.
    fn ack_reinvite(&mut self, key: CallKey, side: LegSide, resp: &Response) -> Option<Peer> {
        let local = self.local;
        let call = self.calls.calls.get_mut(&key)?;
        let (Some(dialog), Some(peer)) = call.leg_mut(side) else { return None };
        let _ = dialog.handle_response(resp);
        let (seq, _) = hark_sip::SipHeaders::cseq(resp).unwrap_or((0, Method::Invite));
        let via = top_via(peer.transport, local.sent_by(peer.transport), &Branch::random());
        let ack = dialog.ack_for_2xx(seq, via);
        self.tx.send_stateless(ack, peer);
        Some(peer)
    }

    /// An in-dialog request of the PBX's own to `side` (NOTIFY, re-INVITE, state INFO).
    pub(crate) fn send_own_request(&mut self, now: Instant, key: CallKey, side: LegSide, method: Method, extra: Vec<Header>, body: Vec<u8>) {
        let local = self.local;
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let (dialog, peer) = call.leg_mut(side);
        let (Some(dialog), Some(peer)) = (dialog, peer) else { return };
        let via = top_via(peer.transport, local.sent_by(peer.transport), &Branch::random());
        // The dialog's request carries our Contact already.
        let Ok(mut req) = dialog.create_request(method, via) else { return };
        req.headers.extend(extra);
        req.body = body;
        if let Ok(tx) = self.tx.send_request(now, req, peer) {
            call.in_dialog_tx.push((tx, side, None));
            self.calls.by_client_tx.insert(tx, key);
        }
    }

    /// The other leg answered a request we relayed (or a BYE we sent).
    pub(crate) fn on_in_dialog_response(&mut self, now: Instant, key: CallKey, tx: ClientTxId, resp: Response) {
        let code = resp.status_code.code();
        if code < 200 {
            return;
        }
        let local = self.local;
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let Some(pos) = call.in_dialog_tx.iter().position(|(t, ..)| *t == tx) else { return };
        let (_, answered_side, pending) = call.in_dialog_tx.remove(pos);
        self.calls.by_client_tx.remove(&tx);
        let Some(pending) = pending else {
            // Our own request (a state INFO, a BYE, a NOTIFY, a re-INVITE): a phone that
            // does not take the state INFO is not sent more; our re-INVITE's 2xx is
            // ACKed and its answer steers the relay.
            let is_invite = hark_sip::SipHeaders::cseq(&resp).is_ok_and(|(_, m)| m == Method::Invite);
            if is_invite && (200..300).contains(&code) {
                if let Some(peer) = self.ack_reinvite(key, answered_side, &resp)
                    && !resp.body.is_empty()
                {
                    let Some(call) = self.calls.calls.get_mut(&key) else { return };
                    call.set_sdp(answered_side, resp.body.clone());
                    media::steer_relay(&mut self.events, key, answered_side, &resp.body, peer.addr.ip());
                }
            } else if matches!(code, 415 | 469) {
                call.info_refused[answered_side as usize] = true;
            }
            return;
        };
        let is_invite = pending.request.method == Method::Invite;
        // ACK the other leg's 2xx to our re-INVITE at once (the two legs ACK independently).
        if is_invite && (200..300).contains(&code) {
            self.ack_reinvite(key, answered_side, &resp);
        }
        let Some(call) = self.calls.calls.get(&key) else { return };
        // The request is in-dialog: its To already carries our tag.
        let mut answer = response_to(&pending.request, status(code, &super::outcome::reason_of(&resp)), None);
        if is_invite && (200..300).contains(&code) && !resp.body.is_empty() {
            let Some(ports) = call.relay.clone() else { return };
            let ports_back = ports.facing(pending.from_side);
            if let Ok(sdp) = media::answer_for_caller(&resp.body, local.ip, &ports_back) {
                answer.body = sdp;
                answer.headers.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
            }
            let answered_ip = call.peer(answered_side).addr.ip();
            media::steer_relay(&mut self.events, key, answered_side, &resp.body, answered_ip);
            let contact = self.local.contact(call.peer(pending.from_side).transport);
            answer.headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        } else if !is_invite && !resp.body.is_empty() {
            answer.body = resp.body.clone();
            if let Some(ct) = resp.headers.iter().find(|h| matches!(h, Header::ContentType(_))) {
                answer.headers.push(ct.clone());
            }
        }
        let _ = self.tx.send_response(now, &pending.server_tx, answer);
        // RFC 3261 §12.2.1.2: 481 or 408 to an in-dialog request ends the dialog.
        if code == 481 || code == 408 {
            let by = if answered_side == LegSide::A { HangupBy::Caller } else { HangupBy::Callee };
            self.hang_up(now, key, None, by, &format!("{code} on in-dialog request"));
        }
    }
}
