//! Requests and responses inside a call's dialog: BYE, re-INVITE (hold and resume,
//! both ways), INFO (the PBX's recording state, DTMF), MESSAGE, REFER/NOTIFY.

use super::build::{ALLOW, reason_of};
use super::outgoing::self_via;
use super::{Phone, TxPurpose};
use crate::call::{CallState, Pending, Retransmit};
use crate::error::PhoneError;
use crate::event::{CallHandle, ControlVia, EndReason, PhoneEvent};
use crate::sdp_offer::{LocalSdp, answer_direction, audio_section, choose_for_answer, media_params};
use bytes::Bytes;
use hark_media::sdp::Direction as SdpDirection;
use hark_recorder::RecordingState;
use hark_sip::dialog::{DialogError, DialogId};
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{self, Header, Method, Request, Response};
use hark_sip::transaction::{ClientTxId, ServerTxId};
use hark_sip::transport::Peer;
use hark_sip::{SipHeaders, response_to};
use std::time::Instant;

impl Phone {
    fn call_of_dialog(&self, req: &Request) -> Option<CallHandle> {
        let id = DialogId::from_incoming_request(req).ok()?;
        self.calls.values().find(|c| c.dialog.as_ref().is_some_and(|d| *d.id() == id)).map(|c| c.handle)
    }

    pub(super) fn on_in_dialog_request(&mut self, now: Instant, id: ServerTxId, req: Request, _from: Peer) {
        let Some(handle) = self.call_of_dialog(&req) else {
            return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist");
        };
        let checked = self.calls.get_mut(&handle).and_then(|c| c.dialog.as_mut()).map(|d| d.handle_request(&req));
        match checked {
            Some(Ok(())) => {}
            Some(Err(DialogError::CSeqOutOfOrder { .. })) => return self.reply(now, &id, &req, 500, "CSeq Out Of Order"),
            Some(Err(DialogError::BadHeader(h))) => return self.reply(now, &id, &req, 400, &format!("Malformed {h}")),
            _ => return self.reply(now, &id, &req, 481, "Call/Transaction Does Not Exist"),
        }
        match req.method {
            Method::Bye => {
                self.reply(now, &id, &req, 200, "OK");
                self.end_call(handle, EndReason::RemoteHangup);
            }
            Method::Info => self.on_info(now, handle, id, &req),
            Method::Invite => self.on_reinvite(now, handle, id, &req),
            Method::Message | Method::Options => self.reply(now, &id, &req, 200, "OK"),
            Method::Notify => {
                self.reply(now, &id, &req, 200, "OK");
                let body = String::from_utf8_lossy(&req.body);
                if let Some(line) = body.lines().find(|l| l.starts_with("SIP/2.0 ")) {
                    let code: u16 = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
                    if code >= 200 {
                        let ok = (200..300).contains(&code);
                        self.events.push_back(PhoneEvent::TransferResult { call: handle, ok, reason: line[8..].to_owned() });
                    }
                }
            }
            Method::Refer => self.on_refer(now, handle, id, &req),
            _ => self.reply(now, &id, &req, 501, "Not Implemented"),
        }
    }

    fn on_info(&mut self, now: Instant, handle: CallHandle, id: ServerTxId, req: &Request) {
        let content_type = req.content_type().unwrap_or_default();
        if content_type == hark_recorder::control::JSON_CONTENT_TYPE {
            match RecordingState::parse_info_json(&req.body) {
                Ok(info) => {
                    self.reply(now, &id, req, 200, "OK");
                    let Some(call) = self.calls.get_mut(&handle) else { return };
                    if call.session_id.is_none() && !info.session_id.is_empty() {
                        call.session_id = Some(info.session_id.clone());
                        self.events.push_back(PhoneEvent::SessionId { call: handle, session_id: info.session_id });
                    }
                    if call.recording != info.state {
                        call.recording = info.state;
                        self.events.push_back(PhoneEvent::RecordingState { call: handle, state: info.state });
                    }
                    self.confirm_dtmf_control(handle, info.state);
                }
                Err(e) => self.reply(now, &id, req, 400, &e.reason_phrase()),
            }
            return;
        }
        match hark_media::dtmf::parse_info_body(&content_type, &req.body) {
            Ok(digit) => {
                self.reply(now, &id, req, 200, "OK");
                if let Some(digit) = digit {
                    self.events.push_back(PhoneEvent::DtmfReceived { call: handle, digit });
                }
            }
            Err(hark_media::dtmf::DtmfError::UnsupportedContentType) => {
                self.reply(now, &id, req, 415, "Unsupported Media Type")
            }
            Err(e) => self.reply(now, &id, req, 400, &e.to_string()),
        }
    }

