//! The dialog identifier (RFC 3261 §12): Call-ID plus both tags, seen from our side.

use super::DialogError;
use crate::ids::{CallId, Tag};
use crate::message::SipHeaders;
use rsip::{Request, Response, SipMessage};
use std::fmt;

/// Which dialog a message belongs to. The tags are named from our point of view, so the
/// same dialog has the same id whether we sent or received the message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: CallId,
    pub local_tag: Tag,
    pub remote_tag: Tag,
}

impl DialogId {
    /// A request we received: the peer's tag is in From, ours in To (§12.2.2). A request
    /// without a To tag is outside any dialog.
    pub fn from_incoming_request(req: &Request) -> Result<Self, DialogError> {
        Ok(Self {
            call_id: req.call_id()?,
            local_tag: req.to_tag()?.ok_or(DialogError::MissingTag("To"))?,
            remote_tag: req.from_tag()?.ok_or(DialogError::MissingTag("From"))?,
        })
    }

    /// A response we received to a request we sent: our tag is in From, the peer's in To.
    pub fn from_incoming_response(resp: &Response) -> Result<Self, DialogError> {
        Ok(Self {
            call_id: resp.call_id()?,
            local_tag: resp.from_tag()?.ok_or(DialogError::MissingTag("From"))?,
            remote_tag: resp.to_tag()?.ok_or(DialogError::MissingTag("To"))?,
        })
    }

    /// Either of the above, by the kind of message.
    pub fn from_incoming(msg: &SipMessage) -> Result<Self, DialogError> {
        match msg {
            SipMessage::Request(req) => Self::from_incoming_request(req),
            SipMessage::Response(resp) => Self::from_incoming_response(resp),
        }
    }
}

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};local={};remote={}", self.call_id, self.local_tag, self.remote_tag)
    }
}
