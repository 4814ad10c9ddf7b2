//! Rate conversion between the codec rates a call can carry (8, 16 and 48 kHz).
//!
//! Every pair of those rates has an integer ratio, so conversion is by an integer
//! factor: up by linear interpolation between neighbouring input samples (continuing
//! from the previous packet's last sample when the packets are contiguous), down by
//! averaging each group of input samples (a box low-pass before decimation). Any other
//! pair falls back to nearest-sample picking. This is speech-grade, cheap and stateless
//! apart from the one carried sample; a windowed-sinc resampler (rubato) would be
//! cleaner but costs far more CPU per recorded call than the recording budget allows,
//! and the lower-rate side has no content above its Nyquist frequency to lose anyway.

/// Converts `input` at `from` Hz to `to` Hz, appending to `out`. `prev` is the input
/// sample just before `input` when the two are contiguous (for smooth upsampling).
pub(crate) fn convert(input: &[i16], from: u32, to: u32, prev: Option<i16>, out: &mut Vec<i16>) {
    if input.is_empty() || from == 0 || to == 0 {
        return;
    }
    if from == to {
        out.extend_from_slice(input);
    } else if to > from && to.is_multiple_of(from) {
        let l = (to / from) as i32;
        out.reserve(input.len() * l as usize);
        let mut p = i32::from(prev.unwrap_or(input[0]));
        for &x in input {
            let c = i32::from(x);
            // y[k] for k = 1..=l runs from just after p to exactly c.
            for k in 1..=l {
                out.push((p + (c - p) * k / l) as i16);
            }
            p = c;
        }
    } else if from > to && from.is_multiple_of(to) {
        let l = (from / to) as usize;
        out.reserve(input.len() / l);
        for group in input.chunks_exact(l) {
            let sum: i32 = group.iter().map(|&s| i32::from(s)).sum();
            out.push((sum / l as i32) as i16);
        }
    } else {
        let n = (input.len() as u64 * u64::from(to) / u64::from(from)) as usize;
        out.reserve(n);
        for j in 0..n {
            let i = (j as u64 * u64::from(from) / u64::from(to)) as usize;
            out.push(input[i.min(input.len() - 1)]);
        }
    }
}

/// Output length of [`convert`] for `n` input samples.
#[cfg(test)]
pub(crate) fn converted_len(n: usize, from: u32, to: u32) -> usize {
    if from == 0 || to == 0 {
        0
    } else if from > to && from.is_multiple_of(to) {
        n / (from / to) as usize
    } else {
        (n as u64 * u64::from(to) / u64::from(from)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_media::analysis::{dominant_frequency, sine_wave, tone_ratio};

    #[test]
    fn identity_up_and_down() {
        let mut out = Vec::new();
        convert(&[1, 2, 3], 8000, 8000, None, &mut out);
        assert_eq!(out, [1, 2, 3]);
        out.clear();
        convert(&[0, 100, 200], 8000, 16_000, Some(-100), &mut out);
        assert_eq!(out, [-50, 0, 50, 100, 150, 200]);
        out.clear();
        convert(&[0, 60, 60, 120, 120, 120], 48_000, 16_000, None, &mut out);
        assert_eq!(out, [40, 120]);
        assert_eq!(converted_len(960, 48_000, 8000), 160);
        assert_eq!(converted_len(160, 8000, 48_000), 960);
        for (from, to) in [
            (8000, 48_000),
            (16_000, 48_000),
            (48_000, 8000),
            (8000, 16_000),
            (16_000, 8000),
            (8000, 11_025),
        ] {
            let mut out = Vec::new();
            convert(&[7; 480], from, to, None, &mut out);
            assert_eq!(out.len(), converted_len(480, from, to), "{from}->{to}");
        }
    }

    #[test]
    fn tones_survive_conversion() {
        for (from, to) in [
            (8000, 48_000),
            (8000, 16_000),
            (16_000, 48_000),
            (48_000, 16_000),
            (48_000, 8000),
        ] {
            let input = sine_wave(from, 440.0, 8000.0, from as usize / 2);
            let mut out = Vec::new();
            // In 20 ms packets, carrying the previous sample as the recorder does.
            let step = from as usize / 50;
            let mut prev = None;
            for p in input.chunks(step) {
                convert(p, from, to, prev, &mut out);
                prev = p.last().copied();
            }
            assert!(
                tone_ratio(&out, to, 440.0) > 0.95,
                "{from}->{to}: {}",
                tone_ratio(&out, to, 440.0)
            );
            assert_eq!(
                dominant_frequency(&out, to, &[440.0, 660.0, 1000.0])
                    .unwrap()
                    .freq,
                440.0
            );
        }
    }
}
