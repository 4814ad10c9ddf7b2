//! Audio codecs the PBX decodes (to record) and the softphone encodes: G.711 µ-law and
//! A-law, G.722, Opus. [`Decoder`] and [`Encoder`] pick the codec from an SDP payload
//! format.

pub mod g711;
pub mod g722;
pub mod opus;

pub use g722::{G722Decoder, G722Encoder};
pub use opus::{OpusDecoder, OpusEncoder};

use crate::sdp::{PayloadFormat, SupportedCodec};

/// Codec errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("no decoder for payload type {0}")]
    UnknownPayloadType(u8),
    #[error("unsupported codec {0}")]
    Unsupported(String),
    #[error("opus: {0}")]
    Opus(String),
}

/// An audio codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

impl AudioCodec {
    /// From an SDP payload format (by rtpmap name and rate, or static PT).
    pub fn from_format(f: &PayloadFormat) -> Option<Self> {
        match f.codec()? {
            SupportedCodec::Pcmu => Some(AudioCodec::Pcmu),
            SupportedCodec::Pcma => Some(AudioCodec::Pcma),
            SupportedCodec::G722 => Some(AudioCodec::G722),
            SupportedCodec::Opus => Some(AudioCodec::Opus),
            SupportedCodec::TelephoneEvent | SupportedCodec::H264 => None,
        }
    }

    /// Rate of the decoded PCM.
    pub fn sample_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
            AudioCodec::G722 => 16_000,
            AudioCodec::Opus => opus::OPUS_RATE,
        }
    }

    /// RTP timestamp clock rate (G.722: 8000, RFC 3551).
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma | AudioCodec::G722 => 8_000,
            AudioCodec::Opus => opus::OPUS_RATE,
        }
    }

    /// The static payload type, if it has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            AudioCodec::Pcmu => Some(0),
            AudioCodec::Pcma => Some(8),
            AudioCodec::G722 => Some(9),
            AudioCodec::Opus => None,
        }
    }
}

/// A decoder for one stream.
#[derive(Debug)]
pub enum Decoder {
    Pcmu,
    Pcma,
    G722(Box<G722Decoder>),
    Opus(OpusDecoder),
}

impl Decoder {
    pub fn new(codec: AudioCodec) -> Result<Self, CodecError> {
        Ok(match codec {
            AudioCodec::Pcmu => Decoder::Pcmu,
            AudioCodec::Pcma => Decoder::Pcma,
            AudioCodec::G722 => Decoder::G722(Box::default()),
            AudioCodec::Opus => Decoder::Opus(OpusDecoder::new()?),
        })
    }

    /// A decoder for an SDP payload format.
    pub fn for_format(f: &PayloadFormat) -> Result<Self, CodecError> {
        let codec = AudioCodec::from_format(f).ok_or_else(|| {
            CodecError::Unsupported(format!("{}/{} (PT {})", f.name, f.clock_rate, f.pt))
        })?;
        Self::new(codec)
    }

    /// A decoder for payload type `pt` among a media section's `formats`.
    pub fn for_payload_type(pt: u8, formats: &[PayloadFormat]) -> Result<Self, CodecError> {
        let f = formats
            .iter()
            .find(|f| f.pt == pt)
            .ok_or(CodecError::UnknownPayloadType(pt))?;
        Self::for_format(f)
    }

    pub fn codec(&self) -> AudioCodec {
        match self {
            Decoder::Pcmu => AudioCodec::Pcmu,
            Decoder::Pcma => AudioCodec::Pcma,
            Decoder::G722(_) => AudioCodec::G722,
            Decoder::Opus(_) => AudioCodec::Opus,
        }
    }

    pub fn sample_rate(&self) -> u32 {
        self.codec().sample_rate()
    }

    /// Decodes one RTP payload, appending mono PCM at [`Decoder::sample_rate`] to `out`;
    /// returns the number of samples appended.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        match self {
            Decoder::Pcmu => g711::decode_ulaw(payload, out),
            Decoder::Pcma => g711::decode_alaw(payload, out),
            Decoder::G722(d) => d.decode(payload, out),
            Decoder::Opus(d) => {
                d.decode(payload, out)?;
            }
        }
        Ok(out.len() - start)
    }
}

/// An encoder for one stream.
#[derive(Debug)]
pub enum Encoder {
    Pcmu,
    Pcma,
    G722(Box<G722Encoder>),
    Opus(OpusEncoder),
}

impl Encoder {
    pub fn new(codec: AudioCodec) -> Result<Self, CodecError> {
        Ok(match codec {
            AudioCodec::Pcmu => Encoder::Pcmu,
            AudioCodec::Pcma => Encoder::Pcma,
            AudioCodec::G722 => Encoder::G722(Box::default()),
            AudioCodec::Opus => Encoder::Opus(OpusEncoder::new()?),
        })
    }

    pub fn codec(&self) -> AudioCodec {
        match self {
            Encoder::Pcmu => AudioCodec::Pcmu,
            Encoder::Pcma => AudioCodec::Pcma,
            Encoder::G722(_) => AudioCodec::G722,
            Encoder::Opus(_) => AudioCodec::Opus,
        }
    }

    /// Encodes one frame of mono PCM at the codec's sample rate, appending the payload to
    /// `out`; returns its length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        let start = out.len();
        match self {
            Encoder::Pcmu => g711::encode_ulaw(pcm, out),
            Encoder::Pcma => g711::encode_alaw(pcm, out),
            Encoder::G722(e) => e.encode(pcm, out),
            Encoder::Opus(e) => {
                e.encode(pcm, out)?;
            }
        }
        Ok(out.len() - start)
    }
}
