//! Why a message could not create, update or be sent within a dialog.

use crate::message::MessageError;
use rsip::Method;

/// Errors of the dialog layer. Each says which response (if any) the caller owes the
/// peer: the dialog itself never answers, it only decides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A mandatory header is missing or unreadable (answer 400).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A header the dialog needs could not be parsed (answer 400).
    #[error("malformed {0} header")]
    BadHeader(&'static str),
    /// The From or To tag that identifies the dialog is absent.
    #[error("missing {0} tag")]
    MissingTag(&'static str),
    /// The message that should name the remote target has no Contact (answer 400).
    #[error("missing Contact header")]
    MissingContact,
    /// A request with a To tag already belongs to a dialog and cannot create one.
    #[error("the request already carries a To tag")]
    AlreadyInDialog,
    /// The response cannot create a dialog: a 100, or a final non-2xx.
    #[error("a {0} response does not create a dialog")]
    NotDialogCreatingResponse(u16),
    /// The request method does not create dialogs (RFC 3261 §12.1: INVITE; RFC 6665:
    /// SUBSCRIBE; RFC 3515: REFER).
    #[error("{0} does not create a dialog")]
    NotDialogCreatingMethod(Method),
    /// The response does not answer the request it was paired with (Call-ID, CSeq or
    /// From tag differ).
    #[error("the response does not belong to the request")]
    ResponseMismatch,
    /// The message carries another dialog's identifiers (answer 481).
    #[error("the message belongs to another dialog")]
    NotThisDialog,
    /// RFC 3261 §12.2.2: a request older than the last one seen (answer 500).
    #[error("CSeq {received} is lower than the last remote CSeq {last}")]
    CSeqOutOfOrder { received: u32, last: u32 },
    /// The dialog has ended; nothing more is sent or accepted in it (answer 481).
    #[error("the dialog is terminated")]
    Terminated,
    /// ACK for a 2xx and CANCEL reuse an existing CSeq; build them with
    /// `Dialog::ack_for_2xx` or from the INVITE's client transaction.
    #[error("{0} does not take a new CSeq in a dialog")]
    NoNewCSeq(Method),
}
