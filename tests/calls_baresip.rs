//! Calls between real softphones through `hark pbx serve` (issue 3): baresip to baresip and
//! baresip to linphonec. Each phone plays a tone as its microphone (the caller 440 Hz, the
//! callee 660 Hz, 8 kHz WAVs through baresip's `aufile` and linphonec's file mode) and
//! records what it hears (`sndfile`'s `*-dec.wav`, linphonec's `record`). A Goertzel
//! check, window by window, proves that each side hears the OTHER side's tone: media went
//! through the PBX's relay both ways, not merely that files grew.
//!
//! Beyond the audio, each call checks the signalling the PBX promises (SPEC §1):
//! `X-Session-Id` and `X-Recording-State: off` in the callee's INVITE, the same
//! `X-Session-Id` in the caller's 200 OK; the media anchoring (each phone is sent the
//! PBX's address and a port of `--rtp-ports`, never the other phone's port); the
//! `hark_calls_active` gauge; and the call's one CDR row.
//!
//! The `harness_*` tests make the same calls peer to peer, without the PBX: when they pass
//! and a PBX test fails, the PBX is at fault, not the phones, tone files or detector.
//!
//! baresip 1.0 quirk that shapes the hold test: its first re-INVITE whose direction is not
//! sendrecv (hold) resets the receive side (audio.c `audio_decoder_set` flushes the rx
//! filter list and `aufilt_setup` does not rebuild it while the tx filters exist), so
//! `sndfile` stops recording received audio at the first hold, on both phones. Audio after
//! a resume is therefore checked in calls_sipp.rs with an RTP socket the test owns.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hark_e2e::audio::analyse_file;
use hark_e2e::baresip::{Baresip, BaresipAccount, BaresipOptions, TracedMessage};
use hark_e2e::calls::{
    CALLEE_HZ, CALLER_HZ, CallPbx, CdrExpect, Tones, password, sdp_audio_port, sdp_connection, sdp_direction,
    the_one_cdr,
};
use hark_e2e::linphone::{LinphoneAccount, Linphonec};
use hark_e2e::sipp::header;
use hark_e2e::{DOMAIN, Pbx, free_port, poll_until};

/// How long a call may take to be established on a busy machine.
const ESTABLISH: Duration = Duration::from_secs(20);
/// How long the phones talk.
const TALK: Duration = Duration::from_secs(4);
/// The start of each recording left out of the analysis (jitter buffers filling).
const SKIP_SECS: f64 = 0.5;
/// Received audio that must carry the other side's tone.
const FRACTION: f64 = 0.8;
const CALLS_ACTIVE: &str = "hark_calls_active";

fn baresip(pbx: Option<&Pbx>, ext: &str, tone: std::path::PathBuf, auto_answer: bool) -> Baresip {
    Baresip::start_with(
        BaresipAccount {
            user: ext.into(),
            password: password(ext),
            domain: DOMAIN.into(),
            registrar: pbx.map_or_else(|| ([127, 0, 0, 1], 9).into(), |p| p.sip_udp),
            transport: "udp".into(),
            regint: 600,
        },
        BaresipOptions {
            auto_answer,
            play: Some(tone),
            record: true,
            codecs: Some("PCMA".into()),
            no_registrar: pbx.is_none(),
        },
    )
}

fn reports(phones: &[&Baresip], pbx: Option<&Pbx>) -> String {
    let mut s = String::new();
    for p in phones {
        s.push_str(&p.report());
        s.push('\n');
    }
    if let Some(pbx) = pbx {
        s.push_str(&pbx.logs());
    }
    s
}

fn wait_registered(pbx: &Pbx, phones: &[&Baresip]) {
    for p in phones {
        if !p.wait_register_oks(1, Duration::from_secs(30)) {
            panic!(
                "baresip {} did not register\n{}",
                p.account.user,
                reports(phones, Some(pbx))
            );
        }
    }
}

