//! Outgoing calls (RFC 3261 §13.2): INVITE with our SDP offer, digest retry, the dialog
//! and ACK on 2xx, CANCEL before the answer.

use super::build::{ALLOW, cseq_of, new_branch, other_header, reason_of, set_cseq};
use super::{Phone, TxPurpose};
use crate::call::{Call, CallState, Pending};
use crate::error::PhoneError;
use crate::event::{CallHandle, Direction, EndReason, PhoneEvent};
use crate::sdp_offer::{LocalSdp, audio_section, choose_from_answer, media_params};
use bytes::Bytes;
use hark_media::sdp::Direction as SdpDirection;
use hark_recorder::RecordingState;
use hark_sip::dialog::Dialog;
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{self, Header, Method, Request, Response, Uri};
use hark_sip::transaction::ClientTxId;
use hark_sip::{CallId, Tag};
use std::time::Instant;

pub(crate) const X_SESSION_ID: &str = "X-Session-Id";

impl Phone {
    /// The Request-URI for `target`: a sip: URI as given, else `sip:target@domain`.
    fn target_uri(&self, target: &str) -> Result<Uri, PhoneError> {
        let text = target.trim();
        let full = if text.starts_with("sip:") || text.starts_with("sips:") {
            text.to_owned()
        } else if !text.is_empty() && !text.contains(['@', ' ', '<', '>', ';']) {
            format!("sip:{text}@{}", self.config.account.domain)
        } else {
            return Err(PhoneError::BadTarget(target.to_owned()));
        };
        Uri::try_from(full.as_str()).map_err(|_| PhoneError::BadTarget(target.to_owned()))
    }

    /// Places a call; media will use `rtp_port` on the media address.
    pub fn dial(&mut self, now: Instant, target: &str, rtp_port: u16) -> Result<CallHandle, PhoneError> {
        self.dial_with(now, target, rtp_port, None)
    }

    /// Places a call, with a Replaces header (RFC 3891) when it takes over a dialog.
    pub(super) fn dial_with(
        &mut self,
        now: Instant,
        target: &str,
        rtp_port: u16,
        replaces: Option<&str>,
    ) -> Result<CallHandle, PhoneError> {
        let uri = self.target_uri(target)?;
        let handle = self.new_handle();
        let mut call = Call::new(handle, Direction::Outgoing, CallId::random(), Tag::random(), self.server_peer(), rtp_port);
        let mut req = self.out_of_dialog_request(
            Method::Invite,
            uri.clone(),
            &format!("<{uri}>"),
            &call.call_id,
            &call.local_tag,
            1,
            true,
        );
        req.headers.push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
        if let Some(r) = replaces {
            req.headers.push(Header::Other("Replaces".into(), r.to_owned()));
        }
        let offer = LocalSdp {
            config: &self.config,
            ip: self.media_ip,
            port: rtp_port,
            session_id: call.sdp_session,
            version: call.sdp_version,
        }
        .offer(SdpDirection::SendRecv);
        Self::set_body(&mut req, "application/sdp", offer);
        let id = self.tx.send_request(now, req.clone(), call.peer).map_err(|e| PhoneError::Send(e.to_string()))?;
        call.invite = Some(req);
        call.invite_tx = Some(id);
        self.purposes.insert(id, TxPurpose::Invite(handle));
        self.calls.insert(handle, call);
        Ok(handle)
    }

