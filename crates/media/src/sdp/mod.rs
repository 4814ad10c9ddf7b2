//! SDP offer/answer for a media-anchoring B2BUA, on the webrtc-rs `sdp` crate's model.
//!
//! The flow for one call (relay side A faces the caller, side B the callee):
//! 1. caller's offer: [`Sdp::parse`] (400 on [`SdpError`] of class Malformed), then
//!    [`Sdp::filter_codecs`] (488 on NoCommonCodec/NoAudio); its [`Sdp::audio_addrs`] go
//!    to the relay as side A's remote; [`Sdp::anchor`] with side B's relay ports; send it
//!    to the callee.
//! 2. callee's answer (183 or 200): parse, filter, addresses to side B, anchor with side
//!    A's relay ports, send to the caller.
//!
//! The `sdp` crate parses strictly (fixed line order); a small pre-pass
//! ([`normalize`]) makes it tolerant of the misordering real phones produce.

mod anchor;
mod codecs;
mod error;
mod media;
mod normalize;

use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};

pub use codecs::SupportedCodec;
pub use error::{SdpError, SdpErrorClass};
pub use media::{Direction, MediaKind, MediaSection, PayloadFormat};
pub use normalize::MAX_SDP_LEN;

/// Most m= lines accepted in one description.
pub const MAX_MEDIA_SECTIONS: usize = 16;

/// A parsed, validated session description.
#[derive(Debug, Clone)]
pub struct Sdp {
    inner: ::sdp::SessionDescription,
}

