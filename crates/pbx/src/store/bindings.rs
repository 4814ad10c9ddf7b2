//! Registrar bindings that survive a restart.
//!
//! The registrar keeps the live bindings in memory and writes them behind: it collects
//! changes and hands them over in batches, one transaction per batch, so 10,000 REGISTERs
//! a second cost a few commits, not 10,000. On start it reloads what has not expired.

use rusqlite::{Row, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, UserId};

/// One registered contact of a user (RFC 3261 §10), keyed by (user_id, contact_uri).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub user_id: UserId,
    /// The address of record, e.g. `sip:101@office.example`.
    pub aor: String,
    pub contact_uri: String,
    /// Unix seconds; the binding is dead at and after this instant.
    pub expires_at: i64,
    /// Contact `q` preference in 0.0..=1.0, when the phone sent one.
    pub q: Option<f32>,
    pub call_id: String,
    pub cseq: u32,
    /// `transport:ip:port` the REGISTER came from: where to send requests to a phone
    /// behind NAT, whatever its Contact says.
    pub source: String,
    pub user_agent: Option<String>,
    /// `+sip.instance` (RFC 5626), when sent.
    pub instance_id: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One change in a write-behind batch. Applied in order, so a batch may replace a
/// binding (Delete the old contact, Upsert the new one) atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingOp {
    Upsert(Binding),
    Delete { user_id: UserId, contact_uri: String },
    DeleteUser(UserId),
}

/// Counts of what a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Bindings inserted or updated.
    pub upserted: usize,
    /// Upserts dropped because their user no longer exists (deleted by an admin while the
    /// change waited in the queue); skipping them keeps the rest of the batch.
    pub skipped: usize,
    /// Bindings deleted.
    pub deleted: usize,
}

// Inserting through SELECT ... WHERE EXISTS drops a binding whose user is gone instead of
// failing the foreign key and with it the whole batch. (The WHERE also resolves SQLite's
// parsing ambiguity between INSERT ... SELECT and the ON CONFLICT clause.)
const UPSERT_SQL: &str = "
    INSERT INTO registrations (user_id, aor, contact_uri, expires_at, q, call_id, cseq,
                               source, user_agent, instance_id, updated_at)
    SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
    WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1)
    ON CONFLICT (user_id, contact_uri) DO UPDATE SET
        aor = excluded.aor, expires_at = excluded.expires_at, q = excluded.q,
        call_id = excluded.call_id, cseq = excluded.cseq, source = excluded.source,
        user_agent = excluded.user_agent, instance_id = excluded.instance_id,
        updated_at = excluded.updated_at";

const DELETE_SQL: &str = "DELETE FROM registrations WHERE user_id = ?1 AND contact_uri = ?2";
const DELETE_USER_SQL: &str = "DELETE FROM registrations WHERE user_id = ?1";

fn check(b: &Binding) -> Result<(), StoreError> {
    let bad = |why: &str| {
        StoreError::Invalid(format!("binding {} for user {}: {why}", b.contact_uri, b.user_id))
    };
    if b.contact_uri.is_empty() {
        return Err(bad("empty contact URI"));
    }
    if let Some(q) = b.q
        && !(0.0..=1.0).contains(&q)
    {
        return Err(bad("q must be between 0 and 1"));
    }
    Ok(())
}

fn upsert(tx: &Transaction<'_>, b: &Binding) -> rusqlite::Result<usize> {
    tx.prepare_cached(UPSERT_SQL)?.execute((
        b.user_id.0,
        &b.aor,
        &b.contact_uri,
        b.expires_at,
        b.q.map(f64::from),
        &b.call_id,
        b.cseq,
        &b.source,
        &b.user_agent,
        &b.instance_id,
        b.updated_at,
    ))
}

fn binding_from_row(r: &Row<'_>) -> rusqlite::Result<Binding> {
    Ok(Binding {
        user_id: UserId(r.get(0)?),
        aor: r.get(1)?,
        contact_uri: r.get(2)?,
        expires_at: r.get(3)?,
        q: r.get::<_, Option<f64>>(4)?.map(|q| q as f32),
        call_id: r.get(5)?,
        cseq: r.get(6)?,
        source: r.get(7)?,
        user_agent: r.get(8)?,
        instance_id: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

impl Store {
    /// Applies a write-behind batch in one transaction: all of it or none of it.
    /// Every binding is checked before the transaction starts, so a bad one rejects the
    /// batch with `Invalid` without touching the database.
    pub fn apply_binding_ops(&mut self, ops: &[BindingOp]) -> Result<BatchOutcome, StoreError> {
        for op in ops {
            if let BindingOp::Upsert(b) = op {
                check(b)?;
            }
        }
        // IMMEDIATE: take the write lock up front. A deferred transaction that reads and
        // then writes can fail with SQLITE_BUSY at once (no busy-timeout wait) if the CLI
        // committed in between.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = BatchOutcome::default();
        for op in ops {
            match op {
                BindingOp::Upsert(b) => match upsert(&tx, b)? {
                    0 => out.skipped += 1,
                    _ => out.upserted += 1,
                },
                BindingOp::Delete { user_id, contact_uri } => {
                    out.deleted +=
                        tx.prepare_cached(DELETE_SQL)?.execute((user_id.0, contact_uri))?;
                }
                BindingOp::DeleteUser(user_id) => {
                    out.deleted += tx.prepare_cached(DELETE_USER_SQL)?.execute([user_id.0])?;
                }
            }
        }
        tx.commit()?;
        if out.skipped > 0 {
            tracing::debug!(skipped = out.skipped, "dropped bindings of deleted users");
        }
        Ok(out)
    }

    /// Inserts or refreshes bindings in one transaction. Returns how many were stored;
    /// bindings of users that no longer exist are skipped (see `BatchOutcome::skipped`).
    pub fn upsert_bindings(&mut self, bindings: &[Binding]) -> Result<usize, StoreError> {
        bindings.iter().try_for_each(check)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut stored = 0;
        for b in bindings {
            stored += upsert(&tx, b)?;
        }
        tx.commit()?;
        Ok(stored)
    }

    /// Removes one binding. Returns whether it existed.
    pub fn delete_binding(&self, user_id: UserId, contact_uri: &str) -> Result<bool, StoreError> {
        Ok(self.conn.prepare_cached(DELETE_SQL)?.execute((user_id.0, contact_uri))? > 0)
    }

    /// Removes all bindings of a user (REGISTER with `Contact: *`). Returns how many.
    pub fn delete_user_bindings(&self, user_id: UserId) -> Result<usize, StoreError> {
        Ok(self.conn.prepare_cached(DELETE_USER_SQL)?.execute([user_id.0])?)
    }

    /// Deletes bindings expired at `now_unix` and returns the rest, for the registrar to
    /// load at start. Purge and read happen in one transaction, so the result is exactly
    /// what remains in the table.
    pub fn load_live_bindings(&mut self, now_unix: i64) -> Result<Vec<Binding>, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let purged = tx
            .prepare_cached("DELETE FROM registrations WHERE expires_at <= ?1")?
            .execute([now_unix])?;
        let live = {
            let mut stmt = tx.prepare_cached(
                "SELECT user_id, aor, contact_uri, expires_at, q, call_id, cseq, source,
                        user_agent, instance_id, updated_at
                 FROM registrations ORDER BY user_id, contact_uri",
            )?;
            let rows = stmt.query_map([], binding_from_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        if purged > 0 {
            tracing::info!(purged, live = live.len(), "purged expired registrations");
        }
        Ok(live)
    }
}
