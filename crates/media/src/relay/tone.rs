//! Short tones the relay plays to one phone: the confirmation of a recording pause or
//! resume to the party who asked, and the beep when a recording starts.
//!
//! A tone is written into the payload of the packets the relay forwards to that phone
//! anyway, keeping their SSRC, sequence numbers and timestamps: the phone's jitter buffer
//! sees one unbroken stream, and no second stream has to be invented. While the other
//! side sends nothing (muted, silence suppression) there is nothing to carry the tone,
//! and it is not heard; phones stream continuously in practice. Telephone-events and
//! payload types the player has no encoder for are forwarded untouched.

use crate::codec::{AudioCodec, Encoder};
use crate::packet::peek_rtp;
use crate::sdp::PayloadFormat;

/// Which tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Two short beeps: recording paused.
    RecordingPaused,
    /// One higher beep: recording resumed.
    RecordingResumed,
    /// One long beep: this call is being recorded.
    RecordingStarted,
}

/// Loudness of the tones: about -12 dBFS, clearly audible without startling.
const AMPLITUDE: f64 = 8_000.0;

impl Tone {
    /// The tone as (frequency in Hz, milliseconds) segments; 0 Hz is silence.
    pub fn segments(self) -> &'static [(f64, u32)] {
        match self {
            Tone::RecordingPaused => &[(950.0, 100), (0.0, 50), (950.0, 100)],
            Tone::RecordingResumed => &[(1400.0, 150)],
            Tone::RecordingStarted => &[(1800.0, 250)],
        }
    }

    /// The tone's length in milliseconds.
    pub fn duration_ms(self) -> u32 {
        self.segments().iter().map(|s| s.1).sum()
    }

    /// The frequency heard first (for tests and logs).
    pub fn frequency(self) -> f64 {
        self.segments()[0].0
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tone::RecordingPaused => "recording-paused",
            Tone::RecordingResumed => "recording-resumed",
            Tone::RecordingStarted => "recording-started",
        }
    }
}

/// Plays one [`Tone`] into a stream of forwarded RTP packets. Allocates when created,
/// not per packet.
#[derive(Debug)]
pub struct TonePlayer {
    tone: Tone,
    /// Microseconds of the tone already played.
    played_us: u64,
    encoders: Vec<(u8, Encoder)>,
    pcm: Vec<i16>,
    out: Vec<u8>,
}

/// Most samples one packet may carry for the player to rewrite it (60 ms at 48 kHz).
const MAX_SAMPLES: usize = 2_880;

impl TonePlayer {
    /// A player for the audio formats of the stream it will rewrite (the sending side's
    /// SDP formats: the payload types in its packets).
    pub fn new(tone: Tone, formats: &[PayloadFormat]) -> Self {
        let encoders = formats
            .iter()
            .filter_map(|f| Some((f.pt, Encoder::new(AudioCodec::from_format(f)?).ok()?)))
            .collect();
        TonePlayer {
            tone,
            played_us: 0,
            encoders,
            pcm: Vec::with_capacity(MAX_SAMPLES),
            out: Vec::with_capacity(4_000),
        }
    }

    pub fn tone(&self) -> Tone {
        self.tone
    }

    /// The whole tone has been played.
    pub fn is_done(&self) -> bool {
        self.played_us >= u64::from(self.tone.duration_ms()) * 1_000
    }

