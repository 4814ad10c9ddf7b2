//! Digest credentials: the value of Authorization or Proxy-Authorization.

use super::algorithm::Algorithm;
use super::params::{HeaderError, ParamWriter, parse_digest_params};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    /// The digest-uri: what the client hashed, normally its Request-URI.
    pub uri: String,
    pub response: String,
    /// MD5 when the credentials name none (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub nc: Option<u32>,
    /// `auth` in practice; absent for RFC 2069 credentials.
    pub qop: Option<String>,
    pub opaque: Option<String>,
}

impl DigestCredentials {
    /// Parses credentials. Unknown parameters are ignored; an algorithm other than MD5
    /// or SHA-256 is [`HeaderError::UnsupportedAlgorithm`].
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        let (mut username, mut realm, mut nonce, mut uri) = (None, None, None, None);
        let (mut response, mut algorithm, mut cnonce, mut nc) = (None, None, None, None);
        let (mut qop, mut opaque) = (None, None);
        for p in parse_digest_params(value)? {
            match p.name.to_ascii_lowercase().as_str() {
                "username" => username = Some(p.value.into_owned()),
                "realm" => realm = Some(p.value.into_owned()),
                "nonce" => nonce = Some(p.value.into_owned()),
                "uri" => uri = Some(p.value.into_owned()),
                "response" => response = Some(p.value.into_owned()),
                "cnonce" => cnonce = Some(p.value.into_owned()),
                "qop" => qop = Some(p.value.into_owned()),
                "opaque" => opaque = Some(p.value.into_owned()),
                "nc" => nc = Some(parse_nonce_count(&p.value)?),
                "algorithm" => {
                    let alg = p.value.parse::<Algorithm>();
                    algorithm = Some(alg.map_err(|e| HeaderError::UnsupportedAlgorithm(e.0))?);
                }
                _ => {}
            }
        }
        Ok(Self {
            username: username.ok_or(HeaderError::MissingParam("username"))?,
            realm: realm.ok_or(HeaderError::MissingParam("realm"))?,
            nonce: nonce.ok_or(HeaderError::MissingParam("nonce"))?,
            uri: uri.ok_or(HeaderError::MissingParam("uri"))?,
            response: response.ok_or(HeaderError::MissingParam("response"))?,
            algorithm: algorithm.unwrap_or(Algorithm::Md5),
            cnonce,
            nc,
            qop,
            opaque,
        })
    }

    /// The header value, in the parameter order of the RFC examples.
    pub fn to_header_value(&self) -> String {
        let mut w = ParamWriter::new();
        w.quoted("username", &self.username);
        w.quoted("realm", &self.realm);
        w.quoted("nonce", &self.nonce);
        w.quoted("uri", &self.uri);
        w.quoted("response", &self.response);
        w.token("algorithm", self.algorithm.as_str());
        if let Some(cnonce) = &self.cnonce {
            w.quoted("cnonce", cnonce);
        }
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque);
        }
        if let Some(qop) = &self.qop {
            w.token("qop", qop);
        }
        if let Some(nc) = self.nc {
            w.token("nc", &format!("{nc:08x}"));
        }
        w.finish()
    }
}

/// nc-value = 8LHEX. Exactly eight digits, since the digits as sent are what the client
/// hashed and we re-print them as eight. Uppercase is tolerated.
fn parse_nonce_count(value: &str) -> Result<u32, HeaderError> {
    let bad = || HeaderError::BadNonceCount(value.to_owned());
    if value.len() != 8 || !value.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u32::from_str_radix(value, 16).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_7616_MD5: &str = "Digest username=\"Mufasa\", \
        realm=\"http-auth@example.org\", uri=\"/dir/index.html\", algorithm=MD5, \
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
        cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
        response=\"8ca523f5e9506fed4657c9700eebdbec\", \
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

    #[test]
    fn parses_the_rfc_7616_md5_credentials() {
        let c = DigestCredentials::parse(RFC_7616_MD5).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.nc, Some(1));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.cnonce.as_deref(), Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"));
        assert_eq!(c.response, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn round_trips_through_its_header_value() {
        let c = DigestCredentials::parse(RFC_7616_MD5).unwrap();
        assert_eq!(DigestCredentials::parse(&c.to_header_value()), Ok(c));
        let bare = DigestCredentials::parse(
            r#"Digest username="a\"b", realm="r", nonce="n", uri="sip:x", response="00""#,
        )
        .unwrap();
        assert_eq!(bare.username, r#"a"b"#);
        assert_eq!(bare.algorithm, Algorithm::Md5);
        assert_eq!(DigestCredentials::parse(&bare.to_header_value()), Ok(bare));
    }

    #[test]
    fn refuses_bad_nonce_counts_and_missing_fields() {
        let with_nc = |nc: &str| {
            DigestCredentials::parse(&format!(
                r#"Digest username="u", realm="r", nonce="n", uri="u", response="0", nc={nc}"#
            ))
        };
        assert_eq!(with_nc("0000000A").unwrap().nc, Some(10));
        assert_eq!(with_nc("\"00000002\"").unwrap().nc, Some(2));
        for bad in ["1", "+0000001", "000000001", "0000000g"] {
            assert_eq!(with_nc(bad), Err(HeaderError::BadNonceCount(bad.into())));
        }
        assert_eq!(
            DigestCredentials::parse(r#"Digest username="u", realm="r", nonce="n", uri="u""#),
            Err(HeaderError::MissingParam("response"))
        );
    }
}
