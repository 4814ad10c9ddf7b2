//! Brute-force protection. SIP scanners try passwords on every public port 5060; after
//! too many failed authentications from one address, every request from it gets 403 for
//! a while. The ban is logged once when it starts and once when it ends, never per packet.
//! A success does not clear the count: one valid account must not let an address keep
//! guessing another's password. Failures age out with the window instead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The reason phrase of the 403 a banned address gets, so its user learns why their
/// right password stopped working.
pub const BANNED_REASON: &str = "Forbidden (too many failed logins from this address; try again later)";

#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Failures within `window` that start a ban.
    pub max_failures: u32,
    pub window: Duration,
    pub ban: Duration,
    /// Addresses tracked at most; beyond it the oldest quiet entries are forgotten.
    pub max_tracked: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self { max_failures: 10, window: Duration::from_secs(60), ban: Duration::from_secs(300), max_tracked: 100_000 }
    }
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    window_start: Instant,
    banned_until: Option<Instant>,
    refused: u64,
}

#[derive(Debug, Default)]
pub struct AuthGuard {
    config: GuardConfig,
    entries: HashMap<IpAddr, Entry>,
}

impl AuthGuard {
    pub fn new(config: GuardConfig) -> Self {
        Self { config, entries: HashMap::new() }
    }

    /// True while `ip` is banned; counts the refusal.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        let Some(entry) = self.entries.get_mut(&ip) else { return false };
        match entry.banned_until {
            Some(until) if now < until => {
                entry.refused += 1;
                true
            }
            Some(_) => {
                tracing::info!(%ip, refused = entry.refused, "authentication ban lifted");
                self.entries.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Records a failed authentication; true when this failure started a ban.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.entries.len() >= self.config.max_tracked && !self.entries.contains_key(&ip) {
            self.prune(now);
            if self.entries.len() >= self.config.max_tracked {
                return false;
            }
        }
        let window = self.config.window;
        let entry = self.entries.entry(ip).or_insert(Entry { failures: 0, window_start: now, banned_until: None, refused: 0 });
        if now.duration_since(entry.window_start) > window {
            entry.failures = 0;
            entry.window_start = now;
        }
        entry.failures += 1;
        if entry.banned_until.is_none() && entry.failures >= self.config.max_failures {
            entry.banned_until = Some(now + self.config.ban);
            tracing::warn!(%ip, failures = entry.failures, ban_secs = self.config.ban.as_secs(), "too many failed authentications; address banned");
            return true;
        }
        false
    }

    /// Forgets quiet entries whose window or ban is over.
    pub fn prune(&mut self, now: Instant) {
        let window = self.config.window;
        self.entries.retain(|_, e| match e.banned_until {
            Some(until) => now < until,
            None => now.duration_since(e.window_start) <= window,
        });
    }

    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> AuthGuard {
        AuthGuard::new(GuardConfig { max_failures: 3, window: Duration::from_secs(60), ban: Duration::from_secs(300), max_tracked: 2 })
    }

    #[test]
    fn bans_after_repeated_failures_then_lifts() {
        let (mut g, t0, ip) = (guard(), Instant::now(), "192.0.2.1".parse().unwrap());
        assert!(!g.record_failure(ip, t0));
        assert!(!g.record_failure(ip, t0));
        assert!(!g.check(ip, t0));
        assert!(g.record_failure(ip, t0), "third failure starts the ban");
        assert!(!g.record_failure(ip, t0), "a ban starts once");
        assert!(g.check(ip, t0 + Duration::from_secs(299)));
        assert!(!g.check(ip, t0 + Duration::from_secs(301)));
        assert_eq!(g.tracked(), 0);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let (mut g, t0, ip) = (guard(), Instant::now(), "192.0.2.1".parse().unwrap());
        g.record_failure(ip, t0);
        g.record_failure(ip, t0);
        assert!(!g.record_failure(ip, t0 + Duration::from_secs(61)));
        g.prune(t0 + Duration::from_secs(200));
        assert_eq!(g.tracked(), 0);
    }

    #[test]
    fn tracking_is_bounded() {
        let (mut g, t0) = (guard(), Instant::now());
        for i in 0..10u8 {
            g.record_failure(IpAddr::from([192, 0, 2, i]), t0);
        }
        assert!(g.tracked() <= 2);
    }
}
