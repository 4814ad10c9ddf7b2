//! Codec round trips: a tone encoded and decoded keeps its frequency.

use hark_media::analysis::{dominant_frequency, mean_square, sine_wave, tone_ratio};
use hark_media::codec::{AudioCodec, Decoder, Encoder, G722Decoder, G722Encoder};
use hark_media::sdp::Sdp;

const CANDIDATES: &[f64] = &[
    300.0, 440.0, 697.0, 1000.0, 1209.0, 2000.0, 3000.0, 5000.0, 6500.0,
];

/// Encodes `pcm` in 20 ms frames and decodes every frame; returns the decoded PCM.
fn round_trip(codec: AudioCodec, pcm: &[i16]) -> Vec<i16> {
    let frame = (codec.sample_rate() / 50) as usize;
    let mut enc = Encoder::new(codec).unwrap();
    let mut dec = Decoder::new(codec).unwrap();
    let mut out = Vec::new();
    let mut payload = Vec::new();
    for chunk in pcm.chunks_exact(frame) {
        payload.clear();
        let n = enc.encode(chunk, &mut payload).unwrap();
        assert!(n > 0);
        if matches!(codec, AudioCodec::Pcmu | AudioCodec::Pcma) {
            assert_eq!(n, 160, "G.711: one byte per sample");
        }
        if codec == AudioCodec::G722 {
            assert_eq!(n, 160, "G.722 at 64 kbit/s: 160 bytes per 20 ms");
        }
        let got = dec.decode(&payload, &mut out).unwrap();
        assert_eq!(got, frame);
    }
    out
}

fn check_tone(codec: AudioCodec, freq: f64) {
    let rate = codec.sample_rate();
    let pcm = sine_wave(rate, freq, 12_000.0, rate as usize); // one second
    let decoded = round_trip(codec, &pcm);
    // Skip the codec's start-up (adaptation, QMF and look-ahead delays).
    let steady = &decoded[decoded.len() / 4..];
    let m = dominant_frequency(steady, rate, CANDIDATES).unwrap();
    assert_eq!(m.freq, freq, "{codec:?}: dominant {m:?}");
    let ratio = tone_ratio(steady, rate, freq);
    assert!(ratio > 0.9, "{codec:?} at {freq} Hz: ratio {ratio}");
    let level = mean_square(steady).sqrt();
    assert!(
        (level - 12_000.0 / 2f64.sqrt()).abs() < 12_000.0 * 0.2,
        "{codec:?}: level {level}"
    );
}

#[test]
fn g711_ulaw_keeps_a_tone() {
    check_tone(AudioCodec::Pcmu, 1000.0);
    check_tone(AudioCodec::Pcmu, 440.0);
}

#[test]
fn g711_alaw_keeps_a_tone() {
    check_tone(AudioCodec::Pcma, 1000.0);
    check_tone(AudioCodec::Pcma, 3000.0);
}

#[test]
fn g722_keeps_a_tone_in_both_bands() {
    check_tone(AudioCodec::G722, 1000.0);
    check_tone(AudioCodec::G722, 440.0);
    // Above 4 kHz: carried by the high sub-band, which G.711 could not carry at all.
    check_tone(AudioCodec::G722, 5000.0);
}

#[test]
fn g722_streams_across_odd_chunks() {
    let pcm = sine_wave(16_000, 697.0, 10_000.0, 16_000);
    let mut whole = Vec::new();
    G722Encoder::new().encode(&pcm, &mut whole);
    let mut pieces = Vec::new();
    let mut enc = G722Encoder::new();
    for chunk in pcm.chunks(333) {
        enc.encode(chunk, &mut pieces);
    }
    assert_eq!(whole, pieces, "odd chunk sizes carry the leftover sample");
    let mut out = Vec::new();
    G722Decoder::new().decode(&whole, &mut out);
    assert_eq!(out.len(), 16_000);
    assert!(tone_ratio(&out[4000..], 16_000, 697.0) > 0.9);
}

#[test]
fn g722_decodes_arbitrary_bytes_without_panic() {
    let mut d = G722Decoder::new();
    let mut out = Vec::new();
    let junk: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    d.decode(&junk, &mut out);
    assert_eq!(out.len(), 40_000);
    d.decode(&[0xff; 5000], &mut out);
    d.decode(&[0x00; 5000], &mut out);
}

#[test]
fn opus_keeps_a_tone() {
    check_tone(AudioCodec::Opus, 1000.0);
    check_tone(AudioCodec::Opus, 440.0);
}

#[test]
fn opus_rejects_garbage_and_conceals_loss() {
    let mut d = Decoder::new(AudioCodec::Opus).unwrap();
    let mut out = Vec::new();
    // A TOC byte announcing an impossible frame count.
    assert!(d.decode(&[0xff, 0xff, 0xff], &mut out).is_err());
    assert!(out.is_empty(), "nothing appended on error");
    // Empty payload: 20 ms of concealment.
    assert_eq!(d.decode(&[], &mut out).unwrap(), 960);
}

#[test]
fn decoder_is_chosen_by_rtpmap() {
    let sdp = Sdp::parse(
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 111 9 0 8 101 18\r\na=rtpmap:111 OPUS/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n",
    )
    .unwrap();
    let formats = sdp.audio().unwrap().formats;
    let codec = |pt| Decoder::for_payload_type(pt, &formats).map(|d| d.codec());
    assert_eq!(codec(111), Ok(AudioCodec::Opus));
    assert_eq!(codec(9), Ok(AudioCodec::G722));
    assert_eq!(codec(0), Ok(AudioCodec::Pcmu));
    assert_eq!(codec(8), Ok(AudioCodec::Pcma));
    assert!(codec(101).is_err(), "telephone-event is not audio");
    assert!(codec(18).is_err(), "G.729 is not decodable");
    assert!(codec(55).is_err(), "not offered");
    assert_eq!(AudioCodec::G722.rtp_clock_rate(), 8000);
    assert_eq!(AudioCodec::G722.sample_rate(), 16000);
    assert_eq!(Decoder::new(AudioCodec::G722).unwrap().sample_rate(), 16000);
}
