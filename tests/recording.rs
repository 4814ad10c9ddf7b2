//! Call recording end to end (SPEC §1 recording policy and pause/resume, §4 `hark pbx
//! recordings list --json`), against `hark pbx serve` with phones the test owns: a SIP UA
//! per phone ([`hark_e2e::ua::Ua`]: exact timing of every request, the whole wire kept)
//! and an RTP socket per phone ([`RtpEndpoint`]: the caller plays 440 Hz, the callee
//! 660 Hz, through the PBX's relay). One check runs with a sipp callee
//! (tests/sipp/uas_record_info.xml) for the state INFO.
//!
//! What is proved:
//! - the policy matrix (tenant `audio_recording` AND user `record_audio_calls`, either
//!   internal party suffices) decides whether a call is recorded, and `X-Recording-State`
//!   in the callee's INVITE and the caller's 200 OK says so (`audio` / `off`);
//! - the WAV is stereo, 8 kHz, the caller left and the callee right, as long as the call;
//! - pause/resume by MESSAGE (out of dialog JSON, in dialog text, text without To tag)
//!   leaves the paused audio out of the file, stores pause/resume events, tells both
//!   phones by INFO, and is never relayed to the other phone;
//! - the MESSAGE path's answers: 407 challenge, 404 for non-parties (same tenant or not)
//!   exactly like an unknown session, 400 for malformed (a Content-Length shorter than the
//!   body) or unknown operations, 415 for other content types, no replayed credentials,
//!   403 once an address is banned;
//! - a PBX killed with SIGKILL mid-call leaves a WAV that, after a restart on the same
//!   data dir, opens and holds the audio up to the kill, its row `recovered`;
//! - the feature codes `*48`/`*49` do the same as RFC 4733 events, as SIP INFO
//!   (`application/dtmf-relay` and `application/dtmf`) and as in-band G.711 tones, the
//!   events naming the source (dtmf, info, inband) and the phone that typed them.
//!
//! Not tested here (not implemented when written): video/MP4, retention purge.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use hark_e2e::audio::{
    Heard, Pcm, ToneReport, alaw_to_linear, analyse, energy, goertzel, read_wav_channels, ulaw_to_linear,
};
use hark_e2e::calls::{
    CALLEE_HZ, CALLER_HZ, CallPbx, password, register_sipp_callee, sipp_callee,
};
use hark_e2e::rtp::{DtmfMode, Payload, RtpEndpoint};
use hark_e2e::ua::{Dialog, SipMsg, Ua, expect_status, relay_addr};
use hark_e2e::wire::unique;
use hark_e2e::{DOMAIN, Pbx, PbxBuilder, poll_until};
use serde_json::Value;

const JSON_TYPE: &str = "application/x-media-control+json";
const TEXT_TYPE: &str = "application/x-media-control";
/// The PBX's confirmation tones (hark-media's relay tones) and its recording-start beep.
const PAUSE_TONE_HZ: f64 = 950.0;
const RESUME_TONE_HZ: f64 = 1400.0;
const START_BEEP_HZ: f64 = 1800.0;
const ROW_TIMEOUT: Duration = Duration::from_secs(15);
/// How far the file's length may be from what the call's timeline says (SPEC: pausing
/// 2 s makes the file 2 s shorter, ±0.3 s).
const LENGTH_TOLERANCE: f64 = 0.3;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Runs `hark pbx ARGS` and waits until the running server has reloaded its settings.
fn set(pbx: &Pbx, args: &[&str]) {
    pbx.configure(args);
}

fn tenant_recording(pbx: &Pbx, on: bool) {
    set(pbx, &["tenant", "set", "--tenant", "office", "--audio-recording", if on { "on" } else { "off" }]);
}

fn user_recording(pbx: &Pbx, ext: &str, on: bool) {
    set(pbx, &["user", "set", "--tenant", "office", "--ext", ext, "--record-audio", if on { "on" } else { "off" }]);
}

/// A PBX of tenant `office` (101, 102, 103) with the tenant's audio recording on.
fn recording_pbx(builder: PbxBuilder, extra: &[&str]) -> CallPbx {
    let pbx = CallPbx::start_with(builder, &["101", "102", "103"], 30, extra);
    tenant_recording(&pbx, true);
    pbx
}


/// A call between two phones the test owns, answered, tones flowing both ways.
struct Call {
    caller: Ua,
    callee: Ua,
    a_rtp: RtpEndpoint,
    b_rtp: RtpEndpoint,
    /// The caller's dialog (its `setup` is the 200 OK).
    a: Dialog,
    /// The callee's dialog (its `setup` is the INVITE).
    b: Dialog,
    answered: Instant,
    a_relay: SocketAddr,
    b_relay: SocketAddr,
}

impl Call {
    fn start(pbx: &Pbx, from: &str, to: &str) -> Call {
        Self::start_with_tones(pbx, from, to, CALLER_HZ, CALLEE_HZ, false)
    }

    /// [`Call::start`] between phones whose SDP has no telephone-event: their DTMF can
    /// only go in band (or by INFO).
    fn start_without_telephone_event(pbx: &Pbx, from: &str, to: &str) -> Call {
        Self::start_opts(pbx, from, to, CALLER_HZ, CALLEE_HZ, false, false)
    }

    /// The caller plays `caller_hz`, the callee `callee_hz`, in G.711 µ-law (PT 0, both
    /// phones offering only it) when `ulaw`, else A-law (PT 8).
    fn start_with_tones(pbx: &Pbx, from: &str, to: &str, caller_hz: f64, callee_hz: f64, ulaw: bool) -> Call {
        Self::start_opts(pbx, from, to, caller_hz, callee_hz, ulaw, true)
    }

    fn start_opts(
        pbx: &Pbx,
        from: &str,
        to: &str,
        caller_hz: f64,
        callee_hz: f64,
        ulaw: bool,
        telephone_event: bool,
    ) -> Call {
        let callee = Ua::new(pbx.sip_udp, to, &password(to), DOMAIN);
        callee.set_telephone_event(telephone_event);
        if ulaw {
            callee.set_codec(0, "PCMU");
        }
        callee.register(3600);
        let mut b_rtp = RtpEndpoint::loopback();
        callee.answer_calls(b_rtp.port());
        let caller = Ua::new(pbx.sip_udp, from, &password(from), DOMAIN);
        caller.set_telephone_event(telephone_event);
        if ulaw {
            caller.set_codec(0, "PCMU");
        }
        let mut a_rtp = RtpEndpoint::loopback();
        let a = match caller.call(to, a_rtp.port()) {
            Ok(d) => d,
            Err(resp) => pbx.fail(&format!(
                "the call {from} -> {to} failed: {}\n{}\n{}",
                resp.first_line,
                caller.report(),
                callee.report()
            )),
        };
        let answered = Instant::now();
        let Some(b) = callee.wait_incoming(Duration::from_secs(5)) else {
            pbx.fail(&format!("the callee has no dialog\n{}", callee.report()))
        };
        let a_relay = relay_addr(&a, pbx, "the caller's 200 OK");
        let b_relay = relay_addr(&b, pbx, "the callee's INVITE");
        let tone = |hz| if ulaw { Payload::UlawTone(hz) } else { Payload::AlawTone(hz) };
        a_rtp.start_sending(a_relay, tone(caller_hz), 0xA11C_E101);
        b_rtp.start_sending(b_relay, tone(callee_hz), 0xB0B0_0102);
        Call {
            caller,
            callee,
            a_rtp,
            b_rtp,
            a,
            b,
            answered,
            a_relay,
            b_relay,
        }
    }

    fn session_id(&self) -> String {
        self.a.session_id()
    }

    /// The caller hangs up; returns when the BYE was answered.
    fn hang_up(&mut self, pbx: &Pbx) -> Instant {
        let resp = self.caller.bye(&mut self.a);
        let t = Instant::now();
        self.a_rtp.stop_sending();
        self.b_rtp.stop_sending();
        if resp.status() != Some(200) {
            pbx.fail(&format!("BYE answered {}\n{}", resp.first_line, self.caller.report()));
        }
        t
    }

    /// What each phone's RTP socket received from its relay port, packets per 250 ms
    /// since the answer: tells a PBX that dropped media from one that recorded it wrong.
    fn media_timeline(&self) -> String {
        let mut out = String::new();
        for (ep, relay, who) in [(&self.a_rtp, self.a_relay, "caller"), (&self.b_rtp, self.b_relay, "callee")] {
            let mut bins: Vec<usize> = Vec::new();
            for r in ep.received().iter().filter(|r| r.from == relay) {
                let i = (r.at.saturating_duration_since(self.answered).as_secs_f64() / 0.25) as usize;
                if bins.len() <= i {
                    bins.resize(i + 1, 0);
                }
                bins[i] += 1;
            }
            out.push_str(&format!(
                "RTP from the relay at the {who}'s socket, packets per 250 ms since the answer (12-13 expected): {bins:?}\n"
            ));
        }
        out
    }

    /// RTP packets (20 ms) the caller's (`to_caller`) or the callee's socket received
    /// from its relay port between `since` and `until` whose G.711 audio is mostly the
    /// `hz` tone: the PBX's tones replace whole packets' payloads.
    fn tone_packets(&self, to_caller: bool, since: Instant, until: Instant, hz: f64) -> usize {
        let (ep, relay) = if to_caller { (&self.a_rtp, self.a_relay) } else { (&self.b_rtp, self.b_relay) };
        ep.received()
            .iter()
            .filter(|r| r.from == relay && r.at >= since && r.at < until)
            .filter_map(|r| r.rtp().map(|p| (p.payload_type, p.payload.to_vec())))
            .filter(|(pt, payload)| {
                let x: Vec<f64> = match pt {
                    8 => payload.iter().map(|&b| f64::from(alaw_to_linear(b))).collect(),
                    0 => payload.iter().map(|&b| f64::from(ulaw_to_linear(b))).collect(),
                    _ => return false,
                };
                let e = energy(&x);
                e > 0.0 && goertzel(&x, 8000, hz) / e >= 0.3
            })
            .count()
    }

    /// Both phones' SIP traces.
    fn report(&self) -> String {
        format!("{}\n{}", self.caller.report(), self.callee.report())
    }

    /// Panics unless neither phone ever received a MESSAGE (the PBX consumes them).
    fn assert_no_message_relayed(&self, pbx: &Pbx) {
        for (ua, who) in [(&self.caller, "caller"), (&self.callee, "callee")] {
            let got = ua.received_requests("MESSAGE");
            if !got.is_empty() {
                pbx.fail(&format!(
                    "the {who} received {} MESSAGE(s): media-control MESSAGEs must never be relayed\n{}",
                    got.len(),
                    self.report()
                ));
            }
        }
    }
}

fn sleep_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