    /// A re-INVITE from the peer: hold, resume or a new address. We answer its offer.
    fn on_reinvite(&mut self, now: Instant, handle: CallHandle, id: ServerTxId, req: &Request) {
        let section = match audio_section(&req.body) {
            Ok(s) => s,
            Err(_) if req.body.is_empty() => {
                return self.reply(now, &id, req, 488, "Offer Required");
            }
            Err(e) => return self.reply(now, &id, req, 488, &format!("Not Acceptable Here ({e})")),
        };
        let Ok(chosen) = choose_for_answer(&self.config, &section) else {
            return self.reply(now, &id, req, 488, "No Common Codec");
        };
        let contact = self.contact_value();
        let media_ip = self.media_ip;
        let t1 = self.tx.config().t1;
        let timeout = self.tx.config().transaction_timeout();
        let Some(call) = self.calls.get_mut(&handle) else { return };
        call.sdp_version += 1;
        let direction = answer_direction(section.direction, call.local_hold);
        let body = LocalSdp { config: &self.config, ip: media_ip, port: call.rtp_port, session_id: call.sdp_session, version: call.sdp_version }
            .answer(&chosen, direction);
        let mut ok = response_to(req, rsip::StatusCode::OK, Some(&call.local_tag));
        ok.headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        ok.headers.push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
        ok.headers.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
        ok.body = body;
        let bytes = Bytes::from(hark_sip::encode(&rsip::SipMessage::Response(ok.clone())));
        call.uas_2xx = Some(Retransmit { bytes, peer: call.peer, next_at: now + t1, interval: t1, give_up_at: now + timeout });
        // The peer holds us when its offer will not receive (sendonly, inactive) or
        // names no address (RFC 2543's c=0.0.0.0).
        let remote_hold = !section.direction.receives() || section.rtp_addr().is_none();
        let hold_changed = remote_hold != call.remote_hold;
        call.remote_hold = remote_hold;
        call.chosen = Some(chosen);
        let params = media_params(&chosen, &section, direction);
        call.remote_media = Some(section);
        let local = call.local_hold;
        self.respond(now, &id, ok);
        self.events.push_back(PhoneEvent::Media { call: handle, params });
        if hold_changed {
            self.events.push_back(PhoneEvent::Hold { call: handle, local, remote: remote_hold });
        }
    }

    /// Sends a request in the call's dialog and remembers what it is for.
    pub(super) fn send_in_dialog(
        &mut self,
        now: Instant,
        handle: CallHandle,
        method: Method,
        fill: impl FnOnce(&mut Request),
        pending: impl FnOnce(Request) -> Pending,
    ) -> Result<(), PhoneError> {
        let via = self_via(self.config.account.transport, self.local);
        let call = self.call_mut(handle)?;
        if call.state != CallState::Confirmed {
            return Err(PhoneError::WrongState("the call is not established"));
        }
        let peer = call.peer;
        let dialog = call.dialog.as_mut().ok_or(PhoneError::WrongState("no dialog"))?;
        let mut req = dialog.create_request(method, via).map_err(|e| PhoneError::Build(e.to_string()))?;
        req.headers.push(Header::UserAgent(rsip::headers::UserAgent::new(self.config.user_agent.clone())));
        fill(&mut req);
        let id = self.tx.send_request(now, req.clone(), peer).map_err(|e| PhoneError::Send(e.to_string()))?;
        if let Some(call) = self.calls.get_mut(&handle) {
            call.pending.push((id, pending(req)));
        }
        self.purposes.insert(id, TxPurpose::InDialog(handle));
        Ok(())
    }

