//! The app's softphone: a `hark_phone::driver` running on the app's runtime, and a
//! snapshot of its state (registration, calls, history) that the UI renders. Events from
//! the engine update the snapshot; every change is pushed to the UI whole.

use crate::settings::Settings;
use hark_phone::audio::{AudioConfig, SinkConfig, SourceConfig};
use hark_phone::driver::{self, DriverCommand, DriverConfig};
use hark_phone::{Account, AudioCodec, CallHandle, ControlMode, EndReason, MediaRecording, Operation, PhoneConfig, PhoneEvent, RegistrationFailure};
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct Registration {
    /// off | registering | registered | failed
    pub state: String,
    pub message: String,
    /// EXT@DOMAIN
    pub account: String,
    pub server: String,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CallView {
    pub id: u64,
    /// outgoing | incoming
    pub direction: String,
    pub peer: String,
    /// calling | ringing | incoming | up
    pub state: String,
    /// Unix ms.
    pub started_ms: u64,
    pub answered_ms: Option<u64>,
    /// The PBX's recording of this call: off | recording | paused.
    pub recording: String,
    /// A pause or resume sent and not yet answered.
    pub pending: Option<String>,
    /// The PBX's video recording of this call (X-Recording-State, state INFO): off |
    /// recording | paused; the UI offers video pause/resume unless off.
    pub video: String,
    /// A video pause or resume sent and not yet answered.
    pub video_pending: Option<String>,
    /// The last pause/resume failure, shown until the next attempt.
    pub control_error: Option<String>,
    pub hold_local: bool,
    pub hold_remote: bool,
    pub muted: bool,
    pub session_id: Option<String>,
    pub codec: Option<String>,
    pub media_error: Option<String>,
    /// A consultation call: the call (on hold) it may take over by attended transfer.
    pub consult_of: Option<u64>,
}

#[derive(Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub direction: String,
    pub peer: String,
    pub started_ms: u64,
    pub duration_s: u64,
    pub answered: bool,
    pub reason: String,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub registration: Registration,
    pub calls: Vec<CallView>,
    pub history: Vec<HistoryEntry>,
    /// The last call that ended, and why (shown briefly by the UI).
    pub last_ended: Option<HistoryEntry>,
}

pub type Emit = Arc<dyn Fn(&Snapshot) + Send + Sync>;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A user part (or number) of a SIP address, for display: `sip:101@d` → `101`.
pub fn short_peer(uri: &str) -> String {
    let s = uri.trim();
    let s = s.rsplit_once('<').map(|(_, r)| r.trim_end_matches('>')).unwrap_or(s);
    let s = s.trim_start_matches("sip:").trim_start_matches("sips:");
    let s = s.split(['@', ';', '>']).next().unwrap_or(s);
    s.to_owned()
}

pub struct Shared {
    pub snapshot: Mutex<Snapshot>,
    /// hark-phone's library of this machine's calls and local recordings (SQLite).
    pub library: Mutex<Option<hark_phone::library::Library>>,
    /// The last call filed in the library: id, peer, start (for its local recording).
    pub last_call: Mutex<Option<(i64, String, i64)>>,
    pub local_dir: PathBuf,
    pub emit: Emit,
}

fn history_of(lib: &hark_phone::library::Library) -> Vec<HistoryEntry> {
    lib.history(200)
        .unwrap_or_default()
        .into_iter()
        .map(|c| HistoryEntry {
            direction: c.direction,
            peer: short_peer(&c.remote),
            started_ms: c.started_at.max(0) as u64,
            duration_s: c.answered_at.map(|a| (c.ended_at - a).max(0) as u64 / 1000).unwrap_or(0),
            answered: c.answered_at.is_some(),
            reason: c.end_reason,
        })
        .collect()
}

