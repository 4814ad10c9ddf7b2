//! Q.24-style limits: twist, level, frequency deviation, duration, drop-outs, and the
//! second-harmonic check.

use super::signals::{Sig, detect, digits, peak, ulaw};
use crate::dtmf::{InbandConfig, InbandDetector, KEYPAD};

const ALL: &str = "1234567890*#ABCD";

/// Every key at the given row/column levels, 100 ms on, 100 ms off, through µ-law.
fn every_key(row_dbm0: f64, col_dbm0: f64) -> String {
    let mut sig = Sig::new(8000);
    for d in ALL.chars() {
        sig.key_twisted(d, row_dbm0, col_dbm0, 100.0).silence(100.0);
    }
    digits(&detect(8000, &ulaw(&sig.pcm()), 160))
}

#[test]
fn dtmf_twist_within_limits_is_accepted() {
    assert_eq!(every_key(-17.0, -10.0), ALL, "normal twist 7 dB");
    assert_eq!(every_key(-10.0, -13.0), ALL, "reverse twist 3 dB");
}

#[test]
fn dtmf_twist_beyond_limits_is_rejected() {
    assert_eq!(every_key(-20.0, -10.0), "", "normal twist 10 dB");
    assert_eq!(every_key(-10.0, -16.0), "", "reverse twist 6 dB");
}

#[test]
fn dtmf_levels() {
    assert_eq!(every_key(-28.0, -28.0), ALL, "-28 dBm0");
    assert_eq!(every_key(-36.0, -36.0), "", "-36 dBm0");
}

/// Every key with both tones scaled by the given factors.
fn every_key_detuned(row_factor: f64, col_factor: f64, row_dbm0: f64, col_dbm0: f64) -> String {
    let mut sig = Sig::new(8000);
    for (r, keys) in KEYPAD.iter().enumerate() {
        for (c, _) in keys.iter().enumerate() {
            let (fr, fc) = (
                [697.0, 770.0, 852.0, 941.0][r],
                [1209.0, 1336.0, 1477.0, 1633.0][c],
            );
            sig.pair(
                fr * row_factor,
                peak(row_dbm0),
                fc * col_factor,
                peak(col_dbm0),
                100.0,
            );
            sig.silence(100.0);
        }
    }
    digits(&detect(8000, &ulaw(&sig.pcm()), 160))
}

#[test]
fn dtmf_frequencies_off_by_1_5_percent_are_accepted() {
    let grid = "123A456B789C*0#D";
    for (fr, fc) in [
        (1.015, 1.015),
        (0.985, 0.985),
        (1.015, 0.985),
        (0.985, 1.015),
    ] {
        assert_eq!(every_key_detuned(fr, fc, -10.0, -10.0), grid, "{fr} {fc}");
    }
    // The corner: 1.5 % high with 7 dB of normal twist.
    assert_eq!(
        every_key_detuned(1.015, 1.015, -17.0, -10.0),
        grid,
        "with twist"
    );
}

#[test]
fn dtmf_frequencies_off_by_3_5_percent_are_rejected() {
    for (fr, fc) in [
        (1.035, 1.035),
        (0.965, 0.965),
        (1.035, 0.965),
        (0.965, 1.035),
    ] {
        assert_eq!(every_key_detuned(fr, fc, -10.0, -10.0), "", "{fr} {fc}");
    }
}

#[test]
fn dtmf_bursts_of_20ms_or_less_are_ignored() {
    for ms in [10.0, 15.0, 20.0] {
        for offset in 0..51 {
            let mut sig = Sig::new(8000);
            sig.silence(f64::from(offset) / 8.0)
                .keys(ALL, -10.0, ms, 60.0);
            let got = digits(&detect(8000, &ulaw(&sig.pcm()), 160));
            assert_eq!(got, "", "{ms} ms bursts at offset {offset}");
        }
    }
}

#[test]
fn dtmf_dropouts_of_10ms_are_bridged() {
    for at in 0..51 {
        let mut sig = Sig::new(8000);
        for key in ALL.chars() {
            sig.key(key, -15.0, 60.0 + f64::from(at) / 8.0)
                .silence(10.0)
                .key(key, -15.0, 100.0)
                .silence(100.0);
        }
        let got = digits(&detect(8000, &ulaw(&sig.pcm()), 160));
        assert_eq!(got, ALL, "drop-out at {at}");
    }
}

#[test]
fn dtmf_second_harmonics_reject_a_harmonic_tone_pair() {
    // 697 + 1209 Hz ("1") with second harmonics at -6 dB: the pair still holds ~80 % of
    // the energy (share passes), so only the harmonic check rejects it.
    let (a, h) = (peak(-10.0), peak(-16.0));
    let mut sig = Sig::new(8000);
    for _ in 0..5 {
        sig.pair(697.0, a, 1209.0, a, 200.0);
        let start = sig.x.len() - 1600;
        let harmonics = Sig::new(8000).pair(1394.0, h, 2418.0, h, 200.0).x.clone();
        for (v, w) in sig.x[start..].iter_mut().zip(harmonics) {
            *v += w;
        }
        sig.silence(100.0);
    }
    let pcm = ulaw(&sig.pcm());
    assert_eq!(digits(&detect(8000, &pcm, 160)), "");
    let off = InbandConfig {
        max_second_harmonic_db: 100.0,
        ..InbandConfig::default()
    };
    let mut det = InbandDetector::with_config(8000, off).unwrap();
    let found: String = pcm
        .chunks(160)
        .flat_map(|c| det.push(c).collect::<Vec<_>>())
        .map(|e| e.digit)
        .collect();
    assert_eq!(found, "11111");
}

#[test]
fn dtmf_leakage_is_not_taken_for_a_harmonic() {
    // "2" (697 + 1336 Hz) and "6" (770 + 1477 Hz): each column sits within one filter
    // width of the row's second harmonic. With the column 7 dB up, the harmonic filter
    // sees mostly leakage; these clean keys must still pass.
    let mut sig = Sig::new(8000);
    for d in "2626C3B".chars() {
        sig.key_twisted(d, -17.0, -10.0, 60.0).silence(60.0);
    }
    assert_eq!(digits(&detect(8000, &ulaw(&sig.pcm()), 160)), "2626C3B");
}
