//! The phone's own recording of a call: a stereo WAV, microphone left and remote right,
//! that pauses and resumes (paused audio is left out).

use super::AudioError;
use hark_recorder::WavRecording;
use std::path::{Path, PathBuf};

pub struct LocalRecording {
    path: PathBuf,
    wav: Option<WavRecording>,
    paused: bool,
    frames: u32,
    interleaved: Vec<i16>,
}

impl LocalRecording {
    pub fn create(path: &Path, rate: u32) -> Result<Self, AudioError> {
        let wav = WavRecording::create(path, rate, 2)
            .map_err(|e| AudioError::Write { path: path.to_owned(), reason: e.to_string() })?;
        Ok(Self { path: path.to_owned(), wav: Some(wav), paused: false, frames: 0, interleaved: Vec::new() })
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// One frame of both sides (equal lengths; the shorter is padded with silence).
    pub fn write(&mut self, mic: &[i16], remote: &[i16]) -> Result<(), AudioError> {
        if self.paused {
            return Ok(());
        }
        let Some(wav) = self.wav.as_mut() else { return Ok(()) };
        let n = mic.len().max(remote.len());
        self.interleaved.clear();
        for i in 0..n {
            self.interleaved.push(mic.get(i).copied().unwrap_or(0));
            self.interleaved.push(remote.get(i).copied().unwrap_or(0));
        }
        let err = |e: hark_recorder::WavError| AudioError::Write { path: self.path.clone(), reason: e.to_string() };
        wav.write_frames(&self.interleaved).map_err(err)?;
        self.frames += 1;
        if self.frames.is_multiple_of(50) {
            wav.flush_header().map_err(err)?;
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<(), AudioError> {
        if let Some(mut wav) = self.wav.take() {
            wav.finalize().map_err(|e| AudioError::Write { path: self.path.clone(), reason: e.to_string() })?;
        }
        Ok(())
    }
}

impl Drop for LocalRecording {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
