//! `hark phone call` and `hark phone answer` (SPEC §4): the softphone engine driven
//! headless, with a WAV as microphone and another for what the speaker plays.
//!
//! Progress goes to stderr as one line per event, `phone: <event> key=value…`, for
//! people and tests to wait on. Errors are one `error: …` line and a non-zero exit.

use clap::{Args, Subcommand, ValueEnum};
use hark_phone::audio::{AudioConfig, SinkConfig, SourceConfig};
use hark_phone::driver::{self, DriverCommand, DriverConfig, PhoneHandle};
use hark_phone::{
    Account, AudioCodec, CallHandle, DtmfMode, ControlMode, ControlVia, EndReason, PhoneConfig, PhoneEvent, RegistrationFailure, Operation,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

type CliResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Subcommand)]
pub enum PhoneCommand {
    /// Register (unless --no-register), call TARGET, play and record audio, optionally
    /// pause and resume the PBX's recording, hang up after --duration.
    Call(CallArgs),
    /// Register, wait for a call, answer it, play and record audio.
    Answer(AnswerArgs),
    /// List the audio devices (for --input-device / --output-device).
    Devices,
    /// Play a WAV (a recording) on the default audio output: from a position, with
    /// pause and resume.
    Play(crate::phone_play::PlayArgs),
    /// The call history kept by `--library` (newest first).
    History(LibraryArgs),
    /// The local recordings kept by `--library` (newest first), with their pause marks.
    Recordings(RecordingsArgs),
}

#[derive(Args)]
pub struct LibraryArgs {
    /// The library (SQLite) that `hark phone call/answer --library` wrote.
    #[arg(long, value_name = "DB")]
    library: PathBuf,
    /// One JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RecordingsArgs {
    #[command(flatten)]
    lib: LibraryArgs,
    /// Only recordings whose remote party or file name contains this.
    #[arg(long)]
    search: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ControlArg {
    /// MESSAGE in the call's dialog (text body).
    InDialog,
    /// MESSAGE outside the dialog (JSON with the X-Session-Id).
    OutOfDialog,
    /// The feature codes *48 / *49 as DTMF.
    Dtmf,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TransportArg {
    Udp,
    Tcp,
}

#[derive(Args)]
pub struct AccountArgs {
    /// The PBX (registrar and proxy), or the peer itself for a direct call: an address
    /// or a host name, with the port (5060 when left out).
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::phone_check::parse_server)]
    server: crate::phone_check::Server,
    /// Our extension (user part of our address).
    #[arg(long, value_name = "EXT")]
    user: String,
    /// Our SIP password (digest auth, MD5 or SHA-256).
    #[arg(long, value_name = "PW")]
    password: String,
    /// Our SIP domain; the server's IP address when omitted.
    #[arg(long, value_name = "D")]
    domain: Option<String>,
    /// Our SIP address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// Transport towards the server.
    #[arg(long, value_enum, default_value = "udp")]
    transport: TransportArg,
    /// How long to wait for the registrar before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    register_timeout: f64,
    /// Hang up when no audio came for this long while both sides send (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    rtp_timeout: f64,
    /// RTP port range (LO-HI); free ports from the system when omitted.
    #[arg(long, value_name = "LO-HI", value_parser = parse_range)]
    rtp_ports: Option<(u16, u16)>,
}

