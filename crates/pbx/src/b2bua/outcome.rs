//! How a call's INVITE transaction ends: the callee's phones ring, one answers (the
//! others are cancelled), all refuse, nobody answers in time, or the caller gives up.
//! Also the end of an answered call and its CDR.

use hark_sip::rsip::headers::{ToTypedHeader, UntypedHeader};
use super::call::{CallState, LegSide};
use super::cdr::{CallRecord, Disposition, HangupBy};
use super::invite::{X_RECORDING_STATE, X_SESSION_ID};
use super::{media, CallKey, TimerKind};
use crate::core::{CoreEvent, PbxCore};
use hark_sip::dialog::{top_via, Dialog};
use hark_sip::rsip::{self, Header, Method, Request, Response};
use hark_sip::transaction::{ClientTxId, ServerTxId};
use hark_sip::{encode, response_to, status, Branch, SipHeaders};
use std::cmp::Reverse;
use std::time::{Duration, Instant};

impl PbxCore {
    pub(crate) fn on_response(&mut self, now: Instant, tx: ClientTxId, resp: Response, peer: hark_sip::transport::Peer) {
        let Some(&key) = self.calls.by_client_tx.get(&tx) else { return self.end_stray_answer(now, &resp, peer) };
        let Some(call) = self.calls.calls.get(&key) else { return self.end_stray_answer(now, &resp, peer) };
        if call.in_dialog_tx.iter().any(|(t, ..)| *t == tx) {
            return self.on_in_dialog_response(now, key, tx, resp);
        }
        if call.transfer.as_ref().is_some_and(|t| t.tx == tx) {
            return self.on_transfer_response(now, key, resp);
        }
        let Some(fork_index) = call.forks.iter().position(|f| f.tx == tx) else { return };
        let code = resp.status_code.code();
        match code {
            100 => {}
            101..=199 => self.on_fork_provisional(now, key, fork_index, resp),
            200..=299 => self.on_fork_answer(now, key, fork_index, resp),
            _ => self.on_fork_failure(now, key, fork_index, code, reason_of(&resp), Some(&resp)),
        }
    }

    fn on_fork_provisional(&mut self, now: Instant, key: CallKey, fork: usize, resp: Response) {
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        if call.state != CallState::Ringing {
            return;
        }
        let code = resp.status_code.code();
        let mut extra = vec![Header::Other(X_SESSION_ID.into(), call.session.to_string())];
        // Early media (183 with SDP): the callee's side of the relay starts now.
        let mut body = Vec::new();
        if !resp.body.is_empty() && !call.forks[fork].early
            && let Some(ports) = &call.relay {
                let a_ports = ports.facing(LegSide::A);
                if let Ok(answer) = media::anchor(&resp.body, self.local.ip, &a_ports) {
                    call.forks[fork].early = true;
                    body = answer;
                    extra.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
                    let b_ip = call.forks[fork].peer.addr.ip();
                    media::steer_relay(&mut self.events, key, LegSide::B, &resp.body, b_ip);
                }
            }
        let (a_tx, a_tag, a_invite) = (call.a_tx, call.a_tag.clone(), call.a_invite.clone());
        let contact = self.local.contact(call.a_peer.transport);
        extra.push(Header::Contact(rsip::headers::Contact::new(contact)));
        let mut out = response_to(&a_invite, status(code, &reason_of(&resp)), Some(&a_tag));
        out.headers.extend(extra);
        out.body = body;
        let _ = self.tx.send_response(now, &a_tx, out);
    }

