//! `hark pbx recordings …`: call recordings (SPEC §1, §4).
//!
//! `--json` prints one JSON array (`[]` when there are none), newest recording first; each
//! row is the store's `Recording` as serde writes it (times as RFC 3339 UTC strings with
//! milliseconds, `ended_at` and `duration_ms` null while recording, `cdr_id` null until the
//! call's CDR is written, the `parties` and the `events` of the decision trace), except
//! `path`, which is absolute here: DIR/recordings/ joined with the stored relative path.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use hark_pbx::store::{Recording, RecordingEventKind, RecordingFilter, format_rfc3339_ms};

use super::{CliResult, DataArg, open_existing};

#[derive(Subcommand)]
pub enum RecordingsCommand {
    /// List recordings, newest first.
    List(RecordingsListArgs),
}

#[derive(Args)]
pub struct RecordingsListArgs {
    #[command(flatten)]
    data: DataArg,
    /// Only this tenant's recordings.
    #[arg(long)]
    tenant: Option<String>,
    /// Only the recordings this extension of --tenant took part in (a user's own).
    #[arg(long, value_name = "EXT", requires = "tenant")]
    ext: Option<String>,
    /// At most N recordings (the newest).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// One JSON array instead of a table. Each `path` is absolute: the file under
    /// DIR/recordings (the table shows it relative to that directory).
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: RecordingsCommand) -> CliResult {
    match cmd {
        RecordingsCommand::List(a) => list(a),
    }
}

fn list(a: RecordingsListArgs) -> CliResult {
    let store = open_existing(&a.data.data)?;
    let tenant = match &a.tenant {
        Some(name) => Some(store.tenant_by_name(name)?.ok_or_else(|| format!("no tenant named {name}"))?.id),
        None => None,
    };
    if let Some(ext) = &a.ext {
        hark_pbx::store::validate_extension(ext)?;
    }
    let filter = RecordingFilter { tenant, party: a.ext.clone(), limit: a.limit, ..Default::default() };
    let recordings = store.list_recordings(&filter)?;
    if a.json {
        let dir = std::path::absolute(&a.data.data)
            .map_err(|e| format!("cannot resolve {}: {e}", a.data.data.display()))?
            .join("recordings");
        println!("{}", render_json(&recordings, &dir)?);
    } else {
        print!("{}", render_table(&recordings));
    }
    Ok(())
}

/// `relative` ('/'-separated, as stored) under `dir`, with the platform's separators.
fn absolute_path(dir: &Path, relative: &str) -> PathBuf {
    relative.split('/').fold(dir.to_path_buf(), |p, part| p.join(part))
}

fn render_json(recordings: &[Recording], dir: &Path) -> Result<String, serde_json::Error> {
    let rows: Vec<Recording> = recordings
        .iter()
        .map(|r| Recording { path: absolute_path(dir, &r.path).to_string_lossy().into_owned(), ..r.clone() })
        .collect();
    serde_json::to_string(&rows)
}

