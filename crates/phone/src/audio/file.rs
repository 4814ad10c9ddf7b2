//! WAV files as microphone and speaker.

use super::resample::resample;
use super::{AudioError, AudioSink, AudioSource};
use hark_recorder::WavRecording;
use std::path::{Path, PathBuf};

/// A WAV read whole, mixed to mono and converted to the call's rate; silence after it.
pub struct WavSource {
    samples: Vec<i16>,
    pos: usize,
}

impl WavSource {
    pub fn open(path: &Path, rate: u32) -> Result<Self, AudioError> {
        let read_err = |e: &dyn std::fmt::Display| AudioError::Read { path: path.to_owned(), reason: e.to_string() };
        let mut reader = hound::WavReader::open(path).map_err(|e| read_err(&e))?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let raw: Vec<i16> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 16) => reader.samples::<i16>().collect::<Result<_, _>>().map_err(|e| read_err(&e))?,
            (hound::SampleFormat::Int, bits) if bits <= 32 => {
                let shift = i32::from(bits) - 16;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| if shift > 0 { (v >> shift) as i16 } else { (v << -shift) as i16 }))
                    .collect::<Result<_, _>>()
                    .map_err(|e| read_err(&e))?
            }
            (hound::SampleFormat::Float, 32) => reader
                .samples::<f32>()
                .map(|s| s.map(|v| (v * 32767.0).clamp(-32768.0, 32767.0) as i16))
                .collect::<Result<_, _>>()
                .map_err(|e| read_err(&e))?,
            (format, bits) => return Err(read_err(&format!("unsupported sample format {format:?}/{bits} bits"))),
        };
        let mono: Vec<i16> = raw
            .chunks(channels)
            .map(|frame| (frame.iter().map(|s| i32::from(*s)).sum::<i32>() / frame.len() as i32) as i16)
            .collect();
        let samples = resample(&mono, spec.sample_rate, rate)?;
        Ok(Self { samples, pos: 0 })
    }

    /// Samples left to play.
    pub fn remaining(&self) -> usize {
        self.samples.len() - self.pos
    }
}

impl AudioSource for WavSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        let n = out.len().min(self.remaining());
        out[..n].copy_from_slice(&self.samples[self.pos..self.pos + n]);
        out[n..].fill(0);
        self.pos += n;
    }
}

/// A mono WAV of what the speaker would play.
pub struct WavSink {
    path: PathBuf,
    wav: Option<WavRecording>,
    writes: u32,
}

impl WavSink {
    pub fn create(path: &Path, rate: u32) -> Result<Self, AudioError> {
        let wav = WavRecording::create(path, rate, 1)
            .map_err(|e| AudioError::Write { path: path.to_owned(), reason: e.to_string() })?;
        Ok(Self { path: path.to_owned(), wav: Some(wav), writes: 0 })
    }
}

impl AudioSink for WavSink {
    fn write_frame(&mut self, pcm: &[i16]) -> Result<(), AudioError> {
        let Some(wav) = self.wav.as_mut() else { return Ok(()) };
        let err = |e: hark_recorder::WavError| AudioError::Write { path: self.path.clone(), reason: e.to_string() };
        wav.write_frames(pcm).map_err(err)?;
        // Keep the header playable about once a second (50 frames of 20 ms).
        self.writes += 1;
        if self.writes.is_multiple_of(50) {
            wav.flush_header().map_err(err)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        if let Some(mut wav) = self.wav.take() {
            wav.finalize().map_err(|e| AudioError::Write { path: self.path.clone(), reason: e.to_string() })?;
        }
        Ok(())
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