impl Shared {
    pub fn new(data: &std::path::Path, emit: Emit) -> Arc<Shared> {
        let library = match hark_phone::library::Library::open(&data.join("phone.db")) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(error = %e, "no call history or local recordings this time");
                None
            }
        };
        let history = library.as_ref().map(history_of).unwrap_or_default();
        Arc::new(Shared {
            snapshot: Mutex::new(Snapshot { history, ..Default::default() }),
            library: Mutex::new(library),
            last_call: Mutex::new(None),
            local_dir: data.join("local"),
            emit,
        })
    }

    pub fn get(&self) -> Snapshot {
        self.snapshot.lock().unwrap().clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        let snap = {
            let mut s = self.snapshot.lock().unwrap();
            f(&mut s);
            s.clone()
        };
        (self.emit)(&snap);
    }
}

/// The running phone.
pub struct Runner {
    commands: mpsc::UnboundedSender<DriverCommand>,
    task: tokio::task::JoinHandle<()>,
    pump: tokio::task::JoinHandle<()>,
}

/// Who the phone is, where it registers.
#[derive(Clone, Debug)]
pub struct Target {
    pub server: SocketAddr,
    pub user: String,
    pub password: String,
    pub domain: String,
    pub listen: SocketAddr,
}

fn codec(name: &str) -> Option<AudioCodec> {
    Some(match name {
        "pcmu" => AudioCodec::Pcmu,
        "pcma" => AudioCodec::Pcma,
        "g722" => AudioCodec::G722,
        "opus" => AudioCodec::Opus,
        _ => return None,
    })
}

pub fn control_mode(name: &str) -> ControlMode {
    match name {
        "out-of-dialog" => ControlMode::OutOfDialog,
        "dtmf" => ControlMode::Dtmf,
        _ => ControlMode::InDialog,
    }
}

/// The microphone and speaker from Settings: "" is the system's default device, "none"
/// the silent null device (also when HARK_AUDIO=null, as in tests, or when the system has
/// no such device).
pub fn audio_devices(settings: &Settings) -> (SourceConfig, SinkConfig) {
    if std::env::var("HARK_AUDIO").as_deref() == Ok("null") {
        return (SourceConfig::Null, SinkConfig::Null);
    }
    let (inputs, outputs) = hark_phone::audio::device::list_devices().unwrap_or_default();
    let pick = |wanted: &str, have: &[String]| -> Option<Option<String>> {
        match wanted {
            "none" => None,
            "" => (!have.is_empty()).then_some(None),
            name => have.iter().any(|h| h == name).then(|| Some(name.to_owned())),
        }
    };
    let source = pick(&settings.input_device, &inputs).map(SourceConfig::Device).unwrap_or(SourceConfig::Null);
    let sink = pick(&settings.output_device, &outputs).map(SinkConfig::Device).unwrap_or(SinkConfig::Null);
    (source, sink)
}

/// How long registration may go unanswered before the UI says so.
const NO_ANSWER_SECS: u64 = 5;

pub async fn start(target: Target, settings: &Settings, shared: Arc<Shared>) -> Result<Runner, String> {
    let mut phone = PhoneConfig::new(Account {
        server: target.server,
        user: target.user.clone(),
        password: target.password.clone(),
        domain: target.domain.clone(),
        transport: hark_sip::transport::Transport::Udp,
    });
    phone.control = control_mode(&settings.control);
    phone.codecs = settings.codecs.iter().filter_map(|c| codec(c)).collect();
    phone.user_agent = "Hark desktop".into();
    let local_recording = settings.local_recording.then(|| shared.local_dir.join(".current-call.wav"));
    if local_recording.is_some() {
        std::fs::create_dir_all(&shared.local_dir).map_err(|e| format!("cannot create {}: {e}", shared.local_dir.display()))?;
    }
    let (source, sink) = audio_devices(settings);
    let cfg = DriverConfig {
        phone,
        listen: target.listen,
        audio: AudioConfig { source, sink, local_recording },
        rtp_ports: None,
    };
    let handle = driver::start(cfg).await.map_err(|e| format!("cannot open the phone's SIP socket on {}: {e}", target.listen))?;
    let account = format!("{}@{}", target.user, target.domain);
    shared.update(|s| {
        s.registration = Registration {
            state: "registering".into(),
            message: format!("registering to {}", target.server),
            account: account.clone(),
            server: target.server.to_string(),
        };
        s.calls.clear();
    });
    let driver::PhoneHandle { commands, events, local_sip, task } = handle;
    // A server that does not answer is said so after a few seconds, not after the
    // transaction's 32 s timeout; the phone keeps trying and the badge turns green then.
    let watch = shared.clone();
    let server = target.server;
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(NO_ANSWER_SECS)).await;
        let account_now = watch.get().registration.account;
        if account_now == account {
            watch.update(|s| {
                if s.registration.state == "registering" {
                    s.registration.state = "failed".into();
                    s.registration.message = format!("no answer from server {server} within {NO_ANSWER_SECS} s (is it running and reachable?); still trying");
                }
            });
        }
    });
    let pump = tokio::spawn(pump(events, shared, target.server));
    tracing::info!(%local_sip, "phone SIP socket");
    Ok(Runner { commands, task, pump })
}

