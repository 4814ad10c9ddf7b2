//! hark-media: the media half of Hark.
//!
//! - [`sdp`]: SDP offer/answer on the webrtc-rs `sdp` model — parse with typed errors that
//!   map to SIP 400/488, list media sections, keep only codecs the PBX can decode, and
//!   anchor a description on the relay's address and ports.
//! - [`relay`]: a sans-IO [`MediaRelay`] for one call (symmetric RTP latching, early media,
//!   RTCP and RFC 4733 relayed, dead-call detection), and its tokio edge
//!   ([`relay::task`]): a port pool over `--rtp-ports` and one task per call.
//! - [`packet`]: allocation-free RTP/RTCP header peeks for the relay path, the webrtc-rs
//!   `rtp`/`rtcp` parsers for everything else, RFC 4733 events.
//! - [`codec`]: G.711 µ-law/A-law, G.722 (SB-ADPCM, 64 kbit/s) and Opus (libopus).
//! - [`analysis`]: Goertzel tone power, dominant frequency, WAV reading for tests.
//!
//! Nothing here reads a clock or owns a socket except `relay::task`: time comes in as
//! `now: Instant`, packets as byte slices.

pub mod analysis;
pub mod codec;
pub mod dtmf;
pub mod packet;
pub mod relay;
pub mod sdp;

/// The webrtc-rs RTCP crate, re-exported so every crate builds reports with one version.
pub use rtcp;
mod types;

pub use relay::{
    DropReason, LegStats, MediaRelay, PacketKind, RelayAction, RelayConfig, RelayEvent, RelayStats,
    Side,
};
pub use sdp::{Direction, MediaKind, MediaSection, PayloadFormat, Sdp, SdpError, SupportedCodec};
pub use types::{ExtSeq, ExtTimestamp, Seq, SeqExtender, Ssrc, TimestampExtender};
