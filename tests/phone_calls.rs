//! `hark phone` (issue 6) end to end with real peers, audio checked by content
//! (Goertzel at each side's tone, never file sizes):
//! - phone → PBX → phone: both hear the other's tone, the PBX names the session, and
//!   RTCP reports cross the relay both ways (loss, round-trip time);
//! - phone → baresip directly (no PBX) and through `hark pbx serve`;
//! - `hark phone answer` takes a call from linphonec through the PBX;
//! - clear one-line errors: wrong password, unreachable server, unknown extension.

use std::path::Path;
use std::time::Duration;

use hark_e2e::audio::analyse_file;
use hark_e2e::baresip::{Baresip, BaresipAccount, BaresipOptions};
use hark_e2e::calls::{CALLEE_HZ, CALLER_HZ, CallPbx, Tones, password};
use hark_e2e::linphone::{LinphoneAccount, Linphonec};
use hark_e2e::phone::{Phone, account_args};
use hark_e2e::{DOMAIN, Pbx, free_port};

const REGISTER: Duration = Duration::from_secs(20);
const ANSWER: Duration = Duration::from_secs(30);
const CALL_SECS: &str = "5";
const EXIT: Duration = Duration::from_secs(40);
const SKIP_SECS: f64 = 0.5;
const FRACTION: f64 = 0.8;

fn account(pbx: &Pbx, ext: &str) -> Vec<String> {
    account_args(pbx.sip_udp, ext, &password(ext), DOMAIN)
}

fn assert_hears(path: &Path, hz: f64, other: f64, min_secs: f64, who: &str, ctx: impl Fn() -> String) {
    let report = analyse_file(path, hz, other, SKIP_SECS);
    if let Err(e) = report.check(min_secs, FRACTION) {
        panic!("{who} does not hear the {hz} Hz tone: {e}\n{}", ctx());
    }
}

#[test]
fn phone_calls_phone_through_the_pbx_and_each_hears_the_other() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let (heard_by_caller, heard_by_callee) = (tones.out("caller-heard.wav"), tones.out("callee-heard.wav"));
    let (callee_play, callee_rec) = (tones.callee().display().to_string(), heard_by_callee.display().to_string());
    let mut callee = Phone::answer(account(&pbx, "102"), &["--play", &callee_play, "--record", &callee_rec]);
    callee.wait_event("registered", REGISTER);
    let (caller_play, caller_rec) = (tones.caller().display().to_string(), heard_by_caller.display().to_string());
    let mut caller = Phone::call(
        account(&pbx, "101"),
        "102",
        &["--play", &caller_play, "--record", &caller_rec, "--duration", "8"],
    );
    caller.wait_event("answered", ANSWER);
    let sid = caller.wait_event("session-id", ANSWER);
    let callee_sid = callee.wait_event("session-id", ANSWER);
    let id_of = |line: &str| line.split("id=").nth(1).map(str::to_owned);
    assert_eq!(id_of(&sid), id_of(&callee_sid), "both sides must be told the same X-Session-Id");
    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    let ctx = || format!("{}\n{}\n{}", caller.report(), callee.report(), pbx.logs());
    assert_hears(&heard_by_caller, CALLEE_HZ, CALLER_HZ, 3.0, "the caller", ctx);
    assert_hears(&heard_by_callee, CALLER_HZ, CALLEE_HZ, 3.0, "the callee", ctx);
    let ended = callee.events().into_iter().find(|e| e.starts_with("ended")).unwrap_or_default();
    assert!(ended.contains("remote hangup"), "the callee should see the caller hang up: {ended}\n{}", ctx());
    // RTCP through the PBX's relay: each phone got the other's reports about its own
    // stream. A report that echoes an SR times the round trip: whichever phone sent its
    // SR first gets one (both only tie within a millisecond, and then the next reports
    // of an 8 s call settle it).
    let mut rtts = Vec::new();
    for (who, phone) in [("caller", &caller), ("callee", &callee)] {
        let stopped = phone.events().into_iter().find(|e| e.starts_with("media-stopped")).unwrap_or_default();
        let field = |name: &str| stopped.split(&format!("{name}=")).nth(1).and_then(|v| v.split_whitespace().next()).map(str::to_owned);
        let reports: u64 = field("rtcp-reports").and_then(|v| v.parse().ok()).unwrap_or(0);
        assert!(reports >= 1, "the {who} got no RTCP report about its stream: {stopped}\n{}", ctx());
        assert_eq!(field("peer-lost").as_deref(), Some("0"), "loopback loses nothing: {stopped}");
        rtts.extend(field("rtt-ms").and_then(|v| v.parse::<u64>().ok()));
    }
    assert!(!rtts.is_empty() && rtts.iter().all(|ms| *ms < 1000), "no round trip from RTCP: {rtts:?}\n{}", ctx());
}

