//! REGISTER processing as RFC 3261 §10.3 describes, after authentication: validate every
//! Contact first, then apply all changes or none.

mod contact;
mod location;

pub use contact::{parse_contact, ContactError, ContactValue};
pub use location::{Binding, Location, UserKey};

use hark_sip::rsip::{Header, Request};
use hark_sip::rsip::headers::UntypedHeader;
use hark_sip::transport::Peer;
use hark_sip::SipHeaders;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct RegistrarConfig {
    /// Shorter requested intervals get 423 Interval Too Brief.
    pub min_expires: u32,
    /// Longer requested intervals are granted this long.
    pub max_expires: u32,
    pub default_expires: u32,
    /// Bindings one user may hold; more is refused (a bound on memory per account).
    pub max_contacts: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self { min_expires: 60, max_expires: 3600, default_expires: 3600, max_contacts: 10 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("Interval Too Brief")]
    IntervalTooBrief { min_expires: u32 },
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("Too many contacts for this user")]
    TooManyContacts,
    #[error("Out of order REGISTER")]
    OutOfOrder,
}

impl RegisterError {
    pub fn status_code(&self) -> u16 {
        match self {
            RegisterError::IntervalTooBrief { .. } => 423,
            RegisterError::BadRequest(_) => 400,
            RegisterError::TooManyContacts => 403,
            RegisterError::OutOfOrder => 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum BindingChange {
    Upsert(UserKey, Binding),
    Remove(UserKey, String),
}

/// Applies a REGISTER to the location service; returns the changes made (for the store).
pub fn apply_register(
    location: &mut Location,
    user: &UserKey,
    req: &Request,
    source: Peer,
    now: Instant,
    config: &RegistrarConfig,
) -> Result<Vec<BindingChange>, RegisterError> {
    let call_id = req.call_id().map_err(|_| RegisterError::BadRequest("Missing Call-ID"))?;
    let (cseq, _) = req.cseq().map_err(|_| RegisterError::BadRequest("Malformed CSeq"))?;
    let header_expires = match req.headers.iter().find_map(|h| match h {
        Header::Expires(e) => Some(e.value().trim().to_owned()),
        _ => None,
    }) {
        Some(v) => Some(v.parse::<u32>().map_err(|_| RegisterError::BadRequest("Malformed Expires"))?),
        None => None,
    };
    let user_agent = req.headers.iter().find_map(|h| match h {
        Header::UserAgent(ua) => Some(ua.value().chars().take(200).collect::<String>()),
        _ => None,
    });
    let contacts: Vec<&str> = req
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Contact(c) => Some(c.value()),
            _ => None,
        })
        .collect();

    if contacts.iter().any(|c| c.trim() == "*") {
        // §10.3 step 6: "*" only alone and only with Expires: 0.
        if contacts.len() != 1 || header_expires != Some(0) {
            return Err(RegisterError::BadRequest("Contact * needs Expires: 0 and no other contact"));
        }
        let existing = location.bindings(user);
        if existing.iter().any(|b| b.call_id == call_id && b.cseq >= cseq) {
            return Err(RegisterError::OutOfOrder);
        }
        return Ok(location
            .remove_all(user)
            .into_iter()
            .map(|b| BindingChange::Remove(user.clone(), b.contact))
            .collect());
    }

    // Validate everything before changing anything.
    let mut planned = Vec::with_capacity(contacts.len());
    for raw in &contacts {
        let c = parse_contact(raw).map_err(|_| RegisterError::BadRequest("Malformed Contact"))?;
        let expires = match &c.expires {
            Some(v) => v.parse::<u32>().map_err(|_| RegisterError::BadRequest("Malformed expires parameter"))?,
            None => header_expires.unwrap_or(config.default_expires),
        };
        if expires != 0 && expires < config.min_expires {
            return Err(RegisterError::IntervalTooBrief { min_expires: config.min_expires });
        }
        if let Some(existing) = location.bindings(user).iter().find(|b| b.contact == c.uri)
            && existing.call_id == call_id && existing.cseq >= cseq {
                return Err(RegisterError::OutOfOrder);
            }
        planned.push((c, expires.min(config.max_expires)));
    }
    let existing: Vec<&str> = location.bindings(user).iter().map(|b| b.contact.as_str()).collect();
    let mut after: Vec<&str> = existing.clone();
    for (c, expires) in &planned {
        if *expires == 0 {
            after.retain(|e| *e != c.uri);
        } else if !after.contains(&c.uri.as_str()) {
            after.push(&c.uri);
        }
    }
    if after.len() > config.max_contacts {
        return Err(RegisterError::TooManyContacts);
    }

    let mut changes = Vec::with_capacity(planned.len());
    for (c, expires) in planned {
        if expires == 0 {
            if location.remove(user, &c.uri) {
                changes.push(BindingChange::Remove(user.clone(), c.uri));
            }
            continue;
        }
        let binding = Binding {
            contact: c.uri,
            expires_at: now + Duration::from_secs(u64::from(expires)),
            q: c.q,
            call_id: call_id.clone(),
            cseq,
            source,
            user_agent: user_agent.clone(),
            instance: c.instance,
        };
        location.upsert(user, binding.clone());
        changes.push(BindingChange::Upsert(user.clone(), binding));
    }
    Ok(changes)
}

/// Contact header values for the 200 OK: every current binding with its remaining time.
pub fn contacts_for_response(location: &Location, user: &UserKey, now: Instant) -> Vec<String> {
    location
        .bindings(user)
        .iter()
        .map(|b| {
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            format!("<{}>;expires={left}", b.contact)
        })
        .collect()
}

#[cfg(test)]
mod tests;
