//! One call's media: what the engine negotiated ([`MediaParams`]) made into encoders,
//! decoders, an RTP sender, a jitter buffer and concealment.

use super::dtmf_sender::DtmfSender;
use super::jitter::{JitterBuffer, Playout};
use super::plc::Concealer;
use super::rtcp::SenderCounts;
use super::rtp_out::RtpSender;
use super::FRAME_MS;
use crate::event::MediaParams;
use hark_media::codec::{AudioCodec, CodecError, Decoder, Encoder};
use hark_media::packet::{looks_like_rtcp, peek_rtp};
use std::collections::VecDeque;

/// Counters for the curious (and the tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaStats {
    pub sent_packets: u64,
    /// RTP payload bytes sent, for RTCP sender reports.
    pub sent_octets: u64,
    pub received_packets: u64,
    pub decode_errors: u64,
    pub concealed_frames: u64,
}

pub struct MediaSession {
    params: MediaParams,
    encoder: Encoder,
    decoder: Decoder,
    sender: RtpSender,
    dtmf: DtmfSender,
    jitter: JitterBuffer,
    concealer: Concealer,
    /// Decoded audio waiting to be played (packets may hold more than one frame).
    fifo: VecDeque<i16>,
    first_packet: bool,
    scratch: Vec<i16>,
    pub stats: MediaStats,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession").field("params", &self.params).field("stats", &self.stats).finish()
    }
}

impl MediaSession {
    pub fn new(params: MediaParams) -> Result<Self, CodecError> {
        Ok(Self {
            encoder: Encoder::new(params.codec)?,
            decoder: Decoder::new(params.codec)?,
            params,
            sender: RtpSender::new(),
            dtmf: DtmfSender::default(),
            jitter: JitterBuffer::default(),
            concealer: Concealer::default(),
            fifo: VecDeque::new(),
            first_packet: true,
            scratch: Vec::new(),
            stats: MediaStats::default(),
        })
    }

    /// New negotiation results (hold, resume, a new address or codec).
    pub fn update(&mut self, params: MediaParams) -> Result<(), CodecError> {
        if params.codec != self.params.codec {
            self.encoder = Encoder::new(params.codec)?;
            self.decoder = Decoder::new(params.codec)?;
            self.fifo.clear();
        }
        self.params = params;
        Ok(())
    }

    pub fn params(&self) -> &MediaParams {
        &self.params
    }

    pub fn codec(&self) -> AudioCodec {
        self.params.codec
    }

    /// The PCM rate of this call's audio (the codec's).
    pub fn rate(&self) -> u32 {
        self.params.codec.sample_rate()
    }

    /// Samples in one 20 ms frame at [`Self::rate`].
    pub fn frame_len(&self) -> usize {
        (self.rate() * FRAME_MS / 1000) as usize
    }

    fn frame_units(&self) -> u32 {
        self.params.codec.rtp_clock_rate() * FRAME_MS / 1000
    }

    pub fn queue_dtmf(&mut self, digits: &str, payload_type: u8) {
        self.params.telephone_event_pt = Some(payload_type);
        self.dtmf.queue(digits);
    }

    /// A datagram from the RTP socket. RTCP and foreign payload types are ignored;
    /// telephone-events and comfort noise keep their place in the sequence. Returns the
    /// packet's source, sequence number and timestamp, for RTCP's reception statistics.
    pub fn receive(&mut self, datagram: &[u8]) -> Option<(u32, u16, u32)> {
        if looks_like_rtcp(datagram) {
            return None;
        }
        let h = peek_rtp(datagram)?;
        let payload = datagram.get(h.payload_offset..h.payload_offset + h.payload_len)?;
        self.stats.received_packets += 1;
        self.jitter.push(h.ssrc.0, h.seq.0, h.payload_type, payload);
        Some((h.ssrc.0, h.seq.0, h.timestamp))
    }

    /// What we sent so far, for an RTCP sender report.
    pub fn sender_counts(&self) -> SenderCounts {
        SenderCounts {
            ssrc: self.sender.ssrc(),
            packets: self.stats.sent_packets as u32,
            octets: self.stats.sent_octets as u32,
            rtp_time: self.sender.timestamp(),
            sending: self.params.send && self.params.remote.is_some(),
        }
    }

    /// One 20 ms frame from the microphone (at [`Self::rate`]): the packets to send.
    pub fn send_frame(&mut self, pcm: &[i16]) -> Vec<Vec<u8>> {
        let units = self.frame_units();
        let ts = self.sender.timestamp();
        let mut out = Vec::new();
        if let (Some(te), Some(events)) = (self.params.telephone_event_pt, self.dtmf.tick(ts, units)) {
            for e in events {
                out.push(self.sender.packet(te, e.marker, e.timestamp, &e.payload));
            }
        } else if self.params.send {
            let mut payload = Vec::with_capacity(200);
            if self.encoder.encode(pcm, &mut payload).is_ok() {
                let marker = std::mem::take(&mut self.first_packet);
                out.push(self.sender.packet(self.params.payload_type, marker, ts, &payload));
            }
        }
        self.sender.advance(units);
        if !self.params.send {
            return Vec::new();
        }
        self.stats.sent_packets += out.len() as u64;
        self.stats.sent_octets += out.iter().map(|p| p.len().saturating_sub(12) as u64).sum::<u64>();
        out
    }