fn s(v: &Value, name: &str) -> String {
    match v.get(name) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The recording row of session `sid` once it is finished (not `recording`/`paused`).
fn finished_recording(pbx: &Pbx, sid: &str) -> Value {
    pbx.wait_recording(&format!("session {sid}, finished"), ROW_TIMEOUT, |r| {
        s(r, "call_session_id") == sid && !matches!(s(r, "status").as_str(), "recording" | "paused")
    })
}

fn rows_of(pbx: &Pbx, sid: &str) -> Vec<Value> {
    pbx.recordings()
        .into_iter()
        .filter(|r| s(r, "call_session_id") == sid)
        .collect()
}

/// The events of a row: (event, offset_ms, source, actor).
fn events(row: &Value) -> Vec<(String, u64, String, String)> {
    row.get("events")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        s(e, "event"),
                        e.get("offset_ms").and_then(Value::as_u64).unwrap_or(u64::MAX),
                        s(e, "source"),
                        s(e, "actor"),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Everything a finished audio recording row of a 101/102 call must say (SPEC §4).
fn check_row(pbx: &Pbx, row: &Value, sid: &str, status: &str) {
    let mut p = Vec::new();
    for key in [
        "id", "call_session_id", "cdr_id", "tenant", "parties", "kind", "format", "path", "started_at",
        "duration_ms", "status", "events",
    ] {
        if row.get(key).is_none() {
            p.push(format!("field `{key}` is missing"));
        }
    }
    if s(row, "call_session_id") != sid {
        p.push(format!("call_session_id is not the X-Session-Id {sid}"));
    }
    for (k, want) in [("tenant", "office"), ("kind", "audio"), ("format", "wav"), ("status", status)] {
        if s(row, k) != want {
            p.push(format!("{k} is {:?}, expected {want:?}", s(row, k)));
        }
    }
    let parties: Vec<String> = row
        .get("parties")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| s(x, "party")).collect())
        .unwrap_or_default();
    for ext in ["101", "102"] {
        if !parties.iter().any(|x| x == ext) {
            p.push(format!("parties {parties:?} do not name {ext}"));
        }
    }
    // DIR/recordings/TENANT/YYYY/MM/DD/SESSION-HHMMSS.wav, the date and time of the
    // answer: the same instant as started_at, or a moment before it (the name is made
    // just before the file is created).
    let started = s(row, "started_at");
    let path = s(row, "path");
    let prefix = format!("{}/office/", pbx.data_dir().join("recordings").display());
    let named = path
        .strip_prefix(&prefix)
        .and_then(|rest| {
            let (date, file) = rest.rsplit_once('/')?;
            let time = file.strip_prefix(&format!("{sid}-"))?.strip_suffix(".wav")?;
            let d: Vec<i64> = date.split('/').map(|x| x.parse().ok()).collect::<Option<_>>()?;
            let t: i64 = time.parse().ok().filter(|_| time.len() == 6)?;
            (d.len() == 3 && date.len() == 10).then(|| epoch_secs(d[0], d[1], d[2], t / 10000, t / 100 % 100, t % 100))
        });
    let began = parse_rfc3339(&started);
    match (named, began) {
        (Some(n), Some(b)) if n <= b.floor() as i64 && n + 5 >= b.floor() as i64 => {}
        _ => p.push(format!(
            "path is {path:?}, expected {prefix}YYYY/MM/DD/{sid}-HHMMSS.wav at the time of started_at {started}"
        )),
    }
    if !Path::new(&path).is_file() {
        p.push(format!("no file at path {path:?}"));
    }
    let ev = events(row);
    if ev.first().map(|e| (e.0.as_str(), e.1, e.2.as_str())) != Some(("start", 0, "policy")) {
        p.push(format!("the first event is not a start at 0 by policy: {ev:?}"));
    }
    if !p.is_empty() {
        pbx.fail(&format!("recording row wrong:\n- {}\nrow:\n{}", p.join("\n- "), pretty(row)));
    }
}

