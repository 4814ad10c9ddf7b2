//! In-band detection: every key, at every level, through G.711, at the minimum timing,
//! at 16 and 48 kHz; time stamps; chunking; the digit queue.

use super::signals::{Sig, alaw, detect, digits, run, ulaw};
use crate::codec::{G722Decoder, G722Encoder};
use crate::dtmf::{DtmfError, FeatureCode, FeatureCodes, InbandConfig, InbandDetector};

const ALL: &str = "1234567890*#ABCD";

#[test]
fn dtmf_all_sixteen_keys_at_every_level_linear_ulaw_alaw() {
    for dbm0 in [-3.0, -10.0, -18.0, -25.0] {
        let pcm = Sig::new(8000).keys(ALL, dbm0, 100.0, 100.0).pcm();
        for (name, audio) in [
            ("linear", pcm.clone()),
            ("ulaw", ulaw(&pcm)),
            ("alaw", alaw(&pcm)),
        ] {
            let events = detect(8000, &audio, 160);
            assert_eq!(digits(&events), ALL, "{name} at {dbm0} dBm0");
            for (i, e) in events.iter().enumerate() {
                let onset = i as i64 * 200;
                let error = e.at_ms as i64 - onset;
                assert!(
                    (-13..=13).contains(&error),
                    "{name} {dbm0}: {e:?} vs {onset} ms"
                );
            }
        }
    }
}

#[test]
fn dtmf_40ms_tones_with_40ms_gaps_at_every_block_alignment() {
    // Repeated keys ("**", "##", "00") must come out twice: the 40 ms gap re-arms.
    let keys = "1**2##00D";
    for offset in 0..51 {
        let mut sig = Sig::new(8000);
        sig.silence(f64::from(offset) / 8.0)
            .keys(keys, -20.0, 40.0, 40.0);
        let pcm = ulaw(&sig.pcm());
        assert_eq!(digits(&detect(8000, &pcm, 160)), keys, "offset {offset}");
    }
}

#[test]
fn dtmf_star_48_with_50ms_gaps_then_feature_codes() {
    let pcm = ulaw(
        &Sig::new(8000)
            .keys("*48", -10.0, 100.0, 50.0)
            .silence(2000.0)
            .keys("*49", -10.0, 100.0, 50.0)
            .pcm(),
    );
    let events = detect(8000, &pcm, 160);
    assert_eq!(digits(&events), "*48*49");
    let onsets = [0, 150, 300, 2450, 2600, 2750];
    for (e, want) in events.iter().zip(onsets) {
        assert!(e.at_ms.abs_diff(want) <= 13, "{e:?} vs {want}");
    }
    let mut codes = FeatureCodes::new();
    let found: Vec<FeatureCode> = events
        .iter()
        .filter_map(|e| codes.push(e.digit, e.at_ms))
        .collect();
    assert_eq!(found, [FeatureCode::Pause, FeatureCode::Resume]);
}

#[test]
fn dtmf_16khz_linear_and_through_g722() {
    let pcm = Sig::new(16_000).keys(ALL, -12.0, 60.0, 60.0).pcm();
    assert_eq!(digits(&detect(16_000, &pcm, 320)), ALL, "linear");
    let (mut codes, mut decoded) = (Vec::new(), Vec::new());
    G722Encoder::new().encode(&pcm, &mut codes);
    G722Decoder::new().decode(&codes, &mut decoded);
    assert_eq!(digits(&detect(16_000, &decoded, 320)), ALL, "G.722");
    let det = InbandDetector::new(16_000).unwrap();
    assert_eq!(det.block_len(), 204);
}

#[test]
fn dtmf_48khz_and_other_rates() {
    for rate in [11_025, 22_050, 32_000, 44_100, 48_000] {
        let pcm = Sig::new(rate).keys(ALL, -15.0, 45.0, 45.0).pcm();
        assert_eq!(digits(&detect(rate, &pcm, 0)), ALL, "{rate} Hz");
    }
}

#[test]
fn dtmf_chunk_sizes_do_not_change_results() {
    let pcm = ulaw(
        &Sig::new(8000)
            .keys("159#*0", -15.0, 70.0, 45.0)
            .add_noise(-45.0, 3)
            .pcm(),
    );
    let whole = detect(8000, &pcm, 0);
    assert_eq!(digits(&whole), "159#*0");
    for chunk in [1, 7, 101, 102, 103, 160, 1000] {
        assert_eq!(detect(8000, &pcm, chunk), whole, "chunk {chunk}");
    }
}

#[test]
fn dtmf_detected_over_line_noise() {
    for (tone, noise) in [(-10.0, -32.0), (-20.0, -42.0), (-25.0, -45.0)] {
        let pcm = Sig::new(8000)
            .keys(ALL, tone, 80.0, 80.0)
            .add_noise(noise, 7)
            .pcm();
        assert_eq!(
            digits(&detect(8000, &ulaw(&pcm), 160)),
            ALL,
            "tones {tone}, noise {noise}"
        );
    }
}

#[test]
fn dtmf_digits_stay_queued_when_the_iterator_is_dropped() {
    let pcm = Sig::new(8000).keys("12", -10.0, 100.0, 100.0).pcm();
    let mut det = InbandDetector::new(8000).unwrap();
    {
        let pending = det.push(&pcm);
        assert_eq!(pending.len(), 2);
    }
    assert_eq!(det.poll_digit().map(|e| e.digit), Some('1'));
    assert_eq!(det.poll_digit().map(|e| e.digit), Some('2'));
    assert_eq!(det.poll_digit(), None);
    assert_eq!(det.position_ms(), 400);
}

#[test]
fn dtmf_queue_keeps_the_newest_32_digits() {
    let keys: String = ALL.chars().cycle().take(40).collect();
    let pcm = Sig::new(8000).keys(&keys, -10.0, 50.0, 50.0).pcm();
    let mut det = InbandDetector::new(8000).unwrap();
    assert_eq!(det.push(&pcm).len(), 32);
    let got: String = std::iter::from_fn(|| det.poll_digit())
        .map(|e| e.digit)
        .collect();
    assert_eq!(got, keys[8..]);
    assert_eq!(det.dropped_digits(), 8);
}

#[test]
fn dtmf_reset_starts_over() {
    let pcm = Sig::new(8000).keys("7", -10.0, 100.0, 0.0).pcm();
    let mut det = InbandDetector::new(8000).unwrap();
    assert_eq!(digits(&run(&mut det, &pcm, 160)), "7");
    // Without a gap the same tone goes on; after reset it is a new digit at 0 ms.
    assert!(run(&mut det, &pcm, 160).is_empty());
    det.reset();
    let again = run(&mut det, &pcm, 160);
    assert_eq!(digits(&again), "7");
    assert_eq!(again[0].at_ms, 0);
}

#[test]
fn dtmf_rejects_unsupported_rates_and_bad_configs() {
    for rate in [0, 7_999, 48_001, 96_000] {
        assert_eq!(
            InbandDetector::new(rate).unwrap_err(),
            DtmfError::UnsupportedRate(rate)
        );
    }
    let bad = InbandConfig {
        min_tone_share: f32::NAN,
        ..InbandConfig::default()
    };
    assert_eq!(
        InbandDetector::with_config(8000, bad).unwrap_err(),
        DtmfError::InvalidConfig("min_tone_share")
    );
}
