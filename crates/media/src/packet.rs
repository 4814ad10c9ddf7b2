//! RTP/RTCP packet views.
//!
//! The relay path uses [`peek_rtp`] and [`peek_rtcp`], which read fixed header fields
//! from the datagram in place and never allocate (`rtp::header::Header::unmarshal` builds
//! `Vec`s for CSRCs and extensions, so it is kept off the per-packet path). Everything
//! that may allocate — recording, statistics, tests — uses the webrtc-rs parsers through
//! [`parse_rtp`] and [`parse_rtcp`].

use bytes::Bytes;
use webrtc_util::marshal::Unmarshal;

use crate::types::{Seq, Ssrc};

/// RTP/RTCP header length without CSRCs or extensions.
pub const RTP_HEADER_LEN: usize = 12;

/// Fixed RTP header fields, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeaderView {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: Seq,
    pub timestamp: u32,
    pub ssrc: Ssrc,
    /// Offset of the payload (after CSRCs and the header extension).
    pub payload_offset: usize,
    /// Payload length, padding excluded.
    pub payload_len: usize,
}

/// RFC 5761 §4: an RTP-socket datagram whose second byte is 192..=223 is RTCP.
pub fn looks_like_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

/// Reads an RTP header in place: version 2, CSRCs, extension and padding lengths that fit
/// the datagram. None for anything else.
pub fn peek_rtp(buf: &[u8]) -> Option<RtpHeaderView> {
    if buf.len() < RTP_HEADER_LEN || buf[0] >> 6 != 2 {
        return None;
    }
    let padding = buf[0] & 0x20 != 0;
    let extension = buf[0] & 0x10 != 0;
    let cc = usize::from(buf[0] & 0x0f);
    let mut offset = RTP_HEADER_LEN + 4 * cc;
    if extension {
        let ext = buf.get(offset..offset + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        offset += 4 + 4 * words;
    }
    if offset > buf.len() {
        return None;
    }
    let mut payload_len = buf.len() - offset;
    if padding {
        let pad = usize::from(*buf.last()?);
        if pad == 0 || pad > payload_len {
            return None;
        }
        payload_len -= pad;
    }
    Some(RtpHeaderView {
        marker: buf[1] & 0x80 != 0,
        payload_type: buf[1] & 0x7f,
        seq: Seq(u16::from_be_bytes([buf[2], buf[3]])),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: Ssrc(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]])),
        payload_offset: offset,
        payload_len,
    })
}

/// The payload of an RTP packet (padding removed), in place.
pub fn rtp_payload(buf: &[u8]) -> Option<&[u8]> {
    let h = peek_rtp(buf)?;
    buf.get(h.payload_offset..h.payload_offset + h.payload_len)
}

/// Reads the first RTCP header of a (compound) packet with the `rtcp` crate's header
/// parser, which does not allocate: version 2, packet type 192..=223 (RFC 5761 range),
/// the first packet's length within the datagram.
pub fn peek_rtcp(buf: &[u8]) -> Option<rtcp::header::Header> {
    if buf.len() < 8 || !looks_like_rtcp(buf) {
        return None;
    }
    let mut reader = buf;
    let header = rtcp::header::Header::unmarshal(&mut reader).ok()?;
    let len = (usize::from(header.length) + 1) * 4;
    if len > buf.len() {
        return None;
    }
    Some(header)
}

/// Errors of the allocating parsers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("bad RTP packet: {0}")]
    Rtp(String),
    #[error("bad RTCP packet: {0}")]
    Rtcp(String),
}

/// Parses a full RTP packet with the webrtc-rs `rtp` crate (copies the payload).
pub fn parse_rtp(buf: &[u8]) -> Result<rtp::packet::Packet, PacketError> {
    if peek_rtp(buf).is_none() {
        return Err(PacketError::Rtp(
            "not RTP version 2 or truncated".to_owned(),
        ));
    }
    let mut reader = Bytes::copy_from_slice(buf);
    rtp::packet::Packet::unmarshal(&mut reader).map_err(|e| PacketError::Rtp(e.to_string()))
}

