//! Registration (RFC 3261 §10): REGISTER with digest auth, refresh before expiry, and
//! back-off after failures.

use super::build::{cseq_of, new_branch, reason_of, set_cseq};
use super::{Phone, TxPurpose};
use crate::config::RegistrationTiming;
use crate::event::{PhoneEvent, RegistrationFailure};
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::rsip::{self, Header, Method, Request, Response, Uri};
use hark_sip::{CallId, NameAddr, Tag};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq, Eq)]
enum RegState {
    Idle,
    /// A REGISTER is in flight.
    Sending,
    Registered,
    /// Waiting to retry after a failure.
    Failed,
}

/// The registration's identifiers and timers.
#[derive(Debug)]
pub(super) struct Registration {
    timing: RegistrationTiming,
    call_id: CallId,
    from_tag: Tag,
    cseq: u32,
    state: RegState,
    /// The REGISTER in flight (for a digest retry) and how often it was challenged.
    request: Option<Request>,
    auth_tries: u32,
    /// When to send the next REGISTER (refresh or retry).
    next_at: Option<Instant>,
    failures: u32,
    /// The Expires of the REGISTER in flight (0 = unregister).
    expires: u32,
}

impl Registration {
    pub(super) fn new(timing: RegistrationTiming) -> Self {
        Self {
            timing,
            call_id: CallId::random(),
            from_tag: Tag::random(),
            cseq: 0,
            state: RegState::Idle,
            request: None,
            auth_tries: 0,
            next_at: None,
            failures: 0,
            expires: timing.expires,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// The wait before the next try: retry_min doubled per failure, capped.
    fn backoff(&self) -> Duration {
        let shift = self.failures.saturating_sub(1).min(16);
        self.timing.retry_min.saturating_mul(1u32 << shift).min(self.timing.retry_max)
    }
}

/// When to refresh a binding granted for `expires` seconds: halfway for short ones,
/// else 30 s before it lapses (never sooner than 1 s).
pub(crate) fn refresh_after(expires: u32) -> Duration {
    let secs = if expires <= 60 { expires / 2 } else { expires.saturating_sub(30).max(expires / 2) };
    Duration::from_secs(u64::from(secs.max(1)))
}

/// The expiry the registrar granted: our Contact's `expires` parameter, else Expires.
fn granted_expires(resp: &Response, our_contact: &str) -> Option<u32> {
    let ours = NameAddr::parse(our_contact).ok().map(|n| n.uri.to_owned());
    for h in resp.headers.iter() {
        if let Header::Contact(c) = h
            && let Ok(n) = NameAddr::parse(c.value())
            && ours.as_deref().is_none_or(|u| u == n.uri)
            && let Some(e) = n.param("expires").and_then(|e| e.trim().parse().ok())
        {
            return Some(e);
        }
    }
    resp.headers.iter().find_map(|h| match h {
        Header::Expires(e) => e.value().trim().parse().ok(),
        _ => None,
    })
}

impl Phone {
    pub(super) fn send_register(&mut self, now: Instant, expires: u32) {
        let account = &self.config.account;
        let Ok(uri) = Uri::try_from(format!("sip:{}", account.domain).as_str()) else {
            self.events.push_back(PhoneEvent::RegistrationFailed {
                failure: RegistrationFailure::Refused { code: 0, reason: format!("bad domain {:?}", account.domain) },
                retry_in_ms: None,
            });
            return;
        };
        self.reg.cseq += 1;
        let to = format!("<{}>", account.aor());
        let mut req = self.out_of_dialog_request(
            Method::Register,
            uri,
            &to,
            &self.reg.call_id.clone(),
            &self.reg.from_tag.clone(),
            self.reg.cseq,
            true,
        );
        req.headers.push(Header::Expires(rsip::headers::Expires::new(expires.to_string())));
        self.reg.expires = expires;
        self.reg.auth_tries = 0;
        self.reg.state = RegState::Sending;
        self.reg.next_at = None;
        self.start_register(now, req);
    }

    fn start_register(&mut self, now: Instant, req: Request) {
        self.reg.request = Some(req.clone());
        match self.tx.send_request(now, req, self.server_peer()) {
            Ok(id) => {
                self.purposes.insert(id, TxPurpose::Register);
            }
            Err(e) => tracing::warn!(error = %e, "REGISTER not sent"),
        }
    }

    /// Removes our binding (Expires: 0).
    pub fn unregister(&mut self, now: Instant) {
        if self.reg.state == RegState::Registered || self.reg.state == RegState::Sending {
            self.send_register(now, 0);
        }
        self.reg.next_at = None;
    }

    pub(super) fn on_register_response(&mut self, now: Instant, resp: Response) {
        let code = resp.status_code.code();
        if code < 200 {
            return;
        }
        if (code == 401 || code == 407) && self.reg.auth_tries < 2 {
            if let Some(mut req) = self.reg.request.take()
                && self.add_credentials(&mut req, &resp)
            {
                self.reg.auth_tries += 1;
                self.reg.cseq = cseq_of(&req) + 1;
                set_cseq(&mut req, self.reg.cseq);
                new_branch(&mut req, self.config.account.transport, self.local);
                self.start_register(now, req);
                return;
            }
            return self.register_failed(
                now,
                RegistrationFailure::BadCredentials { code, reason: reason_of(&resp) },
                false,
            );
        }
        if (200..300).contains(&code) {
            if self.reg.expires == 0 {
                self.reg.state = RegState::Idle;
                self.events.push_back(PhoneEvent::Unregistered);
                return;
            }
            let expires = granted_expires(&resp, &self.contact_value()).unwrap_or(self.reg.expires);
            self.reg.failures = 0;
            self.reg.state = RegState::Registered;
            self.reg.next_at = Some(now + refresh_after(expires));
            self.events.push_back(PhoneEvent::Registered { expires });
            return;
        }
        if code == 423 {
            // Interval too brief: ask for what the registrar wants (Min-Expires).
            let min = resp.headers.iter().find_map(|h| match h {
                Header::MinExpires(m) => m.value().trim().parse::<u32>().ok(),
                _ => None,
            });
            if let Some(min) = min.filter(|m| *m > self.reg.expires) {
                self.config.registration.expires = min;
                return self.send_register(now, min);
            }
        }
        let failure = if code == 403 || code == 401 || code == 407 {
            RegistrationFailure::BadCredentials { code, reason: reason_of(&resp) }
        } else {
            RegistrationFailure::Refused { code, reason: reason_of(&resp) }
        };
        // Wrong credentials stay wrong: retrying only feeds the server's brute-force guard.
        let retry = !matches!(failure, RegistrationFailure::BadCredentials { .. });
        self.register_failed(now, failure, retry);
    }

    pub(super) fn on_register_timeout(&mut self, now: Instant) {
        self.register_failed(now, RegistrationFailure::Timeout, true);
    }

    fn register_failed(&mut self, now: Instant, failure: RegistrationFailure, retry: bool) {
        self.reg.request = None;
        if self.reg.expires == 0 {
            self.reg.state = RegState::Idle;
            return;
        }
        self.reg.failures += 1;
        self.reg.state = RegState::Failed;
        let retry_in = retry.then(|| self.reg.backoff());
        self.reg.next_at = retry_in.map(|d| now + d);
        self.events.push_back(PhoneEvent::RegistrationFailed {
            failure,
            retry_in_ms: retry_in.map(|d| d.as_millis() as u64),
        });
    }

    pub(super) fn reg_timeout(&mut self, now: Instant) {
        if self.reg.next_at.is_some_and(|at| at <= now) {
            self.reg.next_at = None;
            let expires = self.config.registration.expires;
            self.send_register(now, expires);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_before_expiry() {
        assert_eq!(refresh_after(3600), Duration::from_secs(3570));
        assert_eq!(refresh_after(60), Duration::from_secs(30));
        assert_eq!(refresh_after(0), Duration::from_secs(1));
        assert_eq!(refresh_after(90), Duration::from_secs(60));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut r = Registration::new(RegistrationTiming {
            expires: 600,
            retry_min: Duration::from_secs(2),
            retry_max: Duration::from_secs(10),
        });
        let waits: Vec<u64> = (1..=5)
            .map(|n| {
                r.failures = n;
                r.backoff().as_secs()
            })
            .collect();
        assert_eq!(waits, vec![2, 4, 8, 10, 10]);
    }
}
