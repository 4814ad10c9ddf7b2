//! Typed access to the headers every SIP layer needs, and the RFC 3261 §8.2.6 rules for
//! building a response. Messages reaching these helpers passed `parse`, so the mandatory
//! headers exist; the helpers still return errors instead of panicking on hand-built ones.

use crate::ids::{Branch, CallId, Tag};
use crate::nameaddr::NameAddr;
use rsip::headers::ToTypedHeader;
use rsip::headers::UntypedHeader;
use rsip::message::HeadersExt;
use rsip::{Header, Method, Request, Response, SipMessage, StatusCode};
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
}

/// Read access shared by requests, responses and `SipMessage`.
// `from_tag` names the From header's tag, not a conversion.
#[allow(clippy::wrong_self_convention)]
pub trait SipHeaders: HeadersExt {
    fn call_id(&self) -> Result<CallId, MessageError> {
        let h = self.call_id_header().map_err(|_| MessageError::Missing("Call-ID"))?;
        Ok(CallId::new(h.value().trim()))
    }

    fn cseq(&self) -> Result<(u32, Method), MessageError> {
        let h = self.cseq_header().map_err(|_| MessageError::Missing("CSeq"))?;
        let t = h.typed().map_err(|_| MessageError::Malformed("CSeq"))?;
        Ok((t.seq, t.method))
    }

    fn top_via(&self) -> Result<rsip::typed::Via, MessageError> {
        let h = self.via_header().map_err(|_| MessageError::Missing("Via"))?;
        h.typed().map_err(|_| MessageError::Malformed("Via"))
    }

    fn branch(&self) -> Result<Option<Branch>, MessageError> {
        Ok(self.top_via()?.branch().map(|b| Branch::new(b.to_string())))
    }

    fn from_tag(&self) -> Result<Option<Tag>, MessageError> {
        let h = self.from_header().map_err(|_| MessageError::Missing("From"))?;
        let n = NameAddr::parse(h.value()).map_err(|_| MessageError::Malformed("From"))?;
        Ok(n.tag().map(Tag::new))
    }

    fn to_tag(&self) -> Result<Option<Tag>, MessageError> {
        let h = self.to_header().map_err(|_| MessageError::Missing("To"))?;
        let n = NameAddr::parse(h.value()).map_err(|_| MessageError::Malformed("To"))?;
        Ok(n.tag().map(Tag::new))
    }

    /// The To header's value as name-addr (for the AOR of a REGISTER, the callee…).
    fn to_value(&self) -> Result<&str, MessageError> {
        self.to_header().map(|h| h.value()).map_err(|_| MessageError::Missing("To"))
    }

