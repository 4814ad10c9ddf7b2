//! Recording controls (SPEC §1, §2): pause/resume of the PBX's recording by MESSAGE in
//! dialog, MESSAGE out of dialog (JSON with the X-Session-Id), or the *48/*49 feature
//! codes. The state changes only on the PBX's 200 (or its state INFO); every failure is
//! an event with its reason.

use super::build::{cseq_of, new_branch, reason_of, set_cseq};
use super::{Phone, TxPurpose};
use crate::call::Pending;
use crate::config::ControlMode;
use crate::error::PhoneError;
use crate::event::{CallHandle, ControlVia, PhoneEvent};
use hark_recorder::{MediaRecording, Operation};
use hark_recorder::control::{JSON_CONTENT_TYPE, TEXT_CONTENT_TYPE, to_json_body, to_text_body};
use hark_sip::rsip::{Method, Request, Response, Uri};
use hark_sip::{CallId, Tag};
use std::time::Instant;

/// How long the PBX has to confirm a *48/*49 with its state INFO: the digits take about
/// 0.3 s to send, then a round trip.
pub const DTMF_CONFIRM: std::time::Duration = std::time::Duration::from_secs(4);

/// The feature code that asks for `op`.
pub fn feature_code(op: Operation) -> &'static str {
    if op.is_pause() { "*48" } else { "*49" }
}

impl Phone {
    /// Pauses or resumes the PBX's recording of `handle` the configured way.
    pub fn recording_control(&mut self, now: Instant, handle: CallHandle, op: Operation) -> Result<(), PhoneError> {
        let mode = self.config.control;
        self.recording_control_via(now, handle, op, mode)
    }

    pub fn recording_control_via(
        &mut self,
        now: Instant,
        handle: CallHandle,
        op: Operation,
        mode: ControlMode,
    ) -> Result<(), PhoneError> {
        self.call_mut(handle)?;
        match mode {
            ControlMode::InDialog => {
                let sent = self.send_in_dialog(
                    now,
                    handle,
                    Method::Message,
                    |req| Self::set_body(req, TEXT_CONTENT_TYPE, to_text_body(op)),
                    |request| Pending::ControlMessage { op, request, auth_tries: 0 },
                );
                if let Err(e) = sent {
                    self.control_failed(handle, op, ControlVia::MessageInDialog, e.to_string());
                }
            }
            ControlMode::OutOfDialog => self.send_control_out_of_dialog(now, handle, op),
            ControlMode::Dtmf => match self.send_dtmf(now, handle, feature_code(op)) {
                // The PBX answers feature codes with a state INFO, not a response: that
                // INFO is the success, its absence a failure.
                Ok(()) => {
                    if let Some(call) = self.calls.get_mut(&handle) {
                        call.dtmf_control = Some((op, now + DTMF_CONFIRM));
                    }
                }
                Err(e) => self.control_failed(handle, op, ControlVia::Dtmf, e.to_string()),
            },
        }
        Ok(())
    }

    fn send_control_out_of_dialog(&mut self, now: Instant, handle: CallHandle, op: Operation) {
        let via = ControlVia::MessageOutOfDialog;
        let Some(session) = self.calls.get(&handle).and_then(|c| c.session_id.clone()) else {
            return self.control_failed(handle, op, via, "the PBX sent no X-Session-Id for this call".into());
        };
        let domain = self.config.account.domain.clone();
        let Ok(uri) = Uri::try_from(format!("sip:{domain}").as_str()) else {
            return self.control_failed(handle, op, via, format!("bad domain {domain:?}"));
        };
        let mut req = self.out_of_dialog_request(Method::Message, uri, &format!("<sip:{domain}>"), &CallId::random(), &Tag::random(), 1, false);
        Self::set_body(&mut req, JSON_CONTENT_TYPE, to_json_body(op, &session));
        self.start_control_message(now, handle, op, req, 0);
    }

    fn start_control_message(&mut self, now: Instant, handle: CallHandle, op: Operation, req: Request, auth_tries: u32) {
        match self.tx.send_request(now, req.clone(), self.server_peer()) {
            Ok(id) => {
                self.purposes.insert(id, TxPurpose::ControlMessage { call: handle, op, request: Box::new(req), auth_tries });
            }
            Err(e) => self.control_failed(handle, op, ControlVia::MessageOutOfDialog, e.to_string()),
        }
    }

    pub(super) fn on_control_message_response(
        &mut self,
        now: Instant,
        handle: CallHandle,
        op: Operation,
        mut request: Request,
        auth_tries: u32,
        resp: Response,
    ) {
        let code = resp.status_code.code();
        let via = ControlVia::MessageOutOfDialog;
        if code < 200 {
            return;
        }
        if (200..300).contains(&code) {
            return self.control_succeeded(handle, op, via);
        }
        if (code == 401 || code == 407) && auth_tries < 2 && self.add_credentials(&mut request, &resp) {
            let seq = cseq_of(&request) + 1;
            set_cseq(&mut request, seq);
            new_branch(&mut request, self.config.account.transport, self.local);
            return self.start_control_message(now, handle, op, request, auth_tries + 1);
        }
        self.control_failed(handle, op, via, format!("{code} {}", reason_of(&resp)));
    }

    pub(super) fn control_succeeded(&mut self, handle: CallHandle, op: Operation, via: ControlVia) {
        self.events.push_back(PhoneEvent::ControlSucceeded { call: handle, op, via });
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let mut state = call.recording;
        if state.apply(op) {
            call.recording = state;
            self.events.push_back(PhoneEvent::RecordingState { call: handle, state });
        }
    }

    pub(super) fn control_failed(&mut self, handle: CallHandle, op: Operation, via: ControlVia, reason: String) {
        self.events.push_back(PhoneEvent::ControlFailed { call: handle, op, via, reason });
    }
}

impl Phone {
    /// A new recording state from the PBX: it confirms a waiting *48/*49 that it applies.
    pub(super) fn confirm_dtmf_control(&mut self, handle: CallHandle, state: hark_recorder::RecordingState) {
        let Some(call) = self.calls.get_mut(&handle) else { return };
        let Some((op, _)) = call.dtmf_control else { return };
        if state.get(op.media()) == if op.is_pause() { MediaRecording::Paused } else { MediaRecording::Recording } {
            call.dtmf_control = None;
            self.events.push_back(PhoneEvent::ControlSucceeded { call: handle, op, via: ControlVia::Dtmf });
        }
    }

    /// *48/*49 the PBX did not confirm in time: a failure with its reason.
    pub(super) fn dtmf_control_timeouts(&mut self, now: Instant) {
        let expired: Vec<(CallHandle, Operation)> = self
            .calls
            .values_mut()
            .filter_map(|c| match c.dtmf_control {
                Some((op, deadline)) if now >= deadline => {
                    c.dtmf_control = None;
                    Some((c.handle, op))
                }
                _ => None,
            })
            .collect();
        for (handle, op) in expired {
            let reason = format!(
                "sent {}, but the PBX did not confirm it within {} s (is this call recorded?)",
                feature_code(op),
                DTMF_CONFIRM.as_secs()
            );
            self.control_failed(handle, op, ControlVia::Dtmf, reason);
        }
    }

    pub(super) fn dtmf_control_deadline(&self) -> Option<Instant> {
        self.calls.values().filter_map(|c| c.dtmf_control.map(|(_, d)| d)).min()
    }
}
