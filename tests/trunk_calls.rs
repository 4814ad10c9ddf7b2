//! Calls over a trunk (issue 5), with the carrier played by a SIP UA the test owns on
//! 127.0.0.2 (its own loopback address: trunks are authenticated by IP), and the
//! recording policy's rules 4 and 5 across transfers and forwards.
//!
//! What is proved:
//! - an inbound call to a DID rings its extension and is recorded; the agent's blind
//!   transfer to an external number (through the outbound route) connects the caller to
//!   the "mobile" at the carrier; with `record_between_external_numbers` off the
//!   recording stops at the transfer (status stopped, reason external-to-external, the
//!   audio before it intact), with it on the recording goes on to the end;
//! - an inbound call forwarded (always) to a mobile while the switch is off is not
//!   recorded at all, the mobile's INVITE says `X-Recording-State: off`, and the CDR
//!   says why;
//! - an outbound call: the dialled 9-prefixed number reaches the carrier without the 9,
//!   with the trunk's caller ID, and the carrier's 401 is answered with the trunk's
//!   credentials; the CDR is outbound with an external callee;
//! - an INVITE from an address that is no trunk, without an account, gets 403, and a
//!   REFER to a number no route allows gets 403.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hark_e2e::audio::{analyse, read_wav_channels};
use hark_e2e::calls::{CallPbx, field, party_pairs, password};
use hark_e2e::rtp::{Payload, RtpEndpoint};
use hark_e2e::ua::{Dialog, Ua, expect_status, relay_addr};
use hark_e2e::{DOMAIN, Pbx, poll_until};

const CARRIER_IP: [u8; 4] = [127, 0, 0, 2];
const DID: &str = "5551000";
const MOBILE: &str = "555777";
const CUSTOMER: &str = "+15550001";
const CUSTOMER_HZ: f64 = 440.0;
const AGENT_HZ: f64 = 660.0;
const MOBILE_HZ: f64 = 880.0;




/// A PBX with extensions 101 and 102, recording on, the system switch as given, and a
/// trunk to a carrier UA on 127.0.0.2 (DID 5551000 → 101; `9…` dials out without the 9).
struct Office {
    pbx: CallPbx,
    carrier: Ua,
}

fn office(record_external: bool, trunk_extra: &[&str]) -> Office {
    let pbx = CallPbx::start(&["101", "102"], 30, &[]);
    pbx.configure(&["tenant", "set", "--tenant", "office", "--audio-recording", "on"]);
    pbx.configure(&["system", "set", "--record-between-external-numbers", if record_external { "on" } else { "off" }]);
    let carrier = Ua::new_on(IpAddr::from(CARRIER_IP), pbx.sip_udp, CUSTOMER, "", "carrier.example");
    let host = carrier.local().to_string();
    let did = format!("{DID}=101");
    let mut args = vec!["trunk", "add", "--tenant", "office", "--name", "carrier", "--host", &host, "--did", &did, "--outbound", r"9(\d+)"];
    args.extend_from_slice(trunk_extra);
    pbx.configure(&args);
    Office { pbx, carrier }
}

struct Agent {
    ua: Ua,
    rtp: RtpEndpoint,
}

fn agent(pbx: &Pbx, ext: &str) -> Agent {
    let ua = Ua::new(pbx.sip_udp, ext, &password(ext), DOMAIN);
    ua.register(3600);
    let rtp = RtpEndpoint::loopback();
    ua.answer_calls(rtp.port());
    Agent { ua, rtp }
}

/// The carrier's inbound call to the DID, answered by 101; tones both ways.
fn inbound_call(o: &Office, a: &mut Agent, customer: &mut RtpEndpoint) -> (Dialog, Dialog, SocketAddr, SocketAddr) {
    let pbx = &o.pbx;
    let dc = o
        .carrier
        .call(DID, customer.port())
        .unwrap_or_else(|r| pbx.fail(&format!("the carrier's call to the DID failed: {}\n{}", r.first_line, o.carrier.report())));
    let da = poll_until(Duration::from_secs(5), || a.ua.incoming().into_iter().next())
        .unwrap_or_else(|| pbx.fail(&format!("101 did not ring for the DID\n{}", a.ua.report())));
    let (c_relay, a_relay) = (relay_addr(&dc, pbx, "the carrier's 200"), relay_addr(&da, pbx, "101's INVITE"));
    customer.start_sending(c_relay, Payload::AlawTone(CUSTOMER_HZ), 0xC0);
    a.rtp.start_sending(a_relay, Payload::AlawTone(AGENT_HZ), 0xA0);
    (dc, da, c_relay, a_relay)
}

