//! The media-control MESSAGE of `hark phone` on the wire (SPEC §1, issue 6), against sipp
//! UAS scenarios written from the protocol, not from the phone (tests/sipp/phone_*.xml):
//! - out of dialog: `Content-Type: application/x-media-control+json` exactly, a JSON body
//!   with the operation and the session_id the scenario sent as X-Session-Id, a true
//!   Content-Length, outside the call's dialog, and after the scenario's 407 a retry of
//!   the same request (same Call-ID, next CSeq) with valid Proxy-Authorization;
//! - in dialog: the call's Call-ID and both tags, `Content-Type:
//!   application/x-media-control` exactly, the operation as plain text, a true
//!   Content-Length, and a CSeq above the INVITE's.

use std::time::Duration;

use hark_e2e::calls::body;
use hark_e2e::phone::{Phone, account_args};
use hark_e2e::sipp::{Sipp, SippRun, header};
use hark_e2e::free_port;
use hark_sip::auth::{AuthQop, DigestCredentials, ha1, response};

const SESSION: &str = "sipp-session-7f3a91";
const PASSWORD: &str = "pw-101-s3cret";
const EXIT: Duration = Duration::from_secs(40);

fn uas(scenario: &str, calls: u32) -> hark_e2e::sipp::SippBg {
    Sipp::new(scenario, ([127, 0, 0, 1], 9).into())
        .key("user", "101")
        .key("session", SESSION)
        .key("rtp_port", &free_port().to_string())
        .media_port(hark_e2e::calls::sipp_media_ports())
        .arg("-m")
        .arg(&calls.to_string())
        .arg("-l")
        .arg("10")
        .timeout(Duration::from_secs(30))
        .spawn()
}

fn call_through(sipp_port: u16, control: &str) -> Phone {
    let server = format!("127.0.0.1:{sipp_port}").parse().unwrap();
    Phone::call(
        account_args(server, "101", PASSWORD, "pbx.test"),
        &format!("sip:service@127.0.0.1:{sipp_port}"),
        &["--no-register", "--duration", "4", "--pause-at", "1", "--resume-at", "2", "--control", control],
    )
}

fn content_length_is_true(message: &str) {
    let declared: usize = header(message, "Content-Length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length:\n{message}"));
    let body = body(message).trim_end_matches(['\r', '\n']);
    assert_eq!(declared, body.len(), "Content-Length must be the body's true length:\n{message}");
}

fn tag_of(value: &str) -> Option<String> {
    value.split(';').find_map(|p| p.trim().strip_prefix("tag=").map(str::to_owned))
}

fn requests(run: &SippRun, method: &str) -> Vec<String> {
    run.received().into_iter().filter(|m| m.starts_with(&format!("{method} "))).collect()
}

#[test]
fn out_of_dialog_message_is_json_with_the_session_id_and_answers_the_407() {
    let sipp = uas("phone_control_out_of_dialog.xml", 3);
    let mut phone = call_through(sipp.local_port, "out-of-dialog");
    phone.assert_success(EXIT);
    let run = sipp.wait(Duration::from_secs(20));
    let ctx = || format!("{}\n{}", run.report(), phone.report());
    assert!(run.success(), "the scenario failed\n{}", ctx());

    let invite = requests(&run, "INVITE").into_iter().next().unwrap_or_else(|| panic!("no INVITE\n{}", ctx()));
    let messages = requests(&run, "MESSAGE");
    assert_eq!(messages.len(), 4, "pause and resume, each once without and once with credentials\n{}", ctx());
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(header(m, "Content-Type"), Some("application/x-media-control+json"), "{m}");
        content_length_is_true(m);
        assert_ne!(header(m, "Call-ID"), header(&invite, "Call-ID"), "out of dialog means a Call-ID of its own: {m}");
        assert_eq!(header(m, "To").and_then(tag_of), None, "out of dialog: no To tag: {m}");
        let json: serde_json::Value = serde_json::from_str(body(m).trim())
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}):\n{m}"));
        let op = if i < 2 { "pause-audio-recording" } else { "resume-audio-recording" };
        assert_eq!(json["operation"], op, "{m}");
        assert_eq!(json["session_id"], SESSION, "the session id must be the X-Session-Id the UAS sent: {m}");
        let auth = header(m, "Proxy-Authorization");
        if i % 2 == 0 {
            assert!(auth.is_none(), "the first try carries no credentials: {m}");
        } else {
            let first = &messages[i - 1];
            assert_eq!(header(m, "Call-ID"), header(first, "Call-ID"), "the retry is the same request: {m}");
            let cseq = |msg: &str| header(msg, "CSeq").and_then(|c| c.split_whitespace().next()?.parse::<u32>().ok());
            assert_eq!(cseq(m), cseq(first).map(|c| c + 1), "the retry takes the next CSeq: {m}");
            let auth = auth.unwrap_or_else(|| panic!("the retry must answer the 407 with Proxy-Authorization: {m}"));
            let creds = DigestCredentials::parse(auth).unwrap_or_else(|e| panic!("unparsable credentials ({e}): {auth}"));
            assert_eq!((creds.username.as_str(), creds.realm.as_str()), ("101", "pbx.test"), "{auth}");
            assert!(run.log.contains(&format!("nonce_sent={}", creds.nonce)), "the nonce must be the 407's: {auth}");
            let qop = creds.cnonce.as_deref().zip(creds.nc).map(|(cnonce, nc)| AuthQop { nc, cnonce });
            let ha1 = ha1(creds.algorithm, "101", "pbx.test", PASSWORD);
            let expected = response(creds.algorithm, &ha1, &creds.nonce, qop, "MESSAGE", &creds.uri);
            assert_eq!(creds.response, expected, "wrong digest response: {auth}");
        }
    }
    let oks = phone.events().into_iter().filter(|e| e.starts_with("control-ok")).count();
    assert_eq!(oks, 2, "{}", ctx());
    let states: Vec<String> = phone.events().into_iter().filter(|e| e.starts_with("recording-state")).collect();
    assert_eq!(states.len(), 3, "audio, then paused and recording again after each 200: {states:?}");
    assert!(states[1].ends_with("state=audio;paused") && states[2].ends_with("state=audio"), "{states:?}");
}

