//! Audio by content: tone WAVs for the phones to play, WAV reading that survives a writer
//! killed before it patched its header, a Goertzel detector, and G.711 for tests that own
//! their RTP sockets.
//!
//! A phone "hears" a tone when, window after window, the Goertzel power at that frequency
//! dominates the power at the other party's frequency and carries a good part of the
//! window's energy. File sizes prove nothing and are never used as evidence of audio.

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::path::Path;

/// The sample rate of every tone file (G.711 is 8 kHz; baresip 1.0's `aufile` plays the
/// file at its own rate and does not resample).
pub const TONE_RATE: u32 = 8000;

/// Writes a mono 16-bit WAV of a sine at `freq` Hz, `secs` long, at `rate` Hz, about
/// -6 dBFS (what `sox -n -r 8000 -c 1 -b 16 F.wav synth SECS sine FREQ` makes, at a level
/// that G.711 carries without clipping).
pub fn write_tone_wav(path: &Path, freq: f64, secs: f64, rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let n = (secs * f64::from(rate)) as usize;
    for i in 0..n {
        let v = 16_000.0 * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin();
        w.write_sample(v.round() as i16)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    w.finalize()
        .unwrap_or_else(|e| panic!("finishing {}: {e}", path.display()));
}

/// Mono PCM (the first channel of the file), as f64 in i16 units.
#[derive(Clone, Debug)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<f64>,
    /// Where it came from, for messages.
    pub source: String,
}

impl Pcm {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate.max(1))
    }

    /// Samples `from..to` seconds (clamped to the audio).
    pub fn slice_secs(&self, from: f64, to: f64) -> Pcm {
        let rate = f64::from(self.rate);
        let a = ((from.max(0.0) * rate) as usize).min(self.samples.len());
        let b = ((to.max(0.0) * rate) as usize).clamp(a, self.samples.len());
        Pcm {
            rate: self.rate,
            samples: self.samples[a..b].to_vec(),
            source: format!("{} [{from:.2}s..{to:.2}s]", self.source),
        }
    }
}

/// Reads a 16-bit PCM WAV. A writer that died (or has not yet closed the file) leaves the
/// RIFF and data sizes at 0 or short: then every byte after the `data` chunk header is
/// taken as samples.
pub fn read_wav(path: &Path) -> Result<Pcm, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_wav(&bytes)
        .map(|(rate, samples)| Pcm {
            rate,
            samples,
            source: path.display().to_string(),
        })
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses RIFF/WAVE 16-bit PCM; returns the rate and the first channel.
pub fn parse_wav(bytes: &[u8]) -> Result<(u32, Vec<f64>), String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("not a RIFF/WAVE file ({} bytes)", bytes.len()));
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err("truncated fmt chunk".into());
            }
            let b = &bytes[body..body + 16];
            let format = u16::from_le_bytes([b[0], b[1]]);
            let channels = u16::from_le_bytes([b[2], b[3]]);
            let rate = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let bits = u16::from_le_bytes([b[14], b[15]]);
            fmt = Some((format, channels, rate, bits));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or("data chunk before fmt chunk")?;
            // 1 = PCM, 0xFFFE = WAVE_FORMAT_EXTENSIBLE (PCM sub-format assumed).
            if !(format == 1 || format == 0xFFFE) || bits != 16 || channels == 0 {
                return Err(format!(
                    "unsupported WAV: format {format}, {bits} bits, {channels} channels"
                ));
            }
            let available = bytes.len() - body;
            // A size of 0 (or one that runs past the end, or one shorter than what
            // follows when nothing else follows) means the header was never patched.
            let len = if size == 0 || size > available { available } else { size };
            let frame = 2 * usize::from(channels);
            let samples = bytes[body..body + len - len % frame]
                .chunks_exact(frame)
                .map(|f| f64::from(i16::from_le_bytes([f[0], f[1]])))
                .collect();
            return Ok((rate, samples));
        }
        pos = body + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// Every channel of a 16-bit PCM WAV (see [`read_wav`] for unpatched headers): the
