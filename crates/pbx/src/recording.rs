//! The serve loop's side of recording: one tokio task per recorded call, fed by the
//! call's relay tap, driving a sans-IO `CallRecorder` (hark-recorder) and reporting to
//! the recordings writer. The SIP task never touches a file.

use crate::b2bua::{CallKey, SessionId};
use hark_media::relay::task::TapPacket;
use hark_media::dtmf::{FeatureCode, FeatureCodes, InbandDetector, Rfc4733Tracker};
use hark_media::packet::{peek_rtp, rtp_payload};
use hark_media::{PacketKind, Sdp, Side};
use hark_recorder::{CallRecorder, ControlSource, Layout, Operation, RecorderConfig, RecorderEvent, SideCodecs, WavOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use crate::persist::unix_ms;
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;

/// Tap packets buffered per call: ten seconds of two 20 ms streams.
pub const TAP_QUEUE: usize = 1024;
/// Tap packets a recorder task takes per wake-up.
const TAP_BATCH: usize = 64;

/// What the recorder tasks report, in order, for the recordings writer.
#[derive(Debug, Clone)]
pub enum RecordingLog {
    Started {
        id: RecordingKey,
        session: String,
        tenant_id: i64,
        /// (extension or number, external)
        parties: Vec<(String, bool)>,
        /// Relative to the recordings directory.
        path: String,
        started_at_ms: i64,
        sample_rate: u32,
        channels: u16,
        reason: String,
    },
    /// One more party of a running recording (joined by a transfer).
    Party { id: RecordingKey, party: String, external: bool },
    Event { id: RecordingKey, at_ms: i64, offset_ms: u64, kind: &'static str, source: ControlSource, actor: String, reason: String },
    Finished { id: RecordingKey, at_ms: i64, duration_ms: u64, status: &'static str, reason: String, error: Option<String> },
}

/// Names one recording across the log: the call session and a counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordingKey {
    pub session: String,
    pub seq: u32,
}

/// Feature codes (*48/*49) typed on a recorded call, seen in its media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureCodeSeen {
    pub call: CallKey,
    pub side: Side,
    pub code: FeatureCode,
    pub source: ControlSource,
}

/// Watches one side's RTP for feature codes: RFC 4733 events when telephone-event was
/// negotiated (then in-band tones are not also counted), else DTMF tones in G.711 audio.
struct DtmfWatch {
    te_pt: Option<u8>,
    g711: HashMap<u8, bool>, // payload type → µ-law (true) or A-law
    tracker: Rfc4733Tracker,
    inband: Option<InbandDetector>,
    codes: FeatureCodes,
    pcm: Vec<i16>,
    origin: Instant,
}

impl DtmfWatch {
    fn from_sdp(sdp: &[u8], origin: Instant) -> Self {
        let audio = Sdp::parse(sdp).ok().and_then(|s| s.audio());
        let te_pt = audio.as_ref().and_then(|a| a.telephone_event_pt(8000));
        let g711: HashMap<u8, bool> = audio
            .iter()
            .flat_map(|a| a.formats.iter())
            .filter_map(|f| match f.name.to_ascii_uppercase().as_str() {
                "PCMU" => Some((f.pt, true)),
                "PCMA" => Some((f.pt, false)),
                _ => None,
            })
            .collect();
        let inband = if te_pt.is_none() { InbandDetector::new(8000).ok() } else { None };
        Self { te_pt, g711, tracker: Rfc4733Tracker::new(), inband, codes: FeatureCodes::new(), pcm: Vec::with_capacity(480), origin }
    }

    fn push(&mut self, at: Instant, rtp: &[u8]) -> Option<(FeatureCode, ControlSource)> {
        let header = peek_rtp(rtp)?;
        let payload = rtp_payload(rtp)?;
        let at_ms = at.saturating_duration_since(self.origin).as_millis() as u64;
        if Some(header.payload_type) == self.te_pt {
            let digit = self.tracker.push(header.timestamp, payload)?;
            return self.codes.push(digit, at_ms).map(|c| (c, ControlSource::Dtmf));
        }
        let (inband, &ulaw) = (self.inband.as_mut()?, self.g711.get(&header.payload_type)?);
        self.pcm.clear();
        if ulaw {
            hark_media::codec::g711::decode_ulaw(payload, &mut self.pcm);
        } else {
            hark_media::codec::g711::decode_alaw(payload, &mut self.pcm);
        }
        let mut found = None;
        for d in inband.push(&self.pcm) {
            if let Some(code) = self.codes.push(d.digit, at_ms) {
                found = Some((code, ControlSource::Inband));
            }
        }
        found
    }
}

enum Command {
    /// A new recording of the call (the first, or one a policy change starts).
    Start(Box<Recording>),
    Party { party: String, external: bool },
    Control { op: Operation, source: ControlSource, actor: String },
    Stop { reason: String },
}

/// What one recording of a call is: its file, parties and codecs.
struct Recording {
    id: RecordingKey,
    parties: Vec<(String, bool)>,
    layout: Layout,
    path: PathBuf,
    relative: String,
    reason: String,
    codecs: (SideCodecs, SideCodecs),
    dtmf: [DtmfWatch; 2],
}

/// A call whose media the recorders see: its task's commands, and whether a recording
/// is running.
struct Session {
    commands: mpsc::UnboundedSender<Command>,
    recording: bool,
    started: u32,
}

pub struct Recorders {
    root: PathBuf,
    codes: mpsc::UnboundedSender<FeatureCodeSeen>,
    waiting: HashMap<CallKey, mpsc::Receiver<TapPacket>>,
    sessions: HashMap<CallKey, Session>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    log: std::sync::mpsc::Sender<RecordingLog>,
}

impl Recorders {
    /// `codes` receives the feature codes typed on recorded calls.
    pub fn new(root: PathBuf, log: std::sync::mpsc::Sender<RecordingLog>, codes: mpsc::UnboundedSender<FeatureCodeSeen>) -> Self {
        Self { root, codes, waiting: HashMap::new(), sessions: HashMap::new(), tasks: Vec::new(), log }
    }

    /// A tap for a call that may be recorded once answered.
    pub fn tap(&mut self, call: CallKey) -> mpsc::Sender<TapPacket> {
        let (tx, rx) = mpsc::channel(TAP_QUEUE);
        self.waiting.insert(call, rx);
        tx
    }

    /// Recordings running now.
    pub fn active(&self) -> usize {
        self.sessions.values().filter(|s| s.recording).count()
    }

    /// Starts a recording of `call`: its first, or a new one after a policy change
    /// stopped the last (same session, next number).
    #[allow(clippy::too_many_arguments)]
    pub fn start(&mut self, call: CallKey, session: &SessionId, tenant_id: i64, tenant: &str, parties: Vec<(String, bool)>, caller_sdp: &[u8], callee_sdp: &[u8], reason: String, layout: Layout) {
        let seq = self.sessions.get(&call).map_or(1, |s| s.started + 1);
        // Each side's packets are read with the formats of both descriptions: after a
        // transfer the new party sends the payload types the other side offered.
        let formats = |sdp: &[u8]| Sdp::parse(sdp).ok().and_then(|s| s.audio()).map(|a| a.formats).unwrap_or_default();
        let (fa, fb) = (formats(caller_sdp), formats(callee_sdp));
        let a = SideCodecs::from_formats(&[fa.clone(), fb.clone()].concat());
        let b = SideCodecs::from_formats(&[fb, fa].concat());
        let relative = relative_path(tenant, session.as_str(), SystemTime::now(), seq);
        let origin = Instant::now();
        let recording = Recording {
            id: RecordingKey { session: session.to_string(), seq },
            parties,
            layout,
            path: self.root.join(&relative),
            relative,
            reason,
            codecs: (a, b),
            dtmf: [DtmfWatch::from_sdp(caller_sdp, origin), DtmfWatch::from_sdp(callee_sdp, origin)],
        };
        if let Some(s) = self.sessions.get_mut(&call) {
            s.recording = true;
            s.started = seq;
            let _ = s.commands.send(Command::Start(Box::new(recording)));
            return;
        }
        let Some(tap) = self.waiting.remove(&call) else {
            tracing::error!(session = %session, "no media tap for a call to record");
            return;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.sessions.insert(call, Session { commands: tx, recording: true, started: seq });
        let job = Job { call, codes: self.codes.clone(), tenant_id, log: self.log.clone() };
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(tokio::spawn(job.run(tap, rx, recording)));
    }

    pub fn control(&self, call: CallKey, op: Operation, source: ControlSource, actor: String) {
        if let Some(s) = self.sessions.get(&call).filter(|s| s.recording) {
            let _ = s.commands.send(Command::Control { op, source, actor });
        }
    }

    /// Links one more party to the call's running recording.
    pub fn add_party(&self, call: CallKey, party: String, external: bool) {
        if let Some(s) = self.sessions.get(&call).filter(|s| s.recording) {
            let _ = s.commands.send(Command::Party { party, external });
        }
    }

    /// Stops the call's running recording (the file is finalized; the call goes on).
    pub fn stop(&mut self, call: CallKey, reason: String) {
        if let Some(s) = self.sessions.get_mut(&call).filter(|s| s.recording) {
            s.recording = false;
            let _ = s.commands.send(Command::Stop { reason });
        }
    }

    /// The call ended: its tap and task are let go (a running recording ends with the
    /// relay's media).
    pub fn forget(&mut self, call: CallKey) {
        self.waiting.remove(&call);
        self.sessions.remove(&call);
    }

    /// Stops every recording and waits (bounded) for their files to be finalized.
    pub async fn stop_all(&mut self, reason: &str) {
        let calls: Vec<CallKey> = self.sessions.keys().copied().collect();
        for c in calls {
            self.stop(c, reason.to_owned());
        }
        self.sessions.clear();
        for task in self.tasks.drain(..) {
            if tokio::time::timeout(std::time::Duration::from_secs(5), task).await.is_err() {
                tracing::error!("a recording did not finish in time; it will be repaired at the next start");
            }
        }
    }
}

/// TENANT/YYYY/MM/DD/SESSION-HHMMSS.wav, as issue 4 lays recordings out; a call's
/// later recordings (after a policy change) add their number: SESSION-HHMMSS-2.wav.
fn relative_path(tenant: &str, session: &str, at: SystemTime, seq: u32) -> String {
    let stamp = crate::store::format_rfc3339_ms(unix_ms(at)); // 2026-11-27T21:13:20.123Z
    let (date, time) = stamp.split_once('T').unwrap_or((&stamp, "000000"));
    let date = date.replace('-', "/");
    let time: String = time.chars().filter(char::is_ascii_digit).take(6).collect();
    let tenant: String = tenant.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let n = if seq > 1 { format!("-{seq}") } else { String::new() };
    format!("{tenant}/{date}/{session}-{time}{n}.wav")
}

/// The task of one call's recordings: one at a time, fed by the call's relay tap.
struct Job {
    call: CallKey,
    codes: mpsc::UnboundedSender<FeatureCodeSeen>,
    tenant_id: i64,
    log: std::sync::mpsc::Sender<RecordingLog>,
}

/// How one recording ended.
enum Ended {
    /// Stopped by the PBX (policy); the call goes on and may be recorded again.
    Stopped,
    /// The call is over (the relay is gone) or the PBX is shutting down.
    CallOver,
}

impl Job {
    async fn run(self, mut tap: mpsc::Receiver<TapPacket>, mut commands: mpsc::UnboundedReceiver<Command>, first: Recording) {
        let mut next = Some(first);
        while let Some(rec) = next.take() {
            if let Ended::CallOver = self.record(rec, &mut tap, &mut commands).await {
                return;
            }
            // Between recordings the media is not kept.
            next = loop {
                tokio::select! {
                    p = tap.recv() => if p.is_none() { return },
                    cmd = commands.recv() => match cmd {
                        Some(Command::Start(r)) => break Some(*r),
                        Some(_) => {}
                        None => return,
                    },
                }
            };
        }
    }

    async fn record(&self, mut rec: Recording, tap: &mut mpsc::Receiver<TapPacket>, commands: &mut mpsc::UnboundedReceiver<Command>) -> Ended {
        let config = RecorderConfig { layout: rec.layout, ..RecorderConfig::default() };
        let (a, b) = rec.codecs.clone();
        let created = create_dirs(&rec.path).map_err(|e| e.to_string()).and_then(|_| {
            CallRecorder::create_wav(&rec.path, &WavOptions::default(), config, a, b, Instant::now()).map_err(|e| e.to_string())
        });
        let started_at_ms = unix_ms(SystemTime::now());
        let mut recorder = match created {
            Ok(r) => r,
            Err(error) => {
                tracing::error!(path = %rec.path.display(), %error, "cannot create a recording");
                // The row still records the layout the tenant asked for.
                let _ = self.log.send(self.started(&rec, started_at_ms, 0, rec.layout.channels()));
                let _ = self.log.send(RecordingLog::Finished { id: rec.id.clone(), at_ms: started_at_ms, duration_ms: 0, status: "failed", reason: "error".into(), error: Some(error) });
                return Ended::Stopped;
            }
        };
        let _ = self.log.send(self.started(&rec, started_at_ms, recorder.rate(), recorder.channels()));
        // Commands first (rare), then media, the timer last: the timer only fires when no
        // packet waits, so a task that fell behind under load catches up on its backlog
        // instead of writing it off as silence. Its clock is then the newest packet's
        // arrival, not the wall clock.
        let mut batch: Vec<TapPacket> = Vec::with_capacity(TAP_BATCH);
        let far = std::time::Duration::from_secs(3600);
        let sleep = tokio::time::sleep(far);
        tokio::pin!(sleep);
        let (reason, ended) = loop {
            let deadline = recorder.poll_timeout();
            sleep.as_mut().reset(tokio::time::Instant::from_std(deadline.unwrap_or_else(|| Instant::now() + far)));
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::Control { op, source, actor }) => {
                        let now = Instant::now();
                        if op.is_pause() { recorder.pause(now, source, &actor); } else { recorder.resume(now, source, &actor); }
                    }
                    Some(Command::Stop { reason }) => {
                        let ended = if reason == "hangup" || reason == "shutdown" { Ended::CallOver } else { Ended::Stopped };
                        break (reason, ended);
                    }
                    // A second start while one runs: ignored (the PBX stops first).
                    Some(Command::Start(_)) => {}
                    Some(Command::Party { party, external }) => {
                        if !rec.parties.iter().any(|(p, e)| *p == party && *e == external) {
                            rec.parties.push((party.clone(), external));
                            let _ = self.log.send(RecordingLog::Party { id: rec.id.clone(), party, external });
                        }
                    }
                    None => break ("shutdown".to_owned(), Ended::CallOver),
                },
                n = tap.recv_many(&mut batch, TAP_BATCH) => {
                    // The relay is gone: the call ended.
                    if n == 0 {
                        break ("hangup".to_owned(), Ended::CallOver);
                    }
                    let mut newest = None;
                    for p in batch.drain(..) {
                        if p.kind != PacketKind::Rtp {
                            continue;
                        }
                        recorder.handle_packet(p.at, p.from_side, &p.data);
                        newest = Some(p.at);
                        let watch = &mut rec.dtmf[if p.from_side == Side::A { 0 } else { 1 }];
                        if let Some((code, source)) = watch.push(p.at, &p.data) {
                            let _ = self.codes.send(FeatureCodeSeen { call: self.call, side: p.from_side, code, source });
                        }
                    }
                    if let (Some(at), Some(due)) = (newest, recorder.poll_timeout())
                        && due <= at
                    {
                        recorder.handle_timeout(at);
                    }
                }
                () = &mut sleep, if deadline.is_some() => {
                    recorder.handle_timeout(Instant::now());
                }
            }
            self.drain(&rec, &mut recorder);
        };
        // Packets still queued belong to the recording.
        while let Ok(p) = tap.try_recv() {
            if p.kind == PacketKind::Rtp {
                recorder.handle_packet(p.at, p.from_side, &p.data);
            }
        }
        let summary = recorder.finish(Instant::now());
        self.drain(&rec, &mut recorder);
        let (status, error) = match (summary.failure, &ended) {
            (Some(e), _) => ("failed", Some(e)),
            (None, Ended::CallOver) => ("completed", None),
            (None, Ended::Stopped) => ("stopped", None),
        };
        tracing::info!(path = %rec.path.display(), duration_ms = summary.duration_ms, paused_ms = summary.paused_ms, status, %reason, "recording finished");
        let _ = self.log.send(RecordingLog::Finished { id: rec.id.clone(), at_ms: unix_ms(SystemTime::now()), duration_ms: summary.duration_ms, status, reason, error });
        ended
    }

    /// The log entry that opens this recording's row (rate 0: it failed before writing).
    fn started(&self, rec: &Recording, started_at_ms: i64, sample_rate: u32, channels: u16) -> RecordingLog {
        RecordingLog::Started {
            id: rec.id.clone(),
            session: rec.id.session.clone(),
            tenant_id: self.tenant_id,
            parties: rec.parties.clone(),
            path: rec.relative.clone(),
            started_at_ms,
            sample_rate,
            channels,
            reason: rec.reason.clone(),
        }
    }

    fn drain(&self, rec: &Recording, recorder: &mut CallRecorder) {
        while let Some(ev) = recorder.poll_event() {
            let at_ms = unix_ms(SystemTime::now());
            let id = rec.id.clone();
            let entry = match ev {
                RecorderEvent::Started { .. } => continue,
                RecorderEvent::Paused { offset_ms, source, actor, .. } => {
                    let reason = control_reason(true, source, &actor);
                    RecordingLog::Event { id, at_ms, offset_ms, kind: "pause", source, actor, reason }
                }
                RecorderEvent::Resumed { offset_ms, source, actor, .. } => {
                    let reason = control_reason(false, source, &actor);
                    RecordingLog::Event { id, at_ms, offset_ms, kind: "resume", source, actor, reason }
                }
                RecorderEvent::Failed { offset_ms, error } => RecordingLog::Event {
                    id,
                    at_ms,
                    offset_ms,
                    kind: "failed",
                    source: ControlSource::Policy,
                    actor: "system".into(),
                    reason: error,
                },
            };
            let _ = self.log.send(entry);
        }
    }
}

fn create_dirs(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_filed_by_tenant_and_date() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_810_201_026);
        assert_eq!(relative_path("office", "123", at, 1), "office/2026/11/27/123-201001.wav");
        assert_eq!(relative_path("a b/..", "1", at, 1), "a_b___/2026/11/27/1-201001.wav");
        assert_eq!(relative_path("office", "123", at, 2), "office/2026/11/27/123-201001-2.wav");
    }
}

/// The stored reason of a pause or resume: who asked, and how.
fn control_reason(pause: bool, source: ControlSource, actor: &str) -> String {
    let (what, code) = if pause { ("paused", "*48") } else { ("resumed", "*49") };
    match source {
        ControlSource::Dtmf => format!("{what} by {actor}: {code} as RFC 4733 telephone-events"),
        ControlSource::Info => format!("{what} by {actor}: {code} as SIP INFO"),
        ControlSource::Inband => format!("{what} by {actor}: {code} as in-band tones"),
        ControlSource::Message => format!("{what} by {actor}: media-control MESSAGE"),
        ControlSource::Policy => format!("{what} by the recording policy"),
    }
}
