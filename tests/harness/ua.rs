//! A minimal SIP user agent over UDP that the test owns: it registers, calls, answers,
//! sends requests in and out of dialog with digest credentials it computes itself
//! ([`hark_sip::auth::DigestClient`]), and keeps every message it sent and received, so
//! that a test controls the exact timing of each request and asserts on the wire.
//!
//! What it does on its own (a thread reads the socket):
//! - answers INFO with the code set by [`Ua::set_info_answer`] (200 by default), and BYE,
//!   CANCEL, OPTIONS, MESSAGE, NOTIFY, UPDATE with 200 (every request is logged, so a
//!   test can assert that a MESSAGE never reached this phone);
//! - as a callee ([`Ua::answer_calls`]), answers an INVITE with 180 and 200 (an SDP
//!   naming the test's RTP port), and answers its retransmissions with the same response.
//!
//! Everything is sent to the one server (the PBX) and every datagram from elsewhere is
//! ignored. Requests are retransmitted every 500 ms until a response arrives (RFC 3261
//! Timer A/E, simplified: loopback rarely drops, but a busy PBX may be slow).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hark_sip::auth::DigestClient;

use crate::wire::unique;

/// How long a transaction may wait for its final response.
pub const FINAL_TIMEOUT: Duration = Duration::from_secs(10);

/// One SIP message, parsed just enough for the tests.
#[derive(Clone, Debug)]
pub struct SipMsg {
    pub text: String,
    pub first_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Compact header forms (RFC 3261 §7.3.3) and their long names.
const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("c", "Content-Type"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
];

fn long_name(name: &str) -> &str {
    COMPACT
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(name))
        .map(|(_, l)| *l)
        .unwrap_or(name)
}

impl SipMsg {
    /// Parses a datagram; the body is cut at Content-Length when one is given.
    pub fn parse(bytes: &[u8]) -> Option<SipMsg> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (head, rest) = match text.find("\r\n\r\n") {
            Some(i) => (&text[..i], &text[i + 4..]),
            None => (text.as_str(), ""),
        };
        let mut lines = head.split("\r\n");
        let first_line = lines.next()?.trim().to_string();
        if first_line.is_empty() {
            return None;
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if (line.starts_with(' ') || line.starts_with('\t')) && !headers.is_empty() {
                let last = headers.last_mut().expect("non-empty");
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (n, v) = line.split_once(':')?;
            headers.push((long_name(n.trim()).to_string(), v.trim().to_string()));
        }
        let mut msg = SipMsg {
            text: text.clone(),
            first_line,
            headers,
            body: String::new(),
        };
        let body = match msg.header("Content-Length").and_then(|l| l.parse::<usize>().ok()) {
            Some(n) if n <= rest.len() => rest[..n].to_string(),
            _ => rest.to_string(),
        };
        msg.body = body;
        Some(msg)
    }

