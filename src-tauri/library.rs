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

pub fn local_dir(data: &Path) -> PathBuf {
    data.join("local")
}

fn local_items(data: &Path) -> Vec<Item> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(local_dir(data)) else { return out };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".wav") {
            continue;
        }
        let started_ms = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let (duration_ms, status, error) = match hound::WavReader::open(e.path()) {
            Ok(r) => (Some(r.duration() as u64 * 1000 / r.spec().sample_rate.max(1) as u64), "completed".to_string(), None),
            Err(err) => (None, "damaged".to_string(), Some(format!("not a playable WAV file ({err})"))),
        };
        let peer = name.trim_end_matches(".wav").split_once('-').map(|(_, p)| p.to_owned()).unwrap_or_default();
        out.push(Item {
            id: format!("local-{name}"),
            source: "local".into(),
            parties: vec!["me".into(), peer],
            started_ms,
            duration_ms,
            status,
            markers: Vec::new(),
            has_cdr: false,
            file: e.path().display().to_string(),
            error,
        });
    }
    out
}

/// Everything, newest first. The PBX part is left out when the PBX is not set up.
pub fn list(data: &Path, with_pbx: bool) -> Result<Vec<Item>, String> {
    let mut items = local_items(data);
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
    items.sort_by(|a, b| b.started_ms.cmp(&a.started_ms));
    Ok(items)
}

pub enum Where {
    Pbx(i64),
    Local(String),
}

pub fn parse_id(id: &str) -> Result<Where, String> {
    if let Some(n) = id.strip_prefix("pbx-") {
        return n.parse().map(Where::Pbx).map_err(|_| format!("bad recording id {id}"));
    }
    if let Some(name) = id.strip_prefix("local-") {
        if name.is_empty() || name.contains('/') || name.contains("..") || name.starts_with('.') {
            return Err(format!("bad recording id {id}"));
        }
        return Ok(Where::Local(name.to_owned()));
    }
    Err(format!("bad recording id {id}"))
}

pub fn file_of(data: &Path, id: &str) -> Result<PathBuf, String> {
    Ok(match parse_id(id)? {
        Where::Pbx(n) => pbx::recording_file(data, &pbx::recording(data, n)?),
        Where::Local(name) => local_dir(data).join(name),
    })
}

pub fn delete(data: &Path, id: &str) -> Result<(), String> {
    match parse_id(id)? {
        Where::Pbx(n) => pbx::delete_recording(data, n),
        Where::Local(name) => {
            std::fs::remove_file(local_dir(data).join(&name)).map_err(|e| format!("cannot delete {name}: {e}"))
        }
    }
}

/// Copies the file to the user's Downloads folder (or DATA/exports); returns the path.
pub fn export(data: &Path, id: &str) -> Result<String, String> {
    let src = file_of(data, id)?;
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
    fn ids_cannot_escape_the_library() {
        assert!(parse_id("local-../../etc/passwd").is_err());
        assert!(parse_id("local-.hidden.wav").is_err());
        assert!(parse_id("pbx-x").is_err());
        assert!(matches!(parse_id("pbx-12"), Ok(Where::Pbx(12))));
        assert!(matches!(parse_id("local-1-101.wav"), Ok(Where::Local(_))));
    }

    #[test]
    fn local_files_are_listed_and_damaged_ones_say_so() {
        let d = std::env::temp_dir().join(format!("hark-desktop-lib-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(local_dir(&d)).unwrap();
        std::fs::write(local_dir(&d).join("1-101.wav"), b"garbage").unwrap();
        let items = list(&d, true).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].status, "damaged");
        assert_eq!(items[0].parties[1], "101");
        delete(&d, &items[0].id).unwrap();
        assert!(list(&d, true).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}