/// Parses a (compound) RTCP packet with the webrtc-rs `rtcp` crate.
pub fn parse_rtcp(
    buf: &[u8],
) -> Result<Vec<Box<dyn rtcp::packet::Packet + Send + Sync>>, PacketError> {
    let mut reader = Bytes::copy_from_slice(buf);
    rtcp::packet::unmarshal(&mut reader).map_err(|e| PacketError::Rtcp(e.to_string()))
}

/// An RFC 4733 named telephone event (DTMF digit, flash…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// 0–9 digits, 10 `*`, 11 `#`, 12–15 A–D, 16 flash.
    pub event: u8,
    pub end: bool,
    /// Power level in -dBm0 (0–63).
    pub volume: u8,
    /// Duration so far, in RTP clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the 4-byte event payload (the first block if several are stacked).
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let p = payload.get(..4)?;
        Some(TelephoneEvent {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3f,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    /// The DTMF character of a digit event.
    pub fn digit(&self) -> Option<char> {
        Some(match self.event {
            0..=9 => char::from(b'0' + self.event),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + self.event - 12),
            _ => return None,
        })
    }

    /// Writes the 4-byte payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc_util::marshal::Marshal;

    fn packet(csrc: Vec<u32>, ext: bool, padding: bool, payload: &[u8]) -> Vec<u8> {
        let mut header = rtp::header::Header {
            version: 2,
            padding,
            marker: true,
            payload_type: 101,
            sequence_number: 4242,
            timestamp: 0xdead_beef,
            ssrc: 0x1234_5678,
            csrc,
            ..Default::default()
        };
        if ext {
            header
                .set_extension(1, Bytes::from_static(&[0xaa, 0xbb]))
                .unwrap();
        }
        let p = rtp::packet::Packet {
            header,
            payload: Bytes::copy_from_slice(payload),
        };
        p.marshal().unwrap().to_vec()
    }

    #[test]
    fn peek_agrees_with_rtp_crate() {
        for (csrc, ext, pad) in [
            (vec![], false, false),
            (vec![1, 2, 3], false, false),
            (vec![], true, false),
            (vec![7], true, true),
        ] {
            let buf = packet(csrc, ext, pad, b"hello");
            let view = peek_rtp(&buf).unwrap();
            let parsed = parse_rtp(&buf).unwrap();
            assert_eq!(view.seq.0, parsed.header.sequence_number);
            assert_eq!(view.ssrc.0, parsed.header.ssrc);
            assert_eq!(view.timestamp, parsed.header.timestamp);
            assert_eq!(view.payload_type, parsed.header.payload_type);
            assert!(view.marker);
            assert_eq!(rtp_payload(&buf).unwrap(), &parsed.payload[..]);
            assert_eq!(rtp_payload(&buf).unwrap(), b"hello");
        }
    }

    #[test]
    fn peek_rejects_garbage() {
        assert!(peek_rtp(&[]).is_none());
        assert!(peek_rtp(&[0x80; 11]).is_none());
        assert!(peek_rtp(&[0x40; 20]).is_none()); // version 1
        let mut b = vec![0x8f; 12]; // 15 CSRCs announced, none present
        b[1] = 0;
        assert!(peek_rtp(&b).is_none());
        let mut p = packet(vec![], false, false, b"abc");
        p[0] |= 0x20; // padding flag, last byte 'c' = 99 > payload
        assert!(peek_rtp(&p).is_none());
    }

    #[test]
    fn rtcp_peek_and_parse() {
        let rr = rtcp::receiver_report::ReceiverReport {
            ssrc: 0x0102_0304,
            ..Default::default()
        };
        let buf = rr.marshal().unwrap();
        let h = peek_rtcp(&buf).unwrap();
        assert_eq!(h.packet_type, rtcp::header::PacketType::ReceiverReport);
        assert!(looks_like_rtcp(&buf));
        assert_eq!(parse_rtcp(&buf).unwrap().len(), 1);
        assert!(peek_rtcp(&buf[..6]).is_none());
        assert!(!looks_like_rtcp(&packet(vec![], false, false, b"x")));
    }

    #[test]
    fn telephone_event_round_trip() {
        let ev = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 1280,
        };
        let parsed = TelephoneEvent::parse(&ev.to_bytes()).unwrap();
        assert_eq!(parsed, ev);
        assert_eq!(parsed.digit(), Some('#'));
        assert!(TelephoneEvent::parse(&[1, 2]).is_none());
    }
}