fn transfer_to_mobile(record_external: bool) {
    let o = office(record_external, &[]);
    let pbx = &o.pbx;
    let mut a = agent(pbx, "101");
    let mut customer = RtpEndpoint::loopback();
    let mut mobile = RtpEndpoint::loopback();
    let (mut dc, mut da, c_relay, _) = inbound_call(&o, &mut a, &mut customer);
    o.carrier.answer_calls(mobile.port());
    let sid = dc.session_id();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));

    let r = a.ua.refer(&mut da, &format!("<sip:9{MOBILE}@{DOMAIN}>"));
    expect_status(pbx, &r, 202, "the agent's REFER to the mobile", &a.ua.report());
    let t_transfer = Instant::now();
    let dm = poll_until(Duration::from_secs(5), || o.carrier.incoming().into_iter().next())
        .unwrap_or_else(|| pbx.fail(&format!("the mobile got no INVITE\n{}", o.carrier.report())));
    let ruri_user = dm.setup.first_line.split_whitespace().nth(1).unwrap_or("").to_string();
    if !ruri_user.starts_with(&format!("sip:{MOBILE}@")) {
        pbx.fail(&format!("the carrier was asked for {ruri_user}, want sip:{MOBILE}@… (the 9 dropped)"));
    }
    mobile.start_sending(relay_addr(&dm, pbx, "the mobile's INVITE"), Payload::AlawTone(MOBILE_HZ), 0x30);
    if a.ua.wait_requests("BYE", 1, Duration::from_secs(5)).is_none() {
        pbx.fail(&format!("the agent was not released after the transfer\n{}", a.ua.report()));
    }
    a.rtp.stop_sending();
    std::thread::sleep(Duration::from_millis(2500));
    let pcm = customer.alaw_audio(Some(c_relay), t_transfer + Duration::from_millis(700), Instant::now(), "customer");
    let heard = analyse(&pcm, MOBILE_HZ, AGENT_HZ, 0.0).expected_secs();
    if heard < 1.0 {
        pbx.fail(&format!("the customer heard the mobile for {heard:.1} s after the transfer\n{}", customer.summary()));
    }
    let bye = o.carrier.bye(&mut dc);
    expect_status(pbx, &bye, 200, "the customer hangs up", &o.carrier.report());
    let ended = Instant::now();

    let rec = pbx.wait_recording("the inbound call's recording", Duration::from_secs(10), |r| {
        field(r, "call_session_id") == sid && !matches!(field(r, "status").as_str(), "recording" | "paused")
    });
    let dur = rec["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    let until_transfer = t_transfer.duration_since(t0).as_secs_f64();
    let whole = ended.duration_since(t0).as_secs_f64();
    let stop_reason = field(&rec, "stop_reason");
    let parties: Vec<(String, String)> =
        party_pairs(&rec, "party", "kind");
    if !parties.contains(&(CUSTOMER.into(), "external".into())) || !parties.contains(&("101".into(), "internal".into())) {
        pbx.fail(&format!("the recording's parties should be the customer (external) and 101: {parties:?}"));
    }
    if record_external {
        if field(&rec, "status") != "completed" || dur < whole - 0.8 {
            pbx.fail(&format!("with the switch on the recording must go on to the end ({whole:.1} s): {dur:.1} s\n{rec:#}"));
        }
        if !parties.contains(&(MOBILE.into(), "external".into())) {
            pbx.fail(&format!("the mobile joined the running recording and should be among its parties: {parties:?}"));
        }
    } else {
        if field(&rec, "status") != "stopped" || stop_reason != "external-to-external" || (dur - until_transfer).abs() > 0.6 {
            pbx.fail(&format!(
                "with the switch off the recording must stop at the transfer ({until_transfer:.1} s) with reason \
                 external-to-external: status {}, reason {stop_reason:?}, {dur:.1} s\n{rec:#}",
                field(&rec, "status")
            ));
        }
        // The audio before the transfer is intact: the customer left, the agent right.
        let path = field(&rec, "path");
        let (_, ch) = read_wav_channels(std::path::Path::new(&path)).unwrap_or_else(|e| pbx.fail(&e));
        let end = ch[0].duration_secs() - 0.2;
        for (pcm, hz, other, who) in [(&ch[0], CUSTOMER_HZ, AGENT_HZ, "customer (left)"), (&ch[1], AGENT_HZ, CUSTOMER_HZ, "agent (right)")] {
            if let Err(e) = analyse(&pcm.slice_secs(0.0, end), hz, other, 0.2).check(1.0, 0.85) {
                pbx.fail(&format!("the {who} channel before the transfer: {e}"));
            }
        }
    }
    let cdr = pbx.wait_cdr("the CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid);
    let kinds: Vec<(String, String, String)> = cdr["parties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (field(p, "role"), field(p, "party"), field(p, "kind")))
        .collect();
    if field(&cdr, "direction") != "inbound"
        || field(&cdr, "caller_kind") != "external"
        || !kinds.contains(&("transfer-target".into(), MOBILE.into(), "external".into()))
    {
        pbx.fail(&format!("CDR of an inbound call transferred out: {cdr:#}"));
    }
}

#[test]
fn a_transfer_to_a_mobile_stops_the_recording_when_external_calls_are_not_recorded() {
    transfer_to_mobile(false);
}

#[test]
fn a_transfer_to_a_mobile_keeps_recording_when_external_calls_are_recorded() {
    transfer_to_mobile(true);
}

#[test]
fn an_inbound_call_forwarded_to_a_mobile_is_not_recorded_and_the_cdr_says_why() {
    let o = office(false, &[]);
    let pbx = &o.pbx;
    pbx.configure(&["user", "set", "--tenant", "office", "--ext", "101", "--forward-always", &format!("9{MOBILE}")]);
    let mut mobile = RtpEndpoint::loopback();
    let mut customer = RtpEndpoint::loopback();
    o.carrier.answer_calls(mobile.port());
    let mut dc = o
        .carrier
        .call(DID, customer.port())
        .unwrap_or_else(|r| pbx.fail(&format!("the forwarded call failed: {}\n{}", r.first_line, o.carrier.report())));
    let sid = dc.session_id();
    let dm = poll_until(Duration::from_secs(5), || o.carrier.incoming().into_iter().next())
        .unwrap_or_else(|| pbx.fail(&format!("the mobile got no INVITE\n{}", o.carrier.report())));
    if dm.recording_state().as_deref() != Some("off") || dc.recording_state().as_deref() != Some("off") {
        pbx.fail(&format!(
            "X-Recording-State to the mobile {:?}, to the customer {:?}: want off",
            dm.recording_state(),
            dc.recording_state()
        ));
    }
    customer.start_sending(relay_addr(&dc, pbx, "the customer's 200"), Payload::AlawTone(CUSTOMER_HZ), 1);
    mobile.start_sending(relay_addr(&dm, pbx, "the mobile's INVITE"), Payload::AlawTone(MOBILE_HZ), 2);
    std::thread::sleep(Duration::from_millis(1500));
    let bye = o.carrier.bye(&mut dc);
    expect_status(pbx, &bye, 200, "hang up", &o.carrier.report());
    let cdr = pbx.wait_cdr("the forwarded call's CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid);
    let why = field(&cdr, "recording");
    if !why.starts_with("not recorded") || !why.contains("external") {
        pbx.fail(&format!("the CDR should say the call was not recorded because only external parties were in it: {cdr:#}"));
    }
    let roles: Vec<(String, String)> =
        party_pairs(&cdr, "role", "party");
    if !roles.contains(&("forward-target".into(), MOBILE.into())) || field(&cdr, "callee") != "101" {
        pbx.fail(&format!("the CDR should keep the dialled extension and the forward target: {cdr:#}"));
    }
    std::thread::sleep(Duration::from_millis(500));
    if pbx.recordings().iter().any(|r| field(r, "call_session_id") == sid) {
        pbx.fail("a call between two external parties was recorded with the switch off");
    }
}

#[test]
fn an_outbound_call_dials_through_the_trunk_with_its_credentials_and_caller_id() {
    let o = office(true, &["--username", "trunkuser", "--password", "trunk-secret", "--caller-id", DID]);
    let pbx = &o.pbx;
    o.carrier.challenge_invites("carrier.example");
    let mut callee = RtpEndpoint::loopback();
    o.carrier.answer_calls(callee.port());
    let a = Ua::new(pbx.sip_udp, "101", &password("101"), DOMAIN);
    let mut rtp = RtpEndpoint::loopback();
    let mut d = a
        .call("9555888", rtp.port())
        .unwrap_or_else(|r| pbx.fail(&format!("the outbound call failed: {}\n{}\n{}", r.first_line, a.report(), o.carrier.report())));
    let sid = d.session_id();
    let invites = o.carrier.received_requests("INVITE");
    let first = invites.first().unwrap_or_else(|| pbx.fail("the carrier got no INVITE"));
    let last = invites.last().unwrap();
    let auth = last.header("Authorization").unwrap_or("");
    if invites.len() < 2 || !auth.contains("username=\"trunkuser\"") || !auth.contains("realm=\"carrier.example\"") {
        pbx.fail(&format!("the carrier's 401 should be answered with the trunk's credentials: {} INVITEs, Authorization {auth:?}", invites.len()));
    }
    if !first.first_line.contains("sip:555888@") || !first.header("From").unwrap_or("").contains(&format!("sip:{DID}@")) {
        pbx.fail(&format!("request line {:?}, From {:?}: want 555888 (no 9) from the trunk's caller ID {DID}", first.first_line, first.header("From")));
    }
    let dm = o.carrier.incoming().into_iter().next().unwrap_or_else(|| pbx.fail("no dialog at the carrier"));
    rtp.start_sending(relay_addr(&d, pbx, "101's 200"), Payload::AlawTone(AGENT_HZ), 1);
    callee.start_sending(relay_addr(&dm, pbx, "the carrier's INVITE"), Payload::AlawTone(MOBILE_HZ), 2);
    std::thread::sleep(Duration::from_millis(1500));
    let bye = a.bye(&mut d);
    expect_status(pbx, &bye, 200, "hang up", &a.report());
    let cdr = pbx.wait_cdr("the outbound CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid);
    if field(&cdr, "direction") != "outbound" || field(&cdr, "callee_kind") != "external" || field(&cdr, "callee") != "555888" {
        pbx.fail(&format!("CDR of an outbound call: {cdr:#}"));
    }
}

#[test]
fn strangers_and_unrouted_transfers_are_refused() {
    let o = office(true, &[]);
    let pbx = &o.pbx;
    // An INVITE from 127.0.0.3 (no trunk there) naming a number, without credentials.
    let stranger = Ua::new_on(IpAddr::from([127, 0, 0, 3]), pbx.sip_udp, CUSTOMER, "", "carrier.example");
    match stranger.call(DID, 9) {
        Ok(_) => pbx.fail("a call from an address that is no trunk got through"),
        Err(r) => expect_status(pbx, &r, 403, "an INVITE from no trunk without an account", &stranger.report()),
    }
    // A REFER to a number no outbound route allows.
    let mut a = agent(pbx, "101");
    let mut customer = RtpEndpoint::loopback();
    let (mut dc, mut da, _, _) = inbound_call(&o, &mut a, &mut customer);
    let r = a.ua.refer(&mut da, &format!("<sip:12345@{DOMAIN}>"));
    expect_status(pbx, &r, 403, "REFER to a number no route allows", &a.ua.report());
    let bye = o.carrier.bye(&mut dc);
    expect_status(pbx, &bye, 200, "the call is still up after the refused REFER", &o.carrier.report());
}

/// Forwarding on busy and on no answer, to another extension: the caller reaches it,
/// and the CDR keeps the dialled callee with the forward target.
#[test]
fn busy_and_unanswered_calls_are_forwarded() {
    use hark_e2e::calls::{register_sipp_callee, sipp_callee};
    let pbx = CallPbx::start(&["101", "102", "103", "104"], 30, &[]);
    pbx.configure(&["user", "set", "--tenant", "office", "--ext", "102", "--forward-busy", "103"]);
    pbx.configure(&["user", "set", "--tenant", "office", "--ext", "104", "--forward-no-answer", "103", "--no-answer-secs", "5"]);
    // 102 is busy (its phone answers 486); 104 rings and never answers.
    let busy = Ua::new(pbx.sip_udp, "102", &password("102"), DOMAIN);
    busy.register(3600);
    let port = register_sipp_callee(&pbx, "104");
    let ringing = sipp_callee("uas_call_ring.xml", &pbx, "104", port, hark_e2e::net::free_port()).spawn();
    let target = agent(&pbx, "103");
    let caller = Ua::new(pbx.sip_udp, "101", &password("101"), DOMAIN);
    for (dialled, after) in [("102", Duration::ZERO), ("104", Duration::from_secs(5))] {
        let rtp = RtpEndpoint::loopback();
        let t = Instant::now();
        let mut d = caller
            .call(dialled, rtp.port())
            .unwrap_or_else(|r| pbx.fail(&format!("the call to {dialled} was not forwarded: {}\n{}", r.first_line, caller.report())));
        let took = t.elapsed();
        if took < after || took > after + Duration::from_secs(4) {
            pbx.fail(&format!("the call to {dialled} was answered by the forward target after {took:?}, want about {after:?}"));
        }
        let sid = d.session_id();
        let bye = caller.bye(&mut d);
        expect_status(&pbx, &bye, 200, "hang up", &caller.report());
        let cdr = pbx.wait_cdr("the forwarded call's CDR", Duration::from_secs(10), |r| field(r, "call_session_id") == sid);
        let roles: Vec<(String, String)> =
            party_pairs(&cdr, "role", "party");
        if field(&cdr, "callee") != dialled || !roles.contains(&("forward-target".into(), "103".into())) || field(&cdr, "disposition") != "answered" {
            pbx.fail(&format!("CDR of a call to {dialled} forwarded to 103: {cdr:#}"));
        }
    }
    let ringing = ringing.wait(Duration::from_secs(10));
    if ringing.logged("cancel").as_deref() != Some("received") {
        pbx.fail(&format!("104's ringing phone was not CANCELled when the call was forwarded\n{}", ringing.report()));
    }
    assert_eq!(target.ua.incoming().len(), 2, "103 should have taken both forwarded calls");
}
