//! Call detail records: one row per call (recorded or not), written by the PBX when the
//! call ends, read by the CLI (`hark pbx cdr list`) and the admin API.
//!
//! Times are unix milliseconds (UTC) in Rust and in the database. The JSON form (serde, as
//! printed by `hark pbx cdr list --json` and served by the admin API) writes them as
//! RFC 3339 UTC strings with milliseconds, `2024-05-01T09:30:00.250Z`; see
//! [`format_rfc3339_ms`]. `duration_s` (seconds to the millisecond, a JSON number such as
//! `12.5`) and `billsec` (whole seconds, rounded to the nearest) are computed by the
//! database from the times.
//!
//! Writes are upserts keyed by the call's session id (the PBX's `X-Session-Id`), so a
//! writer that retries, or writes a call again after a change, never duplicates it. CDRs
//! are not configuration: writing them never moves `config_version()`.

use std::str::FromStr;

use rusqlite::types::Type;
use rusqlite::{OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize, Serializer};

use super::error::is_foreign_key_violation;
use super::{Store, StoreError, TenantId};

/// Longest call session id accepted, in bytes.
pub const MAX_CDR_SESSION_ID_LEN: usize = 128;
/// Longest caller, callee, party, hangup cause or SIP Call-ID accepted, in bytes. Text
/// taken from the network (reason phrases, external numbers) must be cut to this first.
pub const MAX_CDR_TEXT_LEN: usize = 256;
/// Longest codec name accepted, in bytes.
pub const MAX_CDR_CODEC_LEN: usize = 64;
/// Longest recording decision text of a CDR.
pub const MAX_CDR_RECORDING_LEN: usize = 1024;
/// The latest time a CDR may carry: 9999-12-31T23:59:59.999Z, the end of RFC 3339.
pub const MAX_CDR_UNIX_MS: i64 = 253_402_300_799_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CdrId(pub i64);

impl std::fmt::Display for CdrId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A closed set of words stored as TEXT: `as_str` is the stored and serialized form,
/// `FromStr` its inverse (an unknown word is `StoreError::Invalid`).
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Invalid(format!(
                        "unknown {} {other:?}: use {}",
                        $what,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
    };
}

text_enum! {
    /// How a call ended (SPEC §4).
    pub enum Disposition ("disposition") {
        /// The callee (or a forward/transfer target) answered.
        Answered = "answered",
        /// The callee was busy (486/600) and nothing else answered.
        Busy = "busy",
        /// Nobody answered before the ring timeout (408/480, or the PBX gave up).
        NoAnswer = "no-answer",
        /// The caller hung up before an answer (CANCEL).
        Cancelled = "cancelled",
        /// Any other failure: unknown number, no route, callee unreachable, server error.
        Failed = "failed",
    }
}

text_enum! {
    /// Which way a call went, from the PBX's point of view.
    pub enum Direction ("direction") {
        /// Extension to extension.
        Internal = "internal",
        /// From a trunk (an external caller) to the PBX.
        Inbound = "inbound",
        /// From an extension out through a trunk.
        Outbound = "outbound",
    }
}

text_enum! {
    /// Who ended the call.
    pub enum HangupBy ("hangup_by") {
        Caller = "caller",
        Callee = "callee",
        /// The PBX itself: timeouts, media loss, shutdown, routing failure.
        Pbx = "pbx",
    }
}

text_enum! {
    /// Whether a party is an extension of the tenant or a number reached over a trunk.
    pub enum PartyKind ("party kind") {
        Internal = "internal",
        External = "external",
    }
}

text_enum! {
    /// A party's part in a call.
    pub enum PartyRole ("party role") {
        /// Placed the call.
        Caller = "caller",
        /// Was called.
        Callee = "callee",
        /// Brought in by a blind or attended transfer (REFER).
        TransferTarget = "transfer-target",
        /// Brought in by a call forward (always, busy, no answer).
        ForwardTarget = "forward-target",
        /// Picked up the call while it rang elsewhere.
        Pickup = "pickup",
    }
}

impl Direction {
    /// The usual direction for a call between these two kinds of party: inbound when the
    /// caller is external, outbound when only the callee is, internal otherwise.
    pub fn from_kinds(caller: PartyKind, callee: PartyKind) -> Direction {
        match (caller, callee) {
            (PartyKind::External, _) => Direction::Inbound,
            (PartyKind::Internal, PartyKind::External) => Direction::Outbound,
            (PartyKind::Internal, PartyKind::Internal) => Direction::Internal,
        }
    }
}

