use super::*;
use hark_sip::auth::DigestCredentials;
use hark_sip::{response_to, status, SipHeaders};

fn trunk(username: Option<&str>) -> Trunk {
    Trunk {
        id: 7,
        tenant_id: 1,
        name: "carrier".into(),
        host: "127.0.0.2:5070".into(),
        addr: "127.0.0.2:5070".parse().unwrap(),
        username: username.map(Into::into),
        password: username.map(|_| "s3cret".into()),
        dids: vec![],
        default_extension: None,
        caller_id: None,
        outbound: vec![],
    }
}

fn local() -> LocalAddrs {
    LocalAddrs { ip: "127.0.0.1".parse().unwrap(), udp_port: 5099, tcp_port: 5099 }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers.iter().find_map(|h| {
        let s = h.to_string();
        let (n, v) = s.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn authorization(req: &Request) -> Option<DigestCredentials> {
    req.headers.iter().find_map(|h| match h {
        Header::Authorization(a) => DigestCredentials::parse(a.value()).ok(),
        _ => None,
    })
}

fn challenge(req: &Request, nonce: &str, stale: bool) -> Response {
    let mut resp = response_to(req, status(401, "Unauthorized"), Some(&Tag::random()));
    let stale = if stale { ", stale=true" } else { "" };
    resp.headers.push(Header::WwwAuthenticate(rsip::headers::WwwAuthenticate::new(format!(
        "Digest realm=\"carrier.test\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5{stale}"
    ))));
    resp
}

fn reply(req: &Request, code: u16, extra: Vec<Header>) -> Response {
    let mut resp = response_to(req, status(code, ""), Some(&Tag::random()));
    resp.headers.extend(extra);
    resp
}

fn ok(req: &Request, expires: u32) -> Response {
    reply(req, 200, vec![Header::Expires(rsip::headers::Expires::new(expires.to_string()))])
}

fn branch(req: &Request) -> String {
    header(req, "Via").unwrap()
}

#[test]
fn ip_authenticated_trunks_do_not_register() {
    assert!(TrunkRegistration::new(&trunk(None), local(), Instant::now()).is_none());
}

#[test]
fn registers_with_digest_and_refreshes_at_80_percent() {
    let t0 = Instant::now();
    let mut reg = TrunkRegistration::new(&trunk(Some("trunkuser")), local(), t0).unwrap();
    assert_eq!(reg.next_timeout(), Some(t0));
    assert_eq!(reg.peer(), Peer::udp("127.0.0.2:5070".parse().unwrap()));
    let first = reg.poll_request(t0).expect("due at once");
    assert!(reg.poll_request(t0).is_none(), "one at a time");
    assert_eq!(first.method, Method::Register);
    assert_eq!(first.uri.to_string(), "sip:127.0.0.2:5070");
    assert!(header(&first, "From").unwrap().starts_with("<sip:trunkuser@127.0.0.2>;tag="));
    assert_eq!(header(&first, "To").unwrap(), "<sip:trunkuser@127.0.0.2>");
    assert_eq!(header(&first, "Contact").unwrap(), "<sip:trunkuser@127.0.0.1:5099>");
    assert_eq!(header(&first, "Expires").unwrap(), "300");
    assert!(authorization(&first).is_none());
    assert_eq!(reg.state(), &TrunkRegState::Registering);

    let second = reg.handle_response(t0, &challenge(&first, "n1", false)).expect("answered");
    let creds = authorization(&second).expect("credentials");
    assert_eq!((creds.username.as_str(), creds.realm.as_str(), creds.nonce.as_str()), ("trunkuser", "carrier.test", "n1"));
    assert_eq!(creds.uri, "sip:127.0.0.2:5070");
    assert_eq!(second.cseq().unwrap().0, first.cseq().unwrap().0 + 1);
    assert_ne!(branch(&first), branch(&second), "a new transaction");
    assert_eq!(second.call_id().unwrap(), first.call_id().unwrap(), "one Call-ID per registration");

    assert!(reg.handle_response(t0, &reply(&second, 100, vec![])).is_none());
    assert!(reg.handle_response(t0, &ok(&second, 100)).is_none());
    assert_eq!(reg.state(), &TrunkRegState::Registered { until: t0 + Duration::from_secs(100) });
    assert!(reg.is_registered(t0));
    assert_eq!(reg.next_timeout(), Some(t0 + Duration::from_secs(80)));
    assert!(reg.poll_request(t0 + Duration::from_secs(79)).is_none());

    // The refresh answers the last challenge right away (nonce-count 2).
    let refresh = reg.poll_request(t0 + Duration::from_secs(80)).expect("refresh");
    let creds = authorization(&refresh).expect("credentials sent unasked");
    assert_eq!((creds.nonce.as_str(), creds.nc), ("n1", Some(2)));
    assert!(reg.is_registered(t0 + Duration::from_secs(80)), "still registered while refreshing");
    // The nonce expired: the carrier challenges again, which is not a refusal.
    let again = reg.handle_response(t0, &challenge(&refresh, "n2", false)).expect("answered");
    assert_eq!(authorization(&again).unwrap().nonce, "n2");
    reg.handle_response(t0 + Duration::from_secs(81), &ok(&again, 300));
    assert_eq!(reg.next_timeout(), Some(t0 + Duration::from_secs(81 + 240)));
}

#[test]
fn a_wrong_password_fails_the_round_and_backs_off() {
    let t0 = Instant::now();
    let mut reg = TrunkRegistration::new(&trunk(Some("trunkuser")), local(), t0).unwrap();
    let mut now = t0;
    for (round, wait) in [(1, 5), (2, 10), (3, 20)] {
        let first = reg.poll_request(now).expect("due");
        assert!(authorization(&first).is_none(), "round {round} starts without credentials");
        let second = reg.handle_response(now, &challenge(&first, "fixed", false)).expect("answered once");
        assert!(authorization(&second).is_some());
        assert!(reg.handle_response(now, &challenge(&second, "fixed", false)).is_none(), "no loop");
        assert!(matches!(reg.state(), TrunkRegState::Failed { reason } if reason.contains("401")));
        assert_eq!(reg.next_timeout(), Some(now + Duration::from_secs(wait)));
        assert!(reg.poll_request(now + Duration::from_secs(wait) - Duration::from_millis(1)).is_none());
        now += Duration::from_secs(wait);
    }
}

#[test]
fn a_stale_or_new_nonce_is_answered_once_more() {
    let t0 = Instant::now();
    let mut reg = TrunkRegistration::new(&trunk(Some("u")), local(), t0).unwrap();
    let first = reg.poll_request(t0).unwrap();
    let second = reg.handle_response(t0, &challenge(&first, "a", false)).unwrap();
    let third = reg.handle_response(t0, &challenge(&second, "a", true)).expect("stale: answered again");
    assert_eq!(authorization(&third).unwrap().nonce, "a");
    assert!(reg.handle_response(t0, &challenge(&third, "b", false)).is_none(), "at most two answers per round");
    assert!(matches!(reg.state(), TrunkRegState::Failed { .. }));
}

#[test]
fn timeouts_and_refusals_back_off() {
    let t0 = Instant::now();
    let mut reg = TrunkRegistration::new(&trunk(Some("u")), local(), t0).unwrap();
    reg.poll_request(t0).unwrap();
    assert_eq!(reg.next_timeout(), Some(t0 + RESPONSE_TIMEOUT));
    reg.handle_timeout(t0 + RESPONSE_TIMEOUT - Duration::from_millis(1));
    assert_eq!(reg.state(), &TrunkRegState::Registering);
    let t1 = t0 + RESPONSE_TIMEOUT;
    reg.handle_timeout(t1);
    assert!(matches!(reg.state(), TrunkRegState::Failed { reason } if reason.contains("no response")));
    assert_eq!(reg.next_timeout(), Some(t1 + Duration::from_secs(5)));

    let t2 = t1 + Duration::from_secs(5);
    reg.poll_request(t2).unwrap();
    reg.handle_failure(t2, "transaction timed out");
    assert_eq!(reg.next_timeout(), Some(t2 + Duration::from_secs(10)));
    reg.handle_failure(t2, "twice");
    assert_eq!(reg.next_timeout(), Some(t2 + Duration::from_secs(10)), "nothing in flight: ignored");

    let t3 = t2 + Duration::from_secs(10);
    let req = reg.poll_request(t3).unwrap();
    assert!(reg.handle_response(t3, &reply(&req, 403, vec![])).is_none());
    assert!(matches!(reg.state(), TrunkRegState::Failed { reason } if reason == "403 Forbidden"), "{:?}", reg.state());
    assert_eq!(reg.next_timeout(), Some(t3 + Duration::from_secs(20)));

    // A success resets the back-off.
    let t4 = t3 + Duration::from_secs(20);
    let req = reg.poll_request(t4).unwrap();
    reg.handle_response(t4, &ok(&req, 60));
    let t5 = t4 + Duration::from_secs(48);
    let req = reg.poll_request(t5).unwrap();
    reg.handle_response(t5, &reply(&req, 503, vec![]));
    assert_eq!(reg.next_timeout(), Some(t5 + Duration::from_secs(5)));
}

#[test]
fn interval_too_brief_asks_for_the_minimum() {
    let t0 = Instant::now();
    let mut reg = TrunkRegistration::new(&trunk(Some("u")), local(), t0).unwrap();
    let first = reg.poll_request(t0).unwrap();
    let resp = reply(&first, 423, vec![Header::MinExpires(rsip::headers::MinExpires::new("600"))]);
    let second = reg.handle_response(t0, &resp).expect("retried");
    assert_eq!(header(&second, "Expires").unwrap(), "600");
    // The Contact's own expires wins over the header.
    let mut resp = ok(&second, 600);
    resp.headers.push(Header::Contact(rsip::headers::Contact::new("<sip:u@127.0.0.1:5099>;expires=500")));
    reg.handle_response(t0, &resp);
    assert_eq!(reg.state(), &TrunkRegState::Registered { until: t0 + Duration::from_secs(500) });
}

#[test]
fn backoff_doubles_up_to_five_minutes() {
    let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
}

#[test]
fn a_changed_trunk_needs_a_new_registration() {
    let t0 = Instant::now();
    let reg = TrunkRegistration::new(&trunk(Some("u")), local(), t0).unwrap();
    assert!(reg.matches(&trunk(Some("u"))));
    assert!(!reg.matches(&trunk(Some("v"))));
    assert!(!reg.matches(&Trunk { password: Some("other".into()), ..trunk(Some("u")) }));
    assert!(!reg.matches(&trunk(None)));
}

#[test]
fn unregistering_only_when_registered() {
    let t0 = Instant::now();
    let mut reg = TrunkRegistration::new(&trunk(Some("u")), local(), t0).unwrap();
    assert!(reg.unregister_request(t0).is_none(), "nothing to remove yet");
    let first = reg.poll_request(t0).unwrap();
    let second = reg.handle_response(t0, &challenge(&first, "n", false)).unwrap();
    reg.handle_response(t0, &ok(&second, 300));
    let bye = reg.unregister_request(t0).expect("registered");
    assert_eq!(header(&bye, "Expires").unwrap(), "0");
    assert!(authorization(&bye).is_some(), "answers the known challenge");
    assert!(bye.cseq().unwrap().0 > second.cseq().unwrap().0);
    assert!(reg.next_timeout().is_none(), "nothing more");
    assert!(!reg.is_registered(t0));
}
