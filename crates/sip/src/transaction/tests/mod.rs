//! Transaction tests, all in simulated time: one `Instant::now()` plus Durations.

mod support;

mod client_invite;
mod client_non_invite;
mod layer;
mod load;
mod rfc2543;
mod server_invite;
mod server_non_invite;