fn baresip_callee(pbx: Option<&Pbx>, tone: std::path::PathBuf) -> Baresip {
    Baresip::start_with(
        BaresipAccount {
            user: "102".into(),
            password: password("102"),
            domain: DOMAIN.into(),
            registrar: pbx.map_or_else(|| ([127, 0, 0, 1], 9).into(), |p| p.sip_udp),
            transport: "udp".into(),
            regint: 600,
        },
        BaresipOptions { auto_answer: true, play: Some(tone), record: true, codecs: None, no_registrar: pbx.is_none() },
    )
}

fn check_baresip_call(b: &Baresip, caller: &mut Phone, heard: &Path, ctx: impl Fn() -> String) {
    caller.wait_event("answered", ANSWER);
    caller.assert_success(EXIT);
    assert_hears(heard, CALLEE_HZ, CALLER_HZ, 3.0, "hark phone", &ctx);
    assert!(
        b.wait_event("CALL_CLOSED", 1, Duration::from_secs(15)).is_some(),
        "baresip did not see the call end\n{}",
        ctx()
    );
    let dec = b.received_audio().unwrap_or_else(|| panic!("baresip recorded nothing\n{}", ctx()));
    assert_hears(&dec, CALLER_HZ, CALLEE_HZ, 3.0, "baresip", &ctx);
}

#[test]
fn phone_calls_baresip_directly_and_each_hears_the_other() {
    let tones = Tones::new();
    let b = baresip_callee(None, tones.callee());
    let heard = tones.out("phone-heard.wav");
    let (play, rec) = (tones.caller().display().to_string(), heard.display().to_string());
    let server = format!("127.0.0.1:{}", b.sip_port).parse().unwrap();
    let mut caller = Phone::call(
        account_args(server, "101", "unused", "127.0.0.1"),
        &b.direct_uri(),
        &["--no-register", "--play", &play, "--record", &rec, "--duration", CALL_SECS],
    );
    check_baresip_call(&b, &mut caller, &heard, || format!("{}\n{}", caller_report(&heard), b.report()));
    drop(caller);
}

fn caller_report(heard: &Path) -> String {
    format!("(phone recording {})", heard.display())
}

#[test]
fn phone_calls_baresip_through_the_pbx_and_each_hears_the_other() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let b = baresip_callee(Some(&pbx), tones.callee());
    assert!(b.wait_register_oks(1, REGISTER), "baresip did not register\n{}\n{}", b.report(), pbx.logs());
    let heard = tones.out("phone-heard.wav");
    let (play, rec) = (tones.caller().display().to_string(), heard.display().to_string());
    let mut caller =
        Phone::call(account(&pbx, "101"), "102", &["--play", &play, "--record", &rec, "--duration", CALL_SECS]);
    caller.wait_event("session-id", ANSWER);
    check_baresip_call(&b, &mut caller, &heard, || format!("{}\n{}", b.report(), pbx.logs()));
}