/// Seconds since 1970 of a UTC civil time (days-from-civil, H. Hinnant).
fn epoch_secs(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// `2026-11-27T21:42:15.003Z` → seconds since 1970 (with the fraction).
fn parse_rfc3339(t: &str) -> Option<f64> {
    let t = t.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let h: Vec<i64> = hms.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if d.len() != 3 || h.len() != 3 {
        return None;
    }
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some(epoch_secs(d[0], d[1], d[2], h[0], h[1], h[2]) as f64 + frac)
}

/// Checks the row's `cdr_id` against the call's CDR (written after the call).
fn check_cdr_link(pbx: &Pbx, sid: &str) {
    let cdr = pbx.wait_cdr(&format!("session {sid}"), ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    let row = pbx.wait_recording(&format!("session {sid} linked to its CDR"), ROW_TIMEOUT, |r| {
        s(r, "call_session_id") == sid && !s(r, "cdr_id").is_empty()
    });
    if s(&row, "cdr_id") != s(&cdr, "id") {
        pbx.fail(&format!(
            "the recording's cdr_id {} is not the id {} of the call's CDR\n{}\n{}",
            s(&row, "cdr_id"),
            s(&cdr, "id"),
            pretty(&row),
            pretty(&cdr)
        ));
    }
}

/// The recording's two channels, checked to be 16-bit stereo at 8 kHz with hound.
fn stereo(pbx: &Pbx, path: &str) -> (Pcm, Pcm) {
    let reader = hound::WavReader::open(path).unwrap_or_else(|e| pbx.fail(&format!("hound cannot open {path}: {e}")));
    let spec = reader.spec();
    if (spec.channels, spec.sample_rate, spec.bits_per_sample, spec.sample_format)
        != (2, 8000, 16, hound::SampleFormat::Int)
    {
        pbx.fail(&format!("{path}: expected 16-bit PCM stereo at 8000 Hz (G.711's rate), got {spec:?}"));
    }
    let frames = reader.duration();
    let (rate, mut ch) = read_wav_channels(Path::new(path)).unwrap_or_else(|e| pbx.fail(&e));
    assert_eq!(rate, 8000);
    let right = ch.pop().expect("two channels");
    let left = ch.pop().expect("two channels");
    if left.samples.len() != frames as usize {
        pbx.fail(&format!(
            "{path}: the header says {frames} frames, the data chunk holds {}",
            left.samples.len()
        ));
    }
    (left, right)
}

/// The longest run of silent windows, in seconds, of a report.
fn longest_silence(r: &ToneReport) -> f64 {
    let (mut best, mut run) = (0usize, 0usize);
    for w in &r.windows {
        if w.heard == Heard::Silence {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best as f64 * hark_e2e::audio::WINDOW_SECS
}

/// Left = caller's 440 Hz, right = callee's 660 Hz, in nearly every window, and no
/// silent stretch (paused audio must be cut out, not zeroed).
fn check_channels(pbx: &Pbx, left: &Pcm, right: &Pcm, context: &str) {
    check_tones(pbx, left, right, (CALLER_HZ, CALLEE_HZ), &[], 0.9, context);
}

/// [`check_channels`] for tones `(left_hz, right_hz)`; neither channel may carry any of
/// `foreign` either (another call's tones).
/// `fraction`: of the 100 ms windows that must carry the tone (each cut where paused
/// audio was left out joins two phases of the tone and may spoil one window).
fn check_tones(
    pbx: &Pbx,
    left: &Pcm,
    right: &Pcm,
    (left_hz, right_hz): (f64, f64),
    foreign: &[f64],
    fraction: f64,
    context: &str,
) {
    let end = left.duration_secs() - 0.2;
    let mut checks = vec![(left, left_hz, right_hz, "left (caller)"), (right, right_hz, left_hz, "right (callee)")];
    for &f in foreign {
        checks.push((left, left_hz, f, "left (caller), against another call's tone,"));
        checks.push((right, right_hz, f, "right (callee), against another call's tone,"));
    }
    for (pcm, hz, other, side) in checks {
        let report = analyse(&pcm.slice_secs(0.0, end), hz, other, 0.2);
        if let Err(e) = report.check(1.0, fraction) {
            pbx.fail(&format!("the {side} channel of the recording is not the {hz} Hz tone: {e}\n{context}"));
        }
        let gap = longest_silence(&report);
        if gap >= 0.3 {
            pbx.fail(&format!(
                "the {side} channel holds {gap:.1} s of silence: paused (or lost) audio must be left out of \
                 the file, not written as silence\n{}\n{context}",
                report.describe()
            ));
        }
    }
}

fn json_body(op: &str, sid: &str) -> String {
    format!("{{\"operation\": \"{op}\", \"session_id\": \"{sid}\"}}")
}

/// An out-of-dialog media-control request and its answers.
struct Sent {
    /// The first final answer (407 when unauthenticated).
    first: SipMsg,
    /// The answer to the authenticated retry (`first` again when it was not a 407).
    last: SipMsg,
    /// The Proxy-Authorization value that was sent with the retry.
    auth: Option<String>,
}

/// Sends a MESSAGE out of dialog from `ua` to `ruri` (To `to`), answers a 407 with the
/// credentials of `password` (default: the UA's own), and returns both answers.
#[allow(clippy::too_many_arguments)]
fn message(
    ua: &Ua,
    ruri: &str,
    to: &str,
    call_id: &str,
    from_tag: &str,
    content_type: &str,
    body: &str,
    content_length: Option<usize>,
    password: Option<&str>,
) -> Sent {
    let first = ua.request(&|b| ua.message_text(ruri, to, call_id, from_tag, 1, content_type, body, content_length, None, b));
    if first.status() != Some(407) {
        return Sent {
            last: first.clone(),
            first,
            auth: None,
        };
    }
    let auth = ua
        .credentials(&first, "MESSAGE", ruri, password)
        .unwrap_or_else(|e| panic!("{e}\n{}", ua.report()));
    let last = ua.request(&|b| {
        ua.message_text(ruri, to, call_id, from_tag, 2, content_type, body, content_length, Some(&auth), b)
    });
    Sent {
        first,
        last,
        auth: Some(auth),
    }
}

/// The JSON control MESSAGE out of dialog, as a phone that knows the session id sends it.
fn json_message(ua: &Ua, op: &str, sid: &str) -> Sent {
    let ruri = format!("sip:{}", ua.domain);
    message(ua, &ruri, &format!("<{ruri}>"), &unique("mc"), &unique("f"), JSON_TYPE, &json_body(op, sid), None, None)
}

/// RFC 2069 credentials (no qop, nc, cnonce) answering the 407 `challenge`, as the
/// vendor documentation's example carries them.
fn rfc2069_credentials(challenge: &SipMsg, user: &str, password: &str, uri: &str) -> String {
    use hark_sip::auth::{DigestChallenge, DigestCredentials, ha1, response};
    let c = DigestChallenge::parse(challenge.header("Proxy-Authenticate").unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e:?}: {}", challenge.text));
    let h1 = ha1(c.algorithm, user, &c.realm, password);
    DigestCredentials {
        username: user.into(),
        realm: c.realm.clone(),
        nonce: c.nonce.clone(),
        uri: uri.into(),
        response: response(c.algorithm, &h1, &c.nonce, None, "MESSAGE", uri),
        algorithm: c.algorithm,
        cnonce: None,
        nc: None,
        qop: None,
        opaque: c.opaque.clone(),
    }
    .to_header_value()
}


/// The state INFOs a phone received: (Content-Type, parsed body).
fn state_infos(ua: &Ua) -> Vec<(String, Value)> {
    ua.received_requests("INFO")
        .into_iter()
        // DTMF INFOs the other phone typed are relayed, and are not state INFOs.
        .filter(|m| {
            let t = m.header("Content-Type").unwrap_or("").to_ascii_lowercase();
            !t.starts_with("application/dtmf")
        })
        .map(|m| {
            (
                m.header("Content-Type").unwrap_or("").to_string(),
                serde_json::from_str(&m.body).unwrap_or(Value::String(m.body.clone())),
            )
        })
        .collect()
}

/// Panics unless `ua` received exactly the state INFOs whose `audio` values are `want`,
/// each of the JSON type naming session `sid` with video off.
fn check_state_infos(pbx: &Pbx, ua: &Ua, who: &str, sid: &str, want: &[&str], context: &str) {
    let got = poll_until(Duration::from_secs(3), || {
        let infos = state_infos(ua);
        (infos.len() >= want.len()).then_some(infos)
    })
    .unwrap_or_else(|| state_infos(ua));
    // A moment more for a stray extra one.
    std::thread::sleep(Duration::from_millis(200));
    let got = if state_infos(ua).len() > got.len() { state_infos(ua) } else { got };
    let audio: Vec<String> = got.iter().map(|(_, b)| s(b, "audio")).collect();
    let ok = audio == want
        && got.iter().all(|(ct, b)| {
            ct.eq_ignore_ascii_case(JSON_TYPE) && s(b, "session_id") == sid && s(b, "video") == "off"
        });
    if !ok {
        pbx.fail(&format!(
            "the {who} should have received state INFOs with audio {want:?} (Content-Type {JSON_TYPE}, \
             session_id {sid}, video off); it received {got:?}\n{context}"
        ));
    }
}

// ---------------------------------------------------------------------------------------
// 1. Policy matrix
// ---------------------------------------------------------------------------------------

/// Each case: a short call 101 -> 102 with tones, then: is there a recording of its
/// session, and what did X-Recording-State say on both legs.
#[test]
fn the_policy_matrix_decides_what_is_recorded_and_the_phones_are_told() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    // (tenant audio_recording, 101 record_audio_calls, 102 record_audio_calls, recorded)
    let cases = [
        (false, true, true, false, "tenant off (the default), both users on (the default)"),
        (true, true, true, true, "tenant on, both users on"),
        (true, false, true, true, "tenant on, caller 101 off, callee 102 on: recorded because 102 is"),
        (true, true, false, true, "tenant on, caller 101 on, callee 102 off: recorded because 101 is"),
        (true, false, false, false, "tenant on, both users off"),
        (false, true, true, false, "tenant off again"),
    ];
    let mut state = (false, true, true);
    let mut recorded_sessions = Vec::new();
    for (tenant, u101, u102, recorded, label) in cases {
        if state.0 != tenant {
            tenant_recording(&pbx, tenant);
        }
        if state.1 != u101 {
            user_recording(&pbx, "101", u101);
        }
        if state.2 != u102 {
            user_recording(&pbx, "102", u102);
        }
        state = (tenant, u101, u102);

        let mut call = Call::start(&pbx, "101", "102");
        std::thread::sleep(Duration::from_millis(1500));
        let active = pbx.metric("hark_recordings_active");
        if active != Some(if recorded { 1.0 } else { 0.0 }) {
            pbx.fail(&format!("hark_recordings_active is {active:?} during the call ({label})"));
        }
        call.hang_up(&pbx);
        let sid = call.session_id();
        let want = if recorded { "audio" } else { "off" };
        let context = format!("case: {label}\n{}", call.report());
        for (got, leg) in [
            (call.b.recording_state(), "the INVITE to the callee"),
            (call.a.recording_state(), "the 200 OK to the caller"),
        ] {
            if got.as_deref() != Some(want) {
                pbx.fail(&format!("X-Recording-State of {leg} is {got:?}, expected {want:?}\n{context}"));
            }
        }
        if call.b.session_id() != sid || sid.is_empty() {
            pbx.fail(&format!("X-Session-Id differs between the legs or is missing\n{context}"));
        }
        // The CDR is written once the call is over: by then a recording would exist.
        pbx.wait_cdr(&format!("session {sid}"), ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
        if recorded {
            let row = finished_recording(&pbx, &sid);
            check_row(&pbx, &row, &sid, "completed");
            // The decision trace names which user's switch turned recording on.
            let reason = s(&row["events"][0], "reason");
            for (ext, on) in [("101", u101), ("102", u102)] {
                let claims = reason.contains(&format!("{ext} records audio calls"));
                if claims != on {
                    pbx.fail(&format!(
                        "the start reason {reason:?} {} that {ext} records audio calls ({label})",
                        if on { "does not say" } else { "wrongly says" }
                    ));
                }
            }
            recorded_sessions.push(sid.clone());
        } else {
            std::thread::sleep(Duration::from_millis(300));
            let rows = rows_of(&pbx, &sid);
            if !rows.is_empty() {
                pbx.fail(&format!(
                    "the call must not be recorded ({label}), yet it was:\n{}",
                    pretty(&Value::Array(rows))
                ));
            }
        }
        // One WAV per call however many parties ask for it.
        let rows = rows_of(&pbx, &sid);
        if rows.len() > 1 {
            pbx.fail(&format!("{} recordings for one call:\n{}", rows.len(), pretty(&Value::Array(rows))));
        }
        call.assert_no_message_relayed(&pbx);
    }
    let all = pbx.recordings();
    assert_eq!(
        all.len(),
        recorded_sessions.len(),
        "recordings exist only for the recorded cases:\n{}",
        pretty(&Value::Array(all.clone()))
    );
}

/// Recording starts on answer: a call the callee refuses (486) leaves no recording row
/// and no file, though the policy says "record" and the INVITE said `audio`.
#[test]
fn a_call_that_is_not_answered_leaves_no_recording() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let callee = Ua::new(pbx.sip_udp, "102", &password("102"), DOMAIN);
    callee.register(3600);
    // No answer_calls: the callee answers 486 Busy Here.
    let caller = Ua::new(pbx.sip_udp, "101", &password("101"), DOMAIN);
    let resp = match caller.call("102", hark_e2e::free_port()) {
        Ok(_) => pbx.fail(&format!("the busy callee's call was answered\n{}", caller.report())),
        Err(r) => r,
    };
    let invite = callee
        .received_requests("INVITE")
        .into_iter()
        .next()
        .unwrap_or_else(|| pbx.fail(&format!("the callee got no INVITE\n{}", caller.report())));
    let sid = invite.header("X-Session-Id").unwrap_or("").to_string();
    let context = format!("the caller got `{}`\n{}\n{}", resp.first_line, caller.report(), callee.report());
    if invite.header("X-Recording-State") != Some("audio") {
        pbx.fail(&format!("X-Recording-State of the INVITE: {:?}\n{context}", invite.header("X-Recording-State")));
    }
    pbx.wait_cdr(&format!("session {sid}"), ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    std::thread::sleep(Duration::from_millis(300));
    let rows = pbx.recordings();
    if !rows.is_empty() {
        pbx.fail(&format!("an unanswered call left recordings:\n{}\n{context}", pretty(&Value::Array(rows))));
    }
    let files: Vec<String> = walk(&pbx.data_dir().join("recordings"));
    if !files.is_empty() {
        pbx.fail(&format!("an unanswered call left files: {files:?}\n{context}"));
    }
}

/// A recordings directory the PBX cannot write (here: the tenant's folder is a file, as
/// a broken mount or a full disk would refuse it) fails the recording with the error
/// stored, and the call goes on with its audio.
#[test]
fn a_recording_that_cannot_be_written_fails_with_its_error_and_the_call_goes_on() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let root = pbx.data_dir().join("recordings");
    std::fs::create_dir_all(&root).expect("recordings dir");
    std::fs::write(root.join("office"), b"not a directory").expect("blocking file");
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let row = pbx.wait_recording("the failed recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid && s(r, "status") == "failed");
    let error = s(&row, "error");
    if error.is_empty() {
        pbx.fail(&format!("a failed recording must say why: {}", pretty(&row)));
    }
    // The call is unharmed: both phones still hear each other.
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(1200));
    let heard = call.a_rtp.alaw_audio(Some(call.a_relay), t, Instant::now(), "caller after the failure");
    if let Err(e) = analyse(&heard, CALLEE_HZ, CALLER_HZ, 0.0).check(0.8, 0.8) {
        pbx.fail(&format!("the call lost its audio when the recording failed: {e}"));
    }
    call.hang_up(&pbx);
    let cdr = pbx.wait_cdr("the call's CDR", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&cdr, "disposition") != "answered" {
        pbx.fail(&format!("the call should end normally: {}", pretty(&cdr)));
    }
}

/// Every file under `dir` (recursively).
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// 2. Stereo content
// ---------------------------------------------------------------------------------------

#[test]
fn the_wav_is_stereo_caller_left_callee_right_as_long_as_the_call() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    // While the call runs the row says so.
    let live = pbx.wait_recording("the live recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&live, "status") != "recording" {
        pbx.fail(&format!("a running recording has status {:?}\n{}", s(&live, "status"), pretty(&live)));
    }
    if !live.get("duration_ms").is_some_and(Value::is_null) {
        pbx.fail(&format!("a running recording has a duration_ms\n{}", pretty(&live)));
    }
    pbx.wait_metric("hark_recordings_active", 1.0, Duration::from_secs(5));
    sleep_until(call.answered + Duration::from_secs(4));
    let ended = call.hang_up(&pbx);
    pbx.wait_metric("hark_recordings_active", 0.0, Duration::from_secs(10));
    let call_secs = ended.duration_since(call.answered).as_secs_f64();

    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    check_cdr_link(&pbx, &sid);
    let ev = events(&row);
    let kinds: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    if kinds != ["start", "stop"] {
        pbx.fail(&format!("events of an uninterrupted call: {ev:?}, expected start, stop\n{}", pretty(&row)));
    }
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let file_secs = left.duration_secs();
    let context = format!("call {call_secs:.2} s, file {file_secs:.2} s\n{}\n{}", call.media_timeline(), pretty(&row));
    if (file_secs - call_secs).abs() > 0.5 {
        pbx.fail(&format!("the recording is not as long as the call (±0.5 s): {context}"));
    }
    let duration_ms = row.get("duration_ms").and_then(Value::as_f64).unwrap_or(-1.0);
    if (duration_ms / 1000.0 - file_secs).abs() > 0.1 {
        pbx.fail(&format!("duration_ms {duration_ms} does not match the file's {file_secs:.3} s: {context}"));
    }
    check_channels(&pbx, &left, &right, &context);
    // The session is over: controlling it is answered like an unknown session.
    let late = json_message(&call.caller, "pause-audio-recording", &sid);
    expect_status(&pbx, &late.last, 404, "a pause of a call that has ended", &call.report());
    call.assert_no_message_relayed(&pbx);
}

/// The callee's phone sends nothing from 1.5 s to 2.5 s (then a new RTP stream, as after
/// a restart of its media): its channel is silent there and only there, and the two
/// channels stay aligned (the caller's channel is uninterrupted, the file as long as the
/// call).
#[test]
fn a_gap_in_one_phones_rtp_is_silence_in_its_channel_and_the_channels_stay_aligned() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let t0 = call.answered;
    sleep_until(t0 + Duration::from_millis(1500));
    // Only the callee's sender: stop_sending stops every sender of that endpoint.
    call.b_rtp.stop_sending();
    let gap_from = t0.elapsed().as_secs_f64();
    sleep_until(t0 + Duration::from_millis(2500));
    call.b_rtp.start_sending(call.b_relay, Payload::AlawTone(CALLEE_HZ), 0xB0B0_0202);
    let gap_to = t0.elapsed().as_secs_f64();
    sleep_until(t0 + Duration::from_secs(5));
    let ended = call.hang_up(&pbx);
    let call_secs = ended.duration_since(t0).as_secs_f64();

    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let file_secs = left.duration_secs();
    let context = format!(
        "call {call_secs:.2} s, the callee silent from {gap_from:.2} s to {gap_to:.2} s, file {file_secs:.2} s\n{}",
        pretty(&row)
    );
    if (file_secs - call_secs).abs() > 0.5 {
        pbx.fail(&format!("the recording is not as long as the call (±0.5 s): {context}"));
    }
    let l = analyse(&left.slice_secs(0.0, file_secs - 0.2), CALLER_HZ, CALLEE_HZ, 0.2);
    if let Err(e) = l.check(3.0, 0.9) {
        pbx.fail(&format!("the caller's channel is disturbed by the callee's gap: {e}\n{context}"));
    }
    // The right channel: the tone before and after, silence inside the gap, at the
    // positions of the call's timeline (±0.25 s).
    let r = analyse(&right, CALLEE_HZ, CALLER_HZ, 0.0);
    let mut wrong = Vec::new();
    for w in &r.windows {
        let t = w.start_secs;
        let want = if t > gap_from + 0.25 && t + 0.1 < gap_to - 0.25 {
            Some(Heard::Silence)
        } else if (t > 0.25 && t + 0.1 < gap_from - 0.25) || (t > gap_to + 0.25 && t + 0.1 < file_secs - 0.25) {
            Some(Heard::Expected)
        } else {
            None
        };
        if let Some(want) = want
            && w.heard != want
        {
            wrong.push(format!("{t:.1} s: {:?}, expected {want:?}", w.heard));
        }
    }
    if wrong.len() > 2 {
        pbx.fail(&format!(
            "the callee's channel is not aligned with the call's timeline ({} windows wrong: {:?})\n{}\n{context}",
            wrong.len(),
            &wrong[..wrong.len().min(10)],
            r.describe()
        ));
    }
}

/// Two calls recorded at once (101 -> 102 at 440/660 Hz, 103 -> 104 at 1000/1400 Hz):
/// each WAV holds its own call's two tones and nothing of the other.
#[test]
fn two_calls_recorded_at_once_do_not_leak_into_each_other() {
    let pbx = CallPbx::start(&["101", "102", "103", "104"], 30, &[]);
    tenant_recording(&pbx, true);
    let mut one = Call::start(&pbx, "101", "102");
    let mut two = Call::start_with_tones(&pbx, "103", "104", 1000.0, 1400.0, false);
    sleep_until(one.answered + Duration::from_secs(4));
    one.hang_up(&pbx);
    two.hang_up(&pbx);
    for (call, tones, foreign) in [(&one, (CALLER_HZ, CALLEE_HZ), [1000.0, 1400.0]), (&two, (1000.0, 1400.0), [CALLER_HZ, CALLEE_HZ])] {
        let sid = call.session_id();
        let row = finished_recording(&pbx, &sid);
        let (left, right) = stereo(&pbx, &s(&row, "path"));
        check_tones(&pbx, &left, &right, tones, &foreign, 0.9, &pretty(&row));
    }
    if one.session_id() == two.session_id() {
        pbx.fail("two calls were given one session id");
    }
    // `recordings list` filters: a user's own recordings, and the newest N.
    let list = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["recordings", "list", "--json"];
        all.extend_from_slice(args);
        let (out, _) = pbx.admin(&all);
        let rows: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| pbx.fail(&format!("{e}: {out}")));
        rows.as_array()
            .map(|a| a.iter().map(|r| s(r, "call_session_id")).collect())
            .unwrap_or_default()
    };
    let (a, b) = (one.session_id(), two.session_id());
    for (args, want) in [
        (vec!["--tenant", "office", "--ext", "101"], vec![a.clone()]),
        (vec!["--tenant", "office", "--ext", "104"], vec![b.clone()]),
        (vec!["--tenant", "office", "--ext", "105"], vec![]),
        (vec!["--limit", "1"], vec![b.clone()]),
        (vec![], vec![b.clone(), a.clone()]),
    ] {
        let got = list(&args);
        if got != want {
            pbx.fail(&format!("`recordings list --json {}` lists sessions {got:?}, expected {want:?}", args.join(" ")));
        }
    }
}

