//! Numbered schema migrations, applied in order, each exactly once.
//!
//! Rules for adding one: append a new entry with the next version; never edit or reorder a
//! released entry (databases in the field already ran it). The applied versions are kept
//! in `schema_migrations` rather than `PRAGMA user_version` so a PostgreSQL backend can use
//! the same bookkeeping table.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{StoreError, settings};

pub(super) struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
    /// Rows that need Rust to compute (random secrets), run in the same transaction.
    pub seed: Option<fn(&Transaction<'_>) -> rusqlite::Result<()>>,
}

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants, users, registrations, system settings",
        sql: V1_INITIAL,
        seed: Some(settings::seed_system_settings),
    },
    Migration { version: 2, name: "call detail records", sql: V2_CDR, seed: None },
    Migration {
        version: 3,
        name: "recordings, tenant recording options",
        sql: V3_RECORDINGS,
        seed: None,
    },
    Migration {
        version: 4,
        name: "trunks, DIDs, outbound routes, call forwarding",
        sql: V4_TRUNKS,
        seed: None,
    },
    Migration { version: 5, name: "recording decision in the CDR", sql: V5_CDR_RECORDING, seed: None },
];

/// The newest schema version this build knows.
pub(super) fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the database up to `latest_version()`. Returns the version it is at afterwards.
///
/// BEGIN IMMEDIATE takes the write lock before the version is read, so a CLI and a server
/// opening the same fresh file at once cannot both apply migration 1; the second waits
/// (busy timeout), then sees it done. All pending migrations commit together or not at all.
pub(super) fn run(conn: &mut Connection) -> Result<u32, StoreError> {
    run_until(conn, latest_version())
}

/// Applies the pending migrations up to and including `target` (tests build databases as
/// older releases left them this way). Returns the version the database is at afterwards.
pub(super) fn run_until(conn: &mut Connection, target: u32) -> Result<u32, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at INTEGER NOT NULL DEFAULT (unixepoch())
        ) STRICT;",
    )?;
    let current: u32 =
        tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let latest = latest_version();
    if current > latest {
        return Err(StoreError::SchemaTooNew { found: current, supported: latest });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current && m.version <= target) {
        tx.execute_batch(m.sql)?;
        if let Some(seed) = m.seed {
            seed(&tx)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?1, ?2)",
            (m.version, m.name),
        )?;
        tracing::info!(version = m.version, name = m.name, "applied database migration");
    }
    tx.commit()?;
    Ok(target.max(current))
}

/// Version 1. STRICT tables so a wrong type is an error, not a silent conversion; CHECKs
/// repeat the validators' cheapest rules so other writers cannot break invariants.
const V1_INITIAL: &str = "
-- One row (id = 1): typed columns instead of key/value, so every setting has a type and a
-- default; new settings arrive as ALTER TABLE ... ADD COLUMN ... DEFAULT in later versions.
CREATE TABLE system_settings (
    id                               INTEGER PRIMARY KEY CHECK (id = 1),
    record_between_external_numbers  INTEGER NOT NULL DEFAULT 1
                                     CHECK (record_between_external_numbers IN (0, 1)),
    -- 32 random bytes, lower-case hex: keys the HMAC in stateless digest nonces.
    nonce_secret                     TEXT NOT NULL CHECK (length(nonce_secret) = 64)
) STRICT;

