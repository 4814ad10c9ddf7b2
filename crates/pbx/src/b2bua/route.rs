//! Where a call goes: a dialled number becomes an extension of the tenant or, through
//! an outbound route, a number on a trunk; the INVITEs towards it are one per registered
//! contact of an extension (parallel forking), or one to the trunk's carrier, which may
//! challenge it (Digest, with the trunk's credentials).

use super::call::{Fork, LegSide};
use super::invite::{planned_state, X_RECORDING_STATE, X_SESSION_ID};
use super::{CallKey, TimerKind};
use crate::core::PbxCore;
use crate::policy::Party;
use crate::registrar::UserKey;
use hark_sip::auth::DigestClient;
use hark_sip::dialog::top_via;
use hark_sip::rsip::{self, Header, Method, Request, Response};
use hark_sip::transport::Peer;
use hark_sip::{Branch, CallId, SipHeaders, Tag};
use std::time::Instant;

/// Where a dialled number leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Extension(UserKey),
    /// A number (as the carrier wants it) on a trunk.
    Trunk { trunk_id: i64, number: String },
}

/// The request line, From and To of an INVITE towards one destination.
pub(crate) struct Addressing {
    pub uri: rsip::Uri,
    pub peer: Peer,
    pub from: String,
    pub to: String,
}

impl PbxCore {
    /// An extension of the tenant, else a number an outbound route sends to a trunk.
    pub(crate) fn route(&self, tenant_id: i64, dialled: &str) -> Option<Target> {
        if dialled.is_empty() {
            return None;
        }
        let key = UserKey { tenant_id, extension: dialled.to_owned() };
        if self.directory.user(&key).is_some() {
            return Some(Target::Extension(key));
        }
        self.directory
            .route_outbound(tenant_id, dialled)
            .map(|(trunk, number)| Target::Trunk { trunk_id: trunk.id, number })
    }

    /// A party as the recording policy sees it.
    pub(crate) fn policy_party(&self, who: &UserKey, trunk: Option<i64>) -> Party {
        match trunk {
            Some(_) => Party::External { number: who.extension.clone() },
            None => self.directory.party(who),
        }
    }

    /// How to address an INVITE to `target` from `caller` (shown with `display`):
    /// one entry per registered contact of an extension, one for a trunk.
    pub(crate) fn addressing(&self, tenant_id: i64, caller: &UserKey, caller_external: bool, display: Option<&str>, target: &Target, from_tag: &Tag) -> Vec<Addressing> {
        let domain = self.directory.tenants().find(|t| t.id == tenant_id).map(|t| t.domain.clone()).unwrap_or_default();
        let name = match display {
            Some(d) if !d.is_empty() => format!("\"{}\" ", d.trim_matches('"')),
            _ => String::new(),
        };
        match target {
            Target::Extension(callee) => {
                let from = format!("{name}<sip:{}@{domain}>;tag={from_tag}", caller.extension);
                let to = format!("<sip:{}@{domain}>", callee.extension);
                self.location
                    .bindings(callee)
                    .iter()
                    .filter_map(|b| match rsip::Uri::try_from(b.contact.as_str()) {
                        Ok(uri) => Some(Addressing { uri, peer: b.source, from: from.clone(), to: to.clone() }),
                        Err(_) => {
                            tracing::warn!(contact = %b.contact, "unusable registered contact");
                            None
                        }
                    })
                    .collect()
            }
            Target::Trunk { trunk_id, number } => {
                let Some(trunk) = self.directory.trunks().iter().find(|t| t.id == *trunk_id) else { return Vec::new() };
                let host = trunk.host.as_str();
                // Caller-ID: the trunk's number for our extensions; a caller from
                // outside (a forwarded inbound call) keeps their own number.
                let shown = match (&trunk.caller_id, caller_external) {
                    (Some(id), false) => id.clone(),
                    _ => caller.extension.clone(),
                };
                let Ok(uri) = rsip::Uri::try_from(format!("sip:{number}@{host}").as_str()) else { return Vec::new() };
                vec![Addressing {
                    uri,
                    peer: Peer::udp(trunk.addr),
                    from: format!("{name}<sip:{shown}@{host}>;tag={from_tag}"),
                    to: format!("<sip:{number}@{host}>"),
                }]
            }
        }
    }