#[test]
fn phone_answers_a_call_from_linphonec_and_each_hears_the_other() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let heard_by_phone = tones.out("phone-heard.wav");
    let heard_by_linphone = tones.out("linphonec-heard.wav");
    let (play, rec) = (tones.callee().display().to_string(), heard_by_phone.display().to_string());
    let mut phone = Phone::answer(account(&pbx, "102"), &["--play", &play, "--record", &rec, "--duration", CALL_SECS]);
    phone.wait_event("registered", REGISTER);
    let mut l = Linphonec::start(LinphoneAccount {
        user: "101".into(),
        password: password("101"),
        domain: DOMAIN.into(),
        registrar: pbx.sip_udp,
        transport: "udp".into(),
        expires: 600,
        algorithm: None,
    });
    l.use_files(&tones.caller(), &heard_by_linphone);
    assert!(l.wait_register_oks(1, REGISTER), "linphonec did not register\n{}\n{}", l.report(), pbx.logs());
    // linphonec resolves the Request-URI's host itself (no outbound proxy for calls):
    // the PBX's address reaches its default tenant.
    l.command(&format!("call sip:102@{}", pbx.sip_udp));
    if phone.try_wait_event("incoming", ANSWER).is_none() {
        panic!("no call reached hark phone\n{}\n{}\n{}", phone.report(), l.report(), pbx.logs());
    }
    phone.wait_event("answered", ANSWER);
    phone.wait_event("session-id", ANSWER);
    phone.assert_success(EXIT);
    let ctx = || format!("{}\n{}\n{}", phone.report(), l.report(), pbx.logs());
    assert!(l.wait_call_state("LinphoneCallReleased", 1, Duration::from_secs(15)), "linphonec did not end the call\n{}", ctx());
    assert_hears(&heard_by_phone, CALLER_HZ, CALLEE_HZ, 3.0, "hark phone answer", ctx);
    assert_hears(&heard_by_linphone, CALLEE_HZ, CALLER_HZ, 3.0, "linphonec", ctx);
}

fn error_line(phone: &mut Phone) -> String {
    let status = phone.wait_exit(EXIT);
    assert!(!status.success(), "hark phone should fail\n{}", phone.report());
    let stderr = phone.stderr();
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line expected\n{stderr}");
    errors[0].to_owned()
}

#[test]
fn phone_errors_are_one_clear_line_and_a_failing_exit() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let mut wrong = Phone::call(account_args(pbx.sip_udp, "101", "not-the-password", DOMAIN), "102", &[]);
    let line = error_line(&mut wrong);
    assert!(line.contains("wrong user or password"), "{line}");

    let nowhere = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut unreachable =
        Phone::call(account_args(nowhere, "101", "pw", DOMAIN), "102", &["--register-timeout", "2"]);
    let started = std::time::Instant::now();
    let line = error_line(&mut unreachable);
    assert!(line.contains("no answer from server"), "{line}");
    assert!(started.elapsed() < Duration::from_secs(20), "the wait must be bounded: {:?}", started.elapsed());

    let mut unknown = Phone::call(account(&pbx, "101"), "199", &["--answer-timeout", "10"]);
    let line = error_line(&mut unknown);
    assert!(line.contains("call to 199 failed: 404"), "{line}\n{}", unknown.report());
}