#[test]
fn in_dialog_message_is_plain_text_in_the_calls_dialog() {
    let sipp = uas("phone_control_in_dialog.xml", 1);
    let mut phone = call_through(sipp.local_port, "in-dialog");
    phone.assert_success(EXIT);
    let run = sipp.wait(Duration::from_secs(20));
    let ctx = || format!("{}\n{}", run.report(), phone.report());
    assert!(run.success(), "the scenario failed\n{}", ctx());

    let invite = requests(&run, "INVITE").into_iter().next().unwrap_or_else(|| panic!("no INVITE\n{}", ctx()));
    let ok = run
        .sent()
        .into_iter()
        .find(|m| m.starts_with("SIP/2.0 200") && header(m, "CSeq").is_some_and(|c| c.ends_with("INVITE")))
        .unwrap_or_else(|| panic!("no 200 to the INVITE\n{}", ctx()));
    let our_tag = header(&ok, "To").and_then(tag_of).expect("the 200 has a To tag");
    let invite_cseq: u32 = header(&invite, "CSeq").and_then(|c| c.split_whitespace().next()?.parse().ok()).unwrap();
    let messages = requests(&run, "MESSAGE");
    assert_eq!(messages.len(), 2, "pause and resume\n{}", ctx());
    for (m, op) in messages.iter().zip(["pause-audio-recording", "resume-audio-recording"]) {
        assert_eq!(header(m, "Call-ID"), header(&invite, "Call-ID"), "in dialog: the call's Call-ID: {m}");
        assert_eq!(header(m, "From").and_then(tag_of), header(&invite, "From").and_then(tag_of), "{m}");
        assert_eq!(header(m, "To").and_then(tag_of).as_deref(), Some(our_tag.as_str()), "{m}");
        let cseq: u32 = header(m, "CSeq").and_then(|c| c.split_whitespace().next()?.parse().ok()).unwrap();
        assert!(cseq > invite_cseq, "in-dialog CSeq {cseq} must pass the INVITE's {invite_cseq}");
        assert_eq!(header(m, "Content-Type"), Some("application/x-media-control"), "{m}");
        assert_eq!(body(m).trim_end_matches(['\r', '\n']), op, "{m}");
        content_length_is_true(m);
    }
    let oks = phone.events().into_iter().filter(|e| e.starts_with("control-ok")).count();
    assert_eq!(oks, 2, "{}", ctx());
}

#[test]
fn blind_transfer_sends_refer_in_dialog_and_follows_the_notify() {
    let sipp = uas("phone_refer_uas.xml", 1);
    let server = format!("127.0.0.1:{}", sipp.local_port).parse().unwrap();
    let mut phone = Phone::call(
        account_args(server, "101", PASSWORD, "pbx.test"),
        &format!("sip:service@127.0.0.1:{}", sipp.local_port),
        &["--no-register", "--duration", "10", "--transfer-to", "103", "--transfer-at", "1"],
    );
    phone.assert_success(EXIT);
    let run = sipp.wait(Duration::from_secs(20));
    let ctx = || format!("{}\n{}", run.report(), phone.report());
    assert!(run.success(), "the scenario failed\n{}", ctx());
    assert_eq!(run.logged("refer_to").as_deref(), Some("sip:103@pbx.test"), "{}", ctx());
    let invite = requests(&run, "INVITE").into_iter().next().unwrap();
    let refer = requests(&run, "REFER").into_iter().next().unwrap();
    assert_eq!(header(&refer, "Call-ID"), header(&invite, "Call-ID"), "REFER goes in the call's dialog");
    let transfer = phone.events().into_iter().find(|e| e.starts_with("transfer ")).unwrap_or_default();
    assert!(transfer.contains("ok=true") && transfer.contains("200 OK"), "{transfer}\n{}", ctx());
    // The phone hung up after the transfer, well before --duration.
    let ended = phone.events().into_iter().find(|e| e.starts_with("ended")).unwrap_or_default();
    assert!(ended.contains("local hangup"), "{ended}");
}