/// One participant of a call, in `NewCdr::parties` and `Cdr::parties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdrParty {
    pub role: PartyRole,
    /// Extension (internal) or number (external).
    pub party: String,
    pub kind: PartyKind,
    /// Unix ms when the party was brought into the call (offered it, not answered it):
    /// the call's start for the caller and the first callee.
    #[serde(serialize_with = "ser_rfc3339")]
    pub joined_at: i64,
    /// Unix ms when the party left (or stopped ringing); at the latest the call's end.
    #[serde(serialize_with = "ser_rfc3339")]
    pub left_at: i64,
}

/// A call to record, as the PBX knows it when the call ends.
///
/// Checked before anything is written (`StoreError::Invalid`): the session id is 1 to
/// `MAX_CDR_SESSION_ID_LEN` bytes without spaces or control characters; texts are at most
/// `MAX_CDR_TEXT_LEN` bytes (codec `MAX_CDR_CODEC_LEN`) without control characters,
/// caller, callee, parties and `sip_call_id_*` not empty; `0 <= started_at <= answered_at
/// <= ended_at <= MAX_CDR_UNIX_MS` (take every time from one clock, e.g. the start plus a
/// monotonic elapsed time, so a wall-clock step cannot reorder them); `answered_at` is set
/// exactly when the disposition is `Answered`; each party's times lie within the call and
/// it leaves no earlier than it joins.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCdr {
    pub call_session_id: String,
    pub tenant_id: TenantId,
    pub caller: String,
    pub caller_kind: PartyKind,
    pub callee: String,
    pub callee_kind: PartyKind,
    pub direction: Direction,
    /// Unix ms: the caller's INVITE arrived.
    pub started_at: i64,
    /// Unix ms: the call was answered (the PBX sent 200 OK to the caller).
    pub answered_at: Option<i64>,
    /// Unix ms: the last party left.
    pub ended_at: i64,
    pub disposition: Disposition,
    pub hangup_by: HangupBy,
    /// A SIP status with its reason ("486 Busy Here"), "BYE", or a PBX cause such as
    /// "rtp-timeout". May be empty.
    pub hangup_cause: String,
    /// Call-ID of the caller's leg.
    pub sip_call_id_a: String,
    /// Call-ID of the callee's leg, if one was sent.
    pub sip_call_id_b: Option<String>,
    /// The audio codec negotiated, e.g. "PCMU".
    pub codec: Option<String>,
    /// What the recording policy decided last, and why ("not recorded, because …").
    pub recording: Option<String>,
    /// Everyone in the call, in the order they joined. Empty means the two ends only: the
    /// store then records the caller and the callee, each from the start to the end.
    pub parties: Vec<CdrParty>,
}

/// A stored call detail record. Its JSON form is the row of `hark pbx cdr list --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cdr {
    pub id: CdrId,
    pub call_session_id: String,
    /// The tenant's name.
    pub tenant: String,
    pub tenant_id: TenantId,
    pub caller: String,
    pub caller_kind: PartyKind,
    pub callee: String,
    pub callee_kind: PartyKind,
    pub direction: Direction,
    /// Unix ms; RFC 3339 in JSON.
    #[serde(serialize_with = "ser_rfc3339")]
    pub started_at: i64,
    /// Unix ms; RFC 3339 or null in JSON.
    #[serde(serialize_with = "ser_rfc3339_opt")]
    pub answered_at: Option<i64>,
    /// Unix ms; RFC 3339 in JSON.
    #[serde(serialize_with = "ser_rfc3339")]
    pub ended_at: i64,
    /// Seconds from start to end, to the millisecond.
    pub duration_s: f64,
    /// Whole seconds from answer to end, rounded to the nearest; 0 when unanswered.
    pub billsec: i64,
    pub disposition: Disposition,
    pub hangup_by: HangupBy,
    pub hangup_cause: String,
    pub sip_call_id_a: String,
    pub sip_call_id_b: Option<String>,
    pub codec: Option<String>,
    /// What the recording policy decided last, and why.
    pub recording: Option<String>,
    pub parties: Vec<CdrParty>,
}

/// Which CDRs `Store::list_cdrs` returns. The default is all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CdrFilter {
    /// Only this tenant's calls.
    pub tenant: Option<TenantId>,
    /// Only calls started at or after this unix ms.
    pub since: Option<i64>,
    /// Only calls started before this unix ms.
    pub until: Option<i64>,
    /// At most this many (the newest).
    pub limit: Option<u32>,
}

