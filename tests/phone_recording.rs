//! `hark phone call … --pause-at 2 --resume-at 4` against `hark pbx serve` with
//! recording on, for each `--control` mode (SPEC §1, §2; issue 6): the PBX's recording
//! of the call holds a pause and a resume event with the right source (message for
//! both MESSAGE forms, dtmf for *48/*49), and the caller's state follows the PBX
//! (recording → paused → recording), never ahead of its 200 or state INFO.

use std::time::Duration;

use hark_e2e::calls::{CallPbx, Tones, password};
use hark_e2e::phone::{Phone, account_args};
use hark_e2e::DOMAIN;
use serde_json::Value;

const REGISTER: Duration = Duration::from_secs(20);
const ANSWER: Duration = Duration::from_secs(30);
const EXIT: Duration = Duration::from_secs(40);
const ROW: Duration = Duration::from_secs(20);

fn s(v: &Value, name: &str) -> String {
    match v.get(name) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

fn pause_and_resume_reach_the_pbx_recording(control: &str, source: &str) {
    pause_and_resume_with(control, source, &[], &[]);
}

fn pause_and_resume_with(control: &str, source: &str, extra: &[&str], pbx_args: &[&str]) {
    let pbx = CallPbx::start(&["101", "102"], 30, pbx_args);
    pbx.admin(&["tenant", "set", "--tenant", "office", "--audio-recording", "on"]);
    let tones = Tones::new();
    let (callee_play, caller_play) = (tones.callee().display().to_string(), tones.caller().display().to_string());
    let mut callee =
        Phone::answer(account_args(pbx.sip_udp, "102", &password("102"), DOMAIN), &["--play", &callee_play]);
    callee.wait_event("registered", REGISTER);
    let mut args =
        vec!["--play", &caller_play, "--duration", "6", "--pause-at", "2", "--resume-at", "4", "--control", control];
    args.extend_from_slice(extra);
    let mut caller = Phone::call(account_args(pbx.sip_udp, "101", &password("101"), DOMAIN), "102", &args);
    let sid_line = caller.wait_event("session-id", ANSWER);
    let sid = sid_line.split("id=").nth(1).unwrap_or_default().to_owned();
    caller.assert_success(EXIT);
    callee.assert_success(EXIT);
    let ctx = || format!("{}\n{}", caller.report(), callee.report());

    // The caller's state followed the PBX: recording, paused, recording again.
    let states: Vec<String> = caller
        .events()
        .into_iter()
        .filter(|e| e.starts_with("recording-state"))
        .filter_map(|e| e.split("state=").nth(1).map(str::to_owned))
        .collect();
    assert_eq!(states, ["audio", "audio;paused", "audio"], "caller's recording states\n{}", ctx());
    let oks: Vec<String> = caller.events().into_iter().filter(|e| e.starts_with("control-ok")).collect();
    assert_eq!(oks.len(), 2, "two controls must succeed: {oks:?}\n{}", ctx());
    assert!(oks.iter().all(|l| l.contains(&format!("via={control}"))), "{oks:?}");
    assert!(!caller.events().iter().any(|e| e.starts_with("control-failed")), "{}", ctx());

    let row = pbx.wait_recording(&format!("session {sid}, finished"), ROW, |r| {
        s(r, "call_session_id") == sid && !matches!(s(r, "status").as_str(), "recording" | "paused")
    });
    let events = row.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
    let kinds: Vec<(String, String)> = events
        .iter()
        .filter(|e| matches!(s(e, "event").as_str(), "pause" | "resume"))
        .map(|e| (s(e, "event"), s(e, "source")))
        .collect();
    // Each says who asked and how (the stored reason).
    for e in events.iter().filter(|e| matches!(s(e, "event").as_str(), "pause" | "resume")) {
        let reason = s(e, "reason");
        assert!(reason.contains("by 101"), "the {} event's reason {reason:?} does not name 101", s(e, "event"));
    }
    assert_eq!(
        kinds,
        [("pause".to_string(), source.to_string()), ("resume".to_string(), source.to_string())],
        "pause/resume events of the PBX recording ({control})\n{}\n{}",
        serde_json::to_string_pretty(&row).unwrap_or_default(),
        ctx()
    );
    for e in &events {
        if matches!(s(e, "event").as_str(), "pause" | "resume") {
            assert_eq!(s(e, "actor"), "101", "the caller asked: {e}");
        }
    }
}

#[test]
fn pause_and_resume_by_message_in_dialog_reach_the_pbx_recording() {
    pause_and_resume_reach_the_pbx_recording("in-dialog", "message");
}

#[test]
fn pause_and_resume_by_message_out_of_dialog_reach_the_pbx_recording() {
    pause_and_resume_reach_the_pbx_recording("out-of-dialog", "message");
}

#[test]
fn pause_and_resume_by_feature_codes_reach_the_pbx_recording() {
    pause_and_resume_reach_the_pbx_recording("dtmf", "dtmf");
}

#[test]
fn pause_and_resume_by_feature_codes_in_sip_info_reach_the_pbx_recording() {
    pause_and_resume_with("dtmf", "info", &["--dtmf", "info"], &[]);
}

#[test]
fn pause_and_resume_out_of_dialog_with_sha256_digest_only() {
    // Registration, the INVITE's 407 and the MESSAGE's 407 all answered with SHA-256.
    pause_and_resume_with("out-of-dialog", "message", &[], &["--digest-algorithms", "SHA-256"]);
}
