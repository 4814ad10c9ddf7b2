//! Tone analysis for tests and checks: Goertzel power of one frequency, the dominant
//! frequency among candidates, per-frame energy, and WAV reading (hound).
//!
//! Powers are normalized as mean squares: a pure sine of amplitude A has
//! `tone_power ≈ A²/2` and `mean_square ≈ A²/2`, so [`tone_ratio`] ≈ 1 for a pure tone
//! and ≈ 0 for one that is absent.

use std::f64::consts::PI;
use std::path::Path;

/// Analysis errors.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("WAV: {0}")]
    Wav(#[from] hound::Error),
    #[error("WAV has no samples")]
    Empty,
}

/// Goertzel power of `freq` in `samples` at `rate`, as a mean square (see module docs).
/// Works for any frequency, not only bin centres.
pub fn tone_power(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let n = samples.len();
    if n == 0 || rate == 0 {
        return 0.0;
    }
    let w = 2.0 * PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    // |X|² for a generalized (non-integer k) Goertzel.
    let re = s1 - s2 * w.cos();
    let im = s2 * w.sin();
    let mag2 = re * re + im * im;
    let n = n as f64;
    2.0 * mag2 / (n * n)
}

/// Mean square of the samples.
pub fn mean_square(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / samples.len() as f64
}

/// Share of the signal's energy at `freq` (≈1 for a pure tone there, ≈0 without it).
pub fn tone_ratio(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let total = mean_square(samples);
    if total <= 0.0 {
        return 0.0;
    }
    (tone_power(samples, rate, freq) / total).min(1.0)
}

/// The strongest tone among `candidates`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneMatch {
    pub freq: f64,
    /// [`tone_power`] at `freq`.
    pub power: f64,
    /// [`tone_ratio`] at `freq`.
    pub ratio: f64,
}

/// The candidate frequency with the most power, with its share of the energy. None for
/// silence or no candidates.
pub fn dominant_frequency(samples: &[i16], rate: u32, candidates: &[f64]) -> Option<ToneMatch> {
    let total = mean_square(samples);
    if total <= 0.0 {
        return None;
    }
    candidates
        .iter()
        .map(|&freq| {
            let power = tone_power(samples, rate, freq);
            ToneMatch {
                freq,
                power,
                ratio: (power / total).min(1.0),
            }
        })
        .max_by(|a, b| a.power.total_cmp(&b.power))
}

/// Mean square of each `frame`-sample block (the last partial block is left out), e.g.
/// 20 ms frames to look for gaps in a recording.
pub fn frame_energies(samples: &[i16], frame: usize) -> Vec<f64> {
    if frame == 0 {
        return Vec::new();
    }
    samples.chunks_exact(frame).map(mean_square).collect()
}

/// A sine wave: `n` samples of `freq` Hz at `rate`, peak `amplitude`.
pub fn sine_wave(rate: u32, freq: f64, amplitude: f64, n: usize) -> Vec<i16> {
    let w = 2.0 * PI * freq / f64::from(rate.max(1));
    (0..n)
        .map(|i| {
            (amplitude * (w * i as f64).sin())
                .round()
                .clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// A WAV file's samples, interleaved, converted to i16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavSamples {
    pub rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

impl WavSamples {
    /// The samples of one channel (0-based); empty if there is no such channel.
    pub fn channel(&self, index: usize) -> Vec<i16> {
        let ch = usize::from(self.channels.max(1));
        if index >= ch {
            return Vec::new();
        }
        self.samples
            .iter()
            .skip(index)
            .step_by(ch)
            .copied()
            .collect()
    }

    /// Mono mix of all channels.
    pub fn mono(&self) -> Vec<i16> {
        let ch = usize::from(self.channels.max(1));
        self.samples
            .chunks(ch)
            .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
            .collect()
    }

    pub fn duration_secs(&self) -> f64 {
        let ch = f64::from(self.channels.max(1));
        self.samples.len() as f64 / ch / f64::from(self.rate.max(1))
    }
}

/// Reads a WAV file (8/16/24/32-bit integer or 32-bit float PCM) into i16 samples.
pub fn read_wav(path: impl AsRef<Path>) -> Result<WavSamples, AnalysisError> {
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    let samples: Vec<i16> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.map(|v| (v * 32767.0).round().clamp(-32768.0, 32767.0) as i16))
            .collect::<Result<_, _>>()?,
        hound::SampleFormat::Int => {
            let shift = i32::from(spec.bits_per_sample) - 16;
            reader
                .samples::<i32>()
                .map(|s| {
                    s.map(|v| {
                        if shift >= 0 {
                            (v >> shift) as i16
                        } else {
                            (v << -shift) as i16
                        }
                    })
                })
                .collect::<Result<_, _>>()?
        }
    };
    Ok(WavSamples {
        rate: spec.sample_rate,
        channels: spec.channels,
        samples,
    })
}

/// Per-channel tone report of a WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelTone {
    pub channel: usize,
    pub dominant: Option<ToneMatch>,
    /// Root mean square level.
    pub rms: f64,
}

