//! hark-phone: the softphone engine of Hark.
//!
//! - [`Phone`] (in `engine`): the sans-IO SIP core of one account — registration with
//!   refresh and back-off, outgoing and incoming calls (SDP offer/answer, CANCEL, BYE),
//!   hold/resume, DTMF by SIP INFO, blind transfer, and the recording controls of SPEC §1
//!   (MESSAGE in or out of dialog, or *48/*49). Commands in ([`Command`] or its
//!   methods), events out ([`PhoneEvent`]); it reads no clock and owns no socket.
//! - [`media`]: the sans-IO media of one call — RTP packetizing, RFC 4733 events, a
//!   jitter buffer with packet-loss concealment, decode/encode with hark-media's codecs.
//! - [`audio`]: where audio comes from and goes to — a WAV file as microphone and as
//!   speaker, a null device — resampled with rubato, and a local stereo recording.
//! - [`driver`]: the tokio edge: one task owns a `Phone` and its SIP socket, one task per
//!   call runs the media clock.

pub mod audio;
mod call;
pub mod config;
pub mod driver;
mod engine;
pub mod error;
pub mod event;
pub mod library;
#[cfg(feature = "cpal")]
pub mod playback;
pub mod media;
pub mod sdp_offer;

pub use config::{Account, ControlMode, DtmfMode, PhoneConfig, RegistrationTiming};
pub use engine::{Command, Phone};
pub use error::PhoneError;
pub use event::{CallHandle, ControlVia, Direction, EndReason, MediaParams, PhoneEvent, RegistrationFailure};
pub use hark_media::codec::AudioCodec;
pub use hark_recorder::{Media, MediaRecording, Operation, RecordingState};