    /// The first value of a header rsip has no variant for, by case-insensitive name.
    fn other_header(&self, name: &str) -> Option<&str> {
        self.headers().iter().find_map(|h| match h {
            Header::Other(n, v) if n.eq_ignore_ascii_case(name) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Content-Type without parameters, lower-cased; None when absent.
    fn content_type(&self) -> Option<String> {
        self.headers().iter().find_map(|h| match h {
            Header::ContentType(ct) => {
                Some(ct.value().split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            }
            _ => None,
        })
    }
}

impl SipHeaders for Request {}
impl SipHeaders for Response {}
impl SipHeaders for SipMessage {}

/// A status code carrying our own reason phrase (rsip prints `Other` as "code reason").
pub fn status(code: u16, reason: &str) -> StatusCode {
    StatusCode::Other(code, reason.to_owned())
}

/// A response to `req` as RFC 3261 §8.2.6 says: Via, From, To, Call-ID and CSeq copied,
/// a To tag added (except to 100 Trying) when the request had none.
pub fn response_to(req: &Request, status_code: StatusCode, to_tag: Option<&Tag>) -> Response {
    let code = status_code.code();
    let mut headers = rsip::Headers::default();
    for h in req.headers.iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => headers.push(h.clone()),
            Header::To(to) => {
                let has_tag = NameAddr::parse(to.value()).map(|n| n.tag().is_some()).unwrap_or(true);
                match (to_tag, has_tag, code) {
                    (Some(tag), false, c) if c != 100 => {
                        headers.push(Header::To(rsip::headers::To::new(format!("{};tag={tag}", to.value()))))
                    }
                    _ => headers.push(h.clone()),
                }
            }
            _ => {}
        }
    }
    Response { status_code, version: rsip::Version::V2, headers, body: Vec::new() }
}

/// RFC 3261 §18.2.1 and RFC 3581: note where a request really came from in its top Via,
/// so responses reach a client behind NAT.
pub fn stamp_received(req: &mut Request, source: SocketAddr) {
    let Some(via) = req.headers.iter_mut().find_map(|h| match h {
        Header::Via(v) => Some(v),
        _ => None,
    }) else {
        return;
    };
    let value = via.value().to_owned();
    let Ok(typed) = via.typed() else { return };
    let sent_by_host = typed.uri.host_with_port.host.to_string();
    let has_rport = has_param(&value, "rport");
    let ip = source.ip().to_string();
    let mut new_value = strip_param(&value, "received");
    if has_rport {
        new_value = strip_param(&new_value, "rport");
    }
    if sent_by_host != ip || has_rport {
        new_value.push_str(&format!(";received={ip}"));
    }
    if has_rport {
        new_value.push_str(&format!(";rport={}", source.port()));
    }
    *via = rsip::headers::Via::new(new_value);
}

fn params_of(value: &str) -> impl Iterator<Item = &str> {
    value.split(';').skip(1).map(str::trim)
}

fn has_param(value: &str, name: &str) -> bool {
    params_of(value).any(|p| p.split('=').next().is_some_and(|n| n.trim().eq_ignore_ascii_case(name)))
}

fn param_value<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    params_of(value).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn strip_param(value: &str, name: &str) -> String {
    let mut parts = value.split(';');
    let mut out = parts.next().unwrap_or_default().to_owned();
    for p in parts {
        if !p.split('=').next().is_some_and(|n| n.trim().eq_ignore_ascii_case(name)) {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

/// Where a response to this top Via goes (§18.2.2, RFC 3581): received/rport when the
/// request stamped them, else the sent-by address. None when sent-by is a name we would
/// have to resolve; callers then answer to the request's source.
pub fn response_target(resp: &Response) -> Option<SocketAddr> {
    let via = resp.via_header().ok()?;
    let value = via.value();
    let typed = via.typed().ok()?;
    let ip: IpAddr = match param_value(value, "received") {
        Some(r) => r.parse().ok()?,
        None => typed.uri.host_with_port.host.to_string().parse().ok()?,
    };
    let port = param_value(value, "rport")
        .and_then(|p| p.parse().ok())
        .or_else(|| typed.uri.host_with_port.port.map(|p| *p.value()))
        .unwrap_or(5060);
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_datagram, Limits};

    fn req(text: &str) -> Request {
        match parse_datagram(text.as_bytes(), &Limits::default()).unwrap() {
            SipMessage::Request(r) => r,
            _ => panic!("not a request"),
        }
    }

    const OPTIONS: &str = "OPTIONS sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKabc;rport\r\nFrom: <sip:101@pbx.test>;tag=f1\r\nTo: <sip:pbx.test>\r\nCall-ID: c1@x\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn typed_accessors_read_the_mandatory_headers() {
        let r = req(OPTIONS);
        assert_eq!(r.call_id().unwrap(), CallId::new("c1@x"));
        assert_eq!(r.cseq().unwrap(), (7, Method::Options));
        assert_eq!(r.branch().unwrap(), Some(Branch::new("z9hG4bKabc")));
        assert_eq!(r.from_tag().unwrap(), Some(Tag::new("f1")));
        assert_eq!(r.to_tag().unwrap(), None);
    }

    #[test]
    fn rport_and_received_are_stamped_and_used_for_the_response() {
        let mut r = req(OPTIONS);
        stamp_received(&mut r, "192.0.2.9:40000".parse().unwrap());
        let resp = response_to(&r, StatusCode::OK, Some(&Tag::new("t9")));
        assert_eq!(response_target(&resp), Some("192.0.2.9:40000".parse().unwrap()));
        assert_eq!(resp.to_tag().unwrap(), Some(Tag::new("t9")));
        assert_eq!(resp.cseq().unwrap(), (7, Method::Options));
    }

    #[test]
    fn without_rport_the_response_goes_to_received_ip_and_sent_by_port() {
        let mut r = req(&OPTIONS.replace(";rport", ""));
        stamp_received(&mut r, "192.0.2.9:40000".parse().unwrap());
        let resp = response_to(&r, StatusCode::OK, None);
        assert_eq!(response_target(&resp), Some("192.0.2.9:5070".parse().unwrap()));
    }

    #[test]
    fn hundred_trying_gets_no_to_tag_and_custom_reasons_survive_encoding() {
        let r = req(OPTIONS);
        let trying = response_to(&r, StatusCode::Trying, Some(&Tag::new("t")));
        assert_eq!(trying.to_tag().unwrap(), None);
        let bad = response_to(&r, status(400, "Unknown operation"), None);
        let wire = String::from_utf8(crate::serialize::encode(&bad.into())).unwrap();
        assert!(wire.starts_with("SIP/2.0 400 Unknown operation\r\n"), "{wire}");
        assert!(wire.ends_with("Content-Length: 0\r\n\r\n"), "{wire}");
    }
}