    fn on_fork_answer(&mut self, now: Instant, key: CallKey, fork: usize, resp: Response) {
        let wall_now = self.wall(now);
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let fork_req = call.forks[fork].request.clone();
        let fork_peer = call.forks[fork].peer;
        call.forks[fork].done = true;
        // ACK every 2xx, ours or a late one from a losing fork (§13.2.2.4).
        let mut dialog = match Dialog::uac(&fork_req, &resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "unusable 2xx from the callee");
                return self.on_fork_failure(now, key, fork, 502, "Bad Gateway (bad answer from callee)".into(), None);
            }
        };
        let ack = dialog.ack_for_2xx(1, top_via(fork_peer.transport, self.local.sent_by(fork_peer.transport), &Branch::random()));
        self.tx.send_stateless(ack, fork_peer);
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        if call.state != CallState::Ringing {
            // A second answer, or one after the caller left: hang it up.
            if let Ok(bye) = dialog.create_request(Method::Bye, top_via(fork_peer.transport, self.local.sent_by(fork_peer.transport), &Branch::random())) {
                let _ = self.tx.send_request(now, bye, fork_peer);
            }
            return;
        }
        let Some(ports) = call.relay.clone() else { return };
        let a_ports = ports.facing(LegSide::A);
        let answer = match media::answer_for_caller(&resp.body, self.local.ip, &a_ports) {
            Ok(a) => a,
            Err(reject) => {
                // The callee's SDP is unusable: end its leg and fail the call.
                if let Ok(bye) = dialog.create_request(Method::Bye, top_via(fork_peer.transport, self.local.sent_by(fork_peer.transport), &Branch::random())) {
                    let _ = self.tx.send_request(now, bye, fork_peer);
                }
                return self.fail_call(now, key, reject.code.max(488), &reject.reason, HangupBy::Pbx);
            }
        };
        media::steer_relay(&mut self.events, key, LegSide::B, &resp.body, fork_peer.addr.ip());
        // Cancel the other forks (§9.1).
        let others: Vec<(ClientTxId, Request, hark_sip::transport::Peer)> = call
            .forks
            .iter_mut()
            .filter(|f| !f.done)
            .map(|f| {
                f.done = true;
                (f.tx, f.request.clone(), f.peer)
            })
            .collect();
        for (_, req, peer) in others {
            if let Some(cancel) = cancel_for(&req) {
                let _ = self.tx.send_request(now, cancel, peer);
            }
        }

        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.b_answer = resp.body.clone();
        // Recording starts now, with the first media after the answer.
        if call.decision.audio {
            self.start_recording(key);
        }
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let contact = self.local.contact(call.a_peer.transport);
        let mut ok = response_to(&call.a_invite, status(200, "OK"), Some(&call.a_tag));
        ok.headers.push(Header::Contact(rsip::headers::Contact::new(contact.clone())));
        ok.headers.push(Header::Allow(rsip::headers::Allow::new(crate::core::ALLOW)));
        ok.headers.push(Header::Other(X_SESSION_ID.into(), call.session.to_string()));
        ok.headers.push(Header::Other(X_RECORDING_STATE.into(), call.recording.to_header_value()));
        ok.headers.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
        ok.body = answer;
        let a_dialog = rsip::headers::Contact::new(contact)
            .typed()
            .ok()
            .and_then(|c| Dialog::uas(&call.a_invite, &call.a_tag, c).ok());
        let Some(mut a_dialog) = a_dialog else {
            return self.fail_call(now, key, 500, "Server Internal Error (caller dialog)", HangupBy::Pbx);
        };
        a_dialog.confirm();
        let bytes = bytes::Bytes::from(encode(&ok.clone().into()));
        let _ = self.tx.send_response(now, &call.a_tx, ok);
        let t1 = self.config.timers.t1;
        call.a_ok = Some(bytes);
        call.a_ok_next = Some((now + t1, t1));
        call.a_ok_deadline = Some(now + 64 * t1);
        call.state = CallState::Answered;
        call.ring_deadline = None;
        call.cdr.answered_at = Some(wall_now);
        call.b_peer = Some(fork_peer);
        call.b_invite_cseq = 1;
        if let Some(codec) = media::first_codec(&resp.body) {
            call.cdr.codec = Some(codec);
        }
        let (a_id, b_id) = (a_dialog.id().clone(), dialog.id().clone());
        call.a_dialog = Some(a_dialog);
        call.b_dialog = Some(dialog);
        tracing::info!(session = %call.session, "call answered");
        self.calls.by_dialog.insert(a_id, (key, LegSide::A));
        self.calls.by_dialog.insert(b_id, (key, LegSide::B));
        self.calls.schedule(now + t1, key, TimerKind::AckWait);
    }

    fn on_fork_failure(&mut self, now: Instant, key: CallKey, fork: usize, code: u16, reason: String, resp: Option<&Response>) {
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        // A carrier's challenge: answered once with the trunk's credentials.
        if let (401 | 407, Some(resp), Some(trunk)) = (code, resp, call.trunks[LegSide::B as usize])
            && !call.forks[fork].authenticated
            && call.state == CallState::Ringing
        {
            let invite = call.forks[fork].request.clone();
            if let Some((req, tx)) = self.answer_trunk_challenge(now, Some(trunk), &invite, resp) {
                let Some(call) = self.calls.calls.get_mut(&key) else { return };
                let old = std::mem::replace(&mut call.forks[fork].tx, tx);
                call.forks[fork].request = req;
                call.forks[fork].authenticated = true;
                self.calls.by_client_tx.remove(&old);
                self.calls.by_client_tx.insert(tx, key);
                return;
            }
        }
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.forks[fork].done = true;
        call.forks[fork].early = false;
        if call.state != CallState::Ringing {
            return;
        }
        if call.forks.iter().any(|f| !f.done) {
            return;
        }
        // Busy: the callee's forward-on-busy takes the call.
        if matches!(code, 486 | 600 | 603)
            && let Some(to) = call.forward.as_ref().and_then(|f| f.busy.clone())
        {
            tracing::info!(session = %call.session, callee = %call.callee.extension, to = %to, "forwarding (busy)");
            return self.forward_to(now, key, &to);
        }
        // Every contact refused: tell the caller the most telling answer.
        let (code, reason) = match code {
            // Credentials of the callee's phone are not ours to give; redirects we do not follow.
            300..=399 | 401 | 407 => (480, "Temporarily Unavailable".to_owned()),
            _ => (code, reason),
        };
        self.fail_call(now, key, code, &reason, HangupBy::Callee);
    }

    /// A 2xx to an INVITE nobody waits for any more (a fork cancelled by a forward, a
    /// transfer target that answered as it was cancelled, a call already over): ACK it
    /// and hang it up, or that phone would believe in a call nobody is on.
    fn end_stray_answer(&mut self, now: Instant, resp: &Response, peer: hark_sip::transport::Peer) {
        let is_invite_2xx = (200..300).contains(&resp.status_code.code())
            && SipHeaders::cseq(resp).is_ok_and(|(_, m)| m == Method::Invite);
        if !is_invite_2xx {
            return;
        }
        let Some((seq, _)) = SipHeaders::cseq(resp).ok() else { return };
        let target = resp
            .headers
            .iter()
            .find_map(|h| match h {
                Header::Contact(c) => hark_sip::NameAddr::parse(c.value()).ok().and_then(|n| rsip::Uri::try_from(n.uri).ok()),
                _ => None,
            });
        let Some(target) = target else { return };
        let id = format!("{:?}/{:?}", SipHeaders::call_id(resp).ok(), SipHeaders::to_tag(resp).ok().flatten());
        let again = self.calls.stray.contains(&id);
        if !again {
            if self.calls.stray.len() >= 64 {
                self.calls.stray.pop_front();
            }
            self.calls.stray.push_back(id);
        }
        for (method, cseq) in [(Method::Ack, seq), (Method::Bye, seq + 1)] {
            let mut headers = rsip::Headers::default();
            headers.push(top_via(peer.transport, self.local.sent_by(peer.transport), &Branch::random()).into());
            headers.push(Header::MaxForwards(70.into()));
            for h in resp.headers.iter() {
                if matches!(h, Header::From(_) | Header::To(_) | Header::CallId(_)) {
                    headers.push(h.clone());
                }
            }
            headers.push(Header::CSeq(rsip::headers::CSeq::new(format!("{cseq} {method}"))));
            let req = Request { method, uri: target.clone(), version: rsip::Version::V2, headers, body: vec![] };
            if method == Method::Ack {
                self.tx.send_stateless(bytes::Bytes::from(encode(&req.into())), peer);
            } else if !again {
                tracing::info!(call_id = ?SipHeaders::call_id(resp).ok(), "hanging up a late answer nobody waits for");
                let _ = self.tx.send_request(now, req, peer);
            }
        }
    }

    /// The callee is busy or did not answer and forwards to `to` (an extension or a
    /// number): its phones stop ringing, the policy is decided again for the new
    /// parties, and the call rings there instead.
    pub(crate) fn forward_to(&mut self, now: Instant, key: CallKey, to: &str) {
        let wall = self.wall(now);
        let Some(tenant_id) = self.calls.calls.get(&key).map(|c| c.tenant_id) else { return };
        let Some(target) = self.route(tenant_id, to) else {
            return self.fail_call(now, key, 404, &format!("Not Found (forward target {to})"), HangupBy::Pbx);
        };
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let pending: Vec<(Request, hark_sip::transport::Peer)> =
            call.forks.iter_mut().filter(|f| !f.done).map(|f| (f.request.clone(), f.peer)).collect();
        for f in std::mem::take(&mut call.forks) {
            self.calls.by_client_tx.remove(&f.tx);
        }
        for (req, peer) in pending {
            if let Some(cancel) = cancel_for(&req) {
                let _ = self.tx.send_request(now, cancel, peer);
            }
        }
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.party_left(LegSide::B, wall);
        let (callee, trunk) = match target {
            super::route::Target::Extension(k) => (k, None),
            super::route::Target::Trunk { trunk_id, number } => (crate::registrar::UserKey { tenant_id: call.tenant_id, extension: number }, Some(trunk_id)),
        };
        call.cdr.parties.push(super::call::PartyLog {
            role: super::call::PartyRole::ForwardTarget,
            party: callee.extension.clone(),
            external: trunk.is_some(),
            joined_at: wall,
            left_at: None,
        });
        call.callee = callee;
        call.trunks[LegSide::B as usize] = trunk;
        call.forward = None;
        let (caller, callee, a_trunk, has_video, tenant) = (call.caller.clone(), call.callee.clone(), call.trunks[0], call.has_video, call.tenant_id);
        let decision = crate::policy::decide(
            self.directory.system(),
            self.directory.tenant_switches(tenant),
            &[self.policy_party(&caller, a_trunk), self.policy_party(&callee, trunk)],
            crate::policy::CallState { has_video, ..Default::default() },
        );
        tracing::info!(recording = %decision.explain(), "policy after forwarding");
        if let Some(call) = self.calls.calls.get_mut(&key) {
            call.decision = decision;
        }
        if trunk.is_none() && self.location.bindings(&callee).is_empty() {
            return self.fail_call(now, key, 480, "Temporarily Unavailable (forward target not registered)", HangupBy::Pbx);
        }
        self.send_forks(now, key);
    }

    /// Ends a call that was never answered: final response to the caller, CANCEL for
    /// any contact still ringing, CDR.
    pub(crate) fn fail_call(&mut self, now: Instant, key: CallKey, code: u16, reason: &str, by: HangupBy) {
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        if matches!(call.state, CallState::Answered | CallState::Ending) {
            return;
        }
        let pending: Vec<(Request, hark_sip::transport::Peer)> =
            call.forks.iter_mut().filter(|f| !f.done).map(|f| (f.request.clone(), f.peer)).collect();
        for (req, peer) in pending {
            if let Some(cancel) = cancel_for(&req) {
                let _ = self.tx.send_request(now, cancel, peer);
            }
        }
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let (a_tx, a_invite, a_tag) = (call.a_tx, call.a_invite.clone(), call.a_tag.clone());
        call.state = CallState::Ending;
        call.cdr.disposition = Some(Disposition::from_status(code));
        call.cdr.hangup_by = Some(by);
        call.cdr.hangup_cause = Some(format!("{code} {reason}"));
        let mut resp = response_to(&a_invite, status(code, reason), Some(&a_tag));
        resp.headers.push(Header::Server(rsip::headers::Server::new(crate::core::SERVER)));
        let _ = self.tx.send_response(now, &a_tx, resp);
        self.finish(now, key);
    }

    /// The caller's CANCEL reached its INVITE.
    pub(crate) fn on_cancel(&mut self, now: Instant, invite: ServerTxId) {
        let Some(&key) = self.calls.by_a_tx.get(&invite) else { return };
        self.fail_call(now, key, 487, "Request Terminated", HangupBy::Caller);
    }

    pub(crate) fn on_client_timeout(&mut self, now: Instant, tx: ClientTxId) {
        let Some(&key) = self.calls.by_client_tx.get(&tx) else { return };
        let Some(call) = self.calls.calls.get(&key) else { return };
        if let Some(fork) = call.forks.iter().position(|f| f.tx == tx && !f.done) {
            return self.on_fork_failure(now, key, fork, 408, "Request Timeout".into(), None);
        }
        if call.transfer.as_ref().is_some_and(|t| t.tx == tx) {
            return self.fail_transfer(now, key, 408, "Request Timeout");
        }
        if call.in_dialog_tx.iter().any(|(t, ..)| *t == tx) {
            let resp = Response { status_code: status(408, "Request Timeout"), version: rsip::Version::V2, headers: Default::default(), body: vec![] };
            self.on_in_dialog_response(now, key, tx, resp);
        }
    }

    pub(crate) fn on_call_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, key, kind))) = self.calls.timers.peek().cloned() {
            if at > now {
                break;
            }
            self.calls.timers.pop();
            let Some(call) = self.calls.calls.get_mut(&key) else { continue };
            match kind {
                TimerKind::Ring if call.ring_deadline == Some(at) && call.state == CallState::Ringing => {
                    if let Some(to) = call.forward.as_ref().and_then(|f| f.no_answer.clone()) {
                        tracing::info!(session = %call.session, callee = %call.callee.extension, to = %to, "forwarding (no answer)");
                        self.forward_to(now, key, &to);
                        continue;
                    }
                    self.fail_call(now, key, 480, "Temporarily Unavailable (no answer)", HangupBy::Pbx);
                    if let Some(call) = self.calls.calls.get_mut(&key) {
                        call.cdr.disposition = Some(Disposition::NoAnswer);
                    }
                }
                TimerKind::AckWait => {
                    let Some((due, interval)) = call.a_ok_next else { continue };
                    if due != at || call.a_ok.is_none() {
                        continue;
                    }
                    if call.a_ok_deadline.is_some_and(|d| now >= d) {
                        tracing::warn!(session = %call.session, "no ACK for our 200 OK; hanging up");
                        call.a_ok = None;
                        self.hang_up(now, key, None, HangupBy::Pbx, "no ACK from caller");
                        continue;
                    }
                    if let Some(bytes) = call.a_ok.clone() {
                        self.tx.send_stateless(bytes, call.a_peer);
                    }
                    let next = (interval * 2).min(self.config.timers.t2);
                    call.a_ok_next = Some((now + next, next));
                    self.calls.schedule(now + next, key, TimerKind::AckWait);
                }
                TimerKind::TransferRing => self.transfer_timed_out(now, key, at),
                _ => {}
            }
        }
    }

    /// The caller's ACK for our 2xx (or for a re-INVITE's 2xx) arrived.
    pub(crate) fn on_ack(&mut self, _now: Instant, req: &Request) {
        let Ok(id) = hark_sip::dialog::DialogId::from_incoming_request(req) else { return };
        let Some(&(key, LegSide::A)) = self.calls.by_dialog.get(&id) else { return };
        if let Some(call) = self.calls.calls.get_mut(&key) {
            call.a_ok = None;
            call.a_ok_next = None;
        }
    }

    /// Ends an answered call: BYE to every leg but `from` (which sent its own BYE).
    pub(crate) fn hang_up(&mut self, now: Instant, key: CallKey, from: Option<LegSide>, by: HangupBy, cause: &str) {
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        if call.state == CallState::Ending {
            return;
        }
        call.state = CallState::Ending;
        if let Some(t) = call.transfer.take()
            && let Some(cancel) = cancel_for(&t.request)
        {
            let _ = self.tx.send_request(now, cancel, t.peer);
        }
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.cdr.disposition = Some(Disposition::Answered);
        call.cdr.hangup_by = Some(by);
        call.cdr.hangup_cause = Some(cause.to_owned());
        let mut byes = Vec::new();
        for side in [LegSide::A, LegSide::B] {
            if Some(side) == from {
                continue;
            }
            let (dialog, peer) = call.leg_mut(side);
            if let (Some(dialog), Some(peer)) = (dialog, peer) {
                let via = top_via(peer.transport, self.local.sent_by(peer.transport), &Branch::random());
                if let Ok(bye) = dialog.create_request(Method::Bye, via) {
                    byes.push((bye, peer));
                }
                dialog.terminate();
            }
        }
        for (bye, peer) in byes {
            let _ = self.tx.send_request(now, bye, peer);
        }
        self.finish(now, key);
    }

    /// Emits the CDR, stops the relay and forgets the call.
    fn finish(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.remove(key) else { return };
        let cdr = &call.cdr;
        // The CDR's callee is who the caller dialled, even if a forward or a transfer
        // took the call elsewhere (the parties say where).
        let first = |role| cdr.parties.iter().find(|p| p.role == role).map(|p| p.party.clone());
        let record = CallRecord {
            session_id: call.session.to_string(),
            tenant_id: call.tenant_id,
            caller: first(super::call::PartyRole::Caller).unwrap_or_else(|| call.caller.extension.clone()),
            callee: first(super::call::PartyRole::Callee)
                .or_else(|| first(super::call::PartyRole::ForwardTarget))
                .unwrap_or_else(|| call.callee.extension.clone()),
            started_at: cdr.started_at.unwrap_or_else(|| self.wall(now)),
            answered_at: cdr.answered_at,
            ended_at: self.wall(now),
            disposition: cdr.disposition.unwrap_or(Disposition::Failed),
            hangup_by: cdr.hangup_by.unwrap_or(HangupBy::Pbx),
            hangup_cause: cdr.hangup_cause.clone().unwrap_or_default(),
            a_call_id: cdr.a_call_id.clone(),
            b_call_id: cdr.b_call_id.clone(),
            codec: cdr.codec.clone(),
            // Recordings start at the answer: an unanswered call has none, whatever the
            // policy would have decided.
            recording: Some(if cdr.answered_at.is_none() && (call.decision.audio || call.decision.video) {
                format!("not recorded: the call was not answered (policy: {})", call.decision.explain())
            } else {
                call.decision.explain()
            }),
            parties: cdr.parties.clone(),
        };
        tracing::info!(session = %record.session_id, disposition = record.disposition.as_str(), cause = %record.hangup_cause, "call ended");
        if call.recording != hark_recorder::RecordingState::OFF {
            self.events.push_back(CoreEvent::RecordStop { call: key, reason: "hangup".into() });
        }
        self.events.push_back(CoreEvent::RelayStop { call: key });
        self.events.push_back(CoreEvent::Cdr(record));
    }

    /// The relay saw no media for too long.
    pub fn handle_relay_silent(&mut self, now: Instant, key: CallKey, silent: Duration) {
        tracing::warn!(call = ?key, secs = silent.as_secs(), "no RTP; hanging up");
        let answered = self.calls.calls.get(&key).is_some_and(|c| c.state == CallState::Answered);
        if answered {
            self.hang_up(now, key, None, HangupBy::Pbx, "rtp-timeout");
        } else {
            self.fail_call(now, key, 480, "Temporarily Unavailable (no media)", HangupBy::Pbx);
        }
    }
}

/// The reason phrase a response carried (rsip keeps it only for codes it does not know).
pub(crate) fn reason_of(resp: &Response) -> String {
    match &resp.status_code {
        rsip::StatusCode::Other(_, reason) => reason.clone(),
        other => hark_sip::serialize::reason_phrase(other.code()).to_owned(),
    }
}

/// §9.1: a CANCEL for a pending INVITE we sent.
pub(crate) fn cancel_for(invite: &Request) -> Option<Request> {
    let mut headers = rsip::Headers::default();
    for h in invite.headers.iter() {
        match h {
            Header::Via(_) if !headers.iter().any(|h| matches!(h, Header::Via(_))) => headers.push(h.clone()),
            Header::From(_) | Header::To(_) | Header::CallId(_) | Header::Route(_) | Header::MaxForwards(_) => headers.push(h.clone()),
            _ => {}
        }
    }
    let (seq, _) = invite.cseq().ok()?;
    headers.push(Header::CSeq(rsip::headers::CSeq::new(format!("{seq} CANCEL"))));
    Some(Request { method: Method::Cancel, uri: invite.uri.clone(), version: rsip::Version::V2, headers, body: vec![] })
}