/// Hold and resume by re-INVITE during a recorded call: the caller puts the call on
/// hold at 1.5 s (a=sendonly, it keeps sending its tone, as music on hold would) and
/// resumes at 3 s. The recording must go on through both re-INVITEs: as long as the
/// call, and both tones present after the resume (a recorder that loses the relay's tap
/// when the media is re-anchored would record silence or stop).
#[test]
fn hold_and_resume_by_re_invite_do_not_break_the_recording() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let t0 = call.answered;
    let port = call.a_rtp.port();
    sleep_until(t0 + Duration::from_millis(1500));
    let r = call.caller.reinvite(&mut call.a, port, "sendonly");
    expect_status(&pbx, &r, 200, "the hold re-INVITE", &call.report());
    sleep_until(t0 + Duration::from_secs(3));
    let r = call.caller.reinvite(&mut call.a, port, "sendrecv");
    expect_status(&pbx, &r, 200, "the resume re-INVITE", &call.report());
    let resumed = t0.elapsed().as_secs_f64();
    sleep_until(t0 + Duration::from_secs(6));
    let ended = call.hang_up(&pbx);
    let call_secs = ended.duration_since(t0).as_secs_f64();
    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let file_secs = left.duration_secs();
    let context = format!(
        "call {call_secs:.2} s, resumed at {resumed:.2} s, file {file_secs:.2} s\n{}\n{}",
        pretty(&row),
        call.report()
    );
    if (file_secs - call_secs).abs() > 0.5 {
        pbx.fail(&format!("the recording is not as long as the call (±0.5 s) after hold/resume: {context}"));
    }
    // After the resume both phones are recorded again.
    let from = (resumed + 0.3).min(file_secs);
    for (pcm, hz, other, side) in [(&left, CALLER_HZ, CALLEE_HZ, "left (caller)"), (&right, CALLEE_HZ, CALLER_HZ, "right (callee)")] {
        let report = analyse(&pcm.slice_secs(from, file_secs - 0.2), hz, other, 0.0);
        if let Err(e) = report.check(2.0, 0.9) {
            pbx.fail(&format!("after the resume the {side} channel is not the {hz} Hz tone: {e}\n{context}"));
        }
    }
}

/// G.711 µ-law (PT 0) end to end: the phones offer only PCMU, the relay carries it, and
/// the recorder decodes it as µ-law (decoding it as A-law would not give clean tones).
#[test]
fn a_pcmu_call_is_recorded_with_clean_tones_at_8_khz() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start_with_tones(&pbx, "101", "102", CALLER_HZ, CALLEE_HZ, true);
    let sid = call.session_id();
    for (d, who) in [(&call.a, "caller's 200 OK"), (&call.b, "callee's INVITE")] {
        if !d.setup.body.contains("RTP/AVP 0") || !d.setup.body.to_ascii_uppercase().contains("PCMU/8000") {
            pbx.fail(&format!("the {who} does not keep PCMU:\n{}", d.setup.text));
        }
    }
    sleep_until(call.answered + Duration::from_secs(3));
    let t_end = Instant::now();
    let ended = call.hang_up(&pbx);
    let heard = call.b_rtp.ulaw_audio(Some(call.b_relay), call.answered, t_end, "callee's socket (PCMU)");
    if let Err(e) = analyse(&heard, CALLER_HZ, CALLEE_HZ, 0.3).check(2.0, 0.8) {
        pbx.fail(&format!("the callee does not hear the caller in PCMU: {e}\n{}", call.b_rtp.summary()));
    }
    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let call_secs = ended.duration_since(call.answered).as_secs_f64();
    let context = format!("call {call_secs:.2} s, file {:.2} s\n{}", left.duration_secs(), pretty(&row));
    if (left.duration_secs() - call_secs).abs() > 0.5 {
        pbx.fail(&format!("the recording is not as long as the call (±0.5 s): {context}"));
    }
    check_channels(&pbx, &left, &right, &context);
}

// ---------------------------------------------------------------------------------------
// 3. Pause and resume by MESSAGE
// ---------------------------------------------------------------------------------------

#[test]
fn rfc3339_times_convert_to_epoch_seconds() {
    assert_eq!(epoch_secs(1970, 1, 1, 0, 0, 0), 0);
    assert_eq!(parse_rfc3339("2026-11-27T21:42:15.250Z"), Some(1_795_815_735.25));
    assert_eq!(epoch_secs(2000, 3, 1, 0, 0, 1), 951_868_801);
}

#[derive(Clone, Copy, Debug)]
enum Control {
    /// JSON with the X-Session-Id, out of dialog (caller pauses, caller resumes).
    OutOfDialog,
    /// Plain text in the dialog (caller pauses, callee resumes).
    InDialog,
    /// Plain text with the leg's Call-ID and no To tag, digest authenticated (callee
    /// pauses on its leg, caller resumes on its own).
    NoToTag,
    /// `*48` / `*49` as RFC 4733 telephone-events in the RTP (caller pauses, callee
    /// resumes).
    Rfc4733,
    /// `*48` as INFO `application/dtmf-relay`, `*49` as INFO `application/dtmf` (caller
    /// pauses, callee resumes).
    Info,
    /// `*48` / `*49` as DTMF tones in the G.711 audio, phones without telephone-event
    /// (callee pauses, caller resumes).
    InBand,
}

impl Control {
    /// Who pauses and who resumes (true: the caller).
    fn actors(self) -> (bool, bool) {
        match self {
            Control::OutOfDialog => (true, true),
            Control::InDialog | Control::Rfc4733 | Control::Info => (true, false),
            Control::NoToTag | Control::InBand => (false, true),
        }
    }

    fn is_feature_code(self) -> bool {
        matches!(self, Control::Rfc4733 | Control::Info | Control::InBand)
    }

    /// The `source` the recording's events must name.
    fn source(self) -> &'static str {
        match self {
            Control::OutOfDialog | Control::InDialog | Control::NoToTag => "message",
            Control::Rfc4733 => "dtmf",
            Control::Info => "info",
            Control::InBand => "inband",
        }
    }
}

/// Types the feature code `code` (`*48`, `*49`) the `how` way from the caller
/// (`by_caller`) or the callee; returns about when the PBX saw it complete.
fn type_code(call: &mut Call, how: Control, by_caller: bool, code: &str, pbx: &Pbx) -> Instant {
    let (ua, dialog, rtp) = if by_caller {
        (&call.caller, &mut call.a, &call.a_rtp)
    } else {
        (&call.callee, &mut call.b, &call.b_rtp)
    };
    match how {
        Control::Rfc4733 | Control::InBand => {
            let mode = if matches!(how, Control::Rfc4733) { DtmfMode::Rfc4733 { pt: 101 } } else { DtmfMode::InBand };
            let started = rtp.send_dtmf(code, mode);
            let last = *started.last().expect("digits were sent");
            // RFC 4733: the first event packet completes the code; in band, the tone
            // must last a few 12.75 ms blocks first.
            last + Duration::from_millis(if matches!(how, Control::InBand) { 60 } else { 5 })
        }
        Control::Info => {
            let mut at = Instant::now();
            for (i, digit) in code.chars().enumerate() {
                let (content_type, body) = if code.ends_with('8') {
                    ("application/dtmf-relay", format!("Signal={digit}\r\nDuration=160\r\n"))
                } else {
                    ("application/dtmf", digit.to_string())
                };
                at = Instant::now();
                let r = ua.in_dialog(dialog, "INFO", Some(content_type), &body);
                if r.status() != Some(200) {
                    pbx.fail(&format!("the INFO for digit {i} of {code} was answered {}\n{}", r.first_line, ua.report()));
                }
            }
            at + Duration::from_millis(5)
        }
        _ => unreachable!("{how:?} is not a feature code"),
    }
}