#[derive(Args)]
pub struct MediaArgs {
    /// A WAV to use as the microphone (played once, then silence).
    #[arg(long, value_name = "WAV", conflicts_with = "input_device")]
    play: Option<PathBuf>,
    /// Write what the speaker would play to this WAV (mono, the codec's rate).
    #[arg(long, value_name = "WAV", conflicts_with = "output_device")]
    record: Option<PathBuf>,
    /// Use a real microphone: `default`, or a name from `hark phone devices`.
    /// Without it (and without --play) the microphone is silent.
    #[arg(long, value_name = "NAME")]
    input_device: Option<String>,
    /// Use a real speaker: `default`, or a name from `hark phone devices`.
    #[arg(long, value_name = "NAME")]
    output_device: Option<String>,
    /// Record the call locally to this stereo WAV: our microphone left, the remote right.
    #[arg(long, value_name = "WAV")]
    record_call: Option<PathBuf>,
    /// Keep the call in this history and recordings library (SQLite; created if
    /// missing): `hark phone history` and `hark phone recordings` read it.
    #[arg(long, value_name = "DB")]
    library: Option<PathBuf>,
    /// Hang up this many seconds after the answer (default: wait for the other side).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Codecs offered and accepted, in order of preference (pcmu, pcma, g722, opus).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "pcmu,pcma,g722,opus")]
    codecs: Vec<CodecArg>,
    /// How DTMF leaves the phone: RFC 4733 when the peer takes it (auto), always
    /// RFC 4733, or SIP INFO (application/dtmf-relay).
    #[arg(long, value_enum, default_value = "auto")]
    dtmf: DtmfArg,
    /// Put the call on hold (re-INVITE, a=sendonly) this many seconds after the answer.
    #[arg(long, value_name = "SECS")]
    hold_at: Option<f64>,
    /// Take the call off hold this many seconds after the answer.
    #[arg(long, value_name = "SECS")]
    unhold_at: Option<f64>,
    /// Mute our microphone (silence is sent) this many seconds after the answer.
    #[arg(long, value_name = "SECS")]
    mute_at: Option<f64>,
    /// Unmute it this many seconds after the answer.
    #[arg(long, value_name = "SECS")]
    unmute_at: Option<f64>,
    /// Send these DTMF digits at --dtmf-at.
    #[arg(long, value_name = "DIGITS", requires = "dtmf_at")]
    send_dtmf: Option<String>,
    /// When to send --send-dtmf, in seconds after the answer.
    #[arg(long, value_name = "SECS")]
    dtmf_at: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CodecArg {
    Pcmu,
    Pcma,
    G722,
    Opus,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DtmfArg {
    Auto,
    Rfc4733,
    Info,
}

#[derive(Args)]
pub struct CallArgs {
    #[command(flatten)]
    account: AccountArgs,
    /// An extension, or a sip: URI.
    target: String,
    #[command(flatten)]
    media: MediaArgs,
    /// Pause the PBX's recording this many seconds after the answer.
    #[arg(long, value_name = "SECS")]
    pause_at: Option<f64>,
    /// Resume the PBX's recording this many seconds after the answer.
    #[arg(long, value_name = "SECS")]
    resume_at: Option<f64>,
    /// How pause/resume is asked for.
    #[arg(long, value_enum, default_value = "in-dialog")]
    control: ControlArg,
    /// Blind-transfer the other party to this extension or URI (REFER) at --transfer-at,
    /// and hang up once the transfer succeeded.
    #[arg(long, value_name = "TARGET", requires = "transfer_at")]
    transfer_to: Option<String>,
    /// When to transfer, in seconds after the answer.
    #[arg(long, value_name = "SECS")]
    transfer_at: Option<f64>,
    /// Call without registering first (e.g. straight to another phone).
    #[arg(long)]
    no_register: bool,
    /// How long to wait for the answer.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    answer_timeout: f64,
}

#[derive(Args)]
pub struct AnswerArgs {
    #[command(flatten)]
    account: AccountArgs,
    #[command(flatten)]
    media: MediaArgs,
    /// How long to wait for a call.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    wait: f64,
    /// Refuse the call with this status (e.g. 486 busy, 603 decline) instead of answering.
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u16).range(400..700))]
    reject: Option<u16>,
}

fn parse_range(s: &str) -> Result<(u16, u16), String> {
    let (lo, hi) = s.split_once('-').ok_or("expected LO-HI")?;
    let lo: u16 = lo.trim().parse().map_err(|_| "bad LO")?;
    let hi: u16 = hi.trim().parse().map_err(|_| "bad HI")?;
    if lo == 0 || lo > hi {
        return Err("expected 0 < LO <= HI".into());
    }
    Ok((lo, hi))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 1e6))
}

pub fn run(cmd: PhoneCommand) -> CliResult {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        match cmd {
            PhoneCommand::Call(a) => call(a).await,
            PhoneCommand::Answer(a) => answer(a).await,
            PhoneCommand::Devices => devices(),
            PhoneCommand::Play(a) => tokio::task::block_in_place(|| crate::phone_play::play(a)),
            PhoneCommand::History(a) => history(a),
            PhoneCommand::Recordings(a) => recordings(a),
        }
    })
}

