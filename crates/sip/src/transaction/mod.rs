//! The RFC 3261 §17 transaction layer, with the RFC 6026 "Accepted" states.
//!
//! Sans-IO: [`TransactionLayer`] takes messages and the time in (`handle_request`,
//! `handle_response`, `handle_timeout`) and gives transmits, events and its next deadline
//! out (`poll_transmit`, `poll_event`, `poll_timeout`). It reads no clock and owns no
//! socket, so every RFC timer can be tested in simulated time.
//!
//! Layout: one file per state machine (client/server × INVITE/non-INVITE), each a pure
//! struct that knows nothing of matching or other transactions; `layer` owns them all,
//! matches messages to them (§17.1.3, §17.2.3) and keeps one deadline heap for all timers.

mod ack;
mod client;
mod client_invite;
mod client_non_invite;
mod config;
mod error;
mod event;
mod id;
mod key;
mod layer;
mod machine;
mod server;
mod server_invite;
mod server_non_invite;
mod timers;

#[cfg(test)]
mod tests;

pub use config::TimerConfig;
pub use error::TxError;
pub use event::{Incoming, ResponseEvent, StatelessMessage, TxEvent};
pub use id::{ClientTxId, ServerTxId};
pub use layer::TransactionLayer;
pub use machine::TxState;
