//! Test signals: DTMF pairs at dBm0 levels, noise, speech-like and music-like audio,
//! G.711 round trips, and a helper that runs a detector over PCM in RTP-sized chunks.

use std::f64::consts::PI;

use crate::codec::g711;
use crate::dtmf::{DigitEvent, InbandDetector, KEYPAD};

/// Peak of a 0 dBm0 sine on the i16 scale.
pub const DBM0_PEAK: f64 = 22_700.0;

/// Peak amplitude of a sine at `dbm0`.
pub fn peak(dbm0: f64) -> f64 {
    DBM0_PEAK * 10f64.powf(dbm0 / 20.0)
}

/// Row and column frequency of a key.
pub fn freqs(digit: char) -> (f64, f64) {
    const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    for (r, keys) in KEYPAD.iter().enumerate() {
        if let Some(c) = keys.iter().position(|&k| k == digit) {
            return (ROWS[r], COLS[c]);
        }
    }
    panic!("not a DTMF key: {digit:?}")
}

/// A deterministic xorshift generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// A signal under construction, in floating point until [`Sig::pcm`].
pub struct Sig {
    pub rate: u32,
    pub x: Vec<f64>,
    phase_seed: u64,
}

impl Sig {
    pub fn new(rate: u32) -> Self {
        Sig {
            rate,
            x: Vec::new(),
            phase_seed: 1,
        }
    }

    fn samples(&self, ms: f64) -> usize {
        (ms * f64::from(self.rate) / 1000.0).round() as usize
    }

    /// Two sines (peaks `a1`, `a2`) for `ms`, with pseudo-random start phases.
    pub fn pair(&mut self, f1: f64, a1: f64, f2: f64, a2: f64, ms: f64) -> &mut Self {
        self.phase_seed += 1;
        let mut rng = Rng::new(self.phase_seed);
        let (p1, p2) = (rng.range(0.0, 2.0 * PI), rng.range(0.0, 2.0 * PI));
        let rate = f64::from(self.rate);
        for i in 0..self.samples(ms) {
            let t = i as f64 / rate;
            self.x
                .push(a1 * (2.0 * PI * f1 * t + p1).sin() + a2 * (2.0 * PI * f2 * t + p2).sin());
        }
        self
    }

    /// A key at `row_dbm0` / `col_dbm0` per tone.
    pub fn key_twisted(&mut self, digit: char, row_dbm0: f64, col_dbm0: f64, ms: f64) -> &mut Self {
        let (r, c) = freqs(digit);
        self.pair(r, peak(row_dbm0), c, peak(col_dbm0), ms)
    }

    /// A key with both tones at `dbm0`.
    pub fn key(&mut self, digit: char, dbm0: f64, ms: f64) -> &mut Self {
        self.key_twisted(digit, dbm0, dbm0, ms)
    }

    /// Keys of `digits`, each `on_ms` long, each followed by `off_ms` of silence.
    pub fn keys(&mut self, digits: &str, dbm0: f64, on_ms: f64, off_ms: f64) -> &mut Self {
        for d in digits.chars() {
            self.key(d, dbm0, on_ms).silence(off_ms);
        }
        self
    }

    pub fn silence(&mut self, ms: f64) -> &mut Self {
        let n = self.samples(ms);
        self.x.extend(std::iter::repeat_n(0.0, n));
        self
    }

    /// Adds white Gaussian noise of RMS level `dbm0` over the whole signal.
    pub fn add_noise(&mut self, dbm0: f64, seed: u64) -> &mut Self {
        let rms = peak(dbm0) / 2f64.sqrt();
        let mut rng = Rng::new(seed);
        for v in &mut self.x {
            *v += rms * rng.gauss();
        }
        self
    }

    /// Rounded and clipped to i16.
    pub fn pcm(&self) -> Vec<i16> {
        quantize(&self.x)
    }
}

