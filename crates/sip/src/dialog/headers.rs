//! Reading the headers a dialog is made of: Record-Route, Contact, From/To parties.

use super::DialogError;
use crate::nameaddr::{split_params, NameAddr};
use rsip::headers::{ToTypedHeader, UntypedHeader};
use rsip::{Header, Headers, Method, Param, Request, Uri};

/// The URIs of every Record-Route value, in message order. Parsing already split
/// comma-separated lists into one header per value; a typed value may still hold several.
pub(super) fn record_route(headers: &Headers) -> Result<Vec<Uri>, DialogError> {
    let mut uris = Vec::new();
    for h in headers.iter() {
        if let Header::RecordRoute(rr) = h {
            let typed = rr.typed().map_err(|_| DialogError::BadHeader("Record-Route"))?;
            uris.extend(typed.uris().iter().map(|u| u.uri.clone()));
        }
    }
    Ok(uris)
}

/// A name-addr header value in rsip's typed parts, read by our exact parser: rsip's own
/// typed From/To/Contact refuse valid values (a quoted display name holding `<`, a
/// quoted `+sip.instance="<urn:…>"` parameter).
fn typed_parts(value: &str, header: &'static str) -> Result<(Option<String>, Uri, Vec<Param>), DialogError> {
    let n = NameAddr::parse(value).map_err(|_| DialogError::BadHeader(header))?;
    let uri = Uri::try_from(n.uri).map_err(|_| DialogError::BadHeader(header))?;
    let params = split_params(n.params)
        .map(|p| {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (p.trim(), None),
            };
            if name.eq_ignore_ascii_case("tag") {
                Param::Tag(rsip::param::Tag::new(value.unwrap_or_default()))
            } else {
                Param::Other(rsip::param::OtherParam::new(name), value.map(rsip::param::OtherParamValue::new))
            }
        })
        .collect();
    // rsip prints display_name verbatim: keep it a quoted string (escapes are intact).
    Ok((n.display.map(|d| format!("\"{d}\"")), uri, params))
}

fn first<'a>(headers: &'a Headers, pick: impl Fn(&'a Header) -> Option<&'a str>) -> Option<&'a str> {
    headers.iter().find_map(pick)
}

/// The first Contact, typed; None when there is none. A dialog has one remote target,
/// so further Contacts (legal only in REGISTER and 3xx) are ignored.
pub(super) fn contact(headers: &Headers) -> Result<Option<rsip::typed::Contact>, DialogError> {
    let Some(value) = first(headers, |h| match h {
        Header::Contact(c) => Some(c.value()),
        _ => None,
    }) else {
        return Ok(None);
    };
    let (display_name, uri, params) = typed_parts(value, "Contact")?;
    Ok(Some(rsip::typed::Contact { display_name, uri, params }))
}

pub(super) fn from_party(headers: &Headers) -> Result<rsip::typed::From, DialogError> {
    let value = first(headers, |h| match h {
        Header::From(f) => Some(f.value()),
        _ => None,
    })
    .ok_or(crate::message::MessageError::Missing("From"))?;
    let (display_name, uri, params) = typed_parts(value, "From")?;
    Ok(rsip::typed::From { display_name, uri, params })
}

pub(super) fn to_party(headers: &Headers) -> Result<rsip::typed::To, DialogError> {
    let value = first(headers, |h| match h {
        Header::To(t) => Some(t.value()),
        _ => None,
    })
    .ok_or(crate::message::MessageError::Missing("To"))?;
    let (display_name, uri, params) = typed_parts(value, "To")?;
    Ok(rsip::typed::To { display_name, uri, params })
}

/// The UAS's own party arrives in To but leaves in From of its requests.
pub(super) fn to_as_from(to: rsip::typed::To) -> rsip::typed::From {
    rsip::typed::From { display_name: to.display_name, uri: to.uri, params: to.params }
}

/// The peer's party arrives in From (at a UAS) but leaves in To of our requests.
pub(super) fn from_as_to(from: rsip::typed::From) -> rsip::typed::To {
    rsip::typed::To { display_name: from.display_name, uri: from.uri, params: from.params }
}

/// §12.1.1/§12.1.2: the dialog is secure when the request went over TLS to a SIPS
/// Request-URI. The top Via names the transport of the hop the request took to (or
/// from) us, so this reads the same for the UAC's sent request and the UAS's received one.
pub(super) fn is_secure(req: &Request) -> bool {
    use crate::message::SipHeaders;
    let sips = req.uri.is_sips().unwrap_or(false);
    let tls = req.top_via().is_ok_and(|via| {
        matches!(via.transport, rsip::Transport::Tls | rsip::Transport::TlsSctp | rsip::Transport::Wss)
    });
    sips && tls
}

/// Requests whose Contact replaces the remote target: RFC 3261 §12.2 (INVITE), RFC 3311
/// (UPDATE), RFC 6665 §4.1.2.1/§4.2.2 (SUBSCRIBE and NOTIFY, which it made target refresh
/// requests). Any other request leaves the target alone even when it carries a Contact.
pub fn is_target_refresh(method: Method) -> bool {
    matches!(method, Method::Invite | Method::Update | Method::Subscribe | Method::Notify)
}

/// Methods we send a Contact in: the target refresh requests, plus REFER, whose Contact
/// RFC 3515 requires. BYE, ACK, INFO, PRACK and the rest have no use for one (RFC 3261
/// Table 3 marks Contact "not applicable" in BYE).
pub(super) fn carries_contact(method: Method) -> bool {
    is_target_refresh(method) || method == Method::Refer
}

/// A loose router (RFC 3261 §16.12.1.1) marks its URI with `lr`. Old SER/OpenSER sent
/// `lr=on`, which rsip parses as an unknown parameter; both count.
pub(super) fn is_loose_router(uri: &Uri) -> bool {
    uri.params.iter().any(|p| match p {
        Param::Lr => true,
        Param::Other(name, _) => name.to_string().eq_ignore_ascii_case("lr"),
        _ => false,
    })
}

/// §12.2.1.1 strict routing: the first route becomes the Request-URI "stripping any
/// parameters that are not allowed in a Request-URI" — per §19.1.1 Table 1 that is the
/// `method` parameter and URI headers; transport, maddr and the rest stay, since the
/// strict router may need them.
pub(super) fn as_request_uri(route: &Uri) -> Uri {
    let mut uri = route.clone();
    uri.params.retain(|p| !matches!(p, Param::Method(_)));
    uri.headers.clear();
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_world_contacts_parse() {
        for value in [
            r#"<sip:102@127.0.0.1:33779;transport=udp>;expires=600;+sip.instance="<urn:uuid:5039aaf4-b4d7-00d5-b117-92b5ec7fcb1e>""#,
            r#""Probe <tester>" <sip:p@pbx.test>;tag=1"#,
        ] {
            let r = typed_parts(value, "Contact");
            assert!(r.is_ok(), "{value}: {r:?}");
        }
    }
}
