//! The server side of Digest: issuing challenges and verifying credentials, sans-IO.
//!
//! The caller passes `now` into every call and decides how to answer: 401 with
//! WWW-Authenticate or 407 with Proxy-Authenticate, and on [`AuthError::Stale`] a new
//! challenge with `stale = true`. Passwords never reach this module; HA1 values come
//! from the caller's lookup.

use std::time::{Duration, Instant};

use super::algorithm::{Algorithm, AuthQop, digest_eq, response};
use super::challenge::DigestChallenge;
use super::credentials::DigestCredentials;
use super::nonce::{NonceCodec, NonceStamp};
use super::params::HeaderError;
use super::replay::{ReplayGuard, SINGLE_USE};
use super::uri::uri_matches;

/// Default cap on replay records: above the ~3 million live nonces of the design load
/// (20,000 verifications/s with a five-minute lifetime).
pub const DEFAULT_MAX_TRACKED_NONCES: usize = 4_000_000;

/// Why credentials were refused. Messages are meant for logs; peer-supplied text is
/// printed with `{:?}` so control characters cannot forge log lines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed credentials: {0}")]
    Malformed(HeaderError),
    #[error("credentials for realm {0:?}, not ours")]
    WrongRealm(String),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
    #[error("digest uri {digest_uri:?} does not match request URI {request_uri:?}")]
    UriMismatch { digest_uri: String, request_uri: String },
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("wrong digest response for user {0:?}")]
    BadResponse(String),
    /// The digest was right but the nonce is expired or not one we can still honour;
    /// re-challenge with `stale = true`.
    #[error("stale nonce")]
    Stale,
    #[error("replayed nonce-count for user {0:?}")]
    Replayed(String),
}

impl From<HeaderError> for AuthError {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::UnsupportedAlgorithm(alg) => AuthError::UnsupportedAlgorithm(alg),
            other => AuthError::Malformed(other),
        }
    }
}

/// Credentials that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub username: String,
    pub algorithm: Algorithm,
}

pub struct DigestServer {
    nonces: NonceCodec,
    replay: ReplayGuard,
    base: Instant,
    /// The latest `now` seen. Time is taken as never running backwards so that a
    /// pruned replay record always belongs to a nonce that stays expired.
    latest: Instant,
    lifetime_secs: u64,
    /// Offered in this order (RFC 8760 §2.4: preference order).
    algorithms: Vec<Algorithm>,
}