/// Waits for CALL_ESTABLISHED on every phone; returns when the first saw it. A phone
/// whose call closes first (e.g. the caller got a 4xx/5xx) fails at once, with the reason.
fn established(phones: &[&Baresip], pbx: Option<&Pbx>) -> Instant {
    let mut first = None;
    for p in phones {
        let event = p.ctrl().wait_event(ESTABLISH, |e| {
            let t = hark_e2e::ctrl::event_type(e);
            t == "CALL_ESTABLISHED" || t == "CALL_CLOSED"
        });
        match event {
            Some(e) if hark_e2e::ctrl::event_type(&e) == "CALL_ESTABLISHED" => {}
            Some(e) => panic!(
                "the call closed on {} before it was established: {}\n{}",
                p.account.user,
                e.get("param").and_then(|v| v.as_str()).unwrap_or("(no reason given)"),
                reports(phones, pbx)
            ),
            None => panic!(
                "the call was not established on {} within {ESTABLISH:?}\n{}",
                p.account.user,
                reports(phones, pbx)
            ),
        }
        first.get_or_insert_with(Instant::now);
    }
    first.expect("at least one phone")
}

fn closed(phones: &[&Baresip], pbx: Option<&Pbx>) {
    for p in phones {
        if p.wait_event("CALL_CLOSED", 1, Duration::from_secs(15)).is_none() {
            panic!(
                "the call did not end on {} (no CALL_CLOSED)\n{}",
                p.account.user,
                reports(phones, pbx)
            );
        }
    }
}

/// Panics unless `phone` recorded at least `min_secs` of received audio in which the
/// `expected` tone dominates.
fn assert_heard(phone: &Baresip, expected: f64, other: f64, min_secs: f64, context: impl Fn() -> String) {
    let Some(path) = phone.received_audio() else {
        panic!(
            "baresip {} recorded no received audio (no *-dec.wav in {})\n{}",
            phone.account.user,
            phone.snd_dir().display(),
            context()
        );
    };
    let report = analyse_file(&path, expected, other, SKIP_SECS);
    if let Err(e) = report.check(min_secs, FRACTION) {
        panic!(
            "baresip {} (playing {other} Hz) does not hear the other side's {expected} Hz: {e}\n{}",
            phone.account.user,
            context()
        );
    }
}

/// The 200 OKs to INVITEs that `phone` received, one per CSeq (retransmissions dropped).
fn invite_oks(phone: &Baresip) -> Vec<TracedMessage> {
    let mut seen = BTreeSet::new();
    phone
        .received_responses("INVITE")
        .into_iter()
        .filter(|m| m.status() == Some(200))
        .filter(|m| seen.insert(header(&m.text, "CSeq").unwrap_or("").to_string()))
        .collect()
}

/// The INVITEs `phone` received, one per CSeq.
fn invites(phone: &Baresip) -> Vec<TracedMessage> {
    let mut seen = BTreeSet::new();
    phone
        .received_requests("INVITE")
        .into_iter()
        .filter(|m| seen.insert(header(&m.text, "CSeq").unwrap_or("").to_string()))
        .collect()
}

/// Checks the callee's INVITE and the caller's 200 OK of the first (initial) INVITE:
/// session id, recording state and media anchoring. Returns the session id.
fn check_initial_signalling(pbx: &CallPbx, caller: &Baresip, callee: &Baresip) -> String {
    let ctx = || reports(&[caller, callee], Some(pbx));
    let invite = invites(callee)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("the callee's trace shows no INVITE\n{}", ctx()));
    let Some(sid) = header(&invite.text, "X-Session-Id")
        .map(str::to_string)
        .filter(|s| !s.is_empty())
    else {
        panic!(
            "the INVITE the callee received has no X-Session-Id (SPEC §1):\n{}\n{}",
            invite.text,
            ctx()
        );
    };
    let state = header(&invite.text, "X-Recording-State")
        .map(str::trim)
        .unwrap_or("(missing)");
    assert!(
        state.eq_ignore_ascii_case("off"),
        "X-Recording-State in the callee's INVITE is {state:?}, expected \"off\" (recording is off by default):\n{}",
        invite.text
    );
    let ok = invite_oks(caller)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("the caller's trace shows no 200 OK to its INVITE\n{}", ctx()));
    let ok_sid = header(&ok.text, "X-Session-Id").unwrap_or("(missing)");
    assert_eq!(
        ok_sid, sid,
        "the caller's 200 OK must carry the X-Session-Id the callee's INVITE carried:\n{}\n{}",
        ok.text, invite.text
    );

    // Media anchoring: the PBX's address and relay ports, never the other phone's port.
    for (what, msg) in [("the callee's INVITE", &invite.text), ("the caller's 200 OK", &ok.text)] {
        let ip = sdp_connection(msg);
        assert_eq!(
            ip.as_deref(),
            Some("127.0.0.1"),
            "{what}: SDP connection address\n{msg}"
        );
        let port = sdp_audio_port(msg).unwrap_or_else(|| panic!("{what} has no m=audio line:\n{msg}"));
        pbx.assert_relay_port(port, what);
    }
    let caller_own = caller
        .sent_requests("INVITE")
        .last()
        .and_then(|m| sdp_audio_port(&m.text));
    let callee_own = callee
        .sent_responses("INVITE")
        .iter()
        .find(|m| m.status() == Some(200))
        .and_then(|m| sdp_audio_port(&m.text));
    assert_ne!(
        sdp_audio_port(&ok.text),
        callee_own,
        "the caller was given the callee's own RTP port: media not anchored"
    );
    assert_ne!(
        sdp_audio_port(&invite.text),
        caller_own,
        "the callee was given the caller's own RTP port: media not anchored"
    );
    sid
}

