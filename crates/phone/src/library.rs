//! This machine's call history and local recordings, in SQLite (rusqlite): what the
//! phone did, found again after a restart. The desktop app lists, plays, exports and
//! deletes from it; `hark phone history` and `hark phone recordings` print it.
//!
//! Two tables: `calls` (one row per call, whatever its outcome) and `recordings` (one
//! row per local WAV, linked to its call, with its pause/resume marks as JSON). Times
//! are unix milliseconds.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("the library {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("the library: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no local recording {0}")]
    NotFound(i64),
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    id           INTEGER PRIMARY KEY,
    direction    TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    remote       TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    answered_at  INTEGER,
    ended_at     INTEGER NOT NULL,
    end_reason   TEXT NOT NULL,
    session_id   TEXT,
    CHECK (ended_at >= started_at)
) STRICT;
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
CREATE TABLE IF NOT EXISTS recordings (
    id           INTEGER PRIMARY KEY,
    call_id      INTEGER REFERENCES calls (id) ON DELETE SET NULL,
    path         TEXT NOT NULL UNIQUE,
    started_at   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL CHECK (duration_ms >= 0),
    remote       TEXT NOT NULL,
    marks        TEXT NOT NULL DEFAULT '[]'
) STRICT;
";

/// A call as it ended, for the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallEntry {
    pub id: i64,
    /// `outgoing` or `incoming`.
    pub direction: String,
    /// Who was on the other end (a number or a SIP URI).
    pub remote: String,
    pub started_at: i64,
    pub answered_at: Option<i64>,
    pub ended_at: i64,
    /// Why it ended ("hangup", "busy", "486 Busy Here", …).
    pub end_reason: String,
    /// The PBX's X-Session-Id, when one was sent.
    pub session_id: Option<String>,
}

/// A pause or resume in a local recording, at an offset of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Mark {
    pub offset_ms: u64,
    /// true: paused here; false: resumed here.
    pub paused: bool,
}

/// A local recording in the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalRecordingEntry {
    pub id: i64,
    pub call_id: Option<i64>,
    pub path: String,
    pub started_at: i64,
    pub duration_ms: u64,
    pub remote: String,
    pub marks: Vec<Mark>,
}

pub struct Library {
    conn: Connection,
}

impl Library {
    /// Opens (creating if needed) the library at `path`.
    pub fn open(path: &Path) -> Result<Library, LibraryError> {
        let err = |e: &dyn std::fmt::Display| LibraryError::Open { path: path.to_owned(), reason: e.to_string() };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| err(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| err(&e))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        Ok(Library { conn })
    }