/// `unix_ms` as an RFC 3339 UTC timestamp with milliseconds: `2024-05-01T09:30:00.250Z`.
/// Proleptic Gregorian calendar; meant for 0 ..= `MAX_CDR_UNIX_MS` (other values still
/// format, with years outside 0000-9999 that RFC 3339 cannot express).
pub fn format_rfc3339_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub(super) fn ser_rfc3339<S: Serializer>(unix_ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_ms(*unix_ms))
}

pub(super) fn ser_rfc3339_opt<S: Serializer>(unix_ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match unix_ms {
        Some(ms) => s.serialize_str(&format_rfc3339_ms(*ms)),
        None => s.serialize_none(),
    }
}

fn check(c: &NewCdr) -> Result<(), StoreError> {
    let bad = |why: String| StoreError::Invalid(format!("CDR {:?}: {why}", c.call_session_id));
    let sid = &c.call_session_id;
    if sid.is_empty()
        || sid.len() > MAX_CDR_SESSION_ID_LEN
        || sid.chars().any(|ch| ch.is_control() || ch.is_whitespace())
    {
        return Err(bad(format!(
            "the session id must be 1 to {MAX_CDR_SESSION_ID_LEN} bytes without spaces"
        )));
    }
    let text = |field: &str, v: &str, min: usize, max: usize| {
        if v.len() < min || v.len() > max || v.chars().any(char::is_control) {
            let size = if min == 0 { format!("at most {max}") } else { format!("{min} to {max}") };
            return Err(bad(format!("{field} must be {size} bytes without control characters")));
        }
        Ok(())
    };
    text("caller", &c.caller, 1, MAX_CDR_TEXT_LEN)?;
    text("callee", &c.callee, 1, MAX_CDR_TEXT_LEN)?;
    text("hangup_cause", &c.hangup_cause, 0, MAX_CDR_TEXT_LEN)?;
    text("sip_call_id_a", &c.sip_call_id_a, 1, MAX_CDR_TEXT_LEN)?;
    if let Some(b) = &c.sip_call_id_b {
        text("sip_call_id_b", b, 1, MAX_CDR_TEXT_LEN)?;
    }
    if let Some(codec) = &c.codec {
        text("codec", codec, 1, MAX_CDR_CODEC_LEN)?;
    }
    if let Some(recording) = &c.recording {
        text("recording", recording, 1, MAX_CDR_RECORDING_LEN)?;
    }

    let answered = c.answered_at.unwrap_or(c.started_at);
    if c.started_at < 0
        || answered < c.started_at
        || c.ended_at < answered
        || c.ended_at > MAX_CDR_UNIX_MS
    {
        return Err(bad(format!(
            "times out of order: started_at {} answered_at {:?} ended_at {} (unix ms)",
            c.started_at, c.answered_at, c.ended_at
        )));
    }
    if (c.disposition == Disposition::Answered) != c.answered_at.is_some() {
        return Err(bad(format!(
            "disposition {} with answered_at {:?}: only answered calls have an answer time",
            c.disposition, c.answered_at
        )));
    }
    for p in &c.parties {
        text("party", &p.party, 1, MAX_CDR_TEXT_LEN)?;
        if p.joined_at < c.started_at || p.left_at < p.joined_at || p.left_at > c.ended_at {
            return Err(bad(format!(
                "{} {} joined at {} and left at {}, outside the call ({} to {})",
                p.role, p.party, p.joined_at, p.left_at, c.started_at, c.ended_at
            )));
        }
    }
    Ok(())
}

/// What an empty `NewCdr::parties` stands for.
fn default_parties(c: &NewCdr) -> [CdrParty; 2] {
    let party = |role, party: &str, kind| CdrParty {
        role,
        party: party.to_string(),
        kind,
        joined_at: c.started_at,
        left_at: c.ended_at,
    };
    [
        party(PartyRole::Caller, &c.caller, c.caller_kind),
        party(PartyRole::Callee, &c.callee, c.callee_kind),
    ]
}

