//! Contact header values as a registrar needs them: the URI to reach, and the `expires`,
//! `q` and `+sip.instance` parameters. Small and exact rather than rsip's typed Contact,
//! which mishandles `*` and quoted parameters.

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
    let value = value.trim();
    let (uri, params) = match value.find('<') {
        Some(open) => {
            let close = value[open..].find('>').ok_or(ContactError)? + open;
            (&value[open + 1..close], &value[close + 1..])
        }
        None => match value.find(';') {
            Some(semi) => (&value[..semi], &value[semi..]),
            None => (value, ""),
        },
    };
    let uri = uri.trim();
    let lower = uri.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) || uri.len() <= 4 || uri.contains(char::is_whitespace) {
        return Err(ContactError);
    }
    let mut contact = ContactValue { uri: uri.to_owned(), expires: None, q: None, instance: None };
    for param in split_params(params) {
        let (name, val) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (param.trim(), None),
        };
        match name.to_ascii_lowercase().as_str() {
            "expires" => contact.expires = val.map(str::to_owned),
            "q" => contact.q = val.map(str::to_owned),
            "+sip.instance" => contact.instance = val.map(|v| v.trim_matches('"').to_owned()),
            _ => {}
        }
    }
    Ok(contact)
}

fn split_params(params: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in params.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&params[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&params[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty())
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