async fn pump(mut events: mpsc::UnboundedReceiver<PhoneEvent>, shared: Arc<Shared>, server: SocketAddr) {
    while let Some(ev) = events.recv().await {
        apply(&shared, ev, server);
    }
    shared.update(|s| {
        s.registration.state = "off".into();
        s.registration.message = "the phone is stopped".into();
        s.calls.clear();
    });
}

/// Applies one engine event to the snapshot (and pushes it to the UI).
pub fn apply(shared: &Shared, ev: PhoneEvent, server: SocketAddr) {
    let mut ended: Option<(CallView, EndReason)> = None;
    let mut finished_local = false;
    shared.update(|s| {
        match ev {
            PhoneEvent::Registered { expires } => {
                s.registration.state = "registered".into();
                s.registration.message = format!("registered (refresh within {expires} s)");
            }
            PhoneEvent::RegistrationFailed { failure, retry_in_ms } => {
                s.registration.state = "failed".into();
                let what = match &failure {
                    RegistrationFailure::Timeout => format!("no answer from server {server} (is it running and reachable?)"),
                    f => format!("registration refused: {f}"),
                };
                s.registration.message = match retry_in_ms {
                    Some(ms) => format!("{what}; retrying in {} s", ms.div_ceil(1000)),
                    None => what,
                };
            }
            PhoneEvent::Unregistered => {
                s.registration.state = "off".into();
                s.registration.message = "unregistered".into();
            }
            PhoneEvent::IncomingCall { call, from, .. } => {
                s.last_ended = None;
                s.calls.push(new_call(call.0, "incoming", short_peer(&from), "incoming"));
            }
            PhoneEvent::Ringing { call: h, .. } => {
                if let Some(c) = find(&mut s.calls, h)
                    && c.state == "calling"
                {
                    c.state = "ringing".into();
                }
            }
            PhoneEvent::Answered { call: h } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.state = "up".into();
                    c.answered_ms = Some(now_ms());
                }
            }
            PhoneEvent::SessionId { call: h, session_id } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.session_id = Some(session_id);
                }
            }
            PhoneEvent::RecordingState { call: h, state } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.recording = state.audio.as_str().into();
                    c.video = state.video.as_str().into();
                    c.pending = None;
                    c.video_pending = None;
                }
            }
            PhoneEvent::ControlSucceeded { call: h, op, .. } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.control_error = None;
                    // The PBX's 200 is the answer: the state follows it.
                    let now = if is_pause(op) { MediaRecording::Paused } else { MediaRecording::Recording };
                    if is_video(op) {
                        c.video = now.as_str().into();
                        c.video_pending = None;
                    } else {
                        c.recording = now.as_str().into();
                        c.pending = None;
                    }
                }
            }
            PhoneEvent::ControlFailed { call: h, op, reason, .. } => {
                if let Some(c) = find(&mut s.calls, h) {
                    let what = if is_pause(op) { "pause" } else { "resume" };
                    if is_video(op) {
                        c.video_pending = None;
                        c.control_error = Some(format!("video {what} failed: {reason}"));
                    } else {
                        c.pending = None;
                        c.control_error = Some(format!("{what} failed: {reason}"));
                    }
                }
            }
            PhoneEvent::Media { call: h, params } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.codec = Some(format!("{:?}", params.codec));
                }
            }
            PhoneEvent::Hold { call: h, local, remote } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.hold_local = local;
                    c.hold_remote = remote;
                }
            }
            PhoneEvent::MediaError { call: h, reason } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.media_error = Some(reason);
                }
            }
            // A lost microphone or speaker shows until it is back; the call goes on.
            PhoneEvent::AudioDevice { call: h, ok, detail } => {
                if let Some(c) = find(&mut s.calls, h) {
                    c.media_error = (!ok).then_some(detail);
                }
            }
            PhoneEvent::TransferResult { call: h, ok, reason } => {
                if let Some(c) = find(&mut s.calls, h)
                    && !ok
                {
                    c.control_error = Some(format!("transfer failed: {reason}"));
                }
            }
            PhoneEvent::Ended { call: h, reason } => {
                if let Some(pos) = s.calls.iter().position(|c| c.id == h.0) {
                    let c = s.calls.remove(pos);
                    let now = now_ms();
                    let e = HistoryEntry {
                        direction: c.direction.clone(),
                        peer: c.peer.clone(),
                        started_ms: c.started_ms,
                        duration_s: c.answered_ms.map(|a| now.saturating_sub(a) / 1000).unwrap_or(0),
                        answered: c.answered_ms.is_some(),
                        reason: end_text(&c.peer, &reason),
                    };
                    s.history.insert(0, e.clone());
                    s.history.truncate(200);
                    s.last_ended = Some(e);
                    ended = Some((c, reason));
                }
            }
            PhoneEvent::MediaStopped { .. } => finished_local = true,
            PhoneEvent::SendRtpDtmf { .. } | PhoneEvent::DtmfReceived { .. } => {}
        }
    });
    if let Some((c, reason)) = ended {
        let mut lib = shared.library.lock().unwrap();
        if let Some(lib) = lib.as_mut() {
            let now = now_ms() as i64;
            let text = end_text(&c.peer, &reason);
            match lib.add_call(c.direction == "outgoing", &c.peer, c.started_ms as i64, c.answered_ms.map(|a| a as i64), now, &text, c.session_id.as_deref()) {
                Ok(id) => *shared.last_call.lock().unwrap() = Some((id, c.peer.clone(), c.started_ms as i64)),
                Err(e) => tracing::error!(error = %e, "the call is missing from the history"),
            }
        }
    }
    if finished_local {
        // The local recording of the call that just stopped: its own name, into the library.
        let current = shared.local_dir.join(".current-call.wav");
        if current.exists() {
            let (call_id, peer, started) = shared.last_call.lock().unwrap().clone().unwrap_or((0, String::new(), now_ms() as i64));
            let safe: String = peer.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '+').collect();
            let name = shared.local_dir.join(format!("{}-{}.wav", now_ms(), if safe.is_empty() { "call".into() } else { safe }));
            let moved = std::fs::rename(&current, &name).is_ok()
                && std::fs::rename(hark_phone::library::marks_path(&current), hark_phone::library::marks_path(&name)).is_ok();
            if moved
                && let Some(lib) = shared.library.lock().unwrap().as_mut()
                && let Err(e) = lib.import_local(&name, (call_id > 0).then_some(call_id), &peer, started)
            {
                tracing::error!(error = %e, "the local recording is not in the library");
            }
        }
    }
}

