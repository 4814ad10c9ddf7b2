//! The client side of Digest: answering challenges, and remembering them so that later
//! requests to the same realm carry credentials with a rising nonce-count.

use super::algorithm::{AuthQop, ha1, response};
use super::challenge::DigestChallenge;
use super::credentials::DigestCredentials;
use super::params::HeaderError;

/// Credentials answering `challenge` for a request `method uri`. Uses qop=auth with
/// `cnonce` and `nc` when the challenge offers it, else the RFC 2069 form (also when
/// only auth-int is offered, which is not supported; the server will then refuse).
pub fn answer(
    challenge: &DigestChallenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> DigestCredentials {
    let ha1 = ha1(challenge.algorithm, username, &challenge.realm, password);
    let qop = challenge.offers_auth().then_some(AuthQop { nc, cnonce });
    DigestCredentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response: response(challenge.algorithm, &ha1, &challenge.nonce, qop, method, uri),
        algorithm: challenge.algorithm,
        cnonce: qop.map(|q| q.cnonce.to_owned()),
        nc: qop.map(|q| q.nc),
        qop: qop.map(|_| "auth".to_owned()),
        opaque: challenge.opaque.clone(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// None of the challenges could be answered; carries the last parse error.
    #[error("no usable Digest challenge: {0}")]
    NoUsableChallenge(HeaderError),
    /// The realm challenged again, without `stale`, after we had answered it: the
    /// username or password is wrong. Retrying would loop.
    #[error("credentials for realm {0:?} were rejected")]
    Rejected(String),
}

/// One account's Digest state: the last challenge per realm and its nonce-count.
pub struct DigestClient {
    username: String,
    password: String,
    realms: Vec<RealmState>,
}

struct RealmState {
    challenge: DigestChallenge,
    /// The last nonce-count sent with this challenge's nonce; 0 before the first.
    nc: u32,
}

impl DigestClient {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into(), realms: Vec::new() }
    }

    /// Takes the WWW-Authenticate or Proxy-Authenticate values of one 401 or 407 and
    /// returns the realms now ready for [`Self::authorize`]. Per realm the strongest
    /// supported algorithm wins (SHA-256 over MD5, RFC 8760 §2.4); challenges that do not
    /// parse or name an unsupported algorithm are skipped.
    pub fn on_challenges<'a>(
        &mut self,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, ClientError> {
        let mut best: Vec<DigestChallenge> = Vec::new();
        let mut last_error = HeaderError::MissingParam("WWW-Authenticate");
        for value in values {
            let challenge = match DigestChallenge::parse(value) {
                Ok(c) => c,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            match best.iter_mut().find(|b| b.realm == challenge.realm) {
                Some(b) if challenge.algorithm > b.algorithm => *b = challenge,
                Some(_) => {}
                None => best.push(challenge),
            }
        }
        if best.is_empty() {
            return Err(ClientError::NoUsableChallenge(last_error));
        }

        for challenge in &best {
            let answered = self.state(&challenge.realm).is_some_and(|s| s.nc > 0);
            if answered && !challenge.stale {
                self.forget(&challenge.realm);
                return Err(ClientError::Rejected(challenge.realm.clone()));
            }
        }
        let realms = best.iter().map(|c| c.realm.clone()).collect();
        for challenge in best {
            self.forget(&challenge.realm);
            self.realms.push(RealmState { challenge, nc: 0 });
        }
        Ok(realms)
    }

    /// Credentials for a request to `realm`, with the next nonce-count and a fresh
    /// cnonce; `None` if that realm has not challenged us.
    pub fn authorize(&mut self, realm: &str, method: &str, uri: &str) -> Option<DigestCredentials> {
        let state = self.realms.iter_mut().find(|s| s.challenge.realm == realm)?;
        state.nc = state.nc.checked_add(1)?;
        let cnonce = format!("{:016x}", rand::random::<u64>());
        Some(answer(
            &state.challenge,
            method,
            uri,
            &self.username,
            &self.password,
            &cnonce,
            state.nc,
        ))
    }

    /// Forgets a realm's challenge, e.g. to start over after [`ClientError::Rejected`].
    pub fn forget(&mut self, realm: &str) {
        self.realms.retain(|s| s.challenge.realm != realm);
    }

    fn state(&self, realm: &str) -> Option<&RealmState> {
        self.realms.iter().find(|s| s.challenge.realm == realm)
    }
}