/// Two phones through the PBX with `extra` flags on both; returns (caller, callee) and
/// checks each hears the other's tone.
fn phone_to_phone(extra: &[&str], min_secs: f64) -> (Phone, Phone, CallPbx, Tones) {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let (heard_by_caller, heard_by_callee) = (tones.out("caller-heard.wav"), tones.out("callee-heard.wav"));
    let (callee_play, callee_rec) = (tones.callee().display().to_string(), heard_by_callee.display().to_string());
    let mut args = vec!["--play", &callee_play, "--record", &callee_rec];
    args.extend_from_slice(extra);
    let mut callee = Phone::answer(account(&pbx, "102"), &args);
    callee.wait_event("registered", REGISTER);
    let (caller_play, caller_rec) = (tones.caller().display().to_string(), heard_by_caller.display().to_string());
    let mut args = vec!["--play", &caller_play, "--record", &caller_rec, "--duration", CALL_SECS];
    args.extend_from_slice(extra);
    let mut caller = Phone::call(account(&pbx, "101"), "102", &args);
    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    let ctx = || format!("{}\n{}\n{}", caller.report(), callee.report(), pbx.logs());
    assert_hears(&heard_by_caller, CALLEE_HZ, CALLER_HZ, min_secs, "the caller", ctx);
    assert_hears(&heard_by_callee, CALLER_HZ, CALLEE_HZ, min_secs, "the callee", ctx);
    (caller, callee, pbx, tones)
}

#[test]
fn phones_talk_opus_through_the_pbx() {
    let (caller, callee, _pbx, _tones) = phone_to_phone(&["--codecs", "opus"], 3.0);
    for p in [&caller, &callee] {
        let media = p.events().into_iter().find(|e| e.starts_with("media ")).unwrap_or_default();
        assert!(media.contains("codec=Opus"), "{media}\n{}", p.report());
    }
}

#[test]
fn phones_talk_g722_through_the_pbx() {
    let (caller, callee, _pbx, _tones) = phone_to_phone(&["--codecs", "g722"], 3.0);
    for p in [&caller, &callee] {
        let media = p.events().into_iter().find(|e| e.starts_with("media ")).unwrap_or_default();
        assert!(media.contains("codec=G722"), "{media}\n{}", p.report());
    }
}