CREATE TABLE tenants (
    id               INTEGER PRIMARY KEY,
    -- NOCASE: admins type --tenant Office or --tenant office and mean the same tenant.
    name             TEXT NOT NULL COLLATE NOCASE UNIQUE,
    domain           TEXT NOT NULL UNIQUE
                     CHECK (domain = lower(domain) AND length(domain) BETWEEN 1 AND 253),
    audio_recording  INTEGER NOT NULL DEFAULT 0 CHECK (audio_recording IN (0, 1)),
    video_recording  INTEGER NOT NULL DEFAULT 0 CHECK (video_recording IN (0, 1)),
    -- The default tenant answers requests addressed to an IP literal.
    is_default       INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    created_at       INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;

-- At most one default tenant, enforced by the database; the store keeps it at exactly one.
CREATE UNIQUE INDEX tenants_single_default ON tenants (is_default) WHERE is_default = 1;

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    tenant_id           INTEGER NOT NULL REFERENCES tenants (id),
    -- Case-sensitive: the SIP user part is compared case-sensitively (RFC 3261 §19.1.4).
    extension           TEXT NOT NULL CHECK (length(extension) BETWEEN 1 AND 32),
    display_name        TEXT NOT NULL DEFAULT '',
    -- Never plain passwords: HA1 = H(extension:realm:password), per algorithm.
    ha1_md5             TEXT NOT NULL CHECK (length(ha1_md5) = 32),
    ha1_sha256          TEXT NOT NULL CHECK (length(ha1_sha256) = 64),
    -- The realm the HA1s were computed for; when the tenant domain changes they are stale.
    ha1_realm           TEXT NOT NULL,
    role                TEXT NOT NULL DEFAULT 'user'
                        CHECK (role IN ('user', 'tenant-admin', 'system-admin')),
    record_audio_calls  INTEGER NOT NULL DEFAULT 1 CHECK (record_audio_calls IN (0, 1)),
    record_video_calls  INTEGER NOT NULL DEFAULT 1 CHECK (record_video_calls IN (0, 1)),
    created_at          INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (tenant_id, extension)
) STRICT;

-- Registrar bindings, persisted so phones stay reachable across a server restart.
CREATE TABLE registrations (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    aor          TEXT NOT NULL,
    contact_uri  TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,              -- unix seconds
    q            REAL CHECK (q IS NULL OR (q >= 0.0 AND q <= 1.0)),
    call_id      TEXT NOT NULL,
    cseq         INTEGER NOT NULL CHECK (cseq BETWEEN 0 AND 4294967295),
    source       TEXT NOT NULL,                 -- transport:ip:port the REGISTER came from
    user_agent   TEXT,
    instance_id  TEXT,                          -- +sip.instance (RFC 5626), if sent
    updated_at   INTEGER NOT NULL,
    UNIQUE (user_id, contact_uri)
) STRICT;

-- The startup purge deletes by expiry.
CREATE INDEX registrations_expires_at ON registrations (expires_at);

-- Bumped by triggers on every change to settings, tenants or users, and by nothing else.
-- PRAGMA data_version tells the server that *some* other connection committed, which
-- includes its own registration writer; this counter tells whether the configuration
-- (what its caches hold) was among the changes, so binding writes never cause reloads.
CREATE TABLE config_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
) STRICT;
INSERT INTO config_version (id, version) VALUES (1, 0);
CREATE TRIGGER system_settings_insert_bumps_config AFTER INSERT ON system_settings
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER system_settings_update_bumps_config AFTER UPDATE ON system_settings
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER system_settings_delete_bumps_config AFTER DELETE ON system_settings
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_insert_bumps_config AFTER INSERT ON tenants
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_update_bumps_config AFTER UPDATE ON tenants
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER tenants_delete_bumps_config AFTER DELETE ON tenants
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER users_insert_bumps_config AFTER INSERT ON users
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER users_update_bumps_config AFTER UPDATE ON users
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER users_delete_bumps_config AFTER DELETE ON users
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
";

