//! Requests that arrive outside a dialog (a new INVITE, OPTIONS, MESSAGE) and the
//! UAS side of a call: ringing, answer with our SDP answer, reject, CANCEL, the ACK, and
//! retransmitting our 2xx until that ACK comes (RFC 3261 §13.3).

use super::Phone;
use super::build::ALLOW;
use crate::call::{Call, CallState, Retransmit};
use crate::error::PhoneError;
use crate::event::{CallHandle, Direction, EndReason, PhoneEvent};
use crate::sdp_offer::{LocalSdp, answer_direction, audio_section, choose_for_answer, media_params};
use bytes::Bytes;
use hark_sip::dialog::Dialog;
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::message::HeadersExt;
use hark_sip::rsip::{self, Header, Method, Request, Response};
use hark_sip::transaction::ServerTxId;
use hark_sip::transport::Peer;
use hark_sip::{SipHeaders, Tag, response_to, status};
use std::time::{Duration, Instant};

impl Phone {
    pub(super) fn on_request(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        if req.to_tag().ok().flatten().is_some() {
            return self.on_in_dialog_request(now, id, req, from);
        }
        match req.method {
            Method::Invite => self.on_new_invite(now, id, req, from),
            Method::Options => {
                let mut resp = response_to(&req, rsip::StatusCode::OK, Some(&Tag::random()));
                resp.headers.push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
                self.respond(now, &id, resp);
            }
            Method::Message => self.reply(now, &id, &req, 200, "OK"),
            Method::Bye | Method::Info | Method::Notify | Method::Update | Method::Refer | Method::PRack => {
                self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist")
            }
            _ => self.reply(now, &id, &req, 405, "Method Not Allowed"),
        }
    }

    pub(super) fn reply(&mut self, now: Instant, id: &ServerTxId, req: &Request, code: u16, reason: &str) {
        let resp = response_to(req, status(code, reason), Some(&Tag::random()));
        self.respond(now, id, resp);
    }

    pub(super) fn respond(&mut self, now: Instant, id: &ServerTxId, resp: Response) {
        if let Err(e) = self.tx.send_response(now, id, resp) {
            tracing::debug!(error = %e, "response not sent");
        }
    }

    fn on_new_invite(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        let Ok(call_id) = req.call_id() else { return self.reply(now, &id, &req, 400, "Missing Call-ID") };
        if self.calls.values().any(|c| c.is_live() && c.call_id == call_id) {
            return self.reply(now, &id, &req, 482, "Loop Detected");
        }
        // An INVITE without SDP (delayed offer): our 200 makes the offer, its ACK answers.
        let offer = if req.body.is_empty() {
            None
        } else {
            let section = match audio_section(&req.body) {
                Ok(s) => s,
                Err(e) => return self.reply(now, &id, &req, 488, &format!("Not Acceptable Here ({e})")),
            };
            match choose_for_answer(&self.config, &section) {
                Ok(c) => Some((c, section)),
                Err(_) => return self.reply(now, &id, &req, 488, "No Common Codec"),
            }
        };
        let handle = self.new_handle();
        let mut call = Call::new(handle, Direction::Incoming, call_id, Tag::random(), from, 0);
        if let Some((chosen, section)) = offer {
            call.chosen = Some(chosen);
            call.remote_media = Some(section);
        }
        call.server_tx = Some(id);
        let mut ringing = response_to(&req, rsip::StatusCode::Ringing, Some(&call.local_tag));
        ringing.headers.push(Header::Contact(rsip::headers::Contact::new(self.contact_value())));
        let replaces = super::build::other_header(&req.headers, "Replaces").and_then(|v| self.replaced_call(v));
        let from_value = req.from_header().map(|h| h.value().to_owned()).unwrap_or_default();
        let to_value = req.to_header().map(|h| h.value().to_owned()).unwrap_or_default();
        let headers = req.headers.clone();
        call.remote_invite = Some(req);
        self.calls.insert(handle, call);
        self.respond(now, &id, ringing);
        self.events.push_back(PhoneEvent::IncomingCall { call: handle, from: from_value, to: to_value, replaces });
        self.read_recording_headers(handle, &headers);
    }

    /// The established call a Replaces header value (`call-id;to-tag=…;from-tag=…`)
    /// names: to-tag is ours, from-tag the peer's (RFC 3891 §3).
    fn replaced_call(&self, value: &str) -> Option<CallHandle> {
        let mut parts = value.split(';').map(str::trim);
        let call_id = parts.next()?;
        let (mut to_tag, mut from_tag) = (None, None);
        for p in parts {
            match p.split_once('=') {
                Some((n, v)) if n.trim().eq_ignore_ascii_case("to-tag") => to_tag = Some(v.trim()),
                Some((n, v)) if n.trim().eq_ignore_ascii_case("from-tag") => from_tag = Some(v.trim()),
                _ => {}
            }
        }
        let (to_tag, from_tag) = (to_tag?, from_tag?);
        self.calls
            .values()
            .find(|c| {
                c.state == CallState::Confirmed
                    && c.dialog.as_ref().is_some_and(|d| {
                        d.id().call_id.as_str() == call_id
                            && d.id().local_tag.as_str() == to_tag
                            && d.id().remote_tag.as_str() == from_tag
                    })
            })
            .map(|c| c.handle)
    }

