//! Transfers through `hark pbx serve` (issue 5): phones the test owns send REFER the way
//! desk phones do, and the PBX re-bridges the legs itself.
//!
//! What is proved:
//! - blind transfer: REFER → 202, NOTIFY `100 Trying` then `200 OK` (subscription
//!   terminated), the target rings and answers, the transferor gets BYE, the transferee
//!   is re-INVITEd and talks to the target (tones checked both ways through the relay),
//!   the recording goes on across the transfer, and the CDR lists the target as
//!   `transfer-target`;
//! - a target that refuses leaves the original call up (NOTIFY with the failure, media
//!   still flowing), and a REFER to an unknown number, to another tenant's extension,
//!   outside any dialog, or from an address that is not the leg's phone gets 403;
//! - attended transfer: REFER with Replaces naming the transferor's second call joins
//!   the two other parties (the transferee re-INVITEd to the second call's relay), the
//!   transferor is released from both calls, the first call's CDR says `transferred`;
//! - a target that never answers is CANCELled after the ring timeout (NOTIFY 480);
//! - rule 5: the recording stops (reason `policy`) when the transfer leaves nobody whose
//!   calls are recorded, and a second recording of the session starts when it brings
//!   one in, the phones told by state INFO;
//! - an INVITE with Replaces (RFC 3891) takes over a leg; an unknown dialog gets 481.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hark_e2e::audio::analyse;
use hark_e2e::calls::{CallPbx, field, party_pairs, password};
use hark_e2e::rtp::{Payload, RtpEndpoint};
use hark_e2e::ua::{Dialog, Ua, expect_status, relay_addr};
use hark_e2e::{DOMAIN, Pbx, poll_until};
use serde_json::Value;

const A_HZ: f64 = 440.0;
const B_HZ: f64 = 660.0;
const C_HZ: f64 = 880.0;


/// A phone the test owns: SIP UA and RTP socket.
struct Phone {
    ua: Ua,
    rtp: RtpEndpoint,
}

impl Phone {
    /// Registered, answering calls on its RTP port.
    fn callee(pbx: &Pbx, ext: &str) -> Phone {
        let ua = Ua::new(pbx.sip_udp, ext, &password(ext), DOMAIN);
        ua.register(3600);
        let rtp = RtpEndpoint::loopback();
        ua.answer_calls(rtp.port());
        Phone { ua, rtp }
    }

    fn caller(pbx: &Pbx, ext: &str) -> Phone {
        Phone { ua: Ua::new(pbx.sip_udp, ext, &password(ext), DOMAIN), rtp: RtpEndpoint::loopback() }
    }

    fn incoming(&self, pbx: &Pbx, n: usize) -> Dialog {
        let got = poll_until(Duration::from_secs(5), || {
            let d = self.ua.incoming();
            (d.len() >= n).then(|| d[n - 1].clone())
        });
        got.unwrap_or_else(|| pbx.fail(&format!("{} got no call #{n}\n{}", self.ua.user, self.ua.report())))
    }

    /// Seconds of `hz` in what arrived from `from` in [since, until).
    fn hears(&self, from: SocketAddr, since: Instant, until: Instant, hz: f64, other: f64) -> f64 {
        let pcm = self.rtp.alaw_audio(Some(from), since, until, "heard");
        analyse(&pcm, hz, other, 0.0).expected_secs()
    }
}

/// After a transfer: for 2 s (after 0.5 s to settle) 101 (`a`, from its relay `a_from`)
/// hears 103's tone and 103 (`c`) hears 101's, for at least 1.2 s each.
fn check_talk(pbx: &Pbx, (a, a_from): (&Phone, SocketAddr), (c, c_from): (&Phone, SocketAddr), what: &str) {
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    let heard_c = a.hears(a_from, t + Duration::from_millis(500), Instant::now(), C_HZ, B_HZ);
    let heard_a = c.hears(c_from, t + Duration::from_millis(500), Instant::now(), A_HZ, B_HZ);
    if heard_c < 1.2 || heard_a < 1.2 {
        pbx.fail(&format!(
            "after {what} 101 heard 103 for {heard_c:.1} s, 103 heard 101 for {heard_a:.1} s (want ≥ 1.2 of 2 s)\n{}\n{}",
            a.rtp.summary(),
            c.rtp.summary()
        ));
    }
}