    /// Adds a finished call; returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn add_call(
        &mut self,
        outgoing: bool,
        remote: &str,
        started_at: i64,
        answered_at: Option<i64>,
        ended_at: i64,
        end_reason: &str,
        session_id: Option<&str>,
    ) -> Result<i64, LibraryError> {
        self.conn.execute(
            "INSERT INTO calls (direction, remote, started_at, answered_at, ended_at, end_reason, session_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                if outgoing { "outgoing" } else { "incoming" },
                remote,
                started_at,
                answered_at,
                ended_at.max(started_at),
                end_reason,
                session_id
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Newest first, at most `limit`.
    pub fn history(&self, limit: usize) -> Result<Vec<CallEntry>, LibraryError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, direction, remote, started_at, answered_at, ended_at, end_reason, session_id
             FROM calls ORDER BY started_at DESC, id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(CallEntry {
                id: r.get(0)?,
                direction: r.get(1)?,
                remote: r.get(2)?,
                started_at: r.get(3)?,
                answered_at: r.get(4)?,
                ended_at: r.get(5)?,
                end_reason: r.get(6)?,
                session_id: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds (or updates, by path) a local recording; returns its id.
    pub fn add_recording(&mut self, call_id: Option<i64>, path: &Path, started_at: i64, duration_ms: u64, remote: &str, marks: &[Mark]) -> Result<i64, LibraryError> {
        let marks = serde_json::to_string(marks).unwrap_or_else(|_| "[]".into());
        self.conn.execute(
            "INSERT INTO recordings (call_id, path, started_at, duration_ms, remote, marks) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (path) DO UPDATE SET call_id = excluded.call_id, started_at = excluded.started_at,
                 duration_ms = excluded.duration_ms, remote = excluded.remote, marks = excluded.marks",
            params![call_id, path.to_string_lossy(), started_at, duration_ms as i64, remote, marks],
        )?;
        Ok(self.conn.query_row("SELECT id FROM recordings WHERE path = ?1", [path.to_string_lossy()], |r| r.get(0))?)
    }

    /// Links a recording (by path) to its call, once the call's row exists.
    pub fn link_recording(&mut self, path: &Path, call_id: i64) -> Result<bool, LibraryError> {
        Ok(self.conn.execute("UPDATE recordings SET call_id = ?1 WHERE path = ?2", params![call_id, path.to_string_lossy()])? > 0)
    }

    /// Files a local recording the phone finished ([`crate::audio::LocalRecording`]) with
    /// the marks and length it left beside the WAV; returns its id.
    pub fn import_local(&mut self, wav: &Path, call_id: Option<i64>, remote: &str, started_at: i64) -> Result<i64, LibraryError> {
        let side = marks_path(wav);
        let text = std::fs::read_to_string(&side).map_err(|e| LibraryError::File { path: side.clone(), reason: e.to_string() })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| LibraryError::File { path: side.clone(), reason: e.to_string() })?;
        let duration_ms = v["duration_ms"].as_u64().unwrap_or(0);
        let marks: Vec<Mark> = serde_json::from_value(v["marks"].clone()).unwrap_or_default();
        let wav = std::fs::canonicalize(wav).unwrap_or_else(|_| wav.to_owned());
        let id = self.add_recording(call_id, &wav, started_at, duration_ms, remote, &marks)?;
        // The library holds them now.
        let _ = std::fs::remove_file(&side);
        Ok(id)
    }

    /// Newest first; `search` matches the remote party or the file name.
    pub fn recordings(&self, search: Option<&str>) -> Result<Vec<LocalRecordingEntry>, LibraryError> {
        let pattern = format!("%{}%", search.unwrap_or("").replace('%', "\\%").replace('_', "\\_"));
        let mut stmt = self.conn.prepare(
            "SELECT id, call_id, path, started_at, duration_ms, remote, marks FROM recordings
             WHERE remote LIKE ?1 ESCAPE '\\' OR path LIKE ?1 ESCAPE '\\'
             ORDER BY started_at DESC, id DESC",
        )?;
        let rows = stmt.query_map([pattern], entry_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn recording(&self, id: i64) -> Result<LocalRecordingEntry, LibraryError> {
        self.conn
            .query_row(
                "SELECT id, call_id, path, started_at, duration_ms, remote, marks FROM recordings WHERE id = ?1",
                [id],
                entry_from_row,
            )
            .optional()?
            .ok_or(LibraryError::NotFound(id))
    }

    /// Copies a recording's WAV to `dest` (a file, or a directory to put it in).
    pub fn export_recording(&self, id: i64, dest: &Path) -> Result<PathBuf, LibraryError> {
        let r = self.recording(id)?;
        let from = PathBuf::from(&r.path);
        let to = if dest.is_dir() { dest.join(from.file_name().unwrap_or_default()) } else { dest.to_owned() };
        std::fs::copy(&from, &to).map_err(|e| LibraryError::File { path: from.clone(), reason: e.to_string() })?;
        Ok(to)
    }

    /// Deletes a recording: its file (a file already gone is fine) and its row.
    pub fn delete_recording(&mut self, id: i64) -> Result<(), LibraryError> {
        let r = self.recording(id)?;
        match std::fs::remove_file(&r.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LibraryError::File { path: r.path.into(), reason: e.to_string() }),
        }
        self.conn.execute("DELETE FROM recordings WHERE id = ?1", [id])?;
        Ok(())
    }
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LocalRecordingEntry> {
    let marks: String = r.get(6)?;
    Ok(LocalRecordingEntry {
        id: r.get(0)?,
        call_id: r.get(1)?,
        path: r.get(2)?,
        started_at: r.get(3)?,
        duration_ms: r.get::<_, i64>(4)?.max(0) as u64,
        remote: r.get(5)?,
        // A damaged marks column loses the marks, not the recording.
        marks: serde_json::from_str(&marks).unwrap_or_default(),
    })
}

/// Where a local recording keeps its marks until the library files them.
pub fn marks_path(wav: &Path) -> PathBuf {
    let mut name = wav.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hark-library-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn history_and_recordings_survive_a_reopen_and_are_searched_exported_deleted() {
        let dir = temp_dir("roundtrip");
        let db = dir.join("library.db");
        let wav = dir.join("call-1.wav");
        std::fs::write(&wav, b"RIFF....WAVE").unwrap();
        {
            let mut lib = Library::open(&db).unwrap();
            let c = lib.add_call(true, "102", 1_000, Some(2_000), 9_000, "hangup", Some("123")).unwrap();
            lib.add_call(false, "sip:alice@example.com", 10_000, None, 12_000, "486 Busy Here", None).unwrap();
            let marks = [Mark { offset_ms: 2_000, paused: true }, Mark { offset_ms: 2_000, paused: false }];
            lib.add_recording(None, &wav, 2_000, 5_000, "102", &marks).unwrap();
            assert!(lib.link_recording(&wav, c).unwrap());
        }
        let mut lib = Library::open(&db).unwrap();
        let h = lib.history(10).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].direction.as_str(), h[0].end_reason.as_str(), h[0].answered_at), ("incoming", "486 Busy Here", None));
        assert_eq!((h[1].remote.as_str(), h[1].session_id.as_deref()), ("102", Some("123")));
        let r = lib.recordings(Some("102")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].call_id, r[0].duration_ms, r[0].marks.len()), (Some(h[1].id), 5_000, 2));
        assert!(lib.recordings(Some("nobody")).unwrap().is_empty());
        assert!(lib.recordings(Some("%")).unwrap().is_empty(), "LIKE wildcards are taken literally");
        let out = temp_dir("export");
        let copied = lib.export_recording(r[0].id, &out).unwrap();
        assert_eq!(std::fs::read(&copied).unwrap(), b"RIFF....WAVE");
        lib.delete_recording(r[0].id).unwrap();
        assert!(!wav.exists());
        assert!(matches!(lib.recording(r[0].id), Err(LibraryError::NotFound(_))));
        assert!(matches!(lib.delete_recording(999), Err(LibraryError::NotFound(999))));
    }

    #[test]
    fn a_library_that_cannot_be_opened_is_a_clear_error() {
        let dir = temp_dir("bad");
        let blocker = dir.join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = Library::open(&blocker.join("library.db")).err().expect("cannot open under a file");
        assert!(err.to_string().contains("library"), "{err}");
    }
}

