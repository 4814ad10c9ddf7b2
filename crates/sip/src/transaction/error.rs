//! Errors the TU can get back from the transaction layer.

use crate::message::MessageError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// A request must carry a top Via with a branch before it becomes a client transaction.
    #[error("request has no top Via branch")]
    MissingBranch,
    /// ACKs are not transactions (§17): the client INVITE transaction sends the ACK for
    /// non-2xx finals itself; the TU sends a 2xx's ACK with `send_stateless`.
    #[error("ACK is sent statelessly, not as a client transaction")]
    AckIsStateless,
    /// A client transaction with this branch and method is still alive.
    #[error("a client transaction with this branch and method already exists")]
    DuplicateBranch,
    /// The transaction ended (or never existed); its id is stale.
    #[error("no such transaction")]
    UnknownTransaction,
    /// The server transaction already sent its final response: only retransmitted 2xx to an
    /// INVITE (RFC 6026 "Accepted") may follow one.
    #[error("final response already sent; cannot send {status}")]
    FinalAlreadySent { status: u16 },
    #[error(transparent)]
    Message(#[from] MessageError),
}