/// rate, then one [`Pcm`] per channel (labelled `PATH channel N`).
pub fn read_wav_channels(path: &Path) -> Result<(u32, Vec<Pcm>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let (rate, channels) = parse_wav_channels(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let pcms = channels
        .into_iter()
        .enumerate()
        .map(|(i, samples)| Pcm {
            rate,
            samples,
            source: format!("{} channel {}", path.display(), i + 1),
        })
        .collect();
    Ok((rate, pcms))
}

/// Parses RIFF/WAVE 16-bit PCM into its channels (de-interleaved).
pub fn parse_wav_channels(bytes: &[u8]) -> Result<(u32, Vec<Vec<f64>>), String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!("not a RIFF/WAVE file ({} bytes)", bytes.len()));
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err("truncated fmt chunk".into());
            }
            let b = &bytes[body..body + 16];
            fmt = Some((
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                u16::from_le_bytes([b[14], b[15]]),
            ));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or("data chunk before fmt chunk")?;
            if !(format == 1 || format == 0xFFFE) || bits != 16 || channels == 0 {
                return Err(format!("unsupported WAV: format {format}, {bits} bits, {channels} channels"));
            }
            let available = bytes.len() - body;
            let len = if size == 0 || size > available { available } else { size };
            let n = usize::from(channels);
            let frame = 2 * n;
            let mut out = vec![Vec::with_capacity(len / frame); n];
            for f in bytes[body..body + len - len % frame].chunks_exact(frame) {
                for (c, s) in f.chunks_exact(2).enumerate() {
                    out[c].push(f64::from(i16::from_le_bytes([s[0], s[1]])));
                }
            }
            return Ok((rate, out));
        }
        pos = body + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// Goertzel power of `freq` in `x`, normalised so that a sine of amplitude A gives about
/// A²/4 whatever the length (the window's mean energy is then A²/2).
pub fn goertzel(x: &[f64], rate: u32, freq: f64) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    let k = 2.0 * (2.0 * PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = v + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = x.len() as f64;
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (n * n)
}

/// Mean energy (mean square) of `x`.
pub fn energy(x: &[f64]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64
}

/// Below this RMS (in i16 units, about -50 dBFS) a window is silence.
pub const SILENCE_RMS: f64 = 100.0;

/// What one window of audio carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// The expected tone dominates.
    Expected,
    /// The other tone (e.g. the phone's own, echoed back) dominates.
    Other,
    Silence,
    /// Sound, but neither tone dominates.
    Noise,
}

/// One analysis window.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start_secs: f64,
    pub rms: f64,
    /// Goertzel power at the expected and at the other frequency, relative to the
    /// window's energy (a clean sine gives 0.5).
    pub expected_share: f64,
    pub other_share: f64,
    pub heard: Heard,
}

/// A timeline of what a recording carries, window by window.
#[derive(Clone, Debug)]
pub struct ToneReport {
    pub source: String,
    pub rate: u32,
    pub duration_secs: f64,
    pub expected_hz: f64,
    pub other_hz: f64,
    pub skipped_secs: f64,
    pub windows: Vec<Window>,
}

/// Window length of the analysis.
pub const WINDOW_SECS: f64 = 0.1;

/// Analyses `pcm` after skipping `skip_secs`, in windows of [`WINDOW_SECS`]: which of
/// `expected_hz` and `other_hz` dominates each window.
pub fn analyse(pcm: &Pcm, expected_hz: f64, other_hz: f64, skip_secs: f64) -> ToneReport {
    let win = ((WINDOW_SECS * f64::from(pcm.rate)) as usize).max(1);
    let start = ((skip_secs * f64::from(pcm.rate)) as usize).min(pcm.samples.len());
    let mut windows = Vec::new();
    let mut i = start;
    while i + win <= pcm.samples.len() {
        let x = &pcm.samples[i..i + win];
        let e = energy(x);
        let rms = e.sqrt();
        let pe = goertzel(x, pcm.rate, expected_hz);
        let po = goertzel(x, pcm.rate, other_hz);
        let (es, os) = if e > 0.0 { (pe / e, po / e) } else { (0.0, 0.0) };
        let heard = if rms < SILENCE_RMS {
            Heard::Silence
        } else if es >= 0.25 && pe >= 10.0 * po {
            Heard::Expected
        } else if os >= 0.25 && po >= 10.0 * pe {
            Heard::Other
        } else {
            Heard::Noise
        };
        windows.push(Window {
            start_secs: i as f64 / f64::from(pcm.rate),
            rms,
            expected_share: es,
            other_share: os,
            heard,
        });
        i += win;
    }
    ToneReport {
        source: pcm.source.clone(),
        rate: pcm.rate,
        duration_secs: pcm.duration_secs(),
        expected_hz,
        other_hz,
        skipped_secs: skip_secs,
        windows,
    }
}

