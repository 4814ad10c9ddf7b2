//! The phone's own recording of a call: a stereo WAV, microphone left and remote right,
//! that pauses and resumes (paused audio is left out). Its pause/resume marks and length
//! are kept beside it in `<file>.json` (rewritten at each mark and at the end, so a crash
//! keeps them), which [`crate::library::Library::import_local`] files into the library.

use super::AudioError;
use hark_recorder::WavRecording;
use std::path::{Path, PathBuf};

pub struct LocalRecording {
    path: PathBuf,
    wav: Option<WavRecording>,
    paused: bool,
    frames: u32,
    interleaved: Vec<i16>,
    rate: u32,
    /// Sample frames written (paused audio is not).
    written: u64,
    marks: Vec<crate::library::Mark>,
}

impl LocalRecording {
    pub fn create(path: &Path, rate: u32) -> Result<Self, AudioError> {
        let wav = WavRecording::create(path, rate, 2)
            .map_err(|e| AudioError::Write { path: path.to_owned(), reason: e.to_string() })?;
        Ok(Self { path: path.to_owned(), wav: Some(wav), paused: false, frames: 0, interleaved: Vec::new(), rate: rate.max(1), written: 0, marks: Vec::new() })
    }

    pub fn set_paused(&mut self, paused: bool) {
        if paused != self.paused {
            self.marks.push(crate::library::Mark { offset_ms: self.duration_ms(), paused });
            let _ = self.write_marks();
        }
        self.paused = paused;
    }

    /// Length of the file so far, in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.written * 1000 / u64::from(self.rate)
    }

    pub fn marks(&self) -> &[crate::library::Mark] {
        &self.marks
    }

    fn write_marks(&self) -> std::io::Result<()> {
        let side = crate::library::marks_path(&self.path);
        let body = serde_json::json!({ "duration_ms": self.duration_ms(), "marks": self.marks });
        std::fs::write(side, body.to_string())
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
        self.written += n as u64;
        self.frames += 1;
        if self.frames.is_multiple_of(50) {
            wav.flush_header().map_err(err)?;
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<(), AudioError> {
        if let Some(mut wav) = self.wav.take() {
            wav.finalize().map_err(|e| AudioError::Write { path: self.path.clone(), reason: e.to_string() })?;
            self.write_marks().map_err(|e| AudioError::Write { path: crate::library::marks_path(&self.path), reason: e.to_string() })?;
        }
        Ok(())
    }
}

impl Drop for LocalRecording {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
