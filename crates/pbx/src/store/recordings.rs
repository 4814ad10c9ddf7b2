//! Recordings (SPEC §1, §4): one row per recorded file, the call's parties, and the
//! decision trace of events (start, pause, resume, stop, ...) with their file offsets.
//!
//! The PBX writes these from its background recording writer as a call goes: a row when
//! the recording starts ([`Store::start_recording`]), an event per pause and resume, and
//! the outcome when it ends ([`Store::finish_recording`]). Each write is one transaction;
//! [`Store::recording_batch`] puts many in one commit. On start the PBX repairs what a
//! crash left unfinished ([`Store::unfinished_recordings`], then [`Store::mark_recovered`]
//! or [`Store::mark_failed`]). The CLI (`hark pbx recordings list`) and the admin API read
//! them with [`Store::list_recordings`].
//!
//! Status moves only forward: `recording` ⇄ `paused` while running, then exactly one of
//! `completed` (the call ended), `stopped` (policy or an admin ended it during the call),
//! `failed` (writing failed), `recovered` (the file was repaired after a crash). Writes
//! that break this order are `StoreError::Invalid`.
//!
//! Times are unix milliseconds (UTC); offsets and durations are milliseconds of the file
//! (paused stretches are left out of it). The JSON form writes times as RFC 3339 strings
//! with milliseconds, like CDRs. `path` is relative to the data directory's `recordings`
//! directory, '/'-separated. Recordings are not configuration: writing them never moves
//! `config_version()`; the tenant recording options are, and do.

use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::cdr::{ser_rfc3339, ser_rfc3339_opt, text_col};
use super::error::{is_foreign_key_violation, is_unique_violation};
use super::{
    CdrId, MAX_CDR_SESSION_ID_LEN, MAX_CDR_UNIX_MS, PartyKind, Store, StoreError, TenantId, UserId,
};

/// Longest recording path accepted (relative to the recordings directory), in bytes.
pub const MAX_RECORDING_PATH_LEN: usize = 1024;
/// Longest party, actor or stop reason accepted, in bytes.
pub const MAX_RECORDING_TEXT_LEN: usize = 256;
/// Longest event reason or error accepted, in bytes. Cut longer text (error chains,
/// policy explanations) to this first.
pub const MAX_RECORDING_REASON_LEN: usize = 1024;
/// Longest retention accepted, in days (about 100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// Sample rates accepted, in Hz.
pub const RECORDING_SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordingId(pub i64);

impl std::fmt::Display for RecordingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

text_enum! {
    /// What a recording holds (SPEC §1 rule 2).
    pub enum RecordingKind ("recording kind") {
        Audio = "audio",
        /// H.264 video with the call's audio.
        Video = "video",
    }
}

text_enum! {
    /// The file format; audio is always WAV, video always MP4.
    pub enum RecordingFormat ("recording format") {
        Wav = "wav",
        Mp4 = "mp4",
    }
}

text_enum! {
    /// Where a recording is in its life (SPEC §4).
    pub enum RecordingStatus ("recording status") {
        /// Running.
        Recording = "recording",
        /// Running, audio left out until resumed.
        Paused = "paused",
        /// Ran until the call ended.
        Completed = "completed",
        /// Ended during the call: policy (rule 4/5) or an administrator stopped it.
        Stopped = "stopped",
        /// Writing failed; the file holds what was written before.
        Failed = "failed",
        /// The PBX stopped while recording; the file was repaired on the next start.
        Recovered = "recovered",
    }
}

text_enum! {
    /// An entry of the decision trace.
    pub enum RecordingEventKind ("recording event") {
        Start = "start",
        Pause = "pause",
        Resume = "resume",
        Stop = "stop",
        Recovered = "recovered",
        Failed = "failed",
    }
}

text_enum! {
    /// What caused an event: a pause/resume control (SPEC §1: DTMF as RFC 4733, SIP INFO,
    /// in-band tones, a media-control MESSAGE), the recording policy, or the PBX itself
    /// (hangup, write failure, crash recovery).
    pub enum ControlSourceKind ("control source") {
        Dtmf = "dtmf",
        Info = "info",
        Inband = "inband",
        Message = "message",
        Policy = "policy",
        System = "system",
    }
}

text_enum! {
    /// Channel layout of a recording (a tenant option); stereo by default.
    #[derive(Default)]
    pub enum RecordingLayout ("recording layout") {
        /// Two channels: the caller left, the callee right.
        #[default]
        Stereo = "stereo",
        /// One channel: both sides mixed.
        Mono = "mono",
    }
}

impl RecordingKind {
    /// The only format this kind is written in.
    pub fn format(self) -> RecordingFormat {
        match self {
            RecordingKind::Audio => RecordingFormat::Wav,
            RecordingKind::Video => RecordingFormat::Mp4,
        }
    }
}

impl RecordingStatus {
    /// Still being written (`recording` or `paused`).
    pub fn is_running(self) -> bool {
        matches!(self, RecordingStatus::Recording | RecordingStatus::Paused)
    }
}

impl RecordingLayout {
    /// The audio channels a file of this layout has.
    pub fn channels(self) -> u16 {
        match self {
            RecordingLayout::Stereo => 2,
            RecordingLayout::Mono => 1,
        }
    }
}

