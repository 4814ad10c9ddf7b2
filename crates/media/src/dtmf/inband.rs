//! In-band DTMF detection on decoded PCM, after ITU-T Q.24.
//!
//! # Parameters and why
//!
//! - **Window**: 12.75 ms (102 samples at 8 kHz, 204 at 16 kHz, 612 at 48 kHz: the same
//!   length in time, so the same 78 Hz filter width at every rate), analysed every half
//!   window (6.375 ms). Long enough that each filter rejects its neighbours (a tone
//!   1.5 % off, 63 Hz from the next row frequency, still leaks only −12.5 dB into it);
//!   the half-window hop makes the timing rules below hold for every alignment of tones
//!   and windows.
//! - **Begin after 4 hits, end after 4 misses** (consecutive windows). A tone of ≥ 40 ms
//!   (320 samples at 8 kHz) always contains four whole windows ((320 − 102 − 50) / 51
//!   ≥ 3), so it is reported, 32–38 ms after it began. A gap of ≥ 40 ms likewise
//!   contains four whole silent windows: the detector is re-armed ("**" is two digits).
//!   A burst of ≤ 20 ms fills 57 % or more of at most three windows (the energy-share
//!   rule misses the others), so it is not reported; a drop-out of ≤ 10 ms (80
//!   samples) takes a quarter or more of at most three windows, so it is bridged. The
//!   tests check these at every alignment.
//! - **Per window**, the strongest row and column must pass, in this order:
//!   - level: each ≥ −32 dBm0 (Q.24 asks to accept −25 dBm0 per tone; the margin
//!     covers off-frequency loss);
//!   - twist: the column (high group) at most 8 dB above the row ("normal" or standard
//!     twist, lines lose highs so phones boost them), the row at most 4 dB above the
//!     column ("reverse" twist). Some detectors (spandsp, Asterisk) name the two the
//!     other way round; the limits are the same;
//!   - relative peak: each ≥ 6 dB above the three other frequencies of its group
//!     (8 dB is common, but a row tone 1.5 % off plus the column's sidelobe can bring
//!     a neighbour to −8.4 dB);
//!   - energy share: the two tones carry ≥ 65 % of the window's energy. This is the
//!     noise floor and the main speech and music guard: voiced speech spreads its
//!     energy over many harmonics, noise over the whole band. It also makes partly
//!     filled windows miss, which the timing rules rely on. (A tone pair 1.5 % off with
//!     8 dB of twist keeps 74 %; pairs 3.5 % off keep ≈ 53 %.)
//!   - second harmonic: the energy at 2f of each tone, after subtracting the most the
//!     pair's own tones (±2 % off nominal) can leak there, is ≥ 12 dB below the tone.
//!     Generated DTMF has almost no harmonics; a sung or played note has strong ones.
//!     The subtraction matters: 2×697 Hz is 58 Hz from 1336 Hz, so a clean "2" shows
//!     a large "harmonic" that is only leakage.
//!
//! 0 dBm0 here is a sine of peak 22 700 (the G.711 digital milliwatt on the i16 scale;
//! overload is +3.2 dBm0).

use super::goertzel;
use super::{DtmfError, KEYPAD};

/// Lowest and highest supported sample rates.
const MIN_RATE: u32 = 8_000;
const MAX_RATE: u32 = 48_000;
/// Window length in samples at 8 kHz; at other rates scaled to the same 12.75 ms.
const BLOCK_AT_8K: u32 = 102;
/// Window length at 48 kHz, the largest.
const MAX_BLOCK: usize = 612;
/// Consecutive hit windows that report a digit.
const HITS_TO_BEGIN: u8 = 4;
/// Consecutive non-hit windows that end it (and re-arm the detector).
const MISSES_TO_END: u8 = 4;
/// Digits queued between polls; older ones are dropped (and counted) beyond this.
const QUEUE_LEN: usize = 32;
/// Peak of a 0 dBm0 sine on the i16 scale.
const DBM0_PEAK: f32 = 22_700.0;
/// Off-nominal frequency range assumed when bounding leakage into harmonic filters.
const LEAK_TOLERANCE: f64 = 0.02;

