//! Feature-code matching: defaults, timeouts, overlaps, digits in between, custom codes.

use crate::dtmf::{DEFAULT_INTER_DIGIT_TIMEOUT_MS, DtmfError, FeatureCode, FeatureCodes};

use FeatureCode::{Pause, Resume};

/// Types `keys` 200 ms apart from `t0`; returns what matched, with the key index.
fn typed(codes: &mut FeatureCodes, keys: &str, t0: u64) -> Vec<(usize, FeatureCode)> {
    keys.chars()
        .enumerate()
        .filter_map(|(i, c)| Some((i, codes.push(c, t0 + 200 * i as u64)?)))
        .collect()
}

#[test]
fn dtmf_default_codes() {
    let mut f = FeatureCodes::new();
    assert_eq!(f.timeout_ms(), DEFAULT_INTER_DIGIT_TIMEOUT_MS);
    assert_eq!(typed(&mut f, "*48", 0), [(2, Pause)]);
    assert_eq!(typed(&mut f, "*49", 5000), [(2, Resume)]);
    assert_eq!(
        typed(&mut f, "*48*49*48", 10_000),
        [(2, Pause), (5, Resume), (8, Pause)]
    );
}

#[test]
fn dtmf_overlaps_and_other_digits() {
    for (keys, want) in [
        ("*4*48", vec![(4, Pause)]),
        ("**48", vec![(3, Pause)]),
        ("123*48", vec![(5, Pause)]),
        ("*4*49", vec![(4, Resume)]),
        ("*448", vec![]),
        ("*4#8", vec![]),
        ("*48", vec![(2, Pause)]),
        ("48*", vec![]),
        ("*488", vec![(2, Pause)]),
        ("*48 8", vec![(2, Pause)]),
        ("*4x8", vec![]),
    ] {
        let mut f = FeatureCodes::new();
        assert_eq!(typed(&mut f, keys, 0), want, "{keys}");
    }
}

#[test]
fn dtmf_a_match_starts_the_sequence_over() {
    let mut f = FeatureCodes::new();
    assert_eq!(f.push('*', 0), None);
    assert_eq!(f.push('4', 100), None);
    assert_eq!(f.push('8', 200), Some(Pause));
    // "8" alone after a match does not reuse "*4".
    assert_eq!(f.push('8', 300), None);
}

#[test]
fn dtmf_inter_digit_timeout() {
    let mut f = FeatureCodes::new();
    assert_eq!(f.push('*', 0), None);
    assert_eq!(f.push('4', 3000), None);
    assert_eq!(
        f.push('8', 6000),
        Some(Pause),
        "gaps of exactly 3 s still count"
    );
    assert_eq!(f.push('*', 10_000), None);
    assert_eq!(f.push('4', 10_100), None);
    assert_eq!(f.push('8', 13_101), None, "3.001 s gap resets");
    assert_eq!(f.push('*', 13_200), None);
    assert_eq!(f.push('4', 13_300), None);
    assert_eq!(f.push('8', 13_400), Some(Pause));
    // Time going backwards is no gap.
    assert_eq!(f.push('*', 20_000), None);
    assert_eq!(f.push('4', 19_000), None);
    assert_eq!(f.push('9', 19_500), Some(Resume));
    f.push('*', 30_000);
    f.reset();
    assert_eq!(f.push('4', 30_001), None);
    assert_eq!(f.push('8', 30_002), None);
}

#[test]
fn dtmf_custom_codes() {
    let mut f =
        FeatureCodes::with_codes(&[("#1", Pause), ("#2", Resume), ("a5d", Pause)], 1000).unwrap();
    assert_eq!(
        typed(&mut f, "#1#2A5D", 0),
        [(1, Pause), (3, Resume), (6, Pause)]
    );
    assert_eq!(f.push('#', 10_000), None);
    assert_eq!(f.push('1', 11_001), None);
    let mut long = FeatureCodes::with_codes(&[("12345678", Pause)], 1000).unwrap();
    assert_eq!(typed(&mut long, "9912345678", 0), [(9, Pause)]);
}

#[test]
fn dtmf_invalid_code_sets() {
    let invalid = |s: &str| DtmfError::InvalidFeatureCode(s.to_owned());
    let cases: [(&[(&str, FeatureCode)], DtmfError); 6] = [
        (&[("", Pause)], invalid("")),
        (&[("*4x", Pause)], invalid("*4x")),
        (&[("123456789", Pause)], invalid("123456789")),
        (
            &[("*48", Pause), ("*48", Resume)],
            DtmfError::OverlappingFeatureCodes("*48".into(), "*48".into()),
        ),
        (
            &[("*4", Pause), ("*48", Resume)],
            DtmfError::OverlappingFeatureCodes("*4".into(), "*48".into()),
        ),
        (
            &[("*48", Pause), ("*4", Resume)],
            DtmfError::OverlappingFeatureCodes("*48".into(), "*4".into()),
        ),
    ];
    for (codes, want) in cases {
        assert_eq!(
            FeatureCodes::with_codes(codes, 3000).unwrap_err(),
            want,
            "{codes:?}"
        );
    }
    // Codes that end alike are fine: the longest match wins.
    let mut f = FeatureCodes::with_codes(&[("*48", Pause), ("1*48", Resume)], 3000).unwrap();
    assert_eq!(typed(&mut f, "1*48", 0), [(3, Resume)]);
    assert_eq!(typed(&mut f, "2*48", 0), [(3, Pause)]);
}