/// A tenant's recording options. Configuration: changing them moves `config_version()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TenantRecordingOptions {
    /// Stereo (caller left, callee right) by default.
    pub layout: RecordingLayout,
    /// Recordings older than this are deleted; `None` (the default) keeps them forever.
    pub retention_days: Option<u32>,
    /// A beep when a recording starts; off by default.
    pub start_beep: bool,
    /// A tone confirming pause and resume to the party who asked; on by default.
    pub pause_confirmation_tone: bool,
}

impl Default for TenantRecordingOptions {
    fn default() -> Self {
        TenantRecordingOptions {
            layout: RecordingLayout::Stereo,
            retention_days: None,
            start_beep: false,
            pause_confirmation_tone: true,
        }
    }
}

/// A party of a recorded call, in `NewRecording::parties` and `Recording::parties`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingParty {
    /// Extension (internal) or number (external).
    pub party: String,
    pub kind: PartyKind,
    /// The extension's user. When writing, `None` for an internal party means "look the
    /// extension up in the recording's tenant" (it stays `None` if there is no such user).
    /// Always `None` for external parties.
    pub user_id: Option<UserId>,
}

impl RecordingParty {
    /// An extension of the recording's tenant; its user is looked up when written.
    pub fn internal(extension: impl Into<String>) -> Self {
        RecordingParty { party: extension.into(), kind: PartyKind::Internal, user_id: None }
    }

    /// A number reached over a trunk.
    pub fn external(number: impl Into<String>) -> Self {
        RecordingParty { party: number.into(), kind: PartyKind::External, user_id: None }
    }
}

/// A recording that has just started. Its `start` event (offset 0, at `started_at`)
/// carries `source`, `actor` and `reason`: usually `Policy`, `"system"` and the policy
/// decision's explanation.
///
/// Checked before anything is written (`StoreError::Invalid`): the session id as for CDRs
/// (1 to `MAX_CDR_SESSION_ID_LEN` bytes, no spaces or control characters); `path` relative
/// and clean (see [`validate_recording_path`]); `0 <= started_at <= MAX_CDR_UNIX_MS`;
/// `format` is `kind.format()`; `sample_rate` within `RECORDING_SAMPLE_RATES`; `channels`
/// is `layout.channels()`; at least one party, each 1 to `MAX_RECORDING_TEXT_LEN` bytes,
/// external ones without a user; `actor` 1 to `MAX_RECORDING_TEXT_LEN` bytes and `reason`
/// at most `MAX_RECORDING_REASON_LEN`, without control characters. A party listed twice
/// is stored once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecording {
    pub call_session_id: String,
    pub tenant_id: TenantId,
    pub kind: RecordingKind,
    pub format: RecordingFormat,
    /// Relative to DIR/recordings, '/'-separated; unique among recordings.
    pub path: String,
    /// Unix ms: the first media was written.
    pub started_at: i64,
    pub layout: RecordingLayout,
    /// Hz of the audio in the file.
    pub sample_rate: u32,
    /// Audio channels in the file.
    pub channels: u16,
    pub parties: Vec<RecordingParty>,
    pub source: ControlSourceKind,
    pub actor: String,
    pub reason: String,
}

impl NewRecording {
    /// An audio recording the policy started: a stereo WAV at `sample_rate`, begun at
    /// `started_at` (unix ms), with the policy's `reason`.
    pub fn policy_audio(
        tenant_id: TenantId,
        session: &str,
        path: &str,
        parties: Vec<RecordingParty>,
        sample_rate: u32,
        started_at: i64,
        reason: &str,
    ) -> Self {
        NewRecording {
            call_session_id: session.into(),
            tenant_id,
            kind: RecordingKind::Audio,
            format: RecordingFormat::Wav,
            path: path.into(),
            started_at,
            layout: RecordingLayout::Stereo,
            sample_rate,
            channels: 2,
            parties,
            source: ControlSourceKind::Policy,
            actor: "system".into(),
            reason: reason.into(),
        }
    }
}

/// A pause or resume of a running recording (other kinds have their own methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecordingEvent {
    /// Unix ms, at or after the recording's start.
    pub at: i64,
    /// Position in the file, never before an earlier event's.
    pub offset_ms: u64,
    pub event: RecordingEventKind,
    pub source: ControlSourceKind,
    /// Who asked: an extension ("101"), a number, or "system".
    pub actor: String,
    pub reason: String,
}

/// How a running recording ended, for [`Store::finish_recording`]. Writes a `stop` event
/// (`failed` for `Failed`) at `ended_at` and offset `duration_ms`, carrying `source`,
/// `actor` and `reason` (an empty `reason` takes `stop_reason`, then `error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Unix ms, at or after the start.
    pub ended_at: i64,
    /// Length of the file; at least the offset of the last event.
    pub duration_ms: u64,
    /// `Completed`, `Stopped` or `Failed`.
    pub status: RecordingStatus,
    /// Why it ended, as a word: "hangup", "policy", "external-to-external", ... At most
    /// `MAX_RECORDING_TEXT_LEN` bytes; empty is the same as `None`.
    pub stop_reason: Option<String>,
    /// What went wrong; required for `Failed`. At most `MAX_RECORDING_REASON_LEN` bytes;
    /// empty is the same as `None`.
    pub error: Option<String>,
    pub source: ControlSourceKind,
    pub actor: String,
    pub reason: String,
}

/// One entry of a recording's decision trace (SPEC §1 rule 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingEvent {
    /// Unix ms; RFC 3339 in JSON.
    #[serde(serialize_with = "ser_rfc3339")]
    pub at: i64,
    /// Position in the file, in ms.
    pub offset_ms: u64,
    pub event: RecordingEventKind,
    pub source: ControlSourceKind,
    pub actor: String,
    pub reason: String,
}