// RETURNING gives the row's id whether it was inserted or updated, so ids stay stable
// across rewrites of the same session (recordings keep pointing at the right CDR).
const UPSERT_SQL: &str = "
    INSERT INTO cdr (call_session_id, tenant_id, caller, caller_kind, callee, callee_kind,
                     direction, started_at, answered_at, ended_at, disposition, hangup_by,
                     hangup_cause, sip_call_id_a, sip_call_id_b, codec, recording)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
    ON CONFLICT (call_session_id) DO UPDATE SET
        tenant_id = excluded.tenant_id, caller = excluded.caller,
        caller_kind = excluded.caller_kind, callee = excluded.callee,
        callee_kind = excluded.callee_kind, direction = excluded.direction,
        started_at = excluded.started_at, answered_at = excluded.answered_at,
        ended_at = excluded.ended_at, disposition = excluded.disposition,
        hangup_by = excluded.hangup_by, hangup_cause = excluded.hangup_cause,
        sip_call_id_a = excluded.sip_call_id_a, sip_call_id_b = excluded.sip_call_id_b,
        codec = excluded.codec, recording = excluded.recording
    RETURNING id";

const DELETE_PARTIES_SQL: &str = "DELETE FROM cdr_parties WHERE cdr_id = ?1";

const INSERT_PARTY_SQL: &str = "
    INSERT INTO cdr_parties (cdr_id, role, party, kind, joined_at, left_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const SELECT_PARTIES_SQL: &str = "
    SELECT role, party, kind, joined_at, left_at FROM cdr_parties WHERE cdr_id = ?1 ORDER BY id";

// `prepare_cached` keys on the SQL text, so each query is one 'static string.
macro_rules! select_cdrs {
    ($tail:literal) => {
        concat!(
            "SELECT c.id, c.call_session_id, t.name, c.tenant_id, c.caller, c.caller_kind,
                    c.callee, c.callee_kind, c.direction, c.started_at, c.answered_at,
                    c.ended_at, c.duration_s, c.billsec, c.disposition, c.hangup_by,
                    c.hangup_cause, c.sip_call_id_a, c.sip_call_id_b, c.codec, c.recording
             FROM cdr c JOIN tenants t ON t.id = c.tenant_id ",
            $tail
        )
    };
}

// Newest first; (started_at, id) so equal start times keep a stable order. Both forms
// walk an index backwards (started_at, or tenant_id + started_at) without sorting.
pub(super) const LIST_ALL_SQL: &str = select_cdrs!(
    "WHERE c.started_at >= ?1 AND c.started_at < ?2
     ORDER BY c.started_at DESC, c.id DESC LIMIT ?3"
);
pub(super) const LIST_TENANT_SQL: &str = select_cdrs!(
    "WHERE c.tenant_id = ?1 AND c.started_at >= ?2 AND c.started_at < ?3
     ORDER BY c.started_at DESC, c.id DESC LIMIT ?4"
);

/// A stored word back into its enum; an unknown one means another writer broke the data.
pub(super) fn text_col<T: FromStr<Err = StoreError>>(r: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

fn cdr_from_row(r: &Row<'_>) -> rusqlite::Result<Cdr> {
    Ok(Cdr {
        id: CdrId(r.get(0)?),
        call_session_id: r.get(1)?,
        tenant: r.get(2)?,
        tenant_id: TenantId(r.get(3)?),
        caller: r.get(4)?,
        caller_kind: text_col(r, 5)?,
        callee: r.get(6)?,
        callee_kind: text_col(r, 7)?,
        direction: text_col(r, 8)?,
        started_at: r.get(9)?,
        answered_at: r.get(10)?,
        ended_at: r.get(11)?,
        duration_s: r.get(12)?,
        billsec: r.get(13)?,
        disposition: text_col(r, 14)?,
        hangup_by: text_col(r, 15)?,
        hangup_cause: r.get(16)?,
        sip_call_id_a: r.get(17)?,
        sip_call_id_b: r.get(18)?,
        codec: r.get(19)?,
        recording: r.get(20)?,
        parties: Vec::new(),
    })
}

fn party_from_row(r: &Row<'_>) -> rusqlite::Result<CdrParty> {
    Ok(CdrParty {
        role: text_col(r, 0)?,
        party: r.get(1)?,
        kind: text_col(r, 2)?,
        joined_at: r.get(3)?,
        left_at: r.get(4)?,
    })
}

fn upsert(tx: &Transaction<'_>, c: &NewCdr) -> Result<CdrId, StoreError> {
    let id: i64 = tx
        .prepare_cached(UPSERT_SQL)?
        .query_row(
            params![
                c.call_session_id,
                c.tenant_id.0,
                c.caller,
                c.caller_kind.as_str(),
                c.callee,
                c.callee_kind.as_str(),
                c.direction.as_str(),
                c.started_at,
                c.answered_at,
                c.ended_at,
                c.disposition.as_str(),
                c.hangup_by.as_str(),
                c.hangup_cause,
                c.sip_call_id_a,
                c.sip_call_id_b,
                c.codec,
                c.recording,
            ],
            |r| r.get(0),
        )
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!(
                    "CDR {:?}: tenant id {} not found",
                    c.call_session_id, c.tenant_id
                ))
            } else {
                e.into()
            }
        })?;
    // A rewrite replaces the party list as a whole.
    tx.prepare_cached(DELETE_PARTIES_SQL)?.execute([id])?;
    let defaults;
    let parties: &[CdrParty] = if c.parties.is_empty() {
        defaults = default_parties(c);
        &defaults
    } else {
        &c.parties
    };
    let mut insert = tx.prepare_cached(INSERT_PARTY_SQL)?;
    for p in parties {
        insert.execute(params![
            id,
            p.role.as_str(),
            p.party,
            p.kind.as_str(),
            p.joined_at,
            p.left_at
        ])?;
    }
    Ok(CdrId(id))
}