/// Sends `op` the `how` way from the caller (`by_caller`) or the callee; returns the
/// final answer.
fn control(call: &mut Call, how: Control, by_caller: bool, op: &str, pbx: &Pbx) -> SipMsg {
    let sid = call.session_id();
    let (ua, dialog) = if by_caller {
        (&call.caller, &mut call.a)
    } else {
        (&call.callee, &mut call.b)
    };
    match how {
        Control::OutOfDialog => {
            let sent = json_message(ua, op, &sid);
            expect_status(pbx, &sent.first, 407, "an out-of-dialog MESSAGE without credentials", &ua.report());
            sent.last
        }
        Control::InDialog => ua.in_dialog(dialog, "MESSAGE", Some(TEXT_TYPE), op),
        Control::NoToTag => {
            let ruri = dialog.remote_uri.clone();
            let sent = message(
                ua,
                &ruri,
                &format!("<{ruri}>"),
                &dialog.call_id,
                &dialog.local_tag,
                TEXT_TYPE,
                op,
                None,
                None,
            );
            expect_status(pbx, &sent.first, 407, "a MESSAGE without To tag and without credentials", &ua.report());
            sent.last
        }
        Control::Rfc4733 | Control::Info | Control::InBand => unreachable!("{how:?} is a feature code, not a MESSAGE"),
    }
}

fn pause_and_resume(how: Control) {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = if matches!(how, Control::InBand) {
        Call::start_without_telephone_event(&pbx, "101", "102")
    } else {
        Call::start(&pbx, "101", "102")
    };
    let sid = call.session_id();
    let t0 = call.answered;
    let (pauser, resumer) = how.actors();
    let ext = |caller: bool| if caller { "101" } else { "102" };

    sleep_until(t0 + Duration::from_secs(2));
    let t_pause = if how.is_feature_code() {
        type_code(&mut call, how, pauser, "*48", &pbx)
    } else {
        let sent = Instant::now();
        let r = control(&mut call, how, pauser, "pause-audio-recording", &pbx);
        let t_pause = Instant::now();
        expect_status(&pbx, &r, 200, &format!("pause ({how:?})"), &call.report());
        sent + (t_pause - sent) / 2
    };
    // The row says paused while paused.
    let row = pbx.wait_recording("the paused recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&row, "status") != "paused" {
        pbx.fail(&format!("a paused recording has status {:?}\n{}", s(&row, "status"), pretty(&row)));
    }
    // Pausing a paused recording: a no-op, still 200.
    if !how.is_feature_code() {
        let again = control(&mut call, how, pauser, "pause-audio-recording", &pbx);
        expect_status(&pbx, &again, 200, "pausing a paused recording", &call.report());
    }

    sleep_until(t0 + Duration::from_secs(4));
    let t_resume = if how.is_feature_code() {
        type_code(&mut call, how, resumer, "*49", &pbx)
    } else {
        let sent = Instant::now();
        let r = control(&mut call, how, resumer, "resume-audio-recording", &pbx);
        let t_resume = Instant::now();
        expect_status(&pbx, &r, 200, &format!("resume ({how:?})"), &call.report());
        sent + (t_resume - sent) / 2
    };

    sleep_until(t0 + Duration::from_secs(7));
    let ended = call.hang_up(&pbx);
    let call_secs = ended.duration_since(t0).as_secs_f64();
    let paused_secs = t_resume.duration_since(t_pause).as_secs_f64();
    let expected = call_secs - paused_secs;

    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let file_secs = left.duration_secs();
    let context = format!(
        "{how:?}: call {call_secs:.2} s, paused {paused_secs:.2} s (from {:.2} s), file {file_secs:.2} s\n{}\n{}{}",
        t_pause.duration_since(t0).as_secs_f64(),
        pretty(&row),
        call.media_timeline(),
        call.report()
    );
    if (file_secs - expected).abs() > LENGTH_TOLERANCE {
        pbx.fail(&format!(
            "the paused audio is not left out of the file: expected {expected:.2} s ±{LENGTH_TOLERANCE}: {context}"
        ));
    }
    let duration_ms = row.get("duration_ms").and_then(Value::as_f64).unwrap_or(-1.0);
    if (duration_ms / 1000.0 - file_secs).abs() > 0.1 {
        pbx.fail(&format!("duration_ms {duration_ms} does not match the file: {context}"));
    }

    // Events: start, pause (by the pauser, at ~2 s into the file), resume (by the
    // resumer, at the same position: nothing was written in between), stop.
    let ev = events(&row);
    let kinds: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
    if kinds != ["start", "pause", "resume", "stop"] {
        pbx.fail(&format!(
            "events {ev:?}, expected start, pause, resume, stop (the repeated pause changes nothing): {context}"
        ));
    }
    let (pause, resume) = (&ev[1], &ev[2]);
    let pause_at = t_pause.duration_since(t0).as_secs_f64() * 1000.0;
    let mut p = Vec::new();
    if (pause.1 as f64 - pause_at).abs() > LENGTH_TOLERANCE * 1000.0 {
        p.push(format!("the pause's offset_ms {} is not about {pause_at:.0}", pause.1));
    }
    if resume.1.abs_diff(pause.1) > 100 {
        p.push(format!(
            "the resume's offset_ms {} is not the pause's position {} in the file",
            resume.1, pause.1
        ));
    }
    for (e, by) in [(pause, pauser), (resume, resumer)] {
        if e.2 != how.source() {
            p.push(format!("the {} event's source is {:?}, expected {:?}", e.0, e.2, how.source()));
        }
        if e.3 != ext(by) {
            p.push(format!("the {} event's actor is {:?}, expected {:?}", e.0, e.3, ext(by)));
        }
    }
    if ev[3].1.abs_diff((file_secs * 1000.0) as u64) > 100 {
        p.push(format!("the stop's offset_ms {} is not the end of the file", ev[3].1));
    }
    if !p.is_empty() {
        pbx.fail(&format!("{}\n{context}", p.join("\n")));
    }

    if how.is_feature_code() {
        // The digits typed before the pause took effect are in the file (as DTMF tones,
        // or as the silence in place of the audio the event packets replaced).
        check_tones(&pbx, &left, &right, (CALLER_HZ, CALLEE_HZ), &[], 0.8, &context);
    } else {
        check_channels(&pbx, &left, &right, &context);
    }

    // The pause is the recording's, not the call's: the callee kept hearing the caller.
    let heard = call.b_rtp.alaw_audio(
        Some(call.b_relay),
        t_pause + Duration::from_millis(300),
        t_resume - Duration::from_millis(300),
        "callee's socket while the recording was paused",
    );
    if let Err(e) = analyse(&heard, CALLER_HZ, CALLEE_HZ, 0.0).check(1.0, 0.8) {
        pbx.fail(&format!("while the recording was paused the callee stopped hearing the caller: {e}\n{context}"));
    }
    let heard = call.a_rtp.alaw_audio(
        Some(call.a_relay),
        t_pause + Duration::from_millis(300),
        t_resume - Duration::from_millis(300),
        "caller's socket while the recording was paused",
    );
    if let Err(e) = analyse(&heard, CALLEE_HZ, CALLER_HZ, 0.0).check(1.0, 0.8) {
        pbx.fail(&format!("while the recording was paused the caller stopped hearing the callee: {e}\n{context}"));
    }
    for (ua, who) in [(&call.caller, "caller"), (&call.callee, "callee")] {
        check_state_infos(&pbx, ua, who, &sid, &["paused", "recording"], &context);
    }
    call.assert_no_message_relayed(&pbx);

    // The tenant's confirmation tone (on by default) reached the party who asked, and
    // only that party: two 950 Hz beeps for the pause, one 1400 Hz beep for the resume.
    for (at, by, hz, at_least, what) in [(t_pause, pauser, PAUSE_TONE_HZ, 8, "pause"), (t_resume, resumer, RESUME_TONE_HZ, 5, "resume")] {
        let (from, until) = (at - Duration::from_millis(200), at + Duration::from_millis(1000));
        let heard = call.tone_packets(by, from, until, hz);
        let other = call.tone_packets(!by, from, until, hz);
        if heard < at_least || other > 0 {
            pbx.fail(&format!(
                "the {what} confirmation tone ({hz} Hz): {heard} packets of it reached the {} who asked \
                 (want ≥ {at_least}), {other} the other phone (want 0)\n{context}",
                if by { "caller" } else { "callee" }
            ));
        }
    }
}

#[test]
fn pause_and_resume_by_out_of_dialog_json_message_cut_the_pause_from_the_file() {
    pause_and_resume(Control::OutOfDialog);
}

#[test]
fn pause_and_resume_by_in_dialog_text_message_cut_the_pause_from_the_file() {
    pause_and_resume(Control::InDialog);
}

#[test]
fn pause_and_resume_by_text_message_without_to_tag_cut_the_pause_from_the_file() {
    pause_and_resume(Control::NoToTag);
}

#[test]
fn feature_codes_as_rfc4733_events_pause_and_resume_the_recording() {
    pause_and_resume(Control::Rfc4733);
}

#[test]
fn feature_codes_as_sip_info_pause_and_resume_the_recording() {
    pause_and_resume(Control::Info);
}

#[test]
fn feature_codes_as_in_band_tones_pause_and_resume_the_recording() {
    pause_and_resume(Control::InBand);
}

