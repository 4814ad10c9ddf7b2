//! What the transaction layer hands up to the TU, and what the TU may send around it.

use super::id::{ClientTxId, ServerTxId};
use crate::transport::Peer;
use bytes::Bytes;
use rsip::{Request, Response, SipMessage};

/// A request the TU must see, from `handle_request`. Retransmissions and the ACKs of
/// non-2xx finals never show up here: the layer absorbs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A new request; answer it with `send_response(id, …)`. For an INVITE the layer has
    /// already sent 100 Trying.
    Request {
        id: ServerTxId,
        req: Request,
        from: Peer,
    },
    /// An ACK that belongs to no transaction in a state that absorbs it: the ACK for a 2xx,
    /// which the dialog (TU) owns (§13.3.1.4, RFC 6026).
    Ack { req: Request, from: Peer },
    /// A CANCEL that matched server INVITE transaction `invite` while it had not sent a final
    /// response. The layer has already answered the CANCEL with 200; the TU should now answer
    /// the INVITE with 487 (§9.2).
    Cancel {
        invite: ServerTxId,
        req: Request,
        from: Peer,
    },
}

/// A response a client transaction passes up: provisionals, the final, and in RFC 6026's
/// Accepted state every 2xx (retransmissions and forks alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseEvent {
    pub id: ClientTxId,
    pub response: Response,
}

/// Things that happen without a message from the TU or the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxEvent {
    /// Timer B (INVITE) or F (non-INVITE): no final response came; treat it as a 408.
    ClientTimeout { id: ClientTxId },
    /// Timer H: the ACK for our non-2xx final never came.
    ServerTimeout { id: ServerTxId },
    /// The driver reported that this transaction's destination is unreachable (§17.1.1.2,
    /// §17.1.2.2); the transaction has ended. Treat it as a 503.
    TransportError { id: ClientTxId },
}

/// A message for `send_stateless`: either still a message, or bytes the TU encoded once
/// and keeps re-sending (a 2xx's ACK, on every 2xx retransmission).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatelessMessage {
    Message(SipMessage),
    Encoded(Bytes),
}

impl From<SipMessage> for StatelessMessage {
    fn from(msg: SipMessage) -> Self {
        Self::Message(msg)
    }
}

impl From<Request> for StatelessMessage {
    fn from(req: Request) -> Self {
        Self::Message(SipMessage::Request(req))
    }
}

impl From<Response> for StatelessMessage {
    fn from(resp: Response) -> Self {
        Self::Message(SipMessage::Response(resp))
    }
}

impl From<Bytes> for StatelessMessage {
    fn from(bytes: Bytes) -> Self {
        Self::Encoded(bytes)
    }
}
