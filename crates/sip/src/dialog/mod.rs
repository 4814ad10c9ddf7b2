//! SIP dialogs (RFC 3261 §12): the peer-to-peer relationship an INVITE, SUBSCRIBE or
//! REFER sets up, and the state every later request in it is built from and checked
//! against — tags, CSeq order, route set, remote target.
//!
//! Sans-IO like the rest of the crate: a [`Dialog`] is a value the caller creates from
//! the messages that establish it, feeds the in-dialog messages it receives
//! ([`Dialog::handle_request`], [`Dialog::handle_response`]) and asks for requests to
//! send ([`Dialog::create_request`], [`Dialog::ack_for_2xx`]). Transactions, timers and
//! sockets are the caller's; so are the responses its errors call for.

mod error;
mod headers;
mod id;
mod receive;
mod request;
mod state;

pub use error::DialogError;
pub use headers::is_target_refresh;
pub use id::DialogId;
pub use request::top_via;
pub use state::{Dialog, DialogState};

#[cfg(test)]
mod tests;
