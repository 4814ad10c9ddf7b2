//! No digits from audio that is not DTMF: silence, noise, call-progress tones, other
//! tones, speech-like and music-like signals (seconds of each; durations in the names).

use super::signals::{Sig, alaw, detect, music_like, peak, speech_like, ulaw};

/// Asserts that neither the linear signal nor its µ-law and A-law round trips give a
/// digit.
fn assert_silent(rate: u32, pcm: &[i16], what: &str) {
    let mut runs = vec![("linear", pcm.to_vec())];
    if rate == 8000 {
        runs.push(("ulaw", ulaw(pcm)));
        runs.push(("alaw", alaw(pcm)));
    }
    for (codec, audio) in runs {
        let events = detect(rate, &audio, 160);
        assert!(events.is_empty(), "{what} ({codec}): {events:?}");
    }
}

#[test]
fn dtmf_none_in_10s_of_silence() {
    assert_silent(8000, &vec![0; 80_000], "silence");
    assert_silent(16_000, &vec![0; 160_000], "silence 16 kHz");
}

#[test]
fn dtmf_none_in_40s_of_white_noise() {
    for (i, dbm0) in [-5.0, -15.0, -25.0, -45.0].into_iter().enumerate() {
        let pcm = Sig::new(8000)
            .silence(10_000.0)
            .add_noise(dbm0, 11 + i as u64)
            .pcm();
        assert_silent(8000, &pcm, &format!("noise {dbm0} dBm0"));
    }
}

#[test]
fn dtmf_none_in_single_and_dual_tones() {
    // 5 s each: 440 Hz, 440+660, and the call-progress tones (dial 350+440, ringback
    // 440+480, busy 480+620, European 425).
    let cases: [(&str, f64, f64); 6] = [
        ("440", 440.0, 0.0),
        ("440+660", 440.0, 660.0),
        ("dial", 350.0, 440.0),
        ("ringback", 440.0, 480.0),
        ("busy", 480.0, 620.0),
        ("425", 425.0, 0.0),
    ];
    for (name, f1, f2) in cases {
        for dbm0 in [-3.0, -13.0, -25.0] {
            let a2 = if f2 > 0.0 { peak(dbm0) } else { 0.0 };
            let pcm = Sig::new(8000)
                .pair(f1, peak(dbm0), f2.max(1.0), a2, 5_000.0)
                .pcm();
            assert_silent(8000, &pcm, &format!("{name} at {dbm0} dBm0"));
        }
    }
}

#[test]
fn dtmf_none_in_90s_of_speech_like_audio() {
    for (seed, dbm0) in [(1, -15.0), (2, -5.0), (3, -25.0)] {
        let pcm = speech_like(8000, 30_000, dbm0, seed);
        assert_silent(8000, &pcm, &format!("speech seed {seed} at {dbm0} dBm0"));
    }
}

#[test]
fn dtmf_none_in_90s_of_music_like_chords() {
    for (seed, dbm0) in [(4, -12.0), (5, -4.0), (6, -22.0)] {
        let pcm = music_like(8000, 30_000, dbm0, seed);
        assert_silent(8000, &pcm, &format!("music seed {seed} at {dbm0} dBm0"));
    }
}

#[test]
fn dtmf_none_in_20s_of_16khz_speech_and_music() {
    assert_silent(
        16_000,
        &speech_like(16_000, 10_000, -12.0, 7),
        "speech 16 kHz",
    );
    assert_silent(
        16_000,
        &music_like(16_000, 10_000, -12.0, 8),
        "music 16 kHz",
    );
}
