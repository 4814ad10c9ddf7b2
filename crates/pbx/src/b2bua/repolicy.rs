//! Rule 5 of SPEC §1: when the call's parties change (a transfer, a forward), the
//! recording policy is decided again. A recording the policy no longer wants stops (its
//! file finalized, the reason stored: `external-to-external` when only parties reached
//! over trunks remain and the system switch is off); one it now wants starts, as a new
//! recording of the same session. Phones are told by the state INFO.

use super::call::LegSide;
use super::CallKey;
use crate::core::{CoreEvent, PbxCore};
use crate::policy::{CallState, Reason};
use hark_recorder::{MediaRecording, RecordingState};
use std::time::Instant;

impl PbxCore {
    pub(crate) fn reevaluate_policy(&mut self, now: Instant, key: CallKey, what: &str) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        let recording_audio = call.recording.audio != MediaRecording::Off;
        let parties = [self.policy_party(&call.caller, call.trunks[0]), self.policy_party(&call.callee, call.trunks[1])];
        let decision = crate::policy::decide(
            self.directory.system(),
            self.directory.tenant_switches(call.tenant_id),
            &parties,
            CallState { has_video: call.has_video, recording_audio, recording_video: false },
        );
        tracing::info!(session = %call.session, change = what, recording = %decision.explain(), "policy decided again");
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.decision = decision.clone();
        if recording_audio && !decision.audio {
            let reason = if decision.reasons.contains(&Reason::OnlyExternalParties) { "external-to-external" } else { "policy" };
            call.recording = RecordingState::OFF;
            self.events.push_back(CoreEvent::RecordStop { call: key, reason: reason.into() });
            self.send_state_info(now, key);
        } else if !recording_audio && decision.audio {
            self.start_recording(key);
            self.send_state_info(now, key);
        } else if recording_audio && decision.audio {
            // The recording goes on: whoever joined is linked to it (rule 3).
            for side in [LegSide::A, LegSide::B] {
                let (party, external) = (call.party(side).extension.clone(), call.is_external(side));
                self.events.push_back(CoreEvent::RecordParty { call: key, party, external });
            }
        }
    }

    /// Starts the call's audio recording as its decision says (at the answer, or after
    /// a change of parties); the start beep if the tenant wants one.
    pub(crate) fn start_recording(&mut self, key: CallKey) {
        let Some(call) = self.calls.calls.get(&key) else { return };
        let tenant = self.directory.tenant_name(call.tenant_id);
        let options = self.directory.recording_options(call.tenant_id);
        let Some(call) = self.calls.calls.get_mut(&key) else { return };
        call.recording = super::invite::planned_state(&call.decision);
        call.recordings += 1;
        let parties = [LegSide::A, LegSide::B].map(|s| (call.party(s).extension.clone(), call.is_external(s))).to_vec();
        self.events.push_back(CoreEvent::RecordStart {
            call: key,
            session: call.session.clone(),
            tenant_id: call.tenant_id,
            tenant,
            parties,
            caller_sdp: call.a_offer.clone(),
            callee_sdp: call.b_answer.clone(),
            reason: call.decision.explain(),
            layout: match options.layout {
                crate::store::RecordingLayout::Stereo => hark_recorder::Layout::Stereo,
                crate::store::RecordingLayout::Mono => hark_recorder::Layout::Mono,
            },
        });
        if options.start_beep {
            for side in [LegSide::A, LegSide::B] {
                self.play_tone(key, side, hark_media::relay::Tone::RecordingStarted);
            }
        }
    }
}
