//! A new call: the caller's INVITE is authenticated, the callee found, relay ports set up,
//! and an INVITE sent to every registered contact of the callee (parallel forking).

use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::message::HeadersExt;
use super::call::{Call, CallState, CdrDraft, LegSide, RelayPorts, SessionId};
use super::route::Target;
use super::{media, CallKey};
use crate::core::{CoreEvent, PbxCore};
use crate::registrar::UserKey;
use hark_sip::rsip::{Header, Request};
use hark_sip::transaction::ServerTxId;
use hark_sip::transport::Peer;
use hark_sip::{NameAddr, SipHeaders, Tag};
use std::time::Instant;

pub(crate) const X_SESSION_ID: &str = "X-Session-Id";
pub(crate) const X_RECORDING_STATE: &str = "X-Recording-State";

impl PbxCore {
    pub(crate) fn on_invite(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        // The caller is the From user: a number when the INVITE comes from a trunk's
        // address, else an extension of the From domain's tenant.
        let caller = req.from_header().ok().and_then(|h| {
            let n = NameAddr::parse(h.value()).ok()?;
            Some((n.uri_user()?.to_owned(), n.uri_hostport().to_owned(), n.display.map(|d| d.trim().to_owned())))
        });
        let Some((caller_ext, caller_host, caller_display)) = caller else {
            return self.reply(now, &id, &req, 400, "Malformed From", vec![]);
        };
        let dialled = req.uri.user().map(str::to_owned).unwrap_or_default();
        if let Some(trunk) = self.directory.trunk_by_source(from.addr.ip()).cloned() {
            return self.on_trunk_invite(now, id, req, from, &trunk, caller_ext, caller_display, dialled);
        }
        let tenant = self.directory.tenant_for_host(&caller_host).cloned();
        let caller = tenant.as_ref().map(|t| UserKey { tenant_id: t.id, extension: caller_ext.clone() });
        let known = caller.as_ref().is_some_and(|c| self.directory.user(c).is_some());
        let has_credentials = req.headers.iter().any(|h| matches!(h, Header::ProxyAuthorization(_) | Header::Authorization(_)));
        // Not a trunk, and nobody we could challenge: no toll calls through the PBX.
        let (Some(tenant), Some(caller), true) = (tenant, caller, known || has_credentials) else {
            tracing::info!(source = %from.addr, from = %caller_ext, "INVITE from an address that is no trunk, without an account");
            return self.reply(now, &id, &req, 403, "Forbidden (not a trunk, no account)", vec![]);
        };
        if !self.authenticate(now, &id, &req, from, &tenant.domain, &caller, true) {
            return;
        }
        // RFC 3891: this phone takes the place of a leg of a call in progress.
        if let Some(replaces) = super::transfer::replaces_header(&req) {
            return self.on_invite_replaces(now, id, req, from, caller, replaces);
        }

        // The callee: an extension of the caller's tenant, or a number an outbound route
        // sends to a trunk. Refusals from here on are calls (authenticated) and get a CDR.
        let ruri_host = req.uri.host_with_port.to_string();
        let target = if self.directory.tenant_for_host(&ruri_host).is_some_and(|t| t.id != tenant.id) {
            Err((404, "Not Found (other tenant)".to_owned()))
        } else {
            self.route(tenant.id, &dialled).ok_or((404, "Not Found".to_owned()))
        };
        self.start_call(now, id, req, from, tenant.id, (caller, None, caller_display), dialled, target);
    }

    /// An INVITE from a trunk's address (IP authentication): routed by the dialled
    /// number (DID) to an extension, or to the trunk's default destination.
    #[allow(clippy::too_many_arguments)]
    fn on_trunk_invite(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer, trunk: &crate::directory::Trunk, number: String, display: Option<String>, dialled: String) {
        let to_user = req.to_header().ok().and_then(|h| NameAddr::parse(h.value()).ok()).and_then(|n| n.uri_user().map(str::to_owned));
        // A carrier we register to sends to our Contact (its user is the trunk's user
        // name) and puts the DID in To; others put it in the request line.
        let extension = trunk
            .did_extension(&dialled)
            .or_else(|| to_user.as_deref().and_then(|u| trunk.did_extension(u)))
            .or(trunk.default_extension.as_deref())
            .map(str::to_owned);
        let caller = UserKey { tenant_id: trunk.tenant_id, extension: number };
        let target = match extension {
            Some(ext) => Ok(Target::Extension(UserKey { tenant_id: trunk.tenant_id, extension: ext })),
            None => Err((404, "Not Found (no route for this number)".to_owned())),
        };
        tracing::info!(trunk = %trunk.name, from = %caller.extension, dialled = %dialled, "inbound trunk call");
        self.start_call(now, id, req, from, trunk.tenant_id, (caller, Some(trunk.id), display), dialled, target);
    }