#[test]
fn tenant_options_mono_layout_start_beep_and_no_pause_tone_are_applied() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    set(
        &pbx,
        &["tenant", "set", "--tenant", "office", "--recording-layout", "mono", "--start-beep", "on", "--pause-tone", "off"],
    );
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let t0 = call.answered;

    // The start beep: both phones hear it once, right after the answer.
    sleep_until(t0 + Duration::from_secs(2));
    for to_caller in [true, false] {
        let n = call.tone_packets(to_caller, t0 - Duration::from_millis(500), t0 + Duration::from_secs(2), START_BEEP_HZ);
        if !(10..=14).contains(&n) {
            pbx.fail(&format!(
                "the recording-start beep (250 ms of {START_BEEP_HZ} Hz): the {} received {n} packets of it, want 12 or 13\n{}{}",
                if to_caller { "caller" } else { "callee" },
                call.media_timeline(),
                call.report()
            ));
        }
    }

    // Pause without the confirmation tone.
    let r = control(&mut call, Control::InDialog, true, "pause-audio-recording", &pbx);
    expect_status(&pbx, &r, 200, "pause", &call.report());
    let t_pause = Instant::now();
    sleep_until(t_pause + Duration::from_secs(1));
    let r = control(&mut call, Control::InDialog, true, "resume-audio-recording", &pbx);
    expect_status(&pbx, &r, 200, "resume", &call.report());
    sleep_until(Instant::now() + Duration::from_secs(1));
    for to_caller in [true, false] {
        let n = call.tone_packets(to_caller, t_pause - Duration::from_millis(500), Instant::now(), PAUSE_TONE_HZ)
            + call.tone_packets(to_caller, t_pause - Duration::from_millis(500), Instant::now(), RESUME_TONE_HZ);
        if n > 0 {
            pbx.fail(&format!("with --pause-tone off a phone still heard {n} packets of a confirmation tone"));
        }
    }
    call.hang_up(&pbx);

    // One mixed channel holding both phones' tones.
    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let path = s(&row, "path");
    let spec = hound::WavReader::open(&path).unwrap_or_else(|e| pbx.fail(&format!("hound cannot open {path}: {e}"))).spec();
    if (spec.channels, spec.sample_rate) != (1, 8000) {
        pbx.fail(&format!("a mono tenant's recording is {spec:?}, want 1 channel at 8000 Hz\n{}", pretty(&row)));
    }
    let (_, mut ch) = read_wav_channels(Path::new(&path)).unwrap_or_else(|e| pbx.fail(&e));
    let mono = ch.pop().expect("one channel");
    let x = &mono.samples[(0.3 * 8000.0) as usize..mono.samples.len().saturating_sub(1600)];
    // Mean share of each tone over 100 ms windows (a sum of two equal sines gives 0.25
    // each).
    let share = |hz: f64| {
        let w: Vec<f64> = x.chunks_exact(800).map(|c| goertzel(c, 8000, hz) / energy(c).max(1.0)).collect();
        w.iter().sum::<f64>() / w.len().max(1) as f64
    };
    let (caller, callee) = (share(CALLER_HZ), share(CALLEE_HZ));
    if caller < 0.15 || callee < 0.15 {
        pbx.fail(&format!(
            "the mono recording should mix both phones: share of {CALLER_HZ} Hz {caller:.2}, of {CALLEE_HZ} Hz {callee:.2} (want ≥ 0.15 each)"
        ));
    }
    if row.get("channels").and_then(Value::as_u64).is_some_and(|c| c != 1) {
        pbx.fail(&format!("the row says {} channels\n{}", row["channels"], pretty(&row)));
    }
}

// ---------------------------------------------------------------------------------------
// 4. The MESSAGE path under attack
// ---------------------------------------------------------------------------------------

const BAN_AFTER: usize = 5;

