//! Trunks to carriers (SPEC §3): where a carrier is (host:port), how it is authenticated
//! (our registration with digest credentials, or its IP address), which dialled numbers
//! (DIDs) it brings in and to which extension, and which dialled numbers leave through it
//! (outbound patterns).
//!
//! Outbound patterns are regular expressions (the `regex` crate's syntax) that must match
//! the whole dialled number: `9\d+` matches "9030123" but not "19030123". When a pattern has
//! a capture group — the one named `number`, else the first — the number sent to the
//! carrier is what that group matched (`9(\d+)`: dial 9 for an outside line, the 9 is not
//! sent); without a group the dialled number goes out unchanged.

use rusqlite::{OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use super::error::{is_foreign_key_violation, is_unique_violation};
use super::validate::validate_extension;
use super::{Store, StoreError, TenantId};

/// Longest trunk name accepted.
pub const MAX_TRUNK_NAME_LEN: usize = 64;
/// Longest DID, caller id or forwarding number accepted (E.164 has at most 15 digits).
pub const MAX_NUMBER_LEN: usize = 32;
/// Longest outbound pattern accepted.
pub const MAX_PATTERN_LEN: usize = 256;
/// The SIP port used when `--host` names no port.
pub const DEFAULT_SIP_PORT: u16 = 5060;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TrunkId(pub i64);

impl std::fmt::Display for TrunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A trunk to create (`hark pbx trunk add`).
#[derive(Clone)]
pub struct NewTrunk {
    pub tenant_id: TenantId,
    pub name: String,
    /// The carrier's address, `host:port` (a name or an IP literal; IPv6 in brackets).
    pub host: String,
    /// Registration credentials; both or neither. Neither: the carrier is recognised by
    /// its IP address.
    pub username: Option<String>,
    pub password: Option<String>,
    /// (dialled number, extension) pairs for inbound calls.
    pub dids: Vec<(String, String)>,
    /// Outbound patterns, in the order they are tried.
    pub outbound: Vec<String>,
    /// Where inbound calls to other numbers go.
    pub default_extension: Option<String>,
    /// The number presented on outbound calls.
    pub caller_id: Option<String>,
}

impl NewTrunk {
    /// A trunk authenticated by its IP address, with no routes yet.
    pub fn new(tenant_id: TenantId, name: impl Into<String>, host: impl Into<String>) -> Self {
        NewTrunk {
            tenant_id,
            name: name.into(),
            host: host.into(),
            username: None,
            password: None,
            dids: Vec::new(),
            outbound: Vec::new(),
            default_extension: None,
            caller_id: None,
        }
    }
}

/// One inbound number of a trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Did {
    pub number: String,
    pub extension: String,
}

/// A stored trunk with its DIDs and outbound patterns.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Trunk {
    pub id: TrunkId,
    pub tenant_id: TenantId,
    pub name: String,
    pub host: String,
    pub username: Option<String>,
    /// Never serialized (`trunk list --json` must not print it).
    #[serde(skip)]
    pub password: Option<String>,
    pub default_extension: Option<String>,
    pub caller_id: Option<String>,
    pub dids: Vec<Did>,
    pub outbound: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

impl Trunk {
    /// True when the PBX registers to the carrier (it has credentials); false when the
    /// carrier is authenticated by its IP address.
    pub fn registers(&self) -> bool {
        self.username.is_some() && self.password.is_some()
    }
}

// The password is a carrier secret; keep it out of logs.
impl std::fmt::Debug for Trunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trunk")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("default_extension", &self.default_extension)
            .field("caller_id", &self.caller_id)
            .field("dids", &self.dids)
            .field("outbound", &self.outbound)
            .finish()
    }
}

impl std::fmt::Debug for NewTrunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTrunk")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("host", &self.host)
            .field("username", &self.username)
            .field("dids", &self.dids)
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}

/// A trunk name: 1–64 printable characters without leading or trailing spaces.
pub fn validate_trunk_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.chars().count() > MAX_TRUNK_NAME_LEN
        || name.trim() != name
        || name.chars().any(char::is_control)
    {
        return Err(StoreError::Invalid(format!(
            "invalid trunk name {name:?}: use 1 to {MAX_TRUNK_NAME_LEN} printable characters"
        )));
    }
    Ok(())
}

