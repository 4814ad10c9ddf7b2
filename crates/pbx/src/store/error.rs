//! The store's one error type.
//!
//! Callers (the CLI, the admin API, the registrar) act on the *kind* of failure: a duplicate
//! is a user mistake shown as one line, `Busy` is worth a retry, `Corrupt` needs an operator.
//! So SQLite's errors are sorted into those kinds here instead of leaking raw codes.

use std::path::PathBuf;

use rusqlite::ffi::{self, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Any database failure not sorted into a more specific kind below.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),

    /// The database file could not be opened or prepared (path included for the operator).
    #[error("cannot open database {}: {source}", path.display())]
    Open { path: PathBuf, source: rusqlite::Error },

    /// A unique key (tenant name or domain, extension in a tenant) is already taken.
    #[error("{0}")]
    Duplicate(String),

    /// The tenant, user or row named in the message does not exist.
    #[error("{0}")]
    NotFound(String),

    /// Input rejected before it reached the database (extension, domain, HA1, ...).
    #[error("{0}")]
    Invalid(String),

    /// Another connection held the write lock for longer than the busy timeout.
    #[error("database is busy: another process kept it locked too long")]
    Busy,

    /// Stored data that does not decode, or a file that is not a Hark database.
    #[error("database is corrupt: {0}")]
    Corrupt(String),

    /// The database was migrated by a newer Hark; running old code on it would be unsafe.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match &e {
            E::SqliteFailure(f, _) => match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Busy,
                ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                    StoreError::Corrupt(e.to_string())
                }
                _ => StoreError::Sqlite(e),
            },
            // A column holding something its Rust type cannot represent means the data was
            // written by something other than this layer: that is corruption, not a bug to
            // retry.
            E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::InvalidColumnType(..) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    /// Attach the database path to errors raised while opening, so the CLI's one-line
    /// message says which file is at fault.
    pub(super) fn while_opening(self, path: &std::path::Path) -> Self {
        match self {
            StoreError::Sqlite(source) => StoreError::Open { path: path.to_path_buf(), source },
            StoreError::Corrupt(msg) => StoreError::Corrupt(format!("{}: {msg}", path.display())),
            other => other,
        }
    }
}

/// True when `e` is a UNIQUE or PRIMARY KEY violation (the caller turns it into `Duplicate`
/// with a message naming the key, which SQLite's own text does not do in user terms).
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error(), Some(f) if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// True when `e` is a FOREIGN KEY violation (a tenant or user vanished under us).
pub(super) fn is_foreign_key_violation(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error(), Some(f) if f.extended_code == ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}
