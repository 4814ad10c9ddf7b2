//! The registrar against sipp: digest auth, a wrong password, unregistering, the minimum
//! expiry, OPTIONS, the brute-force ban, over UDP and TCP. Every scenario is in
//! tests/sipp/; the server's view is checked through /metrics (`hark_registrations`).

use std::time::Duration;

use hark_e2e::sipp::{header, headers};
use hark_e2e::wire::UdpPeer;
use hark_e2e::{DOMAIN, Pbx, Sipp, SippRun, poll_until};

const EXT: &str = "101";
const PASSWORD: &str = "s3cret-101";
const METRIC: &str = "hark_registrations";
const SETTLE: Duration = Duration::from_secs(10);

fn pbx() -> Pbx {
    Pbx::builder().user(EXT, PASSWORD).start()
}

fn register(pbx: &Pbx) -> SippRun {
    let run = Sipp::against("register_auth.xml", pbx)
        .auth(EXT, PASSWORD)
        .run();
    run.assert_success(pbx);
    run
}

/// The `expires` parameter of the Contact (in `contacts`, the Contact header values of a
/// response) whose URI contains `uri`.
fn contact_expires(contacts: &[&str], uri: &str) -> Option<u64> {
    contacts
        .iter()
        .flat_map(|value| split_contacts(value))
        .find(|c| c.contains(uri))
        .and_then(|c| {
            let params = c.rsplit_once('>').map(|(_, p)| p).unwrap_or(&c);
            params.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("expires")
                    .then(|| v.trim().parse().ok())
                    .flatten()
            })
        })
}