#[test]
fn media_control_messages_are_authenticated_scoped_to_parties_and_validated() {
    let pbx = recording_pbx(
        Pbx::builder()
            .tenant("other", "other.test")
            .user_in("other", "101", &password("other-101")),
        &["--auth-ban-after", &BAN_AFTER.to_string()],
    );
    let call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let ctx = |call: &Call| call.report();

    // No credentials: 407 with a digest challenge of the tenant's realm, whatever the
    // session (nothing is revealed before authentication).
    for session in [sid.as_str(), "no-such-session"] {
        let ruri = format!("sip:{DOMAIN}");
        let r = call.caller.request(&|b| {
            call.caller.message_text(
                &ruri,
                &format!("<{ruri}>"),
                &unique("mc"),
                "f1",
                1,
                JSON_TYPE,
                &json_body("pause-audio-recording", session),
                None,
                None,
                b,
            )
        });
        expect_status(&pbx, &r, 407, &format!("a MESSAGE without credentials (session {session})"), &ctx(&call));
        let challenge = r.header("Proxy-Authenticate").unwrap_or("");
        if !challenge.starts_with("Digest") || !challenge.contains("realm=\"pbx.test\"") {
            pbx.fail(&format!("the 407 carries no Digest challenge of realm pbx.test: {challenge:?}\n{}", r.text));
        }
    }

    // A wrong password: challenged again (401/407), never applied.
    for _ in 0..2 {
        let ruri = format!("sip:{DOMAIN}");
        let sent = message(
            &call.caller,
            &ruri,
            &format!("<{ruri}>"),
            &unique("mc"),
            "f2",
            JSON_TYPE,
            &json_body("pause-audio-recording", &sid),
            None,
            Some("not-the-password"),
        );
        if !matches!(sent.last.status(), Some(401 | 407)) {
            pbx.fail(&format!("a wrong password got `{}`, expected a new challenge\n{}", sent.last.first_line, ctx(&call)));
        }
    }

    // Authenticated, but not a party: 103 of the same tenant, and 101 of another tenant
    // (the same extension number!) — both answered exactly like an unknown session.
    let unknown = json_message(&call.caller, "pause-audio-recording", "4242424242424");
    expect_status(&pbx, &unknown.last, 404, "an unknown session id", &ctx(&call));
    let u103 = Ua::new(pbx.sip_udp, "103", &password("103"), DOMAIN);
    let r103 = json_message(&u103, "pause-audio-recording", &sid);
    expect_status(&pbx, &r103.first, 407, "103 without credentials", &u103.report());
    expect_status(&pbx, &r103.last, 404, "a valid session id used by 103, not a party", &u103.report());
    let other = Ua::new(pbx.sip_udp, "101", &password("other-101"), "other.test");
    let r_other = json_message(&other, "pause-audio-recording", &sid);
    expect_status(&pbx, &r_other.first, 407, "101@other.test without credentials", &other.report());
    if !r_other.first.header("Proxy-Authenticate").unwrap_or("").contains("realm=\"other.test\"") {
        pbx.fail(&format!("the other tenant's user is challenged in its own realm\n{}", r_other.first.text));
    }
    expect_status(&pbx, &r_other.last, 404, "a valid session id used by 101 of another tenant", &other.report());
    for (r, who) in [(&r103.last, "103"), (&r_other.last, "101@other.test")] {
        if r.reason() != unknown.last.reason() {
            pbx.fail(&format!(
                "the 404 for {who} (`{}`) differs from the one for an unknown session (`{}`): it leaks that the \
                 session exists",
                r.first_line, unknown.last.first_line
            ));
        }
    }
    // The text form with the call's Call-ID and no To tag, by 103: not a party either.
    let ruri = format!("sip:102@{DOMAIN}");
    let r = message(&u103, &ruri, &format!("<{ruri}>"), &call.a.call_id, "f3", TEXT_TYPE, "pause-audio-recording", None, None);
    expect_status(&pbx, &r.last, 404, "the call's Call-ID without To tag used by 103", &u103.report());

    // Malformed: the vendor's example with Content-Length 21 for a longer body. Over UDP
    // the body is cut at 21 bytes (RFC 3261 §18.3), which is no JSON: 400.
    let ruri = format!("sip:{DOMAIN}");
    let body = json_body("pause-audio-recording", &sid);
    let truncated = message(&call.caller, &ruri, &format!("<{ruri}>"), &unique("mc"), "f4", JSON_TYPE, &body, Some(21), None);
    expect_status(&pbx, &truncated.last, 400, "a JSON body cut short by Content-Length: 21", &ctx(&call));
    // Unknown operation: 400 naming it.
    let bogus = json_message(&call.caller, "pause-everything", &sid);
    expect_status(&pbx, &bogus.last, 400, "an unknown operation", &ctx(&call));
    if !bogus.last.reason().contains("pause-everything") {
        pbx.fail(&format!("the 400's reason phrase does not name the unknown operation: `{}`", bogus.last.first_line));
    }
    // Missing session id: 400.
    let no_sid = message(
        &call.caller,
        &ruri,
        &format!("<{ruri}>"),
        &unique("mc"),
        "f5",
        JSON_TYPE,
        "{\"operation\": \"pause-audio-recording\"}",
        None,
        None,
    );
    expect_status(&pbx, &no_sid.last, 400, "a JSON body without session_id", &ctx(&call));
    // Another content type: 415.
    let plain = message(
        &call.caller,
        &ruri,
        &format!("<{ruri}>"),
        &unique("mc"),
        "f6",
        "text/plain",
        &body,
        None,
        None,
    );
    expect_status(&pbx, &plain.last, 415, "text/plain on the media-control path", &ctx(&call));

    // Nothing so far changed the recording, and nobody was told anything.
    let row = pbx.wait_recording("the live recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    let ev = events(&row);
    if s(&row, "status") != "recording" || ev.len() != 1 {
        pbx.fail(&format!("refused MESSAGEs changed the recording:\n{}", pretty(&row)));
    }
    for ua in [&call.caller, &call.callee] {
        if !ua.received_requests("INFO").is_empty() {
            pbx.fail(&format!("a state INFO was sent though nothing changed\n{}", ctx(&call)));
        }
    }

    // The vendor documentation's shape: Request-URI and To the other party, no To tag,
    // spaces in the JSON, RFC 2069 credentials (no qop: the nonce is then single-use),
    // and the true Content-Length. Accepted (a resume of a running recording: a no-op).
    let ruri_102 = format!("sip:102@{DOMAIN}");
    let vendor_body = format!("{{ \"operation\" : \"resume-audio-recording\", \"session_id\" : \"{sid}\"}}");
    let challenge = call.caller.request(&|b| {
        call.caller.message_text(&ruri_102, &format!("<{ruri_102}>"), &unique("mc"), "fv", 3, JSON_TYPE, &vendor_body, None, None, b)
    });
    expect_status(&pbx, &challenge, 407, "the vendor's example without credentials", &ctx(&call));
    let rfc2069 = rfc2069_credentials(&challenge, "101", &password("101"), &ruri_102);
    let vendor = call.caller.request(&|b| {
        call.caller.message_text(
            &ruri_102,
            &format!("<{ruri_102}>"),
            &unique("mc"),
            "fv",
            4,
            JSON_TYPE,
            &vendor_body,
            None,
            Some(&rfc2069),
            b,
        )
    });
    expect_status(&pbx, &vendor, 200, "the vendor's example with RFC 2069 credentials", &ctx(&call));
    // Its credentials again, with a pause body: the nonce was single-use.
    let replay = call.caller.request(&|b| {
        call.caller.message_text(
            &ruri_102,
            &format!("<{ruri_102}>"),
            &unique("mc"),
            "fv",
            5,
            JSON_TYPE,
            &json_body("pause-audio-recording", &sid),
            None,
            Some(&rfc2069),
            b,
        )
    });
    if replay.status() == Some(200) {
        pbx.fail(&format!("replayed RFC 2069 credentials (no nc) were accepted\n{}", ctx(&call)));
    }
    // Credentials computed for another Request-URI (the domain) sent to sip:102@…: refused.
    let challenge = call.caller.request(&|b| {
        call.caller.message_text(&ruri_102, &format!("<{ruri_102}>"), &unique("mc"), "fu", 1, JSON_TYPE, &vendor_body, None, None, b)
    });
    let wrong_uri = call
        .caller
        .credentials(&challenge, "MESSAGE", &ruri, None)
        .unwrap_or_else(|e| panic!("{e}"));
    let r = call.caller.request(&|b| {
        call.caller.message_text(
            &ruri_102,
            &format!("<{ruri_102}>"),
            &unique("mc"),
            "fu",
            2,
            JSON_TYPE,
            &json_body("pause-audio-recording", &sid),
            None,
            Some(&wrong_uri),
            b,
        )
    });
    if r.status() == Some(200) {
        pbx.fail(&format!(
            "credentials whose digest uri ({ruri}) is not the Request-URI ({ruri_102}) were accepted\n{}",
            ctx(&call)
        ));
    }

    // A valid request, then its credentials replayed (same nonce, nc, cnonce, response)
    // in a new transaction carrying another body: never accepted.
    let ok = json_message(&call.caller, "resume-audio-recording", &sid);
    expect_status(&pbx, &ok.last, 200, "an authenticated resume of a running recording (a no-op)", &ctx(&call));
    // (A success resets the address's count of failures.)
    let mut failures = 0usize;
    let auth = ok.auth.clone().expect("credentials were sent");
    let replay = call.caller.request(&|b| {
        call.caller.message_text(
            &ruri,
            &format!("<{ruri}>"),
            &unique("mc"),
            "f7",
            1,
            JSON_TYPE,
            &json_body("pause-audio-recording", &sid),
            None,
            Some(&auth),
            b,
        )
    });
    match replay.status() {
        Some(407) | Some(401) | Some(403) => {}
        _ => pbx.fail(&format!(
            "replayed credentials (same nonce and nc) were not refused: `{}`\n{}",
            replay.first_line,
            ctx(&call)
        )),
    }
    let row = pbx.wait_recording("the live recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&row, "status") != "recording" || events(&row).len() != 1 {
        pbx.fail(&format!("a replayed or no-op request changed the recording:\n{}", pretty(&row)));
    }

    // The ban: wrong passwords from this address until 403, then even right ones get 403.
    let mut banned_at = None;
    for attempt in 0..BAN_AFTER + 2 {
        let sent = message(
            &call.caller,
            &ruri,
            &format!("<{ruri}>"),
            &unique("mc"),
            "f8",
            JSON_TYPE,
            &json_body("pause-audio-recording", &sid),
            None,
            Some("not-the-password"),
        );
        failures += 1;
        match sent.last.status() {
            Some(403) => {
                banned_at = Some((attempt, failures));
                break;
            }
            Some(401 | 407) => {}
            _ => pbx.fail(&format!("a wrong password got `{}`\n{}", sent.last.first_line, ctx(&call))),
        }
    }
    let Some((_, n)) = banned_at else {
        pbx.fail(&format!(
            "{failures} wrong passwords from one address and no 403 (--auth-ban-after {BAN_AFTER})\n{}",
            ctx(&call)
        ))
    };
    if n > BAN_AFTER {
        pbx.fail(&format!("banned only after {n} consecutive failures, the threshold is {BAN_AFTER}"));
    }
    let after = json_message(&call.caller, "pause-audio-recording", &sid);
    expect_status(&pbx, &after.first, 403, "a banned address", &ctx(&call));

    let row = pbx.wait_recording("the live recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if events(&row).len() != 1 {
        pbx.fail(&format!("a refused request changed the recording:\n{}", pretty(&row)));
    }
    call.assert_no_message_relayed(&pbx);
    for ua in [&u103, &other] {
        assert!(ua.received_requests("MESSAGE").is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// 5. kill -9
// ---------------------------------------------------------------------------------------

#[test]
fn a_pbx_killed_mid_call_leaves_a_recovered_playable_recording() {
    let mut pbx = recording_pbx(Pbx::builder(), &[]);
    let call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let live = pbx.wait_recording("the live recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&live, "status") != "recording" {
        pbx.fail(&format!("status {:?} while the call runs\n{}", s(&live, "status"), pretty(&live)));
    }
    sleep_until(call.answered + Duration::from_secs(4));
    let killed = Instant::now();
    let old_log = pbx.crash_and_restart();
    let recorded_secs = killed.duration_since(call.answered).as_secs_f64();

    let row = finished_recording(&pbx, &sid);
    let context = format!(
        "killed {recorded_secs:.2} s after the answer\n{}\n--- the killed server's log (tail) ---\n{}\n{}",
        pretty(&row),
        hark_e2e::process::tail(&old_log, 60),
        pbx.logs()
    );
    if s(&row, "status") != "recovered" {
        pbx.fail(&format!("the row of a recording cut by SIGKILL is not `recovered`: {context}"));
    }
    if !events(&row).iter().any(|e| e.0 == "recovered") {
        pbx.fail(&format!("no `recovered` event: {context}"));
    }
    let path = s(&row, "path");
    let (left, right) = stereo(&pbx, &path);
    let file_secs = left.duration_secs();
    if file_secs < recorded_secs - 1.5 || file_secs > recorded_secs + 0.5 {
        pbx.fail(&format!(
            "the recovered file holds {file_secs:.2} s; the call had run {recorded_secs:.2} s (at most 1.5 s may \
             be lost): {context}"
        ));
    }
    let duration_ms = row.get("duration_ms").and_then(Value::as_f64).unwrap_or(-1.0);
    if (duration_ms / 1000.0 - file_secs).abs() > 0.1 {
        pbx.fail(&format!("duration_ms {duration_ms} does not match the repaired file's {file_secs:.3} s: {context}"));
    }
    check_channels(&pbx, &left, &right, &context);
    // The call died with the PBX before its CDR was written: the restart writes one from
    // the recording (answered, ended by the PBX), and links the two.
    let cdr = pbx.wait_cdr("the crashed call's CDR", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&cdr, "disposition") != "answered" || s(&cdr, "hangup_by") != "pbx" || s(&cdr, "hangup_cause") != "pbx-restart" {
        pbx.fail(&format!("the crashed call's CDR: {}\n{context}", pretty(&cdr)));
    }
    let row = finished_recording(&pbx, &sid);
    if row.get("cdr_id") != cdr.get("id") {
        pbx.fail(&format!("the recovered recording is not linked to the CDR {:?}: {}", cdr.get("id"), pretty(&row)));
    }
    drop(call);

    // The restarted PBX records the next call as usual.
    let mut next = Call::start(&pbx, "101", "102");
    sleep_until(next.answered + Duration::from_secs(2));
    next.hang_up(&pbx);
    let sid = next.session_id();
    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
}

/// Killed while paused: the row is `recovered` too (not left `paused`), the file holds
/// the audio up to the pause, and the pause event is kept.
#[test]
fn a_pbx_killed_while_the_recording_is_paused_recovers_it_too() {
    let mut pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    sleep_until(call.answered + Duration::from_secs(2));
    let r = call.caller.in_dialog(&mut call.a, "MESSAGE", Some(TEXT_TYPE), "pause-audio-recording");
    expect_status(&pbx, &r, 200, "pause", &call.report());
    let paused_at = call.answered.elapsed().as_secs_f64();
    let row = pbx.wait_recording("the paused recording", ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&row, "status") != "paused" {
        pbx.fail(&format!("status {:?} while paused\n{}", s(&row, "status"), pretty(&row)));
    }
    sleep_until(call.answered + Duration::from_millis(3500));
    let old_log = pbx.crash_and_restart();

    let row = finished_recording(&pbx, &sid);
    let context = format!(
        "paused {paused_at:.2} s after the answer, then killed\n{}\n--- the killed server's log (tail) ---\n{}\n{}",
        pretty(&row),
        hark_e2e::process::tail(&old_log, 60),
        pbx.logs()
    );
    if s(&row, "status") != "recovered" {
        pbx.fail(&format!("the row of a paused recording cut by SIGKILL is not `recovered`: {context}"));
    }
    let kinds: Vec<String> = events(&row).into_iter().map(|e| e.0).collect();
    if !(kinds.starts_with(&["start".to_string(), "pause".to_string()]) && kinds.contains(&"recovered".to_string())) {
        pbx.fail(&format!("events {kinds:?}: expected start, pause, …, recovered: {context}"));
    }
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let file_secs = left.duration_secs();
    if file_secs < paused_at - 1.5 || file_secs > paused_at + LENGTH_TOLERANCE {
        pbx.fail(&format!("the recovered file holds {file_secs:.2} s, the audio before the pause was {paused_at:.2} s: {context}"));
    }
    check_channels(&pbx, &left, &right, &context);
}

// ---------------------------------------------------------------------------------------
// 6. X-Recording-State and the state INFO at a sipp callee
// ---------------------------------------------------------------------------------------

/// A sipp callee (uas_record_info.xml) fails unless its INVITE says `X-Recording-State:
/// audio` and it then gets two state INFOs; it logs their bodies. The caller (the
/// test's UA) pauses and resumes in dialog, and answers the first state INFO with 415:
/// it must get no second one.
#[test]
fn state_infos_reach_a_sipp_callee_and_stop_for_a_phone_that_refuses_them() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let port = register_sipp_callee(&pbx, "102");
    let mut uas = sipp_callee("uas_record_info.xml", &pbx, "102", port, hark_e2e::free_port())
        .timeout(Duration::from_secs(40))
        .spawn();
    let caller = Ua::new(pbx.sip_udp, "101", &password("101"), DOMAIN);
    caller.set_info_answer(415);
    let mut a = match caller.call("102", hark_e2e::free_port()) {
        Ok(d) => d,
        Err(r) => pbx.fail(&format!("the call failed: {}\n{}\n{}", r.first_line, caller.report(), uas.messages())),
    };
    let sid = a.session_id();
    if a.recording_state().as_deref() != Some("audio") {
        pbx.fail(&format!("X-Recording-State of the caller's 200 OK: {:?}\n{}", a.recording_state(), caller.report()));
    }
    std::thread::sleep(Duration::from_millis(1000));
    let r = caller.in_dialog(&mut a, "MESSAGE", Some(TEXT_TYPE), "pause-audio-recording");
    expect_status(&pbx, &r, 200, "in-dialog pause", &caller.report());
    let info1 = uas.wait_logged("info1", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1000));
    let r = caller.in_dialog(&mut a, "MESSAGE", Some(TEXT_TYPE), "resume-audio-recording");
    expect_status(&pbx, &r, 200, "in-dialog resume", &caller.report());
    let info2 = uas.wait_logged("info2", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    caller.bye(&mut a);
    let uas = uas.wait(Duration::from_secs(10));
    if !uas.success() {
        pbx.fail(&format!("the sipp callee's scenario failed\n{}\n{}", uas.report(), caller.report()));
    }
    let context = format!("{}\n{}", uas.report(), caller.report());
    assert_eq!(uas.logged("sid").as_deref(), Some(sid.as_str()), "X-Session-Id differs between legs\n{context}");
    assert_eq!(uas.logged("recstate").as_deref(), Some("audio"), "X-Recording-State of the callee's INVITE\n{context}");
    for (info, want) in [(info1, "paused"), (info2, "recording")] {
        let body: Value = info
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or_else(|| pbx.fail(&format!("a state INFO body is not JSON: {info:?}\n{context}")));
        if s(&body, "audio") != want || s(&body, "session_id") != sid || s(&body, "video") != "off" {
            pbx.fail(&format!("state INFO body {body}, expected audio {want:?}, session_id {sid}, video off\n{context}"));
        }
    }
    // The caller refused the first INFO with 415: it is not sent the second.
    let infos = caller.received_requests("INFO");
    if infos.len() != 1 {
        pbx.fail(&format!(
            "a phone that answered the state INFO with 415 received {} INFOs (expected only the first)\n{context}",
            infos.len()
        ));
    }
    if infos[0].body.contains("recording") || !infos[0].body.contains("paused") {
        pbx.fail(&format!("the caller's INFO: {}", infos[0].text));
    }
    let row = finished_recording(&pbx, &sid);
    let kinds: Vec<String> = events(&row).into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["start", "pause", "resume", "stop"], "{}", pretty(&row));
    if uas.received().iter().any(|m| m.starts_with("MESSAGE")) {
        pbx.fail(&format!("the sipp callee received a MESSAGE\n{context}"));
    }
}

/// A phone answering the state INFO with 469 (Bad Info Package) is not sent more
/// either. The call then ends while paused: the recording is completed, the audio after
/// the second pause is not in it.
#[test]
fn a_phone_answering_469_to_the_state_info_is_not_sent_more() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    call.callee.set_info_answer(469);
    let sid = call.session_id();
    let t0 = call.answered;
    let mut at = Vec::new();
    for (i, op) in ["pause-audio-recording", "resume-audio-recording", "pause-audio-recording"].into_iter().enumerate() {
        sleep_until(t0 + Duration::from_millis(1000 * (i as u64 + 1)));
        let sent = Instant::now();
        let r = call.caller.in_dialog(&mut call.a, "MESSAGE", Some(TEXT_TYPE), op);
        expect_status(&pbx, &r, 200, op, &call.report());
        at.push((sent + sent.elapsed() / 2).duration_since(t0).as_secs_f64());
    }
    sleep_until(t0 + Duration::from_secs(5));
    call.hang_up(&pbx);
    let context = call.report();
    check_state_infos(&pbx, &call.caller, "caller", &sid, &["paused", "recording", "paused"], &context);
    check_state_infos(&pbx, &call.callee, "callee (469 to the first)", &sid, &["paused"], &context);
    call.assert_no_message_relayed(&pbx);

    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let kinds: Vec<String> = events(&row).into_iter().map(|e| e.0).collect();
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let file_secs = left.duration_secs();
    let expected = at[0] + (at[2] - at[1]);
    let context = format!("controls at {at:?} s, file {file_secs:.2} s, expected {expected:.2} s\n{}", pretty(&row));
    if kinds != ["start", "pause", "resume", "pause", "stop"] {
        pbx.fail(&format!("events {kinds:?}: {context}"));
    }
    if (file_secs - expected).abs() > LENGTH_TOLERANCE {
        pbx.fail(&format!("a call that ends paused keeps only the audio before the pauses: {context}"));
    }
    check_channels(&pbx, &left, &right, &context);
}

/// Ten pause/resume requests back to back (no wait between them) from both phones: every
/// one answered 200, the events alternate in order, the row's final state is the last
/// request's, and the file is still as long as the time spent recording.
#[test]
fn rapid_pause_resume_toggles_stay_consistent() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    sleep_until(call.answered + Duration::from_secs(1));
    let t_first = call.answered.elapsed().as_secs_f64();
    for i in 0..10 {
        let op = if i % 2 == 0 { "pause-audio-recording" } else { "resume-audio-recording" };
        let r = if i % 3 == 0 {
            call.callee.in_dialog(&mut call.b, "MESSAGE", Some(TEXT_TYPE), op)
        } else {
            call.caller.in_dialog(&mut call.a, "MESSAGE", Some(TEXT_TYPE), op)
        };
        expect_status(&pbx, &r, 200, op, &call.report());
    }
    let t_last = call.answered.elapsed().as_secs_f64();
    sleep_until(call.answered + Duration::from_secs(3));
    let ended = call.hang_up(&pbx);
    let call_secs = ended.duration_since(call.answered).as_secs_f64();
    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let kinds: Vec<String> = events(&row).into_iter().map(|e| e.0).collect();
    let mut want = vec!["start".to_string()];
    for _ in 0..5 {
        want.push("pause".into());
        want.push("resume".into());
    }
    want.push("stop".into());
    if kinds != want {
        pbx.fail(&format!("events {kinds:?}, expected {want:?}\n{}", pretty(&row)));
    }
    let (left, right) = stereo(&pbx, &s(&row, "path"));
    let file_secs = left.duration_secs();
    // At most the toggling time is missing.
    let lost = call_secs - file_secs;
    if lost < -0.3 || lost > (t_last - t_first) + LENGTH_TOLERANCE {
        pbx.fail(&format!(
            "call {call_secs:.2} s, file {file_secs:.2} s, the toggles took {:.2} s\n{}",
            t_last - t_first,
            pretty(&row)
        ));
    }
    // Five cuts in a short file: allow a spoilt window at each.
    check_tones(&pbx, &left, &right, (CALLER_HZ, CALLEE_HZ), &[], 0.7, &format!("{}\n{}", call.media_timeline(), pretty(&row)));
    for (ua, who) in [(&call.caller, "caller"), (&call.callee, "callee")] {
        let audio: Vec<String> = state_infos(ua).iter().map(|(_, b)| s(b, "audio")).collect();
        if audio.len() != 10 || audio.last().map(String::as_str) != Some("recording") {
            pbx.fail(&format!("the {who} got state INFOs {audio:?}, expected 10 ending in \"recording\"\n{}", call.report()));
        }
    }
}

