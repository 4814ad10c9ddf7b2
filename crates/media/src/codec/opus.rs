//! Opus through libopus (the `opus` crate). RTP Opus is always opus/48000/2 in SDP
//! (RFC 7587); the stream itself may be mono or stereo. The PBX decodes to mono 48 kHz
//! (libopus down-mixes stereo streams).

use super::CodecError;

/// Decoded sample rate.
pub const OPUS_RATE: u32 = 48_000;
/// Longest Opus packet duration: 120 ms at 48 kHz.
const MAX_FRAME: usize = 5_760;

fn err(e: ::opus::Error) -> CodecError {
    CodecError::Opus(e.to_string())
}

/// Mono 48 kHz Opus decoder.
pub struct OpusDecoder {
    inner: ::opus::Decoder,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusDecoder")
    }
}

impl OpusDecoder {
    pub fn new() -> Result<Self, CodecError> {
        let inner = ::opus::Decoder::new(OPUS_RATE, ::opus::Channels::Mono).map_err(err)?;
        Ok(OpusDecoder { inner })
    }

    /// Decodes one packet, appending its samples to `out`. An empty payload asks libopus
    /// for packet-loss concealment of one 20 ms frame.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        out.resize(start + MAX_FRAME, 0);
        let result = if payload.is_empty() {
            self.inner.decode(&[], &mut out[start..start + 960], false)
        } else {
            self.inner.decode(payload, &mut out[start..], false)
        };
        match result {
            Ok(n) => {
                out.truncate(start + n);
                Ok(n)
            }
            Err(e) => {
                out.truncate(start);
                Err(err(e))
            }
        }
    }
}

/// Mono 48 kHz Opus encoder (VoIP mode), for the softphone and for tests.
pub struct OpusEncoder {
    inner: ::opus::Encoder,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusEncoder")
    }
}

impl OpusEncoder {
    pub fn new() -> Result<Self, CodecError> {
        let inner =
            ::opus::Encoder::new(OPUS_RATE, ::opus::Channels::Mono, ::opus::Application::Voip)
                .map_err(err)?;
        Ok(OpusEncoder { inner })
    }

    /// Encodes one frame (2.5, 5, 10, 20, 40 or 60 ms of 48 kHz samples: 960 for 20 ms),
    /// appending the packet to `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<usize, CodecError> {
        let start = out.len();
        out.resize(start + 4000, 0);
        match self.inner.encode(pcm, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Ok(n)
            }
            Err(e) => {
                out.truncate(start);
                Err(err(e))
            }
        }
    }
}