fn recording_pbx(exts: &[&str]) -> CallPbx {
    let pbx = CallPbx::start(exts, 30, &[]);
    pbx.configure(&["tenant", "set", "--tenant", "office", "--audio-recording", "on"]);
    pbx
}

/// The sipfrag status lines of the NOTIFYs `ua` received, in order.
fn notify_frags(ua: &Ua) -> Vec<(String, String)> {
    ua.received_requests("NOTIFY")
        .into_iter()
        .map(|m| (m.body.lines().next().unwrap_or("").to_string(), m.header("Subscription-State").unwrap_or("").to_string()))
        .collect()
}

fn wait_notifies(pbx: &Pbx, ua: &Ua, n: usize) -> Vec<(String, String)> {
    poll_until(Duration::from_secs(8), || {
        let f = notify_frags(ua);
        (f.len() >= n).then_some(f)
    })
    .unwrap_or_else(|| pbx.fail(&format!("{} got {:?}, wanted {n} NOTIFYs\n{}", ua.user, notify_frags(ua), ua.report())))
}


/// 101 (`a`) in a call with 102 (`b`), both sending their tones through the relay.
struct Talking {
    a: Phone,
    b: Phone,
    da: Dialog,
    db: Dialog,
    a_relay: SocketAddr,
    b_relay: SocketAddr,
}

fn talking(pbx: &Pbx) -> Talking {
    let mut b = Phone::callee(pbx, "102");
    let mut a = Phone::caller(pbx, "101");
    let da = a.ua.call("102", a.rtp.port()).unwrap_or_else(|r| pbx.fail(&format!("call failed: {}", r.first_line)));
    let db = b.incoming(pbx, 1);
    let (a_relay, b_relay) = (relay_addr(&da, pbx, "101's 200"), relay_addr(&db, pbx, "102's INVITE"));
    a.rtp.start_sending(a_relay, Payload::AlawTone(A_HZ), 0xA);
    b.rtp.start_sending(b_relay, Payload::AlawTone(B_HZ), 0xB);
    Talking { a, b, da, db, a_relay, b_relay }
}

