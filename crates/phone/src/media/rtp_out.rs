//! Building our RTP packets (RFC 3550 §5.1): one SSRC, a sequence number and a
//! timestamp that both start at random values.

/// The sending side of one RTP stream.
#[derive(Debug)]
pub struct RtpSender {
    ssrc: u32,
    seq: u16,
    /// The timestamp of the next frame, in RTP clock units.
    ts: u32,
}

impl Default for RtpSender {
    fn default() -> Self {
        Self::new()
    }
}

impl RtpSender {
    pub fn new() -> Self {
        Self { ssrc: rand::random(), seq: rand::random(), ts: rand::random() }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn timestamp(&self) -> u32 {
        self.ts
    }

    /// Moves the clock on by `units` (one frame).
    pub fn advance(&mut self, units: u32) {
        self.ts = self.ts.wrapping_add(units);
    }

    /// One packet with the next sequence number and timestamp `ts`.
    pub fn packet(&mut self, pt: u8, marker: bool, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push((u8::from(marker) << 7) | (pt & 0x7f));
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_parse_back_with_rising_sequence_numbers() {
        let mut s = RtpSender::new();
        let a = s.packet(0, true, 1000, &[1, 2, 3]);
        let b = s.packet(0, false, 1160, &[4]);
        let ha = hark_media::packet::peek_rtp(&a).unwrap();
        let hb = hark_media::packet::peek_rtp(&b).unwrap();
        assert_eq!(hb.seq.0, ha.seq.0.wrapping_add(1));
        assert_eq!((ha.timestamp, hb.timestamp), (1000, 1160));
        assert!(ha.marker && !hb.marker);
        assert_eq!(hark_media::packet::rtp_payload(&a), Some(&[1u8, 2, 3][..]));
    }
}
