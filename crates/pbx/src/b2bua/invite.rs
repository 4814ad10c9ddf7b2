//! A new call: the caller's INVITE is authenticated, the callee found, relay ports set up,
//! and an INVITE sent to every registered contact of the callee (parallel forking).

use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::message::HeadersExt;
use super::call::{Call, CallState, CdrDraft, Fork, LegSide, RelayPorts, SessionId};
use super::{media, CallKey, TimerKind};
use crate::core::{CoreEvent, PbxCore};
use crate::registrar::UserKey;
use hark_sip::dialog::top_via;
use hark_sip::rsip::{self, Header, Method, Request};
use hark_sip::transaction::ServerTxId;
use hark_sip::transport::Peer;
use hark_sip::{Branch, CallId, NameAddr, SipHeaders, Tag};
use std::time::Instant;

pub(crate) const X_SESSION_ID: &str = "X-Session-Id";
pub(crate) const X_RECORDING_STATE: &str = "X-Recording-State";

impl PbxCore {
    pub(crate) fn on_invite(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        // The caller is the From user in the From domain's tenant.
        let caller = req.from_header().ok().and_then(|h| {
            let n = NameAddr::parse(h.value()).ok()?;
            Some((n.uri_user()?.to_owned(), n.uri_hostport().to_owned(), n.display.map(|d| d.trim().to_owned())))
        });
        let Some((caller_ext, caller_host, caller_display)) = caller else {
            return self.reply(now, &id, &req, 400, "Malformed From", vec![]);
        };
        let Some(tenant) = self.directory.tenant_for_host(&caller_host).cloned() else {
            return self.reply(now, &id, &req, 404, "Domain Not Served", vec![]);
        };
        let caller = UserKey { tenant_id: tenant.id, extension: caller_ext };
        if !self.authenticate(now, &id, &req, from, &tenant.domain, &caller, true) {
            return;
        }

        // The callee: the Request-URI's user, in the caller's tenant only. Refusals from
        // here on are calls (authenticated) and get a CDR.
        let callee_ext = req.uri.user().map(str::to_owned).unwrap_or_default();
        let ruri_host = req.uri.host_with_port.to_string();
        let refusal = if self.directory.tenant_for_host(&ruri_host).is_some_and(|t| t.id != tenant.id) {
            Some((404, "Not Found (other tenant)".to_owned()))
        } else if callee_ext.is_empty() || self.directory.user(&UserKey { tenant_id: tenant.id, extension: callee_ext.clone() }).is_none() {
            Some((404, "Not Found".to_owned()))
        } else if self.location.bindings(&UserKey { tenant_id: tenant.id, extension: callee_ext.clone() }).is_empty() {
            Some((480, "Temporarily Unavailable (not registered)".to_owned()))
        } else if req.headers.iter().any(|h| matches!(h, Header::MaxForwards(m) if m.num().ok() == Some(0))) {
            Some((483, "Too Many Hops".to_owned()))
        } else {
            None
        };
        // We anchor media, so we need the caller's offer now (no delayed offer yet).
        let offer = match refusal {
            Some(r) => Err(r),
            None => media::prepare_offer(&req).map_err(|reject| (reject.code, reject.reason)),
        };
        let offer = match offer {
            Ok(o) => o,
            Err((code, reason)) => {
                let callee = if callee_ext.is_empty() { req.uri.to_string() } else { callee_ext };
                return self.refuse_call(now, &id, &req, tenant.id, &caller.extension, &callee, code, &reason);
            }
        };
        let callee = UserKey { tenant_id: tenant.id, extension: callee_ext };
        // SPEC §1: what to record, decided now so the callee's INVITE can say it.
        let decision = crate::policy::decide(
            self.directory.system(),
            self.directory.tenant_switches(tenant.id),
            &[self.directory.party(&caller), self.directory.party(&callee)],
            crate::policy::CallState { has_video: offer.has_video, ..Default::default() },
        );

        let key = self.calls.next_key();
        let call = Call {
            key,
            session: SessionId::random(),
            state: CallState::Setup,
            tenant_id: tenant.id,
            caller,
            callee,
            caller_display,
            a_tx: id,
            a_peer: from,
            a_tag: Tag::random(),
            a_dialog: None,
            forks: Vec::new(),
            b_dialog: None,
            b_peer: None,
            b_invite_cseq: 1,
            a_offer: offer.body,
            b_answer: Vec::new(),
            relay: None,
            a_ok: None,
            a_ok_next: None,
            a_ok_deadline: None,
            ring_deadline: None,
            in_dialog_tx: Vec::new(),
            recording: hark_recorder::RecordingState::OFF,
            info_refused: [false; 2],
            info_codes: [hark_media::dtmf::FeatureCodes::new(), hark_media::dtmf::FeatureCodes::new()],
            cdr: CdrDraft {
                started_at: Some(self.wall(now)),
                a_call_id: req.call_id().map(|c| c.to_string()).unwrap_or_default(),
                codec: offer.codec,
                ..Default::default()
            },
            a_invite: req,
            decision,
        };
        tracing::info!(session = %call.session, caller = %call.caller.extension, callee = %call.callee.extension, recording = %call.decision.explain(), "call started");
        let tap = call.decision.audio;
        self.calls.by_a_tx.insert(id, key);
        self.calls.by_session.insert(call.session.clone(), key);
        self.calls.calls.insert(key, call);
        self.events.push_back(CoreEvent::RelayStart { call: key, streams: offer.streams, tap });
    }

