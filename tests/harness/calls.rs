//! What the call tests share: a PBX set up for calls (extensions, a relay port block of
//! its own, a short ring time), callees registered by sipp, the SDP and CDR checks, and
//! the two test tones.
//!
//! The documented behaviour the checks encode (SPEC §1, §3, §4 and issue 3):
//! - the callee's INVITE carries `X-Session-Id: <id>` and `X-Recording-State: off`, the
//!   caller's 200 OK the same `X-Session-Id`;
//! - media is anchored: each phone's SDP names 127.0.0.1 and a port of `--rtp-ports`;
//! - one CDR row per call, written asynchronously after it ends, from `hark pbx cdr list
//!   --json`: id, call_session_id, tenant, caller, callee, direction ("internal"),
//!   started_at, answered_at, ended_at, duration_s, billsec, disposition (answered, busy,
//!   no-answer, cancelled, failed), hangup_by (caller, callee, pbx), hangup_cause.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::audio::{TONE_RATE, write_tone_wav};
use crate::net::{free_port, rtp_port_range};
use crate::pbx::{DOMAIN, Pbx, PbxBuilder};
use crate::process::TempDir;
use crate::sipp::Sipp;

/// The tone the caller plays.
pub const CALLER_HZ: f64 = 440.0;
/// The tone the callee plays.
pub const CALLEE_HZ: f64 = 660.0;
/// How long CDR rows may take to appear after a call ends.
pub const CDR_TIMEOUT: Duration = Duration::from_secs(15);
/// Size of each PBX's relay port block.
pub const RTP_BLOCK: u16 = 100;

/// The SIP password of extension `ext` in every call test.
pub fn password(ext: &str) -> String {
    format!("pw-{ext}-s3cret")
}

/// A PBX for call tests: `--rtp-ports` on a block of its own, `--ring-timeout` as given,
/// plus `extra` serve arguments.
pub struct CallPbx {
    pub pbx: Pbx,
    pub rtp_lo: u16,
    pub rtp_hi: u16,
}

impl CallPbx {
    pub fn start(exts: &[&str], ring_timeout_secs: u64, extra: &[&str]) -> CallPbx {
        Self::start_with(Pbx::builder(), exts, ring_timeout_secs, extra)
    }

    /// Like [`CallPbx::start`] from a builder that may already hold more (e.g. another
    /// tenant and its users).
    pub fn start_with(mut b: PbxBuilder, exts: &[&str], ring_timeout_secs: u64, extra: &[&str]) -> CallPbx {
        let (rtp_lo, rtp_hi) = rtp_port_range(RTP_BLOCK);
        for ext in exts {
            b = b.user(ext, &password(ext));
        }
        let mut args: Vec<String> = vec![
            "--rtp-ports".into(),
            format!("{rtp_lo}-{rtp_hi}"),
            "--ring-timeout".into(),
            ring_timeout_secs.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        CallPbx {
            pbx: b.serve_args(args).start(),
            rtp_lo,
            rtp_hi,
        }
    }

    /// Panics unless `port` (named in an SDP the PBX sent) is one of its relay ports.
    pub fn assert_relay_port(&self, port: u16, what: &str) {
        assert!(
            (self.rtp_lo..=self.rtp_hi).contains(&port),
            "{what}: audio port {port} is not in --rtp-ports {}-{}: the PBX did not anchor the media\n{}",
            self.rtp_lo,
            self.rtp_hi,
            self.pbx.logs()
        );
    }
}

impl std::ops::Deref for CallPbx {
    type Target = Pbx;
    fn deref(&self) -> &Pbx {
        &self.pbx
    }
}

impl std::ops::DerefMut for CallPbx {
    fn deref_mut(&mut self) -> &mut Pbx {
        &mut self.pbx
    }
}

/// Registers `ext` of `domain` with sipp from a fresh local port and returns that port:
/// the registered Contact is `sip:EXT@127.0.0.1:PORT`, where a UAS scenario (or a plain
/// socket) then waits for the PBX's INVITE.
pub fn register_from_port(pbx: &Pbx, ext: &str, domain: &str) -> u16 {
    let port = free_port();
    let run = Sipp::against("register_auth.xml", pbx)
        .auth(ext, &password(ext))
        .key("domain", domain)
        .auth_uri(domain)
        .local_port(port)
        .run();
    run.assert_success(pbx);
    port
}

/// [`register_from_port`] in the default domain.
pub fn register_sipp_callee(pbx: &Pbx, ext: &str) -> u16 {
    register_from_port(pbx, ext, DOMAIN)
}

/// A base port for sipp's `-mp`: sipp binds it AND the ports above it (audio RTP and
/// RTCP, video RTP at +2, and its RTCP): all four must be free, or sipp exits at start
/// ("Unable to bind video RTP socket").
pub fn sipp_media_ports() -> u16 {
    crate::net::free_port_range(4)
}

/// A sipp caller of `scenario` from `user` to `callee`, authenticated with the digest
/// uri of the Request-URI (`sip:CALLEE@DOMAIN`), its SDP naming `rtp_port`.
pub fn sipp_caller(scenario: &str, pbx: &Pbx, user: &str, callee: &str, rtp_port: u16) -> Sipp {
    Sipp::against(scenario, pbx)
        .auth(user, &password(user))
        .auth_uri(&format!("{callee}@{DOMAIN}"))
        .key("callee", callee)
        .key("rtp_port", &rtp_port.to_string())
        .media_port(sipp_media_ports())
}

/// A sipp callee of `scenario` for `user`, on `port` (where it registered), its SDP
/// naming `rtp_port`.
pub fn sipp_callee(scenario: &str, pbx: &Pbx, user: &str, port: u16, rtp_port: u16) -> Sipp {
    Sipp::against(scenario, pbx)
        .key("user", user)
        .key("rtp_port", &rtp_port.to_string())
        .local_port(port)
        .media_port(sipp_media_ports())
}

// ---- SDP ----

/// The body of a SIP message text (after the first blank line).
pub fn body(message: &str) -> &str {
    let m = message.trim_start();
    m.split_once("\r\n\r\n")
        .or_else(|| m.split_once("\n\n"))
        .map(|(_, b)| b)
        .unwrap_or("")
}

/// The port of the first `m=audio` line.
pub fn sdp_audio_port(message: &str) -> Option<u16> {
    body(message)
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
}

/// The address of the (first) `c=IN IP4` line.
pub fn sdp_connection(message: &str) -> Option<String> {
    body(message)
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))
        .map(|a| a.trim().to_string())
}