    /// Puts the call on hold (a=sendonly) or takes it off (a=sendrecv) by re-INVITE.
    pub fn set_hold(&mut self, now: Instant, handle: CallHandle, hold: bool) -> Result<(), PhoneError> {
        let media_ip = self.media_ip;
        let call = self.call_mut(handle)?;
        call.sdp_version += 1;
        let (port, session, version) = (call.rtp_port, call.sdp_session, call.sdp_version);
        let direction = if hold { SdpDirection::SendOnly } else { SdpDirection::SendRecv };
        let offer = LocalSdp { config: &self.config, ip: media_ip, port, session_id: session, version }.offer(direction);
        self.send_in_dialog(
            now,
            handle,
            Method::Invite,
            |req| {
                req.headers.push(Header::Allow(rsip::headers::Allow::new(ALLOW)));
                Self::set_body(req, "application/sdp", offer);
            },
            |request| Pending::ReInvite { hold, request },
        )
    }

    /// Sends DTMF digits: RFC 4733 in the media when negotiated (and allowed), else INFO.
    pub fn send_dtmf(&mut self, now: Instant, handle: CallHandle, digits: &str) -> Result<(), PhoneError> {
        let mode = self.config.dtmf;
        let call = self.call_mut(handle)?;
        let te = call.chosen.and_then(|c| c.telephone_event_pt);
        let digits: String = digits.chars().filter_map(hark_media::dtmf::normalize_digit).collect();
        match (mode, te) {
            (crate::config::DtmfMode::Info, _) | (crate::config::DtmfMode::Auto, None) => {
                call.info_digits.extend(digits.chars());
                self.next_info_digit(now, handle);
            }
            (_, Some(pt)) => {
                self.events.push_back(PhoneEvent::SendRtpDtmf { call: handle, digits, payload_type: pt });
            }
            (crate::config::DtmfMode::Rfc4733, None) => {
                return Err(PhoneError::WrongState("the peer accepted no telephone-event"));
            }
        }
        Ok(())
    }

    fn next_info_digit(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else { return };
        if call.info_in_flight {
            return;
        }
        let Some(digit) = call.info_digits.pop_front() else { return };
        call.info_in_flight = true;
        let body = format!("Signal={digit}\r\nDuration=160\r\n").into_bytes();
        let sent = self.send_in_dialog(
            now,
            handle,
            Method::Info,
            |req| Self::set_body(req, "application/dtmf-relay", body),
            |_| Pending::Info,
        );
        if sent.is_err()
            && let Some(call) = self.calls.get_mut(&handle)
        {
            call.info_in_flight = false;
            call.info_digits.clear();
        }
    }

    /// Blind transfer (RFC 3515): REFER the peer to `target`.
    pub fn blind_transfer(&mut self, now: Instant, handle: CallHandle, target: &str) -> Result<(), PhoneError> {
        let uri = if target.starts_with("sip:") { target.to_owned() } else { format!("sip:{target}@{}", self.config.account.domain) };
        self.send_refer(now, handle, format!("<{uri}>"))
    }

    /// A REFER in the dialog of `handle` to `refer_to` (a name-addr), naming us in
    /// Referred-By.
    fn send_refer(&mut self, now: Instant, handle: CallHandle, refer_to: String) -> Result<(), PhoneError> {
        let referred_by = format!("<{}>", self.config.account.aor());
        self.send_in_dialog(
            now,
            handle,
            Method::Refer,
            |req| {
                req.headers.push(Header::Other("Refer-To".into(), refer_to));
                req.headers.push(Header::Other("Referred-By".into(), referred_by));
            },
            |_| Pending::Refer,
        )
    }

    /// Attended transfer (RFC 5589): REFER the peer of `call` to the peer of `target`,
    /// with Replaces naming our dialog with that peer, so the transferee's INVITE takes
    /// our place in it.
    pub fn attended_transfer(&mut self, now: Instant, handle: CallHandle, target: CallHandle) -> Result<(), PhoneError> {
        let other = self.calls.get(&target).filter(|c| c.state == CallState::Confirmed).ok_or(PhoneError::NoSuchCall(target))?;
        let dialog = other.dialog.as_ref().ok_or(PhoneError::WrongState("the target call has no dialog"))?;
        let id = dialog.id();
        let replaces = format!(
            "{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
            escape_uri_header(id.call_id.as_str()),
            escape_uri_header(id.remote_tag.as_str()),
            escape_uri_header(id.local_tag.as_str())
        );
        let mut uri = dialog.remote_uri().clone();
        uri.headers.clear();
        self.send_refer(now, handle, format!("<{uri}?Replaces={replaces}>"))
    }

