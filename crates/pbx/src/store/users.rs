//! Users (extensions) of a tenant, with their digest credentials and recording switches.

use std::str::FromStr;

use rusqlite::{OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::error::{is_foreign_key_violation, is_unique_violation};
use super::validate::{normalize_ha1, validate_display_name, validate_extension};
use super::{Store, StoreError, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a user may do in the admin API and console (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Own calls and recordings only.
    User,
    /// Everything within their tenant.
    TenantAdmin,
    /// Everything, including system settings.
    SystemAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::TenantAdmin => "tenant-admin",
            Role::SystemAdmin => "system-admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "tenant-admin" => Ok(Role::TenantAdmin),
            "system-admin" => Ok(Role::SystemAdmin),
            other => Err(StoreError::Invalid(format!(
                "unknown role {other:?}: use user, tenant-admin or system-admin"
            ))),
        }
    }
}

/// A user to create. HA1s are computed by the caller (hark_sip::auth) for `realm`, which
/// must be the tenant's domain: the store never sees a password.
#[derive(Clone)]
pub struct NewUser {
    pub tenant_id: TenantId,
    pub extension: String,
    pub display_name: String,
    /// Hex MD5(extension:realm:password).
    pub ha1_md5: String,
    /// Hex SHA-256(extension:realm:password).
    pub ha1_sha256: String,
    pub realm: String,
    pub role: Role,
    /// SPEC §1 user `record_audio_calls`, default on.
    pub record_audio: bool,
    /// SPEC §1 user `record_video_calls`, default on.
    pub record_video: bool,
}

impl NewUser {
    /// A plain user with the SPEC §1 defaults (both recording switches on), no display name.
    pub fn new(
        tenant_id: TenantId,
        extension: impl Into<String>,
        ha1_md5: impl Into<String>,
        ha1_sha256: impl Into<String>,
        realm: impl Into<String>,
    ) -> Self {
        NewUser {
            tenant_id,
            extension: extension.into(),
            display_name: String::new(),
            ha1_md5: ha1_md5.into(),
            ha1_sha256: ha1_sha256.into(),
            realm: realm.into(),
            role: Role::User,
            record_audio: true,
            record_video: true,
        }
    }

    /// A plain user whose digest secrets (MD5 and SHA-256 HA1 of `extension:realm:
    /// password`) are computed here; the password itself is not kept.
    pub fn with_password(tenant_id: TenantId, extension: &str, realm: &str, password: &str) -> Self {
        use hark_sip::auth::{Algorithm, ha1};
        Self::new(
            tenant_id,
            extension,
            ha1(Algorithm::Md5, extension, realm, password),
            ha1(Algorithm::Sha256, extension, realm, password),
            realm,
        )
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub extension: String,
    pub display_name: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    /// The realm the HA1s were computed for.
    pub ha1_realm: String,
    pub role: Role,
    pub record_audio_calls: bool,
    pub record_video_calls: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl User {
    /// False when the tenant's domain (the realm) changed since the HA1s were computed:
    /// the user can no longer authenticate until a new password is set.
    pub fn ha1_matches_realm(&self, tenant_domain: &str) -> bool {
        self.ha1_realm == tenant_domain
    }
}

// HA1s are password-equivalent within their realm; keep them out of logs.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("extension", &self.extension)
            .field("display_name", &self.display_name)
            .field("ha1_md5", &"<redacted>")
            .field("ha1_sha256", &"<redacted>")
            .field("ha1_realm", &self.ha1_realm)
            .field("role", &self.role)
            .field("record_audio_calls", &self.record_audio_calls)
            .field("record_video_calls", &self.record_video_calls)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("tenant_id", &self.tenant_id)
            .field("extension", &self.extension)
            .field("realm", &self.realm)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, tenant_id, extension, display_name, ha1_md5, ha1_sha256, ha1_realm,
                    role, record_audio_calls, record_video_calls, created_at
             FROM users ",
            $tail
        )
    };
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(7)?;
    let role = role.parse::<Role>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(User {
        id: UserId(r.get(0)?),
        tenant_id: TenantId(r.get(1)?),
        extension: r.get(2)?,
        display_name: r.get(3)?,
        ha1_md5: r.get(4)?,
        ha1_sha256: r.get(5)?,
        ha1_realm: r.get(6)?,
        role,
        record_audio_calls: r.get(8)?,
        record_video_calls: r.get(9)?,
        created_at: r.get(10)?,
    })
}

