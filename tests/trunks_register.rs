//! Outbound trunk registration against a carrier played by sipp (a UAS registrar on its own
//! loopback port): digest authentication, the refresh before the granted expiry, and a
//! wrong password that must not make the PBX loop. The trunk is added while `serve` runs,
//! so the directory reload starts the registration.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hark_e2e::sipp::{SippBg, header};
use hark_e2e::{Pbx, Sipp, TENANT, poll_until};

/// The distinct REGISTER transactions seen in a sipp message trace (by CSeq number, so
/// that retransmissions count once).
fn register_cseqs(trace: &str) -> BTreeSet<u32> {
    trace
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            if !name.trim().eq_ignore_ascii_case("CSeq") {
                return None;
            }
            let mut parts = value.split_whitespace();
            let n = parts.next()?.parse().ok()?;
            (parts.next()? == "REGISTER").then_some(n)
        })
        .collect()
}

/// Waits until the carrier has seen `count` REGISTERs; returns when.
fn wait_registers(carrier: &mut SippBg, pbx: &Pbx, count: usize, timeout: Duration) -> Instant {
    let seen = poll_until(timeout, || (register_cseqs(&carrier.messages()).len() >= count).then(Instant::now));
    seen.unwrap_or_else(|| {
        panic!(
            "the carrier saw {} REGISTERs within {timeout:?}, expected {count}\n--- carrier trace ---\n{}\n{}",
            register_cseqs(&carrier.messages()).len(),
            carrier.messages(),
            pbx.logs()
        )
    })
}

fn add_trunk(pbx: &Pbx, carrier: &SippBg, password: &str) {
    pbx.admin(&[
        "trunk", "add", "--tenant", TENANT, "--name", "carrier",
        "--host", &format!("127.0.0.1:{}", carrier.local_port),
        "--username", "trunkuser", "--password", password, "--did", "4930123456=101",
    ]);
}

#[test]
fn registers_with_digest_and_refreshes_before_expiry() {
    let pbx = Pbx::builder().user("101", "pw").start();
    // The carrier grants 10 s: the refresh is due at about 8 s.
    let mut carrier = Sipp::new("carrier_register.xml", pbx.sip_udp)
        .key("expires", "10")
        .timeout(Duration::from_secs(60))
        .spawn();
    add_trunk(&pbx, &carrier, "trunk-s3cret");

    let registered = wait_registers(&mut carrier, &pbx, 2, Duration::from_secs(15));
    pbx.wait_metric("hark_trunks_registered", 1.0, Duration::from_secs(5));
    let refreshed = wait_registers(&mut carrier, &pbx, 3, Duration::from_secs(20));
    let gap = refreshed - registered;
    assert!(
        gap >= Duration::from_secs(6) && gap <= Duration::from_secs(11),
        "the refresh came {gap:?} after the registration; expected about 8 s (80% of 10 s)"
    );
    let run = carrier.wait(Duration::from_secs(10));
    run.assert_success(&pbx);
    assert_eq!(run.logged("auth").as_deref(), Some(r#"username="trunkuser""#), "{}", run.report());

    let registers: Vec<String> = run.received().into_iter().filter(|m| m.starts_with("REGISTER ")).collect();
    assert!(registers.len() >= 3, "{}", run.report());
    let first = &registers[0];
    assert!(header(first, "Authorization").is_none(), "the first REGISTER carries no credentials:\n{first}");
    let to = header(first, "To").unwrap_or_default();
    assert!(to.contains("sip:trunkuser@127.0.0.1"), "{first}");
    let contact = header(first, "Contact").unwrap_or_default();
    assert!(contact.contains(&format!("trunkuser@{}", pbx.sip_udp)), "our Contact, reachable: {contact}\n{first}");
    assert_eq!(header(first, "Expires").map(str::trim), Some("300"), "{first}");
    let call_ids: BTreeSet<&str> = registers.iter().filter_map(|r| header(r, "Call-ID")).collect();
    assert_eq!(call_ids.len(), 1, "one Call-ID for the registration: {call_ids:?}");
    assert!(header(&registers[2], "Authorization").is_some(), "the refresh answers the last challenge unasked");

    let logs = pbx.logs();
    assert!(logs.contains("trunk registered"), "an info line when the carrier accepts:\n{logs}");
    assert!(!logs.contains("trunk registration failed"), "{logs}");
}

#[test]
fn a_refused_password_backs_off_instead_of_looping() {
    let pbx = Pbx::builder().user("101", "pw").start();
    let mut carrier = Sipp::new("carrier_register_reject.xml", pbx.sip_udp)
        .timeout(Duration::from_secs(60))
        .spawn();
    add_trunk(&pbx, &carrier, "not-the-password");

    // Round one: REGISTER, 401, REGISTER with credentials, 401 again (same nonce).
    let refused = wait_registers(&mut carrier, &pbx, 2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(3));
    let so_far = register_cseqs(&carrier.messages()).len();
    assert_eq!(so_far, 2, "the PBX must not answer a refusal with more REGISTERs at once\n{}", carrier.messages());

    // Round two after the back-off (5 s).
    let retried = wait_registers(&mut carrier, &pbx, 3, Duration::from_secs(20));
    let gap = retried - refused;
    assert!(gap >= Duration::from_millis(4500), "the retry came {gap:?} after the refusal; expected the 5 s back-off");
    let run = carrier.wait(Duration::from_secs(10));
    run.assert_success(&pbx);
    let registers: Vec<String> = run.received().into_iter().filter(|m| m.starts_with("REGISTER ")).collect();
    assert!(header(&registers[2], "Authorization").is_none(), "a new round starts without credentials:\n{}", registers[2]);
    assert!(header(&registers[3], "Authorization").is_some());

    let logs = pbx.logs();
    assert!(
        logs.lines().any(|l| l.contains("trunk registration failed") && l.contains("401")),
        "a warning with the status:\n{logs}"
    );
    assert!(!logs.contains("trunk registered"), "{logs}");
}
