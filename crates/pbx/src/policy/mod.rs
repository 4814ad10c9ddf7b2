//! The recording policy (SPEC §1) as one pure function: settings and the call's parties
//! in, what to record and why out. It is evaluated again on every change of parties
//! (answer, transfer, forward, pickup); the caller starts or stops recordings to match.

use std::fmt;

/// System-wide switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystemSwitches {
    pub record_between_external_numbers: bool,
}

/// A tenant's switches ("Enable extension audio/video recording").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantSwitches {
    pub audio_recording: bool,
    pub video_recording: bool,
}

/// One party still in the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Party {
    /// An extension of the tenant, with its own switches.
    Internal { extension: String, record_audio: bool, record_video: bool },
    /// Someone reached over a trunk.
    External { number: String },
}

impl Party {
    fn is_external(&self) -> bool {
        matches!(self, Party::External { .. })
    }
}

/// What the call carries and does now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallState {
    pub has_video: bool,
    /// An audio recording is running (a transfer may leave only external parties).
    pub recording_audio: bool,
    pub recording_video: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Audio => "audio",
            Kind::Video => "video",
        })
    }
}

/// Why a kind of recording is on or off: the rule and the setting that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Rule 1/2: the tenant switch is off, so no user of the tenant is recorded.
    TenantOff(Kind),
    /// Rule 1/2: both the tenant's and this user's switches are on.
    UserOn(Kind, String),
    /// Rule 1/2: this user's switch is off (the tenant's is on).
    UserOff(Kind, String),
    /// Rule 2: video is recorded only for calls that carry video.
    NoVideoInCall,
    /// Rule 4: only external parties remain and the system switch is off.
    OnlyExternalParties,
    /// Rule 4: only external parties remain, the system switch is on, and a recording
    /// started by an internal party goes on.
    ExternalContinues(Kind),
    /// Only external parties, none of whom has a switch to start a recording.
    NoInternalParty,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TenantOff(k) => write!(f, "the tenant's {k} recording is off"),
            Reason::UserOn(k, ext) => write!(f, "{ext} records {k} calls and the tenant's {k} recording is on"),
            Reason::UserOff(k, ext) => write!(f, "{ext} does not record {k} calls"),
            Reason::NoVideoInCall => f.write_str("the call carries no video"),
            Reason::OnlyExternalParties => {
                f.write_str("only external parties remain and recording between external numbers is off")
            }
            Reason::ExternalContinues(k) => write!(
                f,
                "only external parties remain; recording between external numbers is on, so the {k} recording goes on"
            ),
            Reason::NoInternalParty => f.write_str("no internal party is in the call"),
        }
    }
}

/// What to record, with every reason that led there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub audio: bool,
    pub video: bool,
    pub reasons: Vec<Reason>,
}

impl Decision {
    /// One sentence for people ("recorded: yes, because …").
    pub fn explain(&self) -> String {
        let verdict = match (self.audio, self.video) {
            (true, true) => "recorded (audio and video)",
            (true, false) => "recorded (audio)",
            (false, true) => "recorded (video)",
            (false, false) => "not recorded",
        };
        let why: Vec<String> = self.reasons.iter().map(ToString::to_string).collect();
        format!("{verdict}, because {}", why.join("; "))
    }
}

/// Rules 1–4 of SPEC §1. The recording is one per call whoever asks for it (rule 3): the
/// answer says whether, not for whom.
pub fn decide(system: SystemSwitches, tenant: TenantSwitches, parties: &[Party], call: CallState) -> Decision {
    let mut reasons = Vec::new();
    if !parties.is_empty() && parties.iter().all(Party::is_external) {
        if !system.record_between_external_numbers {
            return Decision { audio: false, video: false, reasons: vec![Reason::OnlyExternalParties] };
        }
        // No internal party has a switch to turn a recording on; one that is running
        // (started for an agent who has since transferred the call away) goes on.
        let audio = call.recording_audio;
        let video = call.recording_video && call.has_video;
        for (on, kind) in [(audio, Kind::Audio), (video, Kind::Video)] {
            if on {
                reasons.push(Reason::ExternalContinues(kind));
            }
        }
        if reasons.is_empty() {
            reasons.push(Reason::NoInternalParty);
        }
        return Decision { audio, video, reasons };
    }
    let audio = kind_decision(Kind::Audio, tenant.audio_recording, parties, &mut reasons);
    let video = if call.has_video {
        kind_decision(Kind::Video, tenant.video_recording, parties, &mut reasons)
    } else {
        reasons.push(Reason::NoVideoInCall);
        false
    };
    Decision { audio, video, reasons }
}

fn kind_decision(kind: Kind, tenant_on: bool, parties: &[Party], reasons: &mut Vec<Reason>) -> bool {
    if !tenant_on {
        reasons.push(Reason::TenantOff(kind));
        return false;
    }
    let mut on = false;
    for p in parties {
        if let Party::Internal { extension, record_audio, record_video } = p {
            let user_on = match kind {
                Kind::Audio => *record_audio,
                Kind::Video => *record_video,
            };
            reasons.push(if user_on { Reason::UserOn(kind, extension.clone()) } else { Reason::UserOff(kind, extension.clone()) });
            on |= user_on;
        }
    }
    on
}

#[cfg(test)]
mod tests;