/// Detection thresholds; [`Default`] gives the values explained in the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InbandConfig {
    /// Weakest accepted level of each tone, dBm0. Default −32.
    pub min_tone_dbm0: f32,
    /// How far the high (column) tone may exceed the low (row) tone, dB. Default 8.
    pub max_normal_twist_db: f32,
    /// How far the low (row) tone may exceed the high (column) tone, dB. Default 4.
    pub max_reverse_twist_db: f32,
    /// How far each tone must stand above the other three of its group, dB. Default 6.
    pub min_relative_peak_db: f32,
    /// Share (0–1) of the window's energy the two tones must carry together. Default 0.65.
    pub min_tone_share: f32,
    /// Highest second harmonic, relative to its tone, dB. Default −12. A large value
    /// (e.g. 100) turns the check off.
    pub max_second_harmonic_db: f32,
}

impl Default for InbandConfig {
    fn default() -> Self {
        InbandConfig {
            min_tone_dbm0: -32.0,
            max_normal_twist_db: 8.0,
            max_reverse_twist_db: 4.0,
            min_relative_peak_db: 6.0,
            min_tone_share: 0.65,
            max_second_harmonic_db: -12.0,
        }
    }
}

/// A detected digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DigitEvent {
    /// `0`–`9`, `*`, `#`, `A`–`D`.
    pub digit: char,
    /// When the tone began, in ms from the detector's first sample (counted from the
    /// samples pushed): the start of the first window that held the tone, within about
    /// ±6 ms of the true onset. The digit is reported 26–38 ms after the onset.
    pub at_ms: u64,
}

/// Linear thresholds derived from an [`InbandConfig`].
#[derive(Debug, Clone, Copy)]
struct Limits {
    min_power: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    share: f32,
    harmonic: f32,
}

impl Limits {
    fn new(c: &InbandConfig) -> Result<Self, DtmfError> {
        let fields = [
            (c.min_tone_dbm0, "min_tone_dbm0"),
            (c.max_normal_twist_db, "max_normal_twist_db"),
            (c.max_reverse_twist_db, "max_reverse_twist_db"),
            (c.min_relative_peak_db, "min_relative_peak_db"),
            (c.min_tone_share, "min_tone_share"),
            (c.max_second_harmonic_db, "max_second_harmonic_db"),
        ];
        if let Some((_, name)) = fields.iter().find(|(v, _)| !v.is_finite()) {
            return Err(DtmfError::InvalidConfig(name));
        }
        let ratio = |db: f32| 10f32.powf(db / 10.0);
        let peak = DBM0_PEAK * 10f32.powf(c.min_tone_dbm0 / 20.0);
        Ok(Limits {
            min_power: peak * peak / 2.0,
            normal_twist: ratio(c.max_normal_twist_db),
            reverse_twist: ratio(c.max_reverse_twist_db),
            relative_peak: ratio(c.min_relative_peak_db),
            share: c.min_tone_share,
            harmonic: ratio(c.max_second_harmonic_db),
        })
    }
}

/// The digit being confirmed: key index (row × 4 + column), hits so far, first window's
/// start.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    key: u8,
    hits: u8,
    start: u64,
}

/// A sans-IO DTMF detector for one direction of one call.
///
/// Push decoded PCM in any chunk sizes (results do not depend on them); drain digits
/// from the iterator [`push`](Self::push) returns or with [`poll_digit`](Self::poll_digit).
/// For lost packets push silence or the decoder's concealment, so that offsets stay
/// aligned. No allocation after [`new`](Self::new); about 16 multiply-adds per sample
/// (eight filters, each sample in two windows).
#[derive(Debug, Clone)]
pub struct InbandDetector {
    rate: u32,
    block_len: usize,
    /// Samples between window starts (half a window).
    hop: usize,
    block: [i16; MAX_BLOCK],
    fill: usize,
    /// Sample index of `block[0]`, the current window's start.
    block_start: u64,
    coeffs: [f32; 8],
    harmonic_coeffs: [f32; 8],
    /// `leak[i][j]`: worst amplitude gain of tone `i` into the harmonic filter of tone `j`.
    leak: [[f32; 8]; 8],
    limits: Limits,
    candidate: Option<Candidate>,
    active: Option<u8>,
    misses: u8,
    queue: [DigitEvent; QUEUE_LEN],
    head: usize,
    queued: usize,
    dropped: u64,
}