#[test]
fn blind_transfer_connects_the_target_and_the_recording_goes_on() {
    let pbx = recording_pbx(&["101", "102", "103"]);
    let mut c = Phone::callee(&pbx, "103");
    let Talking { a, mut b, mut da, mut db, a_relay, b_relay } = talking(&pbx);
    let sid = da.session_id();
    std::thread::sleep(Duration::from_millis(1500));

    let r = b.ua.refer(&mut db, &format!("<sip:103@{DOMAIN}>"));
    expect_status(&pbx, &r, 202, "REFER to 103", &b.ua.report());
    let dc = c.incoming(&pbx, 1);
    let c_relay = relay_addr(&dc, &pbx, "103's INVITE");
    if c_relay != b_relay {
        pbx.fail(&format!("the target should get the transferor's relay port {b_relay}, got {c_relay}"));
    }
    c.rtp.start_sending(c_relay, Payload::AlawTone(C_HZ), 0xC);
    let frags = wait_notifies(&pbx, &b.ua, 2);
    if !frags[0].0.starts_with("SIP/2.0 100") || !frags[1].0.starts_with("SIP/2.0 200") || !frags[1].1.starts_with("terminated") {
        pbx.fail(&format!("NOTIFYs to the transferor: {frags:?}, want 100 Trying (active) then 200 OK (terminated)"));
    }
    if b.ua.wait_requests("BYE", 1, Duration::from_secs(5)).is_none() {
        pbx.fail(&format!("the transferor was not released with a BYE\n{}", b.ua.report()));
    }
    b.rtp.stop_sending();
    let reinvite = poll_until(Duration::from_secs(5), || a.ua.received_requests("INVITE").into_iter().last());
    if reinvite.is_none() {
        pbx.fail(&format!("the transferee was not re-INVITEd after the transfer\n{}", a.ua.report()));
    }
    check_talk(&pbx, (&a, a_relay), (&c, c_relay), "the blind transfer");
    let bye = a.ua.bye(&mut da);
    expect_status(&pbx, &bye, 200, "101 hangs up", &a.ua.report());
    if c.ua.wait_requests("BYE", 1, Duration::from_secs(5)).is_none() {
        pbx.fail(&format!("the target was not sent BYE when the call ended\n{}", c.ua.report()));
    }

    let cdr = pbx.wait_cdr("the transferred call's CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid);
    let parties: Vec<(String, String)> =
        party_pairs(&cdr, "role", "party");
    if !parties.contains(&("transfer-target".into(), "103".into())) || field(&cdr, "callee") != "102" || field(&cdr, "disposition") != "answered" {
        pbx.fail(&format!("CDR after a blind transfer: {cdr:#}"));
    }
    // One recording, from the answer to the end: 102's voice, then 103's.
    let rec = pbx.wait_recording("the recording", Duration::from_secs(10), |r| field(r, "call_session_id") == sid && field(r, "status") == "completed");
    let n = pbx.recordings().iter().filter(|r| field(r, "call_session_id") == sid).count();
    let dur = rec["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    if n != 1 || dur < 4.0 {
        pbx.fail(&format!("{n} recordings for the session (want 1, going on across the transfer), {dur:.1} s\n{rec:#}"));
    }
    // Linked to every internal party, the one the transfer brought in too (rule 3).
    let parties: Vec<(String, String)> =
        party_pairs(&rec, "party", "kind");
    for ext in ["101", "102", "103"] {
        if !parties.contains(&(ext.to_string(), "internal".to_string())) {
            pbx.fail(&format!("the recording's parties {parties:?} do not name {ext}"));
        }
    }
}

#[test]
fn a_refused_transfer_leaves_the_call_up_and_bad_refers_are_forbidden() {
    let pbx = recording_pbx(&["101", "102", "103"]);
    pbx.add_tenant("other", "other.test");
    pbx.add_user_in("other", "201", "pw-201-secret");
    // 103 is registered but busy: it answers nothing but 486.
    let c = Ua::new(pbx.sip_udp, "103", &password("103"), DOMAIN);
    c.register(3600);
    let Talking { a, b, mut da, mut db, a_relay, b_relay } = talking(&pbx);

    let r = b.ua.refer(&mut db, &format!("<sip:103@{DOMAIN}>"));
    expect_status(&pbx, &r, 202, "REFER to a busy 103", &b.ua.report());
    let frags = wait_notifies(&pbx, &b.ua, 2);
    if !frags[1].0.starts_with("SIP/2.0 486") || !frags[1].1.starts_with("terminated") {
        pbx.fail(&format!("NOTIFYs after a refused transfer: {frags:?}, want the 486 (terminated)"));
    }
    for (target, why) in [
        (format!("<sip:999@{DOMAIN}>"), "an unknown number"),
        ("<sip:201@other.test>".to_string(), "another tenant's extension"),
    ] {
        let r = b.ua.refer(&mut db, &target);
        expect_status(&pbx, &r, 403, &format!("REFER to {why}"), &b.ua.report());
    }
    // Outside any dialog.
    let stranger = Ua::new(pbx.sip_udp, "103", &password("103"), DOMAIN);
    let mut fake = db.clone();
    fake.remote_tag = String::new();
    let r = stranger.request(&|branch| {
        stranger
            .in_dialog_text(&fake, 50, "REFER", &format!("Refer-To: <sip:103@{DOMAIN}>\r\n"), None, "", branch)
            .replacen(";tag=\r\n", "\r\n", 1)
    });
    expect_status(&pbx, &r, 403, "REFER outside any dialog", &stranger.report());
    // With the leg's dialog identifiers, from another address.
    let mut spoofed = db.clone();
    let r = stranger.refer(&mut spoofed, &format!("<sip:103@{DOMAIN}>"));
    expect_status(&pbx, &r, 403, "REFER with the call's dialog from a stranger's address", &stranger.report());

    // The call is still up, both ways.
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    if a.hears(a_relay, t, Instant::now(), B_HZ, A_HZ) < 1.0 || b.hears(b_relay, t, Instant::now(), A_HZ, B_HZ) < 1.0 {
        pbx.fail(&format!("after a refused transfer the call lost its media\n{}\n{}", a.rtp.summary(), b.rtp.summary()));
    }
    let bye = a.ua.bye(&mut da);
    expect_status(&pbx, &bye, 200, "hang up", &a.ua.report());
}

#[test]
fn attended_transfer_joins_the_other_two_parties() {
    let pbx = recording_pbx(&["101", "102", "103"]);
    let mut b = Phone::callee(&pbx, "102");
    let mut c = Phone::callee(&pbx, "103");
    let mut a = Phone::caller(&pbx, "101");
    // Call 1: 101 → 102.
    let da = a.ua.call("102", a.rtp.port()).unwrap_or_else(|r| pbx.fail(&format!("call 1 failed: {}", r.first_line)));
    let mut db1 = b.incoming(&pbx, 1);
    let sid1 = da.session_id();
    let a_relay = relay_addr(&da, &pbx, "101's 200");
    a.rtp.start_sending(a_relay, Payload::AlawTone(A_HZ), 0xA);
    b.rtp.start_sending(relay_addr(&db1, &pbx, "102's INVITE"), Payload::AlawTone(B_HZ), 0xB);
    // Call 2: 102 → 103, from a second line of 102 (its own RTP socket).
    let mut b2 = RtpEndpoint::loopback();
    let db2 = b.ua.call("103", b2.port()).unwrap_or_else(|r| pbx.fail(&format!("call 2 failed: {}", r.first_line)));
    let sid2 = db2.session_id();
    let mut dc = c.incoming(&pbx, 1);
    let c_relay = relay_addr(&dc, &pbx, "103's INVITE");
    b2.start_sending(relay_addr(&db2, &pbx, "102's second 200"), Payload::AlawTone(B_HZ), 0xB2);
    c.rtp.start_sending(c_relay, Payload::AlawTone(C_HZ), 0xC);
    std::thread::sleep(Duration::from_millis(800));

    let replaces = format!("{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}", db2.call_id, db2.remote_tag, db2.local_tag);
    let r = b.ua.refer(&mut db1, &format!("<sip:103@{DOMAIN}?Replaces={replaces}>"));
    expect_status(&pbx, &r, 202, "REFER with Replaces", &b.ua.report());
    let frags = wait_notifies(&pbx, &b.ua, 2);
    if !frags.last().is_some_and(|f| f.0.starts_with("SIP/2.0 200")) {
        pbx.fail(&format!("NOTIFYs of the attended transfer: {frags:?}"));
    }
    if b.ua.wait_requests("BYE", 2, Duration::from_secs(5)).is_none() {
        pbx.fail(&format!("the transferor was not released from both calls\n{}", b.ua.report()));
    }
    b.rtp.stop_sending();
    b2.stop_sending();
    // 101 is moved to call 2's relay by a re-INVITE: it sends there from now on.
    let reinvite = poll_until(Duration::from_secs(5), || a.ua.received_requests("INVITE").into_iter().last())
        .unwrap_or_else(|| pbx.fail(&format!("101 was not re-INVITEd\n{}", a.ua.report())));
    let new_relay: SocketAddr = match reinvite.sdp_audio_port() {
        Some(p) => ([127, 0, 0, 1], p).into(),
        None => pbx.fail(&format!("the re-INVITE has no SDP port: {}", reinvite.body)),
    };
    a.rtp.stop_sending();
    a.rtp.start_sending(new_relay, Payload::AlawTone(A_HZ), 0xA);
    check_talk(&pbx, (&a, new_relay), (&c, c_relay), "the attended transfer");
    let bye = c.ua.bye(&mut dc);
    expect_status(&pbx, &bye, 200, "103 hangs up", &c.ua.report());
    if a.ua.wait_requests("BYE", 1, Duration::from_secs(5)).is_none() {
        pbx.fail(&format!("101 was not sent BYE when 103 hung up\n{}", a.ua.report()));
    }
    let cdr1 = pbx.wait_cdr("call 1's CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid1);
    if field(&cdr1, "hangup_cause") != "transferred" {
        pbx.fail(&format!("call 1 should end as transferred: {cdr1:#}"));
    }
    let cdr2 = pbx.wait_cdr("call 2's CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid2);
    let parties: Vec<(String, String)> =
        party_pairs(&cdr2, "role", "party");
    if !parties.contains(&("transfer-target".into(), "101".into())) {
        pbx.fail(&format!("call 2's CDR should list 101 joining by the transfer: {cdr2:#}"));
    }
}

/// A transfer target that rings and never answers: after the ring timeout the PBX
/// CANCELs it and tells the transferor (NOTIFY 480); the call stays up.
#[test]
fn a_transfer_target_that_never_answers_leaves_the_call_up() {
    use hark_e2e::calls::{register_sipp_callee, sipp_callee};
    let pbx = CallPbx::start(&["101", "102", "103"], 3, &[]);
    let port = register_sipp_callee(&pbx, "103");
    let ringing = sipp_callee("uas_call_ring.xml", &pbx, "103", port, hark_e2e::free_port()).spawn();
    let Talking { a, b, mut da, mut db, a_relay, .. } = talking(&pbx);
    let r = b.ua.refer(&mut db, &format!("<sip:103@{DOMAIN}>"));
    expect_status(&pbx, &r, 202, "REFER to a phone that never answers", &b.ua.report());
    let frags = wait_notifies(&pbx, &b.ua, 2);
    if !frags[1].0.starts_with("SIP/2.0 480") || !frags[1].1.starts_with("terminated") {
        pbx.fail(&format!("NOTIFYs when the target never answers: {frags:?}, want 480 (terminated)"));
    }
    let ringing = ringing.wait(Duration::from_secs(10));
    if ringing.logged("cancel").as_deref() != Some("received") {
        pbx.fail(&format!("the unanswered target was not CANCELled\n{}", ringing.report()));
    }
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(1200));
    if a.hears(a_relay, t, Instant::now(), B_HZ, A_HZ) < 0.8 {
        pbx.fail(&format!("the call lost its media after the failed transfer\n{}", a.rtp.summary()));
    }
    let bye = a.ua.bye(&mut da);
    expect_status(&pbx, &bye, 200, "hang up", &a.ua.report());
}

/// Rule 5 inside the office: a recorded call transferred to a user whose calls are not
/// recorded (the other party's neither) stops its recording with reason `policy`;
/// transferred on to a recorded user, a second recording of the same session starts.
/// Phones are told by the state INFO each time.
#[test]
fn transfers_stop_and_start_recordings_as_the_new_parties_policy_says() {
    let pbx = recording_pbx(&["101", "102", "103", "104"]);
    for ext in ["101", "103"] {
        pbx.configure(&["user", "set", "--tenant", "office", "--ext", ext, "--record-audio", "off"]);
    }
    let c = Phone::callee(&pbx, "103");
    let d = Phone::callee(&pbx, "104");
    let Talking { a, b, mut da, mut db, .. } = talking(&pbx);
    let sid = da.session_id();
    if da.recording_state().as_deref() != Some("audio") {
        pbx.fail(&format!("101 → 102 (102 recorded) should say audio: {:?}", da.recording_state()));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // 102 → 103: nobody left whose calls are recorded.
    let r = b.ua.refer(&mut db, &format!("<sip:103@{DOMAIN}>"));
    expect_status(&pbx, &r, 202, "REFER to 103", &b.ua.report());
    let mut dc = c.incoming(&pbx, 1);
    let first = pbx.wait_recording("the first recording to stop", Duration::from_secs(10), |r| {
        field(r, "call_session_id") == sid && field(r, "status") == "stopped"
    });
    if field(&first, "stop_reason") != "policy" {
        pbx.fail(&format!("the recording should stop by policy: {first:#}"));
    }
    std::thread::sleep(Duration::from_millis(1000));
    // 103 → 104: recorded again, a new recording of the same session.
    let r = c.ua.refer(&mut dc, &format!("<sip:104@{DOMAIN}>"));
    expect_status(&pbx, &r, 202, "REFER to 104", &c.ua.report());
    let _ = d.incoming(&pbx, 1);
    let second = pbx.wait_recording("a second recording to start", Duration::from_secs(10), |r| {
        field(r, "call_session_id") == sid && field(r, "id") != field(&first, "id")
    });
    std::thread::sleep(Duration::from_millis(1000));
    let bye = a.ua.bye(&mut da);
    expect_status(&pbx, &bye, 200, "hang up", &a.ua.report());
    let second = pbx.wait_recording("the second recording to finish", Duration::from_secs(10), |r| {
        field(r, "id") == field(&second, "id") && field(r, "status") == "completed"
    });
    if field(&second, "path") == field(&first, "path") {
        pbx.fail("the second recording reused the first one's file");
    }
    // 101 was told: recording, then off, then recording.
    let infos: Vec<String> = a
        .ua
        .received_requests("INFO")
        .into_iter()
        .filter_map(|m| serde_json::from_str::<Value>(&m.body).ok())
        .map(|v| field(&v, "audio"))
        .collect();
    if infos != ["off", "recording"] {
        pbx.fail(&format!("state INFOs to 101: {infos:?}, want [off, recording]"));
    }
}

/// RFC 3891: a phone's INVITE with Replaces naming a leg of a call takes that leg's place
/// (the replaced phone gets BYE, the other party a re-INVITE); an unknown dialog is 481.
#[test]
fn an_invite_with_replaces_takes_over_a_leg() {
    let pbx = recording_pbx(&["101", "102", "103"]);
    let Talking { a, mut b, mut da, db, a_relay, .. } = talking(&pbx);
    let sid = da.session_id();

    let mut c = Phone::caller(&pbx, "103");
    let unknown = c.ua.call_with("102", c.rtp.port(), "Replaces: nope@nowhere;to-tag=1;from-tag=2\r\n");
    match unknown {
        Ok(_) => pbx.fail("an INVITE replacing an unknown dialog was answered"),
        Err(r) => expect_status(&pbx, &r, 481, "INVITE with Replaces of an unknown dialog", &c.ua.report()),
    }
    let replaces = format!("Replaces: {};to-tag={};from-tag={}\r\n", db.call_id, db.local_tag, db.remote_tag);
    let mut dc = c
        .ua
        .call_with("102", c.rtp.port(), &replaces)
        .unwrap_or_else(|r| pbx.fail(&format!("INVITE with Replaces failed: {}\n{}", r.first_line, c.ua.report())));
    let c_relay = relay_addr(&dc, &pbx, "103's 200");
    c.rtp.start_sending(c_relay, Payload::AlawTone(C_HZ), 0xC);
    if b.ua.wait_requests("BYE", 1, Duration::from_secs(5)).is_none() {
        pbx.fail(&format!("the replaced phone got no BYE\n{}", b.ua.report()));
    }
    b.rtp.stop_sending();
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    if a.hears(a_relay, t + Duration::from_millis(300), Instant::now(), C_HZ, B_HZ) < 1.0
        || c.hears(c_relay, t + Duration::from_millis(300), Instant::now(), A_HZ, B_HZ) < 1.0
    {
        pbx.fail(&format!("101 and 103 do not hear each other after the Replaces\n{}\n{}", a.rtp.summary(), c.rtp.summary()));
    }
    let bye = c.ua.bye(&mut dc);
    expect_status(&pbx, &bye, 200, "103 hangs up", &c.ua.report());
    if a.ua.wait_requests("BYE", 1, Duration::from_secs(5)).is_none() {
        pbx.fail("101 was not sent BYE");
    }
    let _ = &mut da;
    let cdr = pbx.wait_cdr("the CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid);
    let roles: Vec<(String, String)> =
        party_pairs(&cdr, "role", "party");
    if !roles.contains(&("transfer-target".into(), "103".into())) {
        pbx.fail(&format!("the CDR should list 103 taking over: {cdr:#}"));
    }
}

#[test]
fn a_transfer_made_while_paused_tells_the_target_the_recording_is_paused() {
    let pbx = recording_pbx(&["101", "102", "103"]);
    let c = Phone::callee(&pbx, "103");
    let Talking { a, b, mut da, mut db, .. } = talking(&pbx);
    std::thread::sleep(Duration::from_millis(800));
    // The agent (101) pauses before the card number, then 102 transfers to 103.
    let r = a.ua.in_dialog(&mut da, "MESSAGE", Some("application/x-media-control"), "pause-audio-recording");
    expect_status(&pbx, &r, 200, "101 pauses", &a.ua.report());
    let r = b.ua.refer(&mut db, &format!("<sip:103@{DOMAIN}>"));
    expect_status(&pbx, &r, 202, "REFER to 103", &b.ua.report());
    let dc = c.incoming(&pbx, 1);
    // SPEC §1: the new party is told the truth — recorded, and paused right now.
    if dc.recording_state().as_deref() != Some("audio;paused") {
        pbx.fail(&format!("the transfer target's INVITE says X-Recording-State {:?}, want audio;paused", dc.recording_state()));
    }
    if dc.session_id() != da.session_id() {
        pbx.fail(&format!("the target's X-Session-Id {} is not the call's {}", dc.session_id(), da.session_id()));
    }
    let bye = a.ua.bye(&mut da);
    expect_status(&pbx, &bye, 200, "101 hangs up", &a.ua.report());
}