#[cfg(test)]
mod local_tests {
    use super::*;
    use crate::audio::LocalRecording;

    #[test]
    fn a_local_recording_leaves_its_marks_and_the_library_files_them() {
        let dir = std::env::temp_dir().join(format!("hark-library-local-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("call.wav");
        let mut rec = LocalRecording::create(&wav, 8000).unwrap();
        let frame = [1000i16; 160];
        for _ in 0..100 {
            rec.write(&frame, &frame).unwrap(); // 2 s
        }
        rec.set_paused(true);
        for _ in 0..50 {
            rec.write(&frame, &frame).unwrap(); // paused: left out
        }
        rec.set_paused(false);
        for _ in 0..50 {
            rec.write(&frame, &frame).unwrap(); // 1 s more
        }
        rec.finish().unwrap();
        assert!(marks_path(&wav).exists());
        let mut lib = Library::open(&dir.join("library.db")).unwrap();
        let call = lib.add_call(true, "102", 0, Some(0), 4_000, "hangup", None).unwrap();
        let id = lib.import_local(&wav, Some(call), "102", 0).unwrap();
        let r = lib.recording(id).unwrap();
        assert_eq!(r.duration_ms, 3_000);
        assert_eq!(r.marks, vec![Mark { offset_ms: 2_000, paused: true }, Mark { offset_ms: 2_000, paused: false }]);
        assert_eq!(r.call_id, Some(call));
        assert!(!marks_path(&wav).exists(), "the library holds the marks now");
        let spec = hound::WavReader::open(&wav).unwrap();
        assert_eq!((spec.spec().channels, spec.duration()), (2, 24_000));
    }
}
