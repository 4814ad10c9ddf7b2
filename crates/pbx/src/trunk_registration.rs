//! Registering the PBX to a carrier (a trunk with credentials), sans-IO.
//!
//! One [`TrunkRegistration`] per trunk: it builds the REGISTER (`To`/`From`
//! `sip:USERNAME@HOST`, our Contact, `Expires: 300`), answers the carrier's 401/407 with
//! digest credentials, refreshes at 80% of the expiry the carrier granted, and backs off
//! after failures (5 s, doubling, at most 5 min). A wrong password never loops: when the
//! carrier refuses the credentials we answered its challenge with (a new challenge with
//! the same nonce and without `stale`), this round has failed and the next one waits for
//! the back-off. Later rounds send the credentials of the last challenge right away, so a
//! refresh costs one round trip.
//!
//! It reads no clock and owns no socket: the core asks `poll_request(now)` for a REGISTER
//! when one is due, sends it in a client transaction, and brings back the final
//! response (`handle_response`) or the transaction's failure (`handle_failure`).
//!
//! The carrier addresses calls to the Contact we register, whose user part is the trunk's
//! username; the number dialled is then usually in the To header.

use crate::b2bua::LocalAddrs;
use crate::directory::Trunk;
use hark_sip::auth::{DigestChallenge, DigestClient};
use hark_sip::dialog::top_via;
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{self, Header, Method, Request, Response, Uri};
use hark_sip::transport::{Peer, Transport};
use hark_sip::{Branch, CallId, NameAddr, Tag};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Registration interval asked for.
pub const DEFAULT_EXPIRES: u32 = 300;
/// First wait after a failure; doubled per failure in a row, up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Longest wait for a final response (the transaction layer's own timeout, 64*T1 = 32 s,
/// normally comes first; this is the backstop).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(40);
/// Credentialed answers to challenges within one round (a carrier may issue a new nonce
/// once, e.g. when the first expired in between).
const MAX_AUTH_ANSWERS: u32 = 2;
/// The largest interval accepted from a 423's Min-Expires.
const MAX_EXPIRES: u32 = 86_400;

/// Where a trunk's registration stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrunkRegState {
    /// A REGISTER is on its way (the first one, or after a failure).
    Registering,
    /// The carrier holds our binding until `until` (a refresh is scheduled before).
    Registered { until: Instant },
    /// The last round failed; another one follows after the back-off.
    Failed { reason: String },
}

/// The REGISTER waiting for its final response.
#[derive(Debug)]
struct InFlight {
    request: Request,
    deadline: Instant,
    /// The nonce of the credentials the request carries, if any.
    nonce: Option<String>,
    /// Challenges answered within this round.
    answers: u32,
}

/// The registration of one trunk to its carrier.
pub struct TrunkRegistration {
    trunk_id: i64,
    name: String,
    host: String,
    host_part: String,
    addr: SocketAddr,
    username: String,
    password: String,
    local: LocalAddrs,
    expires: u32,
    call_id: CallId,
    from_tag: Tag,
    cseq: u32,
    digest: DigestClient,
    /// The realm whose challenge was last answered successfully (for the next round).
    realm: Option<String>,
    state: TrunkRegState,
    next_at: Option<Instant>,
    in_flight: Option<InFlight>,
    failures: u32,
}

impl std::fmt::Debug for TrunkRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkRegistration")
            .field("trunk_id", &self.trunk_id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("username", &self.username)
            .field("state", &self.state)
            .field("next_at", &self.next_at)
            .finish_non_exhaustive()
    }
}

/// The expiry granted: our Contact's `expires` parameter, else the Expires header.
fn granted_expires(resp: &Response, our_uri: &str) -> Option<u32> {
    let from_contact = resp.headers.iter().find_map(|h| match h {
        Header::Contact(c) => {
            let n = NameAddr::parse(c.value()).ok()?;
            if n.uri != our_uri {
                return None;
            }
            n.param("expires").and_then(|e| e.trim().parse().ok())
        }
        _ => None,
    });
    from_contact.or_else(|| {
        resp.headers.iter().find_map(|h| match h {
            Header::Expires(e) => e.value().trim().parse().ok(),
            _ => None,
        })
    })
}