pub fn quantize(x: &[f64]) -> Vec<i16> {
    x.iter()
        .map(|v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Scales `x` to an RMS of `dbm0`.
pub fn normalize(x: &mut [f64], dbm0: f64) {
    let rms = (x.iter().map(|v| v * v).sum::<f64>() / x.len().max(1) as f64).sqrt();
    if rms > 0.0 {
        let k = peak(dbm0) / 2f64.sqrt() / rms;
        x.iter_mut().for_each(|v| *v *= k);
    }
}

/// Through a G.711 µ-law encoder and decoder.
pub fn ulaw(pcm: &[i16]) -> Vec<i16> {
    let (mut bytes, mut out) = (Vec::new(), Vec::new());
    g711::encode_ulaw(pcm, &mut bytes);
    g711::decode_ulaw(&bytes, &mut out);
    out
}

/// Through a G.711 A-law encoder and decoder.
pub fn alaw(pcm: &[i16]) -> Vec<i16> {
    let (mut bytes, mut out) = (Vec::new(), Vec::new());
    g711::encode_alaw(pcm, &mut bytes);
    g711::decode_alaw(&bytes, &mut out);
    out
}

/// Runs a fresh default detector over `pcm` in `chunk`-sample pushes (0: all at once).
pub fn detect(rate: u32, pcm: &[i16], chunk: usize) -> Vec<DigitEvent> {
    let mut det = InbandDetector::new(rate).expect("rate");
    run(&mut det, pcm, chunk)
}

/// Runs `det` over `pcm` in `chunk`-sample pushes (0: all at once).
pub fn run(det: &mut InbandDetector, pcm: &[i16], chunk: usize) -> Vec<DigitEvent> {
    let mut events = Vec::new();
    if chunk == 0 {
        events.extend(det.push(pcm));
    } else {
        for part in pcm.chunks(chunk) {
            events.extend(det.push(part));
        }
    }
    events
}

/// The digits of `events`, as a string.
pub fn digits(events: &[DigitEvent]) -> String {
    events.iter().map(|e| e.digit).collect()
}

/// Speech-like audio: a glottal-pulse-like harmonic series (1/k tilt) on a gliding
/// fundamental of 85–260 Hz with 5.5 Hz vibrato, shaped by three moving formants, in
/// syllables of 120–320 ms with pauses; RMS `dbm0`.
pub fn speech_like(rate: u32, ms: u32, dbm0: f64, seed: u64) -> Vec<i16> {
    let mut rng = Rng::new(seed);
    let n = (u64::from(rate) * u64::from(ms) / 1000) as usize;
    let fs = f64::from(rate);
    let mut x = Vec::with_capacity(n);
    let mut phase = 0.0f64;
    while x.len() < n {
        let len = (rng.range(0.12, 0.32) * fs) as usize;
        if rng.uniform() < 0.15 {
            x.extend(std::iter::repeat_n(0.0, len));
            continue;
        }
        let (f_start, f_end) = (rng.range(85.0, 260.0), rng.range(85.0, 260.0));
        let formants = [
            (rng.range(300.0, 850.0), 90.0),
            (rng.range(900.0, 2300.0), 120.0),
            (rng.range(2300.0, 3200.0), 170.0),
        ];
        let vib_phase = rng.range(0.0, 2.0 * PI);
        for i in 0..len {
            let u = i as f64 / len as f64;
            let t = i as f64 / fs;
            let f0 = (f_start + (f_end - f_start) * u)
                * (1.0 + 0.03 * (2.0 * PI * 5.5 * t + vib_phase).sin());
            phase += 2.0 * PI * f0 / fs;
            let envelope = (PI * u).sin().powi(2);
            let mut v = 0.0;
            let mut k = 1;
            while (k as f64) * f0 < 3600.0 {
                let f = k as f64 * f0;
                let gain: f64 = formants
                    .iter()
                    .map(|&(fc, bw)| 1.0 / (1.0 + ((f - fc) / bw).powi(2)))
                    .sum();
                v += gain / k as f64 * (k as f64 * phase).sin();
                k += 1;
            }
            x.push(envelope * v);
        }
    }
    x.truncate(n);
    normalize(&mut x, dbm0);
    quantize(&x)
}

/// Music-like audio: chords of 3–4 equal-tempered notes (MIDI 45–88) with 8 harmonics
/// falling as 1/k, piano-like attack and decay, 300–900 ms each; RMS `dbm0`.
pub fn music_like(rate: u32, ms: u32, dbm0: f64, seed: u64) -> Vec<i16> {
    const SHAPES: [&[i32]; 6] = [
        &[0, 4, 7],
        &[0, 3, 7],
        &[0, 4, 7, 11],
        &[0, 3, 7, 10],
        &[0, 4, 7, 10],
        &[0, 5, 7, 12],
    ];
    let mut rng = Rng::new(seed);
    let n = (u64::from(rate) * u64::from(ms) / 1000) as usize;
    let fs = f64::from(rate);
    let mut x = Vec::with_capacity(n);
    while x.len() < n {
        let len = (rng.range(0.3, 0.9) * fs) as usize;
        let root = 45 + (rng.next_u64() % 30) as i32;
        let shape = SHAPES[(rng.next_u64() % SHAPES.len() as u64) as usize];
        let notes: Vec<(f64, f64)> = shape
            .iter()
            .map(|&s| {
                let midi = f64::from(root + s);
                (
                    440.0 * 2f64.powf((midi - 69.0) / 12.0),
                    rng.range(0.0, 2.0 * PI),
                )
            })
            .collect();
        for i in 0..len {
            let t = i as f64 / fs;
            let envelope = (1.0 - (-t / 0.01).exp()) * (-t / 0.6).exp();
            let mut v = 0.0;
            for &(f, p) in &notes {
                for k in 1..=8 {
                    let fk = f * k as f64;
                    if fk < fs / 2.0 - 200.0 {
                        v += (2.0 * PI * fk * t + p * k as f64).sin() / k as f64;
                    }
                }
            }
            x.push(envelope * v);
        }
    }
    x.truncate(n);
    normalize(&mut x, dbm0);
    quantize(&x)
}
