//! What the engine tells its owner (a CLI, a desktop app): events out. No UI types.

use hark_media::codec::AudioCodec;
use hark_recorder::{Operation, RecordingState};
use std::fmt;
use std::net::SocketAddr;

/// Names one call of a phone for as long as the phone lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Outgoing,
    Incoming,
}

/// What the media path of a call should do now: where to send, in which format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaParams {
    /// Where the peer wants RTP; None while it holds the call (or sent no address).
    pub remote: Option<SocketAddr>,
    pub codec: AudioCodec,
    pub payload_type: u8,
    /// RFC 4733 payload type the peer accepted, if any.
    pub telephone_event_pt: Option<u8>,
    /// We send audio (false while we hold the call or the peer said recvonly/inactive).
    pub send: bool,
    /// We expect audio.
    pub receive: bool,
}

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up (BYE or CANCEL).
    LocalHangup,
    /// The peer sent BYE or CANCEL.
    RemoteHangup,
    /// The call was refused with a final response, e.g. 486 Busy Here.
    Rejected { code: u16, reason: String },
    /// We refused an incoming call.
    LocalReject { code: u16 },
    /// No answer from the network (transaction timeout, transport error).
    Timeout,
    /// Something went wrong locally (a message could not be built).
    Error(String),
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::LocalHangup => f.write_str("local hangup"),
            EndReason::RemoteHangup => f.write_str("remote hangup"),
            EndReason::Rejected { code, reason } => write!(f, "{code} {reason}"),
            EndReason::LocalReject { code } => write!(f, "rejected locally with {code}"),
            EndReason::Timeout => f.write_str("no answer from the network"),
            EndReason::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Why registration failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationFailure {
    /// The server refused our credentials (a second challenge, or 403).
    BadCredentials { code: u16, reason: String },
    /// No response in time.
    Timeout,
    /// Any other final response.
    Refused { code: u16, reason: String },
}

impl fmt::Display for RegistrationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A 403 with its own reason is the server saying more than "wrong password"
            // (e.g. this address is blocked): show that.
            RegistrationFailure::BadCredentials { code: 403, reason } if !reason.eq_ignore_ascii_case("forbidden") => {
                write!(f, "refused: 403 {reason}")
            }
            RegistrationFailure::BadCredentials { code, reason } => {
                write!(f, "wrong user or password ({code} {reason})")
            }
            RegistrationFailure::Timeout => f.write_str("no answer from the server"),
            RegistrationFailure::Refused { code, reason } => write!(f, "refused with {code} {reason}"),
        }
    }
}

/// How a pause/resume was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlVia {
    MessageInDialog,
    MessageOutOfDialog,
    Dtmf,
}

/// Events, in the order they happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneEvent {
    Registered { expires: u32 },
    /// Registration failed; `retry_in_ms` is when the engine tries again (None: it gives up).
    RegistrationFailed { failure: RegistrationFailure, retry_in_ms: Option<u64> },
    Unregistered,
    /// A new incoming call; answer or reject it. `replaces`: the INVITE carries
    /// Replaces (RFC 3891) naming this established call, as an attended transfer does;
    /// answer the new call and hang up the old one.
    IncomingCall { call: CallHandle, from: String, to: String, replaces: Option<CallHandle> },
    /// Our outgoing call got a provisional response (180, 183).
    Ringing { call: CallHandle, code: u16 },
    /// The call is up (2xx sent or received).
    Answered { call: CallHandle },
    /// The PBX named the call's session (X-Session-Id).
    SessionId { call: CallHandle, session_id: String },
    /// The PBX's recording state for the call changed (X-Recording-State or state INFO).
    RecordingState { call: CallHandle, state: RecordingState },
    /// A pause/resume was accepted by the PBX (200), or DTMF was sent (then the state
    /// follows the PBX's INFO).
    ControlSucceeded { call: CallHandle, op: Operation, via: ControlVia },
    /// A pause/resume failed; the state is unchanged.
    ControlFailed { call: CallHandle, op: Operation, via: ControlVia, reason: String },
    /// Media must start or change.
    Media { call: CallHandle, params: MediaParams },
    /// Send these DTMF digits as RFC 4733 events in the call's RTP stream.
    SendRtpDtmf { call: CallHandle, digits: String, payload_type: u8 },
    /// The peer sent a DTMF digit by SIP INFO.
    DtmfReceived { call: CallHandle, digit: char },
    /// The call is on hold (by us or the peer), or off hold again.
    Hold { call: CallHandle, local: bool, remote: bool },
    /// A transfer we asked for (REFER) ended: refused, or the final status the peer
    /// reported in its NOTIFY.
    TransferResult { call: CallHandle, ok: bool, reason: String },
    Ended { call: CallHandle, reason: EndReason },
    /// The call's media could not start or failed (audio file, codec, socket).
    MediaError { call: CallHandle, reason: String },
    /// A real audio device of the call was lost (`ok` false: the call goes on while it
    /// is looked for again) or is back.
    AudioDevice { call: CallHandle, ok: bool, detail: String },
    /// The call's media stopped; its audio files are complete. `peer_*` and `rtt_ms`
    /// come from the peer's RTCP reports about our stream (0/None without any).
    MediaStopped {
        call: CallHandle,
        sent_packets: u64,
        received_packets: u64,
        peer_reports: u64,
        peer_lost: u32,
        rtt_ms: Option<u64>,
    },
}