    pub(super) fn on_in_dialog_response(&mut self, now: Instant, handle: CallHandle, id: ClientTxId, resp: Response) {
        let code = resp.status_code.code();
        if code < 200 {
            return;
        }
        let transport = self.config.account.transport;
        let local = self.local;
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let Some(pending) = call.take_pending(id) else { return };
        if (200..300).contains(&code)
            && let Some(d) = call.dialog.as_mut()
        {
            let _ = d.handle_response(&resp);
        }
        match pending {
            Pending::Bye => self.end_call(handle, EndReason::LocalHangup),
            Pending::ReInvite { hold, request } => {
                if (200..300).contains(&code) {
                    let seq = super::build::cseq_of(&request);
                    if let Some(d) = call.dialog.as_ref() {
                        let ack = d.ack_for_2xx(seq, self_via(transport, local));
                        let peer = call.peer;
                        self.tx.send_stateless(ack, peer);
                    }
                    if let Some(call) = self.calls.get_mut(&handle) {
                        call.local_hold = hold;
                    }
                    self.apply_remote_answer(handle, &resp.body);
                    if let Some(call) = self.calls.get(&handle) {
                        let (local, remote) = (call.local_hold, call.remote_hold);
                        self.events.push_back(PhoneEvent::Hold { call: handle, local, remote });
                    }
                } else {
                    tracing::warn!(call = %handle, code, "re-INVITE refused");
                }
            }
            Pending::ControlMessage { op, request, auth_tries } => {
                if (200..300).contains(&code) {
                    self.control_succeeded(handle, op, ControlVia::MessageInDialog);
                } else if (code == 401 || code == 407) && auth_tries < 2 {
                    let mut retry = request.clone();
                    if !self.add_credentials(&mut retry, &resp) {
                        return self.control_failed(handle, op, ControlVia::MessageInDialog, format!("{code} {}", reason_of(&resp)));
                    }
                    let creds: Vec<Header> = retry
                        .headers
                        .iter()
                        .filter(|h| matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)))
                        .cloned()
                        .collect();
                    let (ct, body) = (request.content_type().unwrap_or_default(), request.body.clone());
                    let sent = self.send_in_dialog(
                        now,
                        handle,
                        Method::Message,
                        |req| {
                            req.headers.extend(creds);
                            Self::set_body(req, &ct, body);
                        },
                        |request| Pending::ControlMessage { op, request, auth_tries: auth_tries + 1 },
                    );
                    if let Err(e) = sent {
                        self.control_failed(handle, op, ControlVia::MessageInDialog, e.to_string());
                    }
                } else {
                    self.control_failed(handle, op, ControlVia::MessageInDialog, format!("{code} {}", reason_of(&resp)));
                }
            }
            Pending::Info => {
                call.info_in_flight = false;
                if code >= 300 {
                    call.info_digits.clear();
                    tracing::warn!(call = %handle, code, "DTMF INFO refused");
                }
                self.next_info_digit(now, handle);
            }
            // Accepted: the outcome comes in the peer's NOTIFYs (message/sipfrag).
            Pending::Refer if (200..300).contains(&code) => {}
            Pending::Notify => {}
            Pending::Refer => {
                self.events.push_back(PhoneEvent::TransferResult {
                    call: handle,
                    ok: false,
                    reason: format!("{code} {}", reason_of(&resp)),
                });
            }
        }
        if code == 481 || code == 408 {
            self.end_call(handle, EndReason::Timeout);
        }
    }

    pub(super) fn on_in_dialog_timeout(&mut self, now: Instant, handle: CallHandle, id: ClientTxId) {
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let Some(pending) = call.take_pending(id) else { return };
        match pending {
            Pending::Bye => self.end_call(handle, EndReason::Timeout),
            Pending::ControlMessage { op, .. } => {
                self.control_failed(handle, op, ControlVia::MessageInDialog, "no answer in time (transaction timeout)".into())
            }
            Pending::Info => {
                call.info_in_flight = false;
                self.next_info_digit(now, handle);
            }
            Pending::ReInvite { .. } => tracing::warn!(call = %handle, "re-INVITE got no answer"),
            Pending::Notify => {}
            Pending::Refer => self.events.push_back(PhoneEvent::TransferResult {
                call: handle,
                ok: false,
                reason: "no answer in time".into(),
            }),
        }
    }
}

/// Escapes a value for a URI header (RFC 3261 §25.1 hvalue): unreserved characters and
/// a few marks stay, everything else is %-encoded.
fn escape_uri_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