/// Splits `host[:port]` into the host (brackets kept for IPv6) and the port (5060 when
/// absent), checking both. The host is not resolved here.
pub fn split_trunk_host(host: &str) -> Result<(&str, u16), StoreError> {
    let bad = |why: &str| StoreError::Invalid(format!("invalid trunk host {host:?}: {why}"));
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("not an IPv6 address in brackets"));
        }
        let name = &host[..ip.len() + 2];
        match after {
            "" => (name, None),
            p => (name, Some(p.strip_prefix(':').ok_or_else(|| bad("expected :PORT after ']'"))?)),
        }
    } else {
        match host.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host, None),
        }
    };
    let port = match port {
        None => DEFAULT_SIP_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("the port must be a number from 1 to 65535")),
        },
    };
    if !name.starts_with('[') {
        if name.is_empty() || name.len() > 253 {
            return Err(bad("give the carrier's address as HOST:PORT"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
            return Err(bad("use letters, digits, '-' and '.' for the host, then :PORT"));
        }
    }
    Ok((name, port))
}

/// A phone number as carriers send and take them: an optional leading '+', then 1–31
/// digits.
pub fn validate_number(what: &str, number: &str) -> Result<(), StoreError> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty()
        || number.len() > MAX_NUMBER_LEN
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(StoreError::Invalid(format!(
            "invalid {what} {number:?}: use digits, optionally after a leading '+'"
        )));
    }
    Ok(())
}

/// A forwarding target: an extension of the tenant (letters or digits) or an external
/// number (digits, optionally after '+').
pub fn validate_forward_target(target: &str) -> Result<(), StoreError> {
    if target.starts_with('+') {
        return validate_number("forwarding number", target);
    }
    validate_extension(target).map_err(|_| {
        StoreError::Invalid(format!(
            "invalid forwarding target {target:?}: give an extension or a number (digits, optionally after '+')"
        ))
    })
}

/// Username for registering to a carrier: it goes into SIP URIs and digest headers, so
/// only characters that need no escaping there.
fn validate_username(username: &str) -> Result<(), StoreError> {
    if username.is_empty()
        || username.len() > 128
        || !username.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'+".contains(&b))
    {
        return Err(StoreError::Invalid(format!(
            "invalid trunk username {username:?}: use 1 to 128 letters, digits or -_.!~*'+"
        )));
    }
    Ok(())
}

fn validate_password(password: &str) -> Result<(), StoreError> {
    if password.is_empty() || password.len() > 128 || password.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "invalid trunk password: use 1 to 128 printable characters".into(),
        ));
    }
    Ok(())
}

/// Compiles an outbound pattern so that it must match the whole dialled number. The
/// capture groups of the pattern keep their numbers and names. Errors are one line.
pub fn compile_outbound_pattern(pattern: &str) -> Result<regex::Regex, StoreError> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
        return Err(StoreError::Invalid(format!(
            "invalid outbound pattern {pattern:?}: give 1 to {MAX_PATTERN_LEN} characters"
        )));
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            // regex's syntax errors span several lines (the pattern, a caret, the error);
            // the last line says what is wrong.
            let text = e.to_string();
            let why = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
            let why = why.strip_prefix("error: ").unwrap_or(why);
            StoreError::Invalid(format!("invalid outbound pattern {pattern:?}: {why}"))
        })
}

/// The number to send to the carrier for `dialled` under `pattern` (compiled by
/// [`compile_outbound_pattern`]); `None` when it does not match.
pub fn outbound_number(pattern: &regex::Regex, dialled: &str) -> Option<String> {
    let caps = pattern.captures(dialled)?;
    let group = caps.name("number").or_else(|| caps.get(1));
    Some(match group {
        Some(m) if !m.as_str().is_empty() => m.as_str().to_owned(),
        _ => dialled.to_owned(),
    })
}

fn trunk_from_row(r: &Row<'_>) -> rusqlite::Result<Trunk> {
    Ok(Trunk {
        id: TrunkId(r.get(0)?),
        tenant_id: TenantId(r.get(1)?),
        name: r.get(2)?,
        host: r.get(3)?,
        username: r.get(4)?,
        password: r.get(5)?,
        default_extension: r.get(6)?,
        caller_id: r.get(7)?,
        dids: Vec::new(),
        outbound: Vec::new(),
        created_at: r.get(8)?,
    })
}

macro_rules! select_trunks {
    ($tail:literal) => {
        concat!(
            "SELECT id, tenant_id, name, host, username, password, default_extension, caller_id,
                    created_at
             FROM trunks ",
            $tail
        )
    };
}