impl DigestServer {
    /// `secret` keys the nonce MAC; `base` is the instant nonce times count from.
    /// Nonces live for `nonce_lifetime`, counted in whole seconds.
    pub fn new(secret: [u8; 32], nonce_lifetime: Duration, base: Instant) -> Self {
        Self {
            nonces: NonceCodec::new(&secret),
            replay: ReplayGuard::new(DEFAULT_MAX_TRACKED_NONCES),
            base,
            latest: base,
            lifetime_secs: nonce_lifetime.as_secs(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }


    /// Sets the algorithms offered and accepted, in the order challenges are sent (RFC 8760:
    /// preferred first). The order is a deployment choice: many deployed clients (sipp,
    /// older desk phones) read only the first challenge and know only MD5. Duplicates are
    /// dropped; an empty list accepts nothing.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        let mut algs: Vec<Algorithm> = Vec::with_capacity(algorithms.len());
        for a in algorithms {
            if !algs.contains(a) {
                algs.push(*a);
            }
        }
        self.algorithms = algs;
        self
    }

    /// Caps the replay records kept. Beyond the cap the oldest records go and every
    /// nonce issued up to then turns stale: clients re-authenticate instead of memory
    /// growing or replays becoming possible.
    pub fn with_max_tracked_nonces(mut self, max: usize) -> Self {
        self.replay = ReplayGuard::new(max);
        self
    }

    /// Replay records currently held, for metrics.
    pub fn tracked_nonces(&self) -> usize {
        self.replay.len()
    }

    /// The challenges to send for `realm`, one per algorithm in the configured order
    /// (strongest first by default), all sharing one fresh nonce.
    pub fn challenges(&mut self, now: Instant, realm: &str, stale: bool) -> Vec<DigestChallenge> {
        let issued_secs = self.advance(now);
        let nonce = self.nonces.issue(NonceStamp { issued_secs, id: rand::random() });
        self.algorithms
            .iter()
            .map(|&algorithm| DigestChallenge {
                realm: realm.to_owned(),
                nonce: nonce.clone(),
                algorithm,
                qop: vec!["auth".to_owned()],
                opaque: None,
                stale,
            })
            .collect()
    }

    /// [`Self::challenges`] as header values.
    pub fn challenge(&mut self, now: Instant, realm: &str, stale: bool) -> Vec<String> {
        self.challenges(now, realm, stale).iter().map(DigestChallenge::to_header_value).collect()
    }

    /// Verifies credentials sent with a request. The nonce-count is recorded only once
    /// the response has been checked, so forged requests cannot use up a client's counts.
    ///
    /// A nonce we cannot open (tampered, or issued before a restart) is reported as
    /// [`AuthError::Stale`] when the digest is otherwise right: the client knows the
    /// password and only needs a fresh nonce (RFC 7616 §3.3, `stale`).
    pub fn verify(
        &mut self,
        now: Instant,
        method: &str,
        request_uri: &str,
        creds: &DigestCredentials,
        expected_realm: &str,
        ha1_lookup: impl FnOnce(&str, Algorithm) -> Option<String>,
    ) -> Result<Verified, AuthError> {
        let now_secs = self.advance(now);
        if creds.realm != expected_realm {
            return Err(AuthError::WrongRealm(creds.realm.clone()));
        }
        if !self.algorithms.contains(&creds.algorithm) {
            return Err(AuthError::UnsupportedAlgorithm(creds.algorithm.to_string()));
        }
        let qop = match creds.qop.as_deref() {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let nc = creds.nc.ok_or(AuthError::Malformed(HeaderError::MissingParam("nc")))?;
                let cnonce = creds
                    .cnonce
                    .as_deref()
                    .ok_or(AuthError::Malformed(HeaderError::MissingParam("cnonce")))?;
                Some(AuthQop { nc, cnonce })
            }
            Some(other) => return Err(AuthError::UnsupportedQop(other.to_owned())),
        };
        if !uri_matches(&creds.uri, request_uri) {
            return Err(AuthError::UriMismatch {
                digest_uri: creds.uri.clone(),
                request_uri: request_uri.to_owned(),
            });
        }

        let ha1 = ha1_lookup(&creds.username, creds.algorithm)
            .ok_or_else(|| AuthError::UnknownUser(creds.username.clone()))?;
        let expected = response(creds.algorithm, &ha1, &creds.nonce, qop, method, &creds.uri);
        if !digest_eq(&expected, &creds.response) {
            return Err(AuthError::BadResponse(creds.username.clone()));
        }

        let stamp = self.nonces.open(&creds.nonce).ok_or(AuthError::Stale)?;
        if self.is_expired(stamp.issued_secs, now_secs)
            || self.replay.is_behind_horizon(stamp.issued_secs)
        {
            return Err(AuthError::Stale);
        }
        let nc = qop.map_or(SINGLE_USE, |q| q.nc);
        self.replay
            .accept(stamp.id, nc, now_secs)
            .map_err(|_| AuthError::Replayed(creds.username.clone()))?;
        Ok(Verified { username: creds.username.clone(), algorithm: creds.algorithm })
    }

    /// Moves the server clock to `now` (never backwards), prunes expired replay
    /// records, and returns the current server second.
    fn advance(&mut self, now: Instant) -> u32 {
        self.latest = self.latest.max(now);
        let secs = self.latest.duration_since(self.base).as_secs();
        let now_secs = u32::try_from(secs).unwrap_or(u32::MAX);
        let lifetime = self.lifetime_secs;
        self.replay.prune(|first_used| expired(first_used, now_secs, lifetime));
        now_secs
    }

    fn is_expired(&self, issued_secs: u32, now_secs: u32) -> bool {
        expired(issued_secs, now_secs, self.lifetime_secs)
    }
}

/// A stamp is expired once more than the lifetime has passed since it. A stamp from the
/// future cannot come from this server and counts as expired too.
fn expired(stamp_secs: u32, now_secs: u32, lifetime_secs: u64) -> bool {
    match now_secs.checked_sub(stamp_secs) {
        Some(age) => u64::from(age) > lifetime_secs,
        None => true,
    }
}