/// Version 2: call detail records (SPEC §3: a CDR for every call, recorded or not).
///
/// Not configuration: no config_version triggers, so the server's own CDR writer never
/// makes it reload its caches. Times are unix milliseconds (UTC). `duration_s` and
/// `billsec` are generated from the times, so they can never disagree with them.
/// CDRs reference their tenant without ON DELETE: a tenant with call history cannot be
/// deleted by accident.
const V2_CDR: &str = "
CREATE TABLE cdr (
    id               INTEGER PRIMARY KEY,
    -- The PBX's X-Session-Id of the call (SPEC §1); recordings link to the call by it.
    call_session_id  TEXT NOT NULL UNIQUE CHECK (length(call_session_id) BETWEEN 1 AND 128),
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    -- An extension of the tenant (internal) or a number reached over a trunk (external).
    caller           TEXT NOT NULL CHECK (length(caller) BETWEEN 1 AND 256),
    caller_kind      TEXT NOT NULL CHECK (caller_kind IN ('internal', 'external')),
    callee           TEXT NOT NULL CHECK (length(callee) BETWEEN 1 AND 256),
    callee_kind      TEXT NOT NULL CHECK (callee_kind IN ('internal', 'external')),
    direction        TEXT NOT NULL CHECK (direction IN ('internal', 'inbound', 'outbound')),
    started_at       INTEGER NOT NULL CHECK (started_at >= 0),   -- INVITE received
    answered_at      INTEGER,                                    -- 200 OK sent to the caller
    ended_at         INTEGER NOT NULL,                           -- last party gone
    -- Seconds from start to end, to the millisecond.
    duration_s       REAL GENERATED ALWAYS AS ((ended_at - started_at) / 1000.0) VIRTUAL,
    -- Whole seconds from answer to end, rounded to the nearest; 0 when never answered.
    billsec          INTEGER GENERATED ALWAYS AS
                     (CASE WHEN answered_at IS NULL THEN 0
                           ELSE (ended_at - answered_at + 500) / 1000 END) VIRTUAL,
    disposition      TEXT NOT NULL
                     CHECK (disposition IN ('answered', 'busy', 'no-answer', 'cancelled', 'failed')),
    hangup_by        TEXT NOT NULL CHECK (hangup_by IN ('caller', 'callee', 'pbx')),
    -- A SIP status ('486 Busy Here'), 'BYE', or a PBX cause ('rtp-timeout').
    hangup_cause     TEXT NOT NULL CHECK (length(hangup_cause) <= 256),
    -- Call-IDs of the caller's leg (a) and the callee's leg (b, none if never sent), so
    -- support can find the call in SIP traces.
    sip_call_id_a    TEXT NOT NULL CHECK (length(sip_call_id_a) BETWEEN 1 AND 256),
    sip_call_id_b    TEXT CHECK (sip_call_id_b IS NULL OR length(sip_call_id_b) BETWEEN 1 AND 256),
    codec            TEXT CHECK (codec IS NULL OR length(codec) BETWEEN 1 AND 64),
    CHECK (ended_at >= started_at),
    CHECK (answered_at IS NULL OR answered_at BETWEEN started_at AND ended_at),
    CHECK ((disposition = 'answered') = (answered_at IS NOT NULL))
) STRICT;

-- Listing is newest first, for all tenants (system admin) or one tenant.
CREATE INDEX cdr_started_at ON cdr (started_at);
CREATE INDEX cdr_tenant_started_at ON cdr (tenant_id, started_at);

-- Everyone who took part in a call, in the order they joined: the caller and callee, and
-- after a transfer, forward or pickup (issue 5) the parties it brought in.
CREATE TABLE cdr_parties (
    id         INTEGER PRIMARY KEY,
    cdr_id     INTEGER NOT NULL REFERENCES cdr (id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('caller', 'callee', 'transfer-target',
                                             'forward-target', 'pickup')),
    party      TEXT NOT NULL CHECK (length(party) BETWEEN 1 AND 256),
    kind       TEXT NOT NULL CHECK (kind IN ('internal', 'external')),
    joined_at  INTEGER NOT NULL,                -- unix ms: offered the call
    left_at    INTEGER NOT NULL,                -- unix ms
    CHECK (left_at >= joined_at)
) STRICT;
CREATE INDEX cdr_parties_cdr ON cdr_parties (cdr_id);
-- Users see their own calls only (SPEC §3): CDRs are looked up by party.
CREATE INDEX cdr_parties_party ON cdr_parties (party);
";

