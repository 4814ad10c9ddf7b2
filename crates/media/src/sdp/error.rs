//! SDP errors, each with the SIP answer it calls for.

/// Which SIP final response an [`SdpError`] calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpErrorClass {
    /// The body is not valid SDP: 400 Bad Request.
    Malformed,
    /// Valid SDP the PBX cannot accept (no common codec, no audio, SRTP): 488.
    NotAcceptable,
    /// A mistake of the caller of this crate (too few relay ports): 500.
    Internal,
}

/// Why an SDP body was refused. [`SdpError::reason_phrase`] is a single printable line
/// fit for a SIP reason phrase; [`SdpError::status_code`] is the response code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// Not SDP, or SDP that breaks RFC 8866 syntax; the text says where.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// Parsed, but has no audio stream at all.
    #[error("SDP has no audio stream")]
    NoAudio,
    /// No audio codec the PBX can decode survives filtering.
    #[error("no common codec")]
    NoCommonCodec,
    /// Every audio stream uses a transport the PBX does not terminate (SRTP, DTLS).
    #[error("unsupported media transport: {0}")]
    UnsupportedTransport(String),
    /// Valid SDP with a feature the PBX does not support (e.g. an FQDN in c=).
    #[error("unsupported SDP: {0}")]
    Unsupported(String),
    /// `anchor` got fewer relay ports than there are active media sections.
    #[error("not enough relay ports: {needed} needed, {given} given")]
    NotEnoughPorts { needed: usize, given: usize },
}

/// Longest reason phrase produced (SIP has no limit; phones show short ones).
const MAX_REASON: usize = 96;

impl SdpError {
    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        SdpError::Malformed(detail.into())
    }

    pub fn class(&self) -> SdpErrorClass {
        match self {
            SdpError::Malformed(_) => SdpErrorClass::Malformed,
            SdpError::NoAudio
            | SdpError::NoCommonCodec
            | SdpError::UnsupportedTransport(_)
            | SdpError::Unsupported(_) => SdpErrorClass::NotAcceptable,
            SdpError::NotEnoughPorts { .. } => SdpErrorClass::Internal,
        }
    }

    /// 400 for malformed SDP, 488 for acceptable syntax the PBX cannot serve, 500 for
    /// internal mistakes.
    pub fn status_code(&self) -> u16 {
        match self.class() {
            SdpErrorClass::Malformed => 400,
            SdpErrorClass::NotAcceptable => 488,
            SdpErrorClass::Internal => 500,
        }
    }

    /// A SIP reason phrase: one line of printable ASCII, at most 96 characters.
    pub fn reason_phrase(&self) -> String {
        let text = match self {
            SdpError::Malformed(d) => format!("Malformed SDP: {d}"),
            SdpError::NoAudio => "No Audio Stream in SDP".to_owned(),
            SdpError::NoCommonCodec => "No Common Codec".to_owned(),
            SdpError::UnsupportedTransport(t) => format!("Unsupported Media Transport {t}"),
            SdpError::Unsupported(d) => format!("Unsupported SDP: {d}"),
            SdpError::NotEnoughPorts { .. } => "Media Relay Error".to_owned(),
        };
        sanitize(&text)
    }

    /// Maps an error of the `sdp` crate's parser to a readable reason.
    pub(crate) fn from_parser(e: &::sdp::Error) -> Self {
        use ::sdp::Error as E;
        let detail = match e {
            E::SdpInvalidSyntax(s) => format!("unexpected or misplaced line {s}"),
            E::SdpInvalidValue(v) => format!("invalid value {v}"),
            E::ParseInt(_) => "bad number".to_owned(),
            E::ParseUrl(_) => "bad u= URI".to_owned(),
            E::Io(_) | E::Utf8(_) => "unreadable text".to_owned(),
            E::SdpEmptyTimeDescription => "line before any m= or t=".to_owned(),
            other => other.to_string(),
        };
        SdpError::Malformed(detail)
    }
}

/// Keeps printable ASCII, collapses everything else to spaces, trims, and cuts to
/// [`MAX_REASON`] characters.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_REASON));
    for c in text.chars() {
        if out.len() >= MAX_REASON {
            break;
        }
        let c = if c.is_ascii_graphic() { c } else { ' ' };
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(c);
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_one_clean_line() {
        let e = SdpError::malformed("bad\r\nline \u{7f}\u{e9} x".repeat(20));
        let r = e.reason_phrase();
        assert!(r.len() <= MAX_REASON);
        assert!(r.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(r.starts_with("Malformed SDP: bad line"));
        assert_eq!(e.status_code(), 400);
    }

    #[test]
    fn classes() {
        assert_eq!(SdpError::NoCommonCodec.status_code(), 488);
        assert_eq!(SdpError::NoAudio.status_code(), 488);
        assert_eq!(
            SdpError::UnsupportedTransport("RTP/SAVP".into()).status_code(),
            488
        );
        assert_eq!(
            SdpError::NotEnoughPorts {
                needed: 2,
                given: 1
            }
            .status_code(),
            500
        );
        assert_eq!(SdpError::NoCommonCodec.reason_phrase(), "No Common Codec");
    }
}
