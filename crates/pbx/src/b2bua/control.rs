//! Recording control during a call (SPEC §1): the media-control MESSAGE in and out of
//! dialog, the state phones are told (X-Recording-State, state INFO), and the events that
//! make the recorder pause and resume. The PBX consumes these MESSAGEs; it never relays
//! them to the other party.

use super::call::{CallState, LegSide};
use super::CallKey;
use crate::core::{CoreEvent, PbxCore};
use crate::registrar::UserKey;
use hark_media::relay::Tone;
use hark_recorder::{ControlSource, Operation};
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::message::HeadersExt;
use hark_sip::rsip::{self, Header, Method, Request};
use hark_sip::transaction::ServerTxId;
use hark_sip::transport::Peer;
use hark_sip::{NameAddr, SipHeaders};
use std::time::Instant;

pub(crate) const JSON_TYPE: &str = "application/x-media-control+json";
pub(crate) const TEXT_TYPE: &str = "application/x-media-control";


impl PbxCore {
    /// A MESSAGE with no To tag: the JSON form naming a session, or the text form
    /// naming the call by its Call-ID (some clients send it so).
    pub(crate) fn on_message_out_of_dialog(&mut self, now: Instant, id: ServerTxId, req: Request, from: Peer) {
        // Who is asking: the From user, digest-authenticated, before anything is revealed.
        let sender = req.from_header().ok().and_then(|h| {
            let n = NameAddr::parse(h.value()).ok()?;
            Some((n.uri_user()?.to_owned(), n.uri_hostport().to_owned()))
        });
        let Some((ext, host)) = sender else {
            return self.reply(now, &id, &req, 400, "Malformed From", vec![]);
        };
        let Some(tenant) = self.directory.tenant_for_host(&host).cloned() else {
            return self.reply(now, &id, &req, 404, "Not Found", vec![]);
        };
        let user = UserKey { tenant_id: tenant.id, extension: ext };
        if !self.authenticate(now, &id, &req, from, &tenant.domain, &user, true) {
            return;
        }
        let content_type = req.content_type().unwrap_or_default();
        let target = match content_type.as_str() {
            JSON_TYPE => match hark_recorder::parse_json_body(&req.body) {
                Ok(c) => Ok((c.operation, self.calls.by_session.iter().find(|(s, _)| s.as_str() == c.session_id).map(|(_, k)| *k))),
                Err(e) => Err((e.status_code(), e.reason_phrase())),
            },
            TEXT_TYPE => match hark_recorder::parse_text_body(&req.body) {
                Ok(op) => {
                    let call_id = req.call_id().map(|c| c.to_string()).unwrap_or_default();
                    let key = self.calls.calls.values().find(|c| c.cdr.a_call_id == call_id || c.cdr.b_call_id.as_deref() == Some(call_id.as_str())).map(|c| c.key);
                    Ok((op, key))
                }
                Err(e) => Err((e.status_code(), e.reason_phrase())),
            },
            _ => Err((415, "Unsupported Media Type".to_owned())),
        };
        let (op, key) = match target {
            Ok(t) => t,
            Err((code, reason)) => return self.reply(now, &id, &req, code, &reason, vec![]),
        };
        // A session that does not exist and one the user is not a party of look the same.
        let party = key.filter(|k| {
            self.calls.calls.get(k).is_some_and(|c| c.state == CallState::Answered && (c.caller == user || c.callee == user))
        });
        let Some(key) = party else {
            return self.reply(now, &id, &req, 404, "Not Found", vec![]);
        };
        self.apply_control(now, key, op, ControlSource::Message, &user.extension);
        self.reply(now, &id, &req, 200, "OK", vec![]);
    }

    /// A media-control MESSAGE inside the call's dialog (text body; the JSON form too).
    /// True when it was one and has been answered.
    pub(crate) fn on_message_in_dialog(&mut self, now: Instant, key: CallKey, side: LegSide, id: &ServerTxId, req: &Request) -> bool {
        let content_type = req.content_type().unwrap_or_default();
        let op = match content_type.as_str() {
            TEXT_TYPE => hark_recorder::parse_text_body(&req.body),
            JSON_TYPE => hark_recorder::parse_json_body(&req.body).map(|c| c.operation),
            _ => return false,
        };
        match op {
            Err(e) => self.reply(now, id, req, e.status_code(), &e.reason_phrase(), vec![]),
            Ok(op) => {
                let actor = self.calls.calls.get(&key).map(|c| c.party(side).extension.clone());
                self.apply_control(now, key, op, ControlSource::Message, &actor.unwrap_or_default());
                self.reply(now, id, req, 200, "OK", vec![]);
            }
        }
        true
    }