/// A stored recording. Its JSON form is the row of `hark pbx recordings list --json`
/// (where the CLI makes `path` absolute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recording {
    pub id: RecordingId,
    pub call_session_id: String,
    /// The call's CDR, once it is written (when the call ends).
    pub cdr_id: Option<CdrId>,
    /// The tenant's name.
    pub tenant: String,
    pub tenant_id: TenantId,
    /// In the order they were added.
    pub parties: Vec<RecordingParty>,
    pub kind: RecordingKind,
    pub format: RecordingFormat,
    /// Relative to DIR/recordings.
    pub path: String,
    /// Unix ms; RFC 3339 in JSON.
    #[serde(serialize_with = "ser_rfc3339")]
    pub started_at: i64,
    /// Unix ms; RFC 3339 in JSON; null while running, and after a crash (unknown).
    #[serde(serialize_with = "ser_rfc3339_opt")]
    pub ended_at: Option<i64>,
    /// Length of the file; null while running.
    pub duration_ms: Option<u64>,
    pub status: RecordingStatus,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    pub layout: RecordingLayout,
    pub sample_rate: u32,
    pub channels: u16,
    /// The decision trace, in the order written.
    pub events: Vec<RecordingEvent>,
}

/// Which recordings `Store::list_recordings` returns. The default is all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    /// Only this tenant's recordings.
    pub tenant: Option<TenantId>,
    /// Only recordings this extension took part in as an internal party (a user's own
    /// recordings). Extensions are per tenant: give `tenant` too.
    pub party: Option<String>,
    /// Only recordings started at or after this unix ms.
    pub since: Option<i64>,
    /// Only recordings started before this unix ms.
    pub until: Option<i64>,
    /// At most this many (the newest).
    pub limit: Option<u32>,
}



/// Checks a recording path: relative to the recordings directory, '/'-separated, 1 to
/// `MAX_RECORDING_PATH_LEN` bytes, no empty, `.` or `..` components, no `\`, `:` or
/// control characters, so it can never point outside the directory on any platform.
pub fn validate_recording_path(path: &str) -> Result<(), StoreError> {
    if path.is_empty()
        || path.len() > MAX_RECORDING_PATH_LEN
        || path.chars().any(|c| c.is_control() || c == '\\' || c == ':')
        || path.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(StoreError::Invalid(format!(
            "invalid recording path {path:?}: use a relative path of 1 to \
             {MAX_RECORDING_PATH_LEN} bytes with '/' between plain names"
        )));
    }
    Ok(())
}

/// Checks a text field: `min` to `max` bytes, no control characters.
fn check_text(field: &str, v: &str, min: usize, max: usize) -> Result<(), String> {
    if v.len() < min || v.len() > max || v.chars().any(char::is_control) {
        let size = if min == 0 { format!("at most {max}") } else { format!("{min} to {max}") };
        return Err(format!("{field} must be {size} bytes without control characters"));
    }
    Ok(())
}

fn check_time(field: &str, ms: i64) -> Result<(), String> {
    if !(0..=MAX_CDR_UNIX_MS).contains(&ms) {
        return Err(format!("{field} {ms} is not a unix ms time in 0..={MAX_CDR_UNIX_MS}"));
    }
    Ok(())
}

fn check_ms(field: &str, ms: u64) -> Result<(), String> {
    if ms > MAX_CDR_UNIX_MS as u64 {
        return Err(format!("{field} {ms} is too large"));
    }
    Ok(())
}

fn check_party(p: &RecordingParty) -> Result<(), String> {
    check_text("party", &p.party, 1, MAX_RECORDING_TEXT_LEN)?;
    if p.kind == PartyKind::External && p.user_id.is_some() {
        return Err(format!("external party {} cannot have a user", p.party));
    }
    Ok(())
}

fn check_cause(actor: &str, reason: &str) -> Result<(), String> {
    check_text("actor", actor, 1, MAX_RECORDING_TEXT_LEN)?;
    check_text("reason", reason, 0, MAX_RECORDING_REASON_LEN)
}

fn check_new(r: &NewRecording) -> Result<(), StoreError> {
    let bad = |why: String| {
        StoreError::Invalid(format!("recording {:?} of {:?}: {why}", r.path, r.call_session_id))
    };
    let sid = &r.call_session_id;
    if sid.is_empty()
        || sid.len() > MAX_CDR_SESSION_ID_LEN
        || sid.chars().any(|ch| ch.is_control() || ch.is_whitespace())
    {
        return Err(bad(format!(
            "the session id must be 1 to {MAX_CDR_SESSION_ID_LEN} bytes without spaces"
        )));
    }
    validate_recording_path(&r.path)?;
    check_time("started_at", r.started_at).map_err(bad)?;
    if r.format != r.kind.format() {
        return Err(bad(format!(
            "{} recordings are {} files, not {}",
            r.kind,
            r.kind.format(),
            r.format
        )));
    }
    if !RECORDING_SAMPLE_RATES.contains(&r.sample_rate) {
        return Err(bad(format!(
            "sample rate {} Hz is outside {RECORDING_SAMPLE_RATES:?}",
            r.sample_rate
        )));
    }
    if r.channels != r.layout.channels() {
        return Err(bad(format!(
            "a {} recording has {} channels, not {}",
            r.layout,
            r.layout.channels(),
            r.channels
        )));
    }
    if r.parties.is_empty() {
        return Err(bad("a recording needs at least one party".into()));
    }
    r.parties.iter().try_for_each(check_party).map_err(bad)?;
    check_cause(&r.actor, &r.reason).map_err(bad)
}