    /// Rewrites the RTP packet in `buf[..len]` with the next stretch of the tone when its
    /// payload type is one this player encodes; returns the packet's new length (`len`
    /// when left as it was). `buf` beyond `len` is room for a longer payload.
    pub fn rewrite(&mut self, buf: &mut [u8], len: usize) -> usize {
        if self.is_done() {
            return len;
        }
        let Some(h) = buf.get(..len).and_then(peek_rtp) else { return len };
        let Some(i) = self.encoders.iter().position(|(pt, _)| *pt == h.payload_type) else { return len };
        let payload = &buf[h.payload_offset..h.payload_offset + h.payload_len];
        let codec = self.encoders[i].1.codec();
        let samples = match codec {
            AudioCodec::Pcmu | AudioCodec::Pcma => h.payload_len,
            // 8 bits per pair of 16 kHz samples.
            AudioCodec::G722 => h.payload_len * 2,
            AudioCodec::Opus => opus_samples(payload).unwrap_or(0),
        };
        if samples == 0 || samples > MAX_SAMPLES {
            return len;
        }
        let rate = codec.sample_rate();
        self.pcm.clear();
        for n in 0..samples {
            let t_us = self.played_us + (n as u64) * 1_000_000 / u64::from(rate);
            self.pcm.push(sample_at(self.tone, t_us));
        }
        self.played_us += (samples as u64) * 1_000_000 / u64::from(rate);
        self.out.clear();
        if self.encoders[i].1.encode(&self.pcm, &mut self.out).is_err() {
            return len;
        }
        let end = h.payload_offset + self.out.len();
        if end > buf.len() {
            return len;
        }
        buf[h.payload_offset..end].copy_from_slice(&self.out);
        buf[0] &= !0x20; // the new payload carries no padding
        end
    }
}

