//! Matching keys: which transaction a message belongs to (§17.1.3, §17.2.3).
//!
//! A key is computed once per message. Its text lives behind an `Arc<str>` so that the
//! index and the transaction share one allocation.

use crate::ids::MAGIC_COOKIE;
use crate::message::{MessageError, SipHeaders};
use rsip::{Method, Request, Response};
use std::fmt::Write;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// `rsip::Method` has no `Hash`; its variants carry no data, so the discriminant is the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MethodKey(pub Method);

impl Hash for MethodKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(&self.0).hash(state);
    }
}

/// §17.2.3: a server transaction is named by its request's top-Via branch, sent-by and
/// method (ACK and CANCEL look up the INVITE's). Requests whose branch lacks the magic
/// cookie (RFC 2543 peers) are named by Request-URI, tags, Call-ID, CSeq and top Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ServerKey {
    method: MethodKey,
    rfc2543: bool,
    text: Arc<str>,
}

impl ServerKey {
    /// The key of the `method` transaction `req` belongs to: `req.method` for the request
    /// itself, INVITE for an ACK, INVITE for the transaction a CANCEL targets.
    pub fn of_request(req: &Request, method: Method) -> Result<Self, MessageError> {
        let via = req.top_via()?;
        let branch = via.branch().map(|b| b.to_string());
        let sent_by = via.uri.host_with_port.to_string();
        let method = MethodKey(method);
        match branch.as_deref() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => {
                // Tokens and host names compare case-insensitively (§7.3.1, §19.1.4).
                let mut text = format!("{b}\n{sent_by}");
                text.make_ascii_lowercase();
                Ok(Self {
                    method,
                    rfc2543: false,
                    text: text.into(),
                })
            }
            _ => {
                let text = Self::rfc2543_text(req, method.0, &via, branch.as_deref())?;
                Ok(Self {
                    method,
                    rfc2543: true,
                    text: text.into(),
                })
            }
        }
    }

    /// §17.2.3's fallback. The To tag is left out of INVITE keys: an INVITE and its ACK
    /// differ exactly there (the ACK carries the tag of our response), and a CANCEL copies
    /// the INVITE's, so the rest identifies the INVITE alone.
    fn rfc2543_text(
        req: &Request,
        method: Method,
        via: &rsip::typed::Via,
        branch: Option<&str>,
    ) -> Result<String, MessageError> {
        let (seq, _) = req.cseq()?;
        let mut text = String::with_capacity(160);
        let _ = write!(
            text,
            "{}\n{}\n{}\n{seq}\n{}/{}",
            req.uri,
            req.from_tag()?.as_ref().map_or("", |t| t.as_str()),
            req.call_id()?,
            via.transport,
            via.uri.host_with_port,
        );
        if let Some(b) = branch {
            let _ = write!(text, ";branch={b}");
        }
        if method != Method::Invite {
            let _ = write!(
                text,
                "\n{}",
                req.to_tag()?.as_ref().map_or("", |t| t.as_str())
            );
        }
        Ok(text)
    }

    pub fn method(&self) -> Method {
        self.method.0
    }
}

/// §17.1.3: a response belongs to the client transaction whose request had the same top
/// Via branch and the same CSeq method (CANCEL shares the INVITE's branch).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    method: MethodKey,
    branch: Arc<str>,
}

impl ClientKey {
    /// None when the request's top Via has no branch.
    pub fn of_request(req: &Request) -> Result<Option<Self>, MessageError> {
        Ok(req.branch()?.map(|b| Self::new(req.method, b.as_str())))
    }

    pub fn of_response(resp: &Response) -> Result<Option<Self>, MessageError> {
        let (_, method) = resp.cseq()?;
        Ok(resp.branch()?.map(|b| Self::new(method, b.as_str())))
    }

    fn new(method: Method, branch: &str) -> Self {
        Self {
            method: MethodKey(method),
            branch: branch.to_ascii_lowercase().into(),
        }
    }
}
