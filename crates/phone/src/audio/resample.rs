//! Sample-rate conversion with rubato (cubic polynomial interpolation: ample for voice,
//! and no FFT). Whole buffers at once: file audio is converted when a call starts.

use rubato::{FastFixedIn, PolynomialDegree, Resampler};

const CHUNK: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    Rubato { from: u32, to: u32, reason: String },
}

/// `input` (mono, `from` Hz) at `to` Hz. The resampler's delay is removed, so the
/// output lines up with the input and has about `len * to / from` samples.
pub fn resample(input: &[i16], from: u32, to: u32) -> Result<Vec<i16>, ResampleError> {
    if from == to || input.is_empty() {
        return Ok(input.to_vec());
    }
    let err = |e: &dyn std::fmt::Display| ResampleError::Rubato { from, to, reason: e.to_string() };
    if from == 0 || to == 0 {
        return Err(err(&"zero rate"));
    }
    let ratio = f64::from(to) / f64::from(from);
    let mut r = FastFixedIn::<f64>::new(ratio, 1.0, PolynomialDegree::Cubic, CHUNK, 1).map_err(|e| err(&e))?;
    let samples: Vec<f64> = input.iter().map(|s| f64::from(*s) / 32768.0).collect();
    let expected = (input.len() as f64 * ratio).round() as usize;
    let delay = r.output_delay();
    let mut out: Vec<f64> = Vec::with_capacity(expected + delay + CHUNK);
    let mut pos = 0;
    while samples.len() - pos >= r.input_frames_next() {
        let n = r.input_frames_next();
        let chunk = r.process(&[&samples[pos..pos + n]], None).map_err(|e| err(&e))?;
        out.extend_from_slice(&chunk[0]);
        pos += n;
    }
    if pos < samples.len() {
        let chunk = r.process_partial(Some(&[&samples[pos..]]), None).map_err(|e| err(&e))?;
        out.extend_from_slice(&chunk[0]);
    }
    // Flush the resampler's delay line.
    while out.len() < expected + delay {
        let chunk = r.process_partial::<&[f64]>(None, None).map_err(|e| err(&e))?;
        if chunk[0].is_empty() {
            break;
        }
        out.extend_from_slice(&chunk[0]);
    }
    Ok(out
        .into_iter()
        .skip(delay)
        .take(expected)
        .map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_media::analysis::{sine_wave, tone_ratio};

    #[test]
    fn a_tone_keeps_its_pitch_and_length_across_rates() {
        for (from, to) in [(8_000, 16_000), (8_000, 48_000), (48_000, 8_000), (16_000, 8_000)] {
            let input = sine_wave(from, 440.0, 8000.0, from as usize);
            let out = resample(&input, from, to).unwrap();
            assert!((out.len() as i64 - to as i64).abs() <= 2, "{from}->{to}: {} samples", out.len());
            let ratio = tone_ratio(&out[100..out.len() - 100], to, 440.0);
            assert!(ratio > 0.9, "{from}->{to}: ratio {ratio}");
        }
    }

    #[test]
    fn same_rate_and_empty_input_pass_through() {
        assert_eq!(resample(&[1, 2, 3], 8000, 8000).unwrap(), vec![1, 2, 3]);
        assert!(resample(&[], 8000, 16000).unwrap().is_empty());
        assert!(resample(&[1], 0, 16000).is_err());
    }
}
