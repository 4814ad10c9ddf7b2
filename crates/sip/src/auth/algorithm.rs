//! Digest algorithms and the RFC 7616 §3.4.1 response computation.
//!
//! Only the non-session variants are supported: `-sess` algorithms need a third-party
//! auth server model that a PBX holding HA1 values does not have.

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};
use sha2::Sha256;

/// A digest algorithm. Ordered by strength, so `max()` picks the one to prefer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Md5,
    Sha256,
}

/// An `algorithm` value this implementation does not support.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported digest algorithm {0:?}")]
pub struct UnknownAlgorithm(pub String);

impl Algorithm {
    /// The token as written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Length of the lowercase hex digest this algorithm produces.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Token comparison is case-insensitive (RFC 7616 §3.3).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Algorithm::Md5)
        } else if s.eq_ignore_ascii_case("SHA-256") {
            Ok(Algorithm::Sha256)
        } else {
            Err(UnknownAlgorithm(s.to_owned()))
        }
    }
}

/// HA1 = H(username:realm:password), lowercase hex: what a credential store keeps per
/// realm instead of the password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    hash_joined(alg, &[username, realm, password])
}

/// The client's nonce-count and cnonce when qop=auth is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthQop<'a> {
    pub nc: u32,
    pub cnonce: &'a str,
}

/// The `response` value: KD(HA1, nonce:nc:cnonce:auth:HA2) with qop=auth, or the
/// RFC 2069 form KD(HA1, nonce:HA2) without qop. `uri` is the digest-uri as sent in
/// the credentials, not the Request-URI.
pub fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<AuthQop<'_>>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = hash_joined(alg, &[method, uri]);
    match qop {
        Some(AuthQop { nc, cnonce }) => {
            let nc = format!("{nc:08x}");
            hash_joined(alg, &[ha1, nonce, &nc, cnonce, "auth", &ha2])
        }
        None => hash_joined(alg, &[ha1, nonce, &ha2]),
    }
}

/// H(parts joined with ':'), fed piecewise so no joined string is built.
fn hash_joined(alg: Algorithm, parts: &[&str]) -> String {
    fn run<D: Digest>(parts: &[&str]) -> String {
        let mut d = D::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                d.update(b":");
            }
            d.update(part.as_bytes());
        }
        hex::encode(d.finalize())
    }
    match alg {
        Algorithm::Md5 => run::<Md5>(parts),
        Algorithm::Sha256 => run::<Sha256>(parts),
    }
}

/// Compares a computed lowercase hex digest with one a peer sent, in time independent
/// of where they differ. Peers may send uppercase hex, so theirs is folded to lowercase.
/// Lengths are not secret, so a length mismatch returns early.
pub(crate) fn digest_eq(expected_lower: &str, received: &str) -> bool {
    let (a, b) = (expected_lower.as_bytes(), received.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase()));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_insensitively() {
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            assert_eq!(alg.to_string().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.as_str().to_lowercase().parse::<Algorithm>(), Ok(alg));
        }
        assert_eq!("MD5-sess".parse::<Algorithm>(), Err(UnknownAlgorithm("MD5-sess".into())));
        assert!("SHA-512-256".parse::<Algorithm>().is_err());
        assert!(Algorithm::Sha256 > Algorithm::Md5);
    }

    #[test]
    fn ha1_has_the_algorithms_length() {
        assert_eq!(ha1(Algorithm::Md5, "u", "r", "p").len(), Algorithm::Md5.hex_len());
        assert_eq!(ha1(Algorithm::Sha256, "u", "r", "p").len(), Algorithm::Sha256.hex_len());
    }

    #[test]
    fn digest_comparison() {
        assert!(digest_eq("ab12", "ab12"));
        assert!(digest_eq("ab12", "AB12"));
        assert!(!digest_eq("ab12", "ab13"));
        assert!(!digest_eq("ab12", "ab1"));
        assert!(!digest_eq("ab12", ""));
    }
}
