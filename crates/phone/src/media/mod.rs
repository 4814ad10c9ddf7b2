//! The sans-IO media of one call: RTP out (audio frames and RFC 4733 events), RTP in
//! through a jitter buffer, decoding with packet-loss concealment. The driver calls
//! [`MediaSession::send_frame`] and [`MediaSession::play_frame`] once per 20 ms tick and
//! [`MediaSession::receive`] for each datagram; [`Rtcp`] reports on the stream.

mod dtmf_sender;
mod jitter;
mod plc;
mod rtcp;
mod rtp_out;
mod session;

pub use dtmf_sender::DtmfSender;
pub use jitter::{JitterBuffer, Playout};
pub use plc::Concealer;
pub use rtcp::{PeerView, Rtcp, SenderCounts};
pub use rtp_out::RtpSender;
pub use session::{MediaSession, MediaStats};

/// The media clock's tick.
pub const FRAME_MS: u32 = 20;