impl Store {
    /// Records a call; a second write for the same `call_session_id` replaces the first
    /// (same id, parties replaced). `Invalid` for a CDR that fails the checks on
    /// [`NewCdr`], `NotFound` for an unknown tenant.
    pub fn insert_cdr(&mut self, cdr: &NewCdr) -> Result<CdrId, StoreError> {
        let ids = self.insert_cdrs(std::slice::from_ref(cdr))?;
        Ok(ids[0])
    }

    /// Records many calls in one transaction (the PBX's background CDR writer): all of
    /// them or none. Every CDR is checked before the transaction starts, so an invalid
    /// one rejects the batch with `Invalid`, naming its session, without touching the
    /// database. Returns the ids in the order given; the same session twice in a batch
    /// ends as the later of the two.
    pub fn insert_cdrs(&mut self, cdrs: &[NewCdr]) -> Result<Vec<CdrId>, StoreError> {
        cdrs.iter().try_for_each(check)?;
        // IMMEDIATE: take the write lock up front (see apply_binding_ops).
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ids = cdrs.iter().map(|c| upsert(&tx, c)).collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(ids)
    }

    /// CDRs matching `filter`, newest first (by start time, then id), with their parties.
    pub fn list_cdrs(&self, filter: CdrFilter) -> Result<Vec<Cdr>, StoreError> {
        let since = filter.since.unwrap_or(i64::MIN);
        let until = filter.until.unwrap_or(i64::MAX);
        let limit = filter.limit.map_or(-1, i64::from);
        // One read transaction: the rows and their parties come from the same snapshot
        // even while the PBX writes.
        let tx = self.conn.unchecked_transaction()?;
        let mut cdrs = match filter.tenant {
            None => tx
                .prepare_cached(LIST_ALL_SQL)?
                .query_map((since, until, limit), cdr_from_row)?
                .collect::<Result<Vec<_>, _>>()?,
            Some(t) => tx
                .prepare_cached(LIST_TENANT_SQL)?
                .query_map((t.0, since, until, limit), cdr_from_row)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        for c in &mut cdrs {
            c.parties = self.cdr_parties(c.id)?;
        }
        tx.commit()?;
        Ok(cdrs)
    }

    pub fn cdr(&self, id: CdrId) -> Result<Option<Cdr>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let found =
            tx.prepare_cached(select_cdrs!("WHERE c.id = ?1"))?.query_row([id.0], cdr_from_row);
        let cdr = self.with_parties(found.optional()?)?;
        tx.commit()?;
        Ok(cdr)
    }

    /// The CDR of a call session (the `session_id` of SPEC §1, the `X-Session-Id`).
    pub fn cdr_by_session(&self, session_id: &str) -> Result<Option<Cdr>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let found = tx
            .prepare_cached(select_cdrs!("WHERE c.call_session_id = ?1"))?
            .query_row([session_id], cdr_from_row);
        let cdr = self.with_parties(found.optional()?)?;
        tx.commit()?;
        Ok(cdr)
    }

    fn with_parties(&self, cdr: Option<Cdr>) -> Result<Option<Cdr>, StoreError> {
        let Some(mut cdr) = cdr else { return Ok(None) };
        cdr.parties = self.cdr_parties(cdr.id)?;
        Ok(Some(cdr))
    }

    fn cdr_parties(&self, id: CdrId) -> Result<Vec<CdrParty>, StoreError> {
        let mut stmt = self.conn.prepare_cached(SELECT_PARTIES_SQL)?;
        let rows = stmt.query_map([id.0], party_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