    pub(super) fn on_invite_response(&mut self, now: Instant, handle: CallHandle, id: ClientTxId, resp: Response) {
        let code = resp.status_code.code();
        let Some(call) = self.calls.get_mut(&handle) else { return };
        match code {
            100 => {}
            101..=199 => {
                if call.state == CallState::Calling {
                    self.events.push_back(PhoneEvent::Ringing { call: handle, code });
                    // Early media (a 183 with SDP): play the ringback or announcement.
                    if !resp.body.is_empty() {
                        self.apply_remote_answer(handle, &resp.body);
                    }
                }
            }
            200..=299 => self.on_invite_2xx(now, handle, resp),
            401 | 407 if call.invite_tx == Some(id) && call.invite_auth_tries < 2 && call.state == CallState::Calling => {
                let Some(mut req) = call.invite.take() else { return };
                call.invite_auth_tries += 1;
                if !self.add_credentials(&mut req, &resp) {
                    return self.end_call(handle, EndReason::Rejected { code, reason: reason_of(&resp) });
                }
                let seq = cseq_of(&req) + 1;
                set_cseq(&mut req, seq);
                new_branch(&mut req, self.config.account.transport, self.local);
                let peer = self.server_peer();
                match self.tx.send_request(now, req.clone(), peer) {
                    Ok(new_id) => {
                        self.purposes.insert(new_id, TxPurpose::Invite(handle));
                        if let Some(call) = self.calls.get_mut(&handle) {
                            call.invite = Some(req);
                            call.invite_tx = Some(new_id);
                        }
                    }
                    Err(e) => self.end_call(handle, EndReason::Error(e.to_string())),
                }
            }
            _ => {
                if call.invite_tx != Some(id) {
                    return;
                }
                let reason = if call.state == CallState::Ending && code == 487 {
                    EndReason::LocalHangup
                } else {
                    EndReason::Rejected { code, reason: reason_of(&resp) }
                };
                self.report_transfer_outcome(now, handle, code, &reason_of(&resp));
                self.end_call(handle, reason);
            }
        }
    }

