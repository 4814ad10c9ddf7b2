//! The recordings library: the PBX's recordings (embedded mode) and this machine's own
//! call recordings, in one list the UI searches. Ids say where an item lives:
//! `pbx-<id>` or `local-<file name>`.

use crate::pbx;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Marker {
    pub offset_ms: u64,
    /// pause | resume | stop | start
    pub event: String,
    pub source: String,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Item {
    pub id: String,
    /// pbx | local
    pub source: String,
    pub parties: Vec<String>,
    /// Unix ms.
    pub started_ms: i64,
    pub duration_ms: Option<u64>,
    pub status: String,
    pub markers: Vec<Marker>,
    pub has_cdr: bool,
    pub file: String,
    pub error: Option<String>,
}

pub type Local = std::sync::Mutex<Option<hark_phone::library::Library>>;

fn local_items(local: &Local) -> Result<Vec<Item>, String> {
    let guard = local.lock().unwrap();
    let Some(lib) = guard.as_ref() else { return Ok(Vec::new()) };
    Ok(lib
        .recordings(None)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| {
            let exists = Path::new(&r.path).is_file();
            Item {
                id: format!("local-{}", r.id),
                source: "local".into(),
                parties: vec!["me".into(), crate::phone::short_peer(&r.remote)],
                started_ms: r.started_at,
                duration_ms: Some(r.duration_ms),
                status: if exists { "completed".into() } else { "missing".into() },
                markers: r
                    .marks
                    .iter()
                    .map(|m| Marker { offset_ms: m.offset_ms, event: if m.paused { "pause" } else { "resume" }.into(), source: "local".into() })
                    .collect(),
                has_cdr: false,
                file: r.path.clone(),
                error: (!exists).then(|| "the file is missing".to_string()),
            }
        })
        .collect())
}

/// Everything, newest first. The PBX part is left out when the PBX is not set up.
pub fn list(data: &Path, local: &Local, with_pbx: bool) -> Result<Vec<Item>, String> {
    let mut items = local_items(local)?;
    if with_pbx && pbx::open(data).is_ok() {
        for r in pbx::recordings(data)? {
            let file = pbx::recording_file(data, &r);
            items.push(Item {
                id: format!("pbx-{}", r.id.0),
                source: "pbx".into(),
                parties: r.parties.iter().map(|p| p.party.clone()).collect(),
                started_ms: r.started_at,
                duration_ms: r.duration_ms,
                status: r.status.as_str().to_string(),
                markers: r
                    .events
                    .iter()
                    .map(|e| Marker { offset_ms: e.offset_ms, event: e.event.as_str().to_string(), source: e.source.as_str().to_string() })
                    .collect(),
                has_cdr: true,
                file: file.display().to_string(),
                error: r.error.clone(),
            });
        }
    }
    items.sort_by_key(|i| std::cmp::Reverse(i.started_ms));
    Ok(items)
}

pub enum Where {
    Pbx(i64),
    Local(i64),
}

pub fn parse_id(id: &str) -> Result<Where, String> {
    let num = |n: &str| n.parse::<i64>().map_err(|_| format!("bad recording id {id}"));
    if let Some(n) = id.strip_prefix("pbx-") {
        return num(n).map(Where::Pbx);
    }
    if let Some(n) = id.strip_prefix("local-") {
        return num(n).map(Where::Local);
    }
    Err(format!("bad recording id {id}"))
}

fn local_entry(local: &Local, n: i64) -> Result<hark_phone::library::LocalRecordingEntry, String> {
    let guard = local.lock().unwrap();
    guard.as_ref().ok_or("the local library is not available")?.recording(n).map_err(|e| e.to_string())
}

pub fn file_of(data: &Path, local: &Local, id: &str) -> Result<PathBuf, String> {
    Ok(match parse_id(id)? {
        Where::Pbx(n) => pbx::recording_file(data, &pbx::recording(data, n)?),
        Where::Local(n) => PathBuf::from(local_entry(local, n)?.path),
    })
}

pub fn delete(data: &Path, local: &Local, id: &str) -> Result<(), String> {
    match parse_id(id)? {
        Where::Pbx(n) => pbx::delete_recording(data, n),
        Where::Local(n) => {
            let mut guard = local.lock().unwrap();
            guard.as_mut().ok_or("the local library is not available")?.delete_recording(n).map_err(|e| e.to_string())
        }
    }
}

/// Copies the file to the user's Downloads folder (or DATA/exports); returns the path.
pub fn export(data: &Path, local: &Local, id: &str) -> Result<String, String> {
    let src = file_of(data, local, id)?;
    if !src.exists() {
        return Err("the recording's file is missing".into());
    }
    let downloads = std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Downloads")).filter(|d| d.is_dir());
    let dir = downloads.unwrap_or_else(|| data.join("exports"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ext = src.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "wav".into());
    let dest = dir.join(format!("hark-{id}.{ext}"));
    std::fs::copy(&src, &dest).map_err(|e| format!("cannot export to {}: {e}", dest.display()))?;
    Ok(dest.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_where_a_recording_lives() {
        assert!(parse_id("local-../../etc/passwd").is_err());
        assert!(parse_id("pbx-x").is_err());
        assert!(matches!(parse_id("pbx-12"), Ok(Where::Pbx(12))));
        assert!(matches!(parse_id("local-3"), Ok(Where::Local(3))));
    }

    #[test]
    fn local_recordings_come_from_the_phone_library() {
        let d = std::env::temp_dir().join(format!("hark-desktop-lib-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let mut lib = hark_phone::library::Library::open(&d.join("phone.db")).unwrap();
        let wav = d.join("1-101.wav");
        std::fs::write(&wav, b"garbage").unwrap();
        let marks = [hark_phone::library::Mark { offset_ms: 500, paused: true }];
        lib.add_recording(None, &wav, 1, 1000, "sip:101@x", &marks).unwrap();
        let local: Local = std::sync::Mutex::new(Some(lib));
        let items = list(&d, &local, true).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].parties[1], "101");
        assert_eq!(items[0].markers[0].event, "pause");
        assert_eq!(file_of(&d, &local, &items[0].id).unwrap(), wav);
        delete(&d, &local, &items[0].id).unwrap();
        assert!(list(&d, &local, true).unwrap().is_empty());
        assert!(!wav.exists());
        let _ = std::fs::remove_dir_all(&d);
    }
}