fn reason_of(resp: &Response) -> String {
    let phrase = match &resp.status_code {
        rsip::StatusCode::Other(_, reason) if !reason.trim().is_empty() => reason.trim().to_owned(),
        other => hark_sip::serialize::reason_phrase(other.code()).to_owned(),
    };
    format!("{} {phrase}", resp.status_code.code()).trim_end().to_owned()
}

fn challenges(resp: &Response) -> Vec<String> {
    resp.headers
        .iter()
        .filter_map(|h| match h {
            Header::WwwAuthenticate(v) => Some(v.value().to_owned()),
            Header::ProxyAuthenticate(v) => Some(v.value().to_owned()),
            _ => None,
        })
        .collect()
}

impl TrunkRegistration {
    /// The registration of `trunk`, due at `now`; `None` for a trunk without credentials
    /// (the carrier authenticates it by address, nothing to register).
    pub fn new(trunk: &Trunk, local: LocalAddrs, now: Instant) -> Option<Self> {
        let (username, password) = (trunk.username.clone()?, trunk.password.clone()?);
        let host_part = crate::store::split_trunk_host(&trunk.host)
            .map(|(h, _)| h.to_owned())
            .unwrap_or_else(|_| trunk.host.clone());
        Some(Self {
            trunk_id: trunk.id,
            name: trunk.name.clone(),
            host: trunk.host.clone(),
            host_part,
            addr: trunk.addr,
            username: username.clone(),
            password: password.clone(),
            local,
            expires: DEFAULT_EXPIRES,
            call_id: CallId::random(),
            from_tag: Tag::random(),
            cseq: 0,
            digest: DigestClient::new(username, password),
            realm: None,
            state: TrunkRegState::Registering,
            next_at: Some(now),
            in_flight: None,
            failures: 0,
        })
    }

