//! The B2BUA's view of SDP: what it checks in an offer, how it re-anchors descriptions
//! on the relay, and where each side wants its media. A thin layer over hark-media.

use hark_media::{Direction, Sdp, SdpError, SupportedCodec};
use hark_sip::rsip::Request;
use hark_sip::SipHeaders;
use std::net::{IpAddr, SocketAddr};

/// An SDP problem, as the SIP answer that reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reject {
    pub code: u16,
    pub reason: String,
}

impl From<SdpError> for Reject {
    fn from(e: SdpError) -> Self {
        Reject { code: e.status_code(), reason: e.reason_phrase() }
    }
}

/// The relay stream that carries audio (its index among the active sections, as the
/// relays are numbered) and its audio payload formats.
pub(crate) fn audio_stream(sdp: &[u8]) -> Option<(usize, Vec<hark_media::PayloadFormat>)> {
    let sdp = Sdp::parse(sdp).ok()?;
    let active: Vec<_> = sdp.media().into_iter().filter(|m| !m.is_rejected()).collect();
    let i = active.iter().position(|m| m.kind == hark_media::MediaKind::Audio)?;
    Some((i, active[i].formats.clone()))
}

/// A caller's offer, filtered to what the PBX can relay and record.
pub(crate) struct Offer {
    pub body: Vec<u8>,
    /// Active media sections: one relay each.
    pub streams: usize,
    pub codec: Option<String>,
    pub has_video: bool,
}

pub(crate) fn prepare_offer(req: &Request) -> Result<Offer, Reject> {
    if req.body.is_empty() {
        // We anchor media, so we must rewrite the offer before the callee sees it.
        return Err(Reject { code: 488, reason: "Not Acceptable Here (an SDP offer is required)".into() });
    }
    match req.content_type().as_deref() {
        Some("application/sdp") => {}
        _ => return Err(Reject { code: 415, reason: "Unsupported Media Type (application/sdp expected)".into() }),
    }
    let mut sdp = Sdp::parse(&req.body)?;
    sdp.filter_codecs(SupportedCodec::ALL)?;
    let streams = sdp.active_sections();
    if streams == 0 {
        return Err(Reject { code: 488, reason: "Not Acceptable Here (no usable media)".into() });
    }
    let has_video = sdp.media().iter().any(|m| !m.is_rejected() && m.kind == hark_media::MediaKind::Video);
    Ok(Offer { body: sdp.to_bytes(), streams, codec: first_codec_of(&sdp), has_video })
}

/// `sdp` re-anchored on the relay's `ip` and `ports` (one per active section).
pub(crate) fn anchor(sdp: &[u8], ip: IpAddr, ports: &[u16]) -> Result<Vec<u8>, Reject> {
    let mut sdp = Sdp::parse(sdp)?;
    sdp.anchor(ip, ports)?;
    Ok(sdp.to_bytes())
}

/// The callee's answer, as the caller will see it.
pub(crate) fn answer_for_caller(sdp: &[u8], ip: IpAddr, ports: &[u16]) -> Result<Vec<u8>, Reject> {
    if sdp.is_empty() {
        return Err(Reject { code: 488, reason: "Not Acceptable Here (answer without SDP)".into() });
    }
    anchor(sdp, ip, ports)
}

/// A new offer inside the call (re-INVITE): filtered like the first, then anchored.
pub(crate) fn reoffer(sdp: &[u8], ip: IpAddr, ports: &[u16]) -> Result<Vec<u8>, Reject> {
    let mut sdp = Sdp::parse(sdp)?;
    sdp.filter_codecs(SupportedCodec::ALL)?;
    sdp.anchor(ip, ports)?;
    Ok(sdp.to_bytes())
}

/// Where one side of a stream sends from and wants media, per its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
    /// The side sends nothing (sendonly towards it, inactive, or 0.0.0.0): no RTP expected.
    pub hold: bool,
}

/// The endpoints of each active media section, in order (an unparsable body gives none).
pub(crate) fn endpoints(sdp: &[u8]) -> Vec<Endpoint> {
    let Ok(sdp) = Sdp::parse(sdp) else { return Vec::new() };
    sdp.media()
        .into_iter()
        .filter(|m| !m.is_rejected())
        .map(|m| Endpoint {
            rtp: m.rtp_addr(),
            rtcp: m.rtcp_addr(),
            hold: m.is_unspecified() || !matches!(m.direction, Direction::SendRecv),
        })
        .collect()
}

/// The first audio codec of a description, e.g. "PCMU".
pub(crate) fn first_codec(sdp: &[u8]) -> Option<String> {
    first_codec_of(&Sdp::parse(sdp).ok()?)
}

fn first_codec_of(sdp: &Sdp) -> Option<String> {
    let audio = sdp.audio()?;
    audio.formats.iter().find(|f| f.codec().is_some_and(|c| c.is_audio_codec())).map(|f| f.name.clone())
}

/// Points the relay's `side` of every stream at what `sdp` asks for. Takes the event
/// queue (not the whole core) so callers may hold a call borrowed meanwhile.
pub(crate) fn steer_relay(
    events: &mut std::collections::VecDeque<crate::core::CoreEvent>,
    key: super::CallKey,
    side: super::LegSide,
    sdp: &[u8],
    source_ip: IpAddr,
) {
    for (stream, ep) in endpoints(sdp).into_iter().enumerate() {
        events.push_back(crate::core::CoreEvent::RelayUpdate { call: key, stream, side, rtp: ep.rtp, rtcp: ep.rtcp, source_ip, hold: ep.hold });
    }
}
