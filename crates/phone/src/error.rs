//! Errors of the engine's commands. Failures of the network or the peer are events
//! (`PhoneEvent`), never these.

use crate::event::CallHandle;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("no such call: {0}")]
    NoSuchCall(CallHandle),
    #[error("the call is not in a state that allows this ({0})")]
    WrongState(&'static str),
    #[error("invalid target {0:?}: give an extension or a sip: URI")]
    BadTarget(String),
    #[error("could not build the request: {0}")]
    Build(String),
    #[error("could not send: {0}")]
    Send(String),
}