impl ToneReport {
    pub fn count(&self, heard: Heard) -> usize {
        self.windows.iter().filter(|w| w.heard == heard).count()
    }

    /// Seconds of windows that carry the expected tone.
    pub fn expected_secs(&self) -> f64 {
        self.count(Heard::Expected) as f64 * WINDOW_SECS
    }

    /// The fraction of analysed windows that carry the expected tone.
    pub fn expected_fraction(&self) -> f64 {
        if self.windows.is_empty() {
            0.0
        } else {
            self.count(Heard::Expected) as f64 / self.windows.len() as f64
        }
    }

    /// One character per window (`E` expected, `o` other, `.` silence, `~` noise), with
    /// a second mark every second, and the totals: the evidence in failure messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {} Hz, {:.2} s; windows of {:.0} ms after {:.2} s: {} expected ({} Hz), {} other ({} Hz), \
             {} silence, {} noise",
            self.source,
            self.rate,
            self.duration_secs,
            WINDOW_SECS * 1000.0,
            self.skipped_secs,
            self.count(Heard::Expected),
            self.expected_hz,
            self.count(Heard::Other),
            self.other_hz,
            self.count(Heard::Silence),
            self.count(Heard::Noise),
        );
        s.push_str("timeline (E expected, o other, . silence, ~ noise, | each second): ");
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 && i % 10 == 0 {
                s.push('|');
            }
            s.push(match w.heard {
                Heard::Expected => 'E',
                Heard::Other => 'o',
                Heard::Silence => '.',
                Heard::Noise => '~',
            });
        }
        if let Some(w) = self.windows.iter().find(|w| w.heard == Heard::Noise) {
            let _ = write!(
                s,
                "\nfirst noise window at {:.2} s: rms {:.0}, share at {} Hz {:.3}, at {} Hz {:.3}",
                w.start_secs, w.rms, self.expected_hz, w.expected_share, self.other_hz, w.other_share
            );
        }
        s
    }

    /// `Err(explanation with the timeline)` unless at least `min_secs` of audio was
    /// analysed, at least `fraction` of it carries the expected tone, and the other tone
    /// is (nearly) absent.
    pub fn check(&self, min_secs: f64, fraction: f64) -> Result<(), String> {
        let analysed = self.windows.len() as f64 * WINDOW_SECS;
        if analysed < min_secs {
            return Err(format!(
                "only {analysed:.1} s of received audio to analyse (wanted ≥ {min_secs:.1} s)\n{}",
                self.describe()
            ));
        }
        if self.expected_fraction() < fraction {
            return Err(format!(
                "the {} Hz tone is in only {:.0}% of the received audio (wanted ≥ {:.0}%)\n{}",
                self.expected_hz,
                self.expected_fraction() * 100.0,
                fraction * 100.0,
                self.describe()
            ));
        }
        let other = self.count(Heard::Other) as f64 / self.windows.len().max(1) as f64;
        if other > 0.05 {
            return Err(format!(
                "the phone hears its own {} Hz tone in {:.0}% of the windows (echo or a crossed relay)\n{}",
                self.other_hz,
                other * 100.0,
                self.describe()
            ));
        }
        Ok(())
    }

    /// Panics (with `context`) unless [`ToneReport::check`] passes.
    pub fn assert_hears(&self, min_secs: f64, fraction: f64, context: &str) {
        if let Err(e) = self.check(min_secs, fraction) {
            panic!("{context}: {e}");
        }
    }
}

/// Reads `path` and analyses it (see [`analyse`]); panics if unreadable.
pub fn analyse_file(path: &Path, expected_hz: f64, other_hz: f64, skip_secs: f64) -> ToneReport {
    let pcm = read_wav(path).unwrap_or_else(|e| panic!("{e}"));
    analyse(&pcm, expected_hz, other_hz, skip_secs)
}

// ---- G.711 (ITU-T G.711, the classic Sun reference algorithm) ----

/// A-law byte to linear 16-bit.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = i32::from(a & 0x0f) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Linear 16-bit to A-law.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut v = i32::from(pcm) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = SEG_END.iter().position(|&end| v <= end).unwrap_or(8) as i32;
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let mut aval = seg << 4;
    aval |= if seg < 2 { (v >> 1) & 0x0F } else { (v >> seg) & 0x0F };
    (aval ^ mask) as u8
}