// `prepare_cached` keys on the SQL text, so each query is one 'static string. The CDR is
// linked by the stored id, else by session (a CDR written by something that bypassed the
// linking trigger still shows).
macro_rules! select_recordings {
    ($tail:literal) => {
        concat!(
            "SELECT r.id, r.call_session_id,
                    COALESCE(r.cdr_id,
                             (SELECT c.id FROM cdr c WHERE c.call_session_id = r.call_session_id)),
                    t.name, r.tenant_id, r.kind, r.format, r.path, r.started_at, r.ended_at,
                    r.duration_ms, r.status, r.stop_reason, r.error, r.layout, r.sample_rate,
                    r.channels
             FROM recordings r JOIN tenants t ON t.id = r.tenant_id ",
            $tail
        )
    };
}

// Newest first; (started_at, id) so equal start times keep a stable order. The first two
// walk an index backwards without sorting; the party forms start from the party index
// (a user's own recordings are few) and sort those.
pub(super) const LIST_ALL_SQL: &str = select_recordings!(
    "WHERE r.started_at >= ?1 AND r.started_at < ?2
     ORDER BY r.started_at DESC, r.id DESC LIMIT ?3"
);
pub(super) const LIST_TENANT_SQL: &str = select_recordings!(
    "WHERE r.tenant_id = ?1 AND r.started_at >= ?2 AND r.started_at < ?3
     ORDER BY r.started_at DESC, r.id DESC LIMIT ?4"
);
const LIST_PARTY_SQL: &str = select_recordings!(
    "WHERE r.id IN (SELECT p.recording_id FROM recording_parties p
                    WHERE p.party = ?1 AND p.kind = 'internal')
       AND r.started_at >= ?2 AND r.started_at < ?3
     ORDER BY r.started_at DESC, r.id DESC LIMIT ?4"
);
const LIST_TENANT_PARTY_SQL: &str = select_recordings!(
    "WHERE r.tenant_id = ?1
       AND r.id IN (SELECT p.recording_id FROM recording_parties p
                    WHERE p.party = ?2 AND p.kind = 'internal')
       AND r.started_at >= ?3 AND r.started_at < ?4
     ORDER BY r.started_at DESC, r.id DESC LIMIT ?5"
);
pub(super) const UNFINISHED_SQL: &str =
    select_recordings!("WHERE r.status IN ('recording', 'paused') ORDER BY r.id");
const OLDER_THAN_SQL: &str = select_recordings!(
    "WHERE r.tenant_id = ?1 AND r.started_at < ?2 AND r.status NOT IN ('recording', 'paused')
     ORDER BY r.started_at, r.id LIMIT ?3"
);
const BY_SESSION_SQL: &str =
    select_recordings!("WHERE r.call_session_id = ?1 ORDER BY r.started_at, r.id");

const INSERT_SQL: &str = "
    INSERT INTO recordings (call_session_id, cdr_id, tenant_id, kind, format, path, started_at,
                            status, layout, sample_rate, channels)
    VALUES (?1, (SELECT id FROM cdr WHERE call_session_id = ?1), ?2, ?3, ?4, ?5, ?6,
            'recording', ?7, ?8, ?9)";

// An internal party without a user id gets the user of that extension in the recording's
// tenant, if there is one. A party already linked is left as it is.
const INSERT_PARTY_SQL: &str = "
    INSERT INTO recording_parties (recording_id, party, kind, user_id)
    VALUES (?1, ?2, ?3,
            CASE WHEN ?3 = 'internal' THEN
                COALESCE(?4, (SELECT id FROM users WHERE tenant_id = ?5 AND extension = ?2))
            END)
    ON CONFLICT (recording_id, party, kind) DO NOTHING";

const INSERT_EVENT_SQL: &str = "
    INSERT INTO recording_events (recording_id, at, offset_ms, event, source, actor, reason)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

// What a write needs to know about the recording it changes.
const STATE_SQL: &str = "
    SELECT tenant_id, status, started_at,
           (SELECT MAX(offset_ms) FROM recording_events WHERE recording_id = ?1)
    FROM recordings WHERE id = ?1";

const SELECT_PARTIES_SQL: &str =
    "SELECT party, kind, user_id FROM recording_parties WHERE recording_id = ?1 ORDER BY id";
const SELECT_EVENTS_SQL: &str = "
    SELECT at, offset_ms, event, source, actor, reason FROM recording_events
    WHERE recording_id = ?1 ORDER BY id";

fn recording_from_row(r: &Row<'_>) -> rusqlite::Result<Recording> {
    Ok(Recording {
        id: RecordingId(r.get(0)?),
        call_session_id: r.get(1)?,
        cdr_id: r.get::<_, Option<i64>>(2)?.map(CdrId),
        tenant: r.get(3)?,
        tenant_id: TenantId(r.get(4)?),
        parties: Vec::new(),
        kind: text_col(r, 5)?,
        format: text_col(r, 6)?,
        path: r.get(7)?,
        started_at: r.get(8)?,
        ended_at: r.get(9)?,
        duration_ms: r.get(10)?,
        status: text_col(r, 11)?,
        stop_reason: r.get(12)?,
        error: r.get(13)?,
        layout: text_col(r, 14)?,
        sample_rate: r.get(15)?,
        channels: r.get(16)?,
        events: Vec::new(),
    })
}