/// Version 3: recordings (SPEC §1, §4) and the tenant options that shape them.
///
/// The tenant columns are configuration: the existing `tenants_update_bumps_config`
/// trigger fires on an UPDATE of any column, so changing them moves `config_version`
/// (ALTER TABLE itself fires no trigger, so the migration does not). The recording tables
/// are not configuration: no triggers of that kind, so the PBX's recording writer never
/// makes it reload its caches.
///
/// A call may have several recordings (audio and video; policy stopping and starting
/// again), so `call_session_id` is not unique. `cdr_id` links a recording to its call's
/// CDR, which is written when the call ends, after the recording row exists: a new
/// recording takes the id of a CDR already written for its session, and the trigger
/// below fills it in for recordings waiting when the CDR arrives. (A CDR rewrite is an
/// upsert that keeps its id, so only inserts need linking.) Readers also fall back to a
/// lookup by session. Times are unix milliseconds (UTC).
const V3_RECORDINGS: &str = "
ALTER TABLE tenants ADD COLUMN recording_layout TEXT NOT NULL DEFAULT 'stereo'
    CHECK (recording_layout IN ('stereo', 'mono'));
-- NULL keeps recordings forever.
ALTER TABLE tenants ADD COLUMN retention_days INTEGER
    CHECK (retention_days IS NULL OR retention_days BETWEEN 1 AND 36500);
-- A short beep to the parties when a recording starts.
ALTER TABLE tenants ADD COLUMN record_start_beep INTEGER NOT NULL DEFAULT 0
    CHECK (record_start_beep IN (0, 1));
-- A short tone confirms pause and resume to the party who asked (SPEC §1).
ALTER TABLE tenants ADD COLUMN pause_confirmation_tone INTEGER NOT NULL DEFAULT 1
    CHECK (pause_confirmation_tone IN (0, 1));

CREATE TABLE recordings (
    id               INTEGER PRIMARY KEY,
    -- The PBX's X-Session-Id of the call (SPEC §1), as in cdr.call_session_id.
    call_session_id  TEXT NOT NULL CHECK (length(call_session_id) BETWEEN 1 AND 128),
    cdr_id           INTEGER REFERENCES cdr (id) ON DELETE SET NULL,
    -- No ON DELETE: a tenant with recordings cannot be deleted by accident.
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    -- SPEC §1 rule 2: audio is a WAV file, video an MP4 file.
    kind             TEXT NOT NULL CHECK (kind IN ('audio', 'video')),
    format           TEXT NOT NULL CHECK (format IN ('wav', 'mp4')),
    -- Relative to DIR/recordings, '/'-separated; one file per recording.
    path             TEXT NOT NULL UNIQUE CHECK (length(path) BETWEEN 1 AND 1024
                                                 AND substr(path, 1, 1) <> '/'),
    started_at       INTEGER NOT NULL CHECK (started_at >= 0),
    ended_at         INTEGER,
    -- Length of the file (paused stretches are left out of it), once finished.
    duration_ms      INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    status           TEXT NOT NULL DEFAULT 'recording'
                     CHECK (status IN ('recording', 'paused', 'completed', 'stopped',
                                       'failed', 'recovered')),
    -- Why it ended, as a word: 'hangup', 'policy', 'external-to-external', ...
    stop_reason      TEXT CHECK (stop_reason IS NULL OR length(stop_reason) BETWEEN 1 AND 256),
    error            TEXT CHECK (error IS NULL OR length(error) BETWEEN 1 AND 1024),
    layout           TEXT NOT NULL CHECK (layout IN ('stereo', 'mono')),
    sample_rate      INTEGER NOT NULL CHECK (sample_rate BETWEEN 8000 AND 192000),
    channels         INTEGER NOT NULL CHECK (channels BETWEEN 1 AND 8),
    CHECK ((kind = 'audio') = (format = 'wav')),
    CHECK (ended_at IS NULL OR ended_at >= started_at),
    -- Running: nothing final yet. Completed or stopped: the end is known. Recovered (the
    -- file repaired after a crash): its length is known, the moment of the crash is not.
    CHECK (status NOT IN ('recording', 'paused') OR (ended_at IS NULL AND duration_ms IS NULL)),
    CHECK (status NOT IN ('completed', 'stopped') OR (ended_at IS NOT NULL AND duration_ms IS NOT NULL)),
    CHECK (status <> 'recovered' OR duration_ms IS NOT NULL)
) STRICT;

