//! Building the requests and responses the engine sends: headers every request carries,
//! digest credentials after a challenge, our Contact.

use super::Phone;
use hark_sip::dialog::top_via;
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{self, Header, Method, Request, Response, Uri};
use hark_sip::transport::Transport;
use hark_sip::{Branch, CallId, Tag};

/// Allowed methods, advertised in INVITEs and 200s.
pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, UPDATE, REFER, NOTIFY";

/// The values of a response's WWW-Authenticate (401) or Proxy-Authenticate (407).
pub(super) fn challenges(resp: &Response) -> Vec<String> {
    resp.headers
        .iter()
        .filter_map(|h| match h {
            Header::WwwAuthenticate(v) => Some(v.value().to_owned()),
            Header::ProxyAuthenticate(v) => Some(v.value().to_owned()),
            _ => None,
        })
        .collect()
}

/// The value of a header rsip keeps as `Other` (X-Session-Id, X-Recording-State).
pub(super) fn other_header<'a>(headers: &'a rsip::Headers, name: &str) -> Option<&'a str> {
    headers.iter().find_map(|h| match h {
        Header::Other(n, v) if n.eq_ignore_ascii_case(name) => Some(v.trim()),
        _ => None,
    })
}

/// Replaces the top Via's branch (a retried request is a new transaction).
pub(super) fn new_branch(req: &mut Request, transport: Transport, sent_by: std::net::SocketAddr) {
    let via: Header = top_via(transport, sent_by, &Branch::random()).into();
    let mut headers = rsip::Headers::default();
    let mut replaced = false;
    for h in req.headers.iter() {
        if matches!(h, Header::Via(_)) && !replaced {
            headers.push(via.clone());
            replaced = true;
        } else {
            headers.push(h.clone());
        }
    }
    if !replaced {
        headers.push(via);
    }
    req.headers = headers;
}

/// Sets the CSeq number, keeping the method.
pub(super) fn set_cseq(req: &mut Request, seq: u32) {
    let method = req.method;
    req.headers.retain(|h| !matches!(h, Header::CSeq(_)));
    req.headers.push(rsip::typed::CSeq { seq, method }.into());
}

pub(super) fn cseq_of(req: &Request) -> u32 {
    use hark_sip::SipHeaders;
    req.cseq().map(|(n, _)| n).unwrap_or(1)
}

pub(super) fn reason_of(resp: &Response) -> String {
    match &resp.status_code {
        rsip::StatusCode::Other(_, reason) => reason.clone(),
        s => hark_sip::serialize::reason_phrase(s.code()).to_owned(),
    }
}

impl Phone {
    /// Our Contact header value.
    pub(super) fn contact_value(&self) -> String {
        let user = &self.config.account.user;
        match self.config.account.transport {
            Transport::Udp => format!("<sip:{user}@{}>", self.local),
            t => format!("<sip:{user}@{};transport={}>", self.local, t.via_name().to_ascii_lowercase()),
        }
    }

    pub(super) fn contact_typed(&self) -> Option<rsip::typed::Contact> {
        let value = self.contact_value();
        let inner = value.trim_start_matches('<').trim_end_matches('>');
        let uri = Uri::try_from(inner).ok()?;
        Some(rsip::typed::Contact { display_name: None, uri, params: Vec::new() })
    }

    pub(super) fn via(&self) -> rsip::typed::Via {
        top_via(self.config.account.transport, self.local, &Branch::random())
    }

    /// A request outside any dialog, with the headers every request needs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn out_of_dialog_request(
        &self,
        method: Method,
        uri: Uri,
        to: &str,
        call_id: &CallId,
        from_tag: &Tag,
        cseq: u32,
        with_contact: bool,
    ) -> Request {
        let mut headers = rsip::Headers::default();
        headers.push(self.via().into());
        headers.push(Header::MaxForwards(70.into()));
        headers.push(Header::From(rsip::headers::From::new(format!("<{}>;tag={from_tag}", self.config.account.aor()))));
        headers.push(Header::To(rsip::headers::To::new(to.to_owned())));
        headers.push(Header::CallId(call_id.as_str().into()));
        headers.push(rsip::typed::CSeq { seq: cseq, method }.into());
        if with_contact {
            headers.push(Header::Contact(rsip::headers::Contact::new(self.contact_value())));
        }
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(self.config.user_agent.clone())));
        Request { method, uri, version: rsip::Version::V2, headers, body: Vec::new() }
    }

    /// Answers a challenge: the matching credentials header added to `req` (any earlier
    /// one removed). False when the challenge cannot be answered or our credentials were
    /// already refused.
    pub(super) fn add_credentials(&mut self, req: &mut Request, resp: &Response) -> bool {
        let values = challenges(resp);
        // A request that carried no credentials is challenged afresh: an earlier
        // challenge of the realm (answered before) must not read as a refusal.
        let had_credentials =
            req.headers.iter().any(|h| matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)));
        if !had_credentials {
            for v in &values {
                if let Ok(c) = hark_sip::auth::DigestChallenge::parse(v) {
                    self.auth.forget(&c.realm);
                }
            }
        }
        let realms = match self.auth.on_challenges(values.iter().map(String::as_str)) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "challenge not answered");
                return false;
            }
        };
        let Some(realm) = realms.first() else { return false };
        let uri = req.uri.to_string();
        let Some(creds) = self.auth.authorize(realm, req.method.to_string().as_str(), &uri) else { return false };
        let proxy = resp.status_code.code() == 407;
        req.headers.retain(|h| !matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)));
        let value = creds.to_header_value();
        req.headers.push(if proxy {
            Header::ProxyAuthorization(rsip::headers::ProxyAuthorization::new(value))
        } else {
            Header::Authorization(rsip::headers::Authorization::new(value))
        });
        true
    }

    /// Sends `body` with `content_type` as the message body (Content-Length is written
    /// true by the encoder).
    pub(super) fn set_body(req: &mut Request, content_type: &str, body: Vec<u8>) {
        req.headers.retain(|h| !matches!(h, Header::ContentType(_)));
        req.headers.push(Header::ContentType(rsip::headers::ContentType::new(content_type)));
        req.body = body;
    }
}