impl Store {
    /// Adds a user. Fails with `Invalid` for a bad extension/display name/HA1 or a realm
    /// other than the tenant's domain (the HA1s would never verify), `NotFound` for an
    /// unknown tenant, `Duplicate` when the extension is taken in that tenant.
    pub fn add_user(&self, new: NewUser) -> Result<UserId, StoreError> {
        validate_extension(&new.extension)?;
        validate_display_name(&new.display_name)?;
        let ha1_md5 = normalize_ha1(&new.ha1_md5, 32, "MD5")?;
        let ha1_sha256 = normalize_ha1(&new.ha1_sha256, 64, "SHA-256")?;
        let tenant = self
            .tenant(new.tenant_id)?
            .ok_or_else(|| StoreError::NotFound(format!("tenant id {} not found", new.tenant_id)))?;
        if new.realm != tenant.domain {
            return Err(StoreError::Invalid(format!(
                "HA1 realm {:?} is not tenant {}'s domain {:?}",
                new.realm, tenant.name, tenant.domain
            )));
        }
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO users (tenant_id, extension, display_name, ha1_md5, ha1_sha256,
                                    ha1_realm, role, record_audio_calls, record_video_calls)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute((
                new.tenant_id.0,
                &new.extension,
                &new.display_name,
                &ha1_md5,
                &ha1_sha256,
                &new.realm,
                new.role.as_str(),
                new.record_audio,
                new.record_video,
            ));
        match inserted {
            Ok(_) => Ok(UserId(self.conn.last_insert_rowid())),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate(format!(
                "extension {} already exists in tenant {}",
                new.extension, tenant.name
            ))),
            // The tenant was deleted between the check above and the insert.
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::NotFound(format!(
                "tenant id {} not found",
                new.tenant_id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds many users in one transaction: all of them, or none when any fails.
    pub fn add_users(&mut self, users: &[NewUser]) -> Result<usize, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        for u in users {
            if let Err(e) = self.add_user(u.clone()) {
                let _ = self.conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(users.len())
    }

    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut stmt = self.conn.prepare_cached(select_users!("WHERE id = ?1"))?;
        Ok(stmt.query_row([id.0], user_from_row).optional()?)
    }

    /// The registrar's hot path (one call per REGISTER/INVITE challenge answer): a cached
    /// statement on the (tenant_id, extension) unique index.
    pub fn user_by_extension(
        &self,
        tenant_id: TenantId,
        extension: &str,
    ) -> Result<Option<User>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached(select_users!("WHERE tenant_id = ?1 AND extension = ?2"))?;
        Ok(stmt.query_row((tenant_id.0, extension), user_from_row).optional()?)
    }

    /// Sets a user's recording switches; `None` leaves a switch as it is.
    pub fn update_user_recording(
        &self,
        tenant_id: TenantId,
        extension: &str,
        audio: Option<bool>,
        video: Option<bool>,
    ) -> Result<(), StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE users SET record_audio_calls = COALESCE(?3, record_audio_calls),
                                  record_video_calls = COALESCE(?4, record_video_calls)
                 WHERE tenant_id = ?1 AND extension = ?2",
            )?
            .execute((tenant_id.0, extension, audio, video))?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "extension {extension} not found in tenant {}",
                self.tenant_label(tenant_id)
            )));
        }
        Ok(())
    }

    /// A tenant's users, numeric-looking extensions in numeric order ("99" before "100").
    pub fn list_users(&self, tenant_id: TenantId) -> Result<Vec<User>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(select_users!("WHERE tenant_id = ?1 ORDER BY length(extension), extension"))?;
        let rows = stmt.query_map([tenant_id.0], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Shortest and longest no-answer time before a forward (`--no-answer-secs`).
pub const NO_ANSWER_SECS_RANGE: std::ops::RangeInclusive<u32> = 5..=300;
/// The no-answer time of a user who never set one.
pub const DEFAULT_NO_ANSWER_SECS: u32 = 20;

/// A user's call forwarding (`hark pbx user set --forward-*`). Each target is an
/// extension of the tenant or an external number; `None` is off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forwarding {
    /// Every call goes to this target; the user's phones do not ring.
    pub always: Option<String>,
    /// When the user's phones answer busy (486/600).
    pub busy: Option<String>,
    /// When nobody answers within `no_answer_secs`.
    pub no_answer: Option<String>,
    pub no_answer_secs: u32,
}