    /// An INVITE of the call (offer `sdp`, anchored for the leg it goes to).
    pub(crate) fn build_invite(&self, key: CallKey, a: &Addressing, call_id: &CallId, cseq: u32, sdp: &[u8]) -> Option<Request> {
        let call = self.calls.calls.get(&key)?;
        let mut headers = rsip::Headers::default();
        headers.push(top_via(a.peer.transport, self.local.sent_by(a.peer.transport), &Branch::random()).into());
        headers.push(Header::MaxForwards(70.into()));
        headers.push(Header::From(rsip::headers::From::new(a.from.clone())));
        headers.push(Header::To(rsip::headers::To::new(a.to.clone())));
        headers.push(Header::CallId(call_id.as_str().into()));
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!("{cseq} INVITE"))));
        headers.push(Header::Contact(rsip::headers::Contact::new(self.local.contact(a.peer.transport))));
        headers.push(Header::Allow(rsip::headers::Allow::new(crate::core::ALLOW)));
        headers.push(Header::Other(X_SESSION_ID.into(), call.session.to_string()));
        // Before the answer, what the policy plans; once a recording runs (a transfer
        // target is being called), its real state: paused stays paused.
        let state = if call.recording == hark_recorder::RecordingState::OFF { planned_state(&call.decision) } else { call.recording };
        headers.push(Header::Other(X_RECORDING_STATE.into(), state.to_header_value()));
        headers.push(Header::ContentType(rsip::headers::ContentType::new("application/sdp")));
        Some(Request { method: Method::Invite, uri: a.uri.clone(), version: rsip::Version::V2, headers, body: sdp.to_vec() })
    }

    /// Sends the call's INVITEs to its callee (every registered contact, or the trunk)
    /// and starts the ring timer; fails the call when nothing could be sent.
    pub(crate) fn send_forks(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        let target = match call.trunks[LegSide::B as usize] {
            Some(trunk_id) => Target::Trunk { trunk_id, number: call.callee.extension.clone() },
            None => Target::Extension(call.callee.clone()),
        };
        let from_tag = Tag::random();
        let call_id = CallId::random();
        let addressing = self.addressing(call.tenant_id, &call.caller, call.is_external(LegSide::A), call.caller_display.as_deref(), &target, &from_tag);
        let offer = call.b_offer.clone();
        let mut forks = Vec::new();
        for a in &addressing {
            let Some(req) = self.build_invite(key, a, &call_id, 1, &offer) else { continue };
            match self.tx.send_request(now, req.clone(), a.peer) {
                Ok(tx) => forks.push(Fork { tx, request: req, peer: a.peer, early: false, done: false, authenticated: false }),
                Err(e) => tracing::warn!(error = %e, "could not send INVITE to a contact"),
            }
        }
        if forks.is_empty() {
            return self.fail_call(now, key, 480, "Temporarily Unavailable", super::HangupBy::Pbx);
        }
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        // A no-answer forward fires before the ring timeout.
        let mut ring = self.config.calls.ring_timeout;
        if let Some(f) = &call.forward
            && f.no_answer.is_some()
        {
            ring = ring.min(std::time::Duration::from_secs(u64::from(self.directory.forwarding(&call.callee).no_answer_secs)));
        }
        let deadline = now + ring;
        for f in &forks {
            self.calls.by_client_tx.insert(f.tx, key);
        }
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.forks = forks;
        call.state = super::call::CallState::Ringing;
        call.ring_deadline = Some(deadline);
        call.b_invite_cseq = 1;
        call.cdr.b_call_id = Some(call_id.to_string());
        self.calls.schedule(deadline, key, TimerKind::Ring);
    }

    /// A carrier challenged an INVITE we sent to its trunk: the same INVITE again with
    /// the trunk's credentials (once; a second challenge means they are wrong).
    pub(crate) fn answer_trunk_challenge(&mut self, now: Instant, trunk_id: Option<i64>, invite: &Request, challenge: &Response) -> Option<(Request, hark_sip::transaction::ClientTxId)> {
        let trunk = self.directory.trunks().iter().find(|t| Some(t.id) == trunk_id)?;
        let (user, password) = (trunk.username.clone()?, trunk.password.clone()?);
        let proxy = challenge.status_code.code() == 407;
        let values: Vec<String> = challenge
            .headers
            .iter()
            .filter_map(|h| match h {
                Header::WwwAuthenticate(v) if !proxy => Some(v.value().to_owned()),
                Header::ProxyAuthenticate(v) if proxy => Some(v.value().to_owned()),
                _ => None,
            })
            .collect();
        let mut client = DigestClient::new(user, password);
        let realm = client.on_challenges(values.iter().map(String::as_str)).ok()?.into_iter().next()?;
        let uri = invite.uri.to_string();
        let credentials = client.authorize(&realm, "INVITE", &uri)?.to_header_value();
        let (seq, _) = invite.cseq().ok()?;
        let peer = Peer::udp(trunk.addr);
        let mut headers = rsip::Headers::default();
        headers.push(top_via(peer.transport, self.local.sent_by(peer.transport), &Branch::random()).into());
        for h in invite.headers.iter() {
            if !matches!(h, Header::Via(_) | Header::CSeq(_) | Header::Authorization(_) | Header::ProxyAuthorization(_)) {
                headers.push(h.clone());
            }
        }
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!("{} INVITE", seq + 1))));
        headers.push(if proxy {
            Header::ProxyAuthorization(rsip::headers::ProxyAuthorization::new(credentials))
        } else {
            Header::Authorization(rsip::headers::Authorization::new(credentials))
        });
        let req = Request { headers, ..invite.clone() };
        let tx = self.tx.send_request(now, req.clone(), peer).ok()?;
        Some((req, tx))
    }
}

use hark_sip::rsip::headers::UntypedHeader;
