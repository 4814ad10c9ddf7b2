//! Checking the digest-uri against the Request-URI (RFC 3261 §22.4 / RFC 7616 §3.4.6),
//! so credentials computed for one target cannot be replayed against another.
//!
//! Exact equality is the norm. As a tolerance for clients that add or drop URI
//! parameters, two SIP URIs also match when scheme, user, host and port agree. This is
//! deliberately not full RFC 3261 §19.1.4 URI equivalence: the fields compared are the
//! ones that name the target.

/// Whether a digest-uri names the same target as the Request-URI.
pub(crate) fn uri_matches(digest_uri: &str, request_uri: &str) -> bool {
    let (a, b) = (digest_uri.trim(), request_uri.trim());
    if a == b {
        return true;
    }
    match (Target::parse(a), Target::parse(b)) {
        (Some(x), Some(y)) => {
            x.secure == y.secure
                && x.user == y.user
                && x.host.eq_ignore_ascii_case(y.host)
                && x.port == y.port
        }
        _ => false,
    }
}

/// The identifying part of a `sip:` or `sips:` URI.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    secure: bool,
    /// Case-sensitive, as RFC 3261 §19.1.4 has it; the password is not compared.
    user: Option<&'a str>,
    host: &'a str,
    port: Option<&'a str>,
}

impl<'a> Target<'a> {
    fn parse(uri: &'a str) -> Option<Self> {
        let (scheme, rest) = uri.split_once(':')?;
        let secure = if scheme.eq_ignore_ascii_case("sips") {
            true
        } else if scheme.eq_ignore_ascii_case("sip") {
            false
        } else {
            return None;
        };
        // '@' cannot appear unescaped in parameters or headers, so the first one ends
        // the userinfo.
        let (user, rest) = match rest.split_once('@') {
            Some((userinfo, rest)) => (Some(userinfo.split(':').next().unwrap_or("")), rest),
            None => (None, rest),
        };
        let hostport = rest.split([';', '?']).next().unwrap_or("");
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (addr, port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(Self { secure, user, host, port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_after_trimming() {
        assert!(uri_matches(" sip:example.com ", "sip:example.com"));
        assert!(uri_matches("/dir/index.html", "/dir/index.html"));
        assert!(!uri_matches("/dir/index.html", "/dir/other.html"));
    }

    #[test]
    fn same_target_with_other_parameters() {
        assert!(uri_matches(
            "sip:alice@Example.com:5060;transport=tcp",
            "sip:alice@example.com:5060"
        ));
        assert!(uri_matches("sip:alice:secret@example.com", "sip:alice@example.com?subject=x"));
        assert!(uri_matches("SIP:[::1]:5070;lr", "sip:[::1]:5070"));
    }

    #[test]
    fn different_targets() {
        assert!(!uri_matches("sip:alice@example.com", "sip:bob@example.com"));
        assert!(!uri_matches("sip:Alice@example.com", "sip:alice@example.com"));
        assert!(!uri_matches("sip:example.com", "sip:example.com:5060"));
        assert!(!uri_matches("sips:example.com", "sip:example.com"));
        assert!(!uri_matches("sip:example.com", "sip:example.org"));
        assert!(!uri_matches("sip:[::1]", "sip:[::2]"));
        assert!(!uri_matches("tel:+1555", "tel:+1556"));
        assert!(!uri_matches("sip:", "sip:;x"));
    }
}
