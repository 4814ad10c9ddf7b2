//! Calls through `hark pbx serve` with sipp on one or both ends (issue 3).
//!
//! sipp scenarios (tests/sipp/uac_call*.xml, uas_call*.xml) hold the protocol checks that
//! fail the scenario itself: a UAS fails unless the INVITE it receives carries
//! `X-Session-Id` and `X-Recording-State`, a UAC fails unless the 200 OK carries
//! `X-Session-Id`; both log what they saw (`sid=`, `recstate=`, `relay=`…) for the test
//! to compare. Where media matters, the SDP of a sipp phone names an RTP socket the test
//! owns ([`RtpEndpoint`]), so the test sends and observes the RTP itself.
//!
//! A sipp callee first registers (register_auth.xml) from the port its UAS scenario then
//! runs on: the PBX sends the INVITE to that registered Contact.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hark_e2e::audio::{analyse, analyse_file};
use hark_e2e::baresip::{Baresip, BaresipAccount, BaresipOptions};
use hark_e2e::calls::{
    CALLEE_HZ, CALLER_HZ, CallPbx, CdrExpect, Tones, password, register_sipp_callee, sipp_callee, sipp_caller,
    the_one_cdr,
};
use hark_e2e::rtp::{Payload, RtpEndpoint};
use hark_e2e::sipp::{SippBg, SippRun};
use hark_e2e::{DOMAIN, Pbx, free_port, poll_until};

const CALLS_ACTIVE: &str = "hark_calls_active";
const LOGGED: Duration = Duration::from_secs(20);

fn logged(bg: &mut SippBg, name: &str, pbx: &Pbx, others: &str) -> String {
    match bg.wait_logged(name, LOGGED) {
        Some(v) => v,
        None => pbx.fail(&format!(
            "sipp did not log `{name}=` within {LOGGED:?}\n--- its log ---\n{}\n--- its messages ---\n{}\n{others}",
            bg.log(),
            bg.messages()
        )),
    }
}

fn port_of(value: &str, what: &str) -> u16 {
    value
        .parse()
        .unwrap_or_else(|_| panic!("{what}: {value:?} is not a port"))
}

fn both_ok(pbx: &Pbx, uac: &SippRun, uas: &SippRun) {
    if !uac.success() || !uas.success() {
        pbx.fail(&format!(
            "the call failed (caller exit {}, callee exit {})\n=== CALLER ===\n{}\n=== CALLEE ===\n{}",
            uac.status,
            uas.status,
            uac.report(),
            uas.report()
        ));
    }
}

#[test]
fn sipp_caller_and_sipp_callee_are_given_one_session_id() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let port = register_sipp_callee(&pbx, "102");
    let (caller_rtp, callee_rtp) = (free_port(), free_port());
    let uas = sipp_callee("uas_call.xml", &pbx, "102", port, callee_rtp)
        .timeout(Duration::from_secs(40))
        .spawn();
    let mut uac = sipp_caller("uac_call.xml", &pbx, "101", "102", caller_rtp)
        .arg("-d")
        .arg("3000")
        .timeout(Duration::from_secs(40))
        .spawn();
    let uac_sid = logged(&mut uac, "sid", &pbx, &uas.messages());
    let answered = Instant::now();
    // The call is up: the gauge counts it.
    pbx.wait_metric(CALLS_ACTIVE, 1.0, Duration::from_secs(5));
    let uac = uac.wait(Duration::from_secs(10));
    let talked = answered.elapsed().as_secs_f64();
    let uas = uas.wait(Duration::from_secs(10));
    both_ok(&pbx, &uac, &uas);

    let uas_sid = uas.logged("sid").unwrap_or_default();
    assert!(!uas_sid.is_empty(), "the callee logged no session id\n{}", uas.report());
    assert_eq!(
        uac_sid, uas_sid,
        "the X-Session-Id of the caller's 200 OK differs from the callee's INVITE's"
    );
    assert_eq!(
        uas.logged("recstate").as_deref(),
        Some("off"),
        "X-Recording-State of the callee's INVITE"
    );
    assert_eq!(
        uac.logged("recstate").as_deref(),
        Some("off"),
        "X-Recording-State of the caller's 200 OK"
    );

    // Media anchored at the PBX on both legs.
    for (run, other_port, who) in [(&uac, callee_rtp, "caller"), (&uas, caller_rtp, "callee")] {
        assert_eq!(
            run.logged("relay_ip").as_deref(),
            Some("127.0.0.1"),
            "the {who}'s SDP connection address"
        );
        let relay = port_of(&run.logged("relay").unwrap_or_default(), "relay");
        pbx.assert_relay_port(relay, &format!("the SDP sent to the {who}"));
        assert_ne!(relay, other_port, "the {who} was given the other phone's own port");
    }
    pbx.wait_metric(CALLS_ACTIVE, 0.0, Duration::from_secs(10));
    the_one_cdr(
        &pbx,
        &CdrExpect {
            caller: "101",
            callee: "102",
            disposition: "answered",
            hangup_by: Some("caller"),
            session_id: Some(&uac_sid),
            billsec: Some((talked, 1.5)),
        },
    );
}