/// The audio direction: the last of sendrecv/sendonly/recvonly/inactive in the body, or
/// "sendrecv" when none is given (RFC 3264 §5.1).
pub fn sdp_direction(message: &str) -> String {
    body(message)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .rfind(|a| matches!(*a, "sendrecv" | "sendonly" | "recvonly" | "inactive"))
        .unwrap_or("sendrecv")
        .to_string()
}

/// The status code of a response text.
pub fn status_of(message: &str) -> Option<u16> {
    message
        .trim_start()
        .lines()
        .next()?
        .strip_prefix("SIP/2.0 ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The reason phrase of a response text.
pub fn reason_of(message: &str) -> String {
    message
        .trim_start()
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("SIP/2.0 "))
        .and_then(|rest| rest.split_once(' '))
        .map(|(_, r)| r.trim().to_string())
        .unwrap_or_default()
}

/// The CSeq method of a message text.
pub fn cseq_method(message: &str) -> Option<String> {
    crate::sipp::header(message, "CSeq")
        .or_else(|| crate::sipp::header(message, "CSEQ"))
        .and_then(|v| v.split_whitespace().nth(1))
        .map(str::to_string)
}

// ---- CDR ----

/// Field `name` of a CDR row as a string (`""` for null or absent).
pub fn field(row: &Value, name: &str) -> String {
    match row.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The `(a, b)` fields of every entry of `row`'s `parties` (a CDR's or a recording's),
/// e.g. `("role", "party")`.
pub fn party_pairs(row: &Value, a: &str, b: &str) -> Vec<(String, String)> {
    row["parties"].as_array().into_iter().flatten().map(|p| (field(p, a), field(p, b))).collect()
}

/// Whether a CDR party value (`101`, `101@pbx.test`, `sip:101@pbx.test`, `"Name"
/// <sip:101@…>`) is extension `ext`.
pub fn is_party(value: &str, ext: &str) -> bool {
    let v = value.trim();
    v == ext
        || v.starts_with(&format!("{ext}@"))
        || v.contains(&format!("sip:{ext}@"))
        || v.contains(&format!("sips:{ext}@"))
}

/// What a CDR row must say.
pub struct CdrExpect<'a> {
    pub caller: &'a str,
    pub callee: &'a str,
    pub disposition: &'a str,
    /// `None`: not checked.
    pub hangup_by: Option<&'a str>,
    /// `Some(id)`: call_session_id must equal it.
    pub session_id: Option<&'a str>,
    /// `Some(secs)`: billsec within ±`tolerance` of it.
    pub billsec: Option<(f64, f64)>,
}

/// Waits for the one CDR row of a PBX that carried one call, then checks it against
/// `want`; panics with the row and the server's log on any mismatch.
pub fn the_one_cdr(pbx: &Pbx, want: &CdrExpect<'_>) -> Value {
    let row = pbx.wait_cdr(
        &format!("the call {} -> {}", want.caller, want.callee),
        CDR_TIMEOUT,
        |r| is_party(&field(r, "callee"), want.callee),
    );
    // Rows are written once the call has ended; give a stray second row a moment to show.
    std::thread::sleep(Duration::from_millis(300));
    let rows = pbx.cdrs();
    let pretty = serde_json::to_string_pretty(&rows).unwrap_or_default();
    assert_eq!(
        rows.len(),
        1,
        "one call must leave exactly one CDR row (a challenged INVITE is not a call); rows:\n{pretty}\n{}",
        pbx.logs()
    );
    check_cdr(pbx, &row, want);
    row
}

/// Checks one CDR row against `want` and the documented shape; panics with the row and
/// the server's log on any mismatch.
pub fn check_cdr(pbx: &Pbx, row: &Value, want: &CdrExpect<'_>) {
    let problems = cdr_problems(row, want);
    if !problems.is_empty() {
        let pretty = serde_json::to_string_pretty(row).unwrap_or_default();
        pbx.fail(&format!("CDR row wrong:\n- {}\nrow:\n{pretty}", problems.join("\n- ")));
    }
}

/// Everything wrong with a CDR row, given what the call was (empty: nothing).
pub fn cdr_problems(row: &Value, want: &CdrExpect<'_>) -> Vec<String> {
    let mut p = Vec::new();
    for name in [
        "id",
        "call_session_id",
        "tenant",
        "caller",
        "callee",
        "direction",
        "started_at",
        "answered_at",
        "ended_at",
        "duration_s",
        "billsec",
        "disposition",
        "hangup_by",
        "hangup_cause",
    ] {
        if row.get(name).is_none() {
            p.push(format!("field `{name}` is missing"));
        }
    }
    if field(row, "tenant") != crate::pbx::TENANT {
        p.push(format!(
            "tenant is {:?}, expected {:?}",
            field(row, "tenant"),
            crate::pbx::TENANT
        ));
    }
    if !is_party(&field(row, "caller"), want.caller) {
        p.push(format!(
            "caller is {:?}, expected extension {}",
            field(row, "caller"),
            want.caller
        ));
    }
    if !is_party(&field(row, "callee"), want.callee) {
        p.push(format!(
            "callee is {:?}, expected extension {}",
            field(row, "callee"),
            want.callee
        ));
    }
    if field(row, "direction") != "internal" {
        p.push(format!(
            "direction is {:?}, expected \"internal\"",
            field(row, "direction")
        ));
    }
    if field(row, "disposition") != want.disposition {
        p.push(format!(
            "disposition is {:?}, expected {:?}",
            field(row, "disposition"),
            want.disposition
        ));
    }
    if let Some(by) = want.hangup_by
        && field(row, "hangup_by") != by
    {
        p.push(format!("hangup_by is {:?}, expected {by:?}", field(row, "hangup_by")));
    }
    if !matches!(field(row, "hangup_by").as_str(), "caller" | "callee" | "pbx") {
        p.push(format!(
            "hangup_by {:?} is none of caller, callee, pbx",
            field(row, "hangup_by")
        ));
    }
    if let Some(sid) = want.session_id
        && field(row, "call_session_id") != sid
    {
        p.push(format!(
            "call_session_id is {:?}, but the phones were sent X-Session-Id {sid:?}",
            field(row, "call_session_id")
        ));
    }
    if field(row, "call_session_id").is_empty() {
        p.push("call_session_id is empty".into());
    }
    // RFC 3339 UTC strings of one format compare in time order.
    let (started, answered, ended) = (
        field(row, "started_at"),
        field(row, "answered_at"),
        field(row, "ended_at"),
    );
    if started.is_empty() || ended.is_empty() || ended < started {
        p.push(format!("started_at {started:?} / ended_at {ended:?} are not in order"));
    }
    let duration = row.get("duration_s").and_then(Value::as_f64).unwrap_or(-1.0);
    let billsec = row.get("billsec").and_then(Value::as_f64).unwrap_or(-1.0);
    if duration < 0.0 || billsec < 0.0 {
        p.push(format!(
            "duration_s {duration} / billsec {billsec} are not non-negative numbers"
        ));
    }
    if want.disposition == "answered" {
        if answered.is_empty() || answered < started || answered > ended {
            p.push(format!(
                "answered_at {answered:?} is not between started_at and ended_at"
            ));
        }
        if billsec > duration + 1.0 {
            p.push(format!("billsec {billsec} exceeds duration_s {duration}"));
        }
    } else {
        if !answered.is_empty() {
            p.push(format!("an unanswered call has answered_at {answered:?}"));
        }
        if billsec != 0.0 {
            p.push(format!("an unanswered call has billsec {billsec}"));
        }
    }
    if let Some((secs, tol)) = want.billsec
        && (billsec - secs).abs() > tol
    {
        p.push(format!(
            "billsec is {billsec}, the call was answered for about {secs:.1} s (±{tol})"
        ));
    }
    p
}

/// The two tone files: the caller plays [`CALLER_HZ`], the callee [`CALLEE_HZ`].
pub struct Tones {
    dir: TempDir,
}

impl Tones {
    /// 60 s long: longer than any call, since baresip's `aufile` stops at the end.
    pub fn new() -> Tones {
        let dir = TempDir::new("tones");
        write_tone_wav(&dir.join("caller.wav"), CALLER_HZ, 60.0, TONE_RATE);
        write_tone_wav(&dir.join("callee.wav"), CALLEE_HZ, 60.0, TONE_RATE);
        Tones { dir }
    }

    pub fn caller(&self) -> PathBuf {
        self.dir.join("caller.wav")
    }

    pub fn callee(&self) -> PathBuf {
        self.dir.join("callee.wav")
    }

    /// A path for a recording in the same temp dir.
    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Default for Tones {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answered_row() -> Value {
        json!({
            "id": 1, "call_session_id": "s1", "tenant": "office", "caller": "101", "callee": "102",
            "direction": "internal", "started_at": "2026-01-01T10:00:00.000Z",
            "answered_at": "2026-01-01T10:00:01.000Z", "ended_at": "2026-01-01T10:00:05.000Z",
            "duration_s": 5.0, "billsec": 4, "disposition": "answered", "hangup_by": "caller",
            "hangup_cause": "bye"
        })
    }

    fn want<'a>() -> CdrExpect<'a> {
        CdrExpect {
            caller: "101",
            callee: "102",
            disposition: "answered",
            hangup_by: Some("caller"),
            session_id: Some("s1"),
            billsec: Some((4.2, 1.0)),
        }
    }

    #[test]
    fn a_right_row_passes_and_each_wrong_field_is_named() {
        assert!(cdr_problems(&answered_row(), &want()).is_empty());
        for (name, value, needle) in [
            ("disposition", json!("failed"), "disposition"),
            ("hangup_by", json!("callee"), "hangup_by"),
            ("call_session_id", json!("other"), "call_session_id"),
            ("callee", json!("sip:103@pbx.test"), "callee"),
            ("billsec", json!(9), "billsec"),
            ("answered_at", json!(null), "answered_at"),
            ("direction", json!("outbound"), "direction"),
        ] {
            let mut row = answered_row();
            row[name] = value;
            let p = cdr_problems(&row, &want());
            assert!(p.iter().any(|m| m.contains(needle)), "{name}: {p:?}");
        }
        let mut row = answered_row();
        row.as_object_mut().unwrap().remove("hangup_cause");
        assert!(!cdr_problems(&row, &want()).is_empty());
    }

    #[test]
    fn parties_match_in_every_usual_spelling() {
        for v in ["101", "101@pbx.test", "sip:101@pbx.test", "\"Ann\" <sip:101@pbx.test>"] {
            assert!(is_party(v, "101"), "{v}");
        }
        for v in ["1010", "sip:1010@pbx.test", "102"] {
            assert!(!is_party(v, "101"), "{v}");
        }
    }

    #[test]
    fn sdp_fields_are_read_from_the_body() {
        let msg = "INVITE sip:x SIP/2.0\r\nVia: a\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 20004 RTP/AVP 8\r\na=sendonly\r\n";
        assert_eq!(sdp_audio_port(msg), Some(20004));
        assert_eq!(sdp_connection(msg).as_deref(), Some("127.0.0.1"));
        assert_eq!(sdp_direction(msg), "sendonly");
        assert_eq!(
            sdp_direction("SIP/2.0 200 OK\n\nv=0\nm=audio 1 RTP/AVP 0\n"),
            "sendrecv"
        );
        assert_eq!(status_of("SIP/2.0 488 No Common Codec\r\n"), Some(488));
        assert_eq!(reason_of("SIP/2.0 488 No Common Codec\r\n"), "No Common Codec");
    }
}