#[cfg(feature = "audio-devices")]
fn devices() -> CliResult {
    // Probing every ALSA plugin (JACK, OSS, …) makes each print its own failure to
    // stderr; none of it is ours or useful here.
    let listed = with_stderr_hushed(hark_phone::audio::device::list_devices);
    let (inputs, outputs) = listed?;
    if inputs.is_empty() && outputs.is_empty() {
        return Err("no audio devices found (no sound card or sound server)".into());
    }
    println!("input devices:");
    for d in inputs {
        println!("  {d}");
    }
    println!("output devices:");
    for d in outputs {
        println!("  {d}");
    }
    Ok(())
}

/// Runs `f` with file descriptor 2 pointed at /dev/null, then puts it back.
#[cfg(feature = "audio-devices")]
pub(crate) fn with_stderr_hushed<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else { return f() };
    // SAFETY: dup/dup2/close on descriptors this function owns; nothing else runs on
    // this thread meanwhile, and stderr is restored before returning.
    let saved = unsafe { libc::dup(2) };
    if saved < 0 {
        return f();
    }
    unsafe { libc::dup2(null.as_raw_fd(), 2) };
    let out = f();
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    out
}

#[cfg(not(feature = "audio-devices"))]
fn devices() -> CliResult {
    Err("this build of hark has no audio device support".into())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HARK_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();
}

fn progress(line: &str) {
    eprintln!("phone: {line}");
}

fn config(account: &AccountArgs, media: &MediaArgs, register: bool, control: ControlMode) -> Result<DriverConfig, String> {
    use crate::phone_check::{check_playable, check_times, check_writable};
    if let Some(path) = &media.play {
        check_playable("--play", path)?;
    }
    for (flag, path) in [("--record", &media.record), ("--record-call", &media.record_call)] {
        if let Some(path) = path {
            check_writable(flag, path)?;
        }
    }
    check_times(
        media.duration,
        &[("--dtmf-at", media.dtmf_at)],
        &[
            (("--hold-at", media.hold_at), ("--unhold-at", media.unhold_at)),
            (("--mute-at", media.mute_at), ("--unmute-at", media.unmute_at)),
        ],
    )?;
    let domain = account.domain.clone().unwrap_or_else(|| account.server.host.clone());
    let mut phone = PhoneConfig::new(Account {
        server: account.server.addr,
        user: account.user.clone(),
        password: account.password.clone(),
        domain,
        transport: match account.transport {
            TransportArg::Udp => hark_sip::transport::Transport::Udp,
            TransportArg::Tcp => hark_sip::transport::Transport::Tcp,
        },
    });
    phone.register = register;
    phone.control = control;
    if !(account.rtp_timeout.is_finite() && account.rtp_timeout >= 0.0) {
        return Err(format!("--rtp-timeout {}: give a number of seconds (0: never)", account.rtp_timeout));
    }
    phone.rtp_timeout = (account.rtp_timeout > 0.0).then(|| secs(account.rtp_timeout));
    phone.codecs = media
        .codecs
        .iter()
        .map(|c| match c {
            CodecArg::Pcmu => AudioCodec::Pcmu,
            CodecArg::Pcma => AudioCodec::Pcma,
            CodecArg::G722 => AudioCodec::G722,
            CodecArg::Opus => AudioCodec::Opus,
        })
        .collect();
    phone.dtmf = match media.dtmf {
        DtmfArg::Auto => DtmfMode::Auto,
        DtmfArg::Rfc4733 => DtmfMode::Rfc4733,
        DtmfArg::Info => DtmfMode::Info,
    };
    Ok(DriverConfig {
        phone,
        listen: account.listen,
        audio: AudioConfig {
            source: match (&media.play, &media.input_device) {
                (Some(wav), _) => SourceConfig::File(wav.clone()),
                (None, Some(name)) => SourceConfig::Device((name != "default").then(|| name.clone())),
                (None, None) => SourceConfig::Null,
            },
            sink: match (&media.record, &media.output_device) {
                (Some(wav), _) => SinkConfig::File(wav.clone()),
                (None, Some(name)) => SinkConfig::Device((name != "default").then(|| name.clone())),
                (None, None) => SinkConfig::Null,
            },
            local_recording: media.record_call.clone(),
        },
        rtp_ports: account.rtp_ports,
    })
}

/// What the session saw that decides the exit status.
#[derive(Default)]
struct Outcome {
    failures: Vec<String>,
    /// What the history needs of the call this run followed.
    started_ms: i64,
    answered_ms: Option<i64>,
    session_id: Option<String>,
    end_reason: Option<String>,
}

