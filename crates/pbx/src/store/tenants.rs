//! Tenants: one per SIP domain; exactly one of them is the default.

use std::net::IpAddr;

use rusqlite::{OptionalExtension, Row, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::error::is_unique_violation;
use super::validate::{canonical_domain, normalize_domain, validate_tenant_name};
use super::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub i64);

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Canonical (lower-case) SIP domain; also the digest realm of its users.
    pub domain: String,
    /// "Enable extension audio recording" (SPEC §1), default off.
    pub audio_recording: bool,
    /// "Enable extension video recording" (SPEC §1), default off.
    pub video_recording: bool,
    /// Catches requests addressed to an IP literal instead of a domain.
    pub is_default: bool,
    /// Unix seconds.
    pub created_at: i64,
}

// `prepare_cached` keys on the SQL text, so each query is one 'static string.
macro_rules! select_tenants {
    ($($tail:literal)?) => {
        concat!(
            "SELECT id, name, domain, audio_recording, video_recording, is_default, created_at
             FROM tenants ",
            $($tail)?
        )
    };
}

fn tenant_from_row(r: &Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: TenantId(r.get(0)?),
        name: r.get(1)?,
        domain: r.get(2)?,
        audio_recording: r.get(3)?,
        video_recording: r.get(4)?,
        is_default: r.get(5)?,
        created_at: r.get(6)?,
    })
}

impl Store {
    /// Creates a tenant. `domain` is validated and stored lower-cased.
    ///
    /// Keeps "exactly one default tenant" true at all times: the first tenant ever created
    /// becomes the default whatever `is_default` says (requests to IP literals must land
    /// somewhere), and `is_default = true` on a later tenant moves the default to it in the
    /// same transaction.
    pub fn create_tenant(
        &mut self,
        name: &str,
        domain: &str,
        is_default: bool,
    ) -> Result<TenantId, StoreError> {
        validate_tenant_name(name)?;
        let domain = normalize_domain(domain)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current_default: Option<i64> = tx
            .prepare_cached("SELECT id FROM tenants WHERE is_default = 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        let make_default = is_default || current_default.is_none();
        if make_default && current_default.is_some() {
            tx.prepare_cached("UPDATE tenants SET is_default = 0 WHERE is_default = 1")?
                .execute([])?;
        }
        let inserted = tx
            .prepare_cached("INSERT INTO tenants (name, domain, is_default) VALUES (?1, ?2, ?3)")?
            .execute((name, &domain, make_default));
        if let Err(e) = inserted {
            if !is_unique_violation(&e) {
                return Err(e.into());
            }
            // Say which key clashed, in the admin's terms.
            let by_name: Option<String> = tx
                .query_row("SELECT name FROM tenants WHERE name = ?1", [name], |r| r.get(0))
                .optional()?;
            return Err(match by_name {
                Some(existing) => StoreError::Duplicate(format!("tenant {existing} already exists")),
                None => {
                    let owner: String = tx
                        .query_row("SELECT name FROM tenants WHERE domain = ?1", [&domain], |r| {
                            r.get(0)
                        })
                        .optional()?
                        .unwrap_or_default();
                    StoreError::Duplicate(format!(
                        "domain {domain} is already used by tenant {owner}"
                    ))
                }
            });
        }
        let id = TenantId(tx.last_insert_rowid());
        tx.commit()?;
        Ok(id)
    }

    pub fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_tenants!("WHERE id = ?1"))?;
        Ok(stmt.query_row([id.0], tenant_from_row).optional()?)
    }

    /// Case-insensitive, as admins type it after `--tenant`.
    pub fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_tenants!("WHERE name = ?1"))?;
        Ok(stmt.query_row([name], tenant_from_row).optional()?)
    }

    /// Exact domain match after canonicalization (case, trailing dot). Domains taken from
    /// requests are not validated: a malformed one just matches nothing.
    pub fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_tenants!("WHERE domain = ?1"))?;
        Ok(stmt.query_row([canonical_domain(domain)], tenant_from_row).optional()?)
    }

    /// The tenant a request-URI host belongs to: its domain's tenant, or the default tenant
    /// when the host is an IP literal (phones configured with the server's address). An
    /// unknown domain name gets `None`, never the default, so tenants stay separate.
    pub fn tenant_for_host(&self, host: &str) -> Result<Option<Tenant>, StoreError> {
        let host = host.trim();
        let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Some(t) = self.tenant_by_domain(unbracketed)? {
            return Ok(Some(t));
        }
        if unbracketed.parse::<IpAddr>().is_ok() {
            return self.default_tenant();
        }
        Ok(None)
    }

    /// `None` only while no tenant exists (before `hark pbx init`).
    pub fn default_tenant(&self) -> Result<Option<Tenant>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_tenants!("WHERE is_default = 1"))?;
        Ok(stmt.query_row([], tenant_from_row).optional()?)
    }

    /// Makes `id` the default tenant (and no other).
    pub fn set_default_tenant(&mut self, id: TenantId) -> Result<(), StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("UPDATE tenants SET is_default = 0 WHERE is_default = 1 AND id <> ?1")?
            .execute([id.0])?;
        let n = tx.prepare_cached("UPDATE tenants SET is_default = 1 WHERE id = ?1")?.execute([id.0])?;
        if n == 0 {
            // Dropping `tx` rolls back the cleared flag: the old default stays.
            return Err(StoreError::NotFound(format!("tenant id {id} not found")));
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets the tenant recording switches; `None` leaves a switch as it is.
    pub fn set_tenant_recording(
        &self,
        id: TenantId,
        audio: Option<bool>,
        video: Option<bool>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE tenants SET audio_recording = COALESCE(?2, audio_recording),
                                    video_recording = COALESCE(?3, video_recording)
                 WHERE id = ?1",
            )?
            .execute((id.0, audio, video))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("tenant id {id} not found")));
        }
        Ok(())
    }

    /// All tenants, ordered by name.
    pub fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_tenants!("ORDER BY name"))?;
        let rows = stmt.query_map([], tenant_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Name of a tenant for error messages; falls back to its id.
    pub(super) fn tenant_label(&self, id: TenantId) -> String {
        self.conn
            .prepare_cached("SELECT name FROM tenants WHERE id = ?1")
            .and_then(|mut s| s.query_row([id.0], |r| r.get::<_, String>(0)))
            .unwrap_or_else(|_| format!("id {id}"))
    }
}