    /// Answers an authenticated INVITE that will not become a call, with a CDR saying why.
    #[allow(clippy::too_many_arguments)]
    fn refuse_call(&mut self, now: Instant, id: &ServerTxId, req: &Request, tenant_id: i64, caller: &str, callee: &str, code: u16, reason: &str) {
        self.reply(now, id, req, code, reason, vec![]);
        let at = self.wall(now);
        self.events.push_back(CoreEvent::Cdr(super::CallRecord {
            session_id: SessionId::random().to_string(),
            tenant_id,
            caller: caller.to_owned(),
            callee: callee.chars().take(128).collect(),
            started_at: at,
            answered_at: None,
            ended_at: at,
            disposition: super::Disposition::Failed,
            hangup_by: super::HangupBy::Pbx,
            hangup_cause: format!("{code} {reason}"),
            a_call_id: req.call_id().map(|c| c.to_string()).unwrap_or_default(),
            b_call_id: None,
            codec: None,
        }));
    }

    /// The relay for `key` is bound (or could not be): send the INVITEs to the callee.
    pub fn handle_relay_started(&mut self, now: Instant, key: CallKey, ports: Result<RelayPorts, String>) {
        let Some(call) = self.calls.calls.get_mut(&key) else {
            // The caller gave up meanwhile: release the ports.
            self.events.push_back(CoreEvent::RelayStop { call: key });
            return;
        };
        if call.state != CallState::Setup {
            return;
        }
        let ports = match ports {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "no relay ports for a call");
                return self.fail_call(now, key, 503, "Service Unavailable (no media ports)", super::HangupBy::Pbx);
            }
        };
        let b_ports: Vec<u16> = ports.streams.iter().map(|(_, b)| *b).collect();
        let offer = match media::anchor(&call.a_offer, self.local.ip, &b_ports) {
            Ok(o) => o,
            Err(reject) => return self.fail_call(now, key, reject.code, &reject.reason, super::HangupBy::Pbx),
        };
        call.relay = Some(ports);
        // The caller's side of each stream: where its SDP says to send.
        let (a_offer, a_ip) = (call.a_offer.clone(), call.a_peer.addr.ip());
        media::steer_relay(&mut self.events, key, LegSide::A, &a_offer, a_ip);

        let Some(call) = self.calls.calls.get(&key) else { return };
        let bindings = self.location.bindings(&call.callee).to_vec();
        let domain = self.directory.tenants().find(|t| t.id == call.tenant_id).map(|t| t.domain.clone()).unwrap_or_default();
        let b_call_id = CallId::random();
        let from_tag = Tag::random();
        let (caller_ext, callee_ext, display, session) =
            (call.caller.extension.clone(), call.callee.extension.clone(), call.caller_display.clone(), call.session.clone());
        // Before the answer nothing records yet; the header says what will.
        let planned = planned_state(&call.decision);
        let mut forks = Vec::new();
        for binding in bindings {
            let Ok(uri) = rsip::Uri::try_from(binding.contact.as_str()) else {
                tracing::warn!(contact = %binding.contact, "unusable registered contact");
                continue;
            };
            let from_value = match &display {
                Some(d) if !d.is_empty() => format!("\"{}\" <sip:{caller_ext}@{domain}>;tag={from_tag}", d.trim_matches('"')),
                _ => format!("<sip:{caller_ext}@{domain}>;tag={from_tag}"),
            };
            let mut headers = rsip::Headers::default();
            headers.push(top_via(binding.source.transport, self.local.sent_by(binding.source.transport), &Branch::random()).into());
            headers.push(Header::MaxForwards(70.into()));
            headers.push(Header::From(rsip::headers::From::new(from_value)));
            headers.push(Header::To(rsip::headers::To::new(format!("<sip:{callee_ext}@{domain}>"))));
            headers.push(Header::CallId(b_call_id.as_str().into()));
            headers.push(Header::CSeq(rsip::headers::CSeq::new("1 INVITE")));
            headers.push(Header::Contact(rsip::headers::Contact::new(self.local.contact(binding.source.transport))));
            headers.push(Header::Allow(rsip::headers::Allow::new(crate::core::ALLOW)));
            headers.push(Header::Other(X_SESSION_ID.into(), session.to_string()));
            headers.push(Header::Other(X_RECORDING_STATE.into(), planned.to_header_value()));
            headers.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
            let req = Request { method: Method::Invite, uri, version: rsip::Version::V2, headers, body: offer.clone() };
            match self.tx.send_request(now, req.clone(), binding.source) {
                Ok(tx) => forks.push(Fork { tx, request: req, peer: binding.source, early: false, done: false }),
                Err(e) => tracing::warn!(error = %e, "could not send INVITE to a contact"),
            }
        }
        if forks.is_empty() {
            return self.fail_call(now, key, 480, "Temporarily Unavailable", super::HangupBy::Pbx);
        }
        let deadline = now + self.config.calls.ring_timeout;
        for f in &forks {
            self.calls.by_client_tx.insert(f.tx, key);
        }
        if let Some(call) = self.calls.calls.get_mut(&key) {
            call.forks = forks;
            call.state = CallState::Ringing;
            call.ring_deadline = Some(deadline);
            call.cdr.b_call_id = Some(b_call_id.to_string());
        }
        self.calls.schedule(deadline, key, TimerKind::Ring);
    }
}

/// The recording state a call will have once answered, as its decision says.
pub(crate) fn planned_state(decision: &crate::policy::Decision) -> hark_recorder::RecordingState {
    use hark_recorder::MediaRecording::{Off, Recording};
    hark_recorder::RecordingState {
        audio: if decision.audio { Recording } else { Off },
        video: if decision.video { Recording } else { Off },
    }
}