#[test]
fn harness_two_baresips_hear_each_other_directly() {
    let tones = Tones::new();
    let a = baresip(None, "101", tones.caller(), false);
    let b = baresip(None, "102", tones.callee(), true);
    a.dial(&b.direct_uri());
    established(&[&a, &b], None);
    std::thread::sleep(TALK);
    a.hangup();
    closed(&[&a, &b], None);
    let ctx = || reports(&[&a, &b], None);
    assert_heard(&a, CALLEE_HZ, CALLER_HZ, 2.5, ctx);
    assert_heard(&b, CALLER_HZ, CALLEE_HZ, 2.5, ctx);
}

#[test]
fn harness_baresip_and_linphonec_hear_each_other_directly() {
    let tones = Tones::new();
    let a = baresip(None, "101", tones.caller(), false);
    // Its registrar is a port where nothing listens: it keeps trying, and takes calls.
    let mut l = Linphonec::start(LinphoneAccount {
        user: "102".into(),
        password: password("102"),
        domain: DOMAIN.into(),
        registrar: ([127, 0, 0, 1], free_port()).into(),
        transport: "udp".into(),
        expires: 600,
        algorithm: None,
    });
    let heard = tones.out("linphonec-heard.wav");
    l.use_files(&tones.callee(), &heard);
    assert!(
        l.enable_autoanswer(Duration::from_secs(20)),
        "linphonec: no auto answer\n{}",
        l.report()
    );
    a.dial(&format!("sip:102@127.0.0.1:{};transport=udp", l.sip_port));
    established(&[&a], None);
    assert!(
        l.wait_call_state("LinphoneCallStreamsRunning", 1, ESTABLISH),
        "linphonec did not run the call's streams\n{}\n{}",
        l.report(),
        a.report()
    );
    std::thread::sleep(TALK);
    a.hangup();
    closed(&[&a], None);
    assert!(
        l.wait_call_state("LinphoneCallReleased", 1, Duration::from_secs(15)),
        "linphonec did not end the call\n{}",
        l.report()
    );
    assert_heard(&a, CALLEE_HZ, CALLER_HZ, 2.5, || {
        format!("{}\n{}", a.report(), l.report())
    });
    let report = analyse_file(&heard, CALLER_HZ, CALLEE_HZ, SKIP_SECS);
    if let Err(e) = report.check(2.5, FRACTION) {
        panic!("linphonec does not hear baresip's {CALLER_HZ} Hz: {e}\n{}", l.report());
    }
}

