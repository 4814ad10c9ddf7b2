//! Our side of SDP offer/answer (RFC 3264) for one audio stream: the offer we make, the
//! answer we give, and what a peer's description means for our media.

use crate::config::PhoneConfig;
use crate::event::MediaParams;
use hark_media::codec::AudioCodec;
use hark_media::sdp::{Direction, MediaKind, MediaSection, Sdp, SdpError};
use std::fmt::Write;
use std::net::IpAddr;

/// Why a peer's SDP cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("unparsable SDP: {0}")]
    Parse(#[from] SdpError),
    #[error("no audio stream in the SDP")]
    NoAudio,
    #[error("no codec in common")]
    NoCommonCodec,
}

/// The codec choice for one payload type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub codec: AudioCodec,
    pub pt: u8,
    pub telephone_event_pt: Option<u8>,
}

fn rtpmap(codec: AudioCodec, opus_pt: u8) -> (u8, &'static str) {
    match codec {
        AudioCodec::Pcmu => (0, "PCMU/8000"),
        AudioCodec::Pcma => (8, "PCMA/8000"),
        AudioCodec::G722 => (9, "G722/8000"),
        AudioCodec::Opus => (opus_pt, "opus/48000/2"),
    }
}

/// Our session description with the given formats. `version` is bumped by the caller
/// on every new offer in the session (RFC 3264 §8).
pub struct LocalSdp<'a> {
    pub config: &'a PhoneConfig,
    pub ip: IpAddr,
    pub port: u16,
    pub session_id: u64,
    pub version: u64,
}

impl LocalSdp<'_> {
    /// An offer of every configured codec plus telephone-events.
    pub fn offer(&self, direction: Direction) -> Vec<u8> {
        let formats: Vec<(u8, &str)> =
            self.config.codecs.iter().map(|c| rtpmap(*c, self.config.opus_pt)).collect();
        self.render(&formats, Some(self.config.telephone_event_pt), direction)
    }

    /// An answer carrying just the chosen codec (and telephone-events if offered).
    pub fn answer(&self, chosen: &Chosen, direction: Direction) -> Vec<u8> {
        let (_, name) = rtpmap(chosen.codec, chosen.pt);
        self.render(&[(chosen.pt, name)], chosen.telephone_event_pt, direction)
    }

    fn render(&self, formats: &[(u8, &str)], te: Option<u8>, direction: Direction) -> Vec<u8> {
        let ip_kind = if self.ip.is_ipv6() { "IP6" } else { "IP4" };
        let mut pts: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
        if let Some(te) = te {
            pts.push(te.to_string());
        }
        let mut s = String::with_capacity(256);
        let _ = write!(s, "v=0\r\no=hark {} {} IN {ip_kind} {}\r\ns=hark\r\n", self.session_id, self.version, self.ip);
        let _ = write!(s, "c=IN {ip_kind} {}\r\nt=0 0\r\n", self.ip);
        let _ = write!(s, "m=audio {} RTP/AVP {}\r\n", self.port, pts.join(" "));
        for (pt, name) in formats {
            let _ = write!(s, "a=rtpmap:{pt} {name}\r\n");
            if name.starts_with("opus") {
                let _ = write!(s, "a=fmtp:{pt} useinbandfec=1\r\n");
            }
        }
        if let Some(te) = te {
            let _ = write!(s, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n");
        }
        let _ = write!(s, "a=ptime:20\r\na={}\r\n", direction.as_str());
        s.into_bytes()
    }
}

/// The audio section of a peer's description.
pub fn audio_section(body: &[u8]) -> Result<MediaSection, NegotiationError> {
    let sdp = Sdp::parse(body)?;
    sdp.media()
        .into_iter()
        .find(|m| m.kind == MediaKind::Audio && !m.is_rejected())
        .ok_or(NegotiationError::NoAudio)
}

/// Answering an offer: the first of our codecs (in our order of preference) that the
/// offer carries, with the offer's payload type.
pub fn choose_for_answer(config: &PhoneConfig, offer: &MediaSection) -> Result<Chosen, NegotiationError> {
    for codec in &config.codecs {
        if let Some(f) = offer.formats.iter().find(|f| AudioCodec::from_format(f) == Some(*codec)) {
            return Ok(Chosen { codec: *codec, pt: f.pt, telephone_event_pt: offer.telephone_event_pt(8000) });
        }
    }
    Err(NegotiationError::NoCommonCodec)
}

/// Reading an answer to our offer: the first codec of the answer that we offered.
pub fn choose_from_answer(config: &PhoneConfig, answer: &MediaSection) -> Result<Chosen, NegotiationError> {
    for f in &answer.formats {
        if let Some(codec) = AudioCodec::from_format(f).filter(|c| config.codecs.contains(c)) {
            return Ok(Chosen { codec, pt: f.pt, telephone_event_pt: answer.telephone_event_pt(8000) });
        }
    }
    Err(NegotiationError::NoCommonCodec)
}

/// The media the peer's section plus our own direction call for.
pub fn media_params(chosen: &Chosen, remote: &MediaSection, local_direction: Direction) -> MediaParams {
    let remote_dir = remote.direction;
    MediaParams {
        remote: remote.rtp_addr(),
        codec: chosen.codec,
        payload_type: chosen.pt,
        telephone_event_pt: chosen.telephone_event_pt,
        send: local_direction.sends() && remote_dir.receives() && remote.rtp_addr().is_some(),
        receive: local_direction.receives() && remote_dir.sends(),
    }
}

/// The direction we answer with, given the offer's and whether we hold the call.
pub fn answer_direction(offered: Direction, local_hold: bool) -> Direction {
    let mine = if local_hold { Direction::SendOnly } else { Direction::SendRecv };
    intersect(mine, offered.reversed())
}

fn intersect(a: Direction, b: Direction) -> Direction {
    match (a.sends() && b.sends(), a.receives() && b.receives()) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Account;
    use hark_sip::transport::Transport;

    fn config() -> PhoneConfig {
        PhoneConfig::new(Account {
            server: "127.0.0.1:5060".parse().unwrap(),
            user: "101".into(),
            password: "pw".into(),
            domain: "pbx.test".into(),
            transport: Transport::Udp,
        })
    }

    #[test]
    fn our_offer_parses_and_an_answer_picks_our_first_codec() {
        let c = config();
        let local = LocalSdp { config: &c, ip: "127.0.0.1".parse().unwrap(), port: 30000, session_id: 1, version: 1 };
        let offer = local.offer(Direction::SendRecv);
        let section = audio_section(&offer).unwrap();
        assert_eq!(section.port, 30000);
        let chosen = choose_for_answer(&c, &section).unwrap();
        assert_eq!((chosen.codec, chosen.pt, chosen.telephone_event_pt), (AudioCodec::Pcmu, 0, Some(101)));
        let answer = local.answer(&chosen, Direction::SendRecv);
        let a = audio_section(&answer).unwrap();
        assert_eq!(choose_from_answer(&c, &a).unwrap(), chosen);
    }

    #[test]
    fn hold_offers_are_answered_recvonly() {
        assert_eq!(answer_direction(Direction::SendOnly, false), Direction::RecvOnly);
        assert_eq!(answer_direction(Direction::SendRecv, true), Direction::SendOnly);
        assert_eq!(answer_direction(Direction::Inactive, false), Direction::Inactive);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(audio_section(b"v=0\r\nm=audio x").is_err());
        assert!(audio_section(b"").is_err());
    }
}