/// Prints an event; returns it for the caller's state machine.
fn report(ev: &PhoneEvent, outcome: &mut Outcome) {
    match ev {
        PhoneEvent::Registered { expires } => progress(&format!("registered expires={expires}")),
        PhoneEvent::RegistrationFailed { failure, retry_in_ms } => progress(&format!(
            "registration-failed reason=\"{failure}\"{}",
            retry_in_ms.map(|ms| format!(" retry_in_ms={ms}")).unwrap_or_default()
        )),
        PhoneEvent::Unregistered => progress("unregistered"),
        PhoneEvent::IncomingCall { call, from, replaces, .. } => progress(&format!(
            "incoming {call} from={from}{}",
            replaces.map(|r| format!(" replaces={r}")).unwrap_or_default()
        )),
        PhoneEvent::Ringing { call, code } => progress(&format!("ringing {call} code={code}")),
        PhoneEvent::Answered { call } => {
            outcome.answered_ms.get_or_insert_with(hark_phone::library::now_ms);
            progress(&format!("answered {call}"))
        }
        PhoneEvent::SessionId { call, session_id } => {
            outcome.session_id.get_or_insert_with(|| session_id.clone());
            progress(&format!("session-id {call} id={session_id}"))
        }
        PhoneEvent::RecordingState { call, state } => {
            progress(&format!("recording-state {call} state={state}"))
        }
        PhoneEvent::ControlSucceeded { call, op, via } => {
            progress(&format!("control-ok {call} op={} via={}", op.as_str(), via_name(*via)))
        }
        PhoneEvent::ControlFailed { call, op, via, reason } => {
            progress(&format!("control-failed {call} op={} via={} reason=\"{reason}\"", op.as_str(), via_name(*via)));
            outcome.failures.push(format!("{} failed: {reason}", op.as_str()));
        }
        PhoneEvent::Media { call, params } => progress(&format!(
            "media {call} codec={:?} pt={} remote={} send={} receive={}",
            params.codec,
            params.payload_type,
            params.remote.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
            params.send,
            params.receive
        )),
        PhoneEvent::SendRtpDtmf { call, digits, .. } => progress(&format!("dtmf-sent {call} digits={digits} via=rfc4733")),
        PhoneEvent::DtmfReceived { call, digit } => progress(&format!("dtmf-received {call} digit={digit}")),
        PhoneEvent::Hold { call, local, remote } => progress(&format!("hold {call} local={local} remote={remote}")),
        PhoneEvent::TransferResult { call, ok, reason } => {
            progress(&format!("transfer {call} ok={ok} reason=\"{reason}\""))
        }
        PhoneEvent::Ended { call, reason } => {
            outcome.end_reason.get_or_insert_with(|| reason.to_string());
            progress(&format!("ended {call} reason=\"{reason}\""))
        }
        PhoneEvent::MediaError { call, reason } => {
            progress(&format!("media-error {call} reason=\"{reason}\""));
            outcome.failures.push(format!("media: {reason}"));
        }
        PhoneEvent::AudioDevice { call, ok, detail } => progress(&format!("audio-device {call} ok={ok} detail=\"{detail}\"")),
        PhoneEvent::MediaStopped { call, sent_packets, received_packets, peer_reports, peer_lost, rtt_ms } => {
            let rtt = rtt_ms.map_or("-".to_string(), |ms| ms.to_string());
            progress(&format!(
                "media-stopped {call} sent={sent_packets} received={received_packets} rtcp-reports={peer_reports} peer-lost={peer_lost} rtt-ms={rtt}"
            ))
        }
    }
}

fn via_name(v: ControlVia) -> &'static str {
    match v {
        ControlVia::MessageInDialog => "in-dialog",
        ControlVia::MessageOutOfDialog => "out-of-dialog",
        ControlVia::Dtmf => "dtmf",
    }
}

/// The next event, or None at `deadline`.
async fn next_event(phone: &mut PhoneHandle, deadline: Instant, outcome: &mut Outcome) -> Option<PhoneEvent> {
    let ev = tokio::time::timeout_at(deadline, phone.events.recv()).await.ok().flatten()?;
    report(&ev, outcome);
    Some(ev)
}

