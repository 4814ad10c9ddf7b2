//! The location service: who is reachable where, right now. In memory for speed; the
//! serve loop persists every change (write-behind) so bindings survive a restart.

use hark_sip::transport::Peer;
use hark_sip::CallId;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

/// Identifies a user across tenants: (tenant id, extension).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey {
    pub tenant_id: i64,
    pub extension: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    /// The Contact URI as registered, e.g. `sip:101@192.0.2.4:5062;transport=udp`.
    pub contact: String,
    pub expires_at: Instant,
    pub q: Option<String>,
    pub call_id: CallId,
    pub cseq: u32,
    /// Where the REGISTER came from: requests to this contact go there (NAT traversal).
    pub source: Peer,
    pub user_agent: Option<String>,
    pub instance: Option<String>,
}

#[derive(Debug, Default)]
pub struct Location {
    users: HashMap<UserKey, Vec<Binding>>,
    live: usize,
    // Lazy deletion: an entry is stale when the binding's expiry has since changed.
    expiries: BinaryHeap<Reverse<(Instant, UserKey, String)>>,
}

impl Location {
    pub fn bindings(&self, user: &UserKey) -> &[Binding] {
        self.users.get(user).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Live bindings across all users.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn upsert(&mut self, user: &UserKey, binding: Binding) {
        self.expiries.push(Reverse((binding.expires_at, user.clone(), binding.contact.clone())));
        let list = self.users.entry(user.clone()).or_default();
        match list.iter_mut().find(|b| b.contact == binding.contact) {
            Some(existing) => *existing = binding,
            None => {
                list.push(binding);
                self.live += 1;
            }
        }
    }

    pub fn remove(&mut self, user: &UserKey, contact: &str) -> bool {
        let Some(list) = self.users.get_mut(user) else { return false };
        let before = list.len();
        list.retain(|b| b.contact != contact);
        let removed = before != list.len();
        if removed {
            self.live -= 1;
        }
        if list.is_empty() {
            self.users.remove(user);
        }
        removed
    }

    pub fn remove_all(&mut self, user: &UserKey) -> Vec<Binding> {
        let list = self.users.remove(user).unwrap_or_default();
        self.live -= list.len();
        list
    }

    /// Drops bindings whose time is up; returns them so the store can forget them too.
    pub fn expire(&mut self, now: Instant) -> Vec<(UserKey, String)> {
        let mut gone = Vec::new();
        while let Some(Reverse((at, _, _))) = self.expiries.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, user, contact))) = self.expiries.pop() else { break };
            let still_due = self
                .bindings(&user)
                .iter()
                .any(|b| b.contact == contact && b.expires_at == at);
            if still_due && self.remove(&user, &contact) {
                gone.push((user, contact));
            }
        }
        gone
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.expiries.peek().map(|Reverse((at, _, _))| *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn binding(contact: &str, expires_at: Instant) -> Binding {
        Binding {
            contact: contact.into(),
            expires_at,
            q: None,
            call_id: CallId::new("c"),
            cseq: 1,
            source: Peer::udp("127.0.0.1:5060".parse().unwrap()),
            user_agent: None,
            instance: None,
        }
    }

    #[test]
    fn refreshed_bindings_do_not_expire_at_their_old_time() {
        let t0 = Instant::now();
        let mut loc = Location::default();
        let u = UserKey { tenant_id: 1, extension: "101".into() };
        loc.upsert(&u, binding("sip:a", t0 + Duration::from_secs(10)));
        loc.upsert(&u, binding("sip:b", t0 + Duration::from_secs(20)));
        loc.upsert(&u, binding("sip:a", t0 + Duration::from_secs(30)));
        assert_eq!(loc.len(), 2);
        assert!(loc.expire(t0 + Duration::from_secs(11)).is_empty());
        assert_eq!(loc.expire(t0 + Duration::from_secs(21)), vec![(u.clone(), "sip:b".to_string())]);
        assert_eq!(loc.expire(t0 + Duration::from_secs(31)).len(), 1);
        assert!(loc.is_empty());
        assert_eq!(loc.next_expiry(), None);
    }
}