    /// Answers an incoming call; media will use `rtp_port`.
    pub fn answer(&mut self, now: Instant, handle: CallHandle, rtp_port: u16) -> Result<(), PhoneError> {
        let contact = self.contact_typed().ok_or(PhoneError::Build("our Contact".into()))?;
        let contact_value = self.contact_value();
        let media_ip = self.media_ip;
        let t1 = self.tx.config().t1;
        let timeout = self.tx.config().transaction_timeout();
        let call = self.calls.get_mut(&handle).filter(|c| c.is_live()).ok_or(PhoneError::NoSuchCall(handle))?;
        if call.state != CallState::Ringing || call.direction != Direction::Incoming {
            return Err(PhoneError::WrongState("only a ringing incoming call can be answered"));
        }
        let (Some(req), Some(id)) = (call.remote_invite.clone(), call.server_tx) else {
            return Err(PhoneError::WrongState("incomplete incoming call"));
        };
        call.rtp_port = rtp_port;
        let local = LocalSdp {
            config: &self.config,
            ip: media_ip,
            port: rtp_port,
            session_id: call.sdp_session,
            version: call.sdp_version,
        };
        // With the caller's offer: our answer, and media at once. Without: our offer,
        // and media once the ACK brings the answer.
        let (body, media) = match (call.chosen, call.remote_media.clone()) {
            (Some(chosen), Some(section)) => {
                let direction = answer_direction(section.direction, call.local_hold);
                (local.answer(&chosen, direction), Some(media_params(&chosen, &section, direction)))
            }
            _ => (local.offer(hark_media::sdp::Direction::SendRecv), None),
        };
        let mut dialog = Dialog::uas(&req, &call.local_tag, contact).map_err(|e| PhoneError::Build(e.to_string()))?;
        dialog.confirm();
        let mut ok = response_to(&req, rsip::StatusCode::OK, Some(&call.local_tag));
        ok.headers.push(Header::Contact(rsip::headers::Contact::new(contact_value)));
        ok.headers.push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
        ok.headers.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
        ok.body = body;
        let bytes = Bytes::from(hark_sip::encode(&rsip::SipMessage::Response(ok.clone())));
        call.dialog = Some(dialog);
        call.state = CallState::Confirmed;
        call.uas_2xx = Some(Retransmit { bytes, peer: call.peer, next_at: now + t1, interval: t1, give_up_at: now + timeout });
        self.respond(now, &id, ok);
        self.events.push_back(PhoneEvent::Answered { call: handle });
        if let Some(params) = media {
            self.events.push_back(PhoneEvent::Media { call: handle, params });
        }
        Ok(())
    }

    /// Refuses an incoming call with `code` (486 Busy Here, 603 Decline…).
    pub fn reject(&mut self, now: Instant, handle: CallHandle, code: u16) -> Result<(), PhoneError> {
        let call = self.call_mut(handle)?;
        if call.state != CallState::Ringing {
            return Err(PhoneError::WrongState("only a ringing incoming call can be rejected"));
        }
        let (Some(req), Some(id)) = (call.remote_invite.clone(), call.server_tx) else {
            return Err(PhoneError::WrongState("incomplete incoming call"));
        };
        let code = if (300..700).contains(&code) { code } else { 486 };
        let tag = call.local_tag.clone();
        let resp = response_to(&req, status(code, hark_sip::serialize::reason_phrase(code)), Some(&tag));
        self.respond(now, &id, resp);
        self.end_call(handle, EndReason::LocalReject { code });
        Ok(())
    }

    pub(super) fn on_ack(&mut self, req: Request) {
        let (Ok(call_id), Ok(Some(tag))) = (req.call_id(), req.to_tag()) else { return };
        let Some(call) = self.calls.values_mut().find(|c| c.call_id == call_id && c.local_tag == tag) else { return };
        call.uas_2xx = None;
        // The answer to the offer our 200 made (the INVITE had no SDP).
        if call.remote_media.is_none() && !req.body.is_empty() {
            let handle = call.handle;
            self.apply_remote_answer(handle, &req.body);
        }
    }

    pub(super) fn on_cancel(&mut self, now: Instant, invite: ServerTxId) {
        let Some(handle) = self
            .calls
            .values()
            .find(|c| c.server_tx == Some(invite) && c.state == CallState::Ringing)
            .map(|c| c.handle)
        else {
            return;
        };
        if let Some(req) = self.calls.get(&handle).and_then(|c| c.remote_invite.clone()) {
            let tag = self.calls.get(&handle).map(|c| c.local_tag.clone());
            let resp = response_to(&req, rsip::StatusCode::RequestTerminated, tag.as_ref());
            self.respond(now, &invite, resp);
        }
        self.end_call(handle, EndReason::RemoteHangup);
    }

    /// Our 2xx again, T1 doubling up to T2, until the ACK or 64*T1.
    pub(super) fn retransmit_2xx(&mut self, now: Instant) {
        let t2 = self.tx.config().t2;
        let mut out = Vec::new();
        for call in self.calls.values_mut() {
            let Some(r) = call.uas_2xx.as_mut() else { continue };
            if r.next_at > now {
                continue;
            }
            if now >= r.give_up_at {
                tracing::warn!(call = %call.handle, "no ACK for our 2xx");
                call.uas_2xx = None;
                continue;
            }
            out.push((r.bytes.clone(), r.peer));
            r.interval = (r.interval * 2).min(t2).max(Duration::from_millis(1));
            r.next_at = now + r.interval;
        }
        for (bytes, peer) in out {
            self.tx.send_stateless(bytes, peer);
        }
    }
}