/// Waits for the registrar's verdict.
async fn register(phone: &mut PhoneHandle, account: &AccountArgs, outcome: &mut Outcome) -> Result<(), String> {
    let deadline = Instant::now() + secs(account.register_timeout);
    loop {
        match next_event(phone, deadline, outcome).await {
            Some(PhoneEvent::Registered { .. }) => return Ok(()),
            Some(PhoneEvent::RegistrationFailed { failure: RegistrationFailure::Timeout, .. }) => {}
            Some(PhoneEvent::RegistrationFailed { failure, .. }) => {
                return Err(format!("registration of {} at {} failed: {failure}", account.user, account.server.addr));
            }
            Some(_) => {}
            None => {
                return Err(format!(
                    "no answer from server {} within {} s (is it running and reachable?)",
                    account.server.addr, account.register_timeout
                ));
            }
        }
    }
}

/// Hangs up (if still up), waits for the end, unregisters, stops the media.
async fn finish(mut phone: PhoneHandle, call: Option<CallHandle>, up: bool, registered: bool, outcome: &mut Outcome) {
    if let (Some(call), true) = (call, up) {
        phone.send(DriverCommand::Hangup { call });
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(ev) = next_event(&mut phone, deadline, outcome).await {
            if matches!(ev, PhoneEvent::Ended { .. }) {
                break;
            }
        }
    }
    if registered {
        phone.send(DriverCommand::Unregister);
        let deadline = Instant::now() + Duration::from_secs(3);
        while let Some(ev) = next_event(&mut phone, deadline, outcome).await {
            if matches!(ev, PhoneEvent::Unregistered | PhoneEvent::RegistrationFailed { .. }) {
                break;
            }
        }
    }
    phone.send(DriverCommand::Shutdown);
    // Drain what the media tasks report as they finish their files.
    while let Some(ev) = phone.events.recv().await {
        report(&ev, outcome);
    }
    let _ = phone.task.await;
}

/// Runs an answered call until --duration, the remote's hangup, or Ctrl-C; with the
/// pause/resume schedule. A transfer the peer asks for is followed: the call goes on
/// with the transfer target. Returns whether the call is still up, and which call it is.
async fn in_call(
    phone: &mut PhoneHandle,
    mut call: CallHandle,
    media: &MediaArgs,
    pause_at: Option<f64>,
    resume_at: Option<f64>,
    transfer: Option<(&str, f64)>,
    outcome: &mut Outcome,
) -> (bool, CallHandle) {
    let duration = media.duration;
    let answered = Instant::now();
    let mut schedule: Vec<(Instant, DriverCommand)> = Vec::new();
    if let Some(h) = media.hold_at {
        schedule.push((answered + secs(h), DriverCommand::Hold { call }));
    }
    if let Some(u) = media.unhold_at {
        schedule.push((answered + secs(u), DriverCommand::Resume { call }));
    }
    if let Some(m) = media.mute_at {
        schedule.push((answered + secs(m), DriverCommand::Mute { call, on: true }));
    }
    if let Some(u) = media.unmute_at {
        schedule.push((answered + secs(u), DriverCommand::Mute { call, on: false }));
    }
    if let Some((target, at)) = transfer {
        schedule.push((answered + secs(at), DriverCommand::BlindTransfer { call, target: target.to_owned() }));
    }
    if let (Some(digits), Some(at)) = (&media.send_dtmf, media.dtmf_at) {
        schedule.push((answered + secs(at), DriverCommand::SendDtmf { call, digits: digits.clone() }));
    }
    if let Some(p) = pause_at {
        schedule.push((answered + secs(p), DriverCommand::RecordingControl { call, op: Operation::PauseAudio }));
    }
    if let Some(r) = resume_at {
        schedule.push((answered + secs(r), DriverCommand::RecordingControl { call, op: Operation::ResumeAudio }));
    }
    schedule.sort_by_key(|(at, _)| *at);
    let end = duration.map(|d| answered + secs(d)).unwrap_or_else(|| answered + Duration::from_secs(86_400 * 365));
    let mut schedule = schedule.into_iter().peekable();
    loop {
        let next_at = schedule.peek().map(|(at, _)| *at).unwrap_or(end).min(end);
        tokio::select! {
            ev = tokio::time::timeout_at(next_at, phone.events.recv()) => match ev {
                Ok(Some(ev)) => {
                    report(&ev, outcome);
                    match ev {
                        PhoneEvent::Ended { call: c, .. } if c == call => return (false, call),
                        // The transferee went on to the target: our part is done.
                        PhoneEvent::TransferResult { call: c, ok: true, .. } if c == call => return (true, call),
                        // Asked to transfer (REFER), the phone calls the target itself:
                        // that new call's answer makes it the one this run follows.
                        PhoneEvent::Answered { call: c } if c != call => {
                            progress(&format!("transferred {call} to={c}"));
                            call = c;
                        }
                        PhoneEvent::TransferResult { call: c, ok: false, reason } if c == call => {
                            outcome.failures.push(format!("transfer failed: {reason}"));
                        }
                        _ => {}
                    }
                }
                Ok(None) => return (false, call),
                Err(_) => {
                    if next_at >= end {
                        return (true, call);
                    }
                    if let Some((_, cmd)) = schedule.next() {
                        phone.send(cmd);
                    }
                }
            },
            _ = tokio::signal::ctrl_c() => return (true, call),
        }
    }
}

