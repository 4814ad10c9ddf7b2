//! hark-recorder: call recording for Hark.
//!
//! - [`control`]: the media-control protocol — pause/resume requests in SIP MESSAGE
//!   bodies (JSON out of dialog, plain text in dialog), the `X-Recording-State` header
//!   and the state INFO body.
//! - [`wav`]: crash-safe WAV files over hound ([`WavRecording`]: header brought up to
//!   date at least every second, typed errors, a failed file kept playable) and
//!   [`repair`] of files a crash left unfinished.
//! - [`recorder`]: the sans-IO [`CallRecorder`] of one call — decodes both sides' RTP
//!   (G.711, G.722, Opus), lays it on the call's wall-clock timeline by RTP timestamp
//!   (loss and gaps become silence, reordering is undone, SSRC changes continue,
//!   telephone-events are left out), writes stereo (caller left, callee right) or a mono
//!   mix, and pauses/resumes with events carrying their offsets.
//!
//! Nothing here reads a clock or spawns a task: time comes in as `now: Instant`. The
//! only I/O is the WAV file a [`WavRecording`] writes when its owner calls it.

pub mod control;
pub mod recorder;
mod resample;
pub mod wav;

pub use control::{
    ControlError, ControlRequest, JsonControl, Media, MediaRecording, Operation, RecordingState,
    StateInfo, parse_body, parse_json_body, parse_text_body, to_json_body, to_text_body,
};
pub use recorder::{
    CallRecorder, ControlSource, FrameSink, Layout, MemorySink, RecorderConfig, RecorderError,
    RecorderEvent, RecorderState, RecorderStats, RecordingSummary, SideCodecs, SideStats,
    file_rate,
};
pub use wav::{
    RepairError, RepairOutcome, WavError, WavInfo, WavOptions, WavRecording, looks_unfinished,
    repair,
};
