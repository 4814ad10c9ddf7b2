//! System-level settings: the one row of `system_settings`.

use rusqlite::Transaction;

use super::{Store, StoreError};

/// Settings that apply to every tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct SystemSettings {
    /// SPEC §1 rule 4: when off, a call whose remaining parties are all external is not
    /// recorded. Default on.
    pub record_between_external_numbers: bool,
    /// Key for stateless digest nonces; generated once at init, stable across restarts so
    /// nonces issued before a restart still verify.
    pub nonce_secret: [u8; 32],
}

// Hand-written so the secret never lands in a log line through `{:?}`.
impl std::fmt::Debug for SystemSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemSettings")
            .field("record_between_external_numbers", &self.record_between_external_numbers)
            .field("nonce_secret", &"<redacted>")
            .finish()
    }
}

/// Inserts the settings row during migration 1. The secret comes from `rand`'s thread RNG
/// (a CSPRNG seeded by the OS), not SQLite's randomblob, whose generator is not documented
/// as cryptographic.
pub(super) fn seed_system_settings(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let secret: [u8; 32] = rand::random();
    tx.execute(
        "INSERT INTO system_settings (id, record_between_external_numbers, nonce_secret)
         VALUES (1, 1, ?1)",
        [hex::encode(secret)],
    )?;
    Ok(())
}

impl Store {
    pub fn system_settings(&self) -> Result<SystemSettings, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT record_between_external_numbers, nonce_secret FROM system_settings
             WHERE id = 1",
        )?;
        let row = stmt
            .query_row([], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => {
                    StoreError::Corrupt("the system_settings row is missing".into())
                }
                e => e.into(),
            })?;
        let mut nonce_secret = [0u8; 32];
        hex::decode_to_slice(&row.1, &mut nonce_secret)
            .map_err(|e| StoreError::Corrupt(format!("nonce_secret is not 32 bytes of hex: {e}")))?;
        Ok(SystemSettings { record_between_external_numbers: row.0, nonce_secret })
    }

    /// A counter that moves on every committed change to system settings, tenants or users
    /// (by any connection, this one included) and never on registration writes. The server
    /// checks it when `data_version()` moved, and reloads its caches only if it moved too:
    /// its own registration writer commits many times a second.
    pub fn config_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT version FROM config_version WHERE id = 1")?
            .query_row([], |r| r.get(0))?)
    }

    pub fn set_record_between_external_numbers(&self, on: bool) -> Result<(), StoreError> {
        let n = self
            .conn
            .prepare_cached("UPDATE system_settings SET record_between_external_numbers = ?1 WHERE id = 1")?
            .execute([on])?;
        if n != 1 {
            return Err(StoreError::Corrupt("the system_settings row is missing".into()));
        }
        Ok(())
    }
}