impl Sdp {
    /// Parses and validates an SDP body. Every m= section is checked (payload types,
    /// rtpmap, c= and a=rtcp addresses), so the accessors below cannot fail afterwards.
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        if body.len() > MAX_SDP_LEN {
            return Err(SdpError::malformed("body too large"));
        }
        let text =
            std::str::from_utf8(body).map_err(|_| SdpError::malformed("body is not UTF-8"))?;
        let canonical = normalize::normalize(text)?;
        let inner = ::sdp::SessionDescription::unmarshal(&mut Cursor::new(canonical.as_bytes()))
            .map_err(|e| SdpError::from_parser(&e))?;
        if inner.media_descriptions.len() > MAX_MEDIA_SECTIONS {
            return Err(SdpError::malformed("too many m= lines"));
        }
        let sdp = Sdp { inner };
        sdp.sections()?;
        Ok(sdp)
    }

    /// Wraps a description built with the `sdp` crate (validated like a parsed one).
    pub fn from_session(inner: ::sdp::SessionDescription) -> Result<Self, SdpError> {
        let sdp = Sdp { inner };
        sdp.sections()?;
        Ok(sdp)
    }

    /// The underlying `sdp` crate model (read-only: mutations go through this type so the
    /// description stays valid).
    pub fn session(&self) -> &::sdp::SessionDescription {
        &self.inner
    }

    /// Serializes with CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.marshal().into_bytes()
    }

    fn sections(&self) -> Result<Vec<MediaSection>, SdpError> {
        let conn = self.inner.connection_information.as_ref();
        if let Some(c) = conn {
            media::parse_connection(c)?;
        }
        self.inner
            .media_descriptions
            .iter()
            .enumerate()
            .map(|(i, m)| MediaSection::from_desc(i, m, conn, &self.inner.attributes))
            .collect()
    }

    /// All media sections in order.
    pub fn media(&self) -> Vec<MediaSection> {
        // Validated at construction and kept valid by every mutation.
        self.sections().unwrap_or_default()
    }

    /// The section at `index`.
    pub fn section(&self, index: usize) -> Option<MediaSection> {
        let m = self.inner.media_descriptions.get(index)?;
        MediaSection::from_desc(
            index,
            m,
            self.inner.connection_information.as_ref(),
            &self.inner.attributes,
        )
        .ok()
    }

    /// The first audio section that is not rejected (port ≠ 0).
    pub fn audio(&self) -> Option<MediaSection> {
        self.media()
            .into_iter()
            .find(|m| m.kind == MediaKind::Audio && !m.is_rejected())
    }

    /// Remote RTP address of section `index`: None when its port is 0 or its address is
    /// 0.0.0.0 (hold).
    pub fn rtp_addr(&self, index: usize) -> Option<SocketAddr> {
        self.section(index)?.rtp_addr()
    }

    /// Remote RTCP address of section `index` (a=rtcp, else RTP port + 1); None like
    /// [`Sdp::rtp_addr`].
    pub fn rtcp_addr(&self, index: usize) -> Option<SocketAddr> {
        self.section(index)?.rtcp_addr()
    }

    /// RTP and RTCP addresses of the first active audio section.
    pub fn audio_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        let a = self.audio()?;
        Some((a.rtp_addr()?, a.rtcp_addr()?))
    }

    /// Direction of the first active audio section; else the session-level attribute;
    /// else sendrecv.
    pub fn direction(&self) -> Direction {
        if let Some(a) = self.audio() {
            return a.direction;
        }
        self.inner
            .attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_attribute(&a.key))
            .unwrap_or_default()
    }

    /// Whether the owner of this description puts the peer on hold: its audio is
    /// sendonly or inactive (RFC 3264), or its address is 0.0.0.0 (RFC 2543 style).
    pub fn is_hold(&self) -> bool {
        self.audio().is_some_and(|a| {
            matches!(a.direction, Direction::SendOnly | Direction::Inactive) || a.is_unspecified()
        })
    }

    /// o= session id.
    pub fn session_id(&self) -> u64 {
        self.inner.origin.session_id
    }

    /// o= session version.
    pub fn session_version(&self) -> u64 {
        self.inner.origin.session_version
    }

    /// Keeps only the payload types in `supported` (usually [`SupportedCodec::ALL`]):
    /// in audio sections the audio codecs and telephone-event, in video sections H.264.
    /// rtpmap/fmtp/rtcp-fb of removed types go too. A section left without a media codec,
    /// a non-audio/video section, or a section on a transport other than RTP/AVP(F)
    /// (SRTP, DTLS) is rejected with port 0 (RFC 3264 §6).
    ///
    /// Errors (the description is left unchanged): [`SdpError::NoAudio`] when there is
    /// no audio section, [`SdpError::UnsupportedTransport`] when the only audio is secure
    /// RTP, [`SdpError::NoCommonCodec`] when no audio codec survives.
    pub fn filter_codecs(&mut self, supported: &[SupportedCodec]) -> Result<(), SdpError> {
        let mut next = self.inner.clone();
        codecs::filter(&mut next, supported)?;
        self.inner = next;
        Ok(())
    }

    /// Anchors the description on the relay: `ip` goes into o= and a session-level c=,
    /// and each active m= line (port ≠ 0), in order, gets the next port of `ports` (its
    /// a=rtcp, if any, becomes port + 1). A section held with c=0.0.0.0 keeps a media-level
    /// 0.0.0.0 so the hold still reads as one. ICE, SRTP keying, BUNDLE and rtcp-mux
    /// attributes are removed. The o= version goes up by one.
    ///
    /// Errors (description unchanged): [`SdpError::NotEnoughPorts`].
    pub fn anchor(&mut self, ip: IpAddr, ports: &[u16]) -> Result<(), SdpError> {
        let mut next = self.inner.clone();
        anchor::anchor(&mut next, ip, ports)?;
        self.inner = next;
        Ok(())
    }

    /// Number of active (port ≠ 0) m= lines: how many ports [`Sdp::anchor`] needs.
    pub fn active_sections(&self) -> usize {
        self.inner
            .media_descriptions
            .iter()
            .filter(|m| m.media_name.port.value != 0)
            .count()
    }
}

impl std::fmt::Display for Sdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.inner.marshal())
    }
}