#[test]
fn baresip_calls_baresip_through_the_pbx_and_each_hears_the_other() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let a = baresip(Some(&pbx), "101", tones.caller(), false);
    let b = baresip(Some(&pbx), "102", tones.callee(), true);
    wait_registered(&pbx, &[&a, &b]);
    pbx.wait_metric("hark_registrations", 2.0, Duration::from_secs(10));

    a.dial(&format!("sip:102@{DOMAIN}"));
    let answered = established(&[&a, &b], Some(&pbx));
    let sid = check_initial_signalling(&pbx, &a, &b);
    pbx.wait_metric(CALLS_ACTIVE, 1.0, Duration::from_secs(10));

    std::thread::sleep(TALK);
    a.hangup();
    let talked = answered.elapsed().as_secs_f64();
    closed(&[&a, &b], Some(&pbx));
    // The caller's BYE crossed the PBX and ended the callee's leg (CALL_CLOSED above);
    // the PBX no longer counts the call.
    pbx.wait_metric(CALLS_ACTIVE, 0.0, Duration::from_secs(10));

    let ctx = || reports(&[&a, &b], Some(&pbx));
    assert_heard(&a, CALLEE_HZ, CALLER_HZ, 2.5, ctx);
    assert_heard(&b, CALLER_HZ, CALLEE_HZ, 2.5, ctx);

    the_one_cdr(
        &pbx,
        &CdrExpect {
            caller: "101",
            callee: "102",
            disposition: "answered",
            hangup_by: Some("caller"),
            session_id: Some(&sid),
            billsec: Some((talked, 1.5)),
        },
    );
}

#[test]
fn baresip_hold_and_resume_cross_the_pbx() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let a = baresip(Some(&pbx), "101", tones.caller(), false);
    let b = baresip(Some(&pbx), "102", tones.callee(), true);
    wait_registered(&pbx, &[&a, &b]);

    a.dial(&format!("sip:102@{DOMAIN}"));
    let answered = established(&[&a, &b], Some(&pbx));
    let sid = check_initial_signalling(&pbx, &a, &b);
    std::thread::sleep(Duration::from_secs(2));
    let ctx = || reports(&[&a, &b], Some(&pbx));

    // Hold: baresip sends a re-INVITE with a=sendonly. The PBX must carry it to the other
    // phone (which then stops sending into the void and shows the call held) and carry
    // the answer back.
    a.hold();
    let both = poll_until(Duration::from_secs(10), || {
        (invites(&b).len() >= 2 && invite_oks(&a).len() >= 2).then_some(())
    });
    if both.is_none() {
        panic!(
            "hold did not cross the PBX: the callee received {} INVITE(s), the caller {} 200 OK(s) to INVITEs \
             (want 2 and 2)\n{}",
            invites(&b).len(),
            invite_oks(&a).len(),
            ctx()
        );
    }
    let hold_offer = invites(&b)[1].text.clone();
    let hold_answer = invite_oks(&a)[1].text.clone();
    let offered = sdp_direction(&hold_offer);
    assert!(
        offered == "sendonly" || offered == "inactive",
        "the held phone's re-INVITE says a={offered}, expected sendonly (or inactive):\n{hold_offer}\n{}",
        ctx()
    );
    let got = sdp_direction(&hold_answer);
    assert!(
        got == "recvonly" || got == "inactive",
        "the holding phone's 200 OK says a={got}, expected recvonly (or inactive):\n{hold_answer}\n{}",
        ctx()
    );
    pbx.assert_relay_port(
        sdp_audio_port(&hold_offer).unwrap_or(0),
        "the hold re-INVITE to the callee",
    );
    pbx.assert_relay_port(
        sdp_audio_port(&hold_answer).unwrap_or(0),
        "the 200 OK to the hold re-INVITE",
    );

    // Held for a while: the call stays up.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        a.event_count("CALL_CLOSED") + b.event_count("CALL_CLOSED"),
        0,
        "the call ended on hold\n{}",
        ctx()
    );
    assert_eq!(
        pbx.metric(CALLS_ACTIVE),
        Some(1.0),
        "a held call is still an active call\n{}",
        pbx.metrics()
    );

    a.resume();
    let both = poll_until(Duration::from_secs(10), || {
        (invites(&b).len() >= 3 && invite_oks(&a).len() >= 3).then_some(())
    });
    if both.is_none() {
        panic!(
            "resume did not cross the PBX: the callee received {} INVITE(s), the caller {} 200 OK(s) (want 3 and 3)\n{}",
            invites(&b).len(),
            invite_oks(&a).len(),
            ctx()
        );
    }
    let resume_offer = invites(&b)[2].text.clone();
    let resume_answer = invite_oks(&a)[2].text.clone();
    assert_eq!(
        sdp_direction(&resume_offer),
        "sendrecv",
        "the resume re-INVITE to the callee:\n{resume_offer}"
    );
    assert_eq!(
        sdp_direction(&resume_answer),
        "sendrecv",
        "the 200 OK to the resume:\n{resume_answer}"
    );

    std::thread::sleep(Duration::from_secs(2));
    // This time the callee hangs up.
    b.hangup();
    let talked = answered.elapsed().as_secs_f64();
    closed(&[&a, &b], Some(&pbx));

    // Until the hold, both heard each other (sndfile records nothing after it: see the
    // module comment).
    assert_heard(&a, CALLEE_HZ, CALLER_HZ, 1.2, ctx);
    assert_heard(&b, CALLER_HZ, CALLEE_HZ, 1.2, ctx);

    the_one_cdr(
        &pbx,
        &CdrExpect {
            caller: "101",
            callee: "102",
            disposition: "answered",
            hangup_by: Some("callee"),
            session_id: Some(&sid),
            billsec: Some((talked, 1.5)),
        },
    );
}

