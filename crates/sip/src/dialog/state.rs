//! The dialog itself: its state, how it is created (§12.1), and what it exposes. The
//! messages that move it later are handled in `receive`.

use super::headers;
use super::{DialogError, DialogId};
use crate::ids::Tag;
use crate::message::SipHeaders;
use rsip::{Method, Request, Response, SipMessage, Uri};

/// Where a dialog is in its life (RFC 3261 §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DialogState {
    /// Created by a provisional response with a To tag; the INVITE may still fail.
    Early,
    /// A 2xx was sent or received.
    Confirmed,
    /// Ended by BYE, a failed INVITE, or a 481/408; nothing more is sent in it.
    Terminated,
}

/// One SIP dialog, seen from our side: a plain value updated by the messages the caller
/// hands it. It sends nothing and reads no clock; transactions carry its requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    pub(super) id: DialogId,
    pub(super) state: DialogState,
    /// Our party exactly as it goes into From of our requests, our tag included.
    pub(super) local: rsip::typed::From,
    /// The peer's party as it goes into To of our requests, its tag included.
    pub(super) remote: rsip::typed::To,
    /// The CSeq number our next request takes.
    pub(super) next_local_cseq: u32,
    /// The highest CSeq number seen from the peer; None until it sends a request.
    pub(super) remote_cseq: Option<u32>,
    /// Proxies our requests traverse, nearest first.
    pub(super) route_set: Vec<Uri>,
    /// Where the peer wants in-dialog requests sent: its latest Contact.
    pub(super) remote_target: Uri,
    /// Our Contact, sent in target refresh requests.
    pub(super) local_contact: rsip::typed::Contact,
    pub(super) secure: bool,
}

/// RFC 3261 §12.1 (INVITE), RFC 6665 (SUBSCRIBE), RFC 3515 (REFER).
fn creates_dialog(method: Method) -> bool {
    matches!(method, Method::Invite | Method::Subscribe | Method::Refer)
}

impl Dialog {
    /// The UAC's dialog (§12.1.2), from a request we sent and a response we received:
    /// a 101–199 with a To tag makes an early dialog, a 2xx a confirmed one. Each
    /// forked response with a new To tag makes a dialog of its own.
    pub fn uac(request: &Request, response: &Response) -> Result<Dialog, DialogError> {
        if !creates_dialog(request.method) {
            return Err(DialogError::NotDialogCreatingMethod(request.method));
        }
        let code = response.status_code.code();
        let state = match code {
            101..=199 => DialogState::Early,
            200..=299 => DialogState::Confirmed,
            _ => return Err(DialogError::NotDialogCreatingResponse(code)),
        };
        let (seq, _) = request.cseq()?;
        let answers_request = response.call_id()? == request.call_id()?
            && response.cseq()? == request.cseq()?
            && response.from_tag()? == request.from_tag()?;
        if !answers_request {
            return Err(DialogError::ResponseMismatch);
        }
        let id = DialogId::from_incoming_response(response)?;
        let mut route_set = headers::record_route(&response.headers)?;
        route_set.reverse();
        let remote_target = match headers::contact(&response.headers)? {
            Some(contact) => contact.uri,
            // Many 180s carry no Contact. Until a response names the peer, in-dialog
            // requests (an UPDATE, a BYE) go where the INVITE went.
            None if state == DialogState::Early => request.uri.clone(),
            None => return Err(DialogError::MissingContact),
        };
        let local_contact = headers::contact(&request.headers)?.ok_or(DialogError::MissingContact)?;
        Ok(Dialog {
            local: headers::from_party(&request.headers)?,
            remote: headers::to_party(&response.headers)?,
            id,
            state,
            // Saturating: a CSeq this high breaks the peer's ordering check, but must
            // not panic us (§8.1.1.5 keeps it below 2**31 anyway).
            next_local_cseq: seq.saturating_add(1),
            remote_cseq: None,
            route_set,
            remote_target,
            local_contact,
            secure: headers::is_secure(request),
        })
    }

    /// The UAS's dialog (§12.1.1), made when we answer a dialog-creating request with a
    /// 101–199 or 2xx carrying `local_tag`. It starts early; call [`Dialog::confirm`]
    /// once the 2xx is sent. `local_contact` is the Contact that response carries.
    pub fn uas(request: &Request, local_tag: &Tag, local_contact: rsip::typed::Contact) -> Result<Dialog, DialogError> {
        if !creates_dialog(request.method) {
            return Err(DialogError::NotDialogCreatingMethod(request.method));
        }
        if request.to_tag()?.is_some() {
            return Err(DialogError::AlreadyInDialog);
        }
        let remote_tag = request.from_tag()?.ok_or(DialogError::MissingTag("From"))?;
        let (seq, _) = request.cseq()?;
        let remote_target = headers::contact(&request.headers)?.ok_or(DialogError::MissingContact)?.uri;
        let local = headers::to_as_from(headers::to_party(&request.headers)?)
            .with_tag(rsip::param::Tag::new(local_tag.as_str()));
        Ok(Dialog {
            id: DialogId { call_id: request.call_id()?, local_tag: local_tag.clone(), remote_tag },
            state: DialogState::Early,
            local,
            remote: headers::from_as_to(headers::from_party(&request.headers)?),
            // §12.1.1 leaves the UAS's local sequence empty; §8.1.1.5 lets the first
            // request pick any number below 2**31, and 1 keeps traces readable.
            next_local_cseq: 1,
            remote_cseq: Some(seq),
            route_set: headers::record_route(&request.headers)?,
            remote_target,
            local_contact,
            secure: headers::is_secure(request),
        })
    }

    pub fn id(&self) -> &DialogId {
        &self.id
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Our URI (From of our requests).
    pub fn local_uri(&self) -> &Uri {
        &self.local.uri
    }

    /// The peer's URI (To of our requests).
    pub fn remote_uri(&self) -> &Uri {
        &self.remote.uri
    }

    /// The CSeq number the next request from [`Dialog::create_request`] will carry.
    pub fn local_cseq(&self) -> u32 {
        self.next_local_cseq
    }

    /// The last CSeq number the peer used; None until it sent a request in the dialog.
    pub fn remote_cseq(&self) -> Option<u32> {
        self.remote_cseq
    }

    /// Proxies in-dialog requests traverse, nearest first.
    pub fn route_set(&self) -> &[Uri] {
        &self.route_set
    }

    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    pub fn local_contact(&self) -> &rsip::typed::Contact {
        &self.local_contact
    }

    /// Our address changed: the next target refresh request tells the peer.
    pub fn set_local_contact(&mut self, contact: rsip::typed::Contact) {
        self.local_contact = contact;
    }

    /// SIPS over TLS end to end; requests in the dialog must keep to TLS (§12.1).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Whether a received message carries this dialog's Call-ID and tags.
    pub fn matches(&self, msg: &SipMessage) -> bool {
        DialogId::from_incoming(msg).is_ok_and(|id| id == self.id)
    }

    /// The UAS sent its 2xx: the early dialog is confirmed.
    pub fn confirm(&mut self) {
        if self.state == DialogState::Early {
            self.state = DialogState::Confirmed;
        }
    }

    /// Ends the dialog: the INVITE failed or timed out, a BYE got no answer, or the
    /// session is over by the caller's decision.
    pub fn terminate(&mut self) {
        self.state = DialogState::Terminated;
    }
}