#[test]
fn the_local_recording_is_stereo_mic_left_remote_right_without_the_paused_part() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let local = tones.out("local-recording.wav");
    let callee_play = tones.callee().display().to_string();
    let mut callee = Phone::answer(account(&pbx, "102"), &["--play", &callee_play]);
    callee.wait_event("registered", REGISTER);
    let (caller_play, rec) = (tones.caller().display().to_string(), local.display().to_string());
    let library = tones.out("library.db").display().to_string();
    let mut caller = Phone::call(
        account(&pbx, "101"),
        "102",
        &["--play", &caller_play, "--record-call", &rec, "--duration", "6", "--pause-at", "2", "--resume-at", "4", "--library", &library],
    );
    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    let ctx = || format!("{}\n{}", caller.report(), callee.report());
    let (_, channels) = hark_e2e::audio::read_wav_channels(&local).unwrap_or_else(|e| panic!("{e}\n{}", ctx()));
    assert_eq!(channels.len(), 2, "a stereo file");
    let secs = channels[0].duration_secs();
    assert!((3.3..=4.7).contains(&secs), "6 s call with 2 s paused: the file holds {secs:.2} s\n{}", ctx());
    let left = hark_e2e::audio::analyse(&channels[0], CALLER_HZ, CALLEE_HZ, SKIP_SECS);
    left.check(2.5, FRACTION).unwrap_or_else(|e| panic!("left (microphone) is not {CALLER_HZ} Hz: {e}\n{}", ctx()));
    let right = hark_e2e::audio::analyse(&channels[1], CALLEE_HZ, CALLER_HZ, SKIP_SECS);
    right.check(2.5, 0.7).unwrap_or_else(|e| panic!("right (remote) is not {CALLEE_HZ} Hz: {e}\n{}", ctx()));

    // The library has the call and the recording with its pause and resume marks.
    let list = |what: &str| -> serde_json::Value {
        let out = std::process::Command::new(hark_e2e::hark_bin())
            .args(["phone", what, "--library", &library, "--json"])
            .output()
            .expect("running hark phone");
        assert!(out.status.success(), "hark phone {what}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("hark phone {what} --json: {e}"))
    };
    let history = list("history");
    let call = &history[0];
    assert!(
        history.as_array().map(Vec::len) == Some(1)
            && call["direction"] == "outgoing"
            && call["remote"] == "102"
            && call["answered_at"].is_i64()
            && call["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "history: {history:#}"
    );
    let recs = list("recordings");
    let r = &recs[0];
    let marks: Vec<(u64, bool)> = r["marks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (m["offset_ms"].as_u64().unwrap_or(0), m["paused"].as_bool().unwrap_or(false)))
        .collect();
    let dur = r["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    assert!(
        r["call_id"] == call["id"] && marks.len() == 2 && marks[0].1 && !marks[1].1 && (dur - secs).abs() < 0.2,
        "the recording in the library (file {secs:.2} s): {recs:#}"
    );
    assert!((1.5..=2.6).contains(&(marks[0].0 as f64 / 1000.0)), "the pause mark at about 2 s into the file: {marks:?}");
}

#[test]
fn hold_and_resume_reach_the_other_phone_through_the_pbx() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let mut callee = Phone::answer(account(&pbx, "102"), &[]);
    callee.wait_event("registered", REGISTER);
    let mut caller =
        Phone::call(account(&pbx, "101"), "102", &["--duration", "5", "--hold-at", "1.5", "--unhold-at", "3"]);
    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    let holds = |p: &Phone| p.events().into_iter().filter(|e| e.starts_with("hold ")).collect::<Vec<_>>();
    let ctx = || format!("{}\n{}\n{}", caller.report(), callee.report(), pbx.logs());
    let (ours, theirs) = (holds(&caller), holds(&callee));
    assert!(
        ours.len() == 2 && ours[0].contains("local=true") && ours[1].contains("local=false"),
        "caller: {ours:?}\n{}",
        ctx()
    );
    assert!(
        theirs.len() == 2 && theirs[0].contains("remote=true") && theirs[1].contains("remote=false"),
        "callee: {theirs:?}\n{}",
        ctx()
    );
}

#[test]
fn phones_register_and_call_over_tcp() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let heard = tones.out("callee-heard.wav");
    let tcp = |ext: &str| {
        let mut a = account_args(pbx.sip_tcp, ext, &password(ext), DOMAIN);
        a.extend(["--transport".to_string(), "tcp".to_string()]);
        a
    };
    let (callee_rec, caller_play) = (heard.display().to_string(), tones.caller().display().to_string());
    let mut callee = Phone::answer(tcp("102"), &["--record", &callee_rec]);
    callee.wait_event("registered", REGISTER);
    let mut caller = Phone::call(tcp("101"), "102", &["--play", &caller_play, "--duration", CALL_SECS]);
    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    let ctx = || format!("{}\n{}\n{}", caller.report(), callee.report(), pbx.logs());
    assert!(pbx.logs().contains("<<< from TCP:"), "signalling must use TCP\n{}", ctx());
    assert_hears(&heard, CALLER_HZ, CALLEE_HZ, 3.0, "the callee", ctx);
}

#[test]
fn a_pause_that_cannot_be_sent_is_reported_with_its_reason_and_fails_the_exit() {
    // Straight to baresip: no PBX, so no X-Session-Id to name in the out-of-dialog JSON.
    let tones = Tones::new();
    let b = baresip_callee(None, tones.callee());
    let server = format!("127.0.0.1:{}", b.sip_port).parse().unwrap();
    let mut caller = Phone::call(
        account_args(server, "101", "unused", "127.0.0.1"),
        &b.direct_uri(),
        &["--no-register", "--duration", "3", "--pause-at", "1", "--control", "out-of-dialog"],
    );
    let status = caller.wait_exit(EXIT);
    let ctx = || format!("{}\n{}", caller.report(), b.report());
    assert!(!status.success(), "a failed pause must fail the exit\n{}", ctx());
    let failed = caller.events().into_iter().find(|e| e.starts_with("control-failed")).unwrap_or_default();
    assert!(
        failed.contains("op=pause-audio-recording") && failed.contains("via=out-of-dialog") && failed.contains("X-Session-Id"),
        "{failed}\n{}",
        ctx()
    );
    assert!(!caller.events().iter().any(|e| e.contains("state=audio;paused")), "the state must not change\n{}", ctx());
    let error = caller.stderr().lines().find(|l| l.starts_with("error: ")).map(str::to_owned).unwrap_or_default();
    assert!(error.contains("pause-audio-recording failed"), "{error}");
}

#[test]
fn a_rejected_call_fails_the_caller_with_the_callees_status() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let mut callee = Phone::answer(account(&pbx, "102"), &["--reject", "486"]);
    callee.wait_event("registered", REGISTER);
    let mut caller = Phone::call(account(&pbx, "101"), "102", &["--duration", "3"]);
    let line = error_line(&mut caller);
    assert!(line.contains("call to 102 failed: 486"), "{line}\n{}\n{}", caller.report(), callee.report());
    callee.assert_success(EXIT);
    let ended = callee.events().into_iter().find(|e| e.starts_with("ended")).unwrap_or_default();
    assert!(ended.contains("rejected locally with 486"), "{ended}");
}