impl Store {
    /// Adds a trunk with its DIDs and outbound patterns, all or nothing. Fails with
    /// `Invalid` (bad name, host, number, pattern, credentials given half), `NotFound`
    /// (unknown tenant, a DID or default destination naming no extension of the tenant)
    /// or `Duplicate` (the name is taken in the tenant, a DID given twice).
    pub fn add_trunk(&mut self, new: NewTrunk) -> Result<TrunkId, StoreError> {
        validate_trunk_name(&new.name)?;
        split_trunk_host(&new.host)?;
        match (&new.username, &new.password) {
            (Some(u), Some(p)) => {
                validate_username(u)?;
                validate_password(p)?;
            }
            (None, None) => {}
            _ => {
                return Err(StoreError::Invalid(
                    "give both --username and --password, or neither (the carrier is then authenticated by its IP address)".into(),
                ));
            }
        }
        for (number, ext) in &new.dids {
            validate_number("DID", number)?;
            validate_extension(ext)?;
        }
        for pattern in &new.outbound {
            compile_outbound_pattern(pattern)?;
        }
        if let Some(ext) = &new.default_extension {
            validate_extension(ext)?;
        }
        if let Some(number) = &new.caller_id {
            validate_number("caller id", number)?;
        }
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let tenant: Option<String> = tx
            .prepare_cached("SELECT name FROM tenants WHERE id = ?1")?
            .query_row([new.tenant_id.0], |r| r.get(0))
            .optional()?;
        let tenant = tenant
            .ok_or_else(|| StoreError::NotFound(format!("tenant id {} not found", new.tenant_id)))?;
        let extension_exists = |ext: &str| -> Result<bool, StoreError> {
            Ok(tx
                .prepare_cached("SELECT 1 FROM users WHERE tenant_id = ?1 AND extension = ?2")?
                .query_row((new.tenant_id.0, ext), |_| Ok(()))
                .optional()?
                .is_some())
        };
        for (number, ext) in &new.dids {
            if !extension_exists(ext)? {
                return Err(StoreError::NotFound(format!(
                    "DID {number} goes to extension {ext}, which does not exist in tenant {tenant}"
                )));
            }
        }
        if let Some(ext) = &new.default_extension
            && !extension_exists(ext)?
        {
            return Err(StoreError::NotFound(format!(
                "default extension {ext} does not exist in tenant {tenant}"
            )));
        }
        let inserted = tx
            .prepare_cached(
                "INSERT INTO trunks (tenant_id, name, host, username, password,
                                     default_extension, caller_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute((
                new.tenant_id.0,
                &new.name,
                &new.host,
                &new.username,
                &new.password,
                &new.default_extension,
                &new.caller_id,
            ));
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!(
                    "trunk {} already exists in tenant {tenant}",
                    new.name
                )));
            }
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(StoreError::NotFound(format!("tenant id {} not found", new.tenant_id)));
            }
            Err(e) => return Err(e.into()),
        }
        let id = TrunkId(tx.last_insert_rowid());
        for (number, ext) in &new.dids {
            let r = tx
                .prepare_cached(
                    "INSERT INTO trunk_dids (trunk_id, number, extension) VALUES (?1, ?2, ?3)",
                )?
                .execute((id.0, number, ext));
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Duplicate(format!("DID {number} is given twice")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        for (position, pattern) in new.outbound.iter().enumerate() {
            tx.prepare_cached(
                "INSERT INTO trunk_outbound (trunk_id, position, pattern) VALUES (?1, ?2, ?3)",
            )?
            .execute((id.0, position as i64, pattern))?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// A tenant's trunks in id order (the order outbound routes are tried in).
    pub fn list_trunks(&self, tenant_id: TenantId) -> Result<Vec<Trunk>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_trunks!("WHERE tenant_id = ?1 ORDER BY id"))?;
        let trunks = stmt.query_map([tenant_id.0], trunk_from_row)?.collect::<Result<Vec<_>, _>>()?;
        self.with_routes(trunks)
    }

    /// Every tenant's trunks in id order.
    pub fn list_all_trunks(&self) -> Result<Vec<Trunk>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_trunks!("ORDER BY id"))?;
        let trunks = stmt.query_map([], trunk_from_row)?.collect::<Result<Vec<_>, _>>()?;
        self.with_routes(trunks)
    }

    /// A trunk by tenant and name (case-insensitive).
    pub fn trunk_by_name(&self, tenant_id: TenantId, name: &str) -> Result<Option<Trunk>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached(select_trunks!("WHERE tenant_id = ?1 AND name = ?2"))?;
        let Some(trunk) = stmt.query_row((tenant_id.0, name), trunk_from_row).optional()? else {
            return Ok(None);
        };
        Ok(self.with_routes(vec![trunk])?.pop())
    }

    /// Removes a trunk with its DIDs and outbound patterns.
    pub fn remove_trunk(&self, tenant_id: TenantId, name: &str) -> Result<(), StoreError> {
        let n = self
            .conn
            .prepare_cached("DELETE FROM trunks WHERE tenant_id = ?1 AND name = ?2")?
            .execute((tenant_id.0, name))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no trunk named {name} in tenant {}",
                self.tenant_label(tenant_id)
            )));
        }
        Ok(())
    }

    fn with_routes(&self, mut trunks: Vec<Trunk>) -> Result<Vec<Trunk>, StoreError> {
        let mut dids = self.conn.prepare_cached(
            "SELECT number, extension FROM trunk_dids WHERE trunk_id = ?1 ORDER BY id",
        )?;
        let mut outbound = self.conn.prepare_cached(
            "SELECT pattern FROM trunk_outbound WHERE trunk_id = ?1 ORDER BY position",
        )?;
        for t in &mut trunks {
            t.dids = dids
                .query_map([t.id.0], |r| Ok(Did { number: r.get(0)?, extension: r.get(1)? }))?
                .collect::<Result<_, _>>()?;
            t.outbound = outbound.query_map([t.id.0], |r| r.get(0))?.collect::<Result<_, _>>()?;
        }
        Ok(trunks)
    }
}