/// For each channel of a WAV file: the dominant frequency among `candidates` and its
/// share of the energy. The e2e tests use it to check what each phone heard.
pub fn wav_tone_report(
    path: impl AsRef<Path>,
    candidates: &[f64],
) -> Result<Vec<ChannelTone>, AnalysisError> {
    let wav = read_wav(path)?;
    if wav.samples.is_empty() {
        return Err(AnalysisError::Empty);
    }
    Ok((0..usize::from(wav.channels.max(1)))
        .map(|c| {
            let s = wav.channel(c);
            ChannelTone {
                channel: c,
                dominant: dominant_frequency(&s, wav.rate, candidates),
                rms: mean_square(&s).sqrt(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_tone_has_ratio_near_one() {
        let s = sine_wave(8000, 1000.0, 10000.0, 8000);
        let p = tone_power(&s, 8000, 1000.0);
        assert!((p - 10000.0f64.powi(2) / 2.0).abs() / p < 0.01, "power {p}");
        assert!(tone_ratio(&s, 8000, 1000.0) > 0.98);
        assert!(tone_ratio(&s, 8000, 1400.0) < 0.01);
    }

    #[test]
    fn off_bin_frequency_is_measured() {
        let s = sine_wave(16000, 437.3, 8000.0, 16000);
        assert!(tone_ratio(&s, 16000, 437.3) > 0.98);
    }

    #[test]
    fn dominant_picks_the_right_tone_in_a_mix() {
        let a = sine_wave(8000, 440.0, 3000.0, 8000);
        let b = sine_wave(8000, 1200.0, 9000.0, 8000);
        let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        let m = dominant_frequency(&mix, 8000, &[440.0, 800.0, 1200.0]).unwrap();
        assert_eq!(m.freq, 1200.0);
        assert!(m.ratio > 0.85 && m.ratio < 0.95, "{}", m.ratio);
        assert!(dominant_frequency(&[0; 100], 8000, &[440.0]).is_none());
        assert!(dominant_frequency(&mix, 8000, &[]).is_none());
    }

    #[test]
    fn silence_and_empty_are_zero() {
        assert_eq!(tone_power(&[], 8000, 440.0), 0.0);
        assert_eq!(tone_ratio(&[0; 160], 8000, 440.0), 0.0);
        assert_eq!(frame_energies(&[1; 10], 4).len(), 2);
        assert!(frame_energies(&[1; 10], 0).is_empty());
    }

    #[test]
    fn wav_round_trip_and_report() {
        let dir = std::env::temp_dir().join(format!("hark-media-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let left = sine_wave(8000, 500.0, 8000.0, 8000);
        let right = sine_wave(8000, 1500.0, 8000.0, 8000);
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for (l, r) in left.iter().zip(&right) {
            w.write_sample(*l).unwrap();
            w.write_sample(*r).unwrap();
        }
        w.finalize().unwrap();
        let wav = read_wav(&path).unwrap();
        assert_eq!(wav.channel(0), left);
        assert_eq!(wav.channel(1), right);
        assert!((wav.duration_secs() - 1.0).abs() < 1e-9);
        let report = wav_tone_report(&path, &[500.0, 1000.0, 1500.0]).unwrap();
        assert_eq!(report[0].dominant.unwrap().freq, 500.0);
        assert_eq!(report[1].dominant.unwrap().freq, 1500.0);
        assert!(report[1].dominant.unwrap().ratio > 0.95);
        std::fs::remove_dir_all(&dir).ok();
    }
}