async fn call(a: CallArgs) -> CliResult {
    let control = match a.control {
        ControlArg::InDialog => ControlMode::InDialog,
        ControlArg::OutOfDialog => ControlMode::OutOfDialog,
        ControlArg::Dtmf => ControlMode::Dtmf,
    };
    crate::phone_check::check_times(
        a.media.duration,
        &[("--transfer-at", a.transfer_at)],
        &[(("--pause-at", a.pause_at), ("--resume-at", a.resume_at))],
    )?;
    let cfg = config(&a.account, &a.media, !a.no_register, control)?;
    let mut phone = driver::start(cfg).await.map_err(|e| format!("cannot listen on {}: {e}", a.account.listen))?;
    progress(&format!("listening sip={}", phone.local_sip));
    let mut outcome = Outcome::default();
    let registered = !a.no_register;
    if registered && let Err(e) = register(&mut phone, &a.account, &mut outcome).await {
        finish(phone, None, false, false, &mut outcome).await;
        return Err(e.into());
    }
    let handle = match phone.dial(&a.target).await {
        Ok(h) => h,
        Err(e) => {
            finish(phone, None, false, registered, &mut outcome).await;
            return Err(format!("cannot call {}: {e}", a.target).into());
        }
    };
    progress(&format!("calling {handle} target={}", a.target));
    outcome.started_ms = hark_phone::library::now_ms();
    let deadline = Instant::now() + secs(a.answer_timeout);
    // A failure, and whether the call is still ringing (then it is cancelled).
    let failure = loop {
        match next_event(&mut phone, deadline, &mut outcome).await {
            Some(PhoneEvent::Answered { call }) if call == handle => break None,
            Some(PhoneEvent::Ended { call, reason }) if call == handle => {
                break Some((ended_error(&a.target, &reason), false));
            }
            Some(_) => {}
            None => break Some((format!("{} did not answer within {} s", a.target, a.answer_timeout), true)),
        }
    };
    if let Some((message, ringing)) = failure {
        finish(phone, Some(handle), ringing, registered, &mut outcome).await;
        return Err(message.into());
    }
    let transfer = a.transfer_to.as_deref().zip(a.transfer_at);
    let (up, handle) = in_call(&mut phone, handle, &a.media, a.pause_at, a.resume_at, transfer, &mut outcome).await;
    finish(phone, Some(handle), up, registered, &mut outcome).await;
    keep_in_library(&a.media, true, &a.target, &mut outcome);
    exit_status(outcome)
}

fn ended_error(target: &str, reason: &EndReason) -> String {
    match reason {
        EndReason::Rejected { code: 401 | 407, reason } => {
            format!("call to {target} refused: wrong user or password ({reason})")
        }
        EndReason::Timeout => format!("call to {target} failed: no answer from the server"),
        r => format!("call to {target} failed: {r}"),
    }
}

fn exit_status(outcome: Outcome) -> CliResult {
    match outcome.failures.first() {
        None => Ok(()),
        Some(first) => Err(format!("{first}{}", if outcome.failures.len() > 1 { format!(" (and {} more failures)", outcome.failures.len() - 1) } else { String::new() }).into()),
    }
}