fn is_pause(op: Operation) -> bool {
    matches!(op, Operation::PauseAudio | Operation::PauseVideo)
}

fn is_video(op: Operation) -> bool {
    matches!(op, Operation::PauseVideo | Operation::ResumeVideo)
}

fn find(calls: &mut [CallView], h: CallHandle) -> Option<&mut CallView> {
    calls.iter_mut().find(|c| c.id == h.0)
}

fn end_text(peer: &str, reason: &EndReason) -> String {
    match reason {
        EndReason::Rejected { code: 401 | 407, .. } => format!("call to {peer} refused: wrong user or password"),
        EndReason::Rejected { code: 404, .. } => format!("{peer} does not exist"),
        EndReason::Rejected { code: 480, .. } => format!("{peer} is not reachable"),
        EndReason::Rejected { code: 486 | 600, .. } => format!("{peer} is busy"),
        EndReason::Timeout => "no answer from the network".into(),
        r => r.to_string(),
    }
}

pub(crate) fn new_call(id: u64, direction: &str, peer: String, state: &str) -> CallView {
    CallView {
        id,
        direction: direction.into(),
        peer,
        state: state.into(),
        started_ms: now_ms(),
        answered_ms: None,
        recording: "off".into(),
        pending: None,
        video: "off".into(),
        video_pending: None,
        control_error: None,
        hold_local: false,
        hold_remote: false,
        muted: false,
        session_id: None,
        codec: None,
        media_error: None,
        consult_of: None,
    }
}

