//! Between the in-memory core and SQLite: loading tenants, users and live registrations
//! at start, and writing registration changes behind the core's back, batched, so a
//! REGISTER never waits on the disk.

use crate::directory::{Directory, TenantInfo, UserAuth};
use crate::registrar::{Binding, BindingChange, Location, UserKey};
use crate::store::{self, BindingOp, Store, StoreError, UserId};
use hark_sip::transport::{Peer, Transport};
use hark_sip::CallId;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Tenants and users as the registrar sees them.
pub fn load_directory(store: &Store) -> Result<Directory, StoreError> {
    Ok(load(store)?.0)
}

fn load(store: &Store) -> Result<(Directory, HashMap<UserId, UserKey>), StoreError> {
    let mut dir = Directory::default();
    let mut ids = HashMap::new();
    let settings = store.system_settings()?;
    dir.set_system(crate::policy::SystemSwitches { record_between_external_numbers: settings.record_between_external_numbers });
    for t in store.list_tenants()? {
        dir.add_tenant(TenantInfo { id: t.id.0, name: t.name.clone(), domain: t.domain.clone() }, t.is_default);
        dir.set_tenant_switches(
            t.id.0,
            crate::policy::TenantSwitches { audio_recording: t.audio_recording, video_recording: t.video_recording },
        );
        dir.set_recording_options(t.id.0, store.tenant_recording_options(t.id)?);
        for u in store.list_users(t.id)? {
            let key = UserKey { tenant_id: t.id.0, extension: u.extension.clone() };
            ids.insert(u.id, key.clone());
            dir.set_user_switches(key.clone(), u.record_audio_calls, u.record_video_calls);
            if !u.ha1_matches_realm(&t.domain) {
                tracing::warn!(extension = %u.extension, tenant = %t.name, "password hashes are for an old domain; set a new password");
                continue;
            }
            dir.add_user(key, UserAuth { ha1_md5: u.ha1_md5, ha1_sha256: u.ha1_sha256 });
        }
        for (extension, forwarding) in store.list_forwarding(t.id)? {
            dir.set_forwarding(UserKey { tenant_id: t.id.0, extension }, forwarding);
        }
    }
    for t in store.list_all_trunks()? {
        match crate::directory::Trunk::from_store(&t) {
            Ok(trunk) => dir.add_trunk(trunk),
            // The others still work; the admin sees why this one does not.
            Err(e) => tracing::warn!(error = %e, "trunk skipped"),
        }
    }
    Ok((dir, ids))
}

/// The directory plus the registrations that were live when the PBX last stopped.
pub fn load_state(store: &mut Store, now: Instant) -> Result<(Directory, Location), StoreError> {
    let (dir, ids) = load(store)?;
    let mut location = Location::default();
    let unix = unix_now();
    for b in store.load_live_bindings(unix)? {
        let Some(key) = ids.get(&b.user_id) else { continue };
        let Some(source) = parse_source(&b.source) else { continue };
        let left = Duration::from_secs(b.expires_at.saturating_sub(unix).max(0) as u64);
        location.upsert(
            key,
            Binding {
                contact: b.contact_uri,
                expires_at: now + left,
                q: b.q.map(|q| q.to_string()),
                call_id: CallId::new(b.call_id),
                cseq: b.cseq,
                source,
                user_agent: b.user_agent,
                instance: b.instance_id,
            },
        );
    }
    Ok((dir, location))
}

fn source_string(p: &Peer) -> String {
    format!("{}:{}", p.transport.via_name().to_ascii_lowercase(), p.addr)
}

fn parse_source(s: &str) -> Option<Peer> {
    let (transport, addr) = s.split_once(':')?;
    let transport = match transport {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        _ => return None,
    };
    Some(Peer { transport, addr: addr.parse().ok()? })
}

/// Writes registration changes on its own thread, one transaction per batch.
pub struct BindingWriter {
    tx: mpsc::Sender<Vec<BindingChange>>,
    handle: JoinHandle<()>,
}