/// `hark phone call --transfer-to` through `hark pbx serve`: the caller blind-transfers
/// the callee to a third phone; the PBX's NOTIFY tells the caller it worked, the callee
/// and the target talk (tones checked at the target), and the PBX's CDR lists the target.
#[test]
fn a_blind_transfer_through_the_pbx_connects_the_callee_to_the_target() {
    let pbx = CallPbx::start(&["101", "102", "103"], 30, &[]);
    let tones = Tones::new();
    let heard = tones.out("target-heard.wav");
    let callee_play = tones.callee().display().to_string();
    let mut callee = Phone::answer(account(&pbx, "102"), &["--play", &callee_play, "--duration", "7"]);
    callee.wait_event("registered", REGISTER);
    let heard_s = heard.display().to_string();
    let mut target = Phone::answer(account(&pbx, "103"), &["--record", &heard_s, "--duration", "4"]);
    target.wait_event("registered", REGISTER);
    let mut caller = Phone::call(account(&pbx, "101"), "102", &["--duration", "8", "--transfer-to", "103", "--transfer-at", "1.5"]);
    let ok = caller.wait_event("transfer", ANSWER);
    let ctx = |c: &Phone, t: &Phone| format!("{}\n{}\n{}", c.report(), t.report(), pbx.logs());
    assert!(ok.contains("ok=true"), "the transfer should succeed: {ok}\n{}", ctx(&caller, &target));
    caller.assert_success(EXIT);
    target.assert_success(EXIT);
    callee.assert_success(EXIT);
    // The target heard the callee's tone.
    let report = analyse_file(&heard, CALLEE_HZ, CALLER_HZ, SKIP_SECS);
    report.check(2.0, 0.7).unwrap_or_else(|e| panic!("the transfer target did not hear the callee: {e}\n{}", ctx(&caller, &target)));
    let cdr = pbx.wait_cdr("the transferred call's CDR", Duration::from_secs(10), |r| {
        hark_e2e::calls::party_pairs(r, "role", "party").contains(&("transfer-target".into(), "103".into()))
    });
    assert_eq!(hark_e2e::calls::field(&cdr, "caller"), "101", "{cdr:#}");
}

