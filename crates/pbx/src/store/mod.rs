//! Persistent state of the PBX: system settings, tenants, users, registrar bindings, call
//! detail records and recordings.
//!
//! One SQLite file in WAL mode. The admin CLI writes to it while `hark pbx serve` runs, so
//! every connection waits on locks (busy timeout) instead of failing, write transactions
//! take the lock up front (BEGIN IMMEDIATE), and the server polls `data_version()` (then
//! `config_version()`) to notice the CLI's changes and reload its caches.
//!
//! Call logic sees only the types re-exported here, never rusqlite's, so a PostgreSQL
//! backend for multi-node deployments can slot in behind the same methods.
//!
//! `Store` wraps one `rusqlite::Connection`: it is `Send` but not `Sync`, so it belongs to
//! one thread or task (the registrar's write-behind worker, a CLI command). Keep it off
//! async worker threads for batch writes: a write may wait up to the busy timeout.

mod access;
mod bindings;
// `#[macro_use]`: recordings.rs declares its words with cdr.rs's `text_enum!`.
#[macro_use]
mod cdr;
mod error;
mod migrations;
mod recordings;
mod settings;
mod tenants;
mod trunks;
mod users;
mod validate;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trunk_tests;

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

pub use bindings::{BatchOutcome, Binding, BindingOp};
pub use cdr::{
    Cdr, CdrFilter, CdrId, CdrParty, Direction, Disposition, HangupBy, MAX_CDR_CODEC_LEN, MAX_CDR_RECORDING_LEN,
    MAX_CDR_SESSION_ID_LEN, MAX_CDR_TEXT_LEN, MAX_CDR_UNIX_MS, NewCdr, PartyKind, PartyRole,
    format_rfc3339_ms,
};
pub use error::StoreError;
pub use recordings::{
    ControlSourceKind, Finish, MAX_RECORDING_PATH_LEN, MAX_RECORDING_REASON_LEN,
    MAX_RECORDING_TEXT_LEN, MAX_RETENTION_DAYS, NewRecording, NewRecordingEvent,
    RECORDING_SAMPLE_RATES, Recording, RecordingBatch, RecordingEvent, RecordingEventKind,
    RecordingFilter, RecordingFormat, RecordingId, RecordingKind, RecordingLayout,
    RecordingParty, RecordingStatus, TenantRecordingOptions, validate_recording_path,
};
pub use settings::SystemSettings;
pub use tenants::{Tenant, TenantId};
pub use trunks::{
    DEFAULT_SIP_PORT, Did, MAX_NUMBER_LEN, MAX_PATTERN_LEN, MAX_TRUNK_NAME_LEN, NewTrunk, Trunk,
    TrunkId, compile_outbound_pattern, outbound_number, split_trunk_host, validate_forward_target,
    validate_number, validate_trunk_name,
};
pub use users::{
    DEFAULT_NO_ANSWER_SECS, Forwarding, ForwardingUpdate, NO_ANSWER_SECS_RANGE, NewUser, Role, User,
    UserId,
};
pub use validate::{
    MAX_DISPLAY_NAME_LEN, MAX_EXTENSION_LEN, MAX_TENANT_NAME_LEN, normalize_domain,
    validate_display_name, validate_extension, validate_tenant_name,
};

/// How long a statement waits for another process's write lock before giving up with
/// `StoreError::Busy`. CLI writes are single short transactions, so this is generous.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Room for every statement of the repository at once: the default (16) would evict
/// hot-path statements and re-prepare them.
const STATEMENT_CACHE: usize = 64;

#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it to the current
    /// schema. A new file is made readable by its owner only: it holds HA1s and the nonce
    /// secret.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let existed = path.exists();
        Self::open_file(path, existed).map_err(|e| e.while_opening(path))
    }

    fn open_file(path: &Path, existed: bool) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        #[cfg(unix)]
        if !existed {
            use std::os::unix::fs::PermissionsExt;
            // SQLite gives the -wal and -shm files the database file's mode.
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot restrict database permissions");
            }
        }
        #[cfg(not(unix))]
        let _ = existed;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets the server read while the CLI writes; NORMAL skips the fsync per commit
        // (WAL stays consistent; at worst the last commits before a power loss are lost,
        // which for bindings and settings is acceptable).
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Self::finish_open(conn)
    }

    /// A private in-memory database, migrated; for tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::finish_open(Connection::open_in_memory()?)
    }

    fn finish_open(conn: Connection) -> Result<Store, StoreError> {
        // Off by default in SQLite, per connection: without it ON DELETE CASCADE and the
        // tenant/user references are silently ignored.
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mut store = Store { conn };
        migrations::run(&mut store.conn)?;
        Ok(store)
    }

    /// The schema version the database is at (the number of the last migration applied).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")?
            .query_row([], |r| r.get(0))?)
    }

    /// Changes whenever *another* connection (e.g. the CLI in another process) commits to
    /// the database; this connection's own writes do not change it. Costs no disk read, so
    /// a server can poll it before each use of a cache and reload only when it moved.
    /// It also moves for registration writes from another connection (the server's own
    /// write-behind thread); `config_version()` says whether configuration changed.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?)
    }
}
