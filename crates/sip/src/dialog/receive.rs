//! Received in-dialog messages moving the dialog: requests (§12.2.2) and responses to
//! our requests (§12.2.1.2, §13.2.2.4, §15).

use super::headers::{self, is_target_refresh};
use super::{Dialog, DialogError, DialogId, DialogState};
use crate::message::SipHeaders;
use rsip::{Method, Request, Response};

impl Dialog {
    /// A request the peer sent in this dialog (§12.2.2). Errors tell the caller what to
    /// answer: `CSeqOutOfOrder` → 500, `NotThisDialog`/`Terminated` → 481,
    /// `BadHeader`/`Message` → 400. On error the dialog is unchanged.
    pub fn handle_request(&mut self, req: &Request) -> Result<(), DialogError> {
        if DialogId::from_incoming_request(req)? != self.id {
            return Err(DialogError::NotThisDialog);
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        // ACK and CANCEL reuse the CSeq of the INVITE they belong to and are never
        // answered in the dialog, so they neither pass nor fail the order check: a late
        // ACK for a re-INVITE is still welcome after a newer INFO.
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let (seq, _) = req.cseq()?;
        if let Some(last) = self.remote_cseq.filter(|&last| seq < last) {
            return Err(DialogError::CSeqOutOfOrder { received: seq, last });
        }
        // Read the new target before changing anything, so a bad Contact leaves the
        // dialog as it was.
        let new_target =
            if is_target_refresh(req.method) { headers::contact(&req.headers)?.map(|c| c.uri) } else { None };
        self.remote_cseq = Some(seq);
        if let Some(target) = new_target {
            self.remote_target = target;
        }
        if req.method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        Ok(())
    }

    /// A response to a request we sent in this dialog (§12.2.1.2, §13.2.2.4): a 2xx to
    /// the INVITE confirms an early dialog and fixes its route set; a 2xx to a target
    /// refresh request moves the remote target; a failed INVITE in an early dialog, a
    /// final answer to BYE (but a challenge), a 481 or a 408 terminate it.
    ///
    /// A non-2xx final response to the initial INVITE may carry another To tag than an
    /// early dialog's (forking): call [`Dialog::terminate`] on every early dialog of that
    /// INVITE instead of relying on this.
    pub fn handle_response(&mut self, resp: &Response) -> Result<(), DialogError> {
        if DialogId::from_incoming_response(resp)? != self.id {
            return Err(DialogError::NotThisDialog);
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let (_, method) = resp.cseq()?;
        let code = resp.status_code.code();
        let early_invite = self.state == DialogState::Early && method == Method::Invite;
        match code {
            100..=299 => {
                let contact = headers::contact(&resp.headers)?;
                if early_invite && code >= 200 {
                    let mut route_set = headers::record_route(&resp.headers)?;
                    route_set.reverse();
                    self.route_set = route_set;
                    self.state = DialogState::Confirmed;
                }
                // In an early dialog, later provisionals may name the target a Contact-less
                // 180 did not.
                let refreshes = early_invite || (code >= 200 && is_target_refresh(method));
                if let Some(contact) = contact.filter(|_| refreshes) {
                    self.remote_target = contact.uri;
                }
                if method == Method::Bye && code >= 200 {
                    self.state = DialogState::Terminated;
                }
            }
            _ => {
                let challenged = matches!(code, 401 | 407);
                if early_invite || code == 481 || code == 408 || (method == Method::Bye && !challenged) {
                    self.state = DialogState::Terminated;
                }
            }
        }
        Ok(())
    }
}