    /// Sets up a call whose caller is known: checks the target and the offer, applies
    /// call forwarding, decides the recording, and asks for relay ports.
    #[allow(clippy::too_many_arguments)]
    fn start_call(
        &mut self,
        now: Instant,
        id: ServerTxId,
        req: Request,
        from: Peer,
        tenant_id: i64,
        (caller, caller_trunk, caller_display): (UserKey, Option<i64>, Option<String>),
        dialled: String,
        target: Result<Target, (u16, String)>,
    ) {
        let joined = self.wall(now);
        let mut parties = vec![super::call::PartyLog {
            role: super::call::PartyRole::Caller,
            party: caller.extension.clone(),
            external: caller_trunk.is_some(),
            joined_at: joined,
            left_at: None,
        }];
        // Forward-always replaces the callee before anything rings.
        let target = target.and_then(|t| {
            if let Target::Extension(key) = &t {
                parties.push(super::call::PartyLog { role: super::call::PartyRole::Callee, party: key.extension.clone(), external: false, joined_at: joined, left_at: None });
                if let Some(to) = self.directory.forwarding(key).always {
                    tracing::info!(callee = %key.extension, to = %to, "forwarding (always)");
                    return self.route(tenant_id, &to).ok_or((404, format!("Not Found (forward target {to})")));
                }
            }
            Ok(t)
        });
        let target = target.and_then(|t| match &t {
            Target::Extension(key) if self.location.bindings(key).is_empty() => {
                Err((480, "Temporarily Unavailable (not registered)".to_owned()))
            }
            _ if req.headers.iter().any(|h| matches!(h, Header::MaxForwards(m) if m.num().ok() == Some(0))) => {
                Err((483, "Too Many Hops".to_owned()))
            }
            _ => Ok(t),
        });
        // We anchor media, so we need the caller's offer now (no delayed offer yet).
        let offer = target.and_then(|t| media::prepare_offer(&req).map(|o| (t, o)).map_err(|reject| (reject.code, reject.reason)));
        let (target, offer) = match offer {
            Ok(v) => v,
            Err((code, reason)) => {
                let callee = if dialled.is_empty() { req.uri.to_string() } else { dialled };
                return self.refuse_call(now, &id, &req, tenant_id, &caller.extension, caller_trunk.is_some(), &callee, code, &reason);
            }
        };
        let (callee, callee_trunk) = match target {
            Target::Extension(key) => (key, None),
            Target::Trunk { trunk_id, number } => (UserKey { tenant_id, extension: number }, Some(trunk_id)),
        };
        if parties.last().is_none_or(|p| p.party != callee.extension || p.external != callee_trunk.is_some()) {
            let role = if parties.len() > 1 { super::call::PartyRole::ForwardTarget } else { super::call::PartyRole::Callee };
            parties.push(super::call::PartyLog { role, party: callee.extension.clone(), external: callee_trunk.is_some(), joined_at: joined, left_at: None });
        }
        let forward = match callee_trunk {
            None => {
                let f = self.directory.forwarding(&callee);
                (f.busy.is_some() || f.no_answer.is_some()).then_some(super::call::PendingForward { busy: f.busy, no_answer: f.no_answer })
            }
            Some(_) => None,
        };
        // SPEC §1: what to record, decided now so the callee's INVITE can say it.
        let decision = crate::policy::decide(
            self.directory.system(),
            self.directory.tenant_switches(tenant_id),
            &[self.policy_party(&caller, caller_trunk), self.policy_party(&callee, callee_trunk)],
            crate::policy::CallState { has_video: offer.has_video, ..Default::default() },
        );

        let key = self.calls.next_key();
        let call = Call {
            key,
            session: SessionId::random(),
            state: CallState::Setup,
            tenant_id,
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
            b_offer: Vec::new(),
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
                started_at: Some(joined),
                a_call_id: req.call_id().map(|c| c.to_string()).unwrap_or_default(),
                codec: offer.codec,
                parties,
                ..Default::default()
            },
            a_invite: req,
            trunks: [caller_trunk, callee_trunk],
            forward,
            transfer: None,
            recordings: 0,
            has_video: offer.has_video,
            decision,
        };
        tracing::info!(session = %call.session, caller = %call.caller.extension, callee = %call.callee.extension, recording = %call.decision.explain(), "call started");
        // The tap is there whenever the tenant records at all: a transfer may bring in
        // a party whose calls are recorded.
        let tap = call.decision.audio || self.directory.tenant_switches(tenant_id).audio_recording;
        self.calls.by_a_tx.insert(id, key);
        self.calls.by_session.insert(call.session.clone(), key);
        self.calls.calls.insert(key, call);
        self.events.push_back(CoreEvent::RelayStart { call: key, streams: offer.streams, tap });
    }

    /// Answers an authenticated INVITE that will not become a call, with a CDR saying why.
    #[allow(clippy::too_many_arguments)]
    fn refuse_call(&mut self, now: Instant, id: &ServerTxId, req: &Request, tenant_id: i64, caller: &str, caller_external: bool, callee: &str, code: u16, reason: &str) {
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
            recording: None,
            parties: vec![super::call::PartyLog {
                role: super::call::PartyRole::Caller,
                party: caller.to_owned(),
                external: caller_external,
                joined_at: at,
                left_at: Some(at),
            }],
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
        let b_ports = ports.facing(LegSide::B);
        let offer = match media::anchor(&call.a_offer, self.local.ip, &b_ports) {
            Ok(o) => o,
            Err(reject) => return self.fail_call(now, key, reject.code, &reject.reason, super::HangupBy::Pbx),
        };
        call.relay = Some(ports);
        // The caller's side of each stream: where its SDP says to send.
        let (a_offer, a_ip) = (call.a_offer.clone(), call.a_peer.addr.ip());
        media::steer_relay(&mut self.events, key, LegSide::A, &a_offer, a_ip);

        call.b_offer = offer;
        self.send_forks(now, key);
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
