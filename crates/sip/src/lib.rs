//! hark-sip: the SIP stack under Hark's PBX and softphone.
//!
//! Sans-IO at its core: parsing, transactions, dialogs and digest auth are plain values
//! driven with `handle_*(now, input)` and drained with `poll_*()`. Only `transport`
//! touches sockets (tokio).

pub mod auth;
pub mod dialog;
pub mod ids;
pub mod message;
pub mod nameaddr;
pub mod parse;
pub mod serialize;
pub mod transaction;
pub mod transport;

pub use ids::{Branch, CallId, Tag};
pub use message::{response_to, status, SipHeaders};
pub use nameaddr::NameAddr;
pub use parse::{parse_datagram, Framing, Limits, ParseError};
pub use serialize::encode;

// The message model is rsip's; re-exported so users need not pin it themselves.
pub use rsip;
