//! The ACK a client INVITE transaction sends for a non-2xx final (§17.1.1.3).
//!
//! Only the parts of the INVITE the ACK copies are kept, not the whole INVITE with its
//! body: the transaction may wait in Proceeding for minutes while a phone rings.

use crate::message::{MessageError, SipHeaders};
use rsip::headers::UntypedHeader;
use rsip::message::HeadersExt;
use rsip::{Header, Method, Request, Response, Uri, Version};

#[derive(Clone, Debug)]
pub(crate) struct AckTemplate {
    uri: Uri,
    /// The INVITE's top Via only: the ACK goes where the INVITE went, on its branch.
    via: Header,
    max_forwards: Header,
    /// The INVITE's Route set, in order: the ACK must follow the INVITE's path.
    routes: Vec<Header>,
    from: Header,
    call_id: Header,
    /// The INVITE's CSeq number with method ACK.
    cseq: Header,
}

impl AckTemplate {
    pub fn from_invite(req: &Request) -> Result<Self, MessageError> {
        let (seq, _) = req.cseq()?;
        let via = req
            .via_header()
            .map_err(|_| MessageError::Missing("Via"))?
            .clone();
        let from = req
            .from_header()
            .map_err(|_| MessageError::Missing("From"))?
            .clone();
        let call_id = req
            .call_id_header()
            .map_err(|_| MessageError::Missing("Call-ID"))?
            .clone();
        let max_forwards = req
            .headers
            .iter()
            .find(|h| matches!(h, Header::MaxForwards(_)))
            .cloned()
            .unwrap_or_else(|| Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        let routes = req
            .headers
            .iter()
            .filter(|h| matches!(h, Header::Route(_)))
            .cloned()
            .collect();
        Ok(Self {
            uri: req.uri.clone(),
            via: Header::Via(via),
            max_forwards,
            routes,
            from: Header::From(from),
            call_id: Header::CallId(call_id),
            cseq: Header::CSeq(rsip::headers::CSeq::new(format!("{seq} {}", Method::Ack))),
        })
    }

    /// The ACK for `resp`: its To (with the tag the UAS chose) is the only part taken from
    /// the response.
    pub fn ack_for(&self, resp: &Response) -> Request {
        let mut headers = rsip::Headers::default();
        headers.push(self.via.clone());
        headers.push(self.max_forwards.clone());
        for route in &self.routes {
            headers.push(route.clone());
        }
        headers.push(self.from.clone());
        if let Ok(to) = resp.to_header() {
            headers.push(Header::To(to.clone()));
        }
        headers.push(self.call_id.clone());
        headers.push(self.cseq.clone());
        Request {
            method: Method::Ack,
            uri: self.uri.clone(),
            version: Version::V2,
            headers,
            body: Vec::new(),
        }
    }
}