async fn answer(a: AnswerArgs) -> CliResult {
    let cfg = config(&a.account, &a.media, true, ControlMode::InDialog)?;
    let mut phone = driver::start(cfg).await.map_err(|e| format!("cannot listen on {}: {e}", a.account.listen))?;
    progress(&format!("listening sip={}", phone.local_sip));
    let mut outcome = Outcome::default();
    if let Err(e) = register(&mut phone, &a.account, &mut outcome).await {
        finish(phone, None, false, false, &mut outcome).await;
        return Err(e.into());
    }
    let deadline = Instant::now() + secs(a.wait);
    let mut remote = String::new();
    let incoming = loop {
        match next_event(&mut phone, deadline, &mut outcome).await {
            Some(PhoneEvent::IncomingCall { call, from, .. }) => {
                remote = from.to_string();
                outcome.started_ms = hark_phone::library::now_ms();
                break Some(call);
            }
            Some(_) => {}
            None => break None,
        }
    };
    let Some(handle) = incoming else {
        finish(phone, None, false, true, &mut outcome).await;
        return Err(format!("no call came within {} s", a.wait).into());
    };
    if let Some(code) = a.reject {
        phone.send(DriverCommand::Reject { call: handle, code });
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(ev) = next_event(&mut phone, deadline, &mut outcome).await {
            if matches!(ev, PhoneEvent::Ended { call, .. } if call == handle) {
                break;
            }
        }
        finish(phone, None, false, true, &mut outcome).await;
        return exit_status(outcome);
    }
    phone.send(DriverCommand::Answer { call: handle });
    let deadline = Instant::now() + Duration::from_secs(10);
    let failure = loop {
        match next_event(&mut phone, deadline, &mut outcome).await {
            Some(PhoneEvent::Answered { call }) if call == handle => break None,
            Some(PhoneEvent::Ended { call, reason }) if call == handle => break Some(format!("the call ended before it was answered: {reason}")),
            Some(_) => {}
            None => break Some("the call could not be answered".to_owned()),
        }
    };
    if let Some(f) = failure {
        finish(phone, Some(handle), false, true, &mut outcome).await;
        return Err(f.into());
    }
    let (up, handle) = in_call(&mut phone, handle, &a.media, None, None, None, &mut outcome).await;
    finish(phone, Some(handle), up, true, &mut outcome).await;
    keep_in_library(&a.media, false, &remote, &mut outcome);
    exit_status(outcome)
}

/// Files the call (and its local recording) in `--library`, if given.
fn keep_in_library(media: &MediaArgs, outgoing: bool, remote: &str, outcome: &mut Outcome) {
    let Some(db) = &media.library else { return };
    let result = (|| -> Result<(), hark_phone::library::LibraryError> {
        let mut lib = hark_phone::library::Library::open(db)?;
        let reason = outcome.end_reason.clone().unwrap_or_else(|| "hangup".into());
        let now = hark_phone::library::now_ms();
        let call = lib.add_call(outgoing, remote, outcome.started_ms, outcome.answered_ms, now, &reason, outcome.session_id.as_deref())?;
        if let Some(wav) = &media.record_call {
            let id = lib.import_local(wav, Some(call), remote, outcome.answered_ms.unwrap_or(outcome.started_ms))?;
            progress(&format!("library call={call} recording={id}"));
        } else {
            progress(&format!("library call={call}"));
        }
        Ok(())
    })();
    if let Err(e) = result {
        outcome.failures.push(format!("could not keep the call in the library: {e}"));
    }
}

fn history(a: LibraryArgs) -> CliResult {
    let lib = hark_phone::library::Library::open(&a.library)?;
    let calls = lib.history(1000)?;
    if a.json {
        println!("{}", serde_json::to_string(&calls)?);
        return Ok(());
    }
    println!("{:<6} {:<9} {:<28} {:<10} {:<9} REASON", "ID", "DIRECTION", "REMOTE", "ANSWERED", "SECONDS");
    for c in calls {
        let secs = (c.ended_at - c.answered_at.unwrap_or(c.ended_at)) as f64 / 1000.0;
        println!("{:<6} {:<9} {:<28} {:<10} {:<9.1} {}", c.id, c.direction, c.remote, if c.answered_at.is_some() { "yes" } else { "no" }, secs, c.end_reason);
    }
    Ok(())
}

fn recordings(a: RecordingsArgs) -> CliResult {
    let lib = hark_phone::library::Library::open(&a.lib.library)?;
    let list = lib.recordings(a.search.as_deref())?;
    if a.lib.json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    println!("{:<6} {:<20} {:<10} {:<6} PATH", "ID", "REMOTE", "SECONDS", "MARKS");
    for r in list {
        println!("{:<6} {:<20} {:<10.1} {:<6} {}", r.id, r.remote, r.duration_ms as f64 / 1000.0, r.marks.len(), r.path);
    }
    Ok(())
}