impl BindingWriter {
    pub fn start(db: PathBuf) -> Result<Self, StoreError> {
        let mut store = Store::open(&db)?;
        let (tx, rx) = mpsc::channel::<Vec<BindingChange>>();
        let handle = std::thread::Builder::new()
            .name("hark-bindings".into())
            .spawn(move || write_loop(&mut store, rx))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the registration writer: {e}")))?;
        Ok(Self { tx, handle })
    }

    pub fn send(&self, changes: Vec<BindingChange>) {
        let _ = self.tx.send(changes);
    }

    /// Writes what is queued and stops.
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.handle.join();
    }
}

const MAX_BATCH: usize = 5_000;

fn write_loop(store: &mut Store, rx: mpsc::Receiver<Vec<BindingChange>>) {
    // (user id, address of record) per user, looked up once.
    let mut ids: HashMap<UserKey, Option<(UserId, String)>> = HashMap::new();
    while let Ok(first) = rx.recv() {
        let mut changes = first;
        while changes.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => changes.extend(more),
                Err(_) => break,
            }
        }
        let (now, unix) = (Instant::now(), unix_now());
        let mut ops = Vec::with_capacity(changes.len());
        for change in changes {
            let key = match &change {
                BindingChange::Upsert(k, _) | BindingChange::Remove(k, _) => k.clone(),
            };
            let id = ids.entry(key.clone()).or_insert_with(|| {
                let user = store.user_by_extension(store::TenantId(key.tenant_id), &key.extension).ok().flatten()?;
                let tenant = store.tenant(user.tenant_id).ok().flatten()?;
                Some((user.id, format!("sip:{}@{}", user.extension, tenant.domain)))
            });
            let Some((user_id, aor)) = id.clone() else { continue };
            ops.push(match change {
                BindingChange::Upsert(_, b) => {
                    let left = b.expires_at.saturating_duration_since(now).as_secs() as i64;
                    BindingOp::Upsert(store::Binding {
                        user_id,
                        aor,
                        contact_uri: b.contact,
                        expires_at: unix + left,
                        q: b.q.and_then(|q| q.parse().ok()),
                        call_id: b.call_id.to_string(),
                        cseq: b.cseq,
                        source: source_string(&b.source),
                        user_agent: b.user_agent,
                        instance_id: b.instance,
                        updated_at: unix,
                    })
                }
                BindingChange::Remove(_, contact) => BindingOp::Delete { user_id, contact_uri: contact },
            });
        }
        if let Err(e) = store.apply_binding_ops(&ops) {
            // The in-memory bindings stay right; only a restart would lose these.
            tracing::error!(error = %e, count = ops.len(), "could not persist registrations");
        }
    }
}

/// Writes finished calls' CDRs on its own thread, batched.
pub struct CdrWriter {
    tx: mpsc::Sender<crate::b2bua::CallRecord>,
    handle: JoinHandle<()>,
}

pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn new_cdr(r: crate::b2bua::CallRecord) -> store::NewCdr {
    use crate::b2bua::call::PartyRole as R;
    use crate::b2bua::{Disposition as D, HangupBy as H};
    use store::{CdrParty, Direction, Disposition, HangupBy, PartyKind, PartyRole};
    let (started, ended) = (unix_ms(r.started_at), unix_ms(r.ended_at));
    let kind = |external: bool| if external { PartyKind::External } else { PartyKind::Internal };
    // The caller and the callee first dialled; their kinds give the direction.
    let first = |roles: &[R]| r.parties.iter().find(|p| roles.contains(&p.role));
    let caller_kind = first(&[R::Caller]).map_or(PartyKind::Internal, |p| kind(p.external));
    let callee_kind = first(&[R::Callee, R::ForwardTarget]).map_or(PartyKind::Internal, |p| kind(p.external));
    let mut parties: Vec<CdrParty> = r
        .parties
        .iter()
        .map(|p| CdrParty {
            role: match p.role {
                R::Caller => PartyRole::Caller,
                R::Callee => PartyRole::Callee,
                R::TransferTarget => PartyRole::TransferTarget,
                R::ForwardTarget => PartyRole::ForwardTarget,
            },
            party: truncate(p.party.clone(), store::MAX_CDR_TEXT_LEN),
            kind: kind(p.external),
            // Within the call, whatever the clocks did.
            joined_at: unix_ms(p.joined_at).clamp(started, ended),
            left_at: p.left_at.map_or(ended, unix_ms).clamp(unix_ms(p.joined_at).clamp(started, ended), ended),
        })
        .collect();
    if parties.is_empty() {
        parties = vec![
            CdrParty { role: PartyRole::Caller, party: r.caller.clone(), kind: caller_kind, joined_at: started, left_at: ended },
            CdrParty { role: PartyRole::Callee, party: r.callee.clone(), kind: callee_kind, joined_at: started, left_at: ended },
        ];
    }
    store::NewCdr {
        call_session_id: r.session_id,
        tenant_id: store::TenantId(r.tenant_id),
        caller: r.caller.clone(),
        caller_kind,
        callee: r.callee.clone(),
        callee_kind,
        direction: Direction::from_kinds(caller_kind, callee_kind),
        started_at: started,
        answered_at: r.answered_at.map(unix_ms),
        ended_at: ended,
        disposition: match r.disposition {
            D::Answered => Disposition::Answered,
            D::Busy => Disposition::Busy,
            D::NoAnswer => Disposition::NoAnswer,
            D::Cancelled => Disposition::Cancelled,
            D::Failed => Disposition::Failed,
        },
        hangup_by: match r.hangup_by {
            H::Caller => HangupBy::Caller,
            H::Callee => HangupBy::Callee,
            H::Pbx => HangupBy::Pbx,
        },
        hangup_cause: truncate(r.hangup_cause, store::MAX_CDR_TEXT_LEN),
        sip_call_id_a: r.a_call_id,
        sip_call_id_b: r.b_call_id,
        codec: r.codec,
        recording: r.recording.map(|t| truncate(t, store::MAX_CDR_RECORDING_LEN)),
        parties,
    }
}