    pub fn is_response(&self) -> bool {
        self.first_line.starts_with("SIP/2.0 ")
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        self.first_line
            .strip_prefix("SIP/2.0 ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// The reason phrase of a response.
    pub fn reason(&self) -> String {
        self.first_line
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.split_once(' '))
            .map(|(_, r)| r.trim().to_string())
            .unwrap_or_default()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.is_response() {
            None
        } else {
            self.first_line.split_whitespace().next()
        }
    }

    /// The first value of header `name` (long name; compact forms were expanded).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn call_id(&self) -> &str {
        self.header("Call-ID").unwrap_or("")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> (u32, String) {
        let v = self.header("CSeq").unwrap_or("");
        let mut it = v.split_whitespace();
        let n = it.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (n, it.next().unwrap_or("").to_string())
    }

    /// The branch of the top Via.
    pub fn branch(&self) -> Option<String> {
        param(self.header("Via")?, "branch")
    }

    pub fn from_tag(&self) -> Option<String> {
        param(self.header("From")?, "tag")
    }

    pub fn to_tag(&self) -> Option<String> {
        param(self.header("To")?, "tag")
    }

    /// The URI of the Contact header (inside `<>` when given so).
    pub fn contact_uri(&self) -> Option<String> {
        uri_of(self.header("Contact")?)
    }

    /// The port of the first `m=audio` line of the body.
    pub fn sdp_audio_port(&self) -> Option<u16> {
        self.body
            .lines()
            .find_map(|l| l.trim().strip_prefix("m=audio "))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
    }
}

/// A `;name=value` parameter of a header value (outside `<>`).
pub fn param(value: &str, name: &str) -> Option<String> {
    let after = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    after.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The URI of a name-addr (`"x" <sip:a@b>;tag=1` → `sip:a@b`) or addr-spec.
pub fn uri_of(value: &str) -> Option<String> {
    if let (Some(a), Some(b)) = (value.find('<'), value.find('>')) {
        return (a < b).then(|| value[a + 1..b].trim().to_string());
    }
    value.split(';').next().map(|s| s.trim().to_string())
}

/// Which way a traced message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Sent,
    Received,
}

/// A message sent or received, with when.
#[derive(Clone, Debug)]
pub struct Traced {
    pub at: Instant,
    pub dir: Dir,
    pub msg: SipMsg,
}

/// How a UA answers an INVITE when it is the callee.
#[derive(Clone, Debug)]
struct Answering {
    rtp_port: u16,
    tag: String,
}

/// One dialog of this UA (as caller or callee).
#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The remote target (Contact) requests in the dialog are addressed to.
    pub remote_target: String,
    pub local_uri: String,
    pub remote_uri: String,
    pub cseq: u32,
    /// The caller's 200 OK, or the callee's INVITE: where X-Session-Id and
    /// X-Recording-State are read from.
    pub setup: SipMsg,
}

impl Dialog {
    /// `X-Session-Id` of the 200 OK / INVITE.
    pub fn session_id(&self) -> String {
        self.setup.header("X-Session-Id").unwrap_or("").to_string()
    }

    /// `X-Recording-State` of the 200 OK / INVITE.
    pub fn recording_state(&self) -> Option<String> {
        self.setup.header("X-Recording-State").map(str::to_string)
    }

    /// The PBX's relay port facing this phone (the SDP of the 200 OK / INVITE).
    pub fn relay_port(&self) -> Option<u16> {
        self.setup.sdp_audio_port()
    }
}

struct Shared {
    log: Mutex<Vec<Traced>>,
    /// The one audio codec offered and answered: (payload type, rtpmap name).
    codec: Mutex<(u8, String)>,
    /// Whether SDP offers and answers carry telephone-event (PT 101).
    telephone_event: AtomicBool,
    info_answer: AtomicU16,
    answering: Mutex<Option<Answering>>,
    /// The RTP port of each call (by Call-ID) and the latest one: re-INVITEs are
    /// answered with their call's.
    media_port: Mutex<Option<u16>>,
    call_ports: Mutex<HashMap<String, u16>>,
    /// Challenge every INVITE without Authorization with a 401 of this realm (a carrier
    /// that authenticates the PBX).
    challenge_realm: Mutex<Option<String>>,
    /// Responses already sent to a request, by (Call-ID, CSeq, method): resent on its
    /// retransmission.
    answered: Mutex<HashMap<(String, String), String>>,
    /// Dialogs created by answering INVITEs.
    incoming: Mutex<Vec<Dialog>>,
    stop: AtomicBool,
}

/// A SIP UA on a UDP socket of 127.0.0.1 that talks to one server.
pub struct Ua {
    pub user: String,
    pub password: String,
    pub domain: String,
    pub server: SocketAddr,
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
    created: Instant,
}

impl Ua {
    /// A UA for `user@domain` with `password`, on a fresh port, talking to `server`.
    pub fn new(server: SocketAddr, user: &str, password: &str, domain: &str) -> Ua {
        Self::new_on([127, 0, 0, 1].into(), server, user, password, domain)
    }