fn party_from_row(r: &Row<'_>) -> rusqlite::Result<RecordingParty> {
    Ok(RecordingParty {
        party: r.get(0)?,
        kind: text_col(r, 1)?,
        user_id: r.get::<_, Option<i64>>(2)?.map(UserId),
    })
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<RecordingEvent> {
    Ok(RecordingEvent {
        at: r.get(0)?,
        offset_ms: r.get(1)?,
        event: text_col(r, 2)?,
        source: text_col(r, 3)?,
        actor: r.get(4)?,
        reason: r.get(5)?,
    })
}

/// The stored facts a write checks against.
struct State {
    tenant_id: TenantId,
    status: RecordingStatus,
    started_at: i64,
    /// Offset of the latest event (0 without events).
    last_offset: u64,
}

fn state(conn: &Connection, id: RecordingId) -> Result<State, StoreError> {
    conn.prepare_cached(STATE_SQL)?
        .query_row([id.0], |r| {
            Ok(State {
                tenant_id: TenantId(r.get(0)?),
                status: text_col(r, 1)?,
                started_at: r.get(2)?,
                last_offset: r.get::<_, Option<u64>>(3)?.unwrap_or(0),
            })
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("recording {id} not found")))
}

/// `Invalid` unless the recording is still running.
fn running(id: RecordingId, s: &State, what: &str) -> Result<(), StoreError> {
    if s.status.is_running() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("recording {id} is {}: cannot {what} it", s.status)))
    }
}

#[allow(clippy::too_many_arguments)]
fn insert_event(
    conn: &Connection,
    id: RecordingId,
    at: i64,
    offset_ms: u64,
    event: RecordingEventKind,
    source: ControlSourceKind,
    actor: &str,
    reason: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(INSERT_EVENT_SQL)?.execute(params![
        id.0,
        at,
        offset_ms,
        event.as_str(),
        source.as_str(),
        actor,
        reason
    ])?;
    Ok(())
}

fn insert_party(
    conn: &Connection,
    id: RecordingId,
    tenant: TenantId,
    p: &RecordingParty,
) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached(INSERT_PARTY_SQL)?
        .execute(params![id.0, p.party, p.kind.as_str(), p.user_id.map(|u| u.0), tenant.0])
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::NotFound(format!(
                    "recording {id}: user id {} of party {} not found",
                    p.user_id.map_or_else(|| "?".into(), |u| u.to_string()),
                    p.party
                ))
            } else {
                e.into()
            }
        })?;
    Ok(n == 1)
}

/// Error text for a single recording: "recording 7: ...".
fn invalid(id: RecordingId) -> impl Fn(String) -> StoreError {
    move |why| StoreError::Invalid(format!("recording {id}: {why}"))
}

/// Several recording writes in one transaction, from [`Store::recording_batch`]. Each
/// method is atomic on its own (a savepoint): when one fails, its partial writes are
/// undone and the batch can go on with the next; the batch commits what succeeded.
/// The methods mean what [`Store`]'s methods of the same names mean.
pub struct RecordingBatch<'conn> {
    tx: Transaction<'conn>,
}