CREATE INDEX recordings_call_session ON recordings (call_session_id);
-- Listing is newest first, for all tenants (system admin) or one tenant; retention walks
-- a tenant's oldest.
CREATE INDEX recordings_started_at ON recordings (started_at);
CREATE INDEX recordings_tenant_started_at ON recordings (tenant_id, started_at);
-- Crash recovery at start looks for the unfinished ones.
CREATE INDEX recordings_status ON recordings (status);
-- ON DELETE SET NULL of a CDR finds its recordings without a scan.
CREATE INDEX recordings_cdr ON recordings (cdr_id);

-- Every party of the recorded call (SPEC §1 rule 3: one recording, linked to every
-- internal party), so users find their own recordings.
CREATE TABLE recording_parties (
    id            INTEGER PRIMARY KEY,
    recording_id  INTEGER NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    -- An extension (internal) or a number reached over a trunk (external).
    party         TEXT NOT NULL CHECK (length(party) BETWEEN 1 AND 256),
    kind          TEXT NOT NULL CHECK (kind IN ('internal', 'external')),
    -- The extension's user when the recording started; NULL for external parties and
    -- after the user is deleted (the recording stays).
    user_id       INTEGER REFERENCES users (id) ON DELETE SET NULL,
    UNIQUE (recording_id, party, kind),
    CHECK (kind = 'internal' OR user_id IS NULL)
) STRICT;
CREATE INDEX recording_parties_party ON recording_parties (party);
CREATE INDEX recording_parties_user ON recording_parties (user_id);

-- The decision trace (SPEC §1 rule 6): what started, paused, resumed or stopped the
-- recording, by whom, at which offset of the file.
CREATE TABLE recording_events (
    id            INTEGER PRIMARY KEY,
    recording_id  INTEGER NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    at            INTEGER NOT NULL CHECK (at >= 0),
    offset_ms     INTEGER NOT NULL CHECK (offset_ms >= 0),
    event         TEXT NOT NULL CHECK (event IN ('start', 'pause', 'resume', 'stop',
                                                 'recovered', 'failed')),
    source        TEXT NOT NULL CHECK (source IN ('dtmf', 'info', 'inband', 'message',
                                                  'policy', 'system')),
    actor         TEXT NOT NULL CHECK (length(actor) BETWEEN 1 AND 256),
    reason        TEXT NOT NULL CHECK (length(reason) <= 1024)
) STRICT;
-- In order of writing (the rowid is part of every index).
CREATE INDEX recording_events_recording ON recording_events (recording_id);

CREATE TRIGGER cdr_insert_links_recordings AFTER INSERT ON cdr
    BEGIN
        UPDATE recordings SET cdr_id = NEW.id
        WHERE call_session_id = NEW.call_session_id AND cdr_id IS NULL;
    END;
";

/// Version 4: trunks to carriers (SPEC §3, §4 `hark pbx trunk add`) and per-user call
/// forwarding (`hark pbx user set --forward-*`).
///
/// All of it is configuration: every table has config_version triggers (the user columns
/// are covered by `users_update_bumps_config`), so a running `serve` reloads its directory
/// and starts or stops trunk registrations within a poll.
///
/// `trunk_outbound.pattern` is a regular expression (Rust `regex` syntax) matched against
/// the whole dialled number; the store validates it before inserting. When it has a
/// capture group (the one named `number`, else the first), the number sent to the carrier
/// is what that group matched (`^9(\d+)$`: dial 9 for an outside line, the 9 is dropped);
/// without a group the dialled number goes out unchanged.
const V4_TRUNKS: &str = "
CREATE TABLE trunks (
    id                 INTEGER PRIMARY KEY,
    tenant_id          INTEGER NOT NULL REFERENCES tenants (id),
    -- NOCASE like tenant names: admins type --name Carrier or --name carrier.
    name               TEXT NOT NULL COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 64),
    -- The carrier's address as given, 'host:port' (a name is resolved when the PBX loads).
    host               TEXT NOT NULL CHECK (length(host) BETWEEN 3 AND 260),
    -- Digest credentials for registering; both NULL: the carrier is authenticated by its
    -- IP address (any source port).
    username           TEXT CHECK (username IS NULL OR length(username) BETWEEN 1 AND 128),
    password           TEXT CHECK (password IS NULL OR length(password) BETWEEN 1 AND 128),
    -- Inbound calls to a number without a DID row go to this extension (NULL: refused).
    default_extension  TEXT CHECK (default_extension IS NULL
                                   OR length(default_extension) BETWEEN 1 AND 32),
    -- The number presented as caller on outbound calls (NULL: the caller's own).
    caller_id          TEXT CHECK (caller_id IS NULL OR length(caller_id) BETWEEN 1 AND 32),
    created_at         INTEGER NOT NULL DEFAULT (unixepoch()),
    UNIQUE (tenant_id, name),
    CHECK ((username IS NULL) = (password IS NULL))
) STRICT;