    /// [`Ua::new`] on another loopback address (a carrier on 127.0.0.2, a stranger on
    /// 127.0.0.3).
    pub fn new_on(ip: std::net::IpAddr, server: SocketAddr, user: &str, password: &str, domain: &str) -> Ua {
        let socket = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("binding a UDP socket on {ip}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("set_read_timeout");
        let socket = Arc::new(socket);
        let shared = Arc::new(Shared {
            log: Mutex::default(),
            codec: Mutex::new((8, "PCMA".to_string())),
            telephone_event: AtomicBool::new(true),
            info_answer: AtomicU16::new(200),
            answering: Mutex::default(),
            media_port: Mutex::default(),
            call_ports: Mutex::default(),
            challenge_realm: Mutex::default(),
            answered: Mutex::default(),
            incoming: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let reader = {
            let (socket, shared) = (Arc::clone(&socket), Arc::clone(&shared));
            thread::spawn(move || read_loop(&socket, server, &shared))
        };
        Ua {
            user: user.to_string(),
            password: password.to_string(),
            domain: domain.to_string(),
            server,
            socket,
            shared,
            reader: Some(reader),
            created: Instant::now(),
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().expect("local_addr")
    }

    /// `sip:USER@DOMAIN`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.user, self.domain)
    }

    pub fn contact(&self) -> String {
        format!("<sip:{}@{};transport=udp>", self.user, self.local())
    }

    /// What INFOs are answered with from now on (200, or e.g. 415 / 469).
    pub fn set_info_answer(&self, code: u16) {
        self.shared.info_answer.store(code, Ordering::Relaxed);
    }

    /// The one audio codec this UA offers and answers from now on (default PT 8 PCMA),
    /// e.g. `(0, "PCMU")`.
    pub fn set_codec(&self, payload_type: u8, name: &str) {
        *lock(&self.shared.codec) = (payload_type, name.to_string());
    }

    /// Whether this UA's SDP offers and answers carry telephone-event (default yes);
    /// without it a phone can only send DTMF in band or by INFO.
    pub fn set_telephone_event(&self, on: bool) {
        self.shared.telephone_event.store(on, Ordering::Relaxed);
    }

    fn sdp(&self, port: u16) -> String {
        sdp_of(&self.shared, port)
    }

    /// Answers every INVITE without credentials with 401 and a Digest challenge of
    /// `realm` (then takes the retry whatever its credentials: the test reads them).
    pub fn challenge_invites(&self, realm: &str) {
        *lock(&self.shared.challenge_realm) = Some(realm.to_string());
    }

    /// Sends REFER in `dialog` with `Refer-To: refer_to` (a name-addr); returns the final
    /// answer.
    pub fn refer(&self, dialog: &mut Dialog, refer_to: &str) -> SipMsg {
        dialog.cseq += 1;
        let d = dialog.clone();
        let extra = format!("Refer-To: {refer_to}\r\nReferred-By: <{}>\r\n", self.aor());
        self.request(&|branch| self.in_dialog_text(&d, d.cseq, "REFER", &extra, None, "", branch))
    }

    /// Answers every INVITE from now on (180, then 200 with an SDP naming `rtp_port`).
    pub fn answer_calls(&self, rtp_port: u16) {
        *lock(&self.shared.media_port) = Some(rtp_port);
        *lock(&self.shared.answering) = Some(Answering {
            rtp_port,
            tag: unique("uas"),
        });
    }

    /// Sends raw bytes to the server (logged when they parse).
    pub fn send_raw(&self, bytes: &[u8]) {
        if let Some(msg) = SipMsg::parse(bytes) {
            lock(&self.shared.log).push(Traced {
                at: Instant::now(),
                dir: Dir::Sent,
                msg,
            });
        }
        let _ = self.socket.send_to(bytes, self.server);
    }

    /// Every message so far.
    pub fn trace(&self) -> Vec<Traced> {
        lock(&self.shared.log).clone()
    }

    /// The requests of `method` this UA received.
    pub fn received_requests(&self, method: &str) -> Vec<SipMsg> {
        self.trace()
            .into_iter()
            .filter(|t| t.dir == Dir::Received && t.msg.method() == Some(method))
            .map(|t| t.msg)
            .collect()
    }

    /// The responses this UA sent to requests of `method`.
    pub fn sent_responses(&self, method: &str) -> Vec<SipMsg> {
        self.trace()
            .into_iter()
            .filter(|t| t.dir == Dir::Sent && t.msg.is_response() && t.msg.cseq().1 == method)
            .map(|t| t.msg)
            .collect()
    }

    /// Waits until `n` requests of `method` have arrived; returns them all (or `None`).
    pub fn wait_requests(&self, method: &str, n: usize, timeout: Duration) -> Option<Vec<SipMsg>> {
        crate::process::poll_until(timeout, || {
            let got = self.received_requests(method);
            (got.len() >= n).then_some(got)
        })
    }

    /// The dialogs this UA answered.
    pub fn incoming(&self) -> Vec<Dialog> {
        lock(&self.shared.incoming).clone()
    }

    /// Waits for an answered incoming call.
    pub fn wait_incoming(&self, timeout: Duration) -> Option<Dialog> {
        crate::process::poll_until(timeout, || self.incoming().into_iter().next())
    }

    /// The whole trace as text, for failure messages.
    pub fn report(&self) -> String {
        let mut s = format!("=== SIP trace of UA {} at {} ===\n", self.aor(), self.local());
        for t in self.trace() {
            let _ = writeln!(
                s,
                "--- {:>7.3} s {} ---\n{}",
                t.at.duration_since(self.created).as_secs_f64(),
                match t.dir {
                    Dir::Sent => "sent",
                    Dir::Received => "received",
                },
                t.msg.text.trim_end()
            );
        }
        s
    }

    /// Sends a request built by `build(branch)` and waits for its final response,
    /// retransmitting every 500 ms until any response arrives. Returns every response
    /// of the transaction, the final one last; `Err` with the trace on timeout.
    pub fn transact(&self, build: &dyn Fn(&str) -> String, timeout: Duration) -> Result<Vec<SipMsg>, String> {
        let branch = format!("z9hG4bK{}", unique("ua"));
        let request = build(&branch);
        let start = lock(&self.shared.log).len();
        self.send_raw(request.as_bytes());
        let deadline = Instant::now() + timeout;
        let mut next_retransmit = Instant::now() + Duration::from_millis(500);
        loop {
            let responses: Vec<SipMsg> = lock(&self.shared.log)[start..]
                .iter()
                .filter(|t| t.dir == Dir::Received && t.msg.is_response())
                .filter(|t| t.msg.branch().as_deref() == Some(branch.as_str()))
                .map(|t| t.msg.clone())
                .collect();
            if responses.last().and_then(SipMsg::status).is_some_and(|c| c >= 200) {
                return Ok(responses);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "no final response within {timeout:?} to:\n{request}\n{}",
                    self.report()
                ));
            }
            if responses.is_empty() && now >= next_retransmit {
                let _ = self.socket.send_to(request.as_bytes(), self.server);
                next_retransmit = now + Duration::from_millis(500);
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Like [`Ua::transact`], the final response only; panics on timeout.
    pub fn request(&self, build: &dyn Fn(&str) -> String) -> SipMsg {
        let all = self.transact(build, FINAL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        all.last().cloned().expect("a final response")
    }

    /// `Proxy-Authorization` / `Authorization` value answering the challenges of `resp`
    /// (a 401 or 407) for `method uri`, from a fresh [`DigestClient`] of these
    /// credentials (or `password` instead, to answer wrongly).
    pub fn credentials(&self, resp: &SipMsg, method: &str, uri: &str, password: Option<&str>) -> Result<String, String> {
        let name = if resp.status() == Some(407) {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let mut client = DigestClient::new(self.user.clone(), password.unwrap_or(&self.password).to_string());
        let realms = client
            .on_challenges(resp.all(name))
            .map_err(|e| format!("cannot answer the challenge: {e}\n{}", resp.text))?;
        let realm = realms.first().ok_or("no realm")?;
        let creds = client
            .authorize(realm, method, uri)
            .ok_or("no credentials for the realm")?;
        Ok(creds.to_header_value())
    }

    /// REGISTER this UA's Contact (digest authenticated) for `expires` seconds; panics
    /// unless the registrar answers 200.
    pub fn register(&self, expires: u32) {
        let call_id = unique("reg");
        let tag = unique("t");
        let uri = format!("sip:{}", self.domain);
        let build = |cseq: u32, auth: Option<String>| {
            let aor = self.aor();
            let contact = self.contact();
            let local = self.local();
            let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
            let uri = uri.clone();
            let (call_id, tag) = (call_id.clone(), tag.clone());
            move |branch: &str| {
                format!(
                    "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
                     Max-Forwards: 70\r\nFrom: <{aor}>;tag={tag}\r\nTo: <{aor}>\r\nCall-ID: {call_id}\r\n\
                     CSeq: {cseq} REGISTER\r\nContact: {contact}\r\nExpires: {expires}\r\n{auth}\
                     User-Agent: hark-e2e-ua\r\nContent-Length: 0\r\n\r\n"
                )
            }
        };
        let first = self.request(&build(1, None));
        let resp = if first.status() == Some(401) {
            let auth = self
                .credentials(&first, "REGISTER", &uri, None)
                .unwrap_or_else(|e| panic!("{e}"));
            self.request(&build(2, Some(auth)))
        } else {
            first
        };
        assert_eq!(
            resp.status(),
            Some(200),
            "REGISTER of {} failed: {}\n{}",
            self.aor(),
            resp.first_line,
            self.report()
        );
    }

    /// Calls `callee` (an extension of this UA's domain), offering PCMA on `rtp_port`,
    /// answering the PBX's 407 with digest credentials. Returns the dialog on a 200 (ACK
    /// sent), or the final response when the call failed.
    pub fn call(&self, callee: &str, rtp_port: u16) -> Result<Dialog, SipMsg> {
        self.call_with(callee, rtp_port, "")
    }

    /// [`Ua::call`] with `extra` headers (each ending in CRLF), e.g. a Replaces.
    pub fn call_with(&self, callee: &str, rtp_port: u16, extra: &str) -> Result<Dialog, SipMsg> {
        *lock(&self.shared.media_port) = Some(rtp_port);
        let call_id = unique("call");
        lock(&self.shared.call_ports).insert(call_id.clone(), rtp_port);
        let tag = unique("t");
        let ruri = format!("sip:{callee}@{}", self.domain);
        let sdp = self.sdp(rtp_port);
        let invite = |cseq: u32, auth: Option<String>| {
            let aor = self.aor();
            let contact = self.contact();
            let local = self.local();
            let auth = auth
                .map(|a| format!("Proxy-Authorization: {a}\r\n"))
                .unwrap_or_default();
            let (ruri, call_id, tag, sdp) = (ruri.clone(), call_id.clone(), tag.clone(), sdp.clone());
            move |branch: &str| {
                format!(
                    "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
                     Max-Forwards: 70\r\nFrom: <{aor}>;tag={tag}\r\nTo: <{ruri}>\r\nCall-ID: {call_id}\r\n\
                     CSeq: {cseq} INVITE\r\nContact: {contact}\r\n{auth}{extra}User-Agent: hark-e2e-ua\r\n\
                     Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE\r\n\
                     Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                    sdp.len()
                )
            }
        };
        let mut cseq = 1;
        let mut resp = self.request_invite(&invite(cseq, None), &ruri, cseq);
        if resp.status() == Some(407) {
            let auth = self
                .credentials(&resp, "INVITE", &ruri, None)
                .unwrap_or_else(|e| panic!("{e}"));
            cseq += 1;
            resp = self.request_invite(&invite(cseq, Some(auth)), &ruri, cseq);
        }
        if resp.status() != Some(200) {
            return Err(resp);
        }
        let remote_target = resp.contact_uri().unwrap_or_else(|| ruri.clone());
        let dialog = Dialog {
            call_id: call_id.clone(),
            local_tag: tag.clone(),
            remote_tag: resp.to_tag().unwrap_or_default(),
            remote_target: remote_target.clone(),
            local_uri: self.aor(),
            remote_uri: ruri.clone(),
            cseq,
            setup: resp.clone(),
        };
        // ACK of the 2xx: a request of its own, in the dialog.
        let ack = format!(
            "ACK {remote_target} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{};rport\r\nMax-Forwards: 70\r\n\
             From: <{}>;tag={tag}\r\nTo: <{ruri}>;tag={}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\n\
             Content-Length: 0\r\n\r\n",
            self.local(),
            unique("ack"),
            self.aor(),
            dialog.remote_tag
        );
        self.send_raw(ack.as_bytes());
        Ok(dialog)
    }

    /// An INVITE transaction; a non-2xx final response is ACKed (same branch).
    fn request_invite(&self, build: &dyn Fn(&str) -> String, ruri: &str, cseq: u32) -> SipMsg {
        let all = self
            .transact(build, Duration::from_secs(40))
            .unwrap_or_else(|e| panic!("{e}"));
        let last = all.last().cloned().expect("final");
        if last.status().is_some_and(|c| c >= 300) {
            let ack = format!(
                "ACK {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\n\
                 CSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
                last.header("Via").unwrap_or(""),
                last.header("From").unwrap_or(""),
                last.header("To").unwrap_or(""),
                last.call_id()
            );
            self.send_raw(ack.as_bytes());
        }
        last
    }

    /// Builds an in-dialog request (next CSeq of `dialog`) with `extra` headers (each
    /// ending in CRLF) and a body of `content_type`; returns its text for `branch`.
    #[allow(clippy::too_many_arguments)]
    pub fn in_dialog_text(
        &self,
        dialog: &Dialog,
        cseq: u32,
        method: &str,
        extra: &str,
        content_type: Option<&str>,
        body: &str,
        branch: &str,
    ) -> String {
        let ct = content_type
            .map(|c| format!("Content-Type: {c}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <{}>;tag={}\r\nTo: <{}>;tag={}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: {}\r\n{extra}User-Agent: hark-e2e-ua\r\n{ct}Content-Length: {}\r\n\r\n{body}",
            dialog.remote_target,
            self.local(),
            dialog.local_uri,
            dialog.local_tag,
            dialog.remote_uri,
            dialog.remote_tag,
            dialog.call_id,
            self.contact(),
            body.len()
        )
    }

    /// An out-of-dialog MESSAGE from this UA (From tag `from_tag`) to `ruri`, `to` as
    /// its To header value, with `call_id`/`cseq`, a `content_type` body, an optional
    /// `Proxy-Authorization`, and a Content-Length of `content_length` when given (else
    /// the true length).
    #[allow(clippy::too_many_arguments)]
    pub fn message_text(
        &self,
        ruri: &str,
        to: &str,
        call_id: &str,
        from_tag: &str,
        cseq: u32,
        content_type: &str,
        body: &str,
        content_length: Option<usize>,
        proxy_auth: Option<&str>,
        branch: &str,
    ) -> String {
        let auth = proxy_auth
            .map(|a| format!("Proxy-Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "MESSAGE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <{}>;tag={from_tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} MESSAGE\r\n\
             {auth}User-Agent: hark-e2e-ua\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
            self.local(),
            self.aor(),
            content_length.unwrap_or(body.len())
        )
    }

    /// Sends `method` in `dialog` (its CSeq raised) and returns the final response.
    pub fn in_dialog(&self, dialog: &mut Dialog, method: &str, content_type: Option<&str>, body: &str) -> SipMsg {
        dialog.cseq += 1;
        let d = dialog.clone();
        self.request(&|branch| self.in_dialog_text(&d, d.cseq, method, "", content_type, body, branch))
    }

    /// A re-INVITE in `dialog` offering this UA's codec on `rtp_port` with the audio
    /// direction `direction` (sendrecv, sendonly, inactive); a 2xx is ACKed. Returns the
    /// final response.
    pub fn reinvite(&self, dialog: &mut Dialog, rtp_port: u16, direction: &str) -> SipMsg {
        dialog.cseq += 1;
        let d = dialog.clone();
        let sdp = self.sdp(rtp_port).replace("a=sendrecv", &format!("a={direction}"));
        let resp = self.request(&|branch| {
            self.in_dialog_text(&d, d.cseq, "INVITE", "", Some("application/sdp"), &sdp, branch)
        });
        let ack_branch = format!("z9hG4bK{}", unique("ack"));
        let ack = self.in_dialog_text(&d, d.cseq, "ACK", "", None, "", &ack_branch);
        if resp.status().is_some_and(|c| c >= 200) {
            self.send_raw(ack.as_bytes());
        }
        resp
    }

    /// Hangs up `dialog` (BYE) and returns the final response.
    pub fn bye(&self, dialog: &mut Dialog) -> SipMsg {
        self.in_dialog(dialog, "BYE", None, "")
    }
}

impl Drop for Ua {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// Fails the test (with the PBX's log) unless `got` has status `want`.
pub fn expect_status(pbx: &crate::Pbx, got: &SipMsg, want: u16, what: &str, context: &str) {
    if got.status() != Some(want) {
        pbx.fail(&format!("{what}: expected {want}, got `{}`\n{}\n{context}", got.first_line, got.text));
    }
}

/// The PBX's relay port facing the phone of `dialog` (from the SDP of its 200 OK or
/// INVITE), on 127.0.0.1 where the tests run it; fails the test when there is none.
pub fn relay_addr(dialog: &Dialog, pbx: &crate::Pbx, what: &str) -> SocketAddr {
    match dialog.relay_port() {
        Some(p) => ([127, 0, 0, 1], p).into(),
        None => pbx.fail(&format!("no audio port in the SDP of {what}")),
    }
}

/// An SDP offer (or answer) of PCMA and telephone-event on 127.0.0.1:`port`.
pub fn sdp_offer(port: u16) -> String {
    sdp_with(port, 8, "PCMA")
}

fn sdp_of(shared: &Shared, port: u16) -> String {
    let (pt, name) = lock(&shared.codec).clone();
    let sdp = sdp_with(port, pt, &name);
    if shared.telephone_event.load(Ordering::Relaxed) {
        return sdp;
    }
    sdp.replace(&format!(" {pt} 101\r\n"), &format!(" {pt}\r\n"))
        .replace("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n", "")
}

/// An SDP of one 8 kHz audio codec (`pt`, `name`) and telephone-event on 127.0.0.1:`port`.
pub fn sdp_with(port: u16, pt: u8, name: &str) -> String {
    format!(
        "v=0\r\no=ua 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A response to `req` with `code reason`, the To tag added when missing.
fn response_to(req: &SipMsg, code: u16, reason: &str, to_tag: &str, extra: &str, body: &str) -> String {
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for via in req.all("Via") {
        let _ = write!(s, "Via: {via}\r\n");
    }
    let to = req.header("To").unwrap_or("");
    let to = if code > 100 && param(to, "tag").is_none() {
        format!("{to};tag={to_tag}")
    } else {
        to.to_string()
    };
    let _ = write!(
        s,
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        req.header("From").unwrap_or(""),
        req.call_id(),
        req.header("CSeq").unwrap_or(""),
        body.len()
    );
    s
}

fn read_loop(socket: &UdpSocket, server: SocketAddr, shared: &Shared) {
    let mut buf = vec![0u8; 65_536];
    let local = socket.local_addr().expect("local_addr");
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if from != server {
            continue;
        }
        let Some(msg) = SipMsg::parse(&buf[..n]) else {
            continue;
        };
        lock(&shared.log).push(Traced {
            at: Instant::now(),
            dir: Dir::Received,
            msg: msg.clone(),
        });
        let Some(method) = msg.method().map(str::to_string) else {
            continue;
        };
        if method == "ACK" {
            continue;
        }
        let key = (msg.call_id().to_string(), msg.header("CSeq").unwrap_or("").to_string());
        let cached = lock(&shared.answered).get(&key).cloned();
        let replies: Vec<String> = if let Some(r) = cached {
            vec![r]
        } else {
            let tag = unique("r");
            let challenge = lock(&shared.challenge_realm).clone();
            match method.as_str() {
                "INVITE" if msg.to_tag().is_none() && challenge.is_some() && msg.header("Authorization").is_none() => {
                    let realm = challenge.unwrap_or_default();
                    let nonce = unique("n");
                    vec![response_to(
                        &msg,
                        401,
                        "Unauthorized",
                        &tag,
                        &format!("WWW-Authenticate: Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"\r\n"),
                        "",
                    )]
                }
                // A re-INVITE from the PBX (a transfer moved our media): our SDP again.
                "INVITE" if msg.to_tag().is_some() => {
                    let latest = lock(&shared.media_port).unwrap_or(9);
                    let port = lock(&shared.call_ports).get(msg.call_id()).copied().unwrap_or(latest);
                    vec![response_to(
                        &msg,
                        200,
                        "OK",
                        &tag,
                        &format!("Contact: <sip:uas@{local};transport=udp>\r\nContent-Type: application/sdp\r\n"),
                        &sdp_of(shared, port),
                    )]
                }
                "INVITE" => {
                    let answering = lock(&shared.answering).clone();
                    match answering {
                        Some(a) if msg.to_tag().is_none() => {
                            let contact = format!("Contact: <sip:uas@{local};transport=udp>\r\n");
                            let sdp = sdp_of(shared, a.rtp_port);
                            let ringing = response_to(&msg, 180, "Ringing", &a.tag, &contact, "");
                            let ok = response_to(
                                &msg,
                                200,
                                "OK",
                                &a.tag,
                                &format!("{contact}Content-Type: application/sdp\r\n"),
                                &sdp,
                            );
                            lock(&shared.call_ports).insert(msg.call_id().to_string(), a.rtp_port);
                            lock(&shared.incoming).push(Dialog {
                                call_id: msg.call_id().to_string(),
                                local_tag: a.tag.clone(),
                                remote_tag: msg.from_tag().unwrap_or_default(),
                                remote_target: msg.contact_uri().unwrap_or_default(),
                                local_uri: msg.header("To").and_then(uri_of).unwrap_or_default(),
                                remote_uri: msg.header("From").and_then(uri_of).unwrap_or_default(),
                                cseq: 100,
                                setup: msg.clone(),
                            });
                            vec![ringing, ok]
                        }
                        // A re-INVITE: accept it with the same SDP.
                        Some(a) => vec![response_to(
                            &msg,
                            200,
                            "OK",
                            &a.tag,
                            &format!(
                                "Contact: <sip:uas@{local};transport=udp>\r\nContent-Type: application/sdp\r\n"
                            ),
                            &{
                                let (pt, name) = lock(&shared.codec).clone();
                                sdp_with(a.rtp_port, pt, &name)
                            },
                        )],
                        None => vec![response_to(&msg, 486, "Busy Here", &tag, "", "")],
                    }
                }
                "INFO" => {
                    let code = shared.info_answer.load(Ordering::Relaxed);
                    let reason = match code {
                        200 => "OK",
                        415 => "Unsupported Media Type",
                        469 => "Bad Info Package",
                        405 => "Method Not Allowed",
                        501 => "Not Implemented",
                        _ => "Whatever",
                    };
                    vec![response_to(&msg, code, reason, &tag, "", "")]
                }
                _ => vec![response_to(&msg, 200, "OK", &tag, "", "")],
            }
        };
        if let Some(last) = replies.last() {
            lock(&shared.answered).insert(key, last.clone());
        }
        for r in replies {
            if let Some(m) = SipMsg::parse(r.as_bytes()) {
                lock(&shared.log).push(Traced {
                    at: Instant::now(),
                    dir: Dir::Sent,
                    msg: m,
                });
            }
            let _ = socket.send_to(r.as_bytes(), server);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_with_compact_headers_and_short_bodies() {
        let m = SipMsg::parse(
            b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\ni: abc\r\nt: <sip:a@b>;tag=9\r\n\
              CSeq: 4 MESSAGE\r\nl: 3\r\n\r\nabcdef",
        )
        .unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.call_id(), "abc");
        assert_eq!(m.branch().as_deref(), Some("z9hG4bKx"));
        assert_eq!(m.to_tag().as_deref(), Some("9"));
        assert_eq!(m.cseq(), (4, "MESSAGE".to_string()));
        assert_eq!(m.body, "abc");
        let r = SipMsg::parse(b"INFO sip:x SIP/2.0\r\nContact: \"A\" <sip:a@h:5;transport=udp>;expires=3\r\n\r\n").unwrap();
        assert_eq!(r.method(), Some("INFO"));
        assert_eq!(r.contact_uri().as_deref(), Some("sip:a@h:5;transport=udp"));
        assert_eq!(param("<sip:a@b;x=1>;tag=t1", "tag").as_deref(), Some("t1"));
        assert_eq!(param("<sip:a@b;tag=no>", "tag"), None);
    }
}
