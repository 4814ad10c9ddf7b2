//! End-to-end tests of the auth module: published vectors, then challenge → answer →
//! verify through header values, in simulated time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const LIFETIME: Duration = Duration::from_secs(300);
const REALM: &str = "pbx.example.com";
const URI: &str = "sip:pbx.example.com";

// RFC 7616 §3.9.1: one nonce, challenged with both algorithms.
const RFC7616_REALM: &str = "http-auth@example.org";
const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
const RFC7616_PASSWORD: &str = "Circle of Life";

fn rfc7616_challenge(algorithm: Algorithm) -> DigestChallenge {
    DigestChallenge::parse(&format!(
        r#"Digest realm="{RFC7616_REALM}", qop="auth, auth-int", algorithm={algorithm}, nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}""#
    ))
    .unwrap()
}

#[test]
fn rfc_7616_example_vectors() {
    for (alg, want) in [
        (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        (Algorithm::Sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ] {
        let creds = answer(
            &rfc7616_challenge(alg),
            "GET",
            "/dir/index.html",
            "Mufasa",
            RFC7616_PASSWORD,
            RFC7616_CNONCE,
            1,
        );
        assert_eq!(creds.response, want, "{alg}");
        assert_eq!(creds.algorithm, alg);
        assert_eq!(creds.qop.as_deref(), Some("auth"));
        assert_eq!(creds.opaque.as_deref(), Some(RFC7616_OPAQUE));

        // The printed header carries the same values.
        let printed = creds.to_header_value();
        assert!(printed.contains("nc=00000001"), "{printed}");
        assert!(printed.contains(&format!("algorithm={alg}")), "{printed}");
        assert_eq!(DigestCredentials::parse(&printed), Ok(creds));
    }
}

#[test]
fn rfc_2617_example_vector() {
    let ha1 = ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
    let qop = AuthQop { nc: 1, cnonce: "0a4f113b" };
    let got = response(
        Algorithm::Md5,
        &ha1,
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        Some(qop),
        "GET",
        "/dir/index.html",
    );
    assert_eq!(got, "6629fae49393a05397450978507c4ef1");
}

/// A credential store as the PBX keeps it: HA1 per (user, algorithm), no passwords.
fn store(user: &str, password: &str) -> HashMap<(String, Algorithm), String> {
    [Algorithm::Md5, Algorithm::Sha256]
        .into_iter()
        .map(|alg| ((user.to_owned(), alg), ha1(alg, user, REALM, password)))
        .collect()
}

struct Fixture {
    server: DigestServer,
    store: HashMap<(String, Algorithm), String>,
    t0: Instant,
}

impl Fixture {
    fn new() -> Self {
        let t0 = Instant::now();
        Self {
            server: DigestServer::new([42; 32], LIFETIME, t0),
            store: store("alice", "s3cret"),
            t0,
        }
    }

    fn at(&self, secs: u64) -> Instant {
        self.t0 + Duration::from_secs(secs)
    }

    /// The challenge for `alg` out of a fresh 401, parsed from its header value.
    fn challenge(&mut self, secs: u64, alg: Algorithm) -> DigestChallenge {
        let values = self.server.challenge(self.at(secs), REALM, false);
        values
            .iter()
            .map(|v| DigestChallenge::parse(v).unwrap())
            .find(|c| c.algorithm == alg)
            .unwrap()
    }

    /// Verifies credentials after a trip through their header value.
    fn verify(&mut self, secs: u64, creds: &DigestCredentials) -> Result<Verified, AuthError> {
        let creds = DigestCredentials::parse(&creds.to_header_value())?;
        let (now, store) = (self.at(secs), &self.store);
        self.server.verify(now, "REGISTER", URI, &creds, REALM, |user, alg| {
            store.get(&(user.to_owned(), alg)).cloned()
        })
    }
}

fn alice(challenge: &DigestChallenge, nc: u32) -> DigestCredentials {
    answer(challenge, "REGISTER", URI, "alice", "s3cret", "c0ffee", nc)
}

#[test]
fn challenges_offer_sha256_first_then_md5_with_qop_auth() {
    let mut f = Fixture::new();
    let values = f.server.challenge(f.at(0), REALM, true);
    let parsed: Vec<_> = values.iter().map(|v| DigestChallenge::parse(v).unwrap()).collect();
    assert_eq!(
        parsed.iter().map(|c| c.algorithm).collect::<Vec<_>>(),
        [Algorithm::Sha256, Algorithm::Md5]
    );
    for c in &parsed {
        assert_eq!(c.realm, REALM);
        assert_eq!(c.qop, ["auth"]);
        assert!(c.stale);
    }
    assert!(values[0].starts_with(r#"Digest realm="pbx.example.com", nonce=""#), "{}", values[0]);
}

#[test]
fn round_trip_for_both_algorithms() {
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let mut f = Fixture::new();
        let c = f.challenge(0, alg);
        let verified = f.verify(1, &alice(&c, 1)).unwrap();
        assert_eq!(verified, Verified { username: "alice".into(), algorithm: alg });
        assert_eq!(f.verify(2, &alice(&c, 2)).unwrap().algorithm, alg);
    }
}

#[test]
fn rfc_2069_credentials_work_once() {
    let mut f = Fixture::new();
    let mut c = f.challenge(0, Algorithm::Md5);
    c.qop.clear();
    let creds = alice(&c, 1);
    assert_eq!((creds.qop.as_ref(), creds.nc, creds.cnonce.as_ref()), (None, None, None));
    assert!(f.verify(1, &creds).is_ok());
    assert_eq!(f.verify(2, &creds), Err(AuthError::Replayed("alice".into())));
    // Nor can the used nonce be switched to qop=auth.
    c.qop = vec!["auth".into()];
    assert_eq!(f.verify(3, &alice(&c, 1)), Err(AuthError::Replayed("alice".into())));
}

#[test]
fn stale_after_the_lifetime() {
    let mut f = Fixture::new();
    let c = f.challenge(10, Algorithm::Sha256);
    assert!(f.verify(10 + LIFETIME.as_secs(), &alice(&c, 1)).is_ok());
    assert_eq!(f.verify(11 + LIFETIME.as_secs(), &alice(&c, 2)), Err(AuthError::Stale));
    // A stale challenge then works as any other.
    let values = f.server.challenge(f.at(400), REALM, true);
    let fresh = DigestChallenge::parse(&values[0]).unwrap();
    assert!(fresh.stale);
    assert!(f.verify(401, &alice(&fresh, 1)).is_ok());
}

#[test]
fn replayed_nonce_count_is_refused() {
    let mut f = Fixture::new();
    let c = f.challenge(0, Algorithm::Sha256);
    assert!(f.verify(1, &alice(&c, 1)).is_ok());
    assert_eq!(f.verify(1, &alice(&c, 1)), Err(AuthError::Replayed("alice".into())));
    assert!(f.verify(2, &alice(&c, 5)).is_ok(), "counts may skip");
    assert_eq!(f.verify(2, &alice(&c, 4)), Err(AuthError::Replayed("alice".into())));
    assert_eq!(f.verify(2, &alice(&c, 0)), Err(AuthError::Replayed("alice".into())));
}

#[test]
fn wrong_password_is_refused_and_does_not_consume_the_count() {
    let mut f = Fixture::new();
    let c = f.challenge(0, Algorithm::Sha256);
    let forged = answer(&c, "REGISTER", URI, "alice", "guess", "c0ffee", 7);
    assert_eq!(f.verify(1, &forged), Err(AuthError::BadResponse("alice".into())));
    assert!(f.verify(1, &alice(&c, 1)).is_ok());
    assert_eq!(f.server.tracked_nonces(), 1);
}

#[test]
fn tampered_nonce_is_refused() {
    let mut f = Fixture::new();
    let c = f.challenge(0, Algorithm::Sha256);
    let mut creds = alice(&c, 1);
    let mut nonce = creds.nonce.into_bytes();
    nonce[5] = if nonce[5] == b'a' { b'b' } else { b'a' };
    creds.nonce = String::from_utf8(nonce).unwrap();
    // Edited in transit: the digest no longer matches.
    assert_eq!(f.verify(1, &creds), Err(AuthError::BadResponse("alice".into())));
    // Digest computed over the edited nonce by someone knowing the password: still no.
    let mut forged_challenge = c.clone();
    forged_challenge.nonce = creds.nonce.clone();
    assert_eq!(f.verify(1, &alice(&forged_challenge, 1)), Err(AuthError::Stale));
    assert_eq!(f.server.tracked_nonces(), 0);
}

#[test]
fn nonce_from_a_previous_instance_is_stale() {
    let mut f = Fixture::new();
    let c = f.challenge(0, Algorithm::Sha256);
    f.server = DigestServer::new([42; 32], LIFETIME, f.t0);
    assert_eq!(f.verify(1, &alice(&c, 1)), Err(AuthError::Stale));
}

#[test]
fn refusals_before_the_digest() {
    let mut f = Fixture::new();
    let c = f.challenge(0, Algorithm::Sha256);

    let mut other_realm = c.clone();
    other_realm.realm = "elsewhere".into();
    assert_eq!(
        f.verify(1, &alice(&other_realm, 1)),
        Err(AuthError::WrongRealm("elsewhere".into()))
    );

    let bob = answer(&c, "REGISTER", URI, "bob", "x", "c", 1);
    assert_eq!(f.verify(1, &bob), Err(AuthError::UnknownUser("bob".into())));

    let elsewhere = answer(&c, "REGISTER", "sip:other.example.com", "alice", "s3cret", "c", 1);
    assert!(matches!(f.verify(1, &elsewhere), Err(AuthError::UriMismatch { .. })));

    let mut auth_int = alice(&c, 1);
    auth_int.qop = Some("auth-int".into());
    assert_eq!(f.verify(1, &auth_int), Err(AuthError::UnsupportedQop("auth-int".into())));

    let mut no_nc = alice(&c, 1);
    no_nc.nc = None;
    assert_eq!(f.verify(1, &no_nc), Err(AuthError::Malformed(HeaderError::MissingParam("nc"))));

    // None of that used the nonce.
    assert!(f.verify(1, &alice(&c, 1)).is_ok());
}

#[test]
fn digest_uri_with_extra_parameters_matches() {
    let mut f = Fixture::new();
    let c = f.challenge(0, Algorithm::Md5);
    let creds =
        answer(&c, "REGISTER", "sip:pbx.example.com;transport=tcp", "alice", "s3cret", "c", 1);
    assert!(f.verify(1, &creds).is_ok());
}

#[test]
fn md5_can_be_turned_off() {
    let t0 = Instant::now();
    let mut server = DigestServer::new([1; 32], LIFETIME, t0).with_algorithms(&[Algorithm::Sha256]);
    let values = server.challenge(t0, REALM, false);
    assert_eq!(values.len(), 1);
    let mut c = DigestChallenge::parse(&values[0]).unwrap();
    c.algorithm = Algorithm::Md5;
    let store = store("alice", "s3cret");
    let got = server.verify(t0, "REGISTER", URI, &alice(&c, 1), REALM, |u, a| {
        store.get(&(u.to_owned(), a)).cloned()
    });
    assert_eq!(got, Err(AuthError::UnsupportedAlgorithm("MD5".into())));
}

#[test]
fn unknown_algorithm_in_a_header_maps_to_unsupported() {
    let parsed = DigestCredentials::parse(
        r#"Digest username="a", realm="r", nonce="n", uri="u", response="0", algorithm=MD5-sess"#,
    );
    assert_eq!(
        parsed.map_err(AuthError::from),
        Err(AuthError::UnsupportedAlgorithm("MD5-sess".into()))
    );
    assert_eq!(
        DigestCredentials::parse("Basic xyz").map_err(AuthError::from),
        Err(AuthError::Malformed(HeaderError::NotDigest))
    );
}

#[test]
fn replay_records_are_pruned_after_expiry() {
    let mut f = Fixture::new();
    for i in 0..100 {
        let c = f.challenge(i, Algorithm::Sha256);
        f.verify(i, &alice(&c, 1)).unwrap();
    }
    assert_eq!(f.server.tracked_nonces(), 100);
    // A record goes once its first use is more than a lifetime ago.
    f.server.challenge(f.at(50 + LIFETIME.as_secs()), REALM, false);
    assert_eq!(f.server.tracked_nonces(), 50);
    f.server.challenge(f.at(100 + LIFETIME.as_secs()), REALM, false);
    assert_eq!(f.server.tracked_nonces(), 0);
}

#[test]
fn a_clock_going_backwards_cannot_reopen_a_nonce() {
    let mut f = Fixture::new();
    let c = f.challenge(0, Algorithm::Sha256);
    f.verify(0, &alice(&c, 1)).unwrap();
    f.server.challenge(f.at(1000), REALM, false); // prunes the record
    assert_eq!(f.verify(0, &alice(&c, 1)), Err(AuthError::Stale));
}

#[test]
fn over_capacity_the_oldest_nonces_turn_stale() {
    let t0 = Instant::now();
    let mut f = Fixture::new();
    f.server = DigestServer::new([9; 32], LIFETIME, t0).with_max_tracked_nonces(2);
    f.t0 = t0;
    let mut nonces = Vec::new();
    for secs in 0..3 {
        let c = f.challenge(secs, Algorithm::Sha256);
        f.verify(secs, &alice(&c, 1)).unwrap();
        nonces.push(c);
    }
    assert_eq!(f.server.tracked_nonces(), 2);
    // The first nonce's record was evicted; it must not become replayable.
    assert_eq!(f.verify(5, &alice(&nonces[0], 1)), Err(AuthError::Stale));
    assert_eq!(f.verify(5, &alice(&nonces[1], 1)), Err(AuthError::Replayed("alice".into())));
    assert!(f.verify(5, &alice(&nonces[2], 2)).is_ok());
}

#[test]
fn client_prefers_sha256_and_counts_up() {
    let mut f = Fixture::new();
    let mut values = f.server.challenge(f.at(0), REALM, false);
    values.reverse(); // MD5 first: order must not matter
    let mut client = DigestClient::new("alice", "s3cret");
    let realms = client.on_challenges(values.iter().map(String::as_str)).unwrap();
    assert_eq!(realms, [REALM]);

    for nc in 1..=3 {
        let creds = client.authorize(REALM, "REGISTER", URI).unwrap();
        assert_eq!((creds.algorithm, creds.nc), (Algorithm::Sha256, Some(nc)));
        assert!(f.verify(nc.into(), &creds).is_ok());
    }
    assert!(client.authorize("other", "REGISTER", URI).is_none());
}

#[test]
fn client_retries_stale_but_not_rejected() {
    let mut f = Fixture::new();
    let mut client = DigestClient::new("alice", "wrong");
    let values = f.server.challenge(f.at(0), REALM, false);
    client.on_challenges(values.iter().map(String::as_str)).unwrap();
    let creds = client.authorize(REALM, "REGISTER", URI).unwrap();
    assert!(matches!(f.verify(1, &creds), Err(AuthError::BadResponse(_))));

    let again = f.server.challenge(f.at(1), REALM, false);
    assert_eq!(
        client.on_challenges(again.iter().map(String::as_str)),
        Err(ClientError::Rejected(REALM.into()))
    );

    let stale = f.server.challenge(f.at(2), REALM, true);
    client.on_challenges(stale.iter().map(String::as_str)).unwrap();
    client.authorize(REALM, "REGISTER", URI).unwrap();
    let stale_again = f.server.challenge(f.at(3), REALM, true);
    assert!(client.on_challenges(stale_again.iter().map(String::as_str)).is_ok());
}

#[test]
fn client_skips_unusable_challenges() {
    let mut client = DigestClient::new("alice", "s3cret");
    let got = client.on_challenges([
        r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#,
        r#"Digest realm="r", nonce="m", algorithm=MD5, qop="auth""#,
    ]);
    assert_eq!(got, Ok(vec!["r".to_owned()]));
    assert_eq!(client.authorize("r", "INVITE", "sip:x").unwrap().nonce, "m");
    assert_eq!(
        DigestClient::new("a", "b").on_challenges(["Basic realm=\"r\""]),
        Err(ClientError::NoUsableChallenge(HeaderError::NotDigest))
    );
}

fn field() -> impl Strategy<Value = String> {
    any::<String>()
        .prop_map(|s| s.chars().filter(|c| !c.is_ascii_control() || *c == '\t').collect())
}

proptest! {
    #[test]
    fn header_parsers_never_panic(s in any::<String>()) {
        let _ = DigestChallenge::parse(&s);
        let _ = DigestCredentials::parse(&s);
        let _ = DigestCredentials::parse(&format!("Digest {s}"));
    }

    #[test]
    fn credentials_round_trip(
        username in field(), realm in field(), nonce in field(), uri in field(),
        cnonce in proptest::option::of(field()), nc in proptest::option::of(any::<u32>()),
        opaque in proptest::option::of(field()), sha in any::<bool>(),
    ) {
        let creds = DigestCredentials {
            username, realm, nonce, uri,
            response: "0123abcd".into(),
            algorithm: if sha { Algorithm::Sha256 } else { Algorithm::Md5 },
            cnonce, nc, qop: Some("auth".into()), opaque,
        };
        let printed = creds.to_header_value();
        prop_assume!(printed.len() <= MAX_HEADER_VALUE_BYTES);
        prop_assert_eq!(DigestCredentials::parse(&printed), Ok(creds));
    }
}
