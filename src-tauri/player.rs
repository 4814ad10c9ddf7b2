//! Playback of recordings: hark-phone's rodio player (play, pause, seek, waveform).

pub use hark_phone::playback::{Player, Status, Waveform, waveform};
