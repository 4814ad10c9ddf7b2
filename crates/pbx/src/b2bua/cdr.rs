//! The call detail record the B2BUA emits when a call ends, and how SIP outcomes map to
//! its disposition.

use std::time::SystemTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Answered,
    Busy,
    NoAnswer,
    Cancelled,
    Failed,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no-answer",
            Disposition::Cancelled => "cancelled",
            Disposition::Failed => "failed",
        }
    }

    /// The disposition of a call that failed with this final response from the callee.
    pub fn from_status(code: u16) -> Disposition {
        match code {
            486 | 600 | 603 => Disposition::Busy,
            408 | 480 => Disposition::NoAnswer,
            487 => Disposition::Cancelled,
            _ => Disposition::Failed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangupBy {
    Caller,
    Callee,
    Pbx,
}

impl HangupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            HangupBy::Caller => "caller",
            HangupBy::Callee => "callee",
            HangupBy::Pbx => "pbx",
        }
    }
}

/// A finished call, ready for the store.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRecord {
    pub session_id: String,
    pub tenant_id: i64,
    pub caller: String,
    pub callee: String,
    pub started_at: SystemTime,
    pub answered_at: Option<SystemTime>,
    pub ended_at: SystemTime,
    pub disposition: Disposition,
    pub hangup_by: HangupBy,
    pub hangup_cause: String,
    pub a_call_id: String,
    pub b_call_id: Option<String>,
    pub codec: Option<String>,
    /// The recording policy's last decision, explained.
    pub recording: Option<String>,
    /// Everyone who took part, in order of joining (the first two: caller and callee).
    pub parties: Vec<super::call::PartyLog>,
}

impl CallRecord {
    pub fn duration_s(&self) -> f64 {
        self.ended_at.duration_since(self.started_at).map(|d| d.as_secs_f64()).unwrap_or(0.0)
    }

    pub fn billsec(&self) -> f64 {
        match self.answered_at {
            Some(a) => self.ended_at.duration_since(a).map(|d| d.as_secs_f64()).unwrap_or(0.0),
            None => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispositions_follow_the_final_status() {
        assert_eq!(Disposition::from_status(486), Disposition::Busy);
        assert_eq!(Disposition::from_status(603), Disposition::Busy);
        assert_eq!(Disposition::from_status(480), Disposition::NoAnswer);
        assert_eq!(Disposition::from_status(487), Disposition::Cancelled);
        assert_eq!(Disposition::from_status(500), Disposition::Failed);
        assert_eq!(Disposition::NoAnswer.as_str(), "no-answer");
    }
}
