//! Contact header values as a registrar needs them: the URI to reach, and the `expires`,
//! `q` and `+sip.instance` parameters.

use hark_sip::NameAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactValue {
    pub uri: String,
    pub expires: Option<String>,
    pub q: Option<String>,
    pub instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Contact header")]
pub struct ContactError;

pub fn parse_contact(value: &str) -> Result<ContactValue, ContactError> {
    let n = NameAddr::parse(value).map_err(|_| ContactError)?;
    let lower = n.uri.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) || n.uri_hostport().is_empty() {
        return Err(ContactError);
    }
    Ok(ContactValue {
        uri: n.uri.to_owned(),
        expires: n.param("expires").map(str::to_owned),
        q: n.param("q").map(str::to_owned),
        instance: n.param("+sip.instance").map(|v| v.trim_matches('"').to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_and_bare_forms() {
        let c = parse_contact(r#""Al" <sip:101@10.0.0.2:5062;transport=udp>;expires=60;q=0.5;+sip.instance="<urn:uuid:1;x>""#).unwrap();
        assert_eq!(c.uri, "sip:101@10.0.0.2:5062;transport=udp");
        assert_eq!(c.expires.as_deref(), Some("60"));
        assert_eq!(c.q.as_deref(), Some("0.5"));
        assert_eq!(c.instance.as_deref(), Some("<urn:uuid:1;x>"));
        let bare = parse_contact("sip:101@10.0.0.2;expires=0").unwrap();
        assert_eq!((bare.uri.as_str(), bare.expires.as_deref()), ("sip:101@10.0.0.2", Some("0")));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "<sip:101@x", "http://x", "<tel:123>", "sip:", "<sip:a b>"] {
            assert_eq!(parse_contact(bad), Err(ContactError), "{bad}");
        }
    }
}
