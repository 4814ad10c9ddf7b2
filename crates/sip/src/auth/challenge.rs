//! A Digest challenge: the value of WWW-Authenticate (401) or Proxy-Authenticate (407).

use super::algorithm::Algorithm;
use super::params::{HeaderError, ParamWriter, parse_digest_params};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    /// MD5 when the challenge names none (RFC 7616 §3.3).
    pub algorithm: Algorithm,
    /// The qop options offered, e.g. `["auth"]`; empty for an RFC 2069 challenge.
    pub qop: Vec<String>,
    pub opaque: Option<String>,
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses a challenge. An algorithm other than MD5 or SHA-256 is an error
    /// ([`HeaderError::UnsupportedAlgorithm`]) so that a client can skip that challenge
    /// and answer another, as RFC 7616 §3.7 asks. `domain`, `charset`, `userhash` and
    /// unknown parameters are ignored.
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        let (mut realm, mut nonce, mut algorithm, mut opaque) = (None, None, None, None);
        let mut qop = Vec::new();
        let mut stale = false;
        for p in parse_digest_params(value)? {
            match p.name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(p.value.into_owned()),
                "nonce" => nonce = Some(p.value.into_owned()),
                "opaque" => opaque = Some(p.value.into_owned()),
                "algorithm" => {
                    let alg = p.value.parse::<Algorithm>();
                    algorithm = Some(alg.map_err(|e| HeaderError::UnsupportedAlgorithm(e.0))?);
                }
                "qop" => {
                    qop = p
                        .value
                        .split(',')
                        .map(|o| o.trim_matches([' ', '\t']))
                        .filter(|o| !o.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                // Anything but "true" means false (RFC 2617 §3.2.1).
                "stale" => stale = p.value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        Ok(Self {
            realm: realm.ok_or(HeaderError::MissingParam("realm"))?,
            nonce: nonce.ok_or(HeaderError::MissingParam("nonce"))?,
            algorithm: algorithm.unwrap_or(Algorithm::Md5),
            qop,
            opaque,
            stale,
        })
    }

    /// Whether qop=auth is among the options, i.e. whether a client answers with
    /// cnonce and nonce-count.
    pub fn offers_auth(&self) -> bool {
        self.qop.iter().any(|o| o.eq_ignore_ascii_case("auth"))
    }

    /// The header value, `Digest realm="…", nonce="…", algorithm=…, qop="…", …`.
    pub fn to_header_value(&self) -> String {
        let mut w = ParamWriter::new();
        w.quoted("realm", &self.realm);
        w.quoted("nonce", &self.nonce);
        w.token("algorithm", self.algorithm.as_str());
        if !self.qop.is_empty() {
            w.quoted("qop", &self.qop.join(","));
        }
        if let Some(opaque) = &self.opaque {
            w.quoted("opaque", opaque);
        }
        if self.stale {
            w.token("stale", "true");
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_rfc_7616_sha256_challenge() {
        let c = DigestChallenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
             algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.qop, ["auth", "auth-int"]);
        assert!(c.offers_auth());
        assert_eq!(c.opaque.as_deref(), Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"));
        assert!(!c.stale);
    }

    #[test]
    fn defaults_and_missing_parameters() {
        let c = DigestChallenge::parse(r#"Digest realm="r", nonce="n", stale=TRUE"#).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop.is_empty() && !c.offers_auth());
        assert!(c.stale);
        assert_eq!(
            DigestChallenge::parse(r#"Digest nonce="n""#),
            Err(HeaderError::MissingParam("realm"))
        );
        assert_eq!(
            DigestChallenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#),
            Err(HeaderError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
    }

    #[test]
    fn round_trips_through_its_header_value() {
        let c = DigestChallenge {
            realm: r#"pbx "main" \ office"#.into(),
            nonce: "abc".into(),
            algorithm: Algorithm::Sha256,
            qop: vec!["auth".into(), "auth-int".into()],
            opaque: Some("o, p".into()),
            stale: true,
        };
        assert_eq!(DigestChallenge::parse(&c.to_header_value()), Ok(c));
    }
}