-- Inbound routing: a dialled number (DID) of the trunk to an extension of its tenant.
CREATE TABLE trunk_dids (
    id         INTEGER PRIMARY KEY,
    trunk_id   INTEGER NOT NULL REFERENCES trunks (id) ON DELETE CASCADE,
    number     TEXT NOT NULL CHECK (length(number) BETWEEN 1 AND 32),
    extension  TEXT NOT NULL CHECK (length(extension) BETWEEN 1 AND 32),
    UNIQUE (trunk_id, number)
) STRICT;

-- Outbound routing: dialled numbers matching `pattern` leave through the trunk; a
-- tenant's trunks are tried in id order, a trunk's patterns in `position` order.
CREATE TABLE trunk_outbound (
    id        INTEGER PRIMARY KEY,
    trunk_id  INTEGER NOT NULL REFERENCES trunks (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL CHECK (position >= 0),
    pattern   TEXT NOT NULL CHECK (length(pattern) BETWEEN 1 AND 256),
    UNIQUE (trunk_id, position)
) STRICT;

-- Call forwarding: an extension of the tenant or an external number; NULL is off.
ALTER TABLE users ADD COLUMN forward_always TEXT
    CHECK (forward_always IS NULL OR length(forward_always) BETWEEN 1 AND 32);
ALTER TABLE users ADD COLUMN forward_busy TEXT
    CHECK (forward_busy IS NULL OR length(forward_busy) BETWEEN 1 AND 32);
ALTER TABLE users ADD COLUMN forward_no_answer TEXT
    CHECK (forward_no_answer IS NULL OR length(forward_no_answer) BETWEEN 1 AND 32);
ALTER TABLE users ADD COLUMN no_answer_secs INTEGER NOT NULL DEFAULT 20
    CHECK (no_answer_secs BETWEEN 5 AND 300);

CREATE TRIGGER trunks_insert_bumps_config AFTER INSERT ON trunks
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunks_update_bumps_config AFTER UPDATE ON trunks
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunks_delete_bumps_config AFTER DELETE ON trunks
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunk_dids_insert_bumps_config AFTER INSERT ON trunk_dids
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunk_dids_update_bumps_config AFTER UPDATE ON trunk_dids
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunk_dids_delete_bumps_config AFTER DELETE ON trunk_dids
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunk_outbound_insert_bumps_config AFTER INSERT ON trunk_outbound
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunk_outbound_update_bumps_config AFTER UPDATE ON trunk_outbound
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER trunk_outbound_delete_bumps_config AFTER DELETE ON trunk_outbound
    BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
";

/// Version 5: the CDR says what the recording policy decided last, and why (SPEC §1
/// rule 6), so a call that was not recorded (two external parties, a user's switch off)
/// explains itself. NULL for rows written before.
const V5_CDR_RECORDING: &str = "
ALTER TABLE cdr ADD COLUMN recording TEXT
    CHECK (recording IS NULL OR length(recording) BETWEEN 1 AND 1024);
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "migration {} out of order", m.name);
        }
    }
}