    /// The next 20 ms to play (at [`Self::rate`]), appended to `out`.
    pub fn play_frame(&mut self, out: &mut Vec<i16>) {
        let len = self.frame_len();
        // Packets longer than 20 ms fill the FIFO for several ticks.
        if self.fifo.len() < len {
            match self.jitter.pop() {
                Playout::Packet { pt, payload } if pt == self.params.payload_type => {
                    self.scratch.clear();
                    match self.decoder.decode(&payload, &mut self.scratch) {
                        Ok(_) => {
                            self.concealer.good(&self.scratch);
                            self.fifo.extend(self.scratch.iter().copied());
                        }
                        Err(_) => {
                            self.stats.decode_errors += 1;
                            self.fifo.extend(std::iter::repeat_n(0, len));
                        }
                    }
                }
                // Events, comfort noise, other payload types: silence in their place.
                Playout::Packet { .. } | Playout::Idle => self.fifo.extend(std::iter::repeat_n(0, len)),
                Playout::Lost => {
                    self.stats.concealed_frames += 1;
                    self.scratch.clear();
                    let concealed = match &mut self.decoder {
                        Decoder::Opus(d) => d.decode(&[], &mut self.scratch).is_ok(),
                        _ => false,
                    };
                    if !concealed {
                        self.scratch.clear();
                        self.concealer.conceal(len, &mut self.scratch);
                    }
                    self.fifo.extend(self.scratch.iter().copied());
                }
            }
        }
        let take = len.min(self.fifo.len());
        out.extend(self.fifo.drain(..take));
        out.extend(std::iter::repeat_n(0, len - take));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(codec: AudioCodec, pt: u8) -> MediaParams {
        MediaParams {
            remote: Some("127.0.0.1:4000".parse().unwrap()),
            codec,
            payload_type: pt,
            telephone_event_pt: Some(101),
            send: true,
            receive: true,
        }
    }

    fn tone(rate: u32, n: usize, start: usize) -> Vec<i16> {
        (0..n)
            .map(|i| ((((start + i) as f64) * 2.0 * std::f64::consts::PI * 440.0 / rate as f64).sin() * 8000.0) as i16)
            .collect()
    }

    #[test]
    fn a_tone_survives_encode_send_receive_decode_for_every_codec() {
        for (codec, pt) in [(AudioCodec::Pcmu, 0), (AudioCodec::Pcma, 8), (AudioCodec::G722, 9), (AudioCodec::Opus, 111)] {
            let mut a = MediaSession::new(params(codec, pt)).unwrap();
            let mut b = MediaSession::new(params(codec, pt)).unwrap();
            let rate = a.rate();
            let n = a.frame_len();
            let mut heard = Vec::new();
            for f in 0..50 {
                for p in a.send_frame(&tone(rate, n, f * n)) {
                    b.receive(&p);
                }
                b.play_frame(&mut heard);
            }
            let tail = &heard[heard.len() - rate as usize / 2..];
            let ratio = hark_media::analysis::tone_ratio(tail, rate, 440.0);
            assert!(ratio > 0.5, "{codec:?}: 440 Hz ratio {ratio}");
        }
    }

    #[test]
    fn dtmf_replaces_audio_and_losses_are_concealed() {
        let mut a = MediaSession::new(params(AudioCodec::Pcmu, 0)).unwrap();
        a.queue_dtmf("*", 101);
        let p = a.send_frame(&[0; 160]);
        assert_eq!(peek_rtp(&p[0]).unwrap().payload_type, 101);
        let mut b = MediaSession::new(params(AudioCodec::Pcmu, 0)).unwrap();
        let mut s = RtpSender::new();
        for seq in 0..10u32 {
            let pkt = s.packet(0, false, seq * 160, &[0x55; 160]);
            if seq != 5 {
                b.receive(&pkt);
            }
        }
        let mut out = Vec::new();
        for _ in 0..10 {
            b.play_frame(&mut out);
        }
        assert_eq!(b.stats.concealed_frames, 1);
        assert_eq!(out.len(), 1600);
    }

    #[test]
    fn garbage_datagrams_are_ignored() {
        let mut b = MediaSession::new(params(AudioCodec::Pcma, 8)).unwrap();
        for g in [&[][..], &[0x80][..], &[0xff; 40][..], &[0x80, 200, 0, 0][..]] {
            b.receive(g);
        }
        let mut out = Vec::new();
        b.play_frame(&mut out);
        assert_eq!(out.len(), 160);
    }
}
