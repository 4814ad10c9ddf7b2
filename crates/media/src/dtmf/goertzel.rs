//! Goertzel filters for the DTMF bank: the eight fundamentals run in lock step over one
//! block (f32 arrays, so the compiler can vectorize them), single filters for second
//! harmonics, and the Dirichlet kernel that bounds how much a tone leaks into another
//! frequency's filter.
//!
//! Powers are mean squares: a sine of peak A at the filter's frequency gives A²/2, the
//! same scale as the block's mean square, so a block holding nothing but one pure tone
//! has all of its energy in that filter.

use std::f64::consts::PI;

/// Low group (rows), Hz.
pub(crate) const ROW_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// High group (columns), Hz.
pub(crate) const COL_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The eight DTMF frequencies, rows first (index 0–3), then columns (4–7).
pub(crate) fn tone_hz(index: usize) -> f64 {
    if index < 4 {
        ROW_HZ[index % 4]
    } else {
        COL_HZ[index % 4]
    }
}

/// The recursion coefficient 2·cos(ω) of a filter at `freq` Hz.
pub(crate) fn coeff(freq: f64, rate: u32) -> f32 {
    (2.0 * (2.0 * PI * freq / f64::from(rate)).cos()) as f32
}

/// Mean-square power at the eight bank frequencies, and the block's mean square.
pub(crate) fn bank(block: &[i16], coeffs: &[f32; 8]) -> ([f32; 8], f32) {
    let mut s1 = [0f32; 8];
    let mut s2 = [0f32; 8];
    let mut energy = 0f32;
    for &x in block {
        let x = f32::from(x);
        energy += x * x;
        for ((a, b), &c) in s1.iter_mut().zip(s2.iter_mut()).zip(coeffs) {
            let s0 = x + c * *a - *b;
            *b = *a;
            *a = s0;
        }
    }
    let norm = norm(block.len());
    let mut power = [0f32; 8];
    for (((p, &a), &b), &c) in power.iter_mut().zip(&s1).zip(&s2).zip(coeffs) {
        *p = magnitude2(a, b, c) * norm;
    }
    (power, energy / block.len().max(1) as f32)
}

/// Mean-square power at one frequency (given by its coefficient).
pub(crate) fn single(block: &[i16], c: f32) -> f32 {
    let (mut a, mut b) = (0f32, 0f32);
    for &x in block {
        let s0 = f32::from(x) + c * a - b;
        b = a;
        a = s0;
    }
    magnitude2(a, b, c) * norm(block.len())
}

/// |X(ω)|² from the last two filter states (exact for any ω, bin centre or not).
fn magnitude2(s1: f32, s2: f32, c: f32) -> f32 {
    (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0)
}

/// 2/N²: turns |X|² into a mean square.
fn norm(n: usize) -> f32 {
    let n = n.max(1) as f32;
    2.0 / (n * n)
}

/// Amplitude gain of an `n`-sample filter at `bin` Hz for a sine at `tone` Hz, relative
/// to a filter centred on the tone: the Dirichlet kernel at both the tone and its
/// negative-frequency image (the sum bounds the leaked amplitude whatever the phases).
fn leak_gain(tone: f64, bin: f64, n: usize, rate: u32) -> f64 {
    let dirichlet = |delta: f64| {
        let x = PI * delta / f64::from(rate);
        let den = n as f64 * x.sin();
        if den.abs() < 1e-12 {
            1.0
        } else {
            ((n as f64 * x).sin() / den).abs()
        }
    };
    dirichlet(bin - tone) + dirichlet(bin + tone)
}

/// The largest [`leak_gain`] for any tone within ±`tolerance` (a fraction, e.g. 0.02)
/// of `nominal`: what a real tone, a little off its nominal frequency, can leak.
pub(crate) fn worst_leak(nominal: f64, tolerance: f64, bin: f64, n: usize, rate: u32) -> f32 {
    const STEPS: u32 = 64;
    (0..=STEPS)
        .map(|i| {
            let f = nominal * (1.0 - tolerance + 2.0 * tolerance * f64::from(i) / f64::from(STEPS));
            leak_gain(f, bin, n, rate)
        })
        .fold(0.0f64, f64::max) as f32
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::analysis::{sine_wave, tone_power};

    #[test]
    fn dtmf_bank_agrees_with_analysis_tone_power() {
        let block = sine_wave(8000, 770.0, 10_000.0, 102);
        let coeffs: [f32; 8] = std::array::from_fn(|i| coeff(tone_hz(i), 8000));
        let (p, energy) = bank(&block, &coeffs);
        for (i, &got) in p.iter().enumerate() {
            let want = tone_power(&block, 8000, tone_hz(i)) as f32;
            assert!(
                (got - want).abs() <= want * 1e-3 + 1.0,
                "{i}: {got} vs {want}"
            );
        }
        // A pure tone on a filter's frequency puts (nearly) all the energy there.
        assert!((p[1] / energy - 1.0).abs() < 0.02, "{} vs {energy}", p[1]);
        let one = single(&block, coeff(770.0, 8000));
        assert!((one - p[1]).abs() <= p[1] * 1e-4);
    }

    #[test]
    fn dtmf_leak_gain_is_one_on_the_tone_and_small_far_away() {
        // 1 plus the small negative-frequency image term.
        assert!((leak_gain(1000.0, 1000.0, 102, 8000) - 1.0).abs() < 0.02);
        assert!(leak_gain(697.0, 1394.0, 102, 8000) < 0.03);
        // 1336 Hz sits 0.74 bins from 2×697 Hz: it leaks a lot, which is why the
        // harmonic check subtracts the worst case.
        assert!(worst_leak(1336.0, 0.02, 1394.0, 102, 8000) > 0.5);
    }
}
