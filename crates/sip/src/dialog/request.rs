//! Building requests inside a dialog (RFC 3261 §12.2.1.1) and the ACK for a 2xx
//! (§13.2.2.4), including loose and strict routing.

use super::headers::{as_request_uri, carries_contact, is_loose_router};
use super::{Dialog, DialogError, DialogState};
use crate::ids::Branch;
use crate::transport::Transport;
use rsip::{Header, HostWithPort, Method, Param, Request, Uri, UriWithParams, UriWithParamsList};

/// §8.1.1.6: the hop limit a UAC starts a request with.
const MAX_FORWARDS: u32 = 70;

/// The top Via of a request we originate: our transport, the address responses should
/// come back to, and the branch naming the client transaction. `rport` is always asked
/// for (RFC 3581) so answers find us behind NAT; peers that do not know it ignore it.
pub fn top_via(transport: Transport, sent_by: impl Into<HostWithPort>, branch: &Branch) -> rsip::typed::Via {
    let transport = match transport {
        Transport::Udp => rsip::Transport::Udp,
        Transport::Tcp => rsip::Transport::Tcp,
        Transport::Tls => rsip::Transport::Tls,
    };
    rsip::typed::Via {
        version: rsip::Version::V2,
        transport,
        uri: Uri::from(sent_by.into()),
        params: vec![Param::Branch(rsip::param::Branch::new(branch.as_str())), Param::Other("rport".into(), None)],
    }
}

impl Dialog {
    /// A new request in the dialog, taking the next local CSeq. `via` is the top Via
    /// (see [`top_via`]); its branch names the client transaction the caller starts.
    /// The request has no body; the caller adds one (and Content-Type) and any
    /// credentials. ACK and CANCEL are refused: they reuse the INVITE's CSeq.
    pub fn create_request(&mut self, method: Method, via: rsip::typed::Via) -> Result<Request, DialogError> {
        if matches!(method, Method::Ack | Method::Cancel) {
            return Err(DialogError::NoNewCSeq(method));
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let seq = self.next_local_cseq;
        self.next_local_cseq = seq.saturating_add(1);
        Ok(self.build(method, seq, via, carries_contact(method)))
    }

    /// The ACK for a 2xx to the INVITE with CSeq number `invite_cseq` (§13.2.2.4): a
    /// request of the dialog, but with the INVITE's CSeq number and its own transaction
    /// (a new branch in `via`). Built even in a terminated dialog, because a 2xx must
    /// be acknowledged before the BYE that ends an unwanted call.
    pub fn ack_for_2xx(&self, invite_cseq: u32, via: rsip::typed::Via) -> Request {
        self.build(Method::Ack, invite_cseq, via, false)
    }

    fn build(&self, method: Method, seq: u32, via: rsip::typed::Via, with_contact: bool) -> Request {
        let (uri, routes) = self.request_uri_and_routes();
        let mut headers = rsip::Headers::default();
        headers.push(via.into());
        headers.push(Header::MaxForwards(MAX_FORWARDS.into()));
        for route in routes {
            let value = UriWithParamsList(vec![UriWithParams { uri: route, params: Vec::new() }]);
            headers.push(rsip::typed::Route(value).into());
        }
        headers.push(self.local.clone().into());
        headers.push(self.remote.clone().into());
        headers.push(Header::CallId(self.id.call_id.as_str().into()));
        headers.push(rsip::typed::CSeq { seq, method }.into());
        if with_contact {
            headers.push(self.local_contact.clone().into());
        }
        Request { method, uri, version: rsip::Version::V2, headers, body: Vec::new() }
    }

    /// §12.2.1.1: with no route set, straight to the remote target. A loose first hop
    /// (`lr`) gets the whole route set as Route and the target stays in the
    /// Request-URI. A strict (RFC 2543) first hop expects to be the Request-URI itself,
    /// with the remaining hops and finally the remote target as Route.
    fn request_uri_and_routes(&self) -> (Uri, Vec<Uri>) {
        match self.route_set.split_first() {
            None => (self.remote_target.clone(), Vec::new()),
            Some((first, _)) if is_loose_router(first) => (self.remote_target.clone(), self.route_set.clone()),
            Some((first, rest)) => {
                let mut routes = rest.to_vec();
                routes.push(self.remote_target.clone());
                (as_request_uri(first), routes)
            }
        }
    }
}