impl RecordingBatch<'_> {
    /// Runs `f` in a savepoint, released on success and rolled back on error.
    fn atomic<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let sp = self.tx.savepoint()?;
        let out = f(&sp)?;
        sp.commit()?;
        Ok(out)
    }

    pub fn start_recording(&mut self, r: &NewRecording) -> Result<RecordingId, StoreError> {
        check_new(r)?;
        self.atomic(|conn| {
            let inserted = conn.prepare_cached(INSERT_SQL)?.execute(params![
                r.call_session_id,
                r.tenant_id.0,
                r.kind.as_str(),
                r.format.as_str(),
                r.path,
                r.started_at,
                r.layout.as_str(),
                r.sample_rate,
                r.channels,
            ]);
            if let Err(e) = inserted {
                return Err(if is_foreign_key_violation(&e) {
                    StoreError::NotFound(format!(
                        "recording {:?}: tenant id {} not found",
                        r.path, r.tenant_id
                    ))
                } else if is_unique_violation(&e) {
                    StoreError::Duplicate(format!(
                        "recording file {} is already used by another recording",
                        r.path
                    ))
                } else {
                    e.into()
                });
            }
            let id = RecordingId(conn.last_insert_rowid());
            for p in &r.parties {
                insert_party(conn, id, r.tenant_id, p)?;
            }
            insert_event(
                conn,
                id,
                r.started_at,
                0,
                RecordingEventKind::Start,
                r.source,
                &r.actor,
                &r.reason,
            )?;
            Ok(id)
        })
    }

    pub fn add_recording_party(
        &mut self,
        id: RecordingId,
        party: &RecordingParty,
    ) -> Result<bool, StoreError> {
        check_party(party).map_err(invalid(id))?;
        self.atomic(|conn| {
            let s = state(conn, id)?;
            running(id, &s, "add a party to")?;
            insert_party(conn, id, s.tenant_id, party)
        })
    }

    pub fn add_recording_event(
        &mut self,
        id: RecordingId,
        e: &NewRecordingEvent,
    ) -> Result<bool, StoreError> {
        let bad = invalid(id);
        let next = match e.event {
            RecordingEventKind::Pause => RecordingStatus::Paused,
            RecordingEventKind::Resume => RecordingStatus::Recording,
            other => {
                return Err(bad(format!(
                    "a {other} event is written by start_recording, finish_recording or \
                     mark_recovered/mark_failed, not add_recording_event"
                )));
            }
        };
        check_time("at", e.at).map_err(&bad)?;
        check_ms("offset_ms", e.offset_ms).map_err(&bad)?;
        check_cause(&e.actor, &e.reason).map_err(&bad)?;
        self.atomic(|conn| {
            let s = state(conn, id)?;
            running(id, &s, "pause or resume")?;
            if s.status == next {
                // Pausing a paused recording (or resuming a running one) changes nothing.
                return Ok(false);
            }
            if e.at < s.started_at || e.offset_ms < s.last_offset {
                return Err(bad(format!(
                    "{} at {} (offset {} ms) is before the recording's start {} or its last \
                     event (offset {} ms)",
                    e.event, e.at, e.offset_ms, s.started_at, s.last_offset
                )));
            }
            conn.prepare_cached("UPDATE recordings SET status = ?2 WHERE id = ?1")?
                .execute(params![id.0, next.as_str()])?;
            insert_event(conn, id, e.at, e.offset_ms, e.event, e.source, &e.actor, &e.reason)?;
            Ok(true)
        })
    }

    pub fn finish_recording(&mut self, id: RecordingId, f: &Finish) -> Result<(), StoreError> {
        let bad = invalid(id);
        let event = match f.status {
            RecordingStatus::Completed | RecordingStatus::Stopped => RecordingEventKind::Stop,
            RecordingStatus::Failed => RecordingEventKind::Failed,
            other => {
                return Err(bad(format!(
                    "finish_recording ends a recording as completed, stopped or failed, not {other}"
                )));
            }
        };
        check_time("ended_at", f.ended_at).map_err(&bad)?;
        check_ms("duration_ms", f.duration_ms).map_err(&bad)?;
        // Empty texts are absent ones.
        let stop_reason = f.stop_reason.as_deref().filter(|r| !r.is_empty());
        let error = f.error.as_deref().filter(|e| !e.is_empty());
        if let Some(r) = stop_reason {
            check_text("stop_reason", r, 1, MAX_RECORDING_TEXT_LEN).map_err(&bad)?;
        }
        if let Some(e) = error {
            check_text("error", e, 1, MAX_RECORDING_REASON_LEN).map_err(&bad)?;
        }
        if f.status == RecordingStatus::Failed && error.is_none() {
            return Err(bad("a failed recording needs its error".into()));
        }
        check_cause(&f.actor, &f.reason).map_err(&bad)?;
        let reason = [Some(f.reason.as_str()), stop_reason, error]
            .into_iter()
            .flatten()
            .find(|r| !r.is_empty())
            .unwrap_or("");
        self.atomic(|conn| {
            let s = state(conn, id)?;
            running(id, &s, "finish")?;
            if f.ended_at < s.started_at || f.duration_ms < s.last_offset {
                return Err(bad(format!(
                    "ended at {} with {} ms, before its start {} or its last event (offset {} ms)",
                    f.ended_at, f.duration_ms, s.started_at, s.last_offset
                )));
            }
            conn.prepare_cached(
                "UPDATE recordings SET status = ?2, ended_at = ?3, duration_ms = ?4,
                                       stop_reason = ?5, error = ?6
                 WHERE id = ?1",
            )?
            .execute(params![
                id.0,
                f.status.as_str(),
                f.ended_at,
                f.duration_ms,
                stop_reason,
                error
            ])?;
            insert_event(conn, id, f.ended_at, f.duration_ms, event, f.source, &f.actor, reason)
        })
    }

    pub fn mark_recovered(
        &mut self,
        id: RecordingId,
        at: i64,
        duration_ms: u64,
    ) -> Result<(), StoreError> {
        let bad = invalid(id);
        check_time("at", at).map_err(&bad)?;
        check_ms("duration_ms", duration_ms).map_err(&bad)?;
        self.atomic(|conn| {
            let s = state(conn, id)?;
            running(id, &s, "recover")?;
            conn.prepare_cached(
                "UPDATE recordings SET status = 'recovered', duration_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id.0, duration_ms])?;
            insert_event(
                conn,
                id,
                at,
                duration_ms,
                RecordingEventKind::Recovered,
                ControlSourceKind::System,
                "system",
                "the PBX stopped while recording; the file was repaired on the next start",
            )
        })
    }

    pub fn mark_failed(
        &mut self,
        id: RecordingId,
        at: i64,
        duration_ms: Option<u64>,
        error: &str,
    ) -> Result<(), StoreError> {
        let bad = invalid(id);
        check_time("at", at).map_err(&bad)?;
        if let Some(d) = duration_ms {
            check_ms("duration_ms", d).map_err(&bad)?;
        }
        check_text("error", error, 1, MAX_RECORDING_REASON_LEN).map_err(&bad)?;
        self.atomic(|conn| {
            let s = state(conn, id)?;
            running(id, &s, "fail")?;
            conn.prepare_cached(
                "UPDATE recordings SET status = 'failed', duration_ms = ?2, error = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id.0, duration_ms, error])?;
            insert_event(
                conn,
                id,
                at,
                duration_ms.unwrap_or(s.last_offset),
                RecordingEventKind::Failed,
                ControlSourceKind::System,
                "system",
                error,
            )
        })
    }

    pub fn delete_recording(&mut self, id: RecordingId) -> Result<bool, StoreError> {
        self.atomic(|conn| {
            let s = match state(conn, id) {
                Err(StoreError::NotFound(_)) => return Ok(false),
                other => other?,
            };
            if s.status.is_running() {
                return Err(StoreError::Invalid(format!(
                    "recording {id} is {}: finish it before deleting it",
                    s.status
                )));
            }
            // Parties and events go with it (ON DELETE CASCADE).
            let n = conn.prepare_cached("DELETE FROM recordings WHERE id = ?1")?.execute([id.0])?;
            Ok(n == 1)
        })
    }
}

impl Store {
    /// Runs `f` with a [`RecordingBatch`] in one transaction (taking the write lock up
    /// front) and commits what it wrote when `f` returns `Ok`; an `Err` from `f` rolls
    /// everything back. The PBX's recording writer drains its queue into one batch,
    /// logging and skipping writes that fail instead of returning their errors.
    pub fn recording_batch<T>(
        &mut self,
        f: impl FnOnce(&mut RecordingBatch<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut batch = RecordingBatch { tx };
        let out = f(&mut batch)?;
        batch.tx.commit()?;
        Ok(out)
    }

    /// Records a recording that has started: the row (status `recording`), its parties,
    /// and its `start` event, together. Links the call's CDR if it is already written.
    /// `Invalid` for a recording that fails the checks on [`NewRecording`], `NotFound`
    /// for an unknown tenant, `Duplicate` when another recording has the same path.
    pub fn start_recording(&mut self, r: &NewRecording) -> Result<RecordingId, StoreError> {
        self.recording_batch(|b| b.start_recording(r))
    }

    /// Links a running recording to one more party (SPEC §1 rule 3: a transfer or pickup
    /// brought them in). Returns false when the party was already linked. `Invalid` once
    /// the recording has ended, `NotFound` for an unknown recording or user id.
    pub fn add_recording_party(
        &mut self,
        id: RecordingId,
        party: &RecordingParty,
    ) -> Result<bool, StoreError> {
        self.recording_batch(|b| b.add_recording_party(id, party))
    }

    /// Stores a pause or resume and moves the status to `paused` or back to `recording`.
    /// Returns false, storing nothing, when it changes nothing (pausing a paused
    /// recording, resuming a running one). `Invalid` for another kind of event, a
    /// recording that has ended, a time before the recording's start or an offset before
    /// its last event's; `NotFound` for an unknown recording.
    pub fn add_recording_event(
        &mut self,
        id: RecordingId,
        event: &NewRecordingEvent,
    ) -> Result<bool, StoreError> {
        self.recording_batch(|b| b.add_recording_event(id, event))
    }

    /// Ends a running recording as completed, stopped or failed, with its end time,
    /// length and reasons, and writes its `stop` (or `failed`) event. `Invalid` for
    /// another status, a recording that has already ended, an end before its start or a
    /// length shorter than its last event's offset; `NotFound` for an unknown recording.
    pub fn finish_recording(&mut self, id: RecordingId, finish: &Finish) -> Result<(), StoreError> {
        self.recording_batch(|b| b.finish_recording(id, finish))
    }

    /// Crash recovery: a recording left running by a PBX that stopped, whose file was
    /// repaired to `duration_ms`, becomes `recovered`, with a `recovered` event at `at`
    /// (now) from `system`. Its end time stays unknown (null). `Invalid` unless it was
    /// still running.
    pub fn mark_recovered(
        &mut self,
        id: RecordingId,
        at: i64,
        duration_ms: u64,
    ) -> Result<(), StoreError> {
        self.recording_batch(|b| b.mark_recovered(id, at, duration_ms))
    }

    /// Crash recovery: a recording left running whose file could not be repaired becomes
    /// `failed` with `error` (and its length, when known), with a `failed` event at `at`
    /// from `system`. `Invalid` unless it was still running.
    pub fn mark_failed(
        &mut self,
        id: RecordingId,
        at: i64,
        duration_ms: Option<u64>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.recording_batch(|b| b.mark_failed(id, at, duration_ms, error))
    }

    /// Deletes a finished recording's row with its parties and events (the caller deletes
    /// the file). False when there was no such recording. `Invalid` while it is running.
    pub fn delete_recording(&mut self, id: RecordingId) -> Result<bool, StoreError> {
        self.recording_batch(|b| b.delete_recording(id))
    }

    /// Recordings matching `filter`, newest first (by start time, then id), with their
    /// parties, events and CDR.
    pub fn list_recordings(&self, filter: &RecordingFilter) -> Result<Vec<Recording>, StoreError> {
        let since = filter.since.unwrap_or(i64::MIN);
        let until = filter.until.unwrap_or(i64::MAX);
        let limit = filter.limit.map_or(-1, i64::from);
        // One read transaction: rows, parties and events from one snapshot while the PBX
        // writes.
        let tx = self.conn.unchecked_transaction()?;
        let rows = match (filter.tenant, &filter.party) {
            (None, None) => self.recordings_query(LIST_ALL_SQL, params![since, until, limit])?,
            (Some(t), None) => {
                self.recordings_query(LIST_TENANT_SQL, params![t.0, since, until, limit])?
            }
            (None, Some(p)) => {
                self.recordings_query(LIST_PARTY_SQL, params![p, since, until, limit])?
            }
            (Some(t), Some(p)) => {
                self.recordings_query(LIST_TENANT_PARTY_SQL, params![t.0, p, since, until, limit])?
            }
        };
        tx.commit()?;
        Ok(rows)
    }

    /// Recordings still `recording` or `paused`, oldest first. Right after start, before
    /// any call, these are what a crash left behind: repair their files, then
    /// [`Store::mark_recovered`] or [`Store::mark_failed`] each.
    pub fn unfinished_recordings(&self) -> Result<Vec<Recording>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let rows = self.recordings_query(UNFINISHED_SQL, [])?;
        tx.commit()?;
        Ok(rows)
    }

    pub fn recording(&self, id: RecordingId) -> Result<Option<Recording>, StoreError> {
        self.recording_one(select_recordings!("WHERE r.id = ?1"), params![id.0])
    }

    /// The recording written to `path` (relative to DIR/recordings, as stored).
    pub fn recording_by_path(&self, path: &str) -> Result<Option<Recording>, StoreError> {
        self.recording_one(select_recordings!("WHERE r.path = ?1"), params![path])
    }

    /// A call's recordings (the `session_id` of SPEC §1), oldest first: from a CDR to its
    /// recordings.
    pub fn recordings_of_session(&self, session_id: &str) -> Result<Vec<Recording>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let rows = self.recordings_query(BY_SESSION_SQL, params![session_id])?;
        tx.commit()?;
        Ok(rows)
    }

    /// Retention: up to `limit` of a tenant's finished recordings started before `cutoff`
    /// (unix ms), oldest first. Delete each file, then [`Store::delete_recording`]; call
    /// again until it returns fewer than `limit`. Running recordings are never returned.
    pub fn recordings_older_than(
        &self,
        tenant: TenantId,
        cutoff: i64,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let rows = self.recordings_query(OLDER_THAN_SQL, params![tenant.0, cutoff, limit])?;
        tx.commit()?;
        Ok(rows)
    }

    /// A tenant's recording options. `NotFound` for an unknown tenant.
    pub fn tenant_recording_options(
        &self,
        id: TenantId,
    ) -> Result<TenantRecordingOptions, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT recording_layout, retention_days, record_start_beep, pause_confirmation_tone
                 FROM tenants WHERE id = ?1",
            )?
            .query_row([id.0], |r| {
                Ok(TenantRecordingOptions {
                    layout: text_col(r, 0)?,
                    retention_days: r.get(1)?,
                    start_beep: r.get(2)?,
                    pause_confirmation_tone: r.get(3)?,
                })
            })
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("tenant id {id} not found")))
    }

    /// Sets a tenant's recording options; `None` leaves an option as it is, and
    /// `retention_days: Some(None)` keeps recordings forever. Configuration: moves
    /// `config_version()`. `Invalid` for a retention outside 1..=`MAX_RETENTION_DAYS`
    /// days, `NotFound` for an unknown tenant.
    pub fn set_tenant_recording_options(
        &self,
        id: TenantId,
        layout: Option<RecordingLayout>,
        retention_days: Option<Option<u32>>,
        start_beep: Option<bool>,
        pause_confirmation_tone: Option<bool>,
    ) -> Result<(), StoreError> {
        if let Some(Some(days)) = retention_days
            && !(1..=MAX_RETENTION_DAYS).contains(&days)
        {
            return Err(StoreError::Invalid(format!(
                "invalid retention of {days} days: use 1 to {MAX_RETENTION_DAYS}, or keep \
                 recordings forever"
            )));
        }
        let n = self
            .conn
            .prepare_cached(
                "UPDATE tenants SET
                    recording_layout = COALESCE(?2, recording_layout),
                    retention_days = CASE WHEN ?3 THEN ?4 ELSE retention_days END,
                    record_start_beep = COALESCE(?5, record_start_beep),
                    pause_confirmation_tone = COALESCE(?6, pause_confirmation_tone)
                 WHERE id = ?1",
            )?
            .execute(params![
                id.0,
                layout.map(RecordingLayout::as_str),
                retention_days.is_some(),
                retention_days.flatten(),
                start_beep,
                pause_confirmation_tone,
            ])?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("tenant id {id} not found")));
        }
        Ok(())
    }

    /// Runs a recordings query and fills in each row's parties and events. Call inside a
    /// read transaction so they come from one snapshot.
    fn recordings_query(
        &self,
        sql: &'static str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<Recording>, StoreError> {
        let mut rows = self
            .conn
            .prepare_cached(sql)?
            .query_map(args, recording_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        for r in &mut rows {
            self.fill_recording(r)?;
        }
        Ok(rows)
    }

    fn recording_one(
        &self,
        sql: &'static str,
        args: impl rusqlite::Params,
    ) -> Result<Option<Recording>, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let found =
            self.conn.prepare_cached(sql)?.query_row(args, recording_from_row).optional()?;
        let found = match found {
            Some(mut r) => {
                self.fill_recording(&mut r)?;
                Some(r)
            }
            None => None,
        };
        tx.commit()?;
        Ok(found)
    }

    fn fill_recording(&self, r: &mut Recording) -> Result<(), StoreError> {
        r.parties = self
            .conn
            .prepare_cached(SELECT_PARTIES_SQL)?
            .query_map([r.id.0], party_from_row)?
            .collect::<Result<_, _>>()?;
        r.events = self
            .conn
            .prepare_cached(SELECT_EVENTS_SQL)?
            .query_map([r.id.0], event_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(())
    }
}
