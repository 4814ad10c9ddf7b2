//! WAV files as microphone and speaker.

use rubato::{FastFixedOut, PolynomialDegree, Resampler};
use super::{AudioError, AudioSink, AudioSource};
use hark_recorder::WavRecording;
use std::path::{Path, PathBuf};

/// A WAV read whole and mixed to mono, converted to the call's rate a frame at a time
/// (a long file costs nothing at call start); silence after its end.
pub struct WavSource {
    samples: Vec<i16>,
    pos: usize,
    /// None when the file is at the call's rate already.
    resampler: Option<FastFixedOut<f64>>,
    chunk: Vec<f64>,
}

impl WavSource {
    pub fn open(path: &Path, rate: u32, frame_len: usize) -> Result<Self, AudioError> {
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
        let samples: Vec<i16> = raw
            .chunks(channels)
            .map(|frame| (frame.iter().map(|s| i32::from(*s)).sum::<i32>() / frame.len() as i32) as i16)
            .collect();
        if spec.sample_rate == 0 {
            return Err(read_err(&"sample rate 0"));
        }
        let resampler = if spec.sample_rate == rate {
            None
        } else {
            let ratio = f64::from(rate) / f64::from(spec.sample_rate);
            let r = FastFixedOut::<f64>::new(ratio, 1.0, PolynomialDegree::Cubic, frame_len.max(1), 1)
                .map_err(|e| read_err(&format!("resampler: {e}")))?;
            Some(r)
        };
        Ok(Self { samples, pos: 0, resampler, chunk: Vec::new() })
    }

    /// Samples of the file not yet read.
    pub fn remaining(&self) -> usize {
        self.samples.len() - self.pos
    }
}

impl AudioSource for WavSource {
    fn read_frame(&mut self, out: &mut [i16]) {
        let Some(r) = self.resampler.as_mut() else {
            let n = out.len().min(self.remaining());
            out[..n].copy_from_slice(&self.samples[self.pos..self.pos + n]);
            out[n..].fill(0);
            self.pos += n;
            return;
        };
        let need = r.input_frames_next();
        let n = need.min(self.samples.len() - self.pos);
        self.chunk.clear();
        self.chunk.extend(self.samples[self.pos..self.pos + n].iter().map(|s| f64::from(*s) / 32768.0));
        self.chunk.resize(need, 0.0);
        self.pos += n;
        match r.process(&[&self.chunk], None) {
            Ok(frames) => {
                for (o, s) in out.iter_mut().zip(frames[0].iter().chain(std::iter::repeat(&0.0))) {
                    *o = (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
                }
            }
            Err(_) => out.fill(0),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hark_media::analysis::{sine_wave, tone_ratio};

    #[test]
    fn an_8k_file_plays_at_48k_frame_by_frame_with_its_pitch() {
        let dir = std::env::temp_dir().join(format!("hark-phone-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tone.wav");
        let spec = hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for s in sine_wave(8000, 440.0, 8000.0, 8000) {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let mut src = WavSource::open(&path, 48_000, 960).unwrap();
        let mut out = Vec::new();
        let mut frame = vec![0i16; 960];
        for _ in 0..50 {
            src.read_frame(&mut frame);
            out.extend_from_slice(&frame);
        }
        let ratio = tone_ratio(&out[4800..43200], 48_000, 440.0);
        assert!(ratio > 0.9, "ratio {ratio}");
        // After the file: silence.
        src.read_frame(&mut frame);
        src.read_frame(&mut frame);
        assert!(frame.iter().all(|s| s.abs() < 50));
        std::fs::remove_dir_all(&dir).ok();
    }
}
