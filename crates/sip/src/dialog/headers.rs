//! Reading the headers a dialog is made of: Record-Route, Contact, From/To parties.

use super::DialogError;
use rsip::headers::ToTypedHeader;
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

/// The first Contact, typed; None when there is none. A dialog has one remote target,
/// so further Contacts (legal only in REGISTER and 3xx) are ignored.
pub(super) fn contact(headers: &Headers) -> Result<Option<rsip::typed::Contact>, DialogError> {
    headers
        .iter()
        .find_map(|h| match h {
            Header::Contact(c) => Some(c),
            _ => None,
        })
        .map(|c| c.typed().map_err(|_| DialogError::BadHeader("Contact")))
        .transpose()
}

pub(super) fn from_party(headers: &Headers) -> Result<rsip::typed::From, DialogError> {
    let h = headers
        .iter()
        .find_map(|h| match h {
            Header::From(f) => Some(f),
            _ => None,
        })
        .ok_or(crate::message::MessageError::Missing("From"))?;
    h.typed().map_err(|_| DialogError::BadHeader("From"))
}

pub(super) fn to_party(headers: &Headers) -> Result<rsip::typed::To, DialogError> {
    let h = headers
        .iter()
        .find_map(|h| match h {
            Header::To(t) => Some(t),
            _ => None,
        })
        .ok_or(crate::message::MessageError::Missing("To"))?;
    h.typed().map_err(|_| DialogError::BadHeader("To"))
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