impl Default for Forwarding {
    fn default() -> Self {
        Forwarding { always: None, busy: None, no_answer: None, no_answer_secs: DEFAULT_NO_ANSWER_SECS }
    }
}

/// A change of forwarding: for each target `None` keeps it, `Some(None)` turns it off,
/// `Some(Some(t))` sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardingUpdate {
    pub always: Option<Option<String>>,
    pub busy: Option<Option<String>>,
    pub no_answer: Option<Option<String>>,
    pub no_answer_secs: Option<u32>,
}

impl ForwardingUpdate {
    pub fn is_empty(&self) -> bool {
        self.always.is_none() && self.busy.is_none() && self.no_answer.is_none() && self.no_answer_secs.is_none()
    }
}

fn forwarding_from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<Forwarding> {
    Ok(Forwarding {
        always: r.get(first)?,
        busy: r.get(first + 1)?,
        no_answer: r.get(first + 2)?,
        no_answer_secs: r.get(first + 3)?,
    })
}

impl Store {
    /// One user's forwarding; `NotFound` for an unknown extension.
    pub fn user_forwarding(&self, tenant_id: TenantId, extension: &str) -> Result<Forwarding, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT forward_always, forward_busy, forward_no_answer, no_answer_secs
                 FROM users WHERE tenant_id = ?1 AND extension = ?2",
            )?
            .query_row((tenant_id.0, extension), |r| forwarding_from_row(r, 0))
            .optional()?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "extension {extension} not found in tenant {}",
                    self.tenant_label(tenant_id)
                ))
            })
    }

    /// Every user's forwarding in a tenant, by extension (users without any included).
    pub fn list_forwarding(&self, tenant_id: TenantId) -> Result<Vec<(String, Forwarding)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT extension, forward_always, forward_busy, forward_no_answer, no_answer_secs
             FROM users WHERE tenant_id = ?1 ORDER BY length(extension), extension",
        )?;
        let rows = stmt.query_map([tenant_id.0], |r| Ok((r.get(0)?, forwarding_from_row(r, 1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Changes a user's forwarding. Targets are checked (an extension or a number, never
    /// the user itself) and `no_answer_secs` must lie in [`NO_ANSWER_SECS_RANGE`].
    pub fn set_user_forwarding(
        &self,
        tenant_id: TenantId,
        extension: &str,
        update: &ForwardingUpdate,
    ) -> Result<(), StoreError> {
        for target in [&update.always, &update.busy, &update.no_answer].into_iter().flatten().flatten() {
            super::trunks::validate_forward_target(target)?;
            if target == extension {
                return Err(StoreError::Invalid(format!("extension {extension} cannot forward to itself")));
            }
        }
        if let Some(secs) = update.no_answer_secs
            && !NO_ANSWER_SECS_RANGE.contains(&secs)
        {
            return Err(StoreError::Invalid(format!(
                "invalid no-answer time {secs}: use {} to {} seconds",
                NO_ANSWER_SECS_RANGE.start(),
                NO_ANSWER_SECS_RANGE.end()
            )));
        }
        let n = self
            .conn
            .prepare_cached(
                "UPDATE users SET
                    forward_always    = CASE WHEN ?3 THEN ?4 ELSE forward_always END,
                    forward_busy      = CASE WHEN ?5 THEN ?6 ELSE forward_busy END,
                    forward_no_answer = CASE WHEN ?7 THEN ?8 ELSE forward_no_answer END,
                    no_answer_secs    = COALESCE(?9, no_answer_secs)
                 WHERE tenant_id = ?1 AND extension = ?2",
            )?
            .execute(rusqlite::params![
                tenant_id.0,
                extension,
                update.always.is_some(),
                update.always.clone().flatten(),
                update.busy.is_some(),
                update.busy.clone().flatten(),
                update.no_answer.is_some(),
                update.no_answer.clone().flatten(),
                update.no_answer_secs,
            ])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "extension {extension} not found in tenant {}",
                self.tenant_label(tenant_id)
            )));
        }
        Ok(())
    }
}

impl Store {
    /// Runs `f` in one write transaction (BEGIN IMMEDIATE): all of its changes, or none
    /// when it fails. For admin commands that change several things at once.
    pub fn atomically<T>(&mut self, f: impl FnOnce(&Store) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}