impl InbandDetector {
    /// A detector with the default thresholds for `rate` Hz PCM (8 000–48 000).
    pub fn new(rate: u32) -> Result<Self, DtmfError> {
        Self::with_config(rate, InbandConfig::default())
    }

    /// A detector with custom thresholds.
    pub fn with_config(rate: u32, config: InbandConfig) -> Result<Self, DtmfError> {
        if !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(DtmfError::UnsupportedRate(rate));
        }
        let limits = Limits::new(&config)?;
        let block_len = ((rate * BLOCK_AT_8K + MIN_RATE / 2) / MIN_RATE) as usize;
        let block_len = block_len.clamp(1, MAX_BLOCK);
        let coeffs = std::array::from_fn(|i| goertzel::coeff(goertzel::tone_hz(i), rate));
        let harmonic_coeffs =
            std::array::from_fn(|i| goertzel::coeff(2.0 * goertzel::tone_hz(i), rate));
        let leak = std::array::from_fn(|i| {
            std::array::from_fn(|j| {
                let bin = 2.0 * goertzel::tone_hz(j);
                goertzel::worst_leak(goertzel::tone_hz(i), LEAK_TOLERANCE, bin, block_len, rate)
            })
        });
        Ok(InbandDetector {
            rate,
            block_len,
            hop: (block_len / 2).max(1),
            block: [0; MAX_BLOCK],
            fill: 0,
            block_start: 0,
            coeffs,
            harmonic_coeffs,
            leak,
            limits,
            candidate: None,
            active: None,
            misses: 0,
            queue: [DigitEvent {
                digit: '0',
                at_ms: 0,
            }; QUEUE_LEN],
            head: 0,
            queued: 0,
            dropped: 0,
        })
    }

    /// The sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples per analysis window (12.75 ms); windows start every half window.
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// How much audio has been pushed, in ms.
    pub fn position_ms(&self) -> u64 {
        self.ms(self.block_start + self.fill as u64)
    }

    /// Digits dropped because more than 32 were waiting to be drained.
    pub fn dropped_digits(&self) -> u64 {
        self.dropped
    }

    /// Back to the state right after construction (position 0, nothing queued).
    pub fn reset(&mut self) {
        self.fill = 0;
        self.block_start = 0;
        self.candidate = None;
        self.active = None;
        self.misses = 0;
        self.head = 0;
        self.queued = 0;
        self.dropped = 0;
    }

    /// Analyses `samples` and returns the digits detected so far (including any not yet
    /// drained). Digits left in the iterator stay queued for [`poll_digit`](Self::poll_digit).
    pub fn push(&mut self, samples: &[i16]) -> Digits<'_> {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.block_len - self.fill).min(rest.len());
            let (now, later) = rest.split_at(take);
            if let Some(dst) = self.block.get_mut(self.fill..self.fill + take) {
                dst.copy_from_slice(now);
            }
            self.fill += take;
            rest = later;
            if self.fill >= self.block_len {
                let hit = self.classify();
                self.step(hit);
                self.block.copy_within(self.hop..self.block_len, 0);
                self.block_start += self.hop as u64;
                self.fill = self.block_len - self.hop;
            }
        }
        Digits { detector: self }
    }

    /// The oldest detected digit not yet drained.
    pub fn poll_digit(&mut self) -> Option<DigitEvent> {
        if self.queued == 0 {
            return None;
        }
        let event = self.queue[self.head % QUEUE_LEN];
        self.head = (self.head + 1) % QUEUE_LEN;
        self.queued -= 1;
        Some(event)
    }

    fn ms(&self, samples: u64) -> u64 {
        samples.saturating_mul(1000) / u64::from(self.rate)
    }

    /// The key (row × 4 + column) whose tone pair fills the current window, if any.
    fn classify(&self) -> Option<u8> {
        let block = self.block.get(..self.block_len)?;
        let l = &self.limits;
        let (p, energy) = goertzel::bank(block, &self.coeffs);
        let (row, pr) = strongest(&p[..4]);
        let (col, pc) = strongest(&p[4..]);
        if pr < l.min_power || pc < l.min_power {
            return None;
        }
        if pc > pr * l.normal_twist || pr > pc * l.reverse_twist {
            return None;
        }
        let stands_out = |group: &[f32], best: usize, power: f32| {
            group
                .iter()
                .enumerate()
                .all(|(i, &q)| i == best || q * l.relative_peak <= power)
        };
        if !stands_out(&p[..4], row, pr) || !stands_out(&p[4..], col, pc) {
            return None;
        }
        if pr + pc < l.share * energy {
            return None;
        }
        let (ri, ci) = (row, 4 + col);
        let (ar, ac) = (pr.sqrt(), pc.sqrt());
        for (j, power) in [(ri, pr), (ci, pc)] {
            let measured = goertzel::single(block, self.harmonic_coeffs[j]).sqrt();
            let harmonic = (measured - self.leak[ri][j] * ar - self.leak[ci][j] * ac).max(0.0);
            if harmonic * harmonic > power * l.harmonic {
                return None;
            }
        }
        Some((row * 4 + col) as u8)
    }

    /// Advances the hit/miss state machine by one window.
    fn step(&mut self, hit: Option<u8>) {
        self.candidate = match (hit, self.candidate) {
            (Some(key), Some(c)) if c.key == key => Some(Candidate {
                hits: c.hits.saturating_add(1),
                ..c
            }),
            (Some(key), _) => Some(Candidate {
                key,
                hits: 1,
                start: self.block_start,
            }),
            (None, _) => None,
        };
        match self.active {
            Some(key) if hit == Some(key) => self.misses = 0,
            Some(_) => {
                self.misses = self.misses.saturating_add(1);
                if self.misses >= MISSES_TO_END {
                    self.active = None;
                }
            }
            None => {}
        }
        if self.active.is_none()
            && let Some(c) = self.candidate.filter(|c| c.hits >= HITS_TO_BEGIN)
        {
            self.active = Some(c.key);
            self.misses = 0;
            let key = usize::from(c.key);
            let digit = KEYPAD[(key / 4) % 4][key % 4];
            self.enqueue(DigitEvent {
                digit,
                at_ms: self.ms(c.start),
            });
        }
    }

    fn enqueue(&mut self, event: DigitEvent) {
        if self.queued == QUEUE_LEN {
            self.head = (self.head + 1) % QUEUE_LEN;
            self.queued -= 1;
            self.dropped += 1;
        }
        self.queue[(self.head + self.queued) % QUEUE_LEN] = event;
        self.queued += 1;
    }
}

/// Index and power of the strongest of a group.
fn strongest(group: &[f32]) -> (usize, f32) {
    group.iter().copied().enumerate().fold(
        (0, f32::MIN),
        |best, (i, p)| if p > best.1 { (i, p) } else { best },
    )
}

/// The digits queued in an [`InbandDetector`], drained as they are iterated.
#[derive(Debug)]
pub struct Digits<'a> {
    detector: &'a mut InbandDetector,
}

impl Iterator for Digits<'_> {
    type Item = DigitEvent;

    fn next(&mut self) -> Option<DigitEvent> {
        self.detector.poll_digit()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.detector.queued, Some(self.detector.queued))
    }
}

impl ExactSizeIterator for Digits<'_> {}
