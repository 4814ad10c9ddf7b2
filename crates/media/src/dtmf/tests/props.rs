//! Properties: no input panics any DTMF entry point; the in-band detector does not
//! depend on chunk sizes; repeats of one RFC 4733 event give one digit.

use proptest::prelude::*;

use super::signals::Sig;
use crate::dtmf::{
    FeatureCodes, InbandConfig, InbandDetector, Rfc4733Tracker, normalize_digit, parse_info_body,
};
use crate::packet::TelephoneEvent;

fn run_chunks(det: &mut InbandDetector, pcm: &[i16], chunks: &[usize]) -> Vec<(char, u64)> {
    let mut out = Vec::new();
    let mut rest = pcm;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = sizes.next().copied().unwrap_or(160).clamp(1, rest.len());
        let (now, later) = rest.split_at(n);
        out.extend(det.push(now).map(|e| (e.digit, e.at_ms)));
        rest = later;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn dtmf_inband_arbitrary_samples_never_panic_and_ignore_chunking(
        samples in prop::collection::vec(any::<i16>(), 0..3000),
        chunks in prop::collection::vec(1usize..400, 1..8),
        rate in prop::sample::select(vec![8000u32, 16_000, 44_100, 48_000]),
    ) {
        let mut a = InbandDetector::new(rate).unwrap();
        let mut b = InbandDetector::new(rate).unwrap();
        let whole: Vec<(char, u64)> = a.push(&samples).map(|e| (e.digit, e.at_ms)).collect();
        prop_assert_eq!(run_chunks(&mut b, &samples, &chunks), whole.clone());
        for (d, _) in whole {
            prop_assert!(normalize_digit(d) == Some(d));
        }
    }

    #[test]
    fn dtmf_inband_keys_with_noise_and_arbitrary_chunks(
        keys in "[0-9*#A-D]{1,6}",
        chunks in prop::collection::vec(1usize..400, 1..8),
        level in -22.0f64..-6.0,
    ) {
        let pcm = Sig::new(8000).keys(&keys, level, 60.0, 60.0).add_noise(level - 30.0, 5).pcm();
        let mut det = InbandDetector::new(8000).unwrap();
        let got: String = run_chunks(&mut det, &pcm, &chunks).into_iter().map(|(d, _)| d).collect();
        prop_assert_eq!(got, keys);
    }

    #[test]
    fn dtmf_inband_arbitrary_configs_never_panic(
        values in prop::collection::vec(prop_oneof![any::<f32>(), -100.0f32..100.0], 6),
        samples in prop::collection::vec(any::<i16>(), 0..1000),
        rate in any::<u32>(),
    ) {
        let config = InbandConfig {
            min_tone_dbm0: values[0],
            max_normal_twist_db: values[1],
            max_reverse_twist_db: values[2],
            min_relative_peak_db: values[3],
            min_tone_share: values[4],
            max_second_harmonic_db: values[5],
        };
        if let Ok(mut det) = InbandDetector::with_config(rate, config) {
            det.push(&samples).for_each(drop);
        }
    }

    #[test]
    fn dtmf_rfc4733_arbitrary_packets_never_panic(
        packets in prop::collection::vec((any::<u32>(), prop::collection::vec(any::<u8>(), 0..12)), 0..64),
    ) {
        let mut t = Rfc4733Tracker::new();
        for (ts, payload) in packets {
            if let Some(d) = t.push(ts, &payload) {
                prop_assert!(normalize_digit(d) == Some(d));
            }
        }
    }

    #[test]
    fn dtmf_rfc4733_any_repeats_of_one_event_give_one_digit(
        event in 0u8..16,
        ts in any::<u32>(),
        order in prop::collection::vec((0u16..2000, any::<bool>()), 1..30),
    ) {
        let mut t = Rfc4733Tracker::new();
        let digits: Vec<char> = order
            .iter()
            .filter_map(|&(duration, end)| {
                t.push(ts, &TelephoneEvent { event, end, volume: 10, duration }.to_bytes())
            })
            .collect();
        prop_assert_eq!(digits.len(), 1);
    }

    #[test]
    fn dtmf_info_arbitrary_bodies_never_panic(
        content_type in prop_oneof![
            Just("application/dtmf-relay".to_owned()),
            Just("application/dtmf".to_owned()),
            "[ -~]{0,30}",
        ],
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "(Signal|Duration|signal)? ?=? ?[ -~]{0,6}(\r?\n[ -~]{0,12}){0,3}".prop_map(String::into_bytes),
        ],
    ) {
        if let Ok(Some(d)) = parse_info_body(&content_type, &body) {
            prop_assert!(normalize_digit(d) == Some(d));
        }
    }

    #[test]
    fn dtmf_feature_codes_arbitrary_input_never_panics(
        input in prop::collection::vec((any::<char>(), any::<u64>()), 0..64),
        codes in prop::collection::vec("[0-9*#A-Dxa-d]{0,10}", 0..4),
        timeout in any::<u64>(),
    ) {
        let pairs: Vec<(&str, crate::dtmf::FeatureCode)> =
            codes.iter().map(|c| (c.as_str(), crate::dtmf::FeatureCode::Pause)).collect();
        let mut f = FeatureCodes::with_codes(&pairs, timeout).unwrap_or_default();
        for (c, at) in input {
            f.push(c, at);
        }
    }
}
