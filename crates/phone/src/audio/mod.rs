//! Where a call's audio comes from and goes to, chosen explicitly: a real device
//! (cpal), a WAV file as the microphone and another for what the speaker would play, or
//! the null device (silence in, nothing out). Plus the local recording of a call to a
//! stereo WAV.

#[cfg(feature = "cpal")]
pub mod device;
#[cfg(feature = "cpal")]
pub mod meter;
mod file;
mod local_recording;
mod null;
pub mod resample;

pub use file::{WavSink, WavSource};
pub use local_recording::LocalRecording;
pub use null::{NullSink, NullSource};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error(transparent)]
    Resample(#[from] resample::ResampleError),
    #[error("audio device: {0}")]
    Device(String),
}

/// The microphone of a call.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum SourceConfig {
    /// Silence.
    #[default]
    Null,
    /// A WAV file (any rate, mono or stereo), played once, then silence.
    File(PathBuf),
    /// A real input device through cpal: the default one, or by name.
    Device(Option<String>),
}

/// The speaker of a call.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum SinkConfig {
    #[default]
    Null,
    /// A mono WAV at the call's codec rate, crash-safe (header kept up to date).
    File(PathBuf),
    /// A real output device through cpal: the default one, or by name.
    Device(Option<String>),
}

/// The audio devices of a phone; each call opens its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AudioConfig {
    pub source: SourceConfig,
    pub sink: SinkConfig,
    /// Record each call to this stereo WAV: microphone left, remote right.
    pub local_recording: Option<PathBuf>,
}

/// A real device went away or came back during a call (files and null never do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceNotice {
    /// false: lost (the call goes on, silent on that side, while the device is looked
    /// for again); true: back.
    pub ok: bool,
    pub detail: String,
}

/// 20 ms of microphone audio per tick.
pub trait AudioSource: Send {
    /// Fills `out` (one frame at the rate given when opened).
    fn read_frame(&mut self, out: &mut [i16]);
    /// The next loss or return of the device not reported yet.
    fn take_notice(&mut self) -> Option<DeviceNotice> {
        None
    }
}

/// What the speaker plays, 20 ms per tick.
pub trait AudioSink: Send {
    fn write_frame(&mut self, pcm: &[i16]) -> Result<(), AudioError>;
    /// Flushes and closes (a file's header is final after this).
    fn finish(&mut self) -> Result<(), AudioError>;
    /// The next loss or return of the device not reported yet.
    fn take_notice(&mut self) -> Option<DeviceNotice> {
        None
    }
}

impl SourceConfig {
    /// Opens the source for audio at `rate` Hz, read `frame_len` samples at a time.
    pub fn open(&self, rate: u32, frame_len: usize) -> Result<Box<dyn AudioSource>, AudioError> {
        Ok(match self {
            SourceConfig::Null => Box::new(NullSource),
            SourceConfig::File(path) => Box::new(WavSource::open(path, rate, frame_len)?),
            #[cfg(feature = "cpal")]
            SourceConfig::Device(name) => Box::new(device::DeviceSource::open(name.as_deref(), rate, frame_len)?),
            #[cfg(not(feature = "cpal"))]
            SourceConfig::Device(_) => {
                let _ = frame_len;
                return Err(AudioError::Device("this build has no audio device support (feature cpal)".into()));
            }
        })
    }
}

impl SinkConfig {
    /// Opens the sink for audio at `rate` Hz, written `frame_len` samples at a time.
    pub fn open(&self, rate: u32, frame_len: usize) -> Result<Box<dyn AudioSink>, AudioError> {
        Ok(match self {
            SinkConfig::Null => Box::new(NullSink),
            SinkConfig::File(path) => Box::new(WavSink::create(path, rate)?),
            #[cfg(feature = "cpal")]
            SinkConfig::Device(name) => Box::new(device::DeviceSink::open(name.as_deref(), rate, frame_len)?),
            #[cfg(not(feature = "cpal"))]
            SinkConfig::Device(_) => {
                let _ = frame_len;
                return Err(AudioError::Device("this build has no audio device support (feature cpal)".into()));
            }
        })
    }
}