impl Runner {
    fn send(&self, cmd: DriverCommand) -> Result<(), String> {
        self.commands.send(cmd).map_err(|_| "the phone is stopped".to_string())
    }

    pub async fn dial(&self, target: &str, shared: &Shared) -> Result<u64, String> {
        let target = target.trim();
        if target.is_empty() {
            return Err("enter a number or extension".into());
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.send(DriverCommand::Dial { target: target.to_owned(), reply })?;
        let h = rx.await.map_err(|_| "the phone stopped".to_string())?.map_err(|e| format!("cannot call {target}: {e}"))?;
        shared.update(|s| {
            s.last_ended = None;
            s.calls.push(new_call(h.0, "outgoing", short_peer(target), "calling"));
        });
        Ok(h.0)
    }

    /// Attended transfer, first step: the call goes on hold and `target` is called to
    /// consult; returns the consultation call.
    pub async fn consult(&self, call: u64, target: &str, shared: &Shared) -> Result<u64, String> {
        if target.trim().is_empty() {
            return Err("enter the extension to transfer to".into());
        }
        self.hold(call, true)?;
        let consult = self.dial(target, shared).await?;
        shared.update(|s| {
            if let Some(c) = s.calls.iter_mut().find(|c| c.id == consult) {
                c.consult_of = Some(call);
            }
        });
        Ok(consult)
    }

    /// Attended transfer, second step: the held call's party is joined with the one
    /// consulted (REFER with Replaces); both calls then end here.
    pub fn complete_transfer(&self, consult: u64, shared: &Shared) -> Result<(), String> {
        let held = shared.get().calls.iter().find(|c| c.id == consult).and_then(|c| c.consult_of);
        let Some(held) = held else { return Err("this call is not a consultation for a transfer".into()) };
        self.send(DriverCommand::AttendedTransfer { call: CallHandle(held), target: CallHandle(consult) })
    }

    pub fn answer(&self, call: u64) -> Result<(), String> {
        self.send(DriverCommand::Answer { call: CallHandle(call) })
    }
    pub fn reject(&self, call: u64) -> Result<(), String> {
        self.send(DriverCommand::Reject { call: CallHandle(call), code: 486 })
    }
    pub fn hangup(&self, call: u64) -> Result<(), String> {
        self.send(DriverCommand::Hangup { call: CallHandle(call) })
    }
    pub fn mute(&self, call: u64, on: bool) -> Result<(), String> {
        self.send(DriverCommand::Mute { call: CallHandle(call), on })
    }
    pub fn hold(&self, call: u64, on: bool) -> Result<(), String> {
        let call = CallHandle(call);
        self.send(if on { DriverCommand::Hold { call } } else { DriverCommand::Resume { call } })
    }
    pub fn dtmf(&self, call: u64, digits: &str) -> Result<(), String> {
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')) {
            return Err(format!("not DTMF digits: {digits}"));
        }
        self.send(DriverCommand::SendDtmf { call: CallHandle(call), digits: digits.to_owned() })
    }
    pub fn transfer(&self, call: u64, target: &str) -> Result<(), String> {
        if target.trim().is_empty() {
            return Err("enter the extension to transfer to".into());
        }
        self.send(DriverCommand::BlindTransfer { call: CallHandle(call), target: target.trim().to_owned() })
    }