/// µ-law byte to linear 16-bit.
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let mut t = (i32::from(u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// Linear 16-bit to µ-law (the Sun reference algorithm, bias 0x84).
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut v = i32::from(pcm);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && v & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (v >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// A phase-continuous sine as 20 ms G.711 µ-law payloads (160 bytes at 8 kHz).
pub struct UlawTone {
    freq: f64,
    n: u64,
}

impl UlawTone {
    pub fn new(freq: f64) -> UlawTone {
        UlawTone { freq, n: 0 }
    }

    pub fn next_frame(&mut self) -> Vec<u8> {
        (0..160)
            .map(|_| {
                let t = self.n as f64 / 8000.0;
                self.n += 1;
                linear_to_ulaw((12_000.0 * (2.0 * PI * self.freq * t).sin()) as i16)
            })
            .collect()
    }
}

/// A phase-continuous sine as 20 ms G.711 A-law payloads (160 bytes at 8 kHz).
pub struct AlawTone {
    freq: f64,
    n: u64,
}

impl AlawTone {
    pub fn new(freq: f64) -> AlawTone {
        AlawTone { freq, n: 0 }
    }

    pub fn next_frame(&mut self) -> Vec<u8> {
        (0..160)
            .map(|_| {
                let t = self.n as f64 / 8000.0;
                self.n += 1;
                linear_to_alaw((12_000.0 * (2.0 * PI * self.freq * t).sin()) as i16)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, secs: f64) -> Vec<f64> {
        (0..(secs * 8000.0) as usize)
            .map(|i| 10_000.0 * (2.0 * PI * freq * i as f64 / 8000.0).sin())
            .collect()
    }

    #[test]
    fn goertzel_separates_the_two_test_tones() {
        let x = sine(440.0, 0.1);
        let e = energy(&x);
        assert!((goertzel(&x, 8000, 440.0) / e - 0.5).abs() < 0.05);
        assert!(goertzel(&x, 8000, 660.0) / e < 0.01);
    }

    #[test]
    fn windows_are_classified() {
        let mut samples = sine(660.0, 1.0);
        samples.extend(std::iter::repeat_n(0.0, 4000));
        samples.extend(sine(440.0, 0.5));
        let pcm = Pcm {
            rate: 8000,
            samples,
            source: "t".into(),
        };
        let r = analyse(&pcm, 660.0, 440.0, 0.0);
        assert_eq!(r.count(Heard::Expected), 10);
        assert_eq!(r.count(Heard::Silence), 5);
        assert_eq!(r.count(Heard::Other), 5);
        assert!(r.describe().contains("EEEEEEEEEE|.....ooooo"), "{}", r.describe());
    }

    #[test]
    fn alaw_round_trips_closely_and_tones_survive_it() {
        for v in [-32768i32, -20000, -1000, -9, 0, 7, 1000, 20000, 32767] {
            let back = i32::from(alaw_to_linear(linear_to_alaw(v as i16)));
            assert!((back - v).abs() <= (v.abs() / 16).max(16), "{v} -> {back}");
        }
        let mut tone = AlawTone::new(440.0);
        let samples: Vec<f64> = (0..10)
            .flat_map(|_| tone.next_frame())
            .map(|b| f64::from(alaw_to_linear(b)))
            .collect();
        let pcm = Pcm {
            rate: 8000,
            samples,
            source: "alaw".into(),
        };
        assert_eq!(analyse(&pcm, 440.0, 660.0, 0.0).count(Heard::Expected), 2);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        for v in [-32000i32, -1000, -9, 0, 7, 1000, 20000, 32000] {
            let back = i32::from(ulaw_to_linear(linear_to_ulaw(v as i16)));
            assert!((back - v).abs() <= (v.abs() / 16).max(8), "µ-law {v} -> {back}");
        }
    }

    #[test]
    fn unpatched_wav_headers_are_read_to_the_end() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&8000u32.to_le_bytes());
        bytes.extend_from_slice(&16000u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data\0\0\0\0");
        bytes.extend_from_slice(&[1, 0, 2, 0, 3]);
        let (rate, samples) = parse_wav(&bytes).unwrap();
        assert_eq!((rate, samples), (8000, vec![1.0, 2.0]));
    }
}