    /// A feature code (*48 pause, *49 resume) typed by one side of a call, seen in its
    /// media (RFC 4733 or in-band) or in SIP INFO.
    pub fn handle_feature_code(&mut self, now: Instant, key: CallKey, side: LegSide, code: hark_media::dtmf::FeatureCode, source: ControlSource) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        let actor = call.party(side).extension.clone();
        let op = match code {
            hark_media::dtmf::FeatureCode::Pause => Operation::PauseAudio,
            hark_media::dtmf::FeatureCode::Resume => Operation::ResumeAudio,
        };
        self.apply_control(now, key, op, source, &actor);
    }

    /// A DTMF digit carried by SIP INFO (application/dtmf-relay or application/dtmf).
    /// The INFO itself is still relayed to the other party.
    pub(crate) fn on_info_digit(&mut self, now: Instant, key: CallKey, side: LegSide, req: &Request) {
        let content_type = req.content_type().unwrap_or_default();
        let Ok(Some(digit)) = hark_media::dtmf::parse_info_body(&content_type, &req.body) else { return };
        let at_ms = now.saturating_duration_since(self.wall_base_instant()).as_millis() as u64;
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        let codes = &mut call.info_codes[side as usize];
        if let Some(code) = codes.push(digit, at_ms) {
            self.handle_feature_code(now, key, side, code, ControlSource::Info);
        }
    }

    /// Applies a pause or resume: pausing a paused recording (or one that is off) is a
    /// no-op that still succeeds. A change reaches the recorder and both phones, and
    /// (a tenant option, on by default) a tone confirms it to the party who asked.
    pub(crate) fn apply_control(&mut self, now: Instant, key: CallKey, op: Operation, source: ControlSource, actor: &str) {
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        if !call.recording.apply(op) {
            return;
        }
        tracing::info!(session = %call.session, op = op.as_str(), source = source.as_str(), actor, "recording control");
        let requester = if call.caller.extension == actor {
            Some(LegSide::A)
        } else if call.callee.extension == actor {
            Some(LegSide::B)
        } else {
            None
        };
        let tenant_id = call.tenant_id;
        self.events.push_back(CoreEvent::RecordControl { call: key, op, source, actor: actor.to_owned() });
        if let Some(side) = requester
            && self.directory.recording_options(tenant_id).pause_confirmation_tone
        {
            let tone = if op.is_pause() { Tone::RecordingPaused } else { Tone::RecordingResumed };
            self.play_tone(key, side, tone);
        }
        self.send_state_info(now, key);
    }

    /// Plays `tone` to the phone on `side` of an answered call, in the audio the relay
    /// forwards to it from the other side.
    pub(crate) fn play_tone(&mut self, key: CallKey, side: LegSide, tone: Tone) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        // The relay's streams follow the caller's offer; the packets carry the PTs of
        // the side that sends them (normally the same numbers on both sides).
        let Some((stream, _)) = super::media::audio_stream(&call.a_offer) else { return };
        let formats = [side.other(), side]
            .into_iter()
            .filter_map(|s| super::media::audio_stream(call.sdp(s)))
            .flat_map(|(_, formats)| formats)
            .collect();
        self.events.push_back(CoreEvent::PlayTone { call: key, stream, side, tone, formats });
    }

    /// Tells both phones the recording state (a Hark extension; phones that answer 415 or
    /// 469 are not told again).
    pub(crate) fn send_state_info(&mut self, now: Instant, key: CallKey) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        let body = call.recording.to_info_json(call.session.as_str());
        let refused = call.info_refused;
        for side in [LegSide::A, LegSide::B] {
            if !refused[side as usize] {
                let content_type = vec![Header::ContentType(rsip::headers::ContentType::new(JSON_TYPE))];
                self.send_own_request(now, key, side, Method::Info, content_type, body.clone());
            }
        }
    }
}
