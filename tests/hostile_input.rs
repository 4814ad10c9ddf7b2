//! Malformed and hostile input over plain sockets. RFC 3261 leaves two right answers: a
//! request the server can parse far enough to answer (it has a usable Via) gets 400 with a
//! reason phrase (or another fitting 4xx/5xx named per case); responses that match no
//! transaction and garbage that cannot be answered are dropped silently. Nothing may
//! crash or wedge the server: after every case a valid OPTIONS still gets 200.

use std::net::SocketAddr;
use std::time::Duration;

use hark_e2e::wire::{Response, TcpPeer, UdpPeer, escape, options, unique};
use hark_e2e::{DOMAIN, Pbx};

/// How long "no answer" is waited for.
const SILENCE_WINDOW: Duration = Duration::from_millis(500);
const OPTIONS_TIMEOUT: Duration = Duration::from_secs(8);
/// Where injected headers would point; must never show up in an answer.
const EVIL: &str = "sip:evil@192.0.2.66";

#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Must answer with one of these codes (and a reason phrase).
    Reject(&'static [u16]),
    /// Either one of these codes, or nothing.
    RejectOrSilence(&'static [u16]),
    /// Must not answer.
    Silence,
    /// No answer, or a bare CRLF "pong" (RFC 5626 §4.4.1 keep-alive; not a SIP message).
    SilenceOrPong,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
    /// The Via branch in the message, if any: an answer must carry it.
    branch: Option<String>,
}

/// A request from `local` with the given header lines (each without CRLF) and body.
/// `{VIA}` in a line is replaced by a Via for `local` with a fresh branch.
fn request(start: &str, lines: &[&str], body: &[u8], local: SocketAddr) -> (Vec<u8>, String) {
    let branch = format!("z9hG4bK{}", unique("h"));
    let mut out = Vec::new();
    out.extend_from_slice(start.as_bytes());
    out.extend_from_slice(b"\r\n");
    for line in lines {
        let line = line.replace(
            "{VIA}",
            &format!("Via: SIP/2.0/UDP {local};branch={branch};rport"),
        );
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    (out, branch)
}

const OPT: &str = "OPTIONS sip:pbx.test SIP/2.0";

fn std_headers(call_id: &str) -> Vec<String> {
    vec![
        "{VIA}".into(),
        "Max-Forwards: 70".into(),
        format!("From: <sip:probe@{DOMAIN}>;tag={}", unique("t")),
        format!("To: <sip:{DOMAIN}>"),
        format!("Call-ID: {call_id}"),
        "CSeq: 1 OPTIONS".into(),
    ]
}

/// The standard OPTIONS headers without the one named `drop` (prefix match), plus `extra`.
fn opt_without(drop: &str, extra: &[&str], local: SocketAddr) -> (Vec<u8>, String) {
    let mut lines: Vec<String> = std_headers(&unique("c"))
        .into_iter()
        .filter(|l| drop.is_empty() || !l.starts_with(drop))
        .collect();
    lines.extend(extra.iter().map(|s| s.to_string()));
    if !lines.iter().any(|l| l.starts_with("Content-Length")) {
        lines.push("Content-Length: 0".into());
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    request(OPT, &refs, b"", local)
}

/// The standard OPTIONS with one header line replaced by raw bytes.
fn opt_with_raw_line(replace: &str, raw: &[u8], local: SocketAddr) -> (Vec<u8>, String) {
    let (msg, branch) = opt_without(replace, &[], local);
    // Insert the raw line right after the start line.
    let at = msg
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("start line")
        + 2;
    let mut out = msg[..at].to_vec();
    out.extend_from_slice(raw);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&msg[at..]);
    (out, branch)
}

/// Deterministic pseudo-random bytes (xorshift), so that failures reproduce.
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn udp_corpus(local: SocketAddr) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name, (bytes, branch): (Vec<u8>, String), expect| {
        cases.push(Case {
            name,
            bytes,
            expect,
            branch: Some(branch),
        });
    };
    const BAD: &[u16] = &[400];

    // Truncated: the datagram ends inside a header, with no empty line.
    let (full, branch) = opt_without("", &[], local);
    let cut = full.windows(4).position(|w| w == b"To: ").expect("To") + 6;
    add(
        "truncated inside the To header",
        (full[..cut].to_vec(), branch),
        Expect::RejectOrSilence(BAD),
    );

    // Oversized: the largest possible IPv4 UDP datagram (65,507 bytes; a 70 kB datagram
    // cannot be sent over IPv4), made of 130 padding headers (past 128) and a body.
    {
        let pad = format!("X-Pad: {}", "p".repeat(490));
        let mut lines: Vec<String> = std_headers(&unique("c"));
        lines.extend(std::iter::repeat_n(pad, 130));
        lines.push("Content-Type: text/plain".into());
        lines.push("Content-Length: 00000".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let (head, branch) = request(OPT, &refs, b"", local);
        let fill = 65_507 - head.len();
        let head = String::from_utf8(head).unwrap().replace(
            "Content-Length: 00000",
            &format!("Content-Length: {fill:05}"),
        );
        let mut big = head.into_bytes();
        big.resize(65_507, b'b');
        add(
            "oversized datagram: 65,507 bytes, 130 headers",
            (big, branch),
            Expect::RejectOrSilence(&[400, 413, 513]),
        );
    }

    add(
        "missing Call-ID",
        opt_without("Call-ID", &[], local),
        Expect::Reject(BAD),
    );
    add(
        "missing From",
        opt_without("From", &[], local),
        Expect::Reject(BAD),
    );
    add(
        "missing To",
        opt_without("To", &[], local),
        Expect::Reject(BAD),
    );
    add(
        "missing CSeq",
        opt_without("CSeq", &[], local),
        Expect::Reject(BAD),
    );
    add(
        "missing Via (nowhere to send an answer)",
        opt_without("{VIA}", &[], local),
        Expect::RejectOrSilence(BAD),
    );
    add(
        "malformed Via",
        opt_without("{VIA}", &["Via: this is not a via"], local),
        Expect::RejectOrSilence(BAD),
    );
    add(
        "non-numeric Content-Length",
        opt_without("Content-Length", &["Content-Length: abc"], local),
        Expect::Reject(BAD),
    );
    add(
        "negative Content-Length",
        opt_without("Content-Length", &["Content-Length: -1"], local),
        Expect::Reject(BAD),
    );
    {
        // RFC 3261 §18.3: a datagram that ends before the declared body: 400.
        let mut lines: Vec<String> = std_headers(&unique("c"));
        lines.push("Content-Type: text/plain".into());
        lines.push("Content-Length: 100".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        add(
            "Content-Length longer than the body",
            request(OPT, &refs, b"only ten b", local),
            Expect::Reject(BAD),
        );
    }
    add(
        "two conflicting Content-Length headers",
        opt_without(
            "Content-Length",
            &["Content-Length: 0", "Content-Length: 5"],
            local,
        ),
        Expect::Reject(BAD),
    );
    add(
        "non-UTF-8 bytes in the From display name",
        opt_with_raw_line(
            "From",
            b"From: \"\xff\xfe\xc3\x28\" <sip:probe@pbx.test>;tag=nu8",
            local,
        ),
        Expect::RejectOrSilence(BAD),
    );
    add(
        "bare CR inside Call-ID injecting a Contact",
        opt_with_raw_line(
            "Call-ID",
            format!("Call-ID: inj-cr\rContact: <{EVIL}>").as_bytes(),
            local,
        ),
        Expect::RejectOrSilence(BAD),
    );
    add(
        "bare LF inside Call-ID injecting a Contact",
        opt_with_raw_line(
            "Call-ID",
            format!("Call-ID: inj-lf\nContact: <{EVIL}>").as_bytes(),
            local,
        ),
        Expect::RejectOrSilence(BAD),
    );
    add(
        "NUL byte inside Call-ID",
        opt_with_raw_line("Call-ID", b"Call-ID: nul\0byte", local),
        Expect::RejectOrSilence(BAD),
    );
    add(
        "CSeq method differs from the request method",
        opt_without("CSeq", &["CSeq: 1 INVITE"], local),
        Expect::Reject(BAD),
    );
    add(
        "CSeq number out of range (2^32)",
        opt_without("CSeq", &["CSeq: 4294967296 OPTIONS"], local),
        Expect::Reject(BAD),
    );
    add(
        "header line without a colon",
        opt_without("", &["This line has no colon"], local),
        Expect::Reject(BAD),
    );
    add(
        "unparsable Request-URI",
        {
            let (m, b) = opt_without("", &[], local);
            (
                String::from_utf8(m)
                    .unwrap()
                    .replacen("sip:pbx.test", "not a uri", 1)
                    .into_bytes(),
                b,
            )
        },
        Expect::Reject(BAD),
    );
    add(
        "unknown SIP version",
        {
            let (m, b) = opt_without("", &[], local);
            (
                String::from_utf8(m)
                    .unwrap()
                    .replacen(" SIP/2.0\r\n", " SIP/7.0\r\n", 1)
                    .into_bytes(),
                b,
            )
        },
        Expect::RejectOrSilence(&[400, 505]),
    );
    {
        // A response that matches no client transaction (RFC 3261 §18.1.2: drop it).
        let branch = format!("z9hG4bK{}", unique("nt"));
        let msg = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {}:5060;branch={branch}\r\nFrom: <sip:probe@{DOMAIN}>;tag=a\r\n\
             To: <sip:{DOMAIN}>;tag=b\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            local.ip(),
            unique("r")
        );
        cases.push(Case {
            name: "a 200 OK matching no transaction",
            bytes: msg.into_bytes(),
            expect: Expect::Silence,
            branch: None,
        });
    }
    // No Via, or none usable: an answer (if any) cannot carry our branch.
    for case in &mut cases {
        if case.name.contains(" Via") {
            case.branch = None;
        }
    }
    cases.push(Case {
        name: "1 kB of random bytes",
        bytes: garbage(1024, 0x9E37_79B9_7F4A_7C15),
        expect: Expect::Silence,
        branch: None,
    });
    cases.push(Case {
        name: "random bytes after a valid start line",
        bytes: [OPT.as_bytes(), b"\r\n", &garbage(300, 7)].concat(),
        expect: Expect::Silence,
        branch: None,
    });
    cases.push(Case {
        name: "1000 NUL bytes",
        bytes: vec![0; 1000],
        expect: Expect::Silence,
        branch: None,
    });
    cases.push(Case {
        name: "CRLF keep-alive",
        bytes: b"\r\n\r\n".to_vec(),
        expect: Expect::SilenceOrPong,
        branch: None,
    });
    cases.push(Case {
        name: "empty datagram",
        bytes: Vec::new(),
        expect: Expect::Silence,
        branch: None,
    });
    cases.push(Case {
        name: "truncated start line",
        bytes: b"OPTIONS sip:pbx.te".to_vec(),
        expect: Expect::Silence,
        branch: None,
    });
    cases
}

/// Judges the answers to one case; `Err` describes what was wrong.
fn judge(case: &Case, answers: &[Vec<u8>]) -> Result<String, String> {
    let codes = match case.expect {
        Expect::Silence => {
            return if answers.is_empty() {
                Ok("silence".into())
            } else {
                Err(format!(
                    "expected no answer, got {}",
                    describe_answers(answers)
                ))
            };
        }
        Expect::SilenceOrPong => {
            return match answers {
                [] => Ok("silence".into()),
                [pong] if pong.as_slice() == b"\r\n" => Ok("CRLF pong".into()),
                _ => Err(format!(
                    "expected nothing or a CRLF pong, got {}",
                    describe_answers(answers)
                )),
            };
        }
        Expect::RejectOrSilence(_) if answers.is_empty() => return Ok("silence".into()),
        Expect::Reject(_) if answers.is_empty() => {
            return Err(format!(
                "expected {:?} within {SILENCE_WINDOW:?}, got nothing",
                codes_of(case.expect)
            ));
        }
        Expect::Reject(codes) | Expect::RejectOrSilence(codes) => codes,
    };
    if answers.len() > 1 {
        return Err(format!(
            "expected one answer, got {}",
            describe_answers(answers)
        ));
    }
    let raw = &answers[0];
    let Some(response) = Response::parse(raw) else {
        return Err(format!(
            "the answer is not a SIP response: {}",
            escape(raw, 800)
        ));
    };
    let mut problems = Vec::new();
    if !codes.contains(&response.code) {
        problems.push(format!(
            "status {} (expected one of {codes:?})",
            response.code
        ));
    }
    if response.reason.is_empty() {
        problems.push("empty reason phrase".into());
    }
    if let Some(branch) = &case.branch
        && !response.text().contains(branch.as_str())
    {
        problems.push(format!("the answer does not carry our Via branch {branch}"));
    }
    // No response splitting: no bare CR/LF, and nothing injected reflected as a header.
    let bare = raw.windows(2).enumerate().any(|(i, w)| {
        (w[0] == b'\r' && w[1] != b'\n')
            || (w[1] == b'\n' && w[0] != b'\r')
            || (i == 0 && w[0] == b'\n')
    });
    if bare {
        problems.push("the answer contains a bare CR or LF".into());
    }
    if String::from_utf8_lossy(raw)
        .lines()
        .any(|l| l.trim_start().starts_with("Contact:") && l.contains(EVIL))
    {
        problems.push("the injected Contact is reflected as a header".into());
    }
    if problems.is_empty() {
        Ok(format!("{} {}", response.code, response.reason))
    } else {
        Err(format!(
            "{}; answer:\n{}",
            problems.join("; "),
            escape(raw, 1500)
        ))
    }
}

fn codes_of(expect: Expect) -> &'static [u16] {
    match expect {
        Expect::Reject(c) | Expect::RejectOrSilence(c) => c,
        Expect::Silence | Expect::SilenceOrPong => &[],
    }
}

fn describe_answers(answers: &[Vec<u8>]) -> String {
    answers
        .iter()
        .map(|a| escape(a, 800))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[test]
fn malformed_udp_datagrams_get_400_or_silence_and_the_server_keeps_serving() {
    let mut pbx = Pbx::start();
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    let probe = UdpPeer::new(pbx.sip_udp);
    let count = udp_corpus(probe.local()).len();
    for index in 0..count {
        // A fresh socket per case, so that a late answer cannot be taken for the next one.
        let peer = UdpPeer::new(pbx.sip_udp);
        let case = udp_corpus(peer.local()).swap_remove(index);
        if let Err(e) = peer.send(&case.bytes) {
            failures.push(format!(
                "[{}] could not send {} bytes: {e}",
                case.name,
                case.bytes.len()
            ));
            continue;
        }
        let answers = peer.recv_all_within(SILENCE_WINDOW);
        match judge(&case, &answers) {
            Ok(outcome) => outcomes.push(format!("{:<55} -> {outcome}", case.name)),
            Err(problem) => failures.push(format!(
                "[{}] {problem}\nsent ({} bytes):\n{}",
                case.name,
                case.bytes.len(),
                escape(&case.bytes, 1200)
            )),
        }
        pbx.assert_alive();
        match peer.options(OPTIONS_TIMEOUT) {
            Ok(r) if r.code == 200 => {}
            Ok(r) => failures.push(format!(
                "[{}] then OPTIONS got {} {}:\n{}",
                case.name,
                r.code,
                r.reason,
                r.text()
            )),
            Err(e) => failures.push(format!("[{}] then OPTIONS failed: {e}", case.name)),
        }
    }
    eprintln!("outcomes:\n{}", outcomes.join("\n"));
    if !failures.is_empty() {
        panic!(
            "{} of {count} hostile datagrams were mishandled:\n\n{}\n\nhandled right:\n{}\n{}",
            failures.len(),
            failures.join("\n\n"),
            outcomes.join("\n"),
            pbx.logs()
        );
    }
}

#[test]
fn unusual_but_valid_requests_get_200() {
    let pbx = Pbx::start();
    let mut failures = Vec::new();
    /// Builds the message from (local address, branch, Call-ID).
    type Build = Box<dyn Fn(SocketAddr, &str, &str) -> String>;
    let cases: Vec<(&str, Build)> = vec![
        (
            "compact header forms (v, f, t, i, l)",
            Box::new(|local, branch, cid| {
                format!(
                    "{OPT}\r\nv: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\nf: <sip:probe@{DOMAIN}>;tag=c1\r\n\
                     t: <sip:{DOMAIN}>\r\ni: {cid}\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"
                )
            }),
        ),
        (
            "lower-case header names and extra whitespace",
            Box::new(|local, branch, cid| {
                format!(
                    "{OPT}\r\nvia:   SIP/2.0/UDP {local};branch={branch}\r\nmax-forwards:70\r\nfrom:<sip:probe@{DOMAIN}>;tag=c2\r\n\
                     to:    <sip:{DOMAIN}>\r\ncall-id:{cid}\r\ncseq:   1   OPTIONS\r\ncontent-length:   0\r\n\r\n"
                )
            }),
        ),
        (
            "a folded (continued) header line",
            Box::new(|local, branch, cid| {
                format!(
                    "{OPT}\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag=c3\r\n\
                     To: <sip:{DOMAIN}>\r\nSubject: a subject\r\n  folded onto a second line\r\nCall-ID: {cid}\r\n\
                     CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                )
            }),
        ),
        (
            "CRLFs before the start line (RFC 3261 §7.5)",
            Box::new(|local, branch, cid| {
                format!(
                    "\r\n\r\n{OPT}\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag=c4\r\n\
                     To: <sip:{DOMAIN}>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                )
            }),
        ),
        (
            "no Content-Length over UDP (the body runs to the datagram's end)",
            Box::new(|local, branch, cid| {
                format!(
                    "{OPT}\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag=c5\r\n\
                     To: <sip:{DOMAIN}>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\n\r\n"
                )
            }),
        ),
        (
            "Content-Length shorter than the datagram's body (the rest is ignored)",
            Box::new(|local, branch, cid| {
                format!(
                    "{OPT}\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag=c6\r\n\
                     To: <sip:{DOMAIN}>\r\nCall-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Type: text/plain\r\n\
                     Content-Length: 2\r\n\r\nhi and trailing bytes"
                )
            }),
        ),
        (
            "a name-addr with a quoted display name containing a comma and <>",
            Box::new(|local, branch, cid| {
                format!(
                    "{OPT}\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\n\
                     From: \"Probe, the <tester>\" <sip:probe@{DOMAIN}>;tag=c7\r\nTo: <sip:{DOMAIN}>\r\n\
                     Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                )
            }),
        ),
        (
            "UTF-8 in a display name",
            Box::new(|local, branch, cid| {
                format!(
                    "{OPT}\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\nMax-Forwards: 70\r\n\
                     From: \"Zoë Ünal 電話\" <sip:probe@{DOMAIN}>;tag=c8\r\nTo: <sip:{DOMAIN}>\r\n\
                     Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                )
            }),
        ),
    ];
    for (name, build) in &cases {
        let peer = UdpPeer::new(pbx.sip_udp);
        let branch = format!("z9hG4bK{}", unique("v"));
        let msg = build(peer.local(), &branch, &unique("vc"));
        peer.send(msg.as_bytes()).expect("send");
        let answer = peer
            .recv_within(Duration::from_secs(5))
            .and_then(|raw| Response::parse(&raw));
        match answer {
            Some(r) if r.code == 200 && r.text().contains(&branch) => {}
            Some(r) => failures.push(format!(
                "[{name}] got {} {}:\n{}\nsent:\n{}",
                r.code,
                r.reason,
                r.text(),
                escape(msg.as_bytes(), 1500)
            )),
            None => failures.push(format!(
                "[{name}] no answer within 5 s\nsent:\n{}",
                escape(msg.as_bytes(), 1500)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "valid requests refused:\n\n{}\n{}",
        failures.join("\n\n"),
        pbx.logs()
    );
}

// ---- TCP: framing ------------------------------------------------------------------

fn tcp_options(peer: &TcpPeer) -> (String, String) {
    let (msg, branch, _) = options(peer.local(), "TCP");
    (msg, branch)
}

fn is_final_for(raw: &[u8], branch: &str) -> bool {
    Response::parse(raw).is_some_and(|r| r.code >= 200 && r.text().contains(branch))
}

/// The final response carrying `branch`, or an error saying what came instead.
fn try_final(peer: &mut TcpPeer, branch: &str, timeout: Duration) -> Result<Response, String> {
    match peer.recv_where(timeout, |raw| is_final_for(raw, branch)) {
        Some(raw) => Ok(Response::parse(&raw).expect("matched a response")),
        None => Err(format!(
            "no final response with branch {branch} within {timeout:?} (connection closed: {}; other messages: \
             {:?}; unframed bytes: {:?})",
            peer.closed(),
            peer.stashed()
                .iter()
                .map(|m| escape(m, 300))
                .collect::<Vec<_>>(),
            escape(peer.leftover(), 300)
        )),
    }
}

/// The final response carrying `branch`; panics with the server's log otherwise.
fn expect_final(
    peer: &mut TcpPeer,
    branch: &str,
    timeout: Duration,
    pbx: &Pbx,
    context: &str,
) -> Response {
    try_final(peer, branch, timeout).unwrap_or_else(|e| pbx.fail(&format!("{context}: {e}")))
}

/// A malformed request that still frames (it has an end and a Content-Length).
fn framed_but_malformed(local: SocketAddr, variant: &str) -> (String, String) {
    let branch = format!("z9hG4bK{}", unique("tm"));
    let via = format!("Via: SIP/2.0/TCP {local};branch={branch}");
    let cid = unique("tc");
    let msg = match variant {
        "cseq" => format!(
            "{OPT}\r\n{via}\r\nMax-Forwards: 70\r\nFrom: <sip:p@{DOMAIN}>;tag=1\r\nTo: <sip:{DOMAIN}>\r\n\
             Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ),
        "callid" => format!(
            "{OPT}\r\n{via}\r\nMax-Forwards: 70\r\nFrom: <sip:p@{DOMAIN}>;tag=1\r\nTo: <sip:{DOMAIN}>\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ),
        "colon" => format!(
            "{OPT}\r\n{via}\r\nMax-Forwards: 70\r\nFrom: <sip:p@{DOMAIN}>;tag=1\r\nTo: <sip:{DOMAIN}>\r\n\
             Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nno colon on this line\r\nContent-Length: 0\r\n\r\n"
        ),
        // A body that looks like a header block must stay body.
        "body" => {
            let body = "CSeq: 2 BYE\r\nCall-ID: x\r\n\r\n";
            format!(
                "{OPT}\r\n{via}\r\nMax-Forwards: 70\r\nFrom: <sip:p@{DOMAIN}>;tag=1\r\nTo: <sip:{DOMAIN}>\r\n\
                 Call-ID: {cid}\r\nCSeq: 1 INVITE\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }
        _ => unreachable!(),
    };
    (msg, branch)
}

#[test]
fn tcp_malformed_message_then_valid_options_on_the_same_connection() {
    let pbx = Pbx::start();
    let mut failures = Vec::new();
    let mut check = |what: String, got: Result<Response, String>, want: u16, sent: &str| match got {
        Ok(r) if r.code == want && !r.reason.is_empty() => {}
        Ok(r) => failures.push(format!(
            "[{what}] expected {want}, got:\n{}\nsent:\n{}",
            r.text(),
            escape(sent.as_bytes(), 1200)
        )),
        Err(e) => failures.push(format!(
            "[{what}] expected {want}: {e}\nsent:\n{}",
            escape(sent.as_bytes(), 1200)
        )),
    };
    for variant in ["cseq", "callid", "colon", "body"] {
        // Separate writes.
        let mut peer = TcpPeer::connect(pbx.sip_tcp);
        let (bad, bad_branch) = framed_but_malformed(peer.local(), variant);
        peer.send(bad.as_bytes()).expect("send");
        check(
            format!("{variant}: malformed"),
            try_final(&mut peer, &bad_branch, Duration::from_secs(3)),
            400,
            &bad,
        );
        let (ok, branch) = tcp_options(&peer);
        peer.send(ok.as_bytes()).expect("send");
        check(
            format!("{variant}: OPTIONS after it"),
            try_final(&mut peer, &branch, Duration::from_secs(5)),
            200,
            &ok,
        );

        // The same two in one write.
        let mut peer = TcpPeer::connect(pbx.sip_tcp);
        let (bad, bad_branch) = framed_but_malformed(peer.local(), variant);
        let (ok, branch) = tcp_options(&peer);
        let both = format!("{bad}{ok}");
        peer.send(both.as_bytes()).expect("send");
        check(
            format!("{variant}: pipelined malformed"),
            try_final(&mut peer, &bad_branch, Duration::from_secs(3)),
            400,
            &both,
        );
        check(
            format!("{variant}: pipelined OPTIONS"),
            try_final(&mut peer, &branch, Duration::from_secs(5)),
            200,
            &both,
        );
    }
    assert!(
        failures.is_empty(),
        "TCP framing after malformed messages:\n\n{}\n{}",
        failures.join("\n\n"),
        pbx.logs()
    );
}

#[test]
fn tcp_message_split_across_many_writes() {
    let pbx = Pbx::start();
    let mut peer = TcpPeer::connect(pbx.sip_tcp);
    let branch = format!("z9hG4bK{}", unique("split"));
    let msg = format!(
        "{OPT}\r\nVia: SIP/2.0/TCP {};branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:p@{DOMAIN}>;tag=s\r\n\
         To: <sip:{DOMAIN}>\r\nCall-ID: {}\r\nCSeq: 1 OPTIONS\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
        peer.local(),
        unique("sc")
    );
    let bytes = msg.as_bytes();
    let blank = msg.find("\r\n\r\n").expect("header end");
    // Byte by byte through the start line, then pieces that cut the CRLFCRLF in half and
    // split the body.
    let mut cuts: Vec<usize> = (1..20).collect();
    cuts.extend([60, 100, blank + 1, blank + 3, blank + 6, bytes.len()]);
    let mut from = 0;
    for &to in &cuts {
        peer.send(&bytes[from..to]).expect("send");
        from = to;
        // Give each piece its own segment (TCP_NODELAY is on).
        std::thread::sleep(Duration::from_millis(15));
    }
    let r = expect_final(
        &mut peer,
        &branch,
        Duration::from_secs(5),
        &pbx,
        "OPTIONS split across writes",
    );
    assert_eq!(r.code, 200, "split OPTIONS:\n{}", r.text());

    // Two messages in one write, then a message whose last byte comes alone.
    let (a, branch_a) = tcp_options(&peer);
    let (b, branch_b) = tcp_options(&peer);
    peer.send(format!("{a}{b}").as_bytes()).expect("send");
    assert_eq!(
        expect_final(
            &mut peer,
            &branch_a,
            Duration::from_secs(5),
            &pbx,
            "first pipelined"
        )
        .code,
        200
    );
    assert_eq!(
        expect_final(
            &mut peer,
            &branch_b,
            Duration::from_secs(5),
            &pbx,
            "second pipelined"
        )
        .code,
        200
    );
    let (c, branch_c) = tcp_options(&peer);
    peer.send(&c.as_bytes()[..c.len() - 1]).expect("send");
    assert!(
        peer.recv_message(Duration::from_millis(300)).is_none(),
        "answered before the message was complete"
    );
    peer.send(&c.as_bytes()[c.len() - 1..]).expect("send");
    assert_eq!(
        expect_final(
            &mut peer,
            &branch_c,
            Duration::from_secs(5),
            &pbx,
            "last byte alone"
        )
        .code,
        200
    );
}

#[test]
fn tcp_keepalive_and_unframeable_input() {
    let pbx = Pbx::start();

    // RFC 5626 §4.4.1 CRLF keep-alive ping between messages keeps the framing.
    let mut peer = TcpPeer::connect(pbx.sip_tcp);
    let (ok, branch) = tcp_options(&peer);
    peer.send(format!("\r\n\r\n{ok}").as_bytes()).expect("send");
    assert_eq!(
        expect_final(
            &mut peer,
            &branch,
            Duration::from_secs(5),
            &pbx,
            "OPTIONS after a CRLF ping"
        )
        .code,
        200
    );

    // Input that cannot be framed: the server may answer 400 and must then close, or
    // close at once; either way a new connection is served.
    // (name, bytes, must the server close?)
    let unframeable: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "non-numeric Content-Length",
            {
                let (m, _) = framed_but_malformed(peer.local(), "cseq");
                m.replace("Content-Length: 0", "Content-Length: abc")
                    .into_bytes()
            },
            true,
        ),
        (
            // RFC 3261 §18.3 makes it mandatory on streams; a server that takes it as 0
            // still frames correctly, so answering 400 and keeping the connection is fine.
            "missing Content-Length on a stream",
            {
                let (m, _) = framed_but_malformed(peer.local(), "cseq");
                m.replace("Content-Length: 0\r\n", "").into_bytes()
            },
            false,
        ),
        (
            "a 70 kB message (over the 64 KiB limit)",
            {
                let pad = format!("X-Pad: {}\r\n", "p".repeat(500));
                let (m, _) = tcp_options(&peer);
                let (head, rest) = m.split_at(m.find("Content-Length").unwrap());
                [head.as_bytes(), pad.repeat(140).as_bytes(), rest.as_bytes()].concat()
            },
            false,
        ),
        (
            "70 kB of header without an end",
            [
                "OPTIONS sip:pbx.test SIP/2.0\r\n".as_bytes(),
                &b"X-Pad: ppppppppp\r\n".repeat(4000),
            ]
            .concat(),
            true,
        ),
        ("70 kB of binary garbage", garbage(70_000, 42), true),
    ];
    let mut failures = Vec::new();
    for (name, bytes, must_close) in unframeable {
        let mut peer = TcpPeer::connect(pbx.sip_tcp);
        // The server may close while we still write: that is one of the right outcomes.
        let _ = peer.send(&bytes);
        let mut answers = Vec::new();
        while let Some(raw) = peer.recv_message(Duration::from_secs(3)) {
            answers.push(raw);
        }
        for raw in &answers {
            let r = Response::parse(raw);
            if !r
                .as_ref()
                .is_some_and(|r| [400, 413, 513].contains(&r.code) && !r.reason.is_empty())
            {
                failures.push(format!(
                    "[{name}] unexpected answer over TCP: {}",
                    escape(raw, 800)
                ));
            }
        }
        let answered: Vec<String> = answers
            .iter()
            .map(|a| escape(a.split(|&b| b == b'\r').next().unwrap_or(a), 200))
            .collect();
        if must_close && !peer.closed() {
            failures.push(format!(
                "[{name}] the server kept a connection it cannot frame open for 3 s (answers: {answered:?}); \
                 whatever follows on it is parsed as a new message"
            ));
        } else if !must_close && !peer.closed() && answers.is_empty() {
            failures.push(format!(
                "[{name}] neither an answer nor a closed connection within 3 s"
            ));
        }
        let mut fresh = TcpPeer::connect(pbx.sip_tcp);
        let (ok, branch) = tcp_options(&fresh);
        fresh.send(ok.as_bytes()).expect("send");
        match try_final(&mut fresh, &branch, Duration::from_secs(5)) {
            Ok(r) if r.code == 200 => {}
            Ok(r) => failures.push(format!(
                "[{name}] then OPTIONS on a new connection got:\n{}",
                r.text()
            )),
            Err(e) => failures.push(format!("[{name}] then OPTIONS on a new connection: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "unframeable TCP input:\n\n{}\n{}",
        failures.join("\n\n"),
        pbx.logs()
    );
}
