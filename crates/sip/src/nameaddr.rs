//! `name-addr` / `addr-spec` header values (From, To, Contact, Refer-To…), RFC 3261 §20.10
//! and §25.1. rsip's typed From/To reject valid values such as a quoted display name
//! holding `<`, so the headers every message must carry are read here, exactly.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed name-addr")]
pub struct NameAddrError;

/// A parsed value, borrowing from the header text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, quotes removed (escapes left as sent).
    pub display: Option<&'a str>,
    /// The URI, without angle brackets.
    pub uri: &'a str,
    /// Header parameters after the URI, e.g. `;tag=1;expires=60` (leading `;` kept).
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    pub fn parse(value: &'a str) -> Result<Self, NameAddrError> {
        let value = value.trim();
        let mut display = None;
        let mut rest = value;
        if let Some(after_quote) = rest.strip_prefix('"') {
            let end = closing_quote(after_quote).ok_or(NameAddrError)?;
            display = Some(&after_quote[..end]);
            rest = after_quote[end + 1..].trim_start();
            if !rest.starts_with('<') {
                return Err(NameAddrError);
            }
        }
        let (uri, params) = match rest.find('<') {
            Some(open) => {
                if display.is_none() {
                    let name = rest[..open].trim();
                    if !name.is_empty() {
                        display = Some(name);
                    }
                }
                let close = rest[open..].find('>').ok_or(NameAddrError)? + open;
                (&rest[open + 1..close], &rest[close + 1..])
            }
            // addr-spec: parameters after the URI belong to the header (§20.10).
            None => match rest.find(';') {
                Some(semi) => (&rest[..semi], &rest[semi..]),
                None => (rest, ""),
            },
        };
        let uri = uri.trim();
        let params = params.trim();
        if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
            return Err(NameAddrError);
        }
        if !params.is_empty() && !params.starts_with(';') {
            return Err(NameAddrError);
        }
        Ok(Self { display, uri, params })
    }

    /// A header parameter's value (`Some("")` for a flag such as `;lr`), by name.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        split_params(self.params).find_map(|p| {
            let (n, v) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => (p.trim(), ""),
            };
            n.eq_ignore_ascii_case(name).then_some(v)
        })
    }

    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").filter(|t| !t.is_empty())
    }

    /// The user part of a sip/sips URI, if any.
    pub fn uri_user(&self) -> Option<&'a str> {
        let (_, rest) = self.uri.split_once(':')?;
        let (userinfo, _) = rest.split_once('@')?;
        Some(userinfo.split(':').next().unwrap_or(userinfo))
    }

    /// The host (and port) part of a sip/sips URI.
    pub fn uri_hostport(&self) -> &'a str {
        let rest = self.uri.split_once(':').map(|(_, r)| r).unwrap_or(self.uri);
        let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
        rest.split([';', '?']).next().unwrap_or(rest)
    }
}

/// Index of the closing quote in text that follows an opening one, skipping `\x` escapes.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// `;a=1;b="x;y";c` → `a=1`, `b="x;y"`, `c`.
pub fn split_params(params: &str) -> impl Iterator<Item = &str> {
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
    fn forms_of_name_addr() {
        let a = NameAddr::parse(r#""Probe <tester>, \"x\"" <sip:p@pbx.test;transport=tcp>;tag=1;x="a;b""#).unwrap();
        assert_eq!(a.display, Some(r#"Probe <tester>, \"x\""#));
        assert_eq!(a.uri, "sip:p@pbx.test;transport=tcp");
        assert_eq!((a.tag(), a.param("x")), (Some("1"), Some("\"a;b\"")));
        assert_eq!((a.uri_user(), a.uri_hostport()), (Some("p"), "pbx.test"));
        let b = NameAddr::parse("Bob <sip:bob@h:5070>").unwrap();
        assert_eq!((b.display, b.uri_hostport(), b.tag()), (Some("Bob"), "h:5070", None));
        let c = NameAddr::parse("sip:carol@h;tag=9").unwrap();
        assert_eq!((c.uri, c.tag()), ("sip:carol@h", Some("9")));
        assert_eq!(NameAddr::parse("<sip:h>").unwrap().uri_user(), None);
    }

    #[test]
    fn malformed_values() {
        for bad in ["", "\"unterminated <sip:a@b>", "\"x\" sip:a@b", "<sip:a@b", "<>", "nocolon", "<sip:a@b> junk", "<sip:a b@c>"] {
            assert_eq!(NameAddr::parse(bad), Err(NameAddrError), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            if let Ok(n) = NameAddr::parse(&s) {
                let _ = (n.tag(), n.uri_user(), n.uri_hostport());
            }
        }
    }
}