    pub fn trunk_id(&self) -> i64 {
        self.trunk_id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the REGISTERs go.
    pub fn peer(&self) -> Peer {
        Peer::udp(self.addr)
    }

    pub fn state(&self) -> &TrunkRegState {
        &self.state
    }

    pub fn is_registered(&self, now: Instant) -> bool {
        matches!(self.state, TrunkRegState::Registered { until } if until > now)
    }

    /// True while `trunk` still describes this registration (same carrier and account);
    /// otherwise it must be replaced.
    pub fn matches(&self, trunk: &Trunk) -> bool {
        trunk.id == self.trunk_id
            && trunk.host == self.host
            && trunk.addr == self.addr
            && trunk.username.as_deref() == Some(self.username.as_str())
            && trunk.password.as_deref() == Some(self.password.as_str())
    }

    /// Our address for Via and Contact (set before every poll: it is known only once the
    /// sockets are bound).
    pub fn set_local(&mut self, local: LocalAddrs) {
        self.local = local;
    }

    /// When `poll_request` or `handle_timeout` next has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        match &self.in_flight {
            Some(f) => Some(f.deadline),
            None => self.next_at,
        }
    }

    /// The REGISTER to send now, if one is due.
    pub fn poll_request(&mut self, now: Instant) -> Option<Request> {
        if self.in_flight.is_some() || self.next_at.is_none_or(|at| at > now) {
            return None;
        }
        self.next_at = None;
        if !matches!(self.state, TrunkRegState::Registered { .. }) {
            self.state = TrunkRegState::Registering;
        }
        let mut req = self.build_register(self.expires);
        let nonce = self.authorize_unasked(&mut req);
        self.in_flight = Some(InFlight { request: req.clone(), deadline: now + RESPONSE_TIMEOUT, nonce, answers: 0 });
        Some(req)
    }

    /// A REGISTER with `Expires: 0` that removes our binding at the carrier, for a trunk
    /// that was removed or changed; `None` when the carrier holds no binding of ours. Its
    /// answer is of no interest (a challenge to it is not answered): the registration
    /// ends here.
    pub fn unregister_request(&mut self, now: Instant) -> Option<Request> {
        if !self.is_registered(now) {
            return None;
        }
        self.in_flight = None;
        self.next_at = None;
        self.state = TrunkRegState::Failed { reason: "unregistered".into() };
        let mut req = self.build_register(0);
        self.authorize_unasked(&mut req);
        Some(req)
    }

    /// Adds credentials for the last challenge answered, if any (the carrier re-challenges
    /// when the nonce is no longer good, and that is not a refusal). Returns their nonce.
    fn authorize_unasked(&mut self, req: &mut Request) -> Option<String> {
        let realm = self.realm.clone()?;
        let creds = self.digest.authorize(&realm, "REGISTER", &req.uri.to_string())?;
        req.headers.push(Header::Authorization(rsip::headers::Authorization::new(creds.to_header_value())));
        Some(creds.nonce)
    }

    /// A final (or provisional, ignored) response to the REGISTER in flight. Returns a
    /// follow-up to send at once: the REGISTER with credentials after a challenge, or
    /// with a longer interval after 423.
    pub fn handle_response(&mut self, now: Instant, resp: &Response) -> Option<Request> {
        let code = resp.status_code.code();
        if code < 200 {
            return None;
        }
        let flight = self.in_flight.take()?;
        match code {
            200..=299 => {
                let our_uri = self.contact_uri();
                let expires = granted_expires(resp, &our_uri).unwrap_or(self.expires);
                if expires == 0 {
                    self.fail(now, "the carrier granted no registration time (expires 0)".into());
                    return None;
                }
                let was_registered = matches!(self.state, TrunkRegState::Registered { .. });
                self.failures = 0;
                self.state = TrunkRegState::Registered { until: now + Duration::from_secs(u64::from(expires)) };
                // Refresh at 80% of the granted time, never sooner than a second.
                let refresh = Duration::from_millis(u64::from(expires) * 800).max(Duration::from_secs(1));
                self.next_at = Some(now + refresh);
                if was_registered {
                    tracing::debug!(trunk = %self.name, expires, "trunk registration refreshed");
                } else {
                    tracing::info!(trunk = %self.name, carrier = %self.host, username = %self.username, expires, "trunk registered");
                }
                None
            }
            401 | 407 => self.answer_challenge(now, flight, resp),
            423 => {
                let min = resp.headers.iter().find_map(|h| match h {
                    Header::MinExpires(m) => m.value().trim().parse::<u32>().ok(),
                    _ => None,
                });
                match min.filter(|m| *m > self.expires && *m <= MAX_EXPIRES) {
                    Some(min) => {
                        self.expires = min;
                        let mut req = flight.request;
                        req.headers.retain(|h| !matches!(h, Header::Expires(_)));
                        req.headers.push(Header::Expires(rsip::headers::Expires::new(min.to_string())));
                        self.resend(now, req, flight.nonce, flight.answers)
                    }
                    None => {
                        self.fail(now, reason_of(resp));
                        None
                    }
                }
            }
            _ => {
                self.fail(now, reason_of(resp));
                None
            }
        }
    }

    fn answer_challenge(&mut self, now: Instant, flight: InFlight, resp: &Response) -> Option<Request> {
        let values = challenges(resp);
        let parsed: Vec<DigestChallenge> = values.iter().filter_map(|v| DigestChallenge::parse(v).ok()).collect();
        if parsed.is_empty() {
            self.fail(now, format!("{} without a usable digest challenge", reason_of(resp)));
            return None;
        }
        if flight.answers > 0 {
            // We answered a challenge in this round and are challenged again: the
            // credentials were refused, unless the nonce merely went stale or changed.
            let same_nonce = parsed.iter().any(|c| flight.nonce.as_deref() == Some(c.nonce.as_str()));
            let stale = parsed.iter().any(|c| c.stale);
            if (same_nonce && !stale) || flight.answers >= MAX_AUTH_ANSWERS {
                self.fail(now, format!("{}: the carrier refused the username or password", reason_of(resp)));
                return None;
            }
        }
        // A fresh challenge (also one to credentials we sent unasked): answer it.
        for c in &parsed {
            self.digest.forget(&c.realm);
        }
        let realms = match self.digest.on_challenges(values.iter().map(String::as_str)) {
            Ok(r) => r,
            Err(e) => {
                self.fail(now, format!("{}: {e}", reason_of(resp)));
                return None;
            }
        };
        let mut req = flight.request;
        let uri = req.uri.to_string();
        let Some((realm, creds)) =
            realms.iter().find_map(|r| self.digest.authorize(r, "REGISTER", &uri).map(|c| (r.clone(), c)))
        else {
            self.fail(now, format!("{}: challenge could not be answered", reason_of(resp)));
            return None;
        };
        self.realm = Some(realm);
        req.headers.retain(|h| !matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)));
        let value = creds.to_header_value();
        req.headers.push(if resp.status_code.code() == 407 {
            Header::ProxyAuthorization(rsip::headers::ProxyAuthorization::new(value))
        } else {
            Header::Authorization(rsip::headers::Authorization::new(value))
        });
        self.resend(now, req, Some(creds.nonce), flight.answers + 1)
    }

    /// The same REGISTER as a new transaction: next CSeq, new branch.
    fn resend(&mut self, now: Instant, mut req: Request, nonce: Option<String>, answers: u32) -> Option<Request> {
        self.cseq += 1;
        let mut headers = rsip::Headers::default();
        for h in req.headers.iter() {
            match h {
                Header::Via(_) => headers.push(self.via().into()),
                Header::CSeq(_) => headers.push(rsip::typed::CSeq { seq: self.cseq, method: Method::Register }.into()),
                other => headers.push(other.clone()),
            }
        }
        req.headers = headers;
        self.in_flight = Some(InFlight { request: req.clone(), deadline: now + RESPONSE_TIMEOUT, nonce, answers });
        Some(req)
    }

    /// The REGISTER's transaction failed without a final response (timeout, transport
    /// error): the round failed.
    pub fn handle_failure(&mut self, now: Instant, reason: &str) {
        if self.in_flight.take().is_some() {
            self.fail(now, reason.to_owned());
        }
    }

    /// Time passing: a REGISTER without a final response by its deadline has failed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.in_flight.as_ref().is_some_and(|f| f.deadline <= now) {
            self.in_flight = None;
            self.fail(now, "no response from the carrier".into());
        }
    }

    fn fail(&mut self, now: Instant, reason: String) {
        self.failures = self.failures.saturating_add(1);
        let wait = backoff(self.failures);
        // Start the next round afresh: no credentials until challenged.
        if let Some(realm) = self.realm.take() {
            self.digest.forget(&realm);
        }
        self.next_at = Some(now + wait);
        tracing::warn!(trunk = %self.name, carrier = %self.host, %reason, retry_in_s = wait.as_secs(), "trunk registration failed");
        self.state = TrunkRegState::Failed { reason };
    }

    fn via(&self) -> rsip::typed::Via {
        top_via(Transport::Udp, self.local.sent_by(Transport::Udp), &Branch::random())
    }

    fn contact_uri(&self) -> String {
        format!("sip:{}@{}", self.username, SocketAddr::new(self.local.ip, self.local.udp_port))
    }

    fn build_register(&mut self, expires: u32) -> Request {
        self.cseq += 1;
        let aor = format!("sip:{}@{}", self.username, self.host_part);
        let mut headers = rsip::Headers::default();
        headers.push(self.via().into());
        headers.push(Header::MaxForwards(70.into()));
        headers.push(Header::From(rsip::headers::From::new(format!("<{aor}>;tag={}", self.from_tag))));
        headers.push(Header::To(rsip::headers::To::new(format!("<{aor}>"))));
        headers.push(Header::CallId(self.call_id.as_str().into()));
        headers.push(rsip::typed::CSeq { seq: self.cseq, method: Method::Register }.into());
        headers.push(Header::Contact(rsip::headers::Contact::new(format!("<{}>", self.contact_uri()))));
        headers.push(Header::Expires(rsip::headers::Expires::new(expires.to_string())));
        headers.push(Header::UserAgent(rsip::headers::UserAgent::new(crate::core::SERVER)));
        // The registrar's URI: the carrier's address as configured.
        let uri = Uri::try_from(format!("sip:{}", self.host).as_str())
            .or_else(|_| Uri::try_from(format!("sip:{}", self.addr).as_str()))
            .unwrap_or_default();
        Request { method: Method::Register, uri, version: rsip::Version::V2, headers, body: Vec::new() }
    }
}

/// The wait after `failures` failed rounds in a row: 5 s, 10 s, 20 s, ... at most 5 min.
pub fn backoff(failures: u32) -> Duration {
    let shift = failures.saturating_sub(1).min(16);
    MIN_BACKOFF.saturating_mul(1u32 << shift).min(MAX_BACKOFF)
}

#[cfg(test)]
#[path = "trunk_registration_tests.rs"]
mod tests;