/// The tone's sample at `t_us` microseconds from its start.
fn sample_at(tone: Tone, t_us: u64) -> i16 {
    let mut start = 0u64;
    for &(hz, ms) in tone.segments() {
        let end = start + u64::from(ms) * 1_000;
        if t_us < end {
            if hz == 0.0 {
                return 0;
            }
            let t = t_us as f64 / 1e6;
            return (AMPLITUDE * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16;
        }
        start = end;
    }
    0
}

/// Samples at 48 kHz in an Opus packet (RFC 6716 §3.1), when it is a length the encoder
/// can produce.
fn opus_samples(payload: &[u8]) -> Option<usize> {
    let toc = *payload.first()?;
    let config = usize::from(toc >> 3);
    let frame = match config {
        0..=11 => [480, 960, 1_920, 2_880][config % 4],
        12..=15 => [480, 960][config % 2],
        _ => [120, 240, 480, 960][config % 4],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => usize::from(*payload.get(1)? & 0x3f),
    };
    let n = frame * frames;
    [120, 240, 480, 960, 1_920, 2_880].contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Decoder;

    fn format(pt: u8, name: &str, rate: u32) -> PayloadFormat {
        PayloadFormat { pt, name: name.into(), clock_rate: rate, channels: 1, fmtp: None }
    }

    fn packet(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, pt, (seq >> 8) as u8, seq as u8, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(payload);
        p
    }

    /// Relative power at `hz` (Goertzel over the block).
    fn power(x: &[i16], rate: u32, hz: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s = f64::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let e: f64 = x.iter().map(|&v| f64::from(v).powi(2)).sum();
        if e == 0.0 { 0.0 } else { p / (e * x.len() as f64 / 2.0) }
    }

    /// Plays `tone` through packets of `payload` (`pt`), decodes what comes out.
    fn play(tone: Tone, fmt: PayloadFormat, payload: &[u8]) -> (Vec<i16>, usize, Vec<Vec<u8>>) {
        let mut player = TonePlayer::new(tone, &[fmt.clone(), format(101, "telephone-event", 8000)]);
        let mut dec = Decoder::for_format(&fmt).unwrap();
        let (mut pcm, mut rewritten, mut packets) = (Vec::new(), 0, Vec::new());
        for seq in 0..40u16 {
            let p = packet(fmt.pt, seq, payload);
            let mut buf = p.clone();
            buf.resize(1500, 0);
            let n = player.rewrite(&mut buf, p.len());
            let out = &buf[..n];
            assert_eq!(out[..12], p[..12], "the header (seq, timestamp, SSRC) stays");
            if out != &p[..] {
                rewritten += 1;
                dec.decode(&out[12..], &mut pcm).unwrap();
            }
            packets.push(out.to_vec());
        }
        assert!(player.is_done());
        (pcm, rewritten, packets)
    }

    #[test]
    fn g711_packets_carry_the_tone_for_its_length_then_pass_untouched() {
        // A loud payload, unlike anything the tone (or its gap) encodes to.
        for fmt in [format(8, "PCMA", 8000), format(0, "PCMU", 8000)] {
            let (pcm, rewritten, _) = play(Tone::RecordingPaused, fmt, &[0x12; 160]);
            // 250 ms in 20 ms packets: 13 packets (the last one partly).
            assert_eq!(rewritten, 13);
            let beep = &pcm[..800]; // the first 100 ms
            assert!(power(beep, 8000, 950.0) > 0.8, "{}", power(beep, 8000, 950.0));
            let gap = &pcm[880..1160]; // inside the 50 ms gap
            assert!(gap.iter().all(|&s| s.abs() < 64));
        }
    }

    #[test]
    fn g722_and_opus_streams_carry_the_tone_too() {
        let mut enc = Encoder::new(AudioCodec::G722).unwrap();
        let mut silence = Vec::new();
        enc.encode(&[0i16; 320], &mut silence).unwrap();
        let (pcm, rewritten, _) = play(Tone::RecordingResumed, format(9, "G722", 8000), &silence);
        assert_eq!(rewritten, 8); // 150 ms
        assert!(power(&pcm[800..2400], 16_000, 1400.0) > 0.7);

        let mut enc = Encoder::new(AudioCodec::Opus).unwrap();
        let mut silence = Vec::new();
        enc.encode(&[0i16; 960], &mut silence).unwrap();
        let (pcm, rewritten, packets) = play(Tone::RecordingStarted, format(111, "opus", 48_000), &silence);
        assert_eq!(rewritten, 13); // 250 ms
        assert!(power(&pcm[4800..9600], 48_000, 1800.0) > 0.5, "{}", power(&pcm[4800..9600], 48_000, 1800.0));
        assert!(packets.iter().all(|p| p.len() <= 1500));
    }

    #[test]
    fn telephone_events_unknown_types_and_garbage_are_left_alone() {
        let mut player = TonePlayer::new(Tone::RecordingPaused, &[format(8, "PCMA", 8000)]);
        for p in [packet(101, 1, &[10, 0x0a, 0, 160]), packet(96, 2, &[0; 160]), vec![0x80, 8, 0], vec![]] {
            let mut buf = p.clone();
            buf.resize(1500, 0);
            assert_eq!(player.rewrite(&mut buf, p.len()), p.len());
            assert_eq!(&buf[..p.len()], &p[..]);
        }
        assert!(!player.is_done(), "nothing of the tone was played");
    }

    #[test]
    fn a_padded_packet_loses_its_padding_with_its_old_payload() {
        let mut player = TonePlayer::new(Tone::RecordingResumed, &[format(8, "PCMA", 8000)]);
        let mut p = packet(8, 1, &[0xD5; 160]);
        p[0] |= 0x20;
        p.extend_from_slice(&[0, 0, 0, 4]);
        let mut buf = p.clone();
        buf.resize(1500, 0);
        let n = player.rewrite(&mut buf, p.len());
        assert_eq!(n, 12 + 160);
        assert_eq!(buf[0] & 0x20, 0);
    }

    #[test]
    fn opus_durations_come_from_the_toc() {
        assert_eq!(opus_samples(&[(19 << 3) as u8]), Some(960)); // CELT 20 ms
        assert_eq!(opus_samples(&[(1 << 3) as u8 | 1]), Some(1_920)); // SILK 2 x 20 ms
        assert_eq!(opus_samples(&[(3 << 3) as u8 | 3, 2]), None); // 2 x 60 ms: too long
        assert_eq!(opus_samples(&[]), None);
    }
}