    /// Pause (true) or resume the audio (or video) recording; the state follows the PBX's
    /// answer.
    pub fn recording(&self, call: u64, pause: bool, video: bool, shared: &Shared) -> Result<(), String> {
        let h = CallHandle(call);
        let mut found = false;
        shared.update(|s| {
            if let Some(c) = s.calls.iter_mut().find(|c| c.id == call) {
                found = true;
                let pending = Some(if pause { "pause" } else { "resume" }.into());
                if video {
                    c.video_pending = pending;
                } else {
                    c.pending = pending;
                }
                c.control_error = None;
            }
        });
        if !found {
            return Err("that call has ended".into());
        }
        let op = match (video, pause) {
            (false, true) => Operation::PauseAudio,
            (false, false) => Operation::ResumeAudio,
            (true, true) => Operation::PauseVideo,
            (true, false) => Operation::ResumeVideo,
        };
        self.send(DriverCommand::RecordingControl { call: h, op })
    }

    /// Unregisters, ends calls, finalizes local recordings.
    pub async fn shutdown(self) {
        let _ = self.commands.send(DriverCommand::Unregister);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let _ = self.commands.send(DriverCommand::Shutdown);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.pump).await;
    }
}

/// The active call that the recording shortcut acts on, and whether it pauses.
pub fn shortcut_target(s: &Snapshot) -> Option<(u64, bool)> {
    s.calls.iter().find(|c| c.state == "up" && c.recording != "off").map(|c| (c.id, c.recording == "recording"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_shown_by_their_user_part() {
        assert_eq!(short_peer("\"Bob\" <sip:101@hark.local>;tag=x"), "101");
        assert_eq!(short_peer("sip:+4912345@carrier"), "+4912345");
        assert_eq!(short_peer("102"), "102");
    }

    #[test]
    fn events_drive_the_snapshot() {
        let seen = Arc::new(Mutex::new(0));
        let counter = seen.clone();
        let dir = std::env::temp_dir().join(format!("hark-desktop-phone-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let shared = Shared::new(&dir, Arc::new(move |_| *counter.lock().unwrap() += 1));
        let server: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        apply(&shared, PhoneEvent::RegistrationFailed { failure: RegistrationFailure::BadCredentials { code: 403, reason: "Forbidden".into() }, retry_in_ms: None }, server);
        assert!(shared.get().registration.message.contains("wrong user or password"));
        apply(&shared, PhoneEvent::IncomingCall { call: CallHandle(7), from: "<sip:101@d>".into(), to: "x".into(), replaces: None }, server);
        apply(&shared, PhoneEvent::Answered { call: CallHandle(7) }, server);
        assert_eq!(shortcut_target(&shared.get()), None);
        apply(&shared, PhoneEvent::ControlFailed { call: CallHandle(7), op: hark_phone::Operation::PauseAudio, via: hark_phone::ControlVia::MessageInDialog, reason: "403 Forbidden".into() }, server);
        assert_eq!(shared.get().calls[0].control_error.as_deref(), Some("pause failed: 403 Forbidden"));
        // Video: its state comes with the PBX's recording state; its answers move only it.
        let state = hark_phone::RecordingState { audio: MediaRecording::Recording, video: MediaRecording::Recording };
        apply(&shared, PhoneEvent::RecordingState { call: CallHandle(7), state }, server);
        assert_eq!((shared.get().calls[0].recording.as_str(), shared.get().calls[0].video.as_str()), ("recording", "recording"));
        let via = hark_phone::ControlVia::MessageInDialog;
        apply(&shared, PhoneEvent::ControlSucceeded { call: CallHandle(7), op: Operation::PauseVideo, via }, server);
        let c = &shared.get().calls[0];
        assert_eq!((c.recording.as_str(), c.video.as_str(), c.control_error.as_deref()), ("recording", "paused", None));
        apply(&shared, PhoneEvent::ControlFailed { call: CallHandle(7), op: Operation::ResumeVideo, via, reason: "488 Not Acceptable Here".into() }, server);
        let c = &shared.get().calls[0];
        assert_eq!((c.video.as_str(), c.control_error.as_deref()), ("paused", Some("video resume failed: 488 Not Acceptable Here")));
        apply(&shared, PhoneEvent::Ended { call: CallHandle(7), reason: EndReason::RemoteHangup }, server);
        let s = shared.get();
        assert!(s.calls.is_empty());
        assert_eq!(s.history[0].peer, "101");
        assert!(*seen.lock().unwrap() >= 5);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