/// At most `max` bytes, cut at a character boundary (a peer's reason phrase can be long).
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl CdrWriter {
    pub fn start(db: PathBuf) -> Result<Self, StoreError> {
        let mut store = Store::open(&db)?;
        let (tx, rx) = mpsc::channel::<crate::b2bua::CallRecord>();
        let handle = std::thread::Builder::new()
            .name("hark-cdr".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![new_cdr(first)];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(more) => batch.push(new_cdr(more)),
                            Err(_) => break,
                        }
                    }
                    if let Err(e) = store.insert_cdrs(&batch) {
                        // One bad row must not lose the others: write them one by one.
                        tracing::warn!(error = %e, count = batch.len(), "CDR batch refused; writing rows singly");
                        for cdr in &batch {
                            if let Err(e) = store.insert_cdr(cdr) {
                                tracing::error!(error = %e, session = %cdr.call_session_id, "could not write a CDR");
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the CDR writer: {e}")))?;
        Ok(Self { tx, handle })
    }

    pub fn send(&self, record: crate::b2bua::CallRecord) {
        let _ = self.tx.send(record);
    }

    /// Writes what is queued and stops.
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.handle.join();
    }
}


/// Writes what recorder tasks report (start, pause/resume, finish) on its own thread.
pub struct RecordingWriter {
    tx: mpsc::Sender<crate::recording::RecordingLog>,
    handle: JoinHandle<()>,
}

fn source_kind(s: hark_recorder::ControlSource) -> store::ControlSourceKind {
    use hark_recorder::ControlSource as C;
    match s {
        C::Dtmf => store::ControlSourceKind::Dtmf,
        C::Info => store::ControlSourceKind::Info,
        C::Inband => store::ControlSourceKind::Inband,
        C::Message => store::ControlSourceKind::Message,
        C::Policy => store::ControlSourceKind::Policy,
    }
}

fn write_recording_log(
    store: &mut Store,
    ids: &mut HashMap<crate::recording::RecordingKey, store::RecordingId>,
    entry: crate::recording::RecordingLog,
) -> Result<(), StoreError> {
    use crate::recording::RecordingLog as L;
    match entry {
        L::Started { id, session, tenant_id, parties, path, started_at_ms, sample_rate, channels, reason } => {
            let row = store::NewRecording {
                call_session_id: session,
                tenant_id: store::TenantId(tenant_id),
                kind: store::RecordingKind::Audio,
                format: store::RecordingFormat::Wav,
                path,
                started_at: started_at_ms,
                layout: if channels == 1 { store::RecordingLayout::Mono } else { store::RecordingLayout::Stereo },
                // A recording that failed before it had a format still gets its row.
                sample_rate: if sample_rate == 0 { 8000 } else { sample_rate },
                channels: channels.max(1),
                parties: parties
                    .into_iter()
                    .map(|(p, external)| if external { store::RecordingParty::external(p) } else { store::RecordingParty::internal(p) })
                    .collect(),
                source: store::ControlSourceKind::Policy,
                actor: "system".into(),
                reason: truncate(reason, store::MAX_RECORDING_REASON_LEN),
            };
            let rid = store.start_recording(&row)?;
            ids.insert(id, rid);
        }
        L::Party { id, party, external } => {
            let Some(&rid) = ids.get(&id) else { return Ok(()) };
            let party = if external { store::RecordingParty::external(party) } else { store::RecordingParty::internal(party) };
            store.add_recording_party(rid, &party)?;
        }
        L::Event { id, at_ms, offset_ms, kind, source, actor, reason } => {
            let Some(&rid) = ids.get(&id) else { return Ok(()) };
            if kind == "failed" {
                // The recorder stopped writing; Finished follows with the summary.
                return Ok(());
            }
            let event = if kind == "pause" { store::RecordingEventKind::Pause } else { store::RecordingEventKind::Resume };
            store.add_recording_event(
                rid,
                &store::NewRecordingEvent { at: at_ms, offset_ms, event, source: source_kind(source), actor, reason: truncate(reason, store::MAX_RECORDING_REASON_LEN) },
            )?;
        }
        L::Finished { id, at_ms, duration_ms, status, reason, error } => {
            let Some(rid) = ids.remove(&id) else { return Ok(()) };
            let (status, source) = match status {
                "failed" => (store::RecordingStatus::Failed, store::ControlSourceKind::System),
                // Stopped mid-call by the policy (rule 4/5).
                "stopped" => (store::RecordingStatus::Stopped, store::ControlSourceKind::Policy),
                _ => (store::RecordingStatus::Completed, store::ControlSourceKind::System),
            };
            store.finish_recording(
                rid,
                &store::Finish {
                    ended_at: at_ms,
                    duration_ms,
                    status,
                    stop_reason: Some(truncate(reason.clone(), store::MAX_RECORDING_TEXT_LEN)),
                    error: error.map(|e| truncate(e, store::MAX_RECORDING_REASON_LEN)),
                    source,
                    actor: "system".into(),
                    reason: truncate(reason, store::MAX_RECORDING_REASON_LEN),
                },
            )?;
        }
    }
    Ok(())
}

impl RecordingWriter {
    pub fn start(db: PathBuf) -> Result<Self, StoreError> {
        let mut store = Store::open(&db)?;
        let (tx, rx) = mpsc::channel::<crate::recording::RecordingLog>();
        let handle = std::thread::Builder::new()
            .name("hark-recordings".into())
            .spawn(move || {
                let mut ids = HashMap::new();
                while let Ok(entry) = rx.recv() {
                    if let Err(e) = write_recording_log(&mut store, &mut ids, entry) {
                        tracing::error!(error = %e, "could not store a recording's progress");
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("cannot start the recordings writer: {e}")))?;
        Ok(Self { tx, handle })
    }

    pub fn sender(&self) -> mpsc::Sender<crate::recording::RecordingLog> {
        self.tx.clone()
    }

    /// Writes what is queued and stops (every other sender must be gone).
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.handle.join();
    }
}

/// At start: recordings a crash left unfinished are repaired (header sizes from the file
/// length) and marked recovered, or failed when the file cannot be read. Their calls
/// died with the crash before a CDR was written: each gets one from what the recording
/// knows, so every call has its CDR and every recording its call.
pub fn recover_recordings(store: &mut Store, root: &std::path::Path) -> Result<usize, StoreError> {
    let unfinished = store.unfinished_recordings()?;
    let now = unix_ms(SystemTime::now());
    for r in &unfinished {
        let path = root.join(&r.path);
        let duration_ms = match hark_recorder::repair(&path) {
            Ok(outcome) => {
                tracing::warn!(path = %path.display(), duration_ms = outcome.duration_ms(), "recovered a recording left unfinished");
                store.mark_recovered(r.id, now, outcome.duration_ms())?;
                outcome.duration_ms()
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "a recording left unfinished could not be repaired");
                store.mark_failed(r.id, now, None, &truncate(e.to_string(), store::MAX_RECORDING_REASON_LEN))?;
                0
            }
        };
        if store.cdr_by_session(&r.call_session_id)?.is_none()
            && let Some(cdr) = cdr_of_a_crashed_call(r, duration_ms)
            && let Err(e) = store.insert_cdr(&cdr)
        {
            tracing::error!(session = %r.call_session_id, error = %e, "no CDR for a call the crash cut");
        }
    }
    Ok(unfinished.len())
}

/// The CDR of a call that a crash ended, from its recording: answered when the
/// recording started (recordings start at the answer), ended where the file ends.
fn cdr_of_a_crashed_call(r: &store::Recording, duration_ms: u64) -> Option<store::NewCdr> {
    use store::{Direction as CdrDirection, Disposition as CdrDisposition, HangupBy as CdrHangupBy, PartyKind};
    let (caller, callee) = (r.parties.first()?, r.parties.get(1).unwrap_or(r.parties.first()?));
    let ended_at = r.started_at.saturating_add(i64::try_from(duration_ms).unwrap_or(0));
    Some(store::NewCdr {
        call_session_id: r.call_session_id.clone(),
        tenant_id: r.tenant_id,
        caller: caller.party.clone(),
        caller_kind: caller.kind,
        callee: callee.party.clone(),
        callee_kind: callee.kind,
        direction: match (caller.kind, callee.kind) {
            (PartyKind::External, _) => CdrDirection::Inbound,
            (_, PartyKind::External) => CdrDirection::Outbound,
            _ => CdrDirection::Internal,
        },
        started_at: r.started_at,
        answered_at: Some(r.started_at),
        ended_at,
        disposition: CdrDisposition::Answered,
        hangup_by: CdrHangupBy::Pbx,
        hangup_cause: "pbx-restart".into(),
        sip_call_id_a: "unknown (the PBX stopped during the call)".into(),
        sip_call_id_b: None,
        codec: None,
        recording: Some(format!("recorded ({}); the PBX stopped during the call and the file was recovered", r.kind.as_str())),
        parties: Vec::new(),
    })
}

/// Deletes recordings older than their tenant's `retention_days` (files, then rows).
/// Returns how many went. Runs on a blocking thread, hourly.
pub fn purge_expired_recordings(db: &std::path::Path, root: &std::path::Path) -> Result<usize, StoreError> {
    let mut store = Store::open(db)?;
    let now = unix_ms(SystemTime::now());
    let mut purged = 0;
    for tenant in store.list_tenants()? {
        let Some(days) = store.tenant_recording_options(tenant.id)?.retention_days else { continue };
        let cutoff = now - i64::from(days) * 86_400_000;
        loop {
            let old = store.recordings_older_than(tenant.id, cutoff, 500)?;
            if old.is_empty() {
                break;
            }
            for r in old {
                let path = root.join(&r.path);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        // Keep the row so the file is not orphaned; try again next time.
                        tracing::error!(path = %path.display(), error = %e, "cannot delete an expired recording");
                        return Ok(purged);
                    }
                }
                store.delete_recording(r.id)?;
                purged += 1;
            }
        }
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip() {
        let p = Peer { transport: Transport::Tcp, addr: "127.0.0.1:5070".parse().unwrap() };
        assert_eq!(parse_source(&source_string(&p)), Some(p));
        assert_eq!(parse_source("sctp:1.2.3.4:5"), None);
    }
}