fn render_table(recordings: &[Recording]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<20} {:<12} {:<5} {:<9} {:>9} {:>6}  {:<24} FILE",
        "ID", "STARTED (UTC)", "TENANT", "KIND", "STATUS", "DURATION", "PAUSES", "PARTIES"
    );
    for r in recordings {
        // Whole seconds are enough to find a recording; --json has the milliseconds.
        let started = format_rfc3339_ms(r.started_at);
        let started = format!("{}Z", &started[..started.len() - 5]);
        let duration = r.duration_ms.map_or_else(|| "-".to_string(), |ms| format!("{:.1}", ms as f64 / 1000.0));
        let pauses = r.events.iter().filter(|e| e.event == RecordingEventKind::Pause).count();
        let parties: Vec<&str> = r.parties.iter().map(|p| p.party.as_str()).collect();
        let _ = writeln!(
            out,
            "{:<6} {:<20} {:<12} {:<5} {:<9} {:>9} {:>6}  {:<24} {}",
            r.id,
            started,
            r.tenant,
            r.kind.as_str(),
            r.status.as_str(),
            duration,
            pauses,
            parties.join(","),
            r.path,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hark_pbx::store::{
        ControlSourceKind, Finish, NewRecording, NewRecordingEvent, RecordingParty, RecordingStatus, Store,
    };

    const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

    fn stored() -> Vec<Recording> {
        let mut store = Store::open_in_memory().unwrap();
        let t = store.create_tenant("office", "office.example", true).unwrap();
        let new = |session: &str, path: &str, started_at: i64| {
            let parties = vec![RecordingParty::internal("101"), RecordingParty::external("+4930123456")];
            NewRecording::policy_audio(t, session, path, parties, 8_000, started_at, "101 records audio calls and the tenant's audio recording is on")
        };
        let done = store.start_recording(&new("s1", "2023/11/14/s1-audio.wav", T0)).unwrap();
        let pause = NewRecordingEvent {
            at: T0 + 2_000,
            offset_ms: 2_000,
            event: RecordingEventKind::Pause,
            source: ControlSourceKind::Dtmf,
            actor: "101".into(),
            reason: "*48".into(),
        };
        store.add_recording_event(done, &pause).unwrap();
        store
            .finish_recording(
                done,
                &Finish {
                    ended_at: T0 + 8_400,
                    duration_ms: 4_300,
                    status: RecordingStatus::Completed,
                    stop_reason: Some("hangup".into()),
                    error: None,
                    source: ControlSourceKind::System,
                    actor: "101".into(),
                    reason: String::new(),
                },
            )
            .unwrap();
        store.start_recording(&new("s2", "2023/11/14/s2-audio.wav", T0 + 60_000)).unwrap();
        store.list_recordings(&RecordingFilter::default()).unwrap()
    }

    #[test]
    fn json_is_one_array_with_the_spec_fields_and_absolute_paths() {
        let dir = Path::new("/srv/hark/recordings");
        assert_eq!(render_json(&[], dir).unwrap(), "[]");
        let json: serde_json::Value = serde_json::from_str(&render_json(&stored(), dir).unwrap()).unwrap();
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        let (running, done) = (&rows[0], &rows[1]);
        for key in [
            "id", "call_session_id", "cdr_id", "tenant", "parties", "kind", "format", "path",
            "started_at", "duration_ms", "status", "events",
        ] {
            assert!(done.get(key).is_some(), "no {key} in {done}");
        }
        assert_eq!(done["call_session_id"], "s1");
        assert!(done["cdr_id"].is_null());
        assert_eq!(done["tenant"], "office");
        assert_eq!(done["kind"], "audio");
        assert_eq!(done["format"], "wav");
        assert_eq!(done["path"], "/srv/hark/recordings/2023/11/14/s1-audio.wav");
        assert_eq!(done["started_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(done["duration_ms"], 4_300);
        assert_eq!(done["status"], "completed");
        assert_eq!(done["parties"][0]["party"], "101");
        assert_eq!(done["parties"][1]["kind"], "external");
        let events: Vec<&str> =
            done["events"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(events, ["start", "pause", "stop"]);
        assert_eq!(done["events"][1]["offset_ms"], 2_000);
        assert_eq!(done["events"][1]["source"], "dtmf");
        assert_eq!(done["events"][1]["actor"], "101");
        assert_eq!(done["events"][1]["reason"], "*48");
        assert_eq!(running["status"], "recording");
        assert!(running["duration_ms"].is_null() && running["ended_at"].is_null());
    }

    #[test]
    fn table_has_a_header_and_one_line_per_recording() {
        assert_eq!(render_table(&[]).lines().count(), 1);
        let table = render_table(&stored());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("ID") && lines[0].ends_with("FILE"), "{table}");
        assert!(lines[1].contains("2023-11-14T22:14:20Z") && lines[1].contains("recording"), "{table}");
        assert!(lines[1].contains(" - "), "no duration while recording: {table}");
        assert!(lines[2].contains("completed") && lines[2].contains("4.3"), "{table}");
        assert!(lines[2].contains("101,+4930123456"), "{table}");
        assert!(lines[2].ends_with("2023/11/14/s1-audio.wav"), "{table}");
    }
}