#[test]
fn a_sipp_callee_that_hangs_up_ends_the_callers_leg() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let port = register_sipp_callee(&pbx, "102");
    let mut uas = sipp_callee("uas_call_bye.xml", &pbx, "102", port, free_port())
        .arg("-d")
        .arg("2000")
        .timeout(Duration::from_secs(40))
        .spawn();
    let uac = sipp_caller("uac_call_wait_bye.xml", &pbx, "101", "102", free_port())
        .timeout(Duration::from_secs(30))
        .run();
    let sid = uas.wait_logged("sid", Duration::from_secs(1)).unwrap_or_default();
    let uas = uas.wait(Duration::from_secs(10));
    both_ok(&pbx, &uac, &uas);
    assert_eq!(
        uac.logged("bye").as_deref(),
        Some("received"),
        "the callee's BYE never reached the caller"
    );
    assert_eq!(uac.logged("sid").as_deref(), Some(sid.as_str()), "session ids differ");
    the_one_cdr(
        &pbx,
        &CdrExpect {
            caller: "101",
            callee: "102",
            disposition: "answered",
            hangup_by: Some("callee"),
            session_id: Some(&sid),
            billsec: Some((2.0, 1.5)),
        },
    );
}

fn baresip_callee(pbx: &Pbx, ext: &str, tones: &Tones) -> Baresip {
    let b = Baresip::start_with(
        BaresipAccount {
            user: ext.into(),
            password: password(ext),
            domain: DOMAIN.into(),
            registrar: pbx.sip_udp,
            transport: "udp".into(),
            regint: 600,
        },
        BaresipOptions {
            auto_answer: true,
            play: Some(tones.callee()),
            record: true,
            codecs: Some("PCMA".into()),
            no_registrar: false,
        },
    );
    assert!(
        b.wait_register_oks(1, Duration::from_secs(30)),
        "baresip did not register\n{}",
        b.report()
    );
    b
}

fn baresip_caller(pbx: &Pbx, ext: &str, tones: &Tones) -> Baresip {
    let a = Baresip::start_with(
        BaresipAccount {
            user: ext.into(),
            password: password(ext),
            domain: DOMAIN.into(),
            registrar: pbx.sip_udp,
            transport: "udp".into(),
            regint: 600,
        },
        BaresipOptions {
            auto_answer: false,
            play: Some(tones.caller()),
            record: true,
            codecs: Some("PCMA".into()),
            no_registrar: false,
        },
    );
    assert!(
        a.wait_register_oks(1, Duration::from_secs(30)),
        "baresip did not register\n{}",
        a.report()
    );
    a
}

/// sipp calls a real phone: the 200 OK that reaches sipp carries the session id of the
/// INVITE baresip got, and audio crosses the relay both ways (the test's RTP socket plays
/// 440 Hz and hears baresip's 660 Hz; baresip hears 440 Hz), the PBX sending from the
/// very port it named in its SDP (symmetric RTP, which phones behind NAT rely on).
#[test]
fn sipp_calls_baresip_and_audio_crosses_the_relay_both_ways() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let b = baresip_callee(&pbx, "102", &tones);
    let mut phone = RtpEndpoint::loopback();
    let mut uac = sipp_caller("uac_call.xml", &pbx, "101", "102", phone.port())
        .arg("-d")
        .arg("5000")
        .timeout(Duration::from_secs(40))
        .spawn();
    let relay = port_of(&logged(&mut uac, "relay", &pbx, &b.report()), "relay");
    let sid = uac.wait_logged("sid", Duration::from_secs(1)).unwrap_or_default();
    let relay_addr: SocketAddr = ([127, 0, 0, 1], relay).into();
    let t0 = Instant::now();
    phone.start_sending(relay_addr, Payload::AlawTone(CALLER_HZ), 0x1111_0101);
    let uac = uac.wait(Duration::from_secs(10));
    let t1 = Instant::now();
    phone.stop_sending();
    if !uac.success() {
        pbx.fail(&format!("{}\n{}", uac.report(), b.report()));
    }
    assert!(
        b.wait_event("CALL_CLOSED", 1, Duration::from_secs(10)).is_some(),
        "the BYE did not reach baresip\n{}",
        b.report()
    );

    // The session id baresip saw.
    let invite = b
        .received_requests("INVITE")
        .into_iter()
        .next()
        .expect("baresip got an INVITE");
    assert_eq!(
        hark_e2e::sipp::header(&invite.text, "X-Session-Id"),
        Some(sid.as_str()),
        "X-Session-Id: baresip's INVITE vs sipp's 200 OK\n{}",
        invite.text
    );

    // What the test's socket heard: baresip's tone, from the relay port it was given.
    let from_relay = phone.alaw_audio(Some(relay_addr), t0, t1, "RTP from the relay port");
    let report = analyse(&from_relay, CALLEE_HZ, CALLER_HZ, 0.5);
    if let Err(e) = report.check(2.5, 0.8) {
        pbx.fail(&format!(
            "the caller's socket does not hear the callee's {CALLEE_HZ} Hz from the relay port {relay}: {e}\n{}\n{}",
            phone.summary(),
            b.report()
        ));
    }
    let path = b
        .received_audio()
        .unwrap_or_else(|| panic!("baresip recorded nothing\n{}", b.report()));
    if let Err(e) = analyse_file(&path, CALLER_HZ, CALLEE_HZ, 0.5).check(2.5, 0.8) {
        pbx.fail(&format!(
            "baresip does not hear the caller's {CALLER_HZ} Hz: {e}\n{}",
            b.report()
        ));
    }
}