/// Phones that do not implement INFO answer it 405 or 501. That only refuses the
/// request (RFC 5057): the call goes on until the caller hangs up, and, since neither
/// answer is 415/469, both phones are still sent the next state change.
#[test]
fn phones_answering_405_or_501_to_the_state_info_keep_their_call() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    call.caller.set_info_answer(405);
    call.callee.set_info_answer(501);
    let sid = call.session_id();
    for op in ["pause-audio-recording", "resume-audio-recording"] {
        std::thread::sleep(Duration::from_millis(700));
        let r = call.caller.in_dialog(&mut call.a, "MESSAGE", Some(TEXT_TYPE), op);
        expect_status(&pbx, &r, 200, op, &call.report());
    }
    std::thread::sleep(Duration::from_millis(1500));
    let context = call.report();
    if !call.callee.received_requests("BYE").is_empty() || !call.caller.received_requests("BYE").is_empty() {
        pbx.fail(&format!("the PBX hung up a call because a phone refused a state INFO\n{context}"));
    }
    call.hang_up(&pbx);
    if call.callee.wait_requests("BYE", 1, Duration::from_secs(5)).is_none() {
        pbx.fail(&format!("the caller's BYE did not reach the callee\n{}", call.report()));
    }
    let context = call.report();
    check_state_infos(&pbx, &call.caller, "caller (405)", &sid, &["paused", "recording"], &context);
    check_state_infos(&pbx, &call.callee, "callee (501)", &sid, &["paused", "recording"], &context);
    let row = finished_recording(&pbx, &sid);
    check_row(&pbx, &row, &sid, "completed");
    let cdr = pbx.wait_cdr(&format!("session {sid}"), ROW_TIMEOUT, |r| s(r, "call_session_id") == sid);
    if s(&cdr, "hangup_by") != "caller" {
        pbx.fail(&format!("hangup_by {:?}, the caller hung up\n{}", s(&cdr, "hangup_by"), pretty(&cdr)));
    }
}

/// A failed authentication counts against the address; a success from the same address
/// must not wipe the count for everyone, or one valid account (or a phone of the same
/// office NAT) lets a brute-force of another extension's password go on forever.
/// Here 102's password is guessed wrongly 3 × the ban threshold, each guess followed by
/// a correct request of 101 from the same address: the guesses must end in 403.
#[test]
fn successes_of_one_account_do_not_reset_the_ban_count_of_another() {
    let pbx = recording_pbx(Pbx::builder(), &["--auth-ban-after", "3"]);
    let call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let guesser = Ua::new(pbx.sip_udp, "102", &password("102"), DOMAIN);
    let ruri = format!("sip:{DOMAIN}");
    let mut answers = Vec::new();
    for i in 0..9 {
        let guess = message(
            &guesser,
            &ruri,
            &format!("<{ruri}>"),
            &unique("bf"),
            "g",
            JSON_TYPE,
            &json_body("resume-audio-recording", &sid),
            None,
            Some(&format!("guess-{i}")),
        );
        answers.push(guess.last.first_line.clone());
        if guess.last.status() == Some(403) {
            return;
        }
        // The attacker's own, valid account: a harmless no-op request.
        let ok = json_message(&call.caller, "resume-audio-recording", &sid);
        expect_status(&pbx, &ok.last, 200, "a valid request of 101", &call.caller.report());
    }
    pbx.fail(&format!(
        "9 wrong passwords for 102 from one address (--auth-ban-after 3), each followed by a valid request of 101, \
         and no 403: {answers:?}\n{}",
        guesser.report()
    ));
}

/// What senders do differently and harmlessly is accepted (a charset parameter, another
/// letter case of the media type, a numeric session id); a Content-Length longer than the
/// UDP body is 400; an unknown operation in dialog is 400 naming it. A text/plain MESSAGE
/// in the dialog is a chat message, not a control: it IS relayed to the other phone
/// (which shows that the "never relayed" checks of the other tests can fail).
#[test]
fn harmless_variations_are_accepted_and_chat_messages_still_cross() {
    let pbx = recording_pbx(Pbx::builder(), &[]);
    let mut call = Call::start(&pbx, "101", "102");
    let sid = call.session_id();
    let ruri = format!("sip:{DOMAIN}");
    let cases = [
        ("application/x-media-control+json;charset=utf-8", json_body("pause-audio-recording", &sid), None, 200),
        ("Application/X-Media-Control+JSON", json_body("resume-audio-recording", &sid), None, 200),
        (JSON_TYPE, format!("{{\"operation\": \"pause-audio-recording\", \"session_id\": {sid}}}"), None, 200),
        (JSON_TYPE, json_body("resume-audio-recording", &sid), Some(200), 400),
    ];
    for (ct, body, cl, want) in cases {
        let r = message(&call.caller, &ruri, &format!("<{ruri}>"), &unique("mc"), "f", ct, &body, cl, None);
        expect_status(&pbx, &r.last, want, &format!("Content-Type {ct}, Content-Length {cl:?}, body {body}"), &call.report());
    }
    let r = call.caller.in_dialog(&mut call.a, "MESSAGE", Some(TEXT_TYPE), "pause-everything");
    expect_status(&pbx, &r, 400, "an unknown operation in dialog", &call.report());
    if !r.reason().contains("pause-everything") {
        pbx.fail(&format!("the 400's reason phrase does not name the unknown operation: `{}`", r.first_line));
    }
    let r = call.caller.in_dialog(&mut call.a, "MESSAGE", Some("text/plain"), "hello from 101");
    expect_status(&pbx, &r, 200, "a chat MESSAGE in dialog", &call.report());
    let chat = call.callee.wait_requests("MESSAGE", 1, Duration::from_secs(5));
    match chat.as_deref() {
        Some([m]) if m.body == "hello from 101" => {}
        other => pbx.fail(&format!("the callee should have received the chat MESSAGE, got {other:?}\n{}", call.report())),
    }
    call.hang_up(&pbx);
    let row = finished_recording(&pbx, &sid);
    let kinds: Vec<String> = events(&row).into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["start", "pause", "resume", "pause", "stop"], "{}", pretty(&row));
    if call.caller.received_requests("MESSAGE").len() + call.callee.received_requests("MESSAGE").len() != 1 {
        pbx.fail(&format!("only the chat MESSAGE may cross\n{}", call.report()));
    }
}