/// Mute: between --mute-at and --unmute-at the other phone hears silence from us (the
/// call and its RTP go on), before and after it hears our tone.
#[test]
fn muting_sends_silence_and_unmuting_brings_the_voice_back() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let heard = tones.out("callee-heard-mute.wav");
    let heard_s = heard.display().to_string();
    let mut callee = Phone::answer(account(&pbx, "102"), &["--record", &heard_s]);
    callee.wait_event("registered", REGISTER);
    let caller_play = tones.caller().display().to_string();
    let mut caller = Phone::call(
        account(&pbx, "101"),
        "102",
        &["--play", &caller_play, "--duration", "6", "--mute-at", "2", "--unmute-at", "4"],
    );
    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    let pcm = hark_e2e::audio::read_wav(&heard).unwrap_or_else(|e| panic!("{e}"));
    let ctx = || format!("{}\n{}", caller.report(), callee.report());
    let part = |from: f64, to: f64| hark_e2e::audio::analyse(&pcm.slice_secs(from, to), CALLER_HZ, CALLEE_HZ, 0.0);
    part(0.5, 1.8).check(1.0, 0.8).unwrap_or_else(|e| panic!("before the mute: {e}\n{}", ctx()));
    let muted = part(2.4, 3.6);
    assert!(
        muted.count(hark_e2e::audio::Heard::Silence) as f64 >= 0.9 * muted.windows.len() as f64,
        "while muted the callee should hear silence:\n{}\n{}",
        muted.describe(),
        ctx()
    );
    part(4.4, 5.6).check(1.0, 0.8).unwrap_or_else(|e| panic!("after the unmute: {e}\n{}", ctx()));
}

#[test]
fn a_call_whose_audio_stops_is_hung_up_after_the_rtp_timeout() {
    use hark_e2e::rtp::{Payload, RtpEndpoint};
    use hark_e2e::ua::{Ua, relay_addr};
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let mut callee = Phone::answer(account(&pbx, "102"), &["--rtp-timeout", "2"]);
    callee.wait_event("registered", REGISTER);
    // A caller whose audio stops after a second, as when its network or PBX goes away.
    let ua = Ua::new(pbx.sip_udp, "101", &password("101"), DOMAIN);
    let mut rtp = RtpEndpoint::loopback();
    let dialog = ua.call("102", rtp.port()).unwrap_or_else(|r| pbx.fail(&format!("call failed: {}", r.first_line)));
    rtp.start_sending(relay_addr(&dialog, &pbx, "101's 200"), Payload::AlawTone(CALLER_HZ), 0x101);
    callee.wait_event("answered", ANSWER);
    std::thread::sleep(Duration::from_secs(1));
    let stopped = std::time::Instant::now();
    rtp.stop_sending();
    let error = callee.wait_event("media-error", Duration::from_secs(10));
    assert!(error.contains("no audio from the other side for 2 s"), "{error}\n{}", callee.report());
    let waited = stopped.elapsed();
    assert!(waited >= Duration::from_millis(1900), "hung up {waited:?} after the audio stopped, before the 2 s timeout");
    let ended = callee.wait_event("ended", Duration::from_secs(5));
    assert!(ended.contains("local hangup"), "{ended}");
    assert!(ua.wait_requests("BYE", 1, Duration::from_secs(5)).is_some(), "the caller got no BYE\n{}", ua.report());
    assert!(!callee.wait_exit(EXIT).success(), "a call cut by the RTP timeout is a failure\n{}", callee.report());
}

#[test]
fn a_feature_code_pause_the_pbx_does_not_confirm_is_a_failure_with_its_reason() {
    // Recording is off for this office: *48 goes out, but no state INFO comes back.
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let mut callee = Phone::answer(account(&pbx, "102"), &[]);
    callee.wait_event("registered", REGISTER);
    let mut caller = Phone::call(account(&pbx, "101"), "102", &["--duration", "7", "--pause-at", "1", "--control", "dtmf"]);
    let status = caller.wait_exit(EXIT);
    let ctx = || format!("{}\n{}\n{}", caller.report(), callee.report(), pbx.logs());
    let failed = caller.events().into_iter().find(|e| e.starts_with("control-failed")).unwrap_or_default();
    assert!(failed.contains("via=dtmf") && failed.contains("did not confirm"), "{failed}\n{}", ctx());
    assert!(!caller.events().iter().any(|e| e.starts_with("control-ok")), "nothing was paused\n{}", ctx());
    assert!(!status.success(), "an unconfirmed pause fails the exit\n{}", ctx());
}