/// Hold and resume, with the media checked on the held side by the test's own socket:
/// baresip (101, 440 Hz) calls a sipp callee (102) whose SDP names the socket. The
/// re-INVITEs must cross the PBX (sipp's uas_call_hold.xml fails unless the hold offer is
/// sendonly/inactive and the resume offer sendrecv), and after the resume the caller's
/// audio must flow through the relay again.
#[test]
fn hold_and_resume_keep_the_media_path_through_the_relay() {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    let tones = Tones::new();
    let port = register_sipp_callee(&pbx, "102");
    let mut phone = RtpEndpoint::loopback();
    let mut uas = sipp_callee("uas_call_hold.xml", &pbx, "102", port, phone.port())
        .timeout(Duration::from_secs(60))
        .spawn();
    let a = baresip_caller(&pbx, "101", &tones);
    a.dial(&format!("sip:102@{DOMAIN}"));
    let relay = port_of(&logged(&mut uas, "relay", &pbx, &a.report()), "relay");
    let relay_addr: SocketAddr = ([127, 0, 0, 1], relay).into();
    phone.start_sending(relay_addr, Payload::AlawTone(CALLEE_HZ), 0x2222_0102);
    if a.wait_event("CALL_ESTABLISHED", 1, Duration::from_secs(20)).is_none() {
        pbx.fail(&format!("not established\n{}\n{}", a.report(), uas.messages()));
    }
    let t_established = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));

    let t_hold = Instant::now();
    a.hold();
    let hold_dir = logged(&mut uas, "hold", &pbx, &a.report());
    std::thread::sleep(Duration::from_secs(2));
    a.resume();
    logged(&mut uas, "resume", &pbx, &a.report());
    // baresip has the 200 OK to its resume once it ACKs; give it a moment to restart.
    let resumed = poll_until(Duration::from_secs(5), || {
        (a.received_responses("INVITE")
            .iter()
            .filter(|m| m.status() == Some(200))
            .count()
            >= 3)
            .then_some(())
    });
    assert!(
        resumed.is_some(),
        "baresip never got the 200 OK to its resume\n{}",
        a.report()
    );
    let t_resumed = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let t_end = Instant::now();
    a.hangup();
    let uas = uas.wait(Duration::from_secs(15));
    phone.stop_sending();
    if !uas.success() {
        pbx.fail(&format!(
            "the callee's scenario failed\n{}\n{}",
            uas.report(),
            a.report()
        ));
    }

    let before = phone.alaw_audio(Some(relay_addr), t_established, t_hold, "caller audio before hold");
    let after = phone.alaw_audio(Some(relay_addr), t_resumed, t_end, "caller audio after resume");
    let held = phone.alaw_audio(
        Some(relay_addr),
        t_hold + Duration::from_millis(500),
        t_resumed,
        "during hold",
    );
    let context = || {
        format!(
            "hold offer: a={hold_dir}\n{}\n{}\n{}",
            phone.summary(),
            a.report(),
            pbx.logs()
        )
    };
    if let Err(e) = analyse(&before, CALLER_HZ, CALLEE_HZ, 0.5).check(1.5, 0.8) {
        panic!(
            "before the hold, the callee does not hear the caller: {e}\n{}",
            context()
        );
    }
    if let Err(e) = analyse(&after, CALLER_HZ, CALLEE_HZ, 0.5).check(1.5, 0.8) {
        panic!(
            "after the resume, the caller's audio no longer reaches the callee through the relay: {e}\n\
             (during the hold {:.1} s of audio arrived)\n{}",
            held.duration_secs(),
            context()
        );
    }
    // And the other way, until the hold (baresip records nothing after it).
    let path = a
        .received_audio()
        .unwrap_or_else(|| panic!("baresip recorded nothing\n{}", a.report()));
    if let Err(e) = analyse_file(&path, CALLEE_HZ, CALLER_HZ, 0.5).check(1.2, 0.8) {
        panic!("the caller does not hear the callee's socket: {e}\n{}", context());
    }
    the_one_cdr(
        &pbx,
        &CdrExpect {
            caller: "101",
            callee: "102",
            disposition: "answered",
            hangup_by: Some("caller"),
            session_id: uas.logged("sid").as_deref(),
            billsec: None,
        },
    );
}