#[test]
fn baresip_calls_linphonec_through_the_pbx_and_each_hears_the_other() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let a = baresip(Some(&pbx), "101", tones.caller(), false);
    let mut l = Linphonec::start(LinphoneAccount {
        user: "102".into(),
        password: password("102"),
        domain: DOMAIN.into(),
        registrar: pbx.sip_udp,
        transport: "udp".into(),
        expires: 600,
        algorithm: None,
    });
    let heard = tones.out("linphonec-heard.wav");
    l.use_files(&tones.callee(), &heard);
    assert!(
        l.enable_autoanswer(Duration::from_secs(20)),
        "linphonec: no auto answer\n{}",
        l.report()
    );
    let ctx = || format!("{}\n{}\n{}", a.report(), l.report(), pbx.logs());
    wait_registered(&pbx, &[&a]);
    assert!(
        l.wait_register_oks(1, Duration::from_secs(30)),
        "linphonec did not register\n{}",
        ctx()
    );
    pbx.wait_metric("hark_registrations", 2.0, Duration::from_secs(10));

    a.dial(&format!("sip:102@{DOMAIN}"));
    let answered = established(&[&a], Some(&pbx));
    assert!(
        l.wait_call_state("LinphoneCallStreamsRunning", 1, ESTABLISH),
        "linphonec did not run the call's streams\n{}",
        ctx()
    );

    // The session id: in the INVITE linphonec received (its log) and the caller's 200.
    let invite = l
        .logged_requests("INVITE")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no INVITE in linphonec's log\n{}", ctx()));
    let sid = header(&invite, "X-Session-Id")
        .map(str::to_string)
        .unwrap_or_else(|| panic!("linphonec's INVITE has no X-Session-Id:\n{invite}\n{}", ctx()));
    assert_eq!(
        header(&invite, "X-Recording-State").map(str::trim),
        Some("off"),
        "X-Recording-State in linphonec's INVITE:\n{invite}"
    );
    let ok = invite_oks(&a).into_iter().next().expect("a 200 OK at the caller");
    assert_eq!(
        header(&ok.text, "X-Session-Id"),
        Some(sid.as_str()),
        "X-Session-Id of the caller's 200 OK:\n{}",
        ok.text
    );
    let port = sdp_audio_port(&invite).unwrap_or(0);
    pbx.assert_relay_port(port, "the INVITE to linphonec");

    std::thread::sleep(TALK);
    a.hangup();
    let talked = answered.elapsed().as_secs_f64();
    closed(&[&a], Some(&pbx));
    assert!(
        l.wait_call_state("LinphoneCallReleased", 1, Duration::from_secs(15)),
        "the caller's hang-up did not end linphonec's call\n{}",
        ctx()
    );

    assert_heard(&a, CALLEE_HZ, CALLER_HZ, 2.5, ctx);
    let report = analyse_file(&heard, CALLER_HZ, CALLEE_HZ, SKIP_SECS);
    if let Err(e) = report.check(2.5, FRACTION) {
        panic!(
            "linphonec does not hear the caller's {CALLER_HZ} Hz through the PBX: {e}\n{}",
            ctx()
        );
    }

    the_one_cdr(
        &pbx,
        &CdrExpect {
            caller: "101",
            callee: "102",
            disposition: "answered",
            hangup_by: Some("caller"),
            session_id: Some(&sid),
            billsec: Some((talked, 1.5)),
        },
    );
}