/// Splits a Contact header value at the commas between contacts (not inside <> or "").
fn split_contacts(value: &str) -> Vec<String> {
    let (mut out, mut cur, mut angle, mut quote) = (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            '"' if !angle => quote = !quote,
            '<' if !quote => angle = true,
            '>' if !quote => angle = false,
            ',' if !angle && !quote => {
                out.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

fn status_of(message: &str) -> Option<u16> {
    message
        .lines()
        .next()?
        .strip_prefix("SIP/2.0 ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Checks the challenge in a 401: realm is the tenant's domain, MD5 is offered, and the
/// first challenge is one that sipp 3.6, baresip 1.0 (libre) and most deployed phones
/// can answer (they give up on the first challenge whose algorithm they lack).
fn check_challenge(run: &SippRun, pbx: &Pbx) {
    let received = run.received();
    let Some(challenge) = received.iter().find(|m| status_of(m) == Some(401)) else {
        panic!("no 401 received\n{}\n{}", run.report(), pbx.logs());
    };
    let offers = headers(challenge, "WWW-Authenticate");
    assert!(
        !offers.is_empty(),
        "401 without WWW-Authenticate:\n{challenge}\n{}",
        pbx.logs()
    );
    for offer in &offers {
        assert!(
            offer.contains(&format!("realm=\"{DOMAIN}\"")),
            "challenge realm is not the tenant's domain {DOMAIN}: {offer}\n{challenge}"
        );
        assert!(
            offer.to_ascii_lowercase().contains("qop=\"auth"),
            "challenge without qop=auth: {offer}"
        );
    }
    let algorithm = |offer: &str| {
        offer
            .split(',')
            .find_map(|p| {
                p.trim()
                    .strip_prefix("algorithm=")
                    .map(|a| a.trim_matches('"').to_ascii_uppercase())
            })
            .unwrap_or_else(|| "MD5".into())
    };
    let algorithms: Vec<String> = offers.iter().map(|o| algorithm(o)).collect();
    assert_eq!(
        algorithms,
        vec!["MD5".to_string()],
        "by default the PBX challenges with MD5 only: sipp 3.6.1 answers only the first \
         WWW-Authenticate and baresip 1.0 (libre) gives up when any challenge is SHA-256; \
         offers: {offers:?}"
    );
}

/// With `--digest-algorithms SHA-256,MD5` both are offered, preferred first (RFC 8760).
#[test]
fn sha256_can_be_offered_first() {
    let pbx = Pbx::builder()
        .user(EXT, PASSWORD)
        .serve_args(["--digest-algorithms", "SHA-256,MD5"])
        .start();
    let peer = UdpPeer::new(pbx.sip_udp);
    let local = peer.local();
    let register = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-sha;rport\r\nFrom: <sip:{EXT}@{DOMAIN}>;tag=s\r\nTo: <sip:{EXT}@{DOMAIN}>\r\nCall-ID: sha-offer\r\nCSeq: 1 REGISTER\r\nContact: <sip:{EXT}@{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    peer.send(register.as_bytes()).expect("send");
    let raw = peer.recv_within(Duration::from_secs(10)).unwrap_or_else(|| pbx.fail("no answer to REGISTER"));
    let reply = String::from_utf8_lossy(&raw).into_owned();
    let offers = headers(&reply, "WWW-Authenticate");
    assert_eq!(offers.len(), 2, "{reply}");
    assert!(offers[0].contains("algorithm=SHA-256") && offers[1].contains("algorithm=MD5"), "{offers:?}");
}

#[test]
fn register_with_digest_auth_and_the_200_lists_the_contact_with_expires() {
    let pbx = pbx();
    pbx.wait_metric(METRIC, 0.0, SETTLE);

    let run = Sipp::against("register_auth.xml", &pbx)
        .auth(EXT, PASSWORD)
        .run();
    check_challenge(&run, &pbx);
    run.assert_success(&pbx);

    let received = run.received();
    let ok = received.last().expect("a 200 OK");
    assert_eq!(
        status_of(ok),
        Some(200),
        "last message is not the 200 OK:\n{}",
        run.report()
    );
    let our_contact = format!("sip:{EXT}@127.0.0.1:{}", run.local_port);
    let contacts = headers(ok, "Contact");
    let expires = contact_expires(&contacts, &our_contact).unwrap_or_else(|| {
        panic!(
            "the 200 OK does not list our binding {our_contact} with an expires parameter (RFC 3261 §10.3 \
             step 8):\n{ok}\n{}",
            pbx.logs()
        )
    });
    assert!(
        (60..=3600).contains(&expires),
        "asked for 3600 s, granted {expires} s (must be within [min-expires, asked]):\n{ok}"
    );
    assert_eq!(
        run.logged("contact-expires").and_then(|v| v.parse().ok()),
        Some(expires)
    );

    pbx.wait_metric(METRIC, 1.0, SETTLE);

    // Registering the same contact again (new Call-ID) updates it, it does not add a
    // second binding (RFC 3261 §10.3 step 7).
    let again = Sipp::against("register_auth.xml", &pbx)
        .auth(EXT, PASSWORD)
        .local_port(run.local_port)
        .run();
    again.assert_success(&pbx);
    let ok = again.received().pop().expect("a 200 OK");
    let listed = headers(&ok, "Contact")
        .iter()
        .flat_map(|v| split_contacts(v))
        .count();
    assert_eq!(
        listed, 1,
        "one contact, registered twice, listed more than once:\n{ok}"
    );
    pbx.wait_metric(METRIC, 1.0, SETTLE);
}

#[test]
fn register_over_tcp() {
    let pbx = pbx();
    let run = Sipp::against("register_auth.xml", &pbx)
        .tcp(&pbx)
        .auth(EXT, PASSWORD)
        .run();
    run.assert_success(&pbx);
    let ok = run.received().pop().expect("a 200 OK");
    assert!(
        header(&ok, "Via").is_some_and(|v| v.to_ascii_uppercase().contains("SIP/2.0/TCP")),
        "the 200 over TCP does not carry our TCP Via:\n{ok}"
    );
    pbx.wait_metric(METRIC, 1.0, SETTLE);
}

#[test]
fn wrong_password_is_challenged_again_and_registers_nothing() {
    let pbx = pbx();
    let run = Sipp::against("register_wrong_password.xml", &pbx)
        .auth(EXT, "not-the-password")
        .run();
    run.assert_success(&pbx);
    let received = run.received();
    let last = received.last().expect("a response");
    assert_eq!(
        status_of(last),
        Some(401),
        "wrong credentials must get a fresh 401:\n{}",
        run.report()
    );
    assert!(
        !headers(last, "WWW-Authenticate").is_empty(),
        "the second 401 carries no new challenge:\n{last}"
    );
    assert_eq!(
        pbx.metric(METRIC),
        Some(0.0),
        "a wrong password created a binding\n{}",
        pbx.logs()
    );

    // An unknown extension is refused the same way (no user enumeration).
    let run = Sipp::against("register_wrong_password.xml", &pbx)
        .auth("199", PASSWORD)
        .run();
    run.assert_success(&pbx);

    // One failure (below the ban threshold) does not lock the right password out.
    register(&pbx);
    pbx.wait_metric(METRIC, 1.0, SETTLE);
}

#[test]
fn credentials_for_another_uri_are_refused() {
    // RFC 2617 §3.2.2.5, RFC 7616 §3.4.6: the digest uri must designate the Request-URI
    // (else a response captured for one request could authenticate another).
    let pbx = pbx();
    let run = Sipp::against("register_bad_digest_uri.xml", &pbx)
        .auth(EXT, PASSWORD)
        .auth_uri("other.example")
        .run();
    let sent = run.sent();
    assert!(
        sent.iter().any(|m| m.contains("uri=\"sip:other.example\"")),
        "sipp did not send the foreign digest uri:\n{}",
        run.report()
    );
    run.assert_success(&pbx);
    assert_eq!(
        pbx.metric(METRIC),
        Some(0.0),
        "credentials for another uri created a binding\n{}",
        pbx.logs()
    );
}

#[test]
fn unregister_with_star_removes_every_binding() {
    let pbx = pbx();
    // Two contacts for the extension: two sipp processes, two local ports.
    let first = register(&pbx);
    let second = register(&pbx);
    assert_ne!(first.local_port, second.local_port);
    pbx.wait_metric(METRIC, 2.0, SETTLE);

    // A query (REGISTER without Contact) lists both.
    let query = Sipp::against("query_bindings.xml", &pbx)
        .auth(EXT, PASSWORD)
        .run();
    query.assert_success(&pbx);
    let listed = query.received().pop().expect("a 200");
    let contacts = headers(&listed, "Contact");
    for run in [&first, &second] {
        let uri = format!("sip:{EXT}@127.0.0.1:{}", run.local_port);
        assert!(
            contact_expires(&contacts, &uri).is_some(),
            "the query's 200 does not list {uri} with expires:\n{listed}\n{}",
            pbx.logs()
        );
    }

    let unregister = Sipp::against("unregister_all.xml", &pbx)
        .auth(EXT, PASSWORD)
        .run();
    unregister.assert_success(&pbx);
    let ok = unregister.received().pop().expect("a 200");
    assert!(
        headers(&ok, "Contact").is_empty(),
        "bindings left after Contact: *:\n{ok}"
    );
    pbx.wait_metric(METRIC, 0.0, SETTLE);

    let query = Sipp::against("query_bindings.xml", &pbx)
        .auth(EXT, PASSWORD)
        .run();
    query.assert_success(&pbx);
    let listed = query.received().pop().expect("a 200");
    assert!(
        headers(&listed, "Contact").is_empty(),
        "a query after unregistering still lists:\n{listed}"
    );
}

#[test]
fn too_brief_expiry_gets_423_with_min_expires() {
    let pbx = pbx();
    let run = Sipp::against("register_too_brief.xml", &pbx)
        .auth(EXT, PASSWORD)
        .key("expires", "10")
        .run();
    run.assert_success(&pbx);
    let min: u64 = run
        .logged("min-expires")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Min-Expires value logged\n{}", run.report()));
    assert_eq!(
        min,
        60,
        "the default minimum expiry is 60 s\n{}",
        run.report()
    );
    assert_eq!(
        pbx.metric(METRIC),
        Some(0.0),
        "a refused REGISTER created a binding\n{}",
        pbx.logs()
    );

    // Exactly the minimum is accepted.
    let run = Sipp::against("register_auth.xml", &pbx)
        .auth(EXT, PASSWORD)
        .key("expires", "60")
        .run();
    run.assert_success(&pbx);
    pbx.wait_metric(METRIC, 1.0, SETTLE);
}

#[test]
fn min_expires_is_configurable() {
    let pbx = Pbx::builder()
        .user(EXT, PASSWORD)
        .serve_args(["--min-expires", "5"])
        .start();
    let run = Sipp::against("register_too_brief.xml", &pbx)
        .auth(EXT, PASSWORD)
        .key("expires", "4")
        .run();
    run.assert_success(&pbx);
    assert_eq!(
        run.logged("min-expires").as_deref(),
        Some("5"),
        "{}",
        run.report()
    );
    let run = Sipp::against("register_auth.xml", &pbx)
        .auth(EXT, PASSWORD)
        .key("expires", "5")
        .run();
    run.assert_success(&pbx);
    assert_eq!(
        run.logged("contact-expires").as_deref(),
        Some("5"),
        "{}",
        run.report()
    );
}

#[test]
fn options_is_answered_over_udp_and_tcp() {
    let pbx = pbx();
    Sipp::against("options.xml", &pbx)
        .run()
        .assert_success(&pbx);
    Sipp::against("options.xml", &pbx)
        .tcp(&pbx)
        .run()
        .assert_success(&pbx);
}

#[test]
fn repeated_auth_failures_get_403_until_the_ban_expires() {
    const BAN_AFTER: usize = 3;
    const BAN_SECS: u64 = 4;
    let pbx = Pbx::builder()
        .user(EXT, PASSWORD)
        .serve_args([
            "--auth-ban-after",
            &BAN_AFTER.to_string(),
            "--auth-ban-secs",
            &BAN_SECS.to_string(),
        ])
        .start();

    // Below the threshold: re-challenged.
    for _ in 0..BAN_AFTER - 1 {
        Sipp::against("register_wrong_password.xml", &pbx)
            .auth(EXT, "wrong")
            .run()
            .assert_success(&pbx);
    }
    // The failure that reaches the threshold: 401 or already 403, either is right.
    let _ = Sipp::against("register_wrong_password.xml", &pbx)
        .auth(EXT, "wrong")
        .run();

    // Now everything from this address gets 403, even the right password.
    let banned = Sipp::against("register_banned.xml", &pbx).run();
    banned.assert_success(&pbx);
    let options = Sipp::against("options.xml", &pbx).run();
    assert!(
        options.received().iter().any(|m| status_of(m) == Some(403)),
        "OPTIONS during the ban did not get 403:\n{}\n{}",
        options.report(),
        pbx.logs()
    );

    // After the cooling-off period, the right password registers again.
    let recovered = poll_until(Duration::from_secs(BAN_SECS + 30), || {
        Sipp::against("options.xml", &pbx)
            .run()
            .success()
            .then_some(())
    });
    assert!(
        recovered.is_some(),
        "still banned {BAN_SECS} s + 30 s later\n{}",
        pbx.logs()
    );
    register(&pbx);
    pbx.wait_metric(METRIC, 1.0, SETTLE);
}

#[test]
fn contact_splitting_handles_commas_in_quotes() {
    let v = ["<sip:a@x>;expires=5, \"B, b\" <sip:b@y>;expires=7"];
    assert_eq!(contact_expires(&v, "sip:a@x"), Some(5));
    assert_eq!(contact_expires(&v, "sip:b@y"), Some(7));
}