    fn on_invite_2xx(&mut self, now: Instant, handle: CallHandle, resp: Response) {
        self.report_transfer_outcome(now, handle, 200, "OK");
        let transport = self.config.account.transport;
        let local = self.local;
        let Some(call) = self.calls.get_mut(&handle) else { return };
        // A retransmitted 2xx: our ACK was lost; send it again.
        if let Some((ack, _)) = &call.ack {
            let bytes = ack.clone();
            let peer = call.peer;
            self.tx.send_stateless(bytes, peer);
            return;
        }
        let Some(invite) = call.invite.clone() else { return };
        let dialog = match Dialog::uac(&invite, &resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "2xx does not make a dialog");
                return;
            }
        };
        let seq = cseq_of(&invite);
        let ack = dialog.ack_for_2xx(seq, hark_sip::dialog::top_via(transport, local, &hark_sip::Branch::random()));
        let bytes = Bytes::from(hark_sip::encode(&rsip::SipMessage::Request(ack)));
        self.tx.send_stateless(bytes.clone(), call.peer);
        call.ack = Some((bytes, seq));
        call.dialog = Some(dialog);
        let hangup_now = call.state == CallState::Ending;
        call.state = CallState::Confirmed;
        self.events.push_back(PhoneEvent::Answered { call: handle });
        self.read_recording_headers(handle, &resp.headers);
        self.apply_remote_answer(handle, &resp.body);
        if hangup_now {
            // The user hung up while the answer was on its way: end it with a BYE.
            let _ = self.hangup(now, handle);
        }
    }

    /// X-Session-Id and X-Recording-State from an INVITE or its 200 (SPEC §1).
    pub(super) fn read_recording_headers(&mut self, handle: CallHandle, headers: &rsip::Headers) {
        let session = other_header(headers, X_SESSION_ID).map(str::to_owned);
        let state = other_header(headers, hark_recorder::control::RECORDING_STATE_HEADER)
            .and_then(|v| RecordingState::parse_header_value(v).ok());
        let Some(call) = self.calls.get_mut(&handle) else { return };
        if let Some(id) = session.filter(|s| !s.is_empty()) {
            call.session_id = Some(id.clone());
            self.events.push_back(PhoneEvent::SessionId { call: handle, session_id: id });
        }
        if let Some(state) = state {
            call.recording = state;
            self.events.push_back(PhoneEvent::RecordingState { call: handle, state });
        }
    }

    /// The peer's SDP answer to our offer: media follows it.
    pub(super) fn apply_remote_answer(&mut self, handle: CallHandle, body: &[u8]) {
        let Some(call) = self.calls.get_mut(&handle) else { return };
        if body.is_empty() {
            return;
        }
        let section = match audio_section(body) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(call = %handle, error = %e, "peer SDP unusable");
                return;
            }
        };
        let chosen = match choose_from_answer(&self.config, &section) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(call = %handle, error = %e, "no codec in common");
                return;
            }
        };
        let local_dir = if call.local_hold { SdpDirection::SendOnly } else { SdpDirection::SendRecv };
        // An answer's direction mirrors our offer (recvonly to our hold): whether the
        // peer holds us is read from its own offers only (`on_reinvite`).
        let params = media_params(&chosen, &section, local_dir);
        call.chosen = Some(chosen);
        call.remote_media = Some(section);
        self.events.push_back(PhoneEvent::Media { call: handle, params });
    }

    /// Hangs up: CANCEL before the answer, BYE after it, 603 for an unanswered
    /// incoming call.
    pub fn hangup(&mut self, now: Instant, handle: CallHandle) -> Result<(), PhoneError> {
        let via = self_via(self.config.account.transport, self.local);
        let call = self.calls.get_mut(&handle).filter(|c| c.is_live()).ok_or(PhoneError::NoSuchCall(handle))?;
        match (call.state, call.direction) {
            (CallState::Calling, _) => {
                call.state = CallState::Ending;
                let Some(invite) = call.invite.clone() else { return Ok(()) };
                let peer = call.peer;
                let cancel = cancel_for(&invite);
                let id = self.tx.send_request(now, cancel, peer).map_err(|e| PhoneError::Send(e.to_string()))?;
                self.purposes.insert(id, TxPurpose::Cancel(handle));
                Ok(())
            }
            (CallState::Ringing, Direction::Incoming) => self.reject(now, handle, 603),
            (CallState::Confirmed, _) => {
                let peer = call.peer;
                let Some(dialog) = call.dialog.as_mut() else { return Err(PhoneError::WrongState("no dialog")) };
                let bye = dialog.create_request(Method::Bye, via);
                let bye = bye.map_err(|e| PhoneError::Build(e.to_string()))?;
                call.state = CallState::Ending;
                let id = self.tx.send_request(now, bye, peer).map_err(|e| PhoneError::Send(e.to_string()))?;
                call.pending.push((id, Pending::Bye));
                self.purposes.insert(id, TxPurpose::InDialog(handle));
                Ok(())
            }
            (CallState::Ending, _) | (CallState::Ended, _) | (CallState::Ringing, Direction::Outgoing) => Ok(()),
        }
    }
}

pub(super) fn self_via(transport: hark_sip::transport::Transport, local: std::net::SocketAddr) -> rsip::typed::Via {
    hark_sip::dialog::top_via(transport, local, &hark_sip::Branch::random())
}

/// The CANCEL for an INVITE (§9.1): same Request-URI, Call-ID, From, To, top Via and
/// Route; CSeq number of the INVITE with method CANCEL.
fn cancel_for(invite: &Request) -> Request {
    let mut headers = rsip::Headers::default();
    let mut via_done = false;
    for h in invite.headers.iter() {
        match h {
            Header::Via(_) if !via_done => {
                via_done = true;
                headers.push(h.clone());
            }
            Header::From(_) | Header::To(_) | Header::CallId(_) | Header::Route(_) | Header::MaxForwards(_) => {
                headers.push(h.clone())
            }
            Header::Authorization(_) | Header::ProxyAuthorization(_) => headers.push(h.clone()),
            _ => {}
        }
    }
    headers.push(rsip::typed::CSeq { seq: cseq_of(invite), method: Method::Cancel }.into());
    Request { method: Method::Cancel, uri: invite.uri.clone(), version: rsip::Version::V2, headers, body: Vec::new() }
}
