//! Codec filtering: keep only what the PBX can decode (and so record).

use ::sdp::description::media::MediaDescription;
use ::sdp::description::session::SessionDescription;

use super::error::SdpError;
use super::media::{MediaKind, MediaSection, PayloadFormat};

/// A payload format the PBX handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SupportedCodec {
    /// G.711 µ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
    /// G.722, static PT 9 (RTP clock 8000 though it samples at 16 kHz).
    G722,
    /// Opus, dynamic, opus/48000/2.
    Opus,
    /// RFC 4733 telephone-event, dynamic.
    TelephoneEvent,
    /// H.264 video, dynamic (recorded later).
    H264,
}

impl SupportedCodec {
    /// Everything the PBX relays and records: the default for `filter_codecs`.
    pub const ALL: &'static [SupportedCodec] = &[
        SupportedCodec::Opus,
        SupportedCodec::G722,
        SupportedCodec::Pcmu,
        SupportedCodec::Pcma,
        SupportedCodec::TelephoneEvent,
        SupportedCodec::H264,
    ];

    /// Audio codecs (telephone-event is not one: it cannot carry a call alone).
    pub fn is_audio_codec(self) -> bool {
        matches!(
            self,
            SupportedCodec::Pcmu
                | SupportedCodec::Pcma
                | SupportedCodec::G722
                | SupportedCodec::Opus
        )
    }

    pub fn is_video(self) -> bool {
        self == SupportedCodec::H264
    }

    /// Recognizes a payload format by rtpmap name and clock rate (or static PT).
    pub fn classify(f: &PayloadFormat) -> Option<SupportedCodec> {
        let name = f.name.as_str();
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("PCMU") && f.clock_rate == 8000 {
            Some(SupportedCodec::Pcmu)
        } else if is("PCMA") && f.clock_rate == 8000 {
            Some(SupportedCodec::Pcma)
        } else if is("G722") && (f.clock_rate == 8000 || f.clock_rate == 16000) && f.channels == 1 {
            // 8000 is right (RFC 3551); some phones write 16000: decode them alike.
            Some(SupportedCodec::G722)
        } else if is("opus") && f.clock_rate == 48000 {
            Some(SupportedCodec::Opus)
        } else if is("telephone-event") && f.clock_rate > 0 {
            Some(SupportedCodec::TelephoneEvent)
        } else if is("H264") && f.clock_rate == 90000 {
            Some(SupportedCodec::H264)
        } else {
            None
        }
    }
}

/// Outcome of filtering one section.
enum SectionResult {
    /// Kept, with at least one usable codec.
    Kept,
    /// Rejected (port 0) or already rejected.
    Rejected,
    /// Rejected because its transport is secure RTP.
    RejectedSecure,
}

/// Filters `desc` in place; see [`super::Sdp::filter_codecs`].
pub(crate) fn filter(
    desc: &mut SessionDescription,
    supported: &[SupportedCodec],
) -> Result<(), SdpError> {
    let session_conn = desc.connection_information.clone();
    let session_attrs = desc.attributes.clone();
    let mut saw_audio = false;
    let mut kept_audio = 0usize;
    let mut secure_audio = false;
    for (index, m) in desc.media_descriptions.iter_mut().enumerate() {
        let section = MediaSection::from_desc(index, m, session_conn.as_ref(), &session_attrs)?;
        let is_audio = section.kind == MediaKind::Audio;
        saw_audio |= is_audio;
        let result = filter_section(m, &section, supported);
        if is_audio {
            match result {
                SectionResult::Kept => kept_audio += 1,
                SectionResult::RejectedSecure => secure_audio = true,
                SectionResult::Rejected => {}
            }
        }
    }
    if !saw_audio {
        return Err(SdpError::NoAudio);
    }
    if kept_audio == 0 {
        if secure_audio {
            return Err(SdpError::UnsupportedTransport("(SRTP)".to_owned()));
        }
        return Err(SdpError::NoCommonCodec);
    }
    Ok(())
}

fn filter_section(
    m: &mut MediaDescription,
    section: &MediaSection,
    supported: &[SupportedCodec],
) -> SectionResult {
    if section.is_rejected() {
        return SectionResult::Rejected;
    }
    if !section.is_plain_rtp() {
        let secure = section.proto.contains("SAVP");
        reject(m);
        return if secure {
            SectionResult::RejectedSecure
        } else {
            SectionResult::Rejected
        };
    }
    let wanted = |c: SupportedCodec| match section.kind {
        MediaKind::Audio => !c.is_video(),
        MediaKind::Video => c.is_video(),
        MediaKind::Other(_) => false,
    };
    let keep: Vec<u8> = section
        .formats
        .iter()
        .filter(|f| {
            f.codec()
                .is_some_and(|c| wanted(c) && supported.contains(&c))
        })
        .map(|f| f.pt)
        .collect();
    let has_media_codec = section.formats.iter().any(|f| {
        keep.contains(&f.pt)
            && f.codec()
                .is_some_and(|c| c != SupportedCodec::TelephoneEvent)
    });
    if !has_media_codec {
        reject(m);
        return SectionResult::Rejected;
    }
    m.media_name
        .formats
        .retain(|f| f.parse::<u8>().is_ok_and(|pt| keep.contains(&pt)));
    m.attributes.retain(|a| match a.key.as_str() {
        "rtpmap" | "fmtp" | "rtcp-fb" => match attr_pt(a.value.as_deref()) {
            PtRef::Pt(pt) => keep.contains(&pt),
            PtRef::Wildcard => true,
            PtRef::Bad => false,
        },
        _ => true,
    });
    SectionResult::Kept
}

enum PtRef {
    Pt(u8),
    Wildcard,
    Bad,
}

fn attr_pt(value: Option<&str>) -> PtRef {
    let Some(v) = value else { return PtRef::Bad };
    let first = v.split_whitespace().next().unwrap_or_default();
    if first == "*" {
        return PtRef::Wildcard;
    }
    first.parse::<u8>().map_or(PtRef::Bad, PtRef::Pt)
}

/// RFC 3264 §6: a rejected stream keeps its m= line with port 0 and its formats; its
/// attributes no longer mean anything.
pub(crate) fn reject(m: &mut MediaDescription) {
    m.media_name.port.value = 0;
    m.media_name.port.range = None;
    m.attributes.clear();
    m.bandwidth.clear();
    m.encryption_key = None;
}
