//! The DTMF module's error type.

/// Errors of the DTMF module. None comes from the per-sample or per-packet paths
/// ([`InbandDetector::push`](super::InbandDetector::push) and
/// [`Rfc4733Tracker::push`](super::Rfc4733Tracker::push) cannot fail): they come from
/// constructors and from SIP INFO bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// The in-band detector runs at 8 000–48 000 Hz.
    #[error("unsupported sample rate {0} Hz for DTMF detection (8000–48000)")]
    UnsupportedRate(u32),
    /// An [`InbandConfig`](super::InbandConfig) field is NaN or infinite.
    #[error("DTMF detector setting {0} is not a finite number")]
    InvalidConfig(&'static str),
    /// The INFO's Content-Type is neither `application/dtmf-relay` nor
    /// `application/dtmf`; the PBX answers 415.
    #[error("unsupported content type for DTMF")]
    UnsupportedContentType,
    /// The body is not UTF-8 text.
    #[error("DTMF body is not UTF-8")]
    NotUtf8,
    /// An `application/dtmf-relay` body without a `Signal=` line.
    #[error("dtmf-relay body has no Signal line")]
    MissingSignal,
    /// An empty `application/dtmf` body.
    #[error("empty DTMF body")]
    EmptyBody,
    /// A signal that is no DTMF key or event code.
    #[error("invalid DTMF signal {0:?}")]
    InvalidSignal(String),
    /// A feature code that is empty, too long, or holds a non-DTMF character.
    #[error("invalid feature code {0:?}")]
    InvalidFeatureCode(String),
    /// Two feature codes are equal, or one is a prefix of another (the shorter one
    /// would always match first).
    #[error("feature codes {0:?} and {1:?} overlap")]
    OverlappingFeatureCodes(String, String),
}
